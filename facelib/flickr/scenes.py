"""Demo photos with ground truth: synthetic faces composited into scenes, at every size.

The demo stand-in for Flickr (:mod:`facelib.flickr.local_server`) serves these photos, so that
page 02 has a face-size distribution worth exploring and, because every face was put there by
us, can show what supplement Fig. 1 cannot: which faces the detector finds and misses, by size.

A photo (:func:`compose`) is a crop of a picture that ships with scikit-image (coffee, a rocket,
a cat, the Hubble deep field, a stained tissue slide, a retina, brick, grass, gravel, the moon),
resized so that its long side is 500 px (Flickr's "Medium" size), with a layout drawn at random:

===========  =======  =============================================================
layout       share    faces (``size`` is sqrt(w h) of the face box, in photo pixels)
===========  =======  =============================================================
``empty``    12 %     none
``portrait`` 18 %     1, size 100 px to 80 % of the photo's short side
``few``      32 %     2-4, size 24-160 px
``group``    26 %     1-3 rows of 3-8, 12-64 px, back rows smaller, neighbours overlap
``crowd``    12 %     15-45, 4-20 px (most too small for the detector: that is the point)
===========  =======  =============================================================

Sizes are drawn log-uniformly within each range. Each face is
:func:`facelib.data.synth.render_params` of one of ``FACE_POOL`` synthetic people (identity,
expression, yaw, pitch, roll; without the renderer's own nuisances, whose occluder would not be
in the truth), rendered at 64-384 px and scaled to its size, lit and blurred at random, cut out
with a soft head-and-shoulders mask;
one in five is also rotated in the image plane (up to +-60 deg, added to its roll), and one in
six of the faces of 20 px or more is partly covered by an object (a bar or a blob). Faces
pasted later cover earlier ones (back rows first). The photo is JPEG-encoded at quality 90 by
the server.

The truth of each face (:class:`TrueFace`): its box (the bounds of the 68 projected landmarks
and of the forehead up to the hairline, as the renderer labels it, mapped into the photo), its
pose and the share of its face area left visible. Everything is a function of the seed, so the
server and the page agree without storing anything.

Shown in ``notebooks/02_flickr_face.py``; the detector's recall on these photos is tested in
``tests/test_flickr_scenes.py``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np

from facelib.data import synth

__all__ = ["LAYOUTS", "TrueFace", "SceneTruth", "Scene", "compose", "truth_table"]

LONG_SIDE = 500  # Flickr's "Medium" size, as the authors downloaded
LAYOUTS: dict[str, float] = {"empty": 0.1, "portrait": 0.15, "few": 0.3, "group": 0.33, "crowd": 0.12}
FACE_SEED = 7  # the synthetic set the faces come from (persons and expressions)
NUM_IDENTITIES = 1000
# Faces are rendered at one of these sides (the smallest that holds the face at its size, or
# the largest) and scaled; a render is cached, and faces are drawn from a pool of FACE_POOL
# samples, so that a photo costs a few resizes instead of a dozen renders (page 02's crawl
# serves hundreds of photos on two cores).
RENDER_SIDES = (64, 128, 256, 384)
FACE_POOL = 400
BIG_POOL = 100  # faces rendered at 256 px and more come from the first 100 (memory)
ROTATED_SHARE, MAX_ROTATION = 0.12, 50.0
OCCLUDED_SHARE, OCCLUDE_MIN_SIZE = 1 / 8, 20.0


@dataclass(frozen=True)
class TrueFace:
    """One composited face: where it is and what makes it hard to detect.

    Attributes:
        box: ``x1, y1, x2, y2`` in photo pixels: the renderer's face box (68 landmarks and the
            forehead) mapped into the photo; for a rotated face, the bounds of the rotated box.
        yaw, pitch: head pose in degrees (the renderer's).
        roll: in-plane angle in degrees: the renderer's roll plus the rotation of the paste.
        visible: share of the face area (the hull of its landmarks) not covered by an occluder
            or a face pasted later, in [0, 1].
        sample: the synthetic face, ``synth.sample_params(sample, FACE_SEED, ...)``, of the pool.
    """

    box: tuple[float, float, float, float]
    yaw: float
    pitch: float
    roll: float
    visible: float
    sample: int

    @property
    def size(self) -> float:
        """sqrt(w h) of the box, in photo pixels."""
        return float(np.sqrt(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)))


@dataclass(frozen=True)
class SceneTruth:
    """What was put into a photo: its layout, its faces and its size in pixels."""

    layout: str
    faces: tuple[TrueFace, ...]
    width: int
    height: int


@dataclass(frozen=True)
class Scene:
    """A composed photo: (H, W, 3) uint8 RGB pixels, its layout and its faces."""

    image: np.ndarray
    layout: str
    faces: tuple[TrueFace, ...]

    @property
    def truth(self) -> SceneTruth:
        """The photo's truth without its pixels (what the server keeps per photo)."""
        return SceneTruth(self.layout, self.faces, int(self.image.shape[1]), int(self.image.shape[0]))


@functools.lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    """Face-free pictures that ship with scikit-image, as RGB uint8 (grey ones tinted)."""
    from skimage import data

    colour = [data.coffee(), data.rocket(), data.chelsea(), data.hubble_deep_field()[:600, :900],
              data.immunohistochemistry(), data.retina()[200:1200, 150:1250]]
    grey = [(data.brick(), (1.0, 0.8, 0.65)), (data.grass(), (0.75, 1.0, 0.7)),
            (data.gravel(), (0.95, 0.9, 0.85)), (data.moon(), (0.8, 0.85, 1.0))]
    tinted = [np.clip(g[..., None].astype(np.float32) * np.float32(t), 0, 255).astype(np.uint8) for g, t in grey]
    return tuple(np.ascontiguousarray(c[..., :3]) for c in colour + tinted)


def _background(rng: np.random.Generator) -> np.ndarray:
    """A random crop of a random picture, resized so that its long side is ``LONG_SIDE``."""
    pics = _backgrounds()
    pic = pics[int(rng.integers(len(pics)))]
    ph, pw = pic.shape[:2]
    aspect = float(rng.choice([4 / 3, 3 / 2, 1.0, 3 / 4, 2 / 3]))  # width / height
    ch = int(min(ph, pw / aspect) * rng.uniform(0.6, 1.0))
    cw = max(8, min(pw, int(round(ch * aspect))))
    y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = pic[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    s = LONG_SIDE / max(ch, cw)
    size = (max(1, round(cw * s)), max(1, round(ch * s)))
    return cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int | None = None) -> Any:
    return np.exp(rng.uniform(np.log(lo), np.log(max(hi, lo * 1.001)), n))


def _plan(rng: np.random.Generator, layout: str, w: int, h: int) -> list[tuple[float, float, float]]:
    """Centres and sizes ``(cx, cy, size)`` of the faces of a layout, in paste order."""
    short = min(w, h)
    out: list[tuple[float, float, float]] = []
    if layout == "portrait":
        s = float(_log_uniform(rng, 100, 0.8 * short))
        out.append((w / 2 + rng.uniform(-0.15, 0.15) * (w - s), h / 2 + rng.uniform(-0.1, 0.1) * (h - s), s))
    elif layout == "few":
        for _ in range(int(rng.integers(2, 5))):
            s = float(_log_uniform(rng, 24, min(160, 0.45 * short)))
            for _try in range(12):  # people apart, mostly; the last try is kept even if close
                cx, cy = rng.uniform(0.6 * s, w - 0.6 * s), rng.uniform(0.7 * s, h - 0.8 * s)
                if all(np.hypot(cx - x, cy - y) > 0.75 * (s + t) for x, y, t in out):
                    break
            out.append((cx, cy, s))
        out.sort(key=lambda f: f[2])  # smaller (farther) faces first
    elif layout == "group":
        rows = int(rng.integers(1, 4))
        base = float(_log_uniform(rng, 20, min(64, short / (2.2 * rows + 0.5))))
        for r in range(rows):  # back row first
            s_row = base * (0.62 + 0.38 * (r + 1) / rows)
            n = int(rng.integers(4, 10))
            gap = s_row * rng.uniform(1.25, 1.8)
            x = rng.uniform(0.6 * s_row, max(0.6 * s_row + 1, w - 0.6 * s_row - gap * (n - 1)))
            y = h * (0.25 + 0.55 * (r + 0.5) / rows)
            for k in range(n):
                s = float(np.clip(s_row * rng.uniform(0.85, 1.15), 12, 64))
                cx = x + k * gap + rng.uniform(-0.15, 0.15) * s
                cy = y + rng.uniform(-0.2, 0.2) * s
                if 0.55 * s < cx < w - 0.55 * s and 0.7 * s < cy < h - 0.8 * s:
                    out.append((cx, cy, s))
    elif layout == "crowd":
        n = int(rng.integers(15, 46))
        sizes = np.sort(_log_uniform(rng, 4, 20, n))
        for s in sizes:
            out.append((rng.uniform(s, w - s), rng.uniform(0.3 * h, h - s), float(s)))
    return out


def _head_mask(rw: int, rh: int, box: np.ndarray) -> np.ndarray:
    """(rh, rw) float32 alpha of a head-and-shoulders cut-out around the face box, soft edges."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    yy, xx = np.mgrid[0:rh, 0:rw].astype(np.float32) + 0.5
    head = ((xx - cx) / (0.72 * bw)) ** 2 + ((yy - (cy - 0.1 * bh)) / (0.78 * bh)) ** 2
    body = ((xx - cx) / (1.15 * bw)) ** 2 + ((yy - (box[3] + 0.75 * bh)) / (0.6 * bh)) ** 2
    r = np.minimum(head, body)
    return np.clip((1.0 - r) / 0.3, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=1024)
def _render(index: int, side: int) -> tuple[np.ndarray, dict[str, Any], np.ndarray]:
    """Synthetic face ``index`` of the pool rendered at ``side`` px (no renderer nuisances: the
    scene adds its own), its labels and its cut-out mask. Cached; callers do not modify them."""
    sp = synth.sample_params(index, FACE_SEED, side, NUM_IDENTITIES)
    img, labels = synth.render_params(sp, nuisance=False)
    return img, labels, _head_mask(side, side, labels["box"].astype(np.float64))


def _face_points(labels: dict[str, Any]) -> np.ndarray:
    """(71, 2): the 68 landmarks and three points on the top edge of the renderer's box."""
    lm = labels["landmarks_2d"].astype(np.float64)
    x0, y0, x1, _ = labels["box"].astype(np.float64)
    top = np.array([[x0 + 0.2 * (x1 - x0), y0], [0.5 * (x0 + x1), y0], [x0 + 0.8 * (x1 - x0), y0]])
    return np.concatenate([lm, top])


def _paste_face(canvas: np.ndarray, owner: np.ndarray, j: int, cx: float, cy: float, size: float,
                index: int, rotation: float, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Render face ``index``, scale it to ``size``, rotate, paste centred at (cx, cy).

    Returns:
        ((71, 2) face points in photo pixels, the renderer's labels).
    """
    need = size / 0.41  # a face box is about 0.41 of the render's side
    render_side = next((r for r in RENDER_SIDES if r >= need), RENDER_SIDES[-1])
    if render_side >= 256:
        index %= BIG_POOL
    img, labels, mask = _render(index, render_side)
    box = labels["box"].astype(np.float64)
    bw, bh = box[2] - box[0], box[3] - box[1]
    k = size / np.sqrt(bw * bh)
    # 1. Scale the render (area filter when shrinking: a 4-px face must not alias).
    side = max(2, int(round(render_side * k)))
    k = side / render_side
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    small = cv2.resize(img, (side, side), interpolation=interp).astype(np.float32)
    alpha = cv2.resize(mask, (side, side), interpolation=interp)
    # Light of the scene and focus: gain, offset and a colour cast; one face in four is blurred.
    small = small * (rng.uniform(0.7, 1.25) * rng.uniform(0.92, 1.08, 3)).astype(np.float32) + rng.uniform(-20, 20)
    if rng.random() < 0.25:
        small = cv2.GaussianBlur(small, (0, 0), rng.uniform(0.4, 1.2))
    # 2. Rotate about the face centre and translate to (cx, cy): one affine map.
    fc = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) * k
    m = cv2.getRotationMatrix2D((float(fc[0]), float(fc[1])), float(rotation), 1.0)
    m[:, 2] += np.array([cx, cy]) - fc
    h, w = canvas.shape[:2]
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], np.float64) @ m.T
    x0, y0 = (int(max(0, np.floor(corners[:, 0].min()))), int(max(0, np.floor(corners[:, 1].min()))))
    x1, y1 = (int(min(w, np.ceil(corners[:, 0].max()))), int(min(h, np.ceil(corners[:, 1].max()))))
    pts = _face_points(labels) * k
    pts = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ m.T
    if x1 <= x0 or y1 <= y0:
        return pts, labels
    mt = m.copy()
    mt[:, 2] -= [x0, y0]
    size_out = (x1 - x0, y1 - y0)
    patch = cv2.warpAffine(small, mt, size_out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.warpAffine(alpha, mt, size_out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
    region = canvas[y0:y1, x0:x1]
    region[:] = a * patch + (1 - a) * region
    owner[y0:y1, x0:x1][a[..., 0] > 0.5] = j
    return pts, labels


def _occlude(canvas: np.ndarray, owner: np.ndarray, box: np.ndarray, rng: np.random.Generator) -> None:
    """Cover 25-60 % of a face box from one side with a bar or a blob (an arm, a cup, a sign)."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    cover = rng.uniform(0.2, 0.5)
    colour = rng.integers(0, 256, 3).astype(np.float32)
    shape = np.zeros(owner.shape, np.uint8)
    side = int(rng.integers(4))
    if rng.random() < 0.5:  # a bar from one side
        if side == 0:
            pts = [(x0 - 0.3 * bw, y0 - 0.3 * bh), (x0 + cover * bw, y1 + 0.3 * bh)]
        elif side == 1:
            pts = [(x1 - cover * bw, y0 - 0.3 * bh), (x1 + 0.3 * bw, y1 + 0.3 * bh)]
        elif side == 2:
            pts = [(x0 - 0.3 * bw, y1 - cover * bh), (x1 + 0.3 * bw, y1 + 0.3 * bh)]
        else:
            pts = [(x0 - 0.3 * bw, y0 - 0.3 * bh), (x1 + 0.3 * bw, y0 + cover * bh)]
        (a, b), (c, d) = pts
        cv2.rectangle(shape, (int(a), int(b)), (int(c), int(d)), 1, -1)
    else:  # a blob centred on the box's edge
        cx = x0 + bw * (0.0 if side == 0 else 1.0 if side == 1 else rng.uniform(0.2, 0.8))
        cy = y0 + bh * (1.0 if side == 2 else 0.0 if side == 3 else rng.uniform(0.3, 0.9))
        axes = (max(1, int(cover * bw * 1.3)), max(1, int(cover * bh * 1.1)))
        cv2.ellipse(shape, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    on = shape.astype(bool)
    shade = 0.75 + 0.5 * rng.random()
    canvas[on] = np.clip(colour * shade, 0, 255)
    owner[on] = -2


_cv2_lock = threading.Lock()
_cv2_users = 0
_cv2_threads = 1


@contextlib.contextmanager
def _one_cv2_thread() -> Any:
    """OpenCV on one thread while a photo is composed: its many small resizes and warps gain
    nothing from a thread pool, and on a busy machine the pool's waits made a photo 3x slower
    (measured: 125 ms vs 41 ms of wall time at load 12 on 2 cores). The previous setting comes
    back when the last composition running (the server composes in several threads) ends."""
    global _cv2_users, _cv2_threads
    with _cv2_lock:
        if _cv2_users == 0:
            _cv2_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv2_users += 1
    try:
        yield
    finally:
        with _cv2_lock:
            _cv2_users -= 1
            if _cv2_users == 0:
                cv2.setNumThreads(_cv2_threads)


def compose(seed: int) -> Scene:
    """The photo of ``seed``: a scene with its composited faces and their truth.

    Args:
        seed: any integer >= 0 (the server derives it from the photo id).

    Returns:
        A :class:`Scene` whose long side is 500 px. Same seed, same pixels.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    with _one_cv2_thread():
        return _compose(seed)


def _compose(seed: int) -> Scene:
    rng = np.random.default_rng(seed)
    canvas = _background(rng).astype(np.float32)
    h, w = canvas.shape[:2]
    layout = str(rng.choice(list(LAYOUTS), p=list(LAYOUTS.values())))
    owner = np.full((h, w), -1, np.int32)
    placed: list[tuple[np.ndarray, dict[str, Any], float, int]] = []
    for j, (cx, cy, size) in enumerate(_plan(rng, layout, w, h)):
        rotation = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION)) if rng.random() < ROTATED_SHARE else 0.0
        index = int(rng.integers(0, FACE_POOL))
        pts, labels = _paste_face(canvas, owner, j, cx, cy, size, index, rotation, rng)
        placed.append((pts, labels, rotation, index))
        if size >= OCCLUDE_MIN_SIZE and rng.random() < OCCLUDED_SHARE:
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            _occlude(canvas, owner, np.concatenate([lo, hi]), rng)
    faces = []
    for j, (pts, labels, rotation, index) in enumerate(placed):
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        box = (max(0.0, lo[0]), max(0.0, lo[1]), min(float(w), hi[0]), min(float(h), hi[1]))
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
        x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
        hull = np.zeros((y1 - y0, x1 - x0), np.uint8)  # the face's hull, within its box
        corners = cv2.convexHull(pts[:68].astype(np.float32))[:, 0] - [x0, y0]
        cv2.fillConvexPoly(hull, np.round(corners).astype(np.int32), 1)
        inside = hull.astype(bool)
        visible = float((owner[y0:y1, x0:x1][inside] == j).mean()) if inside.any() else 0.0
        yaw, pitch, roll = (float(v) for v in labels["pose"])
        faces.append(TrueFace(box=tuple(float(v) for v in box), yaw=yaw, pitch=pitch,
                              roll=float((roll - rotation + 180.0) % 360.0 - 180.0), visible=visible,
                              sample=index))
    img = np.clip(canvas, 0, 255).astype(np.uint8)
    return Scene(image=img, layout=layout, faces=tuple(faces))


def truth_table(truths: Mapping[str, SceneTruth]) -> Any:
    """One row per composited face, for comparing with what a detector found.

    Args:
        truths: ``photo_id -> SceneTruth`` (e.g. :meth:`facelib.flickr.local_server.LocalFlickr.truth`).

    Returns:
        A pandas DataFrame with ``photo_id``, ``x1 y1 x2 y2`` (photo pixels), ``size``
        (sqrt(w h)), ``yaw pitch roll`` (deg), ``visible``, ``layout``, ``image_w image_h``;
        empty, with these columns, when no photo holds a face.
    """
    import pandas as pd

    cols = ["photo_id", "x1", "y1", "x2", "y2", "size", "yaw", "pitch", "roll", "visible", "layout",
            "image_w", "image_h"]
    rows = [(pid, *f.box, f.size, f.yaw, f.pitch, f.roll, f.visible, t.layout, t.width, t.height)
            for pid, t in truths.items() for f in t.faces]
    return pd.DataFrame(rows, columns=cols)
