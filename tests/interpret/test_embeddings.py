import numpy as np
import pytest
import torch

from cnnbook.interpret.embeddings import (last_linear, nearest_neighbours, neighbour_agreement,
                                          penultimate_features, plot_embedding, plot_neighbours,
                                          tsne)


def test_penultimate_features_are_the_classifier_input(net):
    x = torch.rand(10, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    y = torch.arange(10)
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    f, labels, imgs = penultimate_features(net, batches)
    assert f.shape == (10, last_linear(net).in_features)
    assert torch.equal(labels, y) and torch.equal(imgs, x)
    with torch.no_grad():
        assert torch.allclose(net.fc(f), net(x), atol=1e-5)
    f3, l3, _ = penultimate_features(net, batches, limit=3)
    assert len(f3) == len(l3) == 3


def test_neighbours_and_agreement():
    g = np.random.default_rng(0)
    centres = g.normal(size=(3, 5)) * 20
    labels = np.repeat(np.arange(3), 10)
    points = centres[labels] + g.normal(size=(30, 5))
    idx = nearest_neighbours(points, 4)
    assert idx.shape == (30, 4) and not (idx == np.arange(30)[:, None]).any()
    assert neighbour_agreement(points, labels, 4) == 1.0
    shuffled = g.permutation(labels)
    assert neighbour_agreement(points, shuffled, 4) < 0.7
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(points, 30)


def test_tsne_and_plots():
    g = np.random.default_rng(1)
    labels = np.repeat(np.arange(2), 15)
    pts = tsne(g.normal(size=(30, 8)) + labels[:, None] * 10, seed=0)
    assert pts.shape == (30, 2) and np.isfinite(pts).all()
    import matplotlib.pyplot as plt
    plt.close(plot_embedding(pts, labels, ["a", "b"]))
    imgs = torch.rand(30, 3, 8, 8)
    fig = plot_neighbours(imgs, [0, 3], {"pixels": nearest_neighbours(imgs, 3),
                                         "features": nearest_neighbours(pts, 3)},
                          labels, ["a", "b"])
    assert len(fig.axes) == 2 * 2 * 4
    plt.close(fig)
