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
    assert table.loc["temperature", "demo"] == "", "unchanged values are left blank"
    assert table.loc["final_lr", "source"] == "supplement" and "0.0048" in table.loc["final_lr", "note"]
    assert "demo" not in viz.recipe_table(recipes.sampling()).columns
