"""Deterministic labelled synthetic faces: the demo's stand-in for the licence-restricted datasets.

:func:`render` draws face ``index`` of a set: a person (one of ``num_identities``, with
persistent face shape, skin, hair, eyes and accessories) whose 3D 68-point face
(:mod:`facelib.data.face_model`) is deformed by 12 DISFA action units, rotated by yaw, pitch and
roll and projected; the contour, brows, eyes (iris, lids), nose, lips, teeth, hair, ears and
wrinkles are drawn along the projected points, on a cluttered background, then lit, occluded,
blurred, noised and JPEG-compressed at random. Labels: identity, 68 2D and 3D landmarks, the
5-point subset, pose, AU intensities, valence, arousal, expression and the face box, i.e. what
the five downstream tasks of the paper need (supplement 1.2).

Determinism: every random number comes from a ``numpy.random.Generator`` seeded by
``(seed, index)`` (or ``(seed, identity)`` for a person's parameters); geometry uses elementwise
arithmetic only; drawing uses OpenCV's integer rasteriser (fixed-point coordinates with 4
fractional bits), its bit-exact 8-bit Gaussian blur and libjpeg's integer DCT. The same
``(seed, index, size, num_identities)`` gives the same bytes on any machine with the same
OpenCV and NumPy.

Shown in ``notebooks/01_data_curation.py``; speed in ``benchmarks/bench_synth.py``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np
import torch.utils.data

from facelib.data import face_model as fm

__all__ = [
    "SampleParams",
    "sample_params",
    "render",
    "render_params",
    "identity",
    "SynthFaces",
    "LABEL_KEYS",
]

#: Keys of the labels dict returned by :func:`render`.
LABEL_KEYS: tuple[str, ...] = (
    "identity", "landmarks_2d", "landmarks_5", "landmarks_3d", "pose", "au", "valence",
    "arousal", "expression", "box",
)

_SHIFT = 4                      # fixed-point fractional bits for OpenCV drawing
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA
_IDENTITY_STREAM = 0            # SeedSequence spawn keys: persons and samples never collide
_SAMPLE_STREAM = 1
_SCENE_STREAM = 2               # scene draws: per sample (key 0) or shared by a scene (key 1)
_GLASSES_P = 0.2                # probability that a face wears glasses (an accessory, per image)
_EXPRESSION_LABEL_NOISE = 0.05  # probability that the expression label is replaced at random


def _check_int(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _rng(seed: int, stream: int, key: int, sub: int | None = None) -> np.random.Generator:
    spawn = (stream, key) if sub is None else (stream, sub, key)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=spawn)))


@functools.lru_cache(maxsize=4096)
def identity(ident: int, seed: int = 0) -> fm.Identity:
    """The persistent parameters of person ``ident`` in the set of ``seed`` (cached)."""
    _check_int("identity", ident, 0)
    _check_int("seed", seed, 0)
    return fm.make_identity(ident, _rng(seed, _IDENTITY_STREAM, ident))


@dataclass(frozen=True)
class SampleParams:
    """Everything drawn for one sample; :func:`render_params` turns it into pixels and labels.

    ``scale`` is pixels per template unit, ``center`` the image position of the template
    origin (the middle of the eye line); angles are in degrees (see
    :func:`facelib.data.face_model.rotation_matrix`).
    """

    index: int
    seed: int
    size: int
    identity: int
    au: np.ndarray              # (12,) integer intensities 0-5 (as DISFA codes them)
    asymmetry: float            # one-sided lip-corner pull (contempt)
    expression: int             # AffectNet code, after label noise
    valence: float
    arousal: float
    yaw: float
    pitch: float
    roll: float
    scale: float
    center: tuple[float, float]
    gaze: tuple[float, float]
    glasses: bool               # an accessory of this image, not of the person
    glasses_color: tuple[int, int, int]
    rng_state: dict[str, Any]   # the generator state for the per-image nuisance draws
    scene: int | None           # the shared scene (None: the sample's own)
    scene_rng_state: dict[str, Any]  # the generator state for the scene draws


def _draw_aus(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """AU intensities drawn around a latent expression prototype (+ spontaneous activity)."""
    latent = int(rng.choice(8, p=[0.23] + [0.11] * 7))
    au = np.zeros(12)
    strength = 0.45 + 0.55 * rng.random()
    if latent:
        for a in fm.AU_PROTOTYPES[latent]:
            au[fm.AU_IDS.index(a)] = 5.0 * strength * (0.55 + 0.45 * rng.random())
    spontaneous = rng.random(12) < 0.12
    au = np.where(spontaneous & (au == 0), 2.0 * rng.random(12), au)
    return np.clip(np.rint(au), 0, 5), latent


def sample_params(index: int, seed: int = 0, size: int = 128, num_identities: int = 100,
                  scene: int | None = None) -> SampleParams:
    """Draw the identity, expression, pose, framing and nuisance seeds of sample ``index``.

    The person is ``index % num_identities``, so the first ``k * num_identities`` samples hold
    ``k`` images of each person. Every nuisance is drawn independently of the person. The
    *scene* (background, clothing colour, lighting and colour cast) is the sample's own unless
    ``scene`` is given: then every sample with that ``scene`` (and ``seed``) shares it, which
    makes probe sets that cross persons with scenes (:mod:`facelib.swav.probe`); pose,
    expression, glasses, occlusion, blur, noise and compression stay per sample. AUs are integers 0-5; the expression is
    :func:`facelib.data.face_model.expression_from_aus` of them, replaced by a uniformly random
    class with probability 0.05 (label noise); valence and arousal are
    :func:`facelib.data.face_model.affect_from_aus` plus Gaussian noise (sd 0.08), clipped to
    [-1, 1]. Yaw ~ N(0, 22) clipped to +-60 deg, pitch and roll ~ N(0, 10) clipped to +-30 deg.
    """
    index = _check_int("index", index, 0)
    seed = _check_int("seed", seed, 0)
    size = _check_int("size", size, 32)
    num_identities = _check_int("num_identities", num_identities, 1)
    if scene is not None:
        scene = _check_int("scene", scene, 0)
    rng = _rng(seed, _SAMPLE_STREAM, index)
    scene_rng = _rng(seed, _SCENE_STREAM, index, 0) if scene is None else _rng(seed, _SCENE_STREAM, scene, 1)
    au, _ = _draw_aus(rng)
    expression = fm.expression_from_aus(au)
    asym = 0.0
    if expression == 7:
        asym = (0.7 + 0.3 * rng.random()) * (1.0 if rng.random() < 0.5 else -1.0)
    if rng.random() < _EXPRESSION_LABEL_NOISE:
        expression = int(rng.integers(8))
    v, a = fm.affect_from_aus(au)
    noise = rng.normal(0.0, 0.08, size=2)
    yaw = min(max(float(rng.normal(0.0, 22.0)), -60.0), 60.0)
    pitch = min(max(float(rng.normal(0.0, 10.0)), -30.0), 30.0)
    roll = min(max(float(rng.normal(0.0, 10.0)), -30.0), 30.0)
    scale = size * (0.16 + 0.07 * rng.random())
    center = (size * (0.5 + 0.14 * (rng.random() - 0.5)), size * (0.44 + 0.1 * (rng.random() - 0.5)))
    gaze = (0.5 * (rng.random() - 0.5), 0.3 * (rng.random() - 0.5))
    glasses = bool(rng.random() < _GLASSES_P)
    glasses_color = fm._color(rng.random(3) * 120)
    return SampleParams(
        index=index, seed=seed, size=size, identity=index % num_identities, au=au,
        asymmetry=asym, expression=expression,
        valence=min(max(v + float(noise[0]), -1.0), 1.0), arousal=min(max(a + float(noise[1]), -1.0), 1.0),
        yaw=yaw, pitch=pitch, roll=roll, scale=scale, center=center, gaze=gaze,
        glasses=glasses, glasses_color=glasses_color,
        rng_state=rng.bit_generator.state, scene=scene, scene_rng_state=scene_rng.bit_generator.state,
    )


# ------------------------------------------------------------------------------------------
# Fixed point sets (template units) used for drawing, built once
# ------------------------------------------------------------------------------------------
def _ellipsoid(thetas: list[float], psis: list[float], grow: tuple[float, float, float]) -> np.ndarray:
    cx, cy, cz = fm.HEAD_CENTER
    rx, ry, rz = (r * g for r, g in zip(fm.HEAD_RADII, grow))
    return np.array([[cx + rx * math.sin(t) * math.sin(p), cy - ry * math.cos(t),
                      cz + rz * math.sin(t) * math.cos(p)] for t in thetas for p in psis])


_PSI = [2 * math.pi * k / 16 for k in range(16)]
_HEAD = _ellipsoid([0.1 + 0.085 * math.pi * k for k in range(8)], _PSI, (1.0, 1.0, 1.0))
_EAR = np.array([[1.0 + 0.1 * (1 + math.sin(a)), 0.12 + 0.26 * math.cos(a), -0.05 + 0.16 * math.sin(a)]
                 for a in [2 * math.pi * k / 10 for k in range(10)]])
_NECK = np.array([[-0.55, 0.7, -0.3], [0.55, 0.7, -0.3], [0.62, 3.0, -0.4], [-0.62, 3.0, -0.4]])
_SHIRT = np.array([[-0.7, 2.0, -0.3], [0.7, 2.0, -0.3], [2.0, 2.5, -0.5], [2.4, 4.5, -0.5],
                   [-2.4, 4.5, -0.5], [-2.0, 2.5, -0.5]])


@functools.lru_cache(maxsize=4096)
def _identity_points(ident: int, seed: int) -> dict[str, Any]:
    """Identity-dependent drawing points (hair, forehead, box top), template units."""
    p = identity(ident, seed)
    out: dict[str, np.ndarray] = {}
    fw = p.face_width
    # The hair cap as quads on an ellipsoid slightly larger than the skull: only the quads
    # facing the camera are drawn, so the back of the cap never covers the face.
    grow = (1.24 * fw, 1.2, 1.2) if p.hair_style == 4 else (1.07 * fw, 1.06, 1.07)   # curly: volume
    cap_t = [0.1 * math.pi * k for k in range(6)]             # top of the head down to 0.5 pi
    grid = _ellipsoid(cap_t, _PSI, grow).reshape(len(cap_t), len(_PSI), 3)
    j = np.arange(len(_PSI))
    quads = np.stack([grid[:-1, j], grid[:-1, (j + 1) % len(j)], grid[1:, (j + 1) % len(j)], grid[1:, j]],
                     axis=2).reshape(-1, 4, 3)                 # (F, 4, 3)
    out["cap"] = quads.reshape(-1, 3)
    cx, cy, cz = fm.HEAD_CENTER
    mid = quads.mean(axis=1)
    rx, ry, rz = (r * g for r, g in zip(fm.HEAD_RADII, grow))
    cap_normals = np.stack([(mid[:, 0] - cx) / rx ** 2, (mid[:, 1] - cy) / ry ** 2, (mid[:, 2] - cz) / rz ** 2], axis=1)
    if p.hair_style in (1, 3, 4):                               # hair behind, down the back
        wide = 1.3 if p.hair_style == 4 else 1.12
        back = _ellipsoid([0.1 * math.pi * k for k in range(8)],
                          [math.pi * (0.5 + k / 8) for k in range(9)], (wide * fw, 1.08, 1.1))
        drop = {1: 2.0, 3: 0.9, 4: 0.6}[p.hair_style]
        ends = np.array([[-1.05 * wide / 1.12 * fw, drop, -0.3], [1.05 * wide / 1.12 * fw, drop, -0.3],
                         [-0.8 * fw, drop + 0.1, -0.7], [0.8 * fw, drop + 0.1, -0.7]])
        out["back"] = np.concatenate([back, ends])
    # Forehead skin patch: carves the front hairline out of the cap.
    xs = np.linspace(-0.86, 0.86, 11)
    curve = 0.08 if p.hair_style == 5 else 0.32                 # a fringe is cut nearly straight
    hl = np.array([p.hairline + curve * (v / 0.86) ** 4 for v in xs])
    top = np.stack([xs * fw, hl, np.zeros_like(xs)], axis=1)
    # (down to y = 0.1, below the cap's lowest edge, so no hair-coloured seam is left)
    low = np.array([[0.86 * fw, 0.1, 0.0], [-0.86 * fw, 0.1, 0.0]])
    patch = np.concatenate([top, low])
    patch[:, 2] = fm.surface_z(patch[:, 0] / fw, patch[:, 1]) + 0.01
    out["forehead"] = patch
    bt = np.array([[x * fw, -0.85, 0.0] for x in (-0.6, -0.3, 0.0, 0.3, 0.6)])
    bt[:, 2] = fm.surface_z(bt[:, 0] / fw, bt[:, 1])
    out["box_top"] = bt
    out["ear_l"] = _EAR * [-fw, 1, 1]
    out["ear_r"] = _EAR * [fw, 1, 1]
    out["head"] = _HEAD * [fw, 1, 1]
    out["neck"] = _NECK * [fw, 1, 1]
    out["shirt"] = _SHIRT * [fw, 1, 1]
    out["temple_l"] = np.array([[-fw, -0.02, -0.1]])
    out["temple_r"] = np.array([[fw, -0.02, -0.1]])
    # One array for a single projection per sample, with the slice of each part.
    slices, at = {}, 0
    for k, v in out.items():
        slices[k] = slice(at, at + len(v))
        at += len(v)
    return {"static": np.concatenate(list(out.values())), "slices": slices,  # type: ignore[dict-item]
            "shape": fm.identity_shape(p), "cap_normals": cap_normals}


_BROW_L = np.array([0.5, 0.8, 1.0, 1.0, 1.0])[:, None] * np.array([0.0, 1.0, 0.0])
_BROW_R = _BROW_L[::-1].copy()
_RIM = np.array([[0.24 * math.cos(t), 0.17 * math.sin(t), 0.0] for t in [2 * math.pi * k / 12 for k in range(12)]])
_NOSE_SIDE = np.array([[-1.0, 0, -0.06], [-1.0, 0, -0.05], [-1.2, 0, -0.05], [-1.6, 0, -0.1]])


# ------------------------------------------------------------------------------------------
# Drawing helpers
# ------------------------------------------------------------------------------------------
def _fx(pts: np.ndarray) -> np.ndarray:
    """(N, >=2) pixel coordinates -> (N, 2) int32 fixed point for OpenCV's ``shift``.

    Arrays already in fixed point (int32) are returned as they are.
    """
    if pts.dtype == np.int32:
        return pts
    return np.rint(pts[:, :2] * _ONE).astype(np.int32)


def _poly(img: np.ndarray, pts: np.ndarray, color: tuple[int, int, int]) -> None:
    cv2.fillPoly(img, [_fx(pts)], color, _AA, _SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, color: tuple[int, int, int], thick: int, closed: bool = False) -> None:
    cv2.polylines(img, [_fx(pts)], closed, color, max(1, thick), _AA, _SHIFT)


def _hull(img: np.ndarray, pts: np.ndarray, color: tuple[int, int, int]) -> None:
    h = cv2.convexHull(_fx(pts))
    cv2.fillConvexPoly(img, h, color, _AA, _SHIFT)


def _shade(c: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return (int(min(255, c[0] * k)), int(min(255, c[1] * k)), int(min(255, c[2] * k)))


def _area(pts: np.ndarray) -> float:
    """Polygon area (shoelace)."""
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float((x[:-1] * y[1:] - x[1:] * y[:-1]).sum() + x[-1] * y[0] - x[0] * y[-1]))


def _muted(rng: np.random.Generator) -> list[int]:
    """A random colour of moderate saturation (a grey level pulled part-way toward a hue)."""
    grey = int(rng.integers(35, 221))
    hue = rng.integers(0, 256, 3)
    sat = 0.15 + 0.55 * rng.random()
    return [min(max(int(grey + (int(h) - grey) * sat), 0), 255) for h in hue]


def _background(img: np.ndarray, palette_rng: np.random.Generator, rng: np.random.Generator) -> None:
    """A two-colour gradient with 2-7 random shapes (rectangles, discs, bars, polygons).

    The colours come from ``palette_rng`` (the scene's), the layout from ``rng`` (the image's).
    """
    s = img.shape[0]
    c0 = _muted(palette_rng)
    c1 = [min(max(v + int(d), 0), 255) for v, d in zip(c0, palette_rng.integers(-70, 71, 3))]
    ramp = (np.arange(s, dtype=np.int32) * 256) // s
    grad = (np.array(c0, np.int32)[None, :] + (np.array(c1, np.int32) - c0)[None, :] * ramp[:, None] // 256)
    if rng.random() < 0.5:
        img[:] = grad[:, None, :].astype(np.uint8)
    else:
        img[:] = grad[None, :, :].astype(np.uint8)
    k = int(rng.integers(2, 8))
    kinds = rng.integers(0, 4, k)
    cols = palette_rng.integers(-90, 91, (8, 3))[:k]
    geo = rng.random((k, 4))
    extra = rng.random((k, 12))
    for j in range(k):
        col = tuple(min(max(v + int(d), 0), 255) for v, d in zip(c0, cols[j]))
        a = geo[j, :2] * s
        b = a + (geo[j, 2:] - 0.5) * s * 0.8
        kind = int(kinds[j])
        if kind == 0:
            cv2.rectangle(img, (int(a[0] * _ONE), int(a[1] * _ONE)), (int(b[0] * _ONE), int(b[1] * _ONE)),
                          col, -1, _AA, _SHIFT)
        elif kind == 1:
            r = int((s / 16 + extra[j, 0] * s * 3 / 16) * _ONE)
            cv2.circle(img, (int(a[0] * _ONE), int(a[1] * _ONE)), r, col, -1, _AA, _SHIFT)
        elif kind == 2:
            _line(img, np.stack([a, b]), col, 1 + int(extra[j, 0] * max(1, s // 20)))
        else:
            m = 3 + int(extra[j, 0] * 3)
            _poly(img, a + (extra[j, 1:1 + 2 * m].reshape(m, 2) - 0.5) * s * 0.5, col)


def _iris(img: np.ndarray, eye: np.ndarray, eye_fx: np.ndarray, center: np.ndarray, radius: float,
          color: tuple[int, int, int]) -> None:
    """Draw the iris, pupil and catch-light, clipped to the eye opening.

    Args:
        eye: (6, 2) eye outline in pixels; ``eye_fx`` the same in fixed point.
        center: (2,) iris centre in pixels; ``radius`` in pixels.
    """
    h, w = img.shape[:2]
    x0 = max(int(math.floor(eye[:, 0].min())) - 1, 0)
    y0 = max(int(math.floor(eye[:, 1].min())) - 1, 0)
    x1 = min(int(math.ceil(eye[:, 0].max())) + 2, w)
    y1 = min(int(math.ceil(eye[:, 1].max())) + 2, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = img[y0:y1, x0:x1]
    tmp = roi.copy()
    cx, cy = int(round((center[0] - x0) * _ONE)), int(round((center[1] - y0) * _ONE))
    r = max(1, int(round(radius * _ONE)))
    cv2.circle(tmp, (cx, cy), r, color, -1, _AA, _SHIFT)
    cv2.circle(tmp, (cx, cy), max(1, int(r * 0.45)), (12, 10, 10), -1, _AA, _SHIFT)
    cv2.circle(tmp, (cx + int(r * 0.35), cy - int(r * 0.35)), max(1, int(r * 0.22)), (245, 245, 245), -1,
               _AA, _SHIFT)
    # A hard mask is enough: the lid lines drawn next cover the border of the opening.
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [eye_fx - np.array([x0 * _ONE, y0 * _ONE], np.int32)], 255, cv2.LINE_8, _SHIFT)
    cv2.copyTo(tmp, mask, roi)


def _light(img: np.ndarray, rng: np.random.Generator) -> None:
    """Brightness, colour cast and a linear lighting gradient, in integer arithmetic."""
    s = img.shape[0]
    ang = rng.random() * 2 * math.pi
    k = 0.7 * rng.random()
    gx = int(round(k * math.cos(ang) * 2 * 1024 / s))                 # 1/1024 per pixel
    gy = int(round(k * math.sin(ang) * 2 * 1024 / s))
    base = int(rng.integers(34, 84)) * 16                             # exposure 0.53-1.31
    cast = rng.integers(190, 323, 3).astype(np.uint16)               # white balance, 1/256 units
    xi = np.arange(s, dtype=np.int32) - s // 2
    gain = (base + gy * xi[:, None] + gx * xi[None, :]) >> 4         # (s, s), 1/64 units
    np.clip(gain, 16, 128, out=gain)
    # gain (<= 128) x cast (<= 322) fits in uint16; >> 8 gives the per-channel gain in 1/64.
    g3 = (gain.astype(np.uint16)[:, :, None] * cast) >> 8
    out = img.astype(np.uint16)
    out *= g3
    out >>= 6
    np.minimum(out, 255, out=out)
    img[:] = out


# ------------------------------------------------------------------------------------------
# The renderer
# ------------------------------------------------------------------------------------------
def render(index: int, seed: int = 0, size: int = 128, num_identities: int = 100) -> tuple[np.ndarray, dict[str, Any]]:
    """Render synthetic face ``index`` of the set ``seed`` and return it with its labels.

    Args:
        index: sample index (>= 0); the person is ``index % num_identities``.
        seed: the set's seed (>= 0): same seed and index -> same bytes.
        size: image side in pixels (>= 32).
        num_identities: number of distinct persons in the set.

    Returns:
        ``(image, labels)``: image (size, size, 3) RGB uint8; labels with ``identity`` (int),
        ``landmarks_2d`` (68, 2) float32 pixels (iBUG layout), ``landmarks_5`` (5, 2) float32
        (eye centres, nose tip, mouth corners), ``landmarks_3d`` (68, 3) float32 (x, y in
        pixels as the 2D points, z in pixels toward the camera), ``pose`` (3,) float32 yaw,
        pitch, roll in degrees, ``au`` (12,) float32 intensities 0-5 of AUs
        1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26, ``valence`` and ``arousal`` (float in
        [-1, 1]), ``expression`` (int, AffectNet code 0-7) and ``box`` (4,) float32 x0, y0,
        x1, y1 (bounds of the 68 points and of the forehead up to the hairline).
    """
    return render_params(sample_params(index, seed, size, num_identities))


def render_params(sp: SampleParams, nuisance: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw the face described by ``sp`` (see :func:`render`).

    ``nuisance=False`` skips occlusion, lighting, blur, noise and JPEG (for figures that show
    what the labels do); the dataset always uses ``True``.
    """
    s = sp.size
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = sp.rng_state
    person = identity(sp.identity, sp.seed)
    ipts = _identity_points(sp.identity, sp.seed)
    shape = fm.apply_aus(ipts["shape"], sp.au, sp.asymmetry)
    au = dict(zip(fm.AU_IDS, sp.au))
    sc = sp.scale

    # 1. Every 3D point the drawing needs, projected in one go.
    geo: dict[str, np.ndarray] = {"lm": shape, "static": ipts["static"]}
    if au[12] + au[6] + au[9] >= 4:                      # nasolabial folds
        for wing, corner, sgn in ((31, 48, -1.0), (35, 54, 1.0)):
            a, b = shape[wing], shape[corner]
            geo[f"fold{wing}"] = np.array([a + [sgn * 0.1, -0.02, -0.05],
                                           (a + b) / 2 + [sgn * 0.17, 0.0, -0.05],
                                           b + [sgn * 0.1, 0.1, -0.05]])
    if au[1] + au[2] >= 5:                               # horizontal forehead lines
        by = shape[17:27, 1].min()
        for k, dy in enumerate((0.16, 0.27)):
            arc = np.array([[x, by - dy + 0.04 * x * x, 0.0] for x in (-0.45, -0.15, 0.15, 0.45)])
            arc[:, 2] = fm.surface_z(arc[:, 0], arc[:, 1])
            geo[f"forehead{k}"] = arc
    if au[4] >= 2:                                       # vertical lines between the brows
        for k, x in enumerate((-0.05, 0.05)):
            geo[f"glabella{k}"] = np.array([[x, shape[21, 1] - 0.1, 1.0], [x * 1.3, shape[21, 1] + 0.04, 1.0]])
    bt = 0.035 * person.brow_thickness                   # brows: a band, thicker inside
    for lo, prof in ((17, _BROW_L), (22, _BROW_R)):
        b = shape[lo:lo + 5]
        d = prof * bt
        geo[f"brow{lo}"] = np.concatenate([b - d, (b + d)[::-1]])
    for lo in (36, 42):
        c3 = shape[lo:lo + 6].mean(axis=0)
        half = abs(0.5 * float(shape[lo + 3, 0] - shape[lo, 0]))
        geo[f"iris{lo}"] = (c3 + [sp.gaze[0] * half, sp.gaze[1] * half + 0.005, 0.05])[None]
        if au[6] >= 3:                                   # crow's feet
            outer = shape[lo] if lo == 36 else shape[lo + 3]
            sgn = -1.0 if lo == 36 else 1.0
            geo[f"crow{lo}"] = np.array([outer + [sgn * 0.04, -0.04, -0.05], outer + [sgn * 0.12, -0.072, -0.1],
                                         outer + [sgn * 0.04, 0.03, -0.05], outer + [sgn * 0.12, 0.054, -0.1]])
        if sp.glasses:
            c3 = c3 + [0, 0.01, 0.14]
            geo[f"rim{lo}"] = c3 + _RIM
    nw = 0.07 * person.nose_width
    bridge = shape[27:31]
    side = _NOSE_SIDE * [nw, 1, 1]
    geo["nose"] = np.concatenate([bridge + side, shape[31:36], (bridge + side * [-1, 1, 1])[::-1]])
    far = 1.0 if sp.yaw < 0 else -1.0
    geo["bridge"] = bridge + side * [-far, 1, 1]
    # Shade on the cheek turned away from the camera: the jaw contour of that side and a copy
    # moved toward the face's centre line (a crescent, wider as the head turns).
    contour = shape[0:8] if sp.yaw < 0 else shape[9:17][::-1]
    inset = contour * [0.72, 1.0, 1.0] + [0.0, -0.02, 0.12]
    geo["shade"] = np.concatenate([contour, inset[::-1]])
    if au[9] >= 2:
        q = bridge[0] * 0.7 + bridge[1] * 0.3, bridge[0] * 0.45 + bridge[1] * 0.55
        geo["wrinkle"] = np.array([q[0] + [-0.06, 0, 0], q[0] + [0.06, 0, 0], q[1] + [-0.06, 0, 0], q[1] + [0.06, 0, 0]])
    names = list(geo)
    rot = fm.rotation_matrix(sp.yaw, sp.pitch, sp.roll)
    allp = fm.project(np.concatenate([geo[k] for k in names]), rot, sc, sp.center)
    pr: dict[str, np.ndarray] = {}
    at = 0
    for k in names:
        pr[k] = allp[at:at + len(geo[k])]
        at += len(geo[k])
    lm3 = pr["lm"]
    lm = lm3[:, :2]
    st = pr["static"]
    sl = ipts["slices"]
    # The same points in OpenCV fixed point, converted once.
    fixed = _fx(allp)
    prf: dict[str, np.ndarray] = {}
    at = 0
    for k in names:
        prf[k] = fixed[at:at + len(geo[k])]
        at += len(geo[k])
    lmf, stf = prf["lm"], prf["static"]

    # 2. Background, body, ears, hair behind the head, the head, the hair cap, the forehead.
    skin, hair = person.skin, person.hair
    dark_skin = _shade(skin, 0.78)
    line_w = max(1, int(round(sc * 0.035)))
    img = np.empty((s, s, 3), np.uint8)
    scene_rng = np.random.Generator(np.random.PCG64())
    scene_rng.bit_generator.state = sp.scene_rng_state
    _background(img, scene_rng, rng)
    shirt = tuple(_muted(scene_rng))
    _poly(img, stf[sl["neck"]], _shade(skin, 0.85))
    _poly(img, stf[sl["shirt"]], shirt)
    _poly(img, stf[sl["ear_l"]], _shade(skin, 0.92))
    _poly(img, stf[sl["ear_r"]], _shade(skin, 0.92))
    if "back" in sl:                     # long hair behind the head, over the ears
        _hull(img, stf[sl["back"]], hair)
    _hull(img, np.concatenate([stf[sl["head"]], lmf[:17]]), skin)
    _poly(img, prf["shade"], _shade(skin, 1.0 - 0.25 * abs(math.sin(math.radians(sp.yaw))) - 0.03))
    if person.hair_style != 2:
        facing = fm.rotate(ipts["cap_normals"], rot)[:, 2] > -0.02
        quads = stf[sl["cap"]].reshape(-1, 4, 2)[facing]
        cv2.fillPoly(img, list(quads), hair, cv2.LINE_8, _SHIFT)
        _poly(img, stf[sl["forehead"]], skin)
    if person.beard:                     # full, goatee or moustache (fm.BEARDS)
        wide = (lm[54] - lm[48]) * 0.08
        if person.beard == 1:
            beard = np.concatenate([lm[3:14], (lm[54] + wide)[None], lm[[35, 33, 31]], (lm[48] - wide)[None]])
        elif person.beard == 2:
            beard = np.concatenate([lm[6:11], (lm[54] + wide)[None], lm[55:60], (lm[48] - wide)[None]])
        else:
            beard = np.concatenate([(lm[48] - wide)[None], lm[31:36], (lm[54] + wide)[None], lm[53:48:-1]])
        _poly(img, beard, _shade(hair, 1.1))

    # 3. Folds and wrinkles, brows, eyes, nose, mouth, glasses.
    for k in ("fold31", "fold35"):
        if k in pr:
            _line(img, prf[k], _shade(skin, 0.86), 1)
    for k in ("forehead0", "forehead1"):
        if k in pr:
            _line(img, prf[k], _shade(skin, 0.84), 1)
    for k in ("glabella0", "glabella1"):
        if k in pr:
            _line(img, prf[k], dark_skin, 1)
    _poly(img, prf["brow17"], _shade(hair, 0.8))
    _poly(img, prf["brow22"], _shade(hair, 0.8))
    lid = (30, 22, 20)
    for lo in (36, 42):
        eye = lm[lo:lo + 6]
        if _area(eye) < 1.5:
            _line(img, lmf[lo:lo + 6], lid, 1, closed=True)
            continue
        _poly(img, lmf[lo:lo + 6], (236, 232, 226))
        _iris(img, eye, lmf[lo:lo + 6], pr[f"iris{lo}"][0, :2], 0.085 * person.eye_size * sc, person.iris)
        _line(img, lmf[lo:lo + 4], lid, max(1, int(round(sc * 0.045))))
        _line(img, lmf[[lo + 3, lo + 4, lo + 5, lo]], _shade(skin, 0.7), 1)
        if f"crow{lo}" in pr:
            _line(img, prf[f"crow{lo}"][:2], dark_skin, 1)
            _line(img, prf[f"crow{lo}"][2:], dark_skin, 1)
    _poly(img, prf["nose"], _shade(skin, 1.02))
    _line(img, prf["bridge"], _shade(skin, 0.85), 1)
    _line(img, lmf[31:36], _shade(skin, 0.68), line_w)
    r = max(_ONE, int(0.035 * person.nose_width * sc * _ONE))
    for i, j in ((32, 31), (34, 35)):
        c = lm[i] * 0.75 + lm[j] * 0.25 + (lm[33] - lm[30]) * 0.05
        cv2.circle(img, (int(round(c[0] * _ONE)), int(round(c[1] * _ONE))), r, (55, 30, 28), -1, _AA, _SHIFT)
    if "wrinkle" in pr:
        _line(img, prf["wrinkle"][:2], dark_skin, 1)
        _line(img, prf["wrinkle"][2:], dark_skin, 1)
    _poly(img, lmf[48:60], person.lips)
    # The mouth is open when the inner lips part (AU25, AU26) by more than ~1 px.
    opening = (shape[[65, 66, 67], 1].mean() - shape[[61, 62, 63], 1].mean()) * sc
    if opening > 1.2 and _area(lm[60:68]) > 2.0:
        _poly(img, lmf[60:68], (70, 22, 28))
        top = lm[60:65]
        gap = np.maximum(lm[[60, 67, 66, 65, 64], 1] - top[:, 1], 0.0)
        teeth = top.copy()
        teeth[:, 1] += np.minimum(gap * 0.5, 0.1 * sc)
        _poly(img, np.concatenate([top, teeth[::-1]]), (232, 228, 215))
    _line(img, lmf[60:65], _shade(person.lips, 0.6), 1)
    if sp.glasses:
        g = sp.glasses_color
        rl, rr = prf["rim36"], prf["rim42"]
        _line(img, rl, g, line_w, closed=True)
        _line(img, rr, g, line_w, closed=True)
        _line(img, np.stack([rl[0], rr[6]]), g, line_w)
        _line(img, np.stack([rl[6], stf[sl["temple_l"]][0]]), g, line_w)
        _line(img, np.stack([rr[0], stf[sl["temple_r"]][0]]), g, line_w)

    # 4. The box: every landmark and the forehead above the brows.
    top = st[sl["box_top"]]
    box = np.array([min(lm[:, 0].min(), top[:, 0].min()), min(lm[:, 1].min(), top[:, 1].min()),
                    max(lm[:, 0].max(), top[:, 0].max()), max(lm[:, 1].max(), top[:, 1].max())])

    # 5. Nuisance: occlusion, lighting, blur, noise, JPEG (all skipped for clean figures).
    if nuisance:
        if rng.random() < 0.15:
            bw, bh = box[2] - box[0], box[3] - box[1]
            c = box[:2] + rng.random(2) * [bw, bh]
            ax = (int(bw * (0.15 + 0.2 * rng.random()) * _ONE), int(bh * (0.12 + 0.15 * rng.random()) * _ONE))
            if rng.random() < 0.5:
                col = identity(int(rng.integers(1 << 20)), sp.seed).skin
            else:
                col = (int(rng.integers(256)), int(rng.integers(256)), int(rng.integers(256)))
            cv2.ellipse(img, (int(round(c[0] * _ONE)), int(round(c[1] * _ONE))), ax, float(rng.random() * 180),
                        0, 360, col, -1, _AA, _SHIFT)
        _light(img, scene_rng)
        if rng.random() < 0.3:
            img = cv2.GaussianBlur(img, (0, 0), 0.3 + 0.9 * rng.random() * s / 128)
        if rng.random() < 0.5:
            amp = int(rng.integers(2, 9))
            n = rng.integers(-amp, amp + 1, size=(s, s, 1), dtype=np.int16)
            img = np.clip(img.astype(np.int16) + n, 0, 255).astype(np.uint8)
        if rng.random() < 0.5:
            q = int(rng.integers(35, 91))
            _, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
            img = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    labels: dict[str, Any] = {
        "identity": sp.identity,
        "landmarks_2d": lm.astype(np.float32),
        "landmarks_5": fm.five_points(lm).astype(np.float32),
        "landmarks_3d": lm3.astype(np.float32),
        "pose": np.array([sp.yaw, sp.pitch, sp.roll], np.float32),
        "au": sp.au.astype(np.float32),
        "valence": sp.valence,
        "arousal": sp.arousal,
        "expression": sp.expression,
        "box": box.astype(np.float32),
    }
    return np.ascontiguousarray(img), labels


