"""DescentExplorer: gradient descent (with optional momentum) on a quadratic loss you can draw.

Controls -> ``descend_quadratic`` -> two panels: the path on the contour lines of the loss,
with the Hessian's eigenvectors drawn through the minimum, and the error along each
eigenvector per step on a log scale beside the rate the theory predicts for it. The numbers
are computed from the Hessian ``H``, not written in: its eigenvalues, the factor by which
one step multiplies the error along each eigenvector (``|1 - lr * lambda|`` without
momentum; the spectral radius of the two-step recurrence with it), whether the slowest of
those factors is below 1 (converges), and the single learning rate that makes the slowest
direction fastest for the chosen momentum (``2 / (lambda_min + lambda_max)`` without
momentum), found by a search over rates.
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import LogLocator, NullLocator

from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}
#: a path whose error grows by this factor over the start's has diverged: stop it there
DIVERGED = 1e6


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def step_factors(eigenvalues, lr, momentum: float = 0.0) -> np.ndarray:
    """Per eigen-direction (last axis; ``lr`` may be an array of rates, the leading axes), the factor by which gradient descent shrinks (< 1) or grows (> 1)
    the error each step, asymptotically.

    Along an eigenvector with eigenvalue ``lam`` the error obeys
    ``e[k+1] = (1 + momentum - lr * lam) e[k] - momentum e[k-1]`` (heavy-ball momentum, as
    ``torch.optim.SGD`` runs it), whose rate is the larger root modulus of
    ``z^2 - (1 + momentum - lr * lam) z + momentum``; without momentum, ``|1 - lr * lam|``.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    t = 1.0 + momentum - np.asarray(lr, dtype=np.float64)[..., None] * lam
    root = np.sqrt((t * t - 4.0 * momentum).astype(np.complex128))
    return np.maximum(np.abs(t + root), np.abs(t - root)) / 2


