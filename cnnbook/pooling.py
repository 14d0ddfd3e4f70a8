"""Pooling layers beyond max and average, as plain ``nn.Module``s (chapter 03).

* ``StochasticPool2d`` (Zeiler & Fergus, 2013): in training, each window outputs one of
  its values, drawn with probability proportional to the value; at test time the
  probability-weighted mean ``sum(a^2) / sum(a)``. A regulariser with no parameters.
* ``MixedPool2d``: max and average pooling side by side, fused by a learned 1x1 convolution.
* ``LearnablePool2d``: a depthwise convolution with stride, one learned k x k kernel per
  channel; initialised to ``1/k^2`` it *is* average pooling, and training may move away.
* ``AttentionPool2d``: a 1x1 convolution and a sigmoid score every position, the features
  are weighted by that map, then pooled (not CLIP's attention pooling, which uses
  multi-head attention).
* ``adaptive_bins``: the windows ``nn.AdaptiveAvgPool2d`` averages over, per dimension.

Each layer keeps the channel count and shrinks the map like ``nn.MaxPool2d(k, stride)``
(no padding): side ``floor((n - k) / stride) + 1``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["StochasticPool2d", "MixedPool2d", "LearnablePool2d", "AttentionPool2d",
           "adaptive_bins", "POOLING_LAYERS"]


def _check_window(kernel_size: int, stride: int | None) -> tuple[int, int]:
    stride = kernel_size if stride is None else stride
    if kernel_size < 1 or stride < 1:
        raise ValueError(f"kernel_size and stride must be positive, got {kernel_size}, {stride}")
    return kernel_size, stride


def adaptive_bins(in_size: int, out_size: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` windows adaptive pooling uses to map ``in_size`` cells to ``out_size``.

    Bin ``i`` runs from ``floor(i * n / m)`` to ``ceil((i + 1) * n / m)``, PyTorch's rule:
    the bins cover the input, have nearly equal lengths and may overlap by one cell.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}")
    return [((i * in_size) // out_size, -((-(i + 1) * in_size) // out_size))
            for i in range(out_size)]


class StochasticPool2d(nn.Module):
    """Stochastic pooling: sample a value per window in training, its expectation in eval.

    The inputs must be non-negative (the layer follows a ReLU), so that ``a / sum(a)`` over
    a window is a probability. A window of zeros outputs zero. Pass a ``torch.Generator``
    to make the draws repeatable without touching the global random state.
    """

    def __init__(self, kernel_size: int = 2, stride: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.kernel_size, self.stride = _check_window(kernel_size, stride)
        self.generator = generator

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def _windows(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(N, C, H, W) -> windows (N*C*L, k*k) and the output shape (N, C, H', W')."""
        if x.dim() != 4:
            raise ValueError(f"expected a batch of maps (N, C, H, W), got shape {tuple(x.shape)}")
        n, c, h, w = x.shape
        k, s = self.kernel_size, self.stride
        if h < k or w < k:
            raise ValueError(f"a {h}x{w} map is smaller than the {k}x{k} window")
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
        cols = F.unfold(x.reshape(n * c, 1, h, w), k, stride=s)  # (N*C, k*k, L)
        return cols.transpose(1, 2).reshape(-1, k * k), (n, c, oh, ow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, shape = self._windows(x)
        if bool((a < 0).any()):
            raise ValueError("stochastic pooling needs non-negative inputs: put it after a ReLU")
        total = a.sum(dim=1, keepdim=True)
        if not self.training:
            out = (a * a).sum(dim=1, keepdim=True) / total.clamp_min(torch.finfo(a.dtype).tiny)
            return out.reshape(shape)
        # inverse-CDF sampling: the first index whose running sum reaches u * (last sum).
        # u = 1 - rand lies in (0, 1], so u * last > 0 (a leading zero is never drawn: rand
        # returns 0 often in half precision) and u * last <= last (the index stays in range).
        device = a.device if self.generator is None else self.generator.device
        u = 1 - torch.rand(total.shape, generator=self.generator, dtype=a.dtype,
                           device=device).to(a.device)
        cum = a.cumsum(dim=1)
        idx = (cum < u * cum[:, -1:]).sum(dim=1, keepdim=True)
        return a.gather(1, idx).reshape(shape)


class MixedPool2d(nn.Module):
    """Max and average pooling concatenated (2C channels), fused back to C by a 1x1 conv.

    The network learns per channel how much of the peak and how much of the mean to keep.
    """

    def __init__(self, channels: int, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        self.kernel_size, self.stride = _check_window(kernel_size, stride)
        self.fuse = nn.Conv2d(2 * channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride
        both = torch.cat([F.max_pool2d(x, k, s), F.avg_pool2d(x, k, s)], dim=1)
        return self.fuse(both)


class LearnablePool2d(nn.Module):
    """A depthwise k x k convolution with stride: pooling whose weights are learned.

    Starts as average pooling (every weight ``1/k^2``, no bias), so swapping it in for
    ``nn.AvgPool2d`` changes nothing until training moves the weights.
    """

    def __init__(self, channels: int, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        kernel_size, stride = _check_window(kernel_size, stride)
        self.conv = nn.Conv2d(channels, channels, kernel_size, stride=stride,
                              groups=channels, bias=False)
        nn.init.constant_(self.conv.weight, 1.0 / kernel_size ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class AttentionPool2d(nn.Module):
    """Weight the features by a sigmoid map from a 1x1 conv (C -> 1), then pool.

    ``mode`` is ``"avg"`` or ``"max"``. The map ``sigmoid(w . x + b)`` lies in (0, 1): the
    layer learns where to look before it summarises a window.
    """

    def __init__(self, channels: int, kernel_size: int = 2, stride: int | None = None,
                 mode: str = "avg"):
        super().__init__()
        if mode not in ("avg", "max"):
            raise ValueError(f"mode must be 'avg' or 'max', got {mode!r}")
        self.kernel_size, self.stride = _check_window(kernel_size, stride)
        self.mode = mode
        self.score = nn.Conv2d(channels, 1, kernel_size=1)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The weight map (N, 1, H, W), each value in (0, 1)."""
        return torch.sigmoid(self.score(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.avg_pool2d if self.mode == "avg" else F.max_pool2d
        return pool(x * self.attention(x), self.kernel_size, self.stride)


#: name -> factory ``f(channels, kernel_size, stride)``, for experiments that swap the pooling.
POOLING_LAYERS = {
    "max": lambda c, k=2, s=None: nn.MaxPool2d(k, s),
    "avg": lambda c, k=2, s=None: nn.AvgPool2d(k, s),
    "stochastic": lambda c, k=2, s=None: StochasticPool2d(k, s),
    "mixed": lambda c, k=2, s=None: MixedPool2d(c, k, s),
    "learnable": lambda c, k=2, s=None: LearnablePool2d(c, k, s),
    "attention": lambda c, k=2, s=None: AttentionPool2d(c, k, s),
}
