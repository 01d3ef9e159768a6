"""The fine-tuning loop shared by the five tasks, with exact resume (supplement 1.2 and 1.3).

:func:`finetune` trains one (task, data regime, initialisation) run and evaluates it. It writes
to ``results/<run>/``:

* ``run.json``: task, regime, initialisation (file and detected layout), profile, data, sizes;
* ``recipe.json``: the resolved task recipe and the shared conventions;
* ``log.jsonl``: one JSON record per iteration (``kind: "iter"``) and per epoch
  (``kind: "epoch"``: mean loss, samples/s of the input pipeline and of the training step);
* ``checkpoint.pth``: written atomically after every epoch (model, optimiser, epoch);
* ``metrics.json`` (flat ``name: number``, read by :func:`facelib.results.collect`) and
  ``eval.npz`` (per-image errors, CED and ROC curves) once training is over.

Exact resume: the order of the training images in epoch ``e`` comes from a generator seeded by
``(seed, e)`` and each sample's augmentation from ``(seed, e, index)``, never from global
state, so a run killed at any point and restarted with ``resume=True`` continues from its last
checkpoint and ends with the same weights and metrics as an uninterrupted one (on the same
machine and thread count). The optimiser comes from the recipe (SGD with momentum or Adam with
its betas) at the printed constant learning rate (``recipes.Finetune.lr_schedule``).

The training subset of a regime is :func:`facelib.data.sampling.draw_order`'s fixed, nested,
label-agnostic prefix (with the 1/4-of-identities rule for recognition). Command line:
``facelib finetune TASK --init ... --regime ...``. Shown in ``notebooks/04_face_recognition.py``
... ``08_3d_reconstruction.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from facelib import checkpoint, recipes
from facelib.data import sampling
from facelib.data.cached import CachedDataset
from facelib.tasks import backbone as B
from facelib.tasks.au import AUTask
from facelib.tasks.base import Task
from facelib.tasks.emotion import EmotionTask
from facelib.tasks.landmarks import LandmarksTask
from facelib.tasks.recognition import RecognitionTask
from facelib.tasks.recon3d import Recon3DTask

__all__ = [
    "TASK_CLASSES",
    "DataSpec",
    "FinetuneError",
    "StaleRunError",
    "NonFiniteLossError",
    "make_task",
    "training_subset",
    "finetune",
    "run_grid",
    "mean_baseline",
    "KEY_METRICS",
    "versus_baseline",
    "verdict",
    "precise_bn",
    "collect_runs",
    "FinetuneJob",
    "page_grid",
    "submit_grid",
    "read_log",
    "run_name",
    "add_cli",
]

TASK_CLASSES: dict[str, type[Task]] = {
    "recognition": RecognitionTask,
    "landmarks": LandmarksTask,
    "au": AUTask,
    "emotion": EmotionTask,
    "recon3d": Recon3DTask,
}
CHECKPOINT = "checkpoint.pth"
#: :func:`run_grid`'s (the demo pages') checkpoint interval: a run of the demo grid lasts seconds
#: to a minute, so it is checkpointed at its end (or every minute); see ``finetune(checkpoint_every_s)``.
GRID_CHECKPOINT_EVERY_S = 60.0
LOG = "log.jsonl"


class FinetuneError(RuntimeError):
    """A run cannot start or continue (existing run without ``resume``, changed settings)."""


class StaleRunError(FinetuneError):
    """A run directory holds a run made with another recipe or other settings."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the last checkpoint written is intact."""


@dataclass(frozen=True)
class DataSpec:
    """Where a task's labelled faces come from.

    ``kind="synthetic"``: :class:`facelib.data.synth.SynthFaces` rendered at ``size``; the test
    set uses ``test_seed``, so its persons are not the training persons (held-out identities
    for recognition). ``n_train`` / ``n_test`` images, ``num_identities`` persons per set.

    ``kind="reader"``: a dataset in its native format read by :mod:`facelib.data.readers`
    (``reader`` under ``root`` for training, ``test_reader`` under ``test_root`` for testing,
    e.g. ``w300lp`` / ``aflw2000`` for 3D); ``split`` / ``test_split`` keep only records of that
    split when both sets come from one reader (e.g. AffectNet's ``train`` / ``val``).
    """

    kind: str = "synthetic"
    n_train: int = 300
    n_test: int = 100
    size: int = 96
    num_identities: int = 20
    seed: int = 0
    test_seed: int = 1
    reader: str | None = None
    root: str | None = None
    test_reader: str | None = None
    test_root: str | None = None
    split: str | None = None
    test_split: str | None = None

    def build(self, task: str | None = None) -> tuple[Any, Any]:
        """(train, test) datasets whose items are ``(image, labels)`` (``task`` checks the labels)."""
        if self.kind == "synthetic":
            return (_synthetic_set(self.n_train, self.seed, self.size, self.num_identities),
                    _synthetic_set(self.n_test, self.test_seed, self.size, self.num_identities))
        if self.kind == "reader":
            from facelib.data import readers
            from facelib.tasks.records import RecordFaces
            if not (self.reader and self.root and self.test_reader and self.test_root):
                raise ValueError("reader data needs reader, root, test_reader and test_root")
            sets = []
            ids: dict[Any, int] = {}
            for name, root, split in ((self.reader, self.root, self.split),
                                      (self.test_reader, self.test_root, self.test_split)):
                recs = [r for r in readers.read(name, root) if split is None or r.split == split]
                if not recs:
                    raise ValueError(f"reader {name!r} found no records under {root}"
                                     + (f" in split {split!r}" if split else ""))
                sets.append(RecordFaces(recs, root, task, identities=ids))
                ids = sets[0].identities
            return sets[0], sets[1]
        raise ValueError(f"unknown data kind {self.kind!r}; choose 'synthetic' or 'reader'")

    def identities(self, split: str = "train") -> np.ndarray:
        """Identity of each image of a synthetic split (item ``i`` shows person ``i % num_identities``)."""
        n = self.n_train if split == "train" else self.n_test
        return np.arange(n) % self.num_identities


@functools.lru_cache(maxsize=4)
def _synthetic_set(n: int, seed: int, size: int, num_identities: int) -> CachedDataset:
    """The synthetic set of these parameters, rendered once and shared by the runs of a page
    (the last 4 kept)."""
    from facelib.data.synth import SynthFaces
    return CachedDataset(SynthFaces(n, seed, size, num_identities))


