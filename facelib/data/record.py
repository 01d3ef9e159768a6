"""The typed record every data source yields, and the problems a reader meets on the way.

A :class:`FaceRecord` is one annotated face: where its image is and whatever labels its dataset
provides. Fields a dataset lacks are ``None`` (absent), never zero: a DISFA frame has AU
intensities but no identity, a WIDER FACE face has a box but no landmarks. The synthetic faces
(:mod:`facelib.data.synth`) produce the same record through :func:`from_synth`, so the manifest
columns of synthetic and real sets are the same (:func:`records_to_frame`).

Readers (:mod:`facelib.data.readers`) report bad input through :class:`Problems`: a malformed
line raises :class:`DatasetFormatError` naming the file and line, unless the caller collects
problems, in which case reading continues; a missing image is always reported and skipped,
never fatal for the other records.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

__all__ = [
    "FaceRecord",
    "Problem",
    "Problems",
    "DatasetFormatError",
    "ARRAY_FIELDS",
    "from_synth",
    "records_to_frame",
    "frame_to_records",
]

#: Array-valued fields and their per-row shape (``-1``: dataset-dependent length).
ARRAY_FIELDS: dict[str, tuple[int, ...]] = {
    "box": (4,),
    "landmarks_2d": (-1, 2),
    "landmarks_5": (5, 2),
    "landmarks_3d": (-1, 3),
    "pose": (3,),
    "au": (-1,),
}


@dataclass
class FaceRecord:
    """One annotated face.

    Attributes:
        dataset: source name (``"vggface2"``, ``"300w"``, ``"synth"``, ...).
        path: image path (relative to the dataset root, or absolute); ``None`` where the images
            are not on disk (e.g. synthetic faces rendered on demand, DISFA without frames).
        identity: person label (string for real sets, int for synthetic).
        box: (4,) float32 face box x0, y0, x1, y1 in image pixels.
        landmarks_2d: (K, 2) float32 pixels (K = 68 for the 300W layout, 98 for WFLW).
        landmarks_5: (5, 2) float32: eye centres, nose tip, mouth corners.
        landmarks_3d: (68, 3) float32: x, y in pixels, z depth (AFLW2000-3D ``pt3d_68``).
        pose: (3,) float32 yaw, pitch, roll in degrees.
        au: (A,) float32 AU intensities 0-5 (NaN where a frame is not coded), in ``au_ids`` order.
        au_ids: the AU numbers of ``au``.
        valence, arousal: in [-1, 1].
        expression: AffectNet code 0-7 (see :data:`facelib.data.face_model.EXPRESSIONS`).
        subject, frame: video datasets (DISFA, BP4D): subject/sequence id and frame number.
        split: the dataset's own split name when it has one (``"train"``, ``"val"``, ...).
        extra: dataset-specific attributes (WFLW flags, WIDER blur/occlusion, ...).
    """

    dataset: str
    path: str | None = None
    identity: str | int | None = None
    box: np.ndarray | None = None
    landmarks_2d: np.ndarray | None = None
    landmarks_5: np.ndarray | None = None
    landmarks_3d: np.ndarray | None = None
    pose: np.ndarray | None = None
    au: np.ndarray | None = None
    au_ids: tuple[int, ...] | None = None
    valence: float | None = None
    arousal: float | None = None
    expression: int | None = None
    subject: str | None = None
    frame: int | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, shape in ARRAY_FIELDS.items():
            v = getattr(self, name)
            if v is None:
                continue
            a = np.asarray(v, dtype=np.float32)
            if a.ndim != len(shape) or any(s not in (-1, d) for s, d in zip(shape, a.shape)):
                raise ValueError(f"FaceRecord.{name} must have shape {shape}, got {a.shape}")
            setattr(self, name, a)

    def to_dict(self) -> dict[str, Any]:
        """The fields that are present (``None`` fields and an empty ``extra`` are left out)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None or (f.name == "extra" and not v):
                continue
            out[f.name] = v
        return out

    @property
    def tasks(self) -> tuple[str, ...]:
        """The downstream tasks this record can supervise."""
        t = []
        if self.identity is not None:
            t.append("recognition")
        if self.landmarks_2d is not None:
            t.append("landmarks")
        if self.au is not None:
            t.append("au")
        if self.valence is not None or self.expression is not None:
            t.append("emotion")
        if self.landmarks_3d is not None:
            t.append("recon3d")
        return tuple(t)


