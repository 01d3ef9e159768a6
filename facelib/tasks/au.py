"""Action unit intensity estimation: a regression head for 12 DISFA AUs (5 for BP4D) (supplement 1.2).

Head: global average pooling and one linear layer to ``recipe.num_aus`` intensities (0-5
scale), trained with the mean squared error (the supplement gives no loss: ``recipe.loss``).
Augmentation as for landmarks (rotation, scale, flip; AU labels do not change under a mirror)
plus Gaussian blur (kernel 5-10 px, p 0.4) and colour jitter. Metrics: ICC(3,1) per AU and
their mean (Tables 1 and 2), MAE.

Shown in ``notebooks/06_au_intensity.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facelib import metrics
from facelib.tasks.base import Task

__all__ = ["DISFA_AUS", "PooledLinear", "mean_target_init", "AUTask"]

#: The 12 DISFA action units, in the order of ``labels["au"]`` and of Table 1.
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


class PooledLinear(nn.Module):
    """Global average pooling and a linear layer: (B, C, s, s) -> (B, out)."""

    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, out)

    def forward(self, feat: Tensor) -> Tensor:
        return self.fc(feat.mean(dim=(2, 3)))


@torch.no_grad()
def mean_target_init(fc: nn.Linear, bias: np.ndarray) -> bool:
    """Zero weights and ``bias`` as the bias: the layer outputs ``bias`` whatever its input."""
    b = torch.as_tensor(np.nan_to_num(np.asarray(bias, np.float64)), dtype=fc.bias.dtype)
    if b.shape != fc.bias.shape:
        raise ValueError(f"head bias of shape {tuple(fc.bias.shape)}, mean target of shape {tuple(b.shape)}")
    fc.weight.zero_()
    fc.bias.copy_(b)
    return True


class AUTask(Task):
    """AU intensity (``recipes.AUIntensity``)."""

    name = "au"

    def targets(self, labels: dict[str, Any], m: np.ndarray, flipped: bool) -> dict[str, np.ndarray]:
        au = np.asarray(labels["au"], np.float32)
        if au.shape != (self.recipe.num_aus,):
            raise ValueError(f"labels have {au.shape} AU intensities, the recipe expects {self.recipe.num_aus}")
        return {"au": au}

    def build_head(self, channels: int, side: int) -> nn.Module:
        return PooledLinear(channels, self.recipe.num_aus)

    def loss(self, model: nn.Module, out: Tensor, target: dict[str, Tensor]) -> Tensor:
        # NaN marks an AU not coded in a frame (DISFA/BP4D): it contributes no gradient
        t = target["au"]
        coded = torch.isfinite(t)
        return F.mse_loss(out[coded], t[coded]) if coded.any() else (out * 0).sum()

    def predict(self, out: Tensor) -> dict[str, np.ndarray]:
        return {"au": out.detach().float().cpu().numpy()}

    def init_head(self, head: nn.Module, train: dict[str, np.ndarray]) -> bool:
        if getattr(self.recipe, "head_init", "default") != "mean target":
            return False
        return mean_target_init(head.fc, np.nanmean(train["au"], 0))

    def mean_prediction(self, train: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        return {"au": np.repeat(np.nanmean(train["au"], 0, keepdims=True), n, axis=0)}

    def evaluate(self, pred: dict[str, np.ndarray],
                 target: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        coded = np.isfinite(target["au"]).all(axis=1)  # frames with every AU coded
        icc = np.atleast_1d(metrics.icc31(pred["au"][coded], target["au"][coded]))
        mae = np.atleast_1d(metrics.mae(pred["au"][coded], target["au"][coded]))
        names = DISFA_AUS if len(icc) == len(DISFA_AUS) else tuple(range(1, len(icc) + 1))
        flat = {"icc_mean": float(np.nanmean(icc)) if np.isfinite(icc).any() else float("nan"),
                "mae_mean": float(mae.mean())}
        flat.update({f"icc_au{a}": float(v) for a, v in zip(names, icc)})
        flat.update({f"mae_au{a}": float(v) for a, v in zip(names, mae)})
        return flat, {"icc": icc, "mae": mae}
