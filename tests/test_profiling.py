import time

import pytest
import torch
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


class _Sleeper(nn.Module):
    """A model whose cost is known without measuring it: it sleeps ``ms`` per image.

    It also records the mode of each call, and holds one parameter (for device and dtype).
    """

    def __init__(self, ms: float):
        super().__init__()
        self.ms, self.w, self.modes = ms, nn.Parameter(torch.zeros(1)), []

    def forward(self, x):
        self.modes.append(self.training)
        time.sleep(self.ms * x.shape[0] / 1000)
        return x.flatten(1)[:, :2] + self.w


def test_latency_times_the_batch_size_asked_for():
    """Oracle: 8 images at 1.5 ms each take at least 12 ms (sleep never returns early)."""
    model = _Sleeper(1.5).train()
    out = latency_ms(model, (1, 3, 4, 4), batch_size=8, repeats=3, warmup=1)
    assert out["batch_size"] == 8 and out["repeats"] == 3
    # only lower bounds: a loaded machine may add any delay to a sleep, never remove one
    assert 12.0 <= out["median"] <= out["p90"] and 1.5 <= out["per_image"]
    assert model.modes == [False] * 4 and model.training   # eval while timed, then restored
    one = latency_ms(model, (1, 3, 4, 4), repeats=2, warmup=0)
    assert one["batch_size"] == 1 and 1.5 <= one["median"]


def test_latency_of_profile_model_is_the_median_of_a_batch():
    stats = profile_model(_Sleeper(2.0), (4, 3, 4, 4), latency=True, repeats=2, warmup=0)
    assert 8.0 <= stats["latency_ms"]


def test_a_rehearsal_caps_the_repeats(monkeypatch):
    model = _Sleeper(0.0)
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    out = latency_ms(model, (1, 1, 4, 4), repeats=50, warmup=10)
    assert out["repeats"] == 2 and len(model.modes) == 4   # 2 warm-up + 2 timed calls


def test_a_rehearsal_times_a_small_batch(monkeypatch):
    """CNNBOOK_MAX_BATCH_SIZE=2: a batch of 8 asked for is timed on 2 images (1.5 ms each)."""
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "2")
    out = latency_ms(_Sleeper(1.5), (1, 3, 4, 4), batch_size=8, repeats=2, warmup=0)
    assert out["batch_size"] == 2 and 3.0 <= out["median"] and 1.5 <= out["per_image"]
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "64")
    assert latency_ms(_Sleeper(0.0), (1, 3, 4, 4), batch_size=8, repeats=1)["batch_size"] == 8
