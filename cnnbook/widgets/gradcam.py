"""GradCAMExplorer: where a trained network finds the evidence for a class, layer by layer.

Controls (image, target class, layer) -> ``gradcam_figure``, a pure function over
``cnnbook.interpret.gradcam.grad_cam`` -> the image, the Grad-CAM map over it, the map at
the layer's own resolution, and the class probabilities. Choosing a class other than the
predicted one shows the evidence *for that class* (often in a different place); moving to
an earlier layer trades class specificity for resolution.
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from cnnbook.interpret.gradcam import grad_cam, upsample
from cnnbook.interpret.sanity import block_names
from cnnbook.widgets.base import Explorer

__all__ = ["GradCAMExplorer", "gradcam_figure", "default_layers", "PREDICTED"]

PREDICTED = -1   # the target control's value for "the predicted class"
_STYLE = {"description_width": "initial"}


def _normalizer(normalize):
    if normalize is None:
        return lambda x: x
    if callable(normalize):
        return normalize
    try:
        mean, std = (torch.as_tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in normalize)
    except (TypeError, ValueError) as exc:
        raise ValueError("normalize must be None, a function, or (mean, std)") from exc
    return lambda x: (x - mean.to(x.device)) / std.to(x.device)


def default_layers(model: nn.Module, image: torch.Tensor) -> list[str]:
    """The model's blocks (``block_names``) whose output is a (N, C, h, w) feature map."""
    names = block_names(model)
    named = dict(model.named_modules())
    shapes = {}
    hooks = [named[n].register_forward_hook(lambda _m, _i, o, n=n: shapes.__setitem__(n, getattr(o, "ndim", 0)))
             for n in names]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(image[None].to(next(model.parameters()).device))
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return [n for n in names if shapes.get(n) == 4]


def gradcam_figure(model: nn.Module, image: torch.Tensor, layer: str, target: int = PREDICTED, *,
                   class_names: Sequence[str], label: int | None = None, normalize=None):
    """Grad-CAM of ``layer`` for class ``target`` (``PREDICTED``: the top class) on one image
    (C, H, W) in [0, 1]. Returns ``(figure, state)``; state holds the classes, the
    probabilities and the map's size and peak."""
    if not torch.is_tensor(image) or image.ndim != 3:
        raise ValueError(f"expected one image (C, H, W), got {getattr(image, 'shape', type(image))}")
    k = len(class_names)
    if not (target == PREDICTED or 0 <= target < k):
        raise ValueError(f"target must be a class 0..{k - 1} or the predicted class, got {target}")
    x = _normalizer(normalize)(image.float()[None])
    cam, logits = grad_cam(model, x, layer, None if target == PREDICTED else target,
                           return_logits=True)
    probs = logits.softmax(1)[0].cpu()
    predicted = int(probs.argmax())
    tgt = predicted if target == PREDICTED else int(target)
    small = cam[0].cpu()
    big = upsample(cam.cpu(), image.shape[-2:])[0]
    peak = divmod(int(small.argmax()), small.shape[1])
    top = float(small.max())

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.1), gridspec_kw=dict(width_ratios=[1, 1, 1, 1.3]))
    rgb = image.detach().float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
    if rgb.shape[2] == 1:
        rgb = rgb[..., 0]
    truth = f" (true: {class_names[label]})" if label is not None and 0 <= label < k else ""
    axes[0].imshow(rgb, cmap="gray" if rgb.ndim == 2 else None, interpolation="nearest")
    axes[0].set_title(f"image{truth}", fontsize=9)
    axes[1].imshow(rgb, cmap="gray" if rgb.ndim == 2 else None, interpolation="nearest")
    heat = (big / top).numpy() if top > 0 else np.zeros(tuple(big.shape))
    axes[1].imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    axes[1].set_title(f"Grad-CAM for '{class_names[tgt]}'", fontsize=9)
    axes[2].imshow(small.numpy(), cmap="jet", vmin=0, vmax=max(top, 1e-12), interpolation="nearest")
    axes[2].set_title(f"{layer}: {small.shape[0]}x{small.shape[1]} map", fontsize=9)
    for ax in axes[:3]:
        ax.set_xticks([]), ax.set_yticks([])
    colours = ["#c33" if i == tgt else ("#888" if i != predicted else "#38c") for i in range(k)]
    axes[3].barh(range(k), probs.numpy(), color=colours)
    axes[3].set_yticks(range(k), list(class_names), fontsize=8)
    axes[3].invert_yaxis()
    axes[3].set_xlim(0, 1)
    axes[3].set_title("probabilities (red: target, blue: predicted)", fontsize=9)
    if top == 0:
        fig.suptitle("no positive evidence for this class at this layer (the map is all zero)",
                     fontsize=9, color="#b00")
    fig.tight_layout()
    state = dict(layer=layer, target=tgt, target_name=class_names[tgt], predicted=predicted,
                 predicted_name=class_names[predicted], probability=float(probs[tgt]),
                 map_size=tuple(small.shape), peak=peak, map_max=top)
    return fig, state


class GradCAMExplorer(Explorer):
    """Choose an image, a target class (or the predicted one) and a layer of ``model``.

    ``images`` (N, C, H, W) in [0, 1] are shown as they are and passed through
    ``normalize`` (None, a function, or ``(mean, std)``) before the model; ``layers``
    (names from ``named_modules()``) default to the model's blocks with feature-map
    outputs; ``labels`` add the true class to the picture.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, *, class_names: Sequence[str],
                 layers: Sequence[str] | None = None, labels=None, normalize=None):
        if not torch.is_tensor(images) or images.ndim != 4 or len(images) == 0:
            raise ValueError("images must be a non-empty (N, C, H, W) tensor")
        if len(class_names) < 1:
            raise ValueError("class_names must name the model's classes")
        self.model = model
        self.images = images.detach().float().cpu()
        self.class_names = list(class_names)
        self.labels = None if labels is None else [int(v) for v in torch.as_tensor(labels).reshape(-1)]
        self.normalize = normalize
        self.layers = list(layers) if layers is not None else default_layers(
            model, _normalizer(normalize)(self.images[:1])[0])
        if not self.layers:
            raise ValueError("no layer with feature-map outputs to show")
        controls = {
            "image": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1,
                                       description="image", continuous_update=False, style=_STYLE),
            "target": widgets.Dropdown(options=[("predicted class", PREDICTED)]
                                       + [(n, i) for i, n in enumerate(self.class_names)],
                                       value=PREDICTED, description="target class", style=_STYLE),
            "layer": widgets.Dropdown(options=self.layers, value=self.layers[-1],
                                      description="layer", style=_STYLE),
        }
        super().__init__(controls)

    def compute(self, image, target, layer):
        label = self.labels[image] if self.labels is not None and image < len(self.labels) else None
        fig, state = gradcam_figure(self.model, self.images[image], layer, target,
                                    class_names=self.class_names, label=label,
                                    normalize=self.normalize)
        state["image"] = image
        return fig, state
