"""Weight decay two ways: an L2 penalty in the loss, or decoupled decay (Loshchilov & Hutter).

*L2 regularisation* adds ``wd/2 * ||w||^2`` to the loss, so ``wd * w`` is added to the
gradient. *Weight decay* shrinks the weights directly, ``w <- w - lr * wd * w``, next to
the gradient step. For plain SGD the two are the same update. For Adam they are not:
the L2 gradient goes through Adam's per-parameter scaling ``1 / (sqrt(v) + eps)``, so
weights with large gradients are decayed *less*. Loshchilov and Hutter (2019,
"Decoupled weight decay regularization") decoupled the decay from the adaptive step:
AdamW. ``torch.optim.Adam(weight_decay=)`` is the L2 version, ``torch.optim.AdamW`` the
decoupled one; ``adam_step`` below writes both out by hand.
"""
from __future__ import annotations

import torch

__all__ = ["adam_step", "sgd_step"]


def sgd_step(w: torch.Tensor, grad: torch.Tensor, lr: float, weight_decay: float = 0.0,
             decoupled: bool = False) -> torch.Tensor:
    """One plain SGD step: L2 (``grad + wd * w``) or decoupled (``w - lr * wd * w``)."""
    if decoupled:
        return w - lr * grad - lr * weight_decay * w
    return w - lr * (grad + weight_decay * w)


def adam_step(w: torch.Tensor, grad: torch.Tensor, state: dict, lr: float = 1e-3,
              betas: tuple = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
              decoupled: bool = False) -> torch.Tensor:
    """One Adam step on ``w`` (returned); ``state`` (``m``, ``v``, ``t``) is updated in place.

    ``decoupled=False``: L2, the decay joins the gradient before the moments, as
    ``torch.optim.Adam(weight_decay=wd)`` does. ``decoupled=True``: AdamW, the weights
    are first shrunk by ``lr * wd``, and the moments see the raw gradient only.
    """
    beta1, beta2 = betas
    if decoupled:
        w = w * (1 - lr * weight_decay)
    else:
        grad = grad + weight_decay * w
    t = state.get("t", 0) + 1
    m = beta1 * state.get("m", torch.zeros_like(w)) + (1 - beta1) * grad
    v = beta2 * state.get("v", torch.zeros_like(w)) + (1 - beta2) * grad * grad
    state.update(t=t, m=m, v=v)
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return w - lr * m_hat / (v_hat.sqrt() + eps)
