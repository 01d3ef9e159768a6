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
profile = "demo"  # "demo": packaged photos, seconds on CPU | "paper": a real image folder
image_root: str | None = None  # folder of photos (or a text file listing them); None: demo photos
out_dir: str | None = None  # output folder (shards, manifest); None: a temporary folder (demo only)
workers: int = 1  # preprocessing processes
align: bool = True  # also write the 5-point aligned faces (supplement 1.2)
show_max: int = 12  # at most this many crops and aligned faces are drawn

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
if image_root is None or out_dir is None:
    if not demo:
        raise ValueError("the paper profile needs image_root and out_dir (notebooks/profiles/paper.yaml)")
    work = Path(tempfile.mkdtemp(prefix="facelib-curation-"))
    image_root = image_root or str(work / "photos")
    out_dir = out_dir or str(work / "out")
if demo and not Path(image_root).exists():
    made = samples.write_sample_folder(image_root)
    display(pd.DataFrame({"file": list(made), "content": list(made.values())}))
pd.set_option("display.max_colwidth", 100)

# %% [markdown]
# ## Detection and cropping
#
# The crop geometry and the detector settings come from `recipes.crop()`. The supplement gives
# the detector and the 190/256 ratio; the rest (which RetinaFace, thresholds, the box-size
# rule, detection on a copy of at most 1024 px) are our conventions, each with its note.

# %%
viz.recipe_table(recipe)

# %% [markdown]
# The pipeline walks the folder, decodes each file safely (EXIF orientation, greyscale, CMYK,
# 16-bit and transparent images converted; broken files rejected with a reason), detects the
# faces, crops each one to 256x256 with the face box scaled to 190 px, and writes JPEG crops
# into HDF5 shards plus a parquet manifest (one row per face). Running it again does no work:
# files already in the manifest are skipped.

# %%
summary = pp.preprocess(image_root, out_dir, recipe=recipe, workers=workers, align=align,
                        progress=False)
print(summary)
again = pp.preprocess(image_root, out_dir, recipe=recipe, workers=workers, align=align,
                      progress=False)
print(f"second run: {again.files} files processed, {again.skipped} skipped")

# %%
out = Path(out_dir)
manifest = storage.read_manifest(out / pp.MANIFEST)
files = storage.read_manifest(out / pp.FILES)
rejects = storage.read_manifest(out / pp.REJECTS)
files[["file", "width", "height", "detected", "faces", "status", "reason"]]

# %% [markdown]
# ### Detections
#
# Boxes with their confidence and the 5 landmarks in the standard order (eyes, nose, mouth
# corners; red, yellow, purple, green, blue), in source pixels, for every photo that has at
# least one face (at most six are drawn).

# %%
shown = [f for f in files.loc[files["faces"] > 0, "file"]][:6]
photos = [(f, images.load_image(Path(image_root) / f)) for f in shown]
figures.detections_figure(photos, manifest);

# %% [markdown]
# ### The 256x256 crops
#
# Read back from the HDF5 shards through `storage.ShardDataset`. The blue box is the detector
# box carried into the crop by the stored transform: its long side is 190 px, the dashed square
# is 190 px for reference; the landmarks follow the same transform.

# %%
figures.crops_figure(manifest.head(show_max), out, recipe);

# %%
box_in_crop = manifest["crop_scale"] * manifest[["face_w", "face_h"]].max(axis=1)
display(Markdown(
    f"Face box long side in the crops: mean {box_in_crop.mean():.1f} px, "
    f"min {box_in_crop.min():.1f}, max {box_in_crop.max():.1f} (target {recipe.face_size})."
))
manifest[["file", "face", "score", "face_w", "face_h", "shard", "index"]].head(show_max)

# %% [markdown]
# ### Aligned faces (supplement 1.2)
#
# A least-squares similarity transform maps the 5 landmarks onto the ArcFace 112x112 template
# {cite}`deng2019arcface` (circles); the image is warped with it.

# %%
if align and len(manifest):
    figures.aligned_figure(manifest.head(show_max), out, recipe);

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
        raw = f["images"][int(first["index"])]
        print(f"{first['shard']}: dataset 'images', {len(f['images'])} items, dtype {f['images'].dtype}")
    decoded = Image.open(io.BytesIO(raw.tobytes())).convert("RGB")
    print(f"item {int(first['index'])}: {len(raw)} bytes of JPEG -> {decoded.size} {decoded.mode}")
