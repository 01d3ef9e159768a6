"""Fixed low-data subsets (supplement 1.3): drawn once, without looking at the labels, reused.

How a subset is drawn. A single seeded permutation ``order`` of the manifest's rows is made;
the subset of regime ``f`` (a fraction such as 0.1, 0.05, 0.02, 0.01) is its first
``round(f * n)`` rows (at least one). The subsets are therefore **nested**: every smaller
regime's subset lies inside every larger one's, and the 100 % regime is the whole set. No label
is read, so classes are not balanced (supplement: "we don't attempt to balance the classes").

The one exception, for face recognition (supplement 1.3): the 2 % subset must keep at least a
quarter of the identities. When an identity column is given, if the first ``k = round(0.02 n)``
rows of the permutation cover fewer than ``ceil(n_identities / 4)`` identities, the earliest
rows (in permutation order) of the identities not yet covered are swapped in for the latest
rows of identities that have more than one row in the subset, one for one, until the bound
holds. The subset keeps exactly ``k`` rows; the rows swapped out move to just after it, so the
nesting with the 5 % and 10 % subsets is kept, and the 1 % subset is the first rows of the
new 2 % one. The fraction (0.25) and the regime it applies to (0.02) come from
:class:`facelib.recipes.Sampling`.

Fixed once. :func:`fixed_subsets` writes the permutation to a JSON file with the seed, the
regimes, the identity rule and a hash of the source manifest; a second call with the same
inputs reads it back (the identical subsets), and a call whose source manifest or settings
differ from the file's is refused with an error that says what changed.

Shown in ``notebooks/01_data_curation.py``; used by the fine-tuning jobs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from facelib import recipes
from facelib.storage import atomic_path

__all__ = [
    "SubsetMismatchError",
    "FixedSubsets",
    "regime_sizes",
    "draw_order",
    "manifest_hash",
    "fixed_subsets",
    "regime_name",
]

_FORMAT = 1


class SubsetMismatchError(ValueError):
    """A persisted subset file does not match the manifest or settings it is asked for."""


def regime_name(fraction: float) -> str:
    """``0.02 -> "2%"``, ``1.0 -> "100%"``."""
    return f"{fraction * 100:g}%"


def regime_sizes(n: int, regimes: Sequence[float]) -> dict[float, int]:
    """Rows in each regime's subset: ``round(f * n)``, at least 1 (for ``n >= 1``)."""
    out = {}
    for f in regimes:
        if not 0 < f <= 1:
            raise ValueError(f"a data regime must be a fraction in (0, 1], got {f}")
        out[float(f)] = min(n, max(1 if n else 0, int(round(f * n))))
    return out


