"""DenseGrowthExplorer: growth rate, layers per block, number of blocks, compression and
bottleneck in; DenseNet's connectivity pattern and its channel and parameter growth out.

Controls -> ``dense_layout`` (the course's ``DenseNet`` built on the meta device, read part
by part: the channels each layer reads and its parameters) -> three panels: which layer
of one dense block reads which earlier output (every arc is a concatenated input, its
width the channels it carries), the channels every layer reads along the whole network,
and the parameters of every layer. The numbers come from the model itself, so they are
the course's DenseNet's by construction; the tests check them against the arithmetic
``c0 + L k`` and ``floor(theta m)``.
"""
from __future__ import annotations

import time
from functools import lru_cache

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.collections import LineCollection

from cnnbook.models.densenet import DenseNet
from cnnbook.profiling import count_params
from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}
_COLORS = {"stem": "tab:gray", "dense": "tab:blue", "transition": "tab:red", "head": "tab:green"}


def _reads(module) -> int:
    """Input channels of the first convolution (or linear layer) of a part."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            return m.in_channels
        if isinstance(m, torch.nn.Linear):
            return m.in_features
    raise ValueError("a part without a convolution or linear layer")


@lru_cache(maxsize=32)
def _layout(block_config: tuple, growth_rate: int, init_channels: int, compression: float,
            bottleneck, in_channels: int, num_classes: int, small_input: bool):
    with torch.device("meta"):
        model = DenseNet(block_config, growth_rate, init_channels, compression,
                         bottleneck=bottleneck, num_classes=num_classes,
                         in_channels=in_channels, small_input=small_input)
    rows = []
    for name, part in model.named_children():
        if name == "stem":
            rows.append({"part": "stem", "kind": "stem", "block": 0, "reads": _reads(part),
                         "outputs": init_channels, "params": count_params(part)})
        elif name.startswith("block"):
            b = int(name[5:])
            for i, layer in enumerate(part.net, 1):
                rows.append({"part": f"{name}.{i}", "kind": "dense", "block": b,
                             "reads": _reads(layer), "outputs": growth_rate,
                             "params": count_params(layer)})
        elif name.startswith("trans"):
            rows.append({"part": name, "kind": "transition", "block": int(name[5:]),
                         "reads": _reads(part), "outputs": part.conv.out_channels,
                         "params": count_params(part)})
        elif name == "fc":
            rows.append({"part": "norm + fc", "kind": "head", "block": len(block_config),
                         "reads": part.in_features, "outputs": part.out_features,
                         "params": count_params(part) + count_params(model.norm)})
    return pd.DataFrame(rows), count_params(model)


def dense_layout(block_config, growth_rate: int, init_channels: int = 64,
                 compression: float = 0.5, bottleneck: int | None = None,
                 in_channels: int = 1, num_classes: int = 10, small_input: bool = True) -> dict:
    """The course's ``DenseNet`` with these settings, part by part.

    Returns ``table`` (one row per stem, dense layer, transition and the head: ``part``,
    ``kind``, ``block``, ``reads`` = input channels of its first convolution, ``outputs``
    = channels it produces, ``params``), ``params`` (the model's total, counted on the
    model), ``block_outputs`` (channels after each dense block), ``transition_outputs``,
    and ``connections`` per block (``L (L + 1) / 2`` inside a block of L layers, counting
    the block input as a source, plus ``L + 1`` into the transition after it). Bad
    settings raise ``ValueError``.
    """
    block_config = tuple(int(n) for n in block_config)
    if not block_config or min(block_config) < 1:
        raise ValueError(f"every dense block needs at least one layer, got {block_config}")
    if growth_rate < 1 or init_channels < 1:
        raise ValueError(f"growth rate and stem channels must be at least 1, got "
                         f"{growth_rate} and {init_channels}")
    if not (isinstance(compression, (int, float)) and 0 < compression <= 1):
        raise ValueError(f"compression (theta) must be in (0, 1], got {compression!r}")
    table, params = _layout(block_config, int(growth_rate), int(init_channels),
                            float(compression), bottleneck or None, int(in_channels),
                            int(num_classes), bool(small_input))
    dense = table[table.kind == "dense"]
    last = dense.groupby("block").tail(1)
    block_outputs = [int(r + growth_rate) for r in last.reads]
    connections = [n * (n + 1) // 2 + ((n + 1) if b < len(block_config) else 0)
                   for b, n in enumerate(block_config, 1)]
    return {"table": table.copy(), "params": params, "block_outputs": block_outputs,
            "transition_outputs": [int(v) for v in table[table.kind == "transition"].outputs],
            "connections": connections}


class DenseGrowthExplorer(Explorer):
    """Sliders for the growth rate k, the layers per dense block L, the number of blocks,
    the transitions' compression theta, a bottleneck switch (DenseNet-B) and which block to
    draw; the block's connectivity, the channels every layer reads and the parameters.

    ``init_channels``, ``in_channels``, ``num_classes`` and ``small_input`` fix the rest of
    the network (default: the course's Fashion-MNIST DenseNet with a 3x3 stem).
    """

    def __init__(self, growth_rate: int = 12, layers: int = 4, blocks: int = 4,
                 compression: float = 0.5, bottleneck: bool = False, init_channels: int = 24,
                 in_channels: int = 1, num_classes: int = 10, small_input: bool = True):
        self.fixed = dict(init_channels=init_channels, in_channels=in_channels,
                          num_classes=num_classes, small_input=small_input)
        self._syncing = False
        controls = {
            "growth_rate": widgets.IntSlider(value=growth_rate, min=1, max=64,
                                             description="growth rate k",
                                             continuous_update=False, style=_STYLE),
            "layers": widgets.IntSlider(value=layers, min=1, max=16,
                                        description="layers per block L",
                                        continuous_update=False, style=_STYLE),
            "blocks": widgets.IntSlider(value=blocks, min=1, max=4, description="dense blocks",
                                        continuous_update=False, style=_STYLE),
            "compression": widgets.FloatSlider(value=compression, min=0.1, max=1.0, step=0.05,
                                               description="compression θ",
                                               continuous_update=False, style=_STYLE),
            "bottleneck": widgets.Checkbox(value=bottleneck, description="bottleneck 1x1 to 4k"),
            "block": widgets.IntSlider(value=1, min=1, max=blocks, description="draw block",
                                       continuous_update=False, style=_STYLE),
        }
        c = controls
        layout = widgets.VBox([widgets.HBox([c["growth_rate"], c["layers"], c["blocks"]]),
                               widgets.HBox([c["compression"], c["bottleneck"], c["block"]])])
        super().__init__(controls, layout)

    def _on_change(self, change):
        if self._syncing:
            return
        blocks = self.controls["blocks"].value
        block = self.controls["block"]
        if block.max != blocks:
            self._syncing = True
            try:
                block.value = min(block.value, blocks)
                block.max = blocks
            finally:
                self._syncing = False
        self.refresh()

    tight_png = False   # laid out by hand: one drawing pass per redraw

    def refresh(self) -> None:
        start = time.perf_counter()
        super().refresh()
        if self.state.get("error") is None and "growth_rate" in self.state:
            self.state["render_ms"] = 1000 * (time.perf_counter() - start)

    def compute(self, growth_rate, layers, blocks, compression, bottleneck, block):
        out = dense_layout((layers,) * blocks, growth_rate, compression=round(compression, 4),
                           bottleneck=4 if bottleneck else None, **self.fixed)
        table = out["table"]
        block = int(min(max(block, 1), blocks))
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.9),
                                 gridspec_kw={"width_ratios": [1.1, 1.4, 1.4]})
        fig.subplots_adjust(left=0.03, right=0.99, bottom=0.2, top=0.82, wspace=0.22)
        self._draw_block(axes[0], table, block, layers, blocks, growth_rate)

        x = np.arange(len(table))
        colors = [_COLORS[k] for k in table.kind]
        # one LineCollection of thick lines per panel instead of a Rectangle per bar: the
        # redraw stays fast with 70 layers
        bar_width = max(1.0, 0.8 * 330 / len(table))
        ax = axes[1]
        ax.vlines(x, 0, table.reads, colors=colors, linewidth=bar_width)
        ax.set_xlim(-1, len(table)), ax.set_ylim(0, 1.1 * table.reads.max())
        for b, v in enumerate(out["block_outputs"], 1):
            last = table.index[(table.kind == "dense") & (table.block == b)][-1]
            ax.annotate(str(v), (last, v), ha="center", va="bottom", fontsize=7)
        ax.set(ylabel="channels read", title="channels each layer reads "
               f"(numbers: block outputs)\nbefore the classifier: {int(table.reads.iloc[-1])}")
        ax2 = axes[2]
        ax2.vlines(x, 0, table.params, colors=colors, linewidth=bar_width)
        ax2.set_xlim(-1, len(table)), ax2.set_ylim(0, 1.45 * table.params.max())  # room for the legend
        ax2.set(ylabel="parameters", title=f"parameters per layer: {out['params']:,} in all\n"
                f"transitions {table[table.kind == 'transition'].params.sum() / out['params']:.0%}, "
                f"dense layers {table[table.kind == 'dense'].params.sum() / out['params']:.0%}")
        for ax in (ax, ax2):
            ticks = [0] + [i for i in x if table.kind.iloc[i] in ("transition", "head")]
            ax.set_xticks(ticks, [table.part.iloc[i].replace("norm + ", "") for i in ticks],
                          rotation=45, ha="right", fontsize=7)
            ax.tick_params(axis="y", labelsize=7)
            ax.grid(alpha=0.3, axis="y")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _COLORS.values()]
        ax2.legend(handles, ["stem", "dense layer", "transition", "head"], fontsize=7,
                   loc="upper left")
        dense = table[table.kind == "dense"]
        return fig, {
            "growth_rate": int(growth_rate), "layers": int(layers), "blocks": int(blocks),
            "compression": float(compression), "bottleneck": bool(bottleneck), "block": block,
            "params": int(out["params"]), "params_by_layer": int(table.params.sum()),
            "block_outputs": out["block_outputs"],
            "transition_outputs": out["transition_outputs"],
            "channels_before_fc": int(table.reads.iloc[-1]),
            "widest_read": int(dense.reads.max()),
            "connections": out["connections"],
            "transition_share": float(table[table.kind == "transition"].params.sum()
                                      / out["params"]),
        }

    @staticmethod
    def _draw_block(ax, table, block, layers, blocks, k):
        """Arcs from every source (the block input, each layer) to every later reader."""
        rows = table[(table.block == block) & (table.kind == "dense")]
        c0 = int(rows.reads.iloc[0])
        has_t = block < blocks
        n_targets = layers + (1 if has_t else 0)
        segs, widths, cols = [], [], []
        cmap = plt.get_cmap("viridis")
        t = np.linspace(0, np.pi, 24)
        for target in range(1, n_targets + 1):
            for s in range(target):
                mid, r = (s + target) / 2, (target - s) / 2
                segs.append(np.column_stack([mid - r * np.cos(t), r * np.sin(t)]))
                widths.append(0.6 + 2.4 * ((c0 if s == 0 else k) / max(c0, k)))
                cols.append("0.55" if s == 0 else cmap(s / (layers + 1)))
        ax.add_collection(LineCollection(segs, linewidths=widths, colors=cols, alpha=0.7))
        names = ["in"] + [str(i) for i in range(1, layers + 1)] + (["T"] if has_t else [])
        ax.plot(range(len(names)), np.zeros(len(names)), "ko", ms=4)
        step = max(1, len(names) // 12)
        ax.set_xticks(range(0, len(names), step), names[::step], fontsize=7)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylim(-0.3, max(1.0, (len(names) - 1) / 2) * 1.08)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        conn = layers * (layers + 1) // 2 + ((layers + 1) if has_t else 0)
        ax.set_title(f"block {block}: {conn} connections\n(input {c0} ch gray, each layer "
                     f"adds {k})", fontsize=9)
        ax.set_xlabel("source -> later readers (T = transition)", fontsize=8)
