"""Learning-rate schedules for ``fit``, built from torch's schedulers.

A schedule factory is called as ``factory(optimizer, epochs, steps_per_epoch)`` and returns a
``torch.optim.lr_scheduler.LRScheduler``; its ``interval`` says when ``fit`` steps it: after
every batch ("batch") or after every epoch ("epoch"). ``fit`` builds it once the optimiser
exists, because a schedule needs the optimiser and the number of steps (which only ``fit``
knows).

    fit(model, ..., optimizer=optim.sgd(0.1, weight_decay=5e-4), scheduler=warmup_cosine(2))

- ``constant()``: the lr never changes (the baseline).
- ``step(30, gamma=0.1)``: divide by 10 every 30 epochs (ResNet's recipe); ``step([50, 75])``
  at the listed epochs.
- ``warmup_cosine(5, eta_min=1e-6)``: linear warm-up from a small lr to the optimiser's lr
  (large batches and Adam are unstable in the first steps, Goyal et al. 2017), then half a
  cosine down to ``eta_min`` (Loshchilov & Hutter's SGDR without restarts), per batch.
- ``one_cycle(max_lr)``: Smith's one-cycle policy, up to ``max_lr`` and far below the start,
  momentum moving the other way (``OneCycleLR``), per batch.

``lr_curve`` and ``plot_schedules`` show the lr each schedule gives at every step.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.optim import lr_scheduler as sched


class Schedule:
    """A named schedule factory: ``schedule(optimizer, epochs, steps_per_epoch)``."""

    def __init__(self, build: Callable, interval: str, description: str):
        if interval not in ("batch", "epoch"):
            raise ValueError(f"interval must be 'batch' or 'epoch', got {interval!r}")
        self.build, self.interval, self.description = build, interval, description

    def __call__(self, optimizer: torch.optim.Optimizer, epochs: int,
                 steps_per_epoch: int) -> sched.LRScheduler:
        if epochs < 1 or steps_per_epoch < 1:
            raise ValueError(f"a schedule needs epochs >= 1 and steps_per_epoch >= 1, got "
                             f"{epochs} and {steps_per_epoch}")
        return self.build(optimizer, epochs, steps_per_epoch)

    def __repr__(self) -> str:
        return self.description


def constant() -> Schedule:
    """The optimiser's learning rate, unchanged for the whole run."""
    return Schedule(lambda opt, epochs, steps: sched.LambdaLR(opt, lambda epoch: 1.0),
                    "epoch", "constant()")


def step(step_epochs: int | Sequence[int], gamma: float = 0.1) -> Schedule:
    """Multiply the lr by ``gamma`` every ``step_epochs`` epochs, or at each listed epoch."""
    if isinstance(step_epochs, int):
        if step_epochs < 1:
            raise ValueError(f"step_epochs must be at least 1, got {step_epochs}")
        return Schedule(lambda opt, e, s: sched.StepLR(opt, step_epochs, gamma), "epoch",
                        f"step({step_epochs}, gamma={gamma})")
    milestones = sorted(int(m) for m in step_epochs)
    return Schedule(lambda opt, e, s: sched.MultiStepLR(opt, milestones, gamma), "epoch",
                    f"step({milestones}, gamma={gamma})")


