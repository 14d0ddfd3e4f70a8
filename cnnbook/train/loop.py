"""One readable training loop, ``fit``, used by every chapter.

    result = fit(model, train_iter, test_iter, epochs=10, lr=0.9, name="lenet5", chapter="05")
    result.history        # one row per epoch: loss, accuracies, seconds, examples/second
    result.test_acc

What it does beyond d2l's ``train_ch6``: a tqdm progress bar (a widget in Jupyter, plain
text in a terminal), a live loss/accuracy plot in notebooks, metrics accumulated on the
device (no per-step synchronisation), a NaN/inf loss stops training with a message, and
each run leaves a JSON result record (``cnnbook.results``) that ``make book`` collects.
``callbacks`` and ``scheduler`` keep it open for schedules, checkpoints and early stopping.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn

from cnnbook.config import active_profile, describe_device, get_device
from cnnbook.train.optim import make_optimizer


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message says when and what to try."""


@dataclass
class FitResult:
    history: pd.DataFrame
    seconds: float
    examples_per_sec: float
    record: dict = field(default_factory=dict)
    record_path: Path | None = None

    @property
    def test_acc(self) -> float | None:
        return self.record.get("test_acc")

    @property
    def train_acc(self) -> float:
        return self.record["train_acc"]

    @property
    def train_loss(self) -> float:
        return self.record["train_loss"]


def init_weights(model: nn.Module, scheme: str = "xavier") -> nn.Module:
    """Re-initialise conv and linear weights: ``"xavier"`` (d2l's choice) or ``"kaiming"``."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                raise ValueError(f"unknown init scheme {scheme!r}: use 'xavier' or 'kaiming'")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def accuracy_count(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions, as a tensor on the logits' device (no sync)."""
    return (logits.argmax(dim=1) == y).sum()


