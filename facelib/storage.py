"""HDF5 image shards and parquet manifests, written atomically.

The authors' pretraining code reads an HDF5 file with one dataset ``images`` holding encoded
image bytes (variable-length ``uint8``), decoded with PIL and converted to RGB
(``book/paper_and_code.md``). :class:`ShardWriter` writes face crops in exactly that layout, split
into shards of ``shard_size`` images; a parquet manifest maps each row (a face) to
``(shard, index)``. Every file is first written under a temporary name in the same folder and
then renamed, so a crash never leaves a half-written shard or manifest under its final name.

Used by :mod:`facelib.faces.preprocess` (supplement 1.1) and shown in
``notebooks/01_data_curation.py``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import h5py
import numpy as np
import pandas as pd

__all__ = [
    "SHARD_SUFFIX",
    "ShardWriter",
    "ShardDataset",
    "atomic_path",
    "read_image_bytes",
    "read_manifest",
    "write_manifest",
    "list_shards",
    "file_digest",
    "check_file",
]

SHARD_SUFFIX = ".h5"
_TMP_SUFFIX = ".tmp"
_VLEN_UINT8 = h5py.vlen_dtype(np.dtype("uint8"))


def atomic_path(path: Path) -> Path:
    """The temporary name under which ``path`` is written before the rename.

    It lives in the same folder (a rename across file systems would not be atomic) and starts
    with a dot so that folder walks and shard listings skip it.
    """
    return path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")


def _fsync_and_rename(tmp: Path, final: Path) -> None:
    """Flush ``tmp`` to disk, then rename it to ``final`` (atomic on POSIX)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)


def list_shards(out_dir: Path | str, prefix: str = "shard") -> list[str]:
    """Names of the finished shards ``<prefix>-NNNNN.h5`` in ``out_dir``, in order."""
    out = Path(out_dir)
    pat = re.compile(rf"^{re.escape(prefix)}-(\d+){re.escape(SHARD_SUFFIX)}$")
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir() if pat.match(p.name))


