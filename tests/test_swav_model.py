"""The SwAV model: forward by resolution group, prototypes, released-checkpoint loading, export."""

from __future__ import annotations

import pytest
import torch
import torchvision

from facelib import checkpoint
from facelib.swav import reference
from facelib.swav.model import (SwAVModel, convert_state_dict, export_trunk, load_pretrained,
                                load_trunk, read_state_dict)

torch.set_num_threads(1)


def _model(**kw) -> SwAVModel:
    torch.manual_seed(0)
    args = dict(arch="resnet18", hidden_mlp=32, feat_dim=16, num_prototypes=10)
    args.update(kw)
    return SwAVModel(**args).eval()


def _crops(b: int = 2):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(b, 3, 32, 32, generator=g) for _ in range(2)] + \
        [torch.randn(b, 3, 16, 16, generator=g) for _ in range(3)]


def test_forward_shapes_and_unit_embeddings() -> None:
    m = _model()
    z, s = m(_crops())
    assert z.shape == (10, 16) and s.shape == (10, 10)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(10))
    assert m.num_features == 512


def test_trunk_runs_once_per_resolution_group() -> None:
    m = _model()
    calls = []
    m.trunk.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape))
    m(_crops())
    assert [tuple(c) for c in calls] == [(4, 3, 32, 32), (6, 3, 16, 16)]


def test_matches_the_official_forward() -> None:
    m = _model()
    crops = _crops()
    with torch.no_grad():
        z1, s1 = m(crops)
        z2, s2 = reference.official_forward(m, crops)
    torch.testing.assert_close(z1, z2)
    torch.testing.assert_close(s1, s2)


def test_normalize_prototypes() -> None:
    m = _model()
    with torch.no_grad():
        m.prototypes.weight.mul_(3.0)
    m.normalize_prototypes()
    torch.testing.assert_close(m.prototypes.weight.norm(dim=1), torch.ones(10))


def test_paper_head_dimensions() -> None:
    m = SwAVModel("resnet50", 2048, 128, 3000)
    assert m.num_features == 2048
    assert [tuple(p.shape) for p in m.projection.parameters()][0] == (2048, 2048)
    assert m.prototypes.weight.shape == (3000, 128) and m.prototypes.bias is None


def _authors_state_dict(arch: str = "resnet18", hidden: int = 32, feat: int = 16, k: int = 10):
    """A state dict in the layout of the authors' released checkpoints."""
    torch.manual_seed(1)
    net = torchvision.models.get_model(arch, weights=None)
    sd = {f"module.base_net.{k_}": v for k_, v in net.state_dict().items() if not k_.startswith("fc.")}
    nf = net.fc.in_features
    head = torch.nn.Sequential(torch.nn.Linear(nf, hidden), torch.nn.BatchNorm1d(hidden),
                               torch.nn.ReLU(), torch.nn.Linear(hidden, feat))
    sd.update({f"module.projection_net.net.{k_}": v for k_, v in head.state_dict().items()})
    sd["module.prototypes.weight"] = torch.randn(k, feat)
    return net, sd


def test_loads_the_authors_released_layout(tmp_path) -> None:
    net, sd = _authors_state_dict()
    path = tmp_path / "flr_r18.pth"
    torch.save({"state_dict": sd, "epoch": 200}, path)
    m = _model()
    report = load_pretrained(m, path)
    assert report.layout.startswith("authors")
    assert "projection.3.weight" in report.loaded and "prototypes.weight" in report.loaded
    assert not report.skipped
    net.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m.trunk(x), net.eval()(x))
    torch.testing.assert_close(m.prototypes.weight, sd["module.prototypes.weight"])


def test_head_of_another_width_is_skipped_not_fatal() -> None:
    _, sd = _authors_state_dict(hidden=64)
    report = load_pretrained(_model(), sd)
    assert "projection.0.weight" in report.skipped and "trunk.conv1.weight" in report.loaded


