import pytest
import torch
from torch import nn

from cnnbook.inspect import capture, first_conv


def _net():
    return nn.Sequential(nn.Flatten(0, 0), nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))


def test_first_conv_finds_the_first_layer():
    net = _net()
    assert first_conv(net) is net[1]
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        first_conv(nn.Linear(2, 2))


def test_capture_records_named_layers_and_restores_mode():
    net = _net().train()
    x = torch.randn(2, 1, 8, 8)
    maps = capture(net, x, ["1", "3"])
    assert maps["1"].shape == (2, 4, 6, 6) and maps["3"].shape == (2, 2, 4, 4)
    assert torch.allclose(maps["3"], net(x).detach())
    assert net.training and not net[1]._forward_hooks
    assert capture(net, x, {"relu": net[2]})["relu"].min() >= 0
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        capture(net, x, ["nope"])
