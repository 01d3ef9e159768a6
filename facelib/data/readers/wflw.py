"""WFLW: ``list_98pt_rect_attr_{train,test}.txt`` annotation lines (98 points).

Each line has 207 space-separated fields: 196 coordinates (x0 y0 ... x97 y97), the box
(x_min y_min x_max y_max), six 0/1 attributes (pose, expression, illumination, make-up,
occlusion, blur) and the image path relative to ``WFLW_images``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from facelib.data.readers._common import floats, image_ok, root_dir, text_lines
from facelib.data.record import FaceRecord, Problems

DATASET = "wflw"
ATTRIBUTES = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")
_N = 98 * 2 + 4 + 6 + 1


def read(root: str | Path, problems: Problems | None = None, images_dir: str = "WFLW_images",
         check_images: bool = True) -> Iterator[FaceRecord]:
    """Faces of WFLW under ``root`` (annotation files found anywhere below it)."""
    r = root_dir(root, "WFLW")
    problems = problems if problems is not None else Problems()
    files = sorted(r.rglob("list_98pt_rect_attr_*.txt"))
    if not files:
        raise FileNotFoundError(f"no list_98pt_rect_attr_*.txt under {r}")
    for ann in files:
        split = ann.stem.rsplit("_", 1)[-1]
        for line, s in text_lines(ann):
            tok = s.split()
            if len(tok) != _N:
                problems.malformed(ann, line, f"expected {_N} fields, got {len(tok)}")
                continue
            v = floats(tok[:-1], None, ann, line, problems, "numbers")
            if v is None:
                continue
            rel = f"{images_dir}/{tok[-1]}"
            if not image_ok(r, rel, problems, check_images, ann, line):
                continue
            yield FaceRecord(
                dataset=DATASET, path=rel, split=split, landmarks_2d=v[:196].reshape(98, 2),
                box=v[196:200], extra={a: int(x) for a, x in zip(ATTRIBUTES, v[200:206])},
            )
