import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.resnet import (Bottleneck, Residual, ResNet, modern_cnn, resnet,
                                   resnet18, resnet34, resnet50, resnet_stage, resnet_stem)
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
