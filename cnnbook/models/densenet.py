"""DenseNet: every layer sees the feature maps of all layers before it (Huang et al., 2017).

Where ResNet *adds* a block's output to its input, DenseNet *concatenates* it: inside a
dense block, layer l receives ``[x0, x1, ..., x_{l-1}]`` stacked on the channel axis and
contributes only ``growth_rate`` new channels. Features computed once are reused by
every later layer instead of being recomputed. The pieces:

* ``conv_block``: BN -> ReLU -> conv (the "pre-activation" order); a dense layer is one
  3x3 block, or in DenseNet-B a 1x1 *bottleneck* block to ``bottleneck * growth_rate``
  channels first (``dense_layer``).
* ``DenseBlock``: ``num_convs`` dense layers; channels grow from c to
  ``c + num_convs * growth_rate``.
* ``transition_block``: BN -> ReLU -> 1x1 conv -> 2x2 average pool between dense blocks,
  halving the resolution and, with *compression* theta < 1 (DenseNet-C), cutting the
  channels to ``floor(theta * c)``.

``DenseNet`` is an ``nn.Sequential`` of named parts (stem, block1, trans1, ..., norm,
relu, pool, flatten, fc). ``densenet_d2l`` is the course's small DenseNet (d2l 8.7: growth
rate 32, four dense blocks of 4 convs, channels halved in each transition);
``densenet121`` is DenseNet-BC-121, with exactly torchvision's parameter count.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from cnnbook.models._sequential import NamedSequential
from cnnbook.models.resnet import resnet_stem

__all__ = ["conv_block", "dense_layer", "DenseBlock", "transition_block", "DenseNet",
           "densenet_d2l", "densenet121", "densenet169", "densenet201", "DENSENET_CONFIGS",
           "source_weights"]


def conv_block(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """BN -> ReLU -> conv (no bias; padding keeps the size): DenseNet's basic unit."""
    return nn.Sequential(OrderedDict(
        norm=nn.BatchNorm2d(in_channels), relu=nn.ReLU(inplace=True),
        conv=nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                       bias=False)))


def dense_layer(in_channels: int, growth_rate: int, bottleneck: int | None = None) -> nn.Module:
    """One layer of a dense block: a 3x3 ``conv_block`` producing ``growth_rate`` channels,
    preceded in DenseNet-B by a 1x1 ``conv_block`` to ``bottleneck * growth_rate`` channels."""
    if not bottleneck:
        return conv_block(in_channels, growth_rate, 3)
    inner = bottleneck * growth_rate
    return nn.Sequential(OrderedDict(bottleneck=conv_block(in_channels, inner, 1),
                                     conv=conv_block(inner, growth_rate, 3)))


class DenseBlock(nn.Module):
    """``num_convs`` dense layers; each one's output is concatenated to its input.

    Input c channels, output ``c + num_convs * growth_rate`` (``self.out_channels``).
    """

    def __init__(self, num_convs: int, in_channels: int, growth_rate: int,
                 bottleneck: int | None = None):
        super().__init__()
        if num_convs < 1 or growth_rate < 1:
            raise ValueError(f"a dense block needs num_convs >= 1 and growth_rate >= 1, "
                             f"got {num_convs} and {growth_rate}")
        self.net = nn.Sequential(*[dense_layer(in_channels + i * growth_rate, growth_rate,
                                               bottleneck) for i in range(num_convs)])
        self.out_channels = in_channels + num_convs * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = torch.cat((x, layer(x)), dim=1)  # keep everything, add growth_rate channels
        return x


def transition_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """BN -> ReLU -> 1x1 conv to ``out_channels`` -> 2x2 average pool (stride 2)."""
    return nn.Sequential(OrderedDict(
        norm=nn.BatchNorm2d(in_channels), relu=nn.ReLU(inplace=True),
        conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
        pool=nn.AvgPool2d(kernel_size=2, stride=2)))


# depth -> blocks per dense block, for DenseNet-BC (growth 32, bottleneck 4, theta 0.5)
DENSENET_CONFIGS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


