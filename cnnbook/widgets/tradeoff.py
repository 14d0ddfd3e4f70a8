"""TradeoffExplorer: pick architectures and two measured columns; see the trade-off and its
Pareto front.

Chapter 14 measures every architecture of the course with several rulers (accuracy,
parameters, multiply-adds, CPU milliseconds, minutes of training) and fixes the axes of its
plots. Here the learner chooses: a table (ImageNet or Fashion-MNIST), the architectures, the
x and y columns and log or linear scales. The plot marks the **Pareto front**: the
architectures that no other shown architecture beats on both axes, in the right direction
per axis (the caller says, for each column, whether ``"higher"`` or ``"lower"`` is better:
higher accuracy, lower cost).

``pareto_set`` is the definition written out (a point is dominated when another is at
least as good on both axes and strictly better on one; two identical points therefore
both stay on the front); ``front_labels`` and ``tradeoff_plot`` apply it to a table.
Missing values (NaN, inf) are never on the front and dominate nothing: their rows are
listed as not plotted, never guessed.
"""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cnnbook import viz
from cnnbook.widgets.base import Explorer

DIRECTIONS = ("higher", "lower")
_STYLE = {"description_width": "initial"}


def pareto_set(x, y, better_x: str = "lower", better_y: str = "higher") -> np.ndarray:
    """Boolean mask of the points on the Pareto front of ``(x[i], y[i])``.

    A point is dominated when another point is at least as good on both axes and strictly
    better on at least one ("good" per ``better_x``/``better_y``: ``"higher"`` or
    ``"lower"``). Points with a NaN or infinite coordinate are never on the front and
    dominate nothing. O(n^2): meant for tables of tens of architectures.
    """
    for name, b in (("better_x", better_x), ("better_y", better_y)):
        if b not in DIRECTIONS:
            raise ValueError(f"{name} must be 'higher' or 'lower', got {b!r}")
    xs = np.asarray(x, dtype=float).reshape(-1)
    ys = np.asarray(y, dtype=float).reshape(-1)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    sx = xs if better_x == "higher" else -xs      # oriented: larger is better on both
    sy = ys if better_y == "higher" else -ys
    ok = np.isfinite(sx) & np.isfinite(sy)
    front = np.zeros(xs.shape, dtype=bool)
    for i in np.flatnonzero(ok):
        at_least = ok & (sx >= sx[i]) & (sy >= sy[i])
        front[i] = not (at_least & ((sx > sx[i]) | (sy > sy[i]))).any()
    return front


def _check_columns(table: pd.DataFrame, x: str, y: str, better: Mapping[str, str],
                   label: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"the table must be a pandas DataFrame, got {type(table).__name__}")
    if label not in table.columns:
        raise ValueError(f"the table has no label column {label!r}")
    for col in (x, y):
        if col not in table.columns:
            raise ValueError(f"the table has no column {col!r}; it has "
                             f"{', '.join(map(str, table.columns))}")
        if better.get(col) not in DIRECTIONS:
            raise ValueError(f"say whether a higher or a lower {col!r} is better "
                             f"(better[{col!r}] = 'higher' or 'lower')")


def _rows(table: pd.DataFrame, label: str, selected) -> pd.DataFrame:
    """The rows of ``table`` whose label is in ``selected`` (all of them for None), in the
    table's order; refuses an empty choice and unknown labels."""
    if selected is None:
        return table
    chosen = [str(s) for s in selected]
    if not chosen:
        raise ValueError("choose at least one architecture (Ctrl- or Shift-click to pick several)")
    names = table[label].astype(str)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"no such architecture in the table: {', '.join(unknown)}")
    return table[names.isin(chosen)]


def _values(rows: pd.DataFrame, col: str) -> np.ndarray:
    """A column as floats: text and None become NaN (missing), never an exception."""
    return pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def front_labels(table: pd.DataFrame, x: str, y: str, better: Mapping[str, str],
                 label: str = "architecture", selected: Sequence[str] | None = None) -> list[str]:
    """Labels of the rows on the Pareto front of ``y`` against ``x`` (among ``selected``, or
    every row), ordered along the x axis from its better end."""
    _check_columns(table, x, y, better, label)
    rows = _rows(table, label, selected)
    xs, ys = _values(rows, x), _values(rows, y)
    front = pareto_set(xs, ys, better[x], better[y])
    names = rows[label].astype(str).to_numpy()
    order = np.argsort(xs[front] * (-1 if better[x] == "higher" else 1), kind="stable")
    return [str(n) for n in names[front][order]]


