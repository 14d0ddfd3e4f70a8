import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnbook.models.convnext import (DESIGN_STEPS, ConvNeXt, ConvNeXtBlock, LayerNorm2d,
                                     StepBlock, StepNetwork, convnext, convnext_cifar,
                                     convnext_tiny, design_step_config,
                                     design_step_network,
                                     from_torchvision_state_dict)
from cnnbook.profiling import count_macs, count_params


def randomise(model, seed=0):
    """Every weight (and layer scale) visibly non-zero, so each block changes the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            if p.ndim == 1 and name.endswith("weight"):   # norm scales around 1
                p.add_(1.0)
    return model


def test_layer_norm_2d_normalises_each_pixel_over_channels():
    torch.manual_seed(0)
    ln = LayerNorm2d(6, eps=1e-6)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 2)
        ln.bias.normal_()
    x = torch.randn(2, 6, 3, 4) * 3 + 1
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    ref = (x - mean) / torch.sqrt(var + 1e-6) * ln.weight.view(1, -1, 1, 1) + ln.bias.view(1, -1, 1, 1)
    assert torch.allclose(ln(x), ref, atol=1e-5)
    # torchvision's LayerNorm2d is the same
    from torchvision.models.convnext import LayerNorm2d as TVLayerNorm2d
    tv = TVLayerNorm2d(6, eps=1e-6)
    tv.load_state_dict(ln.state_dict())
    assert torch.allclose(ln(x), tv(x), atol=1e-6)


def test_block_written_out_with_functional_ops():
    torch.manual_seed(0)
    blk = ConvNeXtBlock(8, layer_scale=0.5).eval()
    x = torch.randn(2, 8, 9, 9)
    y = F.conv2d(x, blk.dwconv.weight, blk.dwconv.bias, padding=3, groups=8)
    y = y.permute(0, 2, 3, 1)
    y = F.layer_norm(y, (8,), blk.norm.weight, blk.norm.bias, 1e-6)
    y = F.linear(F.gelu(F.linear(y, blk.pwconv1.weight, blk.pwconv1.bias)), blk.pwconv2.weight,
                 blk.pwconv2.bias)
    ref = x + (0.5 * y).permute(0, 3, 1, 2)
    assert torch.allclose(blk(x), ref, atol=1e-5)
    assert blk.dwconv.weight.shape == (8, 1, 7, 7) and blk.pwconv1.out_features == 32


def test_layer_scale_starts_the_block_near_the_identity_and_can_be_removed():
    x = torch.randn(1, 16, 5, 5)
    blk = ConvNeXtBlock(16)
    assert torch.allclose(blk(x), x, atol=1e-4)
    assert ConvNeXtBlock(16, layer_scale=0).gamma is None


def test_stochastic_depth_drops_whole_branches_in_training_only():
    torch.manual_seed(0)
    blk = ConvNeXtBlock(4, drop_path=0.5, layer_scale=1.0)
    x = torch.randn(64, 4, 3, 3)
    blk.train()
    y = blk(x)
    same = [(torch.allclose(y[i], x[i])) for i in range(64)]
    assert 10 < sum(same) < 54           # about half the samples skip the branch
    blk.eval()
    assert not any(torch.allclose(blk(x)[i], x[i]) for i in range(64))


def test_convnext_tiny_parameters_equal_torchvisions():
    ours, theirs = convnext_tiny(), torchvision.models.convnext_tiny()
    assert count_params(ours) == count_params(theirs) == 28_589_128
    assert count_params(ours) == torchvision.models.ConvNeXt_Tiny_Weights.IMAGENET1K_V1.meta["num_params"]


def test_convnext_tiny_with_torchvisions_weights_gives_the_same_outputs():
    torch.manual_seed(0)
    tv = torchvision.models.convnext_tiny()
    randomise(tv)
    with torch.no_grad():   # layer scale well away from 1e-6, so every block counts
        for name, p in tv.named_parameters():
            if name.endswith("layer_scale"):
                p.uniform_(0.1, 0.5)
    tv.eval()
    ours = convnext_tiny().eval()
    result = ours.load_state_dict(from_torchvision_state_dict(tv.state_dict()), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref, got = tv(x), ours(x)
    assert ref.abs().max() > 1e-3
    assert torch.allclose(got, ref, atol=1e-4 * ref.abs().max().item())


def test_small_torchvision_convnext_maps_too():
    from torchvision.models.convnext import CNBlockConfig
    settings = [CNBlockConfig(16, 32, 2), CNBlockConfig(32, 48, 1), CNBlockConfig(48, None, 2)]
    tv = torchvision.models.convnext.ConvNeXt(settings, num_classes=5, layer_scale=0.3).eval()
    ours = ConvNeXt((16, 32, 48), (2, 1, 2), num_classes=5).eval()
    ours.load_state_dict(from_torchvision_state_dict(tv.state_dict()), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-5)


def test_mapping_refuses_unknown_keys():
    with pytest.raises(KeyError, match="unexpected"):
        from_torchvision_state_dict({"features.1.0.block.9.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="unexpected"):
        from_torchvision_state_dict({"head.weight": torch.zeros(1)})


def test_cifar_variant_shapes_and_stochastic_depth_rule():
    model = convnext_cifar(drop_path=0.3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    rates = [m.drop_path.p if hasattr(m.drop_path, "p") else 0.0
             for m in model.modules() if isinstance(m, ConvNeXtBlock)]
    assert rates == pytest.approx([0.3 * i / 5 for i in range(6)])
    with pytest.raises(ValueError, match="same"):
        ConvNeXt((16, 32), (1,))
    with pytest.raises(ValueError, match="no ConvNeXt"):
        convnext("huge")


def test_design_steps_start_at_resnet50_and_end_at_convnext_tiny():
    first = design_step_network(0)
    assert count_params(first) == count_params(torchvision.models.resnet50()) == 25_557_032
    assert count_macs(first) / 1e9 == pytest.approx(4.1, abs=0.05)   # the paper's 4.1 GFLOPs
    last = design_step_network(len(DESIGN_STEPS) - 1)
    assert count_params(last) == 28_589_128
    with pytest.raises(ValueError, match="step"):
        design_step_network(len(DESIGN_STEPS))


def test_design_step_network_runs_at_every_step():
    for k in range(len(DESIGN_STEPS) - 1):
        config = design_step_config(k)   # the same design, 8x thinner (fast to build)
        config["widths"] = tuple(w // 8 for w in config.get("widths", (256, 512, 1024, 2048)))
        config["stem_channels"] = config.get("stem_channels", 64) // 8
        net = StepNetwork(num_classes=3, **config).eval()
        with torch.no_grad():
            assert net(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def test_step_block_as_a_resnet_bottleneck_equals_torchvisions():
    torch.manual_seed(0)
    from torchvision.models.resnet import Bottleneck
    down = nn.Sequential(nn.Conv2d(32, 64, 1, 2, bias=False), nn.BatchNorm2d(64))
    tv = Bottleneck(32, 16, stride=2, downsample=down).eval()
    ours = StepBlock(32, 64, 16, stride=2).eval()
    tv_params = list(tv.parameters())
    ours_params = list(ours.parameters())
    assert [p.shape for p in tv_params] == [p.shape for p in ours_params]
    with torch.no_grad():
        for a, b in zip(ours_params, tv_params):
            b.normal_()
            a.copy_(b)
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-4)


def test_step_block_in_convnext_order_has_one_norm_and_one_activation():
    blk = StepBlock(8, 8, 32, kernel_size=7, depthwise=True, dw_first=True, norm="ln",
                    norms="one", act="gelu", acts="one")
    kinds = [type(m).__name__ for m in blk.branch]
    assert kinds == ["Conv2d", "LayerNorm2d", "Conv2d", "GELU", "Conv2d"]
    assert blk.branch.spatial.groups == 8 and blk.branch.spatial.kernel_size == (7, 7)
    with pytest.raises(ValueError, match="unknown"):
        StepBlock(8, 8, 8, norm="gn")


def test_design_path_has_the_papers_flops_per_step():
    # Liu et al. (2022), Figure 2: GFLOPs (multiply-adds) of each step at 224 px
    paper = [4.1, 4.5, 4.4, 2.4, 5.3, 4.6, 4.1, 4.2, 4.2, 4.2, 4.2, 4.2, 4.5]
    assert len(paper) == len(DESIGN_STEPS)
    for k, want in enumerate(paper):
        with torch.device("meta"):
            net = design_step_network(k)
        assert count_macs(net) / 1e9 == pytest.approx(want, abs=0.06), DESIGN_STEPS[k][0]
