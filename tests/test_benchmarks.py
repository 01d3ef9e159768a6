"""The benchmark scripts import and keep a command-line entry point (nothing here runs them:
they measure speed, and tests never assert wall-clock times)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_benchmarks_found() -> None:
    assert len(BENCHMARKS) >= 10


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_imports(path: Path) -> None:
    spec = importlib.util.spec_from_file_location(f"_bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
    assert module.__doc__ and "benchmarks/" in module.__doc__, f"{path.name}: docstring should show how to run it"


def test_measured_numbers_as_page_02_quotes_them(tmp_path) -> None:
    from facelib import measured

    note = measured.flickr_note()
    assert "photos/s" in note and "1,793,119 face boxes" in note and "Explorer" in note
    with pytest.raises(FileNotFoundError, match="run benchmarks/bench_nothing.py"):
        measured.load("bench_nothing", tmp_path)
