"""ScheduleExplorer: pick a learning-rate schedule, its peak, warm-up and length; see the lr per step.

Controls -> ``schedule_summary`` (which builds the schedule with ``cnnbook.train.schedules``
and runs it with ``schedules.lr_curve``, exactly as ``fit`` would step it) -> the lr at
every step, and, when an lr-finder result is given, the finder's loss curve with the range
of learning rates the schedule visits shaded on it. The numbers beside the picture are the
ones that matter for a budget: the number of steps, the peak and final lr, where the peak
is reached, and the mean lr (how far, roughly, the weights are allowed to travel).
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from cnnbook.train import schedules
from cnnbook.widgets.base import Explorer

SCHEDULES = ("constant", "step", "warmup_cosine", "one_cycle")
_STYLE = {"description_width": "initial"}


def build_schedule(kind: str, epochs: int, warmup_epochs: float = 0.0, gamma: float = 0.1):
    """The ``cnnbook.train.schedules`` factory for ``kind``; the step schedule divides the lr
    by ``1 / gamma`` at 1/2 and 3/4 of training, one-cycle peaks after the warm-up."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}: choose one of {', '.join(SCHEDULES)}")
    if not (isinstance(warmup_epochs, (int, float)) and math.isfinite(warmup_epochs)
            and warmup_epochs >= 0):
        raise ValueError(f"warm-up must be a number of epochs >= 0, got {warmup_epochs!r}")
    if kind in ("warmup_cosine", "one_cycle") and warmup_epochs >= epochs:
        raise ValueError(f"the warm-up ({warmup_epochs:g} epochs) must be shorter than the "
                         f"run ({epochs} epochs)")
    if kind == "constant":
        return schedules.constant()
    if kind == "step":
        milestones = sorted({max(1, round(epochs / 2)), max(1, round(3 * epochs / 4))})
        return schedules.step(milestones, gamma)
    if kind == "warmup_cosine":
        return schedules.warmup_cosine(warmup_epochs, eta_min=0.0)
    # one-cycle needs a rising phase of at least one step
    return schedules.one_cycle(pct_start=max(warmup_epochs / epochs, 1e-3),
                               anneal_strategy="linear")


def schedule_summary(kind: str, peak_lr: float, epochs: int, steps_per_epoch: int,
                     warmup_epochs: float = 0.0) -> dict:
    """The lr at each step of ``kind`` with the given peak, and the numbers that describe it."""
    if not (isinstance(peak_lr, (int, float)) and math.isfinite(peak_lr) and peak_lr > 0):
        raise ValueError(f"the peak learning rate must be a positive number, got {peak_lr!r}")
    for name, value in (("epochs", epochs), ("steps per epoch", steps_per_epoch)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    factory = build_schedule(kind, epochs, warmup_epochs)
    lrs = schedules.lr_curve(factory, epochs, steps_per_epoch, peak_lr)
    return {
        "kind": kind, "lrs": lrs, "steps": len(lrs), "epochs": epochs,
        "steps_per_epoch": steps_per_epoch, "peak_lr": float(lrs.max()),
        "first_lr": float(lrs[0]), "final_lr": float(lrs[-1]), "mean_lr": float(lrs.mean()),
        "peak_step": int(lrs.argmax()), "schedule": repr(factory),
    }


class ScheduleExplorer(Explorer):
    """Schedule, peak lr, warm-up epochs, epochs and batch size (steps per epoch = ceil of
    ``n_train / batch size``). Give ``finder`` (an ``LRFinderResult`` of ``lr_find``) to see,
    beside the schedule, the finder's loss curve with the lrs the schedule visits shaded.
    """

    def __init__(self, kind: str = "one_cycle", peak_lr: float = 0.2, warmup_epochs: float = 1.0,
                 epochs: int = 10, batch_size: int = 512, n_train: int = 50_000, finder=None):
        self.n_train, self.finder = n_train, finder
        controls = {
            "kind": widgets.Dropdown(options=list(SCHEDULES), value=kind, description="schedule",
                                     style=_STYLE),
            "peak_lr": widgets.FloatLogSlider(value=peak_lr, base=10, min=-5, max=1, step=0.1,
                                              description="peak lr", readout_format=".1e",
                                              continuous_update=False, style=_STYLE),
            "warmup_epochs": widgets.FloatSlider(value=warmup_epochs, min=0, max=20, step=0.5,
                                                 description="warm-up epochs",
                                                 continuous_update=False, style=_STYLE),
            "epochs": widgets.IntSlider(value=epochs, min=1, max=100, description="epochs",
                                        continuous_update=False, style=_STYLE),
            "batch_size": widgets.Dropdown(options=[32, 64, 128, 256, 512, 1024, 2048],
                                           value=batch_size, description="batch size",
                                           style=_STYLE),
        }
        super().__init__(controls)

    def compute(self, kind, peak_lr, warmup_epochs, epochs, batch_size):
        steps_per_epoch = -(-self.n_train // batch_size)
        out = schedule_summary(kind, peak_lr, epochs, steps_per_epoch, warmup_epochs)
        lrs = out.pop("lrs")
        panels = 2 if self.finder is not None else 1
        fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.3), squeeze=False)
        ax = axes[0, 0]
        ax.plot(np.arange(len(lrs)) / steps_per_epoch, lrs)
        ax.axvline(out["peak_step"] / steps_per_epoch, color="r", ls=":", lw=1,
                   label=f"peak {out['peak_lr']:.2g} at step {out['peak_step']}")
        ax.axhline(out["mean_lr"], color="gray", ls="--", lw=1,
                   label=f"mean {out['mean_lr']:.2g}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.set_title(f"{kind}: {out['steps']} steps of batch {batch_size}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        if self.finder is not None:
            ax2 = axes[0, 1]
            self.finder.plot(ax=ax2)
            low = max(float(lrs[lrs > 0].min()) if (lrs > 0).any() else out["peak_lr"],
                      float(self.finder.lrs.min()))
            ax2.axvspan(low, out["peak_lr"], color="orange", alpha=0.2,
                        label="lrs this schedule visits")
            ax2.legend(fontsize=8)
            out["finder_suggestion"] = float(self.finder.suggestion)
            out["peak_over_suggestion"] = out["peak_lr"] / float(self.finder.suggestion)
        fig.tight_layout()
        out.update(batch_size=int(batch_size), warmup_epochs=float(warmup_epochs))
        return fig, out
