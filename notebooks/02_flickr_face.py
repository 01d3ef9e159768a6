# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   facelib:
#     after: []  # pages this one reads from (facelib book --jobs)
# ---

# %% [markdown]
# # Flickr-Face: crawling 100 tags and the face-size distribution
#
# Supplement section 3: the uncurated Flickr-Face set was built by downloading Flickr photos
# having one of 100 tags, detecting the faces with RetinaFace and cropping them; it holds
# 1,793,119 faces whose bounding-box sizes follow the supplement's Fig. 1. This page runs the
# whole path with `facelib.flickr`: the tags, a resumable crawl of `flickr.photos.search`, the
# dataset build through the preprocessing pipeline of supplement 1.1, and the statistics, with
# an interactive version of Fig. 1.
#
# In the `demo` profile everything runs against a **local stand-in for Flickr**
# (`facelib.flickr.local_server`, on 127.0.0.1): its photos are scenes that ship with
# scikit-image into which synthetic faces are composited (`facelib.flickr.scenes`), from a
# few pixels to most of the frame, alone, in groups and in crowds, some turned, rotated or
# partly covered. Every number below describes that **demo data**, not Flickr-Face; but since
# every face was put there, the page can also show what Fig. 1 cannot: which faces the
# detector finds and which it misses. The `paper` profile crawls Flickr itself with the API
# key taken from the `FLICKR_API_KEY` environment variable (never a parameter of this page).

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo": the local stand-in, CPU | "paper": Flickr itself
tags: Optional[list] = None  # query tags; None: the first 6 (demo) or all 100
licenses: Optional[list] = None  # Flickr licence ids; None: the recipe's
max_photos: Optional[int] = 600  # stop at this many photos (None: no limit)
max_per_tag: Optional[int] = 150  # at most this many per tag (None: no limit)
crawl_dir: Optional[str] = None  # crawl folder; None: temporary (demo only)
dataset_dir: Optional[str] = None  # dataset folder; None: temporary (demo)
demo_photos: int = 1000  # size of the demo server's catalogue
workers: int = 1  # preprocessing processes
top_tags: int = 20  # tags offered by the explorer's tag filter
bin_width: float = 8.0  # linear histogram bins in pixels (log views: 8/octave)

# %%
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from facelib import explorer, measured, recipes, stats, viz
from facelib.faces import evaluate
from facelib.flickr import TAGS, api, build, crawl, local_server

recipe = recipes.flickr(profile)
demo = profile == "demo"
label = ("DEMO DATA (local stand-in for Flickr, composited faces)" if demo
         else "Flickr-Face")
tags = tags or (list(TAGS[:6]) if demo else list(TAGS))
scratch = None
if crawl_dir is None or dataset_dir is None:
    if not demo:
        raise ValueError("the paper profile needs crawl_dir and dataset_dir "
                         "(notebooks/profiles/paper.yaml)")
    # removed by the last cell (and when the kernel exits, after an error)
    scratch = tempfile.TemporaryDirectory(prefix="flickr-face-demo-")
    crawl_dir = str(Path(scratch.name) / "crawl")
    dataset_dir = str(Path(scratch.name) / "dataset")
pd.set_option("display.max_colwidth", 90)

# %% [markdown]
# ## The 100 tags (supplement 3)
#
# As printed, in the supplement's order. "group photo" is one tag; Flickr matches it in its
# machine form `groupphoto`. The tags this run queries are marked.

# %%
marked = "font-weight: bold; background-color: #dbeafe"
grid = pd.DataFrame([TAGS[r * 10:(r + 1) * 10] for r in range(10)])
grid.style.hide(axis="index").hide(axis="columns").map(
    lambda t: marked if t in tags else "")

# %% [markdown]
# ## Crawl settings
#
# Only the tags and the size of the result are in the supplement. The authors' scraper (since
# withdrawn) asked for licences 4 and 9 and saved the 500-px images; the rest are our choices,
# each with its reason. The `demo` column shows where the demo profile differs (short waits,
# no API quota: it talks to the local server).

# %%
viz.recipe_table(recipes.flickr("paper"), recipes.flickr("demo"))

# %%
ids = pd.DataFrame({"licence": api.LICENSES}).rename_axis("id")
ids["this crawl"] = ids.index.isin(licenses or recipe.licenses)
ids["authors"] = ids.index.isin(recipe.authors_licenses)
viz.table(ids, caption="Flickr's licence ids: those this crawl asks for, and "
          "those of the authors' scraper.")

