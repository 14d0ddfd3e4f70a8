import pytest
import torch
import torch.nn.functional as F

from cnnbook.backprop import (avg_pool2d_backward, conv2d_backward, max_pool2d_backward,
                              numerical_grad, relative_error)


def _autograd(fn, *inputs, grad_out):
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    out.backward(grad_out)
    return out, [t.grad for t in inputs]


@pytest.mark.parametrize("n, c, o, size, k, stride, padding", [
    (1, 1, 1, 5, 3, 1, 0), (2, 3, 4, 7, 3, 1, 1), (2, 2, 3, 8, 3, 2, 0),
    (1, 2, 2, 9, 2, 3, 2), (3, 1, 2, 6, 5, 1, 2), (1, 1, 1, 4, 1, 2, 0)])
def test_conv2d_backward_matches_autograd(n, c, o, size, k, stride, padding):
    torch.manual_seed(0)
    x = torch.randn(n, c, size, size, dtype=torch.float64)
    w = torch.randn(o, c, k, k, dtype=torch.float64)
    b = torch.randn(o, dtype=torch.float64)
    z = F.conv2d(x, w, b, stride=stride, padding=padding)
    g = torch.randn_like(z)
    _, (gx_ref, gw_ref, gb_ref) = _autograd(
        lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride=stride, padding=padding), x, w, b,
        grad_out=g)
    gx, gw, gb = conv2d_backward(x, w, g, stride=stride, padding=padding)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == b.shape
    assert torch.allclose(gx, gx_ref) and torch.allclose(gw, gw_ref) and torch.allclose(gb, gb_ref)


def test_conv2d_backward_single_channel_is_correlation_and_full_convolution():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    k = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    g = torch.ones(1, 1, 3, 3)
    gx, gk, _ = conv2d_backward(x, k, g)
    # dK(u, v) = sum of the 3x3 block of x starting at (u, v)
    assert gk[0, 0].tolist() == [[x[0, 0, u:u + 3, v:v + 3].sum().item() for v in range(2)]
                                 for u in range(2)]
    # a corner input pixel sees one kernel weight, the centre ones all four
    assert gx[0, 0, 0, 0] == 1 and gx[0, 0, 3, 3] == 4 and gx[0, 0, 1, 1] == 10


def test_conv2d_backward_rejects_bad_shapes():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match="grad_out"):
        conv2d_backward(x, w, torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="input channels"):
        conv2d_backward(x, torch.randn(3, 1, 3, 3), torch.randn(1, 3, 3, 3))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        conv2d_backward(x[0], w, torch.randn(1, 3, 3, 3))
    with pytest.raises(ValueError):
        conv2d_backward(x, w, torch.randn(1, 3, 3, 3), stride=0)


@pytest.mark.parametrize("size, k, stride", [(4, 2, None), (7, 3, 2), (6, 2, 1), (5, 3, 1), (9, 2, 3)])
def test_pool_backward_matches_autograd(size, k, stride):
    torch.manual_seed(1)
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    for pool, mine in ((F.max_pool2d, lambda g: max_pool2d_backward(x, g, k, stride)),
                       (F.avg_pool2d, lambda g: avg_pool2d_backward(g, (size, size), k, stride))):
        y = pool(x, k, stride)
        g = torch.randn_like(y)
        _, (ref,) = _autograd(lambda x_: pool(x_, k, stride), x, grad_out=g)
        assert torch.allclose(mine(g), ref)


def test_max_pool_backward_routes_to_the_first_maximum_on_ties():
    x = torch.zeros(1, 1, 2, 4)            # every window is a tie, as after a ReLU
    x[0, 0, 1, 3] = 1.0
    g = torch.tensor([[[[5.0, 7.0]]]])
    _, (ref,) = _autograd(lambda x_: F.max_pool2d(x_, 2), x, grad_out=g)
    got = max_pool2d_backward(x, g, 2)
    assert torch.equal(got, ref)
    assert got[0, 0].tolist() == [[5, 0, 0, 0], [0, 0, 0, 7]]


def test_avg_pool_backward_spreads_evenly():
    g = torch.tensor([[[[4.0]]]])
    assert torch.equal(avg_pool2d_backward(g, (2, 2), 2), torch.ones(1, 1, 2, 2))
    with pytest.raises(ValueError):
        avg_pool2d_backward(torch.ones(1, 1, 3, 3), (4, 4), 2)
    with pytest.raises(ValueError, match="smaller"):
        max_pool2d_backward(torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1), 2)


def test_numerical_grad_and_relative_error():
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    num = numerical_grad(lambda t: (t ** 3).sum() + t[0, 1] * t[1, 0], x)
    exact = 3 * x ** 2 + torch.tensor([[0.0, 0.5], [-2.0, 0.0]], dtype=torch.float64)
    assert relative_error(num, exact) < 1e-8
    assert relative_error(exact, exact) == 0
    assert relative_error(exact, 1.01 * exact) == pytest.approx(0.01 / 1.01)
    assert torch.equal(x, torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64))  # untouched


def test_numerical_grad_checks_the_hand_written_conv_gradient():
    torch.manual_seed(2)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    g = torch.randn(1, 2, 2, 2, dtype=torch.float64)
    loss = lambda w_: (F.conv2d(x, w_, stride=2) * g).sum()  # noqa: E731
    _, gw, _ = conv2d_backward(x, w, g, stride=2)
    assert relative_error(numerical_grad(loss, w), gw) < 1e-8
