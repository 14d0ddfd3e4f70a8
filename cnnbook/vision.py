"""Model cells of the primary visual cortex: the reusable pieces of chapter 01.

* ``gabor_kernel`` / ``gabor_bank``: a simple cell's receptive field as a Gabor filter,
  ``exp(-(x'^2 + gamma^2 y'^2) / (2 sigma^2)) * cos(2 pi x' / wavelength + psi)``.
* ``grating``: the sinusoidal stimuli physiologists show to cells.
* ``simple_cell``, ``complex_cell`` and ``tuning_curve``: responses to stimuli, and the
  orientation tuning measured the way Hubel and Wiesel's successors measure it.
* ``half_width_half_max``, ``preferred_orientation``, ``coefficient_of_variation``: the
  numbers that summarise a tuning curve and an invariance.
* ``filter_image``, ``orientation_map`` and ``plot_orientation_map``: a bank of cells
  looking at a photograph.

Conventions: x points right and y points *up* (rows count down), so an angle ``theta``
turns counter-clockwise as on paper. ``theta`` is the direction along which the
stripes alternate; the stripes themselves (the bar or edge a cell likes best) run at
``theta + 90`` degrees. Angles are in radians; tensors are float32.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "coordinate_grid", "rotate", "gabor_kernel", "gabor_bank", "orientations", "grating",
    "linear_response", "simple_cell", "complex_cell", "tuning_curve",
    "preferred_orientation", "half_width_half_max", "coefficient_of_variation",
    "filter_image", "orientation_map", "plot_orientation_map",
]


def _check_size(size, odd: bool = False) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive whole number of pixels, got {size!r}")
    if odd and size % 2 == 0:
        raise ValueError(f"size must be odd so the kernel has a centre pixel, got {size}")


def _positive(**values) -> list[torch.Tensor]:
    out = []
    for name, v in values.items():
        t = torch.as_tensor(v, dtype=torch.float32)
        if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
        out.append(t)
    return out


def _as_param(v) -> torch.Tensor:
    """A number or tensor of parameters, with two trailing axes to broadcast over a grid."""
    return torch.as_tensor(v, dtype=torch.float32)[..., None, None]


def coordinate_grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``(x, y)`` of a ``size x size`` patch, origin at its centre.

    x grows to the right along a row and y grows *upwards* (row indices grow down), so
    angles are counter-clockwise as in a maths book. Each tensor has shape (size, size).
    """
    _check_size(size)
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    y, x = torch.meshgrid(r.flip(0), r, indexing="ij")  # flip, not minus: no -0.0
    return x, y


