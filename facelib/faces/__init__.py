"""Faces: detection (RetinaFace), the 190/256 pretraining crop, 5-point alignment and the batch
pipeline that turns a folder of photos into HDF5 shards (supplement 1.1 and 1.2).

Shown in ``notebooks/01_data_curation.py``.
"""

from facelib.faces.align import align_face, estimate_similarity, template
from facelib.faces.crop import box_size, crop_face, transform_boxes, transform_points
from facelib.faces.detect import LANDMARK_NAMES, Detections, Detector, RetinaFaceONNX, make_detector

__all__ = [
    "LANDMARK_NAMES",
    "Detections",
    "Detector",
    "RetinaFaceONNX",
    "make_detector",
    "box_size",
    "crop_face",
    "transform_boxes",
    "transform_points",
    "align_face",
    "estimate_similarity",
    "template",
]
