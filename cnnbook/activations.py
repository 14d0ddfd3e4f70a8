"""Activation functions by name, with their formulas, and three measurements (chapter 03).

``ACTIVATIONS`` maps a name to an ``Activation``: a factory for the ``nn.Module``, the
formula in LaTeX, where it comes from and, for the ones with a knob (LeakyReLU's slope,
Swish's beta, ...), the parameter's name and default. On top of it:

* ``values_and_grads``: ``f(x)`` and ``f'(x)`` by autograd, for plots and checks;
* ``zero_grad_fraction``: the share of inputs whose gradient is zero;
* ``dead_fraction``: the share of a layer's units that pass (almost) no gradient back for
  any input of a batch: "dead" units, measured in a trained network;
* ``gradient_vanishes_below``: how far left an input must be before ``|f'|`` stays under a
  tolerance (where a unit counts as dead);
* ``time_activations``: the best forward + backward time of each activation on one
  large tensor;
* ``compare_activations``: the pure function behind ``ActivationExplorer``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn

__all__ = ["Activation", "ACTIVATIONS", "Swish", "make_activation", "values_and_grads",
           "zero_grad_fraction", "dead_fraction", "gradient_vanishes_below", "time_activations",
           "compare_activations", "formula_table"]


class Swish(nn.Module):
    """``x * sigmoid(beta * x)`` (Ramachandran et al., 2017); ``beta=1`` is SiLU.

    ``learnable=True`` makes beta a parameter, as in the paper's Swish-beta. Large beta
    approaches ReLU, ``beta=0`` gives the straight line ``x / 2``.
    """

    def __init__(self, beta: float = 1.0, learnable: bool = False):
        super().__init__()
        beta = torch.tensor(float(beta))
        if learnable:
            self.beta = nn.Parameter(beta)
        else:
            self.register_buffer("beta", beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)

    def extra_repr(self) -> str:
        return f"beta={float(self.beta):g}"


@dataclass(frozen=True)
class Activation:
    """One registry entry: how to build the module and how to write it down."""

    name: str
    factory: Callable[..., nn.Module]  # called with the parameter's value if ``param`` is set
    formula: str                       # LaTeX, for the chapter's table
    source: str                        # who introduced it, with the year
    param: str | None = None           # the tunable constant, e.g. "slope"
    default: float | None = None

    def make(self, value: float | None = None) -> nn.Module:
        """A fresh module; ``value`` overrides the parameter's default (if it has one)."""
        if self.param is None:
            if value is not None:
                raise ValueError(f"{self.name} has no parameter to set")
            return self.factory()
        return self.factory(self.default if value is None else float(value))


def _entries(*items: Activation) -> dict[str, Activation]:
    return {a.name: a for a in items}


#: The chapter's activations, in historical order.
ACTIVATIONS: dict[str, Activation] = _entries(
    Activation("sigmoid", nn.Sigmoid, r"\frac{1}{1 + e^{-x}}", "LeCun et al. 1998 (classic)"),
    Activation("tanh", nn.Tanh, r"\tanh x", "LeCun et al. 1998 (classic)"),
    Activation("relu", nn.ReLU, r"\max(0, x)", "Nair & Hinton 2010"),
    Activation("leaky_relu", lambda a: nn.LeakyReLU(a),
               r"\max(0, x) + a \min(0, x),\ a = 0.01", "Maas et al. 2013", "slope", 0.01),
    Activation("elu", lambda a: nn.ELU(a),
               r"x \text{ if } x > 0 \text{ else } \alpha (e^{x} - 1)", "Clevert et al. 2015",
               "alpha", 1.0),
    Activation("prelu", lambda a: nn.PReLU(init=a),
               r"\max(0, x) + a \min(0, x),\ a \text{ learned (init } 0.25)",
               "He et al. 2015", "init", 0.25),
    Activation("relu6", nn.ReLU6, r"\min(\max(0, x), 6)", "Howard et al. 2017 (MobileNet)"),
    Activation("silu", nn.SiLU, r"x\, \sigma(x)", "Elfwing et al. 2018 (Swish with beta = 1)"),
    Activation("swish", lambda b: Swish(b), r"x\, \sigma(\beta x)",
               "Ramachandran et al. 2017", "beta", 1.0),
    Activation("mish", nn.Mish, r"x \tanh(\ln(1 + e^{x}))", "Misra 2019"),
    Activation("gelu", nn.GELU, r"x\, \Phi(x)", "Hendrycks & Gimpel 2016"),
    Activation("gelu_tanh", lambda: nn.GELU(approximate="tanh"),
               r"\tfrac12 x \left(1 + \tanh\left(\sqrt{2/\pi}\,(x + 0.044715 x^3)\right)\right)",
               "Hendrycks & Gimpel 2016"),
    Activation("hardswish", nn.Hardswish, r"x\, \frac{\min(\max(x + 3, 0), 6)}{6}",
               "Howard et al. 2019 (MobileNetV3)"),
)


