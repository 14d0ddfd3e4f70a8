"""Backward passes written by hand, and a gradient check: the reusable pieces of chapter 04.

* ``conv2d_backward``: the gradients of ``F.conv2d`` (any channels, stride and padding).
  The kernel gradient is the cross-correlation of the input with the output gradient;
  the input gradient is the *full* convolution of the output gradient with the flipped
  kernel, cropped where the forward pass padded.
* ``max_pool2d_backward`` (route each gradient to the arg-max of its window) and
  ``avg_pool2d_backward`` (spread it evenly, ``1/|R|`` per cell).
* ``numerical_grad`` and ``relative_error``: central differences, to check any of the
  above (or autograd) the way backpropagation code has been debugged since the 1980s.

Everything is vectorised with ``F.conv2d`` / ``F.unfold`` / ``F.fold``; the loops that
spell out the formulas one index at a time are in the notebook. Each function agrees
with autograd to float rounding (see ``tests/test_backprop.py``).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["conv2d_backward", "max_pool2d_backward", "avg_pool2d_backward",
           "numerical_grad", "relative_error"]


def _check_4d(**tensors) -> None:
    for name, t in tensors.items():
        if t.dim() != 4:
            raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(t.shape)}")


def _dilate(t: torch.Tensor, stride: int) -> torch.Tensor:
    """Insert ``stride - 1`` zeros between neighbouring cells of the last two axes."""
    if stride == 1:
        return t
    n, c, h, w = t.shape
    out = t.new_zeros(n, c, (h - 1) * stride + 1, (w - 1) * stride + 1)
    out[..., ::stride, ::stride] = t
    return out


def conv2d_backward(x: torch.Tensor, weight: torch.Tensor, grad_out: torch.Tensor,
                    stride: int = 1, padding: int = 0):
    """Gradients ``(dL/dx, dL/dweight, dL/dbias)`` of ``Z = F.conv2d(x, weight, b, stride, padding)``.

    ``grad_out`` is ``dL/dZ`` (N, C_out, H', W'). With ``Xp`` the padded input:
    ``dW[o, c, u, v] = sum_{n,i,j} dZ[n, o, i, j] Xp[n, c, s i + u, s j + v]`` (a
    cross-correlation of input and output gradient, summed over the batch) and
    ``dXp[n, c, p, q] = sum_{o,i,j} dZ[n, o, i, j] W[o, c, p - s i, q - s j]`` (a full
    convolution with the flipped kernel); ``dx`` is ``dXp`` with the padding cropped off.
    """
    _check_4d(x=x, weight=weight, grad_out=grad_out)
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    n, c, h, w = x.shape
    o, c_w, kh, kw = weight.shape
    if c_w != c:
        raise ValueError(f"weight expects {c_w} input channels, x has {c}")
    hp, wp = h + 2 * padding, w + 2 * padding
    ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    if grad_out.shape != (n, o, ho, wo):
        raise ValueError(f"grad_out must have shape {(n, o, ho, wo)} for this convolution, "
                         f"got {tuple(grad_out.shape)}")
    xp = F.pad(x, (padding,) * 4)
    # dW: batch and input channel swap roles, the output gradient becomes the kernel,
    # and the stride of the forward pass becomes a dilation
    gw = F.conv2d(xp.transpose(0, 1), grad_out.transpose(0, 1), dilation=stride)
    gw = gw[..., :kh, :kw].transpose(0, 1)  # (C_out, C, kh, kw); extra rows: unused input
    # dX: spread the output gradient back to stride spacing, pad it by k - 1 ("full"),
    # and correlate with the flipped kernel whose in/out channels are swapped
    gd = F.pad(_dilate(grad_out, stride), (kw - 1, kw - 1, kh - 1, kh - 1))
    gxp = F.conv2d(gd, weight.flip(-2, -1).transpose(0, 1))
    # rows/columns at the end that no window reached get no gradient
    gxp = F.pad(gxp, (0, wp - gxp.shape[-1], 0, hp - gxp.shape[-2]))
    gx = gxp[..., padding:padding + h, padding:padding + w]
    return gx, gw, grad_out.sum(dim=(0, 2, 3))


def _windows(x: torch.Tensor, kernel_size: int, stride: int | None):
    stride = kernel_size if stride is None else stride
    if kernel_size < 1 or stride < 1:
        raise ValueError(f"kernel_size and stride must be positive, got {kernel_size}, {stride}")
    n, c, h, w = x.shape
    if h < kernel_size or w < kernel_size:
        raise ValueError(f"a {h}x{w} map is smaller than the {kernel_size}x{kernel_size} window")
    return stride, (h - kernel_size) // stride + 1, (w - kernel_size) // stride + 1


def max_pool2d_backward(x: torch.Tensor, grad_out: torch.Tensor, kernel_size: int,
                        stride: int | None = None) -> torch.Tensor:
    """``dL/dx`` of ``F.max_pool2d(x, kernel_size, stride)``: each window's gradient goes to
    its arg-max cell only (the first one on a tie, as PyTorch does), zero elsewhere.

    Overlapping windows (stride < kernel_size) that pick the same cell add up there.
    """
    _check_4d(x=x, grad_out=grad_out)
    stride, ho, wo = _windows(x, kernel_size, stride)
    n, c, h, w = x.shape
    if grad_out.shape != (n, c, ho, wo):
        raise ValueError(f"grad_out must have shape {(n, c, ho, wo)}, got {tuple(grad_out.shape)}")
    k2 = kernel_size * kernel_size
    cols = F.unfold(x.reshape(n * c, 1, h, w), kernel_size, stride=stride)  # (NC, k2, L)
    winner = F.one_hot(cols.argmax(dim=1), k2).transpose(1, 2).to(grad_out.dtype)
    routed = winner * grad_out.reshape(n * c, 1, ho * wo)                   # (NC, k2, L)
    gx = F.fold(routed, (h, w), kernel_size, stride=stride)
    return gx.reshape(n, c, h, w)


def avg_pool2d_backward(grad_out: torch.Tensor, input_size: tuple[int, int],
                        kernel_size: int, stride: int | None = None) -> torch.Tensor:
    """``dL/dx`` of ``F.avg_pool2d(x, kernel_size, stride)`` for an input of ``input_size``
    (H, W): each window's gradient is spread evenly, ``1 / kernel_size^2`` to every cell."""
    _check_4d(grad_out=grad_out)
    h, w = input_size
    n, c = grad_out.shape[:2]
    stride, ho, wo = _windows(grad_out.new_empty(1, 1, h, w), kernel_size, stride)
    if grad_out.shape[-2:] != (ho, wo):
        raise ValueError(f"grad_out must be {ho}x{wo} for a {h}x{w} input, "
                         f"got {tuple(grad_out.shape[-2:])}")
    k2 = kernel_size * kernel_size
    spread = grad_out.reshape(n * c, 1, ho * wo).expand(-1, k2, -1) / k2
    return F.fold(spread, (h, w), kernel_size, stride=stride).reshape(n, c, h, w)


def numerical_grad(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   eps: float = 1e-6) -> torch.Tensor:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / 2 eps`` for every entry of ``x``.

    ``f`` returns a scalar. One pair of evaluations per entry, so keep ``x`` small; use
    float64, in which the error is about ``eps^2`` (truncation) plus ``1e-16 / eps`` (rounding).
    """
    x = x.detach().clone()
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + eps
            up = float(f(x))
            flat[i] = old - eps
            down = float(f(x))
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max(max |a|, max |b|)``: about 1e-7 in float32 (1e-15 in float64) when
    two gradients agree, above 1e-3 when one of them has a bug."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    scale = max(float(a.abs().max()), float(b.abs().max()), 1e-300)
    return float((a - b).abs().max()) / scale
