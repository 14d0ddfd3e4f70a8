import pytest
import torch
from torch import nn

from cnnbook.models.norms import (NORM_KINDS, BatchNorm, GroupNorm, InstanceNorm2d, LayerNorm,
                                  SwitchableNorm2d, batch_statistics_noise, group_norm,
                                  instance_norm, layer_norm, make_norm, pooled_mask,
                                  swap_batchnorm, switchable_norm)
from cnnbook.models.resnet import Residual

SHAPE = (4, 64, 5, 6)  # 64 channels: GroupNorm(32) has groups of two


def _randomise(*modules):
    """Non-trivial, identical scale and shift in every module (parameters in the same order)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for ref_p, *others in zip(*(list(m.parameters()) for m in modules)):
            value = torch.rand(ref_p.shape, generator=gen, dtype=ref_p.dtype) * 1.5 + 0.5
            for p in (ref_p, *others):
                p.copy_(value)


def _input(shape=SHAPE, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    # per-example and per-channel offsets and scales: nothing is already normalised
    x = torch.randn(shape, generator=gen, dtype=dtype)
    x = x * torch.rand(shape[0], shape[1], 1, 1, generator=gen, dtype=dtype).mul(3).add(0.2)
    return x + torch.randn(shape[0], shape[1], 1, 1, generator=gen, dtype=dtype) * 2


def _forward_and_grads(module, x, target):
    x = x.detach().clone().requires_grad_()
    y = module(x)
    params = [p for p in module.parameters()]
    grads = torch.autograd.grad((y * target).sum() + (y ** 2).sum(), [x, *params])
    return y.detach(), grads


def _assert_twins(ours, theirs, x, tol=1e-10):
    target = torch.randn_like(x)
    y1, g1 = _forward_and_grads(ours, x, target)
    y2, g2 = _forward_and_grads(theirs, x, target)
    torch.testing.assert_close(y1, y2, rtol=tol, atol=tol)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


PAIRS = {
    "layer": lambda: (LayerNorm(SHAPE[1:]), nn.LayerNorm(SHAPE[1:])),
    "group32": lambda: (GroupNorm(32, SHAPE[1]), nn.GroupNorm(32, SHAPE[1])),
    "group1": lambda: (GroupNorm(1, SHAPE[1]), nn.GroupNorm(1, SHAPE[1])),
    "instance_affine": lambda: (InstanceNorm2d(SHAPE[1], affine=True),
                                nn.InstanceNorm2d(SHAPE[1], affine=True)),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_equal_to_pytorch_forward_and_gradients(name):
    ours, theirs = (m.double() for m in PAIRS[name]())
    _randomise(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same parameter names
    for seed in range(2):
        _assert_twins(ours, theirs, _input(seed=seed))
    ours.eval(), theirs.eval()
    _assert_twins(ours, theirs, _input(seed=5))


def test_instance_norm_without_affine_equals_pytorch():
    ours, theirs = InstanceNorm2d(SHAPE[1]).double(), nn.InstanceNorm2d(SHAPE[1]).double()
    assert not list(ours.parameters()) and not list(theirs.parameters())
    x = _input().requires_grad_()
    t = torch.randn_like(x)
    g1, = torch.autograd.grad((ours(x) * t).sum(), x)
    g2, = torch.autograd.grad((theirs(x) * t).sum(), x)
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(g1, g2)


def test_batch_norm_train_and_eval_with_running_statistics():
    ours, theirs = BatchNorm(SHAPE[1]).double(), nn.BatchNorm2d(SHAPE[1]).double()
    _randomise(ours, theirs)
    for step in range(3):
        _assert_twins(ours, theirs, _input(seed=step) + step)
        # _assert_twins ran two forward passes per module: the running stats saw both
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)
    ours.eval(), theirs.eval()
    _assert_twins(ours, theirs, _input(seed=9))
    torch.testing.assert_close(ours.running_var, theirs.running_var)


def test_float32_agrees_to_float32_precision():
    ours, theirs = GroupNorm(32, SHAPE[1]), nn.GroupNorm(32, SHAPE[1])
    _randomise(ours, theirs)
    _assert_twins(ours, theirs, _input(dtype=torch.float32), tol=1e-4)


def test_functions_match_pytorch_functional():
    x = _input()
    torch.testing.assert_close(layer_norm(x, x.shape[1:]),
                               nn.functional.layer_norm(x, x.shape[1:]))
    torch.testing.assert_close(group_norm(x, 8), nn.functional.group_norm(x, 8))
    torch.testing.assert_close(instance_norm(x), nn.functional.instance_norm(x))
    # the family: GN(C groups) = IN, GN(1 group) = LN without per-element affine
    torch.testing.assert_close(group_norm(x, x.shape[1]), instance_norm(x))
    torch.testing.assert_close(group_norm(x, 1), layer_norm(x, x.shape[1:]))


def _one_hot(k, dtype=torch.float64):
    w = torch.zeros(3, dtype=dtype)
    w[k] = 1
    return w


@pytest.mark.parametrize("k,reference", [
    (0, lambda x: nn.functional.instance_norm(x)),
    (1, lambda x: nn.functional.layer_norm(x, x.shape[1:])),
    (2, lambda x: nn.functional.batch_norm(x, None, None, training=True)),
])
def test_switchable_parts_are_instance_layer_and_batch_norm(k, reference):
    x = _input()
    y, _, _ = switchable_norm(x, _one_hot(k), _one_hot(k))
    torch.testing.assert_close(y, reference(x), rtol=1e-9, atol=1e-9)


def test_switchable_mix_equals_a_direct_computation_and_its_gradients():
    torch.manual_seed(0)
    x = _input().requires_grad_()
    mean_logits = torch.randn(3, dtype=torch.float64, requires_grad=True)
    var_logits = torch.randn(3, dtype=torch.float64, requires_grad=True)
    mw, vw = mean_logits.softmax(0), var_logits.softmax(0)
    y, _, _ = switchable_norm(x, mw, vw)
    # direct: each kind's statistics straight from its definition, then the mix
    means = [x.mean((2, 3), keepdim=True), x.mean((1, 2, 3), keepdim=True),
             x.mean((0, 2, 3), keepdim=True)]
    vars_ = [x.var((2, 3), unbiased=False, keepdim=True),
             x.var((1, 2, 3), unbiased=False, keepdim=True),
             x.var((0, 2, 3), unbiased=False, keepdim=True)]
    mean = sum(w * m for w, m in zip(mw, means))
    var = sum(w * v for w, v in zip(vw, vars_))
    direct = (x - mean) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(y, direct)
    t = torch.randn_like(direct)
    g1 = torch.autograd.grad((y * t).sum(), [x, mean_logits, var_logits], retain_graph=True)
    g2 = torch.autograd.grad((direct * t).sum(), [x, mean_logits, var_logits])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    assert g1[1].abs().sum() > 0 and g1[2].abs().sum() > 0  # the mixing weights learn


def test_switchable_module_running_statistics_and_eval():
    sn = SwitchableNorm2d(SHAPE[1]).double()
    bn = nn.BatchNorm2d(SHAPE[1]).double()
    mw, vw = sn.mixing_weights()
    torch.testing.assert_close(mw, torch.full((3,), 1 / 3, dtype=torch.float64))
    x = _input()
    sn(x), bn(x)
    torch.testing.assert_close(sn.running_mean, bn.running_mean)
    # BN's running variance uses the unbiased batch variance; ours the biased one
    n = SHAPE[0] * SHAPE[2] * SHAPE[3]
    torch.testing.assert_close(sn.running_var - 0.9, (bn.running_var - 0.9) * (n - 1) / n)
    sn.eval()
    x2 = _input(seed=3)
    y = sn(x2)
    ref, _, _ = switchable_norm(x2, mw.detach(), vw.detach(), sn.weight.detach(),
                                sn.bias.detach(), sn.running_mean, sn.running_var,
                                training=False)
    torch.testing.assert_close(y, ref)
    # in eval, one example is normalised the same alone and within its batch
    torch.testing.assert_close(sn(x2[:1]), y[:1])


def test_outputs_are_normalised_over_the_right_elements():
    x = _input()
    y = group_norm(x, 32).view(SHAPE[0], 32, -1)
    torch.testing.assert_close(y.mean(-1), torch.zeros(SHAPE[0], 32, dtype=x.dtype), atol=1e-9,
                               rtol=0)
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(SHAPE[0], 32, dtype=x.dtype),
                               atol=1e-3, rtol=0)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="divide"):
        GroupNorm(5, 64)
    with pytest.raises(ValueError, match="divide"):
        group_norm(torch.randn(2, 6, 3, 3), 4)
    with pytest.raises(ValueError, match="ending in"):
        layer_norm(torch.randn(2, 6, 3, 3), (6, 4, 3))
    with pytest.raises(ValueError, match="three entries"):
        switchable_norm(torch.randn(2, 6, 3, 3), torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="channels"):
        GroupNorm(2, 8)(torch.randn(2, 6, 3, 3))
    with pytest.raises(ValueError, match="one of"):
        make_norm("weight", 8)


@pytest.mark.parametrize("kind,count", [("batch", 3 * 4), ("layer", 8 * 4),
                                        ("instance", 4), ("group", 2 * 4),
                                        ("switchable", 3 * 4 + 8 * 4 - 4)])
def test_pooled_mask_counts(kind, count):
    mask = pooled_mask(kind, (3, 8, 2, 2), index=(1, 5), groups=4)
    assert mask.shape == (3, 8, 2, 2) and mask.dtype == torch.bool
    assert int(mask.sum()) == count
    assert mask[1, 5].all()  # an element always pools with itself


def test_pooled_mask_agrees_with_group_norm():
    """Perturbing an element outside the mask leaves the chosen element's output unchanged."""
    x = _input((2, 8, 3, 3))
    mask = pooled_mask("group", x.shape, (1, 3), groups=4)
    y = group_norm(x, 4)
    x2 = x.clone()
    x2[~mask] += torch.randn(int((~mask).sum()), dtype=x.dtype)
    torch.testing.assert_close(group_norm(x2, 4)[1, 3], y[1, 3])
    x3 = x.clone()
    x3[1, 2] += 1.0  # the other channel of the group
    assert not torch.allclose(group_norm(x3, 4)[1, 3], y[1, 3])


