"""Small ResNets for 32x32 CIFAR images: He et al.'s ResNet-20/32/44/56/110 and a fast ResNet-9.

**The CIFAR ResNets** (He et al., 2016, section 4.2). An ImageNet ResNet would shrink a 32 px
image to 1 px; the CIFAR version keeps it large and thin instead:

* stem: one 3x3 conv with 16 channels (+ BN + ReLU), no pooling, 32x32 stays 32x32;
* three stages of ``n`` basic blocks with 16, 32 and 64 channels at 32, 16 and 8 px (the
  first block of stages 2 and 3 halves the resolution with a stride-2 conv);
* global average pooling and a 10-way fully connected layer.

That is ``6n + 2`` weighted layers: ``n = 3, 5, 7, 9, 18`` gives ResNet-20, 32, 44, 56 and 110
(``CIFAR_RESNET_CONFIGS``). Where a block changes shape the paper uses *option A*: the
shortcut subsamples the input (every other pixel) and pads the new channels with zeros, so
it has no parameters, and ResNet-20 has its published 0.27 M parameters. ``shortcut="B"``
uses a strided 1x1 conv + norm instead (the ImageNet ResNets' choice).

The options other chapters need are arguments, not copies of this file:

* ``width_mult`` scales every channel count (2 gives 32-64-128);
* ``norm_layer(channels) -> nn.Module`` swaps batch norm (e.g. for group norm);
* ``attention(channels) -> nn.Module`` is inserted in every block after its last norm,
  before the shortcut is added (where squeeze-and-excitation and CBAM sit);
* ``block`` swaps the whole block: any class with the ``(in_channels, channels, stride,
  **block_kwargs)`` signature and an ``expansion`` attribute.

The blocks are built by ``cnnbook.models.resnet.resnet_stage``, and ``BasicBlock`` is a
``cnnbook.models.resnet.Residual`` (the same conv-BN-ReLU-conv-BN-add-ReLU block) that
accepts a norm layer, an attention module and an option-A shortcut.

**The fast ResNet-9** (David Page, "How to train your ResNet", 2018; the ancestor of Keller
Jordan's airbench). Speed-run nets are shallow and wide: a prep conv, then three layers that
each double the channels with a conv-BN-ReLU and halve the resolution with a 2x2 max-pool,
two of them followed by a residual pair of conv-BN-ReLU; a global max-pool; a bias-free
linear classifier whose logits are scaled by 0.125. ``resnet9()`` is Page's net (64, 128,
256, 512 channels; 6.57 M parameters); ``widths`` makes it smaller for a CPU.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Callable, Sequence

import torch
from torch import nn

from cnnbook.models._sequential import NamedSequential
from cnnbook.models.resnet import Residual, _init_weights, resnet_stage

__all__ = ["BasicBlock", "ZeroPadShortcut", "CifarResNet", "cifar_resnet", "resnet20",
           "resnet32", "resnet44", "resnet56", "resnet110", "CIFAR_RESNET_CONFIGS",
           "CIFAR_STAGE_WIDTHS", "ConvBNReLU", "ResidualPair", "ResNet9", "resnet9",
           "group_norm", "Scale"]

# depth -> blocks per stage (n of the paper's 6n + 2 layers); Table 6 of He et al. (2016)
CIFAR_RESNET_CONFIGS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
CIFAR_STAGE_WIDTHS = (16, 32, 64)

NormLayer = Callable[[int], nn.Module]


def group_norm(groups: int = 32) -> NormLayer:
    """A ``norm_layer`` for group norm: ``min(groups, channels)`` groups (16 channels cannot
    have 32 groups), e.g. ``resnet20(norm_layer=group_norm(8))``."""
    if groups < 1:
        raise ValueError(f"groups must be at least 1, got {groups}")

    def make(channels: int) -> nn.GroupNorm:
        g = min(groups, channels)
        while channels % g:
            g -= 1
        return nn.GroupNorm(g, channels)
    return make


class ZeroPadShortcut(nn.Module):
    """Option A of the paper: keep every ``stride``-th pixel and append zero channels.

    A shortcut without parameters: the identity where it can be, zeros where the block
    has more channels than its input.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A can only add channels ({in_channels} -> {out_channels})")
        self.stride, self.extra = stride, out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra:
            # pad the channel dimension (dims are given last-first: W, H, C)
            x = nn.functional.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, zero_channels={self.extra}"


