"""VGG: networks built from repeated blocks of 3x3 convolutions (Simonyan and Zisserman, 2014).

The design unit is the *block*: ``vgg_block(n, c_in, c_out)`` stacks n 3x3 convolutions
(padding 1, so the size is kept) with ReLUs, then a 2x2 max-pool halves the resolution.
A network is a table of ``(number of convs, output channels)`` rows, d2l's ``conv_arch``,
followed by three fully connected layers (4096, 4096, classes) with dropout.

``VGG_CONFIGS`` holds the paper's six configurations A, A-LRN, B, C, D and E (Table 1):
C puts a 1x1 convolution at the end of its last three blocks, A-LRN adds local response
normalisation after the first layer. With default settings A, B, D and E (and their batch
norm variants) have exactly torchvision's parameter counts for ``vgg11``, ``vgg13``,
``vgg16`` and ``vgg19``. Every network is configurable in width (``width_mult``; d2l's
course run uses 0.25, channels divided by 4), input channels, classes and batch norm.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import nn

from cnnbook.models._sequential import NamedSequential

__all__ = [
    "vgg_block", "VGG", "VGG11_ARCH", "VGG13_ARCH", "VGG16_ARCH", "VGG19_ARCH",
    "VGG_C_ARCH", "VGG_CONFIGS", "vgg_config", "vgg11", "vgg13", "vgg16", "vgg19",
    "vgg_fashion",
]

# (number of convs, output channels[, kernel size of each conv]) per block: d2l's conv_arch.
VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))        # configuration A
VGG13_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512))        # B
VGG16_ARCH = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))        # D
VGG19_ARCH = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))        # E
# C: 16 layers like D, but the third conv of the last three blocks is 1x1 instead of 3x3.
VGG_C_ARCH = ((2, 64), (2, 128), (3, 256, (3, 3, 1)), (3, 512, (3, 3, 1)), (3, 512, (3, 3, 1)))

# The paper's Table 1: name -> keyword arguments of ``VGG``.
VGG_CONFIGS = {
    "A": dict(arch=VGG11_ARCH),
    "A-LRN": dict(arch=VGG11_ARCH, lrn=True),
    "B": dict(arch=VGG13_ARCH),
    "C": dict(arch=VGG_C_ARCH),
    "D": dict(arch=VGG16_ARCH),
    "E": dict(arch=VGG19_ARCH),
}


def vgg_block(num_convs: int, in_channels: int, out_channels: int,
              kernel_sizes: Sequence[int] | None = None, batch_norm: bool = False,
              lrn: bool = False, ceil_mode: bool = False) -> nn.Sequential:
    """``num_convs`` convolutions (3x3, padding 1) each followed by a ReLU, then 2x2 max-pool.

    The convolutions keep the height and width; the pool halves them. ``kernel_sizes``
    changes single kernels (configuration C uses a 1x1 last); ``batch_norm`` puts a BN
    between each conv and its ReLU; ``lrn`` adds AlexNet's local response normalisation
    after the first ReLU (configuration A-LRN); ``ceil_mode`` rounds odd sizes up in the
    pool, so that five blocks still fit a 28x28 image (28-14-7-4-2-1).
    """
    if num_convs < 1:
        raise ValueError(f"a VGG block needs at least one convolution, got num_convs={num_convs}")
    if in_channels < 1 or out_channels < 1:
        raise ValueError(f"channel counts must be positive, got {in_channels} -> {out_channels}")
    kernel_sizes = tuple(kernel_sizes) if kernel_sizes is not None else (3,) * num_convs
    if len(kernel_sizes) != num_convs or any(k % 2 == 0 or k < 1 for k in kernel_sizes):
        raise ValueError(f"kernel_sizes must give one odd size per conv ({num_convs}), "
                         f"got {kernel_sizes}")
    layers = OrderedDict()
    for i, k in enumerate(kernel_sizes, 1):
        layers[f"conv{i}"] = nn.Conv2d(in_channels, out_channels, k, padding=k // 2)
        if batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm2d(out_channels)
        layers[f"relu{i}"] = nn.ReLU()
        if lrn and i == 1:
            # AlexNet's constants (Krizhevsky et al. 2012), which the VGG paper reused.
            layers["lrn"] = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        in_channels = out_channels
    layers["pool"] = nn.MaxPool2d(2, stride=2, ceil_mode=ceil_mode)
    return nn.Sequential(layers)


def _scaled(channels: int, width_mult: float) -> int:
    return max(1, int(round(channels * width_mult)))


class VGG(NamedSequential):
    """VGG: ``block1 ... blockN`` from ``arch``, adaptive average pool, flatten, classifier.

    The classifier is FC ``fc_units`` -> ReLU -> dropout, twice, then FC to the classes.
    ``pool_size`` is the side of the map the classifier sees: torchvision pools to 7x7
    (the size a 224x224 image reaches, so there the pool does nothing); use 1 for small
    inputs, whose last map is 1x1. ``width_mult`` scales every conv's channels (not the
    FC layers, as in d2l). Being a ``nn.Sequential``, it works with d2l's shape loop.
    """

    def __init__(self, arch: Sequence[tuple] = VGG11_ARCH, num_classes: int = 1000,
                 in_channels: int = 3, width_mult: float = 1.0, batch_norm: bool = False,
                 lrn: bool = False, fc_units: int = 4096, dropout: float = 0.5,
                 pool_size: int = 7, ceil_mode: bool = False, init: bool = True):
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if not arch:
            raise ValueError("arch needs at least one (num_convs, out_channels) block")
        if num_classes < 1 or in_channels < 1 or fc_units < 1 or pool_size < 1:
            raise ValueError("num_classes, in_channels, fc_units and pool_size must be positive")
        layers = OrderedDict()
        channels = in_channels
        for i, row in enumerate(arch, 1):
            if len(row) not in (2, 3):
                raise ValueError(f"arch rows are (num_convs, out_channels[, kernel_sizes]), got {row}")
            num_convs, out = row[0], _scaled(row[1], width_mult)
            layers[f"block{i}"] = vgg_block(num_convs, channels, out,
                                            row[2] if len(row) == 3 else None,
                                            batch_norm=batch_norm, lrn=lrn and i == 1,
                                            ceil_mode=ceil_mode)
            channels = out
        layers["pool"] = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        layers["flatten"] = nn.Flatten()
        layers["classifier"] = nn.Sequential(OrderedDict(
            fc1=nn.Linear(channels * pool_size * pool_size, fc_units), relu1=nn.ReLU(),
            dropout1=nn.Dropout(dropout),
            fc2=nn.Linear(fc_units, fc_units), relu2=nn.ReLU(),
            dropout2=nn.Dropout(dropout),
            fc3=nn.Linear(fc_units, num_classes)))
        super().__init__(layers)
        if init:
            _init_weights(self)


def _init_weights(model: nn.Module) -> None:
    """torchvision's initialisation: Kaiming (fan_out) convs, BN 1/0, linears N(0, 0.01)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------- builders
