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
# (`facelib.flickr.local_server`, on 127.0.0.1): its photos are composites of sample images
# that ship with scikit-image and matplotlib, and every number below describes that
# **demo data**, not Flickr-Face. The `paper` profile crawls Flickr itself with the API key
# taken from the `FLICKR_API_KEY` environment variable (never a parameter of this page).

# %% tags=["parameters"]
profile = "demo"  # "demo": the local stand-in, a minute of CPU | "paper": Flickr, key from $FLICKR_API_KEY
tags: list | None = None  # query tags; None: the first 6 (demo) or all 100 (paper)
licenses: list | None = None  # Flickr licence ids; None: recipes.flickr().licenses
max_photos: int | None = 100  # stop searching once the crawl holds this many photos (None: no limit)
max_per_tag: int | None = 20  # at most this many photos per tag (None: no limit)
crawl_dir: str | None = None  # crawl folder; None: a temporary folder (demo only)
dataset_dir: str | None = None  # Flickr-Face output folder; None: a temporary folder (demo only)
demo_photos: int = 1000  # size of the demo server's catalogue
workers: int = 1  # preprocessing processes
top_tags: int = 15  # tags offered by the figure's tag filter
bin_width: float = 8.0  # histogram bin width in pixels

# %%
import json
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from facelib import recipes, stats, viz
from facelib.flickr import TAGS, api, build, crawl, local_server

recipe = recipes.flickr(profile)
demo = profile == "demo"
label = "DEMO DATA (local stand-in for Flickr, composited sample images)" if demo else "Flickr-Face"
tags = tags or (list(TAGS[:6]) if demo else list(TAGS))
if crawl_dir is None or dataset_dir is None:
    if not demo:
        raise ValueError("the paper profile needs crawl_dir and dataset_dir (notebooks/profiles/paper.yaml)")
    work = Path(tempfile.mkdtemp(prefix="flickr-face-demo-"))
    crawl_dir, dataset_dir = str(work / "crawl"), str(work / "dataset")
pd.set_option("display.max_colwidth", 90)

# %% [markdown]
# ## The 100 tags (supplement 3)
#
# As printed, in the supplement's order. "group photo" is one tag; Flickr matches it in its
# machine form `groupphoto`. The tags this run queries are marked.

# %%
pd.DataFrame([TAGS[r * 10:(r + 1) * 10] for r in range(10)]).style.hide(axis="index").hide(
    axis="columns").map(lambda t: "font-weight: bold; background-color: #dbeafe" if t in tags else "")

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
pd.DataFrame({"licence": api.LICENSES}).rename_axis("id").assign(
    **{"this crawl": lambda d: d.index.isin(licenses or recipe.licenses),
       "authors": lambda d: d.index.isin(recipe.authors_licenses)})

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
    server = local_server.LocalFlickr(catalog, faults=local_server.demo_faults(catalog),
                                      result_cap=recipe.result_cap, lifetime_s=900).start()
    client = api.FlickrClient(server.api_key, recipe, api_url=server.api_url)
else:
    client = api.FlickrClient.from_env(recipe)  # the key is read here and never shown
summary = crawl.crawl(crawl_dir, client, tags=tags, licenses=licenses, max_photos=max_photos,
                      max_per_tag=max_per_tag, progress=False)  # `facelib flickr crawl` shows progress bars
print(summary)

# %% [markdown]
# The photos, one row each, with every query tag that found them and what is needed to
# attribute them (owner, licence, photo page). Failed downloads keep their reason:

# %%
photos = crawl.photos_table(crawl_dir)
display(photos[["photo_id", "ownername", "license_name", "tags", "status", "tries", "reason"]].head(8))
photos.loc[photos.status == "failed", ["photo_id", "tries", "reason"]]

# %% [markdown]
# The upload-date windows of each tag (split below the result cap) and the records the crawl
# refused:

# %%
windows = crawl.windows_table(crawl_dir)
display(windows.groupby("tag").agg(windows=("start", "size"), results=("total", "sum")))
crawl.refused_table(crawl_dir).groupby("reason").size().rename("records").to_frame()

# %% [markdown]
# Rerunning the same crawl resumes from `crawl.sqlite`: a finished crawl makes no request
# and downloads nothing (a killed one continues where it stopped and first makes folder and
# database agree; `tests/test_flickr_crawl.py` kills it with SIGKILL during the search, the
# downloads, a rename and the table's write, and `benchmarks/bench_flickr_faults.py` counts what
# a crawl at 15 % faulty requests keeps through three kills: every reachable photo, once).

