"""Augmentations of the downstream tasks, geometric ones applied to the landmarks too (supplement 1.2).

Every geometric step is a 2x3 affine matrix; they are composed and the image is warped once
(``cv2.warpAffine``), so a crop, rotation, scaling, translation and horizontal flip cost one
resampling and the landmarks go through exactly the same matrix. A flip also permutes the
points (:data:`MIRROR_68`, :data:`MIRROR_98`, :data:`MIRROR_29` for COFW) so that point 36
stays the image-left outer eye corner. 3D points: x and y go through the matrix; z is multiplied by its scale (and keeps its
sign, since a mirror reflects x only).

All randomness comes from the ``numpy.random.Generator`` passed in, so a sample's augmentation
depends only on the seed the fine-tuning loop derives for it (exact resume).

Used by ``facelib.tasks.*``; augmented samples are shown in ``notebooks/04_face_recognition.py``
... ``08_3d_reconstruction.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "MIRROR_68",
    "MIRROR_98",
    "MIRROR_29",
    "mirror_permutation",
    "Geometry",
    "box_crop_matrix",
    "random_matrix",
    "warp",
    "transform_points",
    "color_jitter",
    "gaussian_blur",
    "to_tensor_array",
]


def _mirror_68() -> np.ndarray:
    """iBUG/300W 68-point mirror permutation: ``flipped[i] = points[perm[i]]`` after mirroring x."""
    pairs = [(i, 16 - i) for i in range(8)]                       # jaw 0-16 (8 is the chin)
    pairs += [(17 + i, 26 - i) for i in range(5)]                 # brows 17-21 <-> 26-22
    pairs += [(31, 35), (32, 34)]                                 # nostrils (33 the tip)
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]   # outer lips (51, 57 central)
    pairs += [(60, 64), (61, 63), (65, 67)]                       # inner lips (62, 66 central)
    perm = np.arange(68)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def _mirror_98() -> np.ndarray:
    """WFLW 98-point mirror permutation (the flip pairs of HRNet's WFLW loader)."""
    pairs = [(i, 32 - i) for i in range(16)]
    pairs += [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42), (38, 50), (39, 49), (40, 48), (41, 47)]
    pairs += [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68), (65, 75), (66, 74), (67, 73)]
    pairs += [(55, 59), (56, 58), (76, 82), (77, 81), (78, 80), (87, 83), (86, 84)]
    pairs += [(88, 92), (89, 91), (95, 93), (96, 97)]
    perm = np.arange(98)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def _mirror_29() -> np.ndarray:
    """COFW 29-point mirror permutation (the LFPW layout COFW annotates).

    Source: the COFW flip pairs of HRNet-Facial-Landmark-Detection, ``lib/utils/transforms.py``
    (``MATCHED_PARTS["COFW"]``, 1-based there; github.com/HRNet/HRNet-Facial-Landmark-Detection,
    commit 37b98049), the same pairs as mmpose's ``FaceCOFWDataset`` ``flip_pairs``. 0-based:
    brows 0/1 outer corners, 2/3 inner corners, 4/6 top and 5/7 bottom of the brow arcs; eyes
    8/9 outer corners (the inter-ocular pair of :mod:`facelib.metrics`), 10/11 inner corners,
    12/14 upper and 13/15 lower lids, 16/17 pupils; 18/19 nostril wings; 22/23 mouth corners.
    On the centre line (mapped to themselves): 20 nose tip, 21 below the nose, 24-27 lip
    midpoints, 28 chin. The indices are the order of COFW's own ``.mat`` files (row ``i`` of
    ``phisTr`` / ``phisT``: x of the 29 points, then y, then occlusion flags), which is how
    HRNet's and mmpose's COFW loaders read it; a COFW reader must keep that order.
    """
    pairs = [(0, 1), (4, 6), (2, 3), (5, 7),                     # eyebrows
             (8, 9), (10, 11), (12, 14), (16, 17), (13, 15),      # eyes, pupils
             (18, 19),                                            # nose
             (22, 23)]                                            # mouth corners
    perm = np.arange(29)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


#: ``points_flipped = mirror(points)[MIRROR_68]`` for the 68-point layout.
MIRROR_68: np.ndarray = _mirror_68()
#: The same for WFLW's 98 points.
MIRROR_98: np.ndarray = _mirror_98()
#: The same for COFW's 29 points.
MIRROR_29: np.ndarray = _mirror_29()
_MIRROR_5 = np.array([1, 0, 2, 4, 3])  # eyes, nose, mouth corners


def mirror_permutation(num_points: int) -> np.ndarray:
    """The mirror permutation of a layout with ``num_points`` points (68, 98, 29 or 5)."""
    table = {68: MIRROR_68, 98: MIRROR_98, 29: MIRROR_29, 5: _MIRROR_5}
    if num_points not in table:
        raise ValueError(f"no mirror permutation for {num_points} points (known: 5, 29, 68, 98)")
    return table[num_points]


@dataclass(frozen=True)
class Geometry:
    """Ranges of the random geometric augmentation (from a task recipe)."""

    rotation_deg: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    translation: float = 0.0
    hflip_p: float = 0.0


