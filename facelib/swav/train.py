"""SwAV pretraining loop, its job and the ``facelib pretrain`` command (supplement 1.1).

:func:`train` runs the recipe on any dataset of RGB uint8 images: data-parallel with
synchronised BN in groups of ``sync_bn_group_size`` processes when torch.distributed is
initialised (it never initialises it), mixed precision (bf16 or fp16 on GPU, bf16 autocast on
CPUs that support it), LARS with the per-iteration schedule of :func:`facelib.recipes.lr_schedule`,
prototypes frozen for the first ``freeze_prototypes_iters`` iterations, and a stop with a clear
message at the first non-finite loss. It writes to ``out_dir``:

* ``log.jsonl``: one JSON record per logging step (``"kind": "iter"``) and per epoch
  (``"kind": "epoch"``): loss, learning rate, code entropy, score spread (std of an image's
  scores over the prototypes: near 0 every prototype scores alike and the loss sits at ln K),
  prototype usage (entropy of the hard assignments and number of prototypes used), images/s;
* ``checkpoint.pth``: written atomically after every epoch (model, optimiser, scaler, epoch,
  iteration, RNG states, queue, recipe); ``resume=True`` continues from it and replays the
  uninterrupted run exactly (same data order, same augmentations, same losses);
* ``trunk.pth``: the trained trunk in plain torchvision layout, at the end;
* ``bad_items.jsonl``: the images that could not be read (shard and item, error). Over the
  recipe's ``max_unreadable_items`` (default 0) the run stops with an error naming them; up to
  it their number is in every epoch record and in the result.

Every file loads with ``torch.load(weights_only=True)``; a checkpoint that holds anything else
is refused on resume unless ``trusted`` (``--trusted``). ``facelib pretrain --dry-run`` without
``--cluster`` prints what would run in this process and runs nothing.

:class:`PretrainJob` is the picklable job the launcher submits (``checkpoint()`` requeues it).
Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from .. import checkpoint, recipes
from ..cli import ArgumentError, key_values
from ..data.unreadable import UnreadableItems, UnreadableItemsError
from ..errors import InputError
from .data import EpochSampler, MultiCropDataset
from .lars import LARS, param_groups
from .loss import SwAVLoss
from .model import SwAVModel, export_trunk
from .supervised import METHODS, IdentityLoss, IdentityModel, large_crops_only, num_identities
from .syncbn import bn_process_group, convert_sync_batchnorm
from .device_multicrop import multicrop_for

__all__ = [
    "train",
    "TrainResult",
    "NonFiniteLossError",
    "DataSpec",
    "PretrainJob",
    "run_jobs",
    "read_log",
    "add_cli",
    "job_from_args",
    "LOG_NAME",
    "CHECKPOINT_NAME",
    "TRUNK_NAME",
]

LOG_NAME = "log.jsonl"
CHECKPOINT_NAME = "checkpoint.pth"
TRUNK_NAME = "trunk.pth"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and iteration."""


class RunExistsError(InputError, FileExistsError):
    """The run directory holds a checkpoint and ``resume`` was not asked for."""


@dataclass
class TrainResult:
    """What :func:`train` did."""

    out_dir: Path
    epochs_done: int
    iterations_done: int
    finished: bool
    final_loss: float | None
    seconds: float
    log_path: Path
    checkpoint_path: Path
    trunk_path: Path | None
    unreadable_items: int = 0


def read_log(path: str | os.PathLike[str], kind: str | None = None) -> list[dict[str, Any]]:
    """The records of a run's ``log.jsonl`` (a run directory or the file), optionally of one ``kind``."""
    p = Path(path)
    if p.is_dir():
        p = p / LOG_NAME
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no pretraining log")
    out = []
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{n}: not a JSON record ({e})") from e
            if kind is None or rec.get("kind") == kind:
                out.append(rec)
    return out


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _amp_dtype(amp: str, device: torch.device, enabled: bool) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and not enabled):
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp != "auto":
        raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        # bf16 pays off with AMX tiles only: on AVX512-BF16 without AMX a ResNet-50 SwAV step
        # measured 4.45 s in bf16 against 3.19 s in fp32, as oneDNN's bf16 convolutions ran at
        # 0.55x the fp32 GFLOP/s (benchmarks/bench_swav_step.py prints both).
        supported = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        return torch.bfloat16 if supported else None
    return None


