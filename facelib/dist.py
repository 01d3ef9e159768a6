"""torch.distributed initialisation from the job environment (submitit, SLURM or torchrun).

Every task of a job learns its place from the environment, never from hard-coded hosts:

* global rank, local rank, world size, node index: submitit's ``JobEnvironment`` inside a
  submitit job (slurm or local executor); ``SLURM_PROCID``/``SLURM_LOCALID``/``SLURM_NTASKS``
  under a bare ``srun``; ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` under ``torchrun``;
* master address: the first host of the job's node list (``SLURM_JOB_NODELIST`` expanded by
  :func:`expand_nodelist`); ``127.0.0.1`` when the job holds one node, so a single-node job
  never depends on its host name resolving;
* master port: a port that was free on the master when rank 0 looked (:func:`free_port`), sent
  to the other tasks through a file in the job's shared submitit folder, named after the job id
  and the requeue count so that a requeued job never reads the port of its previous run.

The backend is NCCL when CUDA is available and gloo otherwise (supplement 1.1 trains on 64
GPUs with synchronised BN; the tests run gloo on CPU). The official SwAV scripts read the world
size from the first character of ``SLURM_TASKS_PER_NODE`` and build the master address from
fixed offsets of ``SLURM_NODELIST``; neither is done here.

Used by :mod:`facelib.launch` (``ProbeJob``) and the training jobs.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "DistEnv",
    "DistError",
    "detect",
    "expand_nodelist",
    "free_port",
    "init_distributed",
    "default_backend",
    "resolve_host",
]


class DistError(RuntimeError):
    """The environment does not describe a consistent distributed job."""


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in its job.

    Attributes:
        rank: global rank, 0 .. world_size - 1.
        local_rank: rank among the tasks of this node (selects the GPU).
        world_size: number of tasks in the job.
        node: index of this node, 0 .. num_nodes - 1.
        num_nodes: nodes in the job.
        hostnames: the job's hosts, in node-list order.
        job_id: scheduler job id (``"123"`` or ``"123_4"`` for an array task); ``""`` outside a job.
        restart: how many times the job was requeued (``SLURM_RESTART_COUNT``).
        source: ``"submitit"``, ``"slurm"``, ``"torchrun"`` or ``"single"``.
        rendezvous_dir: shared folder where rank 0 publishes the port (None: derive it).
    """

    rank: int
    local_rank: int
    world_size: int
    node: int
    num_nodes: int
    hostnames: tuple[str, ...]
    job_id: str
    restart: int
    source: str
    rendezvous_dir: Path | None = None

    @property
    def master_addr(self) -> str:
        """Address of rank 0: the first host of the node list, 127.0.0.1 on a single node."""
        env_addr = os.environ.get("MASTER_ADDR") if self.source == "torchrun" else None
        if env_addr:
            return env_addr
        if self.num_nodes <= 1 or not self.hostnames:
            return "127.0.0.1"
        return self.hostnames[0]

    @property
    def is_master(self) -> bool:
        return self.rank == 0


def expand_nodelist(nodelist: str) -> list[str]:
    """Expand a SLURM host list: ``"gpu[01-03,7],login"`` -> ``gpu01 gpu02 gpu03 gpu7 login``.

    Zero padding of ranges is kept (``[08-10]`` gives ``08 09 10``); several bracket groups in
    one name multiply out (``r[1-2]n[1-2]`` gives 4 hosts).

    Raises:
        DistError: unbalanced brackets or a malformed range, naming the list.
    """
    hosts: list[str] = []
    for item in _split_top_level(nodelist):
        hosts.extend(_expand_item(item, nodelist))
    return hosts


def _split_top_level(text: str) -> list[str]:
    items, depth, cur = [], 0, []
    for ch in text.strip():
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise DistError(f"node list {text!r}: unbalanced ']'")
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise DistError(f"node list {text!r}: unbalanced '['")
    items.append("".join(cur))
    return [i for i in items if i]


def _expand_item(item: str, whole: str) -> list[str]:
    m = re.search(r"\[([^\]]*)\]", item)
    if m is None:
        return [item]
    head, tail = item[: m.start()], item[m.end():]
    out = []
    for part in m.group(1).split(","):
        rng = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if rng is None:
            raise DistError(f"node list {whole!r}: bad range {part!r}")
        lo, hi = rng.group(1), rng.group(2) or rng.group(1)
        if int(hi) < int(lo):
            raise DistError(f"node list {whole!r}: range {part!r} goes backwards")
        width = len(lo)
        for k in range(int(lo), int(hi) + 1):
            for rest in _expand_item(tail, whole):
                out.append(f"{head}{k:0{width}d}{rest}")
    return out


