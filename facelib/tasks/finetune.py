"""The fine-tuning loop shared by the five tasks, with exact resume (supplement 1.2 and 1.3).

:func:`finetune` trains one (task, data regime, initialisation) run and evaluates it. It writes
to ``results/<run>/``:

* ``run.json``: task, regime, initialisation (file and detected layout), profile, data, sizes;
* ``recipe.json``: the resolved task recipe and the shared conventions;
* ``log.jsonl``: one JSON record per iteration (``kind: "iter"``) and per epoch
  (``kind: "epoch"``: mean loss, samples/s of the input pipeline and of the training step);
* ``checkpoint.pth``: written atomically after every epoch (model, optimiser, epoch);
* ``metrics.json`` (flat ``name: number``, read by :func:`facelib.results.collect`) and
  ``eval.npz`` (per-image errors, CED and ROC curves) once training is over;
* ``bad_items.jsonl``: images that could not be read. Over ``recipes.Finetune.max_unreadable_items``
  (default 0) the run stops with an error naming the file; up to it a training image is replaced
  by the next of the epoch, a test image is left out, and their number is in the epoch records
  and in ``metrics.json`` (``unreadable_items``).

Checkpoints hold tensors and plain values and load with ``torch.load(weights_only=True)``; a
checkpoint or initialisation file that asks for other Python objects is refused unless
``trusted`` (``--trusted``).

Exact resume: the order of the training images in epoch ``e`` comes from a generator seeded by
``(seed, e)`` and each sample's augmentation from ``(seed, e, index)``, never from global
state, so a run killed at any point and restarted with ``resume=True`` continues from its last
checkpoint and ends with the same weights and metrics as an uninterrupted one (on the same
machine and thread count). The optimiser comes from the recipe (SGD with momentum or Adam with
its betas) at the printed constant learning rate (``recipes.Finetune.lr_schedule``).

The training subset of a regime is :func:`facelib.data.sampling.draw_order`'s fixed, nested,
label-agnostic prefix (with the 1/4-of-identities rule for recognition). This module is one
run; the grid of runs (in this process or as SLURM job arrays) is :mod:`facelib.tasks.grid`,
the trivial baseline a run is read against :mod:`facelib.tasks.baseline`, and the command line
``facelib finetune TASK --init ... --regime ...`` :mod:`facelib.tasks.cli`. Shown in
``notebooks/04_face_recognition.py`` ... ``08_3d_reconstruction.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import platform
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from facelib import checkpoint, recipes
from facelib.data import sampling
from facelib.data.cached import CachedDataset
from facelib.data.unreadable import READ_ERRORS, UnreadableItems
from facelib.errors import InputError
from facelib.tasks import backbone as B
from facelib.tasks.au import AUTask
from facelib.tasks.base import Task
from facelib.tasks.emotion import EmotionTask
from facelib.tasks.landmarks import LandmarksTask
from facelib.tasks.recognition import RecognitionTask
from facelib.tasks.recon3d import Recon3DTask

__all__ = [
    "TASK_CLASSES",
    "CHECKPOINT",
    "LOG",
    "DataSpec",
    "FinetuneError",
    "StaleRunError",
    "NonFiniteLossError",
    "make_task",
    "training_subset",
    "collate_targets",
    "finetune",
    "stale_reason",
    "precise_bn",
    "read_log",
]

TASK_CLASSES: dict[str, type[Task]] = {
    "recognition": RecognitionTask,
    "landmarks": LandmarksTask,
    "au": AUTask,
    "emotion": EmotionTask,
    "recon3d": Recon3DTask,
}
CHECKPOINT = "checkpoint.pth"
LOG = "log.jsonl"


class FinetuneError(InputError, RuntimeError):
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
    seed: int = 2          # other persons than the pretraining faces (set 0) and page 03's probes
    test_seed: int = 3
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


def make_task(name: str, profile: str = "demo", overrides: dict[str, Any] | None = None,
              num_classes: int = 0, seed: int | None = None) -> Task:
    """The :class:`Task` of ``name`` with the recipe of ``profile`` (+ validated ``overrides``);
    ``seed`` replaces the fine-tuning seed (``recipes.Finetune.seed``: head initialisation, data
    order, augmentation and the random trunk).

    An override that names a field of the shared :class:`facelib.recipes.Finetune` and not of
    the task's recipe (e.g. ``max_unreadable_items``) goes to the shared one.
    """
    if name not in TASK_CLASSES:
        raise FinetuneError(f"unknown task {name!r}; choose one of {', '.join(TASK_CLASSES)}")
    own = {f.name for f in dataclasses.fields(recipes.TASKS[name])}
    shared = {f.name for f in dataclasses.fields(recipes.Finetune)} - own
    overrides = dict(overrides or {})
    common = {k: overrides.pop(k) for k in list(overrides) if k in shared}
    recipe = recipes.task(name, profile, **overrides)
    pre = recipes.pretrain(profile)
    if seed is not None:
        common["seed"] = int(seed)
    kwargs: dict[str, Any] = {"num_classes": num_classes} if name == "recognition" else {}
    return TASK_CLASSES[name](recipe, recipes.finetune(profile, **common), pre.mean, pre.std, **kwargs)


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


#: Evaluation crops and targets of in-memory datasets, per dataset (dropped with it) and task recipe.
_EVAL_CROPS: "weakref.WeakKeyDictionary[Any, dict[Any, Any]]" = weakref.WeakKeyDictionary()


class _Samples(torch.utils.data.Dataset):
    """Prepared samples of one epoch: item ``j`` is image ``indices[j]`` augmented with seed (seed, epoch, index).

    An image that cannot be read is recorded in ``unreadable`` (None: the error propagates) and
    replaced by the next readable one of ``indices`` (``substitute``, training), or left out of
    its batch (evaluation: the item is ``None``, which :func:`_collate` drops).
    """

    def __init__(self, data: Any, task: Task, indices: np.ndarray, seed: int, epoch: int | None,
                 unreadable: UnreadableItems | None = None, substitute: bool = True) -> None:
        self.data, self.task, self.indices, self.seed, self.epoch = data, task, indices, seed, epoch
        self.unreadable, self.substitute = unreadable, substitute
        # evaluation crops of an in-memory set are the same for every run of a page: made once
        self.cache = (_EVAL_CROPS.setdefault(data, {}), (type(task).__name__, repr(task.recipe), repr(task.common))) \
            if epoch is None and isinstance(data, CachedDataset) else None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        for k in range(len(self.indices)):
            i = int(self.indices[(j + k) % len(self.indices)])
            try:
                image, labels = self.data[i]
            except READ_ERRORS as e:
                if self.unreadable is None:
                    raise
                self.unreadable.record(self.data, i, e)
                if not self.substitute:
                    return None
                continue
            if self.cache is not None and (self.cache[1], i) in self.cache[0]:
                return self.cache[0][(self.cache[1], i)]
            rng = None if self.epoch is None else np.random.default_rng([self.seed, self.epoch, i])
            x, target, _ = self.task.prepare(image, labels, rng)
            if self.cache is not None:
                self.cache[0][(self.cache[1], i)] = (x, target)  # read-only use: collation copies
            return x, target
        raise FinetuneError(f"no image of the {len(self.indices)} asked for could be read "
                            f"(see {self.unreadable.path if self.unreadable else 'the errors above'})")


def _collate(batch: list[Any]) -> Any:
    """The default collation of the items that could be read (None: none could)."""
    batch = [b for b in batch if b is not None]
    return torch.utils.data.default_collate(batch) if batch else None


def _readable(data: Any, indices: Sequence[int], unreadable: UnreadableItems) -> Iterator[Any]:
    """The items ``data[i]`` of ``indices`` that can be read (the others recorded)."""
    for i in indices:
        try:
            yield data[int(i)]
        except READ_ERRORS as e:
            unreadable.record(data, int(i), e)


def _batches(n: int, batch_size: int) -> list[list[int]]:
    """Consecutive batches; a last batch of one sample joins the previous one (BatchNorm needs 2)."""
    out = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    if len(out) > 1 and len(out[-1]) == 1:
        out[-2] += out.pop()
    return out


def _loader(ds: _Samples, batch_size: int, num_workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(ds, batch_sampler=_batches(len(ds), batch_size),
                                       num_workers=num_workers, collate_fn=_collate)


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


def collate_targets(batch: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-sample target dicts stacked into one dict of arrays (the head's and the baseline's targets)."""
    return {k: np.stack([np.asarray(b[k]) for b in batch]) for k in batch[0]}


