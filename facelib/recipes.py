"""Every hyperparameter of the paper, in one place.

Each value is a field of a frozen dataclass whose metadata records where it comes from:

* ``source="supplement"``: printed in the supplementary material (``section`` names where);
* ``source="code"``: not in the paper, taken from the authors' released code or the SwAV code it
  forks (the book's page "What the paper and the released code say", ``book/paper_and_code.md``);
* ``source="convention"``: neither gives it; the common practice we chose, with a note saying so.

``PAPER`` variants reproduce the supplement. ``DEMO`` variants are derived from them by
:func:`override` and change sizes only (resolutions, epochs, batch, prototypes), never the
algorithm. Notebooks, jobs, the book's tables and the tests all read values from here.

Shown in ``notebooks/00_recipes.py``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Iterator, TypeVar

import numpy as np

from facelib.errors import InputError

__all__ = [
    "Crop",
    "Pretrain",
    "Recognition",
    "Landmarks",
    "AUIntensity",
    "Emotion",
    "Recon3D",
    "Sampling",
    "Datasets",
    "PROFILES",
    "TASKS",
    "RecipeError",
    "crop",
    "pretrain",
    "task",
    "sampling",
    "datasets",
    "override",
    "describe",
    "lr_schedule",
    "Finetune",
    "finetune",
    "Launch",
    "launch",
    "Flickr",
    "flickr",
]

PROFILES = ("demo", "paper")

R = TypeVar("R")


class RecipeError(InputError, ValueError):
    """An override names a field the recipe does not have, or gives it a value of the wrong type."""


def _p(default: Any, section: str, source: str = "supplement", note: str = "") -> Any:
    """A recipe field: its value plus where it comes from (``section``, ``source``, ``note``)."""
    if source not in ("supplement", "code", "convention"):
        raise ValueError(f"unknown source {source!r}")
    meta = {"section": section, "source": source, "note": note}
    if isinstance(default, (list, dict, set)):
        raise TypeError("recipe values must be immutable: use tuples")
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------------------------
# Data preparation (supplement 1.1, "Datasets and data preparation")
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crop:
    """How every pretraining image is made from a detected face (supplement 1.1)."""

    detector: str = _p("RetinaFace", "1.1", note="[6] Deng et al., RetinaFace")
    detector_backbone: str = _p(
        "mobilenet0.25", "1.1", "convention",
        "the supplement does not say which RetinaFace; we run the MobileNet-0.25 model offline",
    )
    face_size: int = _p(190, "1.1", note="the face takes approx. 190 px ...")
    output_size: int = _p(256, "1.1", note="... of a 256x256 px image")
    box_size: str = _p(
        "max", "1.1", "convention",
        "box size = max(w, h) of the detector box; 'mean' and 'sqrt_area' are options",
    )
    detect_max_side: int = _p(
        640, "1.1", "convention",
        "detect on a copy whose long side is at most this. Why a limit: at full resolution huge "
        "faces get duplicate boxes (the largest anchors are 512 px). Why 640: the MobileNet-0.25 "
        "RetinaFace was trained on 640x640 crops (Pytorch_Retinaface cfg_mnet image_size) and "
        "insightface detects at det_size 640x640 by default; the network's cost grows with the "
        "pixels it sees. Measured on a folder of 53 real photos with 74 faces: the same face count on "
        "every photo as with 1024, boxes IoU median 0.97 / min 0.88 against 1024 (1024 against "
        "full resolution: min 0.60); pipeline CPU per image 29.6 -> 21.0 ms. Cost: in a 4000x3000 "
        "photo the smallest face found grows from ~70 to ~110 px (1024 found 60-70 px faces)",
    )
    score_threshold: float = _p(0.5, "1.1", "convention", "RetinaFace confidence threshold")
    nms_threshold: float = _p(0.4, "1.1", "convention", "RetinaFace's usual NMS IoU threshold")
    aligned_size: tuple[int, int] = _p(
        (112, 112), "1.2", "convention",
        "face recognition: 5-point alignment to the ArcFace 112x112 template ([5], [16])",
    )
    jpeg_quality: int = _p(95, "1.1", "convention", "quality of the crops stored in HDF5 shards")
    min_face: int = _p(
        0, "1.1", "convention",
        "faces smaller than this (box size in source px) are dropped; the supplement keeps all "
        "(its Fig. 1 shows the face-size distribution of Flickr-Face)",
    )
    max_image_pixels: int = _p(
        100_000_000, "1.1", "convention",
        "decompression-bomb guard: images with more pixels are rejected before decoding",
    )

    @property
    def scale(self) -> float:
        """Side of the square crop in units of the face box size (256 / 190)."""
        return self.output_size / self.face_size


# --------------------------------------------------------------------------------------------
# Unsupervised pretraining (supplement 1.1)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pretrain:
    """SwAV pretraining as in supplement 1.1 (following [4], Caron et al.)."""

    method: str = _p(
        "SwAV", "1.1",
        note="'similarly with [4]'; 'supervised' trains the same trunk, data and schedule on identity "
             "labels instead (the paper's supervised baseline; facelib.swav.supervised)",
    )
    arch: str = _p("resnet50", "1.1", "code", "ResNet-50 trunk in torchvision layout")
    width: int = _p(
        64, "1.1", "code",
        "base width of the ResNet's stages (64, 128, 256, 512 channels before expansion, torchvision's); "
        "a size: the demo narrows it (facelib.swav.resnet)",
    )
    num_gpus: int = _p(64, "1.1")
    batch_size: int = _p(4096, "1.1", note="global batch over all GPUs")
    sync_bn: bool = _p(True, "1.1", note="Synchronized Batch Normalization")
    sync_bn_group_size: int = _p(
        8, "1.1", "code", "BN statistics synchronised within groups of 8 GPUs (one node)"
    )
    epochs: int = _p(200, "1.1")
    weight_decay: float = _p(1e-6, "1.1")
    base_lr: float = _p(
        4.8, "1.1",
        note="peak learning rate. Demo: 2.4 decayed to 0.0024 without warm-up (batch 64, not 4096), measured "
             "on the demo (setting of min_scale_crops' note, colour jitter at half strength): held-out identity "
             "k-NN 0.35/0.34 at 2.4 -> 0.0024, 0.28/0.30 at 1.2 -> 0.0012, 0.24/0.22 at 4.8 -> 0.045",
    )
    final_lr: float = _p(
        0.045, "1.1",
        note="printed 'decayed toward 0.045'; SwAV's own 200-epoch script uses 0.0048. Kept as printed",
    )
    warmup_epochs: int = _p(10, "1.1", note="linear warm-up over the first 10 epochs")
    warmup_start_lr: float = _p(0.3, "1.1", "code", "start of the warm-up in the released script")
    scheduler: str = _p("cosine", "1.1", note="Cosine scheduler [8] after the warm-up")
    temperature: float = _p(
        0.1, "1.1",
        note="Demo: 0.2, measured on the demo (ResNet-18 of a quarter width, 1,000 prototypes, 2,048 faces, "
             "150 s on one core; page 03's probe on 2 probe sets): held-out identity k-NN 0.39/0.38 and linear "
             "probe 0.52/0.46 at 0.2 against 0.32/0.36 and 0.47/0.46 at 0.1, effective rank of the features "
             "49/52 against 41/44. Fine-tuned from the page's 24-epoch trunks (3 seeds, 10 % and 2 % of 1,000 "
             "faces): AU ICC at 10 % 0.069 +- 0.002 against 0.047 +- 0.006, landmark NME at 2 % 0.273 +- 0.007 "
             "against 0.285 +- 0.003",
    )
    sinkhorn_eps: float = _p(0.05, "1.1", note="Sinkhorn regularisation")
    sinkhorn_iters: int = _p(3, "1.1", "code")
    num_prototypes: int = _p(
        3000, "1.1", "code",
        "a size: the demo's 1,000 for 4,096 faces, measured on the demo (ResNet-18 of a quarter width, "
        "150 s on one core, page 03's probe on 2 probe sets, held-out identity k-NN top-1): 0.24/0.26 with "
        "100 prototypes, 0.27/0.27 with 300, 0.32/0.36 with 1,000 (and more iterations in the same time), "
        "0.32/0.25 with 3,000",
    )
    feat_dim: int = _p(128, "1.1", "code", "projection output, L2-normalised")
    hidden_mlp: int = _p(2048, "1.1", "code", "projection head 2048 -> 2048 (BN, ReLU) -> 128")
    freeze_prototypes_iters: int = _p(313, "1.1", "code", "prototypes get no gradient before this")
    queue_length: int = _p(0, "1.1", "code", "no queue at batch 4096")
    epoch_queue_starts: int = _p(15, "1.1", "code", "SwAV default; unused while queue_length is 0")
    nmb_crops: tuple[int, ...] = _p((2, 6), "1.1", note="2 views at 224 px and 6 at 96 px")
    size_crops: tuple[int, ...] = _p((224, 96), "1.1")
    min_scale_crops: tuple[float, ...] = _p(
        (0.14, 0.05), "1.1", "code",
        "RandomResizedCrop scale. Demo: (0.4, 0.1) with max_scale_crops (1.0, 0.4), a non-size change "
        "measured on the demo (2,048 faces of 128 persons at 40 px, crops of 32/16 px, ResNet-18 of half "
        "width, 150 s on one core, page 03's probe on 2 probe sets): with the paper's scales (0.14-1, "
        "0.05-0.14) and colour jitter the loss stayed at ln K = 4.605 for all 710 iterations and the "
        "trunk retrieved the held-out persons worse than a random one (k-NN top-1 0.13/0.08 vs 0.18/0.20); "
        "with (0.4-1, 0.1-0.4) it learns (below): a 32-px view of 5 % of a 40-px face shows a few pixels",
    )
    max_scale_crops: tuple[float, ...] = _p(
        (1.0, 0.14), "1.1", "code", "RandomResizedCrop scale. Demo: (1.0, 0.4), see min_scale_crops"
    )
    crops_for_assign: tuple[int, ...] = _p((0, 1), "1.1", "code", "codes from the two 224-px crops")
    hflip_p: float = _p(0.5, "1.1", "code")
    color_jitter: tuple[float, ...] = _p(
        (0.8, 0.8, 0.8, 0.2), "1.1", "code",
        "brightness, contrast, saturation, hue. Demo: (0.4, 0.4, 0.4, 0.1), half the strength, a non-size "
        "change measured on the demo (setting of min_scale_crops' note, scales 0.4-1/0.1-0.4): at the "
        "paper's strength the run learned only at LR 4.8 and little (loss 4.28, held-out identity k-NN "
        "0.20/0.22 vs random 0.18/0.20) and collapsed to ln K at LR 2.4; at half strength, LR 2.4, the loss "
        "fell to 3.85 and identity k-NN rose to 0.35/0.34 (linear probe 0.51/0.51 vs 0.30/0.25) while the "
        "scene k-NN fell to 0.20/0.14 (random 0.44/0.38). Without any colour jitter or greyscale (the "
        "previous demo) the trunk learned the scene instead: identity 0.19/0.24, scene 0.49/0.36",
    )
    color_jitter_p: float = _p(0.8, "1.1", "code", "the demo keeps it (see color_jitter's note)")
    grayscale_p: float = _p(0.2, "1.1", "code", "the demo keeps it")
    blur_p: float = _p(0.5, "1.1", "code")
    blur_sigma: tuple[float, float] = _p((0.1, 2.0), "1.1", "code")
    mean: tuple[float, float, float] = _p((0.485, 0.456, 0.406), "1.1", "code")
    std: tuple[float, float, float] = _p(
        (0.228, 0.224, 0.225), "1.1", "code", "0.228, not torchvision's 0.229, as the released models"
    )
    optimizer: str = _p("LARS", "1.1", note="LARS [18]")
    momentum: float = _p(0.9, "1.1", "code", "SGD momentum inside LARS")
    lars_trust_coefficient: float = _p(0.001, "1.1", "code", "eta; no clipping")
    lars_exclude_bias_bn: bool = _p(
        False, "1.1", "code", "the original adapts and decays biases and BN too"
    )
    input_size: int = _p(256, "1.1", note="crops are taken from the 256x256 face images")
    blur_kernel_size: int = _p(23, "1.1", "code", "cv2.GaussianBlur kernel of the SwAV multi-crop")
    mixed_precision: bool = _p(
        True, "1.1", "code", "apex O1 fp16 in the released code; we use bf16 autocast where supported"
    )
    augment_on: str = _p(
        "loader", "1.1", "convention",
        "where the multi-crop runs. 'loader': each image in the DataLoader workers, on uint8 with "
        "OpenCV (facelib.swav.transforms), as the released code does on CPUs. 'device': the workers "
        "only decode and draw the crops' random choices (the same draws as 'loader'), and the crops, "
        "flips, colour jitter, greyscale, blur and normalisation run batched on the training device "
        "(facelib.swav.device_multicrop), so a GPU is not starved by its loader cores. Same "
        "distributions of crop geometry and colour statistics (tested); pixels within ~1 grey level "
        "of the CPU path for the same draws. Measured (benchmarks/bench_swav_device_multicrop.py, 2-CPU AMD "
        "EPYC, 2026-12-06, batch 64, 256 px JPEG faces from shards): a loader core gives 153 images/s on "
        "the CPU path and 917 on the device path (6.0x fewer loader cores); the device path's crops on "
        "CPU tensors run at 51 images/s per core, so without a GPU keep 'loader'",
    )
    seed: int = _p(31, "1.1", "code", "SwAV's default random seed")
    train_images: int = _p(
        0, "2", "convention", "0: every image of the dataset; the demo trains on this many synthetic faces"
    )
    synthetic_identities: int = _p(
        100, "2", "convention",
        "persons among synthetic pretraining faces (facelib.data.synth); the paper's sets are real "
        "(VGG-Face2: 9,131 identities, Datasets.vggface2_identities)",
    )
    max_unreadable_items: int = _p(
        0, "1.1", "convention",
        "images that cannot be read (a damaged shard, bytes that do not decode) tolerated before the "
        "run stops with an error naming the shard and the item; up to it they are replaced by the next "
        "readable image and counted in the log and the result (bad_items.jsonl lists them). 0: any "
        "unreadable image stops the run. It may change when a run resumes",
    )

    @property
    def images_per_gpu(self) -> int:
        return self.batch_size // self.num_gpus


# --------------------------------------------------------------------------------------------
# Downstream tasks (supplement 1.2)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recognition:
    """Face recognition (supplement 1.2, 'Face recognition')."""

    name: str = _p("recognition", "1.2", "convention")
    alignment: str = _p("5 landmarks", "1.2", note="aligned using the provided 5 landmarks")
    input_size: tuple[int, int] = _p((112, 112), "1.2", "convention", "ArcFace template size")
    hflip_p: float = _p(0.5, "1.2", note="the only augmentation: random horizontal flip")
    epochs_range: tuple[int, int] = _p(
        (18, 54), "1.2",
        note="depending on the data regime. Demo profile: 2-40 epochs of 1,000 faces (batch 32), as AU and "
        "emotion, for the book's time. Measured on the demo (3 seeds, verification accuracy, random init "
        "against ours): 4-40 epochs: 0.615 +- 0.020 against 0.780 +- 0.009 at 100 %, 0.569 +- 0.035 against "
        "0.624 +- 0.028 at 10 %, 0.604 +- 0.007 against 0.647 +- 0.009 at 2 %; 2-40: 0.567 +- 0.009 against "
        "0.752 +- 0.002, 0.562 +- 0.033 against 0.615 +- 0.030, 0.603 +- 0.003 against 0.650 +- 0.012, with "
        "half the steps at 100 %",
    )
    batch_size: int = _p(512, "1.2")
    lr: float = _p(
        0.1, "1.2",
        note="for batch 512. Demo: 0.01 (batch 32, runs of ~125 steps), measured on the demo (1,000 faces of "
             "40 persons, 100 %, 4 epochs, one seed, verification accuracy on held-out persons): at 0.1 random "
             "init 0.577 and our SwAV trunk 0.605 (the first steps of a random head wipe out what the trunk "
             "brought); at 0.01 random 0.632, ours 0.738, the supervised trunk 0.823",
    )
    weight_decay: float = _p(5e-4, "1.2")
    optimizer: str = _p("SGD", "1.2")
    momentum: float = _p(0.9, "1.2")
    loss: str = _p("cosface", "1.2")
    cosface_margin: float = _p(0.35, "1.2")
    cosface_scale: float = _p(64.0, "1.2", "convention", "not in the supplement: CosFace's s = 64")
    embedding_dim: int = _p(512, "1.2", "convention", "common face-recognition embedding size")
    far_targets: tuple[float, ...] = _p(
        (1e-3, 1e-4), "1.2", "convention", "TAR is reported at these FARs (IJB-B/C protocol)"
    )
    num_gpus: int = _p(8, "1.2")
    epochs: int = _p(54, "1.2", note="upper end of the range; set per regime")


@dataclass(frozen=True)
class Landmarks:
    """Facial landmark localisation (supplement 1.2, following FAN [2] and HRNet [14])."""

    name: str = _p("landmarks", "1.2", "convention")
    input_size: int = _p(256, "1.2", "convention", "FAN/HRNet input resolution")
    heatmap_size: int = _p(64, "1.2", "convention", "FAN/HRNet heatmap resolution")
    num_points: int = _p(68, "1.2", "convention", "300W layout; 98 for WFLW")
    rotation_deg: float = _p(30.0, "1.2", note="rotation between +-30 deg")
    hflip_p: float = _p(0.5, "1.2", "convention", "'horizontal flipping'; probability not given")
    scale_range: tuple[float, float] = _p((0.85, 1.15), "1.2")
    color_jitter: bool = _p(True, "1.2")
    epochs_range: tuple[int, int] = _p((60, 480), "1.2")
    lr: float = _p(
        1e-4, "1.2",
        note="demo profile: 1e-3 (its runs take ~150 steps, the paper's thousands). Measured on the demo "
        "(400 synthetic faces, batch 8, sigma 3, random init): inter-ocular NME after 120 steps 0.44 "
        "at 1e-4, 0.19 at 1e-3; the mean shape scores 0.265",
    )
    batch_size: int = _p(24, "1.2")
    weight_decay: float = _p(1e-5, "1.2")
    optimizer: str = _p("Adam", "1.2")
    betas: tuple[float, float] = _p((0.5, 0.99), "1.2")
    loss: str = _p("pixel-wise l2", "1.2")
    heatmap_sigma: float = _p(
        1.5, "1.2", "convention",
        "std of the Gaussian targets in heatmap pixels (HRNet's 1.5). Demo profile: 3 on its 16x16 "
        "maps, read from a 2x2 feature map. Measured on the demo (400 faces, batch 8, LR 1e-3, "
        "random init): inter-ocular NME after 120-160 steps 0.31 at sigma 1.5, 0.19-0.21 at 3 "
        "(mean shape 0.265): the wider targets give the head a gradient far from each point",
    )
    deconv_width: int = _p(
        256, "1.2", "convention", "channels of the 3 deconvolutions of the heatmap head (Simple Baselines)"
    )
    failure_threshold: float = _p(
        0.08, "1.2", "convention", "NME above this is a failure; AUC of the CED up to it (300W)"
    )
    num_gpus: int = _p(1, "1.2")
    epochs: int = _p(480, "1.2", note="upper end of the range; set per regime")


@dataclass(frozen=True)
class AUIntensity:
    """Action unit intensity estimation (supplement 1.2)."""

    name: str = _p("au", "1.2", "convention")
    input_size: int = _p(
        256, "1.2", "convention",
        note="Demo profile: 48 px, for the book's time (its runs take 17 % less than at 64 px). Measured on the "
        "demo (4,000 faces, 2-40 epochs, 3 seeds, mean ICC, random init against ours): 64 px: 0.175 +- 0.016 "
        "against 0.218 +- 0.006 at 100 %, 0.054 +- 0.034 against 0.151 +- 0.015 at 10 %, 0.028 +- 0.009 "
        "against 0.103 +- 0.008 at 2 %; 48 px: 0.166 +- 0.019 against 0.195 +- 0.010, 0.035 +- 0.008 against "
        "0.111 +- 0.006, 0.057 +- 0.014 against 0.103 +- 0.006. Emotion stays at 64 px: at 48 its random init "
        "reached CCC 0.123 +- 0.052 at 100 % (0.261 +- 0.020 at 64 px)",
    )
    num_aus: int = _p(12, "1.2", note="DISFA's 12 AUs (Table 1); 5 for BP4D (Table 2)")
    rotation_deg: float = _p(30.0, "1.2")
    hflip_p: float = _p(0.5, "1.2", "convention", "probability not given")
    scale_range: tuple[float, float] = _p((0.85, 1.15), "1.2")
    blur_kernel_range: tuple[int, int] = _p((5, 10), "1.2", note="Gaussian blur kernel 5-10 px")
    blur_p: float = _p(0.4, "1.2")
    color_jitter: bool = _p(True, "1.2")
    epochs_range: tuple[int, int] = _p(
        (60, 320), "1.2",
        note="Demo profile: 2-40 epochs of 4,000 faces (page 06's n_train, as page 07's; the other pages train "
        "on 1,000): 500 steps at 100 %, 9 epochs of 400 faces at 10 %, 25 epochs of 80 faces at 2 %. The lower "
        "end is what random init needs at 100 %: it learns nothing in the first few hundred steps. Measured "
        "on the demo (3 seeds, mean ICC, random init at 100 %; ours against random at 2 %): 2,500 faces, "
        "1-40 epochs (156 steps at 100 %): 0.015 +- 0.003; 0.059 +- 0.011 against 0.009 +- 0.009. 2,500 "
        "faces, 2-40 (312 steps): 0.043 +- 0.034 (one seed of three learns); 0.060 +- 0.007 against 0.025 "
        "+- 0.003. 2,500 faces, 4-40 (625 steps): 0.166 +- 0.027; 0.066 +- 0.009 against 0.016 +- 0.008. "
        "4,000 faces, 2-40 (500 steps): 0.175 +- 0.016; 0.103 +- 0.008 against 0.028 +- 0.009. 4,000 faces, "
        "2-20: the same at 100 %; 0.073 +- 0.021 against -0.004 +- 0.016. Earlier, at 1-40 or 4-40 epochs: "
        "1,000 faces (20 at 2 %): 0.021 +- 0.006 against -0.004 +- 0.017; 1,000 faces, 4-120: 0.025 +- 0.005 "
        "against 0.024 +- 0.009; 5,000 faces, 1-40: 0.109 +- 0.014 against 0.050 +- 0.013",
    )
    lr: float = _p(
        1e-4, "1.2",
        note="'typically set to 0.0001'. Demo profile: 7e-4 with head_init 'default' (its runs take 24 "
        "steps, the paper's thousands). Measured on the demo (page 06's data, default head, 12 epochs, "
        "random init, seeds 0/1/2), mean ICC: 0.03 at 1e-4 (16 epochs, seed 0), 0.04 (seed 0) at 3e-4, "
        "0.050/0.025/0.077 at 5e-4, 0.066/0.063/0.087 at 7e-4, 0.066/0.088/0.063 at 1e-3, -/0.046/0.038 at "
        "2e-3, 0.050 (seed 0) at 3e-3; the mean predictor scores 0. More in head_init's note",
    )
    weight_decay: float = _p(5e-6, "1.2")
    batch_size: int = _p(48, "1.2")
    optimizer: str = _p("Adam", "1.2")
    betas: tuple[float, float] = _p((0.5, 0.99), "1.2")
    num_gpus: int = _p(2, "1.2")
    epochs: int = _p(320, "1.2", note="upper end of the range; set per regime")
    loss: str = _p("l2", "1.2", "convention", "not given: mean squared error on intensities 0-5")
    head_init: str = _p(
        "mean target", "1.2", "convention",
        "not given: the head's last linear layer starts with zero weights and the mean training "
        "target as bias, so training starts from the trivial mean predictor; 'default' keeps "
        "PyTorch's random initialisation. Demo profile: 'default', with LR 7e-4. Measured on the demo "
        "(page 06's 96 synthetic faces, batch 48, 12 epochs = 24 steps, random init): with the mean-target "
        "head the training loss stays at the mean predictor's (1.62 -> 1.51 after 240 steps at LR 1e-3, "
        "test ICC 0.01) and so does the test ICC at every LR tried (1e-4 to 1e-3); with the default head "
        "at LR 7e-4 the mean ICC is 0.066/0.063/0.087 for seeds 0/1/2 (random init) and 0.074/0.020/0.032 "
        "(ours) against 0 for the mean predictor, MAE 0.96-1.01 against its 1.007",
    )


@dataclass(frozen=True)
class Emotion:
    """Valence/arousal and expression on AffectNet (supplement 1.2 and 4.1)."""

    name: str = _p("emotion", "1.2", "convention")
    input_size: int = _p(256, "1.2", "convention")
    num_classes: int = _p(8, "4.1", "convention", "AffectNet's 8 expressions (7 + contempt)")
    rotation_deg: float = _p(30.0, "1.2", note="as AU intensity, without blur")
    hflip_p: float = _p(0.5, "1.2", "convention", "probability not given")
    scale_range: tuple[float, float] = _p((0.85, 1.15), "1.2")
    color_jitter: bool = _p(True, "1.2")
    epochs_range: tuple[int, int] = _p(
        (60, 240), "1.2",
        note="Demo profile: 2-40 epochs of 4,000 faces (page 07's n_train; AffectNet is the paper's "
        "largest set): 500 steps at 100 %, 9 epochs of 400 faces at 10 %, 25 epochs of 80 faces at 2 %. The "
        "lower end is what random init needs at 100 %. Measured on the demo (3 seeds, mean CCC, random init at "
        "100 %; ours against random at 2 %): 4,000 faces, 1-40 epochs (250 steps at 100 %): 0.041 +- 0.020; "
        "0.126 +- 0.025 against 0.011 +- 0.030. 4,000 faces, 2-40 (500 steps): 0.261 +- 0.020; 0.135 +- "
        "0.026 against 0.042 +- 0.032. 4,000 faces, 2-20: the same at 100 %; 0.100 +- 0.016 against 0.030 "
        "+- 0.024. 2,500 faces, 2-40 (312 steps): 0.144 +- 0.058; 0.063 +- 0.009 against 0.025 +- 0.018. "
        "At 1-40 epochs, ours against random at 2 %: 1,000 faces (20 at 2 %) 0.039 +- 0.009 against 0.016 "
        "+- 0.012; 2,500: 0.060 +- 0.005 against 0.031 +- 0.022; 3,000: 0.024 +- 0.007 against 0.020 +- "
        "0.002; 5,000: 0.074 +- 0.009 against 0.020 +- 0.007; 1,000 faces at 4-120: 0.048 +- 0.000 against "
        "0.048 +- 0.027",
    )
    batch_size: int = _p(32, "1.2")
    lr: float = _p(
        0.1, "1.2",
        note="printed 0.1, unusually high for Adam; kept as printed. Demo profile: 3e-4 (its runs take "
        "36 steps, the paper's thousands). Measured on the demo (page 07's 96 synthetic faces, batch 32, "
        "12 epochs, seeds 0/1/2): at 0.1 the first epoch's loss is 44-56 (the mean predictor's about 5) "
        "and valence/arousal CCC stay about 0: 0.06/0.21, -0.01/-0.00, 0.04/-0.01 (random init), "
        "-0.10/-0.11, 0.01/-0.01, 0.02/0.01 (ours; the mean predictor scores 0); at 3e-4 valence CCC "
        "0.16/0.14/0.14 and arousal 0.18/0.11/0.12 (random init), 0.10/0.15/-0.00 and 0.10/0.08/0.09 "
        "(ours). Expression accuracy stays at about the majority class's at this size (0.13/0.22/0.17 "
        "against 0.17)",
    )
    weight_decay: float = _p(1e-4, "1.2")
    optimizer: str = _p("Adam", "1.2")
    betas: tuple[float, float] = _p((0.5, 0.99), "1.2")
    loss: str = _p("RMSE + CCC (valence, arousal) + cross-entropy (classes)", "4.1")
    head: str = _p("linear", "4.1", note="a linear layer for valence, arousal and the classes")
    head_init: str = _p(
        "mean target", "1.2", "convention",
        "not given: the head's last linear layer starts with zero weights and the mean training "
        "target as bias (log class frequencies for the expression logits), so training starts from the trivial mean predictor; 'default' keeps "
        "PyTorch's random initialisation",
    )
    num_gpus: int = _p(1, "1.2")
    epochs: int = _p(240, "1.2", note="upper end of the range; set per regime")


@dataclass(frozen=True)
class Recon3D:
    """3D face reconstruction trained on 300W-LP (supplement 1.2 and 4.2)."""

    name: str = _p("recon3d", "1.2", "convention")
    input_size: int = _p(256, "1.2", "convention")
    target: str = _p(
        "68 3D landmarks", "1.2", "convention",
        "the supplement does not say what is regressed; we regress the AFLW2000-3D 68 points",
    )
    scale_range: tuple[float, float] = _p((0.85, 1.15), "1.2")
    rotation_deg: float = _p(45.0, "1.2", note="in-plane rotation +-45 deg")
    translation: float = _p(0.1, "1.2", note="random 10% translation w.r.t. width and height")
    epochs_range: tuple[int, int] = _p((120, 360), "1.2")
    lr: float = _p(0.05, "1.2")
    weight_decay: float = _p(1e-4, "1.2")
    optimizer: str = _p("SGD", "1.2")
    momentum: float = _p(0.9, "1.2")
    batch_size: int = _p(32, "1.2", "convention", "not given in the supplement")
    loss: str = _p(
        "l2", "1.2", "convention",
        "not given: mean squared error on crop-normalised 3D coordinates, each axis divided by the "
        "spread of the training targets on it (x, y ~0.2 of the crop): SGD at the printed LR 0.05 "
        "barely moved on the raw coordinates (measured on the demo: loss flat at the mean "
        "predictor's for 100 steps)",
    )
    head_init: str = _p(
        "mean target", "1.2", "convention",
        "not given: the head's last linear layer starts with zero weights and the mean training "
        "target as bias, so training starts from the trivial mean predictor; 'default' keeps "
        "PyTorch's random initialisation",
    )
    failure_threshold: float = _p(
        0.08, "1.2", "convention", "box-size NME above this is a failure; AUC of the CED up to it"
    )
    num_gpus: int = _p(2, "1.2")
    epochs: int = _p(360, "1.2", note="upper end of the range; set per regime")


# --------------------------------------------------------------------------------------------
# Data sampling (supplement 1.3) and dataset facts (supplement 2 and 3)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sampling:
    """Low-data subsets (supplement 1.3)."""

    label_agnostic: bool = _p(True, "1.3", note="subsampled without accounting for the labels")
    fixed_subsets: bool = _p(True, "1.3", note="the same subset is reused for all experiments")
    regimes: tuple[float, ...] = _p(
        (1.0, 0.1, 0.05, 0.02, 0.01), "1.3", "convention",
        "fractions used across the paper's tables (100, 10, 2, 1 %) plus 5 %",
    )
    recognition_min_identity_fraction: float = _p(
        0.25, "1.3", note="at least 1/4 of the identities preserved ..."
    )
    recognition_identity_rule_regime: float = _p(0.02, "1.3", note="... for the 2 % regime")
    seed: int = _p(0, "1.3", "convention", "seed of the fixed subsets")


@dataclass(frozen=True)
class Datasets:
    """Sizes of the pretraining sets and their components (supplement 2 and 3)."""

    full_vggface_images: int = _p(3_400_000, "2", note="~3.4M facial images")
    vggface2_identities: int = _p(9131, "2")
    vggface2_images_per_identity: float = _p(362.6, "2", note="average")
    small_vggface_images: int = _p(1_000_000, "2", note="randomly sampled 1M subset")
    large_scale_face_images: int = _p(5_000_000, "2", note="> 5.0M")
    imdb_face_faces: int = _p(1_700_000, "2", note="1.7M faces")
    imdb_face_identities: int = _p(59_000, "2")
    imdb_face_raw_images: int = _p(2_000_000, "2", note="manually cleaned from 2.0M raw images")
    affectnet_images: int = _p(1_000_000, "2", note="more than 1M images")
    affectnet_keywords: int = _p(1250, "2")
    affectnet_annotated: int = _p(440_000, "2")
    affectnet_expressions: int = _p(7, "2", note="7 discrete expressions as printed in section 2")
    wider_face_faces: int = _p(393_703, "2")
    wider_face_images: int = _p(32_203, "2")
    w300lp_source_images: int = _p(4000, "2", note="~4000 near-frontal 300W images")
    w300lp_yaw_range_deg: tuple[int, int] = _p((-90, 90), "2")
    flickr_face_faces: int = _p(1_793_119, "3", note="printed 1.793.119")
    flickr_tags: int = _p(100, "3")
    # The fine-tuning training sets: their sizes are not in the supplement. Public figures of the
    # datasets the supplement's tables use; facelib.cost turns them into the grid's GPU time.
    vggface2_train_images: int = _p(
        3_141_890, "1.2", "convention",
        "not in the supplement: VGGFace2's training split, 8631 identities (Cao et al. 2018). The "
        "supplement does not name the face-recognition training set; facelib.cost assumes this one",
    )
    w300_train_images: int = _p(
        3148, "1.2", "convention",
        "not in the supplement: the 300W training images (LFPW 811, HELEN 2000, AFW 337; Sagonas et "
        "al. 2013), the landmark training set facelib.cost assumes",
    )
    disfa_subjects: int = _p(
        27, "1.2", "convention", "not in the supplement: DISFA's subjects (Mavadati et al. 2013), Table 1's dataset"
    )
    disfa_frames_per_subject: int = _p(
        4845, "1.2", "convention",
        "not in the supplement: frames of each DISFA video; facelib.cost counts every frame as a "
        "training image, an upper bound (a subject-independent fold trains on fewer)",
    )
    affectnet_train_images: int = _p(
        287_651, "4.1", "convention",
        "not in the supplement: AffectNet's manually annotated training images of the 8 expressions "
        "(Mollahosseini et al. 2017), Table 3's dataset",
    )
    w300lp_images: int = _p(
        61_225, "1.2", "convention",
        "not in the supplement: 300W-LP's images (Zhu et al. 2016), the 3D reconstruction training set",
    )
    curation_seed: int = _p(
        0, "2", "convention", "seed of the random 1M draw of Small VGG-Face (not given in the paper)"
    )


# --------------------------------------------------------------------------------------------
# Launching jobs (not cluster-specific; partitions, GPUs per node, limits: slurm/clusters.yaml)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    """Per-task resources and requeue policy of the SLURM jobs (used by ``facelib.launch``).

    One task per GPU: pretraining asks ``Pretrain.num_gpus``; a fine-tuning run asks
    ``finetune_gpus_per_run`` (one: the grid is a job array of one-GPU runs); what a cluster
    offers (partition, GPUs per node, time limit) lives in ``slurm/clusters.yaml``.
    """

    cpus_per_task: int = _p(10, "1.1", "code", "SwAV's 8-node scripts: --cpus-per-task=10")
    mem_per_task_gb: int = _p(
        56, "1.1", "code", "SwAV's scripts ask --mem=450G per 8-GPU node: 56 GB per task; 0 = no --mem"
    )
    pretrain_timeout_min: int = _p(
        4320, "1.1", "code", "SwAV's 8-node scripts ask 72 h; capped by the cluster's time limit"
    )
    finetune_timeout_min: int = _p(
        1440, "1.2", "convention", "24 h per fine-tuning job; capped by the cluster's time limit"
    )
    finetune_gpus_per_run: int = _p(
        1, "1.2", "convention",
        "every fine-tuning run takes its recipe's whole batch on ONE GPU (one process, exact "
        "resume). The supplement used 8 GPUs for recognition, 2 for AU and 3D, 1 for landmarks and "
        "emotion (each task's num_gpus, kept as printed): same global batch, LR and averaged "
        "gradient; only BatchNorm sees the whole batch instead of batch/num_gpus. Peak memory of "
        "one paper-recipe step (ResNet-50, fp32), measured on an H200: recognition (512 x 112 px) "
        "11.1 GiB, AU (48 x 256 px) 5.5 GiB, landmarks, emotion, 3D 3.5-3.8 GiB: each run fits a "
        "16 GB GPU",
    )
    signal_delay_s: int = _p(
        120, "1.1", "convention",
        "USR2 this long before the time limit: time to write a checkpoint and requeue",
    )
    max_num_timeout: int = _p(
        20, "1.1", "convention",
        "requeues allowed after hitting the time limit (pre-emptions are not counted)",
    )
    preprocess_part_files: int = _p(
        100_000, "1.1", "convention",
        "source files per element of the preprocessing job array (`facelib preprocess --cluster`): "
        "the sorted file list is cut into parts of this many files, so a rerun submits the same "
        "parts. At the measured 31 images per CPU-second (RetinaFace, benchmarks/bench_preprocess.py) "
        "a part takes about 7 min on 8 CPUs; Large-Scale-Face's 5M images make 50 elements",
    )
    preprocess_cpus_per_task: int = _p(
        8, "1.1", "convention",
        "CPUs of one preprocessing element: one single-threaded detector process per CPU",
    )
    preprocess_mem_gb: int = _p(
        16, "1.1", "convention",
        "memory of one preprocessing element: 8 worker processes, each decoding photos of up to "
        "Crop.max_image_pixels (about 0.5 GB per worker at that limit), with a margin; 0 = no --mem",
    )
    preprocess_timeout_min: int = _p(
        120, "1.1", "convention",
        "time limit of one preprocessing element (several times the ~7 min a part takes); "
        "capped by the cluster's limit. A part that hits it is requeued and resumes",
    )
    cpu_job_timeout_min: int = _p(
        60, "1.1", "convention",
        "time limit of the small CPU jobs of a chain: merging the preprocessing parts, "
        "executing the results page",
    )


@dataclass(frozen=True)
class Flickr:
    """How Flickr-Face is crawled (supplement 3; ``facelib.flickr``).

    The supplement gives only the 100 tags and the size of the result; the rest comes from the
    authors' withdrawn scraper (``source="code"``, see ``book/paper_and_code.md``) or is ours.
    """

    licenses: tuple[int, ...] = _p(
        (4, 9, 10, 11), "3", "convention",
        "Flickr licence ids that allow reuse with attribution or are public domain: CC BY 2.0 (4), "
        "CC0 (9), Public Domain Mark (10), CC BY 4.0 (11); the authors used 4 and 9",
    )
    authors_licenses: tuple[int, ...] = _p(
        (4, 9), "3", "code", "the authors' scraper: CC BY 2.0 (4) and CC0 1.0 (9)"
    )
    size_suffix: str = _p(
        "m", "3", "code", "the authors saved the 500-px image: Flickr size 'Medium' (extra url_m)"
    )
    per_page: int = _p(500, "3", "code", "flickr.photos.search page size (the API maximum)")
    result_cap: int = _p(
        4000, "3", "convention",
        "Flickr serves at most ~4000 unique results per query: date windows are split below it",
    )
    min_upload_date: str = _p(
        "2004-02-01", "3", "convention", "first upload-date window starts at Flickr's launch"
    )
    concurrency: int = _p(16, "3", "convention", "concurrent photo downloads")
    download_rate: float = _p(
        32.0, "3", "convention", "global limit on photo requests per second (0: none)"
    )
    api_rate: float = _p(
        1.0, "3", "convention", "API calls per second: Flickr allows 3600 per hour per key"
    )
    max_tries: int = _p(
        5, "3", "convention",
        "tries per request within one run before giving up: 429, 5xx, timeouts, resets, truncated "
        "bodies, and bodies that are not the image (wrong content type, an HTML page, bytes that do "
        "not decode), as proxies, CDNs and rate limiters send them now and then",
    )
    max_download_runs: int = _p(
        5, "3", "convention",
        "runs of the crawl that try one photo: a photo that failed for a transient reason is tried "
        "again by the next run of the same command, until this many runs have tried it (recorded per "
        "photo in crawl.sqlite), so that resuming converges; a 404/410, a redirect off the photo "
        "hosts, a refused id, or a body that stayed invalid through every try of a run is final",
    )
    backoff_s: float = _p(
        1.0, "3", "convention", "first retry delay; doubled each try, full jitter, Retry-After honoured"
    )
    backoff_max_s: float = _p(60.0, "3", "convention", "longest wait between two tries")
    timeout_s: float = _p(30.0, "3", "convention", "connect/read timeout of one request")
    max_bytes: int = _p(
        20_000_000, "3", "convention", "a downloaded body larger than this is rejected"
    )


@dataclass(frozen=True)
class Finetune:
    """What every downstream task shares and the supplement does not give (supplement 1.2)."""

    lr_schedule: str = _p("constant", "1.2", "convention", "no schedule is given: the printed LR throughout")
    color_jitter: tuple[float, float, float, float] = _p(
        (0.4, 0.4, 0.4, 0.0), "1.2", "convention",
        "brightness, contrast, saturation, hue factors of 'colour jittering' (torchvision style)",
    )
    blur_reference_size: int = _p(
        256, "1.2", "convention",
        "blur kernel sizes are in pixels of this input size; they scale with other input sizes",
    )
    box_scale: float = _p(
        256 / 190, "1.1", "convention", "square face crop of side box size x 256/190, as pretraining"
    )
    seed: int = _p(0, "1.2", "convention", "seed of the head initialisation, shuffling and augmentation")
    seeds: tuple[int, ...] = _p(
        (0,), "1.2", "convention",
        "fine-tuning seeds run for every (task, regime, initialisation) cell of a grid; the supplement "
        "reports one run per cell. A size: the demo runs 3 and reports mean and standard error",
    )
    regimes: tuple[float, ...] = _p(
        (1.0, 0.1, 0.05, 0.02, 0.01), "1.3", "convention",
        "data regimes a task page runs: those of Sampling.regimes. A size: the "
        "demo runs 100, 10 and 2 %. At 1 % its 1,000 training faces leave 10, fewer than recognition's 40 "
        "persons, and the book measured 605 s with 1 % against its 10-minute budget (the 1 % runs of the "
        "five pages took 23 s); 5 % is left out for the same budget (it was never run in the demo)",
    )
    precise_bn_batches: int = _p(
        200, "1.2", "convention",
        "before evaluation, BN statistics are recomputed as plain averages over this many training "
        "batches (eval crops; 'precise BN'): short runs otherwise evaluate with running averages that "
        "have not converged; 0 keeps the running averages. A size: the demo uses 16 batches (256 faces; "
        "fewer when the run's subset is smaller). Measured on the demo (emotion, 4,000 faces, 100 %, seed 0): "
        "mean CCC 0.2569 with 200 batches and 0.2559 with 32 (ours), 0.0607 and 0.0591 (random init; 1 epoch); "
        "the run took 9.9 s and 8.5 s. At 2 epochs, 32 against 16 batches: 0.2878 and 0.2895 (ours), 0.2923 "
        "and 0.2914 (random), at 10 % 0.2138 and 0.2129 (ours); at 2 % (80 faces, 5 batches) the same",
    )
    max_unreadable_items: int = _p(
        0, "1.2", "convention",
        "images of a task's data that cannot be read (a missing or damaged file) tolerated before the "
        "run stops with an error naming the file; up to it they are left out of their batch and counted "
        "in the log and metrics.json (bad_items.jsonl lists them). 0: any unreadable image stops the run. "
        "It may change when a run resumes",
    )


TASKS: dict[str, type] = {
    "recognition": Recognition,
    "landmarks": Landmarks,
    "au": AUIntensity,
    "emotion": Emotion,
    "recon3d": Recon3D,
}


# --------------------------------------------------------------------------------------------
# Overrides and profiles
# --------------------------------------------------------------------------------------------
def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits a field annotation (ints are accepted where floats are)."""
    origin = typing.get_origin(annotation)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is bool or annotation is str:
        return isinstance(value, annotation)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(args) == len(value) and all(_type_ok(v, a) for v, a in zip(value, args))
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    return isinstance(value, annotation)


