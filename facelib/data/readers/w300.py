"""300W: one ``.pts`` file of 68 points beside each image (iBUG layout).

A ``.pts`` file reads::

    version: 1
    n_points:  68
    {
    x y          (68 lines, 1-based pixel coordinates as annotated)
    }

Every ``.pts`` under ``root`` is read (``afw``, ``helen/trainset``, ``lfpw``, ``ibug``,
``01_Indoor`` ...); the subset is the parent folder. The box is the bounding box of the points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from facelib.data.readers._common import find_image, floats, root_dir
from facelib.data.record import FaceRecord, Problems

DATASET = "300w"


def read_pts(path: Path, problems: Problems) -> np.ndarray | None:
    """The (N, 2) points of a ``.pts`` file, or None after reporting a malformed file."""
    lines = [(i, s.strip()) for i, s in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1)]
    lines = [(i, s) for i, s in lines if s]
    n = None
    start = None
    for i, s in lines:
        if s.lower().startswith("n_points"):
            try:
                n = int(s.split(":", 1)[1])
            except (IndexError, ValueError):
                problems.malformed(path, i, f"bad n_points line {s!r}")
                return None
        if s == "{":
            start = i
            break
    if n is None or start is None:
        problems.malformed(path, lines[0][0] if lines else 1, "missing 'n_points:' header or '{'")
        return None
    body = [(i, s) for i, s in lines if i > start]
    if not body or body[-1][1] != "}":
        problems.malformed(path, body[-1][0] if body else start, "missing closing '}'")
        return None
    pts = body[:-1]
    if len(pts) != n:
        problems.malformed(path, pts[-1][0] if pts else start, f"n_points says {n}, found {len(pts)} points")
        return None
    out = np.empty((n, 2), np.float32)
    for k, (i, s) in enumerate(pts):
        v = floats(s.split(), 2, path, i, problems, "coordinates")
        if v is None:
            return None
        out[k] = v
    return out


def read(root: str | Path, problems: Problems | None = None, check_images: bool = True) -> Iterator[FaceRecord]:
    """Faces of 300W under ``root`` (68 landmarks, box from the landmarks)."""
    r = root_dir(root, "300W")
    problems = problems if problems is not None else Problems()
    for pts_file in sorted(r.rglob("*.pts")):
        pts = read_pts(pts_file, problems)
        if pts is None:
            continue
        img = find_image(pts_file.with_suffix(""))
        if img is None:
            if check_images:
                problems.missing_image(pts_file.with_suffix(".jpg|.png"), pts_file, None)
                continue
            rel = str(pts_file.with_suffix(".jpg").relative_to(r))
        else:
            rel = str(img.relative_to(r))
        box = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
        yield FaceRecord(dataset=DATASET, path=rel, landmarks_2d=pts, box=box,
                         extra={"subset": pts_file.parent.name})
