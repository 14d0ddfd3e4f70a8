"""Run-time configuration: which device to train on, seeding, and the active profile.

Every notebook starts with a ``parameters`` cell whose ``PROFILE`` picks one of three
settings: ``smoke`` (the whole notebook in under a minute on a 2-core CPU), ``cpu`` (a
learner without a GPU gets a meaningful result in minutes) and ``full`` (the chapter's
real settings, for a GPU). ``CNNBOOK_PROFILE`` in the environment sets the default.

A *rehearsal* (``make rehearse``) runs the ``full`` profile's knobs on a CPU with every
loop capped: ``CNNBOOK_MAX_BATCHES=N`` makes every loader, ``fit``, ``evaluate`` and
benchmark stop after N batches (or repeats, or epochs), and ``CNNBOOK_MAX_BATCH_SIZE=K``
makes ``fit``, ``evaluate`` and ``predict`` use only the first K examples of each batch (a
224-pixel AlexNet step on 128 images is seconds of CPU; on 4 it runs the same shapes but
the batch axis), so every shape and code path of the full profile runs in minutes. ``claims_checked(profile)`` says whether a notebook may
assert its learning claims: not in smoke, not in a rehearsal.
"""
from __future__ import annotations

import itertools
import os
import random
from types import SimpleNamespace

import numpy as np
import torch

PROFILES = ("smoke", "cpu", "full")
DEVICE_TYPES = ("cpu", "cuda", "mps")
DEFAULT_PROFILE = "cpu"


def normalize_profile(name, source: str = "profile") -> str:
    """``name`` as one of PROFILES, forgiving case and surrounding spaces (``" CPU"`` -> ``"cpu"``).

    ``source`` names where the value came from (``CNNBOOK_PROFILE``, papermill's
    ``-p PROFILE``) so the error says what to change.
    """
    key = str(name).strip().lower()
    if key not in PROFILES:
        raise ValueError(f"{source}={name!r} is not a profile; choose one of {', '.join(PROFILES)}")
    return key


def active_profile(default: str = DEFAULT_PROFILE) -> str:
    """The profile named by ``CNNBOOK_PROFILE``, else ``default``; unknown names are an error."""
    raw = os.environ.get("CNNBOOK_PROFILE", "")
    if not raw.strip():
        return normalize_profile(default, "default")
    return normalize_profile(raw, "CNNBOOK_PROFILE")


TRUTHY = ("1", "true", "yes", "on", "y")
FALSY = ("", "0", "false", "no", "off", "n")


def env_flag(name: str) -> bool:
    """A yes/no environment variable: 1/true/yes/on/y (any case) is on, 0/false/no/off/n or unset off.

    Anything else is an error naming the variable, so a typo never silently means "off".
    """
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in TRUTHY:
        return True
    if value in FALSY:
        return False
    raise ValueError(f"{name}={raw!r} is not a yes/no value; use one of "
                     f"{', '.join(TRUTHY)} to switch it on, or unset it")


MAX_BATCHES_VAR = "CNNBOOK_MAX_BATCHES"


MAX_BATCH_SIZE_VAR = "CNNBOOK_MAX_BATCH_SIZE"


def _positive_int(var: str, meaning: str) -> int | None:
    """The whole number >= 1 in the environment variable ``var``, or None when unset.

    Read at each use, so a test (or a notebook) can switch it on and off. Anything that is
    not a positive whole number is an error naming the variable.
    """
    raw = os.environ.get(var, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{var}={raw!r} is not a whole number >= 1; set it to {meaning}, "
                         "or unset it")
    return value


def max_batches() -> int | None:
    """The rehearsal cap ``CNNBOOK_MAX_BATCHES`` (a whole number >= 1), or None when unset."""
    return _positive_int(MAX_BATCHES_VAR, "the number of batches each loop may run (e.g. 2)")


def max_batch_size() -> int | None:
    """The rehearsal's ``CNNBOOK_MAX_BATCH_SIZE`` (examples per batch), or None when unset."""
    return _positive_int(MAX_BATCH_SIZE_VAR, "the examples a rehearsal's batch may hold (e.g. 8)")