# %%
again = crawl.crawl(crawl_dir, client, tags=tags, licenses=licenses, max_photos=max_photos,
                    max_per_tag=max_per_tag, progress=False)
print(again)

# %% [markdown]
# ## Building the dataset
#
# The downloaded photos go through `facelib preprocess` (RetinaFace, the 190/256 crop of
# supplement 1.1, HDF5 shards); each face row of the manifest is joined with its photo's id,
# owner, licence and tags in `flickr_face.parquet`.

# %%
built = build.build_dataset(crawl_dir, dataset_dir, profile=profile, workers=workers, progress=False)
print(built)
faces = build.read_dataset(dataset_dir)
files = pd.read_parquet(Path(dataset_dir) / "files.parquet")

# %%
build.samples_figure(crawl_dir, dataset_dir, n=6, title=label);

# %% [markdown]
# ## Statistics
#
# Face sizes in source pixels for each measure, faces per photo (photos without a face
# included), and the counts per tag and per licence.

# %%
display(Markdown(f"**{label}**: {len(faces):,} faces from {faces.photo_id.nunique():,} photos. "
                 f"The supplement reports {recipes.datasets().flickr_face_faces:,} faces for Flickr-Face "
                 "(paper, supplement 3)."))
stats.size_summary(faces).round(1)

# %%
stats.faces_per_photo(faces, files).to_frame().T

# %%
display(stats.tag_counts(faces).head(top_tags))
stats.license_counts(faces)

# %% [markdown]
# ## The face-size distribution (supplement Fig. 1), interactive
#
# Choose the size measure, the axes (linear or log), a tag, and drag the minimum-size slider:
# the shaded sizes would be dropped, and the dotted curve (right axis) reads the share of
# faces at or above any size.

# %%
stats.face_size_figure(faces, bin_width=bin_width, top_tags=top_tags,
                       title=f"Face sizes<br><sup>{label}</sup>")

# %% [markdown]
# In JupyterLab (with a live kernel) the same data can be explored with widgets, over every
# tag and any threshold; this needs a kernel, so the book does not run it:
#
# ```python
# stats.face_size_explorer(faces)
# ```
#
# From a shell, the same path is:
#
# ```bash
# export FLICKR_API_KEY=...            # from https://www.flickr.com/services/apps/create/
# facelib flickr crawl runs/flickr --max-photos 1000000   # resumable: rerun after any stop
# facelib flickr build runs/flickr runs/flickr-face --workers 8
# facelib stats runs/flickr-face/flickr_face.parquet --html sizes.html
# ```

# %% [markdown]
# ## Performance
#
# Measured by the scripts in `benchmarks/` (numbers read from `benchmarks/measured/`, with the
# date and machine of the measurement):

# %% tags=["remove-input"]
crawl_bench = json.loads(Path("../benchmarks/measured/bench_flickr_crawl.json").read_text())
hist_bench = json.loads(Path("../benchmarks/measured/bench_stats_histogram.json").read_text())
rss = list(crawl_bench["peak_rss_mb"].items())
display(Markdown(
    f"- **Crawl throughput** (`bench_flickr_crawl.py`, {crawl_bench['machine']}, {crawl_bench['date']}; "
    f"local server with {crawl_bench['latency_s'] * 1000:.0f} ms per photo request): "
    f"{crawl_bench['concurrent_photos_per_s']} photos/s with {crawl_bench['concurrency']} concurrent "
    f"downloads vs {crawl_bench['sequential_photos_per_s']} photos/s sequentially, "
    f"**{crawl_bench['speedup']}x** (goal: at least {crawl_bench['goal']:g}x).\n"
    f"- **Memory** of a crawl process: {rss[0][1]} MB peak for {rss[0][0]} photos, {rss[1][1]} MB for "
    f"{rss[1][0]} photos, of which {crawl_bench['imports_rss_mb']} MB are the imported libraries "
    "(bodies are streamed to disk, never held).\n"
    f"- **Histogram** of {hist_bench['rows']:,} face boxes from a parquet manifest "
    f"(`bench_stats_histogram.py`, {hist_bench['machine']}): **{hist_bench['seconds']} s** "
    f"(goal < {hist_bench['goal_seconds']:g} s), {hist_bench['speedup']}x faster than reading the whole "
    f"manifest with pandas and binning with `pd.cut` ({hist_bench['baseline_seconds']} s)."
))

# %% tags=["remove-cell"]
if demo:
    server.stop()
