"""MobileNet V1, V2 and V3: convolutional networks built for phones (Google, 2017-2019).

Three generations, one file, built from four named blocks a learner can read:

* ``ConvBNAct``: convolution + batch norm + activation, the brick of every layer below.
* ``DepthwiseSeparableConv`` (V1, Howard et al. 2017): a 3x3 *depthwise* convolution that
  filters each channel on its own, then a 1x1 *pointwise* convolution that mixes channels.
  It costs ``1/N + 1/k^2`` of a standard k x k convolution with N output channels.
* ``InvertedResidual`` (V2, Sandler et al. 2018): expand with 1x1, filter depthwise, then
  project back down with a *linear* 1x1 (no activation: the "linear bottleneck"), with a
  shortcut between the thin ends when the shapes match.
* ``SqueezeExcitation`` (Hu et al. 2017, used by V3, Howard et al. 2019): a per-channel
  gate computed from the globally pooled feature map.

Each network is read from a configuration table (as in torchvision's ``models/``), and is
configurable in input channels, number of classes, width (``alpha`` / ``width_mult``) and
depth (``depth_mult`` scales the number of blocks per stage). With default settings the
V2 and V3 networks have exactly torchvision's parameter counts.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "ConvBNAct", "DepthwiseSeparableConv", "InvertedResidual", "SqueezeExcitation",
    "MobileNetV1", "MobileNetV2", "MobileNetV3", "make_divisible", "separable_cost_ratio",
    "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "mobilenet_v2_fashion", "V1_STAGES", "V2_STAGES", "V3_LARGE", "V3_SMALL",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (never more than 10% below ``value``).

    Mobile hardware runs fastest on channel counts that are multiples of 8; every width
    multiplier in this file goes through here (the rule of the TensorFlow reference code).
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def separable_cost_ratio(out_channels: int, kernel_size: int) -> float:
    """Multiply-adds of a depthwise separable conv over a standard one: ``1/N + 1/k^2``."""
    return 1 / out_channels + 1 / kernel_size ** 2


class ConvBNAct(nn.Sequential):
    """Convolution (no bias: BN has one) -> BatchNorm -> activation (none if ``activation=None``).

    ``groups=in_channels`` makes it a depthwise convolution: one filter per channel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, groups: int = 1,
                 activation: Callable[[], nn.Module] | None = nn.ReLU6):
        layers = OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                           padding=(kernel_size - 1) // 2, groups=groups, bias=False),
            bn=nn.BatchNorm2d(out_channels))
        if activation is not None:
            layers["act"] = activation()
        super().__init__(layers)


class DepthwiseSeparableConv(nn.Module):
    """MobileNet V1's layer pair: depthwise k x k conv (per channel) + pointwise 1x1 conv.

    Replaces ``nn.Conv2d(in_channels, out_channels, k, stride)``; each half has its own
    batch norm and ReLU6, so V1 counts it as two layers.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 kernel_size: int = 3, activation: Callable[[], nn.Module] = nn.ReLU6):
        super().__init__()
        self.depthwise = ConvBNAct(in_channels, in_channels, kernel_size, stride,
                                   groups=in_channels, activation=activation)
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SqueezeExcitation(nn.Module):
    """Squeeze (global average pool) -> excite (two 1x1 convs) -> scale each channel by a gate.

    The gate in [0, 1] lets the block turn channels up or down depending on the whole
    image; V3 uses a hard sigmoid gate, cheap on phones.
    """

    def __init__(self, channels: int, squeeze_channels: int,
                 gate: Callable[[], nn.Module] = nn.Hardsigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))
        return x * scale


class InvertedResidual(nn.Module):
    """V2/V3 block: 1x1 expand -> k x k depthwise -> (SE) -> linear 1x1 project (+ shortcut).

    Thin -> wide -> thin, the inverse of ResNet's bottleneck; the projection has no
    activation (a ReLU on few channels would destroy information). The shortcut joins
    the thin ends when stride is 1 and the channel count is unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expanded: int,
                 kernel_size: int = 3, activation: Callable[[], nn.Module] = nn.ReLU6,
                 se_channels: int | None = None):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.use_residual = stride == 1 and in_channels == out_channels
        layers = OrderedDict()
        if expanded != in_channels:
            layers["expand"] = ConvBNAct(in_channels, expanded, 1, activation=activation)
        layers["depthwise"] = ConvBNAct(expanded, expanded, kernel_size, stride,
                                        groups=expanded, activation=activation)
        if se_channels:
            layers["se"] = SqueezeExcitation(expanded, se_channels)
        layers["project"] = ConvBNAct(expanded, out_channels, 1, activation=None)
        self.block = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