def override(recipe: R, **changes: Any) -> R:
    """A copy of ``recipe`` with ``changes`` applied, validated.

    Lists are accepted for tuple fields (they come from YAML and papermill as lists).

    Raises:
        RecipeError: a key is not a field of the recipe (the message names it and lists the
            valid ones), or a value has the wrong type.
    """
    hints = typing.get_type_hints(type(recipe))
    names = {f.name for f in dataclasses.fields(recipe)}  # type: ignore[arg-type]
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in names:
            raise RecipeError(
                f"{type(recipe).__name__} has no field {key!r}; valid fields: {', '.join(sorted(names))}"
            )
        if isinstance(value, list):
            value = tuple(value)
        if not _type_ok(value, hints[key]):
            raise RecipeError(
                f"{type(recipe).__name__}.{key} must be {hints[key]}, got {value!r} ({type(value).__name__})"
            )
        if hints[key] is float and isinstance(value, int):
            value = float(value)
        clean[key] = value
    return dataclasses.replace(recipe, **clean)  # type: ignore[type-var]


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise RecipeError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")


PAPER_CROP = Crop()
PAPER_PRETRAIN = Pretrain()
PAPER_SAMPLING = Sampling()
PAPER_DATASETS = Datasets()
PAPER_TASKS = {name: cls() for name, cls in TASKS.items()}

