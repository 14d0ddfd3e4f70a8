"""What dropout, Dropout2d and DropBlock remove from a feature map, measured.

``drop_mask`` draws the keep-mask of each method for a feature map ``(C, H, W)`` (or a
batch), and ``mask_stats`` measures it: the fraction actually dropped (to compare with
the target rate) and the fraction of dropped units that still have a kept neighbour in
their 3x3 window. A 3x3 convolution after the dropout sees that neighbour, and since
neighbouring activations are strongly correlated it can fill the hole from it: element-wise
dropout leaves almost every hole recoverable, DropBlock with ``block_size >= 5`` hardly
any. This is the argument of Ghiasi et al. (2018) in one number. The explorer of chapter
16 (``cnnbook.widgets.regularization``) draws these masks.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnbook.regularization.dropblock import block_mask, dropblock_gamma, seed_mask

__all__ = ["METHODS", "drop_mask", "mask_stats"]

METHODS = ("dropout", "dropout2d", "dropblock")


def drop_mask(shape, method: str, p: float, block_size: int = 3,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep-mask (1 keep, 0 drop) of ``method`` for a map of ``shape`` (N, C, H, W).

    ``dropout``: each unit independently; ``dropout2d``: whole channels; ``dropblock``:
    ``block_size`` squares (``block_size`` is ignored by the other two).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not (isinstance(p, (int, float)) and math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"the drop rate must be between 0 and 1, got {p}")
    n, c, h, w = shape
    if method == "dropout":
        return (torch.rand(shape, generator=generator) >= p).float()
    if method == "dropout2d":
        return (torch.rand((n, c, 1, 1), generator=generator) >= p).float().expand(shape)
    if int(block_size) != block_size or block_size < 1 or block_size % 2 == 0:
        raise ValueError(f"block_size must be an odd whole number >= 1, got {block_size}")
    b = min(int(block_size), h, w)
    if b % 2 == 0:
        raise ValueError(f"block_size {block_size} is clipped to the map's side {b}, which is "
                         "even: pick a smaller odd block")
    return block_mask(seed_mask(shape, p, b, generator=generator), b)


def mask_stats(mask: torch.Tensor, p: float, block_size: int = 3) -> dict:
    """Dropped fraction, gamma, the rescale factor and the share of dropped units that a
    3x3 window still sees a kept neighbour of (``recoverable``)."""
    dropped = 1 - mask
    n_drop = float(dropped.sum())
    # a kept unit among the 8 neighbours (zero padding: outside the map counts as not kept)
    m = mask.reshape(-1, 1, *mask.shape[-2:])
    kept_nearby = F.max_pool2d(m, 3, stride=1, padding=1).reshape(mask.shape)
    recoverable = float((dropped * kept_nearby).sum()) / n_drop if n_drop else float("nan")
    h, w = mask.shape[-2:]
    kept = float(mask.sum())
    return {"target": float(p), "dropped": n_drop / mask.numel(),
            "gamma": dropblock_gamma(p, min(block_size, h, w), h, w),
            "scale": mask.numel() / kept if kept else float("inf"),
            "recoverable": recoverable}
