import pandas as pd
import pytest
import torch

from cnnbook import viz


def test_show_images_grid_and_titles():
    fig = viz.show_images(torch.rand(10, 1, 8, 8), titles=[str(i) for i in range(10)], ncols=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 10 and shown[3].get_title() == "3"
    rgb = viz.show_images(torch.rand(2, 3, 8, 8))
    assert rgb.axes[0].images[0].get_array().shape == (8, 8, 3)
    with pytest.raises(ValueError, match="titles"):
        viz.show_images(torch.rand(2, 1, 4, 4), titles=["a"])


def test_kernels_and_feature_maps():
    fig = viz.plot_kernels(torch.randn(6, 1, 5, 5))
    assert sum(1 for ax in fig.axes if ax.images) == 6
    fig = viz.plot_kernels(torch.randn(4, 3, 3, 3))
    assert fig.axes[0].images[0].get_array().shape == (3, 3, 3)
    fig = viz.plot_feature_maps(torch.rand(1, 5, 6, 6))
    assert sum(1 for ax in fig.axes if ax.images) == 5
    with pytest.raises(ValueError):
        viz.plot_feature_maps(torch.rand(2, 5, 6, 6))


def test_confusion_matrix_counts():
    cm = viz.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    fig = viz.plot_confusion_matrix([0, 1, 1], [0, 1, 0], ["a", "b"])
    assert fig.axes[0].images[0].get_array()[1, 0] == pytest.approx(0.5)


def test_history_and_function_plots():
    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "train_acc": [0.5, 0.8],
                         "test_acc": [0.4, 0.7]})
    fig = viz.plot_history(hist)
    assert len(fig.axes[0].lines) == 3
    x = torch.linspace(-3, 3, 50)
    fig = viz.plot_functions(x, {"relu": torch.relu(x), "tanh": torch.tanh(x)})
    assert len(fig.axes[0].get_legend().get_texts()) == 2


def test_contour_paths_one_panel_per_path():
    paths = {"small": [[1.0, 1.0], [0.9, 0.5], [0.8, 0.2]],
             "large": torch.tensor([[1.0, 1.0], [-1.5, -2.0]])}
    fig = viz.plot_contour_paths(lambda a, b: a ** 2 + 10 * b ** 2, paths, (-2, 2), (-2, 2))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["small", "large"]
    assert len(panels[0].lines[0].get_xdata()) == 3
    assert panels[1].get_xlim() == (-2, 2)
    with pytest.raises(ValueError, match="shape"):
        viz.plot_contour_paths(lambda a, b: a + b, {"bad": torch.zeros(3)}, (0, 1), (0, 1))


def test_tradeoff_labels_every_point_and_groups_by_colour():
    fig = viz.plot_tradeoff([1e6, 1e8, 1e9], [0.7, 0.75, 0.8], ["a", "b", "c"],
                            sizes=[1, 2, 4], groups=["cnn", "cnn", "vit"], xlabel="MACs")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    assert ax.get_xscale() == "log" and len(ax.collections) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cnn", "vit"]
    assert ax.collections[1].get_sizes()[0] == pytest.approx(600)
    plain = viz.plot_tradeoff([1, 2], [3, 4], ["x", "y"], logx=False)
    assert plain.axes[0].get_legend() is None and plain.axes[0].get_xscale() == "linear"
    with pytest.raises(ValueError, match="same length"):
        viz.plot_tradeoff([1, 2], [3], ["x", "y"])


def test_tradeoff_moves_the_label_of_a_close_neighbour():
    fig = viz.plot_tradeoff([1.0, 1.02, 100.0], [5.0, 5.0, 1.0], ["first", "second", "far"],
                            logy=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.texts[0].xyann != ax.texts[1].xyann  # the second label moved
    assert ax.texts[2].xyann == ax.texts[0].xyann  # a lone point keeps the default place