def _file_digest(path: str | os.PathLike[str] | None) -> str | None:
    """SHA-256 of a weights file (None for none): a run resumes only from the same initialisation,
    even when a pretraining rewrites its trunk under the same name."""
    if path is None or not Path(path).is_file():
        return None
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_name(task: str, init: str, regime: float) -> str:
    """``task/init/<pct>pct``, as :class:`facelib.launch.GridPoint` names runs."""
    return f"{task}/{init}/{f'{regime * 100:g}'.replace('.', 'p')}pct"


def make_task(name: str, profile: str = "demo", overrides: dict[str, Any] | None = None,
              num_classes: int = 0) -> Task:
    """The :class:`Task` of ``name`` with the recipe of ``profile`` (+ validated ``overrides``)."""
    if name not in TASK_CLASSES:
        raise FinetuneError(f"unknown task {name!r}; choose one of {', '.join(TASK_CLASSES)}")
    recipe = recipes.task(name, profile, **(overrides or {}))
    pre = recipes.pretrain(profile)
    kwargs: dict[str, Any] = {"num_classes": num_classes} if name == "recognition" else {}
    return TASK_CLASSES[name](recipe, recipes.finetune(profile), pre.mean, pre.std, **kwargs)


def training_subset(task: str, data: DataSpec, regime: float, train_set: Any = None) -> np.ndarray:
    """Indices of the training images of ``regime``: a prefix of the fixed permutation (1.3).

    ``train_set`` gives the size and identities of reader data (synthetic sets follow ``data``).
    """
    s = recipes.sampling()
    n = data.n_train if train_set is None or data.kind == "synthetic" else len(train_set)
    ids = None
    if task == "recognition":
        ids = data.identities("train") if data.kind == "synthetic" else train_set.identity_array()
    try:
        order = sampling.draw_order(n, s.seed, ids, rule_regime=s.recognition_identity_rule_regime,
                                    min_identity_fraction=s.recognition_min_identity_fraction)
    except ValueError:
        # A set too small for the 2 % identity rule: larger regimes still have their plain
        # prefixes (the rule only concerns the 2 % subset); smaller ones are refused.
        if regime <= s.recognition_identity_rule_regime:
            raise
        order = sampling.draw_order(n, s.seed)
    k = sampling.regime_sizes(n, [regime])[float(regime)]
    return np.sort(order[:k])


class _Samples(torch.utils.data.Dataset):
    """Prepared samples of one epoch: item ``j`` is image ``indices[j]`` augmented with seed (seed, epoch, index)."""

    def __init__(self, data: Any, task: Task, indices: np.ndarray, seed: int, epoch: int | None) -> None:
        self.data, self.task, self.indices, self.seed, self.epoch = data, task, indices, seed, epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        i = int(self.indices[j])
        image, labels = self.data[i]
        rng = None if self.epoch is None else np.random.default_rng([self.seed, self.epoch, i])
        x, target, _ = self.task.prepare(image, labels, rng)
        return x, target


def _batches(n: int, batch_size: int) -> list[list[int]]:
    """Consecutive batches; a last batch of one sample joins the previous one (BatchNorm needs 2)."""
    out = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    if len(out) > 1 and len(out[-1]) == 1:
        out[-2] += out.pop()
    return out


def _loader(ds: _Samples, batch_size: int, num_workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(ds, batch_sampler=_batches(len(ds), batch_size),
                                       num_workers=num_workers)


def _optimizer(recipe: Any, params: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
    """The recipe's optimiser; the fused implementation (the same update in one kernel per step:
    on the CPU a ResNet-18 Adam step takes about a quarter of the time of the per-tensor loop)."""
    if recipe.optimizer == "SGD":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, fused=True)
    if recipe.optimizer == "Adam":
        return torch.optim.Adam(params, lr=recipe.lr, betas=tuple(recipe.betas),
                                weight_decay=recipe.weight_decay, fused=True)
    raise FinetuneError(f"unknown optimizer {recipe.optimizer!r} in the {recipe.name} recipe")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _write_json(obj: Any, path: Path) -> None:
    checkpoint.atomic_write_text(json.dumps(_json_safe(obj), indent=1, sort_keys=False) + "\n", path)


def read_log(run_dir: str | os.PathLike[str], kind: str | None = None) -> list[dict[str, Any]]:
    """The records of ``run_dir/log.jsonl`` (optionally only ``kind`` "iter" or "epoch")."""
    path = Path(run_dir) / LOG
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in recs if kind is None or r.get("kind") == kind]


def _truncate_log(path: Path, start_epoch: int) -> None:
    """Drop records of epochs >= ``start_epoch`` (written after the checkpoint we resume from)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("epoch", -1) < start_epoch]
    checkpoint.atomic_write_text("".join(line + "\n" for line in keep), path)


def _collate_targets(batch: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([np.asarray(b[k]) for b in batch]) for k in batch[0]}


@torch.no_grad()
def precise_bn(model: nn.Module, task: Task, data: Any, indices: np.ndarray, batch_size: int,
               max_batches: int, num_workers: int, device: torch.device) -> int:
    """Recompute every BatchNorm's statistics as plain averages over training batches ("precise BN").

    Running averages (momentum 0.1) need hundreds of steps to settle; a short run evaluated with
    them sees features that differ from those it was trained on. The batches use the evaluation
    crops of ``indices`` in order; the model's weights are untouched.

    Returns:
        The number of batches used (0: nothing done).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or max_batches <= 0:
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = plain mean over the batches
    model.train()
    used = 0
    for x, _ in _loader(_Samples(data, task, indices, 0, None), batch_size, num_workers):
        model(x.to(device))
        used += 1
        if used >= max_batches:
            break
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return used


def _evaluate(model: nn.Module, task: Task, test: Any, batch_size: int, num_workers: int,
              device: torch.device) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    model.eval()
    preds: list[dict[str, np.ndarray]] = []
    targets: list[dict[str, Tensor]] = []
    loader = _loader(_Samples(test, task, np.arange(len(test)), 0, None), batch_size, num_workers)
    with torch.no_grad():
        for x, target in loader:
            preds.append(task.predict(model(x.to(device))))
            targets.append({k: v.numpy() for k, v in target.items()})
    pred = {k: np.concatenate([p[k] for p in preds]) for k in preds[0]}
    tgt = {k: np.concatenate([t[k] for t in targets]) for k in targets[0]}
    return task.evaluate(pred, tgt)


