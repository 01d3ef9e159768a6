"""The crossed probe of page 03: persons x scenes, independent nuisances, retrieval and linear probe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from facelib.data import synth
from facelib.swav import probe
from facelib.swav.resnet import resnet


@pytest.fixture(scope="module")
def probe_set():
    return probe.probe_set(persons=10, scenes=10, seed=101, size=40)


def test_every_person_appears_once_in_every_scene(probe_set):
    p = probe_set
    assert p.images.shape == (100, 40, 40, 3) and p.images.dtype == np.uint8
    pairs = set(zip(p.person.tolist(), p.scene.tolist()))
    assert len(pairs) == 100 and p.persons == 10 and p.scenes == 10
    again = probe.probe_set(persons=10, scenes=10, seed=101, size=40)
    assert again.images.tobytes() == p.images.tobytes()  # deterministic


def test_a_scene_is_shared_and_the_rest_is_drawn_per_image():
    # two persons in one scene share the scene's draws (background colours, clothing, light);
    # their pose, expression and glasses are their own
    a = synth.sample_params(0, 5, 64, 2, scene=3)
    b = synth.sample_params(1, 5, 64, 2, scene=3)
    c = synth.sample_params(2, 5, 64, 2, scene=4)
    assert a.scene_rng_state == b.scene_rng_state != c.scene_rng_state
    assert a.identity != b.identity
    assert (a.yaw, a.pitch, a.roll) != (b.yaw, b.pitch, b.roll)
    # without a scene, every sample has its own
    assert synth.sample_params(0, 5, 64, 2).scene_rng_state != synth.sample_params(1, 5, 64, 2).scene_rng_state


def test_raw_pixels_retrieve_the_scene_not_the_person():
    # the probe cannot be solved by matching pixels: the nearest thumbnail is from the same
    # scene far more often than chance, and of the same person at about chance
    p = probe.probe_set(persons=20, scenes=20, seed=102, size=40)
    s = probe.evaluate(probe.pixel_features(p.images), p)
    assert s["scene_knn"] > 0.5 > 10 * s["scene_chance"]
    assert s["identity_knn"] < 4 * s["identity_chance"], s
    assert s["identity_knn"] < s["scene_knn"] / 3


def test_knn_and_linear_probe_on_constructed_features(probe_set):
    p = probe_set
    rng = np.random.default_rng(0)
    person_dirs, scene_dirs = rng.normal(size=(10, 32)), rng.normal(size=(10, 32))
    identity_like = person_dirs[p.person] + 0.1 * rng.normal(size=(100, 32))
    scene_like = scene_dirs[p.scene] + 0.1 * rng.normal(size=(100, 32))
    s = probe.evaluate(identity_like, p)
    assert s["identity_knn"] == 1.0 and s["identity_linear"] == 1.0 and s["scene_knn"] < 0.3
    s = probe.evaluate(scene_like, p)
    assert s["scene_knn"] == 1.0 and s["identity_knn"] < 0.3 and s["identity_linear"] < 0.4
    with pytest.raises(ValueError, match="N >= 2"):
        probe.knn_top1(np.zeros((1, 3)), np.zeros(1))
    with pytest.raises(ValueError, match="at least 2 persons"):
        probe.probe_set(1, 5, 0, 40)


def test_run_probes_and_paired_verdicts():
    torch.manual_seed(0)
    trunk = resnet("resnet18", 8)
    trunk.fc = torch.nn.Identity()
    bn = list(probe.probe_set(4, 4, 7, 40).images)
    df = probe.run_probes({"mine": trunk}, [201, 202], 4, 4, 40, (0.5,) * 3, (0.25,) * 3, bn,
                          random_init=("resnet18", 8))
    assert sorted(set(df["representation"])) == ["mine", "random init", "raw pixels"]
    assert len(df) == 6 and df[list(probe.MEASURES)].notna().all().all()
    # paired by seed: a representation against itself is equal on every measure
    same = probe.paired(df, "mine", "mine")
    assert set(same["verdict"]) == {"n/a"} or set(same["verdict"]) == {"equal"}
    fake = pd.DataFrame([{"representation": r, "seed": s, "identity_knn": v + 0.01 * s, "identity_linear": v,
                          "scene_knn": 1 - v} for s in range(3) for r, v in (("a", 0.6), ("b", 0.2))])
    v = probe.paired(fake, "a", "b").set_index("measure")["verdict"]
    assert v["identity_knn"] == "higher" and v["scene_knn"] == "lower"
