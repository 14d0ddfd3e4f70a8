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


class _Clocked(nn.Module):
    """Each call advances a fake clock by the next duration of ``ms`` (the oracle's times).

    It records the mode, grad mode, dtype and device of each call. With the clock patched
    into ``time.perf_counter`` the timings are exact, so the median and 90th percentile can
    be worked out by hand.
    """

    def __init__(self, ms, clock):
        super().__init__()
        self.ms, self.clock, self.calls = list(ms), clock, []
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled(), x.dtype, x.device.type,
                           tuple(x.shape)))
        self.clock[0] += self.ms.pop(0) / 1000
        return x.flatten(1)[:, :2] + self.w


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    return now


def test_latency_median_and_p90_are_exact_on_a_known_clock(clock):
    """Ten timed passes of 1..10 ms (shuffled): median 5.5 ms, p90 the 9th smallest, 9 ms."""
    ms = [50, 60] + [5, 1, 9, 3, 7, 2, 8, 4, 10, 6]   # two warm-up passes, never timed
    model = _Clocked(ms, clock)
    out = latency_ms(model, (3, 2, 4, 4), batch_size=4, repeats=10, warmup=2)
    assert out["median"] == pytest.approx(5.5) and out["p90"] == pytest.approx(9.0)
    assert out["per_image"] == pytest.approx(5.5 / 4) and out["batch_size"] == 4
    assert out["repeats"] == 10 and len(model.calls) == 12
    assert all(c == (False, False, torch.float32, "cpu", (4, 2, 4, 4)) for c in model.calls)


def test_latency_odd_repeats_and_one_repeat(clock):
    out = latency_ms(_Clocked([4, 1, 3, 2, 5], clock), (2, 1, 2, 2), repeats=5, warmup=0)
    # sorted 1..5: median 3; p90 index round(0.9 * 4) = 4, the largest; batch 2 from input_size
    assert (out["median"], out["p90"], out["per_image"]) == pytest.approx((3.0, 5.0, 1.5))
    assert out["batch_size"] == 2
    two = latency_ms(_Clocked([8, 3], clock), (1, 1, 2, 2), repeats=2, warmup=0)
    # index round(0.9 * 1) = 1: the larger of two
    assert (two["median"], two["p90"]) == (pytest.approx(5.5), pytest.approx(8.0))
    with pytest.raises(ValueError, match="^repeats must be at least 1$"):
        latency_ms(_Clocked([], clock), (1, 1, 2, 2), repeats=0)
    one = latency_ms(_Clocked([7], clock), (1, 1, 2, 2), repeats=1, warmup=0)
    assert (one["median"], one["p90"], one["repeats"]) == (pytest.approx(7.0), pytest.approx(7.0), 1)


def test_latency_p90_of_twenty_repeats(clock):
    ms = list(range(20, 0, -1))          # 20 ms down to 1 ms
    out = latency_ms(_Clocked(ms, clock), (1, 1, 2, 2), repeats=20, warmup=0)
    # index round(0.9 * 19) = round(17.1) = 17: the 18th smallest, 18 ms; median 10.5
    assert out["p90"] == pytest.approx(18.0) and out["median"] == pytest.approx(10.5)


def test_latency_zero_warmup_and_rehearsal_warmup(clock, monkeypatch):
    model = _Clocked([1, 2], clock)
    latency_ms(model, (1, 1, 2, 2), repeats=2, warmup=0)
    assert len(model.calls) == 2                       # no warm-up pass asked, none run
    # a rehearsal caps the passes but never adds one: warmup 0 stays 0 (a cap written as
    # max(cap, 1) or a floor of one warm-up pass would run 3 calls here), 5 becomes 2
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    model = _Clocked([1, 2], clock)
    latency_ms(model, (1, 1, 2, 2), repeats=2, warmup=0)
    assert len(model.calls) == 2
    model = _Clocked([9, 9, 1, 2], clock)
    out = latency_ms(model, (1, 1, 2, 2), repeats=2, warmup=5)
    assert len(model.calls) == 4 and out["median"] == pytest.approx(1.5)


def test_latency_keeps_eval_mode_of_an_eval_model_and_moves_to_device(clock):
    model = _Clocked([1, 1], clock).double().eval()
    latency_ms(model, (1, 1, 2, 2), repeats=1, warmup=1, device="cpu")
    assert not model.training
    assert model.calls[0][2] == torch.float64          # the input takes the model's dtype
    lin = nn.Linear(4, 2)
    latency_ms(lin, (1, 4), repeats=1, warmup=0, device="meta")
    assert lin.weight.device.type == "meta"            # device= moves the model


def test_a_model_without_parameters_gets_a_float32_cpu_input():
    seen = []

    class NoParams(nn.Module):
        def forward(self, x):
            seen.append((x.dtype, x.device.type, tuple(x.shape), float(x.abs().sum())))
            return x

    latency_ms(NoParams(), (2, 3, 4, 4), repeats=1, warmup=0)
    count_flops(NoParams(), (1, 5))
    assert seen == [(torch.float32, "cpu", (2, 3, 4, 4), 0.0), (torch.float32, "cpu", (1, 5), 0.0)]


def test_count_flops_runs_in_eval_without_grad_and_restores_eval():
    modes = []

    class Probe(nn.Linear):
        def forward(self, x):
            modes.append((self.training, torch.is_grad_enabled()))
            return super().forward(x)

    model = Probe(4, 3).train()
    assert count_flops(model, (2, 4)) == 2 * 2 * 4 * 3 and model.training
    model.eval()
    count_flops(model, (2, 4))
    assert not model.training and modes == [(False, False), (False, False)]


def test_flops_by_module_are_the_top_level_childrens():
    """Oracle: a conv's FLOPs by the formula; nested modules fold into their top-level parent."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.ReLU(),
                          nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 5, bias=False),
                                        nn.Linear(5, 3, bias=False)))
    total, per = count_flops(model, (1, 2, 8, 8), by_module=True)
    conv = 2 * 4 * 2 * 9 * 6 * 6
    lin = 2 * 4 * 6 * 6 * 5 + 2 * 5 * 3
    assert per == {"0": conv, "2": lin} and total == conv + lin
    assert count_flops(model, (1, 2, 8, 8)) == total and count_macs(model, (1, 2, 8, 8)) == total // 2
    stats = profile_model(model, (1, 2, 8, 8))
    assert stats == {"params": 4 * 2 * 9 + 4 * 36 * 5 + 5 * 3, "flops": total, "macs": total // 2}
    # whole numbers, as the model cards print them (not 1.2e6 from a true division)
    assert all(type(v) is int for v in (*stats.values(), total, *per.values(),
                                        count_macs(model, (1, 2, 8, 8))))


def test_profile_model_passes_latency_options(clock):
    """One untimed flop-count pass, one warm-up, then 3, 9 and 1 ms timed: the median is 3."""
    model = _Clocked([100, 100, 3, 9, 1], clock)
    stats = profile_model(model, (2, 1, 2, 2), latency=True, repeats=3, warmup=1)
    assert stats["latency_ms"] == pytest.approx(3.0) and stats["params"] == 1
    assert len(model.calls) == 5 and model.calls[-1][4] == (2, 1, 2, 2)


def test_count_flops_prints_nothing(capsys):
    count_flops(nn.Linear(3, 2), (1, 3), by_module=True)
    assert capsys.readouterr().out == ""
