"""Stochastic depth (Huang, Sun, Liu, Sedra and Weinberger, 2016): randomly skip residual branches.

A residual block computes ``x + F(x)``. During training, stochastic depth keeps the branch
``F`` with probability ``1 - p`` and drops it (the block becomes the identity) with
probability ``p``, independently for each mini-batch (``mode="batch"``, the paper) or for
each sample (``mode="row"``, what torchvision and most modern networks use). The network
trained is on average shallower (faster, better gradient flow) and is an implicit
ensemble of networks of different depths.

At test time every branch is used; its output must then be scaled by the survival
probability ``1 - p`` to match its training-time expectation. The paper scales at test
time; torchvision scales *in training* instead (kept branches are divided by ``1 - p``),
so the test-time network is the plain one. Both have the same expectation; we follow
torchvision. The paper lets ``p`` grow linearly with depth, from 0 to ``p_L = 0.5`` at the
last block: ``linear_drop_rates``.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["StochasticDepth", "linear_drop_rates", "stochastic_depth"]


def stochastic_depth(x: torch.Tensor, p: float, mode: str = "row", training: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero the residual branch output ``x`` with probability ``p`` (per sample or per batch)
    and divide what survives by ``1 - p``; the identity when not training or ``p == 0``.

    The Bernoulli draw is torchvision's (``bernoulli_`` on an empty tensor of ``x``'s
    dtype), so under the same seed the result equals ``torchvision.ops.stochastic_depth``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop probability must be between 0 and 1, got {p}")
    if mode not in ("row", "batch"):
        raise ValueError(f"mode must be 'row' or 'batch', got {mode!r}")
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    shape = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival,
                                                                         generator=generator)
    if survival > 0.0:
        keep = keep / survival
    return x * keep


class StochasticDepth(nn.Module):
    """``stochastic_depth`` as a layer, to wrap the output of a residual branch."""

    def __init__(self, p: float = 0.1, mode: str = "row"):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be between 0 and 1, got {p}")
        if mode not in ("row", "batch"):
            raise ValueError(f"mode must be 'row' or 'batch', got {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


def linear_drop_rates(num_blocks: int, p_last: float = 0.5) -> list[float]:
    """The paper's linear decay rule: block ``l`` of ``L`` drops with ``p_last * l / L``."""
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be at least 1, got {num_blocks}")
    if not 0.0 <= p_last <= 1.0:
        raise ValueError(f"p_last must be between 0 and 1, got {p_last}")
    return [p_last * (i + 1) / num_blocks for i in range(num_blocks)]