def _recipe_record(task: Task) -> dict[str, Any]:
    return {"task": dataclasses.asdict(task.recipe), "finetune": dataclasses.asdict(task.common)}


def _check_same_recipe(out: Path, task: Task) -> None:
    path = out / "recipe.json"
    if path.exists() and _json_safe(_recipe_record(task)) != json.loads(path.read_text()):
        raise StaleRunError(f"{out}: the recipe differs from the one the run started with ({path}); "
                            "start a new run directory")


def _check_same_run(out: Path, want: dict[str, Any]) -> None:
    have = json.loads((out / "run.json").read_text())
    diff = {k: (have.get(k), v) for k, v in _json_safe(want).items() if have.get(k) != v}
    if diff:
        raise StaleRunError(f"{out}: the run was made with other settings ({diff}, as (run, asked)); "
                            "start a new run directory")


def finetune(task_name: str, run_dir: str | os.PathLike[str], *, profile: str = "demo",
             init: str = "random", init_path: str | os.PathLike[str] | None = None,
             regime: float = 1.0, data: DataSpec | None = None,
             overrides: dict[str, Any] | None = None, resume: bool = False,
             until_epoch: int | None = None, num_workers: int = 0, progress: bool = True,
             trusted: bool = False, log_every: int = 1, checkpoint_every_s: float = 0.0,
             device: str | torch.device | None = None) -> dict[str, Any] | None:
    """Fine-tune ``task_name`` from ``init`` on the ``regime`` subset, then evaluate.

    Args:
        task_name: one of :data:`TASK_CLASSES`.
        run_dir: ``results/<run>/`` (see :func:`run_name`).
        profile: recipe profile (``demo`` or ``paper``); the backbone is that profile's
            pretraining ``arch``.
        init, init_path: initialisation (:data:`facelib.tasks.backbone.INITS`) and its file.
        regime: fraction of the training labels (1.0, 0.1, 0.02, 0.01 ...).
        data: where the faces come from (default :class:`DataSpec`).
        overrides: validated recipe overrides (e.g. ``{"epochs": 2}``).
        resume: continue from ``run_dir/checkpoint.pth``; without it an existing run is an
            error. A finished run (``metrics.json`` present) returns its metrics.
        until_epoch: stop after this many epochs in total (a later ``resume=True`` continues).
        num_workers: DataLoader workers for the input pipeline.
        progress: tqdm bar over epochs.
        trusted: allow non-tensor objects in ``init_path``.
        log_every: iterations between ``iter`` log records.
        checkpoint_every_s: write the checkpoint after an epoch only when this many seconds
            have passed since the last one (0: after every epoch), and always after the last
            epoch of the call. A ResNet-18 checkpoint with Adam's state is 140 MB (0.7-2.8 s
            to write on the demo machine): the demo's short epochs would spend more time
            writing than training. Resuming stays exact; an interruption loses at most
            this much training.
        device: default CUDA when available, else CPU.

    Returns:
        The metrics, or ``None`` when stopped by ``until_epoch`` before the last epoch.
    """
    data = data or DataSpec()
    out = Path(run_dir)
    ckpt_path, log_path, metrics_path = out / CHECKPOINT, out / LOG, out / "metrics.json"
    if (ckpt_path.exists() or metrics_path.exists()) and not resume:
        raise FinetuneError(f"{out} already holds a run: pass resume=True (--resume) to continue it, "
                            "or choose another run directory")
    if (ckpt_path.exists() or metrics_path.exists()) and (out / "run.json").exists():
        _check_same_run(out, {"task": task_name, "init": init, "regime": float(regime), "profile": profile,
                              "data": dataclasses.asdict(data), "init_digest": _file_digest(init_path)})
    if metrics_path.exists() and resume:
        _check_same_recipe(out, make_task(task_name, profile, overrides, 2))
        return json.loads(metrics_path.read_text())
    train_ds, test_ds = data.build(task_name)
    subset = training_subset(task_name, data, regime, train_ds)
    num_classes = 0
    if task_name == "recognition":
        num_classes = int(data.num_identities) if data.kind == "synthetic" else len(train_ds.identities)
    task = make_task(task_name, profile, overrides, num_classes=num_classes)
    recipe, common = task.recipe, task.common
    arch = recipes.pretrain(profile).arch
    trunk, init_info = B.build_trunk(arch, init, init_path, seed=common.seed, trusted=trusted)
    channels, side = B.feature_shape(trunk, task.input_size)
    torch.manual_seed(common.seed)
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    head = task.build_head(channels, side)
    if task.wants_train_targets():  # e.g. the head starts as the mean predictor (recipe head_init)
        task.init_head(head, _collate_targets([task.prepare(*train_ds[int(i)], None)[1] for i in subset]))
    model = B.FaceModel(trunk, head).to(dev)
    opt = _optimizer(recipe, model.parameters())

    recipe_record = _recipe_record(task)
    info = {"task": task_name, "init": init, "init_path": init_info["path"], "init_layout": init_info["layout"],
            "init_digest": _file_digest(init_path),
            "regime": float(regime), "regime_name": sampling.regime_name(regime), "profile": profile,
            "arch": arch, "device": str(dev), "n_train": int(len(subset)), "n_test": len(test_ds),
            "data": dataclasses.asdict(data), "epochs": recipe.epochs, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "host": platform.node()}
    start_epoch = 0
    if ckpt_path.exists():
        state = checkpoint.load(ckpt_path, trusted=True)
        _check_same_recipe(out, task)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])
        _truncate_log(log_path, start_epoch)
    else:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(recipe_record, out / "recipe.json")
        log_path.unlink(missing_ok=True)
    _write_json({**info, "status": "running"}, out / "run.json")

    stop = recipe.epochs if until_epoch is None else min(recipe.epochs, until_epoch)
    bar = tqdm(range(start_epoch, stop), desc=f"{task_name}/{init}/{sampling.regime_name(regime)}",
               disable=not progress, leave=False)
    t_saved = time.perf_counter()
    it = start_epoch * len(_batches(len(subset), recipe.batch_size))
    for epoch in bar:
        model.train()
        order = np.random.default_rng([common.seed, epoch]).permutation(subset)
        loader = _loader(_Samples(train_ds, task, order, common.seed, epoch), recipe.batch_size, num_workers)
        t_epoch, t_data, t_step, n_seen, losses = time.perf_counter(), 0.0, 0.0, 0, []
        t0 = time.perf_counter()
        with log_path.open("a") as log:
            for x, target in loader:
                x, target = x.to(dev), {k: v.to(dev) for k, v in target.items()}
                t1 = time.perf_counter()
                out_ = model(x)
                loss = task.loss(model, out_, target)
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(f"{out}: loss {loss.item()} at epoch {epoch}, iteration {it}; "
                                             "the last checkpoint is intact")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                t2 = time.perf_counter()
                t_data, t_step = t_data + (t1 - t0), t_step + (t2 - t1)
                n_seen += len(x)
                losses.append(float(loss.item()))
                if it % log_every == 0:
                    log.write(json.dumps({"kind": "iter", "epoch": epoch, "iter": it, "loss": losses[-1],
                                          "lr": opt.param_groups[0]["lr"]}) + "\n")
                it += 1
                t0 = time.perf_counter()
            rec = {"kind": "epoch", "epoch": epoch, "loss": float(np.mean(losses)), "images": n_seen,
                   "seconds": time.perf_counter() - t_epoch,
                   "data_samples_per_s": n_seen / max(t_data, 1e-9),
                   "step_samples_per_s": n_seen / max(t_step, 1e-9)}
            log.write(json.dumps(rec) + "\n")
        bar.set_postfix(loss=f"{rec['loss']:.4f}")
        if epoch + 1 < stop and time.perf_counter() - t_saved < checkpoint_every_s:
            continue
        t_saved = time.perf_counter()
        checkpoint.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                         "task": task_name}, ckpt_path)
    if stop < recipe.epochs:
        return None

    bn_batches = precise_bn(model, task, train_ds, subset, recipe.batch_size, common.precise_bn_batches,
                            num_workers, dev)
    metrics_flat, arrays = _evaluate(model, task, test_ds, recipe.batch_size, num_workers, dev)
    metrics_flat["precise_bn_batches"] = float(bn_batches)
    tmp = out / ".eval.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, out / "eval.npz")
    _write_json(metrics_flat, metrics_path)
    _write_json({**info, "status": "finished"}, out / "run.json")
    return json.loads(metrics_path.read_text())


