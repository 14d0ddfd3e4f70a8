import pytest
import torch
from torch import nn

from cnnbook.deploy import lowrank as L
from cnnbook.models.cifar_resnet import resnet20


def test_svd_factors_are_the_best_approximation():
    torch.manual_seed(0)
    w = torch.randn(20, 12)
    a, b = L.svd_factors(w, 12)
    assert torch.allclose(a @ b, w, atol=1e-5)
    a, b = L.svd_factors(w, 4)
    err = torch.linalg.norm(w - a @ b) / torch.linalg.norm(w)
    assert abs(err.item() - L.rank_error(w, 4)) < 1e-5
    u, s, vh = torch.linalg.svd(w)
    assert torch.allclose(torch.linalg.matrix_rank(a @ b), torch.tensor(4))


def test_error_falls_with_rank():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    errors = [L.rank_error(conv, r) for r in (1, 4, 8, 16, 32)]
    assert all(e1 > e2 for e1, e2 in zip(errors, errors[1:]))
    assert errors[-1] < 1e-5


def test_full_rank_factorisation_is_exact_for_linear_and_conv():
    torch.manual_seed(0)
    lin = nn.Linear(10, 6)
    x = torch.randn(3, 10)
    with torch.no_grad():
        assert torch.allclose(L.factorize_linear(lin, 6)(x), lin(x), atol=1e-5)
    conv = nn.Conv2d(4, 8, 3, stride=2, padding=1)
    x = torch.randn(2, 4, 9, 9)
    f = L.factorize_conv(conv, 8)
    with torch.no_grad():
        assert torch.allclose(f(x), conv(x), atol=1e-5)
    assert f[0].stride == (2, 2) and f[1].kernel_size == (1, 1)


def test_low_rank_conv_has_fewer_weights_below_break_even():
    conv = nn.Conv2d(64, 64, 3, bias=False)
    r = L.break_even_rank(conv)
    assert r == (64 * 576 - 1) // (64 + 576)
    small = L.factorize_conv(conv, r)
    assert sum(p.numel() for p in small.parameters()) < conv.weight.numel()
    bigger = L.factorize_conv(conv, r + 1)
    assert sum(p.numel() for p in bigger.parameters()) >= conv.weight.numel()


def test_factorize_model_by_name():
    torch.manual_seed(0)
    model = resnet20().eval()
    new = L.factorize(model, ["stage3.2.conv2", "fc"], rank_ratio=1.0)
    assert isinstance(new.stage3[2].conv2, nn.Sequential) and isinstance(new.fc, nn.Sequential)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(new(x), model(x), atol=1e-4)
    assert isinstance(model.fc, nn.Linear)   # original untouched
    with pytest.raises(ValueError, match="no layer"):
        L.factorize(model, "stage9.conv", rank=2)
    with pytest.raises(ValueError):
        L.factorize(model, "fc", rank=0)
    with pytest.raises(ValueError):
        L.factorize(model, "fc")
    with pytest.raises(TypeError):
        L.rank_error(nn.ReLU(), 1)
