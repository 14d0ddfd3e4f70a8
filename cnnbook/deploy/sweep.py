"""Latency and throughput of several inference paths over batch sizes and thread counts.

``sweep`` times every :class:`cnnbook.deploy.export.InferencePath` at every (threads, batch
size) with ``cnnbook.deploy.benchmark.time_call`` (warm-up, repeats, median and spread,
threads pinned). The paths are measured *interleaved*, all paths at one setting before the
next setting, so a change in the machine's load during the sweep hits every path alike
instead of making whichever path ran last look slow. ``speedups`` adds each path's speed-up
over eager at the same setting, ``plot_sweep`` draws the curves.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import torch

from cnnbook.deploy.benchmark import example_input, time_call

__all__ = ["sweep", "speedups", "plot_sweep", "slowest_ratio"]


def sweep(paths: dict, batch_sizes=(1, 8, 32), threads=(1,), repeats: int = 10,
          warmup: int = 2, input_shape=(3, 32, 32), seed: int = 0) -> pd.DataFrame:
    """One row per (path, threads, batch size): ``median_ms``, ``iqr_ms``, ``p10_ms``,
    ``p90_ms``, ``throughput`` (images/s), ``per_image_ms``, ``load`` and ``speedup`` (eager's
    median over this path's, when eager is among the paths)."""
    if not paths:
        raise ValueError("no paths to measure")
    batch_sizes, threads = list(batch_sizes), list(threads)
    if not batch_sizes or not threads:
        raise ValueError("give at least one batch size and one thread count")
    before = torch.get_num_threads()
    rows = []
    try:
        for t in threads:
            for path in paths.values():
                path.set_threads(t)
            for b in batch_sizes:
                x = example_input(b, input_shape, seed=seed)
                for name, path in paths.items():
                    timing = time_call(path, x, repeats=repeats, warmup=warmup, threads=t,
                                       batch_size=b, label=name)
                    rows.append({"path": name, **timing.as_dict()})
    finally:
        torch.set_num_threads(before)
    return speedups(pd.DataFrame(rows))


def speedups(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``speedup``: eager's median time over each path's at the same threads and batch
    size (above 1 = faster than eager). NaN where eager was not measured."""
    table = table.copy()
    eager = table[table["path"] == "eager"].set_index(["threads", "batch_size"])["median_ms"]
    keys = list(zip(table["threads"], table["batch_size"]))
    table["speedup"] = [eager.get(k, float("nan")) / m for k, m in zip(keys, table["median_ms"])]
    return table


def slowest_ratio(table: pd.DataFrame, path: str) -> float:
    """The smallest speed-up of ``path`` over eager across every measured setting: >= 1 means
    never slower than eager (the issue's target for ONNX Runtime)."""
    rows = table[table["path"] == path]
    if rows.empty:
        raise ValueError(f"path {path!r} was not measured")
    return float(rows["speedup"].min())


def plot_sweep(table: pd.DataFrame, threads=None, title: str = ""):
    """Two panels: latency per batch (ms, log-log) and throughput (images/s) against batch
    size, one line per path; ``threads`` picks one thread count (default: the largest)."""
    threads = int(table["threads"].max()) if threads is None else threads
    sub = table[table["threads"] == threads]
    if sub.empty:
        raise ValueError(f"nothing measured with {threads} threads")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in sub.groupby("path", sort=False):
        rows = rows.sort_values("batch_size")
        ax1.errorbar(rows["batch_size"], rows["median_ms"], yerr=[
            rows["median_ms"] - rows["p10_ms"], rows["p90_ms"] - rows["median_ms"]],
            marker="o", capsize=3, label=name)
        ax2.plot(rows["batch_size"], rows["throughput"], marker="o", label=name)
    ax1.set(xscale="log", yscale="log", xlabel="batch size", ylabel="ms per batch (median, p10-p90)",
            title=f"latency, {threads} thread{'s' if threads > 1 else ''}")
    ax2.set(xscale="log", xlabel="batch size", ylabel="images per second",
            title=f"throughput, {threads} thread{'s' if threads > 1 else ''}")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