def mean_baseline(task_name: str, regime: float = 1.0, *, profile: str = "demo",
                  data: DataSpec | None = None) -> dict[str, Any]:
    """Metrics of the trivial predictor that outputs the mean training target (majority class).

    The scale against which a fine-tuned model is read: the mean shape for landmarks and 3D,
    the mean intensities for AUs, the mean valence/arousal and the most frequent expression.
    Training targets come from the evaluation crops of the ``regime`` subset; no training.
    For recognition, chance: always answering the more frequent of "same" / "different" on the
    test pairs (``verification_acc``, 0.5 on balanced pairs).
    """
    data = data or DataSpec()
    train_ds, test_ds = data.build(task_name)
    if task_name == "recognition":
        from facelib.tasks.recognition import image_pairs
        ids = data.identities("test") if data.kind == "synthetic" else test_ds.identity_array()
        _, same = image_pairs(ids)
        return {"verification_acc": float(max(same.mean(), 1 - same.mean())), "num_pairs": float(len(same))}
    task = make_task(task_name, profile, num_classes=2)
    subset = training_subset(task_name, data, regime, train_ds)
    train = _collate_targets([task.prepare(*train_ds[int(i)], None)[1] for i in subset])
    test = _collate_targets([task.prepare(*test_ds[i], None)[1] for i in range(len(test_ds))])
    flat, _ = task.evaluate(task.mean_prediction(train, len(test_ds)), test)
    return flat


#: Each task's headline metrics and their direction (+1: higher is better, -1: lower is better).
KEY_METRICS: dict[str, tuple[tuple[str, int], ...]] = {
    "recognition": (("verification_acc", +1),),
    "landmarks": (("nme_interocular", -1), ("nme_box", -1)),
    "au": (("icc_mean", +1), ("mae_mean", -1)),
    "emotion": (("acc", +1), ("valence_ccc", +1), ("arousal_ccc", +1)),
    "recon3d": (("nme_box", -1), ("nme_box_3d", -1)),
}
#: What :func:`verdict` calls a clear margin over the baseline: errors (NME, MAE) at least 5 %
#: lower than the baseline's; accuracies, ICC and CCC at least 0.05 higher (in their units).
CLEAR_RELATIVE_ERROR_GAIN = 0.05
CLEAR_ABSOLUTE_GAIN = 0.05


def versus_baseline(task_name: str, grid: "pd.DataFrame", baseline: dict[str, Any]) -> "pd.DataFrame":
    """Each run's headline metrics (:data:`KEY_METRICS`) beside the trivial baseline's.

    Args:
        grid: rows of :func:`run_grid` / :func:`collect_runs`.
        baseline: :func:`mean_baseline` of the same data, or one per regime name
            (``{"100%": {...}, "10%": {...}}``: each run is read against its regime's).

    Returns:
        One row per run and metric: ``init, regime, metric, value, baseline, better`` (bool: on
        the right side of the baseline), ``gain`` (the improvement, in the metric's units:
        positive when better) and ``clear`` (bool: by at least the clear margin,
        :data:`CLEAR_RELATIVE_ERROR_GAIN` of the baseline for errors, :data:`CLEAR_ABSOLUTE_GAIN`
        otherwise).
    """
    import pandas as pd

    per_regime = bool(baseline) and all(isinstance(v, dict) for v in baseline.values())
    rows = []
    for r in grid.to_dict("records"):
        base = baseline.get(r["regime"], {}) if per_regime else baseline
        for metric, sign in KEY_METRICS[task_name]:
            if metric not in r or metric not in base:
                continue
            v, b = float(r[metric]), float(base[metric])
            gain = sign * (v - b) if math.isfinite(v) and math.isfinite(b) else float("nan")
            need = CLEAR_RELATIVE_ERROR_GAIN * abs(b) if sign < 0 else CLEAR_ABSOLUTE_GAIN
            rows.append({"init": r["init"], "regime": r["regime"], "metric": metric, "value": v,
                         "baseline": b, "better": bool(gain > 0), "gain": gain, "clear": bool(gain >= need)})
    return pd.DataFrame(rows, columns=["init", "regime", "metric", "value", "baseline", "better", "gain", "clear"])


