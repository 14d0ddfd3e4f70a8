"""Grad-CAM (Selvaraju et al., 2017): where in the image a layer's evidence for a class lies.

For a layer with output ``A`` (N, K, h, w) and a class score ``y_c`` (the logit, before
the softmax), each channel gets the weight ``alpha_k = mean_{i,j} d y_c / d A_k[i, j]``
(global-average-pooled gradients); the map is ``ReLU(sum_k alpha_k A_k)``, at the layer's
resolution, then upsampled to the image. Late layers give coarse but class-specific maps;
the stem gives fine maps that hardly depend on the class.

``grad_cam`` is written out here because chapter 20 teaches it; the tests check it against
Captum's ``LayerGradCam`` on the same model and layer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.interpret._common import as_batch, as_targets, model_device, select

__all__ = ["grad_cam", "layer_by_name", "upsample"]


def layer_by_name(model: nn.Module, layer) -> nn.Module:
    """``layer`` itself if it is a module, else the sub-module of that ``named_modules`` name."""
    if isinstance(layer, nn.Module):
        return layer
    named = dict(model.named_modules())
    if layer not in named or layer == "":
        raise ValueError(f"no layer named {layer!r}; some names: {', '.join(list(named)[1:10])}")
    return named[layer]


def upsample(maps: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling of maps (N, h, w) to ``size`` = (H, W), as Captum's
    ``LayerAttribution.interpolate(..., "bilinear")`` does."""
    return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear",
                         align_corners=False)[:, 0]


def grad_cam(model: nn.Module, x: torch.Tensor, layer, target=None, *, relu: bool = True,
             upsampled: bool = False, return_logits: bool = False):
    """Grad-CAM maps (N, h, w) of ``layer`` (a module or its name) for classes ``target``.

    ``target`` is one class for every image, one per image, or None for each image's
    predicted class. ``relu=False`` keeps the negative evidence; ``upsampled=True``
    returns maps at the image's size. The model runs in eval mode (restored afterwards).
    With ``return_logits`` the logits come too: ``(maps, logits)``.
    """
    x = as_batch(x).to(model_device(model))
    module = layer_by_name(model, layer)
    saved: dict = {}

    def hook(_m, _inp, out):
        if not torch.is_tensor(out) or out.ndim != 4:
            raise ValueError(f"Grad-CAM needs a layer with (N, C, h, w) outputs; {layer!r} "
                             f"gives {type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
        saved["A"] = out

    handle = module.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logits = model(x)
            if "A" not in saved:
                raise ValueError(f"layer {layer!r} did not run in the forward pass")
            t = as_targets(target, len(x), logits.shape[1], logits)
            A = saved["A"]
            (grads,) = torch.autograd.grad(select(logits, t).sum(), A)
    finally:
        handle.remove()
        model.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)      # alpha_k per image
    cam = (weights * A).sum(dim=1).detach()
    if relu:
        cam = cam.clamp_min(0)
    if upsampled:
        cam = upsample(cam, x.shape[-2:])
    return (cam, logits.detach()) if return_logits else cam
