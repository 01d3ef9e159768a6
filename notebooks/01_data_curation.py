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
# # Data curation
#
# Supplement 1.1, "Datasets and data preparation": every image used for pretraining was
# detected with RetinaFace {cite}`deng2019retinaface` and cropped from the produced bounding box
# "so that the face will take approx. 190px on a 256x256 px image"; face recognition
# (supplement 1.2) aligns faces with 5 landmarks. The authors released no code for either. This
# page runs `facelib.faces.preprocess`, the resumable batch pipeline that does both and writes
# the crops into HDF5 shards in the layout the authors' training code reads, on a folder of
# photos, and shows what it wrote.
#
# In the `demo` profile the photos are the six that ship inside scikit-image and matplotlib
# (three with a face, three without: a cup of coffee, a rocket, a cat), plus two broken files
# made here to show the rejects. The `paper` profile points `image_root` at a real image
# folder.

# %% tags=["parameters"]
from typing import Optional

profile = "demo"  # "demo": packaged photos, CPU | "paper": a real image folder
image_root: Optional[str] = None  # photos (folder or list file); None: demo
out_dir: Optional[str] = None  # shards and manifest; None: a temporary folder
workers: int = 1  # preprocessing processes
align: bool = True  # also write the 5-point aligned faces (supplement 1.2)
show_max: int = 12  # at most this many crops and aligned faces are drawn
data_roots: Optional[dict] = None  # roots by reader name; None: synthetic
data_dir: Optional[str] = None  # curated sets, subsets; None: results/data
native_faces: int = 40  # demo: synthetic faces per dataset's native format
synth_faces: int = 2000  # synthetic labelled faces in shards (for the subsets)
synth_identities: int = 100  # persons among them
synth_seed: int = 0  # seed of the synthetic faces

# %%
import io
import tempfile
from pathlib import Path

import h5py
import pandas as pd
from PIL import Image
from IPython.display import Markdown, display

from facelib import images, recipes, storage, viz
from facelib.faces import figures, samples
from facelib.faces import preprocess as pp

viz.paper_style()
recipe = recipes.crop(profile)
demo = profile == "demo"
scratch = None
if image_root is None or out_dir is None:
    if not demo:
        raise ValueError("the paper profile needs image_root and out_dir "
                         "(notebooks/profiles/paper.yaml)")
    # removed by the last cell (and when the kernel exits, after an error)
    scratch = tempfile.TemporaryDirectory(prefix="facelib-curation-")
    image_root = image_root or str(Path(scratch.name) / "photos")
    out_dir = out_dir or str(Path(scratch.name) / "out")
if demo and not Path(image_root).exists():
    made = samples.write_sample_folder(image_root)
    display(pd.DataFrame({"file": list(made), "content": list(made.values())}))
pd.set_option("display.max_colwidth", 100)

# %% [markdown]
# ## Detection and cropping
#
# The crop geometry and the detector settings come from `recipes.crop()`. The supplement gives
# the detector and the 190/256 ratio; the rest (which RetinaFace, thresholds, the box-size
# rule, detection on a copy whose long side is at most `detect_max_side` px) are our conventions,
# each with its note (`facelib preprocess --detect-max-side` changes it).

# %%
viz.recipe_table(recipe)

# %% [markdown]
# The pipeline walks the folder, decodes each file safely (EXIF orientation, greyscale, CMYK,
# 16-bit and transparent images converted; broken files rejected with a reason), detects the
# faces, crops each one to 256x256 with the face box scaled to 190 px, and writes JPEG crops
# into HDF5 shards plus a parquet manifest (one row per face). Running it again does no work:
# files already in the manifest are skipped, once every shard they sit in has been checked
# against its recorded size and SHA-1 (a damaged or missing shard's photos would be processed
# again).

# %%
summary = pp.preprocess(image_root, out_dir, recipe=recipe, workers=workers,
                        align=align, progress=False)
print(summary)
again = pp.preprocess(image_root, out_dir, recipe=recipe, workers=workers,
                      align=align, progress=False)
print(f"second run: {again.files} files processed, {again.skipped} skipped\n"
      f"{again.verification}")