def verdict(task_name: str, table: "pd.DataFrame") -> str:
    """One Markdown line per regime from :func:`versus_baseline`: which runs beat the baseline.

    Each run and headline metric is put in one of three groups: better by a clear margin,
    better by less, not better.
    """
    if not len(table):
        return "No finished runs to compare with the baseline."
    lines = []
    for regime, part in table.groupby("regime", sort=False):
        fmt = lambda rows: "; ".join(f"{r.init} ({r.metric} {r.value:.3f} vs {r.baseline:.3f})" for r in rows)
        clear = [r for r in part.itertuples() if r.clear]
        slight = [r for r in part.itertuples() if r.better and not r.clear]
        worse = [r for r in part.itertuples() if not r.better]
        if len(clear) == len(part):
            lines.append(f"- **{regime}**: every run beats the trivial baseline by a clear margin on every "
                         f"headline metric: {fmt(clear)}.")
            continue
        parts = [f"not better than the trivial baseline: {fmt(worse)}" if worse else "",
                 f"better by less than a clear margin: {fmt(slight)}" if slight else "",
                 f"clearly better: {fmt(clear)}" if clear else ""]
        lines.append(f"- **{regime}**: " + ". ".join(p[0].upper() + p[1:] for p in parts if p) + ".")
    return "\n".join(lines)


def run_grid(task_name: str, inits: dict[str, str | os.PathLike[str] | None], regimes: Sequence[float],
             results_root: str | os.PathLike[str], *, profile: str = "demo", data: DataSpec | None = None,
             overrides: dict[str, Any] | None = None, progress: bool = True,
             stale: str = "error") -> "pd.DataFrame":
    """Fine-tune ``task_name`` for every regime x initialisation, in this process (the demo's grid).

    Runs go to ``results_root/<task>/<init>/<pct>pct`` and resume: a finished run is read back,
    an interrupted one continues. (The paper profile submits the same runs as SLURM job arrays:
    :func:`facelib.launch.submit_grid` with :class:`FinetuneJob`.)

    Args:
        inits: initialisation name -> weights file (``None`` for ``random``).
        regimes: fractions of the training labels.
        stale: what to do with a run made with another recipe or other settings: ``"error"``
            (:class:`FinetuneError`), or ``"rerun"``: move it to ``<run>.stale`` (replacing an
            older one) and train afresh (the book's pages, after a code or recipe change).

    Returns:
        One row per run: ``run, task, init, regime, n_train, seconds`` and the metrics.
    """
    if stale not in ("error", "rerun"):
        raise ValueError(f"stale must be 'error' or 'rerun', got {stale!r}")
    import pandas as pd

    rows = []
    for regime in regimes:
        for init, path in inits.items():
            run = run_name(task_name, init, regime)
            kw = dict(profile=profile, init=init, init_path=path, regime=regime, data=data, overrides=overrides,
                      resume=True, progress=progress, checkpoint_every_s=GRID_CHECKPOINT_EVERY_S)
            try:
                m = finetune(task_name, Path(results_root) / run, **kw)
            except StaleRunError:
                if stale == "error":
                    raise
                old = Path(results_root) / run
                moved = old.with_name(old.name + ".stale")
                if moved.exists():
                    shutil.rmtree(moved)
                os.replace(old, moved)
                print(f"{run}: made with another recipe or settings; moved to {moved.name}, training afresh")
                m = finetune(task_name, old, **kw)
            info = json.loads((Path(results_root) / run / "run.json").read_text())
            seconds = sum(r["seconds"] for r in read_log(Path(results_root) / run, "epoch"))
            rows.append({"run": run, "task": task_name, "init": init, "regime": info["regime_name"],
                         "n_train": info["n_train"], "seconds": round(seconds, 1), **(m or {})})
    return pd.DataFrame(rows)


def collect_runs(results_root: str | os.PathLike[str], task_name: str | None = None,
                 profile: str | None = None) -> "pd.DataFrame":
    """Finished runs under ``results_root/<task>/<init>/<pct>pct`` (e.g. written by SLURM jobs).

    Runs moved aside as ``<pct>pct.stale`` by :func:`run_grid` are left out, and with
    ``profile`` so are runs of another recipe profile (a paper page never shows demo runs that
    share its results folder).

    Returns:
        One row per run with ``metrics.json``: ``run, task, init, regime, n_train, seconds``
        and the metrics (as :func:`run_grid`); empty if there are none.
    """
    import pandas as pd

    root = Path(results_root)
    pattern = f"{task_name}/*/*/metrics.json" if task_name else "*/*/*/metrics.json"
    rows = []
    for mfile in sorted(root.glob(pattern)):
        run_dir = mfile.parent
        if run_dir.name.endswith(".stale") or not (run_dir / "run.json").exists():
            continue
        info = json.loads((run_dir / "run.json").read_text())
        if profile is not None and info.get("profile") != profile:
            continue
        seconds = sum(r["seconds"] for r in read_log(run_dir, "epoch"))
        rows.append({"run": str(run_dir.relative_to(root)), "task": info["task"], "init": info["init"],
                     "regime": info["regime_name"], "n_train": info["n_train"], "seconds": round(seconds, 1),
                     **json.loads(mfile.read_text())})
    return pd.DataFrame(rows)