class BasicBlock(Residual):
    """``relu(attention(norm2(conv2(relu(norm1(conv1(x)))))) + shortcut(x))``.

    The basic block of ``cnnbook.models.resnet.Residual`` with three switches: the norm
    layer (``norm_layer``, default batch norm), an ``attention`` module applied to the
    residual branch before the addition (default none), and the shortcut used where the
    shape changes: ``"A"`` zero-pads (the paper's CIFAR choice, no parameters), ``"B"`` a
    strided 1x1 conv + norm.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut: str = "A",
                 norm_layer: NormLayer | None = None,
                 attention: Callable[[int], nn.Module] | None = None, residual: bool = True):
        nn.Module.__init__(self)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (1x1 conv), got {shortcut!r}")
        norm_layer = norm_layer or nn.BatchNorm2d
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding=1, bias=False)
        self.bn1 = norm_layer(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, padding=1, bias=False)
        self.bn2 = norm_layer(channels)
        self.attention = attention(channels) if attention is not None else None
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual
        self.shortcut = None
        if residual and (stride != 1 or in_channels != channels):
            if shortcut == "A":
                self.shortcut = ZeroPadShortcut(in_channels, channels, stride)
            else:
                self.shortcut = nn.Sequential(OrderedDict(
                    conv=nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                    bn=norm_layer(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.attention is not None:
            y = self.attention(y)
        if self.residual:
            y = y + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(y)


def _block_with(block, **options):
    """``block`` with fixed keyword options, still carrying ``expansion`` for ``resnet_stage``."""
    make = functools.partial(block, **options)
    make.expansion = getattr(block, "expansion", 1)
    return make


class CifarResNet(NamedSequential):
    """stem (3x3 conv, 16 channels) -> three stages of ``blocks_per_stage`` blocks (16, 32,
    64 channels; stride 2 at the start of stages 2 and 3) -> global average pool -> fc.

    ``width_mult`` scales the channels; ``shortcut``, ``norm_layer`` and ``attention`` go
    to every ``BasicBlock``; ``block`` replaces ``BasicBlock`` altogether (``block_kwargs``
    are passed to it); ``zero_init_residual`` starts each block's last norm at gamma = 0
    (each block starts as the identity). Convs are Kaiming-normal initialised.
    """

    def __init__(self, blocks_per_stage: int | Sequence[int] = 3, num_classes: int = 10,
                 in_channels: int = 3, width_mult: float = 1.0, shortcut: str = "A",
                 norm_layer: NormLayer | None = None,
                 attention: Callable[[int], nn.Module] | None = None,
                 block: type | None = None, block_kwargs: dict | None = None,
                 residual: bool = True, zero_init_residual: bool = False):
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        layers = ([blocks_per_stage] * 3 if isinstance(blocks_per_stage, int)
                  else list(blocks_per_stage))
        if not layers or min(layers) < 1:
            raise ValueError(f"every stage needs at least one block, got {blocks_per_stage}")
        norm = norm_layer or nn.BatchNorm2d
        if block is None:
            block = _block_with(BasicBlock, shortcut=shortcut, norm_layer=norm_layer,
                                attention=attention, **(block_kwargs or {}))
        elif block_kwargs:
            block = _block_with(block, **block_kwargs)
        widths = [max(1, round(16 * 2 ** i * width_mult)) for i in range(len(layers))]
        parts: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            bn=norm(widths[0]), relu=nn.ReLU(inplace=True))))
        channels = widths[0]
        for i, (width, n) in enumerate(zip(widths, layers)):
            parts[f"stage{i + 1}"] = resnet_stage(block, channels, width, n,
                                                  stride=1 if i == 0 else 2, residual=residual)
            channels = width * getattr(block, "expansion", 1)
        parts["pool"] = nn.AdaptiveAvgPool2d(1)
        parts["flatten"] = nn.Flatten()
        parts["fc"] = nn.Linear(channels, num_classes)
        super().__init__(parts)
        self.out_channels = channels
        _init_weights(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Residual) and isinstance(getattr(m, "bn2", None),
                                                          (nn.BatchNorm2d, nn.GroupNorm)):
                    nn.init.zeros_(m.bn2.weight)


def cifar_resnet(depth: int = 20, **kwargs) -> CifarResNet:
    """ResNet-``depth`` for CIFAR, ``depth = 6n + 2`` (20, 32, 44, 56, 110 or any other 6n + 2)."""
    if depth in CIFAR_RESNET_CONFIGS:
        n = CIFAR_RESNET_CONFIGS[depth]
    elif isinstance(depth, int) and depth >= 8 and (depth - 2) % 6 == 0:
        n = (depth - 2) // 6
    else:
        raise ValueError(f"a CIFAR ResNet has 6n + 2 layers (20, 32, 44, 56, 110, ...), got {depth}")
    return CifarResNet(n, **kwargs)


def resnet20(**kwargs) -> CifarResNet:
    """ResNet-20: 3 blocks per stage; 0.27 M parameters, about 41 M multiply-adds at 32 px."""
    return cifar_resnet(20, **kwargs)


def resnet32(**kwargs) -> CifarResNet:
    """ResNet-32: 5 blocks per stage; 0.46 M parameters."""
    return cifar_resnet(32, **kwargs)


def resnet44(**kwargs) -> CifarResNet:
    """ResNet-44: 7 blocks per stage; 0.66 M parameters."""
    return cifar_resnet(44, **kwargs)


def resnet56(**kwargs) -> CifarResNet:
    """ResNet-56: 9 blocks per stage; 0.85 M parameters, about 125 M multiply-adds."""
    return cifar_resnet(56, **kwargs)


def resnet110(**kwargs) -> CifarResNet:
    """ResNet-110: 18 blocks per stage; 1.7 M parameters."""
    return cifar_resnet(110, **kwargs)


# ---------------------------------------------------------------------------------------
# The fast ResNet-9 of the CIFAR-10 speed runs


class ConvBNReLU(nn.Sequential):
    """3x3 conv (no bias) -> batch norm -> ReLU, optionally followed by a 2x2 max-pool."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool = False):
        layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                             bn=nn.BatchNorm2d(out_channels), relu=nn.ReLU(inplace=True))
        if pool:
            layers["pool"] = nn.MaxPool2d(2)
        super().__init__(layers)


