"""Gradient saliency: which input pixels the class score is most sensitive to.

* ``vanilla_gradient``: ``d y_c / d x`` (Simonyan, Vedaldi and Zisserman, 2013); the map
  shown is ``saliency_map``: the largest absolute value over the colour channels.
* ``smoothgrad``: the gradient averaged over noisy copies ``x + N(0, sigma^2)`` with
  ``sigma = noise * (max(x) - min(x))`` (Smilkov et al., 2017): sharper, less speckled.
* ``integrated_gradients``: ``(x - x') * integral_0^1 d y_c / d x (x' + a (x - x')) da``
  from a baseline ``x'`` (Sundararajan, Taly and Yan, 2017), here with the midpoint rule.
  Its attributions add up to ``y_c(x) - y_c(x')`` (completeness), which the tests check.

``y_c`` is the class logit. Written out because chapter 20 teaches them; the tests compare
them with Captum's ``Saliency`` and ``IntegratedGradients``.
"""
from __future__ import annotations

import torch
from torch import nn

from cnnbook.interpret._common import as_batch, as_targets, model_device, select

__all__ = ["input_gradient", "vanilla_gradient", "smoothgrad", "integrated_gradients",
           "saliency_map"]


def input_gradient(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """``d logit[target] / d x`` for a batch (N, C, H, W); ``target`` one class or one per image."""
    x = as_batch(x).to(model_device(model)).detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        t = as_targets(target, len(x), logits.shape[1], logits)
        (g,) = torch.autograd.grad(select(logits, t).sum(), x)
    return g.detach()


class _Eval:
    """Run a model in eval mode and put its mode back afterwards."""

    def __init__(self, model: nn.Module):
        self.model, self.was = model, model.training

    def __enter__(self):
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was)


def _targets(model, x, target) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x.to(model_device(model)))
    return as_targets(target, len(x), logits.shape[1], logits)


def vanilla_gradient(model: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """The gradient of the target logit with respect to the input pixels, (N, C, H, W).

    ``target`` None means each image's predicted class."""
    x = as_batch(x)
    with _Eval(model):
        return input_gradient(model, x, _targets(model, x, target))


def smoothgrad(model: nn.Module, x: torch.Tensor, target=None, samples: int = 25,
               noise: float = 0.15, generator: torch.Generator | None = None) -> torch.Tensor:
    """SmoothGrad: the mean gradient over ``samples`` noisy copies of each image, (N, C, H, W).

    The noise's standard deviation is ``noise`` times each image's pixel range (the
    paper's 10-20 % works best). ``target`` None means the class predicted on the clean image.
    """
    x = as_batch(x)
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive whole number, got {samples!r}")
    if not (noise >= 0 and noise < float("inf")):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    with _Eval(model):
        t = _targets(model, x, target)
        span = (x.flatten(1).amax(1) - x.flatten(1).amin(1)).view(-1, 1, 1, 1)
        total = torch.zeros_like(x, device=model_device(model))
        for _ in range(samples):
            eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            total += input_gradient(model, x + noise * span * eps, t)
    return total / samples


def integrated_gradients(model: nn.Module, x: torch.Tensor, target=None, baseline=None,
                         steps: int = 32, chunk: int = 256) -> torch.Tensor:
    """Integrated gradients from ``baseline`` (default: black, all zeros), (N, C, H, W).

    The path integral uses the midpoint rule with ``steps`` points,
    ``alpha_k = (k + 1/2) / steps`` (Captum's ``method="riemann_middle"``); ``chunk`` images
    go through the model at a time.
    """
    x = as_batch(x)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive whole number, got {steps!r}")
    base = torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline, dtype=x.dtype,
                                                                         device=x.device).expand_as(x)
    with _Eval(model):
        t = _targets(model, x, target)
        alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
        path = base[None] + alphas.view(-1, 1, 1, 1, 1) * (x - base)[None]   # (steps, N, C, H, W)
        path = path.reshape(-1, *x.shape[1:])
        tt = t.repeat(steps)
        grads = torch.cat([input_gradient(model, path[i:i + chunk], tt[i:i + chunk])
                           for i in range(0, len(path), chunk)])
    mean_grad = grads.view(steps, *x.shape).mean(0)
    return (x - base).to(mean_grad.device) * mean_grad


def saliency_map(attributions: torch.Tensor) -> torch.Tensor:
    """One map per image, (N, H, W): the largest absolute attribution over the channels
    (Simonyan et al.'s choice for colour images)."""
    a = torch.as_tensor(attributions)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"expected attributions (N, C, H, W), got shape {tuple(a.shape)}")
    return a.abs().amax(dim=1)
