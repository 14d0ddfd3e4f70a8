import math

import pytest
import torch
from torch import nn

from cnnbook.deploy import benchmark as B


def test_time_call_reports_median_spread_and_threads():
    calls = []
    t = B.time_call(lambda x: calls.append(x) or x * 2, torch.ones(3), repeats=5, warmup=2,
                    threads=1, batch_size=4, label="double")
    assert len(calls) >= 7                      # 2 warm-up + at least one per timed block
    assert t.threads == 1 and t.repeats == 5 and t.batch_size == 4 and t.label == "double"
    assert 0 < t.min_ms <= t.p10_ms <= t.median_ms <= t.p90_ms
    assert t.iqr_ms >= 0 and math.isclose(t.throughput, 4 / (t.median_ms / 1000))
    assert math.isclose(t.per_image_ms, t.median_ms / 4)
    d = t.as_dict()
    assert {"median_ms", "iqr_ms", "throughput", "threads", "load"} <= set(d)


def test_thread_count_is_pinned_during_timing_and_restored():
    before = torch.get_num_threads()
    seen = []
    B.time_call(lambda: seen.append(torch.get_num_threads()), repeats=2, warmup=1, threads=1)
    assert set(seen) == {1}
    assert torch.get_num_threads() == before


def test_slower_call_measures_slower():
    x = torch.randn(256, 256)
    fast = B.time_call(lambda: x @ x, repeats=5, threads=1)
    slow = B.time_call(lambda: [x @ x for _ in range(8)], repeats=5, threads=1)
    assert slow.median_ms > 2 * fast.median_ms


def test_benchmark_rows_per_batch_and_thread_and_train_mode_restored():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.Flatten())
    model.train()
    df = B.benchmark(model, batch_sizes=(1, 4), threads=(1,), repeats=3, warmup=1)
    assert list(df["batch_size"]) == [1, 4] and set(df["threads"]) == {1}
    assert (df["throughput"] > 0).all()
    assert model.training


def test_benchmark_accepts_a_custom_input_maker():
    shapes = []
    B.benchmark(lambda x: shapes.append(x.shape), batch_sizes=(2,), repeats=2, warmup=0,
                make_input=lambda b: torch.zeros(b, 5))
    assert shapes and all(s == (2, 5) for s in shapes)


@pytest.mark.parametrize("kwargs", [dict(repeats=0), dict(warmup=-1), dict(number=0),
                                    dict(threads=0), dict(repeats=2.5)])
def test_bad_counts_are_refused(kwargs):
    with pytest.raises((ValueError, TypeError)):
        B.time_call(lambda: None, **kwargs)


def test_benchmark_needs_batch_sizes():
    with pytest.raises(ValueError, match="batch_sizes"):
        B.benchmark(nn.Identity(), batch_sizes=())


def test_example_input_is_seeded():
    a, b = B.example_input(2, (3, 8, 8), seed=1), B.example_input(2, (3, 8, 8), seed=1)
    assert torch.equal(a, b) and a.shape == (2, 3, 8, 8)
    assert B.example_input(2, (3, 8, 8), channels_last=True).is_contiguous(
        memory_format=torch.channels_last)


def test_sizes_count_parameters_buffers_and_element_size():
    bn = nn.BatchNorm2d(10)   # 20 parameters + 20 running stats (fp32) + 1 int64 counter
    assert math.isclose(B.size_mb(bn), (40 * 4 + 8) / 1e6)
    lin = nn.Linear(100, 100)
    full = B.size_mb(lin)
    lin.to(torch.float16)
    assert math.isclose(B.size_mb(lin), full / 2)
    assert B.file_size_mb(nn.Linear(100, 100)) > 0.04   # 10,100 floats plus the zip container


def test_size_counts_tensor_attributes_once():
    m = nn.Linear(10, 10)
    m.frozen = torch.zeros(100, dtype=torch.int8)
    m.alias = m.weight
    assert math.isclose(B.size_mb(m), (110 * 4 + 100) / 1e6)
    with pytest.raises(TypeError):
        B.size_mb(lambda x: x)
    # the file holds the int8 attribute too, once, at a byte per element
    assert B.file_size_mb(m, state_dict_only=False) - B.file_size_mb(m) > 100 / 1e6
    assert B.file_size_mb(m, state_dict_only=False) - B.file_size_mb(m) < 100 / 1e6 + 0.002
    with pytest.raises(TypeError):
        B.file_size_mb(lambda x: x)


def test_a_rehearsal_caps_the_repeats_and_warmup(monkeypatch):
    calls = []
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    t = B.time_call(lambda x: calls.append(x) or x, torch.ones(1), repeats=30, warmup=5)
    assert t.repeats == 2 and 4 <= len(calls) <= 2 + 2 * 100   # 2 warm-up, 2 timed blocks
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES")
    assert B.time_call(lambda x: x, torch.ones(1), repeats=3, warmup=0).repeats == 3
