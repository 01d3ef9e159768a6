"""Shared test configuration.

Fast tests run by default; tests marked ``slow`` (notebook executions, the book build, the
browser check, the local SLURM cluster) are run by ``make test`` as well.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where ``_toc.yml`` lives)."""
    return REPO
