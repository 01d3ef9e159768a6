"""Readers for the native formats of the paper's datasets, one module per format.

Each module exposes ``read(root, problems=None, ...)``, an iterator of
:class:`facelib.data.record.FaceRecord` with paths relative to ``root``. Fields a dataset lacks
stay ``None``. A malformed line raises :class:`facelib.data.record.DatasetFormatError` naming
the file and line, unless ``problems=Problems(collect=True)`` is passed, in which case it is
recorded and reading goes on; a missing image is reported and its record skipped.

========================  ===============================================================
``vggface2``              identity folders + ``bb_landmark/loose_bb_*.csv`` / ``loose_landmark_*.csv``
``w300``                  300W ``.pts`` files (68 points) beside the images
``wflw``                  ``list_98pt_rect_attr_*.txt`` (98 points, box, 6 attributes, image)
``w300lp``                300W-LP ``.mat`` (``pt2d``, ``Pose_Para``) + ``landmarks/*_pts.mat``
``aflw2000``              AFLW2000-3D ``.mat`` (``pt3d_68``, ``Pose_Para``)
``affectnet``             AffectNet ``training.csv`` / ``validation.csv``
``disfa``                 DISFA ``ActionUnit_Labels/SNxxx/SNxxx_auN.txt``
``bp4d``                  BP4D FERA 2015 ``AUxx/<subject>_<task>_AUxx.csv`` intensity files
``imdbface``              ``IMDb-Face.csv`` (index, name, image, rect, height width, url)
``widerface``             ``wider_face_split/wider_face_*_bbx_gt.txt``
========================  ===============================================================
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterator

from facelib.data.record import FaceRecord, Problems

READERS: tuple[str, ...] = (
    "vggface2", "w300", "wflw", "w300lp", "aflw2000", "affectnet", "disfa", "bp4d", "imdbface",
    "widerface",
)


def get(name: str) -> Callable[..., Iterator[FaceRecord]]:
    """The ``read`` function of reader ``name`` (one of :data:`READERS`)."""
    if name not in READERS:
        raise ValueError(f"unknown dataset reader {name!r}; choose one of {', '.join(READERS)}")
    return importlib.import_module(f"facelib.data.readers.{name}").read  # type: ignore[no-any-return]


def read(name: str, root: Any, **kwargs: Any) -> Iterator[FaceRecord]:
    """Records of dataset ``name`` under ``root`` (see the reader module for ``kwargs``)."""
    return get(name)(root, **kwargs)


def summarize(name: str, root: Any, problems: Problems | None = None, sample: int = 50,
              **kwargs: Any) -> dict[str, Any]:
    """Stream dataset ``name`` once: record count, fields present (in the first ``sample``), problems.

    Returns:
        ``{"dataset", "records", "problems", "fields"}``; memory stays flat however large the set.
    """
    problems = problems if problems is not None else Problems(collect=True)
    count, fields = 0, set()
    for r in read(name, root, problems=problems, **kwargs):
        if count < sample:
            fields |= set(r.to_dict())
        count += 1
    return {"dataset": name, "records": count, "problems": len(problems),
            "fields": ", ".join(sorted(fields - {"dataset", "extra"}))}
