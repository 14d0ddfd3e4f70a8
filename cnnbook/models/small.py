"""The two small MNIST classifiers of chapter 04: a one-convolution CNN and an MLP.

* ``SmallCNN`` (the sources' network): one 3x3 convolution with 32 channels, ReLU, 2x2 max
  pooling, and one linear layer from the pooled map (32 x 13 x 13 at 28 px) to the classes.
* ``MLP``: flatten the image, fully connected hidden layer(s) with ReLU, a linear output
  (784 -> 512 -> 10 by default).

Both are ``nn.Sequential`` with named layers (``conv``, ``relu``, ``pool``, ``fc``; ``fc1``,
``relu1``, ``fc2`` ...), so ``cnnbook.inspect.capture(model, x, ["relu"])`` finds the
feature maps and a slice such as ``model[:3]`` is the part before the classifier.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import nn

__all__ = ["SmallCNN", "MLP", "mnist_cnn", "mnist_mlp"]


class _Layers(nn.Sequential):
    """``nn.Sequential`` whose slices (``model[:3]``) are plain ``nn.Sequential``s.

    ``nn.Sequential`` builds a slice by calling ``type(self)(OrderedDict(...))``, which
    a subclass with its own constructor arguments cannot accept.
    """

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)


class SmallCNN(_Layers):
    """conv (k x k, no padding) -> ReLU -> max pool -> flatten -> linear to ``num_classes``.

    ``image_size`` is needed to size the linear layer: the conv output has side
    ``image_size - kernel_size + 1``, the pooled map ``floor(that / pool)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: int = 32,
                 kernel_size: int = 3, pool: int = 2, image_size: int = 28):
        if min(in_channels, num_classes, channels, kernel_size, pool) < 1:
            raise ValueError("channels, classes, kernel size and pool must be positive")
        side = (image_size - kernel_size + 1) // pool
        if side < 1:
            raise ValueError(f"a {image_size}-pixel image is too small for kernel "
                             f"{kernel_size} and pooling {pool}")
        super().__init__(OrderedDict(
            conv=nn.Conv2d(in_channels, channels, kernel_size),
            relu=nn.ReLU(),
            pool=nn.MaxPool2d(pool),
            flatten=nn.Flatten(),
            fc=nn.Linear(channels * side * side, num_classes)))
        self.feature_side = side


class MLP(_Layers):
    """flatten -> (linear -> ReLU) per hidden width -> linear to ``num_classes``.

    ``hidden=(512,)`` is the chapter's 784 -> 512 -> 10 network; more widths add depth.
    """

    def __init__(self, in_features: int = 28 * 28, num_classes: int = 10,
                 hidden: Sequence[int] = (512,)):
        widths = [in_features, *hidden]
        if min(widths + [num_classes]) < 1:
            raise ValueError("every layer width must be positive")
        layers = OrderedDict(flatten=nn.Flatten())
        for i, (a, b) in enumerate(zip(widths, widths[1:]), 1):
            layers[f"fc{i}"] = nn.Linear(a, b)
            layers[f"relu{i}"] = nn.ReLU()
        layers[f"fc{len(widths)}"] = nn.Linear(widths[-1], num_classes)
        super().__init__(layers)


def mnist_cnn(channels: int = 32, num_classes: int = 10, in_channels: int = 1,
              image_size: int = 28) -> SmallCNN:
    """The sources' MNIST CNN: conv 3x3 (32 channels) + ReLU + max pool 2, linear 32*13*13 -> 10."""
    return SmallCNN(in_channels, num_classes, channels, kernel_size=3, pool=2,
                    image_size=image_size)


def mnist_mlp(hidden: int = 512, num_classes: int = 10, in_channels: int = 1,
              image_size: int = 28) -> MLP:
    """The MLP the CNN is compared with: 784 -> 512 -> 10 (ReLU) for 28 x 28 grey images."""
    return MLP(in_channels * image_size * image_size, num_classes, (hidden,))
