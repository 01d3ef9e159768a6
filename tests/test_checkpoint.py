"""Atomic checkpoints: round trips, no torn files, clear errors, RNG capture."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from facelib import checkpoint
from pickle_fixtures import hostile_checkpoint


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


def test_default_load_refuses_a_pickle_that_would_run_code(tmp_path) -> None:
    marker = tmp_path / "MARKER"
    path = hostile_checkpoint(tmp_path / "ck.pth", marker)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(path)
    msg = str(err.value)
    assert "ck.pth: refused" in msg and "io.open" in msg, "names the file and what it asks for"
    assert "trust" not in msg.lower() and "weights_only" not in msg, "never advises loading it anyway"
    assert not marker.exists()
    assert checkpoint.pickle_globals(path)[-1] == "io.open" and not marker.exists()
    checkpoint.load(path, trusted=True)  # the payload is real: what --trusted would run
    assert marker.exists()


def test_a_bare_pickle_is_refused_and_named_too(tmp_path) -> None:
    import pickle

    from pickle_fixtures import _CreatesFile
    marker = tmp_path / "MARKER"
    path = tmp_path / "bare.pth"
    path.write_bytes(pickle.dumps({"x": _CreatesFile(marker)}))
    with pytest.raises(checkpoint.CheckpointError, match=r"bare.pth: refused.*\(io.open\)"):
        checkpoint.load(path)
    assert not marker.exists()


def test_random_bytes_are_not_a_checkpoint(tmp_path) -> None:
    path = tmp_path / "noise.pth"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(checkpoint.CheckpointError, match="noise.pth: not a readable torch checkpoint") as err:
        checkpoint.load(path)
    assert "trust" not in str(err.value).lower() and "\n" not in str(err.value)


def test_tensors_plain_values_and_numpy_number_arrays_load_safely(tmp_path) -> None:
    tensors = checkpoint.save({"w": torch.ones(2), "n": 3, "s": "x", "t": (1, 2.5)}, tmp_path / "t.pth")
    assert torch.equal(checkpoint.load(tensors)["w"], torch.ones(2))
    # earlier facelib checkpoints held np.random.get_state(): NumPy arrays of numbers are data
    old = checkpoint.save({"numpy": np.random.get_state(), "a": np.arange(3.0)}, tmp_path / "old.pth")
    back = checkpoint.load(old)
    assert back["numpy"][0] == "MT19937" and np.array_equal(back["a"], np.arange(3.0))


def test_rng_state_is_plain_and_loads_with_weights_only(tmp_path) -> None:
    path = checkpoint.save({"rng": checkpoint.rng_state()}, tmp_path / "rng.pth")
    torch.load(path, weights_only=True)  # no allow-list needed
    old_format = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    first = (random.random(), np.random.rand())
    checkpoint.set_rng_state(old_format)
    assert (random.random(), np.random.rand()) == first


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


def test_job_status_reads_a_result_pickle_without_running_it(tmp_path) -> None:
    import pickle

    from facelib.launch.states import result_outcome
    from pickle_fixtures import _CreatesFile
    marker = tmp_path / "MARKER"
    path = tmp_path / "1_0_result.pkl"
    path.write_bytes(pickle.dumps(("success", {"metrics": _CreatesFile(marker), "x": [1, 2]})))
    assert result_outcome(path) == "success" and not marker.exists()
    path.write_bytes(pickle.dumps(("error", "Traceback ...")))
    assert result_outcome(path) == "error"
    path.write_bytes(b"\x80\x04garbage")
    assert result_outcome(path) is None
