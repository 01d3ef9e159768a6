"""Safe decoding of every kind of bad input the issue lists."""

from __future__ import annotations

import builtins
import io
import os

import numpy as np
import pytest
from PIL import Image

from facelib import images
from facelib.images import ImageDecodeError

from faces_fixtures import bad_inputs, exif_rotated_jpeg, grace_hopper, png_header_only


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    return folder, bad_inputs(folder)


@pytest.fixture(scope="module")
def hopper():
    return grace_hopper()


@pytest.mark.parametrize(
    "name", ["zero_bytes.jpg", "truncated.jpg", "text.jpg", "bomb.png", "dir_like.jpg",
             "unreadable.jpg"]
)
def test_bad_files_raise_typed_error_naming_file_and_reason(bad_dir, name):
    folder, expected = bad_dir
    with pytest.raises(ImageDecodeError) as info:
        images.load_image(folder / name)
    err = info.value
    assert err.reason == expected[name]
    assert name in str(err) and expected[name] in str(err)
    assert isinstance(err, ValueError)


def test_permission_denied_is_unreadable(tmp_path, monkeypatch, hopper):
    path = tmp_path / "locked.jpg"
    Image.fromarray(hopper).save(path)
    real_open = builtins.open

    def deny(file, *a, **k):
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(ImageDecodeError, match="locked.jpg: unreadable \\(Permission denied\\)"):
        images.load_image(path)


def test_pixel_limit_checked_before_decoding():
    data = png_header_only(5000, 4000)  # header says 20 Mpx, data holds one row
    with pytest.raises(ImageDecodeError) as info:
        images.load_image(data, max_pixels=10_000_000)
    assert info.value.reason == "too many pixels" and "5000x4000" in str(info.value)


def test_truncated_and_bytes_source(hopper):
    buf = io.BytesIO()
    Image.fromarray(hopper).save(buf, format="PNG")
    whole = buf.getvalue()
    np.testing.assert_array_equal(images.load_image(whole), hopper)
    with pytest.raises(ImageDecodeError, match="<bytes>: truncated or corrupt"):
        images.load_image(whole[:-5000])


def test_cmyk_jpeg_comes_out_rgb(bad_dir, hopper):
    folder, _ = bad_dir
    out = images.load_image(folder / "cmyk.jpg")
    assert out.shape == hopper.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - hopper).mean() < 6


def test_16bit_png_scaled_to_8bit(bad_dir, hopper):
    folder, _ = bad_dir
    assert Image.open(folder / "grey16.png").mode.startswith("I")
    out = images.load_image(folder / "grey16.png")
    expect = hopper.mean(axis=2)
    assert out.dtype == np.uint8 and out.shape == hopper.shape
    assert np.all(out[..., 0] == out[..., 2])
    assert np.abs(out[..., 0] - expect).max() <= 1.0


def test_palette_with_transparency_composited_on_white(bad_dir):
    folder, _ = bad_dir
    im = Image.open(folder / "palette_alpha.png")
    idx = np.asarray(im)
    out = images.load_image(folder / "palette_alpha.png")
    assert out.shape == idx.shape + (3,)
    transparent = idx == 0
    assert transparent.any() and (~transparent).any()
    assert np.all(out[transparent] == 255)
    pal = np.array(im.getpalette()[: 3 * 64]).reshape(-1, 3)
    np.testing.assert_array_equal(out[~transparent], pal[idx[~transparent]])


