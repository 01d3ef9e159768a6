"""The output folder of the preprocessing: committed parts, verified shards, repair, consolidation.

:func:`facelib.faces.preprocess.preprocess` writes into one folder:

* ``crops-NNNNN.h5`` (and ``aligned-NNNNN.h5``): the HDF5 shards, each written once under a
  temporary name and renamed into place (:class:`facelib.storage.ShardWriter`);
* ``parts/NNNNNN.files.parquet``, ``parts/NNNNNN.shards.parquet``, ``parts/NNNNNN.faces.parquet``:
  one *commit*, written right after a shard is renamed into place: the files finished since the
  last commit, the size and SHA-1 of every shard closed since then, and their faces. The faces
  part is written last: a commit without it never happened;
* ``manifest.parquet`` (faces), ``files.parquet`` (source files), ``rejects.parquet``,
  ``shards.parquet`` (one row per shard: ``shard, bytes, sha1, items``): the consolidation of
  the commits, rewritten at the end of every run;
* ``config.json``: the options the folder was made with.

**Shards are verified, not trusted.** Before a rerun skips the files that earlier runs
committed, :func:`load` checks every shard their faces point to against its record (its size,
then its SHA-1): a shard that is missing, truncated or altered is deleted and the source files
of its faces are processed again; so are the files of a commit whose part files cannot be read
(the commit is dropped). What was repaired is returned (:class:`Repairs`) and printed in the
run's summary. Shown in ``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from facelib import storage
from facelib.faces.detect import LANDMARK_NAMES

__all__ = [
    "MANIFEST",
    "FILES",
    "REJECTS",
    "SHARDS",
    "CONFIG",
    "PARTS",
    "Repairs",
    "State",
    "load",
    "consolidate",
    "remove_orphans",
    "check_config",
    "Lock",
    "Committer",
]

MANIFEST, FILES, REJECTS, SHARDS, CONFIG, PARTS = (
    "manifest.parquet", "files.parquet", "rejects.parquet", "shards.parquet", "config.json", "parts"
)
CROPS_PREFIX, ALIGNED_PREFIX = "crops", "aligned"
LMK_COLUMNS = [f"{n}_{c}" for n in LANDMARK_NAMES for c in "xy"]
FILE_COLUMNS = ["file", "width", "height", "detected", "faces", "status", "reason", "detail", "error",
                "seconds"]
FACE_COLUMNS = (["file", "face", "x1", "y1", "x2", "y2", "score"] + LMK_COLUMNS
                + ["face_w", "face_h", "image_w", "image_h", "crop_scale", "crop_tx", "crop_ty",
                   "shard", "index", "aligned_shard", "aligned_index"])
SHARD_COLUMNS = ["shard", "bytes", "sha1", "items"]
_KINDS = ("files", "shards", "faces")
_PART_RE = re.compile(r"^(\d{6})\.(files|shards|faces)\.parquet$")
_SHARD_RE = re.compile(rf"^({CROPS_PREFIX}|{ALIGNED_PREFIX})-(\d+)\.h5$")


# --------------------------------------------------------------------------------------------
# Reading the commits back
# --------------------------------------------------------------------------------------------
def _part(out: Path, seq: int, kind: str) -> Path:
    return out / PARTS / f"{seq:06d}.{kind}.parquet"


def _committed(out: Path, clean: bool = True) -> list[int]:
    """Sequence numbers of complete commits (files and faces parts present); removes the rest
    (unless ``clean`` is false)."""
    parts = out / PARTS
    if not parts.is_dir():
        return []
    seen: dict[int, set[str]] = {}
    for p in parts.iterdir():
        m = _PART_RE.match(p.name)
        if m:
            seen.setdefault(int(m.group(1)), set()).add(m.group(2))
        elif p.name.endswith(".tmp") and clean:
            p.unlink()  # a write interrupted by a kill
    done = []
    for seq, kinds in sorted(seen.items()):
        if {"files", "faces"} <= kinds:  # folders written before shard records lack "shards"
            done.append(seq)
        elif clean:  # the faces part is written last: without it the commit never happened
            for k in kinds:
                _part(out, seq, k).unlink()
    return done


@dataclass
class Repairs:
    """What :func:`load` found damaged and dropped (the files concerned are processed again).

    Attributes:
        shards: ``{shard: problem}`` for missing, truncated, altered or unreadable shards.
        shard_files: ``{shard: number of source files whose faces it held}``.
        parts: ``{part file: problem}`` for unreadable commit parts (the commit was dropped).
        part_files: source files of dropped commits, where their files part could be read.
        verified: shards checked; ``verified_bytes``, ``seconds``: their size, the time taken.
    """

    shards: dict[str, str] = field(default_factory=dict)
    shard_files: dict[str, int] = field(default_factory=dict)
    parts: dict[str, str] = field(default_factory=dict)
    part_files: int = 0
    verified: int = 0
    verified_bytes: int = 0
    seconds: float = 0.0

    @property
    def files(self) -> int:
        """Source files whose committed results were dropped (damage found)."""
        return sum(self.shard_files.values()) + self.part_files

    def __bool__(self) -> bool:
        return bool(self.shards or self.parts)

    def lines(self) -> list[str]:
        out = [f"  {s}: {why}; its {self.shard_files.get(s, 0)} source file(s) are processed again"
               for s, why in sorted(self.shards.items())]
        out += [f"  {p}: {why}; the commit was dropped and its files are processed again"
                for p, why in sorted(self.parts.items())]
        return out


@dataclass
class State:
    """The committed, verified content of an output folder.

    Attributes:
        seqs: numbers of the readable commits.
        files, faces, shards: current rows (a file committed twice: its last commit), without
            the files whose faces sit in a damaged shard.
        repairs: what was found damaged (see :class:`Repairs`).
        next_shard: number of the next shard to write (above every shard ever recorded).
    """

    seqs: list[int]
    files: pd.DataFrame
    faces: pd.DataFrame
    shards: pd.DataFrame
    repairs: Repairs
    next_shard: int


def _read(out: Path, seqs: Sequence[int], repairs: Repairs, clean: bool = True
          ) -> tuple[list[int], list[pd.DataFrame], list[pd.DataFrame], list[pd.DataFrame]]:
    """Read every commit; drop (with ``clean``: delete) the commits that cannot be read, noting them."""
    ok: list[int] = []
    files: list[pd.DataFrame] = []
    faces: list[pd.DataFrame] = []
    shards: list[pd.DataFrame] = []
    for seq in seqs:
        frames: dict[str, pd.DataFrame] = {}
        for kind in _KINDS:
            path = _part(out, seq, kind)
            if kind == "shards" and not path.exists():
                frames[kind] = pd.DataFrame(columns=SHARD_COLUMNS)
                continue
            try:
                frames[kind] = pd.read_parquet(path)
            except Exception as e:  # truncated, overwritten, unreadable: anything pyarrow says
                repairs.parts[f"{PARTS}/{path.name}"] = f"unreadable ({type(e).__name__}: {e})"
        if len(frames) < len(_KINDS):
            if "files" in frames:
                repairs.part_files += len(frames["files"])
            for kind in _KINDS:
                if clean:
                    _part(out, seq, kind).unlink(missing_ok=True)
            continue
        ok.append(seq)
        for lst, kind in ((files, "files"), (faces, "faces"), (shards, "shards")):
            lst.append(frames[kind].assign(_seq=seq))
    return ok, files, faces, shards


def _current(files: list[pd.DataFrame], faces: list[pd.DataFrame], shards: list[pd.DataFrame]
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The current rows: a file committed more than once keeps its last commit's rows."""
    fdf = pd.concat(files, ignore_index=True) if files else pd.DataFrame(columns=FILE_COLUMNS + ["_seq"])
    xdf = pd.concat(faces, ignore_index=True) if faces else pd.DataFrame(columns=FACE_COLUMNS + ["_seq"])
    sdf = pd.concat(shards, ignore_index=True) if shards else pd.DataFrame(columns=SHARD_COLUMNS + ["_seq"])
    fdf = fdf.drop_duplicates("file", keep="last").reset_index(drop=True)
    last = dict(zip(fdf["file"], fdf["_seq"]))
    keep = np.array([last.get(f) == s for f, s in zip(xdf["file"], xdf["_seq"])], dtype=bool)
    xdf = xdf.loc[keep].reset_index(drop=True)
    sdf = sdf.drop_duplicates("shard", keep="last").reset_index(drop=True)
    return fdf, xdf, sdf