# The demo profile: the same recipes at laptop size. Sizes change (resolutions, epochs, batch,
# GPUs, prototypes); the few other changes are explained, with their measurements, beside them.
DEMO_PRETRAIN = override(
    PAPER_PRETRAIN,
    # Sizes: a ResNet-18 of a quarter width at 40 px faces (crops of 32 and 16 px, 2 + 4 of
    # them), batch 64 on one CPU process, 1,000 prototypes, 4,096 faces of 256 synthetic persons.
    arch="resnet18",
    width=16,
    num_gpus=1,
    batch_size=64,
    sync_bn=False,
    epochs=24,
    num_prototypes=1000,
    hidden_mlp=512,
    feat_dim=64,
    nmb_crops=(2, 4),
    size_crops=(32, 16),
    input_size=40,
    train_images=4096,
    synthetic_identities=256,
    blur_sigma=(0.1 * 32 / 224, 2.0 * 32 / 224),
    blur_kernel_size=3,
    # Non-size changes, each measured (numbers in the fields' notes): the crops' scale ranges,
    # the colour jitter's strength, the learning rate and the softmax temperature.
    min_scale_crops=(0.4, 0.1),
    max_scale_crops=(1.0, 0.4),
    color_jitter=(0.4, 0.4, 0.4, 0.1),
    base_lr=2.4,
    final_lr=0.0024,
    warmup_epochs=0,
    freeze_prototypes_iters=50,
    temperature=0.2,
)
DEMO_TASKS = {
    # Sizes: 40-px faces (the pretrained trunk's; AU 48 px and emotion 64 px: their cues are a
    # few pixels), small batches, epochs from 4 at 100 % (recognition 2) to 40 at 1 % of 1,000
    # synthetic training faces (the supplement's ranges are 18-480 epochs of 3k-300k faces); AU
    # and emotion train 2-40 epochs on 4,000 faces (their pages' n_train), so that 2 % leaves 80
    # faces and random init gets the 500 steps it needs at 100 % (measured in their epochs_range
    # notes; AU's 48 px in its input_size note). Batches are small
    # because these runs are short: what a run learns grows with its steps more than with its
    # batch (measured, landmarks, 100 %, 4 epochs, random init: inter-ocular NME 0.175 at batch
    # 8, 0.222 at 16, 0.276 at 32; the mean shape 0.25). Non-size changes, each explained with
    # its measurement in its field's note: recognition's lr, landmarks' lr and heatmap_sigma,
    # AU's lr and head_init, emotion's lr.
    "recognition": override(PAPER_TASKS["recognition"], batch_size=32, epochs=40, epochs_range=(2, 40),
                            num_gpus=1, input_size=(40, 40), embedding_dim=64, lr=0.01),
    "landmarks": override(PAPER_TASKS["landmarks"], batch_size=16, epochs=40, epochs_range=(4, 40), input_size=40,
                          heatmap_size=16, deconv_width=64, lr=1e-3, heatmap_sigma=3.0),
    "au": override(PAPER_TASKS["au"], batch_size=16, epochs=40, epochs_range=(2, 40), num_gpus=1, input_size=48,
                   lr=7e-4, head_init="default"),
    "emotion": override(PAPER_TASKS["emotion"], batch_size=16, epochs=40, epochs_range=(2, 40), input_size=64,
                        lr=3e-4),
    "recon3d": override(PAPER_TASKS["recon3d"], batch_size=16, epochs=40, epochs_range=(4, 40), num_gpus=1,
                        input_size=40),
}
DEMO_CROP = PAPER_CROP  # the crop geometry is the paper's in every profile
PAPER_FINETUNE = Finetune()
DEMO_FINETUNE = override(PAPER_FINETUNE, seeds=(0, 1, 2), regimes=(1.0, 0.1, 0.02), precise_bn_batches=16)


