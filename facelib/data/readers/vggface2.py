"""VGG-Face2: identity folders and the loose bounding-box / 5-landmark CSVs (supplement 2).

Layout (as distributed)::

    root/train/n000002/0001_01.jpg ...         root/test/n000001/...
    root/bb_landmark/loose_bb_train.csv         "NAME_ID","X","Y","W","H"
    root/bb_landmark/loose_landmark_train.csv   "NAME_ID","P1X","P1Y",...,"P5X","P5Y"

``NAME_ID`` is ``<identity>/<image stem>``. When the CSVs of a split are absent, the images of
its identity folders are listed instead (no box, no landmarks). The 5 points are in the
dataset's order (eyes, nose, mouth corners), which is that of ``landmarks_5``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from facelib.data.readers._common import csv_rows, floats, image_ok, root_dir
from facelib.data.record import FaceRecord, Problems

DATASET = "vggface2"


def _table(path: Path, n: int, problems: Problems) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for line, row in csv_rows(path):
        if line == 1 and row[0].upper() == "NAME_ID":
            continue
        v = floats(row[1:], n, path, line, problems, "coordinates")
        if v is not None:
            out[row[0]] = v
    return out


def read(root: str | Path, problems: Problems | None = None, splits: Sequence[str] = ("train", "test"),
         check_images: bool = True) -> Iterator[FaceRecord]:
    """Faces of VGG-Face2 under ``root`` (identity = the folder name, e.g. ``n000002``)."""
    r = root_dir(root, "VGG-Face2")
    problems = problems if problems is not None else Problems()
    for split in splits:
        bb_csv = r / "bb_landmark" / f"loose_bb_{split}.csv"
        lm_csv = r / "bb_landmark" / f"loose_landmark_{split}.csv"
        if bb_csv.is_file():
            boxes = _table(bb_csv, 4, problems)
            lms = _table(lm_csv, 10, problems) if lm_csv.is_file() else {}
            for name_id, b in boxes.items():
                rel = f"{split}/{name_id}.jpg"
                if not image_ok(r, rel, problems, check_images, bb_csv, None):
                    continue
                lm = lms.get(name_id)
                yield FaceRecord(
                    dataset=DATASET, path=rel, identity=name_id.split("/")[0], split=split,
                    box=np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]]),
                    landmarks_5=None if lm is None else lm.reshape(5, 2),
                )
        elif (r / split).is_dir():
            for ident in sorted(p for p in (r / split).iterdir() if p.is_dir()):
                for img in sorted(ident.glob("*.jpg")):
                    yield FaceRecord(dataset=DATASET, path=f"{split}/{ident.name}/{img.name}",
                                     identity=ident.name, split=split)