def test_pooled_mask_rejects_bad_input():
    for kwargs in (dict(kind="pixel", shape=(1, 1, 1, 1)), dict(kind="batch", shape=(0, 1, 1, 1)),
                   dict(kind="batch", shape=(2, 2, 1, 1), index=(2, 0)),
                   dict(kind="group", shape=(2, 6, 1, 1), groups=4)):
        with pytest.raises(ValueError):
            pooled_mask(**kwargs)


@pytest.mark.parametrize("kind", NORM_KINDS)
def test_make_norm_and_swap_batchnorm(kind):
    block = Residual(16, 32, stride=2)
    swap_batchnorm(block, kind)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules()) or kind == "batch"
    y = block(torch.randn(2, 16, 8, 8))
    assert y.shape == (2, 32, 4, 4)
    gn = swap_batchnorm(Residual(16, 64), "group", groups=32)
    assert all(m.num_groups == 32 for m in gn.modules() if isinstance(m, nn.GroupNorm))
    small = make_norm("group", 16)  # fewer channels than groups: one channel per group
    assert small.num_groups == 16


def test_group_norm_output_of_an_example_ignores_its_batch():
    torch.manual_seed(0)
    x = torch.randn(6, 32, 4, 4)
    gn, bn = nn.GroupNorm(8, 32), nn.BatchNorm2d(32)
    torch.testing.assert_close(gn(x[:2])[0], gn(x)[0])
    assert not torch.allclose(bn(x[:2])[0], bn(x)[0], atol=1e-3)


def test_batch_statistics_noise_shrinks_with_batch_size():
    torch.manual_seed(0)
    # channels with example-to-example variation, as real feature maps have
    pool = torch.randn(256, 4, 4, 4) + torch.randn(256, 4, 1, 1) * 2
    noise = batch_statistics_noise(pool, [1, 4, 16, 64], trials=300)
    means = [noise[b]["mean_noise"] for b in (1, 4, 16, 64)]
    assert means == sorted(means, reverse=True)
    # the mean of B examples: noise ~ 1/sqrt(B) (within sampling error, and less at B=64
    # because the batches are drawn without replacement from 256)
    assert 1.5 < means[0] / means[1] < 2.5
    assert noise[1]["std_noise"] > noise[64]["std_noise"]
    assert batch_statistics_noise(pool, [4], seed=3) == batch_statistics_noise(pool, [4], seed=3)
    with pytest.raises(ValueError, match="batch sizes"):
        batch_statistics_noise(pool, [512])
