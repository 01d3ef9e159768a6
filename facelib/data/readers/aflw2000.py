"""AFLW2000-3D: ``imageNNNNN.jpg`` with ``imageNNNNN.mat`` (``pt3d_68``, ``Pose_Para``).

``pt3d_68`` is (3, 68): x, y in image pixels and z depth, the 68 3D landmarks the 3D
reconstruction task is evaluated on; ``Pose_Para`` holds pitch, yaw, roll (radians),
translation and scale. The box is the bounding box of the 68 points' x, y.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from facelib.data.readers import _mat
from facelib.data.readers._common import find_image, root_dir
from facelib.data.record import FaceRecord, Problems

DATASET = "aflw2000"


def read(root: str | Path, problems: Problems | None = None, check_images: bool = True) -> Iterator[FaceRecord]:
    """Faces of AFLW2000-3D under ``root``."""
    r = root_dir(root, "AFLW2000-3D")
    problems = problems if problems is not None else Problems()
    for mat_file in sorted(r.rglob("*.mat")):
        mat = _mat.load(mat_file, problems)
        if mat is None:
            continue
        pts = _mat.points(mat, "pt3d_68", 3, mat_file, problems)
        if pts is None:
            if "pt3d_68" not in mat:
                problems.malformed(mat_file, None, "no 'pt3d_68' in the .mat file")
            continue
        img = find_image(mat_file.with_suffix(""))
        if img is None and check_images:
            problems.missing_image(mat_file.with_suffix(".jpg"), mat_file, None)
            continue
        rel = str((img or mat_file.with_suffix(".jpg")).relative_to(r))
        box = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
        yield FaceRecord(dataset=DATASET, path=rel, landmarks_3d=pts, landmarks_2d=pts[:, :2].copy(),
                         pose=_mat.pose_deg(mat, mat_file, problems), box=box)