@torch.no_grad()
def precise_bn(model: nn.Module, task: Task, data: Any, indices: np.ndarray, batch_size: int,
               max_batches: int, num_workers: int, device: torch.device,
               unreadable: UnreadableItems | None = None) -> int:
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
    for x, _ in _loader(_Samples(data, task, indices, 0, None, unreadable), batch_size, num_workers):
        model(x.to(device, memory_format=_memory_format(device)))
        used += 1
        if used >= max_batches:
            break
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return used


def _memory_format(device: torch.device) -> torch.memory_format:
    """NHWC on CPU, as in SwAV pretraining: oneDNN's convolutions run faster on it. Measured on
    the demo's narrow ResNet-18 (fp32, one thread): 14 % less time per step of the trunk alone at
    64 px, 2-6 % less per whole demo run (landmarks, AU), where data and heads take the rest."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def _evaluate(model: nn.Module, task: Task, test: Any, batch_size: int, num_workers: int,
              device: torch.device, unreadable: UnreadableItems | None = None,
              ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    model.eval()
    preds: list[dict[str, np.ndarray]] = []
    targets: list[dict[str, Tensor]] = []
    loader = _loader(_Samples(test, task, np.arange(len(test)), 0, None, unreadable, substitute=False),
                     batch_size, num_workers)
    with torch.no_grad():
        for batch in loader:
            if unreadable is not None:
                unreadable.check("in the test set")
            if batch is None:
                continue
            x, target = batch
            preds.append(task.predict(model(x.to(device, memory_format=_memory_format(device)))))
            targets.append({k: v.numpy() for k, v in target.items()})
    pred = {k: np.concatenate([p[k] for p in preds]) for k in preds[0]}
    tgt = {k: np.concatenate([t[k] for t in targets]) for k in targets[0]}
    return task.evaluate(pred, tgt)


def _recipe_record(task: Task) -> dict[str, Any]:
    return {"task": dataclasses.asdict(task.recipe), "finetune": dataclasses.asdict(task.common)}


def _same_run_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A recipe record without the fields a run may change when it resumes."""
    record = json.loads(json.dumps(record))
    record.get("finetune", {}).pop("max_unreadable_items", None)
    return record


