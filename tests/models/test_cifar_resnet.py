import pytest
import torch
from torch import nn

from cnnbook.models.cifar_resnet import (BasicBlock, CifarResNet, ResNet9, ZeroPadShortcut,
                                         cifar_resnet, group_norm, resnet9, resnet20, resnet56)
from cnnbook.models.resnet import Residual
from cnnbook.profiling import count_macs, count_params

# Parameters with the paper's option-A shortcuts, as published in He et al. (2016), Table 6
# (0.27 M, 0.46 M, 0.66 M, 0.85 M, 1.7 M) and exactly by the widely used reference
# implementation (github.com/akamaster/pytorch_resnet_cifar10: 269,722 for ResNet-20, ...).
EXACT_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}
PAPER_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}
# Multiply-adds at 32 px as quoted by the pruning literature (e.g. ResNet-56 125.49 M,
# ResNet-110 252.89 M FLOPs in He et al. 2018 "Soft filter pruning"; ResNet-20 40.55 M)
PUBLISHED_MACS_M = {20: 40.55, 56: 125.49, 110: 252.89}


@pytest.mark.parametrize("depth", EXACT_PARAMS)
def test_parameter_counts_match_the_paper(depth):
    n = count_params(cifar_resnet(depth))
    assert n == EXACT_PARAMS[depth]
    assert float(f"{n / 1e6:.2g}") == PAPER_PARAMS_M[depth]  # the paper gives 2 digits


@pytest.mark.parametrize("depth", PUBLISHED_MACS_M)
def test_multiply_adds_match_the_literature(depth):
    macs = count_macs(cifar_resnet(depth), (1, 3, 32, 32))
    assert macs / 1e6 == pytest.approx(PUBLISHED_MACS_M[depth], rel=0.002)


def test_multiply_adds_by_hand_for_resnet20():
    """stem + 3 stages of 3 blocks (two 3x3 convs each) + fc, counted from the shapes."""
    conv = lambda cin, cout, px: cin * cout * 9 * px * px  # noqa: E731
    macs = conv(3, 16, 32) + 6 * conv(16, 16, 32)
    macs += conv(16, 32, 16) + 5 * conv(32, 32, 16)
    macs += conv(32, 64, 8) + 5 * conv(64, 64, 8) + 64 * 10
    assert count_macs(resnet20(), (1, 3, 32, 32)) == macs


def test_option_b_adds_two_1x1_convs_and_their_norms():
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert count_params(resnet20(shortcut="B")) == EXACT_PARAMS[20] + extra


def test_shapes_and_stage_resolutions():
    model = resnet20().eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)
    y = model.stem(x)
    assert y.shape == (2, 16, 32, 32)
    for stage, (c, px) in zip(("stage1", "stage2", "stage3"), ((16, 32), (32, 16), (64, 8))):
        y = getattr(model, stage)(y)
        assert y.shape == (2, c, px, px)
    assert model[:2](x).shape == (2, 16, 32, 32)  # slicing gives a plain Sequential


def test_width_multiplier_and_classes():
    model = resnet20(width_mult=2, num_classes=100)
    assert model.out_channels == 128 and model.fc.out_features == 100
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 100)
    assert model.stage1[0].conv1.out_channels == 32
    with pytest.raises(ValueError, match="width_mult"):
        resnet20(width_mult=0)


def test_bad_depth_is_a_clear_error():
    with pytest.raises(ValueError, match="6n"):
        cifar_resnet(18)
    assert len(cifar_resnet(26).stage1) == 4  # any 6n + 2 works


def test_zero_pad_shortcut_is_subsample_then_zeros():
    x = torch.randn(2, 4, 6, 6)
    y = ZeroPadShortcut(4, 8, 2)(x)
    assert y.shape == (2, 8, 3, 3)
    torch.testing.assert_close(y[:, :4], x[:, :, ::2, ::2])
    assert not y[:, 4:].any()
    with pytest.raises(ValueError):
        ZeroPadShortcut(8, 4, 1)


def test_block_is_the_course_residual_and_checks_its_options():
    b = BasicBlock(16, 32, stride=2)
    assert isinstance(b, Residual) and isinstance(b.shortcut, ZeroPadShortcut)
    assert BasicBlock(16, 16).shortcut is None
    with pytest.raises(ValueError, match="shortcut"):
        BasicBlock(16, 16, shortcut="C")
    with pytest.raises(ValueError, match="stride"):
        BasicBlock(16, 16, stride=3)


def test_norm_layer_swaps_batch_norm_for_group_norm():
    model = resnet20(norm_layer=group_norm(8))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    gns = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert len(gns) == 19 and {g.num_groups for g in gns} == {8}
    assert count_params(model) == EXACT_PARAMS[20]  # same affine parameters as BN
    # group norm does not depend on the batch: one image alone gives the same output
    model.train()
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(model(x)[:1], model(x[:1]), atol=1e-5, rtol=1e-4)
    assert group_norm(32)(24).num_groups == 24 and group_norm(32)(48).num_groups == 24


def test_attention_is_inserted_before_the_addition_of_every_block():
    calls = []

    class Probe(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.channels = channels

        def forward(self, x):
            calls.append(x.shape[1])
            return torch.zeros_like(x)  # kills the residual branch

    model = resnet20(attention=Probe).eval()
    model(torch.randn(1, 3, 32, 32))
    assert calls == [16] * 3 + [32] * 3 + [64] * 3
    # with the residual branch zeroed a stride-1 block is relu(identity)
    block = model.stage1[1]
    x = torch.randn(1, 16, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_block_argument_swaps_the_block():
    class Plain(nn.Module):
        expansion = 1

        def __init__(self, cin, cout, stride=1, residual=True, extra=0):
            super().__init__()
            self.extra = extra
            self.conv = nn.Conv2d(cin, cout, 3, stride, 1)

        def forward(self, x):
            return self.conv(x)

    model = CifarResNet(2, block=Plain, block_kwargs=dict(extra=5))
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert all(b.extra == 5 for b in model.stage2)


def test_zero_init_residual_starts_blocks_as_identity():
    model = resnet20(zero_init_residual=True)
    assert all(not b.bn2.weight.any() for s in ("stage1", "stage2", "stage3")
               for b in getattr(model, s))


def test_resnet9_is_pages_net():
    model = resnet9()
    assert count_params(model) == 6_573_120  # "6.5M parameters" (Page 2018, myrtle.ai)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert isinstance(model.pool, nn.AdaptiveMaxPool2d) and model.fc.bias is None
    x = torch.randn(1, 3, 32, 32)
    for name, (c, px) in zip(("layer1", "layer2", "layer3"), ((128, 16), (256, 8), (512, 4))):
        x = getattr(model, name)(model.prep(x) if name == "layer1" else x)
        assert x.shape == (1, c, px, px)
    small = ResNet9((16, 32, 64, 128), residual_layers=(1, 2, 3))
    assert hasattr(small.layer2, "residual")
    with pytest.raises(ValueError):
        ResNet9((16, 32, 64))


@pytest.mark.parametrize("build", [lambda: resnet20(), lambda: resnet9((16, 32, 64, 64)),
                                   lambda: resnet20(norm_layer=group_norm(4), shortcut="B")])
def test_one_training_step_reduces_the_loss_on_a_tiny_batch(build):
    torch.manual_seed(0)
    model = build()
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))  # small: the nets pool globally
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