def file_digest(path: Path | str) -> str:
    """SHA-1 of a file's bytes, as hex (read in 1 MiB blocks; about 1 GB/s on one core)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha1").hexdigest()


def check_file(path: Path | str, size: int, sha1: str | None = None) -> str | None:
    """What is wrong with a written file, given its recorded size (and SHA-1): None if nothing.

    The size is checked first (a stat: a truncated or replaced file is found without reading
    it); the checksum, when given, reads the whole file.
    """
    path = Path(path)
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if actual != size:
        return f"{'truncated' if actual < size else 'changed'}: {actual} bytes, {size} recorded"
    if sha1 is not None:
        try:
            if file_digest(path) != sha1:
                return "checksum mismatch (same size, other bytes)"
        except OSError as e:
            return f"unreadable ({e.strerror or e})"
    return None


def _write_shard(path: Path, items: list[bytes]) -> None:
    """Write ``items`` as the ``images`` dataset of a new HDF5 file at ``path`` (atomically)."""
    tmp = atomic_path(path)
    try:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset("images", shape=(len(items),), dtype=_VLEN_UINT8)
            for i, b in enumerate(items):  # element-wise: equal lengths must not broadcast
                ds[i] = np.frombuffer(b, dtype=np.uint8)
        _fsync_and_rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ShardWriter:
    """Collects encoded images and writes them into HDF5 shards of ``shard_size`` images.

    A shard is written in one go when it is full (or on :meth:`close`), to a temporary name that
    is then renamed: a finished shard is never modified again, and a crash loses at most the
    images of the shard still being filled. Numbering continues after the shards already in
    ``out_dir``, so a resumed run never overwrites earlier output.

    Example:
        >>> with ShardWriter(out, prefix="crops", shard_size=1000) as w:  # doctest: +SKIP
        ...     shard, index = w.add(jpeg_bytes)

    Args:
        out_dir: folder of the shards (created if missing).
        prefix: shard files are named ``<prefix>-00000.h5``, ``<prefix>-00001.h5``, ...
        shard_size: images per shard (the last one may hold fewer).
        on_close: called with the shard's name after each shard has been renamed into place.
        first_number: number the first shard at least this (a resumed run that dropped damaged
            shards never reuses the name of one that its records still mention).
    """

    def __init__(
        self,
        out_dir: Path | str,
        prefix: str = "shard",
        shard_size: int = 1000,
        on_close: Callable[[str], None] | None = None,
        first_number: int = 0,
    ) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        if not re.fullmatch(r"[A-Za-z0-9_.]+", prefix):
            raise ValueError(f"shard prefix must be letters, digits, '_' or '.', got {prefix!r}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.shard_size = shard_size
        self.on_close = on_close
        existing = list_shards(self.out_dir, prefix)
        self._next = max(first_number, 1 + max(
            (int(n[len(prefix) + 1 : -len(SHARD_SUFFIX)]) for n in existing), default=-1))
        self._buffer: list[bytes] = []
        self._written: list[str] = []
        self._closed = False

    @property
    def current_name(self) -> str:
        """Name of the shard being filled (relative to ``out_dir``)."""
        return f"{self.prefix}-{self._next:05d}{SHARD_SUFFIX}"

    @property
    def pending(self) -> int:
        """Images added to the open shard and not yet on disk."""
        return len(self._buffer)

    @property
    def written(self) -> list[str]:
        """Names of the shards finished so far by this writer."""
        return list(self._written)

    def add(self, encoded: bytes) -> tuple[str, int]:
        """Append one encoded image; returns ``(shard name, index in the shard)``.

        The shard is written as soon as it holds ``shard_size`` images; until then the image
        lives in memory only.
        """
        if self._closed:
            raise RuntimeError("ShardWriter is closed")
        if not isinstance(encoded, (bytes, bytearray, memoryview)) or len(encoded) == 0:
            raise ValueError("ShardWriter.add expects non-empty encoded image bytes")
        loc = (self.current_name, len(self._buffer))
        self._buffer.append(bytes(encoded))
        if len(self._buffer) >= self.shard_size:
            self._flush()
        return loc

    def _flush(self) -> None:
        if not self._buffer:
            return
        name = self.current_name
        _write_shard(self.out_dir / name, self._buffer)
        self._buffer = []
        self._next += 1
        self._written.append(name)
        if self.on_close is not None:
            self.on_close(name)

    def close(self) -> list[str]:
        """Write the open shard (if it holds anything); returns the names of all shards written."""
        if not self._closed:
            self._flush()
            self._closed = True
        return self.written

    def abandon(self) -> None:
        """Drop the images of the open shard without writing them (used after an error)."""
        self._buffer = []
        self._closed = True

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()


def read_image_bytes(shard_path: Path | str, index: int) -> bytes:
    """The encoded bytes of image ``index`` of a shard (opens and closes the file)."""
    with h5py.File(shard_path, "r") as f:
        return f["images"][index].tobytes()


def write_manifest(df: pd.DataFrame, path: Path | str,
                   before_rename: Callable[[Path], None] | None = None) -> None:
    """Write ``df`` as parquet at ``path`` atomically (temporary file, then rename).

    ``before_rename(tmp)`` is called between the two (the crawler's kill tests stop there).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        df.to_parquet(tmp, index=False)
        if before_rename is not None:
            before_rename(tmp)
        _fsync_and_rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_manifest(path: Path | str) -> pd.DataFrame:
    """Read a parquet manifest; a folder is read as the concatenation of its ``*.parquet`` files.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
    """
    path = Path(path)
    if path.is_dir():
        parts = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
        if not parts:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    if not path.exists():
        raise FileNotFoundError(f"manifest not found: {path}")
    return pd.read_parquet(path)


def _decode_rgb(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


class _ShardDataset:
    """A map-style torch ``Dataset`` over the rows of a manifest, reading images from shards.

    Each item is decoded lazily (PIL, converted to RGB, as the authors' reader does). Each HDF5
    file is opened once per process and kept open, so every DataLoader worker has its own
    handles (they are dropped when the dataset is pickled into a worker and after a fork).

    Args:
        manifest: a DataFrame, or the path of a parquet manifest, with columns ``shard``
            (relative to ``root``) and ``index``.
        root: folder the ``shard`` column is relative to.
        transform: applied to the (H, W, 3) uint8 array; its result is returned.

    Returns (``__getitem__``):
        (H, W, 3) uint8 RGB array, or ``transform(array)``. Used in ``notebooks/01_data_curation.py``
        and by the SwAV data loader.
    """

    def __init__(
        self,
        manifest: pd.DataFrame | Path | str,
        root: Path | str,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        df = manifest if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)
        missing = {"shard", "index"} - set(df.columns)
        if missing:
            raise ValueError(f"manifest lacks column(s) {sorted(missing)}; it has {list(df.columns)}")
        self.root = Path(root)
        self.shards = df["shard"].astype(str).to_numpy()
        self.indices = df["index"].astype(np.int64).to_numpy()
        self.transform = transform
        self._files: dict[str, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.indices)

    def _file(self, shard: str) -> h5py.File:
        if self._pid != os.getpid():  # forked into a worker: never share HDF5 handles
            self._files = {}
            self._pid = os.getpid()
        f = self._files.get(shard)
        if f is None:
            path = self.root / shard
            if not path.is_file():
                raise FileNotFoundError(f"shard not found: {path}")
            f = self._files[shard] = h5py.File(path, "r")
        return f

    def describe(self, i: int) -> str:
        """Item ``i`` in words: its shard and index there (named in errors)."""
        return f"shard {self.root / self.shards[i]}, item {int(self.indices[i])} (manifest row {i})"

    def read_bytes(self, i: int) -> bytes:
        """The encoded bytes of item ``i``."""
        return self._file(self.shards[i])["images"][int(self.indices[i])].tobytes()

    def __getitem__(self, i: int) -> Any:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for ShardDataset of length {len(self)}")
        image = _decode_rgb(self.read_bytes(i))
        return self.transform(image) if self.transform is not None else image

    def close(self) -> None:
        """Close the HDF5 files this process opened."""
        for f in self._files.values():
            f.close()
        self._files = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}
        return state

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _make_shard_dataset() -> type:
    """``ShardDataset`` as a ``torch.utils.data.Dataset`` subclass, built on first use.

    Importing torch takes seconds; the preprocessing workers and the command line need this
    module but not torch, so the class is created when someone asks for it.
    """
    from torch.utils.data import Dataset

    cls = type("ShardDataset", (_ShardDataset, Dataset), {"__doc__": _ShardDataset.__doc__})
    cls.__module__ = __name__
    cls.__qualname__ = "ShardDataset"  # pickles by reference to facelib.storage.ShardDataset
    return cls


if TYPE_CHECKING:  # type checkers see the class; at run time it is built on first access
    ShardDataset = _ShardDataset


def __getattr__(name: str) -> Any:
    if name == "ShardDataset":
        cls = _make_shard_dataset()
        globals()["ShardDataset"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
