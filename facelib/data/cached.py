"""A deterministic dataset's items kept in memory after their first access.

Synthetic faces (:mod:`facelib.data.synth`) are rendered at every access; a training run reads
each face once per epoch and a page's runs read the same faces again, so rendering them once
saves a good part of the demo's time. Used by the SwAV demo (:mod:`facelib.swav.data`) and by
the fine-tuning pages (:mod:`facelib.tasks.finetune`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

__all__ = ["CachedDataset"]


def _read_items(base: Any, indices: list[int]) -> list[Any]:
    """``base[i]`` for each of ``indices`` (in a worker process of :meth:`CachedDataset.fill`)."""
    return [base[i] for i in indices]


def _copy_labels(labels: Any) -> Any:
    if isinstance(labels, dict):
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in labels.items()}
    return labels


class CachedDataset(Dataset):  # type: ignore[type-arg]
    """Items ``(image, labels)`` (or bare images) of ``base``, each read from it once.

    Cached images are made read-only, and each access returns copies of the label arrays, so
    no consumer can alter a cached item. Up to ``max_bytes`` of images are kept (None: no
    limit); later items are read from ``base`` every time. Negative indices count from the end.
    """

    def __init__(self, base: Dataset, max_bytes: int | None = None) -> None:  # type: ignore[type-arg]
        self.base = base
        self.max_bytes = max_bytes
        self._cache: dict[int, Any] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def _store(self, i: int, item: Any) -> None:
        img = item[0] if isinstance(item, (tuple, list)) else item
        if isinstance(img, np.ndarray) and (self.max_bytes is None or self._bytes + img.nbytes <= self.max_bytes):
            img.setflags(write=False)
            self._cache[i] = item
            self._bytes += img.nbytes

    def fill(self, processes: int = 1) -> None:
        """Read every item not cached yet, split over ``processes`` forked worker processes
        (the demo renders a page's faces on both cores before its runs start; 1: here, in order).

        The items are those ``base`` gives in this process: it must be deterministic per index
        (the synthetic faces are) and picklable. Reading stops caching at ``max_bytes`` as
        :meth:`__getitem__` does.
        """
        missing = [i for i in range(len(self)) if i not in self._cache]
        if self.max_bytes is not None or processes <= 1 or len(missing) < 2 * processes:
            for i in missing:
                self[i]
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = [c.tolist() for c in np.array_split(np.asarray(missing), 4 * processes) if len(c)]
        with ProcessPoolExecutor(max_workers=processes, mp_context=mp.get_context("fork")) as pool:
            for chunk, items in zip(chunks, pool.map(_read_items, [self.base] * len(chunks), chunks)):
                for i, item in zip(chunk, items):
                    self._store(i, item)

    def __getitem__(self, i: int) -> Any:
        i = int(i) + (len(self) if i < 0 else 0)
        item = self._cache.get(i)
        if item is None:
            item = self.base[i]
            self._store(i, item)
        if isinstance(item, (tuple, list)):
            return (item[0], *(_copy_labels(x) for x in item[1:]))
        return item

    def __repr__(self) -> str:
        return f"cached: {self.base!r}"
