"""Look inside a trained model: its first convolution and the activations of chosen layers."""
from __future__ import annotations

import torch
from torch import nn


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` in the model's module order (whose kernels we plot)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer")


def _resolve(model: nn.Module, layers) -> dict:
    if isinstance(layers, dict):
        return dict(layers)
    named = dict(model.named_modules())
    missing = [name for name in layers if name not in named]
    if missing:
        raise ValueError(f"no layer named {', '.join(map(repr, missing))}; some layer names: "
                         f"{', '.join(list(named)[1:12])}")
    return {name: named[name] for name in layers}


@torch.no_grad()
def capture(model: nn.Module, x: torch.Tensor, layers) -> dict:
    """Outputs of ``layers`` (names from ``named_modules()``, or a name -> module dict)
    for input ``x``, recorded with forward hooks in eval mode and detached to the CPU."""
    modules = _resolve(model, layers)
    out: dict = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, name=name: out.__setitem__(name, o))
             for name, m in modules.items()]
    was_training = model.training
    model.eval()
    try:
        ref = next(model.parameters(), None)
        model(x.to(ref.device) if ref is not None else x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {name: (o.detach().float().cpu().contiguous() if torch.is_tensor(o) else o)
            for name, o in out.items()}
