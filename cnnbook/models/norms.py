"""Normalisation layers written from scratch: batch, layer, instance, group and switchable.

All five do the same three things to a feature map ``x`` of shape (N, C, H, W): pick a set
of values, subtract their mean and divide by their standard deviation (biased variance,
plus ``eps``), then apply a learnable scale and shift. They differ only in *which* values
share one mean and variance (Wu & He, 2018, Figure 2):

* batch norm (Ioffe & Szegedy, 2015): one channel, over the whole batch and all positions
  (N, H, W); the statistics of an example depend on the other examples in its batch.
  Chapter 10's ``batch_norm`` / ``BatchNorm`` are reused here, not rewritten.
* layer norm (Ba et al., 2016): one example, over all its channels and positions (C, H, W).
* instance norm (Ulyanov et al., 2016): one example and one channel, over positions (H, W).
* group norm (Wu & He, 2018): one example, over a group of C/G channels and their positions;
  G = 1 is layer norm, G = C is instance norm. The paper's default is G = 32.
* switchable norm (Luo et al., 2019): a learned, softmax-weighted mix of the instance, layer
  and batch means (and, with separate weights, variances).

Each module has PyTorch's parameter names (``weight``, ``bias``), so a state dict moves
between ours and ``nn.LayerNorm`` / ``nn.GroupNorm`` / ``nn.InstanceNorm2d``; the tests
check that outputs and gradients agree. ``pooled_mask`` says which elements share the
statistics of a chosen one (the chapter's picture and explorer); ``swap_batchnorm``
replaces every ``nn.BatchNorm2d`` of a network (chapter 17's BN-vs-GN comparison).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from cnnbook.models.batchnorm import BatchNorm, batch_norm

__all__ = ["batch_norm", "BatchNorm", "layer_norm", "LayerNorm", "group_norm", "GroupNorm",
           "instance_norm", "InstanceNorm2d", "switchable_norm", "SwitchableNorm2d",
           "NORM_KINDS", "pooled_mask", "make_norm", "swap_batchnorm",
           "batch_statistics_noise", "normalize", "explore_normalization"]

NORM_KINDS = ("batch", "layer", "instance", "group", "switchable")


def _check_4d(x: torch.Tensor, what: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{what} expects a (N, C, H, W) input, got shape {tuple(x.shape)}")


def _normalise(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, eps: float) -> torch.Tensor:
    return (x - mean) / torch.sqrt(var + eps)


def _affine(y: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
            shape: Sequence[int]) -> torch.Tensor:
    if weight is not None:
        y = y * weight.view(shape)
    if bias is not None:
        y = y + bias.view(shape)
    return y


def layer_norm(x: torch.Tensor, normalized_shape: Sequence[int], weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each example over its last ``len(normalized_shape)`` dimensions.

    For a feature map and ``normalized_shape = (C, H, W)`` every example gets its own mean
    and variance over all its channels and positions. ``weight`` and ``bias`` have the
    shape ``normalized_shape`` (one value per element, as in ``nn.LayerNorm``).
    """
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or tuple(x.shape[-k:]) != normalized_shape:
        raise ValueError(f"layer_norm over {normalized_shape} needs an input ending in those "
                         f"dimensions, got shape {tuple(x.shape)}")
    dims = tuple(range(x.dim() - k, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)       # biased: divide by n
    return _affine(_normalise(x, mean, var, eps), weight, bias, normalized_shape)


def group_norm(x: torch.Tensor, num_groups: int, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Split the C channels of each example into ``num_groups`` groups of C/G neighbours
    and normalise each group over its channels and positions; then scale and shift per channel.
    """
    if x.dim() < 2:
        raise ValueError(f"group_norm expects (N, C, ...) input, got shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    if num_groups < 1 or c % num_groups:
        raise ValueError(f"num_groups must divide the {c} channels, got {num_groups}")
    g = x.reshape(n, num_groups, -1)                  # (N, G, C/G * H * W)
    mean = g.mean(dim=-1, keepdim=True)
    var = ((g - mean) ** 2).mean(dim=-1, keepdim=True)
    y = _normalise(g, mean, var, eps).reshape(x.shape)
    return _affine(y, weight, bias, (1, c) + (1,) * (x.dim() - 2))


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None,
                  bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Normalise every channel of every example over its positions alone.

    The same as ``group_norm`` with one channel per group, written out on its own because
    that is how Ulyanov et al. introduced it (for style transfer: remove each image's
    contrast, channel by channel).
    """
    _check_4d(x, "instance_norm")
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return _affine(_normalise(x, mean, var, eps), weight, bias, (1, x.shape[1], 1, 1))


def _moments(x: torch.Tensor):
    """Instance, layer and batch means and (biased) variances of a (N, C, H, W) tensor,
    the last two derived from the first, as switchable normalisation computes them."""
    mean_in = x.mean(dim=(2, 3), keepdim=True)                     # (N, C, 1, 1)
    var_in = ((x - mean_in) ** 2).mean(dim=(2, 3), keepdim=True)
    square_in = var_in + mean_in ** 2                              # E[x^2] per (n, c)
    mean_ln = mean_in.mean(dim=1, keepdim=True)                    # (N, 1, 1, 1)
    var_ln = square_in.mean(dim=1, keepdim=True) - mean_ln ** 2
    mean_bn = mean_in.mean(dim=0, keepdim=True)                    # (1, C, 1, 1)
    var_bn = square_in.mean(dim=0, keepdim=True) - mean_bn ** 2
    return (mean_in, mean_ln, mean_bn), (var_in, var_ln, var_bn)


def switchable_norm(x: torch.Tensor, mean_weights: torch.Tensor, var_weights: torch.Tensor,
                    weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                    running_mean: torch.Tensor | None = None,
                    running_var: torch.Tensor | None = None, *, training: bool = True,
                    momentum: float = 0.1, eps: float = 1e-5):
    """Switchable normalisation (Luo et al., 2019) with given mixing weights.

    ``mean_weights`` and ``var_weights`` are three non-negative numbers each (in the layer:
    softmaxes of learned logits) for the (instance, layer, batch) statistics; the mean used
    is ``sum_k w_k mu_k`` and the variance ``sum_k w'_k sigma2_k``. The batch part follows
    batch norm: batch statistics in training (folded into the running ones, PyTorch's
    momentum convention, biased variance), running statistics in evaluation. Returns
    ``(y, running_mean, running_var)``. (The authors' code uses unbiased variances; we use
    biased ones throughout, so that one-hot weights give exactly IN, LN or BN.)
    """
    _check_4d(x, "switchable_norm")
    if mean_weights.shape != (3,) or var_weights.shape != (3,):
        raise ValueError("mean_weights and var_weights need three entries (instance, layer, batch)")
    (mean_in, mean_ln, mean_bn), (var_in, var_ln, var_bn) = _moments(x)
    if training or running_mean is None:
        if training and running_mean is not None:
            with torch.no_grad():
                running_mean = (1 - momentum) * running_mean + momentum * mean_bn.flatten()
                running_var = (1 - momentum) * running_var + momentum * var_bn.flatten()
    else:
        mean_bn = running_mean.view(1, -1, 1, 1)
        var_bn = running_var.view(1, -1, 1, 1)
    mw, vw = mean_weights, var_weights
    mean = mw[0] * mean_in + mw[1] * mean_ln + mw[2] * mean_bn
    var = vw[0] * var_in + vw[1] * var_ln + vw[2] * var_bn
    y = _affine(_normalise(x, mean, var, eps), weight, bias, (1, x.shape[1], 1, 1))
    return y, running_mean, running_var


class LayerNorm(nn.Module):
    """From-scratch twin of ``nn.LayerNorm(normalized_shape)``: for a CNN, pass (C, H, W)."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.weight = nn.Parameter(torch.ones(self.normalized_shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(self.normalized_shape)) if elementwise_affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class GroupNorm(nn.Module):
    """From-scratch twin of ``nn.GroupNorm(num_groups, num_channels)``; per-channel affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"num_groups must divide num_channels, got {num_groups} groups "
                             f"for {num_channels} channels")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = nn.Parameter(torch.ones(num_channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_channels)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm for {self.num_channels} channels got shape {tuple(x.shape)}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


class InstanceNorm2d(nn.Module):
    """From-scratch twin of ``nn.InstanceNorm2d`` (no running statistics, as PyTorch's
    default: training and evaluation compute the same thing). ``affine`` is off by default,
    as in PyTorch."""

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = False):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_4d(x, "InstanceNorm2d")
        if x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d for {self.num_features} channels got shape "
                             f"{tuple(x.shape)}")
        return instance_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class SwitchableNorm2d(nn.Module):
    """Switchable normalisation: learns how much instance, layer and batch statistics to use.

    Two sets of three logits (``mean_weight``, ``var_weight``, initialised equal, so each kind
    starts at weight 1/3) go through a softmax; the batch part keeps running statistics
    like batch norm and uses them in evaluation.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.mean_weight = nn.Parameter(torch.ones(3))
        self.var_weight = nn.Parameter(torch.ones(3))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def mixing_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmaxed (instance, layer, batch) weights of the means and of the variances."""
        return self.mean_weight.softmax(0), self.var_weight.softmax(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_4d(x, "SwitchableNorm2d")
        if x.shape[1] != self.num_features:
            raise ValueError(f"SwitchableNorm2d for {self.num_features} channels got shape "
                             f"{tuple(x.shape)}")
        mw, vw = self.mixing_weights()
        y, mean, var = switchable_norm(x, mw, vw, self.weight, self.bias, self.running_mean,
                                       self.running_var, training=self.training,
                                       momentum=self.momentum, eps=self.eps)
        if self.training:
            self.running_mean.copy_(mean)
            self.running_var.copy_(var)
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


def pooled_mask(kind: str, shape: Sequence[int], index: Sequence[int] = (0, 0),
                groups: int = 1) -> torch.Tensor:
    """Which elements of a (N, C, H, W) tensor share their mean and variance with the
    elements of example ``index[0]``, channel ``index[1]``, under normalisation ``kind``.

    Returns a bool tensor of ``shape``. For "switchable" (a mix of all three) it is the
    union of what the instance, layer and batch parts pool. ``groups`` is used by "group".
    """
    if kind not in NORM_KINDS:
        raise ValueError(f"kind must be one of {NORM_KINDS}, got {kind!r}")
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"shape must be four positive sizes (N, C, H, W), got {tuple(shape)}")
    n, c, h, w = shape
    i, j = index
    if not (0 <= i < n and 0 <= j < c):
        raise ValueError(f"index {tuple(index)} lies outside a batch of {n} with {c} channels")
    if kind == "group" and (groups < 1 or c % groups):
        raise ValueError(f"groups must divide the {c} channels, got {groups}")
    mask = torch.zeros(n, c, dtype=torch.bool)
    if kind == "batch":
        mask[:, j] = True
    elif kind == "layer":
        mask[i, :] = True
    elif kind == "instance":
        mask[i, j] = True
    elif kind == "group":
        size = c // groups
        start = (j // size) * size
        mask[i, start:start + size] = True
    else:  # switchable: instance | layer | batch
        mask[:, j] = True
        mask[i, :] = True
    return mask.view(n, c, 1, 1).expand(n, c, h, w).clone()


def make_norm(kind: str, channels: int, groups: int = 32) -> nn.Module:
    """PyTorch's module for ``kind`` (our ``SwitchableNorm2d`` for "switchable"), for use in a
    network. "group" uses ``min(groups, channels)`` groups; "layer" is ``GroupNorm(1, C)``
    (layer norm over (C, H, W) with a per-channel, not per-element, scale and shift, so it
    works at any image size); "instance" has learnable scale and shift."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        g = min(groups, channels)
        if channels % g:
            raise ValueError(f"{g} groups do not divide {channels} channels")
        return nn.GroupNorm(g, channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "switchable":
        return SwitchableNorm2d(channels)
    raise ValueError(f"kind must be one of {NORM_KINDS}, got {kind!r}")


def swap_batchnorm(model: nn.Module, factory: Callable[[int], nn.Module] | str,
                   **kwargs) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` in ``model`` (in place) by ``factory(channels)``.

    ``factory`` may be a kind of ``make_norm`` ("group", "layer", ...; ``kwargs`` go to it).
    Returns the model, so ``swap_batchnorm(resnet(...), "group")`` reads as one line.
    """
    if isinstance(factory, str):
        kind = factory
        factory = lambda channels: make_norm(kind, channels, **kwargs)  # noqa: E731
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, factory(child.num_features))
        else:
            swap_batchnorm(child, factory)
    return model


