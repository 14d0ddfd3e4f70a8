"""Pictures for the chapters: image grids, kernels, feature maps, curves, confusion matrices.

Every function draws into a new matplotlib figure and returns it (assign it,
``fig = show_images(...)``, so Jupyter shows it once). Inputs may be tensors or arrays.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def _grid(n: int, ncols: int, scale: float, aspect: float = 1.0):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * aspect),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def _as_image(img: np.ndarray) -> np.ndarray:
    """(C,H,W) or (H,W) -> (H,W) or (H,W,3) for imshow."""
    if img.ndim == 3:
        if img.shape[0] == 1:
            return img[0]
        if img.shape[0] == 3:
            return np.transpose(img, (1, 2, 0))
        if img.shape[-1] in (1, 3):
            return img[..., 0] if img.shape[-1] == 1 else img
        raise ValueError(f"cannot show an image of shape {img.shape}: use 1 or 3 channels")
    if img.ndim != 2:
        raise ValueError(f"cannot show an image of shape {img.shape}")
    return img


def show_images(images, titles: Sequence[str] | None = None, ncols: int = 8,
                scale: float = 1.6, cmap: str = "gray", normalize: bool = True,
                suptitle: str | None = None):
    """A grid of images, (N,C,H,W) / (N,H,W) or a list; each rescaled to [0,1] if ``normalize``."""
    if isinstance(images, (torch.Tensor, np.ndarray)) and np.ndim(images) == 2:
        images = [images]
    images = [_as_image(_to_numpy(im)) for im in images]
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    fig, axes = _grid(len(images), ncols, scale)
    for i, (ax, img) in enumerate(zip(axes, images)):
        if normalize:
            lo, hi = float(img.min()), float(img.max())
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        ax.imshow(np.clip(img, 0, 1), cmap=cmap if img.ndim == 2 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_kernels(weight, ncols: int = 8, scale: float = 1.2, title: str | None = None):
    """Convolution kernels (out, in, kH, kW): RGB when in == 3, else the first input channel.

    Grey kernels use a diverging map centred on zero (red positive, blue negative), so a
    learned edge detector reads as a pair of opposite-signed stripes.
    """
    w = _to_numpy(weight)
    if w.ndim == 2:
        w = w[None, None]
    elif w.ndim == 3:
        w = w[:, None]
    if w.ndim != 4:
        raise ValueError(f"expected conv weights (out, in, kH, kW), got shape {w.shape}")
    fig, axes = _grid(w.shape[0], ncols, scale)
    rgb = w.shape[1] == 3
    for ax, k in zip(axes, w):
        if rgb:
            k = np.transpose(k, (1, 2, 0))
            lo, hi = k.min(), k.max()
            ax.imshow((k - lo) / (hi - lo + 1e-12), interpolation="nearest")
        else:
            lim = float(np.abs(k[0]).max()) or 1.0
            ax.imshow(k[0], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_feature_maps(maps, ncols: int = 8, scale: float = 1.4, title: str | None = None,
                      cmap: str = "viridis"):
    """Feature maps (C,H,W) or (1,C,H,W): one panel per channel, each with its own scale."""
    m = _to_numpy(maps)
    if m.ndim == 4:
        if m.shape[0] != 1:
            raise ValueError("plot_feature_maps shows one example: pass maps[0]")
        m = m[0]
    if m.ndim == 2:
        m = m[None]
    fig, axes = _grid(m.shape[0], ncols, scale)
    for i, (ax, fm) in enumerate(zip(axes, m)):
        ax.imshow(fm, cmap=cmap, interpolation="nearest")
        ax.set_title(f"ch {i}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history, metrics: Sequence[str] = ("train_loss", "train_acc", "test_acc"),
                 title: str | None = None, ax=None):
    """Per-epoch curves from ``fit``'s history table (a DataFrame or list of dicts)."""
    import pandas as pd

    df = history if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
    for m in metrics:
        if m in df and df[m].notna().any():
            ax.plot(df["epoch"], df[m], marker="o", label=m.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, num_classes: int) -> torch.Tensor:
    """Counts ``C[i, j]`` of examples of true class i predicted as j."""
    y_true = torch.as_tensor(y_true).long().flatten().cpu()
    y_pred = torch.as_tensor(y_pred).long().flatten().cpu()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.numel()} labels but {y_pred.numel()} predictions")
    idx = y_true * num_classes + y_pred
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion_matrix(y_true, y_pred, class_names: Sequence[str], normalize: bool = True,
                          title: str | None = None):
    """A labelled confusion matrix; rows are true classes, normalised to recall if asked."""
    n = len(class_names)
    cm = confusion_matrix(y_true, y_pred, n).double()
    if normalize:
        cm = cm / cm.sum(dim=1, keepdim=True).clamp(min=1)
    fig, ax = plt.subplots(figsize=(0.55 * n + 2, 0.55 * n + 1.5))
    im = ax.imshow(cm.numpy(), cmap="Blues", vmin=0)
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    thresh = float(cm.max()) / 2
    for i in range(n):
        for j in range(n):
            v = float(cm[i, j])
            ax.text(j, i, f"{v:.2f}" if normalize else f"{int(v)}", ha="center", va="center",
                    fontsize=6, color="white" if v > thresh else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_functions(xs, curves: dict, title: str | None = None, xlabel: str = "x",
                   ylabel: str = "", ax=None):
    """Several named curves over the same x values (activations, their derivatives, ...)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
    xs = _to_numpy(xs)
    for name, ys in curves.items():
        ax.plot(xs, _to_numpy(ys), label=name)
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_contour_paths(f, paths: dict, xlim, ylim, levels=20, ncols: int = 3,
                       scale: float = 3.2, xlabel: str = "$w_1$", ylabel: str = "$w_2$",
                       title: str | None = None, resolution: int = 200):
    """Contour lines of a 2-D function with one optimisation path per panel.

    ``f(A, B)`` must accept arrays (a meshgrid) and return an array of the same shape;
    ``paths`` maps a panel title to the points visited, shape (steps, 2). The axes keep
    ``xlim`` and ``ylim``, so a path that diverges runs off the panel.
    """
    gx = np.linspace(*xlim, resolution)
    gy = np.linspace(*ylim, resolution)
    A, B = np.meshgrid(gx, gy)
    Z = np.asarray(f(A, B), dtype=np.float64)
    n = len(paths)
    if n == 0:
        raise ValueError("plot_contour_paths needs at least one path")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale),
                             squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (label, path) in zip(axes.flat, paths.items()):
        p = _to_numpy(path)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"path {label!r} must have shape (steps, 2), got {p.shape}")
        ax.contour(A, B, Z, levels=levels, cmap="viridis", linewidths=0.8)
        ax.plot(p[:, 0], p[:, 1], "o-", color="tab:red", ms=3, lw=1)
        ax.plot(p[0, 0], p[0, 1], "s", color="k", ms=5)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(str(label), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _place_labels(ax, xs, ys, labels, fontsize: int = 8):
    """Label each point, trying four offsets so that nearby labels do not overprint."""
    ax.figure.canvas.draw()  # fix the limits and scales before measuring distances
    points = ax.transData.transform(np.column_stack([xs, ys])) * 72 / ax.figure.dpi  # in pt
    offsets = ((5, 4, "left"), (5, -11, "left"), (-5, 4, "right"), (-5, -11, "right"))
    placed = []  # (left edge, baseline, width) in points of the labels already drawn
    for (px, py), xi, yi, text in zip(points, xs, ys, labels):
        width = 0.6 * fontsize * len(str(text))
        for dx, dy, ha in offsets:
            left = px + dx - (width if ha == "right" else 0)
            if all(left + width < qx or qx + qw < left or abs(py + dy - qy) > 1.2 * fontsize
                   for qx, qy, qw in placed):
                break
        else:
            dx, dy, ha = offsets[0]
            left = px + dx
        placed.append((left, py + dy, width))
        ax.annotate(str(text), (xi, yi), textcoords="offset points", xytext=(dx, dy), ha=ha,
                    fontsize=fontsize)


def plot_tradeoff(x, y, labels: Sequence[str], sizes=None, groups: Sequence[str] | None = None,
                  xlabel: str = "", ylabel: str = "", title: str | None = None,
                  logx: bool = True, logy: bool = False, ax=None):
    """Cost against quality, one labelled point per model (accuracy vs FLOPs, params or time).

    ``sizes`` (e.g. parameter counts) scale the marker areas, the largest to 600 pt^2;
    ``groups`` colours the points by group, with a legend. Log axes suit costs that span
    orders of magnitude; labels of nearby points are moved apart where possible.
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xs)
    if len(ys) != n or len(labels) != n or (groups is not None and len(groups) != n):
        raise ValueError("x, y, labels (and groups) must have the same length")
    if n == 0:
        raise ValueError("plot_tradeoff needs at least one point")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
    else:
        fig = ax.figure
    area = np.full(n, 60.0)
    if sizes is not None:
        s = np.asarray(sizes, dtype=float)
        area = 20 + 580 * s / np.nanmax(s)
    groups = list(groups) if groups is not None else [""] * n
    names = list(dict.fromkeys(groups))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, g in enumerate(names):
        idx = [j for j in range(n) if groups[j] == g]
        ax.scatter(xs[idx], ys[idx], s=area[idx], alpha=0.6, color=colors[i % len(colors)],
                   edgecolor="k", linewidth=0.5, label=g or None)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
    if logy:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    _place_labels(ax, xs, ys, labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    if len(names) > 1 or names[0]:
        ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
