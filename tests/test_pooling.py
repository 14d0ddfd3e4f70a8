import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.pooling import (POOLING_LAYERS, AttentionPool2d, LearnablePool2d, MixedPool2d,
                             StochasticPool2d, adaptive_bins)


def _relu_maps(*shape, seed=0):
    return torch.relu(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("name", list(POOLING_LAYERS))
@pytest.mark.parametrize("k,s,side", [(2, None, 4), (3, 2, 4), (3, 1, 7)])
def test_every_layer_shrinks_like_max_pooling(name, k, s, side):
    layer = POOLING_LAYERS[name](5, k, s)
    x = _relu_maps(2, 5, 9, 9)
    assert layer(x).shape == (2, 5, side, side) == nn.MaxPool2d(k, s)(x).shape
    layer.eval()
    assert layer(x).shape == (2, 5, side, side)


def test_bad_windows_are_rejected():
    with pytest.raises(ValueError, match="positive"):
        StochasticPool2d(0)
    with pytest.raises(ValueError, match="positive"):
        MixedPool2d(3, 2, 0)
    with pytest.raises(ValueError, match="mode"):
        AttentionPool2d(3, mode="median")
    with pytest.raises(ValueError, match="smaller"):
        StochasticPool2d(4)(torch.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        StochasticPool2d(2)(torch.ones(3, 3))


def test_stochastic_eval_is_the_probability_weighted_mean():
    x = torch.tensor([[[[1.0, 3.0], [0.0, 4.0]]]])
    pool = StochasticPool2d(2).eval()
    expected = (1 + 9 + 16) / (1 + 3 + 4)  # sum p_i a_i with p_i = a_i / sum(a)
    assert pool(x).item() == pytest.approx(expected)
    # a window of zeros gives zero, not NaN
    assert pool(torch.zeros(1, 1, 2, 2)).item() == 0.0


def test_stochastic_eval_matches_a_loop_and_lies_between_mean_and_max():
    x = _relu_maps(2, 3, 6, 6)
    out = StochasticPool2d(2).eval()(x)
    windows = x.unfold(2, 2, 2).unfold(3, 2, 2)  # (N, C, 3, 3, 2, 2)
    a = windows.flatten(-2)
    ref = (a * a).sum(-1) / a.sum(-1).clamp_min(1e-30)
    assert torch.allclose(out, ref, atol=1e-6)
    assert bool((out <= F.max_pool2d(x, 2) + 1e-6).all())
    assert bool((out >= F.avg_pool2d(x, 2) - 1e-6).all())


def test_stochastic_train_output_is_always_a_value_of_its_window():
    x = _relu_maps(4, 3, 8, 8, seed=1)
    pool = StochasticPool2d(2, generator=torch.Generator().manual_seed(0)).train()
    out = pool(x)
    windows = x.unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)  # (N, C, 4, 4, 4)
    hits = (windows == out.unsqueeze(-1)).any(-1)
    assert bool(hits.all())
    # values that are zero are never drawn unless the whole window is zero
    allzero = (windows == 0).all(-1)
    assert bool((out[~allzero] > 0).all())


def test_stochastic_draws_follow_the_probabilities():
    x = torch.tensor([1.0, 3.0, 0.0, 4.0]).view(1, 1, 2, 2).expand(20_000, 1, 2, 2)
    out = StochasticPool2d(2, generator=torch.Generator().manual_seed(0)).train()(x).flatten()
    for value, p in [(1.0, 1 / 8), (3.0, 3 / 8), (4.0, 4 / 8)]:
        assert float((out == value).float().mean()) == pytest.approx(p, abs=0.015)
    assert not bool((out == 0).any())
    # the mean of the draws is the eval output
    assert float(out.mean()) == pytest.approx(26 / 8, rel=0.02)


def test_stochastic_is_deterministic_for_a_seed():
    x = _relu_maps(2, 4, 8, 8)

    def draw(seed):
        return StochasticPool2d(2, generator=torch.Generator().manual_seed(seed))(x)

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))
    torch.manual_seed(5)
    a = StochasticPool2d(2)(x)
    torch.manual_seed(5)
    assert torch.equal(a, StochasticPool2d(2)(x))