# %%
out = Path(out_dir)
manifest = storage.read_manifest(out / pp.MANIFEST)
files = storage.read_manifest(out / pp.FILES)
rejects = storage.read_manifest(out / pp.REJECTS)
viz.table(files[["file", "width", "height", "detected", "faces", "status",
                 "reason"]],
          caption="Every photo of the folder: its size, the faces detected "
          "and kept, and why a file was rejected.",
          units={"width": "px", "height": "px"})

# %% [markdown]
# ### Detections
#
# Boxes with their confidence and the 5 landmarks in the standard order (eyes, nose, mouth
# corners; red, yellow, purple, green, blue), in source pixels, for every photo that has at
# least one face (at most six are drawn).

# %%
shown = [f for f in files.loc[files["faces"] > 0, "file"]][:6]
photos = [(f, images.load_image(Path(image_root) / f)) for f in shown]
viz.figure(figures.detections_figure(photos, manifest),
           "RetinaFace's boxes, confidences and 5 landmarks on the photos "
           "with a face.")

# %% [markdown]
# ### The 256x256 crops
#
# Read back from the HDF5 shards through `storage.ShardDataset`. The blue box is the detector
# box carried into the crop by the stored transform: its long side is 190 px, the dashed square
# is 190 px for reference; the landmarks follow the same transform.

# %%
viz.figure(figures.crops_figure(manifest.head(show_max), out, recipe),
           "The stored 256x256 crops: the detector box (blue) has a long side "
           "of 190 px; the dashed square is 190 px for reference.")

# %%
long_side = manifest[["face_w", "face_h"]].max(axis=1)
box_in_crop = manifest["crop_scale"] * long_side
display(Markdown(
    f"Face box long side in the crops: mean {box_in_crop.mean():.1f} px, "
    f"min {box_in_crop.min():.1f}, max {box_in_crop.max():.1f} "
    f"(target {recipe.face_size})."
))
viz.table(manifest[["file", "face", "score", "face_w", "face_h", "shard",
                    "index"]].head(show_max),
          headers={"face_w": "face width", "face_h": "face height"},
          units={"face_w": "px", "face_h": "px"},
          caption="The first rows of the manifest: one per face, with its "
          "shard.")

# %% [markdown]
# ### Aligned faces (supplement 1.2)
#
# A least-squares similarity transform maps the 5 landmarks onto the ArcFace 112x112 template
# {cite}`deng2019arcface` (circles); the image is warped with it.

# %%
if align and len(manifest):
    viz.figure(figures.aligned_figure(manifest.head(show_max), out, recipe),
               "Faces aligned to the ArcFace 112x112 template (circles) by "
               "their 5 landmarks.")

# %% [markdown]
# ### Rejects
#
# Every file that gave no face is listed with its reason. `error` marks files that could not be
# read at all (the command exits with status 1 when there are any); photos without a face are
# kept apart from those.

# %%
rejects

# %% [markdown]
# The shards use the layout of the authors' training code: one HDF5 dataset `images` of
# variable-length `uint8` (the encoded JPEG bytes), decoded with PIL and converted to RGB.

# %%
first = manifest.iloc[0] if len(manifest) else None
if first is not None:
    with h5py.File(out / first["shard"], "r") as f:
        items = f["images"]
        raw = items[int(first["index"])]
        print(f"{first['shard']}: dataset 'images', {len(items)} items, "
              f"dtype {items.dtype}")
    decoded = Image.open(io.BytesIO(raw.tobytes())).convert("RGB")
    print(f"item {int(first['index'])}: {len(raw)} bytes of JPEG -> "
          f"{decoded.size} {decoded.mode}")

# %% [markdown]
# ## Curated sets, synthetic faces and low-data subsets
#
# The paper pretrains on three curated sets (supplement 2) and fine-tunes every task on fixed,
# label-agnostic subsets of 100, 10, 5, 2 and 1 % of its training data (supplement 1.3). The
# datasets involved (VGG-Face2, 300W-LP, IMDb-Face, AffectNet, WIDER FACE, DISFA, BP4D,
# AFLW2000-3D) are licence-restricted, so the `demo` profile runs the same code on
# **synthetic faces**: labelled, deterministic, and written in each dataset's native file
# format, so that the real readers, the curated compositions and the subsets all run as they
# do in the `paper` profile on the real roots (`data_roots`).

# %%
from pathlib import Path

