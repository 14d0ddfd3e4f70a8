import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cnnbook.deploy.distill import Distillation, distillation_loss


def test_loss_is_the_formula():
    torch.manual_seed(0)
    s, t, y = torch.randn(5, 10), torch.randn(5, 10), torch.randint(0, 10, (5,))
    T, a = 4.0, 0.7
    p_t = F.softmax(t / T, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / T, 1))).sum(1).mean()
    expected = a * T * T * kl + (1 - a) * F.cross_entropy(s, y)
    assert torch.allclose(distillation_loss(s, t, y, T, a), expected, atol=1e-6)
    assert torch.allclose(distillation_loss(s, t, y, T, 0.0), F.cross_entropy(s, y))
    assert distillation_loss(t, t, y, T, 1.0).abs() < 1e-6     # matching the teacher: no loss


def test_gradient_does_not_reach_the_teacher():
    t = torch.randn(3, 4, requires_grad=True)
    distillation_loss(torch.randn(3, 4, requires_grad=True), t, torch.zeros(3, dtype=torch.long)).backward()
    assert t.grad is None


@pytest.mark.parametrize("kw", [dict(temperature=0), dict(temperature=float("nan")),
                                dict(alpha=1.5), dict(alpha=-0.1)])
def test_bad_settings(kw):
    with pytest.raises(ValueError):
        distillation_loss(torch.randn(2, 3), torch.randn(2, 3), torch.zeros(2, dtype=torch.long), **kw)


def test_wrapped_loader_feeds_the_teacher_logits_to_the_loss():
    torch.manual_seed(0)
    teacher = nn.Linear(4, 3)
    kd = Distillation(teacher)
    batches = [(torch.randn(5, 4), torch.randint(0, 3, (5,))) for _ in range(2)]
    loader = kd.wrap(batches)
    assert len(loader) == 2
    with pytest.raises(RuntimeError, match="kd.wrap"):
        kd.loss(torch.randn(5, 3), batches[0][1])
    student = nn.Linear(4, 3)
    for x, y in loader:
        assert torch.allclose(kd.last, teacher(x))
        loss = kd.loss(student(x), y)
        assert torch.allclose(loss, distillation_loss(student(x), teacher(x), y))
        # a rehearsal's fit trains on the first examples of the batch: the loss pairs those
        assert torch.allclose(kd.loss(student(x[:2]), y[:2]),
                              distillation_loss(student(x[:2]), teacher(x[:2]), y[:2]))
    with pytest.raises(RuntimeError, match="kd.wrap"):
        kd.loss(student(x[:2]), (y[:2] + 1) % 3)   # not the labels of the batch the teacher saw


def test_distillation_through_fit_moves_the_student_towards_the_teacher(tmp_path, monkeypatch):
    import cnnbook

    monkeypatch.setenv("CNNBOOK_RESULTS_DIR", str(tmp_path))
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    xs = [torch.randn(32, 6) for _ in range(8)]
    batches = [(x, teacher(x).argmax(1)) for x in xs]
    student = nn.Linear(6, 3)
    kd = Distillation(teacher, 4.0, 0.7)

    def gap():
        with torch.no_grad():
            return sum(F.kl_div(F.log_softmax(student(x) / 4, 1), F.softmax(teacher(x) / 4, 1),
                                reduction="batchmean") for x in xs).item()
    before = gap()
    cnnbook.fit(student, kd.wrap(batches), None, epochs=3, lr=0.1, loss_fn=kd.loss,
                device="cpu", progress=False, live_plot=False, record=False)
    assert gap() < before
