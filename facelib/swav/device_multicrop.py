"""SwAV multi-crop on the training device: batched torch ops on uint8 image batches.

The per-image OpenCV pipeline (:class:`facelib.swav.transforms.MultiCrop`) costs a CPU core per
~170 images/s, while one H200 trains on ~1,200 images/s: feeding a GPU takes 7+ loader cores
before decoding. This path splits the work (``recipes.Pretrain.augment_on = "device"``):

* in the loader, :class:`CropPlanner` only draws every crop's random choices with
  :meth:`MultiCrop.draw` (the same generator, the same draws in the same order as the CPU path,
  so a sample's augmentations still depend only on (seed, epoch, index)) and returns the uint8
  image at the recipe's input size with a table of the draws;
* on the device, :class:`DeviceMultiCrop` makes the crops of the whole batch at once: resized
  crops with ``torchvision.ops.roi_align`` (each output pixel averages the source pixels of its
  bin: area interpolation when shrinking, bilinear when enlarging, as the CPU path chooses),
  horizontal flips, colour jitter (brightness, contrast, saturation, hue; each sample in its own
  random order), greyscale, Gaussian blur with a per-sample sigma (separable depthwise
  convolution, reflected borders, the recipe's kernel size) and normalisation.

Pixel values stay on the uint8 grid between the operations (rounded, saturated), as in the CPU
path; the colour operations use PIL's definitions (ITU-R 601 luma, contrast around the rounded
mean grey level); hue is rotated in floating-point HSV (the CPU path uses 8-bit HSV, as PIL).
It runs on any device, CPU tensors included; the distributions of crop geometry and colour
statistics of the two paths are tested equal in ``tests/test_swav_device_multicrop.py``, and
``benchmarks/bench_swav_device_multicrop.py`` measures both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np
import torch
from torch import Tensor

from .transforms import CropDraw, MultiCrop, as_rgb_uint8

__all__ = ["CropPlanner", "DeviceMultiCrop", "AUGMENT_ON", "multicrop_for", "PLAN_COLUMNS"]

#: The values of ``recipes.Pretrain.augment_on``.
AUGMENT_ON = ("loader", "device")

#: Columns of a crop plan row: the box as fractions of the image (top, left, height, width),
#: flip, jitter applied, the jitter order (4), the factors (brightness, contrast, saturation,
#: hue shift), greyscale, blur applied, blur sigma.
PLAN_COLUMNS = ("top", "left", "height", "width", "flip", "jitter", "order0", "order1", "order2",
                "order3", "brightness", "contrast", "saturation", "hue", "grey", "blur", "sigma")
_C = {name: i for i, name in enumerate(PLAN_COLUMNS)}
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's "L" and cv2.COLOR_RGB2GRAY


def _encode(d: CropDraw, height: int, width: int) -> list[float]:
    i, j, h, w = d.box
    order = d.jitter_order if d.jitter_order is not None else (0, 1, 2, 3)
    return [i / height, j / width, h / height, w / width, float(d.flip), float(d.jitter_order is not None),
            *map(float, order), *d.factors, float(d.grey), float(d.blur_sigma is not None),
            d.blur_sigma if d.blur_sigma is not None else 0.0]


@dataclass(frozen=True)
class CropPlanner:
    """The loader's half of the device path: one image -> (uint8 image, its crops' draws).

    Called as :class:`MultiCrop` is (``planner(image, rng)``), so
    :class:`facelib.swav.data.MultiCropDataset` takes either.
    """

    multicrop: MultiCrop
    input_size: int

    def __call__(self, image: Any, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """Draw every crop of ``image``.

        Returns:
            ``(image, plan)``: the (S, S, 3) uint8 image at ``input_size`` (resized when it
            has another size: the boxes are stored as fractions of the image) and the
            ``(sum(nmb_crops), len(PLAN_COLUMNS))`` float64 table of the draws.
        """
        img = as_rgb_uint8(image)
        h, w = img.shape[:2]
        mc = self.multicrop
        rows = [_encode(mc.draw(h, w, (lo, hi), rng), h, w)
                for n, lo, hi in zip(mc.nmb_crops, mc.min_scale_crops, mc.max_scale_crops) for _ in range(n)]
        s = self.input_size
        if (h, w) != (s, s):
            interp = cv2.INTER_AREA if (h > s and w > s) else cv2.INTER_LINEAR
            img = cv2.resize(img, (s, s), interpolation=interp)
        if not img.flags.writeable:  # e.g. a PIL decode: torch wants its own writable memory
            img = img.copy()
        return torch.from_numpy(img), torch.tensor(rows, dtype=torch.float64)


def _round_clamp(x: Tensor) -> Tensor:
    return x.clamp_(0.0, 255.0).round_()


def _grey(x: Tensor) -> Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma, rounded."""
    r, g, b = x.unbind(1)
    return (r * _LUMA[0] + g * _LUMA[1] + b * _LUMA[2]).round_().unsqueeze(1)


