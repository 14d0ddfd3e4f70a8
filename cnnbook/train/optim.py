"""Optimisers for ``fit``: by name, ready-made, or built from parameter groups by a factory.

    fit(model, ..., optimizer="sgd", lr=0.1, momentum=0.9)                  # by name, as before
    fit(model, ..., optimizer=adamw(lr=1e-3, weight_decay=0.05, lr_mult={"backbone": 0.1}))

A *factory* is any callable ``factory(model) -> torch.optim.Optimizer``; ``sgd``, ``adam`` and
``adamw`` return one. They split the parameters into groups (``param_groups``) for two reasons:

- Weight decay pulls weights towards zero to keep the function simple. A bias or a
  normalisation layer's scale and shift do not make the function more complex, and shrinking
  a batch-norm scale only fights the layer, so these get no decay (``no_decay_norm_bias``).
  Which parameters those are is decided by module type: a ``bias`` attribute of any module,
  and every parameter of a normalisation layer (torch's ``_NormBase``, ``LayerNorm``,
  ``GroupNorm``, ``RMSNorm``, or a from-scratch class whose name ends in ``Norm``/``Norm2d``).
- Fine-tuning wants a pretrained backbone to move more slowly than a new head:
  ``lr_mult={"backbone": 0.1}`` multiplies the learning rate of every parameter whose name
  starts with ``backbone.``.

``groups_table(optimizer)`` prints the groups an optimiser ended up with.
"""
from __future__ import annotations

import re
import warnings
from typing import Callable

import pandas as pd
import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
               *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
_NORM_NAME = re.compile(r"Norm(\d+d)?$")  # cnnbook's from-scratch BatchNorm, GroupNorm, ...


def is_norm(module: nn.Module) -> bool:
    """True for a normalisation layer: torch's norm modules, or a class named ``...Norm(2d)``."""
    return isinstance(module, _NORM_TYPES) or bool(_NORM_NAME.search(type(module).__name__))


def _no_decay_names(model: nn.Module) -> set[str]:
    """Names of the parameters that get no weight decay: biases and norm-layer parameters."""
    names = set()
    for mod_name, module in model.named_modules():
        for p_name, _ in module.named_parameters(recurse=False):
            if p_name == "bias" or is_norm(module):
                names.add(f"{mod_name}.{p_name}" if mod_name else p_name)
    return names


def param_groups(model: nn.Module, lr: float, weight_decay: float = 0.0,
                 no_decay_norm_bias: bool = True,
                 lr_mult: dict[str, float] | None = None) -> list[dict]:
    """The model's trainable parameters split into optimiser groups, each a dict with a name.

    Groups: one per ``lr_mult`` prefix (learning rate ``lr * factor``) plus "base" for the
    rest (``lr``), each split into decayed weights and a "no_decay" part (biases and norm
    layers, weight decay 0) when ``no_decay_norm_bias``. A prefix matches a parameter name
    component by component ("layer1" matches "layer1.0.weight", not "layer10.weight"); the
    longest matching prefix wins; a prefix that matches no parameter is an error (a typo
    would otherwise silently train at the base rate). Frozen parameters are left out;
    empty groups are dropped.
    """
    lr_mult = {k.rstrip("."): float(v) for k, v in (lr_mult or {}).items()}
    named = list(model.named_parameters())
    all_names = [n for n, _ in named]
    for prefix in lr_mult:
        if not any(n == prefix or n.startswith(prefix + ".") for n in all_names):
            tops = sorted({n.split(".")[0] for n in all_names})
            raise ValueError(f"lr_mult prefix {prefix!r} matches no parameter of "
                             f"{type(model).__name__}; its top-level names are {tops}")
    no_decay = _no_decay_names(model) if no_decay_norm_bias else set()
    groups: dict[tuple[str, bool], dict] = {}
    for key in ["base", *lr_mult]:  # group order: base first, then lr_mult's order
        for nd in (False, True):
            groups[key, nd] = {
                "name": key + ("/no_decay" if nd else ""),
                "params": [], "lr": lr * lr_mult.get(key, 1.0),
                "weight_decay": 0.0 if nd else weight_decay}
    for name, p in named:
        if not p.requires_grad:
            continue
        matches = [k for k in lr_mult if name == k or name.startswith(k + ".")]
        key = max(matches, key=len) if matches else "base"
        groups[key, name in no_decay]["params"].append(p)
    return [g for g in groups.values() if g["params"]]


def groups_table(groups) -> pd.DataFrame:
    """One row per parameter group: name, lr, weight decay, number of tensors and parameters.

    Takes ``param_groups(...)``'s list or an optimiser (then it shows the lr in force now).
    """
    if isinstance(groups, torch.optim.Optimizer):
        groups = groups.param_groups
    rows = [{"group": g.get("name", str(i)), "lr": g["lr"],
             "weight_decay": g.get("weight_decay", 0.0), "tensors": len(g["params"]),
             "params": sum(p.numel() for p in g["params"])} for i, g in enumerate(groups)]
    return pd.DataFrame(rows).set_index("group")


