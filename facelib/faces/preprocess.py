"""The batch pipeline: a folder of photos -> 256x256 face crops in HDF5 shards + parquet manifest.

Supplement 1.1: every pretraining image is a RetinaFace detection cropped so that the face
takes about 190 px of a 256x256 image. :func:`preprocess` does this for a folder (or a list of
files), on several processes, and writes

* ``crops-NNNNN.h5``: the crops as JPEG bytes, in the authors' HDF5 layout (dataset ``images``);
* ``aligned-NNNNN.h5`` (with ``align=True``): 5-point aligned faces (supplement 1.2);
* ``manifest.parquet``: one row per face (source file, face index, box, score, landmarks, face
  size in source pixels, the crop transform, shard and index in shard);
* ``files.parquet``: one row per source file (size, faces, status);
* ``rejects.parquet``: files that gave no face, with the reason (``error`` marks files that
  could not be read at all, as opposed to photos without a face);
* ``shards.parquet``: every shard's size and SHA-1;
* ``config.json``: the options the folder was made with (a rerun must use the same).

Resuming: results are committed in parts (``parts/NNNNNN.*.parquet``) right after each shard is
renamed into place, so a kill at any moment loses at most the shard being filled; rerunning the
same command skips every committed file and removes what the interrupted run left half-done.
Shards are verified, not trusted: a rerun checks the size and SHA-1 of every shard it would
skip, and processes again the source files of a missing or damaged shard or of an unreadable
part file, saying so in its summary (:mod:`facelib.faces.folder`). A worker process that dies
(killed, out of memory, a decoder crash) is replaced; a file that kills a worker on its own is
rejected. :mod:`facelib.faces.array` runs the same code as a SLURM job array.

Shown in ``notebooks/01_data_curation.py``; command line: ``facelib preprocess SRC OUT``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import multiprocessing
import multiprocessing.context
import os
import re
import sys
import time
from multiprocessing import connection as mp_connection
from multiprocessing.connection import Connection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np
import pandas as pd

from facelib import images, recipes
from facelib.faces import folder
from facelib.faces.align import align_face
from facelib.faces.crop import box_size, crop_face
from facelib.faces.detect import Detector, make_detector
from facelib.faces.folder import CONFIG, FILES, MANIFEST, PARTS, REJECTS, SHARDS

__all__ = [
    "IMAGE_SUFFIXES",
    "FaceResult",
    "FileResult",
    "Summary",
    "list_images",
    "process_image",
    "preprocess",
    "add_cli",
    "MANIFEST",
    "FILES",
    "REJECTS",
    "SHARDS",
    "CONFIG",
    "PARTS",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jfif")
NO_FACE = "no face"
TOO_SMALL = "faces smaller than min_face"
WORKER_DIED = "worker process died"


# --------------------------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------------------------
@dataclass
class FaceResult:
    """One kept face of a source image.

    Attributes:
        box: (4,) ``x1, y1, x2, y2`` in source pixels.
        score: detector confidence.
        landmarks: (5, 2) in source pixels.
        crop_matrix: (2, 3) source-to-crop transform.
        crop: the 256x256 crop, JPEG bytes.
        aligned: the aligned face, JPEG bytes (``None`` unless alignment was asked for).
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    crop_matrix: np.ndarray
    crop: bytes
    aligned: bytes | None = None


@dataclass
class FileResult:
    """What became of one source file."""

    file: str
    width: int = 0
    height: int = 0
    detected: int = 0
    faces: list[FaceResult] = field(default_factory=list)
    reason: str = ""  # empty when at least one face was kept
    detail: str = ""
    error: bool = False  # the file could not be read or processed at all
    seconds: float = 0.0  # wall time in the worker
    cpu_seconds: float = 0.0  # CPU time of the (single-threaded) worker on this file

    @property
    def rejected(self) -> bool:
        return bool(self.reason)


