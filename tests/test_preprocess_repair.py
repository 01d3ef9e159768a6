"""Issue 14: shards are verified, not trusted; the preprocess command's errors and exit status.

A rerun of ``facelib preprocess`` checks every shard it would skip (size, SHA-1) and processes
again the source files of a missing, truncated or altered shard and of an unreadable part file.
Command-line errors are one line and exit 2, tested through the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facelib import storage
from facelib.faces import folder
from facelib.faces import preprocess as pp

from faces_fixtures import many_faces

REPO = Path(__file__).resolve().parents[1]
N = 12


def _facelib(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facelib", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    folder_ = tmp_path_factory.mktemp("repair_src")
    many_faces(folder_, N, seed=3)
    return folder_


@pytest.fixture(scope="module")
def reference(src, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("repair_ref")
    pp.preprocess(src, out, shard_size=2, progress=False)
    return out


def _crops(out: Path) -> dict[tuple[str, int], bytes]:
    man = storage.read_manifest(out / pp.MANIFEST)
    ds = storage.ShardDataset(man, root=out)
    return {(f, int(i)): ds.read_bytes(k) for k, (f, i) in enumerate(zip(man["file"], man["face"]))}


def test_damaged_shards_and_part_files_are_found_and_repaired(src, reference, tmp_path):
    out = tmp_path / "out"
    first = pp.preprocess(src, out, shard_size=2, progress=False)
    assert first.files == N and not first.repairs
    records = storage.read_manifest(out / pp.SHARDS).set_index("shard")
    assert len(records) == N // 2  # one face per photo, two per shard: every shard recorded
    for name, rec in records.iterrows():
        assert (out / name).stat().st_size == rec["bytes"]
        assert storage.file_digest(out / name) == rec["sha1"] and rec["items"] == 2
    # damage: truncate one shard, delete another, flip a byte of a third, garble a commit's part
    truncated = out / "crops-00001.h5"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    (out / "crops-00003.h5").unlink()
    altered = out / "crops-00005.h5"
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    (out / "parts" / "000004.faces.parquet").write_bytes(b"not parquet at all")

    proc = _facelib("preprocess", src, out, "--shard-size", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout
    assert "Traceback" not in printed + proc.stderr
    assert "repaired 4 damaged file(s)" in printed
    assert "crops-00001.h5: truncated: 1000 bytes" in printed
    assert "crops-00003.h5: missing" in printed
    assert "crops-00005.h5: checksum mismatch" in printed
    assert "parts/000004.faces.parquet: unreadable" in printed
    # the files of the three shards (2 each) and of the dropped commit (2) were processed again
    assert "files processed: 8 (skipped, already done: 4)" in printed

    # the manifest is complete, every item readable and equal to an undamaged run's
    got, want = _crops(out), _crops(reference)
    assert got == want and len(got) == N
    man = storage.read_manifest(out / pp.MANIFEST)
    assert not man.duplicated(["file", "face"]).any()
    on_disk = {p.name for p in out.glob("crops-*.h5")}
    assert on_disk == set(man["shard"])  # the damaged shards are gone, nothing unreferenced stays
    assert not {"crops-00001.h5", "crops-00003.h5", "crops-00005.h5"} & on_disk  # new names, never reused
    records = storage.read_manifest(out / pp.SHARDS).set_index("shard")
    assert set(records.index) == on_disk
    for name, rec in records.iterrows():
        assert storage.check_file(out / name, int(rec["bytes"]), rec["sha1"]) is None

    again = pp.preprocess(src, out, shard_size=2, progress=False)
    assert again.files == 0 and not again.repairs and again.repairs.verified == len(on_disk)


def test_unreadable_files_part_drops_its_commit(src, tmp_path):
    out = tmp_path / "out"
    pp.preprocess(src, out, shard_size=4, progress=False)
    (out / "parts" / "000001.files.parquet").write_bytes(b"")
    summary = pp.preprocess(src, out, shard_size=4, progress=False)
    assert list(summary.repairs.parts) == ["parts/000001.files.parquet"]
    assert summary.files == 4 and summary.total_faces == N
    assert len(storage.read_manifest(out / pp.MANIFEST)) == N


def test_verification_without_cleaning_changes_nothing(src, tmp_path):
    out = tmp_path / "out"
    pp.preprocess(src, out, shard_size=3, progress=False)
    (out / "crops-00000.h5").unlink()
    before = sorted(p.name for p in out.rglob("*"))
    state = folder.load(out, checksums=True, clean=False)
    assert list(state.repairs.shards) == ["crops-00000.h5"] and len(state.files) == N - 3
    assert sorted(p.name for p in out.rglob("*")) == before
    proc = _facelib("preprocess", src, out, "--shard-size", "3", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would preprocess 3 of the 12 images" in proc.stdout and "crops-00000.h5: missing" in proc.stdout
    assert sorted(p.name for p in out.rglob("*")) == before


# --------------------------------------------------------------------------------------------
# Command-line errors: one line, exit 2, no traceback; the exit status of a folder with rejects
# --------------------------------------------------------------------------------------------
def _error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(err.splitlines()) == 1 and err.startswith("facelib preprocess: error: "), err
    for n in needles:
        assert n in err, err
    return err


def test_output_that_is_a_file(src, tmp_path):
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me\n")
    _error(_facelib("preprocess", src, existing), str(existing), "is not a folder")
    assert existing.read_text() == "keep me\n"


def test_empty_or_missing_source_creates_nothing(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no photo here")
    _error(_facelib("preprocess", empty, tmp_path / "o1"), "no images in", str(empty), ".jpg")
    listing = tmp_path / "list.txt"
    listing.write_text("# nothing listed\n")
    _error(_facelib("preprocess", listing, tmp_path / "o2"), "no images in", "the list")
    _error(_facelib("preprocess", tmp_path / "missing", tmp_path / "o3"), "not found", "missing")
    _error(_facelib("preprocess", tmp_path / "missing", tmp_path / "o4", "--cluster", "debug"), "not found")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


def test_garbage_config_is_named(src, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / pp.CONFIG).write_bytes(b"\x00\xff garbage {")
    _error(_facelib("preprocess", src, out), str(out / pp.CONFIG), "not a preprocessing config")
    (out / pp.CONFIG).write_text(json.dumps([1, 2]))
    _error(_facelib("preprocess", src, out), str(out / pp.CONFIG))


def test_options_that_need_a_cluster(src, tmp_path):
    _error(_facelib("preprocess", src, tmp_path / "o", "--part-size", "4"), "--cluster")
    _error(_facelib("preprocess", src, tmp_path / "o", "--cluster", "nowhere"), "unknown cluster 'nowhere'")
    _error(_facelib("preprocess", src, tmp_path / "o", "--cluster", "debug", "--limit", "3"), "--limit")
    assert not (tmp_path / "o").exists()


def test_every_run_says_the_folder_holds_unreadable_files(src, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in sorted(p.name for p in src.iterdir())[:2]:
        (photos / name).write_bytes((src / name).read_bytes())
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    first = _facelib("preprocess", photos, out, "--no-progress")
    assert first.returncode == 1 and "could not be read: 1" in first.stdout
    rerun = _facelib("preprocess", photos, out, "--no-progress")
    assert rerun.returncode == 1, rerun.stdout  # nothing new was rejected, but the folder holds it
    assert "files processed: 0" in rerun.stdout
    assert "the folder holds 1 source file(s) that could not be read" in rerun.stdout
    assert "--retry-rejects" in rerun.stdout
    (photos / "broken.jpg").write_bytes((src / sorted(p.name for p in src.iterdir())[2]).read_bytes())
    fixed = _facelib("preprocess", photos, out, "--no-progress", "--retry-rejects")
    assert fixed.returncode == 0, fixed.stdout
    files = pd.read_parquet(out / pp.FILES).set_index("file")
    assert files.loc["broken.jpg", "status"] == "ok"
    # a photo without a face is listed, but is no failure: the status stays 0
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(photos / "blank.png")
    blank = _facelib("preprocess", photos, out, "--no-progress")
    assert blank.returncode == 0 and "no face: 1" in blank.stdout
