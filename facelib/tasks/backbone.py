"""Backbone initialisations of the fine-tuning study and the model a task trains (supplement 1.2).

Five initialisations (:data:`INITS`):

* ``random``: a torchvision ResNet at its default random initialisation (seeded);
* ``supervised``: a trunk pretrained with identity labels (the paper's supervised VGG-Face
  baseline; in the demo, :mod:`facelib.supervised` on the synthetic persons);
* ``imagenet``: torchvision's supervised ImageNet weights, read from a local file (nothing is
  downloaded: a missing file is an error that says where to put it);
* ``authors``: the authors' released SwAV checkpoints (``flr_r50_vgg_face.pth``, keys
  ``module.base_net.*``);
* ``ours``: a trunk exported by our own pretraining (``facelib.swav.train``'s ``trunk.pth``) or
  any checkpoint of :func:`facelib.swav.model.load_trunk`.

Every file goes through :func:`facelib.swav.model.load_trunk`, which recognises the layout and
fails on a missing or misshapen trunk weight. Files are read without unpickling anything but
tensors and plain values (:func:`facelib.checkpoint.load`); a file that asks for more is refused
unless ``trusted`` (``--trusted``). Used by :mod:`facelib.tasks.finetune`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from facelib.checkpoint import CheckpointError
from facelib.errors import InputError
from facelib.swav import model as swav_model
from facelib.swav.resnet import resnet

__all__ = ["INITS", "InitError", "build_trunk", "FaceModel", "feature_shape", "demo_trunk"]

INITS: tuple[str, ...] = ("random", "supervised", "imagenet", "authors", "ours")


class InitError(InputError, ValueError):
    """An initialisation is unknown, or its weights file is missing or does not fit."""


def build_trunk(arch: str, init: str, path: str | os.PathLike[str] | None = None, seed: int = 0,
                trusted: bool = False, width: int = 64) -> tuple[nn.Module, dict[str, Any]]:
    """A torchvision ResNet ``arch`` initialised by ``init``.

    Args:
        arch: torchvision ResNet name (``recipes.pretrain(profile).arch``).
        width: base width of the ``random`` trunk (``recipes.pretrain(profile).width``); the
            other initialisations take the width of their weights.
        init: one of :data:`INITS`.
        path: the weights file for every ``init`` but ``random``.
        seed: seeds the random initialisation (and the ``fc`` left random by the others).
        trusted: unpickle any object in ``path`` (the user's ``--trusted``: such a file can run
            code while it loads). Default: tensors and plain values only; a file that asks for
            anything else is refused with an :class:`InitError` naming what it asks for.

    Returns:
        (network, info) with info ``{"init", "path", "layout"}`` for ``run.json``.
    """
    if init not in INITS:
        raise InitError(f"unknown initialisation {init!r}; choose one of {', '.join(INITS)}")
    torch.manual_seed(seed)
    if init == "random":
        if path is not None:
            raise InitError("init 'random' takes no weights file (got --init-path)")
        return resnet(arch, width), {"init": init, "path": None, "layout": None}
    if path is None:
        hint = (f"torchvision's {arch} ImageNet state dict (e.g. the file torchvision caches under "
                "~/.cache/torch/hub/checkpoints/)" if init == "imagenet" else
                "a supervised pretraining's trunk.pth" if init == "supervised" else "a SwAV checkpoint")
        raise InitError(f"init {init!r} needs a local weights file: pass init_path / --init-path to {hint}; "
                        "nothing is downloaded")
    p = Path(path)
    if not p.is_file():
        raise InitError(f"init {init!r}: weights file {p} does not exist (nothing is downloaded)")
    try:
        sd = swav_model.read_state_dict(p, trusted=trusted)
    except (CheckpointError, ValueError) as e:
        raise InitError(f"init {init!r}: {e}") from None
    try:
        _, _, layout = swav_model.convert_state_dict(sd)
        net = swav_model.load_trunk(arch, sd)
    except (ValueError, RuntimeError) as e:  # RuntimeError: load_state_dict's size mismatches
        raise InitError(f"init {init!r}: {p} does not fit {arch}: {str(e)[:500]}") from None
    return net, {"init": init, "path": str(p), "layout": layout}


def feature_shape(trunk: nn.Module, input_size: int) -> tuple[int, int]:
    """(channels, side) of the last ResNet stage for a square input of ``input_size``."""
    channels = trunk.fc.in_features if isinstance(trunk.fc, nn.Linear) else trunk.num_features
    side = input_size
    for _ in range(5):  # stem stride 4, then layers 2-4 halve: 32 in total, ceil at each step
        side = (side + 1) // 2
    return int(channels), int(side)


class FaceModel(nn.Module):
    """A ResNet trunk (conv1 ... layer4, no pooling) followed by a task head.

    ``forward(x)``: (B, 3, S, S) -> the head's output for the (B, C, S/32, S/32) feature map.
    """

    def __init__(self, trunk: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.trunk = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool,
                                   trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4)
        self.head = head

    def forward(self, x: Tensor) -> Any:
        return self.head(self.trunk(x))


def demo_trunk(method: str, out_dir: str | os.PathLike[str], progress: bool = False, **overrides: Any) -> Path:
    """The trunk of the demo's pretraining ``method`` (``"swav"``: ours, ``"supervised"``).

    Runs (or resumes, or reuses when finished) exactly page 03's demo pretraining:
    ``recipes.pretrain("demo", method=...)`` on its synthetic faces
    (:class:`facelib.swav.train.DataSpec`), in ``out_dir``; ``overrides`` shorten it (tests).
    Pages 04-08 call it when page 03 has not run.

    Returns:
        Path of ``out_dir/trunk.pth`` (plain torchvision layout).
    """
    from facelib import recipes
    from facelib.swav import train as swav_train

    names = {"swav": "SwAV", "supervised": "supervised"}
    if method not in names:
        raise ValueError(f"unknown pretraining method {method!r}; choose one of {', '.join(names)}")
    out = Path(out_dir)
    trunk = out / swav_train.TRUNK_NAME
    if trunk.is_file():
        return trunk
    recipe = recipes.pretrain("demo", method=names[method], **overrides)
    job = swav_train.PretrainJob(recipe, str(out), swav_train.DataSpec("synthetic"), resume=True, progress=progress)
    result = job()
    if not result["finished"] or not trunk.is_file():
        raise RuntimeError(f"{method} pretraining in {out} ended without a trunk (epochs done: {result['epochs_done']})")
    return trunk