def _encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - cv2 fails only on invalid arrays
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def process_image(
    image: np.ndarray,
    detector: Detector,
    recipe: recipes.Crop,
    *,
    min_face: int | None = None,
    max_faces: int | None = None,
    align: bool = False,
    scale: int = 1,
    load_full: Callable[[], np.ndarray] | None = None,
) -> tuple[int, list[FaceResult]]:
    """Detect, filter, crop (and align) the faces of one decoded image.

    ``image`` may be a reduced decode (:func:`facelib.images.decode_image_reduced`): detection
    runs on it, and a face is cropped from it when it holds enough pixels for the crop
    (crop side >= ``output_size`` reduced pixels); otherwise ``load_full()`` supplies the
    full-size image. Boxes, landmarks and transforms are always in full-size pixels.

    Args:
        image: (h, w, 3) uint8 RGB.
        detector: any :class:`~facelib.faces.detect.Detector`.
        recipe: the crop recipe (geometry, box-size rule, JPEG quality, aligned size).
        min_face: drop faces whose box size (``recipe.box_size`` rule) is below this many
            full-size pixels (default ``recipe.min_face``).
        max_faces: keep at most this many faces, the highest-scoring first (``None``: all).
        align: also produce the 5-point aligned face (``recipe.aligned_size``).
        scale: full-size coordinates = ``scale`` x coordinates in ``image``.
        load_full: returns the full-size image; needed when ``scale > 1``.

    Returns:
        (number of detections before filtering, kept faces by decreasing score).
    """
    if scale != 1 and load_full is None:
        raise ValueError("a reduced image needs load_full")
    min_face = recipe.min_face if min_face is None else min_face
    det = detector.detect(image)
    n_detected = len(det)
    if scale != 1:
        det = det.scaled(float(scale))  # full-size pixels from here on
    if n_detected:
        det = det.select(box_size(det.boxes, recipe.box_size) >= min_face)
    if max_faces is not None:
        det = det.select(np.arange(min(len(det), max_faces)))
    full = image if scale == 1 else None
    faces = []
    for box, score, lmk in zip(det.boxes, det.scores, det.landmarks):
        side = float(box_size(box, recipe.box_size)) * recipe.scale  # crop side, full-size px
        if scale == 1 or side / scale < recipe.output_size:
            if full is None:
                full = load_full()  # type: ignore[misc]
            src, s = full, 1.0
        else:  # the reduced image already has more pixels than the crop keeps
            src, s = image, float(scale)
        crop, M = crop_face(src, box / s, recipe.face_size, recipe.output_size, recipe.box_size)
        M = M.copy()
        M[:, :2] /= s  # source = full-size pixels
        aligned = None
        if align:
            a, _ = align_face(src, lmk / s, recipe.aligned_size)
            aligned = _encode_jpeg(a, recipe.jpeg_quality)
        faces.append(FaceResult(box.astype(np.float64), float(score), lmk.astype(np.float64), M,
                                _encode_jpeg(crop, recipe.jpeg_quality), aligned))
    return n_detected, faces


# --------------------------------------------------------------------------------------------
# Worker processes
# --------------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(recipe: recipes.Crop, options: dict[str, Any]) -> None:
    """Per-process state: one detector with one inference thread, OpenCV single-threaded."""
    cv2.setNumThreads(1)
    _WORKER["recipe"] = recipe
    _WORKER["options"] = options
    _WORKER["detector"] = make_detector(recipe, threads=options.get("threads", 1))


def _process_file(path: str, key: str) -> FileResult:
    """Decode and process one file; never raises (failures become a rejected FileResult)."""
    t0, c0 = time.perf_counter(), time.process_time()
    recipe: recipes.Crop = _WORKER["recipe"]
    opts = _WORKER["options"]
    res = FileResult(file=key)
    try:
        data = images.read_bytes(path)
        # big JPEGs decode directly at 1/2, 1/4 or 1/8 scale, still >= the detection size
        img, scale, (res.height, res.width) = images.decode_image_reduced(
            data, recipe.detect_max_side, name=path, max_pixels=recipe.max_image_pixels)
        res.detected, res.faces = process_image(
            img, _WORKER["detector"], recipe, min_face=opts["min_face"],
            max_faces=opts["max_faces"], align=opts["align"], scale=scale,
            load_full=lambda: images.decode_image(data, path, recipe.max_image_pixels),
        )
        if not res.faces:
            res.reason = NO_FACE if res.detected == 0 else TOO_SMALL
    except images.ImageDecodeError as e:
        res.reason, res.detail, res.error = e.reason, str(e), True
    except Exception as e:  # the run goes on past anything one file can do
        res.reason, res.detail, res.error = "processing error", f"{key}: {type(e).__name__}: {e}", True
    res.seconds = time.perf_counter() - t0
    res.cpu_seconds = time.process_time() - c0
    return res


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def list_images(src: Path | str, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[tuple[str, str]]:
    """The images under ``src``: ``(path, key)`` pairs, sorted by key.

    ``src`` is a folder (walked recursively; every entry whose name ends in an image suffix is
    listed, directories and unreadable files included, so that they end up in the rejects) or a
    text file with one path per line (relative paths are relative to the list's folder). The
    key is the path relative to ``src`` (folder) or as written in the list.
    """
    src = Path(src)
    suffixes = tuple(s.lower() for s in suffixes)
    if src.is_file():
        base = src.parent
        out = []
        for line in src.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                p = Path(line)
                out.append((os.fspath(p if p.is_absolute() else base / p), line))
        return out
    if not src.is_dir():
        raise FileNotFoundError(f"image source not found: {src}")
    out = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files + dirs):
            if name.lower().endswith(suffixes) and not name.startswith("."):
                p = Path(root) / name
                out.append((os.fspath(p), p.relative_to(src).as_posix()))
    out.sort(key=lambda t: t[1])
    return out


