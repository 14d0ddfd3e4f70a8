"""AttentionExplorer: where a Vision Transformer's class token looks, layer by layer.

Controls (test image, layer or "rollout", head or the mean of the heads, discard ratio) ->
``attention_figure``, a pure function over ``cnnbook.interpret.rollout`` -> the image, the
class token's attention over the patches laid on it, the map at patch resolution, and the
class probabilities. One layer shows what the class token reads *in that layer*; "rollout"
follows the information through all layers (Abnar & Zuidema, 2020).
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.interpret.rollout import attention_rollout, class_token_map, fuse_heads, vit_attentions
from cnnbook.widgets.base import Explorer
from cnnbook.widgets.gradcam import _normalizer

__all__ = ["AttentionExplorer", "attention_figure", "ROLLOUT", "MEAN"]

ROLLOUT = -1   # the layer control's value for attention rollout over all layers
MEAN = -1      # the head control's value for the mean over the heads
_STYLE = {"description_width": "initial"}


def attention_figure(model: nn.Module, image: torch.Tensor, layer: int = ROLLOUT,
                     head: int = MEAN, discard_ratio: float = 0.0, *,
                     class_names: Sequence[str], label: int | None = None, normalize=None):
    """The class token's attention on one image (C, H, W) in [0, 1] for ``layer`` (0-based,
    or ``ROLLOUT``) and ``head`` (or ``MEAN``). Returns ``(figure, state)``; state holds the
    prediction, the map's size, its peak patch and the share of the class token's attention
    that goes to the patches (the rest stays on the class token itself)."""
    if not torch.is_tensor(image) or image.ndim != 3:
        raise ValueError(f"expected one image (C, H, W), got {getattr(image, 'shape', type(image))}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard ratio must be in [0, 1), got {discard_ratio}")
    x = _normalizer(normalize)(image.float()[None])
    device = next(model.parameters()).device
    logits, maps = vit_attentions(model, x.to(device))
    depth, heads = len(maps), maps[0].shape[1]
    if not (layer == ROLLOUT or 0 <= layer < depth):
        raise ValueError(f"layer must be 0..{depth - 1} or rollout, got {layer}")
    if not (head == MEAN or 0 <= head < heads):
        raise ValueError(f"head must be 0..{heads - 1} or the mean, got {head}")
    fusion = "mean" if head == MEAN else int(head)
    maps = [m.float().cpu() for m in maps]
    if layer == ROLLOUT:
        joint = attention_rollout(maps, fusion=fusion, discard_ratio=discard_ratio)
        what = f"rollout over {depth} layers"
    else:
        joint = fuse_heads(maps[layer], fusion)
        what = f"layer {layer + 1} of {depth}"
    patches_share = float(joint[0, 0, 1:].sum())
    small = class_token_map(joint)[0]
    big = F.interpolate(small[None, None], size=tuple(image.shape[-2:]), mode="bilinear",
                        align_corners=False)[0, 0]
    k = len(class_names)
    probs = logits.softmax(1)[0].cpu()
    if probs.numel() != k:
        raise ValueError(f"the model has {probs.numel()} outputs but {k} class names were given")
    predicted = int(probs.argmax())
    peak = divmod(int(small.argmax()), small.shape[1])

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.1), gridspec_kw=dict(width_ratios=[1, 1, 1, 1.3]))
    rgb = image.detach().float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
    if rgb.shape[2] == 1:
        rgb = rgb[..., 0]
    cmap = "gray" if rgb.ndim == 2 else None
    truth = f" (true: {class_names[label]})" if label is not None and 0 <= label < k else ""
    axes[0].imshow(rgb, cmap=cmap, interpolation="nearest")
    axes[0].set_title(f"image{truth}", fontsize=9)
    axes[1].imshow(rgb, cmap=cmap, interpolation="nearest")
    axes[1].imshow(big.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    head_text = "mean of heads" if head == MEAN else f"head {head + 1} of {heads}"
    axes[1].set_title(f"class token: {what}\n{head_text}", fontsize=9)
    axes[2].imshow(small.numpy(), cmap="jet", vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title(f"{small.shape[0]}x{small.shape[1]} patches; {patches_share:.0%} of the\n"
                      "class token's attention on patches", fontsize=9)
    for ax in axes[:3]:
        ax.set_xticks([]), ax.set_yticks([])
    colours = ["#38c" if i == predicted else "#888" for i in range(k)]
    axes[3].barh(range(k), probs.numpy(), color=colours)
    axes[3].set_yticks(range(k), list(class_names), fontsize=8)
    axes[3].invert_yaxis()
    axes[3].set_xlim(0, 1)
    axes[3].set_title("probabilities (blue: predicted)", fontsize=9)
    fig.tight_layout()
    state = dict(layer=layer, head=head, discard_ratio=discard_ratio, predicted=predicted,
                 predicted_name=class_names[predicted], probability=float(probs[predicted]),
                 map_size=tuple(small.shape), peak=peak, patches_share=patches_share,
                 depth=depth, heads=heads)
    return fig, state


class AttentionExplorer(Explorer):
    """Choose a test image, a layer (or rollout), a head (or their mean) and a discard ratio
    for a trained ``cnnbook.models.vit.VisionTransformer``.

    ``images`` (N, C, H, W) in [0, 1] are shown as they are and passed through ``normalize``
    (None, a function, or ``(mean, std)``) before the model; ``labels`` add the true class.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, *, class_names: Sequence[str],
                 labels=None, normalize=None):
        if not torch.is_tensor(images) or images.ndim != 4 or len(images) == 0:
            raise ValueError("images must be a non-empty (N, C, H, W) tensor")
        if not hasattr(model, "blocks") or len(model.blocks) == 0:
            raise ValueError("model must be a VisionTransformer (cnnbook.models.vit)")
        self.model = model
        self.images = images.detach().float().cpu()
        self.class_names = list(class_names)
        self.labels = None if labels is None else [int(v) for v in torch.as_tensor(labels).reshape(-1)]
        self.normalize = normalize
        depth, heads = len(model.blocks), model.blocks[0].attn.heads
        controls = {
            "image": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1,
                                       description="image", continuous_update=False, style=_STYLE),
            "layer": widgets.Dropdown(options=[("rollout (all layers)", ROLLOUT)]
                                      + [(f"layer {i + 1}", i) for i in range(depth)],
                                      value=ROLLOUT, description="layer", style=_STYLE),
            "head": widgets.Dropdown(options=[("mean of heads", MEAN)]
                                     + [(f"head {i + 1}", i) for i in range(heads)],
                                     value=MEAN, description="head", style=_STYLE),
            "discard": widgets.FloatSlider(value=0.0, min=0.0, max=0.95, step=0.05,
                                           description="discard ratio (rollout)",
                                           continuous_update=False, style=_STYLE),
        }
        super().__init__(controls)

    def compute(self, image, layer, head, discard):
        label = self.labels[image] if self.labels is not None and image < len(self.labels) else None
        fig, state = attention_figure(self.model, self.images[image], layer, head, discard,
                                      class_names=self.class_names, label=label,
                                      normalize=self.normalize)
        state["image"] = image
        return fig, state
