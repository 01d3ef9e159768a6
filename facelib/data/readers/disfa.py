"""DISFA: per-subject, per-AU intensity files (the 12 AUs of supplement Table 1).

Layout: ``root/ActionUnit_Labels/SN001/SN001_au1.txt`` ... ``SN001_au26.txt``, one line per
video frame: ``frame,intensity`` (frame numbers from 1, intensity 0-5). A record per frame holds
the 12 intensities in :data:`facelib.data.face_model.AU_IDS` order (NaN where a file lacks the
frame). DISFA ships videos, not frames: give ``frame_pattern`` (e.g.
``"frames/{subject}/{frame:05d}.png"``, relative to ``root``) once frames are extracted to get
image paths; without it ``path`` is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from facelib.data.face_model import AU_IDS
from facelib.data.readers._common import image_ok, root_dir, text_lines
from facelib.data.record import FaceRecord, Problems

DATASET = "disfa"


def read(root: str | Path, problems: Problems | None = None, frame_pattern: str | None = None,
         check_images: bool = True) -> Iterator[FaceRecord]:
    """Frames of DISFA under ``root`` with their 12 AU intensities."""
    r = root_dir(root, "DISFA")
    problems = problems if problems is not None else Problems()
    labels = r / "ActionUnit_Labels" if (r / "ActionUnit_Labels").is_dir() else r
    subjects = sorted(p for p in labels.iterdir() if p.is_dir() and p.name.upper().startswith("SN"))
    if not subjects:
        raise FileNotFoundError(f"no DISFA subject folders (SNxxx) under {labels}")
    for subj in subjects:
        table: dict[int, np.ndarray] = {}
        for k, au in enumerate(AU_IDS):
            f = subj / f"{subj.name}_au{au}.txt"
            if not f.is_file():
                problems.malformed(f, None, f"missing AU{au} file for subject {subj.name}")
                continue
            for line, s in text_lines(f):
                parts = s.replace("\t", ",").replace(" ", ",").split(",")
                parts = [p for p in parts if p]
                try:
                    frame, value = int(parts[0]), float(parts[1])
                    if len(parts) != 2:
                        raise ValueError
                except (ValueError, IndexError):
                    problems.malformed(f, line, f"expected 'frame,intensity', got {s!r}")
                    continue
                if not 0 <= value <= 5:
                    problems.malformed(f, line, f"intensity {value} outside 0-5")
                    continue
                row = table.setdefault(frame, np.full(len(AU_IDS), np.nan, np.float32))
                row[k] = value
        for frame in sorted(table):
            path = None
            if frame_pattern is not None:
                path = frame_pattern.format(subject=subj.name, frame=frame)
                if not image_ok(r, path, problems, check_images, subj, None):
                    continue
            yield FaceRecord(dataset=DATASET, path=path, subject=subj.name, frame=frame,
                             au=table[frame], au_ids=AU_IDS)