def crop(profile: str = "paper", **overrides: Any) -> Crop:
    """The face-crop recipe of ``profile`` (``demo`` keeps the paper's 190/256 geometry)."""
    _check_profile(profile)
    return override(DEMO_CROP if profile == "demo" else PAPER_CROP, **overrides)


def pretrain(profile: str = "paper", **overrides: Any) -> Pretrain:
    """The SwAV pretraining recipe of ``profile``, with validated ``overrides``."""
    _check_profile(profile)
    return override(DEMO_PRETRAIN if profile == "demo" else PAPER_PRETRAIN, **overrides)


def task(name: str, profile: str = "paper", **overrides: Any) -> Any:
    """The fine-tuning recipe of downstream task ``name`` (one of :data:`TASKS`)."""
    _check_profile(profile)
    if name not in TASKS:
        raise RecipeError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    base = DEMO_TASKS[name] if profile == "demo" else PAPER_TASKS[name]
    return override(base, **overrides)


def finetune(profile: str = "paper", **overrides: Any) -> Finetune:
    """Conventions shared by the fine-tuning of every task (the demo runs more seeds per cell)."""
    _check_profile(profile)
    return override(DEMO_FINETUNE if profile == "demo" else PAPER_FINETUNE, **overrides)


def regime_epochs(recipe: Any, regime: float) -> int:
    """Epochs of a fine-tuning run on the ``regime`` fraction of the labels.

    Supplement 1.2 gives each task a range of epochs "depending on the data regime" (e.g. 60-480
    for landmarks) without the rule. Ours: the fewer the labels, the more epochs, log-linearly
    in the fraction, from the range's lower end at 100 % to its upper end at the smallest regime
    of ``Sampling.regimes`` (1 %), capped by the recipe's ``epochs`` (the upper end; an override
    such as ``epochs=1`` caps every regime). Between 1 % and 100 %: 10 % takes the geometric
    mean of the two ends.
    """
    lo, hi = recipe.epochs_range
    if not 0 < regime <= 1:
        raise RecipeError(f"data regime {regime!r} must be a fraction in (0, 1]")
    smallest = min(PAPER_SAMPLING.regimes)
    t = min(math.log(1.0 / regime) / math.log(1.0 / smallest), 1.0)
    return max(1, min(int(recipe.epochs), int(round(lo * (hi / lo) ** t))))


