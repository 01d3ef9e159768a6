"""The curated pretraining sets of supplement section 2, built as manifests from local roots.

* **Full VGG-Face**: all of VGG-Face2 (~3.4M images, 9131 identities);
* **Small VGG-Face**: a seeded uniform random subset of 1M images of VGG-Face2
  (seed :attr:`facelib.recipes.Datasets.curation_seed`);
* **Large-Scale-Face** (> 5.0M): VGG-Face2 + 300W-LP + IMDb-Face + AffectNet + WIDER FACE.

During pretraining all labels are dropped (supplement 2): a curated manifest has one row per
face with only ``dataset``, ``root`` (the dataset root it came from), ``path`` (relative to it)
and ``box`` (the dataset's face box, where it has one, for cropping; WIDER FACE images hold
several faces, one row each). The manifests feed :mod:`facelib.faces.preprocess` (RetinaFace
crops at 190/256) and then SwAV. What each component contributes is what its reader yields
(:mod:`facelib.data.readers`): e.g. AffectNet's ``training.csv`` / ``validation.csv`` rows with
a face, WIDER FACE's valid faces.

Command line: ``facelib data curate NAME --root vggface2=PATH ... --out manifest.parquet``.
Shown in ``notebooks/01_data_curation.py`` with :func:`counts_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from facelib import recipes, storage
from facelib.data import readers
from facelib.data.record import Problems

__all__ = ["SETS", "COMPONENT_READERS", "PAPER_COUNTS", "component", "small_size", "build", "counts_table"]

#: The components of each curated set, as reader names.
SETS: dict[str, tuple[str, ...]] = {
    "full_vggface": ("vggface2",),
    "small_vggface": ("vggface2",),
    "large_scale_face": ("vggface2", "w300lp", "imdbface", "affectnet", "widerface"),
}

#: Display names.
TITLES = {
    "full_vggface": "Full VGG-Face", "small_vggface": "Small VGG-Face", "large_scale_face": "Large-Scale-Face",
    "vggface2": "VGG-Face2", "w300lp": "300W-LP", "imdbface": "IMDb-Face", "affectnet": "AffectNet",
    "widerface": "WIDER FACE",
}

COMPONENT_READERS = SETS["large_scale_face"]


def _paper_counts() -> dict[str, tuple[float | None, str]]:
    """(number, as printed) of each set and component, from :func:`facelib.recipes.datasets`."""
    d = recipes.datasets()
    return {
        "full_vggface": (d.full_vggface_images, f"~{d.full_vggface_images / 1e6:.1f}M images"),
        "small_vggface": (d.small_vggface_images, f"{d.small_vggface_images / 1e6:.0f}M images (random subset)"),
        "large_scale_face": (d.large_scale_face_images, f"> {d.large_scale_face_images / 1e6:.1f}M images"),
        "vggface2": (d.full_vggface_images, f"~{d.full_vggface_images / 1e6:.1f}M images, {d.vggface2_identities} identities"),
        "w300lp": (None, f"~{d.w300lp_source_images} near-frontal 300W images warped to yaw "
                         f"{d.w300lp_yaw_range_deg[0]}..{d.w300lp_yaw_range_deg[1]} deg"),
        "imdbface": (d.imdb_face_faces, f"{d.imdb_face_faces / 1e6:.1f}M faces, {d.imdb_face_identities:,} identities"),
        "affectnet": (d.affectnet_images, f"> {d.affectnet_images / 1e6:.0f}M images ({d.affectnet_annotated:,} annotated)"),
        "widerface": (d.wider_face_faces, f"{d.wider_face_faces:,} faces in {d.wider_face_images:,} images"),
    }


PAPER_COUNTS = _paper_counts()
MANIFEST_COLUMNS = ("dataset", "root", "path", "box")


def component(dataset: str, root: str | Path, problems: Problems | None = None, progress: bool = False,
              **reader_kwargs: Any) -> pd.DataFrame:
    """The label-free rows (``dataset, root, path, box``) of one component dataset."""
    problems = problems if problems is not None else Problems(collect=True)
    rows = []
    recs = readers.read(dataset, root, problems=problems, **reader_kwargs)
    for r in tqdm(recs, desc=f"reading {dataset}", disable=not progress, unit="face"):
        if r.path is None:
            continue
        rows.append((dataset, str(root), r.path, None if r.box is None else r.box.astype(float).tolist()))
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def small_size(n_full: int) -> int:
    """Images in Small VGG-Face for a VGG-Face2 of ``n_full`` images.

    1M (supplement 2) when the source has at least that many; below (the demo's small
    synthetic stand-in), the paper's proportion 1M / 3.4M of the source, at least one image.
    """
    d = recipes.datasets()
    if n_full >= d.small_vggface_images:
        return d.small_vggface_images
    return max(1, round(n_full * d.small_vggface_images / d.full_vggface_images)) if n_full else 0


def build(name: str, roots: Mapping[str, str | Path], out: str | Path | None = None,
          size: int | None = None, seed: int | None = None, problems: Problems | None = None,
          progress: bool = False) -> pd.DataFrame:
    """Build curated set ``name`` (a key of :data:`SETS`) from local dataset roots.

    Args:
        name: ``full_vggface``, ``small_vggface`` or ``large_scale_face``.
        roots: dataset root per reader name (``{"vggface2": "/data/vggface2", ...}``); every
            component of the set must be given.
        out: if given, the manifest is written there (parquet, atomically).
        size: Small VGG-Face only: rows to draw (default :func:`small_size`: 1M, or the
            paper's proportion of a smaller source).
        seed: Small VGG-Face only: the draw's seed (default ``curation_seed``).
        problems: collects bad lines and missing images (a fresh collector by default; bad
            items never stop the build).
        progress: show a progress bar per component.

    Returns:
        the manifest: columns ``dataset, root, path, box`` (labels dropped, supplement 2).
    """
    if name not in SETS:
        raise ValueError(f"unknown curated set {name!r}; choose one of {', '.join(SETS)}")
    missing = [d for d in SETS[name] if d not in roots]
    if missing:
        raise ValueError(f"{TITLES[name]} needs the root of {', '.join(missing)} (pass --root NAME=PATH)")
    problems = problems if problems is not None else Problems(collect=True)
    parts = [component(d, roots[d], problems, progress) for d in SETS[name]]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    if name == "small_vggface":
        d = recipes.datasets()
        size = small_size(len(df)) if size is None else size
        seed = d.curation_seed if seed is None else seed
        if size > len(df):
            raise ValueError(f"Small VGG-Face draws {size} images but VGG-Face2 at {roots['vggface2']} has "
                             f"{len(df)}; pass a smaller size")
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(2,))))
        keep = np.sort(rng.choice(len(df), size=size, replace=False))
        df = df.iloc[keep].reset_index(drop=True)
    if out is not None:
        storage.write_manifest(df, out)
    return df


def counts_table(built: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The paper's counts beside the built ones (supplement 2).

    One row per curated set, followed by one row per component of Large-Scale-Face.

    Args:
        built: manifests by set name (from :func:`build`); their rows are counted overall and
            per component. ``None`` (or a missing set) leaves the built columns empty.

    Returns:
        columns ``set, component, paper (as printed), paper count, built``.
    """
    built = built or {}
    rows: list[dict[str, Any]] = []
    for name in SETS:
        df = built.get(name)
        num, text = PAPER_COUNTS[name]
        rows.append({"set": TITLES[name], "component": "(all)", "paper (as printed)": text,
                     "paper count": num, "built": None if df is None else len(df)})
    lsf = built.get("large_scale_face")
    for comp in SETS["large_scale_face"]:
        num, text = PAPER_COUNTS[comp]
        rows.append({"set": TITLES["large_scale_face"], "component": TITLES[comp], "paper (as printed)": text,
                     "paper count": num, "built": None if lsf is None else int((lsf["dataset"] == comp).sum())})
    out = pd.DataFrame(rows)
    out["paper count"] = out["paper count"].astype("Int64")
    out["built"] = out["built"].astype("Int64")
    return out