def batch_statistics_noise(features: torch.Tensor, batch_sizes: Sequence[int], trials: int = 200,
                           seed: int = 0) -> dict:
    """How much BN's batch statistics wander from batch to batch, per batch size.

    ``features`` is a (M, C, H, W) pool of activations. For each batch size B, ``trials``
    random batches of B examples are drawn; for every channel the batch mean and batch
    standard deviation are computed (as BN does: over N, H, W), and their spread across the
    batches is measured relative to the channel's standard deviation over the whole pool.
    Returns ``{B: {"mean_noise": ..., "std_noise": ...}}`` averaged over channels: the
    typical error, in units of the channel's std, of what BN divides and subtracts. Group
    norm's statistics come from one example, so they do not depend on B at all.
    """
    _check_4d(features, "batch_statistics_noise")
    m = len(features)
    if not batch_sizes or min(batch_sizes) < 1 or max(batch_sizes) > m:
        raise ValueError(f"batch sizes must lie in 1..{m} (the pool size), got {list(batch_sizes)}")
    gen = torch.Generator().manual_seed(seed)
    x = features.detach().float()
    pool_std = x.transpose(0, 1).reshape(x.shape[1], -1).std(dim=1, unbiased=False)
    pool_std = pool_std.clamp_min(1e-12)
    out = {}
    for b in batch_sizes:
        means, stds = [], []
        for _ in range(trials):  # one batch at a time: memory stays at one batch
            batch = x[torch.randperm(m, generator=gen)[:b]]
            means.append(batch.mean(dim=(0, 2, 3)))
            stds.append(batch.var(dim=(0, 2, 3), unbiased=False).sqrt())
        mean, std = torch.stack(means), torch.stack(stds)                   # (T, C)
        out[int(b)] = {"mean_noise": (mean.std(dim=0) / pool_std).mean().item(),
                       "std_noise": (std.std(dim=0) / pool_std).mean().item()}
    return out


