"""The history of convolutional networks as data, and its picture (chapter 14).

One row per milestone: year, short name, what it brought, the paper and the chapter of
this course that covers it. ``plot_timeline`` draws them on a year axis, grouped in
lanes (biology and theory, architectures, efficiency, beyond CNNs).
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt


@dataclass(frozen=True)
class Milestone:
    year: int
    name: str
    idea: str
    paper: str
    lane: str
    chapter: str = ""


LANES = ("foundations", "architectures", "efficiency", "beyond CNNs")

MILESTONES = (
    Milestone(1962, "Hubel & Wiesel", "simple and complex cells in cat V1",
              "Hubel & Wiesel, J. Physiol. 1962", "foundations", "01"),
    Milestone(1980, "Neocognitron", "S-cells and C-cells stacked in a hierarchy",
              "Fukushima, Biol. Cybern. 1980", "foundations", "01"),
    Milestone(1986, "Backpropagation", "gradients through many layers",
              "Rumelhart, Hinton & Williams, Nature 1986", "foundations", "04"),
    Milestone(1989, "LeNet", "convolutions trained by backprop on ZIP codes",
              "LeCun et al., Neural Computation 1989", "architectures", "05"),
    Milestone(1998, "LeNet-5", "gradient-based learning for document recognition",
              "LeCun et al., Proc. IEEE 1998", "architectures", "05"),
    Milestone(2009, "ImageNet", "a million labelled images in 1,000 classes",
              "Deng et al., CVPR 2009", "foundations", "06"),
    Milestone(2012, "AlexNet", "ReLU, dropout and two GPUs win ImageNet",
              "Krizhevsky, Sutskever & Hinton, NeurIPS 2012", "architectures", "06"),
    Milestone(2013, "NiN", "1x1 convolutions and global average pooling",
              "Lin, Chen & Yan, ICLR 2014 (arXiv 2013)", "architectures", "08"),
    Milestone(2014, "VGG", "deep stacks of 3x3 blocks",
              "Simonyan & Zisserman, ICLR 2015 (arXiv 2014)", "architectures", "07"),
    Milestone(2014, "GoogLeNet", "Inception: parallel paths",
              "Szegedy et al., CVPR 2015 (arXiv 2014)", "architectures", "09"),
    Milestone(2015, "Batch norm", "normalised activations, higher learning rates",
              "Ioffe & Szegedy, ICML 2015", "architectures", "10"),
    Milestone(2015, "ResNet", "residual connections, 152 layers",
              "He et al., CVPR 2016 (arXiv 2015)", "architectures", "11"),
    Milestone(2016, "DenseNet", "feature reuse by concatenation",
              "Huang et al., CVPR 2017 (arXiv 2016)", "architectures", "12"),
    Milestone(2017, "MobileNet", "depthwise separable convolutions for phones",
              "Howard et al., arXiv 2017", "efficiency", "13"),
    Milestone(2017, "SENet", "channel attention (squeeze and excitation)",
              "Hu, Shen & Sun, CVPR 2018 (arXiv 2017)", "architectures", "13"),
    Milestone(2018, "MobileNet V2", "inverted residuals, linear bottlenecks",
              "Sandler et al., CVPR 2018", "efficiency", "13"),
    Milestone(2019, "MobileNet V3", "found by architecture search, hard-swish",
              "Howard et al., ICCV 2019", "efficiency", "13"),
    Milestone(2019, "EfficientNet", "compound scaling of depth, width, resolution",
              "Tan & Le, ICML 2019", "efficiency"),
    Milestone(2020, "ViT", "an image as a sequence of 16x16 patches",
              "Dosovitskiy et al., ICLR 2021 (arXiv 2020)", "beyond CNNs", "23"),
    Milestone(2022, "ConvNeXt", "a ConvNet modernised the Transformer way",
              "Liu et al., CVPR 2022", "beyond CNNs", "23"),
)


def milestones(lane: str | None = None) -> list[Milestone]:
    """The milestones in year order, optionally of one lane only."""
    if lane is not None and lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}: choose one of {', '.join(LANES)}")
    rows = [m for m in MILESTONES if lane is None or m.lane == lane]
    return sorted(rows, key=lambda m: m.year)


def plot_timeline(rows=None, figsize=(13, 5)):
    """The milestones in order along one axis, coloured by lane, labels on alternating stems.

    Events are evenly spaced (the 2010s are crowded; a proportional axis would pile them
    up); each dot is labelled with its year, so the gaps are still readable.
    """
    rows = sorted(rows if rows is not None else milestones(), key=lambda m: m.year)
    if not rows:
        raise ValueError("plot_timeline needs at least one milestone")
    fig, ax = plt.subplots(figsize=figsize)
    colors = dict(zip(LANES, ("#6c757d", "#1f77b4", "#2ca02c", "#d62728")))
    heights = (1.0, -1.0, 2.0, -2.0)
    ax.axhline(0, color="k", lw=1)
    for i, m in enumerate(rows):
        h = heights[i % len(heights)]
        ax.vlines(i, 0, h, color=colors[m.lane], lw=1)
        ax.plot(i, 0, "o", color=colors[m.lane], ms=7, zorder=3)
        label = f"{m.name}\n{m.year}" + (f" · ch. {m.chapter}" if m.chapter else "")
        ax.text(i, h + (0.08 if h > 0 else -0.08), label, ha="center",
                va="bottom" if h > 0 else "top", fontsize=8, color=colors[m.lane])
    for lane in LANES:
        ax.plot([], [], "o", color=colors[lane], label=lane)
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncol=len(LANES))
    ax.set_xlim(-1, len(rows))
    ax.set_ylim(-2.9, 3.1)
    ax.axis("off")
    ax.set_title(f"Convolutional networks, {rows[0].year} to {rows[-1].year}")
    fig.tight_layout()
    return fig
