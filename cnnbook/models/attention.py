"""Attention inside a CNN: squeeze-and-excitation, CBAM, and a residual block that uses them.

A convolution sees a small window; attention lets a layer rescale its own feature map
using a summary of the *whole* map, computed from the map itself.

* ``SqueezeExcite`` (Hu et al., 2018, SENet): squeeze each channel to one number (global
  average pool), "excite" with a two-layer MLP (reduction 16, ReLU, sigmoid), and multiply
  every channel by its gate in (0, 1). The MLP is written as two 1x1 convolutions, which is
  the same as two fully connected layers on the pooled vector.
* ``ChannelAttention`` (Woo et al., 2018, CBAM): like SE, but the average-pooled *and* the
  max-pooled descriptor go through one shared MLP (reduction 16); the two outputs are summed
  before the sigmoid.
* ``SpatialAttention`` (CBAM): at every position, the mean and the max over the channels
  (two maps) are concatenated and a 7x7 convolution turns them into one map, then a sigmoid:
  a weight in (0, 1) per position, shared by all channels.
* ``CBAM``: channel attention, then spatial attention, in that order (the paper's best).
* ``AttentionResidual``: ResNet's basic block (``cnnbook.models.resnet.Residual``) with the
  attention module applied to the residual branch *before* the shortcut is added, as both
  papers place it; ``attention_factory`` builds modules for ``CifarResNet(attention=...)``.

Each attention module keeps its gate as a named ``nn.Sigmoid`` submodule (``gate``), so a
forward hook (``cnnbook.inspect.capture``) reads the attention weights; ``weights(x)``
returns them directly.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from cnnbook.models.resnet import Residual

__all__ = ["SqueezeExcite", "ChannelAttention", "SpatialAttention", "CBAM", "AttentionResidual",
           "ATTENTIONS", "attention_factory", "hidden_channels"]


def hidden_channels(channels: int, reduction: int) -> int:
    """Width of the bottleneck MLP: ``channels // reduction``, at least 1."""
    if channels < 1 or reduction < 1:
        raise ValueError(f"channels and reduction must be positive, got {channels}, {reduction}")
    return max(1, channels // reduction)


def _mlp(channels: int, reduction: int) -> nn.Sequential:
    hidden = hidden_channels(channels, reduction)
    return nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, channels, 1))


class SqueezeExcite(nn.Module):
    """SE block: ``x * sigmoid(W2 relu(W1 avgpool(x)))``, one gate per channel."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mlp = _mlp(channels, reduction)
        self.gate = nn.Sigmoid()

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel gates, shape (N, C, 1, 1), each in (0, 1)."""
        return self.gate(self.mlp(self.pool(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class ChannelAttention(nn.Module):
    """CBAM's channel attention: ``sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))``, one MLP."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.mlp = _mlp(channels, reduction)  # shared by both descriptors
        self.gate = nn.Sigmoid()

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel gates, shape (N, C, 1, 1), each in (0, 1)."""
        return self.gate(self.mlp(self.avg_pool(x)) + self.mlp(self.max_pool(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class SpatialAttention(nn.Module):
    """CBAM's spatial attention: ``sigmoid(conv7x7([mean_c(x); max_c(x)]))``, one weight per
    position. (The authors' code also puts a batch norm after the conv; the paper does not.)"""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive (to keep the size), got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        self.gate = nn.Sigmoid()

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial attention map, shape (N, 1, H, W), each value in (0, 1)."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return self.gate(self.conv(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel attention, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


ATTENTIONS = (None, "se", "cbam", "channel", "spatial")


def attention_factory(kind: str | None, reduction: int = 16,
                      kernel_size: int = 7) -> Callable[[int], nn.Module] | None:
    """``channels -> module`` for ``kind`` ("se", "cbam", "channel", "spatial"), or None for
    no attention; the form ``CifarResNet(attention=...)`` and ``AttentionResidual`` take."""
    if kind is None:
        return None
    makers = {"se": lambda c: SqueezeExcite(c, reduction),
              "cbam": lambda c: CBAM(c, reduction, kernel_size),
              "channel": lambda c: ChannelAttention(c, reduction),
              "spatial": lambda c: SpatialAttention(kernel_size)}
    if kind not in makers:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {kind!r}")
    return makers[kind]


class AttentionResidual(Residual):
    """ResNet's basic block with attention on the residual branch, before the addition:
    ``relu(attention(bn2(conv2(relu(bn1(conv1(x)))))) + shortcut(x))``.

    ``attention`` is a kind ("cbam" by default, "se", ...) or a ``channels -> module``
    callable. The convs, norms and shortcut are ``Residual``'s; only the forward differs.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 use_1x1conv: bool | None = None, attention="cbam", reduction: int = 16):
        super().__init__(in_channels, channels, stride, use_1x1conv)
        make = attention if callable(attention) else attention_factory(attention, reduction)
        self.attention = make(channels) if make is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.attention(self.bn2(self.conv2(y)))
        return self.relu(y + (x if self.shortcut is None else self.shortcut(x)))