def normalize(kind: str, x: torch.Tensor, groups: int = 1, eps: float = 1e-5) -> torch.Tensor:
    """Apply the from-scratch normalisation ``kind`` to ``x`` without scale and shift
    (batch norm with batch statistics; switchable with equal weights 1/3)."""
    if kind == "batch":
        return batch_norm(x, None, None, None, None, training=True, eps=eps)[0]
    if kind == "layer":
        return layer_norm(x, x.shape[1:], eps=eps)
    if kind == "instance":
        return instance_norm(x, eps=eps)
    if kind == "group":
        return group_norm(x, groups, eps=eps)
    if kind == "switchable":
        third = torch.full((3,), 1 / 3, dtype=x.dtype)
        return switchable_norm(x, third, third, eps=eps)[0]
    raise ValueError(f"kind must be one of {NORM_KINDS}, got {kind!r}")


def explore_normalization(kind: str, batch_size: int, channels: int, groups: int = 1,
                          example: int = 0, channel: int = 0, size: int = 4,
                          seed: int = 0) -> dict:
    """Everything the normalisation explorer shows, for one random batch.

    The input has a different brightness (offset) and contrast (scale) per example and an
    offset per channel, as real feature maps do. Returns the input ``x`` and output ``y``
    (from-scratch, no affine), the ``mask`` of elements pooled with (``example``,
    ``channel``), ``pooled`` (how many values share its statistics), the per-example mean
    and std of input and output (over C, H, W), and ``batch_dependence``: the largest change
    of that example's output when the *other* examples of the batch are replaced by new
    ones (0 means the example is normalised on its own).
    """
    for name, value, low in (("batch_size", batch_size, 1), ("channels", channels, 1),
                             ("size", size, 1)):
        if value < low:
            raise ValueError(f"{name} must be at least {low}, got {value}")
    shape = (batch_size, channels, size, size)
    mask = pooled_mask(kind, shape, (example, channel), groups)   # validates the rest
    gen = torch.Generator().manual_seed(seed)

    def batch(n):
        z = torch.randn(n, channels, size, size, generator=gen, dtype=torch.float64)
        contrast = torch.rand(n, 1, 1, 1, generator=gen, dtype=torch.float64) * 2.5 + 0.25
        brightness = torch.randn(n, 1, 1, 1, generator=gen, dtype=torch.float64) * 2
        return z * contrast + brightness + channel_offset

    channel_offset = torch.randn(1, channels, 1, 1, generator=gen, dtype=torch.float64)
    x = batch(batch_size)
    y = normalize(kind, x, groups)
    others = batch(batch_size)
    others[example] = x[example]
    dependence = (normalize(kind, others, groups)[example] - y[example]).abs().max().item()
    flat_x, flat_y = x.reshape(batch_size, -1), y.reshape(batch_size, -1)
    return {"x": x, "y": y, "mask": mask, "pooled": int(mask.sum()),
            "in_mean": flat_x.mean(1), "in_std": flat_x.std(1, unbiased=False),
            "out_mean": flat_y.mean(1), "out_std": flat_y.std(1, unbiased=False),
            "batch_dependence": dependence if batch_size > 1 else 0.0}