def best_rate(eigenvalues, momentum: float = 0.0, grid: int = 4001) -> tuple[float, float]:
    """The learning rate that minimises the slowest direction's factor, and that factor.

    Found by evaluating ``step_factors`` on ``grid`` rates up to the stability limit, so it
    holds for any momentum; without momentum it is ``2 / (lambda_min + lambda_max)``. With
    more momentum than Polyak's best, a range of rates ties: the middle one is returned.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    limit = 2.0 * (1.0 + momentum) / lam.max()
    lrs = np.linspace(0.0, limit, grid)[1:-1]
    worst = step_factors(lam, lrs, momentum).max(axis=-1)
    # with much momentum a whole range of rates ties at sqrt(momentum): take its middle
    ties = np.flatnonzero(worst <= worst.min() * (1 + 1e-9))
    i = int(ties[len(ties) // 2])
    return float(lrs[i]), float(worst[i])


def descend_quadratic(H, b, w0, lr: float, steps: int, momentum: float = 0.0,
                      c: float = 0.0) -> dict:
    """Run gradient descent on ``E(w) = w'Hw/2 - b'w + c/2`` from ``w0`` and describe it.

    ``H`` must be symmetric positive definite (a loss with one minimum ``w* = H^-1 b``).
    A path whose error grows past ``DIVERGED`` times its start is stopped there
    (``diverged_at`` is that step), so nothing overflows. Returns the points visited, the
    loss at each, the error along each eigenvector at each, and the rates from ``H``.
    """
    H = np.asarray(H, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    w = np.asarray(w0, dtype=np.float64).reshape(-1)
    lr = _number(lr, "the learning rate")
    momentum = _number(momentum, "the momentum")
    c = _number(c, "c")
    if H.ndim != 2 or H.shape[0] != H.shape[1] or H.shape[0] != b.size or w.size != b.size:
        raise ValueError(f"H must be d x d with b and w0 of length d, got {H.shape}, "
                         f"{b.size}, {w.size}")
    if not (np.isfinite(H).all() and np.isfinite(b).all() and np.isfinite(w).all()):
        raise ValueError("H, b and w0 must be finite")
    if not np.allclose(H, H.T):
        raise ValueError("H must be symmetric (a Hessian)")
    if lr < 0:
        raise ValueError(f"the learning rate must be >= 0, got {lr}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"the momentum must be in [0, 1), got {momentum}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    lam, V = np.linalg.eigh(H)
    if lam[0] <= 0:
        raise ValueError(f"H must be positive definite (one minimum); its smallest eigenvalue "
                         f"is {lam[0]:.3g}")
    w_star = np.linalg.solve(H, b)

    def loss(p):
        return 0.5 * p @ H @ p - b @ p + 0.5 * c

    limit = DIVERGED * (np.linalg.norm(w - w_star) + 1.0)
    path, prev, diverged_at = [w.copy()], w.copy(), None
    for k in range(int(steps)):
        w, prev = w - lr * (H @ w - b) + momentum * (w - prev), w
        path.append(w.copy())
        if np.linalg.norm(w - w_star) > limit:
            diverged_at = k + 1
            break
    path = np.array(path)
    errors = np.abs((path - w_star) @ V)            # (steps + 1, d): along each eigenvector
    losses = 0.5 * np.einsum("ki,ij,kj->k", path, H, path) - path @ b + 0.5 * c
    factors = step_factors(lam, lr, momentum)
    rate = float(factors.max())
    opt_lr, opt_rate = best_rate(lam, momentum)
    verdict = "converges" if rate < 1 - 1e-12 else ("stalls" if rate <= 1 + 1e-12 else "diverges")
    return {
        "path": path, "losses": losses, "errors": errors, "w_star": w_star, "eigenvalues": lam,
        "eigenvectors": V, "loss_min": float(loss(w_star)), "lr": lr, "momentum": momentum,
        "factors": factors, "rate": rate, "verdict": verdict, "converges": verdict == "converges",
        "diverged_at": diverged_at, "steps_run": len(path) - 1, "best_lr": opt_lr,
        "best_rate": opt_rate, "condition_number": float(lam[-1] / lam[0]),
    }


class DescentExplorer(Explorer):
    """Learning rate, number of steps and momentum for gradient descent on the quadratic
    ``w'Hw/2 - b'w + c/2`` (2-D) from ``w0``; ``xlim``/``ylim`` fix the view (default: a box
    around the start and the minimum), so a diverging path runs off it."""

    tight_png = False

    def __init__(self, H, b, c: float = 0.0, w0=(-1.0, 1.0), lr: float = 0.2, steps: int = 40,
                 momentum: float = 0.0, xlim=None, ylim=None, max_lr: float = 4.0,
                 max_steps: int = 200):
        self.H = np.asarray(H, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64).reshape(-1)
        self.c = float(c)
        self.w0 = np.asarray(w0, dtype=np.float64).reshape(-1)
        if self.H.shape != (2, 2) or self.b.size != 2 or self.w0.size != 2:
            raise ValueError("DescentExplorer draws a 2-D problem: H must be 2 x 2, b and w0 "
                             "of length 2")
        w_star = np.linalg.solve(self.H, self.b)
        lo, hi = np.minimum(self.w0, w_star), np.maximum(self.w0, w_star)
        pad = 0.35 * (hi - lo).max() + 0.5
        self.xlim = tuple(xlim) if xlim is not None else (lo[0] - pad, hi[0] + pad)
        self.ylim = tuple(ylim) if ylim is not None else (lo[1] - pad, hi[1] + pad)
        # the contour grid does not change with the controls: compute it once
        gx, gy = np.linspace(*self.xlim, 80), np.linspace(*self.ylim, 80)
        A, B = np.meshgrid(gx, gy)
        P = np.stack([A, B], -1)
        E = 0.5 * np.einsum("...i,ij,...j->...", P, self.H, P) - P @ self.b + 0.5 * self.c
        e_min = 0.5 * w_star @ self.H @ w_star - self.b @ w_star + 0.5 * self.c
        self._grid = (A, B, E - e_min)
        top = float((E - e_min).max())
        self._levels = np.geomspace(top * 1e-4, top, 16)
        slider = dict(continuous_update=False, style=_STYLE)
        controls = {
            "lr": widgets.FloatSlider(value=lr, min=0.0, max=max_lr, step=0.01,
                                      description="learning rate η", readout_format=".2f",
                                      **slider),
            "steps": widgets.IntSlider(value=steps, min=1, max=max_steps, description="steps",
                                       **slider),
            "momentum": widgets.FloatSlider(value=momentum, min=0.0, max=0.95, step=0.05,
                                            description="momentum β", readout_format=".2f",
                                            **slider),
        }
        super().__init__(controls)

    def compute(self, lr, steps, momentum):
        out = descend_quadratic(self.H, self.b, self.w0, lr, steps, momentum, self.c)
        lam, V, w_star = out["eigenvalues"], out["eigenvectors"], out["w_star"]
        fig, (ax, ax_e) = plt.subplots(1, 2, figsize=(10, 4.2))
        A, B, Z = self._grid
        ax.contour(A, B, Z, levels=self._levels, cmap="viridis", linewidths=0.7)
        span = max(self.xlim[1] - self.xlim[0], self.ylim[1] - self.ylim[0])
        colors = ("tab:blue", "tab:orange")
        for i in range(2):
            d = V[:, i] * span
            ax.plot([w_star[0] - d[0], w_star[0] + d[0]], [w_star[1] - d[1], w_star[1] + d[1]],
                    ls="--", lw=0.8, color=colors[i])
        p = out["path"]
        ax.plot(p[:, 0], p[:, 1], "o-", color="tab:red", ms=2.5, lw=0.9)
        ax.plot(*self.w0, "s", color="k", ms=5)
        ax.plot(*w_star, "*", color="k", ms=9)
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)
        ax.set_xlabel("$w_1$")
        ax.set_ylabel("$w_2$")
        verdict = out["verdict"] + (f" (left the plot's scale at step {out['diverged_at']})"
                                    if out["diverged_at"] else "")
        ax.set_title(f"η = {out['lr']:.2f}, β = {out['momentum']:.2f}: {verdict}", fontsize=10)
        k = np.arange(len(p))
        tiny = 1e-300
        for i in range(2):
            label = f"λ = {lam[i]:.3g}: x{out['factors'][i]:.3f} per step"
            ax_e.semilogy(k, np.maximum(out["errors"][:, i], tiny), color=colors[i], label=label)
            e0 = out["errors"][0, i]
            if e0 > 0 and out["factors"][i] > 0:
                ax_e.semilogy(k, e0 * out["factors"][i] ** k, ":", color=colors[i], lw=1)
        ax_e.set_ylim(max(out["errors"].min(), 1e-12) / 3, max(out["errors"].max(), 1e-11) * 3)
        ax_e.set_xlabel("step")
        ax_e.set_ylabel("|error| along the eigenvector")
        ax_e.set_title(f"measured (solid), predicted (dotted); best η for β = "
                       f"{out['momentum']:.2f}: {out['best_lr']:.2f}", fontsize=9)
        ax_e.legend(fontsize=8, loc="lower left")
        ax_e.yaxis.set_major_locator(LogLocator(numticks=7))
        ax_e.yaxis.set_minor_locator(NullLocator())
        ax_e.grid(alpha=0.3)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, wspace=0.25)
        state = {key: out[key] for key in ("lr", "momentum", "rate", "verdict", "converges",
                                           "diverged_at", "steps_run", "best_lr", "best_rate",
                                           "loss_min", "condition_number")}
        state.update(eigenvalues=[float(v) for v in lam],
                     factors=[float(f) for f in out["factors"]],
                     w_end=[float(v) for v in p[-1]], w_star=[float(v) for v in w_star],
                     excess_loss=float(out["losses"][-1] - out["loss_min"]), steps=int(steps))
        return fig, state
