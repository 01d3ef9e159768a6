"""Real datasets as ``(image, labels)`` items, in the layout of the synthetic faces.

:class:`RecordDataset` loads the image of each :class:`facelib.data.record.FaceRecord` (from a
reader of :mod:`facelib.data.readers`) with the safe decoder of :mod:`facelib.images` and gives
its labels as the dict :func:`facelib.data.synth.render` returns, so the task code reads real
and synthetic faces the same way. Only the labels the dataset has are in the dict (absent, not
zero). Identities (strings in real sets) become class indices ``0 .. K-1`` in sorted order of
the names; the name stays under ``identity_name``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch.utils.data

from facelib import images
from facelib.data.record import FaceRecord

__all__ = ["labels_of", "RecordDataset"]


def labels_of(record: FaceRecord, identity_index: dict[Any, int] | None = None) -> dict[str, Any]:
    """The labels dict of a record (keys of :data:`facelib.data.synth.LABEL_KEYS` it has)."""
    out: dict[str, Any] = {}
    if record.identity is not None:
        out["identity_name"] = record.identity
        out["identity"] = identity_index[record.identity] if identity_index is not None else record.identity
    for k in ("landmarks_2d", "landmarks_5", "landmarks_3d", "pose", "au", "box"):
        v = getattr(record, k)
        if v is not None:
            out[k] = v
    if record.au_ids is not None:
        out["au_ids"] = record.au_ids
    for k in ("valence", "arousal", "expression"):
        v = getattr(record, k)
        if v is not None:
            out[k] = v
    return out


class RecordDataset(torch.utils.data.Dataset):
    """``(image (H, W, 3) uint8 RGB, labels dict)`` for each record with an image path.

    Args:
        records: records from a reader (those without ``path`` are dropped).
        root: the dataset root the paths are relative to.
        transform: optional callable ``(image, labels) -> item``.
        max_pixels: decoder size guard (:func:`facelib.images.load_image`).
    """

    def __init__(self, records: Sequence[FaceRecord], root: str | Path,
                 transform: Callable[[np.ndarray, dict[str, Any]], Any] | None = None,
                 max_pixels: int | None = None) -> None:
        self.records = [r for r in records if r.path is not None]
        self.root = Path(root)
        self.transform = transform
        self.max_pixels = max_pixels
        pos = {n: i for i, n in enumerate(sorted({str(r.identity) for r in self.records if r.identity is not None}))}
        self.identity_index: dict[Any, int] = {
            r.identity: pos[str(r.identity)] for r in self.records if r.identity is not None
        }

    @property
    def num_identities(self) -> int:
        return len(set(self.identity_index.values()))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Any:
        r = self.records[i]
        img = images.load_image(self.root / str(r.path), max_pixels=self.max_pixels)  # errors name the file
        labels = labels_of(r, self.identity_index)
        if self.transform is not None:
            return self.transform(img, labels)
        return img, labels
