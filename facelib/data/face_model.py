"""The 3D face model behind the synthetic faces: 68-point template, identity, action units, pose.

A face is 68 points in the 300W/iBUG layout (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
lips 48-67) in a head-centred frame: ``x`` to the image right, ``y`` down, ``z`` toward the
camera, one unit = half the face width at the cheekbones. An identity deforms the template
(face proportions, eye spacing, nose and mouth geometry), the 12 DISFA action units move it
(:func:`apply_aus`), and a rotation by yaw/pitch/roll followed by a scaled orthographic
projection (:func:`project`) places it in the image. Because the drawing follows these points,
the 68 2D landmarks, the 68 3D landmarks and the pose are exact labels.

Expression classes and valence/arousal are derived from the action units by the rules of
:func:`expression_from_aus` and :func:`affect_from_aus`. Everything here is plain floating-point
arithmetic (elementwise, no BLAS, scalar ``math.sin``/``math.cos``) so that the same inputs give
the same bits on any machine.

Used by :mod:`facelib.data.synth`; shown in ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AU_IDS",
    "EXPRESSIONS",
    "FIVE_POINT_INDICES",
    "AU_PROTOTYPES",
    "template_68",
    "Identity",
    "make_identity",
    "apply_aus",
    "rotation_matrix",
    "rotate",
    "project",
    "five_points",
    "expression_from_aus",
    "affect_from_aus",
    "HEAD_CENTER",
    "HEAD_RADII",
    "surface_z",
    "identity_shape",
    "HAIR_STYLES",
    "BEARDS",
]

#: The 12 DISFA action units, in label order (Table 1 of the supplement).
AU_IDS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)

#: AffectNet's expression codes 0-7.
EXPRESSIONS: tuple[str, ...] = (
    "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
)

#: The 5-point subset of the 68 points as (indices averaged) per point, in the ArcFace order:
#: image-left eye centre, image-right eye centre, nose tip, image-left and image-right mouth corner.
FIVE_POINT_INDICES: tuple[tuple[int, ...], ...] = (
    (36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), (30,), (48,), (54,),
)

#: Prototype action units of each non-neutral expression (EMFACS-style, restricted to the DISFA
#: set). Contempt is AU12 without the cheek raiser (drawn one-sided), with AU17.
AU_PROTOTYPES: dict[int, tuple[int, ...]] = {
    1: (6, 12, 25),          # happy
    2: (1, 4, 15, 17),       # sad
    3: (1, 2, 5, 25, 26),    # surprise
    4: (1, 2, 4, 5, 20, 25),  # fear
    5: (9, 15, 17),          # disgust
    6: (4, 5, 17),           # anger
    7: (12, 17),             # contempt
}

#: The head ellipsoid (skull) in template units: centre and radii (x, y, z).
HEAD_CENTER = (0.0, -0.15, 0.0)
HEAD_RADII = (1.0, 1.3, 1.1)


def surface_z(x: np.ndarray, y: np.ndarray, inset: float = 0.0) -> np.ndarray:
    """Depth of the front of the head ellipsoid at (x, y) (template units), minus ``inset``."""
    cx, cy, cz = HEAD_CENTER
    rx, ry, rz = HEAD_RADII
    u = 1.0 - ((x - cx) / rx) ** 2 - ((y - cy) / ry) ** 2
    return cz + rz * np.sqrt(np.clip(u, 0.02, None)) - inset


def template_68() -> np.ndarray:
    """The mean 3D face in the iBUG 68-point layout.

    Returns:
        (68, 3) float64, head-centred template units (see the module docstring).
    """
    p = np.zeros((68, 3))
    # Jaw 0-16: from the image-left ear, down to the chin (8), up to the image-right ear.
    # (scalar libm calls: numpy's vectorised sin/pow may differ in the last bit across CPUs)
    for k in range(17):
        a = (k - 8) / 8 * (math.pi / 2) * 0.97
        s, c = math.sin(a), abs(math.cos(a))
        p[k] = (math.copysign(abs(s) ** 0.85, s) * 0.98, -0.1 + 1.55 * c ** 1.15,
                0.85 * c ** 0.8 - 0.05)
    # Brows 17-21 (image left, outer to inner) and 22-26 (inner to outer).
    u = np.linspace(0.0, 1.0, 5)
    bx = -0.85 + 0.7 * u
    by = np.array([-0.33 - 0.11 * math.sin(math.pi * (0.25 + 0.65 * v)) + 0.03 * v for v in u])
    p[17:22, 0], p[17:22, 1] = bx, by
    p[22:27, 0], p[22:27, 1] = -bx[::-1], by[::-1]
    p[17:27, 2] = surface_z(p[17:27, 0], p[17:27, 1], 0.02)
    # Nose bridge 27-30 and nostrils 31-35.
    p[27:31] = [[0, -0.08, 1.02], [0, 0.14, 1.13], [0, 0.36, 1.24], [0, 0.58, 1.38]]
    p[31:36] = [[-0.19, 0.66, 1.08], [-0.10, 0.71, 1.17], [0, 0.73, 1.21],
                [0.10, 0.71, 1.17], [0.19, 0.66, 1.08]]
    # Eyes: 36-41 image-left eye (outer corner, upper lid x2, inner corner, lower lid x2),
    # 42-47 image-right eye (inner corner, upper lid x2, outer corner, lower lid x2).
    eye = np.array([[-0.19, 0.01], [-0.08, -0.085], [0.06, -0.085], [0.18, 0.0],
                    [0.06, 0.05], [-0.08, 0.05]])
    p[36:42, 0], p[36:42, 1] = -0.42 + eye[:, 0], eye[:, 1]
    right = eye[[3, 2, 1, 0, 5, 4]] * [-1, 1]
    p[42:48, 0], p[42:48, 1] = 0.42 + right[:, 0], right[:, 1]
    p[36:48, 2] = surface_z(p[36:48, 0], p[36:48, 1], 0.12)
    # Outer lips 48-59 and inner lips 60-67.
    p[48:60, :2] = [[-0.36, 1.0], [-0.24, 0.93], [-0.10, 0.89], [0.0, 0.91], [0.10, 0.89],
                    [0.24, 0.93], [0.36, 1.0], [0.24, 1.08], [0.11, 1.13], [0.0, 1.14],
                    [-0.11, 1.13], [-0.24, 1.08]]
    p[60:68, :2] = [[-0.30, 1.0], [-0.10, 0.985], [0.0, 0.985], [0.10, 0.985], [0.30, 1.0],
                    [0.10, 1.005], [0.0, 1.005], [-0.10, 1.005]]
    p[48:68, 2] = 1.0 - 0.9 * p[48:68, 0] ** 2
    return p


_TEMPLATE = template_68()
_TEMPLATE.flags.writeable = False


@dataclass(frozen=True)
class Identity:
    """Persistent parameters of one synthetic person (drawn once per (seed, identity)).

    Geometry factors multiply template offsets; colours are RGB uint8 triples; ``shape_noise``
    is a small per-point (68, 3) offset that makes every face unique. What identifies a person
    is what identifies real people at a glance: face shape and proportions (width, length,
    jaw), the eyes (spacing, size, iris colour), the nose and the mouth (length, width, lip
    thickness), the brows (height, thickness, arch), skin tone, hair (colour, style, hairline)
    and facial hair. Glasses are not part of a person: they are an accessory drawn per image
    (:class:`facelib.data.synth.SampleParams`).
    """

    index: int
    face_width: float
    face_length: float
    jaw_width: float
    eye_spacing: float
    eye_size: float
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_thickness: float
    brow_height: float
    brow_thickness: float
    brow_arch: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    hair_style: int          # see HAIR_STYLES
    hairline: float          # front hairline height (template y)
    beard: int               # see BEARDS
    shape_noise: np.ndarray  # (68, 3)


#: Hair styles by code: the cap's silhouette and what falls behind the head.
HAIR_STYLES: tuple[str, ...] = ("short", "long", "bald", "bob", "curly", "fringe")
#: Facial hair by code.
BEARDS: tuple[str, ...] = ("none", "full", "goatee", "moustache")

_SKIN_LIGHT = np.array([240.0, 208.0, 186.0])
_SKIN_DARK = np.array([80.0, 50.0, 35.0])
_HAIR = np.array([[25, 20, 18], [60, 40, 28], [110, 72, 40], [200, 165, 100],
                  [150, 60, 30], [150, 150, 150], [230, 220, 200]], dtype=float)
_HAIR_P = np.array([0.28, 0.24, 0.15, 0.13, 0.08, 0.08, 0.04])
_IRIS = np.array([[70, 45, 25], [40, 28, 20], [70, 110, 160], [80, 120, 70], [120, 95, 50]],
                 dtype=float)


def _color(v: np.ndarray) -> tuple[int, int, int]:
    c = np.clip(np.rint(v), 0, 255).astype(int)
    return (int(c[0]), int(c[1]), int(c[2]))


def make_identity(index: int, rng: np.random.Generator) -> Identity:
    """Draw the parameters of identity ``index`` from ``rng`` (a generator seeded for it).

    The ranges are wide: two persons differ in proportions by about as much as real faces do
    (face width and length +-10-15 %, jaw +-20 %, nose and mouth size +-20-30 %), more than a
    change of pose, expression or light changes one person's face.
    """
    u = rng.random(18)
    tone = u[0] ** 1.2
    skin = _SKIN_LIGHT + tone * (_SKIN_DARK - _SKIN_LIGHT) + (rng.random(3) - 0.5) * 24
    hair = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P)] * (0.8 + 0.4 * u[1])
    iris = _IRIS[int(u[2] * len(_IRIS)) if tone < 0.4 else int(u[2] * 2)]
    lips = skin * np.array([0.85, 0.55, 0.55]) + np.array([25, 0, 5])
    style = int(rng.choice(len(HAIR_STYLES), p=[0.3, 0.2, 0.08, 0.14, 0.14, 0.14]))
    beard = int(rng.choice(len(BEARDS), p=[0.7, 0.12, 0.09, 0.09]))
    noise = rng.normal(0.0, 0.015, size=(68, 3))
    return Identity(
        index=index,
        face_width=0.84 + 0.3 * u[3],
        face_length=0.84 + 0.32 * u[4],
        jaw_width=0.72 + 0.46 * u[5],
        eye_spacing=-0.06 + 0.13 * u[6],
        eye_size=0.78 + 0.5 * u[7],
        nose_length=0.8 + 0.45 * u[8],
        nose_width=0.7 + 0.75 * u[9],
        mouth_width=0.78 + 0.45 * u[10],
        lip_thickness=0.6 + 1.0 * u[11],
        brow_height=-0.07 + 0.14 * u[12],
        brow_thickness=0.5 + 1.1 * u[13],
        brow_arch=-0.6 + 1.6 * u[15],
        skin=_color(skin),
        hair=_color(hair),
        iris=_color(iris),
        lips=_color(lips),
        hair_style=style,
        hairline=(-0.55 + 0.08 * u[14]) if style == 5 else -0.98 + 0.3 * u[14],
        beard=beard,
        shape_noise=noise,
    )


def identity_shape(ident: Identity) -> np.ndarray:
    """The neutral 3D face of an identity: the template deformed by its proportions.

    Returns:
        (68, 3) float64 in template units.
    """
    p = _TEMPLATE.copy()
    # Proportions: width about the centre line, length below the eyes.
    p[:, 0] *= ident.face_width
    below = p[:, 1] > 0
    p[below, 1] *= ident.face_length
    # Jaw: lower contour points pulled toward the centre line for a narrow jaw.
    w = np.clip((p[:17, 1] - 0.4) / 1.2, 0, 1)
    p[:17, 0] *= 1.0 + (ident.jaw_width - 1.0) * w
    # Eyes: spacing and size about each eye centre.
    for lo, sign in ((36, -1.0), (42, 1.0)):
        e = p[lo:lo + 6]
        c = e[:, :2].mean(axis=0)
        e[:, :2] = c + (e[:, :2] - c) * ident.eye_size
        e[:, 0] += sign * ident.eye_spacing
    # Brows follow the eye spacing; height offset.
    p[17:22, 0] -= ident.eye_spacing * 0.7
    p[22:27, 0] += ident.eye_spacing * 0.7
    p[17:27, 1] += ident.brow_height
    arch = np.array([0.0, 0.6, 1.0, 0.7, 0.2, 0.2, 0.7, 1.0, 0.6, 0.0])
    p[17:27, 1] -= 0.05 * ident.brow_arch * arch
    # Nose: length from the bridge top, width of the nostrils.
    top = p[27, 1]
    p[28:36, 1] = top + (p[28:36, 1] - top) * ident.nose_length
    p[31:36, 0] *= ident.nose_width
    # Mouth: width about the centre, lip thickness about the lip line.
    mc = p[60:68, 1].mean()
    p[48:68, 0] *= ident.mouth_width
    p[48:68, 1] = mc + (p[48:68, 1] - mc) * ident.lip_thickness
    return p + ident.shape_noise


def apply_aus(shape: np.ndarray, au: np.ndarray, asymmetry: float = 0.0) -> np.ndarray:
    """Move the landmarks by the 12 DISFA action units.

    Each AU displaces its muscles' landmarks linearly in its intensity (0-5), in template
    units (one unit is half the face width, about 7 cm on a real face). At intensity 5 the
    displacements are those of a strong real expression: the lip corners move 0.22 up and 0.12
    out (AU12, a broad smile), the jaw drops 0.36 and the lips part 0.1 (AU26, AU25: a mouth
    open by a quarter of the face width), the brows rise 0.2 (AU1, AU2). AU1 raises the inner brows, AU2 the outer brows, AU4 lowers and knits the brows,
    AU5 raises the upper lids, AU6 lifts the lower lids and lip corners (cheek raiser), AU9
    lifts the nostrils and upper lip, AU12 pulls the lip corners up and out, AU15 pulls them
    down, AU17 pushes the chin and lower lip up, AU20 stretches the lips sideways, AU25 parts
    the lips and AU26 drops the jaw.

    Args:
        shape: (68, 3) neutral face (template units).
        au: (12,) intensities in :data:`AU_IDS` order, 0-5.
        asymmetry: in [-1, 1]; scales the lip-corner pull on one side (contempt is a one-sided
            AU12). 0 is symmetric.

    Returns:
        (68, 3) deformed copy.
    """
    d = dict(zip(AU_IDS, np.asarray(au, dtype=float) / 5.0))
    p = shape.copy()
    y, x, z = p[:, 1], p[:, 0], p[:, 2]
    inner_l, inner_r = [19, 20, 21], [22, 23, 24]
    outer_l, outer_r = [17, 18, 19], [24, 25, 26]
    y[inner_l + inner_r] -= 0.2 * d[1] * np.array([0.4, 0.8, 1.0, 1.0, 0.8, 0.4])
    y[outer_l + outer_r] -= 0.2 * d[2] * np.array([1.0, 0.8, 0.4, 0.4, 0.8, 1.0])
    y[17:27] += 0.13 * d[4] * np.array([0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 0.8, 0.6, 0.4])
    x[[20, 21]] += 0.08 * d[4]
    x[[22, 23]] -= 0.08 * d[4]
    y[[37, 38, 43, 44]] += 0.025 * d[4] - 0.07 * d[5]
    y[[40, 41, 46, 47]] -= 0.05 * d[6]
    y[[37, 38, 43, 44]] += 0.015 * d[6]
    y[31:36] -= 0.1 * d[9]
    y[[49, 50, 51, 52, 53, 61, 62, 63]] -= 0.07 * d[9]
    y[17:27] += 0.04 * d[9] * np.array([0, 0, 0.5, 1, 1, 1, 1, 0.5, 0, 0])
    # Lip corners: pulled up/out by AU12 (and a little by AU6), down by AU15, out by AU20.
    left, right = [48, 60], [54, 64]
    k_l, k_r = 1.0 + asymmetry, 1.0 - asymmetry
    up = 0.22 * d[12] + 0.04 * d[6]
    for idx, k, sgn in ((left, k_l, -1.0), (right, k_r, 1.0)):
        y[idx] -= up * k
        x[idx] += sgn * (0.12 * d[12] * k + 0.14 * d[20])
        y[idx] += 0.16 * d[15] + 0.03 * d[20]
    # Neighbours of the corners follow at half strength.
    for idx, k, sgn in (([49, 59, 61, 67], k_l, -1.0), ([53, 55, 63, 65], k_r, 1.0)):
        y[idx] -= 0.5 * up * k - 0.1 * d[15]
        x[idx] += sgn * 0.05 * (d[12] * k + d[20])
    y[[56, 57, 58, 66]] += 0.04 * d[15]        # the lower lip follows the corners down
    # Chin raiser: lower lip and chin up, lower lip forward.
    lower_lip = [55, 56, 57, 58, 59, 65, 66, 67]
    y[lower_lip] -= 0.06 * d[17]
    z[lower_lip] += 0.07 * d[17]
    y[[7, 8, 9]] -= 0.08 * d[17]
    # Lips part (AU25) and jaw drop (AU26): inner gap and a lowered jaw.
    gap = 0.1 * d[25] + 0.08 * d[26]
    drop = 0.36 * d[26]
    y[[61, 62, 63]] -= 0.3 * gap
    y[[65, 66, 67]] += 0.7 * gap + drop
    y[[55, 56, 57, 58, 59]] += 0.7 * gap + drop
    jaw_w = np.clip((shape[:17, 1] - 0.3) / 1.2, 0, 1)
    jaw_w = jaw_w * np.sqrt(jaw_w)
    y[:17] += drop * jaw_w
    return p


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation ``Rz(roll) @ Rx(pitch) @ Ry(yaw)`` (angles in degrees).

    Sign conventions (image ``x`` right, ``y`` down, ``z`` toward the camera): positive yaw
    turns the nose toward the image right, positive pitch tilts the nose down (looking down),
    positive roll rotates the face clockwise in the image.

    Returns:
        (3, 3) float64 rotation.
    """
    a, b, g = (math.radians(float(v)) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0],
                   [-math.sin(a), 0.0, math.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(b), math.sin(b)],
                   [0.0, -math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(g), -math.sin(g), 0.0], [math.sin(g), math.cos(g), 0.0],
                   [0.0, 0.0, 1.0]])
    return _matmul3(rz, _matmul3(rx, ry))