def _check_same_recipe(out: Path, task: Task) -> None:
    path = out / "recipe.json"
    if path.exists() and (_same_run_fields(_json_safe(_recipe_record(task)))
                          != _same_run_fields(json.loads(path.read_text()))):
        raise StaleRunError(f"{out}: the recipe differs from the one the run started with ({path}); "
                            "start a new run directory")


def _check_same_run(out: Path, want: dict[str, Any]) -> None:
    have = json.loads((out / "run.json").read_text())
    diff = {k: (have.get(k), v) for k, v in _json_safe(want).items() if have.get(k) != v}
    if diff:
        raise StaleRunError(f"{out}: the run was made with other settings ({diff}, as (run, asked)); "
                            "start a new run directory")


def stale_reason(out: Path, task_name: str, init: str, regime: float, *, profile: str, data: DataSpec,
                 overrides: dict[str, Any] | None, seed: int | None = None) -> str | None:
    """Why the run in ``out`` was made with other settings or another recipe; None if it was not
    (or holds no run yet): the checks :func:`finetune` makes before it resumes (without the
    initialisation file's digest). A grid asks it before it submits a run."""
    if not (out / "run.json").exists() or not ((out / CHECKPOINT).exists() or (out / "metrics.json").exists()):
        return None
    try:
        _check_same_run(out, {"task": task_name, "init": init, "regime": float(regime), "profile": profile,
                              "data": dataclasses.asdict(data),
                              "seed": int(recipes.finetune(profile).seed if seed is None else seed)})
        _check_same_recipe(out, make_task(task_name, profile, overrides, 2, seed))
    except StaleRunError as exc:
        return str(exc)
    return None


