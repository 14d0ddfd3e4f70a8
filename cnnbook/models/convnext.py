"""ConvNeXt (Liu, Mao, Wu, Feichtenhofer, Darrell & Xie, 2022, "A ConvNet for the 2020s").

After ViT, the authors asked which of a Transformer's design choices a plain ConvNet lacks.
They started from ResNet-50 and changed it one step at a time, keeping every change that
helped, and ended with a pure ConvNet as accurate as the Swin Transformer. The parts:

* ``ConvNeXtBlock``: 7x7 *depthwise* conv (a large, per-channel spatial filter, like one
  attention head per channel over a window) -> LayerNorm over the channels (computed
  channels-last) -> 1x1 conv to 4x the channels (an *inverted* bottleneck, as a
  Transformer's MLP) -> GELU -> 1x1 conv back -> *layer scale* (a learned per-channel
  factor starting at 1e-6) -> optional stochastic depth -> + the input. One norm and one
  activation per block, where a ResNet block has three of each.
* ``LayerNorm2d``: LayerNorm over the channels of an (N, C, H, W) map.
* the stem: a 4x4 conv with stride 4 ("patchify", a ViT's patch embedding) + LayerNorm;
* downsampling *between* stages: LayerNorm + 2x2 conv with stride 2.

``ConvNeXt`` reads its stages from ``CONVNEXT_CONFIGS``; ``convnext_tiny`` has torchvision's
28,589,128 parameters and ``from_torchvision_state_dict`` maps torchvision's weights to ours.

``design_step_network(k)`` rebuilds the paper's path from ResNet-50 to ConvNeXt-T
(``DESIGN_STEPS``): every step is a configuration of one generic block (``StepBlock``) and
network (``StepNetwork``), so the chapter can count the parameters and FLOPs of each.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.models._sequential import NamedSequential
from cnnbook.regularization.stochastic_depth import StochasticDepth

__all__ = ["LayerNorm2d", "ConvNeXtBlock", "ConvNeXt", "CONVNEXT_CONFIGS", "convnext",
           "convnext_tiny", "convnext_cifar", "from_torchvision_state_dict", "StepBlock",
           "StepNetwork", "DESIGN_STEPS", "design_step_config", "design_step_network"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) map: each pixel's C values get mean 0
    and variance 1 (then a per-channel scale and shift). Computed channels-last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """``x + drop(gamma * pwconv2(gelu(pwconv1(norm(dwconv(x))))))``.

    ``dwconv``: 7x7 depthwise conv; then channels-last, so ``norm`` is a plain LayerNorm
    and the 1x1 convs are ``nn.Linear`` layers (the reference code's choice, and faster);
    ``gamma`` is layer scale (``layer_scale=0`` removes it); ``drop_path`` the probability
    of stochastic depth (skipping the branch per sample in training).
    """

    def __init__(self, dim: int, drop_path: float = 0.0, layer_scale: float = 1e-6,
                 kernel_size: int = 7, expansion: int = 4):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, expansion * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expansion * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale)) if layer_scale > 0 else None
        self.drop_path = StochasticDepth(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)           # (N, C, H, W) -> (N, H, W, C)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + self.drop_path(y.permute(0, 3, 1, 2))


# name -> (channels per stage, blocks per stage): Liu et al. (2022), section 3
CONVNEXT_CONFIGS = {
    "tiny": ((96, 192, 384, 768), (3, 3, 9, 3)),
    "small": ((96, 192, 384, 768), (3, 3, 27, 3)),
    "base": ((128, 256, 512, 1024), (3, 3, 27, 3)),
    "cifar": ((64, 128, 256), (2, 2, 2)),
}


class ConvNeXt(NamedSequential):
    """stem (patchify conv + LN) -> stages (stage 2 on: LN + 2x2 stride-2 conv, then blocks)
    -> global average pool -> LN -> linear classifier.

    ``drop_path`` is the stochastic-depth probability of the last block, rising linearly
    from 0 at the first (torchvision's rule); ``patch_size`` is the stem's kernel and
    stride (4 for 224 px images, 2 or 1 for 32 px CIFAR images).
    """

    def __init__(self, dims: Sequence[int] = (96, 192, 384, 768),
                 depths: Sequence[int] = (3, 3, 9, 3), num_classes: int = 1000,
                 in_channels: int = 3, patch_size: int = 4, drop_path: float = 0.0,
                 layer_scale: float = 1e-6, kernel_size: int = 7):
        if len(dims) != len(depths) or not dims:
            raise ValueError(f"dims {tuple(dims)} and depths {tuple(depths)} must have the same, "
                             "non-zero length (one entry per stage)")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        total = sum(depths)
        rates = [drop_path * i / max(1, total - 1) for i in range(total)]
        parts: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, dims[0], patch_size, stride=patch_size),
            norm=LayerNorm2d(dims[0], eps=1e-6))))
        b = 0
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            if i > 0:
                layers["downsample"] = nn.Sequential(OrderedDict(
                    norm=LayerNorm2d(dims[i - 1], eps=1e-6),
                    conv=nn.Conv2d(dims[i - 1], dim, 2, stride=2)))
            for j in range(depth):
                layers[f"block{j}"] = ConvNeXtBlock(dim, rates[b], layer_scale, kernel_size)
                b += 1
            parts[f"stage{i + 1}"] = nn.Sequential(layers)
        parts["pool"] = nn.AdaptiveAvgPool2d(1)
        parts["norm"] = LayerNorm2d(dims[-1], eps=1e-6)
        parts["flatten"] = nn.Flatten()
        parts["fc"] = nn.Linear(dims[-1], num_classes)
        super().__init__(parts)
        for m in self.modules():   # the reference initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)


def convnext(name: str = "tiny", **kwargs) -> ConvNeXt:
    """A ConvNeXt from ``CONVNEXT_CONFIGS`` (keyword arguments go to ``ConvNeXt``)."""
    if name not in CONVNEXT_CONFIGS:
        raise ValueError(f"no ConvNeXt {name!r}: choose from {sorted(CONVNEXT_CONFIGS)}")
    dims, depths = CONVNEXT_CONFIGS[name]
    return ConvNeXt(dims, depths, **kwargs)


def convnext_tiny(**kwargs) -> ConvNeXt:
    """ConvNeXt-T: 96-192-384-768 channels, (3, 3, 9, 3) blocks; 28,589,128 parameters."""
    return convnext("tiny", **kwargs)


def convnext_cifar(num_classes: int = 10, **kwargs) -> ConvNeXt:
    """A small ConvNeXt for 32 px images: 2x2 patchify stem (16 px), three stages of two
    blocks with 64-128-256 channels (16, 8 and 4 px)."""
    kwargs.setdefault("patch_size", 2)
    return convnext("cifar", num_classes=num_classes, **kwargs)


def from_torchvision_state_dict(state: dict) -> dict:
    """Rename a torchvision ``ConvNeXt`` state dict's keys to ours (layer scale reshaped).

    torchvision: ``features.0`` stem (conv, LN), odd ``features.k`` = stages of ``CNBlock``
    (``block.0`` dwconv, ``block.2`` LN, ``block.3``/``block.5`` the linears, ``layer_scale``
    of shape (C, 1, 1)), even ``features.k`` (k >= 2) = downsampling (LN, conv);
    ``classifier.0`` LN, ``classifier.2`` the linear layer.
    """
    inside = {"block.0": "dwconv", "block.2": "norm", "block.3": "pwconv1", "block.5": "pwconv2"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "classifier":
            new = {"0": "norm", "2": "fc"}[parts[1]] + "." + parts[2]
        elif parts[0] == "features" and parts[1] == "0":
            new = "stem." + {"0": "conv", "1": "norm"}[parts[2]] + "." + parts[3]
        elif parts[0] == "features" and int(parts[1]) % 2 == 0:       # downsampling layer
            stage = int(parts[1]) // 2 + 1
            new = f"stage{stage}.downsample." + {"0": "norm", "1": "conv"}[parts[2]] + "." + parts[3]
        elif parts[0] == "features":                                   # a stage's blocks
            stage, block, rest = (int(parts[1]) + 1) // 2, parts[2], ".".join(parts[3:])
            if rest == "layer_scale":
                new, value = "gamma", value.reshape(-1)
            else:
                head, tail = rest.rsplit(".", 1)
                if head not in inside:
                    raise KeyError(f"unexpected key in a torchvision ConvNeXt state dict: {key!r}")
                new = f"{inside[head]}.{tail}"
            new = f"stage{stage}.block{block}.{new}"
        else:
            raise KeyError(f"unexpected key in a torchvision ConvNeXt state dict: {key!r}")
        out[new] = value
    return out


# ------------------------------------------------------------ from ResNet-50 to ConvNeXt-T
_NORMS = {"bn": nn.BatchNorm2d, "ln": lambda c: LayerNorm2d(c, eps=1e-6)}
_ACTS = {"relu": nn.ReLU, "gelu": nn.GELU}


class StepBlock(nn.Module):
    """One block that every design step is a setting of (a residual block of three convs).

    ``dw_first=False``: 1x1 (in -> mid) -> k x k (mid, carries the stride) -> 1x1 (mid -> out),
    the ResNet bottleneck; ``dw_first=True``: the k x k conv moved to the top (on ``in``
    channels), then the two 1x1 convs, ConvNeXt's order. ``depthwise`` makes the k x k conv
    one filter per channel. ``norms="all"`` puts a norm after every conv, ``"one"`` only
    after the k x k conv; ``acts="all"`` an activation after the first two convs and after
    the addition, ``"one"`` only between the two 1x1 convs. A conv followed by a norm has no
    bias. The shortcut is a strided 1x1 conv + norm where the shape changes.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, stride: int = 1,
                 kernel_size: int = 3, depthwise: bool = False, dw_first: bool = False,
                 norm: str = "bn", norms: str = "all", act: str = "relu", acts: str = "all"):
        super().__init__()
        if norm not in _NORMS or act not in _ACTS or norms not in ("all", "one") \
                or acts not in ("all", "one"):
            raise ValueError(f"unknown setting: norm={norm!r}, norms={norms!r}, act={act!r}, "
                             f"acts={acts!r}")
        spatial_ch = in_channels if dw_first else mid_channels
        groups = spatial_ch if depthwise else 1
        # (name, in, out, kernel, stride, groups) in order
        if dw_first:
            specs = [("spatial", in_channels, in_channels, kernel_size, stride, groups),
                     ("expand", in_channels, mid_channels, 1, 1, 1),
                     ("reduce", mid_channels, out_channels, 1, 1, 1)]
        else:
            specs = [("reduce", in_channels, mid_channels, 1, 1, 1),
                     ("spatial", mid_channels, mid_channels, kernel_size, stride, groups),
                     ("expand", mid_channels, out_channels, 1, 1, 1)]
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i, (name, cin, cout, k, s, g) in enumerate(specs):
            has_norm = norms == "all" or name == "spatial"
            layers[name] = nn.Conv2d(cin, cout, k, s, padding=k // 2, groups=g, bias=not has_norm)
            if has_norm:
                layers[f"{name}_norm"] = _NORMS[norm](cout)
            if (acts == "all" and i < 2) or (acts == "one" and i == 1 and dw_first) \
                    or (acts == "one" and i == 0 and not dw_first):
                layers[f"{name}_act"] = _ACTS[act]()
        self.branch = nn.Sequential(layers)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                _NORMS[norm](out_channels))
        self.final_act = _ACTS[act]() if acts == "all" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.final_act(self.branch(x) + identity)


class StepNetwork(NamedSequential):
    """stem -> stages of ``StepBlock`` -> pool -> fc, configured by one ``DESIGN_STEPS`` row.

    ``stem="resnet"``: 7x7 stride-2 conv + norm + act + 3x3 stride-2 max-pool; ``"patchify"``:
    4x4 stride-4 conv + norm. ``downsample="block"``: the first block of stages 2-4 has
    stride 2 (ResNet); ``"separate"``: a norm + 2x2 stride-2 conv between stages (ConvNeXt).
    """

    def __init__(self, widths=(256, 512, 1024, 2048), depths=(3, 4, 6, 3), mid_ratio=0.25,
                 stem="resnet", stem_channels=64, downsample="block", num_classes=1000,
                 in_channels=3, **block):
        norm, act = block.get("norm", "bn"), block.get("act", "relu")
        if stem == "resnet":
            stem_layers = OrderedDict(conv=nn.Conv2d(in_channels, stem_channels, 7, 2, 3, bias=False),
                                      norm=_NORMS[norm](stem_channels), act=_ACTS[act](),
                                      pool=nn.MaxPool2d(3, 2, 1))
        elif stem == "patchify":
            stem_layers = OrderedDict(conv=nn.Conv2d(in_channels, stem_channels, 4, 4),
                                      norm=_NORMS[norm](stem_channels))
        else:
            raise ValueError(f"stem must be 'resnet' or 'patchify', got {stem!r}")
        if downsample not in ("block", "separate"):
            raise ValueError(f"downsample must be 'block' or 'separate', got {downsample!r}")
        parts: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(stem_layers))
        channels = stem_channels
        for i, (width, depth) in enumerate(zip(widths, depths)):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            stride = 2 if i > 0 and downsample == "block" else 1
            if i > 0 and downsample == "separate":
                layers["downsample"] = nn.Sequential(_NORMS[norm](channels),
                                                     nn.Conv2d(channels, width, 2, 2))
                channels = width
            mid = max(1, round(width * mid_ratio))
            for j in range(depth):
                layers[f"block{j}"] = StepBlock(channels, width, mid, stride if j == 0 else 1,
                                                **block)
                channels = width
            parts[f"stage{i + 1}"] = nn.Sequential(layers)
        parts["pool"] = nn.AdaptiveAvgPool2d(1)
        parts["flatten"] = nn.Flatten()
        parts["fc"] = nn.Linear(channels, num_classes)
        super().__init__(parts)


