"""Checkpoints: everything a killed training run needs to go on as if nothing happened.

    fit(model, ..., checkpoint="runs/lenet")   # writes runs/lenet/last.pt and best.pt

``fit`` writes ``last.pt`` after every epoch and copies it to ``best.pt`` when the monitored
value improves (``test_acc``, higher is better, when there is a test set; else
``train_loss``, lower is better). Calling the same ``fit`` again with the same folder
resumes: finished epochs are skipped, the interrupted epoch is started again from its
beginning with the same shuffle, and a run that had finished returns its stored result
without training. On a CPU the resumed run ends with bit-for-bit the weights and history
of an uninterrupted one (``tests/train/test_resume.py`` SIGKILLs a run to prove it).

For that, a checkpoint holds more than the weights (``training_state``):

- the model, the optimiser (momentum buffers, Adam's moments), the schedule, the fp16
  gradient scaler, and the callbacks' counters (early stopping's patience, best weights);
- every random number generator: torch's (CPU and CUDA), numpy's, Python's ``random``,
  and the loaders' own shuffling generators (``TensorLoader.state_dict()``), so dropout
  masks, shuffles and augmentations continue the same sequence;
- the history so far and the position (epochs done), plus the run's totals;
- a *fingerprint* of the run (model class, parameter names and shapes, optimiser and its
  settings, epochs, schedule, batch size, ...). Resuming from a checkpoint whose fingerprint
  differs raises ``CheckpointMismatch`` naming the file and each difference: a checkpoint
  is never silently loaded into a different model or run.

Files are written atomically: a temporary name in the same folder, flushed to disk
(``fsync``), given the usual permissions (from the umask, where ``mkstemp`` would leave
0600), then renamed over the old one. A crash leaves the old checkpoint or the new one,
never half of one. Loading uses ``torch.load(weights_only=True)``: nothing in a checkpoint
is executable code.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

FORMAT = 1


class CheckpointMismatch(ValueError):
    """A checkpoint was written by a different model or run than the one resuming it."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(obj, path) -> Path:
    """``torch.save(obj, path)`` via a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_copy(src: Path, dst: Path) -> None:
    """``dst`` becomes a copy of ``src``: a hard link when possible, renamed into place."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, dst)
    _fsync_dir(dst.parent)


# --- random number generators -----------------------------------------------------------

