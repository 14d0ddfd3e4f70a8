import math

import numpy as np
import pytest
import torch

from cnnbook.widgets.descent import (DescentExplorer, best_rate, descend_quadratic,
                                     step_factors)

H = np.array([[1.0, 0.1], [0.1, 0.1]])   # a narrow valley, condition number about 11
B = np.array([1.0, -0.5])


@pytest.fixture
def explorer():
    return DescentExplorer(H, B, c=2.0, w0=(-1.0, 1.0), lr=0.2, steps=30)


def test_first_render_reports_the_hessian_and_the_verdict(explorer):
    s = explorer.state
    lam = np.linalg.eigvalsh(H)
    assert s["error"] is None and explorer.renders == 1
    assert s["eigenvalues"] == pytest.approx(lam)
    assert s["factors"] == pytest.approx(np.abs(1 - 0.2 * lam))
    assert s["verdict"] == "converges" and s["converges"] and s["steps_run"] == 30
    assert s["best_lr"] == pytest.approx(2 / lam.sum(), rel=1e-3)
    assert s["best_rate"] == pytest.approx((lam[1] - lam[0]) / lam.sum(), rel=1e-3)
    assert s["w_star"] == pytest.approx(np.linalg.solve(H, B))
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_the_error_along_each_eigenvector_shrinks_by_its_factor():
    lam, V = np.linalg.eigh(H)
    for lr in (0.3, 1.2, 1.9):
        out = descend_quadratic(H, B, [2.0, 3.0], lr, 25)
        e0 = np.abs((np.array([2.0, 3.0]) - out["w_star"]) @ V)
        k = np.arange(26)[:, None]
        assert np.allclose(out["errors"], e0 * np.abs(1 - lr * lam) ** k, rtol=1e-6, atol=1e-12)
    # above 2 / lambda_max the steep direction grows: diverges
    out = descend_quadratic(H, B, [2.0, 3.0], 2.05 / lam[1], 25)
    assert out["verdict"] == "diverges" and out["errors"][-1, 1] > out["errors"][0, 1]


def test_the_path_is_torch_sgd_with_momentum():
    Ht, bt = torch.tensor(H), torch.tensor(B)
    for lr, beta in ((0.5, 0.0), (0.8, 0.6), (0.1, 0.9)):
        w = torch.tensor([-1.0, 1.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([w], lr=lr, momentum=beta)
        seen = [w.detach().clone()]
        for _ in range(15):
            opt.zero_grad()
            (0.5 * w @ Ht @ w - bt @ w).backward()
            opt.step()
            seen.append(w.detach().clone())
        out = descend_quadratic(H, B, [-1.0, 1.0], lr, 15, momentum=beta)
        assert np.allclose(out["path"], torch.stack(seen).numpy(), atol=1e-10)


def test_momentum_factors_are_the_recurrence_spectral_radius():
    lam = np.linalg.eigvalsh(H)
    for lr, beta in ((0.5, 0.3), (1.5, 0.9), (3.5, 0.8)):
        expected = [max(abs(np.linalg.eigvals(np.array([[1 + beta - lr * l, -beta], [1, 0]]))))
                    for l in lam]
        assert step_factors(lam, lr, beta) == pytest.approx(expected)
    # Polyak's heavy ball: the best pair gives (sqrt(k) - 1) / (sqrt(k) + 1) per step
    kappa = lam[1] / lam[0]
    beta = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    lr, rate = best_rate(lam, beta)
    assert lr == pytest.approx(4 / (math.sqrt(lam[0]) + math.sqrt(lam[1])) ** 2, rel=1e-2)
    assert rate == pytest.approx(math.sqrt(beta), rel=1e-2)
    assert rate < best_rate(lam, 0.0)[1]           # momentum beats the best plain rate


def test_explorer_follows_its_controls(explorer):
    c = explorer.controls
    c["lr"].value = 2.5                         # above 2 / lambda_max = 1.98
    s = explorer.state
    assert s["verdict"] == "diverges" and not s["converges"] and s["rate"] > 1
    c["steps"].value = 200                      # the path is stopped before it overflows
    assert explorer.state["diverged_at"] is not None and explorer.state["steps_run"] < 200
    c["momentum"].value = 0.9                   # momentum widens the stable range
    assert explorer.state["verdict"] == "converges"
    assert explorer.state["best_rate"] == pytest.approx(math.sqrt(0.9), rel=1e-6)
    c["lr"].value = 0.0
    assert explorer.state["verdict"] == "stalls" and explorer.state["w_end"] == [-1.0, 1.0]
    assert explorer.renders == 5


def test_bad_input_is_a_clear_message():
    for kwargs, match in ((dict(lr=math.nan), "finite"), (dict(lr=-1.0), ">= 0"),
                          (dict(momentum=1.0), r"\[0, 1\)"), (dict(steps=-1), "steps")):
        args = dict(lr=0.1, steps=3, momentum=0.0) | kwargs
        with pytest.raises(ValueError, match=match):
            descend_quadratic(H, B, [0.0, 0.0], **args)
    with pytest.raises(ValueError, match="positive definite"):
        descend_quadratic(np.diag([1.0, -1.0]), B, [0.0, 0.0], 0.1, 3)
    with pytest.raises(ValueError, match="symmetric"):
        descend_quadratic(np.array([[1.0, 0.5], [0.0, 1.0]]), B, [0.0, 0.0], 0.1, 3)
    with pytest.raises(ValueError, match="2-D"):
        DescentExplorer(np.eye(3), np.ones(3), w0=np.zeros(3))
