"""InceptionExplorer: how much each of an Inception block's four paths contributes, image by
image.

Controls -> ``branch_activity`` (one forward pass of the caller's GoogLeNet with hooks on
the four paths of every Inception block, cached per image) -> the image with the
prediction; for the chosen block, each path's share of the block's output activity beside
its share of the channels; the same shares for every block (so one image's pattern across
the network is visible at once); and each path's strongest feature maps.

The model comes from the caller (the chapter passes the network it trained); any model
whose Inception blocks are ``cnnbook.models.googlenet.Inception`` works.
"""
from __future__ import annotations

import time
from collections import OrderedDict

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import gridspec
from torch import nn

from cnnbook.models.googlenet import Inception
from cnnbook.widgets.base import Explorer

BRANCHES = ("branch1", "branch2", "branch3", "branch4")
MEASURES = {"energy": "sum of squares", "mean_abs": "sum of |activation|"}
_STYLE = {"description_width": "initial"}
_CACHE = 16      # forward passes kept (one per image)
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def inception_blocks(model: nn.Module) -> "OrderedDict[str, str]":
    """Short name ("3a") -> module name ("b3.inception3a") of every Inception block, in order."""
    blocks = OrderedDict()
    for name, m in model.named_modules():
        if isinstance(m, Inception):
            blocks[name.split(".")[-1].replace("inception", "")] = name
    return blocks


def branch_names(block: Inception) -> list[str]:
    """Readable names of the four paths, from their kernels: '1x1', '1x1 -> 3x3', ...."""
    k2 = block.branch2[1].conv.kernel_size[0]
    k3 = block.branch3[1].conv.kernel_size[0]
    return ["1x1", f"1x1 -> {k2}x{k2}", f"1x1 -> {k3}x{k3}", "pool -> 1x1"]


