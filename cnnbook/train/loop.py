"""One readable training loop, ``fit``, used by every chapter.

    result = fit(model, train_iter, test_iter, epochs=10, lr=0.9, name="lenet5", chapter="05")
    result.history        # one row per epoch: loss, accuracies, lr, seconds, examples/second
    result.test_acc

What it does beyond d2l's ``train_ch6``: a tqdm progress bar (a widget in Jupyter, plain
text in a terminal), a live loss/accuracy plot in notebooks, metrics accumulated on the
device (no per-step synchronisation), and each run leaves a JSON result record
(``cnnbook.results``) that ``make book`` collects. The plain call trains exactly as
before; each practitioner's feature is one argument, backed by a small module:

==========================  ==================================================================
argument                    what it does, and where it lives
==========================  ==================================================================
``optimizer=``              "sgd"/"adam"/"adamw", a ready optimiser, or a factory
                            ``f(model) -> Optimizer`` with parameter groups (``train.optim``)
``scheduler=``              a schedule factory ``f(opt, epochs, steps_per_epoch)`` whose
                            ``interval`` ("batch"/"epoch") says when to step it
                            (``train.schedules``), or a ready ``LRScheduler`` (per epoch)
``precision=``              "fp32", "bf16", "fp16" (CUDA, with a gradient scaler) or "auto"
                            (``train.precision``)
``clip_grad_norm=``         clip the gradients' total norm; history column ``clipped`` is the
                            fraction of steps whose norm was above it
``callbacks=``              ``cb(row, model, opt)`` after each epoch, True stops; classes
                            such as ``EarlyStopping`` add hooks (``train.callbacks``)
``checkpoint=``             a folder: ``last.pt`` / ``best.pt`` written atomically after every
                            epoch; calling fit again resumes there (``train.checkpoint``)
``torchrun``                launched by ``torchrun --nproc-per-node N`` (or ``python -m
                            cnnbook.train``), fit trains with DistributedDataParallel: one
                            shard of each epoch per process, global metrics, rank 0 alone
                            prints and writes (``train.distributed``)
==========================  ==================================================================

Failures keep what was learnt. Ctrl-C (``KeyboardInterrupt``) ends training cleanly and
returns the epochs done so far with ``result.interrupted`` True. A NaN/inf loss raises
``TrainingDiverged`` naming the learning rate in force when it was detected (the loss is
checked every ``check_every`` steps and at each epoch's end); the model gets back
the weights of the last finished epoch (or its initial ones) and ``exc.result`` holds the
history so far. A result record that cannot be written is a warning, not an error. Bad
arguments are refused at the door, and a model with too few outputs for the labels gets a
message naming the layer to change.

The loop, in order, for each batch: move it to the device; forward and loss (under
autocast if asked); backward (scaled in fp16); clip; optimiser step; per-batch schedule;
accumulate loss and accuracy on the device. After each epoch: evaluate, per-epoch
schedule, history row, plot, callbacks, checkpoint.
"""
from __future__ import annotations

import json
import math
import numbers
import sys
import time
import warnings
from collections.abc import Iterable as IterableABC, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn

