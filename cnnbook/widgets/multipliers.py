"""MultiplierExplorer: MobileNet V1's width multiplier alpha and input resolution against
parameters, multiply-adds and measured CPU latency.

Controls -> ``multiplier_table`` (parameters and multiply-adds of every (alpha, resolution)
setting, counted by ``cnnbook.profiling`` with ``torch.utils.flop_counter`` on the meta
device) and ``cnnbook.profiling.latency_ms`` (the chosen setting timed on this CPU, batch
1, cached per setting so moving back is instant) -> three panels: the cost against alpha at
the chosen resolution, the cost against resolution at the chosen alpha, each beside the
rule "cost ~ alpha^2 rho^2", and the measured latency of every setting timed so far
against its multiply-adds.

Resolutions are multiples of 32. MobileNet V1 halves its feature maps five times, so at
such sizes every map scales exactly with the input: the convolutions' multiply-adds at
side r are those at 32 px times (r/32)^2 and only the classifier's stay fixed. One count
per width therefore gives every resolution (``tests/widgets/test_multipliers.py`` checks it
against counting at each size).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from functools import lru_cache

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch

from cnnbook.models.mobilenet import mobilenet_v1
from cnnbook.profiling import count_macs, count_params, latency_ms
from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}
ALPHAS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
RESOLUTIONS = (96, 128, 160, 192, 224, 256, 288)
_BASE = 32          # the smallest side at which all five halvings are exact
_MODELS = 2         # real (timed) networks kept in memory


def _check_alpha(alpha) -> float:
    if not isinstance(alpha, (int, float)) or not alpha == alpha or not 0 < alpha <= 4:
        raise ValueError(f"the width multiplier alpha must be in (0, 4], got {alpha!r}")
    return float(alpha)


def _check_resolution(resolution) -> int:
    if not isinstance(resolution, int) or resolution < _BASE or resolution % _BASE:
        raise ValueError(f"the resolution must be a positive multiple of {_BASE} px (MobileNet "
                         f"V1 halves its maps five times), got {resolution!r}")
    return resolution


@lru_cache(maxsize=64)
def _counts(alpha: float, in_channels: int, num_classes: int) -> tuple[int, int, int]:
    """(parameters, multiply-adds of the convolutions at 32 px, of the classifier).

    Built on the CPU, not the meta device: initialising weights on the meta device imports
    TorchDynamo (seconds), while a real 32 px forward pass costs milliseconds.
    """
    model = mobilenet_v1(alpha, in_channels=in_channels, num_classes=num_classes)
    total = count_macs(model, (1, in_channels, _BASE, _BASE))
    fc = model.classifier[-1]
    head = fc.in_features * fc.out_features
    return count_params(model), total - head, head


def multiplier_table(alphas=ALPHAS, resolutions=RESOLUTIONS, in_channels: int = 3,
                     num_classes: int = 1000) -> pd.DataFrame:
    """Parameters and multiply-adds of MobileNet V1 at every (alpha, resolution).

    Columns: ``alpha``, ``resolution``, ``params``, ``macs`` (one image), and ``rule``, the
    multiply-adds the quadratic rule predicts from the alpha = 1, 224 px network
    (``macs(1, 224) * alpha^2 * (resolution / 224)^2``); that network's multiply-adds and
    parameters are in ``table.attrs`` (``reference_macs``, ``reference_params``). The counts come from
    ``count_macs`` (``torch.utils.flop_counter``) at 32 px per width, the convolutions'
    part scaled by ``(resolution / 32)^2``, exact for multiples of 32.
    """
    alphas = [_check_alpha(a) for a in alphas]
    resolutions = [_check_resolution(r) for r in resolutions]
    if not alphas or not resolutions:
        raise ValueError("give at least one alpha and one resolution")
    rows = []
    for a in alphas:
        params, convs, head = _counts(a, in_channels, num_classes)
        for r in resolutions:
            rows.append({"alpha": a, "resolution": r, "params": params,
                         "macs": convs * (r // _BASE) ** 2 + head})
    table = pd.DataFrame(rows)
    params, convs, head = _counts(1.0, in_channels, num_classes)
    ref = convs * (224 // _BASE) ** 2 + head
    table["rule"] = ref * table["alpha"] ** 2 * (table["resolution"] / 224) ** 2
    table.attrs.update(reference_macs=ref, reference_params=params)
    return table


class MultiplierExplorer(Explorer):
    """Sliders for MobileNet V1's width multiplier alpha and input resolution, and whether to
    time the chosen setting on this CPU; the cost curves with the chosen point marked, and
    the measured latencies of every setting timed so far.

    ``repeats`` timed forward passes (after one warm-up) of one image give the latency, a
    median; each setting is timed once and cached, so moving back is instant.
    """

    def __init__(self, alpha: float = 1.0, resolution: int = 224, alphas=ALPHAS,
                 resolutions=RESOLUTIONS, time_it: bool = True, repeats: int = 3):
        if repeats < 1:
            raise ValueError("repeats must be at least 1")
        self.table = multiplier_table(alphas, resolutions)
        self.alphas = sorted(set(self.table["alpha"]))
        self.resolutions = sorted(set(int(r) for r in self.table["resolution"]))
        if alpha not in self.alphas or resolution not in self.resolutions:
            raise ValueError(f"alpha must be one of {self.alphas} and resolution one of "
                             f"{self.resolutions}, got {alpha!r} and {resolution!r}")
        self.repeats = repeats
        self.latency: dict = {}            # (alpha, resolution) -> median ms
        self._models: OrderedDict = OrderedDict()
        controls = {
            "alpha": widgets.SelectionSlider(options=self.alphas, value=alpha,
                                             description="width α", continuous_update=False,
                                             style=_STYLE),
            "resolution": widgets.SelectionSlider(options=self.resolutions, value=resolution,
                                                  description="resolution (px)",
                                                  continuous_update=False, style=_STYLE),
            "time_it": widgets.Checkbox(value=time_it, description="time it on this CPU",
                                        style=_STYLE),
        }
        super().__init__(controls, widgets.HBox(list(controls.values())))

    def _model(self, alpha: float):
        if alpha not in self._models:
            torch.manual_seed(0)
            self._models[alpha] = mobilenet_v1(alpha).eval()
            while len(self._models) > _MODELS:
                self._models.popitem(last=False)
        self._models.move_to_end(alpha)
        return self._models[alpha]

    def measure(self, alpha: float, resolution: int) -> float:
        """Median CPU milliseconds for one image at this setting (timed once, then cached)."""
        key = (alpha, resolution)
        if key not in self.latency:
            with torch.inference_mode():
                self.latency[key] = latency_ms(self._model(alpha), (1, 3, resolution, resolution),
                                               repeats=self.repeats, warmup=1)["median"]
        return self.latency[key]

    tight_png = False   # laid out by hand: one drawing pass per redraw

    def refresh(self) -> None:
        start = time.perf_counter()
        super().refresh()
        if self.state.get("error") is None and "alpha" in self.state:
            self.state["render_ms"] = 1000 * (time.perf_counter() - start)

    def compute(self, alpha, resolution, time_it):
        t = self.table
        if alpha not in self.alphas or resolution not in self.resolutions:
            raise ValueError(f"no such setting: alpha {alpha!r}, resolution {resolution!r}")
        row = t[(t.alpha == alpha) & (t.resolution == resolution)].iloc[0]
        ms = self.measure(alpha, resolution) if time_it else None

        ref_macs, p1 = t.attrs["reference_macs"], t.attrs["reference_params"]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.84, wspace=0.28)
        ax = axes[0]
        d = t[t.resolution == resolution]
        ax.plot(d.alpha, d.macs / ref_macs, "o-", color="C0", label="multiply-adds")
        ax.plot(d.alpha, d.params / p1, "s-", color="C1", ms=4, label="parameters")
        ax.plot(d.alpha, d.rule / ref_macs, "--", color="k", lw=1, label=r"$\alpha^2\rho^2$")
        ax.plot([alpha], [row.macs / ref_macs], "o", ms=11, mfc="none", mec="red", mew=2)
        ax.set(xlabel=r"width multiplier $\alpha$", ylabel="relative to α = 1 at 224 px",
               title=f"width, at {resolution} px: {row.macs / 1e6:,.0f} M multiply-adds,\n"
                     f"{row.params / 1e6:.2f} M parameters")
        ax.legend(fontsize=7, loc="upper left")

        ax = axes[1]
        d = t[t.alpha == alpha]
        ax.plot(d.resolution, d.macs / ref_macs, "o-", color="C0", label="multiply-adds")
        ax.plot(d.resolution, d.params / p1, "s-", color="C1", ms=4, label="parameters")
        ax.plot(d.resolution, d.rule / ref_macs, "--", color="k", lw=1, label=r"$\alpha^2\rho^2$")
        ax.plot([resolution], [row.macs / ref_macs], "o", ms=11, mfc="none", mec="red", mew=2)
        ax.set(xlabel="input side (px)", title=f"resolution, at α = {alpha:g}: "
                                               f"{row.macs / row.rule:.2f}x the rule")
        ax.legend(fontsize=7, loc="upper left")

        ax = axes[2]
        if self.latency:
            keys = list(self.latency)
            macs = [float(t[(t.alpha == a) & (t.resolution == r)].macs.iloc[0]) / 1e6
                    for a, r in keys]
            times = [self.latency[k] for k in keys]
            ax.plot(macs, times, "o", color="gray")
            for (a, r), x, y in zip(keys, macs, times):
                ax.annotate(f"{a:g}/{r}", (x, y), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
            if ms is not None:
                ax.plot([row.macs / 1e6], [ms], "o", ms=11, mfc="none", mec="red", mew=2)
            ax.set_xlim(left=0), ax.set_ylim(bottom=0)
        else:
            ax.text(0.5, 0.5, "tick 'time it' to measure\nthe chosen setting", ha="center",
                    va="center", transform=ax.transAxes)
        ax.set(xlabel="million multiply-adds", ylabel="CPU ms per image (median)",
               title="measured latency (labels: α/px)" + ("" if ms is None else
                                                           f"\nthis one: {ms:.1f} ms"))
        for a in axes:
            a.grid(alpha=0.3)
        return fig, {
            "alpha": float(alpha), "resolution": int(resolution), "params": int(row.params),
            "macs": int(row.macs), "rule_macs": float(row.rule),
            "macs_over_rule": float(row.macs / row.rule),
            "relative_macs": float(row.macs / ref_macs),
            "latency_ms": ms, "gmacs_per_s": None if ms is None else float(row.macs / ms / 1e6),
            "timed_settings": len(self.latency),
        }
