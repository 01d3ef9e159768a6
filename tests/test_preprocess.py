"""The batch pipeline: folder -> shards + manifest + rejects; resume; bad inputs; workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from facelib import cli, recipes, storage
from facelib.faces import preprocess as pp
from facelib.faces.crop import box_size

from faces_fixtures import many_faces, photo_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return folder, photo_folder(folder)


@pytest.fixture(scope="module")
def run(photos, tmp_path_factory):
    folder, _ = photos
    out = tmp_path_factory.mktemp("out")
    summary = pp.preprocess(folder, out, align=True, shard_size=3, progress=False)
    return out, summary


def test_every_input_processed_or_rejected_with_reason(photos, run):
    _, expected = photos
    out, summary = run
    files = storage.read_manifest(out / pp.FILES).set_index("file")
    assert sorted(files.index) == sorted(expected)
    for name, exp in expected.items():
        row = files.loc[name]
        if isinstance(exp, int):
            assert row["status"] == "ok" and row["faces"] == exp, (name, row.to_dict())
        else:
            assert row["status"] == "rejected" and row["reason"] == exp, (name, row.to_dict())
            assert bool(row["error"]) == (exp != pp.NO_FACE)
            if row["error"]:
                assert name.split("/")[-1] in row["detail"]
    rejects = storage.read_manifest(out / pp.REJECTS)
    assert set(rejects["file"]) == {k for k, v in expected.items() if isinstance(v, str)}
    n_err = sum(isinstance(v, str) and v != pp.NO_FACE for v in expected.values())
    assert summary.errors == n_err and summary.files == len(expected)
    assert summary.faces == sum(v for v in expected.values() if isinstance(v, int))
    assert 0 < summary.startup_seconds < summary.seconds  # the workers' start, part of the run


def test_manifest_rows_point_at_decodable_crops(run):
    out, _ = run
    man = storage.read_manifest(out / pp.MANIFEST)
    assert len(man) == run[1].faces
    assert not man.duplicated(["file", "face"]).any()
    assert not man.duplicated(["shard", "index"]).any()
    r = recipes.crop()
    # the face box is 190 px in the crop (box size rule 'max')
    sizes = man["crop_scale"] * box_size(man[["x1", "y1", "x2", "y2"]].to_numpy(), r.box_size)
    np.testing.assert_allclose(sizes, r.face_size, atol=2)
    crops = storage.ShardDataset(man, root=out)
    aligned = storage.ShardDataset(
        man.rename(columns={"shard": "s", "index": "i", "aligned_shard": "shard",
                            "aligned_index": "index"}), root=out)
    for i in range(len(man)):
        assert crops[i].shape == (256, 256, 3)
        assert aligned[i].shape == (*r.aligned_size, 3)
    # shards hold exactly the crops the manifest lists, in the authors' layout
    for shard, rows in man.groupby("shard"):
        with h5py.File(out / shard, "r") as f:
            assert list(f.keys()) == ["images"] and len(f["images"]) == len(rows)
    assert not list(out.glob(".*.tmp")) and not (out / ".lock").exists()


def test_exif_rotated_photo_processed_upright(run):
    out, _ = run
    man = storage.read_manifest(out / pp.MANIFEST).set_index("file")
    rot, ref = man.loc["bad/exif_rotated.jpg"], man.loc["grace_hopper.jpg"]
    assert (rot["image_w"], rot["image_h"]) == (ref["image_w"], ref["image_h"]) == (512, 600)
    for c in ("x1", "y1", "x2", "y2", "nose_x", "nose_y"):
        assert abs(rot[c] - ref[c]) < 5, c


def test_large_image_border_face_and_landmarks_in_crop(run):
    out, _ = run
    man = storage.read_manifest(out / pp.MANIFEST).set_index("file")
    big = man.loc["sub/large_4000x3000.jpg"]
    assert big["face_w"] > 700  # one large face, found once
    cut = man.loc["border_cut.png"]
    assert cut["x1"] < 10
    # landmarks land inside the crop, where the stored transform puts them
    k, tx, ty = big["crop_scale"], big["crop_tx"], big["crop_ty"]
    x, y = k * big["nose_x"] + tx, k * big["nose_y"] + ty
    assert 100 < x < 156 and 100 < y < 180


def test_second_run_does_no_work(photos, run):
    folder, _ = photos
    out, first = run
    before = storage.read_manifest(out / pp.MANIFEST)
    shards = sorted(p.name for p in out.glob("*.h5"))
    again = pp.preprocess(folder, out, align=True, shard_size=3, progress=False)
    assert again.files == 0 and again.faces == 0 and again.skipped == first.files
    pd.testing.assert_frame_equal(storage.read_manifest(out / pp.MANIFEST), before)
    assert sorted(p.name for p in out.glob("*.h5")) == shards


def test_cli_exit_status_and_summary(photos, tmp_path, capsys):
    folder, _ = photos
    good = tmp_path / "good"
    good.mkdir()
    for name in ("astronaut.png", "coffee.png"):
        (good / name).write_bytes((folder / name).read_bytes())
    assert cli.main(["preprocess", str(good), str(tmp_path / "o1"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "faces written: 1" in printed and "no face: 1" in printed
    (good / "broken.jpg").write_bytes(b"")
    assert cli.main(["preprocess", str(good), str(tmp_path / "o1"), "--no-progress"]) == 1
    assert "empty file: 1" in capsys.readouterr().out
    # a rerun with different options into the same folder is refused, naming the difference
    assert cli.main(["preprocess", str(good), str(tmp_path / "o1"), "--no-progress",
                     "--shard-size", "7"]) == 2
    assert "shard_size" in capsys.readouterr().err
    assert cli.main(["preprocess", str(tmp_path / "missing"), str(tmp_path / "o2"),
                     "--no-progress"]) == 2


def test_file_list_max_faces_min_face_and_limit(photos, tmp_path):
    folder, _ = photos
    lst = tmp_path / "list.txt"
    lst.write_text(f"{folder / 'astronaut.png'}\n# a comment\n{folder / 'camera.png'}\n")
    s = pp.preprocess(lst, tmp_path / "a", progress=False, min_face=90)
    files = storage.read_manifest(tmp_path / "a" / pp.FILES).set_index("file")
    # the cameraman's face box is about 61 x 81 px: dropped by min_face=90, and said so
    assert files.loc[str(folder / "camera.png"), "reason"] == pp.TOO_SMALL
    assert files.loc[str(folder / "astronaut.png"), "faces"] == 1 and s.faces == 1
    s = pp.preprocess(folder, tmp_path / "b", progress=False, limit=3, max_faces_per_image=1)
    assert s.files == 3
    s = pp.preprocess(folder, tmp_path / "b", progress=False, limit=None, max_faces_per_image=1)
    assert s.skipped == 3
    man = storage.read_manifest(tmp_path / "b" / pp.MANIFEST)
    assert man.groupby("file").size().max() == 1


def test_two_workers_give_the_same_result(tmp_path):
    src = tmp_path / "src"
    many_faces(src, 10)
    pp.preprocess(src, tmp_path / "w1", workers=1, shard_size=4, progress=False)
    pp.preprocess(src, tmp_path / "w2", workers=2, shard_size=4, progress=False)
    a = storage.read_manifest(tmp_path / "w1" / pp.MANIFEST)
    b = storage.read_manifest(tmp_path / "w2" / pp.MANIFEST)
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------------
# Interrupted runs
# --------------------------------------------------------------------------------------------
N_KILL = 80


@pytest.fixture(scope="module")
def kill_src(tmp_path_factory):
    src = tmp_path_factory.mktemp("kill_src")
    many_faces(src, N_KILL, seed=1)
    ref = tmp_path_factory.mktemp("kill_ref")
    pp.preprocess(src, ref, workers=1, shard_size=4, progress=False)
    return src, ref


def _start(src: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "facelib.cli", "preprocess", str(src), str(out), "--workers", "2",
           "--shard-size", "4", "--no-progress"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _workers(pid: int) -> list[int]:
    """The worker processes of a run: descendants without children (not the fork server)."""
    leaves, stack = [], _children(pid)
    while stack:
        p = stack.pop()
        kids = _children(p)
        if kids:
            stack += kids
        else:
            leaves.append(p)
    return leaves


def _wait_for(cond, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.005)


def _assert_same_faces(out: Path, ref: Path) -> None:
    """No duplicate and no missing face; every crop byte-identical to an uninterrupted run."""
    man = storage.read_manifest(out / pp.MANIFEST)
    exp = storage.read_manifest(ref / pp.MANIFEST)
    assert not man.duplicated(["file", "face"]).any()
    assert sorted(zip(man["file"], man["face"])) == sorted(zip(exp["file"], exp["face"]))
    assert len(man) == N_KILL
    got = storage.ShardDataset(man, root=out)
    want = storage.ShardDataset(exp.set_index(["file", "face"]).loc[
        list(zip(man["file"], man["face"]))].reset_index(), root=ref)
    for i in range(len(man)):
        assert got.read_bytes(i) == want.read_bytes(i)
    # nothing unreferenced stays behind
    used = set(man["shard"])
    assert {p.name for p in out.glob("crops-*.h5")} == used


@pytest.mark.slow
def test_killed_worker_is_replaced_and_nothing_lost(kill_src, tmp_path):
    src, ref = kill_src
    out = tmp_path / "out"
    proc = _start(src, out)
    try:
        _wait_for(lambda: (out / "crops-00000.h5").exists() and len(_workers(proc.pid)) >= 2)
        os.kill(_workers(proc.pid)[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    assert "worker processes replaced: 1" in stdout
    _assert_same_faces(out, ref)


@pytest.mark.slow
def test_resume_after_the_run_is_killed(kill_src, tmp_path):
    src, ref = kill_src
    out = tmp_path / "out"
    proc = _start(src, out)
    try:
        _wait_for(lambda: len(list((out / "parts").glob("*.faces.parquet"))) >= 2)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job, workers included, mid-run
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    committed = pd.concat([pd.read_parquet(p) for p in (out / "parts").glob("*.files.parquet")])
    assert 0 < len(committed) < N_KILL, "the kill must land mid-run"
    assert (out / ".lock").exists()  # left by the killed run; the next run takes it over
    summary = pp.preprocess(src, out, workers=2, shard_size=4, progress=False)
    assert summary.skipped > 0 and summary.skipped + summary.files == N_KILL
    _assert_same_faces(out, ref)


def test_large_jpeg_crops_from_reduced_or_full_decode(tmp_path):
    """Big faces are cropped from the reduced decode, small ones from the full image."""
    import cv2
    from PIL import Image

    from facelib import images
    from facelib.faces.crop import crop_face
    from faces_fixtures import astronaut, grace_hopper

    canvas = np.full((3000, 4000, 3), 90, np.uint8)
    canvas[:2400, :2048] = cv2.resize(grace_hopper(), (2048, 2400))  # face ~700 x 880 px
    canvas[1500:3000, 2500:4000] = cv2.resize(astronaut(), (1500, 1500))  # face ~280 x 360
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(canvas).save(src / "big.jpg", quality=92)
    pp.preprocess(src, tmp_path / "out", progress=False)
    man = storage.read_manifest(tmp_path / "out" / pp.MANIFEST).sort_values("x1")
    assert len(man) == 2 and (man[["image_w", "image_h"]].to_numpy() == (4000, 3000)).all()
    r = recipes.crop()
    full = images.load_image(src / "big.jpg")
    ds = storage.ShardDataset(man.reset_index(drop=True), root=tmp_path / "out")
    for i, row in enumerate(man.itertuples()):
        box = np.array([row.x1, row.y1, row.x2, row.y2])
        expect, M = crop_face(full, box, r.face_size, r.output_size, r.box_size)
        # the same crop up to where the square snaps to whole (reduced) pixels: < 1 crop px
        assert abs(row.crop_scale - M[0, 0]) < 0.01 * M[0, 0]
        np.testing.assert_allclose([row.crop_tx, row.crop_ty], [M[0, 2], M[1, 2]], atol=1.0)
        diff = np.abs(ds[i].astype(int) - expect).mean()
        side = box_size(box, r.box_size) * r.scale
        if side / 2 < r.output_size:  # small face: from the full decode, same pixels up to JPEG
            assert diff < 1.5, diff
        else:  # big face: from the half-size decode, close to the full-size crop
            assert diff < 4, diff
    assert box_size(man[["x1", "y1", "x2", "y2"]].to_numpy()).min() * r.scale / 2 < r.output_size
    assert box_size(man[["x1", "y1", "x2", "y2"]].to_numpy()).max() * r.scale / 2 > r.output_size


def test_retry_rejects_after_the_file_is_fixed(photos, tmp_path):
    folder, _ = photos
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"")  # broken now, fixed below
    (src / "coffee.png").write_bytes((folder / "coffee.png").read_bytes())
    s = pp.preprocess(src, tmp_path / "out", progress=False)
    assert s.errors == 1
    (src / "a.jpg").write_bytes((folder / "grace_hopper.jpg").read_bytes())
    assert pp.preprocess(src, tmp_path / "out", progress=False).files == 0  # rejects are done
    s = pp.preprocess(src, tmp_path / "out", progress=False, retry_rejects=True)
    assert s.files == 1 and s.faces == 1  # the photo without a face is not retried
    files = storage.read_manifest(tmp_path / "out" / pp.FILES).set_index("file")
    assert files.loc["a.jpg", "status"] == "ok" and len(files) == 2
    rejects = storage.read_manifest(tmp_path / "out" / pp.REJECTS)
    assert rejects["file"].tolist() == ["coffee.png"]


def test_file_that_kills_its_worker_is_rejected(tmp_path, monkeypatch):
    """A file that crashes the worker (a decoder segfault, say) is retried alone, then rejected."""
    import multiprocessing

    src = tmp_path / "src"
    names = many_faces(src, 6)
    real = pp._process_file

    def crash_on_poison(path: str, key: str):
        if key == "poison":
            os._exit(11)  # dies like a crashed decoder: no exception, no result
        return real(path, key)

    # fork carries the patched function into the workers (the default fork server would not)
    monkeypatch.setattr(pp, "_process_file", crash_on_poison)
    items = [(str(src / n), n) for n in names[:3]] + [("nowhere", "poison")] + [
        (str(src / n), n) for n in names[3:]]
    summary = pp.Summary()
    opts = {"min_face": 0, "max_faces": None, "align": False, "threads": 1}
    out = list(pp._results(items, 2, recipes.crop(), opts, summary,
                           context=multiprocessing.get_context("fork")))
    assert [r.file for r in out] == [k for _, k in items]  # input order kept
    poison = out[3]
    assert poison.error and poison.reason == pp.WORKER_DIED and "poison" in poison.detail
    assert all(len(r.faces) == 1 and not r.rejected for i, r in enumerate(out) if i != 3)
    assert summary.worker_restarts == 2  # once among others, once alone


def test_workers_that_cannot_start_stop_the_run_without_rejecting_files(tmp_path):
    """A failure that is no file's fault (here: workers cannot import a main read from stdin)
    stops the run with a clear error; no file is marked as rejected."""
    src = tmp_path / "src"
    many_faces(src, 3)
    code = (
        "from facelib.faces import preprocess as pp\n"
        f"pp.preprocess({str(src)!r}, {str(tmp_path / 'out')!r}, workers=2, progress=False)\n"
    )
    proc = subprocess.run([sys.executable, "-"], input=code, text=True, capture_output=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode != 0
    assert "RuntimeError: a preprocessing worker process failed to start" in proc.stderr
    assert not (tmp_path / "out" / "parts").exists() or not list((tmp_path / "out" / "parts").iterdir())
    # the same call from an importable main works, and nothing was lost in between
    assert pp.preprocess(src, tmp_path / "out", workers=2, progress=False).faces == 3


def test_detect_max_side_option_finds_small_faces_in_large_photos(tmp_path, capsys):
    """``--detect-max-side``: the recipe's copy misses 60 px faces in a 4000x3000 photo; a
    full-size copy finds them. The value is part of the folder's options."""
    import cv2

    from faces_fixtures import grace_hopper, save

    g = grace_hopper()  # the face is about 176 px wide
    k = 60 / 176
    small = cv2.resize(g, (round(512 * k), round(600 * k)), interpolation=cv2.INTER_AREA)
    big = np.full((3000, 4000, 3), 128, np.uint8)
    for y, x in [(500, 500), (1500, 2000), (2200, 3000)]:
        big[y:y + small.shape[0], x:x + small.shape[1]] = small
    src = tmp_path / "src"
    src.mkdir()
    save(src / "crowd.png", big)
    default = pp.preprocess(src, tmp_path / "default", progress=False)
    assert default.faces == 0
    assert cli.main(["preprocess", str(src), str(tmp_path / "full"), "--detect-max-side", "4000",
                     "--no-progress"]) == 0
    man = storage.read_manifest(tmp_path / "full" / pp.MANIFEST)
    assert len(man) == 3
    # the same folder with another detection size is refused, naming the option
    with pytest.raises(ValueError, match="detect_max_side"):
        pp.preprocess(src, tmp_path / "full", detect_max_side=1024, progress=False)
    with pytest.raises(ValueError, match="detect_max_side must be at least 32"):
        pp.preprocess(src, tmp_path / "x", detect_max_side=8, progress=False)
