"""Curated manifests, native-format demo roots, the synthetic set in shards, and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facelib import storage
from facelib.cli import main
from facelib.data import curated, native, readers, synth
from facelib.data.record import Problems
from facelib.data.synth_set import write_synth_set


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    out = tmp_path_factory.mktemp("native")
    counts = {"vggface2": 12, "w300lp": 6, "imdbface": 6, "affectnet": 6, "widerface": 8, "aflw2000": 3,
              "disfa": 4, "w300": 3, "bp4d": 4}
    return native.write_all(out, counts, seed=0, size=64)


def test_native_roots_read_back_with_the_synthetic_labels(roots):
    p = Problems(collect=True)
    aff = list(readers.read("affectnet", roots["affectnet"], problems=p))
    assert len(aff) == 6 and len(p) == 0
    seed_aff = 0 + 1000 * (list(native.WRITERS).index("affectnet") + 1)
    _, lab = synth.render(2, seed_aff, 64, 20)
    assert aff[2].expression == lab["expression"] and aff[2].valence == pytest.approx(lab["valence"], abs=1e-5)
    np.testing.assert_allclose(aff[2].landmarks_2d, lab["landmarks_2d"], atol=1e-3)
    aflw = list(readers.read("aflw2000", roots["aflw2000"], problems=p))
    seed_aflw = 1000 * (list(native.WRITERS).index("aflw2000") + 1)
    _, lab = synth.render(1, seed_aflw, 64, 20)
    np.testing.assert_allclose(aflw[1].landmarks_3d, lab["landmarks_3d"], atol=1e-4)
    np.testing.assert_allclose(aflw[1].pose, lab["pose"], atol=1e-4)      # radians and back
    disfa = list(readers.read("disfa", roots["disfa"], problems=p, frame_pattern="frames/{subject}/{frame:05d}.png"))
    assert len(disfa) == 4 and all(r.path is not None for r in disfa)
    vgg = list(readers.read("vggface2", roots["vggface2"], problems=p, splits=("train",)))
    assert len({r.identity for r in vgg}) == 12 and all(r.landmarks_5 is not None for r in vgg)
    assert len(list(readers.read("w300", roots["w300"], problems=p))) == 3
    bp4d = list(readers.read("bp4d", roots["bp4d"], problems=p, frame_pattern="images/{subject}/{task}/{frame:04d}.jpg"))
    assert len(bp4d) == 4 and bp4d[0].au_ids == (6, 10, 12, 14, 17)
    assert np.isnan(bp4d[0].au[[1, 3]]).all() and not np.isnan(bp4d[0].au[[0, 2, 4]]).any()
    assert len(p) == 0


def test_curated_sets_and_counts_table(roots, tmp_path):
    full = curated.build("full_vggface", roots)
    assert len(full) == 12 and set(full["dataset"]) == {"vggface2"}
    assert list(full.columns) == ["dataset", "root", "path", "box"]     # labels dropped
    small = curated.build("small_vggface", roots, size=5, seed=3)
    assert len(small) == 5 and set(small["path"]) <= set(full["path"])
    assert small.equals(curated.build("small_vggface", roots, size=5, seed=3))
    assert not small.equals(curated.build("small_vggface", roots, size=5, seed=4))
    lsf = curated.build("large_scale_face", roots, out=tmp_path / "lsf.parquet")
    counts = lsf["dataset"].value_counts().to_dict()
    assert counts == {"vggface2": 12, "w300lp": 6, "imdbface": 6, "affectnet": 6, "widerface": 8}
    back = storage.read_manifest(tmp_path / "lsf.parquet")
    assert list(back["path"]) == list(lsf["path"]) and list(back["dataset"]) == list(lsf["dataset"])
    np.testing.assert_allclose(np.stack(back["box"]), np.stack(lsf["box"].map(np.asarray)))
    t = curated.counts_table({"full_vggface": full, "small_vggface": small, "large_scale_face": lsf})
    row = t[t["set"].eq("Full VGG-Face") & t["component"].eq("(all)")].iloc[0]
    assert row["paper count"] == 3_400_000 and row["built"] == 12
    assert t[t["component"].eq("WIDER FACE")]["built"].iloc[0] == 8
    assert t[t["component"].eq("WIDER FACE")]["paper count"].iloc[0] == 393_703
    empty = curated.counts_table()
    assert empty["built"].isna().all() and len(empty) == 3 + 5
    with pytest.raises(ValueError, match="needs the root of"):
        curated.build("large_scale_face", {"vggface2": roots["vggface2"]})
    assert len(curated.build("small_vggface", roots)) == curated.small_size(12) == 4   # 12 * 1M / 3.4M
    assert curated.small_size(3_300_000) == 1_000_000
    with pytest.raises(ValueError, match="draws 100 images"):
        curated.build("small_vggface", roots, size=100)


def test_synth_set_shards_match_render_and_resume(tmp_path):
    out = tmp_path / "set"
    df = write_synth_set(out, n=7, seed=2, size=48, num_identities=3, shard_size=3, progress=False)
    assert len(df) == 7 and sorted(set(df["shard"])) == ["synth-00000.h5", "synth-00001.h5", "synth-00002.h5"]
    assert list(df["index"]) == [0, 1, 2, 0, 1, 2, 0]
    ds = storage.ShardDataset(out / "manifest.parquet", out)
    for i in (0, 4, 6):
        img, lab = synth.render(i, 2, 48, 3)
        np.testing.assert_array_equal(ds[i], img)                          # PNG is lossless
        assert df["identity"].iloc[i] == str(lab["identity"])
        np.testing.assert_allclose(np.asarray(df["landmarks_2d"].iloc[i]).reshape(68, 2), lab["landmarks_2d"], atol=1e-4)
    ds.close()
    # Resume: drop the manifest and the last part as if killed after shard 1.
    (out / "manifest.parquet").unlink()
    (out / "parts/synth-00002.parquet").unlink()
    df2 = write_synth_set(out, n=7, seed=2, size=48, num_identities=3, shard_size=3, progress=False)
    pd.testing.assert_frame_equal(df, df2)
    with pytest.raises(ValueError, match="other settings"):
        write_synth_set(out, n=8, seed=2, size=48, num_identities=3, shard_size=3, progress=False)


def test_cli(roots, tmp_path, capsys):
    args = ["data", "curate", "large_scale_face", "--out", str(tmp_path / "m.parquet")]
    for k in curated.SETS["large_scale_face"]:
        args += ["--root", f"{k}={roots[k]}"]
    assert main(args) == 0
    assert "Large-Scale-Face: 38 faces" in capsys.readouterr().out
    assert main(["data", "subsets", str(tmp_path / "m.parquet"), str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "100%" in out and "10%" in out
    assert (tmp_path / "s.json").exists()
    assert main(["data", "synth", str(tmp_path / "syn"), "--n", "3", "--size", "48", "--shard-size", "2"]) == 0
    assert len(storage.read_manifest(tmp_path / "syn/manifest.parquet")) == 3


def test_record_dataset_gives_synth_style_items(roots):
    from facelib.data.records_dataset import RecordDataset

    recs = list(readers.read("vggface2", roots["vggface2"], splits=("train",)))
    ds = RecordDataset(recs, roots["vggface2"])
    assert len(ds) == 12 and ds.num_identities == 12
    img, lab = ds[3]
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert set(lab) == {"identity", "identity_name", "landmarks_5", "box"}      # only what VGG-Face2 has
    assert lab["identity"] == sorted(r.identity for r in recs).index(recs[3].identity)
    aff = RecordDataset(list(readers.read("affectnet", roots["affectnet"])), roots["affectnet"],
                        transform=lambda im, lb: (im.shape, lb["expression"], lb["landmarks_2d"].shape))
    shape, expr, lm = aff[0]
    assert shape == (64, 64, 3) and expr in range(8) and lm == (68, 2)
