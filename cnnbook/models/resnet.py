"""ResNet: deep networks that learn a residual on top of the identity (He et al., 2015).

A stack of layers that should compute ``H(x)`` is asked for ``F(x) = H(x) - x`` instead and
the input is added back: ``y = F(x) + x``. If the best thing a block can do is nothing, it
only has to drive ``F`` to zero, and the gradient always has the shortcut as a direct path
back to earlier layers. Two blocks, one stage table:

* ``Residual`` (the *basic* block of ResNet-18/34): 3x3 conv -> BN -> ReLU -> 3x3 conv
  -> BN, the input added before the last ReLU; a 1x1 conv (+ BN) on the shortcut when the
  block changes the number of channels or halves the resolution (stride 2).
* ``Bottleneck`` (ResNet-50/101/152): 1x1 conv that reduces the channels -> 3x3 conv ->
  1x1 conv that expands them 4x; cheaper than two 3x3 convs at the wide ends.

``ResNet`` is an ``nn.Sequential`` of named parts (stem, stage1..stageN, pool, flatten,
[dropout], fc), so d2l's layer-by-layer shape loop works on it. With default settings the
networks have exactly torchvision's parameter counts (its "V1.5" layout: the stride of a
bottleneck sits on the 3x3 conv). Also here: the course's ``modern_cnn`` (ResNet-18 body,
dropout before the classifier, the source's initialisation) and ``residual=False``, the
"plain" network with the same layers and no shortcuts, for the chapter's comparison.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence, Type

import torch
from torch import nn

from cnnbook.models._sequential import NamedSequential

__all__ = ["Residual", "Bottleneck", "ResNet", "resnet_stage", "resnet_stem", "resnet",
           "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "modern_cnn",
           "RESNET_CONFIGS", "STAGE_WIDTHS"]


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> list:
    """A conv without bias (the BN right after it has one) and its batch norm."""
    return [nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                      padding=kernel_size // 2, bias=False), nn.BatchNorm2d(out_channels)]


def _shortcut(in_channels: int, out_channels: int, stride: int, use_1x1conv: bool | None):
    """``None`` (identity) when shapes match, else a strided 1x1 conv + BN that makes them match."""
    needed = stride != 1 or in_channels != out_channels
    if use_1x1conv is None:
        use_1x1conv = needed
    if needed and not use_1x1conv:
        raise ValueError(f"the block maps {in_channels} -> {out_channels} channels with stride "
                         f"{stride}, so the input cannot be added as it is: use_1x1conv must "
                         "be True (or None to decide automatically)")
    if not use_1x1conv:
        return None
    conv, bn = _conv_bn(in_channels, out_channels, 1, stride)
    return nn.Sequential(OrderedDict(conv=conv, bn=bn))


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")


class Residual(nn.Module):
    """ResNet's basic block: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``channels`` is the number of output channels (``expansion = 1``). ``stride=2``
    halves the height and width in ``conv1``; ``use_1x1conv`` (default: whenever the
    shapes change) puts a strided 1x1 conv + BN on the shortcut. ``residual=False``
    drops the addition: the "plain" block of the paper's comparison.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 use_1x1conv: bool | None = None, residual: bool = True):
        super().__init__()
        _check_stride(stride)
        self.conv1, self.bn1 = _conv_bn(in_channels, channels, 3, stride)
        self.conv2, self.bn2 = _conv_bn(channels, channels, 3)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual
        self.shortcut = _shortcut(in_channels, channels, stride, use_1x1conv) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.residual:
            y = y + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(y)


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand to
    ``4 * channels``, each with BN, ReLU after all but the last; the shortcut added before
    the final ReLU. Two cheap 1x1 convs keep the 3x3 conv working on few channels.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 use_1x1conv: bool | None = None, residual: bool = True):
        super().__init__()
        _check_stride(stride)
        out_channels = channels * self.expansion
        self.conv1, self.bn1 = _conv_bn(in_channels, channels, 1)
        self.conv2, self.bn2 = _conv_bn(channels, channels, 3, stride)
        self.conv3, self.bn3 = _conv_bn(channels, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual
        self.shortcut = (_shortcut(in_channels, out_channels, stride, use_1x1conv)
                         if residual else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.residual:
            y = y + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(y)


def resnet_stem(in_channels: int, channels: int, small_input: bool = False) -> nn.Sequential:
    """The layers before the first stage.

    ImageNet stem: 7x7 conv stride 2 + BN + ReLU + 3x3 max-pool stride 2 (224 px -> 56 px).
    ``small_input=True``: 3x3 conv stride 1 + BN + ReLU, no pooling, for 28-32 px images
    that the ImageNet stem would shrink to 7 px before the first block.
    """
    conv, bn = _conv_bn(in_channels, channels, 3 if small_input else 7, 1 if small_input else 2)
    layers = OrderedDict(conv=conv, bn=bn, relu=nn.ReLU(inplace=True))
    if not small_input:
        layers["pool"] = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return nn.Sequential(layers)


def resnet_stage(block: Type[nn.Module], in_channels: int, channels: int, num_blocks: int,
                 stride: int = 1, residual: bool = True) -> nn.Sequential:
    """``num_blocks`` blocks; the first may change channels and stride, the rest keep them."""
    if num_blocks < 1:
        raise ValueError(f"a stage needs at least one block, got {num_blocks}")
    blocks = []
    for i in range(num_blocks):
        blocks.append(block(in_channels, channels, stride if i == 0 else 1, residual=residual))
        in_channels = channels * block.expansion
    return nn.Sequential(*blocks)


# depth -> (block, blocks per stage): Table 1 of He et al. (2015)
RESNET_CONFIGS = {
    18: (Residual, (2, 2, 2, 2)),
    34: (Residual, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)  # doubled after every stage; a 5th stage would get 1024


def _init_weights(model: nn.Module, linear_std: float | None = None) -> None:
    """Kaiming normal (fan_out) convs, BN weight 1 and bias 0 (torchvision's ResNet init);
    with ``linear_std`` also linear weights N(0, linear_std^2) and zero bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)


class ResNet(NamedSequential):
    """stem -> stages of residual blocks (channels doubled, resolution halved from stage 2
    on) -> global average pool -> [dropout] -> fully connected classifier.

    ``layers`` gives the blocks per stage (its length is the number of stages);
    ``width_mult`` scales every channel count (0.25 gives 16-32-64-128 for ResNet-18);
    ``small_input`` picks the 28 px stem (see ``resnet_stem``). ``zero_init_residual``
    starts the last BN of every block at gamma = 0, so each block starts as the identity
    (then ReLU). ``linear_std`` initialises the classifier with N(0, std^2).
    """

    def __init__(self, block: Type[nn.Module] = Residual, layers: Sequence[int] = (2, 2, 2, 2),
                 num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 small_input: bool = False, dropout: float = 0.0, residual: bool = True,
                 zero_init_residual: bool = False, linear_std: float | None = None):
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if not layers:
            raise ValueError("layers must list the number of blocks of at least one stage")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        widths = [max(1, round(64 * 2 ** i * width_mult)) for i in range(len(layers))]
        parts: OrderedDict[str, nn.Module] = OrderedDict(
            stem=resnet_stem(in_channels, widths[0], small_input))
        channels = widths[0]
        for i, (width, n) in enumerate(zip(widths, layers)):
            parts[f"stage{i + 1}"] = resnet_stage(block, channels, width, n,
                                                  stride=1 if i == 0 else 2, residual=residual)
            channels = width * block.expansion
        parts["pool"] = nn.AdaptiveAvgPool2d(1)
        parts["flatten"] = nn.Flatten()
        if dropout:
            parts["dropout"] = nn.Dropout(dropout)
        parts["fc"] = nn.Linear(channels, num_classes)
        super().__init__(parts)
        self.out_channels = channels
        _init_weights(self, linear_std)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (Residual, Bottleneck)):
                    last = m.bn3 if isinstance(m, Bottleneck) else m.bn2
                    nn.init.zeros_(last.weight)


def resnet(depth: int = 18, **kwargs) -> ResNet:
    """ResNet-18, 34, 50, 101 or 152 from ``RESNET_CONFIGS`` (keyword arguments go to ``ResNet``)."""
    if depth not in RESNET_CONFIGS:
        raise ValueError(f"no ResNet-{depth}: choose a depth from {sorted(RESNET_CONFIGS)}")
    block, layers = RESNET_CONFIGS[depth]
    return ResNet(block, layers, **kwargs)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18: basic blocks (2, 2, 2, 2); torchvision's count, 11,689,512 parameters."""
    return resnet(18, **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34: basic blocks (3, 4, 6, 3)."""
    return resnet(34, **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3)."""
    return resnet(50, **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101: bottleneck blocks (3, 4, 23, 3)."""
    return resnet(101, **kwargs)


def resnet152(**kwargs) -> ResNet:
    """ResNet-152: bottleneck blocks (3, 8, 36, 3)."""
    return resnet(152, **kwargs)


def modern_cnn(num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5,
               **kwargs) -> ResNet:
    """The source's "ModernCNN": a ResNet-18 body, dropout before the classifier, Kaiming
    normal (fan_out) convs, BN weight 1 / bias 0 and classifier weights N(0, 0.01)."""
    kwargs.setdefault("linear_std", 0.01)
    return resnet(18, num_classes=num_classes, in_channels=in_channels, dropout=dropout,
                  **kwargs)