# %% [markdown]
# ## The crawl
#
# `flickr.photos.search` serves at most about 4000 results per query, so each tag's query is
# split into upload-date windows, halved until each is below the cap; every page's photos are
# committed to `crawl.sqlite` together with the page's completion. Photos are downloaded by 16
# threads under a global rate limit; every body is checked (status, content type, magic bytes,
# size cap, full decode) before it is renamed into place under a name made from the photo id
# alone. 429 (with `Retry-After`), 5xx, timeouts, resets, truncated bodies and bodies that are
# not the photo (a wrong content type, an HTML page, bytes that do not decode: proxies and CDNs
# send such pages now and then) are retried with exponential backoff and jitter; a photo that
# still failed is tried again by the next run. Only a 404/410, a redirect to a placeholder
# elsewhere, or a body that stays invalid through every try is final.
#
# The demo server misbehaves on purpose: one photo per fault kind (each passing fault clears
# after two requests; one photo's body stays over the size cap), duplicate photos across pages,
# photo ids such as `../../evil` in the results, and a 429 on the first API call. It caps a
# query at 100 results (Flickr: about 4000), so that the date windows are split here too.

# %%
if demo:
    catalog = local_server.make_catalog(demo_photos, tags=tags, seed=0)
    server = local_server.LocalFlickr(
        catalog, faults=local_server.demo_faults(catalog),
        result_cap=recipe.result_cap, lifetime_s=900).start()
    client = api.FlickrClient(server.api_key, recipe, api_url=server.api_url)
else:  # the key is read here and never shown
    client = api.FlickrClient.from_env(recipe)
limits = dict(tags=tags, licenses=licenses, max_photos=max_photos,
              max_per_tag=max_per_tag)
# `facelib flickr crawl` shows progress bars; a page does not
summary = crawl.crawl(crawl_dir, client, progress=False, **limits)
print(summary)

# %% [markdown]
# The photos, one row each, with every query tag that found them and what is needed to
# attribute them (owner, licence, photo page). Failed downloads keep their reason:

# %%
photos = crawl.photos_table(crawl_dir)
columns = ["photo_id", "ownername", "license_name", "tags", "status", "tries",
           "reason"]
display(viz.table(photos[columns].head(8),
                  headers={"ownername": "owner", "license_name": "licence"}))
failed = photos.loc[photos.status == "failed", ["photo_id", "tries", "reason"]]
viz.table(failed, caption="Downloads that failed for good, with the reason "
          "the crawl recorded.")

# %% [markdown]
# The upload-date windows of each tag (split below the result cap) and the records the crawl
# refused:

# %%
windows = crawl.windows_table(crawl_dir)
display(viz.table(windows.groupby("tag").agg(windows=("start", "size"),
                                             results=("total", "sum"))))
refused = crawl.refused_table(crawl_dir)
viz.table(refused.groupby("reason").size().rename("records").to_frame())

# %% [markdown]
# Rerunning the same crawl resumes from `crawl.sqlite`: a finished crawl makes no request
# and downloads nothing (a killed one continues where it stopped and first makes folder and
# database agree; `tests/test_flickr_crawl.py` kills it with SIGKILL during the search, the
# downloads, a rename and the table's write, and `benchmarks/bench_flickr_faults.py` counts what
# a crawl at 15 % faulty requests keeps through three kills: every reachable photo, once).

# %%
again = crawl.crawl(crawl_dir, client, progress=False, **limits)
print(again)

# %% [markdown]
# ## Building the dataset
#
# The downloaded photos go through `facelib preprocess` (RetinaFace, the 190/256 crop of
# supplement 1.1, HDF5 shards); each face row of the manifest is joined with its photo's id,
# owner, licence and tags in `flickr_face.parquet`.

# %%
built = build.build_dataset(crawl_dir, dataset_dir, profile=profile,
                            workers=workers, progress=False)
print(built)
faces = build.read_dataset(dataset_dir)
files = pd.read_parquet(Path(dataset_dir) / "files.parquet")

# %%
viz.figure(build.samples_figure(crawl_dir, dataset_dir, n=6, title=label),
           "Six downloaded photos with the faces RetinaFace found (boxes), "
           "each with its photo id, licence, owner and query tags.")

