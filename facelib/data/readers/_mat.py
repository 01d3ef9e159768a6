"""Reading the 3DDFA ``.mat`` annotations of 300W-LP and AFLW2000-3D (via scipy.io)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from facelib.data.record import Problems


def load(path: Path, problems: Problems) -> dict[str, Any] | None:
    try:
        return scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises several types for a corrupt file
        problems.malformed(path, None, f"not a readable .mat file ({e})")
        return None


def pose_deg(mat: dict[str, Any], path: Path, problems: Problems) -> np.ndarray | None:
    """``Pose_Para`` (pitch, yaw, roll in radians, tx, ty, tz, scale) -> (yaw, pitch, roll) degrees."""
    if "Pose_Para" not in mat:
        return None
    p = np.asarray(mat["Pose_Para"], dtype=np.float64).reshape(-1)
    if p.size < 3:
        problems.malformed(path, None, f"Pose_Para has {p.size} values, expected 7")
        return None
    return np.array([math.degrees(p[1]), math.degrees(p[0]), math.degrees(p[2])], np.float32)


def points(mat: dict[str, Any], key: str, dims: int, path: Path, problems: Problems) -> np.ndarray | None:
    """A (dims, N) or (N, dims) point array under ``key`` as (N, dims); None if absent or bad."""
    if key not in mat:
        return None
    a = np.asarray(mat[key], dtype=np.float32)
    if a.ndim == 2 and a.shape[0] == dims and a.shape[1] != dims:
        a = a.T
    if a.ndim != 2 or a.shape[1] != dims:
        problems.malformed(path, None, f"{key} has shape {a.shape}, expected ({dims}, N)")
        return None
    return a
