"""AffectNet: the ``training.csv`` / ``validation.csv`` annotation tables (supplement 2).

Columns: ``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
expression, valence, arousal``; ``facial_landmarks`` is 68 ``x;y`` pairs joined by ``;``.
Expression codes: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger,
7 contempt, 8 none, 9 uncertain, 10 no-face. How the last three are handled:

* 10 (no face): the row is skipped (there is no face to crop); counted in ``stats``;
* 8 (none) and 9 (uncertain): kept, with ``expression`` absent (``None``);
* valence/arousal of -2 (the code for "not annotated" used with 9 and 10): absent.

Images live under ``root/<images_dir>/<subDirectory_filePath>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from facelib.data.readers._common import csv_rows, floats, image_ok, root_dir
from facelib.data.record import FaceRecord, Problems

DATASET = "affectnet"
COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
           "facial_landmarks", "expression", "valence", "arousal")
NONE, UNCERTAIN, NO_FACE = 8, 9, 10


def read(root: str | Path, problems: Problems | None = None, images_dir: str = "Manually_Annotated_Images",
         check_images: bool = True, stats: dict[str, int] | None = None) -> Iterator[FaceRecord]:
    """Faces of AffectNet under ``root`` (``training.csv`` -> split ``train``, ``validation.csv`` -> ``val``).

    Args:
        stats: if given, counts ``no_face``, ``none``, ``uncertain`` rows are added to it.
    """
    r = root_dir(root, "AffectNet")
    problems = problems if problems is not None else Problems()
    stats = stats if stats is not None else {}
    found = False
    for name, split in (("training.csv", "train"), ("validation.csv", "val")):
        for table in sorted(r.rglob(name)):
            found = True
            header: dict[str, int] | None = None
            for line, row in csv_rows(table):
                if header is None:
                    missing = set(COLUMNS) - set(row)
                    if missing:
                        problems.malformed(table, line, f"header lacks column(s) {sorted(missing)}")
                        break
                    header = {c: row.index(c) for c in COLUMNS}
                    continue
                if len(row) < len(header):
                    problems.malformed(table, line, f"expected {len(header)} fields, got {len(row)}")
                    continue
                nums = floats([row[header[c]] for c in ("face_x", "face_y", "face_width", "face_height",
                                                         "expression", "valence", "arousal")],
                              7, table, line, problems, "numbers")
                if nums is None:
                    continue
                code = int(nums[4])
                if not 0 <= code <= 10:
                    problems.malformed(table, line, f"expression code {code} is not in 0-10")
                    continue
                if code == NO_FACE:
                    stats["no_face"] = stats.get("no_face", 0) + 1
                    continue
                if code in (NONE, UNCERTAIN):
                    key = "none" if code == NONE else "uncertain"
                    stats[key] = stats.get(key, 0) + 1
                lm_text = row[header["facial_landmarks"]]
                lm = None
                if lm_text:
                    v = floats(lm_text.split(";"), 136, table, line, problems, "landmark values")
                    if v is None:
                        continue
                    lm = v.reshape(68, 2)
                va = [None if abs(x + 2) < 1e-6 else float(x) for x in nums[5:7]]
                for x in va:
                    if x is not None and not -1.0 <= x <= 1.0:
                        problems.malformed(table, line, f"valence/arousal {x} outside [-1, 1]")
                        break
                else:
                    rel = f"{images_dir}/{row[header['subDirectory_filePath']]}"
                    if not image_ok(r, rel, problems, check_images, table, line):
                        continue
                    x, y, w, h = (float(t) for t in nums[:4])
                    yield FaceRecord(
                        dataset=DATASET, path=rel, split=split, box=np.array([x, y, x + w, y + h]),
                        landmarks_2d=lm, expression=code if code < NONE else None,
                        valence=va[0], arousal=va[1],
                    )
    if not found:
        raise FileNotFoundError(f"no training.csv or validation.csv under {r}")
