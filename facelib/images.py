"""Safe image decoding: any photo on disk (or its bytes) to an upright RGB ``uint8`` array.

Crawled photos come in every mode PIL knows: greyscale, palette with transparency, CMYK JPEGs,
16-bit PNGs, EXIF-rotated phone pictures; some are truncated, some are not images at all, some
claim sizes that would exhaust memory. :func:`load_image` turns each into an (H, W, 3) ``uint8``
RGB array or raises :class:`ImageDecodeError`, whose message names the file and the reason.

First step of the preprocessing of supplement 1.1 (:mod:`facelib.faces.preprocess`); shown in
``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageDecodeError", "REASONS", "load_image", "read_bytes", "decode_image",
           "decode_image_reduced"]

# Reason codes, stable strings that the rejects table groups by.
NOT_A_FILE = "not a file"
UNREADABLE = "unreadable"
EMPTY = "empty file"
NOT_AN_IMAGE = "not an image"
TOO_LARGE = "too many pixels"
CORRUPT = "truncated or corrupt"
REASONS = (NOT_A_FILE, UNREADABLE, EMPTY, NOT_AN_IMAGE, TOO_LARGE, CORRUPT)

# Background for transparent pixels: alpha is composited over white, as a viewer shows it.
_BACKGROUND = (255, 255, 255)
_ORIENTATION = 0x0112  # EXIF tag


class ImageDecodeError(ValueError):
    """An image could not be turned into pixels.

    Attributes:
        source: the file name (or ``"<bytes>"``).
        reason: one of :data:`REASONS`.
        detail: what the decoder said, if anything.
    """

    def __init__(self, source: str, reason: str, detail: str = "") -> None:
        self.source = source
        self.reason = reason
        self.detail = detail
        super().__init__(f"{source}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.source, self.reason, self.detail))


def read_bytes(path: Path | str) -> bytes:
    """The content of ``path``, or :class:`ImageDecodeError` (not a file, unreadable, empty)."""
    path = Path(path)
    if path.is_dir():
        raise ImageDecodeError(str(path), NOT_A_FILE, "a directory")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as e:
        raise ImageDecodeError(str(path), UNREADABLE, "no such file") from e
    except OSError as e:
        raise ImageDecodeError(str(path), UNREADABLE, e.strerror or type(e).__name__) from e
    if not data:
        raise ImageDecodeError(str(path), EMPTY, "0 bytes")
    return data


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL mode to (H, W, 3) uint8 RGB."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16-bit (or wider) greyscale: scale 0..65535 to 0..255; 8-bit data stored wide stays.
        a = np.asarray(im).astype(np.float64)
        if mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257.0
        g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))  # L, 1, P, CMYK, YCbCr, LAB, HSV


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> np.ndarray:
    """Decode encoded image bytes to an upright RGB array.

    Args:
        data: the encoded file content.
        name: used in error messages.
        max_pixels: images with more pixels (width x height, read from the header before any
            pixel is decoded) are rejected; default ``recipes.crop().max_image_pixels``.

    Returns:
        (H, W, 3) uint8 RGB, EXIF orientation applied (H, W after rotation).

    Raises:
        ImageDecodeError: empty data, not an image, too many pixels, truncated or corrupt.
    """
    return _decode(data, name, max_pixels, None)[0]


def decode_image_reduced(
    data: bytes, min_long_side: int, name: str = "<bytes>", max_pixels: int | None = None
) -> tuple[np.ndarray, int, tuple[int, int]]:
    """Decode at 1/2, 1/4 or 1/8 scale when the image is large enough, else at full size.

    JPEG can decode directly at a reduced scale (libjpeg's DCT scaling), several times faster
    than a full decode followed by a resize. The largest reduction whose long side stays at or
    above ``min_long_side`` is used; other formats decode at full size.

    Args:
        data: the encoded file content.
        min_long_side: the long side of the result is at least this (or the full size).
        name: used in error messages.
        max_pixels: decompression-bomb limit, checked on the full size.

    Returns:
        (image, scale, (H, W)): (h, w, 3) uint8 RGB upright; ``scale`` in {1, 2, 4, 8} with
        full-size coordinates = scale x coordinates in ``image``; (H, W) the upright full size.

    Raises:
        ImageDecodeError: as :func:`decode_image`.
    """
    return _decode(data, name, max_pixels, min_long_side)


def _decode(
    data: bytes, name: str, max_pixels: int | None, min_long_side: int | None
) -> tuple[np.ndarray, int, tuple[int, int]]:
    if max_pixels is None:
        from facelib import recipes

        max_pixels = recipes.PAPER_CROP.max_image_pixels
    if len(data) == 0:
        raise ImageDecodeError(name, EMPTY, "0 bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as e:
            raise ImageDecodeError(name, TOO_LARGE, str(e)) from e
        except UnidentifiedImageError as e:
            raise ImageDecodeError(name, NOT_AN_IMAGE, "unknown format") from e
        except Exception as e:  # a plugin choking on a damaged header
            raise ImageDecodeError(name, CORRUPT, f"{type(e).__name__}: {e}") from e
        w, h = im.size
        if w * h > max_pixels:
            raise ImageDecodeError(
                name, TOO_LARGE, f"{w}x{h} = {w * h} pixels > limit {max_pixels}"
            )
        if w == 0 or h == 0:
            raise ImageDecodeError(name, CORRUPT, f"size {w}x{h}")
        orientation = _orientation(im, data)
        full_hw = (w, h) if orientation in (5, 6, 7, 8) else (h, w)
        k = 1
        if min_long_side and im.format == "JPEG":
            k = 8
            while k > 1 and max(w, h) // k < min_long_side:
                k //= 2
        fast = _decode_opencv(data, im, k, orientation)
        if fast is not None:
            return fast, k, full_hw
        scale = 1
        if k > 1:
            im.draft(im.mode, (w // k, h // k))
            scale = round(w / im.size[0])
        try:
            im.load()  # raises on truncated data (unless PIL's LOAD_TRUNCATED_IMAGES is set)
            if orientation != 1:
                im = ImageOps.exif_transpose(im)
            out = _to_rgb(im)
        except Image.DecompressionBombError as e:
            raise ImageDecodeError(name, TOO_LARGE, str(e)) from e
        except Exception as e:  # OSError("image file is truncated"), SyntaxError, ...
            raise ImageDecodeError(name, CORRUPT, f"{type(e).__name__}: {e}") from e
    return np.ascontiguousarray(out), scale, full_hw


def _orientation(im: Image.Image, data: bytes) -> int:
    """The EXIF orientation tag (1: upright), read from the header without decoding pixels.

    PIL's ``getexif`` on a PNG decodes the whole image to look for EXIF that may follow the
    pixel data; it is asked only when the file holds an EXIF chunk (``eXIf``) or the text
    chunk that PIL also reads EXIF from.
    """
    if im.format == "PNG" and b"eXIf" not in data and b"Raw profile type exif" not in data:
        return 1
    try:
        return int(im.getexif().get(_ORIENTATION, 1))
    except Exception:  # a damaged EXIF block: decode without it
        return 1


# cv2.imdecode flags for a JPEG decoded at 1/k scale (libjpeg's DCT scaling, as PIL's draft)
_CV2_FLAGS = {1: "IMREAD_COLOR", 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4",
              8: "IMREAD_REDUCED_COLOR_8"}
_JPEG_END, _PNG_END = b"\xff\xd9", b"IEND\xaeB`\x82"


def _decode_opencv(data: bytes, im: Image.Image, k: int, orientation: int) -> np.ndarray | None:
    """OpenCV's decode of the common case, or ``None`` to let PIL decode.

    The common case is an 8-bit RGB or greyscale JPEG or PNG (no palette, no transparency)
    that ends with its end marker. OpenCV uses libjpeg-turbo and zlib as PIL does and gives the
    same pixels (tests compare the two, and all 53 photos of a folder of real photos matched), directly
    at 1/k scale for JPEG; decoding took ~10% less time per photo there (4.5 -> 4.1 ms). Everything else, including data that is cut short (which OpenCV would decode
    partly without complaint), goes to PIL, whose errors name the reason. The EXIF orientation
    read by PIL is applied here, so both paths rotate alike.
    """
    if im.format == "JPEG":
        ok = im.mode in ("RGB", "L") and data.rstrip(b"\0").endswith(_JPEG_END)
    elif im.format == "PNG":
        ok = (im.mode in ("RGB", "L") and "transparency" not in im.info
              and len(im.tile) == 1 and im.tile[0].args in ("RGB", "L")  # 8 bits per sample
              and data.endswith(_PNG_END))
    else:
        ok = False
    if not ok:
        return None
    import cv2

    flags = getattr(cv2, _CV2_FLAGS[k]) | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:  # e.g. beyond OpenCV's own pixel limit: PIL decides
        return None
    w, h = im.size
    if bgr is None or bgr.shape != (-(-h // k), -(-w // k), 3):
        return None  # anything unexpected: PIL decides
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(_ORIENT[orientation](rgb)) if orientation in _ORIENT else rgb


# EXIF orientation -> the array operation that makes the stored pixels upright (what
# PIL.ImageOps.exif_transpose does: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90
# clockwise, 7 transverse, 8 rotate 90 counter-clockwise)
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def load_image(source: Path | str | bytes, max_pixels: int | None = None) -> np.ndarray:
    """Read and decode an image file (or bytes) to an upright RGB array.

    Args:
        source: a path, or the encoded bytes.
        max_pixels: decompression-bomb limit (see :func:`decode_image`).

    Returns:
        (H, W, 3) uint8 RGB with EXIF orientation applied.

    Raises:
        ImageDecodeError: the message names the file and one of :data:`REASONS`.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), max_pixels=max_pixels)
    return decode_image(read_bytes(source), name=os.fspath(source), max_pixels=max_pixels)
