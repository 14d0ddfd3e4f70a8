"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a small student learns from a big
teacher's softened predictions as well as from the labels.

A trained network's wrong answers carry information: a cat image the teacher calls 5 %
dog and 0.01 % truck says cats look like dogs. At temperature ``T`` the softmax
``softmax(z / T)`` spreads probability over those "dark knowledge" classes, and the student
is trained to match the teacher's softened distribution (KL divergence) besides the usual
cross-entropy with the labels:

    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)

The ``T^2`` keeps the soft term's gradients on the same scale when ``T`` changes (the
gradient of the softened KL shrinks as ``1 / T^2``). The sources set ``T = 4`` and
``alpha = 0.7``.

``Distillation(teacher)`` plugs into ``cnnbook.fit`` as chapter 16's ``BatchMixer`` does:
``fit(student, kd.wrap(train_iter), test_iter, loss_fn=kd.loss)``. The wrapped loader runs
the teacher (eval mode, no gradients) on each batch it hands out, and ``loss`` uses those
logits.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from cnnbook.data.loader import MapBatches

__all__ = ["distillation_loss", "Distillation"]


def _check(temperature: float, alpha: float) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)
            and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not (isinstance(alpha, (int, float)) and 0 <= alpha <= 1):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, temperature: float = 4.0,
                      alpha: float = 0.7) -> torch.Tensor:
    """``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``,
    the KL averaged over the batch (``batchmean``, the true KL per example)."""
    _check(temperature, alpha)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    t = temperature
    soft = F.kl_div(F.log_softmax(student_logits / t, dim=1),
                    F.log_softmax(teacher_logits.detach() / t, dim=1),
                    reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * t * t * soft + (1 - alpha) * hard


class Distillation:
    """A teacher, a temperature and a weight: ``wrap`` a loader, use ``loss`` as ``loss_fn``."""

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.7):
        _check(temperature, alpha)
        self.teacher = teacher.eval()
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.last: torch.Tensor | None = None        # the teacher's logits of the last batch
        self.last_labels: torch.Tensor | None = None  # and its labels, to check the pairing

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        self.teacher.eval()
        device = next(self.teacher.parameters()).device
        return self.teacher(x.to(device))

    def wrap(self, loader):
        """The loader, unchanged, except that the teacher's logits for each batch are kept."""
        return MapBatches(loader, self._remember_teacher)

    def _remember_teacher(self, x, y):
        self.last, self.last_labels = self.teacher_logits(x), y
        return x, y

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The distillation loss of the batch last produced by ``wrap``'s loader.

        ``y`` may be the first examples of that batch only (a rehearsal,
        ``CNNBOOK_MAX_BATCH_SIZE``, trains on a prefix of every batch).
        """
        n = len(y)
        if (self.last is None or self.last.shape[1:] != logits.shape[1:] or n > len(self.last)
                or not torch.equal(self.last_labels[:n].to(y.device), y)):
            raise RuntimeError("Distillation.loss needs the batch from the loader returned by "
                               "kd.wrap(...): train with fit(student, kd.wrap(train_iter), "
                               "..., loss_fn=kd.loss)")
        return distillation_loss(logits, self.last[:n].to(logits.device), y, self.temperature,
                                 self.alpha)
