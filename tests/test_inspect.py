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


def test_layer_names_follow_the_forward_pass():
    from cnnbook.inspect import layer_names
    from cnnbook.models.alexnet import alexnet_fashion
    from cnnbook.models.lenet import lenet5
    from cnnbook.models.resnet import resnet

    x = torch.rand(1, 1, 28, 28)
    lenet = lenet5()
    assert layer_names(lenet, x) == ["stage1.conv", "stage1", "stage2.conv", "stage2"]
    assert layer_names(lenet) == layer_names(lenet, x)  # without x: module order, same here
    alex = layer_names(alexnet_fashion(0.125, small_input=True), x)
    assert alex[:2] == ["features.conv1.conv", "features.conv1"]  # `features` is opened up
    assert "classifier" not in alex and "features" not in alex
    net = resnet(18, num_classes=10, in_channels=1, small_input=True, width_mult=0.125)
    names = layer_names(net, x)
    # a stage comes after its convolutions, the shortcut conv after the block's second conv
    assert names.index("stage2.0.conv2") < names.index("stage2.0.shortcut.conv") < names.index(
        "stage2")
    assert names[0] == "stem.conv" and names[-1] == "pool" and "fc" not in names
    with pytest.raises(ValueError, match="no layer that outputs feature maps"):
        layer_names(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.rand(1, 4))


def test_feature_maps_and_probabilities_from_one_pass():
    from cnnbook.inspect import feature_maps

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 5))
    x = torch.rand(2, 3, 8, 8)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.5, 1.0)
    out = feature_maps(net, x, ["0", "1"], normalize=(mean, std))
    z = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(out.maps["0"], net[0](z).detach(), atol=1e-6)
    assert torch.allclose(out.logits, net(z).detach(), atol=1e-6)
    assert torch.allclose(out.probabilities.sum(1), torch.ones(2))
    maps, logits, probs = feature_maps(net, x, "1", normalize=lambda t: t * 0)
    assert list(maps) == ["1"] and torch.allclose(logits, net(x * 0).detach())
    with pytest.raises(ValueError, match="not feature maps"):
        feature_maps(net, x, ["4"])
    with pytest.raises(ValueError, match="std must be positive"):
        feature_maps(net, x, ["0"], normalize=((0,) * 3, (0,) * 3))
    with pytest.raises(ValueError, match="batch of images"):
        feature_maps(net, x[0], ["0"])


def test_producing_conv_and_tiles():
    from cnnbook.inspect import producing_conv, tile_maps

    net = _net()
    x = torch.rand(1, 1, 8, 8)
    assert producing_conv(net, "2", x) == ("1", net[1])   # a ReLU: the conv before it
    assert producing_conv(net, "3", x) == ("3", net[3])
    cat = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Identity())
    cat[1].register_forward_hook(lambda _m, _i, o: torch.cat([o, o], 1))  # 4 channels now
    assert producing_conv(cat, "1", x) is None

    maps = torch.stack([torch.zeros(2, 3), torch.arange(6.).view(2, 3), 5 * torch.ones(2, 3)])
    tiles, ncols = tile_maps(maps, ncols=2)
    assert tiles.shape == (2 * 2 + 1, 2 * 3 + 1) and ncols == 2
    assert tiles[0, 3] != tiles[0, 3]                      # NaN between tiles
    assert tiles[0, 4:7].tolist() == pytest.approx([0.0, 0.2, 0.4])  # each map stretched to [0, 1]
    shared, _ = tile_maps(maps, ncols=3, scale="shared")
    assert shared[0, 8:11].tolist() == [1.0, 1.0, 1.0] and shared[0, 0] == 0.0
    with pytest.raises(ValueError, match="scale"):
        tile_maps(maps, scale="log")
