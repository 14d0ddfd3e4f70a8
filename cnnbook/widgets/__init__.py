"""Interactive explorers (ipywidgets 8) for the chapters.

Each explorer is a thin layer over pure functions elsewhere in ``cnnbook``: it reads its
controls, calls those functions, and shows the result as a PNG. Tests drive them by
setting a control's ``.value`` and reading ``explorer.state``.
"""
from cnnbook.widgets.base import Explorer, bounded_slider, figure_to_png
from cnnbook.widgets.feature_maps import FeatureMapExplorer
from cnnbook.widgets.gradcam import GradCAMExplorer  # noqa: F401  (chapter 20)

__all__ = ["Explorer", "FeatureMapExplorer", "bounded_slider", "figure_to_png"]
