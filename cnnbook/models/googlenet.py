"""GoogLeNet (Inception v1): width through parallel paths (Szegedy et al., 2014/2015).

The ``Inception`` block runs four paths side by side on the same input and concatenates
their outputs on the channel axis:

1. a 1x1 convolution;
2. a 1x1 convolution (fewer channels: the "reduction") then a 3x3 convolution;
3. a 1x1 reduction then a 5x5 convolution;
4. a 3x3 max-pool (stride 1) then a 1x1 convolution ("pool projection").

so ``Inception(192, 64, (96, 128), (16, 32), 32)`` outputs 64 + 128 + 32 + 32 = 256
channels. The network (d2l's stages ``b1`` ... ``b5``) is a stem of plain convolutions,
nine Inception blocks (2 in b3, 5 in b4, 2 in b5) with max-pools between the stages,
global average pooling and one linear layer. The paper's two auxiliary classifiers
(after blocks 4a and 4d, training only) are optional.

torchvision's ``googlenet`` differs from the paper in two ways, both available here:
each convolution is a "BasicConv2d" (conv without bias + batch norm + ReLU), and the
"5x5" path uses a 3x3 kernel (a bug kept for weight compatibility, pytorch/vision#906).
``googlenet_torchvision()`` has exactly its parameter count.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "conv_relu", "Inception", "InceptionAux", "GoogLeNet", "AuxLoss", "INCEPTION_STAGES",
    "googlenet", "googlenet_torchvision", "googlenet_fashion",
]

# One row per Inception block: (name, c1, (c2 reduce, c2), (c3 reduce, c3), c4), from
# Table 1 of the paper ("#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5", "pool proj").
# A max-pool 3/2 follows the last block of b3 and of b4.
INCEPTION_STAGES = OrderedDict(
    b3=(("3a", 64, (96, 128), (16, 32), 32),
        ("3b", 128, (128, 192), (32, 96), 64)),
    b4=(("4a", 192, (96, 208), (16, 48), 64),
        ("4b", 160, (112, 224), (24, 64), 64),
        ("4c", 128, (128, 256), (24, 64), 64),
        ("4d", 112, (144, 288), (32, 64), 64),
        ("4e", 256, (160, 320), (32, 128), 128)),
    b5=(("5a", 256, (160, 320), (32, 128), 128),
        ("5b", 384, (192, 384), (48, 128), 128)),
)
AUX_AFTER = ("4a", "4d")  # where the paper attaches its auxiliary classifiers


def conv_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
              padding: int = 0, batch_norm: bool = False) -> nn.Sequential:
    """Convolution + ReLU; with ``batch_norm`` torchvision's BasicConv2d (conv, no bias, BN, ReLU)."""
    layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                        bias=not batch_norm))
    if batch_norm:
        layers["bn"] = nn.BatchNorm2d(out_channels, eps=0.001)
    layers["relu"] = nn.ReLU()
    return nn.Sequential(layers)


class Inception(nn.Module):
    """Four parallel paths concatenated on channels: ``c1 + c2[1] + c3[1] + c4`` outputs.

    ``c2`` and ``c3`` are (reduction, output) pairs for the 3x3 and 5x5 paths; the 1x1
    reductions shrink the channels before the expensive kernels. ``branch3_kernel`` is 5
    in the paper (3 in torchvision); ``batch_norm`` uses conv + BN + ReLU everywhere.
    """

    def __init__(self, in_channels: int, c1: int, c2: Sequence[int], c3: Sequence[int], c4: int,
                 branch3_kernel: int = 5, batch_norm: bool = False):
        super().__init__()
        if len(c2) != 2 or len(c3) != 2:
            raise ValueError(f"c2 and c3 are (reduction, output) pairs, got c2={c2}, c3={c3}")
        if min(in_channels, c1, *c2, *c3, c4) < 1:
            raise ValueError(f"channel counts must be positive, got in={in_channels}, "
                             f"c1={c1}, c2={c2}, c3={c3}, c4={c4}")
        if branch3_kernel % 2 == 0:
            raise ValueError(f"branch3_kernel must be odd, got {branch3_kernel}")
        bn = batch_norm
        self.branch1 = conv_relu(in_channels, c1, 1, batch_norm=bn)
        self.branch2 = nn.Sequential(conv_relu(in_channels, c2[0], 1, batch_norm=bn),
                                     conv_relu(c2[0], c2[1], 3, padding=1, batch_norm=bn))
        self.branch3 = nn.Sequential(conv_relu(in_channels, c3[0], 1, batch_norm=bn),
                                     conv_relu(c3[0], c3[1], branch3_kernel,
                                               padding=branch3_kernel // 2, batch_norm=bn))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     conv_relu(in_channels, c4, 1, batch_norm=bn))
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)],
                         dim=1)


