"""3D face reconstruction as regression of the 68 3D landmarks (supplement 1.2 and 4.2).

The supplement does not say what is regressed; we regress the 68 3D landmarks of the
AFLW2000-3D convention (``recipe.target``): pooled features -> one linear layer -> (68, 3),
coordinates of the input crop normalised as ``(x, y, z) / S - (0.5, 0.5, 0)``, trained with the
mean squared error (``recipe.loss``). Augmentation: scale 0.85-1.15, in-plane rotation +-45
deg, translation 10 % of the width and height (no flip, as printed). SGD, LR 0.05.
Metrics: NME normalised by the face box size ``sqrt(w h)`` of the ground truth, on x, y (the
AFLW2000-3D protocol) and on x, y, z; CED curves as in the supplement's Fig. 2. The 300W-LP
reader gives the 68 points' 2D projections without depth: z is then unknown (NaN) and only x, y
enter the loss; the 3D NME is reported only when the test labels have depth (AFLW2000-3D does).

Shown in ``notebooks/08_3d_reconstruction.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelib import metrics
from facelib.tasks import augment as A
from facelib.tasks.au import PooledLinear
from facelib.tasks.base import Task
from facelib.tasks.landmarks import CED_THRESHOLDS, landmark_metrics

__all__ = ["Recon3DTask"]

NUM_POINTS = 68


class Recon3DTask(Task):
    """3D landmarks (``recipes.Recon3D``)."""

    name = "recon3d"

    def _norm(self) -> np.ndarray:
        return np.array([0.5, 0.5, 0.0])

    def targets(self, labels: dict[str, Any], m: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        if "landmarks_3d" in labels:
            src = np.asarray(labels["landmarks_3d"], np.float64)
        else:  # 300W-LP gives the 2D projections of the 3D points: z is unknown (NaN, no loss)
            src = np.concatenate([np.asarray(labels["landmarks_2d"], np.float64), np.full((68, 1), np.nan)], 1)
        pts = A.transform_points(src, m, flipped)
        if pts.shape != (NUM_POINTS, 3):
            raise ValueError(f"labels have 3D landmarks of shape {pts.shape}, expected (68, 3)")
        return {"coords": (pts / self.input_size - self._norm()).astype(np.float32),
                "points": pts.astype(np.float32)}

    def build_head(self, channels: int, side: int) -> nn.Module:
        return PooledLinear(channels, NUM_POINTS * 3)

    def loss(self, model: nn.Module, out: Tensor, target: dict[str, Tensor]) -> Tensor:
        t = target["coords"]
        known = torch.isfinite(t)
        return F.mse_loss(out.view(-1, NUM_POINTS, 3)[known], t[known])

    def predict(self, out: Tensor) -> dict[str, np.ndarray]:
        c = out.detach().float().cpu().numpy().reshape(-1, NUM_POINTS, 3)
        return {"points": (c + self._norm()) * self.input_size}

    def mean_prediction(self, train: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        return {"points": np.repeat(np.nanmean(train["points"], 0, keepdims=True), n, axis=0)}

    def evaluate(self, pred: dict[str, np.ndarray],
                 target: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        p, g = pred["points"], target["points"]
        flat, arrays = landmark_metrics(p[..., :2], g[..., :2], self.recipe.failure_threshold, norms=("box",))
        if not np.isfinite(g).all():  # no depth in the test labels: 2D metrics only
            return flat, arrays
        e3 = np.linalg.norm(p - g, axis=-1).mean(1) / metrics.box_size(g)
        flat["nme_box_3d"] = float(e3.mean())
        arrays["nme_box_3d"] = e3
        arrays["ced_box_3d"] = metrics.ced(e3, CED_THRESHOLDS)
        return flat, arrays