def finetune(task_name: str, run_dir: str | os.PathLike[str], *, profile: str = "demo",
             init: str = "random", init_path: str | os.PathLike[str] | None = None,
             regime: float = 1.0, data: DataSpec | None = None,
             overrides: dict[str, Any] | None = None, resume: bool = False,
             until_epoch: int | None = None, num_workers: int = 0, progress: bool = True,
             trusted: bool = False, log_every: int = 1, checkpoint_every_s: float = 0.0,
             device: str | torch.device | None = None, seed: int | None = None) -> dict[str, Any] | None:
    """Fine-tune ``task_name`` from ``init`` on the ``regime`` subset, then evaluate.

    Args:
        task_name: one of :data:`TASK_CLASSES`.
        run_dir: ``results/<run>/`` (see :func:`facelib.tasks.grid.run_name`).
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
        trusted: unpickle any object in ``init_path`` and in the checkpoint resumed from (the
            user's ``--trusted``: such a file can run code). Default: tensors and plain values
            only; anything else is refused, naming what the file asks for.
        log_every: iterations between ``iter`` log records.
        checkpoint_every_s: write the checkpoint after an epoch only when this many seconds
            have passed since the last one (0: after every epoch), and always after the last
            epoch of the call. A ResNet-18 checkpoint with Adam's state is 140 MB (0.7-2.8 s
            to write on the demo machine): the demo's short epochs would spend more time
            writing than training. Resuming stays exact; an interruption loses at most
            this much training.
        device: default CUDA when available, else CPU.
        seed: the fine-tuning seed (default ``recipes.finetune(profile).seed``): the random
            trunk, the head's initialisation, the data order and the augmentation. The grid
            runs every cell with each of ``recipes.finetune(profile).seeds``.

    Returns:
        The metrics, or ``None`` when stopped by ``until_epoch`` before the last epoch.
    """
    data = data or DataSpec()
    out = Path(run_dir)
    ckpt_path, log_path, metrics_path = out / CHECKPOINT, out / LOG, out / "metrics.json"
    if (ckpt_path.exists() or metrics_path.exists()) and not resume:
        raise FinetuneError(f"{out} already holds a run: pass resume=True (--resume) to continue it, "
                            "or choose another run directory")
    seed = int(recipes.finetune(profile).seed if seed is None else seed)
    if (ckpt_path.exists() or metrics_path.exists()) and (out / "run.json").exists():
        _check_same_run(out, {"task": task_name, "init": init, "regime": float(regime), "profile": profile,
                              "data": dataclasses.asdict(data), "init_digest": _file_digest(init_path),
                              "seed": seed})
    if metrics_path.exists() and resume:
        _check_same_recipe(out, make_task(task_name, profile, overrides, 2, seed))
        return json.loads(metrics_path.read_text())
    train_ds, test_ds = data.build(task_name)
    subset = training_subset(task_name, data, regime, train_ds)
    num_classes = 0
    if task_name == "recognition":
        num_classes = int(data.num_identities) if data.kind == "synthetic" else len(train_ds.identities)
    task = make_task(task_name, profile, overrides, num_classes=num_classes, seed=seed)
    recipe, common = task.recipe, task.common
    unreadable = UnreadableItems(out / "bad_items.jsonl", common.max_unreadable_items, "image",
                                 "max_unreadable_items")
    if not ckpt_path.exists():
        unreadable.reset()  # a fresh run
    arch, width = recipes.pretrain(profile).arch, recipes.pretrain(profile).width
    trunk, init_info = B.build_trunk(arch, init, init_path, seed=common.seed, trusted=trusted, width=width)
    channels, side = B.feature_shape(trunk, task.input_size)
    torch.manual_seed(common.seed)
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    head = task.build_head(channels, side)
    if task.wants_train_targets():  # e.g. the head starts as the mean predictor (recipe head_init)
        task.init_head(head, collate_targets([task.eval_targets(item[1])
                                              for item in _readable(train_ds, subset, unreadable)]))
        unreadable.check("in the training set")
    model = B.FaceModel(trunk, head).to(dev, memory_format=_memory_format(dev))
    opt = _optimizer(recipe, model.parameters())

    recipe_record = _recipe_record(task)
    info = {"task": task_name, "init": init, "init_path": init_info["path"], "init_layout": init_info["layout"],
            "init_digest": _file_digest(init_path),
            "regime": float(regime), "regime_name": sampling.regime_name(regime), "profile": profile,
            "seed": seed,
            "arch": arch, "device": str(dev), "n_train": int(len(subset)), "n_test": len(test_ds),
            "data": dataclasses.asdict(data), "epochs": recipes.regime_epochs(recipe, regime), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "host": platform.node()}
    start_epoch = 0
    if ckpt_path.exists():
        state = checkpoint.load(ckpt_path, trusted=trusted)
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

    n_epochs = recipes.regime_epochs(recipe, regime)
    stop = n_epochs if until_epoch is None else min(n_epochs, until_epoch)
    bar = tqdm(range(start_epoch, stop), desc=f"{task_name}/{init}/{sampling.regime_name(regime)}",
               disable=not progress, leave=False)
    t_saved = time.perf_counter()
    it = start_epoch * len(_batches(len(subset), recipe.batch_size))
    for epoch in bar:
        model.train()
        order = np.random.default_rng([common.seed, epoch]).permutation(subset)
        loader = _loader(_Samples(train_ds, task, order, common.seed, epoch, unreadable), recipe.batch_size,
                         num_workers)
        t_epoch, t_data, t_step, n_seen, losses = time.perf_counter(), 0.0, 0.0, 0, []
        t0 = time.perf_counter()
        with log_path.open("a") as log:
            for x, target in loader:
                unreadable.check(f"by epoch {epoch}; the last checkpoint is intact")
                x = x.to(dev, memory_format=_memory_format(dev))
                target = {k: v.to(dev) for k, v in target.items()}
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
                   "step_samples_per_s": n_seen / max(t_step, 1e-9), "unreadable_items": unreadable.count()}
            log.write(json.dumps(rec) + "\n")
        bar.set_postfix(loss=f"{rec['loss']:.4f}")
        if epoch + 1 < stop and time.perf_counter() - t_saved < checkpoint_every_s:
            continue
        t_saved = time.perf_counter()
        checkpoint.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                         "task": task_name}, ckpt_path)
    if stop < n_epochs:
        return None

    bn_batches = precise_bn(model, task, train_ds, subset, recipe.batch_size, common.precise_bn_batches,
                            num_workers, dev, unreadable)
    metrics_flat, arrays = _evaluate(model, task, test_ds, recipe.batch_size, num_workers, dev, unreadable)
    metrics_flat["precise_bn_batches"] = float(bn_batches)
    metrics_flat["unreadable_items"] = float(unreadable.check("in evaluation"))
    tmp = out / ".eval.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, out / "eval.npz")
    _write_json(metrics_flat, metrics_path)
    _write_json({**info, "status": "finished"}, out / "run.json")
    return json.loads(metrics_path.read_text())
