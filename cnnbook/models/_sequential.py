"""A base class for networks that are a chain of named stages (d2l's ``nn.Sequential`` style)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn


class NamedSequential(nn.Sequential):
    """``nn.Sequential`` for model classes with their own ``__init__`` arguments.

    Slicing a plain subclass calls its constructor with the selected layers, which breaks
    when the constructor takes a configuration instead; here ``model[:5]`` returns an
    ordinary ``nn.Sequential`` of the same (shared) layers, names kept.
    """

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)