def _init_weights(model: nn.Module) -> None:
    """The reference initialisation: Kaiming (fan_out) convs, BN 1/0, small normal linears."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def _repeats(n: int, depth_mult: float) -> int:
    if depth_mult <= 0:
        raise ValueError(f"depth_mult must be positive, got {depth_mult}")
    return max(1, math.ceil(n * depth_mult))


def _check_width(width: float, name: str) -> None:
    if width <= 0:
        raise ValueError(f"{name} must be positive, got {width}")


class _MobileNet(nn.Module):
    """features -> global average pool -> classifier, the layout all three versions share."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(x)


# ---------------------------------------------------------------- MobileNet V1 (2017)
# (out_channels, stride of the first block, number of blocks): Table 1 of the paper.
# The stem conv plus 13 depthwise separable blocks (26 layers) plus the FC layer = 28.
V1_STAGES = ((64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 2, 6), (1024, 2, 2))


class MobileNetV1(_MobileNet):
    """MobileNet V1: a 3x3 stem then 13 depthwise separable blocks, global pool, one FC.

    ``alpha`` is the paper's width multiplier (every layer's channels times alpha); the
    resolution multiplier rho is simply the input size you feed (224, 192, 160, 128).
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, alpha: float = 1.0,
                 depth_mult: float = 1.0, stem_stride: int = 2, dropout: float = 0.0,
                 stages: Sequence[tuple[int, int, int]] = V1_STAGES):
        super().__init__()
        _check_width(alpha, "alpha")
        channels = make_divisible(32 * alpha)
        layers = OrderedDict(stem=ConvBNAct(in_channels, channels, 3, stem_stride))
        for c, s, n in stages:
            out = make_divisible(c * alpha)
            for i in range(_repeats(n, depth_mult)):
                layers[f"block{len(layers)}"] = DepthwiseSeparableConv(channels, out, s if i == 0 else 1)
                channels = out
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        _init_weights(self)


# ---------------------------------------------------------------- MobileNet V2 (2018)
# (expansion t, out_channels c, blocks n, first stride s): Table 2 of the paper.
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(_MobileNet):
    """MobileNet V2: 3x3 stem, 17 inverted residual blocks, 1x1 conv to 1280, pool, FC."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 depth_mult: float = 1.0, stem_stride: int = 2, dropout: float = 0.2,
                 stages: Sequence[tuple[int, int, int, int]] = V2_STAGES, last_channels: int = 1280):
        super().__init__()
        _check_width(width_mult, "width_mult")
        channels = make_divisible(32 * width_mult)
        last = make_divisible(last_channels * max(1.0, width_mult))  # never thinner than 1280
        layers = OrderedDict(stem=ConvBNAct(in_channels, channels, 3, stem_stride))
        for t, c, n, s in stages:
            out = make_divisible(c * width_mult)
            for i in range(_repeats(n, depth_mult)):
                layers[f"block{len(layers)}"] = InvertedResidual(
                    channels, out, s if i == 0 else 1, expanded=int(round(channels * t)))
                channels = out
        layers["head"] = ConvBNAct(channels, last, 1)
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        _init_weights(self)


