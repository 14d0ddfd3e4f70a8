"""Chapter 15's baseline for CIFAR-10: a small, plain VGG-style network for 32 px images.

Three VGG blocks (``vgg_block``: 3x3 convolutions with ReLUs, then a 2x2 max-pool:
32 -> 16 -> 8 -> 4 px), then a fully connected hidden layer and the classifier. On
purpose it has *no* regulariser at all (no batch norm, no dropout, no weight decay, and
the chapter trains it without augmentation): it is the network whose overfitting the
following chapters cure, one technique at a time.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import nn

from cnnbook.models._sequential import NamedSequential
from cnnbook.models.vgg import vgg_block


class CifarBaseline(NamedSequential):
    """``block1..blockN`` (``convs`` 3x3 convs + pool each), flatten, FC ``hidden``, FC classes.

    ``widths`` are the blocks' channels; each block halves the side, so ``size`` must be
    divisible by 2**len(widths). Defaults: 3 blocks of 2 convs (32, 64, 128 channels) and
    256 hidden units: about 0.8 M parameters and 38 M multiply-adds per image.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128), convs: int = 2, hidden: int = 256,
                 num_classes: int = 10, in_channels: int = 3, size: int = 32):
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be positive channel counts, got {widths}")
        if hidden < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError("hidden, num_classes and in_channels must be positive")
        side = size // 2 ** len(widths)
        if side < 1 or size % 2 ** len(widths):
            raise ValueError(f"{len(widths)} pooling blocks need a size divisible by "
                             f"{2 ** len(widths)}, got {size}")
        layers = OrderedDict()
        channels = in_channels
        for i, width in enumerate(widths, 1):
            layers[f"block{i}"] = vgg_block(convs, channels, int(width))
            channels = int(width)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(channels * side * side, hidden)
        layers["relu"] = nn.ReLU()
        layers["out"] = nn.Linear(hidden, num_classes)
        super().__init__(layers)
