"""Part IV's reference model: a CIFAR-10 ResNet the course trains once and every chapter reuses.

Compression (21) and export (22) measure what happens to *one* trained network: its
accuracy after int8 quantisation, pruning or export, its latency on this machine. Training
it in each chapter would waste minutes, and two slightly different models would make the
chapters' numbers incomparable. ``reference_model`` therefore trains He et al.'s CIFAR
ResNet (``cnnbook.models.cifar_resnet``, ResNet-20 by default) through ``cnnbook.fit`` with
a budget per profile, saves the weights atomically in the data cache under a name derived
from every setting that shapes them, and on the next call (any chapter, any process) just
loads them. Change a setting and the name changes, so a stale model is never reused.

The recipe is the one chapter 18 found good on a budget: SGD with Nesterov momentum 0.9,
weight decay 5e-4, a one-cycle learning rate, random crops and flips.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnbook.config import active_profile, normalize_profile, rehearsal_tag, seed_everything
from cnnbook.data import load_data
from cnnbook.data.sources import data_dir
from cnnbook.files import atomic_write
from cnnbook.models.cifar_resnet import cifar_resnet

__all__ = ["REFERENCE_KNOBS", "Reference", "reference_model", "reference_settings",
           "build_reference", "cache_path", "CACHE_VERSION"]

# Bump when the recipe in _train changes, so cached weights of the old recipe are not reused.
CACHE_VERSION = 1

# The budget per profile. smoke: a few seconds, to run the chapters end to end;
# cpu: about four minutes of training on two cores (8,000 images for 8 epochs: the first cpu
# run trained 3 epochs at about 230 images/s with another job running, to 0.456, a teacher
# too weak for distillation to mean much), tested on 2,000 images; full: the whole training
# set for 60 epochs, for a GPU.
REFERENCE_KNOBS = {
    "smoke": dict(depth=20, limit=512, test_limit=256, epochs=1, batch_size=64, lr=0.05,
                  seed=0),
    "cpu":   dict(depth=20, limit=8_000, test_limit=2_000, epochs=8, batch_size=128, lr=0.1,
                  seed=0),
    "full":  dict(depth=20, limit=None, test_limit=None, epochs=60, batch_size=128, lr=0.1,
                  seed=0),
}
_KEYS = tuple(REFERENCE_KNOBS["cpu"])


@dataclass
class Reference:
    """The trained reference network (CPU, eval mode) and the data it was trained and tested on."""

    model: nn.Module
    train_iter: object
    test_iter: object
    test_acc: float
    settings: dict
    path: Path
    trained: bool                 # True: trained by this call; False: loaded from the cache
    history: list = field(default_factory=list)


def reference_settings(profile: str | None = None, **overrides) -> dict:
    """The settings of ``profile`` (default: the active one) with ``overrides`` applied."""
    profile = normalize_profile(profile or active_profile(), "profile")
    unknown = set(overrides) - set(_KEYS)
    if unknown:
        raise TypeError(f"unknown reference setting(s) {sorted(unknown)}; "
                        f"the settings are {', '.join(_KEYS)}")
    return {**REFERENCE_KNOBS[profile], **overrides}


def build_reference(settings: dict) -> nn.Module:
    """The untrained network of ``settings`` (a CIFAR ResNet of ``settings['depth']``)."""
    return cifar_resnet(settings["depth"], num_classes=10)


def cache_path(settings: dict, folder: Path | None = None) -> Path:
    """Where the weights of ``settings`` live: a name made of the depth and a settings hash,
    and in a rehearsal its tag (``cnnbook.config.rehearsal_tag``), so that a model trained on
    capped loops is never loaded by a real run."""
    key = json.dumps({**settings, "version": CACHE_VERSION}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    folder = Path(folder) if folder is not None else data_dir() / "models"
    tag = rehearsal_tag()
    return folder / f"cifar10-resnet{settings['depth']}-{digest}{'-' + tag if tag else ''}.pt"


def _train(model: nn.Module, train_iter, test_iter, settings: dict, chapter: str | None,
           profile: str, progress: bool):
    from cnnbook.train import fit, optim, schedules

    return fit(model, train_iter, test_iter, epochs=settings["epochs"], lr=settings["lr"],
               optimizer=optim.sgd(settings["lr"], momentum=0.9, nesterov=True,
                                   weight_decay=5e-4),
               scheduler=schedules.one_cycle(pct_start=0.25),
               name=f"reference-resnet{settings['depth']}", chapter=chapter, profile=profile,
               progress=progress, live_plot=False)


def reference_model(profile: str | None = None, *, chapter: str | None = None,
                    folder: Path | None = None, retrain: bool = False, progress: bool = True,
                    **overrides) -> Reference:
    """The Part IV reference ResNet for ``profile``: loaded from the cache, or trained and cached.

    Training goes through ``cnnbook.fit(..., chapter=chapter)``, which writes the result
    record of the chapter that trained it. ``overrides`` change single settings
    (``depth``, ``limit``, ``test_limit``, ``epochs``, ``batch_size``, ``lr``, ``seed``).
    The loaders hold the same class-balanced subsets every time (normalised; the training
    loader augments with crops and flips) on the CPU, where Part IV measures. The model
    comes back on the CPU in eval mode.
    """
    profile = normalize_profile(profile or active_profile(), "profile")
    settings = reference_settings(profile, **overrides)
    path = cache_path(settings, folder)
    train_iter, test_iter = load_data("cifar10", batch_size=settings["batch_size"],
                                      limit=settings["limit"], test_limit=settings["test_limit"],
                                      normalize=True, augment=True, device="cpu",
                                      seed=settings["seed"])
    model = build_reference(settings)
    saved = None
    if path.exists() and not retrain:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("settings") != settings:
                saved = None
        except Exception:   # a damaged file: train again and replace it
            saved = None
    if saved is not None:
        model.load_state_dict(saved["state_dict"])
        trained = False
    else:
        seed_everything(settings["seed"])
        model = build_reference(settings)
        result = _train(model, train_iter, test_iter, settings, chapter, profile, progress)
        model.cpu()
        saved = {"settings": settings, "state_dict": model.state_dict(),
                 "test_acc": float(result.history["test_acc"].iloc[-1]),
                 "history": json.loads(result.history.to_json(orient="records"))}
        atomic_write(path, lambda tmp: torch.save(saved, tmp))
        trained = True
    model = model.cpu().to(memory_format=torch.contiguous_format).eval()
    return Reference(model, train_iter, test_iter, float(saved["test_acc"]), settings, path,
                     trained, list(saved.get("history", [])))
