"""facelib.data.cached: items read once, protected from their consumers, bounded by max_bytes."""

from __future__ import annotations

import numpy as np
import pytest

from facelib.data.cached import CachedDataset


class _Counting:
    def __init__(self, n: int, with_labels: bool = True) -> None:
        self.n, self.reads, self.with_labels = n, [], with_labels

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        self.reads.append(i)
        img = np.full((4, 4, 3), i, np.uint8)
        return (img, {"points": np.arange(3.0) + i, "identity": i}) if self.with_labels else img


def test_items_are_read_once_and_cannot_be_altered():
    base = _Counting(3)
    ds = CachedDataset(base)
    img, labels = ds[1]
    assert len(ds) == 3 and base.reads == [1]
    assert ds[1][0] is img and base.reads == [1] and ds[-2][0] is img
    with pytest.raises(ValueError):
        img[0, 0, 0] = 9  # read-only
    labels["points"][:] = -1  # a copy: the cached labels are untouched
    np.testing.assert_array_equal(ds[1][1]["points"], [1.0, 2.0, 3.0])


def test_max_bytes_bounds_the_cache_and_bare_images_work():
    base = _Counting(4, with_labels=False)
    ds = CachedDataset(base, max_bytes=2 * 48)
    for _ in range(2):
        assert [int(ds[i][0, 0, 0]) for i in range(4)] == [0, 1, 2, 3]
    assert base.reads == [0, 1, 2, 3, 2, 3]  # the first two kept, the others read again


def test_fill_on_two_processes_caches_the_items_a_serial_read_gives():
    from facelib.data.synth import SynthFaces

    parallel, serial = CachedDataset(SynthFaces(24, 2, 32, 5)), CachedDataset(SynthFaces(24, 2, 32, 5))
    parallel[3]  # one item already cached: fill reads only the others
    parallel.fill(2)
    assert sorted(parallel._cache) == list(range(24))
    for i in range(24):
        (a, la), (b, lb) = parallel[i], serial[i]
        assert np.array_equal(a, b) and not a.flags.writeable
        assert la.keys() == lb.keys() and all(np.array_equal(la[k], lb[k]) for k in lb)


def test_fill_respects_max_bytes():
    base = _Counting(10)
    ds = CachedDataset(base, max_bytes=3 * 48)
    ds.fill(2)
    assert len(ds._cache) == 3 and sorted(base.reads) == list(range(10))
