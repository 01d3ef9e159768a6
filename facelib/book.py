"""The executable book: Jupytext sources -> papermill -> Jupyter Book 1 -> static HTML.

Pipeline (``facelib book``):

1. The pages are the ``book/_generated/NN_name`` entries of ``_toc.yml``; each comes from
   ``notebooks/NN_name.py`` (Jupytext py:percent with a cell tagged ``parameters``).
2. Parameters: the profile file ``notebooks/profiles/<profile>.yaml`` (one mapping per page),
   then ``-p name value`` overrides; ``profile`` is injected into every page that declares it.
   All are validated against the page's ``parameters`` cell *before* anything runs: an unknown
   name or a value of the wrong type is an error naming it (papermill alone would inject it).
3. Execution: papermill with ``kernel_name="python3"`` in ``notebooks/``, written atomically to
   ``book/_generated/NN_name.ipynb`` (git-ignored build products).
4. Build: ``plotly.min.js`` is copied into ``book/_static`` and ``jupyter-book build`` runs with
   execution off and warnings as errors (``-W -n --keep-going``) into ``_build/html``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from facelib import recipes

__all__ = [
    "BookError",
    "Page",
    "find_root",
    "pages",
    "Parameter",
    "page_parameters",
    "load_profile",
    "resolve_parameters",
    "execute_page",
    "build_html",
    "build",
    "add_cli",
]

GENERATED = Path("book") / "_generated"
NOTEBOOKS = Path("notebooks")
STATIC = Path("book") / "_static"
BUILD = Path("_build")


class BookError(RuntimeError):
    """A page, profile or parameter problem, or a failed execution or build."""


@dataclass(frozen=True)
class Page:
    """One executed page of the book."""

    name: str  # e.g. "00_recipes"
    source: Path  # notebooks/00_recipes.py
    output: Path  # book/_generated/00_recipes.ipynb


def find_root(start: Path | str | None = None) -> Path:
    """The book's root: the nearest folder at or above ``start`` holding ``_toc.yml``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    raise BookError(f"no _toc.yml and _config.yml at or above {here}: run inside the repository or pass --root")