def _used_shards(faces: pd.DataFrame) -> set[str]:
    used: set[str] = set()
    for col in ("shard", "aligned_shard"):
        if col in faces:
            used |= set(faces[col].dropna().astype(str))
    return used


def _check_unrecorded(path: Path, max_index: int) -> str | None:
    """A shard without a record (a folder from before records): it opens and holds its items."""
    import h5py

    if not path.exists():
        return "missing"
    try:
        with h5py.File(path, "r") as f:
            n = len(f["images"])
    except Exception as e:
        return f"unreadable ({type(e).__name__}: {e})"
    return None if n > max_index else f"holds {n} items, the manifest points at item {max_index}"


def _verify(out: Path, faces: pd.DataFrame, shards: pd.DataFrame, checksums: bool,
            repairs: Repairs) -> dict[str, str]:
    """``{shard: problem}`` for every shard the faces point to that does not match its record."""
    t0 = time.perf_counter()
    records = shards.set_index("shard") if len(shards) else None
    bad: dict[str, str] = {}
    for name in sorted(_used_shards(faces)):
        path = out / name
        if records is not None and name in records.index:
            rec = records.loc[name]
            problem = storage.check_file(path, int(rec["bytes"]), str(rec["sha1"]) if checksums else None)
        else:
            idx = pd.concat([faces.loc[faces["shard"] == name, "index"],
                             faces.loc[faces["aligned_shard"] == name, "aligned_index"]]).max()
            problem = _check_unrecorded(path, int(idx))
        repairs.verified += 1
        if problem is None:
            repairs.verified_bytes += path.stat().st_size
        else:
            bad[name] = problem
    repairs.seconds += time.perf_counter() - t0
    return bad


