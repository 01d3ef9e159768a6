"""SwAV pretraining with the paper's recipe (supplement 1.1).

Modules: :mod:`~facelib.swav.transforms` (multi-crop), :mod:`~facelib.swav.model` (ResNet +
projection + prototypes; released checkpoints), :mod:`~facelib.swav.sinkhorn`,
:mod:`~facelib.swav.loss`, :mod:`~facelib.swav.lars`, :mod:`~facelib.swav.syncbn`,
:mod:`~facelib.swav.data`, :mod:`~facelib.swav.train` (loop, job, ``facelib pretrain``),
:mod:`~facelib.swav.retrieval` (nearest-neighbour evaluation) and
:mod:`~facelib.swav.reference` (the official code, re-implemented as a baseline).
Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

from .lars import LARS, param_groups
from .loss import SwAVLoss, swapped_prediction_loss
from .model import SwAVModel, export_trunk, load_pretrained, load_trunk, trunk_state_dict
from .sinkhorn import sinkhorn, sinkhorn_log
from .transforms import MultiCrop

__all__ = [
    "LARS",
    "param_groups",
    "SwAVLoss",
    "swapped_prediction_loss",
    "SwAVModel",
    "export_trunk",
    "load_pretrained",
    "load_trunk",
    "trunk_state_dict",
    "sinkhorn",
    "sinkhorn_log",
    "MultiCrop",
]
