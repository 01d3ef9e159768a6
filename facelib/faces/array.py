"""The preprocessing as a SLURM job array: fixed parts, one element per part, then a merge.

``facelib preprocess SRC OUT --cluster NAME`` cuts the sorted file list of ``SRC`` into parts of
``Launch.preprocess_part_files`` files (``--part-size``): part ``k`` is files
``[k * size, (k + 1) * size)``, so the split depends only on the sorted list and the part size,
and a rerun submits the same parts. The folder then holds

* ``array/plan.json`` and ``array/files.parquet``: the part size, the options and the sorted
  ``(path, key)`` list the elements read their part from (written once; a rerun whose source
  or options differ is refused);
* ``array/part-NNNNN/``: one element's output folder, written by the same resumable, atomic code
  as a local run (:func:`facelib.faces.preprocess.preprocess`: shards, commits, verification,
  manifest, rejects), plus ``done.json`` when the part is finished;
* ``manifest.parquet``, ``files.parquet``, ``rejects.parquet``, ``shards.parquet``: the merge of
  the parts (shard paths relative to ``OUT``: ``array/part-NNNNN/crops-00000.h5``), written by a
  merge job that SLURM starts after the whole array (``afterok``), or by the next run of the
  command when every part is finished. Its rows are those of a single-machine run on the same
  files; only the shard names and indices differ.

Finished parts (``done.json``, shard sizes matching their records) and parts whose element is
still queued or running are never submitted again; a part killed mid-way is resubmitted and
resumes from its last commit. Each element runs one single-threaded detector process per CPU
of its allocation (``SLURM_CPUS_PER_TASK``). CPUs, memory and time per element come from the
cluster profile and ``recipes.Launch`` (:func:`facelib.launch.preprocess_resources`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from facelib import launch, recipes, storage
from facelib.faces import folder
from facelib.launch.jobs import ResumableJob, _atomic_write_json

__all__ = [
    "ARRAY",
    "ArrayPlan",
    "PartJob",
    "MergeJob",
    "split",
    "prepare",
    "part_dir",
    "merge",
    "merged",
    "Submission",
    "submit",
]

ARRAY = "array"
PLAN, LISTING, DONE, MERGED = "plan.json", "files.parquet", "done.json", "merged.json"


def split(n_files: int, part_size: int) -> list[range]:
    """Indices of each part: ``[k * part_size, min((k + 1) * part_size, n_files))``."""
    if part_size < 1:
        raise ValueError(f"part size must be >= 1, got {part_size}")
    return [range(a, min(a + part_size, n_files)) for a in range(0, n_files, part_size)]


def part_dir(out: Path | str, k: int) -> Path:
    """The output folder of part ``k``."""
    return Path(out) / ARRAY / f"part-{k:05d}"


def _digest(keys: Sequence[str]) -> str:
    h = hashlib.sha1()
    for k in keys:
        h.update(k.encode() + b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class ArrayPlan:
    """The fixed split of a source into parts (``OUT/array/plan.json``).

    Attributes:
        out: the output folder.
        src: the source as given.
        n_files: files in the sorted list.
        part_size: files per part.
        digest: SHA-1 of the sorted keys (a changed source is refused).
        options: :func:`facelib.faces.preprocess.preprocess` keyword arguments of every element.
    """

    out: str
    src: str
    n_files: int
    part_size: int
    digest: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def parts(self) -> list[range]:
        return split(self.n_files, self.part_size)


def prepare(src: Path | str, out: Path | str, part_size: int, options: dict[str, Any],
            write: bool = True) -> ArrayPlan:
    """List ``src``, fix its split and (with ``write``) record it in ``OUT/array``.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: ``src`` holds no image; ``out`` is a file or a folder made with other
            options, another part size or another file list; a local run's folder.
    """
    from facelib.faces import preprocess as pp

    items = pp._source_items(src)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} exists and is not a folder")
    plan = ArrayPlan(str(out.absolute()), str(src), len(items), part_size,
                     _digest([k for _, k in items]), dict(options))
    split(plan.n_files, part_size)  # validates the part size
    arr = out / ARRAY
    old_path = arr / PLAN
    if old_path.exists():
        old = json.loads(old_path.read_text())
        diff = {k: (old.get(k), v) for k, v in (("part_size", part_size), ("n_files", plan.n_files),
                                                ("digest", plan.digest), ("options", plan.options))
                if old.get(k) != v}
        if diff:
            raise ValueError(
                f"{out} was split into parts of another file list or with other options "
                f"(folder, now: {diff}); the split must stay fixed: use a new output folder")
    elif (out / folder.PARTS).is_dir():
        raise ValueError(f"{out} holds a local run (parts/); continue it without --cluster, or use "
                         "a new output folder for the job array")
    if write and not old_path.exists():
        arr.mkdir(parents=True, exist_ok=True)
        storage.write_manifest(pd.DataFrame(items, columns=["path", "key"]), arr / LISTING)
        _atomic_write_json(old_path, {**plan.__dict__, "created": time.strftime("%Y-%m-%d %H:%M:%S")})
    return plan


def _allocated_cpus() -> int:
    """CPUs of this job: ``SLURM_CPUS_PER_TASK``, else the CPUs this process may run on."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if cpus.isdigit() and int(cpus) > 0:
        return int(cpus)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class PartJob(ResumableJob):
    """One element of the array: preprocess part ``k`` into ``OUT/array/part-NNNNN`` (resuming).

    The part's files are rows ``[k * size, (k + 1) * size)`` of ``OUT/array/files.parquet``.
    Detector processes: one per allocated CPU (``workers``, default :func:`_allocated_cpus`).
    Requeued on a time limit or pre-emption (USR2), it continues from its last commit.
    """

    def __init__(self, out: str | Path, k: int, workers: int | None = None, retry_rejects: bool = False) -> None:
        super().__init__(part_dir(out, k))
        self.out, self.k, self.workers = str(Path(out).absolute()), k, workers
        self.retry_rejects = retry_rejects

    def run(self) -> dict[str, Any]:
        from facelib.faces import preprocess as pp

        arr = Path(self.out) / ARRAY
        plan = json.loads((arr / PLAN).read_text())
        rows = split(plan["n_files"], plan["part_size"])[self.k]
        listing = pd.read_parquet(arr / LISTING)
        items = list(zip(listing["path"].iloc[rows.start:rows.stop], listing["key"].iloc[rows.start:rows.stop]))
        workers = self.workers if self.workers is not None else _allocated_cpus()
        done = Path(self.run_dir) / DONE
        done.unlink(missing_ok=True)  # a part being (re)processed is not done
        summary = pp.preprocess(items, self.run_dir, workers=workers, progress=False,
                                retry_rejects=self.retry_rejects, **plan["options"])
        print(summary, flush=True)
        record = {"part": self.k, "files": len(items), "first": rows.start, "digest": _digest([k for _, k in items]),
                  "workers": workers, "processed": summary.files, "skipped": summary.skipped,
                  "faces": summary.total_faces, "rejects": summary.folder_rejects,
                  "errors": summary.folder_errors, "repaired": sorted(summary.repairs.shards)
                  + sorted(summary.repairs.parts), "seconds": round(summary.seconds, 2),
                  "cpu_seconds": round(summary.cpu_seconds, 2)}
        _atomic_write_json(done, record)
        return record