def page_inits(profile: str, results_root: str | os.PathLike[str], repo_root: str | os.PathLike[str], *,
               swav_trunk: str | None = None, imagenet_weights: str | None = None,
               authors_weights: str | None = None) -> dict[str, str | None]:
    """The initialisations a task page compares (notebooks/04-08).

    ``random`` always; ``ours`` from ``swav_trunk`` or page 03's ``results/swav_<profile>/trunk.pth``
    (in the demo, a small trunk is pretrained here when page 03 has not run); ``imagenet`` and
    ``authors`` only when their local weights files are given (nothing downloads).
    """
    inits: dict[str, str | None] = {"random": None}
    trunk = Path(swav_trunk) if swav_trunk else Path(repo_root) / "results" / f"swav_{profile}" / "trunk.pth"
    if not trunk.is_file() and profile == "demo":
        trunk = B.demo_swav_trunk(Path(results_root) / "swav_demo_small")
    inits["ours"] = str(trunk)
    if imagenet_weights:
        inits["imagenet"] = imagenet_weights
    if authors_weights:
        inits["authors"] = authors_weights
    return inits


def page_grid(task_name: str, inits: dict[str, str | None], regimes: Sequence[float],
              results_root: str | os.PathLike[str], *, profile: str, data: DataSpec | None = None,
              overrides: dict[str, Any] | None = None, cluster: Any = None,
              wait_s: float | None = None) -> "pd.DataFrame":
    """A task page's grid of regime x initialisation runs, by profile and ``cluster``.

    * ``cluster=None``: the demo trains the grid in this process (:func:`run_grid`); the paper
      profile only reads back the finished runs (:func:`collect_runs`) and says how to submit.
    * ``cluster`` = a profile of ``slurm/clusters.yaml``: the runs that are neither finished nor
      queued are submitted as one job array (:func:`submit_grid`, one GPU per run), without
      waiting (except on the in-process ``debug`` profile, or up to ``wait_s`` seconds); then the
      finished ones are read back. Rerunning the page picks up the runs that finished since.

    Returns:
        As :func:`run_grid` / :func:`collect_runs`.
    """
    if cluster is None and profile == "demo":
        return run_grid(task_name, inits, regimes, results_root, profile=profile, data=data,
                        overrides=overrides, stale="rerun", progress=False)
    if cluster is not None:
        submit_grid(task_name, inits, regimes, results_root, profile=profile, on=cluster, data=data,
                    overrides=overrides, wait_s=wait_s, stale="rerun")
    grid = collect_runs(results_root, task_name, profile)
    want = {run_name(task_name, init, r) for init in inits for r in regimes}
    done = len(want & set(grid["run"])) if len(grid) else 0
    print(f"{len(grid)} finished runs under {Path(results_root) / task_name} ({done} of this page's "
          f"{len(want)})" + ("" if cluster is not None else
                             f"; submit the missing ones by setting the page's `cluster` parameter to a "
                             f"profile of slurm/clusters.yaml, or with `facelib finetune {task_name} "
                             f"--profile {profile} --grid --init ... --cluster NAME`"))
    return grid


def _finetune_job_factory(task_name: str, inits: dict[str, str | None], *, profile: str,
                          data: DataSpec | None, overrides: dict[str, Any] | None,
                          num_workers: int | None) -> Any:
    def make(point: Any, run_dir: Path) -> FinetuneJob:
        return FinetuneJob(task_name, str(Path(run_dir).absolute()), profile=profile, init=point.init,
                           init_path=None if inits[point.init] is None else str(inits[point.init]),
                           regime=point.regime, data=data or DataSpec(), overrides=dict(overrides or {}),
                           num_workers=num_workers)
    return make


def _stale_reason(out: Path, task_name: str, init: str, regime: float, *, profile: str, data: DataSpec,
                  overrides: dict[str, Any] | None) -> str | None:
    """Why the run in ``out`` was made with other settings or another recipe; None if it was not
    (or holds no run yet): the checks :func:`finetune` makes before it resumes."""
    if not (out / "run.json").exists() or not ((out / CHECKPOINT).exists() or (out / "metrics.json").exists()):
        return None
    try:
        _check_same_run(out, {"task": task_name, "init": init, "regime": float(regime), "profile": profile,
                              "data": dataclasses.asdict(data)})
        _check_same_recipe(out, make_task(task_name, profile, overrides, 2))
    except StaleRunError as exc:
        return str(exc)
    return None


