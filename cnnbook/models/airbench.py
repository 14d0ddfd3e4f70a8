"""The fastest known CIFAR-10 recipe's network: airbench (Jordan, 2024), for chapter 18's speed run.

airbench reaches 94% CIFAR-10 test accuracy in 3.3 s on one A100 (93% with the 64-128-128
widths in about a quarter of the FLOPs). Its network is not a ResNet but a plain VGG-style
stack, made fast to train by a few ideas the chapter explains one at a time:

- ``whiten``: a frozen 2x2 convolution whose filters are the eigenvectors of the covariance
  of 2x2 image patches, scaled by 1/sqrt(eigenvalue) (``whiten_``), each in both signs, so
  the first layer hands on decorrelated, unit-variance patch features from step one
  (the idea goes back to Coates & Ng's patch whitening, and to Page's and tysam's
  DAWNBench-era speed runs);
- ``ConvGroup``: conv -> 2x2 max-pool -> BN -> GELU -> conv -> BN -> GELU, three times;
  pooling *before* the first BN makes the expensive convolution run at full size only once;
- batch norm without a learned scale (``FrozenScaleBatchNorm``: only the shift trains) and
  a high running-statistics momentum;
- convolutions initialised partly as identities (``dirac_``), so the deep stack starts close
  to a shallow one;
- a global max-pool and a linear classifier whose output is scaled down by 1/9.

What is *not* here but in the training recipe (``cnnbook.train``): SGD with Nesterov momentum
and a much larger learning rate for the BN shifts (``airbench_sgd``), label smoothing, a
triangular schedule, the weight averaging of ``cnnbook.train.callbacks.Lookahead``, and
test-time augmentation.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from cnnbook.models._sequential import NamedSequential

__all__ = ["AirbenchNet", "ConvGroup", "FrozenScaleBatchNorm", "airbench_sgd", "patch_covariance",
           "whiten_"]


class FrozenScaleBatchNorm(nn.BatchNorm2d):
    """Batch norm whose scale stays 1 (not trained); only the shift (``bias``) learns.

    ``momentum`` here is airbench's: the weight of the *old* running statistics (0.6), i.e.
    PyTorch's ``momentum = 1 - 0.6``; a tiny ``eps`` as the statistics are never near zero.
    """

    def __init__(self, channels: int, momentum: float = 0.6, eps: float = 1e-12):
        super().__init__(channels, eps=eps, momentum=1 - momentum)
        self.weight.requires_grad_(False)


def _dirac_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 'same' convolution without bias; its first ``in_channels`` filters start as the
    identity (a dirac delta on their own input channel), the rest as PyTorch's default."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding="same", bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:min(in_channels, out_channels)])
    return conv


class ConvGroup(nn.Module):
    """conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU (halves the side)."""

    def __init__(self, in_channels: int, channels: int, bn_momentum: float = 0.6):
        super().__init__()
        self.conv1 = _dirac_conv(in_channels, channels)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = FrozenScaleBatchNorm(channels, bn_momentum)
        self.conv2 = _dirac_conv(channels, channels)
        self.norm2 = FrozenScaleBatchNorm(channels, bn_momentum)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class Scale(nn.Module):
    """Multiply by a constant (airbench scales the logits by 1/9)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:.4g}"


class AirbenchNet(NamedSequential):
    """``whiten`` (2x2, 24 filters), GELU, ``group1..3``, global max-pool, linear, x 1/9.

    ``widths``: the three groups' channels. airbench94 uses (64, 256, 256), airbench93
    (64, 128, 128); the chapter's cpu profile a narrower net that fits its time budget.
    Call ``whiten_(model.whiten, train_images)`` before training: until then the first
    layer is an untrained (frozen!) random convolution.
    """

    def __init__(self, widths: Sequence[int] = (64, 256, 256), num_classes: int = 10,
                 in_channels: int = 3, bn_momentum: float = 0.6, logit_scale: float = 1 / 9,
                 whiten_size: int = 2):
        if len(widths) != 3 or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be three positive channel counts, got {widths}")
        whiten_width = 2 * in_channels * whiten_size ** 2
        layers = OrderedDict(whiten=nn.Conv2d(in_channels, whiten_width, whiten_size, bias=True))
        layers["act"] = nn.GELU()
        channels = whiten_width
        for i, width in enumerate(widths, 1):
            layers[f"group{i}"] = ConvGroup(channels, int(width), bn_momentum)
            channels = int(width)
        layers["pool"] = nn.AdaptiveMaxPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(channels, num_classes, bias=False)
        layers["scale"] = Scale(logit_scale)
        super().__init__(layers)
        with torch.no_grad():
            self.whiten.bias.zero_()
        self.whiten.weight.requires_grad_(False)


