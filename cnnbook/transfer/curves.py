"""Accuracy against the number of labelled images per class: transfer learning's promise, measured.

    table = label_table(rows)                  # rows: dicts with method, per_class, acc
    label_equivalent(table["scratch"], 0.62)   # labels/class that scratch needs for 62%
    fig, state = explore_label_budget(table, ["fine-tune", "scratch"], per_class=100)

``label_equivalent`` reads the scratch curve backwards: how many labelled images per class
would training from scratch need to reach the accuracy that transfer reached with fewer?
Between measured budgets it interpolates linearly in log(labels), because accuracy grows
roughly linearly in the logarithm of the data over such ranges; beyond the largest budget it
says so rather than extrapolating.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd


def label_table(rows) -> pd.DataFrame:
    """Test accuracy with one row per labelled-images budget and one column per method."""
    df = pd.DataFrame(list(rows))
    missing = {"method", "per_class", "acc"} - set(df.columns)
    if missing:
        raise ValueError(f"each row needs method, per_class and acc; missing {sorted(missing)}")
    return df.pivot_table(index="per_class", columns="method", values="acc").sort_index()


def label_equivalent(curve: pd.Series, acc: float) -> float | None:
    """Labelled images per class at which ``curve`` (accuracy by budget) reaches ``acc``.

    Linear interpolation in log(budget) between measured points; the smallest budget if the
    curve starts above ``acc``; None if it never gets there within the measured budgets.
    """
    curve = curve.dropna().sort_index()
    if len(curve) == 0 or not math.isfinite(acc):
        return None
    xs = np.log(curve.index.to_numpy(dtype=float))
    ys = np.maximum.accumulate(curve.to_numpy(dtype=float))  # a dip is noise, not less data
    if acc <= ys[0]:
        return float(curve.index[0])
    if acc > ys[-1]:
        return None
    i = int(np.searchsorted(ys, acc))
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    t = 0.0 if y1 == y0 else (acc - y0) / (y1 - y0)
    return float(math.exp(x0 + t * (x1 - x0)))


def explore_label_budget(table: pd.DataFrame, methods: Sequence[str], per_class: int,
                         log_x: bool = True, transfer: str = "fine-tune",
                         scratch: str = "scratch"):
    """The curves of ``methods``, the budget ``per_class`` marked; state: accuracies there,
    transfer's gain over scratch and the labels scratch would need to match it."""
    import matplotlib.pyplot as plt

    methods = [m for m in methods]
    if not methods:
        raise ValueError("choose at least one method to plot")
    unknown = [m for m in methods if m not in table.columns]
    if unknown:
        raise ValueError(f"no measured runs for {unknown}; measured: {list(table.columns)}")
    if per_class not in table.index:
        raise ValueError(f"no runs at {per_class} images per class; measured: {list(table.index)}")
    accs = {m: float(table.loc[per_class, m]) for m in methods}
    state = {"per_class": int(per_class), "acc": accs, "gain_points": None,
             "scratch_needs": None}
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for m in methods:
        s = table[m].dropna()
        ax.plot(s.index, s.values, "o-", label=m)
    ax.axvline(per_class, color="0.6", ls=":")
    if transfer in table.columns and scratch in table.columns:
        t_acc = float(table.loc[per_class, transfer])
        s_acc = float(table.loc[per_class, scratch])
        state["gain_points"] = 100 * (t_acc - s_acc)
        need = label_equivalent(table[scratch], t_acc)
        state["scratch_needs"] = need
        if need is None:
            msg = (f"{transfer} at {per_class}/class: {t_acc:.1%}; scratch does not reach it "
                   f"even with {int(table.index.max())}/class")
        else:
            msg = (f"{transfer} at {per_class}/class: {t_acc:.1%}; scratch needs about "
                   f"{need:,.0f}/class for that")
        ax.set_title(msg, fontsize=9)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("labelled training images per class")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, state