# The paper's path (Liu et al. 2022, Figure 2), each row changing the previous one; the last
# step (separate downsampling layers, layer scale, LN before the classifier) is ConvNeXt-T.
DESIGN_STEPS = [
    ("ResNet-50", dict()),
    ("stage ratio 3:3:9:3", dict(depths=(3, 3, 9, 3))),
    ("patchify stem (4x4, stride 4)", dict(stem="patchify")),
    ("ResNeXt-ify: depthwise 3x3", dict(depthwise=True)),
    ("ResNeXt-ify: width 64 -> 96", dict(stem_channels=96, widths=(384, 768, 1536, 3072))),
    ("inverted bottleneck (4x)", dict(widths=(96, 192, 384, 768), mid_ratio=4)),
    ("depthwise conv moved up", dict(dw_first=True)),
    ("kernel 7x7", dict(kernel_size=7)),
    ("ReLU -> GELU", dict(act="gelu")),
    ("fewer activations", dict(acts="one")),
    ("fewer norms", dict(norms="one")),
    ("BN -> LN", dict(norm="ln")),
    ("separate downsampling = ConvNeXt-T", None),
]


def design_step_config(step: int) -> dict | None:
    """``StepNetwork``'s settings after ``DESIGN_STEPS[0..step]`` (None for the last step,
    which is ``convnext_tiny``)."""
    if not 0 <= step < len(DESIGN_STEPS):
        raise ValueError(f"step must be between 0 and {len(DESIGN_STEPS) - 1}, got {step}")
    if DESIGN_STEPS[step][1] is None:
        return None
    config: dict = {}
    for _, change in DESIGN_STEPS[:step + 1]:
        config.update(change)
    return config


def design_step_network(step: int, num_classes: int = 1000) -> nn.Module:
    """The network after ``DESIGN_STEPS[0..step]`` (step 0 is ResNet-50, the last ConvNeXt-T)."""
    config = design_step_config(step)
    if config is None:
        return convnext_tiny(num_classes=num_classes)
    return StepNetwork(num_classes=num_classes, **config)