def _matmul3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 product with explicit elementwise sums (no BLAS: identical bits everywhere)."""
    out = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            out[i, j] = a[i, 0] * b[0, j] + a[i, 1] * b[1, j] + a[i, 2] * b[2, j]
    return out


def rotate(points: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Apply a (3, 3) rotation to (N, 3) points with elementwise arithmetic."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    out = np.empty((len(points), 3))
    for i in range(3):
        out[:, i] = rot[i, 0] * x + rot[i, 1] * y + rot[i, 2] * z
    return out


def project(points: np.ndarray, rot: np.ndarray, scale: float, center: tuple[float, float]) -> np.ndarray:
    """Rotate and project points to the image by a scaled orthographic camera.

    Args:
        points: (N, 3) template-unit points.
        rot: (3, 3) rotation from :func:`rotation_matrix`.
        scale: pixels per template unit.
        center: (cx, cy) image position of the template origin.

    Returns:
        (N, 3) image-space points: ``x, y`` in pixels, ``z`` in pixels toward the camera (the
        AFLW2000-3D ``pt3d_68`` convention); the 2D landmarks are the first two columns.
    """
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    out = np.empty((len(points), 3))
    out[:, 0] = (rot[0, 0] * x + rot[0, 1] * y + rot[0, 2] * z) * scale + center[0]
    out[:, 1] = (rot[1, 0] * x + rot[1, 1] * y + rot[1, 2] * z) * scale + center[1]
    out[:, 2] = (rot[2, 0] * x + rot[2, 1] * y + rot[2, 2] * z) * scale
    return out


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """The 5-point subset (eye centres, nose tip, mouth corners) of (68, D) landmarks -> (5, D)."""
    return np.stack([landmarks[list(ix)].mean(axis=0) for ix in FIVE_POINT_INDICES])


def expression_from_aus(au: np.ndarray) -> int:
    """The expression class implied by AU intensities (before label noise).

    Rule: if the AUs sum to less than 3 the face is neutral (0). Otherwise each expression's
    score is the cosine between the intensity vector and its binary prototype
    (:data:`AU_PROTOTYPES`); the best score wins if it reaches 0.5, else neutral.

    Args:
        au: (12,) intensities in :data:`AU_IDS` order.

    Returns:
        an AffectNet code 0-7 (:data:`EXPRESSIONS`).
    """
    v = np.asarray(au, dtype=float)
    total = float(v.sum())
    if total < 3.0:
        return 0
    norm_v = math.sqrt(float((v * v).sum()))
    best, best_score = 0, 0.0
    for code, aus in AU_PROTOTYPES.items():
        proto = np.array([1.0 if a in aus else 0.0 for a in AU_IDS])
        score = float((v * proto).sum()) / (norm_v * math.sqrt(len(aus)))
        if score > best_score:
            best, best_score = code, score
    return best if best_score >= 0.5 else 0


def affect_from_aus(au: np.ndarray) -> tuple[float, float]:
    """Noise-free valence and arousal implied by AU intensities, each in [-1, 1].

    Valence rises with the smile (AU12, AU6) and falls with the brow lowerer, lip-corner
    depressor, nose wrinkler, chin raiser and lip stretcher; arousal rises with the lid raiser,
    the jaw drop, parted lips, raised brows, the lip stretcher and the brow lowerer::

        valence = tanh(0.22 (AU12 + 0.6 AU6) - 0.13 (AU4 + AU15 + AU9 + 0.5 AU17 + 0.5 AU20))
        arousal = tanh(-0.5 + 0.13 (AU5 + AU26 + 0.5 AU25 + 0.5 AU1 + 0.5 AU2 + AU20 + 0.5 AU4))
    """
    d = dict(zip(AU_IDS, np.asarray(au, dtype=float)))
    v = 0.22 * (d[12] + 0.6 * d[6]) - 0.13 * (d[4] + d[15] + d[9] + 0.5 * d[17] + 0.5 * d[20])
    a = -0.5 + 0.13 * (d[5] + d[26] + 0.5 * d[25] + 0.5 * d[1] + 0.5 * d[2] + d[20] + 0.5 * d[4])
    return math.tanh(v), math.tanh(a)
