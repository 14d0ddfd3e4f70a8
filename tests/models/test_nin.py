import pytest
import torch
from torch import nn

from cnnbook.models.nin import NIN_ARCH, NiN, nin, nin_block, nin_fashion
from cnnbook.profiling import count_params


def test_nin_block_is_a_conv_and_two_1x1_convs_each_with_relu():
    block = nin_block(3, 8, kernel_size=5, stride=1, padding=2)
    assert [type(m) for m in block] == [nn.Conv2d, nn.ReLU] * 3
    assert block.conv.kernel_size == (5, 5)
    assert block.mlp1.kernel_size == block.mlp2.kernel_size == (1, 1)
    assert block(torch.randn(2, 3, 9, 9)).shape == (2, 8, 9, 9)
    assert count_params(block) == (5 * 5 * 3 * 8 + 8) + 2 * (8 * 8 + 8)


def test_a_1x1_convolution_is_a_linear_layer_at_every_pixel():
    conv = nn.Conv2d(6, 4, 1)
    linear = nn.Linear(6, 4)
    linear.weight.data = conv.weight.data.view(4, 6)
    linear.bias.data = conv.bias.data
    x = torch.randn(2, 6, 5, 5)
    per_pixel = linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(conv(x), per_pixel, atol=1e-6)


def test_d2l_layout_and_shapes_at_224_px():
    model = nin_fashion().eval()
    names = list(model._modules)
    assert names == ["block1", "pool1", "block2", "pool2", "block3", "pool3", "dropout",
                     "head", "gap", "flatten"]
    assert [model[i].conv.out_channels for i in (0, 2, 4)] == [c for c, *_ in NIN_ARCH]
    assert [model[i].conv.kernel_size[0] for i in (0, 2, 4)] == [11, 5, 3]
    x = torch.randn(2, 1, 224, 224)
    sizes = []
    for layer in model:
        x = layer(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes[:6] == [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12),
                         (384, 12, 12), (384, 5, 5)]
    assert sizes[-3:] == [(10, 5, 5), (10, 1, 1), (10,)]
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5


def test_no_fully_connected_layers_and_logits_are_averaged_class_maps():
    model = nin_fashion(width_mult=0.25, small_input=True).eval()
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    x = torch.randn(3, 1, 28, 28)
    maps = model[:-2](x)  # everything before the global average pool
    assert maps.shape == (3, 10, 2, 2)
    assert torch.allclose(model(x), maps.mean(dim=(2, 3)), atol=1e-6)


def test_small_input_stem_fits_28_px_and_the_default_does_not():
    small = nin_fashion(small_input=True).eval()
    assert small.block1.conv.kernel_size == (3, 3) and small.block1.conv.stride == (1, 1)
    assert small(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(RuntimeError):
        nin_fashion().eval()(torch.randn(1, 1, 28, 28))


@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_width_scales_the_hidden_blocks_not_the_classes(width):
    model = nin(width_mult=width, num_classes=7, in_channels=3, small_input=True).eval()
    assert [model[i].conv.out_channels for i in (0, 2, 4)] == [round(c * width) for c in (96, 256, 384)]
    assert model.head.mlp2.out_channels == 7
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_parameters_shrink_about_quadratically_with_width():
    full, half = count_params(nin_fashion()), count_params(nin_fashion(0.5))
    assert 0.24 < half / full < 0.27


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="width_mult"):
        NiN(width_mult=-1)
    with pytest.raises(ValueError, match="positive"):
        NiN(num_classes=0)
    with pytest.raises(ValueError, match="positive"):
        nin_block(0, 8, 3)