def sampling(**overrides: Any) -> Sampling:
    """The low-data sampling rules of supplement 1.3."""
    return override(PAPER_SAMPLING, **overrides)


def datasets() -> Datasets:
    """Dataset sizes printed in supplement sections 2 and 3."""
    return PAPER_DATASETS


PAPER_LAUNCH = Launch()
# Demo jobs run on a laptop or the local test cluster: one CPU per task, no memory request, and
# time limits of at least 11 min (shorter ones make submitit count every interrupt as a timeout).
DEMO_LAUNCH = override(PAPER_LAUNCH, cpus_per_task=1, mem_per_task_gb=0, pretrain_timeout_min=60,
                       finetune_timeout_min=30, signal_delay_s=30, max_num_timeout=3,
                       preprocess_part_files=16, preprocess_cpus_per_task=1, preprocess_mem_gb=0,
                       preprocess_timeout_min=15, cpu_job_timeout_min=15)


def launch(profile: str = "paper", **overrides: Any) -> Launch:
    """Job resources and requeue policy of ``profile`` (see :mod:`facelib.launch`)."""
    _check_profile(profile)
    return override(DEMO_LAUNCH if profile == "demo" else PAPER_LAUNCH, **overrides)


def describe(recipe: Any) -> Iterator[dict[str, Any]]:
    """One row per field: ``parameter, value, section, source, note`` (for the book's tables)."""
    for f in dataclasses.fields(recipe):
        yield {
            "parameter": f.name,
            "value": getattr(recipe, f.name),
            "section": f.metadata.get("section", ""),
            "source": f.metadata.get("source", ""),
            "note": f.metadata.get("note", ""),
        }


