"""cnnbook: the helper package of the cnnbook course on convolutional neural networks.

Notebooks teach the idea; reusable, tested code lives here: ``config`` (device, seeds,
profiles), ``data`` (datasets as in-memory tensors), ``train`` (``fit``), ``viz``
(pictures), ``widgets`` (interactive explorers) and ``models`` (the architectures).
The most used names are re-exported: ``cnnbook.fit``, ``cnnbook.load_data``, ...

Everything is imported on first use (PEP 562), so ``import cnnbook`` costs nothing. That
matters for the one part of the course that must start fast without PyTorch: the serving
command ``python -m cnnbook.deploy.predict`` needs only ONNX Runtime, NumPy and Pillow,
and answers before importing torch alone would have finished (chapter 22 measures both).
"""
from __future__ import annotations

import importlib
import importlib.util

# name -> the module that defines it
_EXPORTS = {
    "active_profile": "cnnbook.config", "claims_checked": "cnnbook.config", "get_device": "cnnbook.config", "pick": "cnnbook.config",
    "seed_everything": "cnnbook.config", "settings": "cnnbook.config",
    "load_data": "cnnbook.data",
    "evaluate": "cnnbook.train", "fit": "cnnbook.train",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    """``cnnbook.fit`` and the other re-exports, and ``cnnbook.<submodule>``, imported when
    first asked for (then cached in the package's namespace like a normal attribute)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