# --------------------------------------------------------------------------------------------
# Output folder (committed parts, verification, consolidation: facelib.faces.folder)
# --------------------------------------------------------------------------------------------
def _config(recipe: recipes.Crop, align: bool, min_face: int, max_faces: int | None,
            shard_size: int) -> dict[str, Any]:
    return {
        "recipe": {k: list(v) if isinstance(v, tuple) else v
                   for k, v in dataclasses.asdict(recipe).items()},
        "align": align, "min_face": min_face, "max_faces": max_faces, "shard_size": shard_size,
        "detector": "retinaface-mnet0.25",
    }


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
@dataclass
class Summary:
    """What a run did (this run only, except ``total_faces``, ``folder_errors`` and
    ``folder_rejects``, which describe the whole folder for the current source)."""

    files: int = 0
    skipped: int = 0
    faces: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process plus the workers' time on files
    main_cpu_seconds: float = 0.0  # this process alone (writing shards and manifests, IPC)
    startup_seconds: float = 0.0  # wall time until the workers (or this process) held a model
    total_faces: int = 0
    worker_restarts: int = 0
    repairs: folder.Repairs = field(default_factory=folder.Repairs)
    folder_rejects: int = 0  # source files without a kept face, in the folder
    folder_errors: int = 0  # source files that could not be read, in the folder (exit status 1)

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0

    @property
    def images_per_s(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        rej = ", ".join(f"{k}: {v}" for k, v in sorted(self.rejects.items())) or "none"
        return (
            f"files processed: {self.files} (skipped, already done: {self.skipped})\n"
            f"faces written: {self.faces} (folder total: {self.total_faces})\n"
            f"rejected files: {sum(self.rejects.values())} ({rej}); could not be read: {self.errors}\n"
            f"time: {self.seconds:.1f} s, {self.images_per_s:.2f} images/s, "
            f"{self.faces_per_s:.2f} faces/s; CPU {self.cpu_seconds:.1f} s"
            + (f"\nworker processes replaced: {self.worker_restarts}" if self.worker_restarts else "")
            + f"\n{self.verification}"
            + (f"\nthe folder holds {self.folder_errors} source file(s) that could not be read "
               "(rejects.parquet, error=True): fix them and rerun with --retry-rejects"
               if self.folder_errors else "")
        )

    @property
    def verification(self) -> str:
        """What the check of the committed shards found (one line, plus one per repair)."""
        r = self.repairs
        if not r.verified and not r:
            return "verified shards: none committed before this run"
        head = (f"verified shards: {r.verified} ({r.verified_bytes / 1e6:.1f} MB, size and SHA-1) "
                f"in {r.seconds:.1f} s")
        if not r:
            return head + "; none damaged"
        n = len(r.shards) + len(r.parts)
        return (f"{head}; repaired {n} damaged file(s), {r.files} source file(s) processed again:\n"
                + "\n".join(r.lines()))


def _mp_context() -> multiprocessing.context.BaseContext:
    """Workers come from a fork server, never forked from this (possibly threaded) process.

    Forking a process that runs threads (tqdm's monitor, a notebook's kernel threads) can copy
    a held lock into the child, which then hangs. The server imports this module once, so
    starting a worker stays cheap.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - not on Linux


_READY = "ready"


def _worker_main(conn: Connection, recipe: recipes.Crop, options: dict[str, Any]) -> None:
    """A worker process: receive ``(path, key)``, send back its FileResult, until ``None``/EOF."""
    try:
        _init_worker(recipe, options)
        conn.send(_READY)
    except Exception as e:  # tell the parent why, instead of dying silently
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    try:
        while True:
            item = conn.recv()
            if item is None:
                break
            conn.send(_process_file(*item))
    except (EOFError, OSError, KeyboardInterrupt):  # the parent is gone: stop quietly
        pass


class _Worker:
    """One worker process with its own pipe.

    A dedicated pipe per worker (not a shared queue) means that a worker killed in the middle
    of sending a result damages only its own pipe, which then reads as EOF: the parent notices
    and never blocks on a half-written message.
    """

    def __init__(self, ctx: multiprocessing.context.BaseContext, recipe: recipes.Crop,
                 options: dict[str, Any]) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, recipe, options), daemon=True)
        self.proc.start()
        child.close()
        self.assigned: collections.deque[tuple[int, tuple[str, str], bool]] = collections.deque()

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Block until the worker has loaded the detector.

        Raises:
            RuntimeError: the worker died or failed while starting. That is no fault of any
                file, so the run stops (what is committed stays) instead of rejecting files.
        """
        ready = mp_connection.wait([self.conn, self.proc.sentinel], timeout)
        msg: Any = None
        if self.conn in ready:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                msg = None
            if msg == _READY:
                return
        self.stop(timeout=1)
        why = msg[1] if isinstance(msg, tuple) else (
            f"exit code {self.proc.exitcode}" if ready else f"no answer within {timeout:.0f} s")
        raise RuntimeError(
            f"a preprocessing worker process failed to start ({why}). With workers > 1 the main "
            "program must be importable (a script file or a module, not stdin); or use workers=1"
        )

    def send(self, seq: int, item: tuple[str, str], alone: bool) -> None:
        self.conn.send(item)
        self.assigned.append((seq, item, alone))

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _results(items: list[tuple[str, str]], workers: int, recipe: recipes.Crop,
             options: dict[str, Any], summary: Summary,
             context: multiprocessing.context.BaseContext | None = None) -> Iterator[FileResult]:
    """Yield a FileResult per item, in input order, from ``workers`` processes (1: in-process).

    Each worker holds at most two files at a time. A worker that dies (killed, out of memory,
    a decoder crash) is replaced; the files it held are retried, each alone on a worker, and a
    file that kills a worker when alone is rejected (``WORKER_DIED``).
    """
    if not items:
        return
    t0 = time.perf_counter()
    if workers <= 1:
        _init_worker(recipe, options)
        summary.startup_seconds = time.perf_counter() - t0
        for path, key in items:
            yield _process_file(path, key)
        return
    ctx = context or _mp_context()
    todo = collections.deque(enumerate(items))  # (seq, item)
    retry: collections.deque[tuple[int, tuple[str, str]]] = collections.deque()
    done: dict[int, FileResult] = {}
    next_seq = 0
    pool = [_Worker(ctx, recipe, options) for _ in range(workers)]

    def replace(i: int) -> None:
        """Worker ``i`` died: retry or reject what it held, start a new one."""
        w = pool[i]
        summary.worker_restarts += 1
        lost = list(w.assigned)
        w.assigned.clear()
        w.stop(timeout=0)
        if len(lost) == 1 and lost[0][2]:  # it was alone: this file kills workers
            seq, (_, key), _ = lost[0]
            done[seq] = FileResult(file=key, reason=WORKER_DIED, error=True,
                                   detail=f"{key}: {WORKER_DIED} while processing it")
        else:
            retry.extend((seq, item) for seq, item, _ in lost)
        pool[i] = _Worker(ctx, recipe, options)
        pool[i].wait_ready()

    try:
        for w in pool:
            w.wait_ready()
        summary.startup_seconds = time.perf_counter() - t0
        while next_seq < len(items):
            # hand out work: retried files go alone to an idle worker, the rest two at a time
            for i in range(len(pool)):
                w = pool[i]
                try:
                    if retry and not w.assigned:
                        seq, item = retry[0]
                        w.send(seq, item, alone=True)
                        retry.popleft()
                    while (todo and len(w.assigned) < 2 and not (w.assigned and w.assigned[0][2])
                           and len(done) < 8 * workers):  # bound the results held for ordering
                        seq, item = todo[0]
                        w.send(seq, item, alone=False)
                        todo.popleft()
                except OSError:  # broken pipe: it died since the last look
                    replace(i)
            busy = [w for w in pool if w.assigned]
            if busy:
                mp_connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for i in range(len(pool)):
                w = pool[i]
                try:
                    while w.assigned and w.conn.poll():
                        res = w.conn.recv()
                        done[w.assigned.popleft()[0]] = res
                    if w.assigned and not w.proc.is_alive():
                        raise EOFError
                except (EOFError, OSError):
                    replace(i)
            while next_seq in done:
                yield done.pop(next_seq)
                next_seq += 1
    finally:
        for w in pool:
            w.stop()


def _source_items(src: Path | str | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(path, key)`` pairs of a source; an empty source is an error (nothing to do is a
    mistaken path far more often than an intent)."""
    if isinstance(src, (list, tuple)):
        items = [(str(p), str(k)) for p, k in src]
        if not items:
            raise ValueError("no images to preprocess: the file list is empty")
        return items
    items = list_images(src)
    if not items:
        what = "the list" if Path(src).is_file() else "the folder"
        raise ValueError(f"no images in {src}: {what} holds no file ending in "
                         f"{', '.join(IMAGE_SUFFIXES)}")
    return items


def preprocess(
    src: Path | str | Sequence[tuple[str, str]],
    out: Path | str,
    *,
    profile: str = "paper",
    recipe: recipes.Crop | None = None,
    workers: int = 1,
    shard_size: int = 1000,
    max_faces_per_image: int | None = None,
    min_face: int | None = None,
    align: bool = False,
    jpeg_quality: int | None = None,
    detect_max_side: int | None = None,
    retry_rejects: bool = False,
    limit: int | None = None,
    progress: bool = True,
) -> Summary:
    """Detect, crop and store every face of the images under ``src`` into ``out`` (resumable).

    Args:
        src: an image folder (walked recursively), a text file listing image paths, or
            ``(path, key)`` pairs as :func:`list_images` gives them (a part of a job array).
        out: output folder (see the module doc for its layout).
        profile: recipe profile when ``recipe`` is not given (the crop is the paper's in both).
        recipe: the crop recipe (``recipes.crop(profile)`` by default).
        workers: processes (1: in this process).
        shard_size: crops per HDF5 shard.
        max_faces_per_image: keep at most this many faces per image, best-scoring first.
        min_face: minimum face box size in source pixels (default ``recipe.min_face``).
        align: also write 5-point aligned faces (``recipe.aligned_size``) to ``aligned-*.h5``.
        jpeg_quality: overrides ``recipe.jpeg_quality``.
        detect_max_side: overrides ``recipe.detect_max_side`` (the long side of the copy the
            detector sees: larger finds smaller faces in large photos, at more CPU per image).
        retry_rejects: process again the files an earlier run could not read.
        limit: process at most this many new files (then stop; a rerun continues).
        progress: show a progress bar with rate and ETA.

    Returns:
        A :class:`Summary` of this run.

    Raises:
        FileNotFoundError: ``src`` does not exist (nothing is created).
        ValueError: ``src`` holds no image, ``out`` is a file, ``out`` was made with other
            options or holds a ``config.json`` that is not a preprocessing config, or a bad option.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    recipe = recipe if recipe is not None else recipes.crop(profile)
    if jpeg_quality is not None:
        recipe = recipes.override(recipe, jpeg_quality=jpeg_quality)
    if detect_max_side is not None:
        if detect_max_side < 32:
            raise ValueError(f"detect_max_side must be at least 32 px, got {detect_max_side}")
        recipe = recipes.override(recipe, detect_max_side=detect_max_side)
    if min_face is None:
        min_face = recipe.min_face
    if shard_size < 1 or workers < 0 or (max_faces_per_image is not None and max_faces_per_image < 1):
        raise ValueError("shard_size and max_faces_per_image must be >= 1, workers >= 0")
    if not 1 <= recipe.jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in [1, 100], got {recipe.jpeg_quality}")
    items = _source_items(src)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} exists and is not a folder")
    if (out / "array" / "plan.json").exists():
        raise ValueError(f"{out} is the output of a job array (array/plan.json): continue it with "
                         "`facelib preprocess SRC OUT --cluster NAME` (the same options), or use a new folder")
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    with folder.Lock(out):
        folder.check_config(out, _config(recipe, align, min_face, max_faces_per_image, shard_size))
        state = folder.load(out, checksums=True)  # damaged shards and parts are dropped here
        summary.repairs = state.repairs
        folder.remove_orphans(out, state.faces)
        done_files = state.files
        skip: set[str] = set()
        if len(done_files):
            ok = done_files if not retry_rejects else done_files[~done_files["error"].astype(bool)]
            skip = set(ok["file"])
        todo = [it for it in items if it[1] not in skip]
        summary.skipped = len(items) - len(todo)
        if limit is not None:
            todo = todo[:limit]
        options = {"min_face": min_face, "max_faces": max_faces_per_image, "align": align,
                   "threads": 1}
        committer = folder.Committer(out, shard_size, align, first_seq=max(state.seqs, default=-1) + 1,
                                     first_shard=state.next_shard)
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), unit="img", desc="preprocess", dynamic_ncols=True)
        try:
            for res in _results(todo, workers, recipe, options, summary):
                committer.add(res)
                summary.files += 1
                summary.faces += len(res.faces)
                if workers > 1:
                    summary.cpu_seconds += res.cpu_seconds
                if res.rejected:
                    summary.rejects[res.reason] = summary.rejects.get(res.reason, 0) + 1
                    summary.errors += int(res.error)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(faces=summary.faces, rejected=sum(summary.rejects.values()),
                                    refresh=False)
            committer.close()
        except BaseException:
            committer.abandon()  # the open shard is lost; everything committed stays
            raise
        finally:
            if bar is not None:
                bar.close()
        final = folder.consolidate(out)
    faces, files = final.faces, final.files
    current = files[files["file"].isin({key for _, key in items})]
    summary.folder_rejects = int((current["status"] == "rejected").sum())
    summary.folder_errors = int(current["error"].astype(bool).sum())
    summary.total_faces = len(faces)
    summary.seconds = time.perf_counter() - t0
    summary.main_cpu_seconds = time.process_time() - c0
    summary.cpu_seconds += summary.main_cpu_seconds
    return summary


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """``facelib preprocess SRC OUT [--cluster NAME]``: see :func:`preprocess` and
    :mod:`facelib.faces.array`."""
    r = recipes.crop()
    lp = recipes.launch("paper")
    p = subparsers.add_parser(
        "preprocess",
        help="detect faces and write 256x256 crops (face ~190 px) into HDF5 shards",
        description="Detect faces with RetinaFace, crop them so that the face takes about "
        f"{r.face_size} px of a {r.output_size}x{r.output_size} image (supplement 1.1), and write "
        "HDF5 shards + a parquet manifest. Rerunning the same command resumes; it first verifies "
        "the shards it would skip (size and SHA-1) and processes again the files of a missing or "
        "damaged shard or part file. With --cluster the sorted file list is cut into fixed parts, "
        "one job-array element each, and a merge job writes the manifest after them.",
        epilog="Exit status: 0 every file of SRC is in OUT (photos without a usable face are "
        "listed in rejects.parquet: a normal outcome, not a failure); 1 OUT holds files of SRC that "
        "could not be read (from this run or an earlier one; rejects.parquet with error=True): fix or "
        "remove them and rerun with --retry-rejects; 2 a bad argument, a missing or empty SRC, an "
        "OUT that is a file or was made with other options (nothing is processed). With --cluster: "
        "0 once submitted (1 as above when the merge ran here or was waited for).",
    )
    p.add_argument("src", type=Path, help="image folder, or a text file with one path per line")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--profile", default="paper", choices=recipes.PROFILES)
    p.add_argument("--workers", type=int, default=None,
                   help="processes (default 1; with --cluster: one per CPU of the element)")
    p.add_argument("--shard-size", type=int, default=1000, help="crops per shard (default 1000)")
    p.add_argument("--max-faces-per-image", type=int, default=None)
    p.add_argument("--min-face", type=int, default=None,
                   help=f"minimum face size in source px (default {r.min_face})")
    p.add_argument("--align", action="store_true",
                   help=f"also write 5-point aligned {r.aligned_size[0]}x{r.aligned_size[1]} faces")
    p.add_argument("--jpeg-quality", type=int, default=None,
                   help=f"JPEG quality of the stored crops (default {r.jpeg_quality})")
    p.add_argument("--detect-max-side", type=int, default=None,
                   help=f"long side of the copy the detector sees (default {r.detect_max_side}; "
                        "larger finds smaller faces in large photos, slower)")
    p.add_argument("--retry-rejects", action="store_true",
                   help="process again files that earlier runs could not read")
    p.add_argument("--limit", type=int, default=None, help="process at most N new files (not with --cluster)")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_argument_group("job array (SLURM)")
    g.add_argument("--cluster", default=None,
                   help="cluster profile of slurm/clusters.yaml: one job-array element per part of the "
                        "sorted file list, then a merge job (debug/local: run the parts here, then merge)")
    g.add_argument("--cluster-set", action="append", metavar="KEY=VALUE",
                   help="override a field of the cluster profile (repeatable)")
    g.add_argument("--part-size", type=int, default=None,
                   help=f"files per element (default recipes.Launch.preprocess_part_files: "
                        f"{lp.preprocess_part_files} paper, {recipes.launch('demo').preprocess_part_files} demo)")
    g.add_argument("--dry-run", action="store_true",
                   help="print what would run (with --cluster: the parts and the sbatch scripts); "
                        "write nothing, start nothing")
    g.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                   help="with --cluster: wait at most this long for the merge")
    p.set_defaults(func=_cli)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {"profile": args.profile, "shard_size": args.shard_size,
            "max_faces_per_image": args.max_faces_per_image, "min_face": args.min_face, "align": args.align,
            "jpeg_quality": args.jpeg_quality, "detect_max_side": args.detect_max_side}


