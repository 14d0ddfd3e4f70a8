from collections import Counter

import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.resnet import (Bottleneck, Residual, ResNet, _init_weights, modern_cnn,
                                   resnet, resnet18, resnet34, resnet50, resnet101, resnet152,
                                   resnet_stage, resnet_stem)
from cnnbook.profiling import count_macs, count_params

OURS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}
WEIGHTS = {"resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
           "resnet34": torchvision.models.ResNet34_Weights.IMAGENET1K_V1,
           "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V1}
PUBLISHED_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}


@pytest.mark.parametrize("arch", OURS)
def test_parameter_counts_are_torchvisions(arch):
    ours = count_params(OURS[arch]())
    theirs = count_params(getattr(torchvision.models, arch)(weights=None))
    assert ours == theirs == PUBLISHED_PARAMS[arch] == WEIGHTS[arch].meta["num_params"]


@pytest.mark.parametrize("arch", OURS)
def test_macs_match_torchvisions_published_gflops(arch):
    macs = count_macs(OURS[arch](), (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(WEIGHTS[arch].meta["_ops"], rel=0.01)


def test_weights_load_into_torchvision_layout_shape_by_shape():
    """Same layers in the same order: every tensor has torchvision's shape."""
    ours = [p.shape for p in resnet50().parameters()]
    theirs = [p.shape for p in torchvision.models.resnet50(weights=None).parameters()]
    assert ours == theirs


@pytest.mark.parametrize("builder, size, final", [
    (lambda: resnet18(num_classes=10, in_channels=1), 96, 3),
    (lambda: resnet18(num_classes=10, in_channels=1, small_input=True, width_mult=0.25), 28, 4),
    (lambda: resnet50(num_classes=7, in_channels=1, width_mult=0.25), 64, 2),
])
def test_output_shapes_and_final_resolution(builder, size, final):
    model = builder().eval()
    x = torch.randn(2, 1, size, size)
    assert model(x).shape[0] == 2
    body = nn.Sequential(*list(model.children())[:-3])  # up to the last stage
    assert body(x).shape[-1] == final


def test_small_input_stem_keeps_28_pixels():
    stem = resnet_stem(1, 16, small_input=True)
    assert stem(torch.randn(1, 1, 28, 28)).shape == (1, 16, 28, 28)
    assert not any(isinstance(m, nn.MaxPool2d) for m in stem)
    big = resnet_stem(1, 64)
    assert big(torch.randn(1, 1, 224, 224)).shape == (1, 64, 56, 56)
    assert big.conv.kernel_size == (7, 7) and big.conv.stride == (2, 2)


def test_residual_block_shapes_and_shortcut():
    x = torch.randn(4, 3, 6, 6)
    assert Residual(3, 3)(x).shape == (4, 3, 6, 6)
    assert Residual(3, 3).shortcut is None
    down = Residual(3, 6, stride=2)
    assert down(x).shape == (4, 6, 3, 3)
    assert down.shortcut.conv.kernel_size == (1, 1) and down.shortcut.conv.stride == (2, 2)
    assert Residual(3, 3, use_1x1conv=True).shortcut is not None
    assert Bottleneck(3, 4)(x).shape == (4, 16, 6, 6)
    assert Bottleneck(16, 4, stride=2)(torch.randn(1, 16, 8, 8)).shape == (1, 16, 4, 4)


@pytest.mark.parametrize("block, last", [(Residual, "bn2"), (Bottleneck, "bn3")])
@pytest.mark.parametrize("train", [True, False])
def test_zeroed_last_gamma_makes_the_block_identity_then_relu(block, last, train):
    torch.manual_seed(0)
    b = block(16, 16 // block.expansion)
    nn.init.zeros_(getattr(b, last).weight)
    b.train(train)
    x = torch.randn(4, 16, 5, 5)
    torch.testing.assert_close(b(x), torch.relu(x))


def test_zero_init_residual_starts_every_block_as_the_identity():
    model = resnet18(zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, Residual)]
    assert len(blocks) == 8
    assert all((b.bn2.weight == 0).all() for b in blocks)
    assert all((b.bn1.weight == 1).all() for b in blocks)


def test_plain_network_has_the_same_layers_without_shortcuts():
    plain = ResNet(Residual, (3, 3, 3), num_classes=10, in_channels=1, width_mult=0.125,
                   small_input=True, residual=False)
    res = ResNet(Residual, (3, 3, 3), num_classes=10, in_channels=1, width_mult=0.125,
                 small_input=True)
    assert all(b.shortcut is None for b in plain.modules() if isinstance(b, Residual))
    # only the two 1x1 projection shortcuts (conv + BN) are missing
    extra = sum(count_params(b.shortcut) for b in res.modules()
                if isinstance(b, Residual) and b.shortcut is not None)
    assert count_params(res) - count_params(plain) == extra > 0
    assert plain(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    block = Residual(4, 4, residual=False)
    block.eval()
    x = torch.randn(1, 4, 5, 5)
    assert torch.allclose(block(x), torch.relu(block.bn2(block.conv2(
        torch.relu(block.bn1(block.conv1(x)))))))


def test_modern_cnn_is_resnet18_with_dropout_and_its_initialisation():
    torch.manual_seed(0)
    model = modern_cnn()
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    names = list(dict(model.named_children()))
    assert names[-2:] == ["dropout", "fc"]
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert (model.fc.bias == 0).all()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all((m.weight == 1).all() and (m.bias == 0).all() for m in bns)
    conv = model.stage3[0].conv1  # Kaiming normal, fan_out: std = sqrt(2 / (out * k * k))
    expected = (2 / (conv.out_channels * 9)) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.05)
    # same parameters as ResNet-18 for Fashion-MNIST: dropout has none
    assert count_params(model) == count_params(resnet18(num_classes=10, in_channels=1))
    assert model.eval()(torch.randn(2, 1, 96, 96)).shape == (2, 10)


def test_width_and_depth_are_configurable():
    narrow = resnet18(width_mult=0.5, num_classes=10)
    assert narrow.stage1[0].conv1.out_channels == 32 and narrow.fc.in_features == 256
    deep = ResNet(Residual, (1, 1, 1, 1, 1), num_classes=10, in_channels=1, width_mult=0.125)
    assert deep.fc.in_features == 128 and hasattr(deep, "stage5")
    assert sum(isinstance(m, Bottleneck) for m in resnet(101).modules()) == 33
    assert len(resnet_stage(Residual, 8, 8, 3)) == 3


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="use_1x1conv"):
        Residual(3, 6, use_1x1conv=False)
    with pytest.raises(ValueError, match="use_1x1conv"):
        Residual(3, 3, stride=2, use_1x1conv=False)
    with pytest.raises(ValueError, match="stride"):
        Residual(3, 3, stride=3)
    with pytest.raises(ValueError, match="ResNet-19"):
        resnet(19)
    with pytest.raises(ValueError, match="width_mult"):
        resnet18(width_mult=0)
    with pytest.raises(ValueError, match="at least one"):
        resnet_stage(Residual, 3, 3, 0)
    with pytest.raises(ValueError, match="dropout"):
        modern_cnn(dropout=1.0)


# --- the blocks' forward against references with the same weights ---------------------------

def _randomise(block):
    """Random weights and BN statistics, so that every layer and every ReLU matters."""
    torch.manual_seed(0)
    for m in block.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.3)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, std=0.5)
            m.running_mean.normal_(std=0.5)
            m.running_var.uniform_(0.5, 2.0)
    return block