def load(out: Path, checksums: bool = True, clean: bool = True) -> State:
    """The committed content of ``out``, verified; damaged commits and shards are dropped.

    Args:
        out: the output folder.
        checksums: compare each used shard's SHA-1 with its record (reads every shard);
            otherwise only its size (a stat).
        clean: delete incomplete and unreadable commits (false: change nothing, a dry run).

    Returns:
        A :class:`State`; ``state.repairs`` says what was dropped (the damaged shards are
        unreferenced from then on: :func:`remove_orphans` deletes them).
    """
    repairs = Repairs()
    seqs, files, faces, shards = _read(out, _committed(out, clean), repairs, clean)
    numbers = [int(m.group(2)) for df in faces + shards for col in ("shard", "aligned_shard")
               if col in df for m in map(_SHARD_RE.match, df[col].dropna().astype(str)) if m]
    fdf, xdf, sdf = _current(files, faces, shards)
    bad = _verify(out, xdf, sdf, checksums, repairs)
    if bad:
        hit = xdf["shard"].isin(bad) | xdf["aligned_shard"].isin(bad)
        for name in bad:
            in_shard = (xdf["shard"] == name) | (xdf["aligned_shard"] == name)
            repairs.shard_files[name] = int(xdf.loc[in_shard, "file"].nunique())
        dropped = set(xdf.loc[hit, "file"])
        fdf = fdf[~fdf["file"].isin(dropped)].reset_index(drop=True)
        xdf = xdf[~xdf["file"].isin(dropped)].reset_index(drop=True)
        repairs.shards.update(bad)
    sdf = sdf[sdf["shard"].isin(_used_shards(xdf))].reset_index(drop=True)
    return State(seqs, fdf.drop(columns="_seq"), xdf.drop(columns="_seq"), sdf.drop(columns="_seq"),
                 repairs, next_shard=max(numbers, default=-1) + 1)


def remove_orphans(out: Path, faces: pd.DataFrame) -> list[str]:
    """Delete shards no current face points to (left by a killed run, or damaged) and temp files."""
    used = _used_shards(faces)
    removed = []
    for p in out.iterdir():
        if (_SHARD_RE.match(p.name) and p.name not in used) or (p.name.startswith(".") and p.name.endswith(".tmp")):
            p.unlink()
            removed.append(p.name)
    return removed


def consolidate(out: Path) -> State:
    """Write ``manifest.parquet``, ``files.parquet``, ``rejects.parquet`` and ``shards.parquet``
    from the commits (shard sizes checked, not their checksums: :func:`load` did that at the
    start of the run)."""
    state = load(out, checksums=False)
    state.faces["aligned_index"] = state.faces["aligned_index"].astype("Int64")
    storage.write_manifest(state.faces, out / MANIFEST)
    storage.write_manifest(state.files, out / FILES)
    files = state.files
    rejects = files.loc[files["status"] == "rejected", ["file", "reason", "detail", "error"]]
    storage.write_manifest(rejects.reset_index(drop=True), out / REJECTS)
    storage.write_manifest(state.shards, out / SHARDS)
    return state


# --------------------------------------------------------------------------------------------
# Options and the lock
# --------------------------------------------------------------------------------------------
def check_config(out: Path, config: dict[str, Any]) -> None:
    """Refuse a folder made with other options; record the options in a new folder.

    Raises:
        ValueError: ``config.json`` differs (the message lists the differences), or is not a
            preprocessing config at all (the message names the file).
    """
    path = out / CONFIG
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not a preprocessing config (not valid JSON: {e}); "
                             "use a new output folder, or move the file away") from None
        if not isinstance(old, dict) or "recipe" not in old:
            raise ValueError(f"{path} is not a preprocessing config (no 'recipe' entry); "
                             "use a new output folder, or move the file away")
        diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
        if diff:
            raise ValueError(
                f"{out} was made with different options; use a new output folder or the same "
                f"options. Differences (folder, now): {diff}"
            )
    else:
        tmp = storage.atomic_path(path)
        tmp.write_text(json.dumps(config, indent=2))
        os.replace(tmp, path)