def _dry_run_local(args: argparse.Namespace) -> int:
    """What ``facelib preprocess SRC OUT`` would do here: counts only, nothing written."""
    items = _source_items(args.src)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} exists and is not a folder")
    done: set[str] = set()
    damaged = folder.Repairs()
    if (out / CONFIG).exists():
        state = folder.load(out, checksums=True, clean=False)
        ok = state.files if not args.retry_rejects else state.files[~state.files["error"].astype(bool)]
        done, damaged = set(ok["file"]), state.repairs
    missing = [key for _, key in items if key not in done]
    todo = missing if args.limit is None else missing[:args.limit]
    print(f"dry run: would preprocess {len(todo)} of the {len(items)} images of {args.src} into {out} "
          f"({len(items) - len(missing)} already there) with {args.workers or 1} worker process(es); "
          "nothing was written")
    if damaged:
        print("damaged files that the run would repair:\n" + "\n".join(damaged.lines()))
    return 0


def _cli(args: argparse.Namespace) -> int:
    from facelib.launch.errors import LaunchError

    try:
        if args.cluster:
            return _cli_cluster(args)
        if args.part_size is not None or args.wait is not None or args.cluster_set:
            raise ValueError("--part-size, --wait and --cluster-set go with --cluster NAME")
        if args.dry_run:
            return _dry_run_local(args)
        summary = preprocess(
            args.src, args.out, workers=args.workers or 1, retry_rejects=args.retry_rejects,
            limit=args.limit, progress=not args.no_progress, **_options(args),
        )
    except (ValueError, RuntimeError, OSError, LaunchError) as e:  # RecipeError is a ValueError
        print(f"facelib preprocess: error: {e}", file=sys.stderr)
        return 2
    print(summary)
    return 1 if summary.folder_errors else 0


def _cli_cluster(args: argparse.Namespace) -> int:
    from facelib import launch
    from facelib.faces import array

    if args.limit is not None:
        raise ValueError("--limit is for a local run; a job array processes whole parts")
    clus = launch.cluster(args.cluster, **launch._parse_sets(args.cluster_set))
    sub = array.submit(args.src, args.out, on=clus, profile=args.profile, part_size=args.part_size,
                       options=_options(args), dry_run=args.dry_run, wait_s=args.wait,
                       workers=args.workers, retry_rejects=args.retry_rejects)
    if args.dry_run:
        return 0
    merged_record = Path(args.out) / array.ARRAY / array.MERGED
    if array.merged(args.out):
        return 1 if json.loads(merged_record.read_text())["errors"] else 0
    return 0
