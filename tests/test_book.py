"""The book pipeline without executing anything: pages, profiles, parameter validation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from facelib import book, cli


@pytest.fixture()
def no_execution(monkeypatch):
    """Fail the test if anything would be executed or built."""

    def boom(*args, **kwargs):
        raise AssertionError("validation must fail before execution")

    monkeypatch.setattr(book, "execute_page", boom)
    monkeypatch.setattr(book, "build_html", boom)


def test_every_notebook_is_a_page_and_every_page_has_a_notebook(repo_root):
    names = [p.name for p in book.pages(repo_root)]
    sources = sorted(p.stem for p in (repo_root / "notebooks").glob("[0-9][0-9]_*.py"))
    assert sorted(names) == sources
    assert names == sorted(names), "_toc.yml lists the pages in order"


def test_prose_pages_exist(repo_root):
    for entry in book.toc_files(repo_root):
        if not entry.startswith("book/_generated/"):
            assert (repo_root / f"{entry}.md").is_file(), entry


@pytest.mark.parametrize("source", sorted(Path(__file__).resolve().parents[1].glob("notebooks/[0-9][0-9]_*.py")),
                         ids=lambda p: p.stem)
def test_notebook_conventions(source):
    import jupytext

    nb = jupytext.read(source)
    params = book.page_parameters(source)
    assert list(params)[0] == "profile" and params["profile"].default == "demo"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "a title first"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)), (
                f"{source.name}: notebooks hold no def/class; move {node.name!r} into facelib"
            )


@pytest.mark.parametrize("profile", ["demo", "paper"])
def test_profile_files_validate_against_every_page(repo_root, profile):
    prof = book.load_profile(repo_root, profile)
    assert prof.name == profile
    pages = book.pages(repo_root)
    assert set(prof.pages) <= {p.name for p in pages}
    for page in pages:
        resolved = book.resolve_parameters(page, profile, prof.get(page.name, {}), {})
        assert resolved["profile"] == profile


def test_unknown_parameter_fails_before_execution(repo_root, no_execution, capsys):
    status = cli.main(["book", "--root", str(repo_root), "--only", "00_recipes", "-p", "not_a_parameter", "1"])
    assert status != 0
    err = capsys.readouterr().err
    assert "not_a_parameter" in err and "00_recipes" in err


def test_wrong_type_fails_before_execution(repo_root, no_execution, capsys):
    status = cli.main(["book", "--root", str(repo_root), "--only", "00_recipes", "-p", "pretrain_images", "lots"])
    assert status != 0
    err = capsys.readouterr().err
    assert "pretrain_images" in err and "int | None" in err


def test_unknown_parameter_without_only(repo_root, no_execution, capsys):
    assert cli.main(["book", "--root", str(repo_root), "-p", "typo_param", "1"]) != 0
    assert "typo_param" in capsys.readouterr().err


def test_unknown_page_and_profile(repo_root, no_execution, capsys):
    assert cli.main(["book", "--root", str(repo_root), "--only", "99_nothing"]) != 0
    assert "99_nothing" in capsys.readouterr().err
    assert cli.main(["book", "--root", str(repo_root), "--profile", "laptop"]) == 2
    err = capsys.readouterr().err
    assert "laptop" in err and "demo" in err and "Traceback" not in err


def test_parameter_types(tmp_path):
    src = tmp_path / "01_x.py"
    src.write_text(
        '# %% [markdown]\n# # X\n\n# %% tags=["parameters"]\nprofile = "demo"\nn: int | None = None\n'
        'rate = 0.5\nflag = False\nname = "a"\nitems = [1, 2]\nroot = "../data"\n'
    )
    page = book.Page("01_x", src, tmp_path / "01_x.ipynb")
    ok = book.resolve_parameters(
        page, "paper", {"items": [3]},
        {"n": "12", "rate": "1", "flag": "true", "name": "b", "root": "2024"},
    )
    assert ok == {"profile": "paper", "items": [3], "n": 12, "rate": 1.0, "flag": True, "name": "b", "root": "2024"}
    assert book.resolve_parameters(page, "demo", {}, {"n": "null"})["n"] is None
    assert book.resolve_parameters(page, "demo", {}, {"n": "None"})["n"] is None
    assert book.resolve_parameters(page, "demo", {}, {"n": "1e6"})["n"] == 1_000_000
    assert book.resolve_parameters(page, "demo", {"n": "2e3"}, {})["n"] == 2000, "YAML 1.1 reads 2e3 as text"
    assert book.resolve_parameters(page, "demo", {}, {"rate": "1e-3"})["rate"] == 0.001
    for name, value in [("n", "1.5"), ("rate", "fast"), ("flag", "1"), ("items", "3")]:
        with pytest.raises(book.BookError, match=repr(name)):
            book.resolve_parameters(page, "demo", {}, {name: value})
    with pytest.raises(book.BookError, match="flag"):
        book.resolve_parameters(page, "demo", {"flag": "yes please"}, {})
    with pytest.raises(book.BookError, match="--profile"):
        book.resolve_parameters(page, "demo", {}, {"profile": "paper"})


def test_missing_parameters_cell(tmp_path):
    src = tmp_path / "02_y.py"
    src.write_text("# %% [markdown]\n# # Y\n\n# %%\nx = 1\n")
    with pytest.raises(book.BookError, match="parameters"):
        book.page_parameters(src)


def test_find_root(repo_root, tmp_path):
    assert book.find_root(repo_root / "notebooks") == repo_root
    with pytest.raises(book.BookError, match="_toc.yml"):
        book.find_root(tmp_path)


def test_optional_annotation_and_comments(tmp_path):
    src = tmp_path / "01_x.py"
    src.write_text(
        '# %% [markdown]\n# # X\n\n# %% tags=["parameters"]\nfrom typing import Optional\n'
        'profile = "demo"  # which recipes\nn: Optional[int] = 3  # how many; None: all\n'
        'roots: "dict | None" = None\n'
    )
    params = book.page_parameters(src)
    assert list(params) == ["profile", "n", "roots"]
    assert params["n"].types == (int, type(None)) and params["n"].comment == "how many; None: all"
    assert params["roots"].describe() == "dict | None" and params["profile"].comment == "which recipes"


def _write_pages(root, params_by_page):
    """A tiny book: _toc.yml, _config.yml, one source per page, both profiles."""
    (root / "notebooks" / "profiles").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\n")
    chapters = "".join(f"      - file: book/_generated/{name}\n" for name in params_by_page)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n{chapters}")
    for name, params in params_by_page.items():
        (root / "notebooks" / f"{name}.py").write_text(
            '# %% [markdown]\n# # T\n\n# %% tags=["parameters"]\nprofile = "demo"\n' + params + "\n")
    for prof in ("demo", "paper"):
        (root / "notebooks" / "profiles" / f"{prof}.yaml").write_text(f"profile: {prof}\n")


def test_plan_selects_pages_and_routes_parameters(tmp_path):
    _write_pages(tmp_path, {"00_a": "images: int | None = None", "01_b": "workers: int = 1",
                            "02_c": "workers: int = 1\nimages: int = 5"})
    names = lambda todo: [p.name for p, _ in todo]  # noqa: E731
    assert names(book.plan(tmp_path)[1]) == ["00_a", "01_b", "02_c"]
    # -p without --only: the pages that declare it, and only them
    _, todo = book.plan(tmp_path, params={"workers": "4"})
    assert names(todo) == ["01_b", "02_c"] and all(p["workers"] == 4 for _, p in todo)
    # --only several pages: -p goes to those that declare it
    _, todo = book.plan(tmp_path, only=["00", "01_b"], params={"images": "1e6"})
    assert names(todo) == ["00_a", "01_b"]
    assert todo[0][1] == {"profile": "demo", "images": 1_000_000} and "images" not in todo[1][1]
    with pytest.raises(book.BookError, match="none of the selected pages.*02_c"):
        book.plan(tmp_path, only=["01"], params={"images": "3"})
    with pytest.raises(book.BookError, match="no page declares"):
        book.plan(tmp_path, params={"imgaes": "3"})


def test_params_file_flat_and_per_page(tmp_path):
    _write_pages(tmp_path, {"00_a": "images: int | None = None", "01_b": "workers: int = 1\nimages: int = 5"})
    f = tmp_path / "p.yaml"
    f.write_text("images: 1e6\n01_b:\n  workers: 3\n")
    _, todo = book.plan(tmp_path, params_file=f)
    assert [(p.name, v) for p, v in todo] == [
        ("00_a", {"profile": "demo", "images": 1_000_000}),
        ("01_b", {"profile": "demo", "images": 1_000_000, "workers": 3})]
    _, todo = book.plan(tmp_path, params_file=f, params={"images": "7"})
    assert all(v["images"] == 7 for _, v in todo), "-p wins over the file"
    f.write_text("00_a:\n  images: None\n")
    _, todo = book.plan(tmp_path, params_file=f)
    assert [(p.name, v) for p, v in todo] == [("00_a", {"profile": "demo", "images": None})]
    with pytest.raises(book.BookError, match="--only does not select"):
        book.plan(tmp_path, only=["01"], params_file=f)
    f.write_text("01_b: 3\n")
    with pytest.raises(book.BookError, match="01_b is a page"):
        book.plan(tmp_path, params_file=f)
    with pytest.raises(book.BookError, match="does not exist"):
        book.plan(tmp_path, params_file=tmp_path / "missing.yaml")


def test_profile_given_as_a_path(tmp_path, repo_root):
    _write_pages(tmp_path, {"00_a": "workers: int = 1"})
    mine = tmp_path / "mine.yaml"
    mine.write_text("profile: paper\n00_a:\n  workers: 8\n")
    prof, todo = book.plan(tmp_path, profile=str(mine))
    assert prof.name == "paper" and todo[0][1] == {"profile": "paper", "workers": 8}
    mine.write_text("00_a:\n  workers: 8\n")
    with pytest.raises(book.BookError, match="'profile:' must name"):
        book.plan(tmp_path, profile=str(mine))
    # a copy of a shipped profile is a valid profile file
    copy = tmp_path / "copy.yaml"
    copy.write_text((repo_root / "notebooks" / "profiles" / "paper.yaml").read_text())
    assert book.load_profile(repo_root, copy).pages == book.load_profile(repo_root, "paper").pages


def test_list_params_of_the_flickr_page(repo_root, capsys):
    assert cli.main(["book", "--root", str(repo_root), "--list-params", "02_flickr_face"]) == 0
    out = capsys.readouterr().out
    params = book.page_parameters(repo_root / "notebooks" / "02_flickr_face.py")
    header = out.splitlines()[0].split()
    assert header == ["name", "type", "demo", "paper", "comment"]
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(rows) == set(params), "every parameter, once"
    assert "int | None" in rows["max_photos"] and "null" in rows["max_photos"], "paper sets max_photos: null"
    assert "/data/flickr-face/crawl" in rows["crawl_dir"]
    assert params["max_photos"].comment[:20] in rows["max_photos"]
    assert cli.main(["book", "--root", str(repo_root), "--list-params", "99"]) == 2


ALL_PAGES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("name", ALL_PAGES)
def test_papermill_sees_every_parameter(repo_root, name):
    """papermill's own inspection (``--help-notebook``, its "unknown parameter" warning) finds
    every parameter that facelib finds (the pages write ``Optional[X]``, not ``X | None``)."""
    from papermill.inspection import _infer_parameters

    nb = book.read_page(repo_root / "notebooks" / f"{name}.py")
    found = {p.name: p for p in _infer_parameters(nb)}
    ours = book.page_parameters(repo_root / "notebooks" / f"{name}.py")
    assert list(found) == list(ours)
    assert all(found[n].help == ours[n].comment for n in ours)


def test_dress_tags_cells_and_adds_box_and_footer(repo_root):
    from papermill.parameterize import parameterize_notebook

    page = next(p for p in book.pages(repo_root) if p.name == "02_flickr_face")
    nb = book.read_page(page.source)
    nb = parameterize_notebook(nb, {"profile": "demo", "max_photos": 7}, kernel_name="python3", language="python")
    n = len(nb.cells)
    book.dress(nb, page, {"profile": "demo", "max_photos": 7}, 12.34, repo_root)
    assert len(nb.cells) == n + 2
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    i = next(k for k, t in enumerate(tags) if "parameters" in t)
    assert "facelib-rerun" in tags[i - 1] and "hide-input" in tags[i]
    assert "remove-cell" in tags[i + 1] and "injected-parameters" in tags[i + 1]
    assert "hide-input" in tags[i + 2] and nb.cells[i + 2].cell_type == "code", "the setup cell"
    box = nb.cells[i - 1].source
    assert "facelib book --only 02_flickr_face -p" in box and "max_photos=7" in box
    end = nb.cells[-1].source
    assert "facelib-footer" in tags[-1] and "12.3 s" in end and "Profile <code>demo</code>" in end
    assert "max_photos=7" in end and "numpy" in end and "Commit <code>" in end


def test_find_root_from_anywhere(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert book.find_root() == repo_root, "pages run from any working directory"
    assert book.repo_path("benchmarks", "measured") == repo_root / "benchmarks" / "measured"


# Code cells fit the book's code box (13-px monospace in the content column: 79 characters;
# book/_static/facelib.css). Pages 03-09 join this list as they are rewrapped.
LINE_LENGTH = 79
WRAPPED = tuple(ALL_PAGES)


@pytest.mark.parametrize("name", WRAPPED)
def test_code_cells_fit_the_book_column(repo_root, name):
    nb = book.read_page(repo_root / "notebooks" / f"{name}.py")
    long = [(i, len(line)) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for line in c.source.splitlines() if len(line) > LINE_LENGTH]
    assert not long, f"{name}: (cell, length) of lines over {LINE_LENGTH}: {long}"


def _page_file(folder: Path, name: str, after: str | None) -> book.Page:
    header = ("# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
              "#     name: python3\n")
    if after is not None:
        header += f"#   facelib:\n#     after: {after}\n"
    src = folder / f"{name}.py"
    src.write_text(header + "# ---\n\n# %%\nx = 1\n")
    return book.Page(name, src, folder / f"{name}.ipynb")


def _fake_execute(page: book.Page, params: dict, root: Path) -> float:
    """A page that marks its start; with ``wait_for`` it runs until that page has started too
    (so it can finish only if both run at once: at most 30 s, then it records that it did not)."""
    import time
    start = time.time()
    (root / f"{page.name}.started").touch()
    if page.name.startswith("02"):
        raise book.BookError(f"{page.name}: cell 1 raised ValueError")
    seen = True
    if params.get("wait_for"):
        other = root / f"{params['wait_for']}.started"
        while not other.exists() and time.time() < start + 30:
            time.sleep(0.01)
        seen = other.exists()
    else:
        time.sleep(0.05)
    with open(root / "trace.txt", "a") as f:
        f.write(f"{page.name} {start} {time.time()} {seen}\n")
    return 0.2


def _trace(root: Path) -> dict[str, tuple[float, float, bool]]:
    lines = (line.split() for line in (root / "trace.txt").read_text().splitlines())
    return {n: (float(a), float(b), seen == "True") for n, a, b, seen in lines}


def test_page_after_reads_the_header_and_defaults_to_every_earlier_page(tmp_path):
    a, b = _page_file(tmp_path, "00_a", None), _page_file(tmp_path, "01_b", "[]")
    c, d = _page_file(tmp_path, "03_c", "[00]"), _page_file(tmp_path, "04_d", None)
    assert book.page_after(a, []) == [] and book.page_after(b, [a]) == []
    assert book.page_after(c, [a, b]) == [a] and book.page_after(d, [a, b, c]) == [a, b, c]
    bad = _page_file(tmp_path, "05_e", "[04_d]")
    with pytest.raises(book.BookError, match="05_e.py: facelib.after names '04_d', which is not a page before"):
        book.page_after(bad, [a, b])
    with pytest.raises(book.BookError, match="must be a list"):
        book.page_after(_page_file(tmp_path, "06_f", "03"), [a, b])


def test_two_jobs_overlap_independent_pages_and_keep_the_order_of_dependent_ones(tmp_path):
    pages = [_page_file(tmp_path, "00_a", "[]"), _page_file(tmp_path, "01_b", "[]"),
             _page_file(tmp_path, "03_c", "[00]"), _page_file(tmp_path, "04_d", None)]
    lines = []
    waits = {"00_a": {"wait_for": "01_b"}, "01_b": {"wait_for": "03_c"}}  # each finishes only beside the other
    timings = book.run_pages([(p, waits.get(p.name, {})) for p in pages], pages, tmp_path, jobs=2,
                             log=lines.append, execute=_fake_execute)
    assert sorted(timings) == ["00_a", "01_b", "03_c", "04_d"]
    t = _trace(tmp_path)
    assert t["00_a"][2] and t["01_b"][2]  # 00 ran beside 01, and 03 started while 01 ran
    assert t["03_c"][0] >= t["00_a"][1]  # ... but only after 00, which it reads from
    assert t["04_d"][0] >= max(t["01_b"][1], t["03_c"][1])  # no header: after every earlier page
    assert lines[0].startswith("[1/4] executing 00_a") and sum("executing" in x for x in lines) == 4


def test_the_page_others_wait_for_starts_first(tmp_path):
    # 03 is the pretraining of the shipped book: 04 and 05 read from it, 00 and 01 from nothing.
    pages = [_page_file(tmp_path, "00_a", "[]"), _page_file(tmp_path, "01_b", "[]"),
             _page_file(tmp_path, "03_c", "[]"), _page_file(tmp_path, "04_d", "[03]"),
             _page_file(tmp_path, "05_e", "[04]")]
    lines = []
    book.run_pages([(p, {}) for p in pages], pages, tmp_path, jobs=2, log=lines.append, execute=_fake_execute)
    started = [x.split()[2] for x in lines if "executing" in x]
    assert started[:2] == ["03_c", "00_a"]  # then the toc's order among the pages nothing waits for
    assert started.index("04_d") < started.index("05_e")
    t = _trace(tmp_path)
    assert t["04_d"][0] >= t["03_c"][1] and t["05_e"][0] >= t["04_d"][1]


def test_a_failed_page_stops_the_pages_after_it_and_is_raised(tmp_path):
    pages = [_page_file(tmp_path, "01_b", "[]"), _page_file(tmp_path, "02_x", "[]"),
             _page_file(tmp_path, "03_c", "[02]")]
    lines = []
    with pytest.raises(book.BookError, match="02_x: cell 1 raised ValueError"):
        book.run_pages([(p, {}) for p in pages], pages, tmp_path, jobs=2, log=lines.append, execute=_fake_execute)
    assert set(_trace(tmp_path)) == {"01_b"}  # the running page finished
    assert not (tmp_path / "03_c.started").exists()  # 03 reads from the failed page: never started
    assert "      02_x: failed" in lines and not any("executing 03_c" in x for x in lines)


def test_every_shipped_page_declares_what_it_reads_from(repo_root):
    pages = book.pages(repo_root)
    after = {p.name: [q.name for q in book.page_after(p, pages[:i])] for i, p in enumerate(pages)}
    assert set(after) == {p.name for p in pages}
    assert after["03_swav_pretraining"] == [] and after["00_recipes"] == []
    tasks = [p.name for p in pages if p.name[:2] in {"04", "05", "06", "07", "08"}]
    assert len(tasks) == 5 and all(after[t] == ["03_swav_pretraining"] for t in tasks)  # page 03's trunks
    assert set(tasks) <= set(after["09_results"])  # the results page reads every task's runs