class DenseNet(NamedSequential):
    """stem -> (dense block -> transition) x (n-1) -> dense block -> BN -> ReLU -> pool -> fc.

    ``block_config`` gives the dense layers per block (its length is the number of
    blocks); ``growth_rate`` (k) and ``init_channels`` (the stem's output) set the width;
    ``compression`` is theta (1.0 = plain DenseNet, 0.5 = DenseNet-C); ``bottleneck``
    (None, or 4 as in the paper) makes it DenseNet-B. ``small_input`` picks the 3x3,
    stride-1 stem for 28 px images (see ``resnet_stem``).
    """

    def __init__(self, block_config: Sequence[int] = (4, 4, 4, 4), growth_rate: int = 32,
                 init_channels: int = 64, compression: float = 0.5,
                 bottleneck: int | None = None, num_classes: int = 1000, in_channels: int = 3,
                 small_input: bool = False):
        if not block_config:
            raise ValueError("block_config must list the layers of at least one dense block")
        if not 0 < compression <= 1:
            raise ValueError(f"compression (theta) must be in (0, 1], got {compression}")
        if init_channels < 1:
            raise ValueError(f"init_channels must be positive, got {init_channels}")
        parts: OrderedDict[str, nn.Module] = OrderedDict(
            stem=resnet_stem(in_channels, init_channels, small_input))
        channels = init_channels
        for i, num_convs in enumerate(block_config, 1):
            block = DenseBlock(num_convs, channels, growth_rate, bottleneck)
            parts[f"block{i}"] = block
            channels = block.out_channels
            if i < len(block_config):
                out = max(1, math.floor(compression * channels))
                parts[f"trans{i}"] = transition_block(channels, out)
                channels = out
        parts["norm"] = nn.BatchNorm2d(channels)
        parts["relu"] = nn.ReLU(inplace=True)
        parts["pool"] = nn.AdaptiveAvgPool2d(1)
        parts["flatten"] = nn.Flatten()
        parts["fc"] = nn.Linear(channels, num_classes)
        super().__init__(parts)
        self.out_channels = channels
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)


def densenet_d2l(num_classes: int = 10, in_channels: int = 1, growth_rate: int = 32,
                 init_channels: int = 64, block_config: Sequence[int] = (4, 4, 4, 4),
                 **kwargs) -> DenseNet:
    """The course's DenseNet (d2l 8.7): 64-channel stem, four dense blocks of four 3x3
    conv blocks with growth rate 32, channels halved by each transition, no bottleneck."""
    kwargs.setdefault("compression", 0.5)
    return DenseNet(block_config, growth_rate, init_channels, num_classes=num_classes,
                    in_channels=in_channels, **kwargs)


def _densenet_bc(depth: int, **kwargs) -> DenseNet:
    kwargs.setdefault("growth_rate", 32)
    kwargs.setdefault("init_channels", 2 * kwargs["growth_rate"])
    kwargs.setdefault("bottleneck", 4)
    kwargs.setdefault("compression", 0.5)
    return DenseNet(DENSENET_CONFIGS[depth], **kwargs)


def densenet121(**kwargs) -> DenseNet:
    """DenseNet-BC-121 (k = 32, blocks 6-12-24-16); torchvision's 7,978,856 parameters."""
    return _densenet_bc(121, **kwargs)


def densenet169(**kwargs) -> DenseNet:
    """DenseNet-BC-169 (blocks 6-12-32-32)."""
    return _densenet_bc(169, **kwargs)


def densenet201(**kwargs) -> DenseNet:
    """DenseNet-BC-201 (blocks 6-12-48-32)."""
    return _densenet_bc(201, **kwargs)


def _reading_conv(layer: nn.Module) -> nn.Conv2d:
    """The convolution of a dense layer or transition that reads the concatenated input."""
    first = layer.bottleneck if hasattr(layer, "bottleneck") else layer
    return first.conv


@torch.no_grad()
def source_weights(block: DenseBlock, transition: nn.Module | None = None) -> torch.Tensor:
    """How strongly each layer of a dense block draws on each earlier source (Huang et al.'s
    heat map, their Fig. 5): entry [t, s] is the mean absolute weight of target t's first
    convolution over the input channels that come from source s.

    Sources are 0 = the block's input, s = the output of dense layer s; targets are the
    dense layers 1..L and, if given, the following ``transition`` (target L + 1). Rows
    are targets, columns sources; entries a layer cannot see are NaN.
    """
    layers = list(block.net)
    in_channels = _reading_conv(layers[0]).in_channels
    growth = (block.out_channels - in_channels) // len(layers)
    targets = layers + ([transition] if transition is not None else [])
    bounds = [0, in_channels] + [in_channels + growth * i for i in range(1, len(layers) + 1)]
    out = torch.full((len(targets), len(layers) + 1), float("nan"))
    for t, layer in enumerate(targets):
        w = _reading_conv(layer).weight.abs()  # (out, in, kh, kw)
        if w.shape[1] != bounds[t + 1]:
            raise ValueError(f"target {t + 1} reads {w.shape[1]} channels, expected "
                             f"{bounds[t + 1]}: is the transition the one after this block?")
        for s in range(t + 1):
            out[t, s] = w[:, bounds[s]:bounds[s + 1]].mean().item()
    return out
