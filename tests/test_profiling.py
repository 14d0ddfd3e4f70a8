import pytest
import torchvision
from torch import nn

from cnnbook.profiling import count_flops, count_macs, count_params, latency_ms, profile_model


def test_conv_flops_match_the_formula():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    macs = 8 * 3 * 3 * 3 * 16 * 16  # out channels x in channels x k x k x output positions
    assert count_macs(conv, (1, 3, 16, 16)) == macs
    assert count_flops(conv, (1, 3, 16, 16)) == 2 * macs


def test_params_and_flops_match_torchvision_resnet18():
    model = torchvision.models.resnet18(weights=None)
    assert count_params(model) == 11_689_512
    published = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["_ops"]
    assert count_macs(model) / 1e9 == pytest.approx(published, rel=0.01)
    total, per = count_flops(model, (1, 3, 64, 64), by_module=True)
    assert sum(per.values()) == total and "layer1" in per


def test_trainable_only_and_mode_restored():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    assert count_params(model) == 15 + 8 and count_params(model, trainable_only=True) == 3 + 8
    model.train()
    count_flops(model, (2, 4))
    assert model.training


def test_latency_reports_median_per_image():
    model = nn.Conv2d(1, 4, 3)
    out = latency_ms(model, (1, 1, 16, 16), batch_size=8, repeats=3, warmup=1)
    assert out["batch_size"] == 8 and out["median"] > 0
    assert out["per_image"] == pytest.approx(out["median"] / 8)
    with pytest.raises(ValueError):
        latency_ms(model, (1, 1, 8, 8), repeats=0)
    stats = profile_model(model, (1, 1, 16, 16), latency=True, repeats=2)
    assert stats["params"] == 40 and stats["macs"] == 4 * 9 * 14 * 14 and stats["latency_ms"] > 0