class InceptionAux(nn.Module):
    """The paper's auxiliary classifier: pool to 4x4, 1x1 conv 128, FC 1024, dropout 0.7, FC.

    The paper pools 5x5 with stride 3 (a 14x14 map becomes 4x4); an adaptive pool gives
    the same 4x4 for any input size, as in torchvision.
    """

    def __init__(self, in_channels: int, num_classes: int, width_mult: float = 1.0,
                 dropout: float = 0.7, batch_norm: bool = False):
        super().__init__()
        conv, hidden = _scaled(128, width_mult), _scaled(1024, width_mult)
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = conv_relu(in_channels, conv, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(conv * 16, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


def _scaled(channels: int, width_mult: float) -> int:
    return max(1, int(round(channels * width_mult)))


class GoogLeNet(nn.Module):
    """GoogLeNet as d2l's stages: ``b1`` (7x7 conv, pool), ``b2`` (1x1 and 3x3 convs, pool),
    ``b3``/``b4``/``b5`` (Inception blocks from ``INCEPTION_STAGES``), then ``head``
    (global average pool, dropout, linear).

    ``width_mult`` scales every channel count; ``small_input`` replaces the 7x7 stride-2
    stem conv by a 3x3 stride-1 one for native 28x28 images. With ``aux_logits`` the two
    auxiliary classifiers run in training mode only; their logits are kept in
    ``self.aux_outputs`` (``forward`` always returns the main logits, so ``fit`` and
    ``evaluate`` work unchanged) and ``AuxLoss`` adds them to the loss.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 branch3_kernel: int = 5, batch_norm: bool = False, aux_logits: bool = False,
                 small_input: bool = False, dropout: float = 0.0, aux_dropout: float = 0.7,
                 stages: dict = INCEPTION_STAGES):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be positive")
        w = lambda c: _scaled(c, width_mult)  # noqa: E731
        bn = batch_norm
        stem = (conv_relu(in_channels, w(64), 3, 1, 1, batch_norm=bn) if small_input
                else conv_relu(in_channels, w(64), 7, 2, 3, batch_norm=bn))
        self.b1 = nn.Sequential(OrderedDict(conv=stem, pool=nn.MaxPool2d(3, 2, padding=1)))
        self.b2 = nn.Sequential(OrderedDict(
            conv1=conv_relu(w(64), w(64), 1, batch_norm=bn),
            conv2=conv_relu(w(64), w(192), 3, padding=1, batch_norm=bn),
            pool=nn.MaxPool2d(3, 2, padding=1)))
        channels = w(192)
        self.aux = nn.ModuleDict()
        names = list(stages)
        for stage, rows in stages.items():
            blocks = OrderedDict()
            for name, c1, c2, c3, c4 in rows:
                block = Inception(channels, w(c1), (w(c2[0]), w(c2[1])), (w(c3[0]), w(c3[1])),
                                  w(c4), branch3_kernel=branch3_kernel, batch_norm=bn)
                blocks[f"inception{name}"] = block
                channels = block.out_channels
                if aux_logits and name in AUX_AFTER:
                    self.aux[f"inception{name}"] = InceptionAux(
                        channels, num_classes, width_mult, aux_dropout, batch_norm=bn)
            if stage != names[-1]:
                blocks["pool"] = nn.MaxPool2d(3, 2, padding=1)
            setattr(self, stage, nn.Sequential(blocks))
        self.stage_names = ("b1", "b2", *names)
        self.head = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(), dropout=nn.Dropout(dropout),
            fc=nn.Linear(channels, num_classes)))
        self.aux_outputs: tuple[torch.Tensor, ...] = ()
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        aux = []
        for stage in self.stage_names:
            for name, layer in getattr(self, stage).named_children():
                x = layer(x)
                if self.training and name in self.aux:
                    aux.append(self.aux[name](x))
        self.aux_outputs = tuple(aux)
        return self.head(x)

    def stages(self) -> nn.Sequential:
        """The same modules as one ``nn.Sequential`` (b1 ... b5, head), without aux heads:
        for d2l's shape loop and per-stage costs."""
        return nn.Sequential(OrderedDict(
            [(s, getattr(self, s)) for s in self.stage_names] + [("head", self.head)]))


def _init_weights(model: nn.Module) -> None:
    """Xavier-uniform convs and linears (d2l's choice for this network), zero biases, BN 1/0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class AuxLoss(nn.Module):
    """Cross-entropy of the main logits plus ``weight`` (0.3 in the paper) times that of
    each auxiliary classifier of ``model``, when it produced any (training mode)."""

    def __init__(self, model: GoogLeNet, weight: float = 0.3):
        super().__init__()
        self.model = [model]  # a list: not registered as a submodule
        self.weight = weight

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, y)
        model = self.model[0]
        if model.training:
            for aux in model.aux_outputs:
                loss = loss + self.weight * F.cross_entropy(aux, y)
        return loss


# ---------------------------------------------------------------- builders
def googlenet(width_mult: float = 1.0, **kwargs) -> GoogLeNet:
    """The paper's (and d2l's) GoogLeNet: plain conv + ReLU, a real 5x5 path, no aux heads."""
    return GoogLeNet(width_mult=width_mult, **kwargs)


def googlenet_torchvision(aux_logits: bool = False, **kwargs) -> GoogLeNet:
    """torchvision's variant: conv + BN + ReLU, a 3x3 kernel in the "5x5" path, dropout 0.2.

    Same parameter count as ``torchvision.models.googlenet(weights=None,
    aux_logits=aux_logits, init_weights=True)``.
    """
    kwargs.setdefault("dropout", 0.2)
    return GoogLeNet(batch_norm=True, branch3_kernel=3, aux_logits=aux_logits, **kwargs)


def googlenet_fashion(width_mult: float = 1.0, small_input: bool = False, **kwargs) -> GoogLeNet:
    """The course's Fashion-MNIST GoogLeNet: one grey input channel, 10 classes.

    d2l trains it at 96 px with the default stem; ``small_input=True`` is for 28x28.
    """
    kwargs.setdefault("num_classes", 10)
    kwargs.setdefault("in_channels", 1)
    return GoogLeNet(width_mult=width_mult, small_input=small_input, **kwargs)
