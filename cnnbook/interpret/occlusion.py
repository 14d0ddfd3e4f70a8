"""Occlusion sensitivity (Zeiler and Fergus, 2014): grey out a patch, watch the score fall.

A ``window x window`` square (all channels) slides over the image with ``stride``; at each
position it is replaced by ``baseline`` and the drop of the class logit,
``y_c(x) - y_c(x with the patch hidden)``, is credited to every pixel under the patch. A
pixel's value is the mean drop over the windows covering it. Window positions are
``0, stride, 2 stride, ...`` up to the first one that reaches the border, where the window
is cut off, so every pixel is covered (Captum's ``Occlusion`` places them the same way,
and the tests check the two agree). No gradients: it works for any model, at the price of
one forward pass per window position.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from cnnbook.interpret._common import as_batch, as_targets, model_device, select

__all__ = ["occlusion_masks", "occlusion"]


def occlusion_masks(height: int, width: int, window: int, stride: int) -> torch.Tensor:
    """The (P, H, W) 0/1 masks of every window position, row by row."""
    for name, v in (("window", window), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive whole number of pixels, got {v!r}")
    if window > min(height, width):
        raise ValueError(f"a {window}-pixel window does not fit in a {height}x{width} image")
    if stride > window:
        raise ValueError(f"stride {stride} > window {window} would leave pixels never hidden")
    tops = [i * stride for i in range(math.ceil((height - window) / stride) + 1)]
    lefts = [j * stride for j in range(math.ceil((width - window) / stride) + 1)]
    masks = torch.zeros(len(tops) * len(lefts), height, width)
    for p, (top, left) in enumerate((t, l) for t in tops for l in lefts):
        masks[p, top:top + window, left:left + window] = 1
    return masks


@torch.no_grad()
def occlusion(model: nn.Module, x: torch.Tensor, target=None, window: int = 8, stride: int = 4,
              baseline: float = 0.0, chunk: int = 256) -> torch.Tensor:
    """Occlusion maps (N, H, W): the mean drop of the target logit when a patch is hidden.

    ``target`` None means each image's predicted class; ``baseline`` is the value the hidden
    pixels get (0 = black for images in [0, 1]). Positive: hiding it hurts the class.
    """
    x = as_batch(x).to(model_device(model))
    n, _, h, w = x.shape
    masks = occlusion_masks(h, w, window, stride).to(x.device)
    was_training = model.training
    model.eval()
    try:
        logits = model(x)
        t = as_targets(target, n, logits.shape[1], logits)
        clean = select(logits, t)
        total = torch.zeros(n, h, w, device=x.device)
        for i in range(n):
            drops = []
            for s in range(0, len(masks), chunk):
                m = masks[s:s + chunk, None]                      # (P, 1, H, W)
                hidden = x[i:i + 1] * (1 - m) + baseline * m
                drops.append(clean[i] - select(model(hidden), t[i].expand(len(m))))
            drops = torch.cat(drops)                              # (P,)
            total[i] = (drops[:, None, None] * masks).sum(0)
    finally:
        model.train(was_training)
    return total / masks.sum(0)
