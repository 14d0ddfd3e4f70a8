"""Low-rank factorisation: replace a layer's weight matrix by the product of two thin ones.

A linear layer's ``W`` (out x in) has the singular value decomposition ``W = U S V^T``;
keeping the ``r`` largest singular values gives the best rank-``r`` approximation (Eckart
and Young, 1936) and two layers ``x -> V_r^T x`` (r outputs) and ``-> U_r S_r (.) + b``
with ``r (in + out)`` weights instead of ``in * out``. A convolution with ``C_out`` filters
of ``C_in x k x k`` weights is the same matrix product on each image patch, so its weight
reshaped to ``C_out x (C_in k k)`` factorises the same way into a ``k x k`` convolution
with ``r`` filters (same stride and padding) followed by a ``1 x 1`` convolution to
``C_out`` channels. Fewer weights and multiply-adds once ``r < C_out C_in k^2 / (C_out +
C_in k^2)``; the error is the energy of the dropped singular values.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["svd_factors", "rank_error", "factorize_linear", "factorize_conv", "factorize",
           "break_even_rank"]


def _matrix(layer: nn.Module) -> torch.Tensor:
    if isinstance(layer, nn.Linear):
        return layer.weight.detach()
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise ValueError("only ungrouped convolutions can be factorised this way")
        return layer.weight.detach().flatten(1)
    raise TypeError(f"can factorise nn.Linear or nn.Conv2d, got {type(layer).__name__}")


def _check_rank(rank: int, full: int) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= full:
        raise ValueError(f"rank must be a whole number from 1 to {full}, got {rank!r}")
    return rank


def svd_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` with ``A @ B`` the best rank-``rank`` approximation of the 2-D ``weight``:
    ``A = U_r S_r`` (out x r), ``B = V_r^T`` (r x in)."""
    if weight.dim() != 2:
        raise ValueError(f"weight must be a matrix, got shape {tuple(weight.shape)}")
    rank = _check_rank(rank, min(weight.shape))
    u, s, vh = torch.linalg.svd(weight.float(), full_matrices=False)
    return u[:, :rank] * s[:rank], vh[:rank]


def rank_error(layer_or_weight, rank: int) -> float:
    """Relative Frobenius error ``||W - W_r|| / ||W||`` of the rank-``rank`` approximation
    (``sqrt`` of the dropped singular values' share of the energy)."""
    w = layer_or_weight if isinstance(layer_or_weight, torch.Tensor) else _matrix(layer_or_weight)
    w = w.flatten(1) if w.dim() > 2 else w
    s = torch.linalg.svdvals(w.float())
    _check_rank(rank, len(s))
    return float(torch.sqrt((s[rank:] ** 2).sum() / (s ** 2).sum()))


def break_even_rank(layer: nn.Module) -> int:
    """The largest rank whose two factors have fewer weights than the layer itself."""
    out, inn = _matrix(layer).shape
    return max(0, (out * inn - 1) // (out + inn))


@torch.no_grad()
def factorize_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """``Linear(in, rank, bias=False)`` then ``Linear(rank, out)`` from the truncated SVD."""
    a, b = svd_factors(_matrix(layer), rank)
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    first.weight.copy_(b)
    second.weight.copy_(a)
    if layer.bias is not None:
        second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


@torch.no_grad()
def factorize_conv(layer: nn.Conv2d, rank: int) -> nn.Sequential:
    """A ``k x k`` conv with ``rank`` filters (same stride, padding, dilation) then a
    ``1 x 1`` conv to the original output channels (carrying the bias)."""
    a, b = svd_factors(_matrix(layer), rank)
    first = nn.Conv2d(layer.in_channels, rank, layer.kernel_size, layer.stride, layer.padding,
                      layer.dilation, bias=False, padding_mode=layer.padding_mode)
    second = nn.Conv2d(rank, layer.out_channels, 1, bias=layer.bias is not None)
    first.weight.copy_(b.reshape(first.weight.shape))
    second.weight.copy_(a.reshape(second.weight.shape))
    if layer.bias is not None:
        second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def factorize(model: nn.Module, names, rank: int | None = None,
              rank_ratio: float | None = None) -> nn.Module:
    """A copy of ``model`` with each named conv/linear layer factorised, at a fixed ``rank``
    or at ``rank_ratio`` of its full rank (``min(out, in)``, at least 1)."""
    if (rank is None) == (rank_ratio is None):
        raise ValueError("give exactly one of rank and rank_ratio")
    if rank_ratio is not None and not 0 < rank_ratio <= 1:
        raise ValueError(f"rank_ratio must be in (0, 1], got {rank_ratio!r}")
    new = copy.deepcopy(model)
    for name in ([names] if isinstance(names, str) else list(names)):
        try:
            layer = new.get_submodule(name)
        except AttributeError as exc:
            raise ValueError(f"the model has no layer {name!r}") from exc
        full = min(_matrix(layer).shape)
        r = rank if rank is not None else max(1, int(round(rank_ratio * full)))
        r = _check_rank(r, full)
        parent_name, _, attr = name.rpartition(".")
        parent = new.get_submodule(parent_name) if parent_name else new
        make = factorize_conv if isinstance(layer, nn.Conv2d) else factorize_linear
        setattr(parent, attr, make(layer, r))
    return new
