import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.mobilenet import (ConvBNAct, DepthwiseSeparableConv, InvertedResidual,
                                      MobileNetV1, SqueezeExcitation, make_divisible,
                                      mobilenet_v1, mobilenet_v2, mobilenet_v2_fashion,
                                      mobilenet_v3_large, mobilenet_v3_small,
                                      separable_cost_ratio)
from cnnbook.profiling import count_macs, count_params

OURS = {"mobilenet_v2": mobilenet_v2, "mobilenet_v3_small": mobilenet_v3_small,
        "mobilenet_v3_large": mobilenet_v3_large}
WEIGHTS = {"mobilenet_v2": torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1,
           "mobilenet_v3_small": torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1,
           "mobilenet_v3_large": torchvision.models.MobileNet_V3_Large_Weights.IMAGENET1K_V1}
PUBLISHED_PARAMS = {"mobilenet_v2": 3_504_872, "mobilenet_v3_small": 2_542_856,
                    "mobilenet_v3_large": 5_483_032}


@pytest.mark.parametrize("arch", OURS)
def test_default_parameter_counts_are_torchvisions(arch):
    ours = count_params(OURS[arch]())
    theirs = count_params(getattr(torchvision.models, arch)(weights=None))
    assert ours == theirs == PUBLISHED_PARAMS[arch] == WEIGHTS[arch].meta["num_params"]


@pytest.mark.parametrize("arch", OURS)
@pytest.mark.parametrize("width", [0.5, 0.75, 1.4])
def test_parameter_counts_match_torchvision_for_every_width(arch, width):
    ours = OURS[arch](width_mult=width, num_classes=10)
    theirs = getattr(torchvision.models, arch)(weights=None, width_mult=width, num_classes=10)
    assert count_params(ours) == count_params(theirs)