def rng_state() -> dict:
    """The state of every global generator: torch CPU and CUDA, numpy, Python's random."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def loader_state(loader) -> dict | None:
    """A loader's own random state: its ``state_dict()``, or its torch ``generator``, or
    that of the loader it wraps (``.loader``, as mixup's ``BatchMixer.wrap`` keeps it)."""
    if loader is None:
        return None
    if callable(getattr(loader, "state_dict", None)):
        return loader.state_dict()
    gen = getattr(loader, "generator", None)  # a torch DataLoader(generator=...)
    if isinstance(gen, torch.Generator):
        return {"generator": gen.get_state()}
    inner = getattr(loader, "loader", None)
    return loader_state(inner) if inner is not None and inner is not loader else None


def set_loader_state(loader, state: dict | None) -> None:
    if loader is None or state is None:
        return
    if callable(getattr(loader, "load_state_dict", None)):
        loader.load_state_dict(state)
    elif isinstance(getattr(loader, "generator", None), torch.Generator):
        loader.generator.set_state(state["generator"])
    elif getattr(loader, "loader", None) is not None and loader.loader is not loader:
        set_loader_state(loader.loader, state)


# --- fingerprint ---------------------------------------------------------------------------

def _plain(value):
    """A value as a JSON-like plain type, for comparing settings across processes."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return type(value).__name__


def _describe_callable(obj) -> str | None:
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    if isinstance(obj, nn.Module) and not obj.extra_repr() and next(obj.children(), None) is None:
        # a loss module's repr hides its settings (CrossEntropyLoss(label_smoothing=0.1)
        # prints as "CrossEntropyLoss()"): name them, so a changed one is a different run
        settings = sorted((k, v) for k, v in vars(obj).items() if not k.startswith("_")
                          and k != "training" and isinstance(v, (bool, int, float, str)))
        return f"{type(obj).__name__}({', '.join(f'{k}={v!r}' for k, v in settings)})"
    if type(obj).__repr__ is not object.__repr__ and not callable(getattr(obj, "__code__", None)):
        text = repr(obj)
        if " at 0x" not in text:
            return text
    return getattr(obj, "__qualname__", type(obj).__name__)


def fingerprint(model, optimizer, *, epochs: int, lr, name: str, train_iter=None,
                scheduler=None, precision: str = "fp32", clip_grad_norm=None,
                loss_fn=None, callbacks=()) -> dict:
    """What makes a run the same run: compared key by key when a checkpoint is resumed.

    Call it before the schedule is built (schedules change the groups' learning rates).
    """
    groups = [{"params": len(g["params"]),
               **{k: _plain(v) for k, v in g.items() if k not in ("params", "initial_lr")}}
              for g in optimizer.param_groups]
    return {
        "model": type(model).__qualname__,
        "parameters": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        "optimizer": type(optimizer).__name__,
        "param_groups": groups,
        "epochs": int(epochs),
        "lr": _plain(lr),
        "name": name,
        "batch_size": _plain(getattr(train_iter, "batch_size", None)),
        "train_examples": _plain(getattr(train_iter, "num_examples", None)),
        "scheduler": _describe_callable(scheduler),
        "precision": precision,
        "clip_grad_norm": _plain(clip_grad_norm),
        "loss_fn": _describe_callable(loss_fn) if loss_fn is not None else None,
        # callbacks whose counters are saved must be the same ones, in the same order
        "stateful_callbacks": [type(cb).__name__ for cb in callbacks
                               if callable(getattr(cb, "state_dict", None))],
    }


def differences(stored: dict, current: dict) -> list[str]:
    """Human-readable differences between two fingerprints (empty if they match)."""
    out = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if a == b:
            continue
        if key == "parameters":
            sa, sb = dict((k, tuple(s)) for k, s in a or []), dict((k, tuple(s)) for k, s in b or [])
            only_a = [k for k in sa if k not in sb][:3]
            only_b = [k for k in sb if k not in sa][:3]
            shape = [f"{k} {list(sa[k])} vs {list(sb[k])}" for k in sa if k in sb and sa[k] != sb[k]][:3]
            parts = ([f"only in the checkpoint: {only_a}"] if only_a else []) + \
                    ([f"only in this model: {only_b}"] if only_b else []) + \
                    ([f"different shapes: {shape}"] if shape else [])
            out.append("parameters differ (" + "; ".join(parts or ["order"]) + ")")
        else:
            out.append(f"{key}: checkpoint has {a!r}, this run has {b!r}")
    return out


# --- the checkpoint folder -------------------------------------------------------------

class Checkpoint:
    """The folder of one run's checkpoints: ``last.pt`` (every epoch) and ``best.pt``."""

    def __init__(self, path):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a folder path, got {type(path).__name__}")
        self.folder = Path(path)
        if self.folder.suffix == ".pt" or self.folder.is_file():
            raise ValueError(f"checkpoint={str(path)!r} should name a folder (fit writes "
                             "last.pt and best.pt inside it), not a file")
        self.last = self.folder / "last.pt"
        self.best = self.folder / "best.pt"

    def load(self, map_location=None) -> dict | None:
        """The last checkpoint's contents, or None when there is none yet."""
        if not self.last.exists():
            return None
        try:
            state = torch.load(self.last, map_location=map_location, weights_only=True)
        except Exception as exc:
            raise CheckpointMismatch(f"cannot read the checkpoint {self.last}: {exc}. Delete it "
                                     "(or pick another checkpoint folder) to start afresh.") from exc
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise CheckpointMismatch(f"{self.last} is not a cnnbook fit checkpoint (format "
                                     f"{FORMAT}); delete it or pick another checkpoint folder")
        return state

    def check(self, state: dict, current: dict) -> None:
        """Raise ``CheckpointMismatch`` unless ``state`` was written by this same run."""
        diff = differences(state["fingerprint"], current)
        if diff:
            raise CheckpointMismatch(
                f"the checkpoint {self.last} belongs to a different run, so it was not loaded:\n  "
                + "\n  ".join(diff)
                + "\nUse another checkpoint folder for this run, or delete that one to start afresh.")

    def save(self, state: dict, is_best: bool = False) -> None:
        atomic_save(dict(state, format=FORMAT), self.last)
        if is_best:
            _atomic_copy(self.last, self.best)


def training_state(model, optimizer, scheduler=None, scaler=None, callbacks=(),
                   loaders=()) -> dict:
    """Model, optimiser, schedule, scaler, callbacks, RNGs and loaders, ready to save."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "callbacks": [cb.state_dict() if callable(getattr(cb, "state_dict", None)) else None
                      for cb in callbacks],
        "rng": rng_state(),
        "loaders": [loader_state(ld) for ld in loaders],
    }


def restore_training_state(state: dict, model, optimizer, scheduler=None, scaler=None,
                           callbacks=(), loaders=()) -> None:
    """Put everything ``training_state`` saved back in place (the inverse)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    for cb, cb_state in zip(callbacks, state.get("callbacks") or []):
        if cb_state is not None and callable(getattr(cb, "load_state_dict", None)):
            cb.load_state_dict(cb_state)
    for loader, ld_state in zip(loaders, state.get("loaders") or []):
        set_loader_state(loader, ld_state)
    set_rng_state(state["rng"])
