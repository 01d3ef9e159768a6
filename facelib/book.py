"""The executable book: Jupytext sources -> papermill -> Jupyter Book 1 -> static HTML.

Pipeline (``facelib book``):

1. The pages are the ``book/_generated/NN_name`` entries of ``_toc.yml``; each comes from
   ``notebooks/NN_name.py`` (Jupytext py:percent with a cell tagged ``parameters``).
2. Parameters, later sources winning: the page's ``parameters`` cell, the profile (a name,
   ``notebooks/profiles/<name>.yaml``, or the path of a profile file: one mapping per page and
   ``profile: demo|paper`` naming the recipes it uses), ``--params-file FILE.yaml`` (a flat
   ``name: value`` mapping, as papermill's ``-f``, and/or one mapping per page), then
   ``-p NAME VALUE``. ``profile`` is injected into every page that declares it. A flat name
   goes to every executed page that declares it and is an error only if none does. Values are
   validated against the page's ``parameters`` cell *before* anything runs (``None``/``null``
   and ``1e6`` for an int are understood); ``--list-params PAGE`` lists them.
3. Which pages run: the ``--only`` pages; else, with parameters given, the pages that declare
   them (or that the parameters file names); else all. Each is executed with papermill (our own
   parameter injection, so no "unknown parameter" warning; the kernel talks over IPC, so no
   TCP warning) into ``book/_generated/NN_name.ipynb``, atomically. The executed notebook gets
   a "rerun this page" box, its parameters and setup cells tagged ``hide-input`` (the
   injected cell ``remove-cell``: its values are in the box) and a footer (commit, date,
   profile, package versions, execution time). Pages run from any working directory.
   ``--jobs N`` runs up to N pages at once (``make book``: 2): a page starts when the pages it
   reads from have finished, as its Jupytext header declares (``facelib: after: [...]``,
   earlier pages only; without it, every earlier page); among the pages ready, the one the
   most pages wait for starts first (page 03). Each page's own work still uses the
   machine's cores; what overlaps is one page's imports, renders and figures with another's
   training.
4. Build (when every page has been executed): ``plotly.min.js`` and MathJax are copied from
   the installed packages into ``book/_static`` and ``jupyter-book build`` runs with execution
   off and warnings as errors (``-W -n --keep-going``) into ``_build/html``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as _dt
import html
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from facelib import recipes

__all__ = [
    "BookError",
    "Page",
    "find_root",
    "repo_path",
    "pages",
    "Parameter",
    "page_parameters",
    "Profile",
    "load_profile",
    "load_params_file",
    "resolve_parameters",
    "plan",
    "parameters_table",
    "read_page",
    "execute_page",
    "build_html",
    "build",
    "add_cli",
]

GENERATED = Path("book") / "_generated"
NOTEBOOKS = Path("notebooks")
STATIC = Path("book") / "_static"
BUILD = Path("_build")
#: Set in the kernels that ``facelib book`` starts: the book loads plotly.js once per page.
BOOK_ENV = "FACELIB_BOOK"
#: Packages named in every page's footer.
FOOTER_PACKAGES = ("facelib", "torch", "numpy", "pandas", "opencv-python-headless", "onnxruntime",
                   "matplotlib", "plotly", "papermill", "jupyter-book")


class BookError(RuntimeError):
    """A page, profile or parameter problem, or a failed execution or build."""


@dataclass(frozen=True)
class Page:
    """One executed page of the book."""

    name: str  # e.g. "00_recipes"
    source: Path  # notebooks/00_recipes.py
    output: Path  # book/_generated/00_recipes.ipynb


def _is_root(folder: Path) -> bool:
    return (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file()


def find_root(start: Path | str | None = None) -> Path:
    """The book's root: the nearest folder at or above ``start`` holding ``_toc.yml``.

    Without ``start``: searched from the current directory, then from this package's location
    (the checkout of an editable install), so that a page runs from any working directory.
    """
    here = Path(start or Path.cwd()).resolve()
    candidates = [here, *here.parents]
    if start is None:
        package = Path(__file__).resolve().parent
        candidates += [package, *package.parents]
    for folder in candidates:
        if _is_root(folder):
            return folder
    raise BookError(f"no _toc.yml and _config.yml at or above {here}: run inside the repository or pass --root")


def repo_path(*parts: str) -> Path:
    """A path inside the repository, whatever the working directory (e.g. ``repo_path("benchmarks")``)."""
    return find_root().joinpath(*parts)


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


def _parameters_index(nb: Any) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return i
    return -1


def _parameters_cell(source: Path) -> str:
    import jupytext

    nb = jupytext.read(source)
    i = _parameters_index(nb)
    if i < 0:
        raise BookError(f"{source}: no cell tagged 'parameters'")
    return nb.cells[i].source


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------
_NO_DEFAULT = object()
_BUILTIN_TYPES: dict[str, type] = {t.__name__: t for t in (int, float, str, bool, list, dict, tuple)}
_NONE_WORDS = ("None", "none", "null", "Null", "NULL", "~")


@dataclass(frozen=True)
class Parameter:
    """One variable of a page's ``parameters`` cell."""

    name: str
    default: Any  # _NO_DEFAULT when the default is not a Python literal
    types: tuple[type, ...] | None  # accepted types; None accepts anything
    comment: str = ""  # the comment at the end of its line

    def describe(self) -> str:
        if self.types is None:
            return "any value"
        return " | ".join("None" if t is type(None) else t.__name__ for t in self.types)

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


