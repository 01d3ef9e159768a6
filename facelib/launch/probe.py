"""The probe job: checks a job's torch.distributed wiring across its tasks (``facelib jobs probe``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from .jobs import _atomic_write_json


class ProbeJob:
    """Check a job's distributed wiring: init torch.distributed, all-reduce, report.

    Every task initialises the process group from its environment (:mod:`facelib.dist`),
    all-reduces ``rank + 1`` and all-gathers where each task runs. Rank 0 writes the report to
    ``<run_dir>/probe.json``. Run it before a long multi-node job: a wrong rank, world size or
    master address shows up here in seconds (``facelib jobs probe``).
    """

    def __init__(self, run_dir: str | Path | None = None, backend: str | None = None,
                 timeout_s: float = 120.0) -> None:
        self.run_dir = str(Path(run_dir).absolute()) if run_dir is not None else None
        self.backend, self.timeout_s = backend, timeout_s

    def __call__(self) -> dict[str, Any]:
        import torch
        import torch.distributed as torch_dist

        from facelib import dist

        env = dist.init_distributed(self.backend, timeout_s=self.timeout_s)
        try:
            backend = torch_dist.get_backend()
            device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
            t = torch.tensor([float(env.rank + 1)], device=device)
            torch_dist.all_reduce(t)
            me = {**dist.describe(env), "host": socket.gethostname(),
                  "node_name": os.environ.get("SLURMD_NODENAME"),
                  "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                  "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID")}
            everyone: list[Any] = [None] * env.world_size
            torch_dist.all_gather_object(everyone, me)
        finally:
            dist.destroy()
        report = {**me, "backend": backend, "sum": float(t.item()),
                  "expected": env.world_size * (env.world_size + 1) / 2, "tasks": everyone}
        if self.run_dir is not None and env.rank == 0:
            Path(self.run_dir).mkdir(parents=True, exist_ok=True)
            _atomic_write_json(Path(self.run_dir) / "probe.json", report)
        return report
