"""SwAV multi-crop augmentation on uint8 arrays with OpenCV (supplement 1.1).

Each image is decoded once; every crop is cut and resized from the uint8 array, then flipped,
colour-jittered, greyed and blurred on uint8 (as PIL does in the official pipeline, but
without a PIL image per crop), and normalised once at the end. Randomness comes from a
``numpy.random.Generator`` passed in, so a sample's crops depend only on (seed, epoch, index):
the data order and augmentations replay exactly on resume whatever the number of workers.

Semantics follow torchvision's ``RandomResizedCrop`` (10 attempts, ratio 3/4-4/3, centre-crop
fallback), ``RandomHorizontalFlip``, ``ColorJitter`` (brightness, contrast, saturation and hue
in a random order, PIL's definitions), ``RandomGrayscale`` (ITU-R 601 luma) and SwAV's
``cv2.GaussianBlur`` with a 23 px kernel. Downscaling uses area interpolation (anti-aliased, as
PIL's bilinear is); upscaling bilinear.

Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "MultiCrop",
    "CropDraw",
    "random_resized_crop_params",
    "as_rgb_uint8",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
]

_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def as_rgb_uint8(image: Any, where: str = "image") -> np.ndarray:
    """An (H, W, 3) uint8 C-contiguous array from a NumPy array, a tensor (HWC or CHW) or a PIL image.

    Raises:
        ValueError: wrong dtype, number of channels or size (``where`` names the item).
    """
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, Tensor):
        t = image.detach().cpu()
        if t.ndim == 3 and t.shape[0] == 3 and t.shape[-1] != 3:
            t = t.permute(1, 2, 0)
        image = t.numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{where}: expected an RGB uint8 image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{where}: expected uint8 pixels, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{where}: expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"{where}: image of {image.shape[1]}x{image.shape[0]} px is too small")
    return np.ascontiguousarray(image)


def random_resized_crop_params(
    height: int, width: int, scale: tuple[float, float], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """torchvision ``RandomResizedCrop.get_params``: ``(top, left, h, w)`` of the crop box."""
    area = height * width
    log_ratio = (math.log(_RATIO[0]), math.log(_RATIO[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = int(rng.integers(0, height - h + 1))
            j = int(rng.integers(0, width - w + 1))
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < _RATIO[0]:
        w = width
        h = int(round(w / _RATIO[0]))
    elif in_ratio > _RATIO[1]:
        h = height
        w = int(round(h * _RATIO[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _grey3(x: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def adjust_brightness(x: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Brightness``: blend (H, W, 3) uint8 ``x`` with black."""
    return cv2.convertScaleAbs(x, alpha=factor)


def adjust_contrast(x: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Contrast``: blend with the mean grey level (rounded, as PIL does)."""
    mean = int(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).mean() + 0.5)
    return cv2.addWeighted(x, factor, x, 0.0, (1 - factor) * mean)


def adjust_saturation(x: np.ndarray, factor: float) -> np.ndarray:
    """PIL's ``ImageEnhance.Color``: blend with the grey (ITU-R 601 luma) image."""
    return cv2.addWeighted(x, factor, _grey3(x), 1 - factor, 0.0)


def adjust_hue(x: np.ndarray, factor: float) -> np.ndarray:
    """torchvision's PIL ``adjust_hue``: rotate H of the 8-bit HSV image by ``factor`` turns."""
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] += np.uint8(int(factor * 255) % 256)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


@dataclass(frozen=True)
class CropDraw:
    """The random choices of one crop (:meth:`MultiCrop.draw`).

    Attributes:
        box: ``(top, left, h, w)`` in pixels of the source image.
        flip: mirror horizontally.
        jitter_order: the order of brightness (0), contrast (1), saturation (2) and hue (3);
            ``None`` when colour jitter is not applied.
        factors: brightness, contrast and saturation factors and the hue shift (in turns).
        grey: convert to grey.
        blur_sigma: the Gaussian blur's sigma; ``None`` when not blurred.
    """

    box: tuple[int, int, int, int]
    flip: bool
    jitter_order: tuple[int, ...] | None
    factors: tuple[float, float, float, float]
    grey: bool
    blur_sigma: float | None


