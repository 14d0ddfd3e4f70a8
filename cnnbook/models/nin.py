"""Network in Network (NiN): 1x1 convolutions as per-pixel MLPs, no FC layers (Lin et al., 2013).

A NiN block is a convolution followed by two 1x1 convolutions, each with a ReLU: the 1x1
convolutions act as a small fully connected network applied at every pixel (the paper's
"mlpconv" layer). d2l's NiN uses AlexNet's kernel sizes and channels (11x11 stride 4 with
96 channels, 5x5 with 256, 3x3 with 384), a 3x3 stride-2 max-pool after each block, and
instead of AlexNet's fully connected head a last block with one channel per class whose
maps are averaged over the image (global average pooling) into the logits.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import nn

from cnnbook.models._sequential import NamedSequential

__all__ = ["nin_block", "NiN", "NIN_ARCH", "NIN_SMALL_STEM", "nin", "nin_fashion"]

# (output channels, kernel size, stride, padding) of the first conv of each block: AlexNet's.
NIN_ARCH = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))
# For native 28x28 images: a 3x3 stride-1 first conv instead of 11x11 stride 4, so the
# three pools leave a 2x2 map (28-13-6-2) rather than nothing.
NIN_SMALL_STEM = (96, 3, 1, 1)


def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int = 0) -> nn.Sequential:
    """A k x k convolution, then two 1x1 convolutions (the per-pixel MLP), each with a ReLU."""
    if in_channels < 1 or out_channels < 1:
        raise ValueError(f"channel counts must be positive, got {in_channels} -> {out_channels}")
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), relu=nn.ReLU(),
        mlp1=nn.Conv2d(out_channels, out_channels, 1), relu1=nn.ReLU(),
        mlp2=nn.Conv2d(out_channels, out_channels, 1), relu2=nn.ReLU()))


class NiN(NamedSequential):
    """NiN blocks with max-pools, dropout, a class-map block and global average pooling.

    ``block1 pool1 block2 pool2 block3 pool3 dropout head gap flatten``: the head is a
    NiN block (3x3, padding 1) with ``num_classes`` channels, and the global average pool
    turns each class map into one logit, so the network has no fully connected layer.
    ``width_mult`` scales the channels of the first three blocks; ``small_input`` swaps
    the 11x11 stride-4 stem for a 3x3 stride-1 one so that 28x28 images fit.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 small_input: bool = False, dropout: float = 0.5,
                 arch: Sequence[tuple[int, int, int, int]] = NIN_ARCH):
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be positive")
        arch = list(arch)
        if small_input:
            arch[0] = NIN_SMALL_STEM
        layers = OrderedDict()
        channels = in_channels
        for i, (c, k, s, p) in enumerate(arch, 1):
            out = max(1, int(round(c * width_mult)))
            layers[f"block{i}"] = nin_block(channels, out, k, s, p)
            layers[f"pool{i}"] = nn.MaxPool2d(3, stride=2)
            channels = out
        layers["dropout"] = nn.Dropout(dropout)
        layers["head"] = nin_block(channels, num_classes, kernel_size=3, stride=1, padding=1)
        layers["gap"] = nn.AdaptiveAvgPool2d((1, 1))
        layers["flatten"] = nn.Flatten()
        super().__init__(layers)


def nin(width_mult: float = 1.0, **kwargs) -> NiN:
    """d2l's NiN (for 224x224 inputs); all options of ``NiN`` as keywords."""
    return NiN(width_mult=width_mult, **kwargs)


def nin_fashion(width_mult: float = 1.0, small_input: bool = False, **kwargs) -> NiN:
    """The course's Fashion-MNIST NiN: one grey input channel, 10 classes.

    Use the default stem at d2l's 224 px; ``small_input=True`` for native 28x28 images.
    """
    kwargs.setdefault("num_classes", 10)
    kwargs.setdefault("in_channels", 1)
    return NiN(width_mult=width_mult, small_input=small_input, **kwargs)
