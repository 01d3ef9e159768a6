"""facelib.cost on the measured files of benchmarks/measured: units, sums, sources; and the page."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from facelib import book, cost, recipes

REPO = Path(__file__).resolve().parents[1]
MEASURED = REPO / cost.MEASURED_DIR


@pytest.fixture(scope="module")
def sources() -> dict[str, cost.Source]:
    return cost.load_all(MEASURED)


def _json(name: str) -> dict:
    return json.loads((MEASURED / name).read_text())


def test_every_measured_file_says_where_and_when(sources) -> None:
    assert set(sources) == set(cost.BENCHMARKS)
    for name, s in sources.items():
        assert s.file == f"benchmarks/measured/{name}" and s.machine and s.date[:2] == "20"
        assert name in s.label and s.machine in s.label and s.date in s.label
    table = cost.sources_table(sources)
    assert list(table.columns) == ["machine", "date", "written by"] and len(table) == len(cost.BENCHMARKS)
    assert sources["bench_swav_gpu.json"].machine == "NVIDIA H200"


def test_missing_or_undated_results_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"bench_preprocess\.json.*bench_preprocess\.py --save"):
        cost.load(tmp_path, "bench_preprocess.json")
    (tmp_path / "bench_swav_gpu.json").write_text(json.dumps({"device": "GPU"}))
    with pytest.raises(ValueError, match="date"):
        cost.load(tmp_path, "bench_swav_gpu.json")
    (tmp_path / "bench_flickr_crawl.json").write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        cost.load(tmp_path, "bench_flickr_crawl.json")


def test_crawl_rows_units_and_sum(sources) -> None:
    flickr = recipes.flickr("paper")
    faces = recipes.datasets().flickr_face_faces
    fpp = cost.measured_faces_per_photo(sources["bench_preprocess.json"])
    run = _json("bench_preprocess.json")["runs"]["pipeline:1"]
    assert fpp == pytest.approx(run["faces"] / run["images"]) and fpp > 0
    t = cost.crawl(faces, 1.5, flickr, sources["bench_flickr_crawl.json"]).set_index("item")
    assert set(t["unit"]) == {"photos", "calls", "hours", "photos/s"}
    photos = faces / 1.5
    assert t.loc["photos to download", "value"] == pytest.approx(photos)
    calls = photos / flickr.per_page + photos / flickr.result_cap
    assert t.loc["search time", "value"] == pytest.approx(calls / flickr.api_rate / 3600)
    measured = _json("bench_flickr_crawl.json")["concurrent_photos_per_s"]
    rate = min(measured, flickr.download_rate)
    assert t.loc["download time", "value"] == pytest.approx(photos / rate / 3600)
    assert t.loc["crawl wall time", "value"] == pytest.approx(t.loc["search time", "value"] + t.loc["download time", "value"])
    assert "bench_flickr_crawl.json" in t.loc["download throughput, measured", "source"]
    with pytest.raises(ValueError, match="faces_per_photo"):
        cost.crawl(faces, 0.0, flickr, sources["bench_flickr_crawl.json"])


def test_preprocess_core_hours_from_images_per_cpu_second(sources) -> None:
    rate = _json("bench_preprocess.json")["runs"]["pipeline:1"]["images_per_cpu_s"]
    t = cost.preprocess({"a": 5_000_000, "b": 1000}, sources["bench_preprocess.json"], cores=640)
    assert t.loc["a", "CPU core-hours"] == pytest.approx(5_000_000 / rate / 3600)
    assert t.loc["a", "wall hours"] == pytest.approx(t.loc["a", "CPU core-hours"] / 640)
    assert t["CPU core-hours"].sum() == pytest.approx(5_001_000 / rate / 3600)
    assert all("bench_preprocess.json" in s for s in t["source"])
    with pytest.raises(ValueError, match="cores"):
        cost.preprocess({"a": 1}, sources["bench_preprocess.json"], cores=0)


def test_pretrain_gpu_hours_and_loader_cores(sources) -> None:
    paper = recipes.pretrain("paper")
    sets = cost.pretraining_sets()
    assert sets["Full VGG-Face"] == recipes.datasets().full_vggface_images
    t = cost.pretrain(sets, paper, sources["bench_swav_gpu.json"], sources["bench_swav_device_multicrop.json"],
                      "bf16 + channels_last")
    ips = _json("bench_swav_gpu.json")["variants"]["bf16 + channels_last"]["images_per_s"]
    per_core = _json("bench_swav_device_multicrop.json")["images_per_s_per_core"]
    full = t.loc["Full VGG-Face"]
    assert full["epochs"] == paper.epochs == 200 and full["GPUs"] == paper.num_gpus
    assert full["GPU-hours"] == pytest.approx(3_400_000 * 200 / ips / 3600)
    assert full["wall hours"] == pytest.approx(full["GPU-hours"] / 64)
    assert full["loader cores per GPU, CPU path"] == pytest.approx(ips / per_core["cpu_path_loader"])
    assert full["loader cores per GPU, device path"] == pytest.approx(ips / per_core["device_path_loader"])
    assert full["loader cores per GPU, device path"] < full["loader cores per GPU, CPU path"]
    assert full["loader core-hours, CPU path"] == pytest.approx(full["GPU-hours"] * full["loader cores per GPU, CPU path"])
    assert t["GPU-hours"].sum() == pytest.approx(sum(sets.values()) * 200 / ips / 3600)
    with pytest.raises(ValueError, match="not measured.*bf16 \\+ channels_last"):
        cost.pretrain(sets, paper, sources["bench_swav_gpu.json"], sources["bench_swav_device_multicrop.json"], "fp8")
    with pytest.raises(ValueError, match="images per GPU"):
        cost.pretrain(sets, recipes.pretrain("paper", batch_size=8192), sources["bench_swav_gpu.json"],
                      sources["bench_swav_device_multicrop.json"], "bf16")


def test_finetune_grid_hours(sources) -> None:
    sets = cost.finetune_sets()
    d = recipes.datasets()
    assert sets["au"][1] == d.disfa_subjects * d.disfa_frames_per_subject
    regimes = recipes.sampling().regimes
    t = cost.finetune(sets, regimes, 6, sources["gpu_finetune_memory.json"])
    m = _json("gpu_finetune_memory.json")
    for task_name, (_, n) in sets.items():
        rec = recipes.task(task_name, "paper")
        steps = sum(math.ceil(r * n / rec.batch_size) for r in regimes)
        lo, hi = rec.epochs_range
        row = t.loc[task_name]
        assert row["runs"] == len(regimes) * 6
        assert row["GPU-hours, fewest epochs"] == pytest.approx(steps * lo * m[task_name]["step_s"] / 3600 * 6)
        assert row["GPU-hours, most epochs"] == pytest.approx(row["GPU-hours, fewest epochs"] * hi / lo)
        assert row["longest run hours, most epochs"] == pytest.approx(
            math.ceil(n / rec.batch_size) * hi * m[task_name]["step_s"] / 3600)
    src = sources["gpu_finetune_memory.json"]
    partial = cost.Source(src.file, src.machine, src.date, {k: v for k, v in src.data.items() if k != "emotion"})
    with pytest.raises(ValueError, match="no measurement of task 'emotion'"):
        cost.finetune(sets, regimes, 1, partial)
    with pytest.raises(ValueError, match="inits"):
        cost.finetune(sets, regimes, 0, sources["gpu_finetune_memory.json"])


def test_summary_sums_the_steps(sources) -> None:
    flickr = recipes.flickr("paper")
    crawl = cost.crawl(1_000_000, 1.0, flickr, sources["bench_flickr_crawl.json"])
    pre = cost.preprocess({"a": 1_000_000, "b": 2_000_000}, sources["bench_preprocess.json"], cores=100)
    pre_t = cost.pretrain(cost.pretraining_sets(), recipes.pretrain("paper"), sources["bench_swav_gpu.json"],
                          sources["bench_swav_device_multicrop.json"], "bf16 + channels_last")
    ft = cost.finetune(cost.finetune_sets(), recipes.sampling().regimes, 2, sources["gpu_finetune_memory.json"])
    s = cost.summary(crawl, pre, pre_t, ft, finetune_gpus=64)
    assert s.loc["preprocess", "CPU core-hours"] == pytest.approx(pre["CPU core-hours"].sum())
    assert s.loc["preprocess", "wall hours"] == pytest.approx(pre["CPU core-hours"].sum() / 100)
    for path in ("CPU path", "device path"):
        row = s.loc[f"pretrain, multi-crop {path}"]
        assert row["GPU-hours"] == pytest.approx(pre_t["GPU-hours"].sum())
        assert row["CPU core-hours"] == pytest.approx(pre_t[f"loader core-hours, {path}"].sum())
    most = s.loc["fine-tuning grid, most epochs"]
    assert most["GPU-hours"] == pytest.approx(ft["GPU-hours, most epochs"].sum())
    assert most["wall hours"] >= max(most["GPU-hours"] / 64, ft["longest run hours, most epochs"].max()) - 1e-9
    assert math.isnan(most["CPU core-hours"])  # not measured: not invented
    assert s.loc["crawl Flickr-Face", "wall hours"] == pytest.approx(
        float(crawl.set_index("item").loc["crawl wall time", "value"]))
    with pytest.raises(ValueError, match="finetune_gpus"):
        cost.summary(crawl, pre, pre_t, ft, finetune_gpus=0)
    assert [cost.number(v) for v in (float("nan"), 1234.6, 56.61, 0.04671)] == [
        "not measured", "1,235", "56.6", "0.0467"]


@pytest.mark.slow
def test_cost_page_executes_with_its_sources(tmp_path, repo_root) -> None:
    page = next(p for p in book.pages(repo_root) if p.name == "10_cost")
    params = book.resolve_parameters(page, "demo", book.load_profile(repo_root, "demo").get(page.name, {}), {})
    out = book.Page(page.name, page.source, tmp_path / "10_cost.ipynb")
    seconds = book.execute_page(out, params, repo_root)
    nb = json.loads(out.output.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = json.dumps(outputs)
    for name in cost.BENCHMARKS:
        assert f"benchmarks/measured/{name}" in text, name
    assert "NVIDIA H200" in text and "GPU-hours" in text and "fine-tuning grid, most epochs" in text
    print(f"10_cost executed in {seconds:.1f} s")


def test_gpu_variants_and_photos_to_download(sources) -> None:
    gpu = sources["bench_swav_gpu.json"]
    t = cost.gpu_variants(gpu, 3_400_000, 200)
    measured = {k: v for k, v in _json("bench_swav_gpu.json")["variants"].items() if "images_per_s" in v}
    assert list(t.index) == list(measured) and t.index.name == "variant"
    for name, v in measured.items():
        assert t.loc[name, "images/s per GPU"] == pytest.approx(v["images_per_s"])
        assert t.loc[name, "GPU-hours"] == pytest.approx(3_400_000 * 200 / v["images_per_s"] / 3600)
    crawl = cost.crawl(1_000_000, 2.0, recipes.flickr("paper"), sources["bench_flickr_crawl.json"])
    assert cost.photos_to_download(crawl) == pytest.approx(500_000)