class OptimizerFactory:
    """``factory(model) -> Optimizer`` built from ``param_groups``; made by sgd/adam/adamw.

    ``lr=None`` means "the learning rate given to ``fit``" (``make_optimizer`` fills it in).
    """

    def __init__(self, kind: str, cls: type, lr: float | None, weight_decay: float,
                 no_decay_norm_bias: bool, lr_mult: dict | None, **options):
        self.kind, self.cls, self.lr, self.weight_decay = kind, cls, lr, weight_decay
        self.no_decay_norm_bias, self.lr_mult, self.options = no_decay_norm_bias, lr_mult, options

    def __call__(self, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        lr = self.lr if self.lr is not None else lr
        if lr is None:
            raise ValueError(f"{self!r} has no learning rate: give lr= to it or to fit")
        groups = param_groups(model, lr, self.weight_decay, self.no_decay_norm_bias,
                              self.lr_mult)
        return self.cls(groups, lr=lr, weight_decay=self.weight_decay, **self.options)

    def __repr__(self) -> str:
        args = {"lr": self.lr, "weight_decay": self.weight_decay, **self.options,
                "no_decay_norm_bias": self.no_decay_norm_bias}
        if self.lr_mult:
            args["lr_mult"] = self.lr_mult
        return f"{self.kind}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def sgd(lr: float | None = None, momentum: float = 0.9, nesterov: bool = False,
        weight_decay: float = 0.0, no_decay_norm_bias: bool = True,
        lr_mult: dict[str, float] | None = None, **options) -> OptimizerFactory:
    """SGD with (Nesterov) momentum over parameter groups; L2 weight decay added to gradients."""
    return OptimizerFactory("sgd", torch.optim.SGD, lr, weight_decay, no_decay_norm_bias,
                            lr_mult, momentum=momentum, nesterov=nesterov, **options)


def adam(lr: float | None = None, betas: tuple[float, float] = (0.9, 0.999),
         weight_decay: float = 0.0, no_decay_norm_bias: bool = True,
         lr_mult: dict[str, float] | None = None, **options) -> OptimizerFactory:
    """Adam over parameter groups (weight decay as an L2 term in the gradient, as torch does).

    Typical lr: 1e-3. Prefer ``adamw`` for weight decay: Adam's per-parameter scaling
    weakens L2 decay on parameters with large gradients (Loshchilov & Hutter, 2019).
    """
    return OptimizerFactory("adam", torch.optim.Adam, lr, weight_decay, no_decay_norm_bias,
                            lr_mult, betas=betas, **options)


def adamw(lr: float | None = None, weight_decay: float = 1e-4,
          betas: tuple[float, float] = (0.9, 0.999), no_decay_norm_bias: bool = True,
          lr_mult: dict[str, float] | None = None, **options) -> OptimizerFactory:
    """AdamW: Adam with decoupled weight decay (weights shrink by ``lr * wd`` each step).

    Typical lr: 1e-3; weight decay 1e-4 to 0.05.
    """
    return OptimizerFactory("adamw", torch.optim.AdamW, lr, weight_decay, no_decay_norm_bias,
                            lr_mult, betas=betas, **options)


def make_optimizer(optimizer, model: nn.Module, lr: float, momentum: float = 0.0,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The optimiser ``fit`` uses: from a name, a ready optimiser, or a factory.

    - "sgd", "adam", "adamw": one group over all parameters with ``lr``, ``momentum`` (SGD)
      and ``weight_decay`` (the plain path, as in chapters 05-14);
    - a ``torch.optim.Optimizer``: returned as it is;
    - a factory ``callable(model) -> Optimizer`` such as ``adamw(...)``: called on the model
      (a builder's factory made without ``lr`` gets this ``lr``; ``momentum`` and
      ``weight_decay`` here are ignored with a warning: the factory carries its own).
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if callable(optimizer) and not isinstance(optimizer, str) and (momentum or weight_decay):
        warnings.warn(f"momentum={momentum} and weight_decay={weight_decay} are ignored: the "
                      "optimizer factory carries its own (e.g. optim.sgd(momentum=0.9, "
                      "weight_decay=5e-4))", stacklevel=2)
    if isinstance(optimizer, OptimizerFactory):
        return optimizer(model, lr)
    if callable(optimizer) and not isinstance(optimizer, str):
        opt = optimizer(model)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"the optimizer factory returned {type(opt).__name__}, "
                            "not a torch.optim.Optimizer")
        return opt
    params = model.parameters()
    kind = str(optimizer).lower()
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}: use 'sgd', 'adam', 'adamw', an "
                     "optimizer, or a factory such as cnnbook.train.optim.adamw(...)")


Factory = Callable[[nn.Module], torch.optim.Optimizer]
