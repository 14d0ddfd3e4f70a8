"""Named training recipes: the optimiser, schedule and loss that ``fit`` takes, as one choice.

An architecture chapter of Part II trains its network two ways, and its ``KNOBS`` table names
the recipe of each profile:

- ``"d2l"``: what d2l's ``train_ch6`` does. Plain SGD at a constant learning rate, plain
  cross-entropy. The ``full`` profile keeps it, so the chapter's accuracy compares honestly
  with d2l's published figure for the same network.
- ``"laptop"``: what Part III teaches (chapters 16 and 18), for the ``cpu`` profile's ten
  minutes. SGD with Nesterov momentum 0.9, weight decay 5e-4 on weights (not on biases and
  norm layers), a one-cycle schedule that peaks at the chapter's learning rate, and label
  smoothing 0.1. A short run then ends annealed instead of mid-descent. The architecture
  chapters' cpu runs with it are in the README's results table, beside d2l's figures.

``recipe(name).fit_kwargs(lr)`` gives the keyword arguments of ``fit``::

    cnnbook.fit(model, train_iter, test_iter, epochs=8, **recipe("laptop").fit_kwargs(0.05))
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from cnnbook.train import optim, schedules


@dataclass(frozen=True)
class Recipe:
    """The settings of one way to train; ``fit_kwargs(lr)`` turns them into ``fit``'s arguments."""

    name: str
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str | None = None          # None (constant lr) or "one_cycle"
    label_smoothing: float = 0.0
    summary: str = ""

    def fit_kwargs(self, lr: float) -> dict:
        """``lr``, ``optimizer``, ``scheduler`` and ``loss_fn`` for ``fit`` (``lr`` is the peak)."""
        if not lr > 0:
            raise ValueError(f"the learning rate must be a positive number, got {lr!r}")
        if self.momentum == 0 and self.weight_decay == 0:
            optimizer = "sgd"            # fit's own plain SGD, exactly as d2l builds it
        else:
            optimizer = optim.sgd(momentum=self.momentum, nesterov=self.nesterov,
                                  weight_decay=self.weight_decay)
        scheduler = schedules.one_cycle() if self.schedule == "one_cycle" else None
        return {"lr": lr, "optimizer": optimizer, "scheduler": scheduler,
                "loss_fn": nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)}

    def describe(self) -> dict:
        """The recipe as plain values, for a result record's ``extra``."""
        return {"recipe": self.name, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay, "schedule": self.schedule or "constant",
                "label_smoothing": self.label_smoothing}


RECIPES: dict[str, Recipe] = {
    "d2l": Recipe("d2l", summary="plain SGD at a constant learning rate, cross-entropy "
                                 "(d2l's train_ch6)"),
    "laptop": Recipe("laptop", momentum=0.9, nesterov=True, weight_decay=5e-4,
                     schedule="one_cycle", label_smoothing=0.1,
                     summary="SGD with Nesterov momentum 0.9 and weight decay 5e-4, a one-cycle "
                             "schedule peaking at the learning rate, label smoothing 0.1"),
}


def recipe(name: str) -> Recipe:
    """The recipe called ``name`` (one of ``RECIPES``)."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}") from None