def _h(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def box_crop_matrix(box: np.ndarray, out_size: int, box_scale: float) -> np.ndarray:
    """2x3 matrix mapping a square crop centred on ``box`` (side ``max(w, h) * box_scale``) to ``out_size``.

    Args:
        box: (4,) ``x0, y0, x1, y1`` in source pixels.
        out_size: output side in pixels.
        box_scale: crop side in units of the box size (256/190 as in pretraining).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * box_scale
    if not side > 0:
        raise ValueError(f"empty face box {box}")
    s = out_size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # pixel centres: source (cx, cy) lands on the output centre (out_size - 1) / 2
    c = (out_size - 1) / 2
    return np.array([[s, 0.0, c - s * cx], [0.0, s, c - s * cy]])


def random_matrix(rng: np.random.Generator, out_size: int, geo: Geometry) -> tuple[np.ndarray, bool]:
    """A random similarity about the output centre, and whether it mirrors.

    Rotation ``U(-r, r)`` degrees, scale ``U(lo, hi)``, translation ``U(-t, t) * out_size`` in x
    and y, horizontal flip with probability ``hflip_p`` (drawn in this order).

    Returns:
        (2x3 matrix acting on output-space coordinates, flipped).
    """
    angle = rng.uniform(-geo.rotation_deg, geo.rotation_deg) if geo.rotation_deg else 0.0
    scale = rng.uniform(*geo.scale_range) if geo.scale_range[0] != geo.scale_range[1] else geo.scale_range[0]
    tx, ty = (rng.uniform(-geo.translation, geo.translation, size=2) * out_size
              if geo.translation else (0.0, 0.0))
    flip = bool(rng.random() < geo.hflip_p) if geo.hflip_p else False
    c = (out_size - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), angle, scale)
    m[:, 2] += (tx, ty)
    if flip:
        m = (_h(np.array([[-1.0, 0.0, out_size - 1.0], [0.0, 1.0, 0.0]])) @ _h(m))[:2]
    return m, flip


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer`` after ``inner`` (both 2x3)."""
    return (_h(outer) @ _h(inner))[:2]


def warp(image: np.ndarray, m: np.ndarray, out_size: int) -> np.ndarray:
    """Warp an (H, W, 3) uint8 image with the 2x3 matrix ``m`` to (out_size, out_size, 3); black outside."""
    return cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def transform_points(points: np.ndarray, m: np.ndarray, flipped: bool = False) -> np.ndarray:
    """Apply ``m`` to (P, 2) or (P, 3) points; permute them with the mirror permutation if ``flipped``.

    z (third column) is scaled by the matrix's scale ``sqrt(|det|)``.
    """
    pts = np.asarray(points, dtype=np.float64)
    out = pts.copy()
    out[:, :2] = pts[:, :2] @ m[:, :2].T + m[:, 2]
    if pts.shape[1] == 3:
        out[:, 2] = pts[:, 2] * math.sqrt(abs(np.linalg.det(m[:, :2])))
    if flipped:
        out = out[mirror_permutation(len(out))]
    return out


def color_jitter(image: np.ndarray, rng: np.random.Generator,
                 strength: tuple[float, float, float, float]) -> np.ndarray:
    """Random brightness, contrast and saturation (factors ``U(1 - s, 1 + s)``) and hue shift.

    Args:
        image: (H, W, 3) uint8 RGB.
        strength: ``(brightness, contrast, saturation, hue)``; hue in fractions of the colour circle.
    """
    b, c, s, h = strength
    img = image.astype(np.float32)
    if b:
        img *= rng.uniform(1 - b, 1 + b)
    if c:
        gray_mean = (img @ np.array([0.299, 0.587, 0.114], np.float32)).mean()
        img = (img - gray_mean) * rng.uniform(1 - c, 1 + c) + gray_mean
    if s:
        gray = (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        img = (img - gray) * rng.uniform(1 - s, 1 + s) + gray
    img = np.clip(img, 0, 255).astype(np.uint8)
    if h:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(round(rng.uniform(-h, h) * 256))) % 256
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)
    return img


def gaussian_blur(image: np.ndarray, rng: np.random.Generator, kernel_range: tuple[int, int],
                  p: float, scale: float = 1.0) -> np.ndarray:
    """With probability ``p``, blur with a Gaussian kernel of size drawn in ``kernel_range`` px.

    The size is drawn uniformly in ``[lo, hi]``, multiplied by ``scale`` (input size over the
    recipe's reference size) and rounded to the nearest odd integer >= 1 (OpenCV needs odd
    kernels); sigma follows from the size (OpenCV's rule).
    """
    if not rng.random() < p:
        return image
    k = rng.uniform(kernel_range[0], kernel_range[1]) * scale
    k = max(1, int(2 * round((k - 1) / 2) + 1))
    if k == 1:
        return image
    return cv2.GaussianBlur(image, (k, k), 0)


def to_tensor_array(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32 normalised with the backbone's ``mean`` and ``std``."""
    x = image.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
