"""cnnbook: the helper package of the cnnbook course on convolutional neural networks.

Notebooks teach the idea; reusable, tested code lives here: ``config`` (device, seeds,
profiles), ``data`` (datasets as in-memory tensors), ``train`` (``fit``), ``viz``
(pictures), ``widgets`` (interactive explorers) and ``models`` (the architectures).
"""
from cnnbook.config import active_profile, get_device, pick, seed_everything, settings

__all__ = ["active_profile", "get_device", "pick", "seed_everything", "settings"]
__version__ = "0.1.0"
