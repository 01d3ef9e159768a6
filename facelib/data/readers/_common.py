"""Shared parsing helpers for the dataset readers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from facelib.data.record import Problems


def root_dir(root: str | Path, what: str) -> Path:
    """``root`` as a Path; an error naming ``what`` if it is not a folder."""
    r = Path(root)
    if not r.is_dir():
        raise FileNotFoundError(f"{what} root not found or not a folder: {r}")
    return r


def floats(tokens: Sequence[str], n: int | None, file: Path, line: int, problems: Problems,
           what: str = "values") -> np.ndarray | None:
    """Parse ``tokens`` as floats (exactly ``n`` of them when given); None after reporting."""
    if n is not None and len(tokens) != n:
        problems.malformed(file, line, f"expected {n} {what}, got {len(tokens)}")
        return None
    try:
        return np.array([float(t) for t in tokens], dtype=np.float32)
    except ValueError as e:
        problems.malformed(file, line, f"{what} must be numbers ({e})")
        return None


def image_ok(root: Path, rel: str, problems: Problems, check: bool, file: Path, line: int | None) -> bool:
    """Whether ``root/rel`` exists (always True when not checking); reports a missing image."""
    if not check or (root / rel).is_file():
        return True
    problems.missing_image(root / rel, file, line)
    return False


def csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, fields) for each non-empty CSV row of ``path``."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            if row and any(c.strip() for c in row):
                yield reader.line_num, [c.strip() for c in row]


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped text) for each non-empty line of ``path``."""
    with open(path, encoding="utf-8-sig") as f:
        for i, line in enumerate(f, 1):
            s = line.strip()
            if s:
                yield i, s


def find_image(stem: Path, exts: Sequence[str] = (".jpg", ".png", ".jpeg", ".JPG", ".PNG")) -> Path | None:
    """The first existing ``stem + ext``."""
    for e in exts:
        p = stem.with_suffix(e)
        if p.is_file():
            return p
    return None
