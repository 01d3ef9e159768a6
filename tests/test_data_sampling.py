"""Low-data subsets (supplement 1.3): fractions, nesting, no balancing, the identity rule, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from facelib import recipes
from facelib.data import sampling


def _manifest(n: int = 5000, n_ids: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Long-tailed identities (a few people with many images) and unbalanced classes.
    ids = rng.zipf(1.6, n) % n_ids
    return pd.DataFrame({
        "path": [f"img/{i:06d}.jpg" for i in range(n)],
        "identity": [f"id{v:04d}" for v in ids],
        "expression": rng.choice(8, n, p=[0.5, 0.2, 0.1, 0.05, 0.05, 0.04, 0.04, 0.02]),
    })


def test_fractions_and_nesting(tmp_path):
    df = _manifest()
    s = sampling.fixed_subsets(df, tmp_path / "s.json")
    assert s.regimes == (1.0, 0.1, 0.05, 0.02, 0.01)
    for f in s.regimes:
        idx = s.indices(f)
        assert len(idx) == round(f * len(df)) and len(np.unique(idx)) == len(idx)
    assert set(s.indices(1.0)) == set(range(len(df)))
    regimes = sorted(s.regimes)
    for small, large in zip(regimes, regimes[1:]):
        assert set(s.indices(small)) <= set(s.indices(large)), (small, large)


def test_no_label_balancing_and_labels_not_read(tmp_path):
    df = _manifest()
    s = sampling.fixed_subsets(df, tmp_path / "a.json")
    # The same rows are drawn whatever the labels say (labels are not read) ...
    shuffled = df.assign(expression=np.random.default_rng(5).permutation(df["expression"].to_numpy()))
    s2 = sampling.fixed_subsets(shuffled, tmp_path / "b.json")
    np.testing.assert_array_equal(s.indices(0.1), s2.indices(0.1))
    # ... so the class distribution follows the source's (neutral stays the majority, no balancing).
    sub = df.iloc[s.indices(0.1)]
    share = sub["expression"].value_counts(normalize=True)
    assert share[0] > 0.4 and abs(share[0] - 0.5) < 0.06
    assert share.get(7, 0) < 0.05


def test_identity_rule_at_2_percent(tmp_path):
    df = _manifest(n=5000, n_ids=400)
    n_ids = df["identity"].nunique()
    plain = sampling.fixed_subsets(df, tmp_path / "plain.json")
    covered_plain = df["identity"].iloc[plain.indices(0.02)].nunique()
    need = math.ceil(n_ids / 4)
    assert covered_plain < need          # the fixture needs the rule (a long-tailed set)
    rec = sampling.fixed_subsets(df, tmp_path / "rec.json", identity_column="identity")
    idx2 = rec.indices(0.02)
    assert len(idx2) == 100 and df["identity"].iloc[idx2].nunique() >= need
    # Still nested, sizes unchanged.
    for small, large in ((0.01, 0.02), (0.02, 0.05), (0.05, 0.1)):
        assert set(rec.indices(small)) <= set(rec.indices(large))
        assert len(rec.indices(small)) == round(small * len(df))
    # Only the swap differs from the plain draw: most of the 2 % subset is the same rows.
    assert len(set(idx2) & set(plain.indices(0.02))) >= 100 - (need - covered_plain)


def test_identity_rule_impossible_is_refused(tmp_path):
    df = pd.DataFrame({"identity": [f"p{i}" for i in range(1000)]})   # 1000 people, 20 rows at 2 %
    with pytest.raises(ValueError, match="must keep 250 of 1000 identities"):
        sampling.fixed_subsets(df, tmp_path / "x.json", identity_column="identity")


def test_persistence_and_refusal_on_changed_source(tmp_path):
    df = _manifest(n=800)
    path = tmp_path / "sub.json"
    a = sampling.fixed_subsets(df, path)
    saved = json.loads(path.read_text())
    assert saved["seed"] == recipes.sampling().seed and saved["source_rows"] == 800
    assert saved["regimes"] == [1.0, 0.1, 0.05, 0.02, 0.01] and len(saved["source_hash"]) == 64
    b = sampling.fixed_subsets(df.copy(), path)
    np.testing.assert_array_equal(a.order, b.order)
    # A different seed would draw a different subset, and is refused for the existing file.
    c = sampling.fixed_subsets(df, tmp_path / "other.json", recipe=recipes.sampling(seed=1))
    assert set(c.indices(0.1)) != set(a.indices(0.1))
    with pytest.raises(sampling.SubsetMismatchError, match="seed 0 in the file, 1 asked"):
        sampling.fixed_subsets(df, path, recipe=recipes.sampling(seed=1))
    changed = df.copy()
    changed.loc[3, "path"] = "img/other.jpg"
    with pytest.raises(sampling.SubsetMismatchError, match="source manifest changed"):
        sampling.fixed_subsets(changed, path)
    with pytest.raises(sampling.SubsetMismatchError, match="source manifest changed"):
        sampling.fixed_subsets(df.iloc[:-1], path)
    with pytest.raises(sampling.SubsetMismatchError):
        a.subset(changed, 0.1)
    sub = a.subset(df, 0.05)
    assert list(sub["path"]) == list(df["path"].iloc[a.indices(0.05)])


def test_hash_covers_list_columns():
    df = pd.DataFrame({"path": ["a", "b"], "au": [[0.0, 1.0], [2.0, 3.0]]})
    h = sampling.manifest_hash(df)
    assert h == sampling.manifest_hash(df.copy())
    assert h != sampling.manifest_hash(df.assign(au=[[0.0, 1.0], [2.0, 4.0]]))


def test_table_and_bad_regime(tmp_path):
    df = _manifest(n=1000, n_ids=60)
    s = sampling.fixed_subsets(df, tmp_path / "t.json", identity_column="identity")
    t = s.table(df, "identity")
    assert list(t["regime"]) == ["100%", "10%", "5%", "2%", "1%"]
    assert list(t["rows"]) == [1000, 100, 50, 20, 10]
    with pytest.raises(KeyError, match="no 3% regime"):
        s.indices(0.03)
    with pytest.raises(ValueError, match="fraction in"):
        sampling.regime_sizes(10, [1.5])


def test_label_shares_follow_the_source(tmp_path):
    from facelib.data import figures
    from facelib.data.face_model import EXPRESSIONS

    df = _manifest(n=3000)
    s = sampling.fixed_subsets(df, tmp_path / "f.json")
    t = figures.label_shares_table(df, s, "expression", EXPRESSIONS)
    np.testing.assert_allclose(t.sum(axis=0).to_numpy(), 100.0)
    assert list(t.columns) == ["100%", "10%", "5%", "2%", "1%"] and t.index[0] == "neutral"
    assert abs(t.loc["neutral", "10%"] - t.loc["neutral", "100%"]) < 6
    fig = figures.label_shares_by_regime(df, s, "expression", EXPRESSIONS, title="x")
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 5 * len(t)
    import matplotlib.pyplot as plt

    plt.close(fig)
