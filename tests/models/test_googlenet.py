import importlib

import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.googlenet import (INCEPTION_STAGES, AuxLoss, GoogLeNet, Inception,
                                      InceptionAux, conv_relu, googlenet, googlenet_fashion,
                                      googlenet_torchvision)
from cnnbook.profiling import count_macs, count_params

META = torch.device("meta")  # shapes only: parameter counts and FLOPs without memory or init
WEIGHTS = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1


def _torchvision(aux_logits):
    return torchvision.models.googlenet(weights=None, aux_logits=aux_logits, init_weights=True)


def test_torchvision_configuration_has_exactly_its_parameter_count():
    with META:
        ours, theirs = googlenet_torchvision(), _torchvision(False)
    assert count_params(ours) == count_params(theirs) == 6_624_904 == WEIGHTS.meta["num_params"]


def test_torchvision_configuration_with_auxiliary_heads():
    with META:
        ours, theirs = googlenet_torchvision(aux_logits=True), _torchvision(True)
    assert count_params(ours) == count_params(theirs)
    assert len(ours.aux) == 2


def test_macs_match_torchvisions_published_gflops():
    with META:
        model = googlenet_torchvision()
    macs = count_macs(model, (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(WEIGHTS.meta["_ops"], rel=0.01)


def test_paper_version_uses_5x5_kernels_plain_convs_and_costs_more():
    with META:
        paper, tv = googlenet(), googlenet_torchvision()
    assert paper.b3.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert tv.b3.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    assert paper.b1.conv.conv.bias is not None and tv.b1.conv.conv.bias is None
    # every 5x5 weight is 25/9 times a 3x3 one; biases replace BN's two parameters
    extra = sum(m.weight.numel() * 16 / 25 for m in paper.modules()
                if isinstance(m, nn.Conv2d) and m.kernel_size == (5, 5))
    convs = [m for m in paper.modules() if isinstance(m, nn.Conv2d)]
    bn = sum(2 * c.out_channels for c in convs)
    bias = sum(c.out_channels for c in convs)
    assert count_params(paper) == count_params(tv) + extra + bias - bn


def test_first_inception_block_outputs_256_channels():
    block = Inception(192, 64, (96, 128), (16, 32), 32)
    assert block.out_channels == 256
    assert block(torch.randn(2, 192, 12, 12)).shape == (2, 256, 12, 12)


@pytest.mark.parametrize("c1, c2, c3, c4", [(64, (96, 128), (16, 32), 32),
                                            (5, (3, 7), (2, 4), 6), (1, (1, 1), (1, 1), 1)])
def test_inception_output_channels_are_the_sum_of_the_paths(c1, c2, c3, c4):
    block = Inception(12, c1, c2, c3, c4)
    y = block(torch.randn(1, 12, 9, 9))
    assert y.shape == (1, c1 + c2[1] + c3[1] + c4, 9, 9) and block.out_channels == y.shape[1]
    # the output is the four paths side by side, in order
    parts = [block.branch1, block.branch2, block.branch3, block.branch4]
    x = torch.randn(1, 12, 9, 9)
    assert torch.allclose(block(x), torch.cat([p(x) for p in parts], 1))


def test_inception_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pairs"):
        Inception(16, 8, (8,), (4, 4), 4)
    with pytest.raises(ValueError, match="positive"):
        Inception(16, 0, (8, 8), (4, 4), 4)
    with pytest.raises(ValueError, match="odd"):
        Inception(16, 8, (8, 8), (4, 4), 4, branch3_kernel=4)


def test_nine_inception_blocks_in_three_stages():
    model = googlenet_fashion(width_mult=0.25)
    assert [len(rows) for rows in INCEPTION_STAGES.values()] == [2, 5, 2]
    assert sum(isinstance(m, Inception) for m in model.modules()) == 9
    assert isinstance(model.b3.pool, nn.MaxPool2d) and isinstance(model.b4.pool, nn.MaxPool2d)
    assert not hasattr(model.b5, "pool")


def test_d2l_course_model_at_96_px_shapes_per_stage():
    model = googlenet_fashion().eval()
    x = torch.randn(2, 1, 96, 96)
    shapes = {}
    for name, stage in model.stages().named_children():
        x = stage(x)
        shapes[name] = tuple(x.shape[1:])
    assert shapes == {"b1": (64, 24, 24), "b2": (192, 12, 12), "b3": (480, 6, 6),
                      "b4": (832, 3, 3), "b5": (1024, 3, 3), "head": (10,)}


@pytest.mark.parametrize("width", [0.25, 0.5])
def test_small_input_and_width(width):
    model = googlenet_fashion(width, small_input=True).eval()
    assert model.b1.conv.conv.kernel_size == (3, 3) and model.b1.conv.conv.stride == (1, 1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert model.b3.inception3a.out_channels == sum(round(c * width) for c in (64, 128, 32, 32))
    assert googlenet(width_mult=width, in_channels=2, num_classes=5).eval()(
        torch.randn(1, 2, 64, 64)).shape == (1, 5)


def test_auxiliary_heads_run_in_training_only():
    model = googlenet_fashion(width_mult=0.25, small_input=True, aux_logits=True)
    assert list(model.aux) == ["inception4a", "inception4d"]
    assert all(isinstance(h, InceptionAux) for h in model.aux.values())
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    model.train()
    logits = model(x)
    assert logits.shape == (4, 10) and [a.shape for a in model.aux_outputs] == [(4, 10)] * 2
    loss_fn = AuxLoss(model, weight=0.3)
    ce = nn.functional.cross_entropy
    expected = ce(logits, y) + 0.3 * sum(ce(a, y) for a in model.aux_outputs)
    assert torch.allclose(loss_fn(logits, y), expected)
    # the heads' purpose: their loss sends gradient into the trunk below them
    aux_only = sum(ce(a, y) for a in model.aux_outputs)
    trunk = next(m for m in model.b1.modules() if isinstance(m, nn.Conv2d)).weight
    head = model.aux.inception4a.fc2.weight
    g_trunk, g_head = torch.autograd.grad(aux_only, [trunk, head], retain_graph=True)
    assert float(g_trunk.abs().sum()) > 0 and float(g_head.abs().sum()) > 0
    # and AuxLoss's gradient is the main one plus 0.3 times the heads'
    g_main, = torch.autograd.grad(ce(logits, y), trunk, retain_graph=True)
    g_all, = torch.autograd.grad(loss_fn(logits, y), trunk, retain_graph=True)
    torch.testing.assert_close(g_all, g_main + 0.3 * g_trunk)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert model.aux_outputs == ()
    assert torch.allclose(loss_fn(logits, y), ce(logits, y))
    assert "aux" not in dict(model.stages().named_children())


def test_aux_heads_do_not_change_the_main_path():
    torch.manual_seed(0)
    plain = googlenet_fashion(0.25, small_input=True).eval()
    torch.manual_seed(0)
    with_aux = googlenet_fashion(0.25, small_input=True, aux_logits=True).eval()
    with_aux.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 1, 28, 28)
    assert torch.allclose(plain(x), with_aux(x))


def test_conv_relu_with_and_without_batch_norm():
    plain, bn = conv_relu(3, 8, 3, padding=1), conv_relu(3, 8, 3, padding=1, batch_norm=True)
    assert [type(m) for m in plain] == [nn.Conv2d, nn.ReLU]
    assert [type(m) for m in bn] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert bn.conv.bias is None and bn.bn.eps == 0.001


def test_bad_model_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="width_mult"):
        GoogLeNet(width_mult=0)
    with pytest.raises(ValueError, match="positive"):
        GoogLeNet(in_channels=0)


# ---------------------------------------------------------------- values against oracles
# The tests above check shapes and counts; these compare outputs with torchvision's own
# GoogLeNet modules (same weights copied in) and with blocks written out with F.conv2d.
F = nn.functional
_tv_googlenet = importlib.import_module("torchvision.models.googlenet")


def _tv_key(key):
    """Our state_dict key -> torchvision's (b1.conv -> conv1, b3.inception3a -> inception3a...)."""
    for ours, theirs in [("b1.conv.", "conv1."), ("b2.conv1.", "conv2."), ("b2.conv2.", "conv3."),
                         ("head.fc.", "fc."), ("aux.inception4a.", "aux1."),
                         ("aux.inception4d.", "aux2.")]:
        if key.startswith(ours):
            return theirs + key[len(ours):]
    return key.split(".", 1)[1]   # b3.inception3a.branch1... -> inception3a.branch1...


def _torchvision_forward(tv, x):
    """torchvision's modules in d2l's order, with d2l's max-pools between stages (3, stride 2,
    padding 1; torchvision's own use ceil_mode): (logits, aux logits after 4a and 4d)."""
    def pool(t):
        return F.max_pool2d(t, 3, 2, padding=1)
    x = pool(tv.conv1(x))
    x = pool(tv.conv3(tv.conv2(x)))
    x = pool(tv.inception3b(tv.inception3a(x)))
    x = tv.inception4a(x)
    aux = [tv.aux1(x)] if tv.training and tv.aux1 is not None else []
    x = tv.inception4d(tv.inception4c(tv.inception4b(x)))
    aux += [tv.aux2(x)] if tv.training and tv.aux2 is not None else []
    x = tv.inception5b(tv.inception5a(pool(tv.inception4e(x))))
    return tv.fc(tv.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))), aux


