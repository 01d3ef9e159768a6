"""Figure text stays legible in the book: every figure of the SwAV page (03), the task pages
(04-08) and the results page (09), built at its default size from small generated inputs, has
no text smaller than ``viz.MIN_TEXT_PX`` CSS pixels once scaled to the book's column
(``viz.smallest_text_px``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from facelib import recipes, viz
from facelib.tasks import compare as C
from facelib.tasks import plots
from facelib.tasks.page import INIT_ORDER, TITLES, TaskPage
from facelib.tasks.summary import summary_figure

TASKS = list(TITLES)
INITS = ["random", "supervised", "ours"]
REGIMES = ["100%", "10%", "2%", "1%"]


@pytest.fixture(autouse=True)
def _default_style():
    """Each figure is measured as a fresh kernel draws it: matplotlib's defaults, whatever an
    earlier test set; the figure functions must set the book's style themselves."""
    matplotlib.rcdefaults()  # keeps the backend
    yield
    plt.close("all")


def _legible(fig) -> float:
    fig.canvas.draw()
    px = viz.smallest_text_px(fig)
    assert px >= viz.MIN_TEXT_PX, f"smallest text {px:.1f} px at the column width"
    return px


def _grid(task: str, seeds: int = 3) -> pd.DataFrame:
    """A finished grid of ``task``: every init x regime x seed, headline metric made up."""
    rng = np.random.default_rng(0)
    metric = C.HEADLINES[task].metric
    return pd.DataFrame([{"init": i, "regime": r, "seed": s, metric: float(rng.uniform(0.2, 0.9)),
                          "run": f"{task}/{i}/{r.rstrip('%')}pct-seed{s}"}
                         for i in INITS for r in REGIMES for s in range(seeds)])


def _run_dir(path: Path, epochs: int = 4, iters: int = 5, seed: int = 0) -> Path:
    """A run folder with the ``log.jsonl`` and ``eval.npz`` the task pages read."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    lines = []
    for e in range(epochs):
        losses = []
        for k in range(iters):
            losses.append(float(2.0 * math.exp(-(e * iters + k) / 10) + 0.1 * rng.random()))
            lines.append({"kind": "iter", "epoch": e, "iter": e * iters + k, "loss": losses[-1]})
        lines.append({"kind": "epoch", "epoch": e, "loss": float(np.mean(losses))})
    (path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    thresholds = np.linspace(0, 0.1, 21)
    ced = np.clip(thresholds / (0.05 + 0.03 * rng.random()), 0, 1)
    np.savez(path / "eval.npz", ced_thresholds=thresholds, ced_interocular=ced, ced_box=ced)
    return path


# ---------------------------------------------------------------------------------------------
# page 03: facelib.swav.figures
# ---------------------------------------------------------------------------------------------
def test_multicrop_figure():
    from facelib.swav import figures
    from facelib.swav.data import synthetic_faces
    from facelib.swav.transforms import MultiCrop

    for profile in ("demo", "paper"):
        recipe = recipes.pretrain(profile)
        faces = synthetic_faces(3, seed=2, size=recipe.input_size)
        originals = [faces[i][0] for i in range(3)]
        multicrop = MultiCrop.from_recipe(recipe)
        views = [multicrop(img, np.random.default_rng(i), normalize=False) for i, img in enumerate(originals)]
        _legible(figures.multicrop_figure(originals, views, title="synthetic faces (demo data)"))
        plt.close("all")


def test_training_curves_figure():
    from facelib.swav import figures

    records = [{"iteration": i, "loss": 8.3 - i / 50, "lr": 0.3 + i / 100, "usage_entropy": 6 - i / 100,
                "code_entropy": 8 - i / 80} for i in range(0, 300, 10)]
    _legible(figures.training_curves_figure(records, num_prototypes=3000))


def test_probe_figures():
    from facelib.swav import figures, probe

    _legible(figures.probe_grid_figure(probe.probe_set(6, 6, 0, 64)))
    rng = np.random.default_rng(0)
    scores = pd.DataFrame([{"representation": name, "seed": s,
                            "identity_knn": rng.random(), "identity_chance": 1 / 12,
                            "identity_linear": rng.random(), "identity_linear_chance": 1 / 12,
                            "scene_knn": rng.random(), "scene_chance": 1 / 6}
                           for name in probe.ORDER for s in range(3)])
    _legible(figures.probe_figure(scores, probe.ORDER))


# ---------------------------------------------------------------------------------------------
# pages 04-08: facelib.tasks.plots and TaskPage.figure
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASKS)
def test_augmented_samples(task):
    from facelib.tasks import finetune as FT

    spec = FT.DataSpec(n_train=6, n_test=2, size=64, num_identities=3)
    model_task = FT.make_task(task, "demo", num_classes=3 if task == "recognition" else 0)
    # as TaskPage.samples draws them
    _legible(plots.augmented_samples(model_task, spec.build(task)[0], n=6, repeats=2))


def test_training_and_ced_curves(tmp_path):
    runs = {f"{i} {r}": _run_dir(tmp_path / i / r.rstrip("%"), seed=k)
            for k, (i, r) in enumerate((i, r) for i in INITS for r in REGIMES)}
    _legible(plots.training_curves(runs, title="Facial landmark localisation: training loss"))
    _legible(plots.ced_curves(runs, title="CED, synthetic test faces"))
    _legible(plots.ced_curves(runs, key="ced_box", xlabel="NME, box size", title="CED, synthetic test faces"))


@pytest.mark.parametrize("task", TASKS)
def test_task_page_figure(task, monkeypatch):
    shown = []
    monkeypatch.setattr(viz, "figure", lambda fig, caption, key=None: shown.append(fig))
    page = TaskPage.__new__(TaskPage)  # the figure reads only the grid and the baselines
    page.name, page.headline = task, C.HEADLINES[task]
    page.grid = _grid(task)
    page.baselines = {r: {page.headline.metric: 0.1} for r in REGIMES}
    page.figure()
    assert len(shown) == 1 and set(INIT_ORDER) >= set(page.grid["init"])
    _legible(shown[0])


# ---------------------------------------------------------------------------------------------
# page 09: facelib.tasks.summary
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5])
def test_summary_figure(n):
    fig = summary_figure({t: _grid(t) for t in TASKS[:n]})
    assert sum(bool(ax.lines) for ax in fig.axes) == n
    _legible(fig)