class SynthFaces(torch.utils.data.Dataset):
    """``n`` synthetic faces: item ``i`` is :func:`render` ``(i, seed, size, num_identities)``.

    Args:
        n: number of samples.
        seed: the set's seed.
        size: image side in pixels.
        num_identities: persons in the set (item ``i`` shows person ``i % num_identities``).
        transform: optional callable applied to ``(image, labels)``, returning the item.

    Items are ``(image (size, size, 3) uint8 RGB, labels dict)`` (see :func:`render`),
    identical on every access and in every worker.
    """

    def __init__(self, n: int, seed: int = 0, size: int = 128, num_identities: int = 100,
                 transform: Callable[[np.ndarray, dict[str, Any]], Any] | None = None) -> None:
        self.n = _check_int("n", n, 0)
        self.seed = _check_int("seed", seed, 0)
        self.size = _check_int("size", size, 32)
        self.num_identities = _check_int("num_identities", num_identities, 1)
        self.transform = transform

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for SynthFaces of length {self.n}")
        img, labels = render(i, self.seed, self.size, self.num_identities)
        if self.transform is not None:
            return self.transform(img, labels)
        return img, labels

    def __repr__(self) -> str:
        return (f"SynthFaces(n={self.n}, seed={self.seed}, size={self.size}, "
                f"num_identities={self.num_identities})")