@torch.no_grad()
def branch_activity(model: nn.Module, x: torch.Tensor) -> dict:
    """One forward pass of ``x`` (a batch as the model takes it) with every Inception path
    recorded.

    Returns ``probabilities`` (N, classes) and ``blocks``: short block name -> dict with
    ``maps`` (the four paths' outputs, each (N, C_i, H, W) on the CPU), ``channels`` (C_i),
    ``energy`` and ``mean_abs`` (each path's share of the block's output, by sum of squares
    and by sum of absolute values, over the whole batch; each sums to 1, NaN if the output
    is all zero) and ``names``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError("model must be a torch nn.Module")
    if not torch.is_tensor(x) or x.ndim != 4:
        raise ValueError("x must be a batch of images (N, C, H, W)")
    blocks = inception_blocks(model)
    if not blocks:
        raise ValueError("the model has no Inception block (cnnbook.models.googlenet.Inception)")
    outputs: dict = {}
    hooks = []
    for short, name in blocks.items():
        block = model.get_submodule(name)
        for b in BRANCHES:
            hooks.append(getattr(block, b).register_forward_hook(
                lambda _m, _i, o, key=(short, b): outputs.__setitem__(key, o.detach().float().cpu())))
    was_training = model.training
    model.eval()
    try:
        ref = next(model.parameters(), None)
        logits = model(x.to(ref.device) if ref is not None else x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    result = {"probabilities": torch.softmax(logits.float().cpu(), dim=1), "blocks": OrderedDict()}
    for short, name in blocks.items():
        maps = [outputs[(short, b)] for b in BRANCHES]
        energy = torch.tensor([m.double().pow(2).sum().item() for m in maps])
        absolute = torch.tensor([m.double().abs().sum().item() for m in maps])
        result["blocks"][short] = {
            "maps": maps, "channels": [int(m.shape[1]) for m in maps],
            "energy": (energy / energy.sum()).tolist(),
            "mean_abs": (absolute / absolute.sum()).tolist(),
            "names": branch_names(model.get_submodule(name)),
        }
    return result


class InceptionExplorer(Explorer):
    """Pick a test image, an Inception block and how to measure activity; see each path's
    share of the block's output against its share of the channels, the same for every
    block, and each path's strongest feature maps.

    ``model`` is a GoogLeNet (trained, for a meaningful picture); ``images`` its test
    images (N, C, H, W) exactly as the model takes them, with optional ``labels`` and
    ``class_names``.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, *, labels=None, class_names=None,
                 block: str | None = None, maps_per_path: int = 6):
        if not isinstance(model, nn.Module):
            raise ValueError("model must be a torch nn.Module")
        if not torch.is_tensor(images) or images.ndim != 4 or len(images) == 0:
            raise ValueError("images must be a non-empty tensor (N, C, H, W)")
        self.model = model
        self.images = images.detach()
        self.labels = None if labels is None else [int(v) for v in torch.as_tensor(labels).cpu()]
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.blocks = inception_blocks(model)
        if not self.blocks:
            raise ValueError("the model has no Inception block")
        first = block if block is not None else next(iter(self.blocks))
        if first not in self.blocks:
            raise ValueError(f"block {first!r} is not one of {list(self.blocks)}")
        self._cache: OrderedDict = OrderedDict()
        controls = {
            "index": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1,
                                       description="test image #", continuous_update=False,
                                       style=_STYLE),
            "block": widgets.Dropdown(options=list(self.blocks), value=first,
                                      description="Inception block", style=_STYLE,
                                      layout=widgets.Layout(width="200px")),
            "measure": widgets.ToggleButtons(options=[(v, k) for k, v in MEASURES.items()],
                                             value="energy", description="activity",
                                             style=_STYLE),
            "maps": widgets.IntSlider(value=maps_per_path, min=1, max=16,
                                      description="maps per path", continuous_update=False,
                                      style=_STYLE),
        }
        c = controls
        layout = widgets.VBox([widgets.HBox([c["index"], c["block"]]),
                               widgets.HBox([c["measure"], c["maps"]])])
        super().__init__(controls, layout)

    def activity(self, index: int) -> dict:
        """``branch_activity`` for test image ``index`` (cached)."""
        if not 0 <= index < len(self.images):
            raise ValueError(f"image index must be in 0..{len(self.images) - 1}, got {index}")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        result = branch_activity(self.model, self.images[index:index + 1])
        self._cache[index] = result
        while len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return result

    tight_png = False   # laid out by hand: one drawing pass per redraw

    def refresh(self) -> None:
        start = time.perf_counter()
        super().refresh()
        if self.state.get("error") is None and "block" in self.state:
            self.state["render_ms"] = 1000 * (time.perf_counter() - start)

    def _class(self, i):
        if i is None:
            return None
        return self.class_names[i] if self.class_names and i < len(self.class_names) else str(i)

    def compute(self, index, block, measure, maps):
        if block not in self.blocks:
            raise ValueError(f"unknown block {block!r}")
        if measure not in MEASURES:
            raise ValueError(f"unknown measure {measure!r}")
        result = self.activity(index)
        info = result["blocks"][block]
        probs = result["probabilities"][0]
        pred = int(probs.argmax())
        true = None if self.labels is None else self.labels[index]
        shares = np.asarray(info[measure], dtype=float)
        if not np.isfinite(shares).all():
            raise ValueError(f"block {block} is silent for this image (every path's output is "
                             "zero): no share to show")
        channels = np.asarray(info["channels"], dtype=float)
        channel_share = channels / channels.sum()

        fig = plt.figure(figsize=(13, 4.4))
        outer = gridspec.GridSpec(2, 3, figure=fig, width_ratios=[0.8, 1.3, 2.2],
                                  height_ratios=[1, 1], left=0.06, right=0.99, top=0.88,
                                  bottom=0.1, wspace=0.35, hspace=0.6)
        ax = fig.add_subplot(outer[0, 0])
        img = self.images[index].float().cpu()
        img = ((img - img.min()) / (img.max() - img.min() + 1e-12)).numpy()
        ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray",
                  interpolation="nearest")
        ax.set_title(f"test image {index}" + (f" ({self._class(true)})" if true is not None else "")
                     + f"\npredicted {self._class(pred)} ({float(probs[pred]):.0%})", fontsize=8)
        ax.axis("off")

        ax = fig.add_subplot(outer[1, 0])
        names = list(result["blocks"])
        table = np.array([result["blocks"][n][measure] for n in names])
        ax.imshow(table, cmap="Greens", vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.set_xticks(range(4), ["1", "2", "3", "4"], fontsize=6)
        ax.axhline(names.index(block), color="red", lw=0.8)
        ax.set_title("every block: share by path", fontsize=8)

        ax = fig.add_subplot(outer[:, 1])
        y = np.arange(4)
        ax.barh(y - 0.2, channel_share, height=0.38, color="0.75", label="share of channels")
        ax.barh(y + 0.2, shares, height=0.38, color=_COLORS, label="share of activity")
        for i, v in enumerate(shares):
            ax.text(v + 0.01, i + 0.2, f"{v:.2f}", va="center", fontsize=7)
        ax.set_yticks(y, [f"{n}\n({c} ch)" for n, c in zip(info["names"], info["channels"])],
                      fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title(f"block {block}: {MEASURES[measure]} by path", fontsize=9)

        inner = gridspec.GridSpecFromSubplotSpec(4, 1, subplot_spec=outer[:, 2], hspace=0.45)
        shown = {}
        for i, m in enumerate(info["maps"]):
            a = m[0]                                   # (C, H, W)
            strength = a.flatten(1).pow(2).sum(1)
            order = strength.argsort(descending=True)[:maps].tolist()
            shown[info["names"][i]] = order
            h, w = a.shape[-2:]
            tiles = np.full((h, len(order) * (w + 1) - 1), np.nan, dtype=np.float32)
            for j, ch in enumerate(order):
                t = a[ch].numpy()
                span = float(t.max() - t.min())
                tiles[:, j * (w + 1):j * (w + 1) + w] = (t - t.min()) / span if span > 0 else 0.0
            axm = fig.add_subplot(inner[i])
            axm.imshow(np.ma.masked_invalid(tiles), cmap="viridis", vmin=0, vmax=1,
                       interpolation="nearest", aspect="equal")
            axm.set_title(f"{info['names'][i]}: strongest {len(order)} of {a.shape[0]} maps "
                          f"({h}x{w})", fontsize=7, loc="left", color=_COLORS[i])
            axm.axis("off")
        return fig, {
            "index": int(index), "block": block, "measure": measure,
            "paths": list(info["names"]), "channels": list(info["channels"]),
            "shares": dict(zip(info["names"], shares.tolist())),
            "channel_shares": dict(zip(info["names"], channel_share.tolist())),
            "strongest_path": info["names"][int(shares.argmax())],
            "shown_channels": shown,
            "prediction": self._class(pred), "true_class": self._class(true),
            "confidence": float(probs[pred]),
        }
