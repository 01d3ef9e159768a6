"""Unreadable items are counted and limited, never only warned about (pretraining: test_swav_train)."""

from __future__ import annotations

import json
import multiprocessing

import pytest
import torch

from facelib.data.unreadable import UnreadableItems, UnreadableItemsError, describe_item
from facelib.tasks import finetune as FT

torch.set_num_threads(1)


class _Named:
    def __len__(self) -> int:
        return 10

    def describe(self, i: int) -> str:
        return f"shard s.h5, item {i}"


def _append(path: str, i: int) -> None:
    UnreadableItems(path, None).record(_Named(), i, OSError(f"bad {i}"))


def test_records_are_shared_by_processes_counted_once_and_limited(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:  # DataLoader workers append to the same file
        pool.starmap(_append, [(str(path), i % 3) for i in range(9)])
    items = UnreadableItems(path, limit=3, what="image")
    assert items.count() == 3 and items.check() == 3, "the same item met again is counted once"
    items.limit = 2
    with pytest.raises(UnreadableItemsError) as err:
        items.check("by epoch 4")
    msg = str(err.value)
    assert msg.startswith("3 unreadable image(s) by epoch 4, over the limit of 2 (max_unreadable_items")
    assert "shard s.h5, item 0: OSError: bad 0" in msg and str(path) in msg
    items.reset()
    assert items.count() == 0 and not path.exists()


def test_describe_item_looks_through_subsets() -> None:
    from torch.utils.data import Subset
    assert describe_item(Subset(_Named(), [7, 8]), 1) == "shard s.h5, item 8"
    assert describe_item([1, 2], 0) == "list[0]"


def _reader_data(tmp_path, corrupt: str):
    from facelib.data import native
    native.write("w300", tmp_path / "train", 10, seed=0, size=64)
    native.write("w300", tmp_path / "test", 6, seed=5, size=64)
    bad = sorted((tmp_path / corrupt).rglob("*.png"))[2]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n then nothing")
    return FT.DataSpec(kind="reader", reader="w300", root=str(tmp_path / "train"), test_reader="w300",
                       test_root=str(tmp_path / "test")), bad


@pytest.mark.parametrize("where", ["train", "test"])
def test_finetune_stops_on_an_unreadable_image_naming_it(tmp_path, where) -> None:
    data, bad = _reader_data(tmp_path, where)
    with pytest.raises(UnreadableItemsError, match=rf"1 unreadable image\(s\) .*image {bad}: ImageDecodeError"):
        FT.finetune("landmarks", tmp_path / "run", data=data, overrides={"epochs": 1, "batch_size": 4},
                    progress=False)
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("where", ["train", "test"])
def test_finetune_under_the_limit_counts_them_in_the_log_and_metrics(tmp_path, where) -> None:
    data, bad = _reader_data(tmp_path, where)
    m = FT.finetune("landmarks", tmp_path / "run", data=data, progress=False,
                    overrides={"epochs": 1, "batch_size": 4, "max_unreadable_items": 1})
    assert m["unreadable_items"] == 1
    epochs = FT.read_log(tmp_path / "run", "epoch")
    assert [r["unreadable_items"] for r in epochs] == [1 if where == "train" else 0]
    if where == "train":
        assert epochs[0]["images"] == 10, "the unreadable image was replaced by a readable one"
    recs = [json.loads(ln) for ln in (tmp_path / "run" / "bad_items.jsonl").read_text().splitlines()]
    assert {r["item"] for r in recs} == {f"300w record {r['index']}, image {bad}" for r in recs}
    # the limit may change when a run resumes; a fresh run starts a fresh count
    again = FT.finetune("landmarks", tmp_path / "run", data=data, progress=False, resume=True,
                        overrides={"epochs": 1, "batch_size": 4, "max_unreadable_items": 5})
    assert again == m
