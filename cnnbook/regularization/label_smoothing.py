"""Label smoothing (Szegedy et al., 2016, Inception-v3): train towards soft targets.

A one-hot target asks the softmax for probability 1 on the right class, which only
infinitely large logits give: the network keeps growing its logits and becomes
over-confident. Label smoothing mixes the one-hot target with the uniform distribution,
``q = (1 - eps) * onehot(y) + eps / K`` (``eps = 0.1`` in the paper), so the best output
is a finite logit gap (``optimal_logit_gap``) and the predicted confidence stays below 1.
PyTorch has it built in: ``nn.CrossEntropyLoss(label_smoothing=eps)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["label_smoothing_cross_entropy", "optimal_logit_gap", "smooth_targets"]


def _check_eps(eps: float) -> None:
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label smoothing must be between 0 and 1, got {eps}")


def smooth_targets(y: torch.Tensor, num_classes: int, eps: float = 0.1) -> torch.Tensor:
    """Soft targets ``(1 - eps) * onehot(y) + eps / K`` of shape ``(N, K)``."""
    _check_eps(eps)
    return F.one_hot(y, num_classes).float() * (1 - eps) + eps / num_classes


def label_smoothing_cross_entropy(logits: torch.Tensor, y: torch.Tensor,
                                  eps: float = 0.1) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (N, K) against the smoothed targets of ``y``.

    ``-sum_k q_k log p_k`` averaged over the batch; equal to
    ``nn.CrossEntropyLoss(label_smoothing=eps)(logits, y)``.
    """
    q = smooth_targets(y, logits.shape[1], eps).to(logits.dtype)
    return -(q * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def optimal_logit_gap(eps: float, num_classes: int) -> float:
    """The logit gap (right class minus each other class) that minimises the smoothed loss.

    The minimum is where the softmax equals the target: ``p_right / p_other =
    (1 - eps + eps/K) / (eps/K)``, so the gap is the log of that ratio; ``inf`` for
    ``eps = 0``, which is why one-hot targets keep pushing the logits apart.
    """
    _check_eps(eps)
    if num_classes < 2:
        raise ValueError(f"need at least two classes, got {num_classes}")
    if eps == 0:
        return math.inf
    return math.log((1 - eps + eps / num_classes) / (eps / num_classes))
