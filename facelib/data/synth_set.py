"""A generated synthetic set written like the real ones: HDF5 shards + a parquet manifest.

The images go through :class:`facelib.storage.ShardWriter` (the authors' HDF5 layout, encoded
bytes in dataset ``images``) and the labels become manifest columns
(:func:`facelib.data.record.records_to_frame`: ``identity``, ``landmarks_2d``, ``au``, ...,
plus ``shard`` and ``index``), so pretraining and the task code read synthetic and real data
through the same :class:`facelib.storage.ShardDataset`.

Resumable: after each shard is renamed into place its manifest part is committed
(``parts/NNNNN.parquet``); a rerun with the same settings continues after the last committed
shard, and a finished set is returned as is. Shown in ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import pandas as pd
from tqdm.auto import tqdm

from facelib import storage
from facelib.data import synth
from facelib.data.record import from_synth, records_to_frame

__all__ = ["write_synth_set", "MANIFEST", "CONFIG"]

MANIFEST = "manifest.parquet"
CONFIG = "config.json"
_PREFIX = "synth"


def _encode(img: Any, encoding: str, quality: int) -> bytes:
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if encoding == "png":
        ok, buf = cv2.imencode(".png", bgr)
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("image encoding failed")
    return buf.tobytes()


def write_synth_set(out: str | Path, n: int, seed: int = 0, size: int = 128, num_identities: int = 100,
                    shard_size: int = 1000, encoding: str = "png", quality: int = 95,
                    progress: bool = True) -> pd.DataFrame:
    """Render synthetic faces ``0 .. n-1`` of set ``seed`` into shards + manifest under ``out``.

    Args:
        out: output folder (created).
        n, seed, size, num_identities: as :class:`facelib.data.synth.SynthFaces`.
        shard_size: images per HDF5 shard.
        encoding: ``"png"`` (lossless: decoded pixels equal :func:`facelib.data.synth.render`)
            or ``"jpeg"`` (``quality``).
        progress: show a progress bar.

    Returns:
        the manifest (also at ``out/manifest.parquet``): one row per face, label columns as
        :func:`facelib.data.record.records_to_frame`, plus ``shard`` and ``index``.

    Raises:
        ValueError: ``out`` holds a set made with other settings.
    """
    if encoding not in ("png", "jpeg"):
        raise ValueError(f"encoding must be 'png' or 'jpeg', got {encoding!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"n": n, "seed": seed, "size": size, "num_identities": num_identities,
              "shard_size": shard_size, "encoding": encoding, "quality": quality}
    cfg_path = out / CONFIG
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old != config:
            changed = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
            raise ValueError(f"{out} holds a synthetic set made with other settings {changed}; use another folder")
    else:
        tmp = storage.atomic_path(cfg_path)
        tmp.write_text(json.dumps(config, indent=1))
        tmp.replace(cfg_path)
    if (out / MANIFEST).exists():
        return storage.read_manifest(out / MANIFEST)
    parts_dir = out / "parts"
    parts_dir.mkdir(exist_ok=True)
    done = sorted(parts_dir.glob("*.parquet"))
    committed = {p.stem for p in done}
    # A shard without its committed part is an interrupted one: remove it before continuing.
    for shard in storage.list_shards(out, _PREFIX):
        if Path(shard).stem not in committed:
            (out / shard).unlink()
    start = sum(len(pd.read_parquet(p)) for p in done)
    pending: list[tuple[Any, int]] = []

    def commit(shard_name: str) -> None:
        frame = records_to_frame(r for r, _ in pending)
        frame["shard"] = shard_name
        frame["index"] = [i for _, i in pending]
        storage.write_manifest(frame, parts_dir / f"{Path(shard_name).stem}.parquet")
        pending.clear()

    with storage.ShardWriter(out, prefix=_PREFIX, shard_size=shard_size, on_close=commit) as writer:
        for i in tqdm(range(start, n), desc="synthetic faces", disable=not progress, initial=start, total=n):
            img, labels = synth.render(i, seed, size, num_identities)
            # The index in the shard is the count so far: record it before ``add``, which
            # writes (and commits) the shard as soon as it is full.
            pending.append((from_synth(i, labels, seed), len(pending)))
            writer.add(_encode(img, encoding, quality))
    manifest = pd.concat([pd.read_parquet(p) for p in sorted(parts_dir.glob("*.parquet"))], ignore_index=True)
    storage.write_manifest(manifest, out / MANIFEST)
    return manifest
