"""300W-LP: the 300W faces warped to large poses, ``.mat`` per image (supplement 2).

Layout::

    root/AFW/AFW_134212_1_0.jpg + .mat          (also HELEN, IBUG, LFPW and *_Flip)
    root/landmarks/AFW/AFW_134212_1_0_pts.mat   (``pts_2d``, ``pts_3d``: 68 x 2)

The image ``.mat`` holds ``Pose_Para`` (pitch, yaw, roll in radians, ...) and ``pt2d`` (2, 68)
2D landmarks; ``pt3d_68`` (3, 68) when present gives the 3D landmarks. From the ``landmarks``
folder, ``pts_3d`` (the 2D projection of the 3D landmarks, the 3D-FAN convention) is used as
``landmarks_2d`` when ``pt2d`` is absent. Identity is the source face id (``AFW_134212_1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from facelib.data.readers import _mat
from facelib.data.readers._common import find_image, root_dir
from facelib.data.record import FaceRecord, Problems

DATASET = "300w_lp"


def read(root: str | Path, problems: Problems | None = None, check_images: bool = True) -> Iterator[FaceRecord]:
    """Faces of 300W-LP under ``root`` (the ``landmarks`` folder is read for 2D points)."""
    r = root_dir(root, "300W-LP")
    problems = problems if problems is not None else Problems()
    for mat_file in sorted(r.rglob("*.mat")):
        rel_parts = mat_file.relative_to(r).parts
        if rel_parts[0] == "landmarks" or mat_file.stem.endswith("_pts"):
            continue
        mat = _mat.load(mat_file, problems)
        if mat is None:
            continue
        lm2 = _mat.points(mat, "pt2d", 2, mat_file, problems)
        lm3 = _mat.points(mat, "pt3d_68", 3, mat_file, problems)
        side = r / "landmarks" / mat_file.parent.name / f"{mat_file.stem}_pts.mat"
        if lm2 is None and side.is_file():
            smat = _mat.load(side, problems)
            if smat is not None:
                lm2 = _mat.points(smat, "pts_3d", 2, side, problems)
        pose = _mat.pose_deg(mat, mat_file, problems)
        if lm2 is None and lm3 is None and pose is None:
            problems.malformed(mat_file, None, "no pt2d, pt3d_68 or Pose_Para in the .mat file")
            continue
        img = find_image(mat_file.with_suffix(""))
        if img is None and check_images:
            problems.missing_image(mat_file.with_suffix(".jpg"), mat_file, None)
            continue
        rel = str((img or mat_file.with_suffix(".jpg")).relative_to(r))
        pts = lm2 if lm2 is not None else (lm3[:, :2] if lm3 is not None else None)
        box = None if pts is None else np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
        stem = mat_file.stem
        ident = stem.rsplit("_", 1)[0] if stem.rsplit("_", 1)[-1].isdigit() else stem
        yield FaceRecord(dataset=DATASET, path=rel, identity=ident, landmarks_2d=lm2, landmarks_3d=lm3,
                         pose=pose, box=box, extra={"subset": mat_file.parent.name})
