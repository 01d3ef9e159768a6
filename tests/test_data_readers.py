"""Readers of the real dataset formats, on tiny fixtures written in each native format."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from facelib.data import readers
from facelib.data.face_model import AU_IDS
from facelib.data.record import DatasetFormatError, FaceRecord, Problems, frame_to_records, records_to_frame


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8, 3), 128, np.uint8))


def _read(name: str, root: Path, **kw) -> tuple[list[FaceRecord], Problems]:
    p = Problems(collect=True)
    return list(readers.read(name, root, problems=p, **kw)), p


# ------------------------------------------------------------------------------------------ VGG-Face2
def _vggface2(root: Path) -> None:
    bb = root / "bb_landmark"
    bb.mkdir(parents=True)
    (bb / "loose_bb_train.csv").write_text(
        '"NAME_ID","X","Y","W","H"\n"n000002/0001_01",161,140,224,324\n"n000002/0002_01",10,20,30,40\n'
        '"n000003/0001_01",1,2,3,4\n')
    (bb / "loose_landmark_train.csv").write_text(
        '"NAME_ID","P1X","P1Y","P2X","P2Y","P3X","P3Y","P4X","P4Y","P5X","P5Y"\n'
        '"n000002/0001_01",212.8,242.1,326.2,241.3,270.5,310.4,222.3,356.7,313.8,356.3\n')
    _img(root / "train/n000002/0001_01.jpg")
    _img(root / "train/n000002/0002_01.jpg")          # n000003/0001_01.jpg is missing


def test_vggface2(tmp_path):
    _vggface2(tmp_path)
    recs, probs = _read("vggface2", tmp_path, splits=("train",))
    assert [r.identity for r in recs] == ["n000002", "n000002"]
    np.testing.assert_allclose(recs[0].box, [161, 140, 385, 464])
    assert recs[0].landmarks_5.shape == (5, 2) and recs[0].landmarks_5[4, 0] == pytest.approx(313.8)
    assert recs[1].landmarks_5 is None                   # absent, not zero
    assert recs[0].path == "train/n000002/0001_01.jpg"
    assert len(probs) == 1 and probs.items[0].kind == "missing image"
    assert "n000003" in probs.items[0].reason


def test_vggface2_folders_only(tmp_path):
    _img(tmp_path / "train/n1/a.jpg")
    _img(tmp_path / "train/n2/b.jpg")
    recs, _ = _read("vggface2", tmp_path, splits=("train",))
    assert [(r.identity, r.path) for r in recs] == [("n1", "train/n1/a.jpg"), ("n2", "train/n2/b.jpg")]


def test_malformed_line_names_file_and_line(tmp_path):
    _vggface2(tmp_path)
    with open(tmp_path / "bb_landmark/loose_bb_train.csv", "a") as f:
        f.write('"n000002/0003_01",1,2,three,4\n')
    with pytest.raises(DatasetFormatError, match=r"loose_bb_train\.csv:5: .*numbers"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            list(readers.read("vggface2", tmp_path, splits=("train",)))
    recs, probs = _read("vggface2", tmp_path, splits=("train",))
    assert len(recs) == 2                                # the good rows are all still read
    kinds = sorted(p.kind for p in probs)
    assert kinds == ["malformed", "missing image"]
    bad = [p for p in probs if p.kind == "malformed"][0]
    assert bad.line == 5 and bad.file.endswith("loose_bb_train.csv")


def test_missing_image_warns_but_does_not_stop(tmp_path):
    _vggface2(tmp_path)
    with pytest.warns(UserWarning, match="image not found"):
        recs = list(readers.read("vggface2", tmp_path, splits=("train",)))
    assert len(recs) == 2


# ------------------------------------------------------------------------------------------ 300W
def _pts(path: Path, pts: np.ndarray) -> None:
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts)
    path.write_text(f"version: 1\nn_points:  {len(pts)}\n{{\n{body}\n}}\n")


def test_300w(tmp_path):
    pts = np.stack([np.arange(68) + 10.5, np.arange(68) * 2 + 3.25], 1)
    (tmp_path / "afw").mkdir()
    _pts(tmp_path / "afw/1.pts", pts)
    _img(tmp_path / "afw/1.jpg")
    _pts(tmp_path / "afw/2.pts", pts)                    # no image
    recs, probs = _read("w300", tmp_path)
    assert len(recs) == 1 and recs[0].path == "afw/1.jpg"
    np.testing.assert_allclose(recs[0].landmarks_2d, pts, atol=1e-3)
    np.testing.assert_allclose(recs[0].box, [10.5, 3.25, 77.5, 137.25])
    assert recs[0].extra["subset"] == "afw" and recs[0].identity is None
    assert len(probs) == 1 and probs.items[0].kind == "missing image"
    # A wrong point count is reported with its line.
    _pts(tmp_path / "afw/3.pts", pts[:67])
    (tmp_path / "afw/3.pts").write_text((tmp_path / "afw/3.pts").read_text().replace("n_points:  67", "n_points:  68"))
    _img(tmp_path / "afw/3.jpg")
    with pytest.raises(DatasetFormatError, match=r"3\.pts:\d+: n_points says 68, found 67"):
        list(readers.read("w300", tmp_path, check_images=False))


# ------------------------------------------------------------------------------------------ WFLW
def test_wflw(tmp_path):
    ann = tmp_path / "WFLW_annotations/list_98pt_rect_attr_train_test"
    ann.mkdir(parents=True)
    coords = " ".join(f"{v:.2f}" for v in np.arange(196) * 0.5)
    good = f"{coords} 1 2 90 95 0 1 0 0 1 0 51--Dresses/51_Dresses_wearingdress_51_377.jpg"
    (ann / "list_98pt_rect_attr_train.txt").write_text(good + "\n" + good.replace(" 1 2 90", " 1 2") + "\n")
    _img(tmp_path / "WFLW_images/51--Dresses/51_Dresses_wearingdress_51_377.jpg")
    recs, probs = _read("wflw", tmp_path)
    assert len(recs) == 1
    r = recs[0]
    assert r.landmarks_2d.shape == (98, 2) and r.landmarks_2d[97, 1] == pytest.approx(97.5)
    np.testing.assert_allclose(r.box, [1, 2, 90, 95])
    assert r.extra == {"pose": 0, "expression": 1, "illumination": 0, "makeup": 0, "occlusion": 1, "blur": 0}
    assert r.split == "train"
    assert probs.items[0].line == 2 and "expected 207 fields" in probs.items[0].reason


# ------------------------------------------------------------------------------------------ AFLW2000-3D / 300W-LP
def test_aflw2000(tmp_path):
    pt3d = np.stack([np.linspace(10, 60, 68), np.linspace(20, 80, 68), np.linspace(-5, 5, 68)])
    scipy.io.savemat(tmp_path / "image00002.mat", {
        "pt3d_68": pt3d, "Pose_Para": np.array([[0.1, -0.5, 0.05, 1, 2, 3, 0.001]]),
        "pt2d": np.zeros((2, 21))})
    _img(tmp_path / "image00002.jpg")
    scipy.io.savemat(tmp_path / "image00004.mat", {"Pose_Para": np.zeros((1, 7))})    # no pt3d_68
    _img(tmp_path / "image00004.jpg")
    recs, probs = _read("aflw2000", tmp_path)
    assert len(recs) == 1
    r = recs[0]
    np.testing.assert_allclose(r.landmarks_3d, pt3d.T, rtol=1e-6)
    np.testing.assert_allclose(r.pose, np.degrees([-0.5, 0.1, 0.05]), rtol=1e-5)   # yaw, pitch, roll
    assert r.identity is None and r.expression is None
    assert probs.items[0].kind == "malformed" and "pt3d_68" in probs.items[0].reason


def test_300w_lp(tmp_path):
    pt2d = np.stack([np.linspace(0, 50, 68), np.linspace(5, 55, 68)])
    (tmp_path / "AFW").mkdir()
    scipy.io.savemat(tmp_path / "AFW/AFW_134212_1_0.mat", {
        "Pose_Para": np.array([[0.0, 1.0, 0.0, 0, 0, 0, 1]]), "pt2d": pt2d})
    _img(tmp_path / "AFW/AFW_134212_1_0.jpg")
    scipy.io.savemat(tmp_path / "AFW/AFW_134212_1_3.mat", {"Pose_Para": np.array([[0.0, 0.5, 0.0, 0, 0, 0, 1]])})
    _img(tmp_path / "AFW/AFW_134212_1_3.jpg")
    (tmp_path / "landmarks/AFW").mkdir(parents=True)
    scipy.io.savemat(tmp_path / "landmarks/AFW/AFW_134212_1_3_pts.mat",
                     {"pts_2d": np.ones((68, 2)), "pts_3d": np.full((68, 2), 7.0)})
    recs, probs = _read("w300lp", tmp_path)
    assert len(recs) == 2 and len(probs) == 0
    assert {r.identity for r in recs} == {"AFW_134212_1"}
    np.testing.assert_allclose(recs[0].landmarks_2d, pt2d.T)
    assert recs[0].pose[0] == pytest.approx(np.degrees(1.0))
    np.testing.assert_allclose(recs[1].landmarks_2d, 7.0)         # from landmarks/*_pts.mat
    assert recs[0].landmarks_3d is None


# ------------------------------------------------------------------------------------------ AffectNet
def test_affectnet_codes(tmp_path):
    lm = ";".join(f"{v:.1f}" for v in np.arange(136))
    (tmp_path / "Manually_Annotated_file_lists").mkdir()
    rows = [
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal",
        f"689/737db2483489148d.jpg,134,134,899,899,{lm},1,0.785714,-0.055556",
        f"392/c4db2f9b7e4b422d.jpg,20,20,100,100,{lm},9,-2,-2",
        f"468/21772b68dc8c2a11.jpg,0,0,50,50,{lm},10,-2,-2",
        f"1/a.jpg,0,0,50,50,{lm},8,0.2,0.1",
        f"1/b.jpg,0,0,50,50,{lm},12,0.2,0.1",
        f"1/c.jpg,0,0,50,50,{lm},3,1.7,0.1",
    ]
    (tmp_path / "Manually_Annotated_file_lists/training.csv").write_text("\n".join(rows) + "\n")
    for name in ("689/737db2483489148d.jpg", "392/c4db2f9b7e4b422d.jpg", "468/21772b68dc8c2a11.jpg",
                 "1/a.jpg", "1/b.jpg", "1/c.jpg"):
        _img(tmp_path / "Manually_Annotated_Images" / name)
    stats: dict[str, int] = {}
    recs, probs = _read("affectnet", tmp_path, stats=stats)
    assert len(recs) == 3
    happy, uncertain, none = recs
    assert happy.expression == 1 and happy.valence == pytest.approx(0.785714)
    np.testing.assert_allclose(happy.box, [134, 134, 1033, 1033])
    assert happy.landmarks_2d.shape == (68, 2) and happy.landmarks_2d[1, 0] == 2.0
    assert uncertain.expression is None and uncertain.valence is None and uncertain.arousal is None
    assert none.expression is None and none.valence == pytest.approx(0.2)
    assert stats == {"uncertain": 1, "no_face": 1, "none": 1}
    assert [(p.line, p.kind) for p in probs] == [(6, "malformed"), (7, "malformed")]
    assert "code 12" in probs.items[0].reason and "outside [-1, 1]" in probs.items[1].reason


# ------------------------------------------------------------------------------------------ DISFA
def test_disfa(tmp_path):
    d = tmp_path / "ActionUnit_Labels/SN001"
    d.mkdir(parents=True)
    for k, au in enumerate(AU_IDS):
        (d / f"SN001_au{au}.txt").write_text("".join(f"{f},{(f + k) % 6}\n" for f in range(1, 4)))
    recs, probs = _read("disfa", tmp_path)
    assert len(recs) == 3 and len(probs) == 0
    assert recs[1].subject == "SN001" and recs[1].frame == 2 and recs[1].au_ids == AU_IDS
    np.testing.assert_array_equal(recs[1].au, [(2 + k) % 6 for k in range(12)])
    assert recs[0].path is None and recs[0].identity is None
    # Frames as images: a missing frame is reported, the others are read.
    for f in (1, 3):
        _img(tmp_path / f"frames/SN001/{f:05d}.png")
    recs, probs = _read("disfa", tmp_path, frame_pattern="frames/{subject}/{frame:05d}.png")
    assert [r.frame for r in recs] == [1, 3] and probs.items[0].kind == "missing image"
    (d / "SN001_au26.txt").write_text("1,0\n2,seven\n3,1\n")
    with pytest.raises(DatasetFormatError, match=r"SN001_au26\.txt:2"):
        list(readers.read("disfa", tmp_path))


# ------------------------------------------------------------------------------------------ BP4D
def test_bp4d(tmp_path):
    for au in (6, 10, 12, 14, 17):
        d = tmp_path / "AU_INT" / f"AU{au:02d}"
        d.mkdir(parents=True)
        (d / f"F001_T1_AU{au:02d}.csv").write_text(f"1,{au % 5}\n2,9\n3,3\n")
        (d / f"M002_T8_AU{au:02d}.csv").write_text("10,0\n")
    recs, probs = _read("bp4d", tmp_path)
    assert len(probs) == 0 and len(recs) == 4
    r = recs[0]
    assert (r.subject, r.extra["task"], r.frame, r.au_ids) == ("F001", "T1", 1, (6, 10, 12, 14, 17))
    np.testing.assert_array_equal(r.au, [1, 0, 2, 4, 2])
    assert np.isnan(recs[1].au).all()                    # 9 = not coded -> NaN, never 0
    assert recs[3].subject == "M002" and recs[3].frame == 10
    (tmp_path / "AU_INT/AU12/F001_T1_AU12.csv").write_text("1,2\n2,7\n")
    with pytest.raises(DatasetFormatError, match=r"F001_T1_AU12\.csv:2: intensity 7"):
        list(readers.read("bp4d", tmp_path))


# ------------------------------------------------------------------------------------------ IMDb-Face
def test_imdbface(tmp_path):
    (tmp_path / "IMDb-Face.csv").write_text(
        "index,name,image,rect,height width,url\n"
        "nm0000001,Fred_Astaire,Fred_Astaire_1.jpg,248 33 403 215,434 550,http://x/1.jpg\n"
        "nm0000001,Fred_Astaire,Fred_Astaire_2.jpg,10 10 60 70,100 100,http://x/2.jpg\n"
        "nm0000002,Lauren_Bacall,Lauren_Bacall_1.jpg,1 2 3,100 100,http://x/3.jpg\n")
    _img(tmp_path / "nm0000001/Fred_Astaire_1.jpg")
    recs, probs = _read("imdbface", tmp_path)
    assert len(recs) == 1
    r = recs[0]
    assert r.identity == "nm0000001" and r.extra["name"] == "Fred_Astaire" and r.extra["height"] == 434
    np.testing.assert_allclose(r.box, [248, 33, 403, 215])
    assert sorted((p.kind, p.line) for p in probs) == [("malformed", 4), ("missing image", 3)]


# ------------------------------------------------------------------------------------------ WIDER FACE
def test_widerface(tmp_path):
    split = tmp_path / "wider_face_split"
    split.mkdir()
    (split / "wider_face_train_bbx_gt.txt").write_text(
        "0--Parade/0_Parade_marchingband_1_849.jpg\n1\n449 330 122 149 0 0 0 0 0 0 \n"
        "0--Parade/0_Parade_Parade_0_904.jpg\n3\n361 98 263 339 0 0 0 0 0 0 \n"
        "10 10 0 0 2 0 0 1 0 0 \n5 5 20 20 1 0 0 0 2 1 \n"
        "0--Parade/0_Parade_empty.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n"
        "0--Parade/0_Parade_bad.jpg\nthree\n"
        "0--Parade/0_Parade_last.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n")
    for n in ("0_Parade_marchingband_1_849", "0_Parade_Parade_0_904", "0_Parade_empty", "0_Parade_last"):
        _img(tmp_path / f"WIDER_train/images/0--Parade/{n}.jpg")
    recs, probs = _read("widerface", tmp_path, splits=("train",))
    assert len(recs) == 4                                 # the invalid, empty box is dropped
    np.testing.assert_allclose(recs[0].box, [449, 330, 571, 479])
    assert recs[2].extra["occlusion"] == 2 and recs[2].extra["blur"] == 1
    assert recs[3].path.endswith("0_Parade_last.jpg")
    assert probs.items[0].line == 13 and "face count" in probs.items[0].reason
    recs_all, _ = _read("widerface", tmp_path, splits=("train",), keep_invalid=True)
    assert len(recs_all) == 5


# ------------------------------------------------------------------------------------------ records
def test_records_roundtrip_through_manifest_columns(tmp_path):
    _vggface2(tmp_path)
    recs, _ = _read("vggface2", tmp_path, splits=("train",))
    from facelib.data import synth
    from facelib.data.record import from_synth

    img, lab = synth.render(0, seed=0, size=64)
    recs.append(from_synth(0, lab, seed=0))
    df = records_to_frame(recs)
    path = tmp_path / "m.parquet"
    df.to_parquet(path)
    import pandas as pd

    back = frame_to_records(pd.read_parquet(path))
    assert back[0].identity == "n000002" and back[0].au is None and back[0].landmarks_3d is None
    np.testing.assert_allclose(back[0].landmarks_5, recs[0].landmarks_5)
    s = back[-1]
    assert s.dataset == "synth" and s.identity == "0" and s.au_ids == AU_IDS
    np.testing.assert_allclose(s.landmarks_3d, lab["landmarks_3d"])
    assert s.expression == lab["expression"] and s.extra == {"seed": 0}
    assert back[1].extra == {} and "recon3d" in s.tasks and back[0].tasks == ("recognition",)


def test_bad_shapes_and_unknown_reader(tmp_path):
    with pytest.raises(ValueError, match="landmarks_5"):
        FaceRecord(dataset="x", landmarks_5=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="unknown dataset reader"):
        readers.get("celeba")
    with pytest.raises(FileNotFoundError, match="WIDER FACE root"):
        list(readers.read("widerface", tmp_path / "nope"))


def test_summarize_streams_counts_and_fields(tmp_path):
    _vggface2(tmp_path)
    p = Problems(collect=True)
    s = readers.summarize("vggface2", tmp_path, p, splits=("train",))
    assert s == {"dataset": "vggface2", "records": 2, "problems": 1,
                 "fields": "box, identity, landmarks_5, path, split"}