def submit_grid(task_name: str, inits: dict[str, str | os.PathLike[str] | None], regimes: Sequence[float],
                results_root: str | os.PathLike[str], *, profile: str, on: Any,
                data: DataSpec | None = None, overrides: dict[str, Any] | None = None,
                dry_run: bool = False, wait_s: float | None = None,
                num_workers: int | None = None, stale: str = "error") -> list[Any]:
    """Submit the regime x initialisation grid of ``task_name`` as one job array on cluster ``on``.

    Each element is a :class:`FinetuneJob` of one run (one GPU, the recipe's whole batch:
    ``recipes.Launch.finetune_gpus_per_run``) writing to ``results_root/<task>/<init>/<pct>pct``.
    Runs that finished (``metrics.json``) or whose job is still queued or running are not
    submitted again. Prints the array's job ids and where the results will appear.

    A run directory made with other settings or another recipe (not queued or running) is an
    error (``stale="error"``), or is moved to ``<run>.stale`` and submitted afresh
    (``stale="rerun"``, the pages, as :func:`run_grid`): a page never shows stale numbers.

    Args:
        inits: initialisation name -> weights file (``None`` for ``random``).
        on: a cluster profile name of ``slurm/clusters.yaml`` or a :class:`facelib.launch.Cluster`.
        dry_run: print the runs it would submit and skip and the array's sbatch script; submit nothing.
        wait_s: wait at most this long for the submitted runs (None: return at once). Jobs of the
            ``debug`` profile run in this process, now.
        num_workers: DataLoader workers of each run (None: the job's CPUs minus one, see
            :class:`FinetuneJob`).
        stale: ``"error"`` or ``"rerun"`` (see above).

    Returns:
        The submitted submitit jobs, in grid order (empty after a dry run or when all are settled).
    """
    from facelib import launch

    if stale not in ("error", "rerun"):
        raise ValueError(f"stale must be 'error' or 'rerun', got {stale!r}")
    data = data or DataSpec()

    clus = launch.cluster(on)
    root = Path(results_root)
    inits = {k: (None if v is None else str(v)) for k, v in inits.items()}
    grid = launch.finetune_grid(list(inits), tasks=[task_name], regimes=list(regimes))
    for init, path in inits.items():  # a job that can only fail is not submitted
        problem = (f"init {init!r} has no weights file" if path is None and init != "random" else
                   f"init {init!r}: weights file {path} does not exist (nothing is downloaded)"
                   if path is not None and not Path(path).is_file() else None)
        if problem and dry_run:
            print(f"warning: {problem}: its runs would fail")
        elif problem:
            raise FinetuneError(f"{problem}; give it, or leave the initialisation out of the grid")
    active = launch.active_runs([p.run for p in grid], root)  # their jobs write there: leave them be
    for p in grid:
        why = None if p.run in active else _stale_reason(root / p.run, task_name, p.init, p.regime,
                                                         profile=profile, data=data, overrides=overrides)
        if why is None:
            continue
        if dry_run:
            print(f"warning: {why}" + ("; it would be moved aside and submitted afresh" if stale == "rerun" else
                                       "; submitting would stop here"))
        elif stale == "error":
            raise StaleRunError(f"{why} (or let the page move it aside: stale='rerun')")
        else:
            old = root / p.run
            moved = old.with_name(old.name + ".stale")
            if moved.exists():
                shutil.rmtree(moved)
            os.replace(old, moved)
            print(f"{p.run}: made with another recipe or settings; moved to {moved.name}, submitted afresh")
    recipe = recipes.task(task_name, profile, **(overrides or {}))
    kw = dict(profile=profile, on=clus, results_root=root, name="finetune", task_recipes={task_name: recipe})
    if dry_run:
        for gp in launch.plan_grid(grid, **kw):
            print(gp.summary())
        return []
    jobs = launch.submit_grid(_finetune_job_factory(task_name, inits, profile=profile, data=data,
                                                    overrides=overrides, num_workers=num_workers),
                              grid, **kw).get(task_name, [])
    n_settled = len(grid) - len(jobs)
    if jobs:
        array_id = str(jobs[0].job_id).split("_")[0]
        print(f"{task_name}: submitted {len(jobs)} run(s) as job array {array_id} on {clus.name} "
              f"({', '.join(str(j.job_id) for j in jobs)}); {n_settled} finished or queued run(s) not "
              f"submitted again; results appear in {root.absolute()}/{task_name}/<init>/<pct>pct; "
              f"`facelib jobs status --results {root}` follows them")
    else:
        print(f"{task_name}: all {len(grid)} run(s) of the grid are finished or queued on "
              f"{clus.name}; nothing submitted")
    if jobs and (clus.executor == "debug" or wait_s is not None):
        deadline = time.monotonic() + (wait_s if wait_s is not None else float("inf"))
        for job in jobs:
            launch.wait(job, max(deadline - time.monotonic(), 0.0))
    return jobs


