"""Optimisers for ``fit``: built by name, or passed in ready-made."""
from __future__ import annotations

import torch


def make_optimizer(optimizer, model, lr: float, momentum: float = 0.0,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """An optimiser for ``model``: "sgd", "adam", "adamw", or one you built (returned as is)."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    params = model.parameters()
    kind = str(optimizer).lower()
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}: use 'sgd', 'adam', 'adamw' or pass one")
