"""Leslie Smith's learning-rate range test: a short run with a growing lr picks a good one.

    found = lr_find(model, train_iter, optimizer=optim.sgd(momentum=0.9))
    found.suggestion, found.min_loss_lr / 10     # two common picks
    found.plot()

Train for up to ``num_steps`` mini-batches while the lr grows exponentially from
``start_lr`` to ``end_lr`` (Smith 2017, "Cyclical learning rates"; popularised by fastai).
At first the lr is too small to change the loss; then the loss falls; at some point the lr
is too large and the loss shoots up. The loss of one batch is noisy, so it is smoothed with
an exponential moving average, bias-corrected as in Adam (otherwise the first values are
pulled towards zero). The run stops once the smoothed loss exceeds ``diverge`` (4) times
the best so far.

Two picks are reported: the lr where the smoothed loss falls fastest against log(lr)
(``suggestion``, the steepest descent before the minimum), and a tenth of the lr at the
minimum (``min_loss_lr / 10``; at the minimum itself the lr is already too large). Both are
rules of thumb, not laws: look at the curve.

The model, the optimiser, the loader's shuffling generator and torch's random number
generators are put back as they were, so the test does not change what training does next.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from cnnbook.config import capped, capped_batch
from cnnbook.train.optim import make_optimizer


@dataclass
class LRFinderResult:
    lrs: np.ndarray            # lr of each step (of the group with the largest lr)
    losses: np.ndarray         # smoothed, bias-corrected training loss after each step
    raw_losses: np.ndarray     # the loss of each mini-batch
    suggestion: float          # steepest descent of the smoothed loss against log(lr)
    min_loss_lr: float         # lr at the smallest smoothed loss (pick about a tenth of it)
    steps: int                 # steps run (fewer than asked when the loss diverged)
    stopped_early: bool

    def plot(self, ax=None):
        """Smoothed loss against lr on a log axis, the two picks marked; returns the figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 3.2))
        else:
            fig = ax.figure
        ax.plot(self.lrs, self.losses, label="smoothed loss")
        ax.set_xscale("log")
        for lr, style, label in ((self.suggestion, "r", "steepest"),
                                 (self.min_loss_lr / 10, "g", "min / 10")):
            y = np.interp(np.log(lr), np.log(self.lrs), self.losses)
            ax.plot([lr], [y], style + "o", label=f"{label}: {lr:.2g}")
        finite = self.losses[np.isfinite(self.losses)]
        if len(finite):  # keep the divergence from flattening the interesting part
            ax.set_ylim(finite.min() - 0.05 * abs(finite.min()),
                        min(finite.max(), 2 * finite[0] + 1e-12) * 1.05)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        return fig


def _suggest(lrs: np.ndarray, losses: np.ndarray, skip_start: int) -> tuple[float, float]:
    """(steepest-descent lr before the minimum, lr at the minimum) of a smoothed curve."""
    finite = np.isfinite(losses)
    best = int(np.argmin(np.where(finite, losses, np.inf)))
    lo = min(skip_start, max(best - 1, 0))
    if best - lo < 2:  # too few points before the minimum to take a slope
        return float(lrs[best]), float(lrs[best])
    slope = np.gradient(losses[lo:best + 1], np.log(lrs[lo:best + 1]))
    return float(lrs[lo + int(np.argmin(slope))]), float(lrs[best])


def _rng_states(train_iter) -> dict:
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    gen = getattr(train_iter, "generator", None)
    if isinstance(gen, torch.Generator):
        states["loader"] = gen.get_state()
    return states


def _restore_rng(train_iter, states: dict) -> None:
    torch.set_rng_state(states["cpu"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    if "loader" in states:
        train_iter.generator.set_state(states["loader"])


def lr_find(model: nn.Module, train_iter, optimizer="sgd", start_lr: float = 1e-7,
            end_lr: float = 10.0, num_steps: int = 100, loss_fn: Callable | None = None,
            beta: float = 0.98, diverge: float = 4.0, skip_start: int = 5,
            momentum: float = 0.9, weight_decay: float = 0.0) -> LRFinderResult:
    """Run the range test and put everything back; returns the curve and the suggestions.

    ``optimizer`` is what ``fit`` takes: "sgd" (with ``momentum``, default 0.9, and
    ``weight_decay``), "adam", "adamw", a factory such as ``optim.adamw(weight_decay=0.05)``,
    or a ready optimiser. With parameter groups every group's lr is scaled together, keeping
    their ratios; the lr reported is the largest group's. ``train_iter`` yields ``(X, y)`` batches (a course ``TensorLoader`` or a
    DataLoader) and is cycled if it has fewer than ``num_steps`` batches.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    if num_steps < 2 or not 0 <= beta < 1 or diverge <= 1:
        raise ValueError("need num_steps >= 2, 0 <= beta < 1 and diverge > 1")
    num_steps = capped(num_steps, minimum=2)   # a rehearsal (CNNBOOK_MAX_BATCHES) runs two
    device = next(model.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    saved_model = copy.deepcopy(model.state_dict())
    was_training = model.training
    rng = _rng_states(train_iter)
    by_name = isinstance(optimizer, str)  # momentum and weight_decay apply to a name only
    opt = make_optimizer(optimizer, model, start_lr, momentum if by_name else 0.0,
                         weight_decay if by_name else 0.0)
    saved_opt = copy.deepcopy(opt.state_dict())
    top = max(g["lr"] for g in opt.param_groups)
    ratios = [g["lr"] / top for g in opt.param_groups]
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))
    raw, smooth = [], []
    avg, best, stopped = 0.0, math.inf, False
    try:
        model.train()
        batches = iter(train_iter)
        for k, lr in enumerate(lrs):
            try:
                X, y = next(batches)
            except StopIteration:
                batches = iter(train_iter)
                X, y = next(batches)
            n = capped_batch(len(y))   # a rehearsal (CNNBOOK_MAX_BATCH_SIZE): a small batch
            X, y = X[:n], y[:n]
            for g, r in zip(opt.param_groups, ratios):
                g["lr"] = float(lr) * r
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X.to(device)), y.to(device))
            loss.backward()
            opt.step()
            value = loss.item()
            avg = beta * avg + (1 - beta) * value
            smoothed = avg / (1 - beta ** (k + 1))
            raw.append(value)
            smooth.append(smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge * best:
                stopped = True
                break
            best = min(best, smoothed)
    finally:
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)
        model.train(was_training)
        _restore_rng(train_iter, rng)
    steps = len(smooth)
    lrs, losses = lrs[:steps], np.array(smooth)
    suggestion, min_lr = _suggest(lrs, losses, skip_start)
    return LRFinderResult(lrs, losses, np.array(raw), suggestion, min_lr, steps, stopped)
