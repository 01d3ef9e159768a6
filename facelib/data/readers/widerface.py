"""WIDER FACE: ``wider_face_split/wider_face_{train,val}_bbx_gt.txt`` (supplement 2).

Blocks of: the image path (relative to ``WIDER_<split>/images``), the number of faces N, then
N lines ``x y w h blur expression illumination invalid occlusion pose``. An image with no face
has N = 0 followed by one line of zeros. One record per face (box as x0, y0, x1, y1); the six
flags go to ``extra``. Faces flagged invalid or with an empty box are skipped unless
``keep_invalid``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from facelib.data.readers._common import floats, image_ok, root_dir, text_lines
from facelib.data.record import FaceRecord, Problems

DATASET = "widerface"
FLAGS = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


def read(root: str | Path, problems: Problems | None = None, splits: Sequence[str] = ("train", "val"),
         keep_invalid: bool = False, check_images: bool = True) -> Iterator[FaceRecord]:
    """Faces of WIDER FACE under ``root``."""
    r = root_dir(root, "WIDER FACE")
    problems = problems if problems is not None else Problems()
    found = False
    for split in splits:
        for gt in sorted(r.rglob(f"wider_face_{split}_bbx_gt.txt")):
            found = True
            lines = list(text_lines(gt))
            i = 0
            while i < len(lines):
                line, name = lines[i]
                if i + 1 >= len(lines):
                    problems.malformed(gt, line, "image path without a face count")
                    break
                cline, ctext = lines[i + 1]
                try:
                    n = int(ctext)
                except ValueError:
                    problems.malformed(gt, cline, f"expected the face count of {name}, got {ctext!r}")
                    # Resynchronise on the next line that looks like an image path.
                    i += 1
                    while i < len(lines) and not lines[i][1].lower().endswith((".jpg", ".png")):
                        i += 1
                    continue
                body = lines[i + 2:i + 2 + max(n, 1)]
                i += 2 + max(n, 1)
                rel = f"WIDER_{split}/images/{name}"
                if n == 0:
                    continue
                if not image_ok(r, rel, problems, check_images, gt, line):
                    continue
                for bline, btext in body:
                    v = floats(btext.split(), 10, gt, bline, problems, "box fields")
                    if v is None:
                        continue
                    x, y, w, h = (float(t) for t in v[:4])
                    flags = {k: int(f) for k, f in zip(FLAGS, v[4:])}
                    if not keep_invalid and (flags["invalid"] or w <= 0 or h <= 0):
                        continue
                    yield FaceRecord(dataset=DATASET, path=rel, split=split,
                                     box=np.array([x, y, x + w, y + h]), extra=flags)
    if not found:
        raise FileNotFoundError(f"no wider_face_*_bbx_gt.txt under {r}")