from cnnbook.config import active_profile, capped, describe_device, get_device, rehearsal_batches
from cnnbook.train.callbacks import as_callbacks, call_hook
from cnnbook.train.checkpoint import Checkpoint, fingerprint, restore_training_state, training_state
from cnnbook.train.distributed import setup as setup_distributed
from cnnbook.train.optim import make_optimizer
from cnnbook.train.precision import resolve_precision


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message says when and what to try.

    ``exc.result`` is the ``FitResult`` of the epochs finished before (``None`` when raised
    outside ``fit``); the model holds the weights of the last finished epoch.
    """

    result: "FitResult | None" = None


@dataclass
class FitResult:
    history: pd.DataFrame
    seconds: float
    examples_per_sec: float
    record: dict = field(default_factory=dict)
    record_path: Path | None = None
    interrupted: bool = False   # stopped by Ctrl-C: history holds the epochs finished

    @property
    def test_acc(self) -> float | None:
        return self.record.get("test_acc")

    @property
    def train_acc(self) -> float | None:
        return self.record.get("train_acc")

    @property
    def train_loss(self) -> float | None:
        return self.record.get("train_loss")


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


def evaluate(model: nn.Module, data_iter: Iterable, device=None,
             loss_fn: Callable | None = None) -> dict:
    """Accuracy (and mean loss) of ``model`` on every batch of ``data_iter``, in eval mode
    (on the first N in a rehearsal, ``CNNBOOK_MAX_BATCHES=N``)."""
    # no_grad as a block, not a decorator: mutmut skips decorated functions (make mutants)
    device = device or next(model.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    correct = loss_sum = n = 0   # the sums become tensors on the device at the first batch
    with torch.no_grad():
        for X, y in rehearsal_batches(data_iter):
            X, y = X.to(device), y.to(device)
            logits = model(X)
            correct += accuracy_count(logits, y)   # no sync with the device until the end
            loss_sum += loss_fn(logits, y) * len(y)
            n += len(y)
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate() got an empty data iterator")
    return {"acc": float(correct) / n, "loss": float(loss_sum) / n}


def predict(model: nn.Module, data_iter: Iterable, device=None):
    """Predicted and true labels over a whole loader (for confusion matrices; its first N
    batches in a rehearsal, ``CNNBOOK_MAX_BATCHES=N``)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, labels = [], []
    with torch.no_grad():
        for X, y in rehearsal_batches(data_iter):
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


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False,
                dynamic_ncols=True, mininterval=0.5)


