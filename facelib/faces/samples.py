"""Photos that ship inside installed packages, for the demo profile and the tests.

scikit-image's ``astronaut`` (NASA, public domain), ``camera`` (CC0), ``coffee``, ``chelsea``
(CC0) and ``rocket`` (public domain), and matplotlib's ``grace_hopper.jpg`` (US Navy, public
domain). Nothing is downloaded. Used by ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["FACES", "NO_FACES", "packaged_photo", "write_sample_folder"]

FACES = ("astronaut", "camera", "grace_hopper")  # one face each
NO_FACES = ("coffee", "rocket", "chelsea")  # no human face (chelsea is a cat)


def packaged_photo(name: str) -> np.ndarray:
    """One of :data:`FACES` or :data:`NO_FACES` as (H, W, 3) uint8 RGB."""
    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            return np.asarray(Image.open(f).convert("RGB"))
    if name not in FACES + NO_FACES:
        raise ValueError(f"unknown packaged photo {name!r}; choose from {FACES + NO_FACES}")
    from skimage import data

    img = getattr(data, name)()
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def write_sample_folder(folder: Path | str, bad_files: bool = True) -> dict[str, str]:
    """Write the packaged photos (and, optionally, two broken files) into ``folder``.

    Returns:
        ``{file name: what it is}``. The broken files are a truncated JPEG and a text file
        named ``.jpg``; the pipeline must list both in its rejects.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in FACES + NO_FACES:
        img = packaged_photo(name)
        fname = f"{name}.jpg"
        Image.fromarray(img).save(folder / fname, quality=95)
        out[fname] = "one face" if name in FACES else "no human face"
    if bad_files:
        buf = io.BytesIO()
        Image.fromarray(packaged_photo("astronaut")).save(buf, format="JPEG", quality=90)
        (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
        out["truncated.jpg"] = "a JPEG cut to a third of its length"
        (folder / "notes.jpg").write_text("not a picture\n")
        out["notes.jpg"] = "a text file named .jpg"
    return out
