"""Unreadable items of a training set: recorded, counted, and a limit past which the run stops.

A damaged shard or an image file that does not decode must not pass silently: every unreadable
item a training run meets is appended to a JSON-lines file of the run folder
(``bad_items.jsonl``: dataset index, the item named by its shard and position or its file, the
error), by whichever process met it (DataLoader workers included). The training loop counts
the distinct items (:meth:`UnreadableItems.count`) after every batch; past the recipe's limit
(``recipes.Pretrain.max_unreadable_items``, ``recipes.Finetune.max_unreadable_items``; default 0:
any unreadable item) :meth:`UnreadableItems.check` raises :class:`UnreadableItemsError`, whose
message names the items. Below it the run goes on, and the count is in its log and its result.

Used by :mod:`facelib.swav.data` / :mod:`facelib.swav.train` (pretraining) and
:mod:`facelib.tasks.finetune` (the fine-tuning readers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from facelib.errors import InputError

__all__ = ["UnreadableItems", "UnreadableItemsError", "describe_item", "READ_ERRORS"]

#: What reading one item may raise when the item (not the program) is bad.
READ_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError, RuntimeError, EOFError)


class UnreadableItemsError(InputError, RuntimeError):
    """More unreadable items than the recipe allows; the message names them and the record file."""


def describe_item(dataset: Any, index: int) -> str:
    """Item ``index`` of ``dataset`` in words: its shard and position, or its file, where the
    dataset says (a ``describe(index)`` method; ``torch.utils.data.Subset`` is looked through)."""
    index = int(index)
    while hasattr(dataset, "indices") and hasattr(dataset, "dataset"):  # torch Subset
        index, dataset = int(dataset.indices[index]), dataset.dataset
    describe = getattr(dataset, "describe", None)
    if callable(describe):
        return str(describe(index))
    base = getattr(dataset, "base", None)  # CachedDataset and other thin wrappers
    if base is not None and callable(getattr(base, "describe", None)):
        return str(base.describe(index))
    return f"{type(dataset).__name__}[{index}]"


class UnreadableItems:
    """The unreadable items of one run, shared by its processes through a JSON-lines file.

    Args:
        path: the record file (None: kept in memory, for one process only).
        limit: how many distinct unreadable items are tolerated (None: no limit).
        what: what the items are, in messages ("pretraining image").
        setting: the recipe field that sets ``limit``, named in the error.
    """

    def __init__(self, path: str | os.PathLike[str] | None, limit: int | None = 0,
                 what: str = "item", setting: str = "max_unreadable_items") -> None:
        if limit is not None and limit < 0:
            raise ValueError(f"{setting} must be >= 0, got {limit}")
        self.path = Path(path) if path is not None else None
        self.limit = limit
        self.what = what
        self.setting = setting
        self._memory: list[dict[str, Any]] = []
        self._seen_size = -1
        self._records: list[dict[str, Any]] = []

    def __getstate__(self) -> dict[str, Any]:  # sent to DataLoader workers: no cached reads
        state = self.__dict__.copy()
        state["_seen_size"], state["_records"] = -1, []
        return state

    def record(self, dataset: Any, index: int, error: BaseException) -> dict[str, Any]:
        """Append item ``index`` of ``dataset`` and why it could not be read; returns the record."""
        rec = {"index": int(index), "item": describe_item(dataset, index),
               "error": f"{type(error).__name__}: {error}"}
        if self.path is None:
            self._memory.append(rec)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:  # one write per line: appends interleave whole
                f.write(json.dumps(rec) + "\n")
        return rec

    def records(self) -> list[dict[str, Any]]:
        """Every recorded item, the first record of each distinct item, in the order met."""
        if self.path is None:
            raw = self._memory
        else:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size == self._seen_size:
                return self._records
            raw = []
            if size:
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        raw.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill
            self._seen_size = size
        seen: dict[tuple[Any, Any], dict[str, Any]] = {}
        for rec in raw:
            seen.setdefault((rec.get("index"), rec.get("item")), rec)
        self._records = list(seen.values())
        return self._records

    def count(self) -> int:
        """Distinct unreadable items recorded so far (by every process of the run)."""
        return len(self.records())

    def over_limit(self) -> bool:
        return self.limit is not None and self.count() > self.limit

    def check(self, when: str = "") -> int:
        """The count; raises :class:`UnreadableItemsError` when it is over the limit."""
        n = self.count()
        if self.limit is not None and n > self.limit:
            raise UnreadableItemsError(self.message(when))
        return n

    def message(self, when: str = "") -> str:
        """Why the run stops: the count, the limit, the first items and the record file."""
        recs = self.records()
        shown = "; ".join(f"{r.get('item')}: {r.get('error')}" for r in recs[:3])
        more = f"; and {len(recs) - 3} more" if len(recs) > 3 else ""
        where = f", all listed in {self.path}" if self.path is not None else ""
        return (f"{len(recs)} unreadable {self.what}(s){' ' + when if when else ''}, over the limit of "
                f"{self.limit} ({self.setting}; raise it with --set {self.setting}=N to skip them): "
                f"{shown}{more}{where}")

    def reset(self) -> None:
        """Forget every record (a fresh run in a folder that held another)."""
        self._memory = []
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._seen_size, self._records = -1, []