def _toc_files(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(str(node["file"]))
        if "root" in node:
            out.append(str(node["root"]))
        for value in node.values():
            if isinstance(value, (list, dict)):
                out.extend(_toc_files(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_toc_files(item))
    return out


def toc_files(root: Path) -> list[str]:
    """Every document named in ``_toc.yml`` (without suffix), in order."""
    with open(root / "_toc.yml", encoding="utf-8") as fh:
        toc = yaml.safe_load(fh)
    return _toc_files(toc)


def pages(root: Path) -> list[Page]:
    """The executed pages, in ``_toc.yml`` order; each must have its ``notebooks/`` source."""
    out = []
    prefix = GENERATED.as_posix() + "/"
    for entry in toc_files(root):
        if not entry.startswith(prefix):
            continue
        name = entry[len(prefix):]
        source = root / NOTEBOOKS / f"{name}.py"
        if not source.is_file():
            raise BookError(f"_toc.yml lists {entry} but its source {source} does not exist")
        out.append(Page(name, source, root / GENERATED / f"{name}.ipynb"))
    return out


def _parameters_cell(source: Path) -> str:
    import jupytext

    nb = jupytext.read(source)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    raise BookError(f"{source}: no cell tagged 'parameters'")


_NO_DEFAULT = object()
_BUILTIN_TYPES: dict[str, type] = {t.__name__: t for t in (int, float, str, bool, list, dict, tuple)}


@dataclass(frozen=True)
class Parameter:
    """One variable of a page's ``parameters`` cell."""

    name: str
    default: Any  # _NO_DEFAULT when the default is not a Python literal
    types: tuple[type, ...] | None  # accepted types; None accepts anything

    def describe(self) -> str:
        if self.types is None:
            return "any value"
        return " | ".join("None" if t is type(None) else t.__name__ for t in self.types)


def _annotation_types(node: ast.expr, source: Path) -> tuple[type, ...]:
    """Types named by a simple annotation: ``int``, ``float | None``, ``list`` ..."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _annotation_types(node.left, source) + _annotation_types(node.right, source)
    if isinstance(node, ast.Constant) and node.value is None:
        return (type(None),)
    if isinstance(node, ast.Name) and node.id in _BUILTIN_TYPES:
        return (_BUILTIN_TYPES[node.id],)
    raise BookError(f"{source}: parameter annotation {ast.unparse(node)!r} is not supported "
                    "(use int, float, str, bool, list, dict, None joined with |)")


def page_parameters(source: Path) -> dict[str, Parameter]:
    """The variables of a page's ``parameters`` cell, with their defaults and accepted types.

    Types come from the annotation when there is one (``n: int | None = None``), else from the
    type of the default; a default of ``None`` or a non-literal without annotation accepts
    any value.
    """
    code = _parameters_cell(source)
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise BookError(f"{source}: the parameters cell is not valid Python ({exc})") from exc
    params: dict[str, Parameter] = {}
    for stmt in tree.body:
        annotation = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value, annotation = [stmt.target], stmt.value, stmt.annotation
        else:
            continue
        try:
            default = ast.literal_eval(value)
        except ValueError:
            default = _NO_DEFAULT
        if annotation is not None:
            types: tuple[type, ...] | None = _annotation_types(annotation, source)
        elif default is _NO_DEFAULT or default is None:
            types = None
        else:
            types = (type(default),)
        for target in targets:
            if isinstance(target, ast.Name):
                params[target.id] = Parameter(target.id, default, types)
    return params


def load_profile(root: Path, profile: str) -> dict[str, dict[str, Any]]:
    """The per-page parameters of ``notebooks/profiles/<profile>.yaml``."""
    if profile not in recipes.PROFILES:
        raise BookError(f"unknown profile {profile!r}; choose one of {', '.join(recipes.PROFILES)}")
    path = root / NOTEBOOKS / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        raise BookError(f"profile file {path} does not exist")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise BookError(f"{path}: expected a mapping of page name -> mapping of parameters")
    return data


def _fits(value: Any, types: tuple[type, ...]) -> bool:
    for t in types:
        if t is bool and isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t in (list, tuple) and isinstance(value, (list, tuple)):
            return True
        if t not in (bool, int, float, list, tuple) and isinstance(value, t):
            return True
    return False


def _coerce(page: str, param: Parameter, value: Any, from_cli: bool) -> Any:
    """Check ``value`` against the parameter's types; command-line strings are parsed first."""
    if from_cli and isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if param.types is None or _fits(parsed, param.types):
            value = parsed
        elif str in param.types:
            value = value  # keep the raw string, e.g. a path that looks like a number
        else:
            value = parsed
    if param.types is not None and not _fits(value, param.types):
        raise BookError(
            f"{page}: parameter {param.name!r} expects {param.describe()}, "
            f"got {value!r} ({type(value).__name__})"
        )
    if param.types is not None and float in param.types and isinstance(value, int) and int not in param.types \
            and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, tuple):
        value = list(value)
    return value


def resolve_parameters(
    page: Page, profile: str, profile_params: Mapping[str, Any], cli_params: Mapping[str, str]
) -> dict[str, Any]:
    """The validated parameters to inject into ``page``.

    Raises:
        BookError: a name the page's ``parameters`` cell does not define, or a wrong type.
    """
    declared = page_parameters(page.source)
    out: dict[str, Any] = {}
    if "profile" in declared:
        out["profile"] = profile
    for source_name, params, from_cli in (
        (f"notebooks/profiles/{profile}.yaml", profile_params, False),
        ("the command line", cli_params, True),
    ):
        for name, value in params.items():
            if name not in declared:
                raise BookError(
                    f"{page.name}: unknown parameter {name!r} (from {source_name}); "
                    f"the page's parameters are: {', '.join(declared) or 'none'}"
                )
            if name == "profile" and value != profile:
                raise BookError(f"{page.name}: set the profile with --profile, not as a parameter")
            out[name] = _coerce(page.name, declared[name], value, from_cli)
    return out


def execute_page(page: Page, parameters: Mapping[str, Any], root: Path) -> float:
    """Execute one page with papermill into ``book/_generated/`` (atomically).

    Returns:
        Seconds taken.

    Raises:
        BookError: the page failed; the failed notebook is kept as ``NN_name.failed.ipynb``.
    """
    import jupytext
    import papermill

    nb = jupytext.read(page.source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    page.output.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = page.output.parent / ".partial"
    tmp_dir.mkdir(exist_ok=True)
    tmp = tmp_dir / page.output.name
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            nb,
            str(tmp),
            parameters=dict(parameters),
            kernel_name="python3",
            cwd=str(root / NOTEBOOKS),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as exc:
        failed = page.output.with_suffix(".failed.ipynb")
        if tmp.exists():
            os.replace(tmp, failed)
        raise BookError(
            f"{page.name}: cell {exc.exec_count} raised {exc.ename}: {exc.evalue} (executed notebook: {failed})"
        ) from exc
    os.replace(tmp, page.output)
    page.output.with_suffix(".failed.ipynb").unlink(missing_ok=True)
    return time.perf_counter() - start


def build_html(root: Path) -> Path:
    """Run ``jupyter-book build`` on the executed pages: execution off, warnings as errors.

    Returns:
        The folder holding ``index.html``.
    """
    from facelib import viz

    viz.copy_plotly_js(root / STATIC)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    html = root / BUILD / "html"
    if not (html / "index.html").is_file():
        raise BookError(f"jupyter-book reported success but {html / 'index.html'} is missing")
    return html


def _select(all_pages: Sequence[Page], only: Sequence[str]) -> list[Page]:
    chosen = []
    by_name = {p.name: p for p in all_pages}
    for want in only:
        key = Path(want).stem
        match = [p for p in all_pages if p.name == key or p.name.split("_", 1)[0] == key]
        if len(match) != 1:
            raise BookError(f"unknown page {want!r}; pages: {', '.join(by_name)}")
        chosen.append(match[0])
    return chosen


def build(
    root: Path | str | None = None,
    profile: str = "demo",
    only: Sequence[str] = (),
    params: Mapping[str, str] | None = None,
    html: bool = True,
    log: Any = print,
) -> dict[str, float]:
    """Execute the pages of ``profile`` and build the HTML book.

    Args:
        root: the book root (default: found from the current directory).
        profile: ``demo`` or ``paper``.
        only: pages to (re)execute; others are executed only if they have never been.
        params: ``name -> value`` overrides (strings, as typed on the command line) for the
            pages in ``only`` (or every page that declares the name when ``only`` is empty).
        html: build the HTML after executing.

    Returns:
        Seconds per executed page (plus ``"html"`` for the build).
    """
    root = find_root(root)
    params = dict(params or {})
    all_pages = pages(root)
    profile_data = load_profile(root, profile)
    unknown_pages = set(profile_data) - {p.name for p in all_pages}
    if unknown_pages:
        raise BookError(
            f"notebooks/profiles/{profile}.yaml names pages that _toc.yml does not list: {', '.join(sorted(unknown_pages))}"
        )
    selected = _select(all_pages, only) if only else list(all_pages)
    # Pages never executed are executed too, so that the book is complete.
    targets = selected + [p for p in all_pages if p not in selected and not p.output.is_file()]
    if params and not only:
        declared_any = set().union(*(page_parameters(p.source) for p in all_pages))
        missing = sorted(set(params) - declared_any)
        if missing:
            raise BookError(f"unknown parameter(s) {', '.join(missing)}: no page declares them")
    # Validate every page's parameters before executing anything.
    plan = []
    for page in targets:
        cli = params if page in selected else {}
        if not only:  # without --only, a -p override goes to every page that declares it
            declared = page_parameters(page.source)
            cli = {k: v for k, v in cli.items() if k in declared}
        plan.append((page, resolve_parameters(page, profile, profile_data.get(page.name, {}), cli)))
    timings: dict[str, float] = {}
    for i, (page, page_params) in enumerate(plan, 1):
        log(f"[{i}/{len(plan)}] executing {page.name} ({profile}) {json.dumps(page_params, default=str)}")
        timings[page.name] = execute_page(page, page_params, root)
        log(f"      {page.name}: {timings[page.name]:.1f} s")
    if html:
        start = time.perf_counter()
        out = build_html(root)
        timings["html"] = time.perf_counter() - start
        log(f"book built in {timings['html']:.1f} s: {out / 'index.html'}")
    return timings


def _cmd(args: argparse.Namespace) -> int:
    try:
        build(
            root=args.root,
            profile=args.profile,
            only=args.only or (),
            params=dict(args.param or []),
            html=not args.no_html,
        )
    except BookError as exc:
        print(f"facelib book: error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_cli(sub: Any) -> None:
    """``facelib book``: execute the pages and build the HTML book."""
    p = sub.add_parser(
        "book",
        help="execute the notebooks with a profile and build the HTML book",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--profile", default="demo", choices=recipes.PROFILES, help="parameter profile (default: demo)")
    p.add_argument("--only", action="append", metavar="PAGE",
                   help="(re)execute only this page (e.g. 00_recipes); repeatable")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override a page parameter; validated against the page's parameters cell")
    p.add_argument("--root", default=None, help="book root holding _toc.yml (default: found from the cwd)")
    p.add_argument("--no-html", action="store_true", help="execute only; do not build the HTML")
    p.set_defaults(func=_cmd)
