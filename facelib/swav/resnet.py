"""torchvision ResNets of any base width, in torchvision's layout (the demo's narrow trunks).

torchvision's ResNets have a base width of 64 channels (64, 128, 256, 512 per stage before the
block expansion). :func:`resnet` builds the same architecture with the stages scaled to
``width``: ``width=64`` is exactly ``torchvision.models.get_model(arch)``; the demo profile's
``width=32`` has a quarter of the convolution FLOPs. Parameter and buffer names are
torchvision's (``conv1``, ``bn1``, ``layer1`` ... ``layer4``, ``fc``), so state dicts, the
authors' released checkpoints and :func:`facelib.swav.model.load_trunk` work unchanged;
:func:`width_of` reads the width back from a state dict.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["resnet", "width_of", "STAGES"]

#: Blocks per stage of the torchvision ResNets.
STAGES: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}


class _NarrowResNet(ResNet):
    """torchvision's ``ResNet`` with stage widths ``width * (1, 2, 4, 8)``."""

    def __init__(self, block: type[nn.Module], layers: tuple[int, int, int, int], width: int,
                 num_classes: int = 1000) -> None:
        super().__init__(block, list(layers), num_classes=num_classes)  # type: ignore[arg-type]
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(block, width, layers[0])  # type: ignore[arg-type]
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)  # type: ignore[arg-type]
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)  # type: ignore[arg-type]
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)  # type: ignore[arg-type]
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)  # type: ignore[attr-defined]
        for m in self.modules():  # torchvision's initialisation, on the new modules
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def resnet(arch: str, width: int = 64, num_classes: int = 1000) -> ResNet:
    """A randomly initialised ResNet ``arch`` with base width ``width`` (64: torchvision's own).

    Raises:
        ValueError: ``arch`` is not a torchvision ResNet, or ``width`` is not a positive integer.
    """
    if arch not in STAGES:
        raise ValueError(f"unknown ResNet architecture {arch!r} (not a torchvision ResNet); "
                         f"choose one of {', '.join(STAGES)}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"ResNet width must be a positive integer, got {width!r}")
    if width == 64:
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    block, layers = STAGES[arch]
    return _NarrowResNet(block, layers, width, num_classes)


def width_of(state_dict: Mapping[str, Tensor]) -> int:
    """The base width of a ResNet state dict in torchvision layout (channels of ``conv1``)."""
    w = state_dict.get("conv1.weight")
    if not isinstance(w, torch.Tensor) or w.ndim != 4:
        raise ValueError("not a ResNet trunk state dict: no 4-D conv1.weight")
    return int(w.shape[0])
