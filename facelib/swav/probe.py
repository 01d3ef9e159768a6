"""What a trunk keeps and what it ignores: held-out persons crossed with scenes.

A label-free pretraining is read on faces it has never seen (supplement 1.1 reads it by
fine-tuning; this is the quick probe of page 03). The probe set crosses ``persons`` held-out
synthetic persons with ``scenes`` scenes: every person appears once in every scene. A scene
is everything that is not the person and that a photo shares with the photos taken beside it:
the background's colours, the clothing colour, the exposure, the white balance and the
direction of the light (:func:`facelib.data.synth.sample_params` with ``scene``). Pose,
expression, glasses, occlusion, blur, noise, compression and the framing of the crop (a
jitter of the face box) are drawn for each image. So identity and scene are independent, and
two questions can be asked of the same features:

* **identity retrieval**: is the nearest other image (cosine similarity) the same person? And a
  linear probe: a logistic regression on the features of half the scenes, tested on the other
  half (scikit-learn);
* **scene retrieval**: is the nearest other image from the same scene?

A trunk that has learnt faces retrieves the person and not the scene; raw pixels retrieve the
scene (:func:`pixel_features`, the floor). Chance is ``(scenes - 1) / (n - 1)`` for identity
and ``(persons - 1) / (n - 1)`` for the scene. Shown in ``notebooks/03_swav_pretraining.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from .retrieval import embed, precise_bn

__all__ = ["ProbeSet", "probe_set", "pixel_features", "trunk_features", "knn_top1", "linear_probe",
           "evaluate", "run_probes", "paired", "summary", "comparisons", "verdict", "MEASURES", "ORDER",
           "BOX_JITTER"]

#: Framing jitter of the probe crops: the face box is shifted by up to this fraction of its
#: width/height and scaled by up to 1 +- this much (detectors frame the same face differently).
BOX_JITTER = (0.06, 0.08)


@dataclass(frozen=True)
class ProbeSet:
    """``persons x scenes`` face crops: item ``i`` shows person ``person[i]`` in scene ``scene[i]``."""

    images: np.ndarray   # (N, S, S, 3) uint8
    person: np.ndarray   # (N,) int
    scene: np.ndarray    # (N,) int
    seed: int

    def __len__(self) -> int:
        return len(self.person)

    @property
    def persons(self) -> int:
        return int(self.person.max()) + 1

    @property
    def scenes(self) -> int:
        return int(self.scene.max()) + 1


def probe_set(persons: int, scenes: int, seed: int, size: int, render_scale: float = 1.6) -> ProbeSet:
    """Render the probe set: person ``p`` of the set ``seed`` in scene ``q``, for every (p, q).

    Faces are rendered at ``render_scale * size`` and cut to the paper's pretraining crop
    (``recipes.crop()``: the face box spans 190/256 of the side) around a jittered box
    (:data:`BOX_JITTER`), at ``size`` px. Deterministic in ``(persons, scenes, seed, size)``.

    Raises:
        ValueError: fewer than 2 persons or scenes.
    """
    from .. import recipes
    from ..data.synth import render_params, sample_params
    from ..faces.crop import crop_face

    if persons < 2 or scenes < 2:
        raise ValueError(f"a probe needs at least 2 persons and 2 scenes, got {persons} and {scenes}")
    geo = recipes.crop()
    big = int(round(render_scale * size))
    n = persons * scenes
    images = np.empty((n, size, size, 3), np.uint8)
    shift, scale = BOX_JITTER
    for q in range(scenes):
        for p in range(persons):
            i = q * persons + p                          # person i % persons, as the renderer counts
            img, labels = render_params(sample_params(i, seed, big, persons, scene=q))
            rng = np.random.default_rng([seed, 7, i])
            x0, y0, x1, y1 = (float(v) for v in labels["box"])
            w, h = x1 - x0, y1 - y0
            cx = (x0 + x1) / 2 + shift * w * (2 * rng.random() - 1)
            cy = (y0 + y1) / 2 + shift * h * (2 * rng.random() - 1)
            k = 1 + scale * (2 * rng.random() - 1)
            box = np.array([cx - k * w / 2, cy - k * h / 2, cx + k * w / 2, cy + k * h / 2])
            images[i], _ = crop_face(img, box, face_size=geo.face_size * size / geo.output_size,
                                     output_size=size, rule=geo.box_size)
    idx = np.arange(n)
    return ProbeSet(images, idx % persons, idx // persons, seed)


def pixel_features(images: np.ndarray, side: int = 16) -> np.ndarray:
    """Raw pixels of ``side`` x ``side`` thumbnails (area-averaged), centred: the floor of the probe."""
    thumbs = np.stack([cv2.resize(np.asarray(im), (side, side), interpolation=cv2.INTER_AREA) for im in images])
    f = thumbs.reshape(len(images), -1).astype(np.float64) / 255.0
    return f - f.mean(axis=0)


def trunk_features(trunk: nn.Module, images: np.ndarray, size: int, mean: Sequence[float],
                   std: Sequence[float], bn_images: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Pooled trunk features of the probe images at ``size`` px.

    With ``bn_images`` the trunk's BatchNorm statistics are first recomputed on those (unlabelled)
    images (:func:`facelib.swav.retrieval.precise_bn`), so that a pretrained and a random trunk
    are read on the same footing; ``trunk`` itself is not changed.
    """
    net = precise_bn(trunk, list(bn_images), size, mean, std) if bn_images is not None else trunk
    return embed(net, list(images), size, mean, std)