def test_stochastic_rejects_negative_inputs():
    with pytest.raises(ValueError, match="non-negative"):
        StochasticPool2d(2)(-torch.ones(1, 1, 2, 2))


def test_learnable_pool_starts_as_average_pooling_and_learns():
    x = torch.randn(2, 3, 8, 8)
    for k, s in [(2, 2), (3, 2), (3, 1)]:
        pool = LearnablePool2d(3, k, s)
        assert torch.allclose(pool(x), F.avg_pool2d(x, k, s), atol=1e-6)
    pool = LearnablePool2d(3)
    assert sum(p.numel() for p in pool.parameters()) == 3 * 2 * 2
    pool(x).pow(2).sum().backward()
    assert pool.conv.weight.grad is not None and pool.conv.weight.grad.abs().sum() > 0


def test_mixed_pool_is_a_1x1_fusion_of_max_and_average():
    x = torch.randn(2, 4, 6, 6)
    pool = MixedPool2d(4)
    assert pool.fuse.in_channels == 8 and pool.fuse.out_channels == 4
    with torch.no_grad():
        pool.fuse.weight.zero_()
        pool.fuse.bias.zero_()
        for c in range(4):
            pool.fuse.weight[c, c] = 1.0  # channel c of the max half
    assert torch.allclose(pool(x), F.max_pool2d(x, 2))
    with torch.no_grad():
        pool.fuse.weight.zero_()
        for c in range(4):
            pool.fuse.weight[c, 4 + c] = 1.0  # channel c of the average half
    assert torch.allclose(pool(x), F.avg_pool2d(x, 2), atol=1e-6)


def test_attention_pool_weights_by_a_sigmoid_map_then_pools():
    x = torch.randn(2, 3, 8, 8)
    pool = AttentionPool2d(3)
    a = pool.attention(x)
    assert a.shape == (2, 1, 8, 8) and bool(((a > 0) & (a < 1)).all())
    assert torch.allclose(pool(x), F.avg_pool2d(x * a, 2), atol=1e-6)
    with torch.no_grad():  # a very confident map (sigmoid ~ 1) leaves plain pooling
        pool.score.weight.zero_()
        pool.score.bias.fill_(50.0)
    assert torch.allclose(pool(x), F.avg_pool2d(x, 2), atol=1e-6)
    maxpool = AttentionPool2d(3, mode="max")
    assert torch.allclose(maxpool(x), F.max_pool2d(x * maxpool.attention(x), 2))


def test_layers_train_in_a_network():
    torch.manual_seed(0)
    for name in POOLING_LAYERS:
        net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                            POOLING_LAYERS[name](4), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
        loss = F.cross_entropy(net(torch.randn(3, 1, 8, 8)), torch.tensor([0, 1, 0]))
        loss.backward()
        assert net[0].weight.grad is not None, name


@pytest.mark.parametrize("n,m,bins", [
    (10, 4, [(0, 3), (2, 5), (5, 8), (7, 10)]),
    (7, 3, [(0, 3), (2, 5), (4, 7)]),
    (8, 4, [(0, 2), (2, 4), (4, 6), (6, 8)]),
    (3, 5, [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]),
])
def test_adaptive_bins(n, m, bins):
    assert adaptive_bins(n, m) == bins


@pytest.mark.parametrize("n", [5, 7, 10, 13, 28])
def test_adaptive_bins_reproduce_adaptive_avg_pool(n):
    x = torch.randn(1, 1, n, n + 3)
    out = (3, 2)
    ref = F.adaptive_avg_pool2d(x, out)
    rows, cols = adaptive_bins(n, out[0]), adaptive_bins(n + 3, out[1])
    mine = torch.tensor([[x[0, 0, r0:r1, c0:c1].mean() for c0, c1 in cols] for r0, r1 in rows])
    assert torch.allclose(mine, ref[0, 0], atol=1e-6)


def test_adaptive_bins_rejects_empty_sizes():
    with pytest.raises(ValueError):
        adaptive_bins(0, 3)