def _lookup(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of "
                         f"{', '.join(ACTIVATIONS)}") from None


def make_activation(name: str, value: float | None = None) -> nn.Module:
    """The module called ``name`` in ``ACTIVATIONS`` (``value`` sets its parameter, if any)."""
    return _lookup(name).make(value)


def formula_table(names: Sequence[str] | None = None) -> pd.DataFrame:
    """Name, formula (LaTeX between $...$), parameter and source of each activation."""
    rows = []
    for name in names or ACTIVATIONS:
        a = _lookup(name)
        rows.append({"name": a.name, "formula": f"${a.formula}$",
                     "parameter": "" if a.param is None else f"{a.param} = {a.default:g}",
                     "source": a.source})
    return pd.DataFrame(rows)


def _module(act) -> nn.Module:
    return make_activation(act) if isinstance(act, str) else act


def values_and_grads(act, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(x)`` and ``f'(x)`` (elementwise, by autograd) for a module or a registry name.

    Works because every activation acts elementwise: the gradient of ``f(x).sum()`` with
    respect to ``x_i`` is ``f'(x_i)``.
    """
    f = _module(act)
    x = x.detach().clone().requires_grad_(True)
    y = f(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad.detach()


def zero_grad_fraction(act, x: torch.Tensor, tol: float = 0.0) -> float:
    """Share of the inputs ``x`` where ``|f'(x)| <= tol``: units that pass no gradient back.

    With ``tol=0`` it counts exact zeros (ReLU's negative side, ReLU6 above 6); a small
    ``tol`` also counts saturated units whose gradient is merely tiny (sigmoid, ELU).
    """
    _, g = values_and_grads(act, x)
    return float((g.abs() <= tol).float().mean())


def dead_fraction(act, pre: torch.Tensor, tol: float = 1e-3) -> float:
    """Share of units that are dead on a batch: ``|f'(z)| <= tol`` for every example (and
    every position of a feature map).

    ``pre`` holds the pre-activations ``z`` the unit receives: (N, C, H, W) for a
    convolution, whose unit is a channel (its weights are shared over positions), or
    (N, F) for a linear layer. A dead ReLU unit (``z <= 0`` everywhere) gets no gradient,
    so no training step can revive it; LeakyReLU's units never die by this measure
    (slope 0.01 > ``tol``), GELU's only for ``z`` below about -3.81
    (``gradient_vanishes_below("gelu")``).
    """
    if pre.dim() not in (2, 4):
        raise ValueError(f"expected pre-activations (N, F) or (N, C, H, W), got shape "
                         f"{tuple(pre.shape)}")
    _, g = values_and_grads(act, pre.detach().float())
    per_unit = g.abs().transpose(0, 1).flatten(1).amax(dim=1)  # the largest |f'| of each unit
    return float((per_unit <= tol).float().mean())


def gradient_vanishes_below(act, tol: float = 1e-3, lo: float = -50.0, hi: float = 0.0,
                            points: int = 100_001) -> float:
    """The point ``x`` such that ``|f'(t)| <= tol`` for every ``t`` in ``[lo, x]``.

    Below it a unit of this activation passes (almost) no gradient back: it is the input
    under which ``dead_fraction`` counts the unit as dead. Found on a float64 grid of
    ``points`` values over ``[lo, hi]``, then refined by bisection between the last grid
    point that is still flat and the first that is not. Returns ``-inf`` when ``|f'(lo)|``
    already exceeds ``tol`` (LeakyReLU: the gradient never vanishes) and ``hi`` when
    ``|f'|`` stays within ``tol`` on the whole range (ReLU on ``[lo, 0]``).
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got [{lo:g}, {hi:g}]")
    if points < 2 or not tol >= 0:
        raise ValueError("points must be at least 2 and tol a number >= 0")
    f = _module(act).double()

    def steep(x: torch.Tensor) -> torch.Tensor:
        return values_and_grads(f, x)[1].abs() > tol

    grid = torch.linspace(lo, hi, points, dtype=torch.float64)
    over = steep(grid)
    if not over.any():
        return float(hi)
    first = int(over.nonzero()[0])
    if first == 0:
        return -math.inf
    a, b = float(grid[first - 1]), float(grid[first])   # flat at a, steep at b
    for _ in range(60):
        mid = 0.5 * (a + b)
        if bool(steep(torch.tensor([mid], dtype=torch.float64))):
            b = mid
        else:
            a = mid
    return a


def _fwd_bwd_step(f: nn.Module, x: torch.Tensor) -> Callable[[], float]:
    """A function that runs ``f`` forward and backward once and returns the seconds taken."""
    x = x.detach().clone().requires_grad_(True)

    def step() -> float:
        t0 = time.perf_counter()
        y = f(x)
        y.backward(torch.ones_like(y))
        x.grad = None
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        return time.perf_counter() - t0

    return step


def time_activations(names: Sequence[str] | None = None, numel: int = 2 ** 22,
                     repeats: int = 5, warmup: int = 1, device=None,
                     seed: int = 0) -> pd.DataFrame:
    """Best (minimum over ``repeats``) forward + backward milliseconds of each activation
    on one N(0, 1) tensor.

    The minimum, as ``timeit`` advises: other processes only ever add time, so the fastest
    run is the closest to the function's own cost; the repeats go round-robin over the
    activations, so a busy moment of the machine does not hit one of them only. Returns a table sorted from fastest to
    slowest, with each time relative to ReLU's (when ReLU is measured). Elementwise
    functions are memory-bound, so expect small differences; the order can change between
    machines and runs.
    """
    if repeats < 1 or numel < 1:
        raise ValueError("repeats and numel must be positive")
    names = list(names or ACTIVATIONS)
    device = torch.device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(numel, generator=gen).to(device)
    steps = {n: _fwd_bwd_step(make_activation(n).to(device), x) for n in names}
    for step in steps.values():
        for _ in range(warmup):
            step()
    best = dict.fromkeys(names, math.inf)
    for _ in range(repeats):  # round-robin, so a busy moment of the machine hits every one
        for n, step in steps.items():
            best[n] = min(best[n], step())
    rows = [{"activation": n, "ms": best[n] * 1000} for n in names]
    df = pd.DataFrame(rows).sort_values("ms", ignore_index=True)
    if "relu" in names:
        df["vs relu"] = df["ms"] / float(df.loc[df["activation"] == "relu", "ms"].iloc[0])
    return df


MAX_RANGE = 1e4  # the explorer's x range; wider shows nothing new and overflows exp


def compare_activations(names: Sequence[str], x_min: float = -3.0, x_max: float = 3.0,
                        points: int = 601, params: dict | None = None) -> dict:
    """Curves and numbers for the selected activations on ``[x_min, x_max]``.

    Returns ``{"x": grid, "f": {name: f(x)}, "df": {name: f'(x)}, "at_minus_1": {name: f(-1)},
    "grad_at_minus_1": {...}, "zero_grad": {name: share of grid points with f' = 0}}``.
    ``params`` maps a name to its parameter's value (e.g. ``{"leaky_relu": 0.1}``).
    An empty selection, an unknown name or ``x_min >= x_max`` raises ``ValueError``.
    """
    names = list(names)
    if not names:
        raise ValueError("select at least one activation")
    if not (math.isfinite(x_min) and math.isfinite(x_max)):
        raise ValueError(f"the x range must be finite numbers, got [{x_min:g}, {x_max:g}]")
    if abs(x_min) > MAX_RANGE or abs(x_max) > MAX_RANGE:
        raise ValueError(f"keep the x range within +-{MAX_RANGE:g} (got [{x_min:g}, {x_max:g}]): "
                         "beyond that the curves are straight lines or overflow")
    if not x_min < x_max:
        raise ValueError(f"the x range needs min < max, got [{x_min:g}, {x_max:g}]")
    if points < 2:
        raise ValueError("points must be at least 2")
    params = params or {}
    x = torch.linspace(float(x_min), float(x_max), points, dtype=torch.float64)
    probe = torch.tensor([-1.0], dtype=torch.float64)
    out = {"x": x, "f": {}, "df": {}, "at_minus_1": {}, "grad_at_minus_1": {}, "zero_grad": {}}
    for name in names:
        spec = _lookup(name)
        f = spec.make(params.get(name) if spec.param else None).double()
        y, g = values_and_grads(f, x)
        y1, g1 = values_and_grads(f, probe)
        out["f"][name], out["df"][name] = y, g
        out["at_minus_1"][name], out["grad_at_minus_1"][name] = float(y1), float(g1)
        out["zero_grad"][name] = float((g == 0).double().mean())
    return out