# ---------------------------------------------------------------- MobileNet V3 (2019)
# (kernel, expanded, out_channels, squeeze-and-excite, activation, stride): Tables 1-2 of
# the paper, found by architecture search (MnasNet-style NAS, then NetAdapt). "RE" = ReLU,
# "HS" = hard-swish. One row per block; consecutive rows with the same output channels
# form a stage, whose length ``depth_mult`` scales.
V3_LARGE = (
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1),
)
V3_SMALL = (
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2), (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1),
)
_ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}


def _scale_rows(rows, depth_mult: float):
    """Group rows into stages (same output channels) and keep/extend each to ceil(n * depth)."""
    stages: list[list] = []
    for row in rows:
        if stages and stages[-1][0][2] == row[2]:
            stages[-1].append(row)
        else:
            stages.append([row])
    out = []
    for stage in stages:
        n = _repeats(len(stage), depth_mult)
        extra = (*stage[-1][:5], 1)  # repeats of the last block keep the resolution
        out += stage[:n] + [extra] * (n - len(stage))
    return out


class MobileNetV3(_MobileNet):
    """MobileNet V3 (Large or Small): hard-swish stem, searched inverted residual blocks with
    optional squeeze-and-excitation, a 1x1 conv to 6x the last width, pool, two FC layers."""

    def __init__(self, rows=V3_LARGE, last_channels: int = 1280, num_classes: int = 1000,
                 in_channels: int = 3, width_mult: float = 1.0, depth_mult: float = 1.0,
                 stem_stride: int = 2, dropout: float = 0.2):
        super().__init__()
        _check_width(width_mult, "width_mult")
        channels = make_divisible(16 * width_mult)
        layers = OrderedDict(stem=ConvBNAct(in_channels, channels, 3, stem_stride,
                                            activation=nn.Hardswish))
        for k, exp, c, se, act, s in _scale_rows(rows, depth_mult):
            expanded, out = make_divisible(exp * width_mult), make_divisible(c * width_mult)
            layers[f"block{len(layers)}"] = InvertedResidual(
                channels, out, s, expanded, k, _ACTIVATIONS[act],
                se_channels=make_divisible(expanded // 4) if se else None)
            channels = out
        head = 6 * channels
        layers["head"] = ConvBNAct(channels, head, 1, activation=nn.Hardswish)
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        hidden = make_divisible(last_channels * width_mult)
        self.classifier = nn.Sequential(
            nn.Linear(head, hidden), nn.Hardswish(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes))
        _init_weights(self)


# ---------------------------------------------------------------- builders
def mobilenet_v1(alpha: float = 1.0, **kwargs) -> MobileNetV1:
    """MobileNet V1 with width multiplier ``alpha`` (1.0 = the paper's 1.0 MobileNet-224)."""
    return MobileNetV1(alpha=alpha, **kwargs)


def mobilenet_v2(width_mult: float = 1.0, **kwargs) -> MobileNetV2:
    """MobileNet V2 (torchvision's ``mobilenet_v2`` has the same parameter count)."""
    return MobileNetV2(width_mult=width_mult, **kwargs)


def mobilenet_v3_large(width_mult: float = 1.0, **kwargs) -> MobileNetV3:
    """MobileNet V3-Large (the same parameter count as torchvision's)."""
    return MobileNetV3(V3_LARGE, 1280, width_mult=width_mult, **kwargs)


def mobilenet_v3_small(width_mult: float = 1.0, **kwargs) -> MobileNetV3:
    """MobileNet V3-Small (the same parameter count as torchvision's)."""
    return MobileNetV3(V3_SMALL, 1024, width_mult=width_mult, **kwargs)


def mobilenet_v2_fashion(width_mult: float = 1.0, small_input: bool = False, **kwargs) -> MobileNetV2:
    """The course's Fashion-MNIST MobileNet V2: one grey input channel, 10 classes.

    ``small_input=True`` keeps the stem at stride 1 for native 28x28 images (otherwise
    the five stride-2 steps would shrink them below 1 pixel); at 96 px use the default.
    """
    kwargs.setdefault("num_classes", 10)
    kwargs.setdefault("in_channels", 1)
    return MobileNetV2(width_mult=width_mult, stem_stride=1 if small_input else 2, **kwargs)
