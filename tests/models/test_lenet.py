import pytest
import torch
from torch import nn

from cnnbook.models.lenet import LeNet5, conv_stage, lenet5, lenet5_modern
from cnnbook.profiling import count_params


def test_published_lenet_shapes_and_parameter_count():
    model = lenet5().eval()
    x = torch.randn(2, 1, 28, 28)
    assert model.stage1(x).shape == (2, 6, 14, 14)        # conv pad 2 keeps 28, pool halves
    assert model.stage2(model.stage1(x)).shape == (2, 16, 5, 5)  # 14 - 4 = 10, pooled to 5
    assert model(x).shape == (2, 10)
    # conv1 1*6*25+6, conv2 6*16*25+16, fc 400*120+120, 120*84+84, 84*10+10
    assert count_params(model) == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706


def test_published_lenet_uses_sigmoid_and_average_pooling():
    kinds = {type(m) for m in lenet5().modules()}
    assert {nn.Sigmoid, nn.AvgPool2d} <= kinds
    assert not kinds & {nn.ReLU, nn.MaxPool2d, nn.BatchNorm2d, nn.BatchNorm1d}


def test_modern_variant_has_relu_max_pooling_and_batch_norm():
    model = lenet5_modern()
    kinds = {type(m) for m in model.modules()}
    assert {nn.ReLU, nn.MaxPool2d, nn.BatchNorm2d, nn.BatchNorm1d} <= kinds
    assert not kinds & {nn.Sigmoid, nn.AvgPool2d}
    assert model.stage1.conv.bias is None and model.fc1.linear.bias is None  # BN shifts instead
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    # the same weights as LeNet-5 without the 4 biases before BN, plus BN's scale and shift
    assert count_params(model) == 61_706 - (6 + 16 + 120 + 84) + 2 * (6 + 16 + 120 + 84) == 61_932


@pytest.mark.parametrize("in_channels, classes, width, size, features", [
    (3, 100, 1.0, 32, 16 * 6 * 6), (1, 10, 2.0, 28, 32 * 5 * 5), (1, 7, 0.5, 12, 8 * 1 * 1)])
def test_configurable_in_channels_classes_width_and_size(in_channels, classes, width, size, features):
    model = lenet5(in_channels=in_channels, num_classes=classes, width_mult=width, image_size=size)
    assert model(torch.randn(2, in_channels, size, size)).shape == (2, classes)
    assert model.fc1.linear.in_features == features
    assert model.stage1.conv.out_channels == round(6 * width)


def test_conv_stage_trims_and_halves():
    stage = conv_stage(3, 8, activation="tanh", pool="max")
    assert stage(torch.randn(1, 3, 20, 20)).shape == (1, 8, 8, 8)
    assert isinstance(stage.act, nn.Tanh) and isinstance(stage.pool, nn.MaxPool2d)


@pytest.mark.parametrize("kwargs", [dict(width_mult=0), dict(image_size=11), dict(num_classes=0),
                                    dict(activation="gelu"), dict(pool="median")])
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        LeNet5(**kwargs)


def test_lenet_learns_a_tiny_problem():
    torch.manual_seed(0)
    model = lenet5_modern()
    x = torch.randn(32, 1, 28, 28)
    y = torch.arange(32) % 2
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1
