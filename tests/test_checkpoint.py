"""Atomic checkpoints: round trips, no torn files, clear errors, RNG capture."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from facelib import checkpoint


def test_round_trip(tmp_path) -> None:
    obj = {"w": torch.arange(6.0).reshape(2, 3), "epoch": 3, "nested": {"x": [1, 2]}}
    path = checkpoint.save(obj, tmp_path / "sub" / "ck.pth")
    back = checkpoint.load(path)
    assert torch.equal(back["w"], obj["w"]) and back["epoch"] == 3 and back["nested"] == {"x": [1, 2]}


class _Explodes:
    def __reduce__(self):
        raise RuntimeError("boom while pickling")


def test_failed_save_keeps_previous_file_and_leaves_no_temp(tmp_path) -> None:
    path = tmp_path / "ck.pth"
    checkpoint.save({"epoch": 1}, path)
    with pytest.raises(RuntimeError, match="boom"):
        checkpoint.save({"epoch": 2, "bad": _Explodes()}, path)
    assert checkpoint.load(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pth"]


def test_missing_empty_and_corrupt_files_name_the_file(tmp_path) -> None:
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "nope.pth")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match="empty.pth: empty"):
        checkpoint.load(empty)
    good = checkpoint.save({"w": torch.ones(1000)}, tmp_path / "good.pth")
    torn = tmp_path / "torn.pth"
    torn.write_bytes(good.read_bytes()[:300])
    with pytest.raises(checkpoint.CheckpointError, match="torn.pth"):
        checkpoint.load(torn)


def test_untrusted_load_refuses_arbitrary_objects(tmp_path) -> None:
    path = checkpoint.save({"rng": np.random.get_state()}, tmp_path / "ck.pth")
    with pytest.raises(checkpoint.CheckpointError, match="trusted=True"):
        checkpoint.load(path, trusted=False)
    tensors = checkpoint.save({"w": torch.ones(2)}, tmp_path / "t.pth")
    assert torch.equal(checkpoint.load(tensors, trusted=False)["w"], torch.ones(2))


def test_rng_state_replays_every_generator(tmp_path) -> None:
    state = checkpoint.rng_state()
    path = checkpoint.save(state, tmp_path / "rng.pth")
    first = (random.random(), np.random.rand(), torch.rand(3))
    checkpoint.set_rng_state(checkpoint.load(path))
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2])


def test_atomic_write_text(tmp_path) -> None:
    p = checkpoint.atomic_write_text("a\nb\n", tmp_path / "x.txt")
    assert p.read_text() == "a\nb\n"
