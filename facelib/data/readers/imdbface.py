"""IMDb-Face: the ``IMDb-Face.csv`` table of identity, image, box and URL (supplement 2).

Columns: ``index`` (the IMDb person id, e.g. ``nm0000001``), ``name``, ``image`` (file name),
``rect`` (``"x0 y0 x1 y1"``), ``height width`` (``"h w"``: the image size the box refers to)
and ``url``. The images must be downloaded by the user (many URLs are dead); they are looked
for at ``root/<image_pattern>`` (default ``{index}/{image}``), and a missing one is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from facelib.data.readers._common import csv_rows, floats, image_ok, root_dir
from facelib.data.record import FaceRecord, Problems

DATASET = "imdbface"
COLUMNS = ("index", "name", "image", "rect", "height width", "url")


def read(root: str | Path, problems: Problems | None = None, csv_name: str = "IMDb-Face.csv",
         image_pattern: str = "{index}/{image}", check_images: bool = True) -> Iterator[FaceRecord]:
    """Faces of IMDb-Face under ``root`` (identity = the IMDb person id)."""
    r = root_dir(root, "IMDb-Face")
    problems = problems if problems is not None else Problems()
    table = r / csv_name
    if not table.is_file():
        raise FileNotFoundError(f"IMDb-Face table not found: {table}")
    header: dict[str, int] | None = None
    for line, row in csv_rows(table):
        if header is None:
            missing = set(COLUMNS) - set(row)
            if missing:
                problems.malformed(table, line, f"header lacks column(s) {sorted(missing)}")
                return
            header = {c: row.index(c) for c in COLUMNS}
            continue
        if len(row) < len(header):
            problems.malformed(table, line, f"expected {len(header)} fields, got {len(row)}")
            continue
        box = floats(row[header["rect"]].split(), 4, table, line, problems, "box values")
        size = floats(row[header["height width"]].split(), 2, table, line, problems, "size values")
        if box is None or size is None:
            continue
        if box[2] <= box[0] or box[3] <= box[1]:
            problems.malformed(table, line, f"empty box {row[header['rect']]!r}")
            continue
        rel = image_pattern.format(index=row[header["index"]], image=row[header["image"]],
                                   name=row[header["name"]])
        if not image_ok(r, rel, problems, check_images, table, line):
            continue
        yield FaceRecord(dataset=DATASET, path=rel, identity=row[header["index"]], box=box,
                         extra={"name": row[header["name"]], "url": row[header["url"]],
                                "height": int(size[0]), "width": int(size[1])})
