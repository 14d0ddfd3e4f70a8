"""What the network's last hidden layer has learnt: penultimate features, t-SNE, neighbours.

The input of the final linear layer is the representation the classifier separates with a
hyperplane. ``penultimate_features`` records it for a data set with a forward hook;
``tsne`` lays it out in 2-D with scikit-learn (van der Maaten and Hinton, 2008); and
``neighbour_agreement`` measures how often an image's nearest neighbours share its label,
in feature space or, for comparison, in pixel space.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from cnnbook.interpret._common import model_device

__all__ = ["last_linear", "penultimate_features", "tsne", "nearest_neighbours",
           "neighbour_agreement", "plot_embedding", "plot_neighbours"]


def last_linear(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` in module order (the classifier whose input we record)."""
    found = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer")
    return found[-1]


@torch.no_grad()
def penultimate_features(model: nn.Module, batches: Iterable, limit: int | None = None):
    """Inputs of the last linear layer (N, D), the labels (N,) and the images (N, C, H, W)
    for ``(x, y)`` batches, on the CPU; at most ``limit`` examples."""
    feats, labels, images = [], [], []
    store = []
    handle = last_linear(model).register_forward_hook(lambda _m, inp, _o: store.append(inp[0]))
    was_training = model.training
    model.eval()
    n = 0
    try:
        for x, y in batches:
            if limit is not None and n >= limit:
                break
            model(x.to(model_device(model)))
            feats.append(store.pop().detach().float().cpu())
            labels.append(torch.as_tensor(y).cpu())
            images.append(x.detach().float().cpu().contiguous())
            n += len(x)
    finally:
        handle.remove()
        model.train(was_training)
    if not feats:
        raise ValueError("no batches to compute features from")
    cut = slice(0, limit)
    return torch.cat(feats)[cut], torch.cat(labels)[cut], torch.cat(images)[cut]


def tsne(features, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of the rows of ``features`` (scikit-learn, PCA initialisation), (N, 2)."""
    from sklearn.manifold import TSNE
    f = np.asarray(torch.as_tensor(features).float().cpu().reshape(len(features), -1))
    perplexity = min(perplexity, max(1.0, (len(f) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(f)


def nearest_neighbours(features, k: int = 5) -> np.ndarray:
    """Indices (N, k) of each row's ``k`` nearest other rows (Euclidean; itself excluded)."""
    from sklearn.neighbors import NearestNeighbors
    f = np.asarray(torch.as_tensor(features).float().cpu().reshape(len(features), -1))
    if not 1 <= k < len(f):
        raise ValueError(f"k must be between 1 and {len(f) - 1}, got {k}")
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(f).kneighbors(f)
    # drop each row itself (the first neighbour, unless an exact duplicate came first)
    rows = np.arange(len(f))[:, None]
    keep = idx != rows
    return np.stack([r[m][:k] for r, m in zip(idx, keep)])


def neighbour_agreement(features, labels, k: int = 5) -> float:
    """Fraction of the ``k`` nearest neighbours that share the example's label, over all examples."""
    idx = nearest_neighbours(features, k)
    y = np.asarray(torch.as_tensor(labels).cpu())
    return float((y[idx] == y[:, None]).mean())


def plot_embedding(points, labels, class_names: Sequence[str], title: str | None = None):
    """A scatter plot of 2-D points coloured by class, with a legend."""
    p, y = np.asarray(points), np.asarray(torch.as_tensor(labels).cpu())
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(class_names):
        sel = y == c
        ax.scatter(p[sel, 0], p[sel, 1], s=6, color=cmap(c % 10), label=name, alpha=0.8)
    ax.set_xticks([]), ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_neighbours(images, queries: Sequence[int], neighbours: dict, labels=None,
                    class_names: Sequence[str] | None = None):
    """One row per query image: the query, then its neighbours in each space
    (``neighbours`` = space name -> (N, k) indices), labelled with their class."""
    imgs = torch.as_tensor(images).float().cpu()
    spaces = list(neighbours)
    k = min(np.asarray(v).shape[1] for v in neighbours.values())
    rows, cols = len(queries) * len(spaces), 1 + k
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.3 * rows), squeeze=False)
    for qi, q in enumerate(queries):
        for si, space in enumerate(spaces):
            r = qi * len(spaces) + si
            idx = [q] + list(np.asarray(neighbours[space])[q][:k])
            for c, i in enumerate(idx):
                ax = axes[r, c]
                ax.imshow(imgs[i].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
                ax.set_xticks([]), ax.set_yticks([])
                if labels is not None and class_names is not None:
                    ax.set_title(class_names[int(labels[i])], fontsize=7)
            axes[r, 0].set_ylabel("query" if si == 0 else "", fontsize=8)
            axes[r, 1].set_ylabel(space, fontsize=8)
    fig.tight_layout()
    return fig
