"""NormalizationExplorer: pick a normalisation, batch size and group count; see what is pooled.

Controls -> ``cnnbook.models.norms.explore_normalization`` -> two panels: the batch as an
examples x channels grid with the cells that share the chosen cell's mean and variance
shaded (every normalisation pools all H x W positions of a cell), and the per-example mean
and standard deviation of the input and of the normalised output. The message line under
the title says how many values are pooled and whether the chosen example's output depends
on the rest of the batch. ``plot_norm_cubes`` draws the classic picture of Wu & He (2018):
one (N, C, H x W) cube per method with the pooled set shaded.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from cnnbook.models.norms import NORM_KINDS, explore_normalization, pooled_mask
from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}
TITLES = {"batch": "Batch Norm", "layer": "Layer Norm", "instance": "Instance Norm",
          "group": "Group Norm", "switchable": "Switchable Norm"}


def plot_norm_cubes(kinds=("batch", "layer", "instance", "group"), shape=(6, 6, 6),
                    groups: int = 3, index=(0, 0)):
    """Wu & He's Figure 2: for each kind, an N x C x (H*W) cube of voxels with the values
    that share one mean and variance (those of example ``index[0]``, channel ``index[1]``)
    in blue. Returns the figure."""
    n, c, hw = shape
    fig = plt.figure(figsize=(3.2 * len(kinds), 3.4))
    for k, kind in enumerate(kinds, 1):
        ax = fig.add_subplot(1, len(kinds), k, projection="3d")
        mask = pooled_mask(kind, (n, c, hw, 1), index, groups)[..., 0].numpy()  # (N, C, HW)
        # voxel axes: x = C, y = N, z = H*W (the paper draws H,W upwards)
        filled = np.ones((c, n, hw), dtype=bool)
        colors = np.where(mask.transpose(1, 0, 2)[..., None], [0.27, 0.51, 0.85, 1.0],
                          [0.93, 0.93, 0.93, 0.35])
        ax.voxels(filled, facecolors=colors, edgecolor=(0.5, 0.5, 0.5, 0.4), linewidth=0.3)
        ax.set_xlabel("C", labelpad=-10)
        ax.set_ylabel("N", labelpad=-10)
        ax.set_zlabel("H, W", labelpad=-10)
        ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
        ax.view_init(elev=22, azim=-52)
        ax.set_title(TITLES[kind] + (f" ({groups} groups)" if kind == "group" else ""), fontsize=10)
    fig.tight_layout()
    return fig


class NormalizationExplorer(Explorer):
    """Dropdown for the normalisation; sliders for batch size, channels, groups, image size
    and the chosen (example, channel) cell."""

    def __init__(self, kind: str = "batch", batch_size: int = 4, channels: int = 8,
                 groups: int = 2, example: int = 0, channel: int = 0, size: int = 4,
                 max_batch: int = 16, max_channels: int = 32):
        slider = dict(continuous_update=False, style=_STYLE)
        controls = {
            "kind": widgets.Dropdown(options=list(NORM_KINDS), value=kind,
                                     description="normalisation", style=_STYLE),
            "batch_size": widgets.IntSlider(value=batch_size, min=1, max=max_batch,
                                            description="batch size N", **slider),
            "channels": widgets.IntSlider(value=channels, min=1, max=max_channels,
                                          description="channels C", **slider),
            "groups": widgets.IntSlider(value=groups, min=1, max=max_channels,
                                        description="groups G", **slider),
            "size": widgets.IntSlider(value=size, min=1, max=8, description="H = W", **slider),
            "example": widgets.IntSlider(value=example, min=0, max=max_batch - 1,
                                         description="chosen example", **slider),
            "channel": widgets.IntSlider(value=channel, min=0, max=max_channels - 1,
                                         description="chosen channel", **slider),
        }
        c = controls
        layout = widgets.HBox([widgets.VBox([c["kind"], c["batch_size"], c["channels"]]),
                               widgets.VBox([c["groups"], c["size"]]),
                               widgets.VBox([c["example"], c["channel"]])])
        super().__init__(controls, layout)

    def compute(self, kind, batch_size, channels, groups, size, example, channel):
        out = explore_normalization(kind, batch_size, channels, groups, example, channel, size)
        mask = out["mask"][:, :, 0, 0].numpy()
        fig, (ax_grid, ax_stats) = plt.subplots(1, 2, figsize=(11, 3.8),
                                                gridspec_kw={"width_ratios": [1, 1.2]})
        ax_grid.imshow(mask, cmap="Blues", vmin=-0.3, vmax=1.0, aspect="auto",
                       extent=(-0.5, channels - 0.5, batch_size - 0.5, -0.5))
        ax_grid.add_patch(Rectangle((channel - 0.5, example - 0.5), 1, 1, fill=False,
                                    edgecolor="tab:red", linewidth=2))
        ax_grid.set_xlabel("channel")
        ax_grid.set_ylabel("example in the batch")
        ax_grid.set_title(f"{TITLES[kind]}: {out['pooled']} values share one mean and variance\n"
                          f"(shaded cells, each {size}x{size} positions)", fontsize=10)
        ticks = lambda m: range(0, m, max(1, m // 8))  # noqa: E731
        ax_grid.set_xticks(list(ticks(channels)))
        ax_grid.set_yticks(list(ticks(batch_size)))
        idx = np.arange(batch_size)
        width = 0.2
        for shift, key, label, color in ((-1.5, "in_mean", "input mean", "tab:gray"),
                                         (-0.5, "in_std", "input std", "silver"),
                                         (0.5, "out_mean", "output mean", "tab:blue"),
                                         (1.5, "out_std", "output std", "tab:orange")):
            ax_stats.bar(idx + shift * width, out[key].numpy(), width, label=label, color=color)
        ax_stats.axhline(0, color="k", lw=0.6)
        ax_stats.axhline(1, color="k", lw=0.6, ls="--")
        ax_stats.set_xlabel("example")
        dependence = (f"changes by up to {out['batch_dependence']:.2f} when the others change"
                      if out["batch_dependence"] > 1e-9 else "ignores the rest of the batch")
        ax_stats.set_title(f"per-example statistics over (C, H, W)\n"
                           f"example {example}'s output {dependence}", fontsize=10)
        ax_stats.set_xticks(list(ticks(batch_size)))
        ax_stats.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        dep = out["batch_dependence"]
        return fig, {
            "kind": kind, "batch_size": int(batch_size), "channels": int(channels),
            "groups": int(groups), "size": int(size), "example": int(example),
            "channel": int(channel), "pooled": out["pooled"],
            "out_mean": out["out_mean"].tolist(), "out_std": out["out_std"].tolist(),
            "batch_dependence": dep, "depends_on_batch": dep > 1e-9,
        }