def _brightness(x: Tensor, f: Tensor) -> Tensor:
    return _round_clamp(x * f)


def _contrast(x: Tensor, f: Tensor) -> Tensor:
    mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True).add_(0.5).floor_()  # PIL: int(mean + 0.5)
    return _round_clamp(x * f + mean * (1 - f))


def _saturation(x: Tensor, f: Tensor) -> Tensor:
    return _round_clamp(x * f + _grey(x) * (1 - f))


def _hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of (N, 3, H, W) pixels in [0, 255] by ``shift`` turns (floating-point HSV)."""
    v, _ = x.max(dim=1)
    c = v - x.min(dim=1).values
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    r, g, b = x.unbind(1)
    h = torch.where(v == r, (g - b) / safe_c,
                    torch.where(v == g, 2.0 + (b - r) / safe_c, 4.0 + (r - g) / safe_c))
    h = torch.where(c > 0, h, torch.zeros_like(h))
    h = torch.remainder(h / 6.0 + shift.view(-1, 1, 1), 1.0) * 6.0
    out = []
    for n in (5.0, 3.0, 1.0):  # R, G, B of HSV -> RGB: v - c * clamp(min(k, 4 - k), 0, 1)
        k = torch.remainder(n + h, 6.0)
        out.append(v - c * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0))
    return _round_clamp(torch.stack(out, dim=1))


def _blur(x: Tensor, sigma: Tensor, ksize: int) -> Tensor:
    """Gaussian blur of each (3, H, W) image with its own sigma (cv2's kernel, reflect-101 borders)."""
    n, ch, hgt, wid = x.shape
    t = torch.arange(ksize, device=x.device, dtype=torch.float64) - (ksize - 1) / 2
    k = torch.exp(-(t ** 2) / (2 * sigma.to(torch.float64).view(-1, 1) ** 2))
    k = (k / k.sum(dim=1, keepdim=True)).to(x.dtype).repeat_interleave(ch, dim=0)  # (n * ch, ksize)
    pad = ksize // 2
    y = x.reshape(1, n * ch, hgt, wid)
    y = torch.nn.functional.pad(y, (pad, pad, pad, pad), mode="reflect")
    y = torch.nn.functional.conv2d(y, k.view(n * ch, 1, 1, ksize), groups=n * ch)
    y = torch.nn.functional.conv2d(y, k.view(n * ch, 1, ksize, 1), groups=n * ch)
    return _round_clamp(y.reshape(n, ch, hgt, wid))


_JITTER: tuple[Callable[[Tensor, Tensor], Tensor], ...] = (_brightness, _contrast, _saturation, _hue)


@dataclass(frozen=True)
class DeviceMultiCrop:
    """The device's half: a batch of uint8 images and their crop plans -> the multi-crop batch.

    Build it with :meth:`from_recipe`; :attr:`planner` is the loader's half.
    """

    multicrop: MultiCrop
    input_size: int

    @classmethod
    def from_recipe(cls, recipe: Any) -> "DeviceMultiCrop":
        return cls(MultiCrop.from_recipe(recipe), int(recipe.input_size))

    @property
    def planner(self) -> CropPlanner:
        """The loader-side transform whose batches this object turns into crops."""
        return CropPlanner(self.multicrop, self.input_size)

    def one(self, image: Any, rng: np.random.Generator, normalize: bool = True) -> list[Tensor]:
        """The crops of one image, as ``MultiCrop(image, rng)`` returns them (for tests and figures)."""
        img, plan = self.planner(image, rng)
        return [c[0] for c in self(img[None], plan[None], normalize=normalize)]

    @torch.no_grad()
    def __call__(self, images: Tensor, plans: Tensor, normalize: bool = True) -> list[Tensor]:
        """Make every crop of a batch on ``images.device``.

        Args:
            images: (B, S, S, 3) uint8, as the loader stacks :class:`CropPlanner` items.
            plans: (B, sum(nmb_crops), len(PLAN_COLUMNS)) draws (any device; read on the CPU).
            normalize: float32 ``(x / 255 - mean) / std``; ``False`` gives the uint8 crops.

        Returns:
            ``sum(nmb_crops)`` tensors (B, 3, s, s), grouped by size in ``size_crops`` order,
            as the CPU path's DataLoader collates them.
        """
        from torchvision.ops import roi_align

        mc = self.multicrop
        n_crops = sum(mc.nmb_crops)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: expected a (B, H, W, 3) uint8 batch, got {tuple(images.shape)} "
                             f"{images.dtype}")
        bsz, hgt, wid = images.shape[:3]
        if tuple(plans.shape) != (bsz, n_crops, len(PLAN_COLUMNS)):
            raise ValueError(f"plans: expected shape {(bsz, n_crops, len(PLAN_COLUMNS))}, got {tuple(plans.shape)}")
        dev = images.device
        x = images.permute(0, 3, 1, 2).float()
        plans = plans.detach().to("cpu", torch.float64)
        out: list[Tensor] = []
        first = 0
        for size, n in zip(mc.size_crops, mc.nmb_crops):
            p = plans[:, first:first + n].transpose(0, 1).reshape(n * bsz, -1)  # crop-major rows
            first += n
            top, left = p[:, _C["top"]] * hgt, p[:, _C["left"]] * wid
            boxes = torch.stack([torch.arange(bsz, dtype=torch.float64).repeat(n), left, top,
                                 left + p[:, _C["width"]] * wid, top + p[:, _C["height"]] * hgt], dim=1)
            y = roi_align(x, boxes.to(dev, torch.float32), output_size=size, spatial_scale=1.0,
                          sampling_ratio=-1, aligned=True)
            y = self._photometric(_round_clamp(y), p)
            if normalize:
                scale = torch.tensor([1.0 / (255.0 * sd) for sd in mc.std], dtype=torch.float32, device=dev)
                offset = torch.tensor([-m / sd for m, sd in zip(mc.mean, mc.std)], dtype=torch.float32, device=dev)
                y = y * scale.view(1, 3, 1, 1) + offset.view(1, 3, 1, 1)
            else:
                y = y.to(torch.uint8)
            out.extend(y.split(bsz))
        return out

    def _photometric(self, y: Tensor, p: Tensor) -> Tensor:
        """Flip, jitter, grey and blur the rows of ``y`` that drew them (``p``: their plans, on CPU)."""
        dev = y.device

        def rows(mask: Tensor) -> Tensor | None:
            idx = mask.nonzero().flatten()  # on the CPU: no device synchronisation
            return idx.to(dev, non_blocking=True) if len(idx) else None

        def column(name: str, idx_cpu: Tensor) -> Tensor:
            return p[idx_cpu, _C[name]].to(dev, torch.float32, non_blocking=True)

        if (i := rows(p[:, _C["flip"]] > 0)) is not None:
            y[i] = y[i].flip(-1)
        jitter = p[:, _C["jitter"]] > 0
        names = ("brightness", "contrast", "saturation", "hue")
        for step in range(4):
            for op in range(4):
                sel = jitter & (p[:, _C[f"order{step}"]] == op)
                if (i := rows(sel)) is None:
                    continue
                f = column(names[op], sel.nonzero().flatten())
                y[i] = _JITTER[op](y[i], f if op == 3 else f.view(-1, 1, 1, 1))
        if (i := rows(p[:, _C["grey"]] > 0)) is not None:
            y[i] = _grey(y[i]).expand(-1, 3, -1, -1)
        blur = p[:, _C["blur"]] > 0
        if (i := rows(blur)) is not None:
            y[i] = _blur(y[i], column("sigma", blur.nonzero().flatten()), self.multicrop.blur_kernel_size)
        return y


def multicrop_for(recipe: Any) -> tuple[Callable[[Any, np.random.Generator], Any], DeviceMultiCrop | None]:
    """The loader's per-image transform and, for ``augment_on="device"``, the device's batch transform.

    Raises:
        ValueError: ``recipe.augment_on`` is not one of :data:`AUGMENT_ON`.
    """
    where = getattr(recipe, "augment_on", "loader")
    if where == "loader":
        return MultiCrop.from_recipe(recipe), None
    if where == "device":
        device_crops = DeviceMultiCrop.from_recipe(recipe)
        return device_crops.planner, device_crops
    raise ValueError(f"Pretrain.augment_on must be one of {', '.join(AUGMENT_ON)}, got {where!r}")