def knn_top1(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out nearest-neighbour accuracy (cosine similarity) of ``labels``."""
    f = np.asarray(features, np.float64)
    y = np.asarray(labels)
    if f.ndim != 2 or len(f) != len(y) or len(y) < 2:
        raise ValueError(f"need (N, F) features for N >= 2 labels, got {f.shape} and {len(y)} labels")
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    return float((y[sim.argmax(axis=1)] == y).mean())


def linear_probe(features: np.ndarray, probe: ProbeSet, c: float = 1.0) -> float:
    """Identity accuracy of a logistic regression trained on the first half of the scenes and
    tested on the other half (features standardised on the training half; scikit-learn)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = probe.scene < probe.scenes // 2
    scaler = StandardScaler().fit(features[train])
    clf = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(features[train]), probe.person[train])
    return float(clf.score(scaler.transform(features[~train]), probe.person[~train]))


def evaluate(features: np.ndarray, probe: ProbeSet) -> dict[str, Any]:
    """Identity and scene retrieval of ``features`` on ``probe``, with their chance levels.

    Returns:
        ``identity_knn``, ``identity_linear``, ``scene_knn``, ``identity_chance``
        (k-NN and linear), ``scene_chance``.
    """
    n = len(probe)
    return {
        "identity_knn": knn_top1(features, probe.person),
        "identity_linear": linear_probe(features, probe),
        "scene_knn": knn_top1(features, probe.scene),
        "identity_chance": (probe.scenes - 1) / (n - 1),
        "identity_linear_chance": 1.0 / probe.persons,
        "scene_chance": (probe.persons - 1) / (n - 1),
    }


def run_probes(trunks: dict[str, Any], seeds: Sequence[int], persons: int, scenes: int, size: int,
               mean: Sequence[float], std: Sequence[float], bn_images: Sequence[np.ndarray],
               random_init: tuple[str, int] | None = None, pixels: bool = True) -> "pd.DataFrame":
    """Every representation on the probe set of every seed.

    Args:
        trunks: name -> a trunk (``fc = Identity``) that does not change with the seed (e.g. the
            pretrained ones, shared by all seeds).
        seeds: one probe set per seed (other persons and scenes each time).
        random_init: ``(arch, width)``: add ``"random init"``, a freshly initialised ResNet per
            seed (torch seeded with the probe seed: the initialisation varies as the probe
            set does); None: none.
        pixels: add raw 16 x 16 pixels (:func:`pixel_features`).
        bn_images: unlabelled images on which every trunk's BatchNorm statistics are recomputed.

    Returns:
        One row per (representation, seed) with the columns of :func:`evaluate`.
    """
    import pandas as pd

    rows = []
    for seed in seeds:
        probe = probe_set(persons, scenes, seed, size)
        reps: dict[str, Any] = dict(trunks)
        if random_init is not None:
            from .resnet import resnet
            torch.manual_seed(seed)
            net = resnet(*random_init)
            net.fc = nn.Identity()
            reps["random init"] = net
        for name, trunk in reps.items():
            feats = trunk_features(trunk, probe.images, size, mean, std, bn_images)
            rows.append({"representation": name, "seed": seed, **evaluate(feats, probe)})
        if pixels:
            rows.append({"representation": "raw pixels", "seed": seed, **evaluate(pixel_features(probe.images), probe)})
    return pd.DataFrame(rows)


#: The probe's measures, with the direction in which a face representation should go.
MEASURES = {"identity_knn": +1, "identity_linear": +1, "scene_knn": -1}


