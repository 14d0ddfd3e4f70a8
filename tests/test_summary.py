import torch
from torch import nn

from cnnbook.summary import layer_shapes, shape_table, show_source
from cnnbook.train import init_weights


def _net():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(6 * 14 * 14, 10))


def test_layer_shapes_follow_the_data():
    df = layer_shapes(_net(), torch.rand(2, 1, 28, 28))
    assert list(df["output shape"]) == [(2, 6, 28, 28), (2, 6, 28, 28), (2, 6, 14, 14),
                                        (2, 1176), (2, 10)]
    assert df["parameters"].sum() == 6 * 25 + 6 + 1176 * 10 + 10


def test_shape_table_counts_parameters():
    stats = shape_table(_net(), (1, 1, 28, 28))
    assert stats.total_params == 6 * 25 + 6 + 1176 * 10 + 10
    assert "Conv2d" in str(stats)


def test_show_source_returns_code():
    assert "def init_weights" in show_source(init_weights)
