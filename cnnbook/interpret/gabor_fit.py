"""How Gabor-like is a learned kernel? The correlation of the best-fitting Gabor filter.

Chapter 01 modelled V1 simple cells as Gabor filters (``cnnbook.vision.gabor_kernel``);
the first layer of a CNN trained on photographs learns kernels that look like them
(Krizhevsky et al., 2012; Zeiler and Fergus, 2014). To put a number on "look like":

1. an RGB kernel (3, k, k) is reduced to its main spatial pattern: the first singular
   vector of its 3 x k^2 matrix (``spatial_pattern``), which keeps the colour-independent
   shape and reports how much of the kernel's energy it holds;
2. a dictionary of Gabor envelopes is laid out on a grid of orientations, wavelengths,
   widths, aspect ratios and centre shifts of up to ``shift`` pixels (each shifted Gabor
   is a crop of a larger ``gabor_kernel``);
3. for each envelope the best Gabor of *any* phase, amplitude and offset is the
   least-squares fit ``a * even + b * odd + c`` (even: psi = 0, odd: psi = pi/2), whose
   correlation with the kernel is the length of the kernel's projection on that
   3-dimensional subspace (computed with an orthonormal basis, so all envelopes at once);
4. the score of the kernel is the best correlation over the dictionary.

A dictionary this rich fits noise too, so a score means something only next to a baseline:
``gabor_scores`` of random kernels of the same size (the chapter does that).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from cnnbook.vision import gabor_kernel

__all__ = ["spatial_pattern", "GaborDictionary", "gabor_dictionary", "GaborFit", "fit_gabors",
           "gabor_scores"]


def spatial_pattern(weight) -> tuple[torch.Tensor, torch.Tensor]:
    """Main spatial pattern (M, k, k) of kernels (M, C, k, k), and the fraction of each
    kernel's energy it holds (M,). Grey kernels (C = 1, or (M, k, k)) come back as they are."""
    w = torch.as_tensor(weight, dtype=torch.float64)
    if w.ndim == 3:
        w = w[:, None]
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"expected square kernels (M, C, k, k), got shape {tuple(w.shape)}")
    m, c, k, _ = w.shape
    if c == 1:
        return w[:, 0], torch.ones(m, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(w.reshape(m, c, k * k), full_matrices=False)
    pattern = (s[:, :1, None] * vh[:, :1]).reshape(m, k, k)
    # the sign of a singular vector is arbitrary: make the colour weights sum positive
    sign = torch.where(u[:, :, 0].sum(1) < 0, -1.0, 1.0).to(torch.float64)
    energy = s[:, 0] ** 2 / (s ** 2).sum(1).clamp_min(1e-30)
    return pattern * sign[:, None, None], energy


@dataclass
class GaborDictionary:
    """Orthonormal bases (D, k^2, 3) of span{1, even Gabor, odd Gabor} and their parameters."""
    basis: torch.Tensor
    params: dict          # name -> (D,) tensor: theta, wavelength, sigma, gamma, dx, dy
    size: int

    def __len__(self) -> int:
        return self.basis.shape[0]


def gabor_dictionary(size: int, thetas: int = 12, wavelengths=None, sigmas=None,
                     gammas=(0.5, 1.0), shift: int = 1) -> GaborDictionary:
    """Gabor envelopes for ``size x size`` kernels (size odd).

    Defaults scale with the kernel: wavelengths from 2.5 px to 2 * size, sigmas from
    size / 8 to size / 2, and centres shifted by up to ``shift`` pixels each way.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd whole number >= 3, got {size!r}")
    if wavelengths is None:
        wavelengths = np.geomspace(2.5, 2.0 * size, 7).tolist()
    if sigmas is None:
        sigmas = np.geomspace(size / 8, size / 2, 4).tolist()
    big = size + 2 * shift
    th = torch.arange(thetas, dtype=torch.float64) * (math.pi / thetas)
    grid = torch.meshgrid(th, torch.tensor(wavelengths, dtype=torch.float64),
                          torch.tensor(sigmas, dtype=torch.float64),
                          torch.tensor(gammas, dtype=torch.float64), indexing="ij")
    theta, lam, sig, gam = (g.reshape(-1) for g in grid)
    even = gabor_kernel(big, sigma=sig, theta=theta, wavelength=lam, gamma=gam, psi=0.0)
    odd = gabor_kernel(big, sigma=sig, theta=theta, wavelength=lam, gamma=gam, psi=math.pi / 2)
    crops, dxs, dys = [], [], []
    for dy in range(-shift, shift + 1):          # dy > 0: centre moved up
        for dx in range(-shift, shift + 1):      # dx > 0: centre moved right
            top, left = shift + dy, shift - dx
            sl = (slice(None), slice(top, top + size), slice(left, left + size))
            crops.append(torch.stack([even[sl], odd[sl]], dim=-1))
            dxs.append(torch.full_like(theta, dx))
            dys.append(torch.full_like(theta, dy))
    pair = torch.cat(crops).reshape(-1, size * size, 2).double()
    ones = torch.ones(pair.shape[0], size * size, 1, dtype=torch.float64)
    q, r = torch.linalg.qr(torch.cat([ones, pair], dim=-1))
    # drop degenerate envelopes (odd part vanishing, or a Gabor equal to a constant)
    ok = (r.diagonal(dim1=-2, dim2=-1).abs() > 1e-6).all(-1)
    reps = len(crops)
    params = dict(theta=theta.repeat(reps), wavelength=lam.repeat(reps), sigma=sig.repeat(reps),
                  gamma=gam.repeat(reps), dx=torch.cat(dxs), dy=torch.cat(dys))
    return GaborDictionary(q[ok], {k: v[ok] for k, v in params.items()}, size)


@dataclass
class GaborFit:
    """Best fit per kernel: ``correlation`` (M,), the fitted kernels (M, k, k), the
    parameters of the winning envelope (name -> (M,) tensor) and the colour ``energy`` share."""
    correlation: torch.Tensor
    fitted: torch.Tensor
    params: dict
    energy: torch.Tensor


def fit_gabors(weight, dictionary: GaborDictionary | None = None, chunk: int = 4096) -> GaborFit:
    """Fit the best Gabor (any phase, amplitude and offset) to each kernel of ``weight``
    (M, C, k, k) or (M, k, k); see the module docstring for the method."""
    pattern, energy = spatial_pattern(weight)
    m, k, _ = pattern.shape
    d = dictionary or gabor_dictionary(k)
    if d.size != k:
        raise ValueError(f"dictionary for {d.size}x{d.size} kernels, got {k}x{k}")
    y = pattern.reshape(m, -1)
    yc = y - y.mean(1, keepdim=True)
    norm = yc.norm(dim=1)
    best = torch.full((m,), -1.0, dtype=torch.float64)
    best_idx = torch.zeros(m, dtype=torch.long)
    for s in range(0, len(d), chunk):
        q = d.basis[s:s + chunk, :, 1:]                        # (D, n, 2): orthogonal to 1
        proj = torch.einsum("mn,dnj->mdj", yc, q)
        score = proj.norm(dim=-1)                              # (M, D)
        val, idx = score.max(dim=1)
        better = val > best
        best[better], best_idx[better] = val[better], idx[better] + s
    corr = torch.where(norm > 1e-12, best / norm.clamp_min(1e-30), torch.zeros_like(best))
    q = d.basis[best_idx]                                      # (M, n, 3)
    fitted = torch.einsum("mnj,mj->mn", q, torch.einsum("mnj,mn->mj", q, y)).reshape(m, k, k)
    params = {name: v[best_idx] for name, v in d.params.items()}
    return GaborFit(corr.clamp(0, 1), fitted, params, energy)


def gabor_scores(weight, dictionary: GaborDictionary | None = None) -> torch.Tensor:
    """Best-fitting Gabor's correlation for each kernel, (M,), between 0 and 1."""
    return fit_gabors(weight, dictionary).correlation