def paired(df: "pd.DataFrame", a: str, b: str, margin_se: float = 2.0) -> "pd.DataFrame":
    """``a`` against ``b`` on each measure of :data:`MEASURES`, paired by seed (same probe set).

    Returns:
        One row per measure: mean of ``a``, of ``b``, the mean per-seed difference ``a - b``,
        its standard error over the seeds, and ``verdict``: ``higher`` / ``lower`` beyond
        ``margin_se`` standard errors, else ``equal`` (``n/a`` with fewer than 2 seeds).
    """
    import pandas as pd

    pa = df[df["representation"] == a].set_index("seed")
    pb = df[df["representation"] == b].set_index("seed")
    common = pa.index.intersection(pb.index)
    rows = []
    for m in MEASURES:
        d = (pa.loc[common, m] - pb.loc[common, m]).to_numpy(float)
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        diff = float(d.mean()) if len(d) else float("nan")
        verdict = ("n/a" if not np.isfinite(se) else "higher" if diff > margin_se * se
                   else "lower" if diff < -margin_se * se else "equal")
        rows.append({"measure": m, "a": a, "b": b, "mean_a": float(pa.loc[common, m].mean()),
                     "mean_b": float(pb.loc[common, m].mean()), "difference": diff, "se": se,
                     "seeds": len(common), "verdict": verdict})
    return pd.DataFrame(rows)


#: The page's order of the representations.
ORDER = ("ours (SwAV)", "supervised", "random init", "raw pixels")
_LABELS = {"identity_knn": "identity k-NN top-1", "identity_linear": "identity linear probe",
           "scene_knn": "scene k-NN top-1"}


def summary(scores: "pd.DataFrame", order: Sequence[str] = ORDER) -> "pd.DataFrame":
    """``mean ± standard error`` over the probe sets of each measure, per representation."""
    import pandas as pd

    stats = scores.groupby("representation")[list(MEASURES)].agg(["mean", "sem"])
    names = [n for n in order if n in stats.index]
    out = pd.DataFrame({"representation": names})
    for m, label in _LABELS.items():
        out[label] = [f"{stats.loc[n, (m, 'mean')]:.3f} ± {stats.loc[n, (m, 'sem')]:.3f}" for n in names]
    return out


def comparisons(scores: "pd.DataFrame", ours: str = "ours (SwAV)") -> "pd.DataFrame":
    """:func:`paired` of ``ours`` against every other representation present, with the
    difference written ``+d ± se``."""
    import pandas as pd

    others = [n for n in ORDER if n != ours and n in set(scores["representation"])]
    pairs = pd.concat([paired(scores, ours, b) for b in others], ignore_index=True)
    pairs["difference ± se"] = [f"{d:+.3f} ± {s:.3f}" for d, s in zip(pairs["difference"], pairs["se"])]
    return pairs


def verdict(scores: "pd.DataFrame", ours: str = "ours (SwAV)") -> str:
    """Markdown sentences computed from :func:`comparisons`: what our trunk keeps and ignores
    against random initialisation, raw pixels and the supervised trunk."""
    pairs = comparisons(scores, ours)
    v = pairs[pairs["b"] == "random init"].set_index("measure")["verdict"]
    keeps = v.get("identity_knn") == "higher" and v.get("identity_linear") == "higher"
    ignores = v.get("scene_knn") == "lower"
    px = scores[scores["representation"] == "raw pixels"]
    text = (f"Against random initialisation our SwAV trunk retrieves the held-out persons "
            f"**{v.get('identity_knn')}** by k-NN and **{v.get('identity_linear')}** by the linear probe, "
            f"and their scenes **{v.get('scene_knn')}** (beyond two standard errors of the paired "
            "differences, or equal). ")
    text += ("So the pretraining on unlabelled faces has learnt to keep who a face is and to ignore the "
             "photo around it, which a random network does not." if keeps and ignores else
             "So on this probe the pretraining does not both keep the person better and ignore the scene "
             "better than a random network; the table says where.")
    if len(px):
        text += (f" Raw pixels retrieve the person in {px['identity_knn'].mean():.1%} of the cases (chance "
                 f"{scores['identity_chance'].mean():.1%}) and the scene in {px['scene_knn'].mean():.1%}: "
                 "matching pixels finds the photo, not the person.")
    s = pairs[pairs["b"] == "supervised"].set_index("measure")["verdict"]
    if len(s):
        text += (f" Against the supervised trunk, which saw the identity labels of the pretraining persons, "
                 f"our trunk's identity k-NN is **{s.get('identity_knn')}** and its linear probe "
                 f"**{s.get('identity_linear')}**.")
    return text
