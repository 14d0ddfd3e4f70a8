"""cnnbook.models.airbench: the whitening layer really whitens, the net and its optimiser
match airbench's definitions."""
import math

import pytest
import torch
from torch import nn

from cnnbook.models.airbench import (AirbenchNet, FrozenScaleBatchNorm, airbench_sgd,
                                     patch_covariance, whiten_)


def _correlated_images(n=64, seed=0):
    """Images whose channels and neighbouring pixels are strongly correlated, like photos."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 1, 18, 18, generator=g)
    smooth = nn.functional.avg_pool2d(base, 3, 1)               # neighbours correlated
    mix = torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)           # channels correlated
    return smooth * mix + 0.05 * torch.randn(n, 3, 16, 16, generator=g)


def test_patch_covariance_matches_unfold():
    x = _correlated_images(8)
    cols = nn.functional.unfold(x, 2)                     # N, C*4, L (channel-major)
    flat = cols.transpose(1, 2).reshape(-1, 12)
    assert torch.allclose(patch_covariance(x, 2), flat.T @ flat / flat.shape[0], atol=1e-6)


def test_whitened_patch_features_are_uncorrelated_with_unit_variance():
    x = _correlated_images()
    conv = nn.Conv2d(3, 24, 2)
    eig = whiten_(conv, x, eps=0.0)
    assert torch.all(eig[:-1] >= eig[1:])                  # largest first
    assert eig[0] / eig[-1] > 100                           # the input was far from white
    feats = nn.functional.conv2d(x, conv.weight)[:, :12]   # the positive half, no bias
    flat = feats.permute(0, 2, 3, 1).reshape(-1, 12)
    cov = flat.T @ flat / flat.shape[0]
    assert torch.allclose(cov, torch.eye(12), atol=1e-3)
    assert torch.equal(conv.weight[12:], -conv.weight[:12])


def test_whiten_rejects_a_conv_of_the_wrong_shape():
    with pytest.raises(ValueError, match="24 square 2x2"):
        whiten_(nn.Conv2d(3, 16, 2), _correlated_images(4))


def test_net_shapes_frozen_parts_and_identity_init():
    torch.manual_seed(0)
    net = AirbenchNet((16, 32, 32))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert not net.whiten.weight.requires_grad and net.whiten.bias.requires_grad
    bns = [m for m in net.modules() if isinstance(m, FrozenScaleBatchNorm)]
    assert len(bns) == 6 and not any(m.weight.requires_grad for m in bns)
    assert all(math.isclose(m.momentum, 0.4) for m in bns)
    w = net.group2.conv1.weight                            # 16 -> 32: first 16 filters identity
    identity = torch.zeros(16, 16, 3, 3)
    identity[range(16), range(16), 1, 1] = 1
    assert torch.equal(w[:16], identity) and not torch.equal(w[16:], torch.zeros_like(w[16:]))
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(net(x), net.scale.factor * net.fc(net[:-2](x)))
    with pytest.raises(ValueError, match="three positive"):
        AirbenchNet((16, 32))


def test_airbench_sgd_makes_the_same_update_as_airbench_summed_loss():
    """One step of our factory on the mean loss == airbench's SGD on the summed loss."""
    torch.manual_seed(0)
    net = AirbenchNet((8, 16, 16))
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    ours, theirs = AirbenchNet((8, 16, 16)), AirbenchNet((8, 16, 16))
    ours.load_state_dict(net.state_dict()), theirs.load_state_dict(net.state_dict())
    opt = airbench_sgd(batch_size=6)(ours)
    nn.functional.cross_entropy(ours(x), y).backward()
    opt.step()
    # airbench's own parametrisation (utils.train), written out
    momentum, kilo = 0.85, 1024 * (1 + 1 / (1 - 0.85))
    lr, wd = 11.5 / kilo, 0.0153 * 6 / kilo
    norm = [p for k, p in theirs.named_parameters() if "norm" in k and p.requires_grad]
    other = [p for k, p in theirs.named_parameters() if "norm" not in k and p.requires_grad]
    ref = torch.optim.SGD([dict(params=norm, lr=lr * 64, weight_decay=wd / (lr * 64)),
                           dict(params=other, lr=lr, weight_decay=wd / lr)],
                          momentum=momentum, nesterov=True)
    nn.functional.cross_entropy(theirs(x), y, reduction="sum").backward()
    ref.step()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert sum(len(g["params"]) for g in opt.param_groups) == len(norm) + len(other)
