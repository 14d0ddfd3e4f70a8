"""Shared checks of the interpretation modules: a model, an image batch and target classes."""
from __future__ import annotations

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def as_batch(x) -> torch.Tensor:
    """A float (N, C, H, W) batch from an image (C, H, W) or a batch; clear errors otherwise."""
    if not torch.is_tensor(x):
        raise ValueError(f"expected an image tensor, got {type(x).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected an image (C, H, W) or a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected float pixels, got {x.dtype} (divide uint8 images by 255)")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("the image contains NaN or infinite pixels")
    return x


def as_targets(target, n: int, num_classes: int | None = None,
               logits: torch.Tensor | None = None) -> torch.Tensor:
    """Target classes as a long tensor of length ``n``: one int for all, one per image, or
    None for each image's predicted class (``logits`` needed)."""
    if target is None:
        if logits is None:
            raise ValueError("target=None means the predicted class: logits are needed")
        return logits.argmax(1)
    t = torch.as_tensor(target, dtype=torch.long).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"{t.numel()} targets for {n} images")
    if num_classes is not None and (bool((t < 0).any()) or bool((t >= num_classes).any())):
        raise ValueError(f"target classes must lie in 0..{num_classes - 1}, got {t.tolist()}")
    return t


def select(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``logits[i, targets[i]]`` for every row i."""
    return logits.gather(1, targets.to(logits.device)[:, None])[:, 0]
