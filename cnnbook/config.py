"""Run-time configuration: which device to train on, seeding, and the active profile.

Every notebook starts with a ``parameters`` cell whose ``PROFILE`` picks one of three
settings: ``smoke`` (the whole notebook in under a minute on a 2-core CPU), ``cpu`` (a
learner without a GPU gets a meaningful result in minutes) and ``full`` (the chapter's
real settings, for a GPU). ``CNNBOOK_PROFILE`` in the environment sets the default.
"""
from __future__ import annotations

import os
import random
from types import SimpleNamespace

import numpy as np
import torch

PROFILES = ("smoke", "cpu", "full")
DEFAULT_PROFILE = "cpu"


def active_profile(default: str = DEFAULT_PROFILE) -> str:
    """The profile named by ``CNNBOOK_PROFILE``, else ``default``; unknown names are an error."""
    name = os.environ.get("CNNBOOK_PROFILE", "").strip().lower() or default
    if name not in PROFILES:
        raise ValueError(f"CNNBOOK_PROFILE={name!r} is not one of {', '.join(PROFILES)}")
    return name


def pick(profile: str, **settings):
    """Return the value for ``profile`` from ``smoke=..., cpu=..., full=...`` keyword choices.

    >>> pick("smoke", smoke=1, cpu=5, full=10)
    1
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    missing = [p for p in PROFILES if p not in settings]
    if missing:
        raise TypeError(f"pick() needs a value for every profile; missing {missing}")
    return settings[profile]


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: cuda, then Apple's mps, then cpu.

    ``prefer`` (or the ``CNNBOOK_DEVICE`` variable) overrides the choice, e.g. ``"cpu"``
    to compare timings; asking for a device that is not there is an error, not a silent
    fallback.
    """
    name = prefer or os.environ.get("CNNBOOK_DEVICE")
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but torch.cuda.is_available() is False")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError("MPS was requested but this PyTorch build cannot use it")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int = 0, deterministic: bool = False) -> int:
    """Seed Python, NumPy and PyTorch (all devices) so reruns give the same numbers.

    ``deterministic=True`` also asks PyTorch for deterministic kernels (slower on GPU;
    on the CPU the default kernels are already repeatable for a fixed thread count).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
    return seed


def describe_device(device: torch.device | None = None) -> str:
    """A one-line description of the device, for notebook headers and result records."""
    device = device or get_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def settings(profile: str, knobs: dict) -> SimpleNamespace:
    """The knobs of ``profile`` from a notebook's ``{"smoke": {...}, "cpu": {...}, "full": {...}}``.

    Every profile must name the same knobs, so switching profile never leaves one unset.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    missing = [p for p in PROFILES if p not in knobs]
    if missing:
        raise ValueError(f"the knobs table has no entry for profile(s) {missing}")
    names = {p: set(knobs[p]) for p in PROFILES}
    if len({frozenset(v) for v in names.values()}) != 1:
        raise ValueError(f"every profile must set the same knobs; got {names}")
    return SimpleNamespace(profile=profile, **knobs[profile])
