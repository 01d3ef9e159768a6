"""Flickr-Face from a crawl: the downloaded photos through the preprocessing pipeline.

Supplement 3: "The facial images were then automatically localized and cropped using a face
detector". :func:`build_dataset` lists the photos the crawl downloaded and checked, runs
:func:`facelib.faces.preprocess.preprocess` on them (RetinaFace, the 190/256 crop, HDF5 shards,
a manifest with one row per face, rejects), and joins each face with its photo's id, owner,
licence and tags, so that every face can be attributed: ``OUT/flickr_face.parquet``.

Rerunning resumes (the preprocessing does), and photos downloaded since the last build are
added. Command line: ``facelib flickr build CRAWL OUT``. Shown in ``notebooks/02_flickr_face.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from facelib import storage
from facelib.faces import preprocess as pre
from facelib.flickr.crawl import photos_table

__all__ = ["DATASET", "FILE_LIST", "BuildSummary", "build_dataset", "read_dataset", "samples_figure",
           "ATTRIBUTION_COLUMNS"]

DATASET = "flickr_face.parquet"
FILE_LIST = "downloaded.txt"
ATTRIBUTION_COLUMNS = ["photo_id", "owner", "ownername", "license", "license_name", "tags",
                       "flickr_tags", "date_upload", "page_url"]


@dataclass
class BuildSummary:
    """What a build did: the preprocessing summary plus the dataset's size."""

    photos: int
    faces: int
    photos_with_faces: int
    preprocess: pre.Summary

    def __str__(self) -> str:
        return (f"{self.preprocess}\nFlickr-Face: {self.faces} faces from {self.photos_with_faces} "
                f"of {self.photos} downloaded photos")


def build_dataset(crawl_dir: Path | str, out: Path | str, *, profile: str = "paper", workers: int = 1,
                  shard_size: int = 1000, progress: bool = True, **preprocess_options: Any) -> BuildSummary:
    """Detect and crop the faces of every downloaded photo, then attach attribution.

    Args:
        crawl_dir: a folder made by :func:`facelib.flickr.crawl.crawl`.
        out: the dataset folder: the preprocessing outputs (``crops-*.h5``, ``manifest.parquet``,
            ``files.parquet``, ``rejects.parquet``) plus ``flickr_face.parquet``: the manifest
            joined with ``ATTRIBUTION_COLUMNS`` on the source file.
        profile, workers, shard_size, progress: passed to ``preprocess``.
        **preprocess_options: other options of ``preprocess`` (``min_face``, ``align``, ...).

    Returns:
        A :class:`BuildSummary`.
    """
    crawl_dir, out = Path(crawl_dir), Path(out)
    photos = photos_table(crawl_dir)
    done = photos[photos["status"] == "done"].reset_index(drop=True)
    listing = crawl_dir / FILE_LIST  # keys of the manifest are these relative paths
    tmp = storage.atomic_path(listing)
    tmp.write_text("".join(f"{f}\n" for f in done["file"]))
    os.replace(tmp, listing)
    summary = pre.preprocess(listing, out, profile=profile, workers=workers, shard_size=shard_size,
                             progress=progress, **preprocess_options)
    faces = storage.read_manifest(out / pre.MANIFEST)
    attribution = done[["file"] + ATTRIBUTION_COLUMNS]
    joined = faces.merge(attribution, on="file", how="left", validate="many_to_one")
    missing = joined["photo_id"].isna()
    if missing.any():  # a face whose file the crawl does not know: the folders were mixed up
        raise ValueError(f"{out}: {int(missing.sum())} faces come from files that {crawl_dir} did not "
                         f"download (e.g. {joined.loc[missing, 'file'].iloc[0]!r}); use one dataset "
                         "folder per crawl")
    storage.write_manifest(joined, out / DATASET)
    return BuildSummary(photos=len(done), faces=len(joined),
                        photos_with_faces=int(joined["photo_id"].nunique()) if len(joined) else 0,
                        preprocess=summary)


def read_dataset(out: Path | str) -> pd.DataFrame:
    """The Flickr-Face manifest of a built folder (one row per face, with attribution)."""
    return storage.read_manifest(Path(out) / DATASET)


def samples_figure(crawl_dir: Path | str, out: Path | str, n: int = 6, seed: int = 0, title: str = "") -> Any:
    """Matplotlib figure: ``n`` photos with their detected faces boxed, each with its attribution.

    Args:
        crawl_dir: the crawl folder (photos on disk).
        out: the built dataset folder (``flickr_face.parquet``).
        n: photos shown (chosen at random among photos with at least one face).
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    from facelib import images, viz

    viz.paper_style()
    ds = read_dataset(out)
    ids = ds["photo_id"].drop_duplicates()
    ids = ids.sample(min(n, len(ids)), random_state=seed).tolist() if len(ids) else []
    cols = 3
    rows = max(1, -(-len(ids) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, pid in zip(axes.flat, ids):
        faces = ds[ds["photo_id"] == pid]
        first = faces.iloc[0]
        ax.imshow(images.load_image(Path(crawl_dir) / first["file"]))
        for _, f in faces.iterrows():
            ax.add_patch(Rectangle((f["x1"], f["y1"]), f["x2"] - f["x1"], f["y2"] - f["y1"],
                                   fill=False, lw=1.5, color="#00d0ff"))
        tags = ", ".join(first["tags"]) if isinstance(first["tags"], (list, np.ndarray)) else str(first["tags"])
        ax.set_title(f"{pid}\n{first['license_name']} | {first['ownername']}\ntags: {tags}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
