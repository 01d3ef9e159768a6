"""Interactive figures that render offline."""

from __future__ import annotations

import plotly.graph_objects as go

from facelib import results, viz


def test_plotly_figure_is_offline_html_plus_mimetype():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    bundle = viz.plotly_figure(fig)._repr_mimebundle_()
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html
    assert "<script src" not in html and "cdn" not in html.lower(), "no CDN, no embedded copy"
    assert bundle[viz.PLOTLY_MIME]["data"][0]["y"] == [3, 4]


def test_copy_plotly_js(tmp_path):
    dst = viz.copy_plotly_js(tmp_path / "_static")
    assert dst.read_bytes() == viz.plotly_js_path().read_bytes()
    mtime = dst.stat().st_mtime_ns
    viz.copy_plotly_js(tmp_path / "_static")
    assert dst.stat().st_mtime_ns == mtime, "an identical copy is not rewritten"


def test_book_renderer_drops_only_the_plotly_json():
    class Data:
        def __init__(self, mime_type):
            self.mime_type = mime_type

    assert viz.PlotlyBookRenderer.handle_mime(None, Data(viz.PLOTLY_MIME), False) == []
    assert viz.PlotlyBookRenderer.handle_mime(None, Data("text/html"), False) is None


def test_renderer_is_registered_for_myst_nb():
    from importlib.metadata import entry_points

    eps = entry_points(group="myst_nb.mime_renderers")
    assert any(ep.value == "facelib.viz:PlotlyBookRenderer" for ep in eps)


def test_metric_by_regime_figure_menu_switches_metrics():
    table = results.affectnet()
    metrics = list(results.AFFECTNET_METRICS)
    fig = viz.metric_by_regime_figure(table, metrics, regime_order=["2%", "10%", "100%"]).fig
    assert len(fig.data) == len(metrics) * 4
    assert [t.visible for t in fig.data[:4]] == [True] * 4 and not any(t.visible for t in fig.data[4:])
    buttons = fig.layout.updatemenus[0].buttons
    assert len(buttons) == len(metrics)
    ours = next(t for t in fig.data[:4] if t.name == "ours")
    assert list(ours.x) == ["2%", "10%", "100%"]
    assert list(ours.y) == [0.495, 0.562, 0.602]
    second = buttons[1].args[0]["visible"]
    assert second[4:8] == [True] * 4 and sum(second) == 4


def test_lr_schedule_figure():
    import numpy as np

    fig = viz.lr_schedule_figure(np.linspace(0, 1, 100), 10, 2)
    line = fig.axes[0].lines[0]
    assert len(line.get_xdata()) == 100 and line.get_xdata()[-1] == 9.9


def test_recipe_table_marks_demo_differences():
    from facelib import recipes

    table = viz.recipe_table(recipes.pretrain("paper"), recipes.pretrain("demo"))
    assert table.loc["epochs", "paper"] == 200 and table.loc["epochs", "demo"] == recipes.pretrain("demo").epochs
    paper, demo = recipes.pretrain("paper"), recipes.pretrain("demo")
    same = [f for f in ("momentum", "weight_decay") if getattr(paper, f) == getattr(demo, f)]
    assert same, "some pretraining value is shared by both profiles"
    assert all(table.loc[f, "demo"] == "" for f in same), "unchanged values are left blank"
    assert table.loc["temperature", "demo"] == (demo.temperature if demo.temperature != paper.temperature else "")
    assert table.loc["final_lr", "source"] == "supplement" and "0.0048" in table.loc["final_lr", "note"]
    assert "demo" not in viz.recipe_table(recipes.sampling()).columns


def test_figure_numbers_and_captions(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.interactiveshell import InteractiveShell

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, *a, **k: shown.append(obj))
    monkeypatch.setattr(viz, "_NUMBERS", {"Figure": {}, "Table": {}})
    fig, _ = plt.subplots()
    cap = viz.figure(fig, "A `code` and *em* caption.")
    assert shown[0] is fig and not plt.fignum_exists(fig.number), "shown once, then closed"
    html = shown[1]._repr_html_()
    assert 'class="facelib-caption"' in html and "Figure 1." in html
    assert "<code>code</code>" in html and "<em>em</em>" in html
    assert cap._repr_html_() == "" and repr(cap) == "Figure 1. A `code` and *em* caption."
    viz.figure(go.Figure(), "Second.")
    assert isinstance(shown[2], viz.PlotlyFigure) and "Figure 2." in shown[3]._repr_html_()
    viz.figure(go.Figure(), "A `code` and *em* caption.")
    assert "Figure 1." in shown[5]._repr_html_(), "a caption shown again keeps its number"
    assert InteractiveShell  # IPython is importable in the test environment


def test_table_headers_units_missing_values_and_caption(monkeypatch):
    import numpy as np
    import pandas as pd

    monkeypatch.setattr(viz, "_NUMBERS", {"Figure": {}, "Table": {}})
    df = pd.DataFrame({"tar_at_far_0.001": [0.51234, np.nan], "nme_io": [3.2, 4.1], "faces": [1234, 5]})
    html = viz.table(df, caption="Results.", units={"nme_io": "%"}).to_html()
    for text in ("TAR @ FAR 0.001", "NME inter-ocular (%)", "Table 1.", "Results.", "1,234", "0.512",
                 'class="facelib-table"'):
        assert text in html, text
    assert "nan" not in html.lower().replace("nan;", "")
    assert ">-<" in html, "missing values shown as -"
    assert viz.readable("from_px") == "from (px)" and viz.readable("Already Readable") == "Already Readable"
    assert "Table 2." in viz.table(df, caption="Other.").to_html()


def test_book_figures_have_legible_text():
    """Figure text of the pages' figure functions is at least MIN_TEXT_PX at the column width."""
    import matplotlib
    import numpy as np
    import pandas as pd

    matplotlib.use("Agg")
    from facelib.data import figures as data_figures
    from facelib.faces import evaluate

    t = pd.DataFrame({"size": [3.0, 20.0, 40.0, 200.0], "found": [False, True, True, True]})
    d = pd.DataFrame({"size": [19.0, 41.0, 210.0, 12.0], "matched": [True, True, True, False]})
    figures = {
        "lr_schedule_figure": viz.lr_schedule_figure(np.linspace(0, 1, 100), 10, 2, title="t"),
        "detection_figure": evaluate.detection_figure(t, d),
        "synth_grid": data_figures.synth_grid(8, seed=0),
        "au_sweep": data_figures.au_sweep(aus=(1, 12), levels=(0, 5)),
    }
    for name, fig in figures.items():
        assert viz.smallest_text_px(fig) >= viz.MIN_TEXT_PX, f"{name}: {viz.smallest_text_px(fig):.1f} px"
    import matplotlib.pyplot as plt

    small, ax = plt.subplots(figsize=(14, 3))
    ax.set_title("tiny", fontsize=7)
    assert viz.smallest_text_px(small) < viz.MIN_TEXT_PX, "a wide figure shrinks its text"
