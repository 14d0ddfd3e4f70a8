"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012): the network that started the deep era.

Five convolutions and three fully connected layers, read from a configuration table:

* ``conv_layer``: convolution -> ReLU -> (local response normalisation) -> (overlapping
  3x3 max-pool with stride 2), the unit every row of the table describes. The activation
  can be swapped (``activation=nn.Sigmoid``) to measure what ReLU brought.
* ``AlexNet``: ``features`` (the five conv layers), an optional adaptive pool, flatten, and
  ``classifier``: FC -> ReLU -> dropout 0.5, twice, then FC to the classes.

Three configurations:

* ``alexnet_2012`` (``ALEXNET_2012``): as published, 96-256-384-384-256 kernels, LRN after
  the first two layers. ``two_towers=True`` reproduces the split over two GTX 580 GPUs:
  conv2, conv4 and conv5 see only the maps on their own GPU (``groups=2``), conv3 and the
  FC layers see both; that is 60,965,224 parameters, the paper's "60 million".
* ``alexnet`` (``ALEXNET_2014``): the single-tower variant of Krizhevsky's 2014 "one weird
  trick" paper that torchvision implements: 64-192-384-256-256 kernels, no LRN, an
  adaptive 6x6 pool; exactly torchvision's 61,100,840 parameters and 0.714 GMACs.
* ``alexnet_fashion``: d2l's Fashion-MNIST AlexNet (one grey channel, 10 classes, the 2012
  widths without LRN) at 224 px, or with a 5x5 stride-1 stem for native 28x28 images;
  ``width_mult`` shrinks it for CPUs.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

from torch import nn

__all__ = ["conv_layer", "AlexNet", "ALEXNET_2012", "ALEXNET_2014", "LRN_2012", "STEMS",
           "alexnet", "alexnet_2012", "alexnet_fashion", "feature_side"]

# (out_channels, kernel, stride, padding, groups when split over two GPUs, LRN, max-pool)
# per conv layer; the first row is the stem, which ``stem=`` may replace.
ALEXNET_2012 = (
    (96, 11, 4, 2, 1, True, True),    # conv1: both GPUs see the whole image (48 + 48 kernels)
    (256, 5, 1, 2, 2, True, True),    # conv2: each GPU's 128 kernels see its own 48 maps
    (384, 3, 1, 1, 1, False, False),  # conv3: the one conv layer that crosses GPUs
    (384, 3, 1, 1, 2, False, False),  # conv4
    (256, 3, 1, 1, 2, False, True),   # conv5
)
ALEXNET_2014 = (  # torchvision's alexnet: one tower, no LRN ("One weird trick", 2014)
    (64, 11, 4, 2, 1, False, True),
    (192, 5, 1, 2, 1, False, True),
    (384, 3, 1, 1, 1, False, False),
    (256, 3, 1, 1, 1, False, False),
    (256, 3, 1, 1, 1, False, True),
)
# The stem (kernel, stride, padding): ImageNet's 11x11 stride 4 at 224 px; d2l's variant
# with padding 1 (224 px -> a 5x5 last map); a 5x5 stride-1 stem for 28 px images (as
# LeNet's first layer: big enough to learn visible edge detectors, cheap at 28 px).
STEMS = {"imagenet": (11, 4, 2), "d2l": (11, 4, 1), "small": (5, 1, 2)}

# The paper's LRN: b = a / (k + alpha * sum of a^2 over n neighbouring maps)^beta with
# k=2, n=5, alpha=1e-4, beta=0.75. PyTorch divides alpha by n, so we pass n * 1e-4.
LRN_2012 = dict(size=5, alpha=5e-4, beta=0.75, k=2.0)


def conv_layer(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
               padding: int = 0, groups: int = 1, lrn: bool = False, pool: bool = False,
               activation: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """conv -> ReLU -> [LRN] -> [3x3 max-pool, stride 2], AlexNet's order (Section 3.5).

    ``groups=2`` is the two-GPU layout: each half of the kernels sees half of the maps.

    The pool windows overlap (3 > 2), which the paper found to overfit slightly less.
    """
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide both channel counts "
                         f"({in_channels} -> {out_channels})")
    layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                        padding, groups=groups),
                         act=activation())
    if lrn:
        layers["lrn"] = nn.LocalResponseNorm(**LRN_2012)
    if pool:
        layers["pool"] = nn.MaxPool2d(kernel_size=3, stride=2)
    return nn.Sequential(layers)


def feature_side(image_size: int, layers: Sequence[tuple]) -> int:
    """Side of the last feature map for a square input: ``floor((n + 2p - k) / s) + 1`` per
    conv, ``floor((n - 3) / 2) + 1`` per pool; below 1 the image is too small."""
    n = image_size
    for _, k, s, p, _, _, pool in layers:
        n = (n + 2 * p - k) // s + 1
        if n >= 1 and pool:
            n = (n - 3) // 2 + 1
        if n < 1:
            break
    return n


