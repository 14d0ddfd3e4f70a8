import pytest
import torch
from torch import nn

from cnnbook.models.batchnorm import BatchNorm, BNLeNet, batch_norm, bn_lenet
from cnnbook.profiling import count_params


def _pair(num_features, num_dims, **kwargs):
    """Our BatchNorm and PyTorch's, with the same (non-trivial) gamma and beta."""
    ours = BatchNorm(num_features, num_dims, **kwargs)
    torch_cls = nn.BatchNorm2d if num_dims == 4 else nn.BatchNorm1d
    theirs = torch_cls(num_features, **kwargs)
    with torch.no_grad():
        theirs.weight.copy_(torch.linspace(0.5, 2.0, num_features))
        theirs.bias.copy_(torch.linspace(-1.0, 1.0, num_features))
        ours.gamma.copy_(theirs.weight)
        ours.beta.copy_(theirs.bias)
    return ours, theirs


SHAPES = {2: (16, 5), 3: (8, 5, 7), 4: (6, 5, 4, 3)}


@pytest.mark.parametrize("num_dims", [2, 3, 4])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_equal_to_pytorch_in_training_and_evaluation(num_dims, momentum):
    torch.manual_seed(0)
    ours, theirs = _pair(5, num_dims, momentum=momentum)
    for step in range(3):  # running statistics accumulate over several batches
        x = torch.randn(SHAPES[num_dims]) * 3 + step
        torch.testing.assert_close(ours(x), theirs(x))
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)
        assert ours.num_batches_tracked == theirs.num_batches_tracked == step + 1
    ours.eval(), theirs.eval()
    x = torch.randn(SHAPES[num_dims])
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours.running_mean, theirs.running_mean)  # eval: no update


def test_running_variance_uses_the_unbiased_batch_variance():
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])  # biased var 3.5, unbiased 14/3
    y, mean, var = batch_norm(x, None, None, torch.zeros(1), torch.ones(1), training=True,
                              momentum=1.0)
    assert mean.item() == pytest.approx(3.0)
    assert var.item() == pytest.approx(14 / 3)
    # ... while the batch itself is normalised with the biased variance
    assert y.flatten().tolist() == pytest.approx(((x - 3) / (3.5 + 1e-5) ** 0.5).flatten().tolist())
    assert y.var(unbiased=False).item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_gradients_equal_to_pytorch(num_dims):
    torch.manual_seed(1)
    ours, theirs = _pair(5, num_dims)
    x = torch.randn(SHAPES[num_dims], dtype=torch.float64)
    ours.double(), theirs.double()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    target = torch.randn_like(x)
    ((ours(xa) - target) ** 2).sum().backward()
    ((theirs(xb) - target) ** 2).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(ours.gamma.grad, theirs.weight.grad)
    torch.testing.assert_close(ours.beta.grad, theirs.bias.grad)


def test_training_output_is_normalised_per_channel_and_eval_uses_running_stats():
    torch.manual_seed(0)
    bn = BatchNorm(3, 4)
    x = torch.randn(10, 3, 4, 4) * 5 + 2
    y = bn(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.var(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)
    bn.eval()
    single = x[:1]
    # in eval mode one image gives the same answer alone or in a batch
    assert torch.allclose(bn(single), bn(x)[:1])


def test_gamma_and_beta_scale_and_shift():
    bn = BatchNorm(2, 2)
    with torch.no_grad():
        bn.gamma.copy_(torch.tensor([2.0, 3.0]))
        bn.beta.copy_(torch.tensor([1.0, -1.0]))
    y = bn(torch.randn(50, 2))
    assert torch.allclose(y.mean(0), torch.tensor([1.0, -1.0]), atol=1e-5)
    assert torch.allclose(y.std(0, unbiased=False), torch.tensor([2.0, 3.0]), atol=1e-3)
    assert [n for n, _ in bn.named_parameters()] == ["gamma", "beta"]
    assert {n for n, _ in bn.named_buffers()} == {"running_mean", "running_var",
                                                   "num_batches_tracked"}


def test_without_running_stats_or_affine_matches_pytorch():
    torch.manual_seed(0)
    ours = BatchNorm(4, 4, affine=False, track_running_stats=False).eval()
    theirs = nn.BatchNorm2d(4, affine=False, track_running_stats=False).eval()
    x = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(ours(x), theirs(x))  # no running stats: batch stats in eval too
    assert list(ours.parameters()) == []


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="num_dims"):
        BatchNorm(4, num_dims=5)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(4, momentum=1.5)
    bn = BatchNorm(4, 4)
    with pytest.raises(ValueError, match="expects 4-d input with 4 channels"):
        bn(torch.randn(2, 4))
    with pytest.raises(ValueError, match="expects 4-d input with 4 channels"):
        bn(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="more than one value per channel"):
        BatchNorm(4, 2)(torch.randn(1, 4))  # a batch of one after a linear layer
    with pytest.raises(ValueError, match="batch_norm expects"):
        batch_norm(torch.randn(5), None, None, None, None, training=True)


def test_bn_lenet_shapes_layers_and_parameters():
    net = bn_lenet()
    assert net(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    plain = bn_lenet(norm=None)
    # BN adds a gamma and a beta per channel / unit: 2 * (6 + 16 + 120 + 84)
    assert count_params(net) - count_params(plain) == 2 * (6 + 16 + 120 + 84)
    assert not any(isinstance(m, (BatchNorm, nn.BatchNorm2d)) for m in plain.modules())
    names = list(dict(net.named_children()))
    assert names[:4] == ["conv1", "bn1", "act1", "pool1"]  # BN after the conv, before sigmoid
    assert names.index("bn_fc1") == names.index("fc1") + 1
    torch_version = bn_lenet(norm="torch")
    assert isinstance(torch_version.bn1, nn.BatchNorm2d)
    assert isinstance(torch_version.bn_fc1, nn.BatchNorm1d)
    assert count_params(torch_version) == count_params(net)


def test_bn_lenet_scratch_and_torch_versions_compute_the_same():
    torch.manual_seed(0)
    ours, theirs = bn_lenet("scratch"), bn_lenet("torch")
    state = {k.replace("gamma", "weight").replace("beta", "bias"): v
             for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(ours(x), theirs(x))
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


def test_bn_lenet_is_configurable():
    net = BNLeNet(num_classes=3, in_channels=3, image_size=32, channels=(8,), hidden=(32,),
                  width=0.5)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    assert net.conv1.out_channels == 4 and net.fc1.out_features == 16
    with pytest.raises(ValueError, match="too small"):
        BNLeNet(image_size=12)
    with pytest.raises(ValueError, match="norm must be one of"):
        BNLeNet(norm="layer")
    with pytest.raises(ValueError, match="width"):
        BNLeNet(width=0)