def warmup_cosine(warmup_epochs: float = 5, eta_min: float = 1e-6, *,
                  warmup_fraction: float | None = None, start_factor: float = 0.01) -> Schedule:
    """Linear warm-up to the optimiser's lr, then cosine annealing to ``eta_min``, per batch.

    The warm-up lasts ``warmup_epochs`` epochs (may be fractional), or, if given,
    ``warmup_fraction`` of all steps (``warmup_fraction=0.05`` for 5%). It starts at
    ``start_factor`` times the lr and reaches the full lr exactly at step W (the first step
    after the warm-up); the cosine then reaches ``eta_min`` when the last batch is done.
    With parameter groups each group follows the same shape from its own lr; ``eta_min``
    is the same for all.
    """
    if warmup_fraction is not None and not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    if warmup_epochs < 0 or not 0 < start_factor <= 1:
        raise ValueError("warmup_epochs must be >= 0 and start_factor in (0, 1]")

    def build(opt, epochs, steps_per_epoch):
        total = epochs * steps_per_epoch
        warm = round(warmup_fraction * total if warmup_fraction is not None
                     else warmup_epochs * steps_per_epoch)
        if warm >= total:
            raise ValueError(f"the warm-up ({warm} steps) must be shorter than training "
                             f"({total} steps = {epochs} epochs x {steps_per_epoch})")
        cosine = sched.CosineAnnealingLR(opt, T_max=total - warm, eta_min=eta_min)
        if warm == 0:
            return cosine
        linear = sched.LinearLR(opt, start_factor=start_factor, end_factor=1.0,
                                total_iters=warm)
        return sched.SequentialLR(opt, [linear, cosine], milestones=[warm])

    warm = (f"warmup_fraction={warmup_fraction}" if warmup_fraction is not None
            else f"warmup_epochs={warmup_epochs}")
    return Schedule(build, "batch", f"warmup_cosine({warm}, eta_min={eta_min})")


def one_cycle(max_lr: float | Sequence[float] | None = None, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4,
              anneal_strategy: str = "cos", three_phase: bool = False,
              cycle_momentum: bool | None = None, base_momentum: float = 0.85,
              max_momentum: float = 0.95) -> Schedule:
    """Smith's one-cycle policy (``torch.optim.lr_scheduler.OneCycleLR``), stepped per batch.

    The lr rises from ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of the steps,
    then anneals to ``max_lr / (div_factor * final_div_factor)``. ``max_lr=None`` peaks at the
    optimiser's own lr; a single number is the peak of the group with the largest lr, the
    other groups keep their ratio to it (so ``lr_mult`` survives). Momentum (or Adam's beta1)
    cycles between ``max_momentum`` and ``base_momentum``, by default only when the
    optimiser uses momentum (plain SGD stays plain).
    """
    def build(opt, epochs, steps_per_epoch):
        lrs = [g["lr"] for g in opt.param_groups]
        if max_lr is None:
            peak = lrs
        elif isinstance(max_lr, (int, float)):
            peak = [max_lr * lr / max(lrs) for lr in lrs]
        else:
            peak = list(max_lr)
        cycle = cycle_momentum
        if cycle is None:
            cycle = "betas" in opt.defaults or opt.defaults.get("momentum", 0) > 0
        return sched.OneCycleLR(opt, max_lr=peak, total_steps=epochs * steps_per_epoch,
                                pct_start=pct_start, anneal_strategy=anneal_strategy,
                                cycle_momentum=cycle, base_momentum=base_momentum,
                                max_momentum=max_momentum, div_factor=div_factor,
                                final_div_factor=final_div_factor, three_phase=three_phase)

    return Schedule(build, "batch", f"one_cycle(max_lr={max_lr}, pct_start={pct_start})")


def lr_curve(factory: Schedule, epochs: int, steps_per_epoch: int, lr: float) -> np.ndarray:
    """The lr in force at each of the ``epochs * steps_per_epoch`` training steps.

    Runs the schedule on a throw-away SGD optimiser (momentum 0.9, so one-cycle can cycle it)
    and steps it as ``fit`` would: after every batch or after every epoch.
    """
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr, momentum=0.9)
    scheduler = factory(opt, epochs, steps_per_epoch)
    per_batch = getattr(factory, "interval", "epoch") == "batch"
    lrs = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()  # no gradient: nothing moves, but torch sees the usual call order
            if per_batch:
                scheduler.step()
        if not per_batch:
            scheduler.step()
    return np.array(lrs)


def plot_schedules(factories: dict[str, Schedule], epochs: int, steps_per_epoch: int,
                   lr: float, ax=None, log: bool = False):
    """The lr of each named schedule over the same run, against epochs; returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
    else:
        fig = ax.figure
    x = np.arange(epochs * steps_per_epoch) / steps_per_epoch
    for name, factory in factories.items():
        ax.plot(x, lr_curve(factory, epochs, steps_per_epoch, lr), label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