def _randomise_batch_norms(model):
    """Non-trivial BN statistics and affine parameters, so that eval mode uses them."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("train", [False, True])
def test_torchvision_configuration_computes_torchvisions_network(train):
    torch.manual_seed(0)
    ours = googlenet_torchvision(aux_logits=True)
    tv = _tv_googlenet.GoogLeNet(aux_logits=True, init_weights=False)
    _randomise_batch_norms(ours)
    tv.load_state_dict({_tv_key(k): v for k, v in ours.state_dict().items()})  # strict
    ours.train(train), tv.train(train)
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(1)          # the same dropout masks, drawn in the same order
    logits = ours(x)
    torch.manual_seed(1)
    expected, aux = _torchvision_forward(tv, x)
    torch.testing.assert_close(logits, expected)
    assert len(ours.aux_outputs) == len(aux) == (2 if train else 0)
    for got, want in zip(ours.aux_outputs, aux):
        torch.testing.assert_close(got, want)
    if train:   # AuxLoss's gradient in the stem is torchvision's for main + 0.3 x aux losses
        y = torch.tensor([3, 998])
        ce = F.cross_entropy
        AuxLoss(ours)(logits, y).backward()
        (ce(expected, y) + 0.3 * (ce(aux[0], y) + ce(aux[1], y))).backward()
        torch.testing.assert_close(ours.b1.conv.conv.weight.grad, tv.conv1.conv.weight.grad)
        torch.testing.assert_close(ours.aux.inception4d.fc2.bias.grad, tv.aux2.fc2.bias.grad)


def test_torchvision_configuration_dropouts_are_torchvisions():
    with META:
        model = googlenet_torchvision(aux_logits=True)
    assert model.head.dropout.p == 0.2
    assert [h.dropout.p for h in model.aux.values()] == [0.7, 0.7]
    assert googlenet_torchvision(dropout=0.5).head.dropout.p == 0.5   # a caller's value wins


@pytest.mark.parametrize("size", [14, 9])
def test_aux_head_with_batch_norm_is_torchvisions(size):
    torch.manual_seed(0)
    ours = InceptionAux(24, 7, batch_norm=True)
    tv = _tv_googlenet.InceptionAux(24, 7)
    _randomise_batch_norms(ours)
    tv.load_state_dict(ours.state_dict())
    ours.eval(), tv.eval()
    x = torch.randn(2, 24, size, size)   # 14x14 as in the paper; 9x9 pools unevenly
    torch.testing.assert_close(ours(x), tv(x))


def test_inception_with_batch_norm_and_3x3_path_is_torchvisions():
    torch.manual_seed(0)
    ours = Inception(12, 5, (3, 7), (2, 4), 6, branch3_kernel=3, batch_norm=True)
    tv = _tv_googlenet.Inception(12, 5, 3, 7, 2, 4, 6)
    _randomise_batch_norms(ours)
    tv.load_state_dict(ours.state_dict())
    x = torch.randn(2, 12, 7, 7)
    for train in (False, True):
        ours.train(train), tv.train(train)
        torch.testing.assert_close(ours(x), tv(x))


def _conv_relu_oracle(seq, x, padding=0, stride=1):
    return F.relu(F.conv2d(x, seq.conv.weight, seq.conv.bias, stride=stride, padding=padding))


def test_paper_inception_block_computes_its_four_paths():
    torch.manual_seed(0)
    block = Inception(6, 5, (3, 7), (2, 4), 3)   # plain convs and a 5x5 path
    for m in block.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.bias)                # non-zero biases must be added
    x = torch.randn(2, 6, 8, 8)
    path2 = _conv_relu_oracle(block.branch2[1], _conv_relu_oracle(block.branch2[0], x), 1)
    path3 = _conv_relu_oracle(block.branch3[1], _conv_relu_oracle(block.branch3[0], x), 2)
    path4 = _conv_relu_oracle(block.branch4[1], F.max_pool2d(x, 3, 1, padding=1))
    expected = torch.cat([_conv_relu_oracle(block.branch1, x), path2, path3, path4], 1)
    torch.testing.assert_close(block(x), expected)
    assert block.branch3[1].conv.weight.shape == (4, 2, 5, 5)


@pytest.mark.parametrize("small_input", [False, True])
def test_stem_convolution_and_pool_values(small_input):
    torch.manual_seed(0)
    model = googlenet_fashion(0.25, small_input=small_input)
    nn.init.normal_(model.b1.conv.conv.bias)
    x = torch.randn(2, 1, 20, 20)
    stride, padding = (1, 1) if small_input else (2, 3)
    conv = _conv_relu_oracle(model.b1.conv, x, padding, stride)
    torch.testing.assert_close(model.b1.conv(x), conv)
    torch.testing.assert_close(model.b1(x), F.max_pool2d(conv, 3, 2, padding=1))


# ---------------------------------------------------------------- defaults and names
def test_conv_relu_defaults_stride_1_no_padding_no_batch_norm():
    layer = conv_relu(2, 3, 3)
    assert layer.conv.stride == (1, 1) and layer.conv.padding == (0, 0)
    assert list(layer._modules) == ["conv", "relu"] and layer.conv.bias is not None
    assert list(conv_relu(2, 3, 3, batch_norm=True)._modules) == ["conv", "bn", "relu"]


def test_aux_head_defaults_are_the_papers():
    head = InceptionAux(16, 10)   # conv 128 channels, FC 1024, dropout 0.7, no BN
    assert head.conv.conv.out_channels == 128 and head.conv.conv.bias is not None
    assert (head.fc1.in_features, head.fc1.out_features) == (128 * 16, 1024)
    assert head.fc2.out_features == 10 and head.dropout.p == 0.7
    assert list(head.conv._modules) == ["conv", "relu"]
    half = InceptionAux(16, 10, width_mult=0.5)
    assert (half.fc1.in_features, half.fc1.out_features) == (64 * 16, 512)


def test_googlenet_defaults_are_the_papers_imagenet_model():
    with META:
        model = GoogLeNet()
    assert model.b1.conv.conv.in_channels == 3 and model.head.fc.out_features == 1000
    assert model.b1.conv.conv.kernel_size == (7, 7) and model.b1.conv.conv.stride == (2, 2)
    assert model.head.dropout.p == 0.0 and len(model.aux) == 0
    assert model.b3.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    with META:
        aux = GoogLeNet(aux_logits=True)
    assert [h.dropout.p for h in aux.aux.values()] == [0.7, 0.7]
    assert list(GoogLeNet(num_classes=1, in_channels=1, width_mult=0.1).head.fc.weight.shape) \
        == [1, 102]


def test_block_and_layer_names_follow_the_papers_table():
    with META:
        model = googlenet()
    assert [list(getattr(model, s)._modules) for s in ("b1", "b2", "b3", "b4", "b5", "head")] == [
        ["conv", "pool"], ["conv1", "conv2", "pool"],
        ["inception3a", "inception3b", "pool"],
        ["inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "pool"],
        ["inception5a", "inception5b"], ["pool", "flatten", "dropout", "fc"]]
    assert list(model.stages()._modules) == ["b1", "b2", "b3", "b4", "b5", "head"]


def test_tiny_width_keeps_at_least_one_channel():
    model = googlenet_fashion(width_mult=0.01, small_input=True).eval()
    assert model.b3.inception3a.branch2[0].conv.out_channels == 1   # 96 * 0.01 rounds to 1
    assert model.b3.inception3a.branch3[0].conv.out_channels == 1   # 16 * 0.01 rounds to 0
    assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_weights_are_xavier_uniform_with_zero_biases():
    torch.manual_seed(0)
    model = googlenet_fashion(0.25, small_input=True, batch_norm=True)
    conv = model.b2.conv2.conv                      # 3x3 from 16 to 48 channels
    fan_in, fan_out = 16 * 9, 48 * 9
    bound = (6 / (fan_in + fan_out)) ** 0.5         # Glorot & Bengio (2010)
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.95 * bound
    fc = model.head.fc
    fc_bound = (6 / (fc.in_features + fc.out_features)) ** 0.5
    assert fc.weight.abs().max() <= fc_bound and fc.weight.abs().max() > 0.9 * fc_bound
    assert not fc.bias.any()
    plain = googlenet_fashion(0.25, small_input=True)
    assert all(not m.bias.any() for m in plain.modules() if isinstance(m, nn.Conv2d))
    bn = model.b2.conv2.bn
    assert bn.weight.eq(1).all() and not bn.bias.any()


def test_aux_loss_default_weight_is_the_papers_0_3():
    model = googlenet_fashion(width_mult=0.25, small_input=True, aux_logits=True).train()
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 4, 9])
    logits = model(x)
    ce = nn.functional.cross_entropy
    expected = ce(logits, y) + 0.3 * (ce(model.aux_outputs[0], y) + ce(model.aux_outputs[1], y))
    torch.testing.assert_close(AuxLoss(model)(logits, y), expected)


def test_googlenet_rejects_zero_classes_with_a_clear_message():
    with pytest.raises(ValueError, match="^num_classes and in_channels must be positive$"):
        GoogLeNet(num_classes=0)
    with pytest.raises(ValueError, match="width_mult must be positive, got -1"):
        GoogLeNet(width_mult=-1)


def test_inception_rejects_each_zero_channel_count():
    message = "channel counts must be positive"
    for args in [(0, 8, (8, 8), (4, 4), 4), (16, 8, (0, 8), (4, 4), 4),
                 (16, 8, (8, 0), (4, 4), 4), (16, 8, (8, 8), (0, 4), 4),
                 (16, 8, (8, 8), (4, 0), 4), (16, 8, (8, 8), (4, 4), 0)]:
        with pytest.raises(ValueError, match=message):
            Inception(*args)


def test_builders_pass_their_arguments_on():
    with META:
        half = googlenet(width_mult=0.5)
        small = googlenet_fashion(small_input=True)
        small_bn = googlenet_fashion(small_input=True, batch_norm=True)
        aux = GoogLeNet(aux_logits=True, aux_dropout=0.4)
    assert half.b1.conv.conv.out_channels == 32 and half.head.fc.in_features == 512
    assert small.b1.conv.conv.out_channels == 64 and small.b2.conv1.conv.in_channels == 64
    assert list(small_bn.b1.conv._modules) == ["conv", "bn", "relu"]
    assert [h.dropout.p for h in aux.aux.values()] == [0.4, 0.4]


def test_aux_outputs_are_empty_before_the_first_forward():
    model = googlenet_fashion(width_mult=0.25, small_input=True, aux_logits=True).train()
    assert model.aux_outputs == ()
    logits, y = torch.randn(2, 10), torch.tensor([1, 2])
    torch.testing.assert_close(AuxLoss(model)(logits, y), F.cross_entropy(logits, y))
