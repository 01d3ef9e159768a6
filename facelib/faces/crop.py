"""The pretraining crop: the face takes about 190 px of a 256x256 image (supplement 1.1).

A square centred on the detector box, of side ``box size x output_size / face_size``
(256/190 by default), zero-padded where it leaves the image, resized to ``output_size``
(area interpolation when shrinking, bilinear when enlarging). The transform from source pixels
to crop pixels is returned as a 2x3 affine matrix so that boxes and landmarks can be carried
into the crop.

Coordinates are continuous pixel coordinates (pixel (i, j) covers [j, j+1) x [i, i+1)), the
convention of :mod:`facelib.faces.detect`. Shown in ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["BOX_SIZE_RULES", "box_size", "crop_square", "crop_face", "transform_points",
           "transform_boxes"]

BOX_SIZE_RULES = ("max", "mean", "sqrt_area")


def box_size(boxes: np.ndarray, rule: str = "max") -> np.ndarray:
    """Size of each box under ``rule``.

    Args:
        boxes: (..., 4) ``x1, y1, x2, y2``.
        rule: ``"max"`` = max(w, h) (the default of ``recipes.Crop.box_size``), ``"mean"`` =
            (w + h) / 2, ``"sqrt_area"`` = sqrt(w h).

    Returns:
        (...,) sizes in the boxes' pixels.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    if rule == "max":
        return np.maximum(w, h)
    if rule == "mean":
        return (w + h) / 2
    if rule == "sqrt_area":
        return np.sqrt(np.clip(w, 0, None) * np.clip(h, 0, None))
    raise ValueError(f"unknown box size rule {rule!r}; choose one of {', '.join(BOX_SIZE_RULES)}")


def crop_square(
    image: np.ndarray, cx: float, cy: float, side: float, output_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crop the square of ``side`` px centred on ``(cx, cy)`` and resize it to ``output_size``.

    Enlarging is one sub-pixel bilinear warp; shrinking snaps the square to whole source pixels
    (less than half a crop pixel of shift) and averages with area interpolation. The returned
    transform is exactly what was done. Outside the image the crop is zero.

    Returns:
        (crop, M): crop is (output_size, output_size, C) uint8; M is the (2, 3) float64 affine
        map from source to crop coordinates, ``[x', y'] = M @ [x, y, 1]``.
    """
    if side <= 0 or not math.isfinite(side):
        raise ValueError(f"crop side must be a positive number, got {side}")
    if side <= output_size:
        # enlarging: one exact sub-pixel bilinear warp (zero outside the image)
        k = output_size / side
        x0, y0 = cx - side / 2, cy - side / 2
        M = np.array([[k, 0.0, -k * x0], [0.0, k, -k * y0]], dtype=np.float64)
        # cv2 works in pixel-index coordinates (pixel centres at integers): shift by half a pixel
        M_idx = M.copy()
        M_idx[:, 2] += 0.5 * k - 0.5
        out = cv2.warpAffine(image, M_idx, (output_size, output_size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if out.ndim == 2 and image.ndim == 3:
            out = out[..., None]
        return out, M
    # shrinking: snap the square to whole source pixels (shift < 1/2 source px, which is less
    # than 1/2 crop px here) and average with area interpolation
    h, w = image.shape[:2]
    n = int(round(side))
    x0 = int(math.floor(cx - n / 2 + 0.5))
    y0 = int(math.floor(cy - n / 2 + 0.5))
    x1, y1 = x0 + n, y0 + n
    # the part inside the image, and the zero padding around it
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if ix0 >= ix1 or iy0 >= iy1:
        region = np.zeros((n, n) + image.shape[2:], dtype=image.dtype)
    else:
        region = image[iy0:iy1, ix0:ix1]
        if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
            region = cv2.copyMakeBorder(
                np.ascontiguousarray(region), iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1,
                cv2.BORDER_CONSTANT, value=0,
            )
    out = cv2.resize(region, (output_size, output_size), interpolation=cv2.INTER_AREA)
    if out.ndim == 2 and image.ndim == 3:
        out = out[..., None]
    k = output_size / n
    M = np.array([[k, 0.0, -k * x0], [0.0, k, -k * y0]], dtype=np.float64)
    return out, M


def crop_face(
    image: np.ndarray,
    box: np.ndarray,
    face_size: int = 190,
    output_size: int = 256,
    rule: str = "max",
) -> tuple[np.ndarray, np.ndarray]:
    """The pretraining crop of one face (supplement 1.1).

    Pass the values of ``recipes.crop()``: ``face_size``, ``output_size`` and ``box_size``.

    Args:
        image: (H, W, 3) uint8 source image.
        box: (4,) detector box ``x1, y1, x2, y2`` in source pixels.
        face_size: the box size maps to this many crop pixels (190).
        output_size: side of the square crop (256).
        rule: box size rule, one of :data:`BOX_SIZE_RULES`.

    Returns:
        (crop, M): (output_size, output_size, 3) uint8 and the (2, 3) source-to-crop transform.
    """
    box = np.asarray(box, dtype=np.float64)
    size = float(box_size(box, rule))
    if not size > 0:
        raise ValueError(f"degenerate face box {box.tolist()}")
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return crop_square(image, cx, cy, size * output_size / face_size, output_size)


def transform_points(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine map to (..., 2) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ M[:, :2].T + M[:, 2]


def transform_boxes(M: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Apply an axis-aligned (scale + shift) affine map to (..., 4) ``x1, y1, x2, y2`` boxes."""
    boxes = np.asarray(boxes, dtype=np.float64)
    pts = transform_points(M, boxes.reshape(*boxes.shape[:-1], 2, 2))
    return pts.reshape(boxes.shape)
