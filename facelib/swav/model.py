"""The SwAV network: a torchvision ResNet trunk, a projection head and prototypes (supplement 1.1).

``trunk`` is a torchvision ResNet without its classifier (2048-d pooled features for
ResNet-50); ``projection`` is 2048 -> 2048 (BN, ReLU) -> 128, its output L2-normalised;
``prototypes`` is a bias-free linear layer whose rows are re-normalised before every step.
The trunk runs once per group of crops of the same resolution.

Checkpoints in three layouts load into it (:func:`convert_state_dict`):

* the authors' released models (``torch.load(f)["state_dict"]``, keys ``module.base_net.*``,
  ``module.projection_net.net.*``, ``module.prototypes.weight``);
* the official SwAV checkpoints (``module.conv1.weight``, ``module.projection_head.*``, ...);
* plain torchvision ResNets (``fc.*`` ignored) and our own (``trunk.*``).

:func:`export_trunk` writes the trunk in plain torchvision layout, which
``torchvision.models.resnet50().load_state_dict(sd, strict=False)`` reads with only ``fc``
missing, like the authors' README snippet. Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from .. import checkpoint
from .resnet import resnet, width_of

__all__ = [
    "SwAVModel",
    "LoadReport",
    "convert_state_dict",
    "read_state_dict",
    "load_pretrained",
    "trunk_state_dict",
    "export_trunk",
    "load_trunk",
    "build_trunk",
]

_TRUNK_KEY = re.compile(r"^(conv1|bn1|layer[1-4])\.")


def build_trunk(arch: str, width: int = 64) -> nn.Module:
    """A randomly initialised ResNet ``arch`` of base ``width`` (:func:`facelib.swav.resnet.resnet`)
    with ``fc`` replaced by ``Identity``."""
    net = resnet(arch, width)
    if not isinstance(net, torchvision.models.ResNet):
        raise ValueError(f"{arch!r} is not a torchvision ResNet (SwAV needs conv1/bn1/layer1-4/fc)")
    net.num_features = net.fc.in_features  # type: ignore[assignment]
    net.fc = nn.Identity()
    return net


class SwAVModel(nn.Module):
    """ResNet trunk + projection head + prototypes.

    Args:
        arch: any torchvision ResNet name (``resnet50`` in the paper).
        hidden_mlp: hidden width of the projection head (2048; 0 for a single linear layer).
        feat_dim: embedding dimension (128).
        num_prototypes: number of prototypes K (3000).
    """

    def __init__(self, arch: str = "resnet50", hidden_mlp: int = 2048, feat_dim: int = 128,
                 num_prototypes: int = 3000, width: int = 64) -> None:
        super().__init__()
        self.arch = arch
        self.trunk = build_trunk(arch, width)
        nf = int(self.trunk.num_features)  # type: ignore[arg-type]
        self.num_features = nf
        if hidden_mlp > 0:
            self.projection: nn.Module = nn.Sequential(
                nn.Linear(nf, hidden_mlp), nn.BatchNorm1d(hidden_mlp), nn.ReLU(inplace=True),
                nn.Linear(hidden_mlp, feat_dim))
        else:
            self.projection = nn.Linear(nf, feat_dim)
        self.prototypes = nn.Linear(feat_dim, num_prototypes, bias=False)

    @classmethod
    def from_recipe(cls, recipe: Any) -> "SwAVModel":
        return cls(recipe.arch, recipe.hidden_mlp, recipe.feat_dim, recipe.num_prototypes, recipe.width)

    def forward_trunk(self, crops: Sequence[Tensor]) -> Tensor:
        """(N, F) pooled trunk features of all crops, one trunk call per run of equal sizes."""
        if isinstance(crops, Tensor):
            crops = [crops]
        feats = []
        start = 0
        while start < len(crops):
            end = start + 1
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            feats.append(self.trunk(torch.cat(list(crops[start:end]))))
            start = end
        return torch.cat(feats) if len(feats) > 1 else feats[0]

    def forward(self, crops: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Embed the crops and score them against the prototypes.

        Args:
            crops: V tensors (B, 3, H_v, W_v), crops of equal size adjacent (2 x 224 then 6 x 96).

        Returns:
            ((V * B, D) L2-normalised embeddings, (V * B, K) prototype scores), crop-major.
        """
        z = F.normalize(self.projection(self.forward_trunk(crops)), dim=1, p=2)
        return z, self.prototypes(z)

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """Project every prototype back onto the unit sphere (done before each step)."""
        w = self.prototypes.weight
        w.copy_(F.normalize(w.detach().clone(), dim=1, p=2))


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did: keys loaded, skipped (with why) and ignored."""

    layout: str
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _detect_layout(keys: Sequence[str]) -> str:
    if any(k.startswith("base_net.") for k in keys):
        return "authors (module.base_net.*)"
    if any(k.startswith("trunk.") for k in keys):
        return "facelib"
    if any(k.startswith("projection_head.") for k in keys):
        return "swav (official)"
    if any(_TRUNK_KEY.match(k) for k in keys):
        return "torchvision"
    return "unknown"


def convert_state_dict(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str], str]:
    """Rename a checkpoint's keys to :class:`SwAVModel`'s (``trunk.``, ``projection.``, ``prototypes.``).

    Returns:
        (converted state dict, keys that have no place in the model (e.g. ``fc.*``), layout name).

    Raises:
        ValueError: no ResNet trunk key is recognised.
    """
    stripped = {}
    for k, v in state_dict.items():
        while k.startswith("module."):
            k = k[len("module."):]
        stripped[k] = v
    layout = _detect_layout(list(stripped))
    if layout == "unknown":
        sample = ", ".join(list(stripped)[:5])
        raise ValueError(f"no ResNet trunk weights recognised in the checkpoint (first keys: {sample})")
    out: dict[str, Tensor] = {}
    ignored: list[str] = []
    for k, v in stripped.items():
        if k.startswith("base_net."):
            k = "trunk." + k[len("base_net."):]
        elif k.startswith("projection_net.net."):
            k = "projection." + k[len("projection_net.net."):]
        elif k.startswith("projection_head."):
            k = "projection." + k[len("projection_head."):]
        elif _TRUNK_KEY.match(k):
            k = "trunk." + k
        if k.startswith(("trunk.", "projection.", "prototypes.")) and not k.startswith("trunk.fc."):
            out[k] = v
        else:
            ignored.append(k)
    return out, ignored, layout


def read_state_dict(path: str | os.PathLike[str], trusted: bool = False) -> dict[str, Tensor]:
    """The state dict inside a checkpoint file: its ``state_dict`` or ``model`` entry, or the file itself.

    Args:
        path: a released model (``flr_r50_vgg_face.pth``), a SwAV checkpoint, a torchvision
            state dict or one of our checkpoints.
        trusted: unpickle arbitrary Python objects (the user's ``--trusted``: such a file can
            run code while it loads). Default: tensors and plain values only, which is all a
            state dict needs; anything else is refused, naming what the file asks for.

    Raises:
        facelib.checkpoint.CheckpointError: missing, unreadable or refused file.
        ValueError: no state dict inside.
    """
    obj = checkpoint.load(path, trusted=trusted)
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                return dict(obj[key])
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            return dict(obj)
    raise ValueError(f"{path}: no state dict found (expected a 'state_dict' or 'model' entry, or a "
                     "dict of tensors)")


def load_pretrained(model: SwAVModel, source: str | os.PathLike[str] | Mapping[str, Tensor],
                    trusted: bool = False) -> LoadReport:
    """Load a pretrained checkpoint (any layout of :func:`convert_state_dict`) into ``model``.

    The trunk must load completely; projection and prototype weights load where their shapes
    match and are reported as skipped otherwise (e.g. a checkpoint with 4096 hidden units).

    Raises:
        ValueError: a trunk weight is missing or has the wrong shape (the message names it).
    """
    sd = read_state_dict(source, trusted) if not isinstance(source, Mapping) else dict(source)
    converted, ignored, layout = convert_state_dict(sd)
    own = model.state_dict()
    report = LoadReport(layout=layout, ignored=ignored)
    missing = [k for k in own if k.startswith("trunk.") and k not in converted]
    if missing:
        raise ValueError(f"checkpoint ({layout}) lacks trunk weights: {', '.join(missing[:8])}"
                         + (" ..." if len(missing) > 8 else ""))
    to_load = {}
    for k, v in converted.items():
        if k not in own:
            report.skipped[k] = "not in this model"
        elif own[k].shape != v.shape:
            if k.startswith("trunk."):
                raise ValueError(f"checkpoint ({layout}) weight {k} has shape {tuple(v.shape)}, "
                                 f"the model ({model.arch}) expects {tuple(own[k].shape)}")
            report.skipped[k] = f"shape {tuple(v.shape)} != {tuple(own[k].shape)}"
        else:
            to_load[k] = v
    model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    return report


def trunk_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The trunk's weights in plain torchvision layout (``conv1.weight``, ..., no ``fc``)."""
    while hasattr(model, "module"):
        model = model.module  # type: ignore[assignment]
    sd = model.state_dict()
    return {k[len("trunk."):]: v.detach().clone().cpu() for k, v in sd.items() if k.startswith("trunk.")}


