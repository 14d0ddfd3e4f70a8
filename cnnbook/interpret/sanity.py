"""Sanity checks for saliency maps (Adebayo et al., 2018): does the map depend on the model?

A saliency method that explains the *model* must change when the model's weights are
destroyed. The *cascading randomisation* test re-initialises the layers from the top (the
classifier) down, one block at a time, and compares each map with the trained model's map.
Adebayo et al. found that plain gradients and Grad-CAM fail fast (good: they depend on the
weights), while some methods (Guided Backprop) keep showing the same edges, like an edge
detector that ignores the model. The similarity used here is the Spearman rank
correlation of the absolute maps (``scipy.stats.spearmanr``), averaged over the images.

Only the weights of convolutions and linear layers are re-drawn (with the layer's own
``reset_parameters``, under a fixed seed); batch-norm layers keep their trained values.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

__all__ = ["block_names", "randomize_", "rank_similarity", "cascading_randomization"]

_WEIGHTED = (nn.Conv2d, nn.Linear)


def block_names(model: nn.Module) -> list[str]:
    """The model's blocks in forward order: its top-level children, with containers
    (``nn.Sequential``) opened one level, keeping those that hold a conv or linear layer."""
    names = []
    for name, child in model.named_children():
        parts = (list(child.named_children()) if isinstance(child, nn.Sequential)
                 and not any(isinstance(c, _WEIGHTED) for c in child.children()) else [])
        for sub, module in (parts or [("", child)]):
            full = f"{name}.{sub}" if sub else name
            if any(isinstance(m, _WEIGHTED) for m in module.modules()):
                names.append(full)
    return names


def randomize_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Re-initialise every conv and linear layer inside ``module`` in place (seeded)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in module.modules():
            if isinstance(m, _WEIGHTED):
                m.reset_parameters()
    return module


def rank_similarity(a: torch.Tensor, b: torch.Tensor, absolute: bool = True) -> float:
    """Mean Spearman rank correlation between maps ``a`` and ``b`` (N, H, W), image by image."""
    a, b = torch.as_tensor(a).detach().cpu(), torch.as_tensor(b).detach().cpu()
    if a.shape != b.shape:
        raise ValueError(f"maps of different shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if absolute:
        a, b = a.abs(), b.abs()
    rs = []
    for x, y in zip(a.reshape(len(a), -1).double().numpy(), b.reshape(len(b), -1).double().numpy()):
        if np.ptp(x) == 0 or np.ptp(y) == 0:    # a constant map has no ranking
            rs.append(0.0)
        else:
            rs.append(float(spearmanr(x, y).statistic))
    return float(np.mean(rs))


def cascading_randomization(model: nn.Module, x: torch.Tensor,
                            explain: Callable[[nn.Module, torch.Tensor], torch.Tensor],
                            blocks: list[str] | None = None, seed: int = 0) -> list[dict]:
    """Adebayo et al.'s cascading test on a copy of ``model`` (the original is untouched).

    ``explain(model, x)`` returns maps (N, H, W) (e.g. a saliency method with fixed
    targets: keep the trained model's predicted classes so only the weights change).
    Returns one row per step, the first the trained model: ``{"randomized": name of the
    last block re-drawn ("none" first), "blocks": how many, "spearman": similarity to the
    trained model's maps, "maps": the maps}``.
    """
    blocks = list(block_names(model) if blocks is None else blocks)
    net = copy.deepcopy(model)
    named = dict(net.named_modules())
    missing = [b for b in blocks if b not in named]
    if missing:
        raise ValueError(f"no block named {missing}")
    reference = explain(net, x).detach().cpu()
    rows = [dict(randomized="none", blocks=0, spearman=1.0, maps=reference)]
    for i, name in enumerate(reversed(blocks), start=1):
        randomize_(named[name], seed + i)
        maps = explain(net, x).detach().cpu()
        rows.append(dict(randomized=name, blocks=i, spearman=rank_similarity(reference, maps),
                         maps=maps))
    return rows