def _part_damaged(pdir: Path) -> str | None:
    """A finished part whose shards no longer match their recorded sizes (a stat each)."""
    path = pdir / folder.SHARDS
    if not path.exists():
        return f"{path} is missing"
    try:
        shards = pd.read_parquet(path)
    except Exception as e:
        return f"{path} is unreadable ({type(e).__name__})"
    for name, size in zip(shards["shard"], shards["bytes"]):
        problem = storage.check_file(pdir / name, int(size))
        if problem:
            return f"{pdir.name}/{name}: {problem}"
    return None


def merged(out: Path | str) -> bool:
    """Whether ``OUT/manifest.parquet`` is the merge of the current finished parts."""
    out = Path(out)
    path = out / ARRAY / MERGED
    if not path.exists() or not (out / folder.MANIFEST).exists():
        return False
    rec = json.loads(path.read_text())
    return rec.get("parts") == _done_digests(out)


def _done_digests(out: Path) -> dict[str, str]:
    plan = json.loads((out / ARRAY / PLAN).read_text())
    digests = {}
    for k in range(len(split(plan["n_files"], plan["part_size"]))):
        done = part_dir(out, k) / DONE
        digests[str(k)] = hashlib.sha1(done.read_bytes()).hexdigest() if done.exists() else ""
    return digests


