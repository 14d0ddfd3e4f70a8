import pytest
import torch

from cnnbook.regularization.weight_decay import adam_step, sgd_step


def _torch_steps(opt_cls, w0, grads, **kw):
    w = w0.clone().requires_grad_()
    opt = opt_cls([w], **kw)
    for g in grads:
        w.grad = g.clone()
        opt.step()
    return w.detach()


@pytest.mark.parametrize("decoupled,opt_cls", [(False, torch.optim.Adam),
                                               (True, torch.optim.AdamW)])
def test_adam_step_equals_torch(decoupled, opt_cls):
    torch.manual_seed(0)
    w0 = torch.randn(50, dtype=torch.float64)
    grads = [torch.randn(50, dtype=torch.float64) * 10 ** torch.randn(50) for _ in range(5)]
    kw = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    w, state = w0.clone(), {}
    for g in grads:
        w = adam_step(w, g, state, decoupled=decoupled, **kw)
    assert torch.allclose(w, _torch_steps(opt_cls, w0, grads, **kw), atol=1e-12)
    assert state["t"] == 5


def test_l2_and_decoupled_same_for_sgd_different_for_adam():
    torch.manual_seed(1)
    w = torch.randn(20, dtype=torch.float64)
    g = torch.randn(20, dtype=torch.float64)
    assert torch.allclose(sgd_step(w, g, 0.1, 0.01), sgd_step(w, g, 0.1, 0.01, decoupled=True))
    assert torch.allclose(sgd_step(w, g, 0.1, 0.01),
                          _torch_steps(torch.optim.SGD, w, [g], lr=0.1, weight_decay=0.01))
    a = adam_step(w, g, {}, lr=0.1, weight_decay=0.5)
    b = adam_step(w, g, {}, lr=0.1, weight_decay=0.5, decoupled=True)
    assert (a - b).abs().max() > 1e-3
