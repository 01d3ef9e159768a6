"""The Sphinx extension that keeps one copy of each script on a page."""

from __future__ import annotations

from facelib import sphinx_fixes


class Script(str):
    def __new__(cls, filename, **attributes):
        obj = super().__new__(cls, filename or "")
        obj.filename, obj.attributes = filename, attributes
        return obj


def test_repeated_inline_scripts_are_dropped():
    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [Script("_static/a.js"), Script(None, body=thebe), Script("_static/b.js", **{"async": "async"}),
               Script("", body=thebe), Script("_static/a.js"), Script(None, body="other")]
    context = {"script_files": scripts}
    sphinx_fixes.dedupe_scripts(None, "page", "page.html", context, None)
    kept = context["script_files"]
    assert [s.filename for s in kept] == ["_static/a.js", None, "_static/b.js", None]
    assert [s.attributes.get("body") for s in kept] == [None, thebe, None, "other"]


def test_registered_for_every_page():
    calls = []

    class App:
        def connect(self, event, fn, priority=500):
            calls.append((event, fn, priority))

    meta = sphinx_fixes.setup(App())
    assert calls == [("html-page-context", sphinx_fixes.dedupe_scripts, 900)]
    assert meta["parallel_read_safe"]
