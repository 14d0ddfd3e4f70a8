"""A small CIFAR ResNet with the model-level regularisers as switches, for chapter 16's ablation.

Built from ``cnnbook.models.resnet``'s basic block (``Residual``): ``RegResidual`` adds
stochastic depth on the residual branch (before the addition) and DropBlock on the block's
output. ``small_resnet`` stacks them in three stages (widths 16-32-64 by default, the
layout of He et al.'s CIFAR ResNets: ``blocks=(3, 3, 3)`` is ResNet-20) with optional
dropout before the classifier. With every switch at 0 it is a plain ResNet.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from cnnbook.models._sequential import NamedSequential
from cnnbook.models.resnet import Residual, resnet_stem
from cnnbook.regularization.dropblock import DropBlock2d
from cnnbook.regularization.stochastic_depth import StochasticDepth, linear_drop_rates

__all__ = ["RegResidual", "small_resnet"]


class RegResidual(Residual):
    """``relu(shortcut(x) + SD(F(x)))`` followed by DropBlock, where ``F`` is the basic
    block's conv-BN-ReLU-conv-BN branch and ``SD`` stochastic depth (per sample)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 drop_path: float = 0.0, drop_block: float = 0.0, block_size: int = 3):
        super().__init__(in_channels, channels, stride)
        self.drop_path = StochasticDepth(drop_path, "row") if drop_path else nn.Identity()
        self.drop_block = DropBlock2d(drop_block, block_size) if drop_block else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.drop_path(self.bn2(self.conv2(y)))
        y = self.relu(y + (x if self.shortcut is None else self.shortcut(x)))
        return self.drop_block(y)


def small_resnet(blocks: Sequence[int] = (1, 1, 1), widths: Sequence[int] = (16, 32, 64),
                 num_classes: int = 10, dropout: float = 0.0, drop_block: float = 0.0,
                 block_size: int = 3, drop_block_stages: Sequence[int] = (2, 3),
                 stochastic_depth: float = 0.0) -> NamedSequential:
    """A CIFAR ResNet: 3x3 stem, stages of ``RegResidual`` blocks (stride 2 from stage 2),
    global average pool, [dropout], linear classifier.

    ``drop_block`` is the DropBlock rate of the blocks in ``drop_block_stages`` (the paper
    uses the last stages, where the maps are small and the features semantic);
    ``stochastic_depth`` is the drop rate of the last block, earlier ones get linearly less
    (``linear_drop_rates``); ``dropout`` is ordinary dropout before the classifier.
    """
    if len(blocks) != len(widths) or not blocks:
        raise ValueError("blocks and widths must give one entry per stage")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    rates = linear_drop_rates(sum(blocks), stochastic_depth)
    parts: OrderedDict[str, nn.Module] = OrderedDict(
        stem=resnet_stem(3, widths[0], small_input=True))
    channels, k = widths[0], 0
    for s, (width, n) in enumerate(zip(widths, blocks), start=1):
        stage = []
        for i in range(n):
            stage.append(RegResidual(channels, width, 2 if (s > 1 and i == 0) else 1,
                                     drop_path=rates[k],
                                     drop_block=drop_block if s in drop_block_stages else 0.0,
                                     block_size=block_size))
            channels, k = width, k + 1
        parts[f"stage{s}"] = nn.Sequential(*stage)
    parts["pool"] = nn.AdaptiveAvgPool2d(1)
    parts["flatten"] = nn.Flatten()
    if dropout:
        parts["dropout"] = nn.Dropout(dropout)
    parts["fc"] = nn.Linear(channels, num_classes)
    model = NamedSequential(parts)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model
