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
    data = book.load_profile(repo_root, profile)
    pages = book.pages(repo_root)
    assert set(data) <= {p.name for p in pages}
    for page in pages:
        resolved = book.resolve_parameters(page, profile, data.get(page.name, {}), {})
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
    with pytest.raises(SystemExit):
        cli.main(["book", "--profile", "laptop"])


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