def _entropy(counts: Tensor) -> float:
    p = counts.double() / counts.sum().clamp_min(1)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


class _Meter:
    """Sums over a logging window or an epoch, all-reduced when read."""

    def __init__(self, num_prototypes: int) -> None:
        self.k = num_prototypes
        self.reset()

    def reset(self) -> None:
        self.loss = 0.0
        self.entropy = 0.0
        self.spread = 0.0
        self.steps = 0
        self.images = 0
        self.counts = torch.zeros(self.k, dtype=torch.float64)
        self.t0 = time.perf_counter()

    def update(self, loss: float, entropy: float, assignments: Tensor, images: int,
               spread: float = 0.0) -> None:
        self.loss += loss
        self.entropy += entropy
        self.spread += spread
        self.steps += 1
        self.images += images
        self.counts += torch.bincount(assignments.cpu(), minlength=self.k).double()

    def read(self, world: int) -> dict[str, float]:
        counts = self.counts.clone()
        if world > 1:
            dist.all_reduce(counts)
        dt = max(time.perf_counter() - self.t0, 1e-9)
        steps = max(self.steps, 1)
        return {
            "loss": self.loss / steps,
            "code_entropy": self.entropy / steps,
            "score_spread": self.spread / steps,
            "usage_entropy": _entropy(counts),
            "usage_entropy_max": math.log(self.k),
            "prototypes_used": int((counts > 0).sum()),
            "images_per_s": self.images * world / dt,
        }


def _write_record(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def _truncate_log(path: Path, start_epoch: int) -> None:
    """Keep only the records of epochs before ``start_epoch`` (drop a killed epoch's lines)."""
    if not path.is_file():
        return
    keep = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the kill
            if rec.get("epoch", -1) < start_epoch:
                keep.append(line if line.endswith("\n") else line + "\n")
    checkpoint.atomic_write_text("".join(keep), path)


def _recipe_dict(recipe: recipes.Pretrain) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def _check_same_recipe(saved: dict[str, Any], recipe: recipes.Pretrain, path: Path) -> None:
    now = _recipe_dict(recipe)
    default = {f.name: f.default for f in dataclasses.fields(recipe)}  # fields added since the checkpoint
    now.pop("max_unreadable_items", None)  # may change on resume (to skip what stopped the run)
    diff = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k, default[k]) != v
            and not (isinstance(v, tuple) and tuple(saved.get(k) or ()) == v)}
    if diff:
        items = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
        raise ArgumentError(f"{path}: cannot resume with a different recipe ({items}); "
                         "use the checkpoint's recipe or another output directory")