class AlexNet(nn.Sequential):
    """features (conv1..conv5) -> [adaptive pool] -> flatten -> classifier (fc1, fc2, fc3).

    ``layers`` is a table such as ``ALEXNET_2012``; ``activation`` (a module class, ReLU by
    default) follows every conv and hidden FC layer.

    ``width_mult`` scales the conv channels (rounded to even numbers with two towers),
    ``fc_units`` the hidden FC layers. ``stem`` picks the first conv ("imagenet", "d2l",
    "small"; see ``STEMS``). ``pool_size=6`` pools the last map to 6x6 as torchvision does
    (any input from 224 px up then gives the same classifier); ``pool_size=None``
    flattens the last map as it is, whose side ``image_size`` determines.
    """

    def __init__(self, layers: Sequence[tuple] = ALEXNET_2012, num_classes: int = 1000,
                 in_channels: int = 3, width_mult: float = 1.0, two_towers: bool = False,
                 lrn: bool = True, stem: str = "imagenet", image_size: int = 224,
                 pool_size: int | None = 6, fc_units: int = 4096, dropout: float = 0.5,
                 activation: Callable[[], nn.Module] = nn.ReLU):
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if min(num_classes, in_channels, fc_units, image_size) < 1:
            raise ValueError("num_classes, in_channels, fc_units and image_size must be positive")
        if pool_size is not None and pool_size < 1:
            raise ValueError(f"pool_size must be positive or None, got {pool_size}")
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; choose one of {', '.join(STEMS)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if len(layers) < 1 or any(len(row) != 7 for row in layers):
            raise ValueError("layers rows are (out, kernel, stride, padding, groups, lrn, pool)")
        layers = [(*row[:1], *STEMS[stem], *row[4:]) if i == 0 else tuple(row)
                  for i, row in enumerate(layers)]
        side = feature_side(image_size, layers)
        if side < 1:
            raise ValueError(f"a {image_size} px image is too small for this AlexNet (stem "
                             f"{stem!r}); use stem='small' for 28 px images")
        step = 2 if two_towers else 1
        features = OrderedDict()
        channels = in_channels
        for i, (c, k, s, p, g, use_lrn, pool) in enumerate(layers, 1):
            out = max(step, round(c * width_mult / step) * step)
            features[f"conv{i}"] = conv_layer(channels, out, k, s, p,
                                              groups=g if two_towers else 1,
                                              lrn=lrn and use_lrn, pool=pool,
                                              activation=activation)
            channels = out
        parts = OrderedDict(features=nn.Sequential(features))
        if pool_size is not None:
            parts["pool"] = nn.AdaptiveAvgPool2d((pool_size, pool_size))
            side = pool_size
        parts["flatten"] = nn.Flatten()
        parts["classifier"] = nn.Sequential(OrderedDict(
            fc1=nn.Linear(channels * side * side, fc_units), act1=activation(),
            dropout1=nn.Dropout(dropout),
            fc2=nn.Linear(fc_units, fc_units), act2=activation(),
            dropout2=nn.Dropout(dropout),
            fc3=nn.Linear(fc_units, num_classes)))
        super().__init__(parts)
        self.two_towers = two_towers


# ---------------------------------------------------------------- builders
def alexnet_2012(two_towers: bool = True, **kwargs) -> AlexNet:
    """AlexNet as published in 2012: LRN, and by default the two-GPU grouped layout."""
    return AlexNet(ALEXNET_2012, two_towers=two_towers, **kwargs)


def alexnet(**kwargs) -> AlexNet:
    """torchvision's single-tower AlexNet: 61,100,840 parameters for 1000 classes."""
    kwargs.setdefault("lrn", False)
    return AlexNet(ALEXNET_2014, **kwargs)


def alexnet_fashion(width_mult: float = 1.0, small_input: bool = False,
                    fc_units: int | None = None, **kwargs) -> AlexNet:
    """d2l's Fashion-MNIST AlexNet: 1 channel, 10 classes, 2012 widths, no LRN, one tower.

    At 224 px (``small_input=False``) it is exactly d2l's network: stem padding 1, a 5x5
    last map flattened into 6,400 features, 46,764,746 parameters. ``small_input=True``
    swaps the stem for a 5x5 stride-1 conv, so native 28 px images end in a 2x2 map.
    ``fc_units`` defaults to 4096 times ``width_mult``.
    """
    kwargs.setdefault("num_classes", 10)
    kwargs.setdefault("in_channels", 1)
    kwargs.setdefault("lrn", False)
    kwargs.setdefault("pool_size", None)
    kwargs.setdefault("image_size", 28 if small_input else 224)
    if fc_units is None:
        fc_units = max(1, round(4096 * width_mult))
    return AlexNet(ALEXNET_2012, width_mult=width_mult, stem="small" if small_input else "d2l",
                   fc_units=fc_units, **kwargs)