@pytest.mark.parametrize("arch", OURS)
def test_macs_match_torchvisions_published_gflops(arch):
    macs = count_macs(OURS[arch](), (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(WEIGHTS[arch].meta["_ops"], rel=0.01)


@pytest.mark.parametrize("alpha, params_m, macs_m", [
    (1.0, 4.2, 569), (0.75, 2.6, 325), (0.5, 1.3, 149)])  # Howard et al. 2017, Table 6
def test_v1_matches_the_paper(alpha, params_m, macs_m):
    model = mobilenet_v1(alpha)
    assert count_params(model) / 1e6 == pytest.approx(params_m, abs=0.05)  # paper rounds to 0.1M
    assert count_macs(model, (1, 3, 224, 224)) / 1e6 == pytest.approx(macs_m, rel=0.01)


def test_v1_resolution_multiplier_scales_macs_quadratically():
    model = mobilenet_v1()
    macs = {r: count_macs(model, (1, 3, r, r)) for r in (224, 128)}
    assert macs[128] / 1e6 == pytest.approx(186, rel=0.01)  # the paper's Table 7
    assert macs[128] / macs[224] == pytest.approx((128 / 224) ** 2, rel=0.02)


def test_v1_has_28_layers_with_relu6():
    model = mobilenet_v1()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 28
    assert sum(isinstance(m, DepthwiseSeparableConv) for m in model.modules()) == 13
    assert any(isinstance(m, nn.ReLU6) for m in model.modules())
    assert not any(type(m) is nn.ReLU for m in model.modules())


@pytest.mark.parametrize("n, k", [(64, 3), (256, 3), (128, 5)])
def test_depthwise_separable_saving_is_one_over_n_plus_one_over_k_squared(n, k):
    size = (1, 32, 16, 16)
    standard = nn.Conv2d(32, n, k, padding=k // 2, bias=False)
    separable = DepthwiseSeparableConv(32, n, kernel_size=k)
    ratio = count_macs(separable, size) / count_macs(standard, size)
    assert ratio == pytest.approx(separable_cost_ratio(n, k)) == pytest.approx(1 / n + 1 / k ** 2)
    assert separable(torch.randn(size)).shape == standard(torch.randn(size)).shape


@pytest.mark.parametrize("builder", [mobilenet_v1, mobilenet_v2, mobilenet_v3_small,
                                     mobilenet_v3_large])
def test_output_shapes_for_any_input_channels_and_classes(builder):
    model = builder(width_mult=0.5, in_channels=1, num_classes=7) if builder is not mobilenet_v1 \
        else builder(0.5, in_channels=1, num_classes=7)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 7)


def test_fashion_variant_handles_native_and_d2l_resolutions():
    small = mobilenet_v2_fashion(width_mult=0.5, small_input=True).eval()
    assert small(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert small.features.stem.conv.stride == (1, 1)
    big = mobilenet_v2_fashion().eval()
    assert big(torch.randn(1, 1, 96, 96)).shape == (1, 10)
    assert big.features.stem.conv.stride == (2, 2)


def test_depth_multiplier_changes_the_number_of_blocks():
    def blocks(model, kind):
        return sum(isinstance(m, kind) for m in model.modules())
    assert blocks(mobilenet_v2(), InvertedResidual) == 17
    assert blocks(mobilenet_v2(depth_mult=0.5), InvertedResidual) == 11  # ceil(n/2) per stage: 1+1+2+2+2+2+1
    assert blocks(mobilenet_v1(depth_mult=2), DepthwiseSeparableConv) == 26
    deep = mobilenet_v3_small(depth_mult=2.0, num_classes=3)
    assert blocks(deep, InvertedResidual) == 2 * blocks(mobilenet_v3_small(), InvertedResidual)
    # extra blocks keep the resolution: the final map is still 224 / 32 = 7
    assert deep.features(torch.randn(1, 3, 224, 224)).shape[-1] == 7
    with pytest.raises(ValueError):
        mobilenet_v2(depth_mult=0)


def test_inverted_residual_is_linear_and_has_a_shortcut_only_when_shapes_match():
    block = InvertedResidual(16, 16, 1, expanded=96)
    assert block.use_residual and list(block.block)[0].act.__class__ is nn.ReLU6
    assert not hasattr(block.block.project, "act")  # the linear bottleneck
    assert not InvertedResidual(16, 24, 1, expanded=96).use_residual
    assert not InvertedResidual(16, 16, 2, expanded=96).use_residual
    assert "expand" not in dict(InvertedResidual(16, 16, 1, expanded=16).block.named_children())
    x = torch.randn(2, 16, 8, 8)
    block.eval()
    assert torch.allclose(block(x), x + block.block(x))
    with pytest.raises(ValueError):
        InvertedResidual(16, 16, 3, expanded=96)


def test_v3_uses_hardswish_and_squeeze_excitation():
    model = mobilenet_v3_large()
    kinds = {type(m) for m in model.modules()}
    assert {nn.Hardswish, SqueezeExcitation, nn.Hardsigmoid} <= kinds
    assert sum(isinstance(m, SqueezeExcitation) for m in model.modules()) == 8
    assert sum(isinstance(m, SqueezeExcitation) for m in mobilenet_v3_small().modules()) == 9


def test_squeeze_excitation_only_rescales_channels():
    se = SqueezeExcitation(8, 4)
    x = torch.randn(2, 8, 5, 5)
    y = se(x)
    scale = y / x
    assert y.shape == x.shape
    assert (scale >= 0).all() and (scale <= 1 + 1e-6).all()
    # one factor per (image, channel): constant over the spatial positions
    assert torch.allclose(scale, scale[..., :1, :1].expand_as(scale), atol=1e-5)


def test_building_blocks_and_helpers():
    assert [make_divisible(v) for v in (32 * 0.25, 24 * 0.5, 1280 * 1.4, 3)] == [8, 16, 1792, 8]
    layer = ConvBNAct(4, 4, 3, groups=4)
    assert layer.conv.weight.shape == (4, 1, 3, 3) and layer.conv.bias is None
    assert separable_cost_ratio(1024, 3) == pytest.approx(1 / 1024 + 1 / 9)
    with pytest.raises(ValueError):
        MobileNetV1(alpha=0)