@torch.no_grad()
def evaluate(model: nn.Module, data_iter: Iterable, device=None,
             loss_fn: Callable | None = None) -> dict:
    """Accuracy (and mean loss) of ``model`` on every batch of ``data_iter``, in eval mode."""
    device = device or next(model.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    correct = torch.zeros((), device=device)
    loss_sum = torch.zeros((), device=device)
    n = 0
    for X, y in data_iter:
        X, y = X.to(device), y.to(device)
        logits = model(X)
        correct += accuracy_count(logits, y)
        loss_sum += loss_fn(logits, y) * len(y)
        n += len(y)
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate() got an empty data iterator")
    return {"acc": correct.item() / n, "loss": loss_sum.item() / n}


@torch.no_grad()
def predict(model: nn.Module, data_iter: Iterable, device=None):
    """Predicted and true labels over a whole loader (for confusion matrices)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, labels = [], []
    for X, y in data_iter:
        preds.append(model(X.to(device)).argmax(dim=1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(preds), torch.cat(labels)


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class LivePlot:
    """Loss and accuracy curves redrawn in place after every epoch (notebooks only)."""

    def __init__(self, title: str):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.plt = plt
        self.fig, self.ax = plt.subplots(figsize=(5, 3.2))
        self.title = title
        self.handle = display(self.fig, display_id=True)

    def update(self, history: list[dict]) -> None:
        from cnnbook.viz import plot_history

        self.ax.clear()
        plot_history(history, ax=self.ax, title=self.title)
        self.handle.update(self.fig)

    def close(self) -> None:
        self.plt.close(self.fig)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False,
                dynamic_ncols=True, mininterval=0.5)


def fit(model: nn.Module, train_iter, test_iter=None, epochs: int = 10, lr: float = 0.1, *,
        optimizer: str | torch.optim.Optimizer = "sgd", momentum: float = 0.0,
        weight_decay: float = 0.0, loss_fn: Callable | None = None, init: str | None = None,
        scheduler=None, callbacks: Iterable[Callable] = (), device=None,
        name: str | None = None, chapter: str | None = None, profile: str | None = None,
        progress: bool = True, live_plot: bool | None = None, record: bool = True,
        check_every: int = 25, extra: dict | None = None) -> FitResult:
    """Train ``model`` for ``epochs`` on ``train_iter``, evaluating on ``test_iter`` each epoch.

    ``optimizer`` is "sgd", "adam", "adamw" or an optimizer you built; ``init`` re-initialises
    weights first ("xavier" as d2l does, "kaiming", or None to keep them). ``callbacks`` are
    called as ``cb(row, model, optimizer)`` after each epoch; one returning True stops
    training. Examples/second is measured over the training steps only (data fetch
    included, evaluation and plotting excluded). Raises ``TrainingDiverged`` on a NaN loss.
    """
    device = torch.device(device) if device is not None else get_device()
    profile = profile or active_profile()
    name = name or type(model).__name__.lower()
    if epochs < 1:
        raise ValueError("epochs must be at least 1")
    if init is not None:
        init_weights(model, init)
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    opt = make_optimizer(optimizer, model, lr, momentum, weight_decay)
    live = _in_notebook() if live_plot is None else live_plot
    plot = LivePlot(f"{name} ({profile})") if live else None

    history: list[dict] = []
    train_seconds, train_examples = 0.0, 0
    wall_start = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            n = 0
            bar = _progress(len(train_iter), f"epoch {epoch}/{epochs}", progress)
            t0 = time.perf_counter()
            for step, (X, y) in enumerate(train_iter, 1):
                X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
                opt.zero_grad(set_to_none=True)
                logits = model(X)
                loss = loss_fn(logits, y)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    loss_sum += loss.detach() * len(y)
                    correct += accuracy_count(logits, y)
                n += len(y)
                if step % check_every == 0:
                    running = loss_sum.item() / n
                    _check_finite(running, epoch, step, lr)
                    bar.set_postfix(loss=f"{running:.3f}", acc=f"{correct.item() / n:.3f}")
                bar.update(1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch_seconds = time.perf_counter() - t0
            bar.close()
            if n == 0:
                raise ValueError("the training iterator gave no batches")
            train_seconds += epoch_seconds
            train_examples += n
            row = {"epoch": epoch, "train_loss": loss_sum.item() / n,
                   "train_acc": correct.item() / n}
            _check_finite(row["train_loss"], epoch, step, lr)
            if test_iter is not None:
                row["test_acc"] = evaluate(model, test_iter, device)["acc"]
            row["seconds"] = epoch_seconds
            row["examples_per_sec"] = n / epoch_seconds
            if scheduler is not None:
                row["lr"] = opt.param_groups[0]["lr"]
                scheduler.step()
            history.append(row)
            if plot:
                plot.update(history)
            stop = [cb(row, model, opt) for cb in callbacks]
            if any(stop):
                break
    finally:
        if plot:
            plot.close()
    wall = time.perf_counter() - wall_start
    df = pd.DataFrame(history)
    last = history[-1]
    rec = {
        "name": name, "chapter": chapter, "model": type(model).__name__, "profile": profile,
        "device": describe_device(device), "epochs": len(history), "lr": lr,
        "batch_size": getattr(train_iter, "batch_size", None),
        "train_examples": getattr(train_iter, "num_examples", None),
        "params": sum(p.numel() for p in model.parameters()),
        "train_loss": last["train_loss"], "train_acc": last["train_acc"],
        "test_acc": last.get("test_acc"), "seconds": wall, "train_seconds": train_seconds,
        "examples_per_sec": train_examples / train_seconds,
        "torch": torch.__version__, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    }
    path = None
    if record:
        from cnnbook.results import write_record

        path = write_record(rec, profile, f"{chapter}-{name}" if chapter else name)
    return FitResult(df, wall, rec["examples_per_sec"], rec, path)


def _check_finite(value: float, epoch: int, step: int, lr: float) -> None:
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"the training loss became {value} in epoch {epoch} by step {step}: training "
            f"stopped. The learning rate ({lr}) is probably too high for this model; try a "
            "smaller one, or add batch normalisation.")