def tradeoff_plot(table: pd.DataFrame, x: str, y: str, better: Mapping[str, str],
                  selected: Sequence[str] | None = None, label: str = "architecture",
                  log_x: bool = False, log_y: bool = False, title: str | None = None):
    """Scatter ``y`` against ``x`` for the chosen rows, the Pareto front ringed and joined by
    its staircase (the edge of the region the front dominates). Returns ``(figure, state)``.

    ``better`` maps a column to ``"higher"`` or ``"lower"``. Rows missing either value are
    listed in the title and in ``state["missing"]``. Raises ``ValueError`` for an empty
    choice, when no chosen row has both values, or for a log scale over a value <= 0.
    State: ``x``, ``y``, ``better_x``, ``better_y``, ``shown`` and ``missing`` (labels),
    ``front`` (labels, from the better end of the x axis), ``dominated_by`` (label -> the
    labels that beat it on both axes), ``same_axis``.
    """
    _check_columns(table, x, y, better, label)
    rows = _rows(table, label, selected)
    names = rows[label].astype(str).to_numpy()
    if len(set(names)) != len(names):
        raise ValueError(f"the labels in {label!r} must be unique")
    xs, ys = _values(rows, x), _values(rows, y)
    ok = np.isfinite(xs) & np.isfinite(ys)
    missing = [str(n) for n in names[~ok]]
    if not ok.any():
        raise ValueError(f"none of the chosen architectures has a value for both {x!r} and "
                         f"{y!r} (missing for {', '.join(missing)}): pick other columns or "
                         "architectures")
    for axis, col, vals, log in (("x", x, xs, log_x), ("y", y, ys, log_y)):
        bad = ok & (vals <= 0)
        if log and bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"a log scale needs positive values, but {col!r} is {vals[i]:g} "
                             f"for {names[i]}: untick 'log {axis}'")
    bx, by = better[x], better[y]
    front = pareto_set(xs, ys, bx, by)
    sx = np.where(ok, xs if bx == "higher" else -xs, np.nan)
    sy = np.where(ok, ys if by == "higher" else -ys, np.nan)
    dominated_by = {}
    for i in np.flatnonzero(ok & ~front):
        beats = ok & (sx >= sx[i]) & (sy >= sy[i]) & ((sx > sx[i]) | (sy > sy[i]))
        dominated_by[str(names[i])] = [str(n) for n in names[beats]]

    shown = np.flatnonzero(ok)
    on = np.flatnonzero(front)
    on = on[np.argsort(xs[on] * (-1 if bx == "higher" else 1), kind="stable")]
    same = x == y
    head = f"{len(on)} of {len(shown)} on the Pareto front"
    if same:
        head += " (x and y are the same column: the front is the best value)"
    lines = [title, head] if title else [head]
    if missing:
        lines += textwrap.wrap(f"not plotted, no value: {', '.join(missing)}", 90)

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    viz.plot_tradeoff(xs[shown], ys[shown], [str(n) for n in names[shown]], ax=ax,
                      logx=bool(log_x), logy=bool(log_y), title="\n".join(lines),
                      xlabel=f"{x} ({bx} is better)", ylabel=f"{y} ({by} is better)")
    ax.title.set_fontsize(9)
    order = on[np.argsort(xs[on], kind="stable")]
    # the staircase's corners lie in the region the front dominates: after each point
    # move along x first if a larger x is worse, else along y first
    ax.plot(xs[order], ys[order], ls="--", lw=1, color="tab:red",
            drawstyle="steps-post" if bx == "lower" else "steps-pre")
    ax.scatter(xs[on], ys[on], s=170, facecolors="none", edgecolors="tab:red", linewidths=1.8,
               label=f"Pareto front ({len(on)})")
    ax.legend(fontsize=8, loc="best")
    return fig, {
        "x": x, "y": y, "better_x": bx, "better_y": by, "log_x": bool(log_x),
        "log_y": bool(log_y), "shown": [str(n) for n in names[shown]], "missing": missing,
        "front": [str(n) for n in names[on]], "dominated_by": dominated_by, "same_axis": same,
    }


