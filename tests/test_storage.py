"""HDF5 shards in the authors' layout, parquet manifests, atomic writes, the torch Dataset."""

from __future__ import annotations

import io
import pickle

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facelib import storage


def _jpeg(seed: int, size: tuple[int, int] = (24, 16)) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    # smooth content so that JPEG round-trips closely
    base = rng.integers(0, 255, size=(3,), dtype=np.uint8)
    img = np.broadcast_to(base, (size[1], size[0], 3)).copy()
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue(), img


def test_shard_writer_roundtrip_and_authors_reader(tmp_path):
    items = [_jpeg(i) for i in range(7)]
    locs = []
    with storage.ShardWriter(tmp_path, prefix="crops", shard_size=3) as w:
        for data, _ in items:
            locs.append(w.add(data))
    assert w.written == ["crops-00000.h5", "crops-00001.h5", "crops-00002.h5"]
    assert locs[0] == ("crops-00000.h5", 0) and locs[4] == ("crops-00001.h5", 1)
    assert locs[6] == ("crops-00002.h5", 0)
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == w.written
    for (data, img), (shard, idx) in zip(items, locs):
        assert storage.read_image_bytes(tmp_path / shard, idx) == data
        # the authors' reader: h5py dataset "images" of uint8 bytes, decoded with PIL -> RGB
        with h5py.File(tmp_path / shard, "r") as f:
            assert f["images"].dtype == h5py.vlen_dtype(np.dtype("uint8"))
            raw = f["images"][idx]
        arr = np.asarray(Image.open(io.BytesIO(raw.tobytes())).convert("RGB"))
        np.testing.assert_array_equal(arr, img)


def test_shard_writer_continues_numbering_and_abandons_on_error(tmp_path):
    with storage.ShardWriter(tmp_path, prefix="s", shard_size=2) as w:
        w.add(b"a")
        w.add(b"b")
        w.add(b"c")
    assert storage.list_shards(tmp_path, "s") == ["s-00000.h5", "s-00001.h5"]
    w2 = storage.ShardWriter(tmp_path, prefix="s", shard_size=2)
    assert w2.add(b"d") == ("s-00002.h5", 0)
    with pytest.raises(RuntimeError):
        with w2:
            raise RuntimeError("boom")
    # the open shard of a failed writer is dropped, finished ones are untouched
    assert storage.list_shards(tmp_path, "s") == ["s-00000.h5", "s-00001.h5"]
    assert storage.read_image_bytes(tmp_path / "s-00001.h5", 0) == b"c"


def test_shard_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="shard_size"):
        storage.ShardWriter(tmp_path, shard_size=0)
    with pytest.raises(ValueError, match="prefix"):
        storage.ShardWriter(tmp_path, prefix="a/b")
    w = storage.ShardWriter(tmp_path)
    with pytest.raises(ValueError, match="non-empty"):
        w.add(b"")
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.add(b"x")


def test_manifest_atomic_roundtrip(tmp_path):
    df = pd.DataFrame({"shard": ["a.h5", "b.h5"], "index": [0, 3], "score": [0.9, 0.8]})
    path = tmp_path / "sub" / "manifest.parquet"
    storage.write_manifest(df, path)
    pd.testing.assert_frame_equal(storage.read_manifest(path), df)
    assert [p.name for p in path.parent.iterdir()] == ["manifest.parquet"]

    # a failure while writing leaves the previous manifest intact and no temporary file
    class Bad(pd.DataFrame):
        def to_parquet(self, *a, **k):  # type: ignore[override]
            open(a[0], "wb").write(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError):
        storage.write_manifest(Bad({"x": [1]}), path)
    pd.testing.assert_frame_equal(storage.read_manifest(path), df)
    assert [p.name for p in path.parent.iterdir()] == ["manifest.parquet"]

    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        storage.read_manifest(tmp_path / "nope.parquet")


def test_read_manifest_folder_concatenates_parts(tmp_path):
    storage.write_manifest(pd.DataFrame({"a": [1, 2]}), tmp_path / "p-0.parquet")
    storage.write_manifest(pd.DataFrame({"a": [3]}), tmp_path / "p-1.parquet")
    assert storage.read_manifest(tmp_path)["a"].tolist() == [1, 2, 3]


def test_shard_dataset_decodes_lazily_and_survives_pickling(tmp_path):
    items = [_jpeg(i, size=(8 + i, 5)) for i in range(5)]
    rows = []
    with storage.ShardWriter(tmp_path / "shards", prefix="crops", shard_size=2) as w:
        for data, _ in items:
            shard, idx = w.add(data)
            rows.append({"shard": f"shards/{shard}", "index": idx})
    manifest = pd.DataFrame(rows)
    storage.write_manifest(manifest, tmp_path / "m.parquet")

    ds = storage.ShardDataset(tmp_path / "m.parquet", root=tmp_path)
    assert len(ds) == 5
    for i, (_, img) in enumerate(items):
        out = ds[i]
        assert out.dtype == np.uint8 and out.shape == img.shape
        np.testing.assert_array_equal(out, img)
    assert len(ds._files) == 3  # each shard opened once in this process
    ds2 = pickle.loads(pickle.dumps(ds))
    assert ds2._files == {}
    np.testing.assert_array_equal(ds2[-1], items[-1][1])

    with_t = storage.ShardDataset(manifest, root=tmp_path, transform=lambda a: a.shape)
    assert with_t[1] == (5, 9, 3)
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError, match="index"):
        storage.ShardDataset(pd.DataFrame({"shard": ["x"]}), root=tmp_path)


def test_shard_dataset_in_dataloader_workers(tmp_path):
    torch = pytest.importorskip("torch")
    items = [_jpeg(i) for i in range(6)]
    rows = []
    with storage.ShardWriter(tmp_path, prefix="c", shard_size=4) as w:
        for data, _ in items:
            shard, idx = w.add(data)
            rows.append({"shard": shard, "index": idx})
    ds = storage.ShardDataset(pd.DataFrame(rows), root=tmp_path,
                              transform=lambda a: torch.from_numpy(a.copy()))
    assert isinstance(ds, torch.utils.data.Dataset)
    ds[0]  # open a handle in the parent: workers must not reuse it
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    batches = torch.cat(list(loader))
    expected = torch.from_numpy(np.stack([img for _, img in items]))
    assert torch.equal(batches, expected)