def _int(env: Mapping[str, str], key: str, default: int | None = None) -> int:
    value = env.get(key)
    if value is None or value == "":
        if default is None:
            raise DistError(f"environment variable {key} is not set")
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise DistError(f"environment variable {key}={value!r} is not an integer") from exc


def detect(env: Mapping[str, str] | None = None) -> DistEnv:
    """Read this process's place in its job from the environment.

    Args:
        env: the environment to read (default ``os.environ``; tests pass a dict).

    Returns:
        The :class:`DistEnv`; a one-process world when no job environment is found.

    Raises:
        DistError: the variables contradict each other (e.g. rank >= world size).
    """
    env = os.environ if env is None else env
    restart = _int(env, "SLURM_RESTART_COUNT", 0)
    executor = env.get("SUBMITIT_EXECUTOR", "")
    if executor in ("slurm", "local") and env is os.environ:
        import submitit

        je = submitit.JobEnvironment()
        hosts = tuple(je.hostnames) if executor == "slurm" else (socket.gethostname(),)
        # The job's own folder (``%j`` resolved), shared by its tasks.
        folder = Path(je.paths.folder) if env.get("SUBMITIT_FOLDER") else None
        out = DistEnv(
            rank=je.global_rank, local_rank=je.local_rank, world_size=je.num_tasks,
            node=je.node, num_nodes=je.num_nodes, hostnames=hosts, job_id=str(je.job_id),
            restart=restart, source="submitit", rendezvous_dir=folder,
        )
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env and "SLURM_JOB_ID" in env:
        hosts = tuple(expand_nodelist(env.get("SLURM_JOB_NODELIST", env.get("SLURM_NODELIST", ""))))
        array = env.get("SLURM_ARRAY_JOB_ID")
        job_id = f"{array}_{env['SLURM_ARRAY_TASK_ID']}" if array else env["SLURM_JOB_ID"]
        out = DistEnv(
            rank=_int(env, "SLURM_PROCID"), local_rank=_int(env, "SLURM_LOCALID", 0),
            world_size=_int(env, "SLURM_NTASKS"), node=_int(env, "SLURM_NODEID", 0),
            num_nodes=_int(env, "SLURM_JOB_NUM_NODES", max(len(hosts), 1)), hostnames=hosts,
            job_id=job_id, restart=restart, source="slurm",
            rendezvous_dir=Path(env["FACELIB_RENDEZVOUS_DIR"]) if env.get("FACELIB_RENDEZVOUS_DIR") else None,
        )
    elif "RANK" in env and "WORLD_SIZE" in env:
        world = _int(env, "WORLD_SIZE")
        local_world = _int(env, "LOCAL_WORLD_SIZE", world)
        out = DistEnv(
            rank=_int(env, "RANK"), local_rank=_int(env, "LOCAL_RANK", 0), world_size=world,
            node=_int(env, "GROUP_RANK", 0), num_nodes=max(world // max(local_world, 1), 1),
            hostnames=(), job_id=env.get("TORCHELASTIC_RUN_ID", ""), restart=restart,
            source="torchrun",
        )
    else:
        out = DistEnv(rank=0, local_rank=0, world_size=1, node=0, num_nodes=1,
                      hostnames=(socket.gethostname(),), job_id="", restart=0, source="single")
    if not 0 <= out.rank < out.world_size:
        raise DistError(f"rank {out.rank} is outside world size {out.world_size} ({out.source})")
    if not 0 <= out.node < out.num_nodes:
        raise DistError(f"node {out.node} is outside {out.num_nodes} nodes ({out.source})")
    if out.source in ("submitit", "slurm") and out.num_nodes > 1 and len(out.hostnames) != out.num_nodes:
        raise DistError(
            f"node list has {len(out.hostnames)} hosts {out.hostnames} but the job has {out.num_nodes} nodes"
        )
    return out


def free_port(host: str = "") -> int:
    """A TCP port that was free on this machine when asked (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _derived_port(job_id: str, restart: int) -> int:
    """A port every task computes alike from the job id (used when no shared folder exists)."""
    return 20000 + zlib.crc32(f"{job_id}.{restart}".encode()) % 30000


def master_port(dist_env: DistEnv, timeout_s: float = 300.0) -> int:
    """The port of rank 0's rendezvous, agreed by every task of the job.

    Rank 0 picks a free port and writes it atomically to
    ``<rendezvous_dir>/.dist-<job>-<restart>.port``; the others wait for that file. Without a
    shared folder, the port is derived from the job id (``MASTER_PORT`` wins when set).

    Raises:
        DistError: the file did not appear within ``timeout_s`` (rank 0 died or the folder is
            not shared between the nodes), naming the file.
    """
    if os.environ.get("MASTER_PORT"):
        return _int(os.environ, "MASTER_PORT")
    if dist_env.world_size == 1:
        return free_port()
    if dist_env.rendezvous_dir is None:
        return _derived_port(dist_env.job_id, dist_env.restart)
    safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", dist_env.job_id)
    path = dist_env.rendezvous_dir / f".dist-{safe_id}-{dist_env.restart}.port"
    if dist_env.is_master:
        port = free_port()
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(str(port))
        os.replace(tmp, path)
        return port
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            text = path.read_text().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise DistError(
                f"rank {dist_env.rank}: no port from rank 0 in {path} after {timeout_s:.0f} s "
                "(is the submitit folder shared between the nodes?)"
            )
        time.sleep(0.1)


def resolve_host(host: str) -> str:
    """``host`` if it resolves, else the ``NodeAddr`` SLURM has for the node of that name.

    Real clusters resolve their node names; emulated nodes (several slurmd on one machine, as in
    the multi-node test cluster) and some container setups do not, while the controller always
    knows the address it reaches each node at.

    Raises:
        DistError: neither DNS nor ``scontrol`` knows the host.
    """
    try:
        socket.getaddrinfo(host, None)
        return host
    except socket.gaierror:
        pass
    import shutil
    import subprocess

    if shutil.which("scontrol"):
        proc = subprocess.run(["scontrol", "show", "node", host], capture_output=True, text=True,
                              timeout=30)
        m = re.search(r"\bNodeAddr=(\S+)", proc.stdout)
        if proc.returncode == 0 and m:
            return m.group(1)
    raise DistError(f"master host {host!r} does not resolve and SLURM has no NodeAddr for it")


def default_backend() -> str:
    """``"nccl"`` when CUDA is available, else ``"gloo"``."""
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def init_distributed(
    backend: str | None = None, timeout_s: float = 600.0, env: DistEnv | None = None
) -> DistEnv:
    """Initialise the default process group of this task from its job environment.

    Sets ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` for
    libraries that read them, selects the GPU ``local_rank`` (modulo the visible GPUs) under
    NCCL, and calls ``torch.distributed.init_process_group``. Does nothing but return the
    environment when a process group already exists.

    Args:
        backend: ``"gloo"``, ``"nccl"`` or None for :func:`default_backend`.
        timeout_s: how long collectives (and the rendezvous) wait for the other tasks.
        env: the job environment (default :func:`detect`).

    Returns:
        The :class:`DistEnv` the group was built from.
    """
    import torch
    import torch.distributed as dist

    dist_env = detect() if env is None else env
    if dist.is_initialized():
        return dist_env
    backend = backend or default_backend()
    if backend == "nccl":
        n = torch.cuda.device_count()
        if n == 0:
            raise DistError("backend nccl needs a GPU, and none is visible")
        torch.cuda.set_device(dist_env.local_rank % n)
    port = master_port(dist_env, timeout_s=timeout_s)
    addr = resolve_host(dist_env.master_addr)
    os.environ.update(
        MASTER_ADDR=addr, MASTER_PORT=str(port), RANK=str(dist_env.rank),
        LOCAL_RANK=str(dist_env.local_rank), WORLD_SIZE=str(dist_env.world_size),
    )
    dist.init_process_group(
        backend=backend, init_method=f"tcp://{addr}:{port}",
        rank=dist_env.rank, world_size=dist_env.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    return dist_env


def destroy() -> None:
    """Tear the default process group down if one exists."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def describe(dist_env: DistEnv) -> dict[str, Any]:
    """A JSON-ready summary of ``dist_env`` (for job logs and ``ProbeJob``)."""
    return {
        "rank": dist_env.rank, "local_rank": dist_env.local_rank,
        "world_size": dist_env.world_size, "node": dist_env.node, "num_nodes": dist_env.num_nodes,
        "hostnames": list(dist_env.hostnames), "master_addr": dist_env.master_addr,
        "job_id": dist_env.job_id, "restart": dist_env.restart, "source": dist_env.source,
    }
