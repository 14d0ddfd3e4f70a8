"""Attention rollout (Abnar & Zuidema, 2020): where a Vision Transformer's class token looks.

One layer's attention weights say how much each token reads from each other token *in that
layer*. But after the first layer a token is already a mixture of many patches, and every
block also has a residual connection that carries the token itself forward. Rollout follows
the information through all layers:

1. fuse the heads of each layer (their mean; ``"max"`` or ``"min"`` are variants);
2. optionally zero the weakest ``discard_ratio`` of each row's weights (a variant from
   Jacob Gildenblat's vit-explain that sharpens the maps);
3. account for the residual path: ``A = 0.5 * W + 0.5 * I``, then renormalise every row to
   sum 1 (each row is again a distribution over the tokens read);
4. multiply through the layers: ``R = A_L @ ... @ A_2 @ A_1``.

Row 0 of ``R`` (the class token) over the patch columns is the map drawn on the image.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["fuse_heads", "attention_rollout", "class_token_map", "vit_attentions"]


def fuse_heads(weights: torch.Tensor, fusion: str = "mean") -> torch.Tensor:
    """(B, heads, N, N) -> (B, N, N) by the heads' ``"mean"``, ``"max"`` or ``"min"``;
    an integer picks one head."""
    if weights.ndim != 4:
        raise ValueError(f"attention weights must be (batch, heads, N, N), got {tuple(weights.shape)}")
    if isinstance(fusion, int) and not isinstance(fusion, bool):
        if not 0 <= fusion < weights.shape[1]:
            raise ValueError(f"head {fusion} does not exist: this layer has {weights.shape[1]} heads")
        return weights[:, fusion]
    if fusion == "mean":
        return weights.mean(1)
    if fusion == "max":
        return weights.amax(1)
    if fusion == "min":
        return weights.amin(1)
    raise ValueError(f"fusion must be 'mean', 'max', 'min' or a head index, got {fusion!r}")


def attention_rollout(attentions: Sequence[torch.Tensor], fusion="mean",
                      discard_ratio: float = 0.0, residual: bool = True) -> torch.Tensor:
    """Rollout of per-layer attention weights (each (B, heads, N, N), first layer first).

    Returns (B, N, N): entry [i, j] is how much token i at the output draws on input token j;
    every row sums to 1.
    """
    if len(attentions) == 0:
        raise ValueError("attention rollout needs the weights of at least one layer")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    result = None
    for weights in attentions:
        a = fuse_heads(weights, fusion).float()
        if discard_ratio > 0:
            k = int(a.shape[-1] * discard_ratio)   # the k weakest weights of each row go
            if k:
                lowest = a.topk(k, dim=-1, largest=False).indices
                a = a.scatter(-1, lowest, 0.0)
        if residual:
            eye = torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)
            a = 0.5 * a + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else a @ result
    return result


def class_token_map(joint: torch.Tensor, grid: int | None = None) -> torch.Tensor:
    """The class token's row over the patches, as (B, grid, grid) maps scaled to max 1.

    ``joint`` is (B, N+1, N+1) (a rollout or one layer's fused weights), token 0 the class
    token; ``grid`` defaults to sqrt(N).
    """
    n = joint.shape[-1] - 1
    grid = grid or int(round(n ** 0.5))
    if grid * grid != n:
        raise ValueError(f"{n} patch tokens do not form a {grid}x{grid} grid")
    row = joint[:, 0, 1:]
    row = row / row.amax(-1, keepdim=True).clamp_min(1e-12)
    return row.reshape(-1, grid, grid)


@torch.no_grad()
def vit_attentions(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and per-layer attention weights of a ``cnnbook.models.vit.VisionTransformer``
    (eval mode, no gradients; the model's training mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        logits, maps = model(x, return_attention=True)
    finally:
        model.train(was_training)
    return logits, maps
