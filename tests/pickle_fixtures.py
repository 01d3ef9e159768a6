"""Hostile checkpoints: files that would run code (create a marker file) if they were unpickled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class _CreatesFile:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears if the pickle runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def hostile_checkpoint(path: Path, marker: Path, content: Any = None) -> Path:
    """Write ``content`` (default: a small state dict) plus an object that creates ``marker`` when
    unpickled, as ``torch.save`` writes it, to ``path``."""
    obj = dict(content) if isinstance(content, dict) else {"state_dict": {"w": torch.ones(2)}}
    obj["payload"] = _CreatesFile(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    assert not marker.exists()
    return path
