"""DropBlock (Ghiasi, Lin and Le, 2018): dropout of contiguous square blocks of a feature map.

Neighbouring activations of a convolutional feature map are strongly correlated, so
zeroing single elements (``nn.Dropout``) removes almost no information: the next 3x3
convolution reads the same feature from the neighbours. DropBlock zeroes whole
``block_size x block_size`` squares instead, per sample and per channel:

1. draw block *centres* with a Bernoulli(``gamma``) over the positions where a whole block
   fits, ``(H - b + 1) x (W - b + 1)`` of them;
2. grow every centre into a ``b x b`` square (a max-pool with stride 1 does that);
3. zero the squares and rescale what is kept by ``numel / kept``, so the expected sum of
   the activations is unchanged (the scale used at test time is 1).

``gamma`` turns the wanted drop rate into a centre rate: each centre drops ``b^2``
elements and only ``(H-b+1)(W-b+1)`` of the ``H W`` positions can be centres, so
``gamma = drop_rate / b^2 * H W / ((H-b+1)(W-b+1))`` (equation 1 of the paper, the formula
torchvision uses). Overlapping blocks make the real drop fraction a little smaller.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DropBlock2d", "block_mask", "drop_block", "dropblock_gamma", "seed_mask"]


def _check(p: float, block_size: int, shape) -> int:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop probability must be between 0 and 1, got {p}")
    if len(shape) != 4:
        raise ValueError(f"DropBlock needs an (N, C, H, W) input, got {len(shape)} dimensions")
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    block_size = min(block_size, shape[-1], shape[-2])
    if block_size % 2 == 0:
        raise ValueError(f"block_size must be odd (the block is centred on its seed), "
                         f"got {block_size}")
    return block_size


def dropblock_gamma(p: float, block_size: int, height: int, width: int) -> float:
    """Rate of block centres that drops a fraction ``p`` of an ``height x width`` map.

    ``p / block_size^2`` if blocks could sit anywhere, times ``H W / ((H-b+1)(W-b+1))``
    because only positions where a whole block fits may be centres.
    """
    b = min(block_size, height, width)
    valid = (height - b + 1) * (width - b + 1)
    return p * height * width / (b * b * valid)


def seed_mask(shape, p: float, block_size: int, dtype=torch.float32, device=None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli(gamma) block centres on the valid ``(N, C, H-b+1, W-b+1)`` grid.

    Drawn exactly as ``torchvision.ops.drop_block2d`` draws them (``bernoulli_`` on an
    empty tensor of the input's dtype), so the same seed gives the same centres.
    """
    n, c, h, w = shape
    b = _check(p, block_size, shape)
    gamma = dropblock_gamma(p, b, h, w)
    seeds = torch.empty((n, c, h - b + 1, w - b + 1), dtype=dtype, device=device)
    return seeds.bernoulli_(gamma, generator=generator)


def block_mask(seeds: torch.Tensor, block_size: int) -> torch.Tensor:
    """Keep-mask (1 keep, 0 drop) of an ``(N, C, H, W)`` map from valid-grid centres.

    Pad the centres back to ``H x W`` (the ``b//2`` border can hold no centre), then a
    ``b x b`` max-pool with stride 1 turns each centre into a square of ones.
    """
    half = block_size // 2
    grown = F.max_pool2d(F.pad(seeds, [half] * 4), kernel_size=block_size, stride=1,
                         padding=half)
    return 1 - grown


def drop_block(x: torch.Tensor, p: float, block_size: int, training: bool = True,
               eps: float = 1e-6, generator: torch.Generator | None = None,
               seeds: torch.Tensor | None = None) -> torch.Tensor:
    """DropBlock of ``x`` (N, C, H, W): zero random ``block_size`` squares, rescale the rest.

    The rescale factor is ``numel / (kept + eps)`` over the whole batch, as in torchvision
    (the paper normalises the same way). ``seeds`` lets you pass the centres yourself
    (``seed_mask``); otherwise they are drawn from ``generator`` (default: the global RNG).
    Identity when not training or ``p == 0``.
    """
    b = _check(p, block_size, x.shape)
    if not training or p == 0.0:
        return x
    if seeds is None:
        seeds = seed_mask(x.shape, p, b, x.dtype, x.device, generator)
    mask = block_mask(seeds, b)
    return x * mask * (mask.numel() / (eps + mask.sum()))


class DropBlock2d(nn.Module):
    """``drop_block`` as a layer: active in ``train()`` mode, the identity in ``eval()``."""

    def __init__(self, p: float = 0.1, block_size: int = 3):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be between 0 and 1, got {p}")
        self.p, self.block_size = p, block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_block(x, self.p, self.block_size, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, block_size={self.block_size}"