def vgg_config(name: str, **kwargs) -> VGG:
    """One of the paper's configurations "A", "A-LRN", "B", "C", "D", "E" (Table 1)."""
    try:
        config = VGG_CONFIGS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown VGG configuration {name!r}; "
                         f"choose one of {', '.join(VGG_CONFIGS)}") from None
    return VGG(**{**config, **kwargs})


def vgg11(batch_norm: bool = False, **kwargs) -> VGG:
    """VGG-11 (configuration A); the parameter count of torchvision's ``vgg11``/``vgg11_bn``."""
    return VGG(VGG11_ARCH, batch_norm=batch_norm, **kwargs)


def vgg13(batch_norm: bool = False, **kwargs) -> VGG:
    """VGG-13 (configuration B); the parameter count of torchvision's ``vgg13``/``vgg13_bn``."""
    return VGG(VGG13_ARCH, batch_norm=batch_norm, **kwargs)


def vgg16(batch_norm: bool = False, **kwargs) -> VGG:
    """VGG-16 (configuration D); the parameter count of torchvision's ``vgg16``/``vgg16_bn``."""
    return VGG(VGG16_ARCH, batch_norm=batch_norm, **kwargs)


def vgg19(batch_norm: bool = False, **kwargs) -> VGG:
    """VGG-19 (configuration E); the parameter count of torchvision's ``vgg19``/``vgg19_bn``."""
    return VGG(VGG19_ARCH, batch_norm=batch_norm, **kwargs)


def vgg_fashion(arch: Sequence[tuple] = VGG11_ARCH, width_mult: float = 0.25,
                small_input: bool = False, **kwargs) -> VGG:
    """The course's Fashion-MNIST VGG: one grey input channel, 10 classes, d2l's width 1/4.

    At 224 px (d2l's setting) the last map is 7x7, as in the paper. ``small_input=True``
    is for native 28x28 images: the pools round up (28-14-7-4-2-1) and the classifier
    reads the final 1x1 map.
    """
    kwargs.setdefault("num_classes", 10)
    kwargs.setdefault("in_channels", 1)
    if small_input:
        kwargs.setdefault("ceil_mode", True)
        kwargs.setdefault("pool_size", 1)
    return VGG(arch, width_mult=width_mult, **kwargs)