class Lock:
    """One run per output folder: ``.lock`` holds the owner's pid; a dead owner's lock is taken."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".lock"

    def __enter__(self) -> Lock:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                return self
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                    os.kill(pid, 0)
                except (ValueError, ProcessLookupError, FileNotFoundError):
                    self.path.unlink(missing_ok=True)  # stale: its owner is gone
                    continue
                except PermissionError:
                    pass
                raise RuntimeError(f"{self.path.parent} is being written by process {pid}")
        raise RuntimeError(f"could not lock {self.path.parent}")

    def __exit__(self, *exc: Any) -> None:
        self.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Writing: shards and commits
# --------------------------------------------------------------------------------------------
def _file_row(r: Any) -> dict[str, Any]:
    return {"file": r.file, "width": r.width, "height": r.height, "detected": r.detected,
            "faces": len(r.faces), "status": "rejected" if r.rejected else "ok",
            "reason": r.reason, "detail": r.detail, "error": r.error, "seconds": r.seconds}


class Committer:
    """Writes faces into shards and commits finished files in parts (see the module doc).

    Args:
        out: the output folder.
        shard_size: crops per shard.
        align: also write the aligned faces (``aligned-NNNNN.h5``, in step with the crops).
        first_seq: number of the first commit.
        first_shard: number of the first shard (:attr:`State.next_shard`).
    """

    def __init__(self, out: Path, shard_size: int, align: bool, first_seq: int, first_shard: int = 0) -> None:
        self.out = out
        self.crops = storage.ShardWriter(out, CROPS_PREFIX, shard_size, on_close=self._closed,
                                         first_number=first_shard)
        self.aligned = (storage.ShardWriter(out, ALIGNED_PREFIX, shard_size, on_close=self._closed,
                                            first_number=first_shard) if align else None)
        self.seq = first_seq
        self.files: list[dict[str, Any]] = []  # finished, not yet committed
        self.faces: list[dict[str, Any]] = []
        self.shards: list[dict[str, Any]] = []  # closed since the last commit
        self.last_commit = time.monotonic()

    def _closed(self, name: str) -> None:
        """A shard was renamed into place: record its size, checksum and item count."""
        import h5py

        path = self.out / name
        with h5py.File(path, "r") as f:
            items = len(f["images"])
        self.shards.append({"shard": name, "bytes": path.stat().st_size,
                            "sha1": storage.file_digest(path), "items": items})

    def add(self, r: Any) -> None:
        """Store the faces of one :class:`~facelib.faces.preprocess.FileResult` and commit when
        a shard has just been closed."""
        rows = []
        for i, f in enumerate(r.faces):
            shard, index = self.crops.add(f.crop)
            a_shard, a_index = self.aligned.add(f.aligned) if self.aligned else (None, None)
            x1, y1, x2, y2 = f.box
            rows.append({
                "file": r.file, "face": i, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                "score": f.score, **dict(zip(LMK_COLUMNS, f.landmarks.ravel().tolist())),
                "face_w": x2 - x1, "face_h": y2 - y1, "image_w": r.width, "image_h": r.height,
                "crop_scale": f.crop_matrix[0, 0], "crop_tx": f.crop_matrix[0, 2],
                "crop_ty": f.crop_matrix[1, 2], "shard": shard, "index": index,
                "aligned_shard": a_shard, "aligned_index": a_index,
            })
            if self.crops.pending == 0 and i < len(r.faces) - 1:
                # a shard was just finished in the middle of this file: everything before it is
                # on disk, this file is not complete yet
                self.commit()
        self.files.append(_file_row(r))
        self.faces.extend(rows)
        if self.crops.pending == 0 and (
            len(r.faces) > 0 or len(self.files) >= 1000 or time.monotonic() - self.last_commit > 60
        ):
            self.commit()

    def commit(self) -> None:
        if not self.files:
            return
        files = pd.DataFrame(self.files, columns=FILE_COLUMNS)
        faces = pd.DataFrame(self.faces, columns=FACE_COLUMNS)
        faces["aligned_index"] = faces["aligned_index"].astype("Int64")
        shards = pd.DataFrame(self.shards, columns=SHARD_COLUMNS)
        storage.write_manifest(files, _part(self.out, self.seq, "files"))
        storage.write_manifest(shards, _part(self.out, self.seq, "shards"))
        storage.write_manifest(faces, _part(self.out, self.seq, "faces"))  # the commit
        self.seq += 1
        self.files, self.faces, self.shards = [], [], []
        self.last_commit = time.monotonic()

    def close(self) -> None:
        self.crops.close()
        if self.aligned:
            self.aligned.close()
        self.commit()

    def abandon(self) -> None:
        self.crops.abandon()
        if self.aligned:
            self.aligned.abandon()