@pytest.mark.parametrize("name", list(POOLING_LAYERS))
def test_gradients_match_finite_differences(name):
    """Input and parameter gradients of each layer against central differences (double);
    stochastic pooling in eval mode, where it is a smooth function of its input."""
    torch.manual_seed(0)
    layer = POOLING_LAYERS[name](2).double().eval()   # small: gradcheck perturbs each value
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]
    x = (torch.rand(1, 2, 4, 4, dtype=torch.double) + 0.1).requires_grad_()

    def f(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5)
    if params:   # the parameters really are trained: a step changes the output
        before = layer(x).detach()
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        layer(x).square().sum().backward()
        opt.step()
        assert not torch.allclose(layer(x), before)


# --- edge cases found by mutation testing ---------------------------------------------

def test_window_and_bin_sizes_of_one_are_allowed():
    x = torch.randn(2, 3, 5, 5)
    assert torch.allclose(LearnablePool2d(3, 1)(x), F.avg_pool2d(x, 1))  # the identity
    assert torch.allclose(StochasticPool2d(1).eval()(x.relu()), x.relu())
    assert adaptive_bins(1, 1) == [(0, 1)]
    assert adaptive_bins(1, 3) == [(0, 1), (0, 1), (0, 1)]
    assert adaptive_bins(5, 1) == [(0, 5)]  # global pooling
    x = torch.randn(1, 1, 1, 5)
    assert torch.allclose(F.adaptive_avg_pool2d(x, (3, 1)),
                          torch.full((1, 1, 3, 1), x[0, 0, 0, :5].mean().item()), atol=1e-6)


@pytest.mark.parametrize("n,m", [(0, 3), (3, 0), (-1, 2)])
def test_adaptive_bins_error_names_the_sizes(n, m):
    with pytest.raises(ValueError, match=f"positive, got in_size={n}, out_size={m}"):
        adaptive_bins(n, m)


def test_stochastic_pool_defaults_to_2x2_windows_with_stride_2():
    x = _relu_maps(1, 2, 6, 6)
    pool = StochasticPool2d().eval()
    assert (pool.kernel_size, pool.stride) == (2, 2)
    assert pool(x).shape == F.max_pool2d(x, 2).shape == (1, 2, 3, 3)


@pytest.mark.parametrize("h,w", [(3, 5), (5, 3)])
def test_stochastic_rejects_a_map_smaller_than_the_window_in_one_side(h, w):
    with pytest.raises(ValueError, match="smaller"):
        StochasticPool2d(4)(torch.ones(1, 1, h, w))


def test_stochastic_negative_input_error_tells_to_use_a_relu():
    with pytest.raises(ValueError, match=r"^stochastic pooling needs non-negative inputs: "
                                         r"put it after a ReLU$"):
        StochasticPool2d(2).train()(torch.tensor([[[[1.0, -0.5], [0.0, 2.0]]]]))


def test_stochastic_draws_ignore_torchs_default_dtype_and_device():
    """The draws depend on the generator and the input only, not on global settings."""
    x = _relu_maps(2, 3, 8, 8)

    def draw():
        return StochasticPool2d(2, generator=torch.Generator().manual_seed(7)).train()(x)

    ref = draw()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert torch.equal(draw(), ref)
    finally:
        torch.set_default_dtype(old)
    with torch.device("meta"):  # tensors created without a device would land on "meta"
        assert torch.equal(draw(), ref)
        torch.manual_seed(1)
        out = StochasticPool2d(2).train()(x)
    torch.manual_seed(1)
    assert out.device == x.device and torch.equal(out, StochasticPool2d(2).train()(x))


def test_stochastic_never_draws_a_zero_in_bfloat16():
    # rand() returns exactly 0 about once in 256 draws in bfloat16: a leading zero of the
    # window must still have probability 0, and a trailing one too
    x = torch.tensor([0.0, 1.0, 3.0, 0.0]).view(1, 1, 2, 2).expand(5_000, 1, 2, 2)
    out = StochasticPool2d(2, generator=torch.Generator().manual_seed(0)).train()(
        x.to(torch.bfloat16)).flatten()
    assert not bool((out == 0).any())
    assert float((out == 1).float().mean()) == pytest.approx(1 / 4, abs=0.03)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_stochastic_cpu_generator_drives_draws_on_a_gpu_input():
    x = _relu_maps(2, 3, 8, 8)

    def draw(t):
        return StochasticPool2d(2, generator=torch.Generator().manual_seed(7)).train()(t)

    assert torch.equal(draw(x.cuda()).cpu(), draw(x))