import numpy as np
import pandas as pd
from myst_nb import glue

from facelib import book, recipes
from facelib.data import curated, native, readers, sampling
from facelib.data import figures as data_figures
from facelib.data.face_model import AU_IDS, EXPRESSIONS
from facelib.data.record import Problems
from facelib.data.synth_set import write_synth_set

data_path = Path(data_dir) if data_dir else book.repo_path("results", "data")
data_path.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ### Synthetic labelled faces
#
# Each face is a 3D model of the 68 points of the 300W/iBUG layout, deformed by a persistent
# identity (face shape, eye spacing, nose and mouth geometry, skin, hair, glasses, beard) and by
# the 12 DISFA action units, rotated by yaw, pitch and roll and projected; contour, brows, eyes,
# nose, lips, hair and wrinkles are drawn along the projected points, then lit, occluded,
# blurred, noised and JPEG-compressed at random. So the 68 2D and 3D landmarks, the 5 points,
# the pose and the AU intensities are exact labels; the expression class and valence/arousal
# follow from the AUs by documented rules (`facelib.data.face_model`), with a little noise. The
# same seed and index give the same bytes on any machine. Below: landmarks (green), the 5 points
# (pink), the face box (yellow) and each face's labels.

# %%
viz.figure(data_figures.synth_grid(16, seed=synth_seed, cols=4),
           "Sixteen synthetic faces with their labels: landmarks (green), the "
           "5 points (pink) and the face box (yellow).")

# %% [markdown]
# What to look for: a head with ears, neck and shoulders on a cluttered background; hair as a
# cap with a hairline (or bald, or long behind the head); brows, eyes with lids and an iris, a
# nose with nostrils, lips that part and show teeth when the jaw drops; beards and glasses on
# some people; turned heads with the far cheek shaded and the nose crossing the far side; and
# at random a hand-like or coloured occluder, a lighting gradient, blur, noise and JPEG
# blocking. The green points sit on the drawn contour, brows, eyes, nose and lips whatever the
# pose. The faces are cartoons, not photographs: enough for every task to be learnable on a
# laptop, not a substitute for the real data.
#
# One person, frontal, without nuisances: each action unit alone at intensity 0, 1, 3 and 5
# (AU1 inner brow raiser, AU4 brow lowerer, AU6 cheek raiser, AU12 lip corner puller, AU15 lip
# corner depressor, AU26 jaw drop).

# %%
viz.figure(data_figures.au_sweep(aus=(1, 4, 6, 12, 15, 26), index=1,
                                  seed=synth_seed),
           "One person, each action unit alone at intensity 0, 1, 3 and 5.")

# %% [markdown]
# ### The datasets' native formats
#
# In the `demo` profile every component dataset is stood in for by synthetic faces written in
# its own layout (VGG-Face2 identity folders and loose box/landmark CSVs, 300W-LP and
# AFLW2000-3D `.mat` files, AffectNet's `training.csv`, IMDb-Face's CSV, WIDER FACE's
# `bbx_gt` file, DISFA's per-AU label files, BP4D's FERA 2015 intensity CSVs, 300W `.pts`;
# not WFLW, whose 98-point layout the synthetic faces do not have). The readers of
# `facelib.data.readers` read them back; the table says what each yields (fields a dataset
# lacks stay absent) and how many problems (bad lines, missing images) were met.

# %%
if data_roots:
    roots = {k: Path(v) for k, v in data_roots.items()}
    reader_kwargs = {}
else:
    roots = native.write_all(data_path / "native", native_faces,
                             seed=synth_seed)
    reader_kwargs = {
        "disfa": {"frame_pattern": "frames/{subject}/{frame:05d}.png"},
        "bp4d": {"frame_pattern": "images/{subject}/{task}/{frame:04d}.jpg"}}
problems = {name: Problems(collect=True) for name in roots}
viz.table(pd.DataFrame([
    readers.summarize(name, root, problems[name],
                      **reader_kwargs.get(name, {}))
    for name, root in roots.items()]),
    caption="What each reader yields from its dataset's native files.")

