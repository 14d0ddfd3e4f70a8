import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.inspect import capture
from cnnbook.models.attention import (CBAM, AttentionResidual, ChannelAttention, SpatialAttention,
                                      SqueezeExcite, attention_factory, hidden_channels)
from cnnbook.models.mobilenet import SqueezeExcitation
from cnnbook.models.resnet import Residual


@pytest.fixture
def x():
    torch.manual_seed(0)
    return torch.randn(3, 32, 7, 9) * 2 + 0.5


@pytest.mark.parametrize("make", [lambda: SqueezeExcite(32), lambda: ChannelAttention(32),
                                  lambda: SpatialAttention(), lambda: CBAM(32)])
def test_shapes_and_gradients(make, x):
    module = make()
    xg = x.clone().requires_grad_()
    y = module(xg)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert xg.grad is not None and all(p.grad is not None for p in module.parameters())


@pytest.mark.parametrize("make,shape", [(lambda: SqueezeExcite(32), (3, 32, 1, 1)),
                                        (lambda: ChannelAttention(32), (3, 32, 1, 1)),
                                        (lambda: SpatialAttention(), (3, 1, 7, 9))])
def test_weights_lie_in_the_open_unit_interval_and_scale_the_input(make, shape, x):
    module = make()
    w = module.weights(x)
    assert w.shape == shape
    assert (w > 0).all() and (w < 1).all()
    torch.testing.assert_close(module(x), x * w)


def test_settings_of_the_sources():
    ca = ChannelAttention(64)
    assert ca.mlp[0].out_channels == 4 == hidden_channels(64, 16)  # reduction 16
    assert hidden_channels(8, 16) == 1                               # never zero units
    sa = SpatialAttention()
    assert sa.conv.kernel_size == (7, 7) and sa.conv.in_channels == 2 and sa.conv.out_channels == 1
    with pytest.raises(ValueError, match="odd"):
        SpatialAttention(4)
    cbam = CBAM(64)
    assert [name for name, _ in cbam.named_children()] == ["channel", "spatial"]


def test_channel_mlp_is_shared_between_avg_and_max_paths(x):
    ca = ChannelAttention(32)
    mlps = [m for m in ca.modules() if isinstance(m, nn.Sequential)]
    assert len(mlps) == 1                      # one MLP ...
    calls = []
    ca.mlp.register_forward_hook(lambda m, i, o: calls.append(i[0].clone()))
    ca(x)
    assert len(calls) == 2                     # ... applied twice: to the avg and the max descriptor
    torch.testing.assert_close(calls[0], x.mean((2, 3), keepdim=True))
    torch.testing.assert_close(calls[1], x.amax((2, 3), keepdim=True))
    n_params = sum(p.numel() for p in ca.parameters())
    assert n_params == 32 * 2 + 2 + 2 * 32 + 32  # the parameters of a single 32-2-32 MLP


def _mlp_functional(mlp, v):
    return F.conv2d(F.relu(F.conv2d(v, mlp[0].weight, mlp[0].bias)), mlp[2].weight, mlp[2].bias)


def test_cbam_equals_an_independent_computation(x):
    torch.manual_seed(1)
    cbam = CBAM(32)
    with torch.no_grad():
        for p in cbam.parameters():
            p.normal_(0, 0.5)
    mlp, conv = cbam.channel.mlp, cbam.spatial.conv
    avg, mx = x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    channel_w = torch.sigmoid(_mlp_functional(mlp, avg) + _mlp_functional(mlp, mx))
    x1 = x * channel_w
    maps = torch.stack([x1.mean(1), x1.max(1).values], dim=1)
    spatial_w = torch.sigmoid(F.conv2d(maps, conv.weight, conv.bias, padding=3))
    torch.testing.assert_close(cbam(x), x1 * spatial_w)
    # the gates are readable with a forward hook
    got = capture(cbam, x, ["channel.gate", "spatial.gate"])
    torch.testing.assert_close(got["spatial.gate"], spatial_w)
    torch.testing.assert_close(got["channel.gate"], channel_w)


def test_se_equals_mobilenets_squeeze_excitation_with_a_sigmoid_gate(x):
    torch.manual_seed(2)
    ours = SqueezeExcite(32, reduction=16)
    theirs = SqueezeExcitation(32, 2, gate=nn.Sigmoid)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.5)
        theirs.fc1.weight.copy_(ours.mlp[0].weight)
        theirs.fc1.bias.copy_(ours.mlp[0].bias)
        theirs.fc2.weight.copy_(ours.mlp[2].weight)
        theirs.fc2.bias.copy_(ours.mlp[2].bias)
    xg1, xg2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(xg1), theirs(xg2)
    torch.testing.assert_close(y1, y2)
    y1.square().sum().backward()
    y2.square().sum().backward()
    torch.testing.assert_close(xg1.grad, xg2.grad)
    # SE is CBAM's channel attention without the max path
    ca = ChannelAttention(32)
    ca.mlp.load_state_dict(ours.mlp.state_dict())
    with torch.no_grad():
        expected = torch.sigmoid(ca.mlp(x.mean((2, 3), keepdim=True)) +
                                 ca.mlp(x.amax((2, 3), keepdim=True)))
    torch.testing.assert_close(ca.weights(x), expected)


def test_attention_residual_puts_attention_before_the_addition(x):
    torch.manual_seed(3)
    block = AttentionResidual(32, 64, stride=2, attention="cbam").eval()
    plain = Residual(32, 64, stride=2).eval()
    missing, unexpected = plain.load_state_dict(block.state_dict(), strict=False)
    assert not missing and all(k.startswith("attention.") for k in unexpected)
    with torch.no_grad():
        branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
        expected = torch.relu(block.attention(branch) + block.shortcut(x))
        torch.testing.assert_close(block(x), expected)
        assert block(x).shape == (3, 64, 4, 5)
        # with no attention it is exactly ResNet's basic block
        bare = AttentionResidual(32, 64, stride=2, attention=None).eval()
        bare.load_state_dict(plain.state_dict())
        torch.testing.assert_close(bare(x), plain(x))
    assert isinstance(AttentionResidual(32, 32, attention="se").attention, SqueezeExcite)
    assert isinstance(AttentionResidual(32, 32, attention=lambda c: CBAM(c, 8)).attention, CBAM)


def test_attention_factory():
    assert attention_factory(None) is None
    assert isinstance(attention_factory("cbam")(64), CBAM)
    assert attention_factory("se", reduction=4)(64).mlp[0].out_channels == 16
    assert isinstance(attention_factory("spatial")(64), SpatialAttention)
    with pytest.raises(ValueError, match="one of"):
        attention_factory("self")


def test_factories_plug_into_the_cifar_resnet():
    cifar_resnet = pytest.importorskip("cnnbook.models.cifar_resnet")
    net = cifar_resnet.resnet20(attention=attention_factory("cbam"))
    assert sum(isinstance(m, CBAM) for m in net.modules()) == 9
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("make", [lambda: SqueezeExcite(8, 4), lambda: ChannelAttention(8, 4),
                                  lambda: SpatialAttention(3), lambda: CBAM(8, 4, 3)])
def test_gradients_match_finite_differences(make):
    """Not only "a gradient exists": autograd's gradients of input and every parameter agree
    with central differences, in double precision."""
    torch.manual_seed(0)
    module = make().double()
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in module.named_parameters()]
    x = torch.randn(1, 8, 3, 3, dtype=torch.double, requires_grad=True)   # small: gradcheck perturbs each value

    def f(x, *ps):
        return torch.func.functional_call(module, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5)