def fit(model: nn.Module, train_iter, test_iter=None, epochs: int = 10, lr: float = 0.1, *,
        optimizer="sgd", momentum: float = 0.0, weight_decay: float = 0.0,
        loss_fn: Callable | None = None, init: str | None = None, scheduler=None,
        callbacks: Iterable[Callable] = (), precision: str = "fp32",
        clip_grad_norm: float | None = None, checkpoint: str | Path | None = None,
        device=None, name: str | None = None, chapter: str | None = None,
        profile: str | None = None, progress: bool = True, live_plot: bool | None = None,
        record: bool = True, check_every: int = 25, extra: dict | None = None) -> FitResult:
    """Train ``model`` for ``epochs`` on ``train_iter``, evaluating on ``test_iter`` each epoch.

    ``optimizer`` is "sgd", "adam", "adamw", an optimiser you built, or a factory
    ``f(model) -> Optimizer``; ``init`` re-initialises weights first ("xavier" as d2l does,
    "kaiming", or None to keep them). ``scheduler`` is a schedule factory
    ``f(optimizer, epochs, steps_per_epoch)`` stepped per batch or per epoch as its
    ``interval`` says, or a ready ``LRScheduler`` of this optimiser (stepped per epoch).
    ``precision`` is "fp32", "bf16", "fp16" or "auto"; ``clip_grad_norm`` clips the
    gradients' total norm. ``callbacks`` are called as ``cb(row, model, optimizer)`` after
    each epoch; one returning True stops training. ``checkpoint`` is a folder for
    ``last.pt``/``best.pt``; calling fit again with it resumes. The history has one row
    per epoch (``lr`` is the rate at the epoch's first step). Examples/second is measured
    over the training steps only (data fetch included, evaluation and plotting excluded).

    Ctrl-C returns the epochs done so far (``result.interrupted``). A NaN/inf loss raises
    ``TrainingDiverged`` (its ``.result`` holds the history so far; the model gets the last
    finished epoch's weights back).

    In a rehearsal (``CNNBOOK_MAX_BATCHES=N``, ``make rehearse``) fit trains at most N epochs
    of at most N batches each and evaluates on N batches; the schedule is still built for
    ``epochs``, so every argument's code path runs as in the real run.
    """
    _check_arguments(model, train_iter, test_iter, epochs, lr, momentum, weight_decay,
                     clip_grad_norm, check_every)
    callbacks = as_callbacks(callbacks)
    device = torch.device(device) if device is not None else get_device()
    ddp = setup_distributed(device)   # None unless launched by torchrun (train.distributed)
    if ddp:   # this rank's device and shard of the data; only rank 0 prints and writes
        device = ddp.device
        train_iter, test_iter = ddp.shard(train_iter), ddp.shard(test_iter, train=False)
        progress, record = progress and ddp.is_main, record and ddp.is_main
        live_plot = live_plot if ddp.is_main else False
    amp = resolve_precision(precision, device)
    profile = profile or active_profile()
    name = name or type(model).__name__.lower()
    if init is not None:
        init_weights(model, init)
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    net = ddp.wrap(model) if ddp else model   # DDP all-reduces the gradients in backward
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    opt = make_optimizer(optimizer, model, lr, momentum, weight_decay)
    ckpt = Checkpoint(checkpoint) if checkpoint is not None else None
    run_id = None if ckpt is None else fingerprint(   # taken before a schedule moves the lrs
        model, opt, epochs=epochs, lr=lr, name=name, train_iter=train_iter, scheduler=scheduler,
        precision=amp.name, clip_grad_norm=clip_grad_norm, loss_fn=loss_fn, callbacks=callbacks)
    sched, per_batch = _make_scheduler(scheduler, opt, epochs, _len(train_iter))
    monitor = "test_acc" if test_iter is not None else "train_loss"  # what best.pt keeps

    history: list[dict] = []
    totals = {"train_seconds": 0.0, "train_examples": 0, "wall": 0.0}
    best, start = None, 1
    if ckpt and (saved := ckpt.load("cpu")) is not None:   # load_state_dict moves to device
        ckpt.check(saved, run_id)   # never mix in another run's checkpoint
        restore_training_state(saved, model, opt, sched, amp.scaler, callbacks,
                               (train_iter, test_iter))
        if saved["result"] is not None:   # that run had finished: return what it learnt
            rec = saved["result"]
            if progress:
                print(f"fit: {ckpt.last} holds this run, finished: returning its result "
                      "without training (delete the folder to train again)")
            return FitResult(pd.DataFrame(saved["history"]), rec["seconds"],
                             rec["examples_per_sec"], rec, None, rec["interrupted"])
        history, totals, best = saved["history"], saved["totals"], saved["best"]
        # go on after the last finished epoch (past the end if a callback had stopped it)
        start = epochs + 1 if saved["stopped"] else len(history) + 1
        if progress:
            print(f"fit: resuming from {ckpt.last} after epoch {len(history)} of {epochs}")
    good_weights = _snapshot(model)   # given back if the loss diverges
    live = _in_notebook() if live_plot is None else live_plot
    plot = LivePlot(f"{name} ({profile})") if live else None
    for cb in callbacks:
        call_hook(cb, "on_fit_start", model, opt, history)
    batch_hooks = [cb.on_batch_end for cb in callbacks
                   if callable(getattr(cb, "on_batch_end", None))]

    wall_start, wall_before = time.perf_counter(), totals["wall"]

    def save_checkpoint(is_best=False, stopped=False, result=None):
        if ddp and not ddp.is_main:
            return   # rank 0 writes; every rank loads
        totals["wall"] = wall_before + time.perf_counter() - wall_start
        ckpt.save(dict(training_state(model, opt, sched, amp.scaler, callbacks,
                                      (train_iter, test_iter)),
                       fingerprint=run_id, history=history, totals=totals, best=best,
                       stopped=stopped, result=result), is_best)

    interrupted, first_batch = False, start == 1
    last_epoch = capped(epochs)   # epochs itself unless a rehearsal caps it
    try:
        for epoch in range(start, last_epoch + 1):
            model.train()
            loss_sum = correct = clipped = n = 0   # sums: tensors on the device from step 1
            lr_now = _lr(opt)
            bar = _progress(_len(train_iter), f"epoch {epoch}/{epochs}", progress)
            t0 = time.perf_counter()
            for step, (X, y) in enumerate(rehearsal_batches(train_iter), 1):
                X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
                opt.zero_grad(set_to_none=True)
                with amp.autocast():
                    logits = net(X)
                    if first_batch:
                        _check_outputs(model, logits, y, train_iter)
                        first_batch = False
                    loss = loss_fn(logits, y)
                amp.backward(loss)
                if clip_grad_norm is not None:
                    amp.unscale(opt)   # clip the true gradients, not the fp16-scaled ones
                    norm = nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
                    clipped += norm > clip_grad_norm   # counted on the device: no sync
                amp.step(opt)
                if per_batch:
                    sched.step()
                for hook in batch_hooks:
                    hook(model, opt)
                with torch.no_grad():
                    loss_sum += loss.detach().float() * len(y)
                    correct += accuracy_count(logits, y)
                n += len(y)
                if step % check_every == 0:
                    running = loss_sum.item() / n if ddp is None else ddp.mean(loss_sum, n)
                    _check_finite(running, epoch, step, opt)
                    bar.set_postfix(loss=f"{running:.3f}", acc=f"{correct.item() / n:.3f}")
                bar.update(1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch_seconds = time.perf_counter() - t0
            bar.close()
            if n == 0:
                raise ValueError("the training iterator gave no batches")
            if ddp:   # every rank reports the global loss and accuracy
                loss_sum, correct, n = ddp.sum(loss_sum, correct, n)
                n = int(n)
            row = {"epoch": epoch, "train_loss": loss_sum.item() / n,
                   "train_acc": correct.item() / n}
            _check_finite(row["train_loss"], epoch, step, opt)
            if test_iter is not None:
                row["test_acc"] = (ddp.evaluate(model, test_iter, device, evaluate) if ddp
                                   else evaluate(model, test_iter, device))["acc"]
            row["lr"] = lr_now
            if clip_grad_norm is not None:
                row["clipped"] = clipped.item() / step
            row["seconds"] = epoch_seconds
            row["examples_per_sec"] = n / epoch_seconds
            if sched is not None and not per_batch:
                sched.step()
            history.append(row)
            totals["train_seconds"] += epoch_seconds
            totals["train_examples"] += n
            good_weights = _snapshot(model)
            if plot:
                plot.update(history)
            stopped = any([cb(row, model, opt) for cb in callbacks])   # call them all
            if ckpt:
                is_best = best is None or _improves(row[monitor], best["value"], monitor)
                if is_best:
                    best = {"monitor": monitor, "value": row[monitor], "epoch": epoch}
                save_checkpoint(is_best, stopped)
            if stopped:
                break
    except KeyboardInterrupt:
        interrupted = True   # keep the finished epochs; the model keeps its current weights
        model.train()        # (Ctrl-C may have come during evaluation)
    except TrainingDiverged as exc:
        model.load_state_dict(good_weights)
        totals["wall"] = wall_before + time.perf_counter() - wall_start
        rec = _record(history, totals, model, device, train_iter, name, chapter, profile, lr,
                      amp.name, clip_grad_norm, extra, diverged=True)
        exc.result = FitResult(pd.DataFrame(history), totals["wall"], rec["examples_per_sec"], rec)
        raise
    finally:
        if plot:
            plot.close()

    ended = {}
    for cb in callbacks:
        out = call_hook(cb, "on_fit_end", model, opt, history)
        if isinstance(out, dict):
            ended.update(out)
    totals["wall"] = wall_before + time.perf_counter() - wall_start
    rec = _record(history, totals, model, device, train_iter, name, chapter, profile, lr,
                  amp.name, clip_grad_norm, {**ended, **(extra or {})},
                  interrupted=interrupted, restored_epoch=ended.get("restored_epoch"))
    if ckpt and not interrupted:   # the finished run: calling fit again returns this
        save_checkpoint(stopped=True, result=json.loads(json.dumps(rec, default=str)))
    if ddp:
        ddp.barrier()   # no rank goes on (or resumes) before rank 0 has written
    path = None
    if record and history:
        path = _write_record(rec, profile, f"{chapter}-{name}" if chapter else name)
    # the record's seconds (the last save moves totals on): what calling fit again returns
    return FitResult(pd.DataFrame(history), rec["seconds"], rec["examples_per_sec"], rec, path,
                     interrupted)


# --- the small helpers fit uses ---------------------------------------------------------

def _check_arguments(model, train_iter, test_iter, epochs, lr, momentum, weight_decay,
                     clip_grad_norm, check_every) -> None:
    """Refuse bad arguments at the door, with a message that says what to pass instead."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for label, value in (("epochs", epochs), ("check_every", check_every)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{label} must be a whole number (an int), got {value!r}")
        if value < 1:
            raise ValueError(f"{label} must be at least 1, got {value}")
    for label, value, positive in (("lr", lr, True), ("momentum", momentum, False),
                                   ("weight_decay", weight_decay, False),
                                   ("clip_grad_norm", clip_grad_norm, True)):
        if value is None and label == "clip_grad_norm":
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{label} must be a number, got {value!r} ({type(value).__name__})")
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ValueError(f"{label} must be a finite number {'> 0' if positive else '>= 0'}, "
                             f"got {value!r}")
    for label, it in (("train_iter", train_iter), ("test_iter", test_iter)):
        if it is None and label == "test_iter":
            continue
        if isinstance(it, Iterator):
            raise TypeError(f"{label} is a one-shot iterator ({type(it).__name__}), but fit goes "
                            "over the data once per epoch: pass the loader itself (a "
                            "TensorLoader, a DataLoader, or a list of (X, y) batches)")
        if not isinstance(it, IterableABC) and not hasattr(it, "__getitem__"):
            raise TypeError(f"{label} must be an iterable of (X, y) batches such as a "
                            f"TensorLoader or DataLoader, got {type(it).__name__}")


def _len(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def _make_scheduler(scheduler, opt, epochs: int, steps_per_epoch: int | None):
    """The LRScheduler to step and whether per batch (True) or per epoch (False)."""
    lr_sched = torch.optim.lr_scheduler
    if scheduler is None:
        return None, False
    if isinstance(scheduler, lr_sched.ReduceLROnPlateau):
        raise TypeError("ReduceLROnPlateau needs a metric at each step, which fit does not "
                        "pass: use a callback that calls it, or a schedule factory")
    if isinstance(scheduler, lr_sched.LRScheduler):
        if scheduler.optimizer is not opt:
            raise ValueError("the scheduler was built for another optimiser than the one fit "
                             "trains with: pass that optimiser as optimizer=..., or pass a "
                             "schedule factory (see cnnbook.train.schedules)")
        return scheduler, False
    if not callable(scheduler):
        raise TypeError("scheduler must be a schedule factory f(optimizer, epochs, "
                        f"steps_per_epoch) or an LRScheduler, got {type(scheduler).__name__}")
    interval = getattr(scheduler, "interval", "epoch")
    if interval not in ("batch", "epoch"):
        raise ValueError(f"the schedule's interval must be 'batch' or 'epoch', got {interval!r}")
    if interval == "batch" and steps_per_epoch is None:
        raise ValueError("a per-batch schedule needs len(train_iter), which this loader lacks")
    built = scheduler(opt, epochs, steps_per_epoch)
    if not isinstance(built, lr_sched.LRScheduler):
        raise TypeError(f"the schedule factory returned {type(built).__name__}, not an LRScheduler")
    return built, interval == "batch"


def _lr(opt) -> float:
    """The learning rate in force: the largest over the parameter groups."""
    return max(float(g["lr"]) for g in opt.param_groups)


def _lr_text(opt) -> str:
    lrs = sorted({float(g["lr"]) for g in opt.param_groups}, reverse=True)
    return f"{lrs[0]:.4g}" if len(lrs) == 1 else " / ".join(f"{v:.4g}" for v in lrs) + " by group"


def _snapshot(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _improves(value: float, best: float, monitor: str) -> bool:
    return value > best if monitor.endswith("acc") else value < best


def _last_layer(model: nn.Module) -> str:
    last = None
    for layer_name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            last = f"'{layer_name}' ({module})" if layer_name else f"({module})"
    return last or "of the model"


def _check_outputs(model: nn.Module, logits, y, train_iter) -> None:
    """On the first batch: does the model output at least one score per class?"""
    if not (isinstance(logits, torch.Tensor) and logits.ndim == 2 and isinstance(y, torch.Tensor)
            and y.ndim == 1 and not y.is_floating_point()):
        return   # not class-index classification (soft labels, other losses): nothing to say
    labels = getattr(train_iter, "labels", None)   # a TensorLoader knows all its labels
    labels = labels if isinstance(labels, torch.Tensor) and labels.ndim == 1 else y
    low, top, outputs = int(labels.min()), int(labels.max()), logits.shape[1]
    if low < 0:
        raise ValueError(f"the labels must be class numbers 0, 1, ...; the smallest is {low}")
    if top >= outputs:
        raise ValueError(
            f"the model gives {outputs} score(s) per example, but the labels go up to {top}, "
            f"so it needs at least {top + 1} (one per class): change the last layer "
            f"{_last_layer(model)} to have {top + 1} outputs (for example num_classes={top + 1})")


def _check_finite(value: float, epoch: int, step: int, opt) -> None:
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"the training loss became {value} in epoch {epoch} by step {step}: training "
            f"stopped. The learning rate in force then ({_lr_text(opt)}) is probably too high "
            "for this model; try a smaller one, or add batch normalisation or gradient "
            "clipping. The model was given back the weights of the last finished epoch.")


def _record(history, totals, model, device, train_iter, name, chapter, profile, lr,
            precision, clip_grad_norm, extra, interrupted=False, diverged=False,
            restored_epoch=None) -> dict:
    """The JSON result record of a run; its metrics are those of the weights the model holds."""
    last = history[restored_epoch - 1] if restored_epoch else (history[-1] if history else {})
    seconds = totals["train_seconds"]
    tested = [row for row in history if row.get("test_acc") is not None]
    best = max(tested, key=lambda row: row["test_acc"]) if tested else {}  # one noisy last
    # epoch should not carry a comparison alone: the record keeps the best epoch beside it
    return {
        "name": name, "chapter": chapter, "model": type(model).__name__, "profile": profile,
        "device": describe_device(device), "epochs": len(history), "lr": lr,
        "batch_size": getattr(train_iter, "batch_size", None),
        "train_examples": getattr(train_iter, "num_examples", None),
        "params": sum(p.numel() for p in model.parameters()),
        "train_loss": last.get("train_loss"), "train_acc": last.get("train_acc"),
        "test_acc": last.get("test_acc"), "best_test_acc": best.get("test_acc"),
        "best_epoch": best.get("epoch"), "seconds": totals["wall"], "train_seconds": seconds,
        "examples_per_sec": totals["train_examples"] / seconds if seconds > 0 else 0.0,
        "precision": precision, "clip_grad_norm": clip_grad_norm,
        "interrupted": interrupted, "diverged": diverged,
        "torch": str(torch.__version__), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(extra or {}),
    }


def _write_record(rec: dict, profile: str, name: str) -> Path | None:
    """Write the result record; a failure is a warning: it never costs the training."""
    from cnnbook.results import write_record

    try:
        return write_record(rec, profile, name)
    except Exception as exc:  # noqa: BLE001 - any failure here must not lose the result
        warnings.warn(f"fit could not write the result record {name!r} ({exc}); the trained "
                      "model and its FitResult are returned all the same", RuntimeWarning,
                      stacklevel=3)
        return None