def patch_covariance(images: torch.Tensor, size: int = 2) -> torch.Tensor:
    """The (C*size*size)^2 covariance (second moment) of all ``size`` x ``size`` patches of
    normalised ``images`` (N, C, H, W), the patches flattened channel-major like a conv filter."""
    c = images.shape[1]
    total, count = torch.zeros(c * size * size, c * size * size, dtype=torch.float64), 0
    for chunk in images.split(500):   # summed in float64: millions of patches
        patches = chunk.double().unfold(2, size, 1).unfold(3, size, 1)   # N, C, H', W', s, s
        flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * size * size)
        total += flat.T @ flat
        count += flat.shape[0]
    return (total / count).to(images.dtype if images.is_floating_point() else torch.float32)


@torch.no_grad()
def whiten_(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
    """Set ``conv``'s filters to the whitening transform of its patches, in both signs.

    The eigenvectors ``v_i`` of the patch covariance, scaled by ``1 / sqrt(lambda_i + eps)``,
    largest eigenvalue first, then the same filters negated (so a ReLU-like activation keeps
    both halves). A patch ``p`` then gives features ``v_i . p / sqrt(lambda_i)``: uncorrelated,
    each of variance ~1. Returns the eigenvalues (largest first), e.g. to plot the spectrum.
    """
    c, size = conv.in_channels, conv.kernel_size[0]
    dim = c * size * size
    if conv.out_channels != 2 * dim or conv.kernel_size != (size, size):
        raise ValueError(f"a whitening conv needs {2 * dim} square {size}x{size} filters, "
                         f"got {conv.out_channels} of {conv.kernel_size}")
    eigenvalues, eigenvectors = torch.linalg.eigh(patch_covariance(images, size))
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)   # largest first
    filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps).view(-1, 1))
    filters = filters.reshape(dim, c, size, size)
    conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))
    return eigenvalues


def airbench_sgd(batch_size: int, lr: float = 11.5, momentum: float = 0.85,
                 weight_decay: float = 0.0153, bias_scaler: float = 64.0):
    """SGD (Nesterov) with airbench's *decoupled* hyperparameters, for a mean-reduced loss.

    airbench states the learning rate per 1,024 examples of a *summed* loss, divided by
    ``1 + 1 / (1 - momentum)`` (the factor by which Nesterov momentum enlarges a step), and
    the weight decay per 1,024 examples independent of the learning rate; so each knob can be
    tuned alone. The BN shifts learn ``bias_scaler`` times faster (same absolute decay).
    ``fit`` averages the loss over the batch, so the rate here is multiplied by the batch
    size and the decay divided by it: the same updates as airbench's. Returns a factory
    ``factory(model) -> torch.optim.SGD`` for ``fit(optimizer=...)``.
    """
    kilo = 1024 * (1 + 1 / (1 - momentum))
    step = lr / kilo                                  # per unit of summed-loss gradient
    decay = weight_decay * batch_size / kilo          # absolute shrink per step

    def factory(model: nn.Module, lr_unused=None) -> torch.optim.SGD:
        shifts = [p for n, p in model.named_parameters()
                  if p.requires_grad and ".norm" in f".{n}"]
        others = [p for n, p in model.named_parameters()
                  if p.requires_grad and ".norm" not in f".{n}"]
        groups = []
        for name, params, rate in (("weights", others, step),   # first: fit's lr column
                                   ("bn shifts", shifts, step * bias_scaler)):
            if params:
                groups.append({"name": name, "params": params, "lr": rate * batch_size,
                               "weight_decay": decay / (rate * batch_size)})
        return torch.optim.SGD(groups, lr=step * batch_size, momentum=momentum, nesterov=True)

    factory.__name__ = f"airbench_sgd(batch_size={batch_size}, lr={lr})"
    return factory