@dataclass(frozen=True)
class MultiCrop:
    """The multi-crop transform: one RGB uint8 image -> ``sum(nmb_crops)`` normalised crops.

    Build it with :meth:`from_recipe`; every argument is a field of ``recipes.Pretrain``.
    """

    nmb_crops: tuple[int, ...]
    size_crops: tuple[int, ...]
    min_scale_crops: tuple[float, ...]
    max_scale_crops: tuple[float, ...]
    hflip_p: float
    color_jitter: tuple[float, ...]
    color_jitter_p: float
    grayscale_p: float
    blur_p: float
    blur_sigma: tuple[float, float]
    blur_kernel_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        n = len(self.nmb_crops)
        if not (len(self.size_crops) == len(self.min_scale_crops) == len(self.max_scale_crops) == n):
            raise ValueError("nmb_crops, size_crops, min_scale_crops and max_scale_crops must have equal length")
        if len(self.color_jitter) != 4:
            raise ValueError("color_jitter must be (brightness, contrast, saturation, hue)")
        if self.blur_kernel_size % 2 == 0:
            raise ValueError(f"blur_kernel_size must be odd, got {self.blur_kernel_size}")

    @classmethod
    def from_recipe(cls, recipe: Any) -> "MultiCrop":
        return cls(
            nmb_crops=tuple(recipe.nmb_crops), size_crops=tuple(recipe.size_crops),
            min_scale_crops=tuple(recipe.min_scale_crops), max_scale_crops=tuple(recipe.max_scale_crops),
            hflip_p=recipe.hflip_p, color_jitter=tuple(recipe.color_jitter),
            color_jitter_p=recipe.color_jitter_p, grayscale_p=recipe.grayscale_p,
            blur_p=recipe.blur_p, blur_sigma=tuple(recipe.blur_sigma),
            blur_kernel_size=recipe.blur_kernel_size, mean=tuple(recipe.mean), std=tuple(recipe.std))

    @property
    def crop_sizes(self) -> list[int]:
        """Size of every crop, in output order (e.g. 224, 224, 96 x 6)."""
        return [s for s, n in zip(self.size_crops, self.nmb_crops) for _ in range(n)]

    def __call__(self, image: np.ndarray, rng: np.random.Generator, normalize: bool = True) -> list[Tensor]:
        """Crop and augment one image.

        Args:
            image: (H, W, 3) RGB uint8.
            rng: the generator every random choice is drawn from.
            normalize: return normalised float32 crops; ``False`` returns the uint8 crops (for display).

        Returns:
            ``sum(nmb_crops)`` tensors (3, s, s), grouped by size in ``size_crops`` order.
        """
        img = as_rgb_uint8(image)
        out = []
        for size, n, lo, hi in zip(self.size_crops, self.nmb_crops, self.min_scale_crops, self.max_scale_crops):
            for _ in range(n):
                crop = self.augment(img, size, (lo, hi), rng)
                out.append(self.to_tensor(crop) if normalize else torch.from_numpy(crop).permute(2, 0, 1))
        return out

    def draw(self, height: int, width: int, scale: tuple[float, float],
             rng: np.random.Generator) -> "CropDraw":
        """The random choices of one crop of a ``height`` x ``width`` image, in the order
        :meth:`augment` draws them (so both multi-crop paths replay the same augmentations)."""
        box = random_resized_crop_params(height, width, scale, rng)
        flip = bool(rng.random() < self.hflip_p)
        order: tuple[int, ...] | None = None
        factors = (1.0, 1.0, 1.0, 0.0)
        if rng.random() < self.color_jitter_p:
            b, c, s, hue = self.color_jitter
            order = tuple(int(o) for o in rng.permutation(4))
            factors = (float(rng.uniform(max(0.0, 1 - b), 1 + b)), float(rng.uniform(max(0.0, 1 - c), 1 + c)),
                       float(rng.uniform(max(0.0, 1 - s), 1 + s)), float(rng.uniform(-hue, hue)))
        grey = bool(rng.random() < self.grayscale_p)
        # SwAV's RandomGaussianBlur draws "rand() > 0.5", then sigma = rand() * 1.9 + 0.1.
        sigma: float | None = None
        if rng.random() < self.blur_p:
            lo, hi = self.blur_sigma
            sigma = float(lo + rng.random() * (hi - lo))
        return CropDraw(box, flip, order, factors, grey, sigma)

    def augment(self, img: np.ndarray, size: int, scale: tuple[float, float],
                rng: np.random.Generator) -> np.ndarray:
        """One crop: (H, W, 3) uint8 -> (size, size, 3) uint8, before normalisation."""
        d = self.draw(img.shape[0], img.shape[1], scale, rng)
        i, j, h, w = d.box
        interp = cv2.INTER_AREA if (h > size and w > size) else cv2.INTER_LINEAR
        x = cv2.resize(img[i:i + h, j:j + w], (size, size), interpolation=interp)
        if d.flip:
            x = cv2.flip(x, 1)
        if d.jitter_order is not None:
            ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
            for op in d.jitter_order:
                x = ops[op](x, d.factors[op])
        if d.grey:
            x = _grey3(x)
        if d.blur_sigma is not None:
            k = self.blur_kernel_size
            x = cv2.GaussianBlur(x, (k, k), d.blur_sigma)
        return x

    def to_tensor(self, crop: np.ndarray) -> Tensor:
        """(s, s, 3) uint8 -> (3, s, s) float32 ``(x / 255 - mean) / std``."""
        scale = np.asarray([1.0 / (255.0 * sd) for sd in self.std], dtype=np.float32)
        offset = np.asarray([-m / sd for m, sd in zip(self.mean, self.std)], dtype=np.float32)
        y = crop.astype(np.float32) * scale + offset
        return torch.from_numpy(y).permute(2, 0, 1)