def _annotation_types(node: ast.expr, source: Path) -> tuple[type, ...]:
    """Types named by a simple annotation: ``int``, ``float | None``, ``Optional[list]`` ..."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _annotation_types(node.left, source) + _annotation_types(node.right, source)
    if isinstance(node, ast.Constant) and node.value is None:
        return (type(None),)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a string annotation
        return _annotation_types(ast.parse(node.value, mode="eval").body, source)
    if isinstance(node, ast.Name) and node.id in _BUILTIN_TYPES:
        return (_BUILTIN_TYPES[node.id],)
    if (isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Name, ast.Attribute))
            and (getattr(node.value, "id", None) or getattr(node.value, "attr", None)) == "Optional"):
        return _annotation_types(node.slice, source) + (type(None),)
    raise BookError(f"{source}: parameter annotation {ast.unparse(node)!r} is not supported "
                    "(use int, float, str, bool, list, dict, None joined with |, or Optional[...])")


def _line_comments(code: str) -> dict[int, str]:
    """Line number (1-based) -> the text of the comment ending that line."""
    out: dict[int, str] = {}
    with contextlib.suppress(tokenize.TokenError, IndentationError):
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def page_parameters(source: Path) -> dict[str, Parameter]:
    """The variables of a page's ``parameters`` cell, with defaults, accepted types and comments.

    Types come from the annotation when there is one (``n: int | None = None`` or
    ``n: Optional[int] = None``), else from the type of the default; a default of ``None`` or a
    non-literal without annotation accepts any value.
    """
    code = _parameters_cell(source)
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise BookError(f"{source}: the parameters cell is not valid Python ({exc})") from exc
    comments = _line_comments(code)
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
        comment = comments.get(stmt.lineno, "") or comments.get(stmt.end_lineno or stmt.lineno, "")
        for target in targets:
            if isinstance(target, ast.Name):
                params[target.id] = Parameter(target.id, default, types, comment)
    return params


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


def _read_text_value(text: str) -> Any:
    """A value typed as text: YAML (``null``, ``true``, ``[1, 2]``), plus ``None`` and ``1e6``."""
    if text.strip() in _NONE_WORDS:
        return None
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(parsed, str):  # YAML 1.1 reads "1e6" and "1e-3" (no dot) as strings
        try:
            return float(parsed)
        except ValueError:
            pass
    return parsed


def _integral(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


def _coerce(page: str, param: Parameter, value: Any, from_text: bool) -> Any:
    """Check ``value`` against the parameter's types; text (command line) is parsed first.

    A string from a YAML file is also parsed when the parameter does not take strings, so
    that ``max_photos: 1e6`` or ``tags: None`` in a file mean what they say.
    """
    types = param.types
    if isinstance(value, str) and (from_text or (types is not None and str not in types)):
        parsed = _read_text_value(value)
        if types is None or _fits(parsed, types) or str not in types:
            value = parsed
        elif parsed is None and type(None) in types:
            value = None
        # else: keep the raw string, e.g. a path that looks like a number
    if types is not None and int in types and float not in types:
        value = _integral(value)
    if types is not None and not _fits(value, types):
        raise BookError(
            f"{page}: parameter {param.name!r} expects {param.describe()}, "
            f"got {value!r} ({type(value).__name__})"
        )
    if types is not None and float in types and int not in types and isinstance(value, int) \
            and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, tuple):
        value = list(value)
    return value


# --------------------------------------------------------------------------------------------
# Profiles and parameter files
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """A profile file: the recipes it uses (``demo`` or ``paper``) and per-page parameters."""

    name: str  # recipes.PROFILES
    path: Path
    pages: dict[str, dict[str, Any]]

    def get(self, page: str, default: Any = None) -> Any:
        return self.pages.get(page, default)


def _read_yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        raise BookError(f"{what} {path} does not exist")
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise BookError(f"{path}: not valid YAML ({exc})") from exc


def load_profile(root: Path, profile: str | Path) -> Profile:
    """A profile by name (``notebooks/profiles/<name>.yaml``) or by path (any ``.yaml`` file).

    The file maps page names to mappings of parameters; its ``profile:`` key names the recipes
    the pages use (``demo`` or ``paper``; a shipped profile's key must be its own name).
    """
    spec = str(profile)
    by_name = spec in recipes.PROFILES
    path = root / NOTEBOOKS / "profiles" / f"{spec}.yaml" if by_name else Path(spec).expanduser()
    if not by_name and path.suffix not in (".yaml", ".yml"):
        raise BookError(f"unknown profile {spec!r}: give one of {', '.join(recipes.PROFILES)} or the path "
                        "of a profile file (.yaml)")
    data = _read_yaml(path, "profile file") or {}
    if not isinstance(data, dict):
        raise BookError(f"{path}: expected a mapping with 'profile:' and one mapping of parameters per page")
    name = data.pop("profile", spec if by_name else None)
    if name not in recipes.PROFILES:
        raise BookError(f"{path}: 'profile:' must name the recipes the pages use, one of "
                        f"{', '.join(recipes.PROFILES)} (got {name!r})")
    if by_name and name != spec:
        raise BookError(f"{path}: says 'profile: {name}' but is the {spec} profile")
    bad = [k for k, v in data.items() if not isinstance(v, dict)]
    if bad:
        raise BookError(f"{path}: expected a mapping of parameters for each page; {', '.join(map(str, bad))} "
                        "is not one")
    return Profile(name=name, path=path, pages={str(k): dict(v) for k, v in data.items()})


def load_params_file(path: Path | str, page_names: Sequence[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A ``--params-file``: flat ``name: value`` entries and/or ``page_name: {name: value}``.

    Returns:
        ``(flat, per_page)``.
    """
    path = Path(path).expanduser()
    data = _read_yaml(path, "parameters file") or {}
    if not isinstance(data, dict):
        raise BookError(f"{path}: expected a mapping of parameter names (or page names) to values")
    flat: dict[str, Any] = {}
    per_page: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        key = str(key)
        if key in page_names:
            if not isinstance(value, dict):
                raise BookError(f"{path}: {key} is a page; give it a mapping of parameters")
            per_page[key] = dict(value)
        elif key == "profile":
            raise BookError(f"{path}: set the profile with --profile, not in a parameters file")
        else:
            flat[key] = value
    return flat, per_page


def resolve_parameters(
    page: Page,
    profile: str,
    profile_params: Mapping[str, Any],
    cli_params: Mapping[str, Any],
    file_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The validated parameters to inject into ``page``.

    Args:
        profile: the recipes profile (``demo`` or ``paper``), injected as ``profile``.
        profile_params: the profile file's values for this page.
        cli_params: values typed on the command line (text, parsed here).
        file_params: values from a ``--params-file`` (applied between the two).

    Raises:
        BookError: a name the page's ``parameters`` cell does not define, or a wrong type.
    """
    declared = page_parameters(page.source)
    out: dict[str, Any] = {}
    if "profile" in declared:
        out["profile"] = profile
    for source_name, params, from_text in (
        ("the profile", profile_params, False),
        ("the parameters file", file_params or {}, False),
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
            out[name] = _coerce(page.name, declared[name], value, from_text)
    return out


def _select(all_pages: Sequence[Page], only: Sequence[str]) -> list[Page]:
    chosen = []
    by_name = {p.name: p for p in all_pages}
    for want in only:
        key = Path(want).stem
        match = [p for p in all_pages if p.name == key or p.name.split("_", 1)[0] == key]
        if len(match) != 1:
            raise BookError(f"unknown page {want!r}; pages: {', '.join(by_name)}")
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen


def plan(
    root: Path,
    profile: str | Path = "demo",
    only: Sequence[str] = (),
    params: Mapping[str, str] | None = None,
    params_file: Path | str | None = None,
) -> tuple[Profile, list[tuple[Page, dict[str, Any]]]]:
    """Which pages run, with which validated parameters (nothing is executed).

    Pages: the ``only`` pages; else, with parameters given, the pages that declare one of them
    or that the parameters file names; else every page. A flat name (``-p`` or a flat entry of
    the parameters file) goes to the selected pages that declare it, and is an error if none
    does.
    """
    all_pages = pages(root)
    names = [p.name for p in all_pages]
    prof = load_profile(root, profile)
    unknown_pages = sorted(set(prof.pages) - set(names))
    if unknown_pages:
        raise BookError(f"{prof.path} names pages that _toc.yml does not list: {', '.join(unknown_pages)}")
    cli = dict(params or {})
    flat, per_page = load_params_file(params_file, names) if params_file is not None else ({}, {})
    declared = {p.name: page_parameters(p.source) for p in all_pages}
    wanted = set(cli) | set(flat)
    if only:
        selected = _select(all_pages, only)
        stray = sorted(set(per_page) - {p.name for p in selected})
        if stray:
            raise BookError(f"{params_file} sets parameters of {', '.join(stray)}, which --only does not select")
    elif wanted or per_page:
        selected = [p for p in all_pages if wanted & set(declared[p.name]) or p.name in per_page]
    else:
        selected = list(all_pages)
    for name in sorted(wanted):
        if name == "profile":
            raise BookError("set the profile with --profile, not as a parameter")
        if not any(name in declared[p.name] for p in selected):
            owners = [p.name for p in all_pages if name in declared[p.name]]
            if not only:
                raise BookError(f"unknown parameter {name!r}: no page declares it")
            have = "; ".join(f"{p.name}: {', '.join(declared[p.name])}" for p in selected)
            where = f"{', '.join(owners)} does" if owners else "no page does"
            raise BookError(f"unknown parameter {name!r}: none of the selected pages declares it ({where}). "
                            f"Their parameters: {have}")
    out = []
    for page in selected:
        mine = declared[page.name]
        file_params = {k: v for k, v in flat.items() if k in mine}
        file_params.update(per_page.get(page.name, {}))
        out.append((page, resolve_parameters(
            page, prof.name, prof.get(page.name, {}),
            {k: v for k, v in cli.items() if k in mine}, file_params)))
    return prof, out


def _show(value: Any) -> str:
    if value is _NO_DEFAULT:
        return "(computed)"
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def parameters_table(root: Path, page: str) -> list[dict[str, str]]:
    """The parameters of one page: name, type, the value in each shipped profile, comment."""
    chosen = _select(pages(root), [page])[0]
    params = page_parameters(chosen.source)
    profiles = {name: load_profile(root, name) for name in recipes.PROFILES}
    rows = []
    for p in params.values():
        row = {"name": p.name, "type": p.describe()}
        for name, prof in profiles.items():
            if p.name == "profile":
                row[name] = name
            else:
                row[name] = _show(prof.get(chosen.name, {}).get(p.name, p.default))
        row["comment"] = p.comment
        rows.append(row)
    return rows


def _format_table(rows: list[dict[str, str]], wrap: int = 60) -> str:
    if not rows:
        return "(no parameters)"
    cols = list(rows[0])
    cut = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    cut = {c: min(w, wrap) if c != "comment" else w for c, w in cut.items()}

    def cell(text: str, c: str) -> str:
        return (text if len(text) <= cut[c] else text[: cut[c] - 3] + "...").ljust(cut[c])

    lines = ["  ".join(cell(c, c) for c in cols).rstrip(), "  ".join("-" * cut[c] for c in cols)]
    lines += ["  ".join(cell(r[c], c) for c in cols).rstrip() for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------
def _kernel_manager_class() -> type:
    """A kernel manager that talks to the kernel over IPC (local sockets, no TCP warning) and
    does not interrupt an idle kernel before shutting it down (which only logs noise)."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return os.path.join(tempfile.gettempdir(), f"facelib-kernel-{uuid.uuid4().hex[:12]}")

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:  # the run is over; a shutdown request follows
                return
            await super()._async_interrupt_kernel()

    return QuietKernelManager


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for name in FOOTER_PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            parts.append(f"{name} {version(name)}")
    return ", ".join(parts)


def _commit(root: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    if sha.returncode != 0:
        return "unknown (not a git checkout)"
    return sha.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def _changed(page: Page, parameters: Mapping[str, Any]) -> dict[str, Any]:
    declared = page_parameters(page.source)
    return {k: v for k, v in parameters.items()
            if k != "profile" and (k not in declared or declared[k].default != v)}


def _cli_value(value: Any) -> str:
    text = _show(value)
    return text if text and all(c.isalnum() or c in "._-/:" for c in text) else f"'{text}'"


def rerun_box(page: Page, parameters: Mapping[str, Any]) -> str:
    """HTML of the "rerun this page" box placed above a page's (hidden) parameters cell: the
    command that reproduces the page (its non-default parameters spelled out; with none, the
    first parameter at its value, as a template) and where the parameters are listed."""
    profile = parameters.get("profile", "demo")
    changed = _changed(page, parameters)
    declared = [p for p in page_parameters(page.source).values() if p.name != "profile"]
    shown = dict(changed)
    if not shown and declared:  # a template: the first parameter with a plain value
        simple = [p for p in declared if isinstance(p.default, (int, float, str)) and p.has_default]
        first = (simple or declared)[0]
        shown = {first.name: parameters.get(first.name, first.default)}
    cmd = f"facelib book --only {page.name}" + (f" --profile {profile}" if profile != "demo" else "")
    cmd += "".join(f" -p {k} {_cli_value(v)}" for k, v in shown.items())
    used = ", ".join(f"<code>{html.escape(k)}={html.escape(_show(v))}</code>" for k, v in changed.items())
    return (
        '<div class="admonition tip facelib-rerun">\n'
        '<p class="admonition-title">Rerun this page</p>\n'
        f"<p>Executed with the <code>{html.escape(str(profile))}</code> profile"
        + (f" and {used}" if used else " and default parameters")
        + ". From the repository root, change the values to taste:</p>\n"
        f"<pre>{html.escape(cmd)}</pre>\n"
        f"<p><code>facelib book --list-params {page.name}</code> lists the parameters (their "
        "defaults are in the hidden cells below); <code>--params-file FILE.yaml</code> sets several. "
        f"In JupyterLab, open <code>notebooks/{page.name}.py</code>; with papermill alone, "
        f"<code>papermill book/_generated/{page.name}.ipynb out.ipynb -p NAME VALUE</code>.</p>\n"
        "</div>"
    )


def footer(page: Page, parameters: Mapping[str, Any], seconds: float, root: Path) -> str:
    """Markdown (HTML) of a page's footer: commit, date, profile, versions, execution time."""
    changed = _changed(page, parameters)
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    params = ", ".join(f"{k}={_show(v)}" for k, v in changed.items()) or "defaults"
    return (
        '<div class="facelib-footer">\n'
        f"<p>Executed by <code>facelib book</code> on {when} in {seconds:.1f} s "
        f"({platform.machine()}, {os.cpu_count()} CPUs). Profile <code>{html.escape(str(parameters.get('profile', '')))}"
        f"</code>; parameters: {html.escape(params)}. Commit <code>{html.escape(_commit(root))}</code>.</p>\n"
        f"<p>{html.escape(_versions())}.</p>\n"
        "</div>"
    )


def _add_tag(cell: Any, tag: str) -> None:
    tags = list(cell.metadata.get("tags", []))
    if tag not in tags:
        cell.metadata["tags"] = tags + [tag]


def dress(nb: Any, page: Page, parameters: Mapping[str, Any], seconds: float, root: Path) -> Any:
    """The reader's layout of an executed page (tags, not deletions: papermill still finds the
    ``parameters`` cell): the rerun box above the parameters cell, the parameters and setup
    cells collapsed (``hide-input``), the injected cell removed from the HTML (``remove-cell``;
    its values are in the box) and the footer at the end. Returns ``nb``, changed in place."""
    import nbformat

    i = _parameters_index(nb)
    if i < 0:
        raise BookError(f"{page.source}: no cell tagged 'parameters'")
    _add_tag(nb.cells[i], "hide-input")
    j = i + 1
    if j < len(nb.cells) and "injected-parameters" in nb.cells[j].metadata.get("tags", []):
        _add_tag(nb.cells[j], "remove-cell")
        j += 1
    setup = next((k for k in range(j, len(nb.cells)) if nb.cells[k].cell_type == "code"), None)
    if setup is not None:
        _add_tag(nb.cells[setup], "hide-input")
    box = nbformat.v4.new_markdown_cell(rerun_box(page, parameters))
    box.metadata["tags"] = ["facelib-rerun"]
    end = nbformat.v4.new_markdown_cell(footer(page, parameters, seconds, root))
    end.metadata["tags"] = ["facelib-footer"]
    nb.cells = nb.cells[:i] + [box] + nb.cells[i:] + [end]
    return nb


def read_page(source: Path) -> Any:
    """A page's Jupytext source as a notebook ready for papermill (kernel set, every cell with a
    ``tags`` list, as papermill's own loader leaves them)."""
    import jupytext

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("papermill", {})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return nb


def execute_page(page: Page, parameters: Mapping[str, Any], root: Path) -> float:
    """Execute one page with papermill into ``page.output`` (atomically), dressed for reading.

    Returns:
        Seconds taken by the execution.

    Raises:
        BookError: the page failed; the failed notebook is kept as ``NN_name.failed.ipynb``.
    """
    import nbformat
    import papermill
    from papermill.parameterize import parameterize_notebook

    nb = read_page(page.source)
    # Our own injection: papermill's would first look for the names in the parameters cell with a
    # pattern that misses annotations such as ``int | None`` and warn "unknown parameter".
    nb = parameterize_notebook(nb, dict(parameters), kernel_name="python3", language="python")
    page.output.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = page.output.parent / ".partial"
    tmp_dir.mkdir(exist_ok=True)
    tmp = tmp_dir / page.output.name
    start = time.perf_counter()
    try:
        with _environ(**{BOOK_ENV: "1"}):
            executed = papermill.execute_notebook(
                nb, str(tmp), parameters=None, kernel_name="python3", cwd=str(root / NOTEBOOKS),
                progress_bar=False, kernel_manager_class=_kernel_manager_class(),
            )
    except papermill.PapermillExecutionError as exc:
        failed = page.output.with_suffix(".failed.ipynb")
        if tmp.exists():
            os.replace(tmp, failed)
        raise BookError(
            f"{page.name}: cell {exc.exec_count} raised {exc.ename}: {exc.evalue} (executed notebook: {failed})"
        ) from exc
    seconds = time.perf_counter() - start
    nbformat.write(dress(executed, page, parameters, seconds, root), str(tmp))
    os.replace(tmp, page.output)
    page.output.with_suffix(".failed.ipynb").unlink(missing_ok=True)
    return seconds


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------
MATHJAX_DIR = "mathjax"
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y",
                 "adaptors", "sre", "LICENSE")


def mathjax_source() -> Path:
    """The ``es5`` folder of MathJax 3 inside the installed ``django-static-mathjax`` package."""
    import mathjax  # django-static-mathjax: MathJax 3 as package data, no dependencies

    src = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (src / "tex-chtml.js").is_file():
        raise BookError(f"{src}: MathJax's tex-chtml.js is missing (reinstall django-static-mathjax)")
    return src


def copy_mathjax(static_dir: Path) -> Path:
    """Copy the parts of MathJax the book uses into ``_static/mathjax`` (skipped when there)."""
    src = mathjax_source()
    dst = Path(static_dir) / MATHJAX_DIR
    for part in MATHJAX_PARTS:
        s = src / part if part != "LICENSE" else src.parent / "LICENSE"
        d = dst / part
        if not s.exists() or d.exists():
            continue
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = d.with_name(d.name + ".tmp")
        if s.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(s, tmp)
        else:
            shutil.copyfile(s, tmp)
        os.replace(tmp, d)
    return dst / "tex-chtml.js"


def build_html(root: Path) -> Path:
    """Run ``jupyter-book build`` on the executed pages: execution off, warnings as errors.

    Returns:
        The folder holding ``index.html``.
    """
    from facelib import viz

    viz.copy_plotly_js(root / STATIC)
    copy_mathjax(root / STATIC)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(root), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    html_dir = root / BUILD / "html"
    if not (html_dir / "index.html").is_file():
        raise BookError(f"jupyter-book reported success but {html_dir / 'index.html'} is missing")
    return html_dir


def page_after(page: Page, earlier: Sequence[Page]) -> list[Page]:
    """The pages ``page`` must wait for: its Jupytext header's ``facelib: after:`` list (names or
    numbers of earlier pages), or, without one, every earlier page.

    Raises:
        BookError: the header names a page that is not earlier in ``_toc.yml``, or is malformed.
    """
    import jupytext

    try:
        meta = jupytext.read(page.source).metadata.get("facelib", {})
    except Exception as exc:  # noqa: BLE001 - jupytext and nbformat raise many kinds
        raise BookError(f"{page.source}: cannot read the page's Jupytext header: {exc}") from None
    if not isinstance(meta, dict) or "after" not in meta:
        return list(earlier)
    after = meta["after"]
    if not isinstance(after, list) or not all(isinstance(a, (str, int)) for a in after):
        raise BookError(f"{page.source}: facelib.after in the header must be a list of page names or "
                        f"numbers, got {after!r}")
    out = []
    for want in after:
        key = str(want).zfill(2) if isinstance(want, int) else Path(want).stem
        match = [p for p in earlier if p.name == key or p.name.split("_", 1)[0] == key]
        if len(match) != 1:
            raise BookError(f"{page.source}: facelib.after names {want!r}, which is not a page before "
                            f"{page.name} (earlier pages: {', '.join(p.name for p in earlier) or 'none'})")
        out.append(match[0])
    return out


def _waiters(needs: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """For each page, the pages that wait for it, directly or through other pages."""
    waiters: dict[str, set[str]] = {name: set() for name in needs}
    for name in needs:
        stack = list(needs[name])
        while stack:
            first = stack.pop()
            if name not in waiters[first]:
                waiters[first].add(name)
                stack.extend(needs[first])
    return waiters


def run_pages(todo: Sequence[tuple[Page, dict[str, Any]]], all_pages: Sequence[Page], root: Path,
              jobs: int = 1, log: Any = print, execute: Any = None) -> dict[str, float]:
    """Execute ``todo`` (in order, or up to ``jobs`` at once as their ``after`` lists allow).

    A page waits only for the pages of ``todo`` it must come after (:func:`page_after`); pages
    not selected count as done. With ``jobs`` > 1 the pages run in worker processes; among the
    pages ready, the one that the most other pages wait for (directly or through others) starts
    first, then ``_toc.yml`` order, so that a page on the longest chain (the pretraining that the
    task pages read) does not wait behind pages that nothing needs. When a page fails, no further
    page starts, the running ones finish, and the first failure is raised.

    Returns:
        Seconds per executed page.
    """
    execute = execute or execute_page
    if jobs < 1:
        raise BookError(f"jobs must be at least 1, got {jobs}")
    timings: dict[str, float] = {}
    n = len(todo)
    if jobs == 1 or n <= 1:
        for i, (page, page_params) in enumerate(todo, 1):
            log(f"[{i}/{n}] executing {page.name} {json.dumps(page_params, default=str)}")
            timings[page.name] = execute(page, page_params, root)
            log(f"      {page.name}: {timings[page.name]:.1f} s")
        return timings
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    selected = {p.name for p, _ in todo}
    index = {p.name: i for i, p in enumerate(all_pages)}
    needs = {p.name: {q.name for q in page_after(p, list(all_pages[:index[p.name]])) if q.name in selected}
             for p, _ in todo}
    waiters = _waiters(needs)
    waiting = sorted(todo, key=lambda item: -len(waiters[item[0].name]))  # stable: toc order on ties
    done: set[str] = set()
    running: dict[Any, Page] = {}
    failure: BaseException | None = None
    started = 0
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("fork")) as pool:
        while waiting or running:
            while failure is None and len(running) < jobs:
                ready = next((item for item in waiting if needs[item[0].name] <= done), None)
                if ready is None:
                    break
                waiting.remove(ready)
                started += 1
                page, page_params = ready
                log(f"[{started}/{n}] executing {page.name} {json.dumps(page_params, default=str)}")
                running[pool.submit(execute, page, page_params, root)] = page
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                page = running.pop(fut)
                try:
                    timings[page.name] = fut.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised once the running pages end
                    failure = failure or exc
                    log(f"      {page.name}: failed")
                    continue
                done.add(page.name)
                log(f"      {page.name}: {timings[page.name]:.1f} s")
    if failure is not None:
        raise failure
    return timings


def build(
    root: Path | str | None = None,
    profile: str | Path = "demo",
    only: Sequence[str] = (),
    params: Mapping[str, str] | None = None,
    html: bool = True,
    log: Any = print,
    params_file: Path | str | None = None,
    jobs: int = 1,
) -> dict[str, float]:
    """Execute pages and build the HTML book (see the module doc for which pages run).

    Args:
        root: the book root (default: found from the current directory).
        profile: ``demo``, ``paper`` or the path of a profile file.
        only: pages to execute (names or numbers); none: see :func:`plan`.
        params: ``name -> value`` overrides as typed on the command line.
        html: build the HTML after executing (skipped, with a message, while some page has
            never been executed).
        params_file: a YAML file of parameters (:func:`load_params_file`).
        jobs: pages executed at once (:func:`run_pages`).

    Returns:
        Seconds per executed page (plus ``"html"`` for the build).
    """
    root = find_root(root)
    prof, todo = plan(root, profile, only, params, params_file)
    log(f"profile {prof.name}: {len(todo)} page(s), up to {jobs} at once")
    timings = run_pages(todo, pages(root), root, jobs=jobs, log=log)
    if html:
        missing = [p.name for p in pages(root) if not p.output.is_file()]
        if missing:
            log(f"HTML not built: {', '.join(missing)} never executed (run `facelib book` once for the "
                "whole book, or --only for them)")
            return timings
        start = time.perf_counter()
        out = build_html(root)
        timings["html"] = time.perf_counter() - start
        log(f"book built in {timings['html']:.1f} s: {out / 'index.html'}")
    return timings


def _cmd(args: argparse.Namespace) -> int:
    try:
        if args.list_params:
            root = find_root(args.root)
            print(_format_table(parameters_table(root, args.list_params)))
            return 0
        build(root=args.root, profile=args.profile, only=args.only or (), params=dict(args.param or []),
              html=not args.no_html, params_file=args.params_file, jobs=args.jobs)
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
    p.add_argument("--profile", default="demo", metavar="NAME|FILE",
                   help=f"parameter profile: {' or '.join(recipes.PROFILES)} (default: demo), or the path "
                   "of a profile file")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="pages executed at once, each after the pages its header says it reads from "
                   "(default 1: one after the other; make book uses 2)")
    p.add_argument("--only", action="append", metavar="PAGE",
                   help="execute only this page (e.g. 02_flickr_face or 02); repeatable")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a page parameter (YAML value; None, null, 1e6 understood); it goes to the "
                   "executed pages that declare it")
    p.add_argument("--params-file", "-f", default=None, metavar="FILE.yaml",
                   help="parameters from a YAML file: name: value (as papermill -f) and/or page: {name: value}")
    p.add_argument("--list-params", metavar="PAGE", default=None,
                   help="list a page's parameters (type, value in each profile, comment) and exit")
    p.add_argument("--root", default=None, help="book root holding _toc.yml (default: found from the cwd)")
    p.add_argument("--no-html", action="store_true", help="execute only; do not build the HTML")
    p.set_defaults(func=_cmd)
