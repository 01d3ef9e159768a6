"""Facial landmark localisation: heatmap head, Gaussian targets, sub-pixel decoding (supplement 1.2).

Following FAN [2] and HRNet [14]: the ResNet features are upsampled by three stride-2
deconvolutions (256 channels, BN, ReLU; Xiao et al.'s "simple baselines") and a 1x1 convolution
to one heatmap per point, trained with a pixel-wise L2 loss against Gaussian targets
(``recipe.heatmap_sigma`` heatmap pixels). Points are decoded at the heatmap maximum, refined to
sub-pixel precision by fitting a parabola to the log-heatmap in x and y (exact for a Gaussian;
Zhang et al. 2020, DARK). Augmentation: rotation, scale, horizontal flip with the mirror
permutation, colour jitter. Metrics: NME (inter-ocular and box), CED, AUC and failure rate.

Shown in ``notebooks/05_landmarks.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from facelib import metrics
from facelib.tasks import augment as A
from facelib.tasks.base import Task

__all__ = ["HeatmapHead", "gaussian_heatmaps", "decode_heatmaps", "LandmarksTask", "CED_THRESHOLDS"]

#: NME thresholds at which the CED curve is sampled (0 to 0.15 of the normalising distance).
CED_THRESHOLDS = np.linspace(0.0, 0.15, 151)


def to_heatmap(points: np.ndarray, input_size: int, heatmap_size: int) -> np.ndarray:
    """Input-pixel coordinates -> heatmap coordinates (pixel centres aligned)."""
    stride = input_size / heatmap_size
    return (np.asarray(points, np.float64) + 0.5) / stride - 0.5


def from_heatmap(points: np.ndarray, input_size: int, heatmap_size: int) -> np.ndarray:
    """Heatmap coordinates -> input-pixel coordinates (inverse of :func:`to_heatmap`)."""
    stride = input_size / heatmap_size
    return (np.asarray(points, np.float64) + 0.5) * stride - 0.5


def gaussian_heatmaps(points: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Gaussian targets ``exp(-||u - p||^2 / (2 sigma^2))``, peak 1 at each point.

    Args:
        points: (P, 2) positions in heatmap pixels (may be fractional or outside the map).
        size: heatmap side H.
        sigma: standard deviation in heatmap pixels.

    Returns:
        (P, H, H) float32.
    """
    u = np.arange(size, dtype=np.float64)
    gx = np.exp(-((u[None, :] - points[:, 0:1]) ** 2) / (2 * sigma**2))  # (P, H)
    gy = np.exp(-((u[None, :] - points[:, 1:2]) ** 2) / (2 * sigma**2))
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32)


