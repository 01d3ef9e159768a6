"""The training loop: exact resume, refusal to clobber, NaN stop, log, export, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torchvision

from facelib import recipes
from facelib.swav.resnet import resnet
from facelib.swav import train as swav_train
from facelib.swav.data import EpochSampler, MultiCropDataset
from facelib.swav.model import SwAVModel
from facelib.swav.train import NonFiniteLossError, read_log, train
from facelib.swav.transforms import MultiCrop

torch.set_num_threads(1)

TINY = dict(arch="resnet18", batch_size=8, epochs=3, warmup_epochs=1, num_prototypes=12, hidden_mlp=32,
            feat_dim=16, nmb_crops=(2, 2), size_crops=(32, 16), input_size=40, train_images=0,
            freeze_prototypes_iters=2, queue_length=16, epoch_queue_starts=1)


def _images(n: int = 16, size: int = 40) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)]


def _run(out, until=None, resume=False, **kw):
    steps: list[tuple[int, float]] = []
    result = train(recipes.pretrain("demo", **{**TINY, **kw}), _images(), out, amp="off",
                   progress=False, log_every=1, until_epoch=until, resume=resume,
                   on_iteration=lambda r: steps.append((r["iteration"], r["loss"])))
    return result, steps


def _epoch_losses(out) -> list[tuple[int, float, int]]:
    return [(r["epoch"], r["loss"], r["prototypes_used"]) for r in read_log(out, "epoch")]


def test_interrupted_and_resumed_run_reproduces_the_uninterrupted_one(tmp_path) -> None:
    full, full_steps = _run(tmp_path / "a")
    assert full.finished and full.epochs_done == 3 and full.iterations_done == 6
    part, part_steps = _run(tmp_path / "b", until=1)
    assert not part.finished and part.trunk_path is None
    rest, rest_steps = _run(tmp_path / "b", resume=True)
    assert rest.finished
    assert part_steps + rest_steps == full_steps  # bit-identical losses, queue included
    assert _epoch_losses(tmp_path / "a") == _epoch_losses(tmp_path / "b")
    a = torch.load(tmp_path / "a" / "trunk.pth", weights_only=True)
    b = torch.load(tmp_path / "b" / "trunk.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_log_records_and_exported_trunk(tmp_path) -> None:
    result, steps = _run(tmp_path, epochs=2)
    recs = read_log(tmp_path)
    kinds = [r["kind"] for r in recs]
    assert kinds[0] == "start" and kinds.count("epoch") == 2 and kinds.count("iter") == 4
    it = next(r for r in recs if r["kind"] == "iter")
    for key in ("loss", "lr", "code_entropy", "score_spread", "usage_entropy", "prototypes_used", "images_per_s"):
        assert key in it
    sched = recipes.lr_schedule(recipes.pretrain("demo", **{**TINY, "epochs": 2}), 2)
    assert [r["lr"] for r in recs if r["kind"] == "iter"] == pytest.approx(list(sched))
    # torchvision's ResNet class at the recipe's width (facelib.swav.resnet): the same layout
    net = resnet("resnet18", recipes.pretrain("demo", **TINY).width)
    assert isinstance(net, torchvision.models.ResNet)
    missing = net.load_state_dict(torch.load(result.trunk_path, weights_only=True), strict=False)
    assert sorted(missing.missing_keys) == ["fc.bias", "fc.weight"]
    ck = torch.load(result.checkpoint_path, weights_only=True)
    assert ck["epoch"] == 2 and ck["iteration"] == 4 and "rng" in ck["local"] and "optimizer" in ck


def test_prototypes_stay_frozen_then_move(tmp_path) -> None:
    seen = []
    orig = SwAVModel.normalize_prototypes

    def spy(self):
        seen.append(self.prototypes.weight.detach().clone())
        orig(self)

    mp = pytest.MonkeyPatch()
    mp.setattr(SwAVModel, "normalize_prototypes", spy)
    try:
        _run(tmp_path, epochs=2, freeze_prototypes_iters=2)
    finally:
        mp.undo()
    unit = [torch.nn.functional.normalize(w, dim=1) for w in seen]
    assert torch.allclose(unit[0], unit[1]) and torch.allclose(unit[1], unit[2])  # iterations 0, 1 frozen
    assert not torch.allclose(unit[2], unit[3])  # iteration 2 updated them


def test_refuses_to_overwrite_and_to_resume_another_recipe(tmp_path) -> None:
    _run(tmp_path, until=1)
    with pytest.raises(FileExistsError, match="resume"):
        _run(tmp_path)
    with pytest.raises(ValueError, match="num_prototypes"):
        _run(tmp_path, resume=True, num_prototypes=13)


def test_non_finite_loss_stops_with_the_iteration(tmp_path, monkeypatch) -> None:
    calls = {"n": 0}
    orig = SwAVModel.forward

    def poisoned(self, crops):
        calls["n"] += 1
        z, s = orig(self, crops)
        return (z, s * float("nan")) if calls["n"] == 4 else (z, s)

    monkeypatch.setattr(SwAVModel, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, iteration 1 \(global iteration 3"):
        _run(tmp_path)
    assert read_log(tmp_path, "error")[0]["iteration"] == 3
    assert torch.load(tmp_path / "checkpoint.pth", weights_only=True)["epoch"] == 1


def test_sampler_splits_every_global_batch_between_ranks() -> None:
    data = list(range(20))
    single = EpochSampler(data, 8, seed=3)
    single.set_epoch(2)
    halves = []
    for r in range(2):
        s = EpochSampler(data, 8, rank=r, world_size=2, seed=3)
        s.set_epoch(2)
        halves.append(list(s))
    merged = [x for b in range(2) for r in range(2) for x in halves[r][b * 4:(b + 1) * 4]]
    assert merged == list(single) and len(single) == 16
    single.set_epoch(3)
    assert list(single) != merged
    with pytest.raises(ValueError, match="fewer than one batch"):
        EpochSampler(list(range(5)), 8)
    with pytest.raises(ValueError, match="divisible"):
        EpochSampler(data, 8, world_size=3)


def test_unreadable_items_are_recorded_and_replaced(tmp_path) -> None:
    imgs: list = _images(4)
    imgs[1] = np.zeros((40, 40), np.uint8)  # not RGB
    ds = MultiCropDataset(imgs, MultiCrop.from_recipe(recipes.pretrain("demo", **TINY)),
                          bad_items_path=tmp_path / "bad.jsonl")
    with pytest.warns(RuntimeWarning, match=r"list\[1\]"):
        crops = ds[(0, 1)]
    assert len(crops) == 4
    rec = json.loads((tmp_path / "bad.jsonl").read_text())
    assert rec["index"] == 1 and "RGB" in rec["error"]


def test_cli_runs_the_demo_recipe_on_synthetic_faces(tmp_path, capsys) -> None:
    from facelib import cli
    overrides = [f"--set={k}={json.dumps(list(v) if isinstance(v, tuple) else v)}"
                 for k, v in {**TINY, "epochs": 2, "train_images": 16, "input_size": 40}.items()]
    code = cli.main(["pretrain", "--profile", "demo", "--out", str(tmp_path), "--amp", "off",
                     "--no-progress", *overrides])
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["finished"] is True
    assert (tmp_path / "trunk.pth").is_file() and len(read_log(tmp_path, "epoch")) == 2


def test_job_is_picklable_and_requeues_itself(tmp_path) -> None:
    import pickle
    job = swav_train.PretrainJob(recipes.pretrain("demo", **TINY), str(tmp_path), resume=False)
    again = pickle.loads(pickle.dumps(job))
    assert again == job
    delayed = job.checkpoint()
    assert delayed.function.resume is True and delayed.function.out_dir == str(tmp_path)


class _Priority:
    """A stand-in job that reports the priority it ran at."""

    def __call__(self) -> dict:
        import os
        return {"nice": os.nice(0)}


def test_run_jobs_lowers_the_priority_of_every_job_but_the_first() -> None:
    import os
    base = os.nice(0)
    results = swav_train.run_jobs([_Priority(), _Priority()], 2, nice=5)
    assert [r["nice"] for r in results] == [base, min(base + 5, 19)]
    assert [r["nice"] for r in swav_train.run_jobs([_Priority(), _Priority()], 1)] == [base, base]  # here


def test_run_jobs_at_once_trains_what_one_after_the_other_trains_and_raises_a_failure(tmp_path) -> None:
    small = {**TINY, "epochs": 2, "train_images": 16}
    recipe = recipes.pretrain("demo", **small)
    jobs = {n: [swav_train.PretrainJob(r, str(tmp_path / n / name), num_workers=1, resume=False, progress=False)
                for r, name in ((recipe, "swav"), (recipes.pretrain("demo", **small, method="supervised"), "sup"))]
            for n in ("one", "two")}
    serial = swav_train.run_jobs(jobs["one"], 1)
    at_once = swav_train.run_jobs(jobs["two"], 2)
    assert [r["finished"] for r in serial + at_once] == [True] * 4
    assert [r["out_dir"] for r in at_once] == [j.out_dir for j in jobs["two"]]  # in the order of the jobs
    for name in ("swav", "sup"):
        a = torch.load(tmp_path / "one" / name / "trunk.pth", weights_only=True)
        b = torch.load(tmp_path / "two" / name / "trunk.pth", weights_only=True)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    (tmp_path / "blocked").write_text("a file where the run folder should be")
    bad = swav_train.PretrainJob(recipe, str(tmp_path / "blocked" / "run"), resume=False, progress=False)
    good = swav_train.PretrainJob(recipe, str(tmp_path / "after"), resume=False, progress=False)
    with pytest.raises(OSError):
        swav_train.run_jobs([bad, good], 2)
    assert (tmp_path / "after" / "trunk.pth").is_file()  # the other job still ran to its end
    with pytest.raises(ValueError, match="processes must be at least 1"):
        swav_train.run_jobs([good], 0)


@pytest.mark.slow
def test_cli_killed_mid_run_resumes_to_the_same_result(tmp_path) -> None:
    """SIGKILL during epoch 2 of the CLI, then --resume: the log equals an uninterrupted run's."""
    sets = [f"--set={k}={json.dumps(list(v) if isinstance(v, tuple) else v)}"
            for k, v in {**TINY, "epochs": 4, "train_images": 48, "input_size": 40}.items()]
    base = [sys.executable, "-m", "facelib.cli", "pretrain", "--amp", "off", "--no-progress",
            "--log-every", "1", *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(base + ["--out", str(tmp_path / "full")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen(base + ["--out", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed" / "log.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if log.exists() and sum('"epoch": 1' in ln and '"kind": "iter"' in ln for ln in log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert torch.load(tmp_path / "killed" / "checkpoint.pth", weights_only=True)["epoch"] == 1
    subprocess.run(base + ["--out", str(tmp_path / "killed"), "--resume"], check=True, env=env,
                   capture_output=True)
    strip = lambda recs: [(r["kind"], r["epoch"], r["iteration"], r["loss"]) for r in recs if r["kind"] != "start"]
    assert strip(read_log(tmp_path / "killed")) == strip(read_log(tmp_path / "full"))


def test_an_unreadable_shard_item_stops_the_run_or_is_counted_under_the_limit(tmp_path, capsys) -> None:
    import io

    import pandas as pd
    from PIL import Image

    from facelib import cli, storage

    rows = []
    with storage.ShardWriter(tmp_path / "shards", shard_size=8) as w:
        for i, img in enumerate(_images(16)):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            data = buf.getvalue() if i != 5 else b"not an image"
            shard, idx = w.add(data)
            rows.append({"shard": shard, "index": idx})
    storage.write_manifest(pd.DataFrame(rows), tmp_path / "manifest.parquet")
    sets = [f"--set={k}={json.dumps(list(v) if isinstance(v, tuple) else v)}"
            for k, v in {**TINY, "epochs": 1, "warmup_epochs": 0}.items()]
    argv = ["pretrain", "--manifest", str(tmp_path / "manifest.parquet"), "--root", str(tmp_path / "shards"),
            "--amp", "off", "--no-progress", "--workers", "0", *sets]  # in this process: its warnings are seen
    # default max_unreadable_items 0: the first unreadable image stops the run, naming shard and item
    with pytest.warns(RuntimeWarning, match="unreadable pretraining item"):
        assert cli.main([*argv, "--out", str(tmp_path / "strict")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facelib pretrain: error: 1 unreadable pretraining image(s) by epoch 0")
    assert f"shard {tmp_path / 'shards' / rows[5]['shard']}, item 5 (manifest row 5)" in err
    assert "max_unreadable_items" in err and not (tmp_path / "strict" / "checkpoint.pth").exists()
    assert read_log(tmp_path / "strict", "error")
    # under the limit it is replaced, counted in every epoch record and in the result
    with pytest.warns(RuntimeWarning, match="unreadable pretraining item"):
        code = cli.main([*argv, "--out", str(tmp_path / "run"), "--set", "max_unreadable_items=1"])
    assert code == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["unreadable_items"] == 1
    assert [r["unreadable_items"] for r in read_log(tmp_path / "run", "epoch")] == [1]
    bad = [json.loads(ln) for ln in (tmp_path / "run" / "bad_items.jsonl").read_text().splitlines()]
    assert {b["index"] for b in bad} == {5} and "item 5" in bad[0]["item"]


def test_a_second_writer_in_the_same_run_directory_is_refused(tmp_path) -> None:
    tmp_path.mkdir(exist_ok=True)
    held = swav_train._lock_run(tmp_path, 0)
    try:
        with pytest.raises(RuntimeError, match="another process is already training"):
            _run(tmp_path)
    finally:
        held.close()
    result, _ = _run(tmp_path, epochs=1, warmup_epochs=0)  # free again
    assert result.finished


def test_synthetic_faces_are_cut_in_the_paper_crop_geometry() -> None:
    from facelib.data.synth import render
    from facelib.faces.crop import crop_face, transform_boxes
    from facelib.data.cached import CachedDataset
    from facelib.swav.data import SYNTH_RENDER_SCALE, synthetic_faces

    ds = synthetic_faces(3, seed=0, size=48, num_identities=2)
    img, labels = ds[1]
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8 and labels["identity"] == 1
    big, big_labels = render(1, 0, round(SYNTH_RENDER_SCALE * 48), 2)
    crop = recipes.crop()
    ref, M = crop_face(big, big_labels["box"], crop.face_size * 48 / crop.output_size, 48)
    assert np.array_equal(img, ref)
    # The face box spans face_size / output_size (190/256) of the side, as in the paper's crops.
    box = transform_boxes(M, big_labels["box"][None])[0]
    assert max(box[2] - box[0], box[3] - box[1]) == pytest.approx(48 * crop.face_size / crop.output_size, rel=1e-3)
    cached = CachedDataset(ds)
    assert len(cached) == 3 and np.array_equal(cached[1][0], img) and cached[1][0] is cached[1][0]


def test_score_spread_is_logged_and_zero_for_prototype_blind_embeddings() -> None:
    from facelib.swav.loss import SwAVLoss

    loss = SwAVLoss(num_crops=2, crops_for_assign=(0, 1), feat_dim=4)
    protos = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    z = torch.nn.functional.normalize(torch.randn(16, 4), dim=1)
    out = loss(z, z @ protos.t(), protos)
    assert float(out.score_spread) > 0.05
    # Embeddings orthogonal to every prototype score them all alike: spread 0, codes uniform.
    protos_flat = torch.nn.functional.normalize(torch.cat([torch.randn(6, 3), torch.zeros(6, 1)], 1), dim=1)
    z_flat = torch.zeros(16, 4)
    z_flat[:, 3] = 1
    out = loss(z_flat, z_flat @ protos_flat.t(), protos_flat)
    assert float(out.score_spread) == pytest.approx(0, abs=1e-6)
    assert float(out.loss) == pytest.approx(np.log(6), abs=1e-4)


def test_supervised_pretraining_learns_the_identities_and_exports_a_trunk(tmp_path) -> None:
    # the paper's supervised baseline: the same loop, trunk, data and schedule, identity labels
    # instead of SwAV; eight persons with four faces each, learnt well in a few epochs
    recipe = recipes.pretrain("demo", method="supervised", epochs=10, batch_size=8, warmup_epochs=0,
                              train_images=32, synthetic_identities=8, base_lr=2.4, final_lr=0.0024)
    data = swav_train.DataSpec("synthetic").build(recipe)
    result = train(recipe, data, tmp_path, amp="off", progress=False, log_every=1)
    losses = [r["loss"] for r in read_log(tmp_path, "epoch")]
    assert result.finished and losses[-1] < 0.7 * losses[0] and losses[-1] < np.log(8) - 0.4, losses
    sd = torch.load(result.trunk_path, weights_only=True)
    assert not any(k.startswith(("classifier", "fc")) for k in sd)  # the trunk alone
    net = resnet("resnet18", recipe.width)
    assert net.load_state_dict(sd, strict=False).missing_keys == ["fc.weight", "fc.bias"]
    # resumes like SwAV: an interrupted supervised run ends with the same trunk
    train(recipe, data, tmp_path / "cut", amp="off", progress=False, until_epoch=4)
    again = train(recipe, data, tmp_path / "cut", amp="off", progress=False, resume=True)
    torch.testing.assert_close(torch.load(again.trunk_path, weights_only=True), sd)
    # images without identity labels cannot be pretrained supervised
    with pytest.raises(ValueError, match="identity labels"):
        train(recipe, _images(32), tmp_path / "unlabelled", amp="off", progress=False)


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_supervised_loader_makes_only_the_large_crops_the_full_multicrop_makes(augment_on) -> None:
    from facelib.swav.device_multicrop import multicrop_for
    from facelib.swav.supervised import large_crops_only

    recipe = recipes.pretrain("demo", method="supervised", augment_on=augment_on)
    image = (np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)
    full_t, full_d = multicrop_for(recipe)
    large_t, large_d = multicrop_for(large_crops_only(recipe))

    def crops(transform, device):
        rng = np.random.default_rng([0, 2, 5])
        return transform(image, rng) if device is None else device.one(image, rng)

    full, large = crops(full_t, full_d), crops(large_t, large_d)
    assert len(full) == sum(recipe.nmb_crops) and len(large) == recipe.nmb_crops[0]
    for a, b in zip(large, full):
        torch.testing.assert_close(a, b)
