"""Pruning: zeroing weights (unstructured) versus removing channels (structured).

**Unstructured** pruning sets the smallest-magnitude weights to zero. ``torch.nn.utils.prune``
does it with a mask (``weight = weight_orig * weight_mask``); ``prune.remove`` makes it
permanent. The weights are still stored densely and a dense convolution multiplies the
zeros like any other number, so neither size nor latency change unless a sparse format
and sparse kernels are used (which pay only at high sparsity). ``l1_unstructured`` prunes
every conv and linear layer by the same fraction, as the sources do (30 %).

**Structured** (channel) pruning removes whole filters, so the layers really shrink. In a
ResNet the channels that meet at a residual addition must be pruned together (the
shortcut and every block of the stage share them); the channels *inside* a basic block
(the output of ``conv1``, through ``bn1``, into ``conv2``) belong to that block alone.
``prune_block_channels`` removes a fraction of those inner channels, keeping the filters
of ``conv1`` with the largest L1 norm (Li et al., 2017, "Pruning filters for efficient
ConvNets"): ``conv1`` loses output filters, ``bn1`` the matching statistics, ``conv2`` the
matching input channels. Each block's two convolutions then cost half as much at a ratio
of 0.5. Torch-Pruning (Fang et al., 2023) finds such coupled groups automatically from the
traced graph; ``prune_block_channels_tp`` asks it to prune the same channels and the
tests check the two give the same network.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

__all__ = ["l1_unstructured", "sparsity", "filter_l1", "channels_to_remove", "inner_blocks",
           "prune_block_channels", "prune_block_channels_tp"]


def _check_ratio(amount: float, name: str = "amount") -> float:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise ValueError(f"{name} must be a fraction in [0, 1), got {amount!r}")
    return float(amount)


def l1_unstructured(model: nn.Module, amount: float = 0.3) -> nn.Module:
    """A copy with the ``amount`` smallest-|w| weights of every conv and linear layer set to 0
    (``prune.l1_unstructured``, then ``prune.remove`` so the zeros are plain weights)."""
    amount = _check_ratio(amount)
    pruned = copy.deepcopy(model)
    for m in pruned.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            prune.l1_unstructured(m, "weight", amount=amount)
            prune.remove(m, "weight")
    return pruned


def sparsity(model: nn.Module) -> float:
    """Fraction of conv and linear weights that are exactly zero."""
    zeros = total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            zeros += int((m.weight == 0).sum())
            total += m.weight.numel()
    return zeros / total if total else 0.0


def filter_l1(conv: nn.Conv2d) -> torch.Tensor:
    """The L1 norm of each output filter of ``conv`` (its importance in Li et al.'s rule)."""
    return conv.weight.detach().abs().flatten(1).sum(dim=1)


def channels_to_remove(conv: nn.Conv2d, ratio: float) -> list[int]:
    """Indices of the ``round(ratio * out_channels)`` filters with the smallest L1 norm
    (at least one filter is always kept), in increasing order."""
    ratio = _check_ratio(ratio, "ratio")
    n = conv.out_channels
    k = min(n - 1, int(round(ratio * n)))
    if k <= 0:
        return []
    order = torch.argsort(filter_l1(conv), stable=True)
    return sorted(order[:k].tolist())


def inner_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The residual blocks whose inner channels can be pruned: modules with ``conv1``
    (Conv2d, groups 1), ``bn1`` (BatchNorm2d) and ``conv2`` (Conv2d, groups 1)."""
    found = []
    for name, m in model.named_modules():
        c1, b1, c2 = (getattr(m, a, None) for a in ("conv1", "bn1", "conv2"))
        if (isinstance(c1, nn.Conv2d) and isinstance(b1, nn.BatchNorm2d)
                and isinstance(c2, nn.Conv2d) and c1.groups == 1 and c2.groups == 1):
            found.append((name, m))
    return found


@torch.no_grad()
def _keep_out(conv: nn.Conv2d, keep: torch.Tensor) -> nn.Conv2d:
    new = nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, 1, conv.bias is not None, conv.padding_mode)
    new.weight.copy_(conv.weight[keep])
    if conv.bias is not None:
        new.bias.copy_(conv.bias[keep])
    return new.train(conv.training)


@torch.no_grad()
def _keep_in(conv: nn.Conv2d, keep: torch.Tensor) -> nn.Conv2d:
    new = nn.Conv2d(len(keep), conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, 1, conv.bias is not None, conv.padding_mode)
    new.weight.copy_(conv.weight[:, keep])
    if conv.bias is not None:
        new.bias.copy_(conv.bias)
    return new.train(conv.training)


@torch.no_grad()
def _keep_bn(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(len(keep), bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight.copy_(bn.weight[keep])
        new.bias.copy_(bn.bias[keep])
    if bn.track_running_stats:
        new.running_mean.copy_(bn.running_mean[keep])
        new.running_var.copy_(bn.running_var[keep])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)   # a new module starts in training mode: keep the old mode


def prune_block_channels(model: nn.Module, ratio: float = 0.5) -> nn.Module:
    """A copy with ``ratio`` of every residual block's inner channels removed (smallest
    L1-norm filters of ``conv1``); ``bn1`` and ``conv2`` shrink to match. From scratch."""
    ratio = _check_ratio(ratio, "ratio")
    pruned = copy.deepcopy(model)
    blocks = inner_blocks(pruned)
    if not blocks:
        raise ValueError("the model has no residual blocks with conv1/bn1/conv2 to prune")
    for _, block in blocks:
        drop = set(channels_to_remove(block.conv1, ratio))
        keep = torch.tensor([i for i in range(block.conv1.out_channels) if i not in drop])
        block.conv1 = _keep_out(block.conv1, keep)
        block.bn1 = _keep_bn(block.bn1, keep)
        block.conv2 = _keep_in(block.conv2, keep)
    return pruned


def prune_block_channels_tp(model: nn.Module, ratio: float, example: torch.Tensor) -> nn.Module:
    """The same pruning through Torch-Pruning's dependency graph: for each block it asks for
    the group that removing ``conv1``'s filters drags along (``bn1``, ``conv2``'s inputs)."""
    import torch_pruning as tp

    ratio = _check_ratio(ratio, "ratio")
    pruned = copy.deepcopy(model).eval()
    with torch.enable_grad():   # the graph is traced from autograd's grad_fn chain
        graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=example)
    for _, block in inner_blocks(pruned):
        idxs = channels_to_remove(block.conv1, ratio)
        if not idxs:
            continue
        group = graph.get_pruning_group(block.conv1, tp.prune_conv_out_channels, idxs=idxs)
        if not graph.check_pruning_group(group):
            raise RuntimeError(f"Torch-Pruning refuses to prune {idxs} of {block.conv1}")
        group.prune()
    return pruned
