"""LeNet-5 (LeCun et al., AT&T Bell Labs, 1989-1998) and a modern variant of it.

The first convolutional network put to work (reading ZIP codes and cheques), in the form
d2l teaches: two convolution stages, then three fully connected layers.

* ``conv_stage``: 5x5 convolution -> (batch norm) -> activation -> 2x2 pooling, the unit
  LeNet stacks twice (6 then 16 channels).
* ``LeNet5``: ``stage1``, ``stage2``, flatten, ``fc1`` (400 -> 120), ``fc2`` (120 -> 84),
  ``fc3`` (84 -> classes); configurable in input channels, classes, width and image size.
* ``lenet5``: as published, with d2l's simplifications: sigmoid, average pooling, padding
  2 on the first convolution so that 28x28 images play the role of the paper's 32x32
  input. The 1998 network also scaled its tanh (1.7159 tanh(2x/3)), learned a coefficient
  and a bias in each subsampling layer, wired C3 to chosen subsets of S2's maps and ended
  in a layer of Gaussian (RBF) units; like d2l we keep the shapes and drop those details.
* ``lenet5_modern``: the same shapes with the habits of the 2010s: ReLU, max pooling and
  batch norm after every convolution and hidden fully connected layer.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from torch import nn

__all__ = ["conv_stage", "LeNet5", "lenet5", "lenet5_modern", "ACTIVATIONS", "POOLS"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
POOLS: dict[str, Callable[[], nn.Module]] = {
    "avg": lambda: nn.AvgPool2d(kernel_size=2, stride=2),
    "max": lambda: nn.MaxPool2d(kernel_size=2, stride=2)}


def _choice(table: dict, key: str, what: str):
    try:
        return table[key]
    except KeyError:
        raise ValueError(f"unknown {what} {key!r}; choose one of {', '.join(table)}") from None


def conv_stage(in_channels: int, out_channels: int, padding: int = 0,
               activation: str = "sigmoid", pool: str = "avg",
               batch_norm: bool = False) -> nn.Sequential:
    """One LeNet stage: 5x5 conv -> [BN] -> activation -> 2x2 pool (stride 2).

    Without padding the conv trims 4 pixels, the pool halves what is left. With batch norm
    the conv has no bias (BN's shift replaces it).
    """
    act, pooling = _choice(ACTIVATIONS, activation, "activation"), _choice(POOLS, pool, "pool")
    layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, 5, padding=padding,
                                        bias=not batch_norm))
    if batch_norm:
        layers["bn"] = nn.BatchNorm2d(out_channels)
    layers["act"] = act()
    layers["pool"] = pooling()
    return nn.Sequential(layers)


def _dense(in_features: int, out_features: int, activation: str, batch_norm: bool) -> nn.Sequential:
    layers = OrderedDict(linear=nn.Linear(in_features, out_features, bias=not batch_norm))
    if batch_norm:
        layers["bn"] = nn.BatchNorm1d(out_features)
    layers["act"] = _choice(ACTIVATIONS, activation, "activation")()
    return nn.Sequential(layers)


class LeNet5(nn.Sequential):
    """stage1 (6 ch) -> stage2 (16 ch) -> flatten -> fc1 (120) -> fc2 (84) -> fc3 (classes).

    ``width_mult`` scales all four widths (6, 16, 120, 84). ``image_size`` sizes ``fc1``:
    the first conv keeps the size (padding 2), the pools halve it and the second conv trims
    4 pixels, so 28 px gives 16 maps of 5x5 = 400 features, as in the paper.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width_mult: float = 1.0,
                 image_size: int = 28, activation: str = "sigmoid", pool: str = "avg",
                 batch_norm: bool = False):
        if min(in_channels, num_classes, image_size) < 1:
            raise ValueError("in_channels, num_classes and image_size must be positive")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        c1, c2, h1, h2 = (max(1, round(c * width_mult)) for c in (6, 16, 120, 84))
        side = (image_size // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"a {image_size} px image is too small for LeNet: it needs at "
                             "least 12 px (conv 5x5 after a 2x2 pool)")
        kw = dict(activation=activation, batch_norm=batch_norm)
        super().__init__(OrderedDict(
            stage1=conv_stage(in_channels, c1, padding=2, pool=pool, **kw),
            stage2=conv_stage(c1, c2, pool=pool, **kw),
            flatten=nn.Flatten(),
            fc1=_dense(c2 * side * side, h1, **kw),
            fc2=_dense(h1, h2, **kw),
            fc3=nn.Linear(h2, num_classes)))
        self.feature_side = side


def lenet5(**kwargs) -> LeNet5:
    """LeNet-5 as d2l teaches it: sigmoid, average pooling, 61,706 parameters at 28 px."""
    return LeNet5(**kwargs)


def lenet5_modern(**kwargs) -> LeNet5:
    """LeNet-5's shapes with ReLU, max pooling and batch norm (no bias before a BN)."""
    kwargs.setdefault("activation", "relu")
    kwargs.setdefault("pool", "max")
    kwargs.setdefault("batch_norm", True)
    return LeNet5(**kwargs)