def export_trunk(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save the trunk in plain torchvision layout, atomically (loadable with ``weights_only=True``)."""
    checkpoint.save(trunk_state_dict(model), path)


def load_trunk(arch: str, source: str | os.PathLike[str] | Mapping[str, Tensor],
               trusted: bool = False) -> nn.Module:
    """A torchvision ResNet ``arch`` (``fc`` left at its random initialisation) with pretrained trunk weights.

    ``source`` may be any layout :func:`convert_state_dict` knows, e.g. the authors' released
    ``flr_r50_vgg_face.pth``: this is the entry point for fine-tuning. The base width is read
    from the weights (:func:`facelib.swav.resnet.width_of`; 64 for torchvision's ResNets). A
    file is read without unpickling anything but tensors and plain values unless ``trusted``
    (see :func:`read_state_dict`).
    """
    sd = read_state_dict(source, trusted) if not isinstance(source, Mapping) else dict(source)
    converted, _, layout = convert_state_dict(sd)
    trunk = {k[len("trunk."):]: v for k, v in converted.items() if k.startswith("trunk.")}
    net = resnet(arch, width_of(trunk)) if "conv1.weight" in trunk else resnet(arch)
    result = net.load_state_dict(trunk, strict=False)
    bad = [k for k in result.missing_keys if not k.startswith("fc.")]
    if bad or result.unexpected_keys:
        raise ValueError(f"checkpoint ({layout}) does not fit {arch}: missing {bad[:8]}, "
                         f"unexpected {result.unexpected_keys[:8]}")
    return net
