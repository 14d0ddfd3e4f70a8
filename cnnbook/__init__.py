"""cnnbook: the helper package of the cnnbook course on convolutional neural networks.

Notebooks teach the idea; reusable, tested code lives here: ``config`` (device, seeds,
profiles), ``data`` (datasets as in-memory tensors), ``train`` (``fit``), ``viz``
(pictures), ``widgets`` (interactive explorers) and ``models`` (the architectures).
The most used names are re-exported: ``cnnbook.fit``, ``cnnbook.load_data``, ...
"""
from cnnbook.config import active_profile, get_device, pick, seed_everything, settings
from cnnbook.data import load_data
from cnnbook.train import evaluate, fit

__all__ = ["active_profile", "evaluate", "fit", "get_device", "load_data", "pick",
           "seed_everything", "settings"]
__version__ = "0.1.0"