# ------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------
def train(
    recipe: recipes.Pretrain,
    dataset: Dataset,  # type: ignore[type-arg]
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    device: str | torch.device | None = None,
    amp: str = "auto",
    channels_last: bool | None = None,
    num_workers: int = 0,
    log_every: int = 10,
    until_epoch: int | None = None,
    progress: bool = True,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
    trusted: bool = False,
) -> TrainResult:
    """Pretrain a SwAV model with ``recipe`` on ``dataset``.

    Args:
        recipe: ``recipes.pretrain(profile, **overrides)``. ``batch_size`` is global: each of
            the W processes takes ``batch_size / W`` images per step.
        dataset: items are an RGB uint8 image or ``(image, ...)``; its first
            ``recipe.train_images`` items are used (all when 0).
        out_dir: run directory (log, checkpoint, exported trunk).
        resume: continue from ``out_dir/checkpoint.pth``. Without it an existing checkpoint is
            an error, so a finished run is never overwritten by mistake.
        device: default CUDA (this process's current device) when available, else CPU.
        amp: ``"auto"`` (the recipe's ``mixed_precision``: bf16, or fp16 on GPUs without bf16;
            bf16 on CPUs with AMX, fp32 on other CPUs), ``"bf16"``, ``"fp16"`` or ``"off"``.
        channels_last: NHWC memory format (default: on CPU and under mixed precision).
        num_workers: DataLoader worker processes per training process. On the CPU the step
            then runs on the remaining cores (torch threads = cores - workers, restored after).
        log_every: iterations between ``"iter"`` log records.
        until_epoch: stop after this many epochs in total (a later ``resume=True`` continues);
            None trains all ``recipe.epochs``.
        progress: show a tqdm bar (rank 0).
        on_iteration: called after every step with the step's record (for tests and monitors).
        trusted: unpickle any object in the checkpoint resumed from (``--trusted``: such a file
            can run code). Default: tensors and plain values only; anything else is refused.

    Returns:
        A :class:`TrainResult`.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite; the checkpoint of the last
            finished epoch is intact.
        facelib.data.unreadable.UnreadableItemsError: more unreadable images than
            ``recipe.max_unreadable_items``; the checkpoint of the last finished epoch is intact.
        facelib.checkpoint.CheckpointError: the checkpoint to resume from cannot be read safely.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    rank, world = _dist_info()
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    if world > 1:
        dist.barrier()
    log_path, ckpt_path, trunk_path = out / LOG_NAME, out / CHECKPOINT_NAME, out / TRUNK_NAME
    local_ckpt = ckpt_path if rank == 0 else out / f"checkpoint.rank{rank}.pth"
    lock = _lock_run(out, rank)
    threads_before = torch.get_num_threads()
    on_cpu = (device is None and not torch.cuda.is_available()) or str(device).startswith("cpu")
    if on_cpu and num_workers > 0:
        # The loader workers make the next batches' crops on their own cores: the step gets the
        # rest (measured on 2 cores, demo recipe: 894 images/s with 1 thread + 1 worker against
        # 656 with 2 threads and the crops in the training process; benchmarks/bench_swav_demo_loop.py)
        torch.set_num_threads(max(1, _cores() - num_workers))
    try:
        return _train(recipe, dataset, out, rank=rank, world=world, resume=resume, device=device,
                      amp=amp, channels_last=channels_last, num_workers=num_workers,
                      log_every=log_every, until_epoch=until_epoch, progress=progress,
                      on_iteration=on_iteration, t_start=t_start, local_ckpt=local_ckpt, trusted=trusted)
    finally:
        torch.set_num_threads(threads_before)
        if lock is not None:
            lock.close()


def _cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


#: Lock files held by this process (a POSIX record lock does not exclude its own process).
_HELD_LOCKS: set[str] = set()


class RunBusyError(InputError, RuntimeError):
    """Another process is training in the run directory (one line from ``facelib``, exit 2)."""


class _RunLock:
    """An exclusive lock on a run directory's ``.lock.rank<k>`` file; :meth:`close` frees it."""

    def __init__(self, path: Path) -> None:
        import fcntl

        self.key = str(path.resolve())
        if self.key in _HELD_LOCKS:
            raise RunBusyError(f"{path.parent}: another process is already training in this run directory "
                               "(wait for it to finish, or use another directory)")
        self.file = open(path, "a")
        try:
            # A POSIX record lock belongs to this process alone: the DataLoader workers it forks
            # do not inherit it, so a run killed with SIGKILL frees it at once, even while an
            # orphaned worker lingers (an flock lock would live on in the worker's copy of the
            # descriptor and refuse the --resume).
            fcntl.lockf(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EACCES or EAGAIN: held by another process
            self.file.close()
            raise RunBusyError(f"{path.parent}: another process is already training in this run directory "
                               "(wait for it to finish, or use another directory)") from None
        _HELD_LOCKS.add(self.key)

    def close(self) -> None:
        if not self.file.closed:
            _HELD_LOCKS.discard(self.key)
            self.file.close()


def _lock_run(out: Path, rank: int) -> _RunLock:
    """Hold an exclusive lock on ``out/.lock.rank<rank>`` (one writer per rank) or raise."""
    return _RunLock(out / f".lock.rank{rank}")


def _train(recipe: recipes.Pretrain, dataset: Dataset, out: Path, *, rank: int, world: int,  # type: ignore[type-arg]
           resume: bool, device: str | torch.device | None, amp: str, channels_last: bool | None,
           num_workers: int, log_every: int, until_epoch: int | None, progress: bool,
           on_iteration: Callable[[dict[str, Any]], None] | None, t_start: float,
           local_ckpt: Path, trusted: bool = False) -> TrainResult:
    log_path, ckpt_path, trunk_path = out / LOG_NAME, out / CHECKPOINT_NAME, out / TRUNK_NAME
    if ckpt_path.exists() and not resume:
        raise RunExistsError(f"{ckpt_path} exists: pass resume=True (--resume) to continue that run, "
                             "or choose another output directory")

    if device is None:
        device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    amp_dtype = _amp_dtype(amp, device, recipe.mixed_precision)
    if channels_last is None:  # NHWC: faster for oneDNN on CPU (fp32 too) and for tensor cores
        channels_last = amp_dtype is not None or device.type == "cpu"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    # ---- data
    if recipe.train_images > 0 and len(dataset) > recipe.train_images:  # type: ignore[arg-type]
        dataset = Subset(dataset, range(recipe.train_images))
    # recipe.augment_on: the multi-crop runs in the loader, or the loader draws the crops and
    # device_crops makes them from the uint8 batch on the training device
    supervised = recipe.method == "supervised"
    if recipe.method not in METHODS:
        raise ValueError(f"Pretrain.method must be one of {', '.join(METHODS)}, got {recipe.method!r}")
    # the supervised loss sees the large crops only: the loader makes only those (the same crops)
    item_transform, device_crops = multicrop_for(large_crops_only(recipe) if supervised else recipe)
    unreadable = UnreadableItems(out / "bad_items.jsonl", recipe.max_unreadable_items, "pretraining image",
                                 "max_unreadable_items")
    data = MultiCropDataset(dataset, item_transform, seed=recipe.seed,  # type: ignore[arg-type]
                            unreadable=unreadable, label_key="identity" if supervised else None)
    sampler = EpochSampler(data, recipe.batch_size, rank, world, seed=recipe.seed)
    local_bs = sampler.local_batch
    loader = DataLoader(data, batch_size=local_bs, sampler=sampler, num_workers=num_workers,
                        drop_last=True, pin_memory=device.type == "cuda",
                        persistent_workers=num_workers > 0)
    iters_per_epoch = sampler.batches_per_epoch
    schedule = recipes.lr_schedule(recipe, iters_per_epoch)

    # ---- model, loss, optimiser
    torch.manual_seed(recipe.seed)
    n_classes = num_identities(dataset) if supervised else 0
    model: nn.Module = (IdentityModel.from_recipe(recipe, n_classes) if supervised
                        else SwAVModel.from_recipe(recipe))
    bn_group = None
    if world > 1 and recipe.sync_bn:
        bn_group = bn_process_group(recipe.sync_bn_group_size)
        model = convert_sync_batchnorm(model, bn_group, device.type)
    model = model.to(device=device, memory_format=memory_format)
    criterion: nn.Module = IdentityLoss() if supervised else SwAVLoss.from_recipe(recipe).to(device)
    optimizer = LARS(param_groups(model, recipe.lars_exclude_bias_bn), lr=float(schedule[0]),
                     momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                     trust_coefficient=recipe.lars_trust_coefficient)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    # ---- resume
    start_epoch = 0
    if resume and ckpt_path.exists():
        state = checkpoint.load(ckpt_path, map_location=device, trusted=trusted)
        _check_same_recipe(state["recipe"], recipe, ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"])
        local = state["local"] if rank == 0 else None
        if rank > 0 and local_ckpt.exists():
            local = checkpoint.load(local_ckpt, map_location=device, trusted=trusted)
        if local is not None and int(local["epoch"]) == start_epoch:
            criterion.load_state_dict(local["loss"])
            checkpoint.set_rng_state(local["rng"])
        elif getattr(criterion, "local_queue_length", 0) > 0:
            import warnings
            warnings.warn(f"rank {rank}: no queue saved for epoch {start_epoch}; the queue restarts empty",
                          RuntimeWarning, stacklevel=2)
        if rank == 0:
            _truncate_log(log_path, start_epoch)
    elif rank == 0:  # a fresh run (no checkpoint): an old log would mix two runs
        log_path.unlink(missing_ok=True)
        unreadable.reset()

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    core: Any = model

    autocast: Callable[[], ContextManager[Any]] = (
        (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype is not None else nullcontext)
    last_epoch = recipe.epochs if until_epoch is None else min(until_epoch, recipe.epochs)
    final_loss: float | None = None
    k = n_classes if supervised else recipe.num_prototypes
    window, epoch_meter = _Meter(k), _Meter(k)
    bar = None
    if progress and rank == 0 and start_epoch < last_epoch:
        from tqdm.auto import tqdm
        bar = tqdm(total=(last_epoch - start_epoch) * iters_per_epoch, desc="SwAV pretraining",
                   unit="it", dynamic_ncols=True)
    if rank == 0:
        _write_record(log_path, {"kind": "start", "epoch": start_epoch, "world_size": world,
                                 "device": str(device), "amp": str(amp_dtype).replace("torch.", ""),
                                 "iters_per_epoch": iters_per_epoch, "images": len(data)})

    iteration = start_epoch * iters_per_epoch
    for epoch in range(start_epoch, last_epoch):
        net.train()
        sampler.set_epoch(epoch)
        if not supervised:
            criterion.start_epoch(epoch, device)
        window.reset()
        epoch_meter.reset()
        for it, batch in enumerate(loader):
            crops, labels = batch if supervised else (batch, None)
            iteration = epoch * iters_per_epoch + it
            _check_unreadable(unreadable, world, device, epoch, it, log_path, rank, bar,
                              ckpt_path if epoch > 0 else None)
            lr = float(schedule[iteration])
            for g in optimizer.param_groups:
                g["lr"] = lr
            if device_crops is not None:  # (uint8 images, crop plans) -> the multi-crop batch
                crops = device_crops(crops[0].to(device, non_blocking=True), crops[1])
            crops = [c.to(device, non_blocking=True, memory_format=memory_format) for c in crops]
            if supervised:
                with autocast():
                    _, scores = net(crops)
                out_step = criterion(scores.float(), labels.to(device))
            else:
                core.normalize_prototypes()
                with autocast():
                    embedding, scores = net(crops)
                out_step = criterion(embedding.float(), scores.float(), core.prototypes.weight)
            loss = out_step.loss
            loss_value = loss.detach().float().reshape(1)
            if world > 1:
                dist.all_reduce(loss_value)
                loss_value /= world
            value = float(loss_value)
            if not math.isfinite(value):
                kept = (f"the checkpoint after epoch {epoch} is intact: {ckpt_path}" if epoch > 0
                        else "no epoch had finished, so there is no checkpoint")
                msg = (f"non-finite {recipe.method} loss ({value}) at epoch {epoch}, iteration {it} "
                       f"(global iteration {iteration}, lr {lr:.4g}); stopping before the update: {kept}")
                if rank == 0:
                    _write_record(log_path, {"kind": "error", "epoch": epoch, "iteration": iteration,
                                             "message": msg})
                if bar is not None:
                    bar.close()
                raise NonFiniteLossError(msg)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if not supervised and iteration < recipe.freeze_prototypes_iters:
                core.prototypes.weight.grad = None
            scaler.step(optimizer)
            scaler.update()

            entropy = float(out_step.code_entropy)
            spread = float(out_step.score_spread) if out_step.score_spread is not None else 0.0
            window.update(value, entropy, out_step.assignments, local_bs, spread)
            epoch_meter.update(value, entropy, out_step.assignments, local_bs, spread)
            final_loss = value
            step_record = {"kind": "step", "epoch": epoch, "iteration": iteration, "loss": value, "lr": lr}
            if on_iteration is not None:
                on_iteration(step_record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{value:.3f}", lr=f"{lr:.3g}")
            if (it + 1) % log_every == 0 or it + 1 == iters_per_epoch:
                stats = window.read(world)
                if rank == 0:
                    _write_record(log_path, {"kind": "iter", "epoch": epoch, "iteration": iteration,
                                             "lr": lr, **stats})
                window.reset()

        stats = epoch_meter.read(world)
        # ---- checkpoint (every rank keeps its own queue and RNG state)
        local_state = {"epoch": epoch + 1, "loss": criterion.state_dict(), "rng": checkpoint.rng_state()}
        if rank == 0:
            checkpoint.save({
                "epoch": epoch + 1,
                "iteration": (epoch + 1) * iters_per_epoch,
                "model": core.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "recipe": _recipe_dict(recipe),
                "world_size": world,
                "local": local_state,
            }, ckpt_path)
            _write_record(log_path, {"kind": "epoch", "epoch": epoch, "iteration": iteration,
                                     "lr": float(schedule[iteration]), **stats,
                                     "unreadable_items": unreadable.count()})
        else:
            checkpoint.save(local_state, local_ckpt)
    if bar is not None:
        bar.close()

    finished = last_epoch >= recipe.epochs
    exported = None
    if finished and rank == 0:
        export_trunk(core, trunk_path)
        exported = trunk_path
    if world > 1:
        dist.barrier()
    return TrainResult(out_dir=out, epochs_done=last_epoch, iterations_done=last_epoch * iters_per_epoch,
                       finished=finished, final_loss=final_loss, seconds=time.perf_counter() - t_start,
                       log_path=log_path, checkpoint_path=ckpt_path, trunk_path=exported,
                       unreadable_items=unreadable.count())


def _check_unreadable(unreadable: UnreadableItems, world: int, device: torch.device, epoch: int, it: int,
                      log_path: Path, rank: int, bar: Any, kept: Path | None) -> None:
    """Stop every process (before the step) once the run's unreadable images are over the limit."""
    over = unreadable.over_limit()
    if world > 1:  # every rank stops at the same step, or none does
        flag = torch.tensor([float(over)], device=device)
        dist.all_reduce(flag)
        over = bool(flag.item())
    if not over:
        return
    msg = unreadable.message(f"by epoch {epoch}, iteration {it}") + "; " + (
        f"the checkpoint of the last finished epoch is intact: {kept}" if kept
        else "no epoch had finished, so there is no checkpoint")
    if rank == 0:
        _write_record(log_path, {"kind": "error", "epoch": epoch, "message": msg})
    if bar is not None:
        bar.close()
    raise UnreadableItemsError(msg)


# ------------------------------------------------------------------------------------------
# the job and the command
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpec:
    """Where pretraining images come from: generated faces or preprocessed HDF5 shards.

    Attributes:
        kind: ``"synthetic"`` (``facelib.data.synth`` faces in the paper's crop geometry,
            :func:`facelib.swav.data.synthetic_faces`) or ``"shards"``
            (``facelib.storage.ShardDataset`` over ``manifest`` and ``root``).
        manifest: parquet manifest of the shards.
        root: folder the manifest's shard paths are relative to.
        synthetic_images: number of synthetic faces (default: the recipe's ``train_images``).
        synthetic_seed: seed of the synthetic set.
        synthetic_identities: persons in the synthetic set.
    """

    kind: str = "synthetic"
    manifest: str | None = None
    root: str | None = None
    synthetic_images: int | None = None
    synthetic_seed: int = 0
    synthetic_identities: int | None = None

    def build(self, recipe: recipes.Pretrain) -> Dataset:  # type: ignore[type-arg]
        """The dataset; synthetic faces are cut to the paper's crop geometry at ``recipe.input_size``.

        See :func:`facelib.swav.data.synthetic_faces` (the face box spans 190/256 of the side, as
        in the real pretraining images); they are kept in memory once rendered.

        Raises:
            facelib.cli.ArgumentError: no manifest or root, a missing or unreadable manifest, a
                missing root folder, or fewer images than one batch (the message names the
                argument and the reason).
        """
        if self.kind == "synthetic":
            from ..data.cached import CachedDataset
            from .data import synthetic_faces
            n = self.synthetic_images or recipe.train_images
            if not n:
                raise ArgumentError("synthetic data needs a number of images (train_images or synthetic_images)")
            self._check_batch(n, f"{n} synthetic images (train_images)", recipe)
            ids = self.synthetic_identities or recipe.synthetic_identities
            return CachedDataset(synthetic_faces(n, self.synthetic_seed, recipe.input_size, ids),
                                 max_bytes=1 << 30)
        if self.kind == "shards":
            return self._shards(recipe)
        raise ArgumentError(f"unknown data kind {self.kind!r}; choose 'synthetic' or 'shards'")

    def _shards(self, recipe: recipes.Pretrain) -> Dataset:  # type: ignore[type-arg]
        from ..storage import ShardDataset, read_manifest
        if not self.manifest:
            raise ArgumentError("shard data needs --manifest (the parquet manifest `facelib preprocess` "
                                "wrote) and --root (its shard folder); --data synthetic trains on generated faces")
        manifest = Path(self.manifest)
        if not manifest.exists():
            raise ArgumentError(f"--manifest {manifest}: no such file")
        if not self.root:
            raise ArgumentError(f"--manifest {manifest} needs --root: the folder its shard paths are relative to")
        root = Path(self.root)
        if not root.is_dir():
            raise ArgumentError(f"--root {root}: no such folder")
        try:
            ds = ShardDataset(read_manifest(manifest), root)
        except Exception as e:  # pyarrow's errors for a file that is not parquet, missing columns
            raise ArgumentError(f"--manifest {manifest}: not a readable shard manifest "
                                f"({type(e).__name__}: {' '.join(str(e).split())[:300]})") from None
        used = min(len(ds), recipe.train_images or len(ds))
        self._check_batch(used, f"--manifest {manifest}: {len(ds)} items"
                          + (f" ({used} used: train_images)" if used < len(ds) else ""), recipe)
        return ds

    @staticmethod
    def _check_batch(n: int, what: str, recipe: recipes.Pretrain) -> None:
        if n < recipe.batch_size:
            raise ArgumentError(f"{what}, fewer than one batch of {recipe.batch_size} images (batch_size; "
                                "a smaller one: --set batch_size=N)")


@dataclass
class PretrainJob:
    """A picklable SwAV pretraining job: ``job()`` trains (resuming), ``job.checkpoint()`` requeues.

    Inside a multi-task job (SLURM, submitit, torchrun) ``__call__`` initialises
    torch.distributed from the environment with :func:`facelib.dist.init_distributed`.
    """

    recipe: recipes.Pretrain
    out_dir: str
    data: DataSpec = field(default_factory=DataSpec)
    num_workers: int = 0
    amp: str = "auto"
    log_every: int = 10
    until_epoch: int | None = None
    resume: bool = True
    progress: bool = True
    trusted: bool = False

    def __call__(self) -> dict[str, Any]:
        from .. import dist as fdist
        env = fdist.detect()
        if env.world_size > 1:
            fdist.init_distributed()
        result = train(self.recipe, self.data.build(self.recipe), self.out_dir,
                       resume=self.resume,
                       amp=self.amp, num_workers=self.num_workers, log_every=self.log_every,
                       until_epoch=self.until_epoch, progress=self.progress, trusted=self.trusted)
        return {"out_dir": str(result.out_dir), "epochs_done": result.epochs_done,
                "finished": result.finished, "final_loss": result.final_loss,
                "seconds": result.seconds, "unreadable_items": result.unreadable_items}

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's pre-emption hook: resubmit the same job, which resumes from the last epoch."""
        import submitit
        return submitit.helpers.DelayedSubmission(dataclasses.replace(self, resume=True))


def run_jobs(jobs: list[PretrainJob], processes: int = 1, nice: int = 10) -> list[dict[str, Any]]:
    """Run independent CPU pretraining ``jobs`` on this machine, up to ``processes`` at once.

    With ``processes`` > 1 each job runs in its own forked process; a job with loader workers
    trains on one torch thread beside them (:func:`train`). The first job keeps its priority and
    every other runs ``nice`` steps lower (``os.nice``): put the longest first, and the others
    take the cores it leaves idle instead of slowing it. Measured, page 03's demo SwAV (first)
    and supervised runs on 2 cores: 156 s at once with the supervised run niced by 10, 183 s at
    once without, 121 s + 70 s one after the other; the trunks are the same to the byte. With more
    jobs than ``processes`` a worker runs several, and stays niced after its first lowered one.
    Every job is waited for; the first failure is then raised.

    Returns:
        Each job's result (:meth:`PretrainJob.__call__`), in the order of ``jobs``.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if processes == 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, wait

    with ProcessPoolExecutor(max_workers=min(processes, len(jobs)), mp_context=mp.get_context("fork")) as pool:
        futures = [pool.submit(_run_niced, job, nice if i else 0) for i, job in enumerate(jobs)]
        wait(futures)
    return [f.result() for f in futures]


def _run_niced(job: PretrainJob, increment: int) -> dict[str, Any]:
    """``job()`` in a worker process whose priority is first lowered by ``increment``."""
    if increment:
        os.nice(increment)
    return job()


def job_from_args(args: argparse.Namespace) -> PretrainJob:
    """The :class:`PretrainJob` a ``facelib pretrain`` command line describes."""
    recipe = recipes.pretrain(args.profile, **key_values(args.set, "--set"))
    kind = args.data or ("shards" if args.manifest or args.profile == "paper" else "synthetic")
    out_dir = args.out or f"results/swav_{args.profile}"
    workers = args.workers
    if workers is None:  # one CPU per loader worker beside the trainer; the demo's crops on a 2nd core
        workers = 1 if args.profile == "demo" else max(0, recipes.launch(args.profile).cpus_per_task - 1)
    return PretrainJob(recipe=recipe, out_dir=str(out_dir),
                       data=DataSpec(kind=kind, manifest=args.manifest, root=args.root),
                       num_workers=workers, amp=args.amp, log_every=args.log_every,
                       until_epoch=args.until_epoch, resume=args.resume, progress=not args.no_progress,
                       trusted=args.trusted)


def _run(args: argparse.Namespace) -> int:
    job = job_from_args(args)
    submit = getattr(args, "submit", None)  # the launcher may plug a submission path in here
    if submit is not None:
        return int(submit(job, args) or 0)
    if args.dry_run:
        return _dry_run_here(job, args)
    result = job()
    print(json.dumps(result))
    return 0


def _dry_run_here(job: PretrainJob, args: argparse.Namespace) -> int:
    """``--dry-run`` without ``--cluster``: what would train in this process; nothing runs."""
    from ..launch.dry_run import local_plan

    r, problems = job.recipe, []
    try:
        n = len(job.data.build(r))  # type: ignore[arg-type]
        used = min(n, r.train_images or n)
        data = f"{job.data.kind}: {n} images, {used} used, {used // r.batch_size} batches per epoch"
    except InputError as e:
        data, problems = f"{job.data.kind}: cannot be used", [str(e)]
    if job.data.kind == "shards" and job.data.manifest:
        data += f" (manifest {job.data.manifest}, root {job.data.root})"
    state, problem = checkpoint.resume_state(Path(job.out_dir) / CHECKPOINT_NAME, job.resume, job.trusted)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(local_plan("facelib pretrain", [
        ("recipe", f"{args.profile} profile, SwAV {r.arch}, {r.epochs} epochs"
                   + (f" (stopping after {job.until_epoch})" if job.until_epoch else "")
                   + f", batch {r.batch_size}, crops {list(r.nmb_crops)} x {list(r.size_crops)} px, "
                   f"{r.num_prototypes} prototypes"),
        ("overrides", ", ".join(args.set or []) or "none (--set)"),
        ("data", data),
        ("out dir", f"{job.out_dir} ({'exists' if Path(job.out_dir).exists() else 'would be created'})"),
        ("resume", state),
        ("process", f"this one, on {device}, amp {job.amp}, {job.num_workers} loader worker(s)"),
    ]))
    problems += [problem] if problem else []
    if problems:
        raise ArgumentError("the run would stop: " + "; ".join(problems))
    return 0


def add_cli(subparsers: Any) -> None:
    """``facelib pretrain``: SwAV pretraining with a named recipe and validated overrides."""
    p = subparsers.add_parser("pretrain", help="SwAV pretraining (supplement 1.1)",
                              description="SwAV pretraining with the paper's recipe (supplement 1.1).")
    p.add_argument("--profile", choices=recipes.PROFILES, default="demo",
                   help="recipe profile (default demo: CPU, minutes)")
    p.add_argument("--out", default=None, help="run directory (default results/swav_<profile>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe field, e.g. --set epochs=3 --set size_crops=[64,32]")
    p.add_argument("--data", choices=("synthetic", "shards"), default=None,
                   help="image source (default: synthetic in demo, shards in paper or with --manifest)")
    p.add_argument("--manifest", default=None, help="parquet manifest of preprocessed shards")
    p.add_argument("--root", default=None, help="folder the manifest's shard paths are relative to")
    p.add_argument("--workers", type=int, default=None,
                   help="data loader workers per process (default: 1 in demo, cpus_per_task - 1 in paper)")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="mixed precision (auto: the recipe's, where the hardware supports it)")
    p.add_argument("--log-every", type=int, default=10, help="iterations between log records")
    p.add_argument("--until-epoch", type=int, default=None,
                   help="stop after this many epochs (continue later with --resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--trusted", action="store_true", help=checkpoint.TRUSTED_HELP + " (the checkpoint in --out)")
    p.set_defaults(func=_run)
    # --cluster NAME [--dry-run]: plan or submit through facelib.launch (sets args.submit).
    from .. import launch
    launch.add_cluster_arguments(p, submit_hook=launch.submit_from_cli)