# %% [markdown]
# ### Curated pretraining sets (supplement 2)
#
# Full VGG-Face is all of VGG-Face2; Small VGG-Face a seeded random 1M subset of it (in the
# demo, the paper's proportion 1M / 3.4M of the stand-in); Large-Scale-Face combines VGG-Face2,
# 300W-LP, IMDb-Face, AffectNet and WIDER FACE. Labels are dropped: a manifest row is
# `dataset, root, path, box`. The paper's counts are beside the ones built here (in the demo,
# from the synthetic stand-ins; in the `paper` profile, from the real roots).

# %%
built = {name: curated.build(name, roots, out=data_path / f"{name}.parquet")
         for name, parts in curated.SETS.items()
         if all(p in roots for p in parts)}
counts = curated.counts_table(built)
lsf = built.get("large_scale_face")
glue("lsf_built", int(len(lsf)) if lsf is not None else 0, display=False)
viz.table(counts, caption="The curated sets: the paper's counts beside the "
          "ones built here.")

# %% [markdown]
# Large-Scale-Face as built here holds {glue:}`lsf_built` faces; the manifests are written
# beside the other data of this page (`data_dir`) and feed `facelib preprocess` and SwAV.

# %% [markdown]
# ### A synthetic training set in shards
#
# For the downstream tasks the demo renders a labelled set through the storage layer (HDF5
# shards in the authors' layout + a parquet manifest whose columns are the labels), so that the
# task code reads synthetic and real data the same way.

# %%
synth_name = f"synth_n{synth_faces}_id{synth_identities}_seed{synth_seed}"
synth_manifest = write_synth_set(data_path / synth_name, synth_faces,
                                 seed=synth_seed,
                                 num_identities=synth_identities,
                                 progress=False)
glue("synth_rows", len(synth_manifest), display=False)
viz.table(synth_manifest[["identity", "expression", "valence", "arousal",
                          "shard", "index"]].head())

# %% [markdown]
# The set holds {glue:}`synth_rows` faces; every column of a task's labels is in the manifest.

# %% [markdown]
# ### Fixed low-data subsets (supplement 1.3)
#
# One seeded permutation of the rows; the subset of regime *f* is its first *f* · *n* rows, so
# the subsets are nested (1 % ⊂ 2 % ⊂ 5 % ⊂ 10 % ⊂ 100 %) and drawn without reading a label.
# For face recognition the 2 % subset must keep at least a quarter of the identities: if the
# first 2 % covers fewer, the earliest rows of uncovered identities are swapped in for the
# latest rows of identities that have several, keeping the size. The subsets are written once
# with the seed, the regimes and a hash of the source manifest; a second run reads them back,
# and a changed source is refused.

# %%
rule = recipes.sampling()
subsets_file = data_path / "subsets" / f"{synth_name}_recognition.json"
subsets = sampling.fixed_subsets(synth_manifest, subsets_file,
                                 identity_column="identity")
table = subsets.table(synth_manifest, "identity")
n_ids = synth_manifest["identity"].nunique()
required = int(np.ceil(n_ids * rule.recognition_min_identity_fraction))
table["identities required"] = [
    required if f == rule.recognition_identity_rule_regime else ""
    for f in subsets.regimes]
viz.table(table, caption="The nested low-data subsets of each regime.")

# %% [markdown]
# Label distributions per regime: expression shares (left to right: each regime's subset) stay
# those of the full set, and so do mean AU12 intensity and valence, because sampling ignores
# the labels (the paper does not balance classes).

# %%
viz.figure(data_figures.label_shares_by_regime(
    synth_manifest, subsets, "expression", EXPRESSIONS,
    title="Expression classes in each regime's subset"),
    "Expression shares in each regime's subset: the same as in the full set.")

# %%
au12 = synth_manifest["au"].map(
    lambda a: float(np.asarray(a)[AU_IDS.index(12)]))
valence, arousal = synth_manifest["valence"], synth_manifest["arousal"]
viz.table(pd.DataFrame({
    f"{f * 100:g}%": {"rows": len(idx), "mean AU12": au12.iloc[idx].mean(),
                      "mean valence": valence.iloc[idx].mean(),
                      "mean arousal": arousal.iloc[idx].mean()}
    for f in subsets.regimes for idx in [subsets.indices(f)]
}), caption="Label means per regime's subset: sampling ignores the labels.")

# %% tags=["remove-cell"]
if scratch is not None:
    scratch.cleanup()