# %% [markdown]
# ## Statistics
#
# Face sizes in source pixels for each measure: $\sqrt{wh}$ of the detector box (the size of
# Fig. 1), its width $w$ and height $h$, $\max(w, h)$ (the box size of the crop), and the
# ratio $\sqrt{wh / (WH)}$ of the face's linear size to the photo's ($W \times H$). Then
# faces per photo (photos without a face included), and the counts per tag and per licence.

# %%
paper_faces = recipes.datasets().flickr_face_faces
display(Markdown(
    f"**{label}**: {len(faces):,} faces from {faces.photo_id.nunique():,} "
    f"photos. The supplement reports {paper_faces:,} faces for Flickr-Face "
    "(paper, supplement 3)."))
measures = {"sqrt_area": "sqrt(w h)", "max": "max(w, h)"}
viz.table(stats.size_summary(faces).rename(index=measures), precision=3,
          caption="Detected face sizes per measure, in pixels (the ratio: "
          "a fraction of the photo's size).")

# %%
viz.table(stats.faces_per_photo(faces, files).to_frame().T,
          caption="Photos by number of detected faces (columns: faces in "
          "the photo).")

# %%
display(viz.table(stats.tag_counts(faces).head(top_tags),
                  caption="Faces and photos per query tag (a photo found by "
                  "two tags counts under both)."))
viz.table(stats.license_counts(faces), caption="Faces and photos per licence.")

# %% [markdown]
# ## The face-size distribution (supplement Fig. 1), interactive
#
# Choose the size measure and the view (the log views use log-spaced bins), tick several tags
# to overlay them (as counts, or as densities to compare their shapes), keep only some
# licences or photos with a given number of faces, and move the two ends of the size range:
# the read-out says how many faces a minimum or maximum size would keep and drop. The dotted
# curves (right axis) read the share of faces at or above any size. The CSV button saves the
# histogram shown.

# %%
sizes = explorer.face_size_explorer(faces, bin_width=bin_width,
                                    top_tags=top_tags, title=label)
viz.figure(sizes, "Face sizes of the dataset built above, with the explorer's "
           "controls; in JupyterLab the same call gives the same figure.")

# %% [markdown]
# From a shell, the same path and the same explorer (`facelib stats` also takes the
# explorer's filters: `--tag`, `--license`, `--faces-per-photo`, `--min-size`,
# `--max-size`). The key comes from https://www.flickr.com/services/apps/create/; the crawl
# resumes when rerun after any stop:
#
# ```bash
# export FLICKR_API_KEY=...
# facelib flickr crawl runs/flickr --max-photos 1000000
# facelib flickr build runs/flickr runs/flickr-face --workers 8
# facelib stats runs/flickr-face/flickr_face.parquet --html sizes.html
# ```

# %% [markdown]
# ## What the detector found, and what it missed
#
# Fig. 1 of the supplement is the distribution of the faces the detector *found*. In the
# `demo` profile we know every face we composited, so we can pair each true face with a
# detection (IoU >= 0.5, one to one) and read the detector's recall, and its false positives,
# by face size. The photos are the downloaded ones; the truth is what the server put in them.

# %%
if demo:
    done = photos.loc[photos.status == "done", "photo_id"]
    truth, found = evaluate.match(server.truth(done), faces)
    display(Markdown(evaluate.recall_note(truth, found)))
    display(viz.table(
        evaluate.by_size(truth, found), index=False,
        caption="Recall and false positives by face size sqrt(w h), octave "
        "bins: true faces binned by their size, detections by theirs.",
        headers={"from_px": "from", "to_px": "to"},
        units={"from_px": "px", "to_px": "px"}))
    viz.figure(evaluate.detection_figure(truth, found),
               "Left: the share of composited faces found, and the share of "
               "detections that match none, by size. Right: the sizes of all "
               "composited faces and of the detections: below about 16 px the "
               "detected distribution (what Fig. 1 plots) falls away from the "
               "true one. Large false positives are mostly the face of the "
               "cat in one of the scenes (scikit-image's `chelsea`).")
else:
    display(Markdown("On Flickr the true faces are unknown: this section "
                     "needs the demo."))

# %% [markdown]
# ## Performance
#
# Measured by the scripts in `benchmarks/` (numbers read from `benchmarks/measured/`, with the
# date and machine of the measurement):

# %% tags=["remove-input"]
Markdown(measured.flickr_note())

# %% tags=["remove-cell"]
if demo:
    server.stop()
if scratch is not None:
    scratch.cleanup()