def decode_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Sub-pixel maxima of heatmaps.

    The integer argmax ``m`` is refined along x and y by the vertex of the parabola through
    ``log h(m-1), log h(m), log h(m+1)``: ``m + (l[-1] - l[+1]) / (2 (l[-1] - 2 l[0] + l[+1]))``,
    exact for a Gaussian peak and clipped to +-0.5 px; no refinement at the border or where a
    neighbour is not positive.

    Args:
        heatmaps: (N, P, H, W).

    Returns:
        (N, P, 2) ``(x, y)`` in heatmap pixels.
    """
    hm = np.asarray(heatmaps, dtype=np.float64)
    n, p, h, w = hm.shape
    flat = hm.reshape(n, p, -1).argmax(-1)
    ys, xs = np.divmod(flat, w)
    out = np.stack([xs, ys], -1).astype(np.float64)
    ni, pi = np.meshgrid(np.arange(n), np.arange(p), indexing="ij")
    for axis, (c, limit) in enumerate(((xs, w), (ys, h))):
        inside = (c > 0) & (c < limit - 1)
        cm, cp = np.clip(c - 1, 0, limit - 1), np.clip(c + 1, 0, limit - 1)
        if axis == 0:
            v0, vm, vp = hm[ni, pi, ys, xs], hm[ni, pi, ys, cm], hm[ni, pi, ys, cp]
        else:
            v0, vm, vp = hm[ni, pi, ys, xs], hm[ni, pi, cm, xs], hm[ni, pi, cp, xs]
        ok = inside & (vm > 0) & (vp > 0) & (v0 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lm, l0, lp = np.log(np.where(ok, vm, 1)), np.log(np.where(ok, v0, 1)), np.log(np.where(ok, vp, 1))
            den = lm - 2 * l0 + lp
            off = np.where(ok & (den < 0), 0.5 * (lm - lp) / np.where(den < 0, den, -1), 0.0)
        out[..., axis] += np.clip(off, -0.5, 0.5)
    return out


class HeatmapHead(nn.Module):
    """Three stride-2 deconvolutions and a 1x1 convolution: (B, C, s, s) -> (B, P, H, H).

    If ``8 s`` differs from ``H`` the maps are resized bilinearly before the 1x1 convolution.
    """

    def __init__(self, channels: int, num_points: int, heatmap_size: int, width: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for _ in range(3):
            layers += [nn.ConvTranspose2d(c, width, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            c = width
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(width, num_points, 1)
        self.heatmap_size = heatmap_size

    def forward(self, feat: Tensor) -> Tensor:
        x = self.deconv(feat)
        if x.shape[-1] != self.heatmap_size:
            x = F.interpolate(x, size=(self.heatmap_size, self.heatmap_size), mode="bilinear",
                              align_corners=False)
        return self.final(x)


class LandmarksTask(Task):
    """Landmarks (``recipes.Landmarks``): 68 points (300W) or 98 (WFLW)."""

    name = "landmarks"

    def targets(self, labels: dict[str, Any], m: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        pts = A.transform_points(labels["landmarks_2d"], m, flipped)
        if len(pts) != self.recipe.num_points:
            raise ValueError(f"labels have {len(pts)} landmarks, the recipe expects {self.recipe.num_points}")
        hm_pts = to_heatmap(pts, self.input_size, self.recipe.heatmap_size)
        return {"heatmaps": gaussian_heatmaps(hm_pts, self.recipe.heatmap_size, self.recipe.heatmap_sigma),
                "points": pts.astype(np.float32)}

    def build_head(self, channels: int, side: int) -> nn.Module:
        return HeatmapHead(channels, self.recipe.num_points, self.recipe.heatmap_size, self.recipe.deconv_width)

    def loss(self, model: nn.Module, out: Tensor, target: dict[str, Tensor]) -> Tensor:
        return F.mse_loss(out, target["heatmaps"])

    def predict(self, out: Tensor) -> dict[str, np.ndarray]:
        hm = decode_heatmaps(out.detach().float().cpu().numpy())
        return {"points": from_heatmap(hm, self.input_size, self.recipe.heatmap_size)}

    def mean_prediction(self, train: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        return {"points": np.repeat(train["points"].mean(0, keepdims=True), n, axis=0)}

    def evaluate(self, pred: dict[str, np.ndarray],
                 target: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        return landmark_metrics(pred["points"], target["points"], self.recipe.failure_threshold,
                                norms=("interocular", "box"))


def landmark_metrics(pred: np.ndarray, gt: np.ndarray, threshold: float,
                     norms: tuple[str, ...]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """NME per ``norms`` with its AUC and failure rate at ``threshold``, and CED curves.

    Returns:
        ``({"nme_<norm>", "auc_<norm>", "fr_<norm>"}, {"nme_<norm>" per image, "ced_<norm>",
        "ced_thresholds"})``; NMEs as fractions (multiply by 100 for %).
    """
    flat: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {"ced_thresholds": CED_THRESHOLDS}
    for norm in norms:
        key = "interocular" if norm == "interocular" else "box"
        e = metrics.nme(pred, gt, norm=norm)
        flat[f"nme_{key}"] = float(e.mean())
        flat[f"auc_{key}"] = metrics.auc(e, threshold)
        flat[f"fr_{key}"] = metrics.failure_rate(e, threshold)
        arrays[f"nme_{key}"] = e
        arrays[f"ced_{key}"] = metrics.ced(e, CED_THRESHOLDS)
    flat["threshold"] = float(threshold)
    return flat, arrays
