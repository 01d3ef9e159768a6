"""The recipe registry against the supplement, one assertion per printed number."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from facelib import recipes

P = recipes.pretrain("paper")
C = recipes.crop("paper")
REC = recipes.task("recognition")
LMK = recipes.task("landmarks")
AU = recipes.task("au")
EMO = recipes.task("emotion")
R3D = recipes.task("recon3d")
S = recipes.sampling()
D = recipes.datasets()

# (recipe, field, value printed in the supplement, section)
SUPPLEMENT = [
    # 1.1 Unsupervised pretraining
    (P, "num_gpus", 64, "1.1"),
    (P, "batch_size", 4096, "1.1"),
    (P, "sync_bn", True, "1.1"),
    (P, "epochs", 200, "1.1"),
    (P, "weight_decay", 1e-6, "1.1"),
    (P, "base_lr", 4.8, "1.1"),
    (P, "final_lr", 0.045, "1.1"),
    (P, "scheduler", "cosine", "1.1"),
    (P, "warmup_epochs", 10, "1.1"),
    (P, "temperature", 0.1, "1.1"),
    (P, "sinkhorn_eps", 0.05, "1.1"),
    (P, "nmb_crops", (2, 6), "1.1"),
    (P, "size_crops", (224, 96), "1.1"),
    (P, "optimizer", "LARS", "1.1"),
    # 1.1 Data preparation
    (C, "detector", "RetinaFace", "1.1"),
    (C, "face_size", 190, "1.1"),
    (C, "output_size", 256, "1.1"),
    # 1.2 Face recognition
    (REC, "alignment", "5 landmarks", "1.2"),
    (REC, "hflip_p", 0.5, "1.2"),
    (REC, "epochs_range", (18, 54), "1.2"),
    (REC, "batch_size", 512, "1.2"),
    (REC, "lr", 0.1, "1.2"),
    (REC, "weight_decay", 0.0005, "1.2"),
    (REC, "optimizer", "SGD", "1.2"),
    (REC, "momentum", 0.9, "1.2"),
    (REC, "loss", "cosface", "1.2"),
    (REC, "cosface_margin", 0.35, "1.2"),
    (REC, "num_gpus", 8, "1.2"),
    # 1.2 Facial landmark localisation
    (LMK, "rotation_deg", 30.0, "1.2"),
    (LMK, "scale_range", (0.85, 1.15), "1.2"),
    (LMK, "color_jitter", True, "1.2"),
    (LMK, "epochs_range", (60, 480), "1.2"),
    (LMK, "lr", 0.0001, "1.2"),
    (LMK, "batch_size", 24, "1.2"),
    (LMK, "weight_decay", 1e-5, "1.2"),
    (LMK, "optimizer", "Adam", "1.2"),
    (LMK, "betas", (0.5, 0.99), "1.2"),
    (LMK, "loss", "pixel-wise l2", "1.2"),
    (LMK, "num_gpus", 1, "1.2"),
    # 1.2 AU intensity
    (AU, "rotation_deg", 30.0, "1.2"),
    (AU, "scale_range", (0.85, 1.15), "1.2"),
    (AU, "blur_kernel_range", (5, 10), "1.2"),
    (AU, "blur_p", 0.4, "1.2"),
    (AU, "color_jitter", True, "1.2"),
    (AU, "epochs_range", (60, 320), "1.2"),
    (AU, "lr", 0.0001, "1.2"),
    (AU, "weight_decay", 0.000005, "1.2"),
    (AU, "batch_size", 48, "1.2"),
    (AU, "optimizer", "Adam", "1.2"),
    (AU, "betas", (0.5, 0.99), "1.2"),
    (AU, "num_gpus", 2, "1.2"),
    # 1.2 Emotion recognition
    (EMO, "rotation_deg", 30.0, "1.2"),
    (EMO, "scale_range", (0.85, 1.15), "1.2"),
    (EMO, "epochs_range", (60, 240), "1.2"),
    (EMO, "batch_size", 32, "1.2"),
    (EMO, "lr", 0.1, "1.2"),
    (EMO, "weight_decay", 1e-4, "1.2"),
    (EMO, "optimizer", "Adam", "1.2"),
    (EMO, "betas", (0.5, 0.99), "1.2"),
    (EMO, "num_gpus", 1, "1.2"),
    # 1.2 3D face reconstruction
    (R3D, "scale_range", (0.85, 1.15), "1.2"),
    (R3D, "rotation_deg", 45.0, "1.2"),
    (R3D, "translation", 0.1, "1.2"),
    (R3D, "epochs_range", (120, 360), "1.2"),
    (R3D, "lr", 0.05, "1.2"),
    (R3D, "weight_decay", 1e-4, "1.2"),
    (R3D, "optimizer", "SGD", "1.2"),
    (R3D, "momentum", 0.9, "1.2"),
    (R3D, "num_gpus", 2, "1.2"),
    # 1.3 Data sampling
    (S, "label_agnostic", True, "1.3"),
    (S, "fixed_subsets", True, "1.3"),
    (S, "recognition_min_identity_fraction", 0.25, "1.3"),
    (S, "recognition_identity_rule_regime", 0.02, "1.3"),
    # 2 Curated datasets, 3 Flickr-Face
    (D, "full_vggface_images", 3_400_000, "2"),
    (D, "vggface2_identities", 9131, "2"),
    (D, "vggface2_images_per_identity", 362.6, "2"),
    (D, "small_vggface_images", 1_000_000, "2"),
    (D, "large_scale_face_images", 5_000_000, "2"),
    (D, "imdb_face_faces", 1_700_000, "2"),
    (D, "imdb_face_identities", 59_000, "2"),
    (D, "imdb_face_raw_images", 2_000_000, "2"),
    (D, "affectnet_images", 1_000_000, "2"),
    (D, "affectnet_keywords", 1250, "2"),
    (D, "affectnet_annotated", 440_000, "2"),
    (D, "affectnet_expressions", 7, "2"),
    (D, "wider_face_faces", 393_703, "2"),
    (D, "wider_face_images", 32_203, "2"),
    (D, "w300lp_source_images", 4000, "2"),
    (D, "w300lp_yaw_range_deg", (-90, 90), "2"),
    (D, "flickr_face_faces", 1_793_119, "3"),
    (D, "flickr_tags", 100, "3"),
]

# Values the supplement does not print but the authors' code uses (book/paper_and_code.md).
FROM_CODE = [
    (P, "num_prototypes", 3000),
    (P, "sinkhorn_iters", 3),
    (P, "freeze_prototypes_iters", 313),
    (P, "hidden_mlp", 2048),
    (P, "feat_dim", 128),
    (P, "warmup_start_lr", 0.3),
    (P, "min_scale_crops", (0.14, 0.05)),
    (P, "max_scale_crops", (1.0, 0.14)),
    (P, "hflip_p", 0.5),
    (P, "color_jitter", (0.8, 0.8, 0.8, 0.2)),
    (P, "color_jitter_p", 0.8),
    (P, "grayscale_p", 0.2),
    (P, "blur_p", 0.5),
    (P, "blur_sigma", (0.1, 2.0)),
    (P, "mean", (0.485, 0.456, 0.406)),
    (P, "std", (0.228, 0.224, 0.225)),
    (P, "lars_trust_coefficient", 0.001),
    (P, "momentum", 0.9),
    (P, "queue_length", 0),
]


def _field(recipe, name):
    return next(f for f in dataclasses.fields(recipe) if f.name == name)


@pytest.mark.parametrize(
    "recipe,name,value,section", SUPPLEMENT, ids=[f"{type(r).__name__}.{n}" for r, n, _, _ in SUPPLEMENT]
)
def test_supplement_value(recipe, name, value, section):
    assert getattr(recipe, name) == value
    meta = _field(recipe, name).metadata
    assert meta["section"] == section
    assert meta["source"] == "supplement"


@pytest.mark.parametrize("recipe,name,value", FROM_CODE, ids=[f"{type(r).__name__}.{n}" for r, n, _ in FROM_CODE])
def test_value_from_code_is_marked(recipe, name, value):
    assert getattr(recipe, name) == value
    assert _field(recipe, name).metadata["source"] == "code"


def test_cosface_scale_is_marked_as_not_from_the_supplement():
    meta = _field(REC, "cosface_scale").metadata
    assert REC.cosface_scale == 64.0
    assert meta["source"] == "convention" and "not in the supplement" in meta["note"]


def test_odd_values_carry_a_note():
    assert "0.0048" in _field(P, "final_lr").metadata["note"]
    assert "Adam" in _field(EMO, "lr").metadata["note"]


def test_every_field_documents_its_section_and_source():
    for recipe in (P, C, REC, LMK, AU, EMO, R3D, S, D):
        for row in recipes.describe(recipe):
            assert row["section"], f"{type(recipe).__name__}.{row['parameter']} has no section"
            assert row["source"] in ("supplement", "code", "convention")


def test_derived_quantities():
    assert P.images_per_gpu == 64
    assert C.scale == pytest.approx(256 / 190)


# Fields the demo profile may shrink; everything else must stay the paper's. The blur's sigma
# and kernel are in pixels: they scale with the crops' resolution.
SIZE_FIELDS = {
    "arch", "width", "num_gpus", "batch_size", "sync_bn", "epochs", "epochs_range", "warmup_epochs",
    "num_prototypes", "hidden_mlp", "feat_dim", "size_crops", "nmb_crops", "freeze_prototypes_iters",
    "input_size", "heatmap_size", "embedding_dim", "queue_length", "train_images", "synthetic_identities",
    "deconv_width", "blur_sigma", "blur_kernel_size",
}


# The demo pretraining's non-size exceptions, each documented with its measurements in the
# field's note (recipes.py): the views' scale ranges, the colour jitter at half strength and the
# learning rate of a batch of 64.
DEMO_PRETRAIN_EXCEPTIONS = {
    "min_scale_crops": (0.4, 0.1), "max_scale_crops": (1.0, 0.4), "color_jitter": (0.4, 0.4, 0.4, 0.1),
    "base_lr": 2.4, "final_lr": 0.0024, "temperature": 0.2,
}


# The downstream tasks' non-size demo exceptions, each justified in its field's note with the
# measurement on the demo (a run of 24-150 steps instead of the paper's thousands).
DEMO_TASK_EXCEPTIONS = {
    "recognition": {"lr": 0.01},
    "landmarks": {"lr": 1e-3, "heatmap_sigma": 3.0},
    "au": {"lr": 7e-4, "head_init": "default"},
    "emotion": {"lr": 3e-4},
}


def test_demo_changes_sizes_only():
    demo = recipes.pretrain("demo")
    changed = set(recipes.diff(demo, P))
    assert changed and changed <= SIZE_FIELDS | set(DEMO_PRETRAIN_EXCEPTIONS), changed - SIZE_FIELDS
    for name, value in DEMO_PRETRAIN_EXCEPTIONS.items():
        assert getattr(demo, name) == value
    for name in ("min_scale_crops", "color_jitter", "base_lr", "temperature"):  # explained where the value lives
        note = _field(P, name).metadata["note"]
        assert "Demo" in note and "measured" in note, (name, note)
    assert "ln K" in _field(P, "min_scale_crops").metadata["note"]
    assert recipes.pretrain("demo").color_jitter_p == P.color_jitter_p  # the paper's augmentations are back
    assert recipes.pretrain("demo").grayscale_p == P.grayscale_p
    for name in recipes.TASKS:
        exceptions = DEMO_TASK_EXCEPTIONS.get(name, {})
        demo_task, paper_task = recipes.task(name, "demo"), recipes.task(name, "paper")
        changed = set(recipes.diff(demo_task, paper_task))
        assert changed <= SIZE_FIELDS | set(exceptions), (name, changed - SIZE_FIELDS)
        for field_name, value in exceptions.items():
            assert getattr(demo_task, field_name) == value, (name, field_name)
            note = _field(type(paper_task), field_name).metadata["note"]
            assert "demo" in note.lower() and "measured" in note.lower(), (name, field_name, note)


def test_paper_task_values_are_not_the_demo_exceptions():
    # the exceptions are demo-only: the paper profile keeps the printed values
    assert recipes.task("landmarks", "paper").lr == 1e-4
    assert recipes.task("landmarks", "paper").heatmap_sigma == 1.5
    assert recipes.task("au", "paper").lr == 1e-4
    assert recipes.task("au", "paper").head_init == "mean target"
    assert recipes.task("emotion", "paper").lr == 0.1


def test_override_unknown_key_names_it():
    with pytest.raises(recipes.RecipeError, match="not_a_field"):
        recipes.pretrain("paper", not_a_field=1)


def test_override_wrong_type_names_field():
    with pytest.raises(recipes.RecipeError, match="epochs"):
        recipes.pretrain("paper", epochs="many")
    with pytest.raises(recipes.RecipeError, match="sync_bn"):
        recipes.pretrain("paper", sync_bn=1)
    with pytest.raises(recipes.RecipeError, match="size_crops"):
        recipes.pretrain("paper", size_crops=(224, "96"))


def test_override_accepts_lists_and_ints_for_floats():
    r = recipes.pretrain("paper", size_crops=[160, 64], base_lr=5)
    assert r.size_crops == (160, 64)
    assert r.base_lr == 5.0 and isinstance(r.base_lr, float)
    assert P.size_crops == (224, 96), "overrides must not touch the paper recipe"


def test_unknown_profile_and_task():
    with pytest.raises(recipes.RecipeError, match="laptop"):
        recipes.pretrain("laptop")
    with pytest.raises(recipes.RecipeError, match="segmentation"):
        recipes.task("segmentation")


def test_recipes_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        P.epochs = 1  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("iters", [1, 7, 830])
def test_schedule_shape_and_endpoints(iters):
    lr = recipes.lr_schedule(P, iters)
    warm = P.warmup_epochs * iters
    assert lr.shape == (P.epochs * iters,)
    assert lr[0] == pytest.approx(P.warmup_start_lr)
    assert lr[warm] == pytest.approx(P.base_lr), "peak at the end of the warm-up"
    assert lr.max() == pytest.approx(P.base_lr)
    assert lr[-1] == pytest.approx(P.final_lr)


def test_schedule_monotonic_segments():
    lr = recipes.lr_schedule(P, 50)
    warm = P.warmup_epochs * 50
    assert np.all(np.diff(lr[: warm + 1]) > 0), "warm-up increases"
    assert np.all(np.diff(lr[warm:]) < 0), "cosine decreases"


def test_schedule_is_cosine_midway():
    lr = recipes.lr_schedule(P, 10)
    cos = lr[P.warmup_epochs * 10:]
    mid = (len(cos) - 1) / 2
    if mid.is_integer():
        assert cos[int(mid)] == pytest.approx((P.base_lr + P.final_lr) / 2)
    else:
        assert (cos[int(mid)] + cos[int(mid) + 1]) / 2 == pytest.approx((P.base_lr + P.final_lr) / 2, rel=1e-3)


def test_schedule_bad_arguments():
    with pytest.raises(ValueError, match="iters_per_epoch"):
        recipes.lr_schedule(P, 0)
    with pytest.raises(ValueError, match="warmup_epochs"):
        recipes.lr_schedule(recipes.pretrain("paper", epochs=10), 5)
