"""Backbone initialisations of the fine-tuning study and the model a task trains (supplement 1.2).

Four initialisations (:data:`INITS`):

* ``random``: a torchvision ResNet at its default random initialisation (seeded);
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
import torchvision
from torch import Tensor, nn

from facelib.checkpoint import CheckpointError
from facelib.errors import InputError
from facelib.swav import model as swav_model

__all__ = ["INITS", "InitError", "build_trunk", "FaceModel", "feature_shape", "demo_swav_trunk"]

INITS: tuple[str, ...] = ("random", "imagenet", "authors", "ours")


class InitError(InputError, ValueError):
    """An initialisation is unknown, or its weights file is missing or does not fit."""


def build_trunk(arch: str, init: str, path: str | os.PathLike[str] | None = None, seed: int = 0,
                trusted: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """A torchvision ResNet ``arch`` initialised by ``init``.

    Args:
        arch: torchvision ResNet name (``recipes.pretrain(profile).arch``).
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
        return torchvision.models.get_model(arch, weights=None), {"init": init, "path": None, "layout": None}
    if path is None:
        hint = (f"torchvision's {arch} ImageNet state dict (e.g. the file torchvision caches under "
                "~/.cache/torch/hub/checkpoints/)" if init == "imagenet" else "a SwAV checkpoint")
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


def demo_swav_trunk(out_dir: str | os.PathLike[str], images: int = 64, epochs: int = 2,
                    seed: int = 7, progress: bool = False) -> Path:
    """The trunk of a small SwAV pretraining on synthetic faces (the demo's "ours" initialisation).

    Runs :func:`facelib.swav.train.train` with ``recipes.pretrain("demo")`` shortened to
    ``epochs`` epochs on ``images`` synthetic faces in the paper's crop geometry
    (:func:`facelib.swav.data.synthetic_faces`; set ``seed``, other persons than the fine-tuning
    sets), resuming a run already in ``out_dir``; a finished run is reused as is.
    ``notebooks/03_swav_pretraining.py`` runs the full demo pretraining; pages 04-08 use its
    trunk when it exists and this one otherwise.

    Returns:
        Path of ``out_dir/trunk.pth`` (plain torchvision layout).
    """
    from facelib import recipes
    from facelib.swav import train as swav_train
    from facelib.data.cached import CachedDataset
    from facelib.swav.data import synthetic_faces

    out = Path(out_dir)
    trunk = out / swav_train.TRUNK_NAME
    if trunk.is_file():
        return trunk
    recipe = recipes.pretrain("demo", epochs=epochs, train_images=images)
    data = CachedDataset(synthetic_faces(images, seed, recipe.input_size, num_identities=max(2, images // 4)))
    result = swav_train.train(recipe, data, out, resume=True, progress=progress)
    if result.trunk_path is None or not Path(result.trunk_path).is_file():
        raise RuntimeError(f"SwAV pretraining in {out} ended without a trunk (epochs done: {result.epochs_done})")
    return Path(result.trunk_path)