@dataclass
class FinetuneJob:
    """A picklable fine-tuning run for :mod:`facelib.launch`: ``job()`` trains (resuming).

    One process on one GPU with the recipe's whole batch (``recipes.Launch.finetune_gpus_per_run``;
    :func:`facelib.launch.resources` asks exactly that), so a job of several tasks is refused.
    ``checkpoint()`` is submitit's pre-emption hook: it resubmits the same job, which resumes
    from the last finished epoch. Starts, ends and failures go to ``run_dir/events.jsonl``.

    ``num_workers=None``: the job's CPUs (``SLURM_CPUS_PER_TASK``) minus one DataLoader
    workers under SLURM, none elsewhere; the augmentation of every sample is seeded by its
    index, so the worker count does not change the result.
    """

    task: str
    run_dir: str
    profile: str = "paper"
    init: str = "random"
    init_path: str | None = None
    regime: float = 1.0
    data: DataSpec = field(default_factory=DataSpec)
    overrides: dict[str, Any] = field(default_factory=dict)
    num_workers: int | None = None

    def workers(self) -> int:
        if self.num_workers is not None:
            return self.num_workers
        cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
        return max(int(cpus) - 1, 0) if cpus.isdigit() else 0

    def __call__(self) -> dict[str, Any] | None:
        from facelib import dist as fdist
        from facelib import launch
        world = fdist.detect().world_size
        if world > 1:
            raise FinetuneError(f"{self.run_dir}: this job has {world} tasks, but a fine-tuning run is one "
                                "process on one GPU with the recipe's whole batch: submit it through "
                                "facelib.launch.resources (recipes.Launch.finetune_gpus_per_run = 1)")
        launch.record_event(self.run_dir, "start", task=self.task, init=self.init, regime=self.regime)
        try:
            out = finetune(self.task, self.run_dir, profile=self.profile, init=self.init,
                           init_path=self.init_path, regime=self.regime, data=self.data,
                           overrides=self.overrides, resume=True, num_workers=self.workers(),
                           progress=False)
        except Exception as exc:
            launch.record_event(self.run_dir, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        launch.record_event(self.run_dir, "done")
        return out

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit
        from facelib import launch
        launch.record_event(self.run_dir, "checkpoint")
        return submitit.helpers.DelayedSubmission(dataclasses.replace(self))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def _parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    import yaml
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FinetuneError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _init_spec(text: str) -> tuple[str, str | None]:
    """``--init NAME`` or ``--init NAME=PATH`` -> (name, path)."""
    name, sep, path = text.partition("=")
    if name not in B.INITS:
        raise argparse.ArgumentTypeError(f"unknown initialisation {name!r} in {text!r}; choose one of "
                                         f"{', '.join(B.INITS)} (optionally NAME=WEIGHTS_FILE)")
    if sep and not path:
        raise argparse.ArgumentTypeError(f"--init {text!r}: no weights file after '='")
    return name, (path or None)


def _cli_points(args: argparse.Namespace) -> tuple[dict[str, str | None], list[float]] | str:
    """(inits, regimes) of the command line, or an error message."""
    inits: dict[str, str | None] = {}
    for name, path in args.init or [("random", None)]:
        if name in inits:
            return f"--init {name} is given twice"
        inits[name] = path
    if args.init_path:
        if len(inits) > 1:
            return "--init-path goes with a single --init; for several write --init NAME=PATH"
        [(name, path)] = inits.items()
        if path is not None:
            return f"--init {name}={path} and --init-path {args.init_path}: give the weights file once"
        inits[name] = args.init_path
    regimes = list(args.regime) if args.regime else (list(recipes.sampling().regimes) if args.grid else [1.0])
    if len(set(regimes)) != len(regimes):
        return f"--regime lists a value twice: {regimes}"
    return inits, regimes


def _run(args: argparse.Namespace) -> int:
    if args.reader:
        data = DataSpec(kind="reader", reader=args.reader, root=args.root, test_reader=args.test_reader or args.reader,
                        test_root=args.test_root or args.root, split=args.split, test_split=args.test_split)
    else:
        data = DataSpec(n_train=args.n_train, n_test=args.n_test, size=args.size,
                        num_identities=args.identities, seed=args.seed)
    points = _cli_points(args)
    if isinstance(points, str):
        print(f"error: {points}", file=sys.stderr)
        return 2
    inits, regimes = points
    overrides = _parse_sets(args.set)
    if args.grid or len(inits) * len(regimes) > 1:
        return _run_grid_cli(args, inits, regimes, data, overrides)
    [(init, init_path)], [regime] = inits.items(), regimes
    run_dir = args.run_dir or str(Path(args.results) / run_name(args.task, init, regime))
    if args.cluster:
        from facelib import launch
        recipe = recipes.task(args.task, args.profile, **overrides)
        job = FinetuneJob(args.task, str(Path(run_dir).absolute()), profile=args.profile, init=init,
                          init_path=init_path, regime=regime, data=data, overrides=overrides,
                          num_workers=args.workers)
        return launch.launch_from_args(args, job, args.task, run_dir, recipe=recipe)
    metrics_ = finetune(args.task, run_dir, profile=args.profile, init=init, init_path=init_path,
                        regime=regime, data=data, overrides=overrides, resume=args.resume,
                        until_epoch=args.until_epoch, num_workers=args.workers or 0, trusted=args.trusted)
    if metrics_ is None:
        print(f"stopped after epoch {args.until_epoch}; continue with --resume ({run_dir})")
    else:
        print(json.dumps(metrics_, indent=1))
    return 0


def _run_grid_cli(args: argparse.Namespace, inits: dict[str, str | None], regimes: list[float],
                  data: DataSpec, overrides: dict[str, Any]) -> int:
    """``facelib finetune TASK --grid`` (or several --init / --regime): a job array, or in-process."""
    for flag, given in (("--run-dir", args.run_dir), ("--until-epoch", args.until_epoch),
                        ("--trusted", args.trusted)):
        if given:
            print(f"error: {flag} is for a single run; a grid writes each run to "
                  f"{args.results}/{args.task}/<init>/<pct>pct and resumes it", file=sys.stderr)
            return 2
    if not args.cluster:
        if args.dry_run:
            print("error: --dry-run shows a submission: add --cluster NAME", file=sys.stderr)
            return 2
        table = run_grid(args.task, inits, regimes, args.results, profile=args.profile, data=data,
                         overrides=overrides)
        print(table.to_string(index=False))
        return 0
    from facelib import launch
    clus = launch.cluster(args.cluster, **launch._parse_sets(args.cluster_set))
    jobs = submit_grid(args.task, inits, regimes, args.results, profile=args.profile, on=clus, data=data,
                       overrides=overrides, dry_run=args.dry_run, wait_s=args.wait, num_workers=args.workers)
    if jobs and (args.wait is not None or clus.executor == "debug"):
        table = collect_runs(args.results, args.task, args.profile)
        print(table.to_string(index=False) if len(table) else "no finished runs")
    return 0


def add_cli(subparsers: Any) -> None:
    """``facelib finetune TASK --init ... --regime ...`` (one run, or a grid with ``--grid``)."""
    p = subparsers.add_parser(
        "finetune", help="fine-tune a backbone on a downstream task (supplement 1.2)",
        description=__doc__.split("\n\n")[0] + " One run, or with --grid (or several --init / --regime) "
        "the grid of data regimes x initialisations: in this process, or with --cluster as one job "
        "array of one-GPU runs that skips the finished and queued ones (--dry-run prints its sbatch "
        "script).")
    p.add_argument("task", choices=sorted(TASK_CLASSES))
    p.add_argument("--init", action="append", type=_init_spec, metavar="NAME[=PATH]",
                   help=f"backbone initialisation ({', '.join(B.INITS)}; default random), with its "
                        "weights file after '='; repeat it for a grid")
    p.add_argument("--init-path", default=None, help="weights file of the single --init (local; nothing downloads)")
    p.add_argument("--regime", type=float, nargs="+", default=None, metavar="FRACTION",
                   help="fraction(s) of the training labels (e.g. 0.1; default 1.0, or with --grid "
                        "every regime of supplement 1.3)")
    p.add_argument("--grid", action="store_true",
                   help="the grid of every --regime (default: recipes.sampling().regimes) x every --init")
    p.add_argument("--profile", choices=recipes.PROFILES, default="demo")
    p.add_argument("--run-dir", default=None, help="explicit run directory of a single run (overrides --results)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run directory")
    p.add_argument("--until-epoch", type=int, default=None, help="stop after this many epochs")
    p.add_argument("--n-train", type=int, default=300, help="synthetic training faces")
    p.add_argument("--n-test", type=int, default=100, help="synthetic test faces (other persons)")
    p.add_argument("--size", type=int, default=96, help="side of the rendered synthetic faces")
    p.add_argument("--identities", type=int, default=20, help="persons per synthetic set")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic training set")
    p.add_argument("--reader", default=None, help="a dataset in its native format (facelib.data.readers) instead of synthetic faces")
    p.add_argument("--root", default=None, help="root of the --reader training set")
    p.add_argument("--test-reader", default=None, help="reader of the test set (default: --reader)")
    p.add_argument("--test-root", default=None, help="root of the test set (default: --root)")
    p.add_argument("--split", default=None, help="keep only training records of this split")
    p.add_argument("--test-split", default=None, help="keep only test records of this split")
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers (default: none in this process; a submitted run uses its CPUs minus one)")
    p.add_argument("--trusted", action="store_true", help="allow pickled objects in --init-path")
    from facelib import launch
    # --cluster NAME submits the run (or the grid, as a job array) as a job (--dry-run prints
    # its sbatch script); --results is the results root: runs go to RESULTS/<task>/<init>/<pct>pct
    launch.add_cluster_arguments(p)
    p.set_defaults(func=_run)
