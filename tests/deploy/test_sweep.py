"""The sweep measures every path at every setting, interleaved, with speed-ups over eager."""
from __future__ import annotations

import matplotlib
import pandas as pd
import pytest
import torch

from cnnbook.deploy import export
from cnnbook.deploy.sweep import plot_sweep, slowest_ratio, speedups, sweep
from cnnbook.models.cifar_resnet import cifar_resnet


def test_sweep_rows_and_speedups():
    model = cifar_resnet(8, width_mult=0.25).eval()
    paths = {"eager": export.InferencePath("eager", model),
             "bf16": export.InferencePath("bf16", export.Bf16Autocast(model))}
    before = torch.get_num_threads()
    table = sweep(paths, batch_sizes=(1, 4), threads=(1, 2), repeats=2, warmup=1)
    assert torch.get_num_threads() == before
    assert len(table) == 2 * 2 * 2
    assert set(table["path"]) == {"eager", "bf16"} and set(table["threads"]) == {1, 2}
    assert (table["median_ms"] > 0).all() and (table["p90_ms"] >= table["p10_ms"]).all()
    eager = table[table["path"] == "eager"]
    assert eager["speedup"].tolist() == pytest.approx([1.0] * 4)
    row = table[(table["path"] == "bf16") & (table["batch_size"] == 4) & (table["threads"] == 1)].iloc[0]
    e = eager[(eager["batch_size"] == 4) & (eager["threads"] == 1)].iloc[0]
    assert row["speedup"] == pytest.approx(e["median_ms"] / row["median_ms"])
    assert row["throughput"] == pytest.approx(4 / (row["median_ms"] / 1000))
    assert slowest_ratio(table, "eager") == pytest.approx(1.0)
    fig = plot_sweep(table, threads=2)
    assert isinstance(fig, matplotlib.figure.Figure)
    matplotlib.pyplot.close(fig)


def test_speedups_and_errors():
    t = pd.DataFrame({"path": ["eager", "ort", "ort"], "threads": [1, 1, 2],
                      "batch_size": [8, 8, 8], "median_ms": [10.0, 5.0, 4.0]})
    s = speedups(t)
    assert s["speedup"].iloc[:2].tolist() == [1.0, 2.0]
    assert pd.isna(s["speedup"].iloc[2])  # eager not measured with 2 threads
    with pytest.raises(ValueError, match="not measured"):
        slowest_ratio(s, "compile")
    with pytest.raises(ValueError, match="no paths"):
        sweep({})
    with pytest.raises(ValueError, match="nothing measured"):
        plot_sweep(s.assign(p10_ms=1.0, p90_ms=2.0, throughput=1.0), threads=7)
