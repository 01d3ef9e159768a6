"""Test inputs for image decoding and face preprocessing.

Photos come from installed packages only (scikit-image's data, matplotlib's sample data); every
bad input is generated into a temporary folder. Nothing here reads a folder outside the repository.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def grace_hopper() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib, (600, 512, 3) uint8."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def save(path: Path, img: np.ndarray | Image.Image, **kw) -> Path:
    im = img if isinstance(img, Image.Image) else Image.fromarray(img)
    im.save(path, **kw)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG whose header claims ``width x height`` (and holds 1 row)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def exif_rotated_jpeg(path: Path, upright: np.ndarray) -> Path:
    """Store ``upright`` rotated 90 degrees counter-clockwise with EXIF Orientation 6.

    Orientation 6 tells a viewer to rotate the stored pixels 90 degrees clockwise, which gives
    back ``upright``.
    """
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return path


def bad_inputs(folder: Path) -> dict[str, str | None]:
    """Write every bad input of the issue into ``folder``.

    Returns:
        ``{file name: expected reject reason}``, where ``None`` means the file must decode.
    """
    folder.mkdir(parents=True, exist_ok=True)
    hopper = grace_hopper()
    out: dict[str, str | None] = {}

    (folder / "zero_bytes.jpg").write_bytes(b"")
    out["zero_bytes.jpg"] = "empty file"

    buf = io.BytesIO()
    Image.fromarray(hopper).save(buf, format="JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out["truncated.jpg"] = "truncated or corrupt"

    (folder / "text.jpg").write_text("this is not an image\n" * 20)
    out["text.jpg"] = "not an image"

    (folder / "bomb.png").write_bytes(png_header_only(50000, 50000))
    out["bomb.png"] = "too many pixels"

    (folder / "dir_like.jpg").mkdir()
    out["dir_like.jpg"] = "not a file"

    unreadable = folder / "unreadable.jpg"
    if unreadable_as_root():
        # root reads mode-000 files anyway; a symlink loop cannot be opened by anyone
        unreadable.symlink_to(unreadable.name)
    else:
        save(unreadable, hopper, quality=90)
        os.chmod(unreadable, 0)
    out["unreadable.jpg"] = "unreadable"

    save(folder / "cmyk.jpg", Image.fromarray(hopper).convert("CMYK"), quality=95)
    out["cmyk.jpg"] = None

    grey16 = (hopper.mean(axis=2) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "grey16.png")  # mode I;16
    out["grey16.png"] = None

    pal = Image.fromarray(hopper).quantize(colors=64)
    pal.info["transparency"] = 0
    pal.save(folder / "palette_alpha.png", transparency=0)
    out["palette_alpha.png"] = None

    exif_rotated_jpeg(folder / "exif_rotated.jpg", hopper)
    out["exif_rotated.jpg"] = None

    save(folder / "grey.jpg", Image.fromarray(hopper).convert("L"), quality=95)
    out["grey.jpg"] = None
    return out


def unreadable_as_root() -> bool:
    """Whether this process can read a mode-000 file anyway (root ignores permissions)."""
    return os.geteuid() == 0 if hasattr(os, "geteuid") else False


def many_faces(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` small JPEGs with one face each (the astronaut, shifted, scaled and flipped)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    src = astronaut()[0:330, 70:400]
    names = []
    for i in range(n):
        s = rng.uniform(0.6, 0.9)
        img = cv2.resize(src, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        dx, dy = rng.integers(0, 30, 2)
        img = img[dy:, dx:]
        if i % 2:
            img = img[:, ::-1]
        name = f"face_{i:03d}.jpg"
        save(folder / name, np.ascontiguousarray(img), quality=90)
        names.append(name)
    return names


def photo_folder(folder: Path) -> dict[str, int | str]:
    """Packaged photos plus every bad input: ``{name: expected faces or reject reason}``."""
    import cv2
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, int | str] = {}
    save(folder / "astronaut.png", data.astronaut())
    expected["astronaut.png"] = 1
    save(folder / "camera.png", data.camera())  # greyscale PNG
    expected["camera.png"] = 1
    save(folder / "grace_hopper.jpg", grace_hopper(), quality=95)
    expected["grace_hopper.jpg"] = 1
    for name in ("coffee", "chelsea"):
        save(folder / f"{name}.png", getattr(data, name)())
        expected[f"{name}.png"] = "no face"
    save(folder / "rocket.jpg", data.rocket(), quality=90)
    expected["rocket.jpg"] = "no face"
    save(folder / "border_cut.png", np.ascontiguousarray(data.astronaut()[:, 215:]))
    expected["border_cut.png"] = 1
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[:, 700:3260] = cv2.resize(grace_hopper(), (2560, 3000), interpolation=cv2.INTER_LINEAR)
    (folder / "sub").mkdir(exist_ok=True)
    save(folder / "sub" / "large_4000x3000.jpg", big, quality=85)
    expected["sub/large_4000x3000.jpg"] = 1
    for name, reason in bad_inputs(folder / "bad").items():
        expected[f"bad/{name}"] = 1 if reason is None else reason
    return expected