def diff(recipe: Any, reference: Any) -> dict[str, tuple[Any, Any]]:
    """Fields whose value differs between two recipes of one type: ``{name: (recipe, reference)}``."""
    if type(recipe) is not type(reference):
        raise TypeError("diff needs two recipes of the same type")
    out = {}
    for f in dataclasses.fields(recipe):
        a, b = getattr(recipe, f.name), getattr(reference, f.name)
        if a != b:
            out[f.name] = (a, b)
    return out


# --------------------------------------------------------------------------------------------
# Learning-rate schedule (supplement 1.1)
# --------------------------------------------------------------------------------------------
def lr_schedule(recipe: Pretrain, iters_per_epoch: int) -> np.ndarray:
    """Per-iteration learning rate: linear warm-up, then cosine decay (supplement 1.1).

    Warm-up goes linearly from ``warmup_start_lr`` to ``base_lr`` over ``warmup_epochs``
    epochs; then ``final + (base - final) * (1 + cos(pi * t)) / 2`` with ``t`` going from 0 to 1
    over the remaining iterations, so the last iteration uses exactly ``final_lr``.

    Args:
        recipe: the pretraining recipe.
        iters_per_epoch: optimiser steps per epoch (images / batch size, rounded down).

    Returns:
        (epochs * iters_per_epoch,) float64 array. Plotted in ``notebooks/00_recipes.py``.
    """
    if iters_per_epoch < 1:
        raise ValueError(f"iters_per_epoch must be >= 1, got {iters_per_epoch}")
    if recipe.warmup_epochs >= recipe.epochs:
        raise ValueError("warmup_epochs must be smaller than epochs")
    n_warm = recipe.warmup_epochs * iters_per_epoch
    n_total = recipe.epochs * iters_per_epoch
    warm = np.linspace(recipe.warmup_start_lr, recipe.base_lr, n_warm, endpoint=False)
    n_cos = n_total - n_warm
    t = np.arange(n_cos) / max(n_cos - 1, 1)
    cos = recipe.final_lr + 0.5 * (recipe.base_lr - recipe.final_lr) * (1 + np.cos(math.pi * t))
    return np.concatenate([warm, cos])


# --------------------------------------------------------------------------------------------
# Flickr crawl (supplement 3)
# --------------------------------------------------------------------------------------------
PAPER_FLICKR = Flickr()
# The demo crawls the loopback server (facelib.flickr.local_server): short waits, no API quota,
# and a server that caps a query at 100 results (pages of 50), so that date windows are split.
DEMO_FLICKR = override(PAPER_FLICKR, api_rate=0.0, download_rate=0.0, backoff_s=0.05,
                       backoff_max_s=1.0, timeout_s=5.0, result_cap=100, per_page=50)


def flickr(profile: str = "paper", **overrides: Any) -> Flickr:
    """The Flickr crawl settings of ``profile`` (see :mod:`facelib.flickr.crawl`)."""
    _check_profile(profile)
    return override(DEMO_FLICKR if profile == "demo" else PAPER_FLICKR, **overrides)