def draw_order(n: int, seed: int, identities: Sequence[Any] | np.ndarray | None = None,
               rule_regime: float | None = None, min_identity_fraction: float = 0.25) -> np.ndarray:
    """The seeded permutation whose prefixes are the subsets (see the module docstring).

    Args:
        n: number of rows of the source.
        seed: the subsets' seed.
        identities: (n,) identity of each row, for face recognition; ``None`` otherwise.
        rule_regime: the regime whose subset must keep ``min_identity_fraction`` of the
            identities (0.02 in the paper); ignored without ``identities``.
        min_identity_fraction: the fraction of identities to keep (0.25 in the paper).

    Returns:
        (n,) int64 permutation of ``range(n)``.

    Raises:
        ValueError: the rule cannot hold (the regime has fewer rows than the identities it
            must keep).
    """
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1303,))))
    order = rng.permutation(n).astype(np.int64)
    if identities is None or rule_regime is None or n == 0:
        return order
    ids = pd.factorize(pd.Series(np.asarray(identities, dtype=object)))[0]
    if len(ids) != n:
        raise ValueError(f"identities has {len(ids)} entries for {n} rows")
    k = regime_sizes(n, [rule_regime])[float(rule_regime)]
    n_ids = int(ids.max()) + 1
    need = math.ceil(n_ids * min_identity_fraction)
    if k < need:
        raise ValueError(
            f"the {regime_name(rule_regime)} subset has {k} rows but must keep {need} of {n_ids} "
            "identities (supplement 1.3): too few rows for the identity rule"
        )
    prefix = order[:k]
    counts = np.bincount(ids[prefix], minlength=n_ids)
    missing = need - int((counts > 0).sum())
    if missing <= 0:
        return order
    # Swap in: earliest rows (permutation order) of uncovered identities.
    added: list[int] = []
    seen = counts > 0
    for row in order[k:]:
        i = ids[row]
        if not seen[i]:
            seen[i] = True
            added.append(int(row))
            if len(added) == missing:
                break
    # Swap out: latest rows of the subset whose identity keeps another row.
    removed: list[int] = []
    for row in prefix[::-1]:
        i = ids[row]
        if counts[i] > 1:
            counts[i] -= 1
            removed.append(int(row))
            if len(removed) == len(added):
                break
    rm, ad = set(removed), set(added)
    kept = [int(r) for r in prefix if int(r) not in rm]
    rest = [int(r) for r in order[k:] if int(r) not in ad]
    return np.array(kept + added + removed[::-1] + rest, dtype=np.int64)


