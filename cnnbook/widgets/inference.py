"""InferenceExplorer: which inference path is fastest, at which batch size and thread count?

Controls -> ``inference_view`` (a pure function of a sweep table measured by
``cnnbook.deploy.sweep.sweep``) -> two pictures: the chosen metric against batch size, one
line per path, at the chosen thread count; and a bar per path at the chosen (batch size,
threads), with its speed-up over eager written on it. The numbers beside the picture: the
metric of each path at that setting, the fastest path and every path's speed-up.

The explorer shows *measured* numbers only: a (batch size, threads) the sweep did not
measure is a message, not an interpolation.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cnnbook.widgets.base import Explorer

METRICS = {
    "throughput": ("images per second", True),        # (axis label, higher is better)
    "median_ms": ("ms per batch (median)", False),
    "per_image_ms": ("ms per image", False),
    "speedup": ("speed-up over eager", True),
}
_STYLE = {"description_width": "initial"}
_NEEDED = ("path", "batch_size", "threads", "median_ms", "throughput", "per_image_ms",
           "speedup")


def _check_table(table) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError("the explorer needs a non-empty sweep table (cnnbook.deploy.sweep.sweep)")
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise ValueError(f"the sweep table lacks column(s) {', '.join(missing)}")
    return table


def inference_view(table: pd.DataFrame, metric: str = "throughput", threads: int | None = None,
                   batch_size: int | None = None) -> dict:
    """The numbers the explorer shows for ``metric`` at (``batch_size``, ``threads``).

    Returns ``values`` (path -> metric), ``speedups`` (path -> speed-up over eager, NaN
    without eager), ``best`` (the best path by the metric), the ``curves`` (path -> (batch
    sizes, metric)) at that thread count, and the settings. A setting that was not measured
    raises ``ValueError`` naming what was.
    """
    table = _check_table(table)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: choose from {', '.join(METRICS)}")
    measured_threads = sorted(int(t) for t in table["threads"].unique())
    threads = measured_threads[-1] if threads is None else threads
    if threads not in measured_threads:
        raise ValueError(f"{threads} threads were not measured; the sweep has "
                         f"{', '.join(map(str, measured_threads))}")
    sub = table[table["threads"] == threads]
    sizes = sorted(int(b) for b in sub["batch_size"].unique())
    batch_size = sizes[-1] if batch_size is None else batch_size
    if batch_size not in sizes:
        raise ValueError(f"batch size {batch_size} was not measured with {threads} threads; "
                         f"measured: {', '.join(map(str, sizes))}")
    at = sub[sub["batch_size"] == batch_size].set_index("path")
    values = {p: float(v) for p, v in at[metric].items()}
    finite = {p: v for p, v in values.items() if np.isfinite(v)}
    if not finite:
        raise ValueError(f"no finite {metric} at batch {batch_size}, {threads} threads "
                         "(was eager measured?)")
    higher = METRICS[metric][1]
    best = max(finite, key=finite.get) if higher else min(finite, key=finite.get)
    curves = {p: (rows["batch_size"].to_numpy(), rows[metric].to_numpy())
              for p, rows in sub.sort_values("batch_size").groupby("path", sort=False)}
    return {"metric": metric, "threads": int(threads), "batch_size": int(batch_size),
            "values": values, "speedups": {p: float(v) for p, v in at["speedup"].items()},
            "best": best, "curves": curves, "load": float(at["load"].mean()) if "load" in at else float("nan")}


class InferenceExplorer(Explorer):
    """Metric, thread count and batch size over a sweep table; the paths' curves and bars."""

    def __init__(self, table: pd.DataFrame, metric: str = "throughput", threads=None,
                 batch_size=None):
        self.table = _check_table(table)
        thread_options = sorted(int(t) for t in table["threads"].unique())
        size_options = sorted(int(b) for b in table["batch_size"].unique())
        controls = {
            "metric": widgets.Dropdown(options=list(METRICS), value=metric, description="metric",
                                       style=_STYLE),
            "threads": widgets.Dropdown(options=thread_options,
                                        value=thread_options[-1] if threads is None else threads,
                                        description="threads", style=_STYLE),
            "batch_size": widgets.SelectionSlider(
                options=size_options, value=size_options[-1] if batch_size is None else batch_size,
                description="batch size", continuous_update=False, style=_STYLE),
        }
        super().__init__(controls)

    def compute(self, metric, threads, batch_size):
        view = inference_view(self.table, metric, threads, batch_size)
        label, higher = METRICS[metric]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
        for path, (sizes, ys) in view["curves"].items():
            ax1.plot(sizes, ys, marker="o", label=path, lw=2.5 if path == view["best"] else 1.2)
        ax1.axvline(batch_size, color="gray", ls=":", lw=1)
        ax1.set(xscale="log", xlabel="batch size", ylabel=label,
                title=f"{threads} thread{'s' if threads > 1 else ''}")
        if metric in ("median_ms", "per_image_ms"):
            ax1.set_yscale("log")
        if metric == "speedup":
            ax1.axhline(1.0, color="k", lw=0.8)
        ax1.grid(alpha=0.3, which="both")
        ax1.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        names = list(view["values"])
        heights = [view["values"][n] for n in names]
        colors = ["tab:green" if n == view["best"] else "tab:gray" for n in names]
        bars = ax2.bar(names, np.nan_to_num(heights), color=colors)
        for bar, n in zip(bars, names):
            s = view["speedups"].get(n, float("nan"))
            if np.isfinite(s):
                ax2.annotate(f"{s:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                             ha="center", va="bottom", fontsize=8)
        ax2.set(ylabel=label, title=f"batch {batch_size}: best is {view['best']} "
                                    f"({'higher' if higher else 'lower'} is better)")
        ax2.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        state = {k: v for k, v in view.items() if k != "curves"}
        return fig, state
