"""Synthetic faces written in the real datasets' native formats (the demo's dataset roots).

The licence-restricted datasets cannot ship, but their file formats can be exercised: each
writer renders labelled synthetic faces (:mod:`facelib.data.synth`) and stores them with the
folder layout and annotation files of one dataset, so that the demo profile runs the real
readers (:mod:`facelib.data.readers`), the curated compositions and the subsets on them
exactly as the paper profile does on the real roots. Labels written are the synthetic ground
truth in each format's conventions (e.g. AFLW2000-3D ``Pose_Para`` in radians, pitch first).

Shown in ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import scipy.io

from facelib.data import synth
from facelib.data.face_model import AU_IDS

__all__ = ["WRITERS", "write", "write_all"]


def _save(path: Path, rgb: np.ndarray, quality: int = 92) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    else:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _faces(n: int, seed: int, size: int, num_identities: int) -> Iterator[tuple[int, np.ndarray, dict[str, Any]]]:
    for i in range(n):
        img, lab = synth.render(i, seed, size, num_identities)
        yield i, img, lab


def _fmt(v: float) -> str:
    return f"{v:.3f}"


def write_vggface2(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 20) -> None:
    """``train/nXXXXXX/NNNN_01.jpg`` + ``bb_landmark/loose_{bb,landmark}_train.csv``."""
    bb = ['"NAME_ID","X","Y","W","H"']
    lm = ['"NAME_ID","P1X","P1Y","P2X","P2Y","P3X","P3Y","P4X","P4Y","P5X","P5Y"']
    for i, img, lab in _faces(n, seed, size, num_identities):
        name = f"n{lab['identity'] + 1:06d}/{i // num_identities + 1:04d}_01"
        _save(root / "train" / f"{name}.jpg", img)
        x0, y0, x1, y1 = lab["box"]
        bb.append(f'"{name}",{_fmt(x0)},{_fmt(y0)},{_fmt(x1 - x0)},{_fmt(y1 - y0)}')
        lm.append(f'"{name}",' + ",".join(_fmt(v) for v in lab["landmarks_5"].reshape(-1)))
    (root / "bb_landmark").mkdir(parents=True, exist_ok=True)
    (root / "bb_landmark/loose_bb_train.csv").write_text("\n".join(bb) + "\n")
    (root / "bb_landmark/loose_landmark_train.csv").write_text("\n".join(lm) + "\n")


def _pose_para(lab: dict[str, Any]) -> np.ndarray:
    yaw, pitch, roll = (math.radians(float(v)) for v in lab["pose"])
    return np.array([[pitch, yaw, roll, 0.0, 0.0, 0.0, 1.0]])


def write_w300lp(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 20) -> None:
    """``AFW/AFW_<id>_1_<k>.jpg`` + ``.mat`` (``Pose_Para``, ``pt2d``) + ``landmarks/AFW/*_pts.mat``."""
    for i, img, lab in _faces(n, seed, size, num_identities):
        stem = f"AFW_{lab['identity']:06d}_1_{i // num_identities}"
        _save(root / "AFW" / f"{stem}.jpg", img)
        scipy.io.savemat(root / "AFW" / f"{stem}.mat",
                         {"Pose_Para": _pose_para(lab), "pt2d": lab["landmarks_2d"].T.astype(np.float64)})
        (root / "landmarks/AFW").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "landmarks/AFW" / f"{stem}_pts.mat",
                         {"pts_2d": lab["landmarks_2d"].astype(np.float64),
                          "pts_3d": lab["landmarks_2d"].astype(np.float64)})


def write_aflw2000(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 20) -> None:
    """``imageNNNNN.jpg`` + ``.mat`` with ``pt3d_68`` (3, 68) and ``Pose_Para``."""
    root.mkdir(parents=True, exist_ok=True)
    for i, img, lab in _faces(n, seed, size, num_identities):
        stem = f"image{i:05d}"
        _save(root / f"{stem}.jpg", img)
        scipy.io.savemat(root / f"{stem}.mat", {"pt3d_68": lab["landmarks_3d"].T.astype(np.float64),
                                                "Pose_Para": _pose_para(lab)})


def write_w300(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 20) -> None:
    """``lfpw/trainset/image_NNNN.png`` + ``.pts`` (68 points)."""
    for i, img, lab in _faces(n, seed, size, num_identities):
        stem = root / "lfpw/trainset" / f"image_{i:04d}"
        _save(stem.with_suffix(".png"), img)
        body = "\n".join(f"{_fmt(x)} {_fmt(y)}" for x, y in lab["landmarks_2d"])
        stem.with_suffix(".pts").write_text(f"version: 1\nn_points:  68\n{{\n{body}\n}}\n")


def write_affectnet(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 20) -> None:
    """``Manually_Annotated_Images/<dir>/<file>.jpg`` + ``Manually_Annotated_file_lists/training.csv``."""
    rows = ["subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"]
    for i, img, lab in _faces(n, seed, size, num_identities):
        rel = f"{i // 100 + 1}/{i:08x}.jpg"
        _save(root / "Manually_Annotated_Images" / rel, img)
        x0, y0, x1, y1 = lab["box"]
        lm = ";".join(_fmt(v) for v in lab["landmarks_2d"].reshape(-1))
        rows.append(f"{rel},{_fmt(x0)},{_fmt(y0)},{_fmt(x1 - x0)},{_fmt(y1 - y0)},{lm},"
                    f"{lab['expression']},{lab['valence']:.6f},{lab['arousal']:.6f}")
    (root / "Manually_Annotated_file_lists").mkdir(parents=True, exist_ok=True)
    (root / "Manually_Annotated_file_lists/training.csv").write_text("\n".join(rows) + "\n")


def write_imdbface(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 20) -> None:
    """``IMDb-Face.csv`` + ``<index>/<image>`` (the layout of the common download scripts)."""
    rows = ["index,name,image,rect,height width,url"]
    for i, img, lab in _faces(n, seed, size, num_identities):
        index = f"nm{lab['identity'] + 1:07d}"
        name = f"Synthetic_Person_{lab['identity']}"
        image = f"{name}_{i // num_identities + 1}.jpg"
        _save(root / index / image, img)
        x0, y0, x1, y1 = (int(round(float(v))) for v in lab["box"])
        rows.append(f"{index},{name},{image},{x0} {y0} {x1} {y1},{size} {size},https://example.invalid/{image}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "IMDb-Face.csv").write_text("\n".join(rows) + "\n")


def write_widerface(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 20) -> None:
    """``WIDER_train/images/0--Parade/*.jpg`` (2x2 collages) + ``wider_face_split/wider_face_train_bbx_gt.txt``.

    ``n`` faces are laid out four to an image (a 2x2 grid of ``size`` tiles).
    """
    lines = []
    faces = list(_faces(n, seed, size, num_identities))
    for g in range(0, n, 4):
        group = faces[g:g + 4]
        canvas = np.zeros((2 * size, 2 * size, 3), np.uint8)
        boxes = []
        for k, (_, img, lab) in enumerate(group):
            ox, oy = (k % 2) * size, (k // 2) * size
            canvas[oy:oy + size, ox:ox + size] = img
            x0, y0, x1, y1 = lab["box"]
            x0, y0 = max(x0, 0.0), max(y0, 0.0)
            x1, y1 = min(x1, size - 1.0), min(y1, size - 1.0)
            boxes.append(f"{int(x0 + ox)} {int(y0 + oy)} {int(x1 - x0)} {int(y1 - y0)} 0 0 0 0 0 0 ")
        name = f"0--Parade/0_Parade_synthetic_{g // 4}.jpg"
        _save(root / "WIDER_train/images" / name, canvas)
        lines += [name, str(len(boxes))] + boxes
    (root / "wider_face_split").mkdir(parents=True, exist_ok=True)
    (root / "wider_face_split/wider_face_train_bbx_gt.txt").write_text("\n".join(lines) + "\n")


def write_disfa(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 4) -> None:
    """``ActionUnit_Labels/SNxxx/SNxxx_auN.txt`` + ``frames/SNxxx/NNNNN.png`` (a subject per identity)."""
    per: dict[str, list[tuple[int, np.ndarray]]] = {}
    for i, img, lab in _faces(n, seed, size, num_identities):
        subj = f"SN{lab['identity'] + 1:03d}"
        frame = i // num_identities + 1
        _save(root / "frames" / subj / f"{frame:05d}.png", img)
        per.setdefault(subj, []).append((frame, lab["au"]))
    for subj, rows in per.items():
        d = root / "ActionUnit_Labels" / subj
        d.mkdir(parents=True, exist_ok=True)
        for k, au in enumerate(AU_IDS):
            (d / f"{subj}_au{au}.txt").write_text("".join(f"{f},{int(a[k])}\n" for f, a in rows))


def write_bp4d(root: Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 4) -> None:
    """FERA 2015 style ``AU_INT/AUxx/<subject>_T1_AUxx.csv`` + ``images/<subject>/T1/NNNN.jpg``.

    The synthetic faces carry AU6, AU12 and AU17 of BP4D's five; AU10 and AU14 are written as 9
    (not coded), which the reader turns into NaN.
    """
    per: dict[str, list[tuple[int, np.ndarray]]] = {}
    for i, img, lab in _faces(n, seed, size, num_identities):
        subj = f"{'F' if lab['identity'] % 2 == 0 else 'M'}{lab['identity'] + 1:03d}"
        frame = i // num_identities + 1
        _save(root / "images" / subj / "T1" / f"{frame:04d}.jpg", img)
        per.setdefault(subj, []).append((frame, lab["au"]))
    for au in (6, 10, 12, 14, 17):
        d = root / "AU_INT" / f"AU{au:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for subj, rows in per.items():
            k = AU_IDS.index(au) if au in AU_IDS else None
            body = "".join(f"{f},{9 if k is None else int(a[k])}\n" for f, a in rows)
            (d / f"{subj}_T1_AU{au:02d}.csv").write_text(body)


WRITERS: dict[str, Callable[..., None]] = {
    "vggface2": write_vggface2,
    "w300lp": write_w300lp,
    "aflw2000": write_aflw2000,
    "w300": write_w300,
    "affectnet": write_affectnet,
    "imdbface": write_imdbface,
    "widerface": write_widerface,
    "disfa": write_disfa,
    "bp4d": write_bp4d,
}


def write(dataset: str, root: str | Path, n: int, seed: int = 0, size: int = 128, **kw: Any) -> Path:
    """Write ``n`` synthetic faces in ``dataset``'s native format under ``root``; returns ``root``.

    Each dataset gets its own seed offset so that two datasets never hold the same faces.
    """
    if dataset not in WRITERS:
        raise ValueError(f"no native writer for {dataset!r}; choose one of {', '.join(WRITERS)}")
    root = Path(root)
    WRITERS[dataset](root, n, seed + 1000 * (list(WRITERS).index(dataset) + 1), size, **kw)
    return root


def write_all(out: str | Path, n: int | dict[str, int], seed: int = 0, size: int = 128) -> dict[str, Path]:
    """One synthetic root per dataset under ``out/<dataset>``; ``n`` per dataset (or a dict)."""
    out = Path(out)
    counts = n if isinstance(n, dict) else {d: n for d in WRITERS}
    return {d: write(d, out / d, k, seed, size) for d, k in counts.items()}