def rotate(x: torch.Tensor, y: torch.Tensor, theta) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates in a frame turned by ``theta``: ``x' = x cos + y sin``, ``y' = -x sin + y cos``."""
    theta = torch.as_tensor(theta, dtype=torch.float32)
    c, s = torch.cos(theta), torch.sin(theta)
    return x * c + y * s, -x * s + y * c


def gabor_kernel(size: int = 9, sigma=2.0, theta=0.0, wavelength=4.0, gamma=0.5, psi=0.0,
                 zero_mean: bool = False) -> torch.Tensor:
    """A Gabor filter, the classic model of a V1 simple cell's receptive field.

    ``exp(-(x'^2 + gamma^2 y'^2) / (2 sigma^2)) * cos(2 pi x' / wavelength + psi)`` on a
    ``size x size`` grid (size odd), with ``(x', y')`` the grid turned by ``theta``.
    ``sigma`` is the width of the Gaussian envelope, ``gamma < 1`` stretches it along the
    stripes, ``psi`` is the phase (0: even, a bright bar; pi/2: odd, an edge). The
    defaults are the sources' settings. ``zero_mean=True`` removes the response to
    uniform light by subtracting ``c * envelope`` (c chosen so the weights sum to 0),
    which keeps the kernel local. Any parameter may be a tensor: the result broadcasts
    to shape (..., size, size).
    """
    _check_size(size, odd=True)
    _positive(sigma=sigma, wavelength=wavelength, gamma=gamma)
    theta, sigma, wavelength, gamma, psi = map(_as_param, (theta, sigma, wavelength, gamma, psi))
    x, y = coordinate_grid(size)
    xr, yr = rotate(x, y, theta)
    envelope = torch.exp(-(xr ** 2 + gamma ** 2 * yr ** 2) / (2 * sigma ** 2))
    carrier = torch.cos(2 * math.pi * xr / wavelength + psi)
    if zero_mean:
        dims = (-2, -1)
        carrier = carrier - (envelope * carrier).sum(dims, keepdim=True) / envelope.sum(dims, keepdim=True)
    return envelope * carrier


def orientations(n: int) -> torch.Tensor:
    """``n`` evenly spaced orientations covering [0, pi): 0, pi/n, 2 pi/n, ..."""
    _check_size(n)
    return torch.arange(n, dtype=torch.float32) * (math.pi / n)


def gabor_bank(thetas, wavelengths=(4.0,), size: int = 9, sigma=2.0, gamma=0.5, psi=0.0,
               zero_mean: bool = False) -> torch.Tensor:
    """Gabor kernels for every wavelength and orientation, shape (W * T, size, size).

    Kernels are grouped by wavelength: ``bank[w * T + t]`` has ``wavelengths[w]`` and
    ``thetas[t]``. ``sigma`` is one number or one per wavelength (keep ``sigma`` in
    proportion to the wavelength to keep the number of stripes fixed).
    """
    thetas = torch.as_tensor(thetas, dtype=torch.float32).reshape(1, -1)
    lam = torch.as_tensor(wavelengths, dtype=torch.float32).reshape(-1, 1)
    sig = torch.as_tensor(sigma, dtype=torch.float32)
    if sig.ndim == 1:
        if len(sig) != lam.shape[0]:
            raise ValueError(f"{len(sig)} sigmas for {lam.shape[0]} wavelengths")
        sig = sig.reshape(-1, 1)
    bank = gabor_kernel(size, sigma=sig, theta=thetas, wavelength=lam, gamma=gamma, psi=psi,
                        zero_mean=zero_mean)
    return bank.reshape(-1, size, size)


def grating(size: int, theta=0.0, wavelength=4.0, phase=0.0, contrast: float = 1.0) -> torch.Tensor:
    """A sinusoidal grating ``contrast * cos(2 pi x' / wavelength + phase)``, (..., size, size).

    Same grid and angle convention as ``gabor_kernel``, so a grating with the kernel's
    ``theta``, ``wavelength`` and ``phase = psi`` matches its stripes exactly. ``theta``
    and ``phase`` may be tensors (e.g. ``thetas[:, None]`` and ``phases[None, :]`` give
    every combination).
    """
    _check_size(size)
    _positive(wavelength=wavelength)
    theta, wavelength, phase = map(_as_param, (theta, wavelength, phase))
    x, y = coordinate_grid(size)
    xr, _ = rotate(x, y, theta)
    return contrast * torch.cos(2 * math.pi * xr / wavelength + phase)


def _center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"stimuli of {h}x{w} pixels are smaller than the {size}x{size} field")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def linear_response(stimuli, kernels) -> torch.Tensor:
    """The weighted sum ``<kernel, patch>`` of cells looking at the centre of each stimulus.

    ``stimuli`` (..., H, W) with H, W >= the kernel size; ``kernels`` (k, k) gives shape
    (...), a bank (N, k, k) gives (N, ...): one row per cell.
    """
    stimuli = torch.as_tensor(stimuli, dtype=torch.float32)
    kernels = torch.as_tensor(kernels, dtype=torch.float32)
    if kernels.ndim not in (2, 3):
        raise ValueError(f"expected a kernel (k, k) or a bank (N, k, k), got {tuple(kernels.shape)}")
    patch = _center_crop(stimuli, kernels.shape[-1])
    if kernels.ndim == 2:
        return (patch * kernels).sum((-2, -1))
    return torch.einsum("nhw,...hw->n...", kernels, patch)


def simple_cell(stimuli, kernels) -> torch.Tensor:
    """A simple cell's firing rate: its linear response, half-wave rectified (rates are >= 0)."""
    return linear_response(stimuli, kernels).clamp(min=0)


def complex_cell(stimuli, kernels, pool: int) -> torch.Tensor:
    """A complex cell: the max over a ``pool x pool`` grid of simple cells with the same kernel.

    The simple cells sit at every position of a ``pool x pool`` square around the centre,
    so a stimulus that moves by less than ``pool`` pixels still drives one of them:
    max pooling. ``pool=1`` is a single simple cell. Stimuli need a side of at least
    ``k + pool - 1``; shapes as in ``linear_response``.
    """
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise ValueError(f"pool must be a positive whole number of positions, got {pool!r}")
    stimuli = torch.as_tensor(stimuli, dtype=torch.float32)
    kernels = torch.as_tensor(kernels, dtype=torch.float32)
    bank = kernels if kernels.ndim == 3 else kernels[None]
    side = bank.shape[-1] + pool - 1
    x = _center_crop(stimuli, side)
    batch = x.shape[:-2]
    maps = F.conv2d(x.reshape(-1, 1, side, side), bank[:, None])  # (B, N, pool, pool)
    rates = maps.clamp(min=0).amax(dim=(-2, -1))  # (B, N)
    rates = rates.T.reshape(len(bank), *batch)
    return rates if kernels.ndim == 3 else rates[0]


def tuning_curve(kernels, thetas, wavelength=4.0, phases: int = 16) -> torch.Tensor:
    """Orientation tuning: the mean simple-cell rate to a grating at each orientation.

    For every ``theta`` the grating drifts through ``phases`` evenly spaced phases (a
    full cycle) over the receptive field, and the rectified responses are averaged, as a
    recording averages spikes over a drifting grating. Returns (len(thetas),) for one
    kernel, (N, len(thetas)) for a bank.
    """
    _check_size(phases)
    kernels = torch.as_tensor(kernels, dtype=torch.float32)
    thetas = torch.as_tensor(thetas, dtype=torch.float32)
    phi = torch.arange(phases, dtype=torch.float32) * (2 * math.pi / phases)
    stimuli = grating(kernels.shape[-1], thetas[:, None], wavelength, phi[None, :])
    return simple_cell(stimuli, kernels).mean(-1)


def preferred_orientation(curve, thetas) -> torch.Tensor:
    """The orientation at which each tuning curve (..., T) is largest."""
    curve = torch.as_tensor(curve)
    return torch.as_tensor(thetas, dtype=torch.float32)[curve.argmax(-1)]


def _hwhm_1d(curve: torch.Tensor, step: float) -> float:
    n = len(curve)
    p = int(curve.argmax())
    peak = float(curve[p])
    if not peak > 0:
        raise ValueError("the tuning curve has no positive response")
    half = peak / 2
    if float(curve.min()) > half:
        return math.pi / 2  # never falls to half: untuned
    sides = []
    for direction in (1, -1):
        for i in range(1, n + 1):
            prev, cur = float(curve[(p + direction * (i - 1)) % n]), float(curve[(p + direction * i) % n])
            if cur <= half:
                sides.append((i - 1 + (prev - half) / (prev - cur)) * step)
                break
    return min(sum(sides) / 2, math.pi / 2)


def half_width_half_max(curve, thetas) -> torch.Tensor:
    """Tuning bandwidth: half the width, in radians, of the range where ``curve`` >= half its peak.

    ``thetas`` must cover [0, pi) evenly (orientation is periodic with period pi); the
    crossings are found by linear interpolation on each side of the peak and averaged.
    A curve that never falls to half its peak is untuned: pi/2. Shape: the curve's
    shape without the last axis.
    """
    curve = torch.as_tensor(curve, dtype=torch.float32)
    thetas = torch.as_tensor(thetas, dtype=torch.float32)
    n = thetas.numel()
    if n < 3 or curve.shape[-1] != n:
        raise ValueError(f"need at least 3 orientations and one value each; got {n} "
                         f"orientations for a curve of shape {tuple(curve.shape)}")
    step = math.pi / n
    if not torch.allclose(thetas - thetas[0], torch.arange(n) * step, atol=1e-4):
        raise ValueError("thetas must cover [0, pi) evenly, as orientations(n) does")
    flat = curve.reshape(-1, n)
    out = torch.tensor([_hwhm_1d(c, step) for c in flat], dtype=torch.float32)
    return out.reshape(curve.shape[:-1])


def coefficient_of_variation(x, dim: int = -1) -> torch.Tensor:
    """``std / mean`` along ``dim``: 0 for a response that does not change at all."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return x.std(dim=dim, unbiased=False) / x.mean(dim=dim)


def filter_image(image, kernels, padding_mode: str = "reflect") -> torch.Tensor:
    """Every kernel of a bank (N, k, k) applied at every pixel of a grey image (H, W).

    The output keeps the image's size (the border is mirrored, so frames do not look
    like edges): (N, H, W) for a bank, (H, W) for one kernel. This is a convolution
    layer with N output channels and fixed weights.
    """
    x = torch.as_tensor(image, dtype=torch.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a grey image (H, W), got shape {tuple(x.shape)}")
    kernels = torch.as_tensor(kernels, dtype=torch.float32)
    bank = kernels if kernels.ndim == 3 else kernels[None]
    pad = bank.shape[-1] // 2
    padded = F.pad(x[None, None], (pad,) * 4, mode=padding_mode)
    out = F.conv2d(padded, bank[:, None])[0]
    return out if kernels.ndim == 3 else out[0]


def orientation_map(responses, thetas) -> tuple[torch.Tensor, torch.Tensor]:
    """At each pixel, the orientation of the strongest cell and its response.

    ``responses`` (T, H, W) are non-negative rates of cells tuned to ``thetas`` (T,);
    returns ``(theta_map, strength)``, both (H, W).
    """
    responses = torch.as_tensor(responses, dtype=torch.float32)
    thetas = torch.as_tensor(thetas, dtype=torch.float32)
    if responses.ndim != 3 or responses.shape[0] != len(thetas):
        raise ValueError(f"expected responses (T, H, W) with T = {len(thetas)}, "
                         f"got {tuple(responses.shape)}")
    strength, idx = responses.max(dim=0)
    return thetas[idx], strength


def plot_orientation_map(image, theta_map, strength, title: str | None = None):
    """The photo and its orientation map: hue = preferred orientation, brightness = strength.

    The hue wheel is cyclic like orientation itself (0 and 180 degrees share a colour).
    """
    from matplotlib.colors import Normalize, hsv_to_rgb
    from matplotlib.cm import ScalarMappable

    th = torch.as_tensor(theta_map, dtype=torch.float32).cpu().numpy()
    s = torch.as_tensor(strength, dtype=torch.float32).cpu().numpy()
    value = np.clip(s / (np.percentile(s, 99) + 1e-12), 0, 1)
    hsv = np.stack([(th / math.pi) % 1.0, np.ones_like(th), value], axis=-1)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    axes[0].imshow(torch.as_tensor(image).cpu().numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("photo", fontsize=10)
    axes[1].imshow(hsv_to_rgb(hsv))
    axes[1].set_title("orientation map (hue: theta, brightness: strength)", fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(ScalarMappable(Normalize(0, 180), cmap="hsv"), ax=axes[1], fraction=0.046)
    bar.set_label("theta (degrees)")
    bar.set_ticks([0, 45, 90, 135, 180])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
