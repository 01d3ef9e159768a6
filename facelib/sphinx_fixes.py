"""A Sphinx extension for the book's HTML (``_config.yml``: ``sphinx.extra_extensions``).

Sphinx 7 registers an extension's inline script twice when the extension adds it before the
builder exists (once with ``filename=None``, once with ``''``: the two do not compare equal),
so every page declared ``const THEBE_JS_URL`` twice and the browser logged "Identifier
'THEBE_JS_URL' has already been declared". :func:`dedupe_scripts` keeps the first of each
script, per page. The browser test (``tests/test_book_build.py``) reads every page's console.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dedupe_scripts", "setup"]


def _key(script: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    filename = getattr(script, "filename", None)
    if filename is None and isinstance(script, str):
        filename = str(script)
    attributes = getattr(script, "attributes", {}) or {}
    return filename or "", tuple(sorted((str(k), str(v)) for k, v in attributes.items()))


def dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """Drop repeated scripts (same file, same inline body) from a page's ``script_files``."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    kept = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
