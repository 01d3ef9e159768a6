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

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from facelib import metrics
from facelib.tasks import augment as A
from facelib.tasks.au import mean_target_init
from facelib.tasks.base import Task
from facelib.tasks.landmarks import CED_THRESHOLDS, landmark_metrics

__all__ = ["StandardisedHead", "Recon3DTask"]

NUM_POINTS = 68


class StandardisedHead(nn.Module):
    """Pooled features -> one linear layer -> ``mean + std * z``: outputs in target units.

    ``mean`` and ``std`` (buffers, saved with the model) are the per-coordinate moments of the
    training targets (:meth:`set_standardisation`), so the linear layer works in standardised
    units (as 3DDFA standardises its regression targets) and the loss can weigh each
    coordinate by its spread: unstandardised crop coordinates vary by a few hundredths, and
    SGD's gradients on them are as small.
    """

    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, out)
        self.register_buffer("mean", torch.zeros(out))
        self.register_buffer("std", torch.ones(out))

    @torch.no_grad()
    def set_standardisation(self, targets: np.ndarray, min_std: float = 1e-3) -> None:
        """Mean of each coordinate and std of each axis over ``targets`` (N, P, 3).

        The std of an axis pools its coordinates over all points and images (the spread of the
        points over the face); an axis without values (no depth) gets mean 0 and std 1.
        """
        t = np.asarray(targets, np.float64)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no depth)
            mean = np.nan_to_num(np.nanmean(t, 0), nan=0.0)
            std = np.nan_to_num(np.nanstd(t.reshape(-1, t.shape[-1]), 0), nan=1.0)
        std = np.broadcast_to(np.maximum(std, min_std), mean.shape)
        self.mean.copy_(torch.as_tensor(mean.reshape(-1)))
        self.std.copy_(torch.as_tensor(std.reshape(-1)))

    def forward(self, feat: Tensor) -> Tensor:
        return self.mean + self.std * self.fc(feat.mean(dim=(2, 3)))


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
        return StandardisedHead(channels, NUM_POINTS * 3)

    def loss(self, model: nn.Module, out: Tensor, target: dict[str, Tensor]) -> Tensor:
        # squared error in standardised units: ((out - t) / std)^2 per coordinate
        t = target["coords"].view(len(out), -1)
        known = torch.isfinite(t)
        z = (out - torch.nan_to_num(t)) / model.head.std
        return z[known].square().mean()

    def predict(self, out: Tensor) -> dict[str, np.ndarray]:
        c = out.detach().float().cpu().numpy().reshape(-1, NUM_POINTS, 3)
        return {"points": (c + self._norm()) * self.input_size}

    def wants_train_targets(self) -> bool:
        return True  # the standardisation of the targets, always

    def init_head(self, head: nn.Module, train: dict[str, np.ndarray]) -> bool:
        """Set the target standardisation from ``train``; then the mean-target start (recipe)."""
        head.set_standardisation(train["coords"])
        if getattr(self.recipe, "head_init", "default") == "mean target":
            return mean_target_init(head.fc, np.zeros(NUM_POINTS * 3))
        return True

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
