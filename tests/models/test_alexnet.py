import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.alexnet import (ALEXNET_2012, LRN_2012, AlexNet, alexnet, alexnet_2012,
                                    alexnet_fashion, conv_layer, feature_side)
from cnnbook.profiling import count_macs, count_params

WEIGHTS = torchvision.models.AlexNet_Weights.IMAGENET1K_V1


def test_single_tower_variant_has_torchvisions_parameter_count():
    ours = count_params(alexnet())
    theirs = count_params(torchvision.models.alexnet(weights=None))
    assert ours == theirs == WEIGHTS.meta["num_params"] == 61_100_840


def test_single_tower_macs_match_torchvisions_published_gflops():
    # torchvision's "_ops" counts multiply-adds (0.714 G for AlexNet)
    macs = count_macs(alexnet(), (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(WEIGHTS.meta["_ops"], rel=0.01)


def test_torchvision_variant_matches_layer_by_layer():
    ours = [tuple(p.shape) for p in alexnet().parameters()]
    theirs = [tuple(p.shape) for p in torchvision.models.alexnet(weights=None).parameters()]
    assert ours == theirs


# The 2012 network, layer by layer (weights + biases); the grouped layers see half the maps.
PUBLISHED = {
    "conv1": 11 * 11 * 3 * 96 + 96,            # 34,944
    "conv2": 5 * 5 * 48 * 256 + 256,           # 307,456 (groups=2: 48 of the 96 maps)
    "conv3": 3 * 3 * 256 * 384 + 384,          # 885,120 (sees all 256 maps)
    "conv4": 3 * 3 * 192 * 384 + 384,          # 663,936
    "conv5": 3 * 3 * 192 * 256 + 256,          # 442,624
    "fc1": 256 * 6 * 6 * 4096 + 4096,          # 37,752,832
    "fc2": 4096 * 4096 + 4096,                 # 16,781,312
    "fc3": 4096 * 1000 + 1000,                 # 4,097,000
}


def test_published_two_tower_alexnet_parameter_count():
    model = alexnet_2012()
    assert sum(PUBLISHED.values()) == 60_965_224  # the paper's "60 million parameters"
    assert count_params(model) == 60_965_224
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        assert count_params(model.features.get_submodule(name)) == PUBLISHED[name], name
    for name in ("fc1", "fc2", "fc3"):
        assert count_params(model.classifier.get_submodule(name)) == PUBLISHED[name], name


def test_grouped_and_single_tower_differ_by_the_cross_gpu_weights():
    grouped, single = alexnet_2012(two_towers=True), alexnet_2012(two_towers=False)
    groups = [m.groups for m in grouped.modules() if isinstance(m, nn.Conv2d)]
    assert groups == [1, 2, 1, 2, 2]
    assert all(m.groups == 1 for m in single.modules() if isinstance(m, nn.Conv2d))
    # halving the inputs of conv2, conv4 and conv5 halves their weights
    missing = (5 * 5 * 48 * 256) + (3 * 3 * 192 * 384) + (3 * 3 * 192 * 256)
    assert count_params(single) - count_params(grouped) == missing == 1_413_120
    assert count_params(single) == 62_378_344
    x = torch.randn(1, 3, 224, 224)
    assert grouped.eval()(x).shape == single.eval()(x).shape == (1, 1000)


def test_published_alexnet_has_lrn_overlapping_pools_relu_and_dropout():
    model = alexnet_2012()
    lrns = [m for m in model.modules() if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2
    assert model.features.conv1.lrn is lrns[0] and model.features.conv2.lrn is lrns[1]
    # PyTorch divides alpha by size: alpha / n = the paper's 1e-4
    assert (lrns[0].size, lrns[0].alpha / lrns[0].size, lrns[0].beta, lrns[0].k) == (5, 1e-4, 0.75, 2.0)
    assert LRN_2012["k"] == 2.0
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 3 and p.stride == 2 for p in pools)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 7
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in alexnet().modules())
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in alexnet_2012(lrn=False).modules())


def test_published_feature_map_sizes():
    model = alexnet_2012().eval()
    x = torch.randn(1, 3, 224, 224)
    sizes = []
    for layer in model.features:
        x = layer(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(96, 27, 27), (256, 13, 13), (384, 13, 13), (384, 13, 13), (256, 6, 6)]
    assert feature_side(224, ALEXNET_2012) == 6
    assert feature_side(28, ALEXNET_2012) < 1  # the 11x11 stride-4 stem is too coarse


def test_fashion_variant_is_d2ls_network_at_224():
    model = alexnet_fashion().eval()
    assert model(torch.randn(2, 1, 224, 224)).shape == (2, 10)
    assert model.classifier.fc1.in_features == 256 * 5 * 5 == 6_400
    assert model.features.conv1.conv.padding == (1, 1)
    assert count_params(model) == 46_764_746  # d2l's AlexNet for Fashion-MNIST
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25])
def test_fashion_variant_runs_at_native_28_px(width):
    model = alexnet_fashion(width, small_input=True).eval()
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    stem = model.features.conv1.conv
    assert (stem.kernel_size, stem.stride, stem.out_channels) == ((5, 5), (1, 1), round(96 * width))
    assert model.classifier.fc1.in_features == round(256 * width) * 2 * 2
    assert model.classifier.fc1.out_features == round(4096 * width)


def test_configurable_channels_classes_width_and_fc_units():
    model = AlexNet(num_classes=7, in_channels=4, width_mult=0.5, fc_units=128, two_towers=True)
    assert model(torch.randn(1, 4, 224, 224)).shape == (1, 7)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [48, 128, 192, 192, 128]
    assert convs[0].in_channels == 4 and model.classifier.fc2.in_features == 128
    odd = AlexNet(width_mult=0.3, two_towers=True)  # 96 * 0.3 = 28.8 -> 28: even for 2 groups
    assert all(c.out_channels % 2 == 0 for c in odd.modules() if isinstance(c, nn.Conv2d))
    big = alexnet(num_classes=10)
    assert big(torch.randn(1, 3, 256, 256)).shape == (1, 10)  # the adaptive pool absorbs size


def test_conv_layer_order_is_conv_relu_lrn_pool():
    layer = conv_layer(3, 8, 3, padding=1, lrn=True, pool=True)
    assert list(dict(layer.named_children())) == ["conv", "act", "lrn", "pool"]
    assert isinstance(layer.act, nn.ReLU)
    assert layer(torch.randn(1, 3, 9, 9)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError):
        conv_layer(3, 8, 3, groups=2)


@pytest.mark.parametrize("kwargs", [
    dict(width_mult=0), dict(num_classes=0), dict(stem="huge"), dict(dropout=1.0),
    dict(pool_size=0), dict(image_size=28, pool_size=None), dict(layers=((96, 11, 4, 2, 1),))])
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        AlexNet(**kwargs)


def test_activation_can_be_swapped_everywhere():
    model = alexnet_fashion(0.25, small_input=True, activation=nn.Sigmoid)
    assert sum(isinstance(m, nn.Sigmoid) for m in model.modules()) == 7
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)
