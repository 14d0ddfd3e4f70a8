"""Callbacks: small objects ``fit`` calls after every epoch, e.g. early stopping.

The convention, kept from the start: a callback is any callable

    cb(row, model, optimizer) -> bool | None

called after each epoch with that epoch's history row (a dict: ``epoch``, ``train_loss``,
``train_acc``, ``test_acc``, ``lr``, ...). Returning True stops training after this epoch.
A plain function is enough for most needs (print something, log to a file, stop at a
target accuracy).

A callback that needs more subclasses ``Callback`` and overrides any of these hooks, which
``fit`` calls if present (a plain function has none of them):

- ``on_fit_start(model, optimizer, history)``: before the first epoch (``history`` is the
  list of rows already done, non-empty when a run resumes from a checkpoint);
- ``on_batch_end(model, optimizer)``: after every optimiser step (and the per-batch
  schedule step), for what acts on the weights during an epoch (``Lookahead``);
- ``on_fit_end(model, optimizer, history)``: once training ends (finished, stopped by a
  callback, or interrupted with Ctrl-C); may return a dict that ``fit`` adds to the
  result record, and a key ``"restored_epoch"`` tells ``fit`` which epoch's weights the
  model now holds;
- ``state_dict()`` / ``load_state_dict(state)``: what the callback has counted so far,
  saved in checkpoints so a resumed run continues exactly as the uninterrupted one.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class Callback:
    """Base class: no-op hooks; subclasses override ``__call__`` and what they need."""

    def __call__(self, row: dict, model: nn.Module, optimizer) -> bool:
        return False

    def on_fit_start(self, model: nn.Module, optimizer, history: list[dict]) -> None:
        pass

    def on_fit_end(self, model: nn.Module, optimizer, history: list[dict]) -> dict | None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; keep the best weights.

    ``monitor`` is a history column ("test_acc", "train_loss", ...); ``mode`` is "max" or
    "min" ("auto": "max" for accuracies, "min" otherwise). An epoch improves on the best
    so far when it beats it by more than ``min_delta``. With ``restore_best`` the model
    gets the best epoch's weights back when training ends (a copy is kept, on the model's
    device, each time the monitored value improves).
    """

    def __init__(self, monitor: str = "test_acc", mode: str = "auto", patience: int = 10,
                 min_delta: float = 0.0, restore_best: bool = True):
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max', 'min' or 'auto', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a whole number >= 1, got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = float(min_delta), restore_best
        self.reset()

    def reset(self) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_state: dict | None = None

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def __call__(self, row: dict, model: nn.Module, optimizer) -> bool:
        if self.monitor not in row:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which this run's history "
                           f"does not have (columns: {', '.join(row)}); pass a test_iter to "
                           "fit to monitor test_acc, or monitor 'train_loss'")
        value = float(row[self.monitor])
        if math.isfinite(value) and self.improved(value):
            self.best, self.best_epoch, self.wait = value, int(row["epoch"]), 0
            if self.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = int(row["epoch"])
            return True
        return False

    def on_fit_end(self, model: nn.Module, optimizer, history: list[dict]) -> dict:
        out = {"early_stopping": {"monitor": self.monitor, "best": self.best,
                                  "best_epoch": self.best_epoch,
                                  "stopped_epoch": self.stopped_epoch}}
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)
            out["restored_epoch"] = self.best_epoch
        return out

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_state = state["best_state"]


class Lookahead(Callback):
    """Pull the weights back to a slow moving average every few steps (airbench's lookahead).

    Every ``every`` optimiser steps, the average moves toward the current weights,
    ``avg += (1 - decay) * (w - avg)``, and the weights are set to it, ``w = avg``. The decay
    grows as ``max_decay * (step / total_steps) ** power``: early in training (decay ~ 0) the
    fast weights are left alone; late, when the learning rate is small and the weights only
    jitter around a minimum, averaging removes the jitter. After the last step the model holds
    the average. This is the schedule of Jordan's airbench (2024); Zhang et al.'s Lookahead
    optimiser (2019) uses a fixed interpolation instead. Batch-norm running statistics, being
    floating-point state, are averaged along with the weights, as airbench does.

    ``total_steps``: the run's optimiser steps (epochs x batches per epoch).
    """

    def __init__(self, total_steps: int, every: int = 5, max_decay: float = 0.95 ** 5,
                 power: float = 3.0):
        if int(total_steps) < 1 or int(every) < 1:
            raise ValueError("total_steps and every must be positive")
        if not 0 <= max_decay < 1:
            raise ValueError(f"max_decay must be in [0, 1), got {max_decay}")
        self.total_steps, self.every = int(total_steps), int(every)
        self.max_decay, self.power = float(max_decay), float(power)
        self.step, self.average = 0, None

    def decay(self, step: int) -> float:
        """The averaging weight at ``step``: ``max_decay * (step / total_steps) ** power``."""
        return self.max_decay * min(step / self.total_steps, 1.0) ** self.power

    def _tensors(self, model: nn.Module) -> dict:
        return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}

    def on_fit_start(self, model: nn.Module, optimizer, history: list[dict]) -> None:
        if self.average is None:   # a resumed run keeps the average from its checkpoint
            self.average = {k: v.detach().clone() for k, v in self._tensors(model).items()}

    @torch.no_grad()
    def on_batch_end(self, model: nn.Module, optimizer) -> None:
        self.step += 1
        last = self.step == self.total_steps
        if self.step % self.every and not last:
            return
        decay = 1.0 if last else self.decay(self.step)   # last step: the weights = the average
        for name, w in self._tensors(model).items():
            avg = self.average[name]
            avg.lerp_(w, 1 - decay)
            w.copy_(avg)

    def state_dict(self) -> dict:
        return {"step": self.step, "average": self.average}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.average = state["step"], state["average"]


def as_callbacks(callbacks) -> list:
    """``fit``'s ``callbacks`` argument as a list (one callable alone is accepted too)."""
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    try:
        cbs = list(callbacks)
    except TypeError:
        raise TypeError(f"callbacks must be a list of callables, got {type(callbacks).__name__}") from None
    for cb in cbs:
        if not callable(cb):
            raise TypeError(f"each callback must be callable as cb(row, model, optimizer); "
                            f"got {cb!r}")
    return cbs


def call_hook(cb, hook: str, *args):
    """Call ``cb.hook(*args)`` if the callback has that hook (plain functions do not)."""
    method = getattr(cb, hook, None)
    return method(*args) if callable(method) else None


__all__ = ["Callback", "EarlyStopping", "Lookahead", "as_callbacks", "call_hook"]