def merge(out: Path | str) -> dict[str, Any]:
    """Write the folder's manifest, files, rejects and shard records from its finished parts.

    Shard paths become relative to ``out`` (``array/part-NNNNN/crops-00000.h5``); rows come in
    part order, each part in its file order (the sorted file list, as a single-machine run).

    Raises:
        RuntimeError: a part is not finished or its shards do not match their records (the
            message names it; rerun the submission to process it).
    """
    out = Path(out)
    plan = json.loads((out / ARRAY / PLAN).read_text())
    n_parts = len(split(plan["n_files"], plan["part_size"]))
    digests = _done_digests(out)
    missing = [k for k in range(n_parts) if not digests[str(k)]]
    if missing:
        raise RuntimeError(f"{out}: part(s) {', '.join(map(str, missing))} of {n_parts} are not finished "
                           f"(no {DONE}); rerun `facelib preprocess ... --cluster` to submit them")
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in (folder.MANIFEST, folder.FILES, folder.SHARDS)}
    for k in range(n_parts):
        pdir = part_dir(out, k)
        damaged = _part_damaged(pdir)
        if damaged:
            raise RuntimeError(f"{out}: part {k} is damaged ({damaged}); rerun the submission to repair it")
        prefix = f"{ARRAY}/{pdir.name}/"
        faces = pd.read_parquet(pdir / folder.MANIFEST)
        for col in ("shard", "aligned_shard"):
            faces[col] = faces[col].where(faces[col].isna(), prefix + faces[col].astype(str))
        shards = pd.read_parquet(pdir / folder.SHARDS)
        shards["shard"] = prefix + shards["shard"].astype(str)
        frames[folder.MANIFEST].append(faces)
        frames[folder.FILES].append(pd.read_parquet(pdir / folder.FILES))
        frames[folder.SHARDS].append(shards)
    tables = {name: pd.concat(dfs, ignore_index=True) for name, dfs in frames.items()}
    files = tables[folder.FILES]
    for name, df in tables.items():
        storage.write_manifest(df, out / name)
    rejects = files.loc[files["status"] == "rejected", ["file", "reason", "detail", "error"]]
    storage.write_manifest(rejects.reset_index(drop=True), out / folder.REJECTS)
    record = {"parts": digests, "files": len(files), "faces": len(tables[folder.MANIFEST]),
              "rejects": len(rejects), "errors": int(files["error"].astype(bool).sum()),
              "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    _atomic_write_json(out / ARRAY / MERGED, record)
    return record


class MergeJob:
    """The job that merges the parts once the array has finished (:func:`merge`)."""

    def __init__(self, out: str | Path) -> None:
        self.out = str(Path(out).absolute())

    def __call__(self) -> dict[str, Any]:
        return merge(self.out)


# --------------------------------------------------------------------------------------------
# Submission
# --------------------------------------------------------------------------------------------
@dataclass
class Submission:
    """What :func:`submit` did (or, in a dry run, would do).

    Attributes:
        plan: the split.
        submit_parts: parts submitted now (element ``i`` of the array is part ``submit_parts[i]``).
        done_parts: finished parts (not submitted); ``active``: ``{part: job id}`` still queued
            or running (not submitted); ``repaired``: ``{part: problem}`` finished parts found
            damaged (submitted again).
        jobs: the array's jobs; ``merge_job``: the merge job (None: merged here, or nothing to do).
        merged_now: the merge ran in this process (every part was already finished).
        active_merge: job id of an earlier submission's merge job, still queued (not submitted again).
    """

    plan: ArrayPlan
    submit_parts: list[int]
    done_parts: list[int]
    active: dict[int, str]
    repaired: dict[int, str] = field(default_factory=dict)
    jobs: list[Any] = field(default_factory=list)
    merge_job: Any = None
    merged_now: dict[str, Any] | None = None
    active_merge: str | None = None

    @property
    def wait_for(self) -> list[str]:
        """Job ids a step after the preprocessing must wait for: the merge job submitted now, or
        that of an earlier submission still queued (none when the folder is merged)."""
        if self.merge_job is not None:
            return [str(self.merge_job.job_id)]
        return [self.active_merge] if self.active_merge else []

    def summary(self) -> str:
        p = self.plan
        n = len(p.parts)
        lines = [f"preprocess {p.src} -> {p.out}: {p.n_files} files in {n} part(s) of {p.part_size}; "
                 f"{len(self.done_parts)} finished, {len(self.active)} queued or running, "
                 f"{len(self.submit_parts)} to submit"]
        lines += [f"  part {k} was finished but is damaged ({why}): submitted again" for k, why in self.repaired.items()]
        lines += [f"  part {k}: job {j} still queued or running, not submitted again" for k, j in self.active.items()]
        if self.jobs:
            array_id = str(self.jobs[0].job_id).split("_")[0]
            lines.append(f"  submitted part(s) {_ranges(self.submit_parts)} as job array {array_id} "
                         f"(logs: {Path(str(self.jobs[0].paths.folder)).parent}/<job id>/)")
        if self.merge_job is not None:
            lines.append(f"  merge job {self.merge_job.job_id} runs after them and writes "
                         f"{p.out}/{folder.MANIFEST} (log: {self.merge_job.paths.stderr})")
        if self.active_merge is not None:
            lines.append(f"  merge job {self.active_merge} of an earlier submission is still queued: "
                         "not submitted again")
        if self.merged_now is not None:
            m = self.merged_now
            lines.append(f"  merged here: {m['faces']} faces from {m['files']} files ({m['rejects']} rejected, "
                         f"{m['errors']} unreadable) -> {p.out}/{folder.MANIFEST}")
        return "\n".join(lines)


def _ranges(ks: Sequence[int]) -> str:
    out, ks = [], sorted(ks)
    i = 0
    while i < len(ks):
        j = i
        while j + 1 < len(ks) and ks[j + 1] == ks[j] + 1:
            j += 1
        out.append(str(ks[i]) if i == j else f"{ks[i]}-{ks[j]}")
        i = j + 1
    return ",".join(out)


def _classify(out: Path, plan: ArrayPlan) -> tuple[list[int], list[int], dict[int, str], dict[int, str]]:
    """(parts to submit, finished parts, ``{active part: job id}``, ``{damaged part: problem}``).

    Finished: ``done.json`` and every shard at its recorded size. Active: its latest job in
    ``OUT/array/jobs.jsonl`` is queued or running.
    """
    names = [part_dir(out, k).name for k in range(len(plan.parts))]
    runs_root = out / ARRAY
    active_runs = (launch.active_runs(names, runs_root)
                   if (runs_root / launch.REGISTRY_NAME).exists() else {})
    todo, done, active, damaged = [], [], {}, {}
    for k, name in enumerate(names):
        if (runs_root / name / DONE).exists():
            problem = _part_damaged(runs_root / name)
            if problem is None:
                done.append(k)
                continue
            damaged[k] = problem
        if name in active_runs:
            active[k] = active_runs[name].job_id
        else:
            todo.append(k)
    return todo, done, active, damaged


def _wait_merge(job: Any, wait_s: float, out: Path) -> None:
    """Wait for the merge job; its failure becomes one line naming the job and the logs."""
    from submitit.core.utils import FailedJobError

    try:
        launch.wait(job, wait_s)
    except launch.JobTimeout:
        raise RuntimeError(f"the merge job {job.job_id} has not ended after {wait_s:.0f} s; it still runs "
                           f"(`facelib jobs status --results {out / ARRAY}`)") from None
    except (launch.JobEndedWithoutResult, FailedJobError) as e:
        first = next((ln for ln in str(e).splitlines() if ln.strip()), "")
        raise RuntimeError(f"the merge job {job.job_id} did not merge ({first.strip()[:200]}): a part failed or "
                           f"was cancelled; rerun the same command to resubmit the unfinished parts (logs: "
                           f"{out / ARRAY / 'submitit'}/<job id>/)") from None


def submit(src: Path | str, out: Path | str, *, on: str | launch.Cluster, profile: str = "paper",
           part_size: int | None = None, options: dict[str, Any] | None = None, after: Sequence[str] = (),
           dry_run: bool = False, wait_s: float | None = None, workers: int | None = None,
           retry_rejects: bool = False, log: Any = print) -> Submission:
    """Submit the unfinished parts of ``src`` as one job array, then the merge job after it.

    Args:
        src, out: as :func:`facelib.faces.preprocess.preprocess`.
        on: cluster profile; ``debug`` and ``local`` run the parts (here or as local processes)
            and merge once they end.
        profile: the ``Launch`` recipe of the resources and the default part size.
        part_size: files per part (default ``Launch.preprocess_part_files``).
        options: ``preprocess`` options of every element (shard size, alignment, ...).
        after: job ids the array waits for (``afterok``).
        dry_run: print the split, what would be submitted and the sbatch scripts; write nothing.
        wait_s: wait at most this long for the merge (slurm), then report it.
        workers: detector processes per element (default: its allocated CPUs).
        retry_rejects: the submitted parts process again the files they could not read (a
            finished part is not submitted for that: delete its ``done.json`` first).

    Returns:
        A :class:`Submission`.
    """
    out = Path(out)
    clus = launch.cluster(on)
    rec = recipes.launch(profile)
    options = {"shard_size": 1000, **(options or {})}
    part_size = part_size if part_size is not None else rec.preprocess_part_files
    plan = prepare(src, out, part_size, options, write=not dry_run)
    runs_root = out / ARRAY
    todo, done, active, damaged = _classify(out, plan)
    sub = Submission(plan, todo, done, active, damaged)
    res = launch.preprocess_resources(profile, clus)
    folder_ = runs_root / "submitit" / "%j"
    if dry_run:
        log(sub.summary())
        if todo:
            log(launch.plan("preprocess", profile, clus, folder=folder_.absolute(), res=res,
                            array=len(todo), after=after).summary())
        if todo or active or not (runs_root / PLAN).exists() or not merged(out):
            merge_after = ["<the array above>"] if todo else [*active.values()]
            log(launch.plan("preprocess-merge", profile, clus, folder=folder_.absolute(),
                            res=launch.cpu_job_resources("facelib-preprocess-merge", profile, clus),
                            after=merge_after if clus.executor == "slurm" else ()).summary())
        return sub
    for k in damaged:
        (part_dir(out, k) / DONE).unlink(missing_ok=True)
    if todo:
        fns = [PartJob(out, k, workers, retry_rejects) for k in todo]
        sub.jobs = launch.submit_array(fns, [part_dir(out, k).name for k in todo], on=clus, res=res,
                                       results_root=runs_root, name="preprocess", folder=folder_,
                                       after=after if clus.executor == "slurm" else ())
    if clus.executor != "slurm":  # no dependencies: wait for the parts here, then merge
        from submitit.core.utils import FailedJobError

        for k, job in zip(todo, sub.jobs):
            try:
                launch.wait(job, float("inf") if wait_s is None else wait_s)
            except (FailedJobError, launch.JobEndedWithoutResult) as e:
                last = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
                raise RuntimeError(f"part {k} failed ({last[-1][:200] if last else 'no message'}); log: "
                                   f"{job.paths.stderr}; rerun the same command to resume") from None
        sub.merged_now = merge(out) if not merged(out) else None
    elif not sub.jobs and "merge" in (pending := launch.active_runs(["merge"], runs_root)):
        sub.active_merge = pending["merge"].job_id  # the merge of an earlier submission still waits
    elif sub.jobs or active:
        ids = sorted({str(j.job_id).split("_")[0] for j in sub.jobs} | {j.split("_")[0] for j in active.values()})
        sub.merge_job = launch.submit(MergeJob(out), run="merge", on=clus,
                                      res=launch.cpu_job_resources("facelib-preprocess-merge", profile, clus),
                                      results_root=runs_root, folder=folder_, after=ids)
    elif not merged(out):
        sub.merged_now = merge(out)
    log(sub.summary())
    if sub.merge_job is not None and wait_s is not None:
        _wait_merge(sub.merge_job, wait_s, out)
        m = json.loads((runs_root / MERGED).read_text())
        log(f"merged: {m['faces']} faces from {m['files']} files ({m['rejects']} rejected, "
            f"{m['errors']} unreadable) -> {out}/{folder.MANIFEST}")
    return sub