class ResidualPair(nn.Module):
    """``x + relu(bn(conv(relu(bn(conv(x))))))``: ResNet-9's residual layer (Page's order: the
    ReLU before the addition, none after it)."""

    def __init__(self, channels: int):
        super().__init__()
        self.res1 = ConvBNReLU(channels, channels)
        self.res2 = ConvBNReLU(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res2(self.res1(x))


class Scale(nn.Module):
    """Multiply by a constant (ResNet-9 scales its logits by 0.125)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class ResNet9(NamedSequential):
    """prep -> layer1 (+ residual) -> layer2 -> layer3 (+ residual) -> max-pool -> fc -> x0.125.

    ``widths`` = channels of prep and the three layers (Page: 64, 128, 256, 512); each
    layer is conv-BN-ReLU then a 2x2 max-pool (32 -> 16 -> 8 -> 4 px). ``residual_layers``
    says which layers get a ``ResidualPair`` after them. ``scale`` multiplies the logits
    (a small scale makes the initial softmax nearly uniform and acts like a lower learning
    rate for the classifier). BN weights start at 1 and biases at 0; convs keep PyTorch's
    default (Kaiming-uniform) initialisation, as in Page's code.
    """

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512), num_classes: int = 10,
                 in_channels: int = 3, residual_layers: Sequence[int] = (1, 3),
                 scale: float = 0.125):
        widths = list(widths)
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"widths needs four positive channel counts, got {widths}")
        if not set(residual_layers) <= {1, 2, 3}:
            raise ValueError(f"residual_layers must be a subset of (1, 2, 3), got {residual_layers}")
        parts: OrderedDict[str, nn.Module] = OrderedDict(prep=ConvBNReLU(in_channels, widths[0]))
        for i in (1, 2, 3):
            layer = OrderedDict(down=ConvBNReLU(widths[i - 1], widths[i], pool=True))
            if i in residual_layers:
                layer["residual"] = ResidualPair(widths[i])
            parts[f"layer{i}"] = nn.Sequential(layer)
        parts["pool"] = nn.AdaptiveMaxPool2d(1)
        parts["flatten"] = nn.Flatten()
        parts["fc"] = nn.Linear(widths[3], num_classes, bias=False)
        parts["scale"] = Scale(scale)
        super().__init__(parts)
        self.out_channels = widths[3]


def resnet9(widths: Sequence[int] = (64, 128, 256, 512), **kwargs) -> ResNet9:
    """Page's ResNet-9 (64-128-256-512 channels, 6.57 M parameters) or a narrower one."""
    return ResNet9(widths, **kwargs)
