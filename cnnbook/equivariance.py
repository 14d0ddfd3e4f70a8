"""Translation equivariance and invariance, measured.

A layer ``f`` is translation-equivariant when moving the input moves the output the same
way, ``f(shift(X)) = shift(f(X))``; it is invariant when the output does not move at all,
``f(shift(X)) = f(X)``. Convolutions are equivariant (up to the borders), pooling buys
some invariance, a fully connected layer is neither. The functions here shift images,
measure both properties, and test a classifier on shifted images.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

__all__ = ["shift", "equivariance_error", "representation_change", "shifted_accuracy",
           "DIRECTIONS"]

# right, down, left, up: the four ways a test digit is moved in ``shifted_accuracy``
DIRECTIONS = ((0, 1), (1, 0), (0, -1), (-1, 0))


def shift(x: torch.Tensor, dy: int, dx: int, fill: float = 0.0) -> torch.Tensor:
    """Move the content of images (..., H, W) down by ``dy`` and right by ``dx`` pixels.

    Negative values move up / left. What leaves the frame is lost and the pixels that
    open up are set to ``fill`` (zero: the black background of MNIST), unlike
    ``torch.roll``, which wraps around.
    """
    dy, dx = int(dy), int(dx)
    h, w = x.shape[-2:]
    out = torch.full_like(x, fill)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_r = slice(max(0, -dy), h - max(0, dy))
    dst_r = slice(max(0, dy), h - max(0, -dy))
    src_c = slice(max(0, -dx), w - max(0, dx))
    dst_c = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_r, dst_c] = x[..., src_r, src_c]
    return out


def _crop(t: torch.Tensor, margin: int) -> torch.Tensor:
    if margin == 0:
        return t
    if 2 * margin >= min(t.shape[-2:]):
        raise ValueError(f"a margin of {margin} leaves nothing of a {tuple(t.shape[-2:])} map")
    return t[..., margin:-margin, margin:-margin]


@torch.no_grad()
def equivariance_error(f: Callable, x: torch.Tensor, dy: int, dx: int, stride: int = 1,
                       margin: int | None = None) -> float:
    """Largest ``|f(shift(x)) - shift(f(x))|`` away from the borders, relative to ``max |f(x)|``.

    ``f`` maps images to maps (N, C, H', W'); ``stride`` is how many input pixels one
    output pixel stands for (2 after a 2x2 pooling), so the output is shifted by
    ``dy / stride``. ``margin`` output pixels on every side are ignored (default: the
    output shift plus one), because zeros shifted in and padding differ there.
    About 1e-7 (float rounding) means equivariant.
    """
    if dy % stride or dx % stride:
        raise ValueError(f"shift ({dy}, {dx}) is not a multiple of the stride {stride}")
    oy, ox = dy // stride, dx // stride
    margin = max(abs(oy), abs(ox)) + 1 if margin is None else margin
    fx = f(x)
    moved_then_f = _crop(f(shift(x, dy, dx)), margin)
    f_then_moved = _crop(shift(fx, oy, ox), margin)
    scale = fx.abs().max().clamp(min=1e-12)
    return float((moved_then_f - f_then_moved).abs().max() / scale)


@torch.no_grad()
def representation_change(f: Callable, x: torch.Tensor, dy: int, dx: int) -> float:
    """How much ``f``'s output moves when the input is shifted: mean over the batch of
    ``||f(shift(x)) - f(x)|| / ||f(x)||`` (0 = invariant; no shift is undone)."""
    a = f(x).flatten(1)
    b = f(shift(x, dy, dx)).flatten(1)
    rel = (b - a).norm(dim=1) / a.norm(dim=1).clamp(min=1e-12)
    return float(rel.mean())


@torch.no_grad()
def shifted_accuracy(model: torch.nn.Module, data_iter: Iterable,
                     shifts: Sequence[int] = (0, 1, 2, 3, 4),
                     directions: Sequence[tuple[int, int]] = DIRECTIONS) -> dict:
    """Test accuracy when every image is shifted by ``k`` pixels, for each ``k`` in ``shifts``.

    Each image is moved in every direction of ``directions`` (unit steps, default right,
    down, left and up) and the accuracies are averaged. Returns ``{k: accuracy}``.
    The model is run in eval mode on its own device.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = {k: 0 for k in shifts}
    n = 0
    try:
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            n += len(y)
            for k in shifts:
                moves = [(0, 0)] if k == 0 else [(k * uy, k * ux) for uy, ux in directions]
                hits = sum(int((model(shift(X, dy, dx)).argmax(1) == y).sum())
                           for dy, dx in moves)
                correct[k] += hits / len(moves)
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("shifted_accuracy() got an empty data iterator")
    return {k: correct[k] / n for k in shifts}