def capped_batch(n: int) -> int:
    """A batch of ``n`` examples cut to ``CNNBOOK_MAX_BATCH_SIZE``; ``n`` when it is unset.

    For batches a chapter builds itself (a benchmark's random images); ``fit``, ``evaluate``,
    ``predict`` and ``latency_ms`` cut theirs already.
    """
    cap = max_batch_size()
    return n if cap is None else min(n, cap)


def rehearsing() -> bool:
    """True while ``CNNBOOK_MAX_BATCHES`` caps every loop (``make rehearse``)."""
    return max_batches() is not None


def rehearsal_tag() -> str:
    """``""`` outside a rehearsal; in one, a tag naming its caps (``"rehearsal-2x8"``).

    A model a rehearsal trains (two batches of a few images) must never be cached under the
    name of the real run's model: a ``full`` run on the same machine would load it and report
    its accuracy. Caches of trained models (Part IV's reference, chapter 19's source) put
    this tag into their file names.
    """
    if not rehearsing():
        return ""
    size = max_batch_size()
    return f"rehearsal-{max_batches()}x{size if size is not None else 'all'}"


def capped(n, minimum: int = 1):
    """``n`` (batches, steps, repeats, epochs) limited to the rehearsal cap, never below
    ``minimum``; ``n`` itself when no cap is set. ``None`` (no limit) becomes the cap."""
    cap = max_batches()
    if cap is None:
        return n
    if n is None:
        return max(cap, minimum)
    return min(n, max(cap, minimum))


def rehearsal_batches(loader):
    """``loader`` itself, or in a rehearsal its first N batches (``CNNBOOK_MAX_BATCHES=N``),
    each cut to its first K examples (``CNNBOOK_MAX_BATCH_SIZE=K``): what every evaluation
    and training loop of the package iterates."""
    cap, size = max_batches(), max_batch_size()
    batches = loader if cap is None else itertools.islice(loader, cap)
    return batches if size is None else ((X[:size], y[:size]) for X, y in batches)


def claims_checked(profile: str) -> bool:
    """Whether a notebook asserts its learning claims ("X trains, Y stalls"): in the cpu and
    full profiles, not in smoke (too short to learn) nor in a rehearsal (a couple of batches).

    Chapters guard such asserts with ``if cnnbook.config.claims_checked(PROFILE):``.
    """
    return normalize_profile(profile, "profile") != "smoke" and not rehearsing()


def pick(profile: str, **settings):
    """Return the value for ``profile`` from ``smoke=..., cpu=..., full=...`` keyword choices.

    >>> pick("smoke", smoke=1, cpu=5, full=10)
    1
    """
    profile = normalize_profile(profile, "profile")
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
    source = "get_device(prefer=...)" if prefer is not None else "CNNBOOK_DEVICE"
    name = prefer if prefer is not None else os.environ.get("CNNBOOK_DEVICE", "")
    name = str(name).strip().lower()
    if name:
        try:
            device = torch.device(name)
        except RuntimeError:
            device = None
        if device is None or device.type not in DEVICE_TYPES:
            raise ValueError(f"{source}={name!r} is not a device; use one of "
                             f"{', '.join(DEVICE_TYPES)} (optionally with an index, e.g. cuda:1), "
                             "or unset CNNBOOK_DEVICE to choose automatically")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{source} asks for {name!r} but this machine has no usable CUDA "
                               "GPU (torch.cuda.is_available() is False); set CNNBOOK_DEVICE=cpu "
                               "or unset it")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"{source} asks for {name!r} but only "
                               f"{torch.cuda.device_count()} CUDA device(s) exist")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"{source} asks for 'mps' but this PyTorch build cannot use Apple's "
                               "MPS; set CNNBOOK_DEVICE=cpu or unset it")
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
    ``profile`` forgives case and spaces, as ``CNNBOOK_PROFILE`` does (papermill's
    ``-p PROFILE CPU`` works).
    """
    profile = normalize_profile(profile, "PROFILE")
    missing = [p for p in PROFILES if p not in knobs]
    if missing:
        raise ValueError(f"the knobs table has no entry for profile(s) {missing}")
    names = {p: set(knobs[p]) for p in PROFILES}
    if len({frozenset(v) for v in names.values()}) != 1:
        raise ValueError(f"every profile must set the same knobs; got {names}")
    return SimpleNamespace(profile=profile, **knobs[profile])
