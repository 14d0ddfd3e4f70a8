"""The sources' three-level map of regularisation (data, model, training) as a matplotlib figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["LEVELS", "plot_three_levels"]

#: level -> (where it acts, the techniques of chapter 16 at that level)
LEVELS = {
    "data-level": ("changes the training examples",
                   ["flip, crop, rotation 15°", "colour jitter 0.2/0.2/0.2/0.1",
                    "affine: shift 0.1, scale 0.9-1.1", "random erasing p 0.2",
                    "mixup, CutMix"]),
    "model-level": ("changes the network during training",
                    ["dropout, Dropout2d", "DropBlock", "stochastic depth",
                     "(normalisation layers, ch. 17)"]),
    "training-level": ("changes the objective or the optimiser",
                       ["weight decay (L2 / decoupled)", "label smoothing 0.1",
                        "early stopping (ch. 18)"]),
}


def plot_three_levels(ax=None):
    """Three boxes (data, model, training) with their techniques, arrows along the pipeline
    data -> network -> loss/optimiser. Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4.2))
    colours = ("#d8ecf7", "#e3f1dc", "#fbe5cf")
    width, gap = 0.3, 0.035
    for i, ((level, (what, items)), colour) in enumerate(zip(LEVELS.items(), colours)):
        x0 = i * (width + gap)
        ax.add_patch(FancyBboxPatch((x0, 0.0), width, 0.86, boxstyle="round,pad=0.01",
                                    facecolor=colour, edgecolor="0.3"))
        ax.text(x0 + width / 2, 0.8, level, ha="center", va="center", fontsize=13,
                weight="bold")
        ax.text(x0 + width / 2, 0.71, what, ha="center", va="center", fontsize=9,
                style="italic")
        for k, item in enumerate(items):
            ax.text(x0 + 0.02, 0.58 - 0.11 * k, "• " + item, ha="left", va="center",
                    fontsize=9)
        if i:
            ax.add_patch(FancyArrowPatch((x0 - gap + 0.004, 0.43), (x0 - 0.004, 0.43),
                                         arrowstyle="-|>", mutation_scale=14, color="0.3"))
    ax.text(0.5 * (3 * width + 2 * gap), 0.95, "Regularisation in deep networks: three levels",
            ha="center", fontsize=13)
    ax.set_xlim(-0.02, 3 * width + 2 * gap + 0.02)
    ax.set_ylim(-0.04, 1.0)
    ax.axis("off")
    return ax
