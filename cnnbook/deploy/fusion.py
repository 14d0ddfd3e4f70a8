"""Conv + batch-norm fusion: fold an inference-mode BN into the convolution before it.

In eval mode batch norm is a fixed per-channel affine map,
``bn(z) = gamma * (z - mean) / sqrt(var + eps) + beta``, and a convolution is linear, so the
two compose into one convolution with

    w' = w * gamma / sqrt(var + eps)              (scaled per output channel)
    b' = (b - mean) * gamma / sqrt(var + eps) + beta

(``b = 0`` for a conv without bias). The fused network computes the same function with
one kernel call and one pass over memory less per layer. ``fold_conv_bn`` is the formula;
``fuse_model`` applies it to every conv that a BN follows (in the order the two are
registered in their parent, which is how every model of this course is written) and
replaces the BN by ``nn.Identity``. ``torch.nn.utils.fusion.fuse_conv_bn_eval`` is
PyTorch's version; the tests check the two agree.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["fold_conv_bn", "fuse_model", "conv_bn_pairs"]


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new ``Conv2d`` (with bias) equal to ``bn(conv(x))`` with ``bn`` in eval mode."""
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"fold_conv_bn needs a Conv2d and a BatchNorm2d, got "
                        f"{type(conv).__name__} and {type(bn).__name__}")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"the BN has {bn.num_features} channels but the conv gives "
                         f"{conv.out_channels}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("the BN keeps no running statistics (track_running_stats=False): "
                         "it normalises with batch statistics and cannot be folded")
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = bn.bias if bn.bias is not None else torch.zeros_like(scale)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      padding_mode=conv.padding_mode, device=conv.weight.device,
                      dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
    fused.bias.copy_((bias - bn.running_mean) * scale + shift)
    return fused


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """Names ``(conv, bn)`` of every Conv2d directly followed by a matching BatchNorm2d
    among its parent's children (registration order)."""
    pairs = []
    for parent_name, parent in model.named_modules():
        children = list(parent.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:]):
            if (isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)
                    and b.num_features == a.out_channels):
                prefix = f"{parent_name}." if parent_name else ""
                pairs.append((prefix + name_a, prefix + name_b))
    return pairs


def fuse_model(model: nn.Module) -> nn.Module:
    """A fused copy of ``model`` in eval mode: each conv + BN pair folded, the BN an Identity.

    The original is left untouched. Only pairs found by ``conv_bn_pairs`` are fused, so a
    model whose BN does not directly follow its conv keeps that BN.
    """
    fused = copy.deepcopy(model).eval()
    for conv_name, bn_name in conv_bn_pairs(fused):
        parent_name, _, conv_attr = conv_name.rpartition(".")
        parent = fused.get_submodule(parent_name) if parent_name else fused
        bn_attr = bn_name.rpartition(".")[2]
        setattr(parent, conv_attr, fold_conv_bn(getattr(parent, conv_attr),
                                                getattr(parent, bn_attr)))
        setattr(parent, bn_attr, nn.Identity())
    return fused