def from_synth(index: int, labels: dict[str, Any], seed: int | None = None) -> FaceRecord:
    """The record of synthetic face ``index`` from its labels dict (:func:`facelib.data.synth.render`)."""
    from facelib.data.face_model import AU_IDS

    return FaceRecord(
        dataset="synth", path=None, identity=int(labels["identity"]), box=labels["box"],
        landmarks_2d=labels["landmarks_2d"], landmarks_5=labels["landmarks_5"],
        landmarks_3d=labels["landmarks_3d"], pose=labels["pose"], au=labels["au"], au_ids=AU_IDS,
        valence=float(labels["valence"]), arousal=float(labels["arousal"]),
        expression=int(labels["expression"]), frame=index,
        extra={} if seed is None else {"seed": seed},
    )


# ------------------------------------------------------------------------------------------
# Manifest columns
# ------------------------------------------------------------------------------------------
_SCALARS = ("dataset", "path", "identity", "valence", "arousal", "expression", "subject", "frame", "split")


def records_to_frame(records: Iterable[FaceRecord]) -> pd.DataFrame:
    """Manifest columns for records: scalars as they are, arrays flattened to lists of floats.

    Absent fields become nulls (``None`` / NaN), so a column is all-null for a dataset that
    lacks it. ``identity`` is stored as a string (real sets name people; ints become their
    decimal form). ``au_ids`` is stored as a list of ints. ``extra`` keys become columns
    prefixed ``x_``.
    """
    rows = []
    for r in records:
        row: dict[str, Any] = {k: getattr(r, k) for k in _SCALARS}
        if row["identity"] is not None:
            row["identity"] = str(row["identity"])
        for k in ARRAY_FIELDS:
            v = getattr(r, k)
            row[k] = None if v is None else v.reshape(-1).astype(float).tolist()
        row["au_ids"] = None if r.au_ids is None else list(r.au_ids)
        for k, v in r.extra.items():
            row[f"x_{k}"] = v
        rows.append(row)
    columns = (list(_SCALARS) + list(ARRAY_FIELDS) + ["au_ids"]) if not rows else None
    df = pd.DataFrame(rows, columns=columns)
    for k in ("expression", "frame"):
        if k in df:
            df[k] = df[k].astype("Int64")
    for k in ("valence", "arousal"):
        if k in df:
            df[k] = df[k].astype("float64")
    return df


def _is_null(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return v is pd.NA


def frame_to_records(df: pd.DataFrame) -> list[FaceRecord]:
    """Records back from manifest columns written by :func:`records_to_frame`."""
    out = []
    for row in df.to_dict("records"):
        kw: dict[str, Any] = {}
        for k in _SCALARS:
            v = row.get(k)
            kw[k] = None if _is_null(v) else v
        for k, shape in ARRAY_FIELDS.items():
            v = row.get(k)
            if not isinstance(v, (list, np.ndarray)):
                continue
            a = np.asarray(v, dtype=np.float32)
            kw[k] = a.reshape(-1, shape[-1]) if len(shape) == 2 else a
        ids = row.get("au_ids")
        if ids is not None and isinstance(ids, (list, np.ndarray)):
            kw["au_ids"] = tuple(int(i) for i in ids)
        for k in ("expression", "frame"):
            if kw.get(k) is not None:
                kw[k] = int(kw[k])
        kw["extra"] = {k[2:]: v for k, v in row.items() if k.startswith("x_") and not _is_null(v)}
        out.append(FaceRecord(**kw))
    return out


# ------------------------------------------------------------------------------------------
# Problems met while reading
# ------------------------------------------------------------------------------------------
class DatasetFormatError(ValueError):
    """A line of an annotation file does not follow its dataset's format."""

    def __init__(self, file: str | Path, line: int | None, reason: str) -> None:
        self.file, self.line, self.reason = str(file), line, reason
        where = f"{file}:{line}" if line is not None else str(file)
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Problem:
    """One bad item: ``kind`` is ``"malformed"`` or ``"missing image"``."""

    kind: str
    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{self.kind}: {where}: {self.reason}"


class Problems:
    """Where a reader reports bad input.

    Args:
        collect: if False (the default), a malformed line raises :class:`DatasetFormatError`;
            if True, it is recorded and reading goes on. Missing images are always recorded
            (and warned about when not collecting) and the record is skipped.
    """

    def __init__(self, collect: bool = False) -> None:
        self.collect = collect
        self.items: list[Problem] = []

    def malformed(self, file: str | Path, line: int | None, reason: str) -> None:
        if not self.collect:
            raise DatasetFormatError(file, line, reason)
        self.items.append(Problem("malformed", str(file), line, reason))

    def missing_image(self, path: str | Path, file: str | Path | None = None, line: int | None = None) -> None:
        p = Problem("missing image", str(file if file is not None else path), line, f"image not found: {path}")
        self.items.append(p)
        if not self.collect:
            warnings.warn(str(p), stacklevel=3)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: kind, file, line, reason (the rejects table)."""
        return pd.DataFrame([dataclasses.asdict(p) for p in self.items], columns=["kind", "file", "line", "reason"])
