"""Real datasets as task inputs: :class:`FaceRecord` lists -> ``(image, labels)`` items (supplement 1.2).

The readers of :mod:`facelib.data.readers` yield :class:`facelib.data.record.FaceRecord`;
:class:`RecordFaces` decodes each record's image safely (:func:`facelib.images.load_image`) and
returns the labels in the layout of :func:`facelib.data.synth.render`, which every task's
:meth:`~facelib.tasks.base.Task.prepare` reads. Identities become contiguous integers (in
order of first appearance); a record without a box gets the bounds of its landmarks.

Used by :class:`facelib.tasks.finetune.DataSpec` (``kind="reader"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch.utils.data

from facelib import images
from facelib.data.record import FaceRecord

__all__ = ["RecordFaces", "MissingLabelError"]


class MissingLabelError(ValueError):
    """A record lacks what a task needs (image, landmarks, AU intensities ...); the message names it."""


_TASK_FIELDS = {
    "recognition": ("identity", "landmarks_5"),
    "landmarks": ("landmarks_2d",),
    "au": ("au",),
    "emotion": ("valence", "arousal", "expression"),
    "recon3d": ("landmarks_3d",),
}


class RecordFaces(torch.utils.data.Dataset):
    """Items ``(image (H, W, 3) uint8 RGB, labels dict)`` of a list of records.

    Args:
        records: the records (e.g. ``list(readers.read("w300", root))``).
        root: folder the records' relative image paths start from.
        task: if given, records lacking the task's labels are an error at construction
            (naming the first one), so a long run does not fail hours later.
        identities: identity -> integer map to reuse (e.g. the training set's); new identities
            get the next integers.
    """

    def __init__(self, records: Sequence[FaceRecord], root: str | Path, task: str | None = None,
                 identities: dict[Any, int] | None = None) -> None:
        self.records = list(records)
        self.root = Path(root)
        self.identities: dict[Any, int] = dict(identities or {})
        for r in self.records:
            if r.identity is not None and r.identity not in self.identities:
                self.identities[r.identity] = len(self.identities)
        if task is not None:
            for i, r in enumerate(self.records):
                missing = [f for f in _TASK_FIELDS[task] if getattr(r, f) is None]
                if task == "recon3d" and missing and r.landmarks_2d is not None and len(r.landmarks_2d) == 68:
                    missing = []  # 300W-LP: the 2D projections of the 68 3D points (z unknown)
                if r.path is None:
                    missing.append("path (no image on disk)")
                if missing:
                    raise MissingLabelError(f"record {i} ({r.dataset}: {r.path}) lacks {', '.join(missing)} "
                                            f"needed by the {task} task")

    def __len__(self) -> int:
        return len(self.records)

    def describe(self, i: int) -> str:
        """Record ``i`` in words: its dataset and image file (named in errors)."""
        r = self.records[i]
        path = None if r.path is None else (Path(r.path) if Path(r.path).is_absolute() else self.root / r.path)
        return f"{r.dataset} record {i}, image {path}"

    def identity_array(self) -> np.ndarray:
        """(N,) integer identity of each record (-1 where unknown)."""
        return np.array([self.identities.get(r.identity, -1) for r in self.records])

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, Any]]:
        r = self.records[i]
        if r.path is None:
            raise MissingLabelError(f"record {i} ({r.dataset}) has no image on disk")
        path = Path(r.path)
        image = images.load_image(path if path.is_absolute() else self.root / path)
        labels: dict[str, Any] = {}
        for key in ("landmarks_2d", "landmarks_5", "landmarks_3d", "pose", "au", "valence", "arousal",
                    "expression"):
            v = getattr(r, key)
            if v is not None:
                labels[key] = v
        if r.identity is not None:
            labels["identity"] = self.identities[r.identity]
        box = r.box
        if box is None:
            pts = r.landmarks_2d if r.landmarks_2d is not None else r.landmarks_3d
            if pts is None:
                h, w = image.shape[:2]
                box = np.array([0, 0, w, h], np.float32)
            else:
                box = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], np.float32)
        labels["box"] = np.asarray(box, np.float32)
        return image, labels
