"""Interactive explorers (ipywidgets 8) for the chapters.

Each explorer is a thin layer over pure functions elsewhere in ``cnnbook``: it reads its
controls, calls those functions, and shows the result as a PNG. Tests drive them by
setting a control's ``.value`` and reading ``explorer.state``.

The explorers re-exported here are imported on first use (PEP 562): importing one
chapter's explorer does not import every other chapter's dependencies (Grad-CAM's pulls
in SciPy's statistics, more than a second here).
"""
from __future__ import annotations

import importlib

from cnnbook.widgets.base import Explorer, bounded_slider, figure_to_png

_LAZY = {"FeatureMapExplorer": "cnnbook.widgets.feature_maps",
         "GradCAMExplorer": "cnnbook.widgets.gradcam"}

__all__ = ["Explorer", "FeatureMapExplorer", "GradCAMExplorer", "bounded_slider", "figure_to_png"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
