"""BP4D as used in FERA 2015: per-sequence AU intensity CSVs (supplement Table 2).

Layout: ``root/**/AU06/F001_T1_AU06.csv`` (and AU10, AU12, AU14, AU17), one line per frame:
``frame,intensity``; intensity 0-5, 9 = not coded (stored as NaN). A record per
(subject, task, frame) holds the intensities of the AUs found, in increasing AU order
(``au_ids``). Give ``frame_pattern`` (e.g. ``"images/{subject}/{task}/{frame:04d}.jpg"``,
relative to ``root``) to get image paths.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from facelib.data.readers._common import image_ok, root_dir, text_lines
from facelib.data.record import FaceRecord, Problems

DATASET = "bp4d"
NOT_CODED = 9
_NAME = re.compile(r"^(?P<subject>[FM]\d{3})_(?P<task>T\d+)_AU(?P<au>\d+)$", re.IGNORECASE)


def read(root: str | Path, problems: Problems | None = None, frame_pattern: str | None = None,
         check_images: bool = True) -> Iterator[FaceRecord]:
    """Frames of BP4D (FERA 2015 intensity files) under ``root``."""
    r = root_dir(root, "BP4D")
    problems = problems if problems is not None else Problems()
    files: dict[tuple[str, str], dict[int, Path]] = {}
    for f in sorted(r.rglob("*.csv")):
        m = _NAME.match(f.stem)
        if m:
            files.setdefault((m["subject"].upper(), m["task"].upper()), {})[int(m["au"])] = f
    if not files:
        raise FileNotFoundError(f"no <subject>_<task>_AUxx.csv intensity files under {r}")
    au_ids = tuple(sorted({au for d in files.values() for au in d}))
    for (subject, task), per_au in sorted(files.items()):
        table: dict[int, np.ndarray] = {}
        for au, f in sorted(per_au.items()):
            k = au_ids.index(au)
            for line, s in text_lines(f):
                parts = [p.strip() for p in s.split(",")]
                try:
                    if len(parts) != 2:
                        raise ValueError
                    frame, value = int(float(parts[0])), float(parts[1])
                except ValueError:
                    if line == 1:      # a header row
                        continue
                    problems.malformed(f, line, f"expected 'frame,intensity', got {s!r}")
                    continue
                if value == NOT_CODED:
                    value = np.nan
                elif not 0 <= value <= 5:
                    problems.malformed(f, line, f"intensity {value} is neither 0-5 nor 9 (not coded)")
                    continue
                row = table.setdefault(frame, np.full(len(au_ids), np.nan, np.float32))
                row[k] = value
        for frame in sorted(table):
            path = None
            if frame_pattern is not None:
                path = frame_pattern.format(subject=subject, task=task, frame=frame)
                if not image_ok(r, path, problems, check_images, per_au[min(per_au)], None):
                    continue
            yield FaceRecord(dataset=DATASET, path=path, subject=subject, frame=frame, au=table[frame],
                             au_ids=au_ids, extra={"task": task})