def test_rgba_and_la_modes(hopper):
    rgba = np.dstack([hopper, np.full(hopper.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    out = images.load_image(buf.getvalue())
    np.testing.assert_array_equal(out[20:, 20:], hopper[20:, 20:])
    assert np.all(out[:10, :10] == 255)


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    # an asymmetric upright picture: red top-left quadrant on grey
    upright = np.full((60, 100, 3), 128, np.uint8)
    upright[:30, :50] = (255, 0, 0)
    path = exif_rotated_jpeg(tmp_path / "rot.jpg", upright)
    assert Image.open(path).size == (60, 100)  # stored sideways
    out = images.load_image(path)
    assert out.shape == (60, 100, 3)
    assert np.abs(out.astype(int) - upright).mean() < 4
    assert out[10, 10, 0] > 200 and out[10, 10, 2] < 60  # red stays top-left


def test_greyscale_replicated_to_three_channels(bad_dir, hopper):
    folder, _ = bad_dir
    out = images.load_image(folder / "grey.jpg")
    assert out.shape == hopper.shape
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_error_pickles_for_worker_processes():
    import pickle

    err = pickle.loads(pickle.dumps(ImageDecodeError("a.jpg", "empty file", "0 bytes")))
    assert (err.source, err.reason, str(err)) == ("a.jpg", "empty file", "a.jpg: empty file (0 bytes)")


def _big_jpeg(tmp_path, w=4000, h=3000):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (h // 100, w // 100, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))
    path = tmp_path / f"big_{w}x{h}.jpg"
    Image.fromarray(img).save(path, quality=92)
    return path


def test_reduced_decode_of_large_jpeg(tmp_path):
    import cv2

    data = _big_jpeg(tmp_path).read_bytes()
    full = images.decode_image(data)
    small, scale, full_hw = images.decode_image_reduced(data, 1024)
    assert scale == 2 and full_hw == (3000, 4000) and small.shape == (1500, 2000, 3)
    ref = cv2.resize(full, (2000, 1500), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - ref).mean() < 2.5
    # the largest reduction that keeps the long side >= the minimum
    assert images.decode_image_reduced(data, 500)[1] == 8
    assert images.decode_image_reduced(data, 501)[1] == 4
    assert images.decode_image_reduced(data, 2001)[1] == 1
    # other formats decode at full size
    buf = io.BytesIO()
    Image.fromarray(full[:1200, :2400]).save(buf, format="PNG")
    out, scale, hw = images.decode_image_reduced(buf.getvalue(), 500)
    assert scale == 1 and out.shape == (1200, 2400, 3) and hw == (1200, 2400)


def test_reduced_decode_keeps_exif_orientation(tmp_path):
    upright = np.full((2400, 1000, 3), 128, np.uint8)
    upright[:1200, :500] = (255, 0, 0)  # red top-left quadrant
    path = exif_rotated_jpeg(tmp_path / "rot.jpg", upright)
    small, scale, full_hw = images.decode_image_reduced(path.read_bytes(), 1000)
    assert scale == 2 and full_hw == (2400, 1000) and small.shape == (1200, 500, 3)
    assert small[100, 100, 0] > 200 and small[100, 100, 2] < 60
    assert small[1100, 400, 0] < 160


# --------------------------------------------------------------------------------------------
# The OpenCV path for plain JPEG / PNG: the same pixels as PIL's
# --------------------------------------------------------------------------------------------
def _pil_only(monkeypatch):
    monkeypatch.setattr(images, "_decode_opencv", lambda *a: None)


def _both(monkeypatch, data: bytes, min_long_side: int | None = None):
    """(OpenCV-path result, PIL-path result) of decode_image[_reduced]; checks the path taken."""
    used = []
    real = images._decode_opencv

    def spy(*a):
        out = real(*a)
        used.append(out is not None)
        return out

    def run():
        if min_long_side is None:
            return images.decode_image(data), 1, None
        return images.decode_image_reduced(data, min_long_side)

    monkeypatch.setattr(images, "_decode_opencv", spy)
    fast = run()
    _pil_only(monkeypatch)
    slow = run()
    monkeypatch.setattr(images, "_decode_opencv", real)
    return fast, slow, used[0]


def _encoded(img: np.ndarray | Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, mode, kw", [
    ("JPEG", "RGB", {}), ("JPEG", "L", {}), ("JPEG", "RGB", {"progressive": True}),
    ("JPEG", "RGB", {"subsampling": 0}), ("PNG", "RGB", {}), ("PNG", "L", {}),
    ("PNG", "RGB", {"optimize": True}),
])
def test_opencv_path_gives_pil_pixels(monkeypatch, hopper, fmt, mode, kw):
    data = _encoded(Image.fromarray(hopper).convert(mode), fmt, **kw)
    (fast, _, _), (slow, _, _), used = _both(monkeypatch, data)
    assert used, "plain 8-bit JPEG/PNG should take the OpenCV path"
    assert fast.shape == slow.shape == hopper.shape and fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_opencv_path_applies_every_exif_orientation_like_pil(monkeypatch, orientation):
    img = np.zeros((40, 64, 3), np.uint8)
    img[:20, :32] = (250, 10, 10)  # red top-left, green top-right: every orientation differs
    img[:20, 32:] = (10, 250, 10)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encoded(img, "JPEG", quality=95, exif=exif.tobytes())
    (fast, _, _), (slow, _, _), used = _both(monkeypatch, data)
    assert used
    np.testing.assert_array_equal(fast, slow)
    stored = Image.open(io.BytesIO(data))
    from PIL import ImageOps

    np.testing.assert_array_equal(fast, np.asarray(ImageOps.exif_transpose(stored).convert("RGB")))


def test_opencv_path_reduced_jpeg_matches_pil_draft(monkeypatch, tmp_path):
    data = _big_jpeg(tmp_path, 2400, 1700).read_bytes()
    for min_side, k in ((1200, 2), (600, 4), (300, 8)):
        fast, slow, used = _both(monkeypatch, data, min_side)
        assert used and fast[1] == slow[1] == k and fast[2] == slow[2] == (1700, 2400)
        np.testing.assert_array_equal(fast[0], slow[0])


def test_cut_short_data_goes_to_pil_and_is_rejected(monkeypatch, hopper):
    jpeg, png = _encoded(hopper, "JPEG"), _encoded(hopper, "PNG")
    for cut in (jpeg[: len(jpeg) // 2], jpeg[:-3], png[: len(png) // 2]):
        with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
            images.decode_image(cut)
    # a PNG missing only the end of its IEND chunk: PIL decodes it (the pixels are complete)
    fast, slow, used = _both(monkeypatch, png[:-3])
    assert not used
    np.testing.assert_array_equal(fast[0], hopper)
    # palette, transparency, 16 bits, CMYK: PIL's conversions, not OpenCV's
    pal = Image.fromarray(hopper).quantize(colors=16)
    for im, fmt in ((pal, "PNG"), (Image.fromarray(hopper).convert("CMYK"), "JPEG"),
                    (Image.fromarray((hopper[..., 0].astype(np.uint16) * 257)), "PNG")):
        _, _, used = _both(monkeypatch, _encoded(im, fmt))
        assert not used


def test_opencv_failure_falls_back_to_pil(monkeypatch, hopper):
    import cv2

    def fail(*a, **k):
        raise cv2.error("simulated")

    monkeypatch.setattr(cv2, "imdecode", fail)
    np.testing.assert_array_equal(images.decode_image(_encoded(hopper, "PNG")), hopper)


def test_png_orientation_read_without_decoding(monkeypatch, hopper):
    data = _encoded(hopper, "PNG")
    calls = []
    real = Image.Image.getexif
    monkeypatch.setattr(Image.Image, "getexif", lambda self: calls.append(1) or real(self))
    images.decode_image(data)
    assert not calls  # no EXIF chunk: PIL is not asked (it would decode the pixels to look)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = images.decode_image(_encoded(hopper, "PNG", exif=exif.tobytes()))
    assert calls and out.shape == (512, 600, 3)  # rotated upright
