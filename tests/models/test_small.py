import pytest
import torch
from torch import nn

from cnnbook.models.small import MLP, SmallCNN, mnist_cnn, mnist_mlp
from cnnbook.profiling import count_params


def test_mnist_cnn_shapes_and_parameter_count():
    model = mnist_cnn().eval()
    x = torch.randn(2, 1, 28, 28)
    assert model[:3](x).shape == (2, 32, 13, 13)          # 28 - 3 + 1 = 26, pooled to 13
    assert model(x).shape == (2, 10)
    assert model.feature_side == 13
    # conv 32*1*9 + 32, linear 32*13*13*10 + 10
    assert count_params(model) == 320 + 54_090 == 54_410


def test_mnist_mlp_parameter_count_matches_the_sources():
    model = mnist_mlp()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert model.fc1.weight.numel() == 401_408 and model.fc2.weight.numel() == 5_120
    assert count_params(model) == 401_408 + 512 + 5_120 + 10 == 407_050


def test_named_layers_and_slices_are_plain_sequentials():
    cnn, mlp = mnist_cnn(), mnist_mlp()
    assert list(dict(cnn.named_children())) == ["conv", "relu", "pool", "flatten", "fc"]
    assert list(dict(mlp.named_children())) == ["flatten", "fc1", "relu1", "fc2"]
    head = cnn[:3]
    assert type(head) is nn.Sequential and list(dict(head.named_children())) == ["conv", "relu", "pool"]
    assert isinstance(cnn[0], nn.Conv2d)


@pytest.mark.parametrize("in_channels, classes, channels, kernel, pool, size", [
    (3, 100, 8, 5, 2, 32), (1, 7, 4, 3, 3, 17), (2, 2, 1, 1, 1, 5)])
def test_small_cnn_is_configurable(in_channels, classes, channels, kernel, pool, size):
    model = SmallCNN(in_channels, classes, channels, kernel, pool, image_size=size)
    side = (size - kernel + 1) // pool
    assert model.feature_side == side
    assert model.fc.in_features == channels * side * side
    assert model(torch.randn(2, in_channels, size, size)).shape == (2, classes)


def test_mlp_depth_and_widths():
    model = MLP(12, 3, hidden=(8, 6))
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [8, 6, 3]
    assert sum(isinstance(m, nn.ReLU) for m in model) == 2
    assert model(torch.randn(5, 3, 2, 2)).shape == (5, 3)
    assert mnist_mlp(hidden=64, in_channels=3, image_size=8).fc1.in_features == 192


@pytest.mark.parametrize("make", [lambda: SmallCNN(channels=0), lambda: SmallCNN(image_size=2),
                                  lambda: SmallCNN(kernel_size=5, pool=30),
                                  lambda: MLP(hidden=(0,)), lambda: MLP(num_classes=0)])
def test_bad_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


def test_both_models_learn_a_tiny_problem():
    torch.manual_seed(0)
    x = torch.rand(32, 1, 12, 12)
    y = (x[:, 0, :6].mean((1, 2)) > x[:, 0, 6:].mean((1, 2))).long()  # brighter top half?
    for model in (mnist_cnn(channels=8, num_classes=2, image_size=12),
                  mnist_mlp(hidden=32, num_classes=2, image_size=12)):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(40):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        assert (model(x).argmax(1) == y).float().mean() > 0.9