def test_loads_official_swav_and_torchvision_layouts() -> None:
    net = torchvision.models.resnet18(weights=None)
    swav_sd = {f"module.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    swav_sd["module.projection_head.0.weight"] = torch.zeros(32, 512)
    assert convert_state_dict(swav_sd)[2] == "swav (official)"
    assert "projection.0.weight" in load_pretrained(_model(), swav_sd).loaded
    report = load_pretrained(_model(), net.state_dict())
    assert report.layout == "torchvision" and "fc.weight" in report.ignored


def test_missing_or_misshapen_trunk_weights_are_named() -> None:
    _, sd = _authors_state_dict()
    del sd["module.base_net.layer4.1.bn2.weight"]
    with pytest.raises(ValueError, match="layer4.1.bn2.weight"):
        load_pretrained(_model(), sd)
    _, sd50 = _authors_state_dict("resnet50", hidden=32)
    with pytest.raises(ValueError, match="shape"):
        load_pretrained(_model(), sd50)
    with pytest.raises(ValueError, match="no ResNet trunk"):
        convert_state_dict({"foo.weight": torch.zeros(1)})


def test_export_is_plain_torchvision(tmp_path) -> None:
    m = _model()
    path = tmp_path / "trunk.pth"
    export_trunk(m, path)
    sd = torch.load(path, weights_only=True)
    net = torchvision.models.resnet18(weights=None)
    result = net.load_state_dict(sd, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys
    net.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), m.trunk(x))


def test_load_trunk_for_fine_tuning(tmp_path) -> None:
    net, sd = _authors_state_dict()
    path = tmp_path / "released.pth"
    torch.save({"state_dict": sd}, path)
    ft = load_trunk("resnet18", path)
    torch.testing.assert_close(ft.conv1.weight, net.conv1.weight)
    assert ft.fc.out_features == 1000
    with pytest.raises(ValueError, match="does not fit resnet34: missing .*layer1.2"):
        load_trunk("resnet34", path)


def test_read_state_dict_errors(tmp_path) -> None:
    p = tmp_path / "x.pth"
    torch.save({"epoch": 3}, p)
    with pytest.raises(ValueError, match="no state dict"):
        read_state_dict(p)
    with pytest.raises(checkpoint.CheckpointError):
        read_state_dict(tmp_path / "missing.pth")


def test_rejects_non_resnets() -> None:
    with pytest.raises(ValueError, match="not a torchvision ResNet"):
        SwAVModel("vgg11")


def test_narrow_resnets_keep_torchvision_layout_and_load_back(tmp_path):
    from facelib.swav.resnet import resnet, width_of
    assert list(resnet("resnet18", 64).state_dict()) == list(torchvision.models.resnet18().state_dict())
    narrow = resnet("resnet18", 16)
    assert isinstance(narrow, torchvision.models.ResNet)
    assert list(narrow.state_dict()) == list(torchvision.models.resnet18().state_dict())  # same names
    assert narrow.conv1.out_channels == 16 and narrow.fc.in_features == 128
    assert resnet("resnet50", 16).fc.in_features == 16 * 8 * 4  # bottleneck expansion
    n18, n64 = (sum(p.numel() for p in resnet("resnet18", w).parameters() if p.ndim == 4) for w in (16, 64))
    assert 15 < n64 / n18 < 17  # a quarter of the width: about a sixteenth of the convolution weights
    model = SwAVModel("resnet18", hidden_mlp=16, feat_dim=8, num_prototypes=4, width=16)
    export_trunk(model, tmp_path / "t.pth")
    sd = torch.load(tmp_path / "t.pth", weights_only=True)
    assert width_of(sd) == 16
    back = load_trunk("resnet18", tmp_path / "t.pth")
    assert back.conv1.out_channels == 16
    torch.testing.assert_close(back.layer4[1].conv2.weight, model.trunk.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match="positive integer"):
        resnet("resnet18", 0)
    with pytest.raises(ValueError, match="no 4-D conv1.weight"):
        width_of({})
