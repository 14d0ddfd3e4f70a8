import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.densenet import (DenseBlock, DenseNet, conv_block, dense_layer,
                                     densenet121, densenet_d2l, source_weights,
                                     transition_block)
from cnnbook.profiling import count_macs, count_params

WEIGHTS = torchvision.models.DenseNet121_Weights.IMAGENET1K_V1


def test_densenet121_parameter_count_is_torchvisions():
    ours = count_params(densenet121())
    theirs = count_params(torchvision.models.densenet121(weights=None))
    assert ours == theirs == 7_978_856 == WEIGHTS.meta["num_params"]


def test_densenet121_macs_match_torchvisions_published_gflops():
    macs = count_macs(densenet121(), (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(WEIGHTS.meta["_ops"], rel=0.01)


def test_dense_block_grows_the_channels_by_the_growth_rate():
    block = DenseBlock(num_convs=2, in_channels=3, growth_rate=10)
    x = torch.randn(4, 3, 8, 8)
    y = block(x)
    assert y.shape == (4, 23, 8, 8) and block.out_channels == 23
    assert torch.equal(y[:, :3], x)  # the input is passed on unchanged (concatenated)
    # layer i sees the input and all earlier outputs: 3, 13 channels
    assert [layer.conv.in_channels for layer in block.net] == [3, 13]


def test_transition_halves_size_and_sets_channels():
    t = transition_block(23, 10)
    assert t(torch.randn(4, 23, 8, 8)).shape == (4, 10, 4, 4)
    assert [type(m) for m in t] == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.AvgPool2d]


def test_conv_block_is_bn_relu_conv():
    b = conv_block(4, 8)
    assert [type(m) for m in b] == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d]
    assert b(torch.randn(2, 4, 5, 5)).shape == (2, 8, 5, 5)
    bottleneck = dense_layer(16, 4, bottleneck=4)
    assert bottleneck.bottleneck.conv.kernel_size == (1, 1)
    assert bottleneck.bottleneck.conv.out_channels == 16
    assert bottleneck(torch.randn(2, 16, 5, 5)).shape == (2, 4, 5, 5)


def test_d2l_densenet_channel_table():
    net = densenet_d2l()
    x = torch.randn(2, 1, 96, 96)
    channels = {}
    net.eval()
    with torch.no_grad():
        for name, layer in net.named_children():
            x = layer(x)
            if name.startswith(("block", "trans")):
                channels[name] = x.shape[1]
    # 64 + 4*32 = 192 -> 96; 96 + 128 = 224 -> 112; 112 + 128 = 240 -> 120; 120 + 128 = 248
    assert channels == {"block1": 192, "trans1": 96, "block2": 224, "trans2": 112,
                        "block3": 240, "trans3": 120, "block4": 248}
    assert x.shape == (2, 10) and net.fc.in_features == 248


def test_native_28_px_and_configurable_width_and_depth():
    net = densenet_d2l(small_input=True, growth_rate=8, init_channels=16,
                       block_config=(2, 2, 2)).eval()
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert net.stem.conv.stride == (1, 1) and not hasattr(net.stem, "pool")
    assert net.out_channels == 32  # 16 + 2*8 = 32 -> 16, twice, then 16 + 2*8
    assert not hasattr(net, "trans3") and hasattr(net, "block3")


def test_compression_and_bottleneck():
    c = DenseNet((4, 4), growth_rate=8, init_channels=16, compression=1.0, num_classes=5)
    dc = DenseNet((4, 4), growth_rate=8, init_channels=16, compression=0.5, num_classes=5)
    assert c.trans1.conv.out_channels == 48 and dc.trans1.conv.out_channels == 24
    assert count_params(dc) < count_params(c)
    bc = DenseNet((4, 4), growth_rate=8, init_channels=16, bottleneck=4, num_classes=5)
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in bc.modules()) == 9
    assert bc(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="compression"):
        densenet_d2l(compression=0)
    with pytest.raises(ValueError, match="compression"):
        densenet_d2l(compression=1.5)
    with pytest.raises(ValueError, match="growth_rate"):
        DenseBlock(2, 3, 0)
    with pytest.raises(ValueError, match="at least one dense block"):
        DenseNet(())


def test_source_weights_splits_each_layers_weights_by_source():
    torch.manual_seed(0)
    block = DenseBlock(num_convs=3, in_channels=4, growth_rate=2)
    trans = transition_block(block.out_channels, 5)
    with torch.no_grad():  # layer 3 reads 4 + 2 + 2 channels: mark each source's slice
        block.net[2].conv.weight.zero_()
        block.net[2].conv.weight[:, :4] = 1.0
        block.net[2].conv.weight[:, 6:8] = -3.0
    m = source_weights(block, trans)
    assert m.shape == (4, 4)  # targets: 3 layers + transition; sources: input + 3 layers
    assert m[2, :3].tolist() == [1.0, 0.0, 3.0] and torch.isnan(m[2, 3])
    assert torch.isnan(m[0, 1:]).all() and not torch.isnan(m[3]).any()
    assert source_weights(block).shape == (3, 4)
    bc = DenseBlock(2, 8, 4, bottleneck=4)  # with a bottleneck the 1x1 conv reads the input
    expected = bc.net[1].bottleneck.conv.weight[:, :8].abs().mean().item()
    assert source_weights(bc)[1, 0].item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="transition"):
        source_weights(block, transition_block(99, 5))