def manifest_hash(df: pd.DataFrame) -> str:
    """SHA-256 of a manifest's rows (scalar columns, in order) and its column names."""
    h = hashlib.sha256()
    h.update(json.dumps([str(c) for c in df.columns]).encode())
    h.update(str(len(df)).encode())
    for c in df.columns:
        col = df[c]
        if col.dtype == object:
            first = col.dropna().head(1)
            if len(first) and isinstance(first.iloc[0], (list, np.ndarray, dict)):
                col = col.map(lambda v: None if v is None else json.dumps(np.asarray(v).tolist()))
            col = col.astype(str)
        h.update(pd.util.hash_pandas_object(col, index=False).to_numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class FixedSubsets:
    """The persisted subsets of one manifest: ``indices(f)`` are the rows of regime ``f``."""

    seed: int
    regimes: tuple[float, ...]
    sizes: dict[float, int]
    source_hash: str
    source_rows: int
    identity_column: str | None
    min_identity_fraction: float | None
    rule_regime: float | None
    order: np.ndarray

    def indices(self, fraction: float) -> np.ndarray:
        """Sorted row positions (into the source manifest) of the regime ``fraction``."""
        f = float(fraction)
        if f not in self.sizes:
            raise KeyError(f"no {regime_name(f)} regime; have {', '.join(map(regime_name, self.regimes))}")
        return np.sort(self.order[: self.sizes[f]])

    def subset(self, manifest: pd.DataFrame, fraction: float) -> pd.DataFrame:
        """The rows of ``manifest`` in regime ``fraction`` (the manifest must be the source)."""
        if len(manifest) != self.source_rows or manifest_hash(manifest) != self.source_hash:
            raise SubsetMismatchError("this manifest is not the one the subsets were drawn from")
        return manifest.iloc[self.indices(fraction)].reset_index(drop=True)

    def table(self, manifest: pd.DataFrame | None = None, label: str | None = None) -> pd.DataFrame:
        """One row per regime: rows, fraction of the source, and (given ``label``) its distinct values."""
        rows = []
        for f in self.regimes:
            idx = self.indices(f)
            r: dict[str, Any] = {"regime": regime_name(f), "rows": len(idx),
                                 "fraction": len(idx) / max(self.source_rows, 1)}
            if manifest is not None and label is not None:
                r[f"distinct {label}"] = int(manifest[label].iloc[idx].nunique())
            rows.append(r)
        return pd.DataFrame(rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT, "seed": self.seed, "regimes": list(self.regimes),
            "sizes": {str(k): v for k, v in self.sizes.items()}, "source_hash": self.source_hash,
            "source_rows": self.source_rows, "identity_column": self.identity_column,
            "min_identity_fraction": self.min_identity_fraction, "rule_regime": self.rule_regime,
            "order": self.order.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FixedSubsets:
        return cls(
            seed=int(d["seed"]), regimes=tuple(float(f) for f in d["regimes"]),
            sizes={float(k): int(v) for k, v in d["sizes"].items()}, source_hash=d["source_hash"],
            source_rows=int(d["source_rows"]), identity_column=d["identity_column"],
            min_identity_fraction=d["min_identity_fraction"], rule_regime=d["rule_regime"],
            order=np.asarray(d["order"], dtype=np.int64),
        )


def _write_json(obj: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fixed_subsets(manifest: pd.DataFrame, path: str | Path, identity_column: str | None = None,
                  recipe: recipes.Sampling | None = None) -> FixedSubsets:
    """The low-data subsets of ``manifest``, drawn once and persisted at ``path`` (JSON).

    Args:
        manifest: the source (all annotated training rows of a task).
        path: the subsets file. Created on the first call; read back on later ones.
        identity_column: for face recognition, the column naming each row's identity: the
            regime ``recipe.recognition_identity_rule_regime`` then keeps at least
            ``recipe.recognition_min_identity_fraction`` of the identities.
        recipe: regimes, seed and identity rule (default :func:`facelib.recipes.sampling`).

    Returns:
        the :class:`FixedSubsets` (identical on every call with the same inputs).

    Raises:
        SubsetMismatchError: ``path`` exists but was drawn from a different manifest (its hash
            or row count differ) or with different settings; the message says which.
    """
    recipe = recipe if recipe is not None else recipes.sampling()
    path = Path(path)
    regimes = tuple(float(f) for f in recipe.regimes)
    if identity_column is not None and identity_column not in manifest.columns:
        raise KeyError(f"identity column {identity_column!r} not in the manifest ({list(manifest.columns)})")
    src_hash = manifest_hash(manifest)
    rule = recipe.recognition_identity_rule_regime if identity_column else None
    min_frac = recipe.recognition_min_identity_fraction if identity_column else None
    if path.exists():
        try:
            saved = FixedSubsets.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError) as e:
            raise SubsetMismatchError(f"{path}: not a readable subsets file ({e})") from e
        diffs = []
        if saved.source_rows != len(manifest) or saved.source_hash != src_hash:
            diffs.append(f"the source manifest changed ({saved.source_rows} rows, hash "
                         f"{saved.source_hash[:12]} when drawn; now {len(manifest)} rows, hash {src_hash[:12]})")
        if saved.seed != recipe.seed:
            diffs.append(f"seed {saved.seed} in the file, {recipe.seed} asked")
        if saved.regimes != regimes:
            diffs.append(f"regimes {saved.regimes} in the file, {regimes} asked")
        if (saved.identity_column, saved.min_identity_fraction, saved.rule_regime) != (identity_column, min_frac, rule):
            diffs.append(f"identity rule ({saved.identity_column}, {saved.min_identity_fraction}, "
                         f"{saved.rule_regime}) in the file, ({identity_column}, {min_frac}, {rule}) asked")
        if diffs:
            raise SubsetMismatchError(
                f"{path}: refusing to reuse fixed subsets: " + "; ".join(diffs)
                + ". Subsets are fixed once (supplement 1.3): use a new path to draw new ones."
            )
        return saved
    ids = manifest[identity_column].to_numpy() if identity_column else None
    order = draw_order(len(manifest), recipe.seed, ids, rule, min_frac or 0.25)
    subsets = FixedSubsets(
        seed=recipe.seed, regimes=regimes, sizes=regime_sizes(len(manifest), regimes),
        source_hash=src_hash, source_rows=len(manifest), identity_column=identity_column,
        min_identity_fraction=min_frac, rule_regime=rule, order=order,
    )
    _write_json(subsets.to_json(), path)
    return subsets