def _conv_bn_ref(x, conv, bn, training):
    y = nn.functional.conv2d(x, conv.weight, None, conv.stride, conv.padding)
    mean, var = (y.mean((0, 2, 3)), y.var((0, 2, 3), unbiased=False)) if training else (
        bn.running_mean, bn.running_var)
    shape = (1, -1, 1, 1)
    return ((y - mean.view(shape)) / (var.view(shape) + bn.eps).sqrt() * bn.weight.view(shape)
            + bn.bias.view(shape))


def _bottleneck_ref(b, x, training):
    """He et al. (2016), Table 1 / Fig. 5 right, written out: ReLU after BN1 and BN2,
    none after BN3 before the addition, one after it."""
    y = torch.relu(_conv_bn_ref(x, b.conv1, b.bn1, training))
    y = torch.relu(_conv_bn_ref(y, b.conv2, b.bn2, training))
    y = _conv_bn_ref(y, b.conv3, b.bn3, training)
    s = x if b.shortcut is None else _conv_bn_ref(x, b.shortcut.conv, b.shortcut.bn, training)
    return torch.relu(y + s)


def _basic_ref(b, x, training):
    y = torch.relu(_conv_bn_ref(x, b.conv1, b.bn1, training))
    y = _conv_bn_ref(y, b.conv2, b.bn2, training)
    s = x if b.shortcut is None else _conv_bn_ref(x, b.shortcut.conv, b.shortcut.bn, training)
    return torch.relu(y + s)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("block, ref, args", [
    (Bottleneck, _bottleneck_ref, (16, 4)),             # identity shortcut
    (Bottleneck, _bottleneck_ref, (8, 4, 2)),           # projection, stride 2 on the 3x3
    (Residual, _basic_ref, (6, 6)),
    (Residual, _basic_ref, (4, 6, 2)),
])
def test_block_forward_equals_a_hand_written_reference(block, ref, args, training):
    b = _randomise(block(*args)).train(training)
    x = torch.randn(3, args[0], 8, 8)
    with torch.no_grad():
        expected = ref(b, x, training)
        got = b(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert 0.2 < float((got == 0).float().mean()) < 0.8   # the ReLUs cut, but not everything


@pytest.mark.parametrize("ours, theirs, args", [
    (Bottleneck, torchvision.models.resnet.Bottleneck, (8, 4, 2)),
    (Residual, torchvision.models.resnet.BasicBlock, (4, 6, 2)),
])
def test_block_forward_equals_torchvisions_with_the_same_weights(ours, theirs, args):
    b = _randomise(ours(*args)).eval()
    inplanes, planes, stride = args
    out = planes * ours.expansion
    down = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
    tv = theirs(inplanes, planes, stride, downsample=down).eval()
    state = {k.replace("shortcut.conv", "downsample.0").replace("shortcut.bn", "downsample.1"): v
             for k, v in b.state_dict().items()}
    tv.load_state_dict(state)
    x = torch.randn(2, inplanes, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(b(x), tv(x))


# --- whole networks against torchvision's, layer settings and names -------------------------

def _torchvision_state(model):
    """Our state dict under torchvision's names (stem -> conv1/bn1, stageN -> layerN,
    shortcut -> downsample)."""
    rename = [("stem.conv", "conv1"), ("stem.bn", "bn1"), ("shortcut.conv", "downsample.0"),
              ("shortcut.bn", "downsample.1"), ("stage", "layer")]
    state = {}
    for key, value in model.state_dict().items():
        for old, new in rename:
            key = key.replace(old, new)
        state[key] = value
    return state


def test_whole_network_forward_equals_torchvisions_with_the_same_weights():
    """ResNet-18 end to end (the stem, the stages, the head); the bottleneck block alone is
    compared with torchvision's above."""
    torch.manual_seed(0)
    ours = resnet18()
    theirs = torchvision.models.resnet18(weights=None)
    theirs.load_state_dict(_torchvision_state(ours))
    x = torch.randn(2, 3, 32, 32)   # 16 px after the stem's conv, 8 after its pool
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_every_layer_has_torchvisions_settings(arch):
    """Same multiset of convs, BNs, ReLUs (in-place, as torchvision's), pools and linears."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Linear)

    def layers(model):
        return Counter(repr(m) for m in model.modules() if isinstance(m, kinds))

    theirs = layers(getattr(torchvision.models, arch)(weights=None))
    assert layers(OURS[arch]()) == theirs
    assert theirs["ReLU(inplace=True)"] > 0


def test_parts_have_the_documented_names():
    assert list(dict(resnet18().named_children())) == [
        "stem", "stage1", "stage2", "stage3", "stage4", "pool", "flatten", "fc"]
    assert list(dict(resnet18(dropout=0.1).named_children()))[-3:] == ["flatten", "dropout", "fc"]
    assert list(dict(resnet_stem(3, 8).named_children())) == ["conv", "bn", "relu", "pool"]
    assert list(dict(resnet_stem(3, 8, small_input=True).named_children())) == [
        "conv", "bn", "relu"]


def test_small_input_stem_is_one_3x3_conv():
    stem = resnet_stem(1, 16, small_input=True)
    assert stem.conv.kernel_size == (3, 3) and stem.conv.stride == (1, 1)
    assert count_params(stem) == 3 * 3 * 1 * 16 + 2 * 16   # 3x3 weights, no bias; BN gamma, beta


def test_out_channels_is_what_the_classifier_sees():
    assert resnet50().out_channels == torchvision.models.resnet50(weights=None).fc.in_features
    assert resnet18(width_mult=0.25).out_channels == 128


def test_tiny_width_mult_keeps_at_least_one_channel_per_stage():
    model = ResNet(Residual, (1, 1), num_classes=3, in_channels=1, width_mult=0.005)
    # 64 * 0.005 = 0.32 and 128 * 0.005 = 0.64 both round to 0: clamped to 1 channel
    assert [model.stage1[0].conv1.out_channels, model.stage2[0].conv1.out_channels] == [1, 1]
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 3)


@pytest.mark.parametrize("block, tv_block", [
    (Residual, torchvision.models.resnet.BasicBlock),
    (Bottleneck, torchvision.models.resnet.Bottleneck),
])
def test_zero_init_residual_zeroes_the_same_bn_weights_as_torchvision(block, tv_block):
    ours = ResNet(block, (2, 1, 1, 1), zero_init_residual=True)
    theirs = torchvision.models.resnet.ResNet(tv_block, [2, 1, 1, 1], zero_init_residual=True)

    def zeroed(model):
        return [bool((m.weight == 0).all()) for m in model.modules()
                if isinstance(m, nn.BatchNorm2d)]

    assert zeroed(ours) == zeroed(theirs)
    assert sum(zeroed(ours)) == 5   # one BN per block


# --- the builders: depths from the paper's table, keyword arguments passed on ---------------

DEEP = {"resnet101": (resnet101, torchvision.models.ResNet101_Weights.IMAGENET1K_V1, (3, 4, 23, 3)),
        "resnet152": (resnet152, torchvision.models.ResNet152_Weights.IMAGENET1K_V1, (3, 8, 36, 3))}


@pytest.mark.parametrize("arch", DEEP)
def test_deep_resnets_have_torchvisions_parameter_count_and_the_papers_blocks(arch):
    builder, weights, blocks = DEEP[arch]
    with torch.device("meta"):   # shapes only: nothing is allocated or initialised
        ours, theirs = builder(), getattr(torchvision.models, arch)(weights=None)
    assert count_params(ours) == count_params(theirs) == weights.meta["num_params"]
    # Table 1 of He et al. (2015): bottleneck blocks per stage
    assert tuple(len(getattr(ours, f"stage{i}")) for i in (1, 2, 3, 4)) == blocks
    assert all(isinstance(b, Bottleneck) for i in (1, 2, 3, 4) for b in getattr(ours, f"stage{i}"))


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_builders_pass_keyword_arguments_on(arch):
    ours = {**OURS, **{k: v[0] for k, v in DEEP.items()}}[arch]
    with torch.device("meta"):
        model = ours(num_classes=10, zero_init_residual=True)
        theirs = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    assert model.fc.out_features == 10
    assert count_params(model) == count_params(theirs)


def test_resnet_without_a_depth_is_resnet18():
    assert count_params(resnet()) == PUBLISHED_PARAMS["resnet18"]
    assert sum(isinstance(m, Residual) for m in resnet().modules()) == 8


def test_stage_defaults_keep_the_resolution_and_add_the_shortcut():
    """With every block's last gamma at 0 a residual stage is the identity on x >= 0;
    a stride-2 default would halve the image, residual=False would output zeros."""
    stage = resnet_stage(Residual, 8, 8, 2)
    for b in stage:
        nn.init.zeros_(b.bn2.weight)
    x = torch.relu(torch.randn(2, 8, 6, 6))
    with torch.no_grad():
        torch.testing.assert_close(stage.eval()(x), x)


# --- options and messages that the tests above do not reach --------------------------------

def test_bottleneck_options_plain_and_forced_projection():
    assert Bottleneck(16, 4, residual=False).shortcut is None
    assert Bottleneck(8, 4, stride=2, residual=False).shortcut is None   # not even a projection
    forced = Bottleneck(16, 4, use_1x1conv=True)   # shapes match, projection asked for
    assert forced.shortcut is not None and forced.shortcut.conv.kernel_size == (1, 1)
    with pytest.raises(ValueError, match="use_1x1conv"):
        Bottleneck(8, 4, use_1x1conv=False)   # 8 -> 16 channels cannot be added as they are


def test_error_messages_say_what_to_do():
    with pytest.raises(ValueError, match=r"3 -> 6 channels with stride 1, so the input cannot "
                       r"be added as it is: use_1x1conv must be True \(or None to decide "
                       r"automatically\)$"):
        Residual(3, 6, use_1x1conv=False)
    with pytest.raises(ValueError,
                       match="^layers must list the number of blocks of at least one stage$"):
        ResNet(Residual, ())


def test_linear_std_draws_classifier_weights_around_zero():
    torch.manual_seed(0)
    fc = modern_cnn().fc   # 10 x 512 weights from N(0, 0.01^2): the mean's s.e. is 1.4e-4
    assert abs(fc.weight.mean().item()) < 1e-3
    assert fc.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_init_weights_zeroes_a_conv_bias_and_scales_by_fan_out():
    """``_init_weights`` is shared (cifar_resnet uses it): a conv with a bias gets bias 0."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 64, 3)
    _init_weights(conv)
    assert (conv.bias == 0).all()
    assert conv.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
