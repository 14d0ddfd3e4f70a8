"""Batch normalisation written from scratch (Ioffe & Szegedy, 2015), and d2l's BN-LeNet.

* ``batch_norm``: the whole method as one pure function. In training it normalises each
  channel with the mean and variance of the current mini-batch and folds them into
  running averages; in evaluation it uses those running averages instead, so a
  prediction no longer depends on the other images in the batch. Then it scales by the
  learnable ``gamma`` and shifts by the learnable ``beta``.
* ``BatchNorm``: the layer around it (parameters, buffers, train/eval switch). With the
  same settings it computes exactly what ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` compute,
  down to PyTorch's detail that the *running* variance is updated with the unbiased
  batch variance (divided by n - 1) while the batch is normalised with the biased one.
* ``BNLeNet``: LeNet with a batch norm after every convolution and fully connected
  layer, before the sigmoid (d2l, section 8.5), with our ``BatchNorm`` (``norm="scratch"``),
  PyTorch's (``norm="torch"``) or none at all (``norm=None``, the plain network the
  chapter compares it with).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from cnnbook.models._sequential import NamedSequential

__all__ = ["batch_norm", "BatchNorm", "BNLeNet", "bn_lenet", "NORMS"]


def batch_norm(X: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
               running_mean: torch.Tensor | None, running_var: torch.Tensor | None, *,
               training: bool, momentum: float = 0.1, eps: float = 1e-5):
    """Normalise ``X`` per channel (dimension 1), then scale by ``gamma`` and shift by ``beta``.

    ``X`` is (N, C) after a linear layer, (N, C, L) or (N, C, H, W) after a convolution:
    the statistics of a channel are taken over every dimension except the channel one.
    Returns ``(Y, running_mean, running_var)``: in training the batch statistics are used
    and the running ones come back updated as
    ``running = (1 - momentum) * running + momentum * batch`` (PyTorch's convention); in
    evaluation the running statistics are used and come back unchanged. Without running
    statistics (``None``) the batch statistics are used in both modes.
    """
    if X.dim() not in (2, 3, 4):
        raise ValueError(f"batch_norm expects (N, C), (N, C, L) or (N, C, H, W) input, "
                         f"got shape {tuple(X.shape)}")
    shape = (1, X.shape[1]) + (1,) * (X.dim() - 2)   # broadcast a per-channel vector
    if training or running_mean is None:
        dims = [0, *range(2, X.dim())]                # all but the channel dimension
        n = X.numel() // X.shape[1]                   # values per channel in this batch
        if n < 2:
            raise ValueError(f"batch norm needs more than one value per channel to compute "
                             f"batch statistics, got input of shape {tuple(X.shape)}: use a "
                             "bigger batch, or call model.eval() to use the running statistics")
        mean = X.mean(dim=dims)
        var = ((X - mean.view(shape)) ** 2).mean(dim=dims)   # biased: divide by n
        if training and running_mean is not None:
            with torch.no_grad():
                running_mean = (1 - momentum) * running_mean + momentum * mean
                running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mean, var = running_mean, running_var
    X_hat = (X - mean.view(shape)) / torch.sqrt(var.view(shape) + eps)
    Y = X_hat if gamma is None else gamma.view(shape) * X_hat + beta.view(shape)
    return Y, running_mean, running_var


class BatchNorm(nn.Module):
    """Batch normalisation layer built on ``batch_norm``; the from-scratch twin of
    ``nn.BatchNorm1d`` (``num_dims=2`` or ``3``) and ``nn.BatchNorm2d`` (``num_dims=4``).

    ``gamma`` (scale, starts at 1) and ``beta`` (shift, starts at 0) are learned;
    ``running_mean`` / ``running_var`` are buffers: saved with the model, not trained.
    ``momentum=None`` makes the running statistics a plain average over all batches seen.
    """

    def __init__(self, num_features: int, num_dims: int = 4, eps: float = 1e-5,
                 momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__()
        if num_dims not in (2, 3, 4):
            raise ValueError(f"num_dims must be 2 or 3 (after a linear or 1-d conv layer) or 4 "
                             f"(after a 2-d conv layer), got {num_dims}")
        if num_features < 1:
            raise ValueError(f"num_features must be positive, got {num_features}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum}")
        self.num_features, self.num_dims = num_features, num_dims
        self.eps, self.momentum = eps, momentum
        self.gamma = nn.Parameter(torch.ones(num_features)) if affine else None
        self.beta = nn.Parameter(torch.zeros(num_features)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.dim() != self.num_dims or X.shape[1] != self.num_features:
            raise ValueError(f"{self.extra_repr()} expects {self.num_dims}-d input with "
                             f"{self.num_features} channels, got shape {tuple(X.shape)}")
        momentum = self.momentum
        tracking = self.training and self.running_mean is not None
        if tracking:
            self.num_batches_tracked += 1
            if momentum is None:  # cumulative average: the k-th batch gets weight 1/k
                momentum = 1.0 / float(self.num_batches_tracked)
        Y, mean, var = batch_norm(X, self.gamma, self.beta, self.running_mean, self.running_var,
                                  training=self.training, momentum=momentum, eps=self.eps)
        if tracking:
            self.running_mean.copy_(mean)
            self.running_var.copy_(var)
        return Y

    def extra_repr(self) -> str:
        return (f"{self.num_features}, num_dims={self.num_dims}, eps={self.eps}, "
                f"momentum={self.momentum}")


NORMS = (None, "scratch", "torch")


def _norm_layer(norm: str | None, channels: int, num_dims: int) -> nn.Module:
    if norm == "scratch":
        return BatchNorm(channels, num_dims)
    if norm == "torch":
        return nn.BatchNorm2d(channels) if num_dims == 4 else nn.BatchNorm1d(channels)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class BNLeNet(NamedSequential):
    """LeNet with batch norm after each conv / linear layer and before the sigmoid (d2l 8.5).

    Conv stages: 5x5 conv (no padding) -> [BN] -> sigmoid -> 2x2 average pool, one per
    entry of ``channels``; then fully connected layers of ``hidden`` units, each
    -> [BN] -> sigmoid; then the classifier. ``norm`` is ``"scratch"`` (our
    ``BatchNorm``), ``"torch"`` (``nn.BatchNorm2d`` / ``1d``) or ``None`` (plain LeNet,
    same layers without BN). ``width`` multiplies every channel and unit count; depth is
    set by the lengths of ``channels`` and ``hidden``.
    """

    def __init__(self, norm: str | None = "scratch", num_classes: int = 10, in_channels: int = 1,
                 image_size: int = 28, channels: Sequence[int] = (6, 16),
                 hidden: Sequence[int] = (120, 84), width: float = 1.0):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c, size = in_channels, image_size
        for i, out in enumerate(channels, 1):
            out = max(1, round(out * width))
            size = (size - 4) // 2  # 5x5 conv without padding, then 2x2 pool
            if size < 1:
                raise ValueError(f"a {image_size} px image is too small for {len(channels)} "
                                 "conv stages (each 5x5 conv and 2x2 pool shrink it)")
            layers[f"conv{i}"] = nn.Conv2d(c, out, kernel_size=5)
            if norm:
                layers[f"bn{i}"] = _norm_layer(norm, out, 4)
            layers[f"act{i}"] = nn.Sigmoid()
            layers[f"pool{i}"] = nn.AvgPool2d(kernel_size=2, stride=2)
            c = out
        layers["flatten"] = nn.Flatten()
        features = c * size * size
        for j, units in enumerate(hidden, 1):
            units = max(1, round(units * width))
            layers[f"fc{j}"] = nn.Linear(features, units)
            if norm:
                layers[f"bn_fc{j}"] = _norm_layer(norm, units, 2)
            layers[f"act_fc{j}"] = nn.Sigmoid()
            features = units
        layers["classifier"] = nn.Linear(features, num_classes)
        super().__init__(layers)
        self.norm = norm


def bn_lenet(norm: str | None = "scratch", **kwargs) -> BNLeNet:
    """d2l's BN-LeNet for Fashion-MNIST (``norm=None``: the same network without BN)."""
    return BNLeNet(norm=norm, **kwargs)