class TradeoffExplorer(Explorer):
    """Choose a table, the architectures, the x and y columns and log scales; the trade-off
    plot with its Pareto front.

    ``tables`` maps a name to a DataFrame with one row per architecture (a ``label`` column
    of unique names) or is a single DataFrame. ``better`` maps column names to ``"higher"``
    or ``"lower"``: those columns, and only those, are offered as axes. Choosing another
    table offers its architectures (all selected) and columns, keeping x and y where that
    table has them.
    """

    tight_png = False   # plot_tradeoff lays the figure out: one drawing pass fewer

    def __init__(self, tables, better: Mapping[str, str], label: str = "architecture",
                 data: str | None = None, x: str | None = None, y: str | None = None,
                 log_x: bool = True, log_y: bool = False):
        if isinstance(tables, pd.DataFrame):
            tables = {"table": tables}
        if not isinstance(tables, Mapping) or not tables:
            raise ValueError("give at least one table (a DataFrame, or a dict name -> DataFrame)")
        bad = {c: d for c, d in dict(better).items() if d not in DIRECTIONS}
        if bad:
            raise ValueError(f"better must map each column to 'higher' or 'lower', got {bad}")
        self.better = dict(better)
        self.label = label
        self.tables = {}
        for name, t in tables.items():
            if not isinstance(t, pd.DataFrame) or label not in t.columns:
                raise ValueError(f"table {name!r} must be a DataFrame with a {label!r} column")
            if t[label].astype(str).duplicated().any():
                raise ValueError(f"table {name!r} repeats a name in {label!r}")
            if len(t) == 0 or not self.axes(t):
                raise ValueError(f"table {name!r} needs rows and at least one column named in "
                                 "better")
            self.tables[str(name)] = t.reset_index(drop=True)
        data = next(iter(self.tables)) if data is None else data
        if data not in self.tables:
            raise ValueError(f"no table {data!r}; the tables are {', '.join(self.tables)}")
        axes = self.axes(self.tables[data])
        for name, value in (("x", x), ("y", y)):
            if value is not None and value not in axes:
                raise ValueError(f"{name} must be one of the columns {axes}, got {value!r}")
        x = x if x is not None else self._pick(axes, "lower")
        y = y if y is not None else self._pick(axes, "higher", avoid=x)
        names = self._names(data)
        self._syncing = False
        controls = {
            "data": widgets.Dropdown(options=list(self.tables), value=data, description="data",
                                     style=_STYLE, layout=widgets.Layout(width="420px")),
            "x": widgets.Dropdown(options=axes, value=x, description="x axis", style=_STYLE,
                                  layout=widgets.Layout(width="420px")),
            "y": widgets.Dropdown(options=axes, value=y, description="y axis", style=_STYLE,
                                  layout=widgets.Layout(width="420px")),
            "log_x": widgets.Checkbox(value=bool(log_x), description="log x", indent=False),
            "log_y": widgets.Checkbox(value=bool(log_y), description="log y", indent=False),
            "architectures": widgets.SelectMultiple(
                options=names, value=tuple(names), rows=min(len(names), 9),
                description="architectures", style=_STYLE, layout=widgets.Layout(width="360px")),
        }
        c = controls
        layout = widgets.HBox([
            widgets.VBox([c["data"], c["x"], c["y"], widgets.HBox([c["log_x"], c["log_y"]])]),
            c["architectures"]])
        super().__init__(controls, layout)

    def axes(self, table: pd.DataFrame) -> list[str]:
        """The columns of ``table`` offered as axes: those ``better`` names, in table order."""
        return [str(c) for c in table.columns if c in self.better and c != self.label]

    def _names(self, data: str) -> list[str]:
        return [str(n) for n in self.tables[data][self.label]]

    def _on_change(self, change):
        if self._syncing:
            return
        if change["owner"] is self.controls["data"]:
            self._sync(change["new"])
        self.refresh()

    def _sync(self, data: str) -> None:
        """Offer the chosen table's architectures (all selected) and columns."""
        c = self.controls
        axes = self.axes(self.tables[data])
        x = c["x"].value if c["x"].value in axes else self._pick(axes, "lower")
        y = c["y"].value if c["y"].value in axes else self._pick(axes, "higher", avoid=x)
        names = self._names(data)
        self._syncing = True
        try:
            c["architectures"].options = names
            c["architectures"].value = tuple(names)
            c["architectures"].rows = min(len(names), 9)
            c["x"].options, c["y"].options = axes, axes
            c["x"].value, c["y"].value = x, y
        finally:
            self._syncing = False

    def _pick(self, axes: list[str], direction: str, avoid: str | None = None) -> str:
        """The first column whose better direction is ``direction`` (a cost for x, a score
        for y), else the first column."""
        return next((a for a in axes if self.better[a] == direction and a != avoid), axes[0])

    def compute(self, data, architectures, x, y, log_x, log_y):
        if data not in self.tables:
            raise ValueError(f"no table {data!r}")
        return tradeoff_plot(self.tables[data], x, y, self.better, selected=architectures,
                             label=self.label, log_x=log_x, log_y=log_y, title=data)
