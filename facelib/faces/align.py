"""5-point face alignment for face recognition (supplement 1.2).

"Following the best practices [16, 5], all images were normalized and aligned using the
provided 5 landmarks": a least-squares similarity transform (rotation, uniform scale,
translation; Umeyama 1991) maps the detector's 5 landmarks onto a fixed template, and the image
is warped with it. Templates: ArcFace's 112x112 ([5], as in insightface) and the 112x96 one of
CosFace/SphereFace ([16]), which is the same template 8 px narrower on each side.

Template coordinates follow insightface: they are used directly with ``cv2.warpAffine``, as the
detector's landmarks are. Shown in ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ARCFACE_112x112", "COSFACE_112x96", "template", "estimate_similarity", "align_face"]

# Left eye, right eye, nose tip, left and right mouth corners (image left first).
ARCFACE_112x112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64,
)
COSFACE_112x96 = ARCFACE_112x112 - np.array([8.0, 0.0])


def template(size: tuple[int, int] = (112, 112)) -> np.ndarray:
    """The 5-point template for an output of ``size = (height, width)``.

    (112, 112) is ArcFace's, (112, 96) CosFace's; any other size scales the ArcFace template
    uniformly by height/112 and centres it horizontally.

    Returns:
        (5, 2) float64 ``(x, y)`` in output pixels.
    """
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"aligned size must be positive, got {size}")
    if (h, w) == (112, 112):
        return ARCFACE_112x112.copy()
    if (h, w) == (112, 96):
        return COSFACE_112x96.copy()
    s = h / 112.0
    return ARCFACE_112x112 * s + np.array([(w - 112.0 * s) / 2, 0.0])


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` points onto ``dst`` (Umeyama).

    Args:
        src: (N, 2) points, N >= 2.
        dst: (N, 2) points.

    Returns:
        (2, 3) float64 M with ``dst ~ s R src + t``, minimising the sum of squared distances;
        R is a proper rotation (no reflection).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two (N>=2, 2) point sets of equal shape, got {src.shape}, {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0**2).sum() / len(src)
    if var_s <= 0:
        raise ValueError("source points coincide: no similarity transform")
    cov = d0.T @ s0 / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.diag([1.0, np.sign(np.linalg.det(U) * np.linalg.det(Vt)) or 1.0])
    R = U @ D @ Vt
    scale = np.trace(np.diag(S) @ D) / var_s
    t = mu_d - scale * R @ mu_s
    return np.hstack([scale * R, t[:, None]])


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: tuple[int, int] = (112, 112)
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a face so that its 5 landmarks land on the template (supplement 1.2).

    Args:
        image: (H, W, 3) uint8 source image.
        landmarks: (5, 2) landmarks in source pixels, in the detector's order.
        size: output ``(height, width)``: ``recipes.crop().aligned_size``, (112, 112) or (112, 96).

    Returns:
        (aligned, M): (height, width, 3) uint8 and the (2, 3) source-to-aligned transform.
    """
    M = estimate_similarity(landmarks, template(size))
    h, w = int(size[0]), int(size[1])
    aligned = cv2.warpAffine(image, M, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return aligned, M
