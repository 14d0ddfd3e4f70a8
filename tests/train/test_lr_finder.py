import numpy as np
import pytest
import torch
from torch import nn

from cnnbook.data import TensorLoader
from cnnbook.train import optim
from cnnbook.train.lr_finder import LRFinderResult, _suggest, lr_find


def _regression(n=256, d=8, seed=0):
    """Noise-free least squares: y = X w. Full-batch gradient descent on the mean squared
    error is stable exactly for lr < 2 / lambda_max(H), H = 2 X^T X / n (the oracle)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g) * torch.linspace(0.5, 2.0, d)
    y = X @ torch.randn(d, 1, generator=g)
    hessian = 2 * X.T @ X / n
    return X, y, 2 / torch.linalg.eigvalsh(hessian).max().item()


def test_range_test_stops_past_the_stability_limit_and_suggests_below_it():
    X, y, limit = _regression()
    torch.manual_seed(0)
    model = nn.Linear(8, 1, bias=False)
    before = model.weight.detach().clone()
    found = lr_find(model, [(X, y)], optimizer="sgd", momentum=0.0, start_lr=1e-4,
                    end_lr=100.0, num_steps=120, loss_fn=nn.MSELoss())
    assert isinstance(found, LRFinderResult)
    assert found.stopped_early and found.steps < 120
    assert len(found.lrs) == len(found.losses) == len(found.raw_losses) == found.steps
    # gradient descent on a quadratic cannot blow up below the limit: the stop comes after it
    assert found.lrs[-1] > limit
    assert found.losses[-1] > 4 * found.losses[:-1].min()
    assert 1e-3 < found.suggestion < limit
    # the smoothed minimum lags the raw one (why a tenth of it is the usual pick)
    assert found.suggestion < found.min_loss_lr and found.min_loss_lr / 10 < limit
    assert torch.equal(model.weight, before)  # weights put back
    # the lr grows exponentially: equal ratios from start_lr
    ratios = found.lrs[1:] / found.lrs[:-1]
    assert ratios == pytest.approx(np.full_like(ratios, (100 / 1e-4) ** (1 / 119)))
    assert found.lrs[0] == pytest.approx(1e-4)


def test_smoothing_is_bias_corrected_ema():
    X, y, _ = _regression(seed=1)
    found = lr_find(nn.Linear(8, 1, bias=False), [(X, y)], momentum=0.0, start_lr=1e-5,
                    end_lr=1e-2, num_steps=30, loss_fn=nn.MSELoss(), beta=0.9)
    assert not found.stopped_early and found.steps == 30
    avg, expect = 0.0, []
    for k, v in enumerate(found.raw_losses):
        avg = 0.9 * avg + 0.1 * v
        expect.append(avg / (1 - 0.9 ** (k + 1)))
    assert found.losses.tolist() == pytest.approx(expect)
    assert found.losses[0] == pytest.approx(found.raw_losses[0])


def test_suggest_on_a_known_curve():
    lrs = np.logspace(-5, 0, 51)
    x = np.log10(lrs)
    # a smooth step down centred at lr = 1e-3, minimum near 1e-1, then up
    losses = 2 - np.tanh(3 * (x + 3)) + np.where(x > -1, 20 * (x + 1) ** 2, 0)
    steep, at_min = _suggest(lrs, losses, skip_start=3)
    assert steep == pytest.approx(1e-3, rel=0.3)
    assert at_min == pytest.approx(lrs[np.argmin(losses)])


def _images(n=192, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 60, (n, 1, 8, 8), generator=g)
    images[labels == 0, :, :, :4] += 180
    images[labels == 1, :, :, 4:] += 180
    return images.clamp(0, 255).to(torch.uint8), labels


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(16, 2))


@pytest.mark.filterwarnings("error::UserWarning")  # no "momentum ignored" warning for a factory
def test_course_loader_and_factory_everything_restored():
    torch.manual_seed(0)
    x, y = _images()
    loader = TensorLoader(x, y, 32, shuffle=True, train=True, device="cpu")  # 6 batches: cycled
    model = _cnn().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loader_state = loader.generator.get_state()
    rng = torch.get_rng_state()
    found = lr_find(model, loader, optimizer=optim.sgd(weight_decay=1e-4,
                                                       lr_mult={"0": 0.1}),
                    start_lr=1e-5, end_lr=1e3, num_steps=60)
    assert found.steps > 6  # ran past one pass of the loader
    assert found.stopped_early  # an lr of 1000 is far too large
    assert 1e-5 < found.suggestion < 10
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k  # weights and batch-norm statistics
    assert not model.training
    assert torch.equal(loader.generator.get_state(), loader_state)
    assert torch.equal(torch.get_rng_state(), rng)
    fig = found.plot()
    assert fig.axes[0].get_xscale() == "log" and len(fig.axes[0].get_lines()) == 3


def test_ready_optimizer_state_and_lr_restored():
    x, y = _images(64)
    loader = TensorLoader(x, y, 32, device="cpu")
    model = _cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for X, Y in loader:  # give it momentum buffers
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), Y).backward()
        opt.step()
    bufs = [opt.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    lr_find(model, loader, optimizer=opt, num_steps=10)
    assert opt.param_groups[0]["lr"] == 0.05
    for p, b in zip(model.parameters(), bufs):
        assert torch.equal(opt.state[p]["momentum_buffer"], b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_find(_cnn(), [], start_lr=1.0, end_lr=0.1)


def test_a_rehearsal_caps_the_range_test_to_two_steps(monkeypatch):
    X, y, _ = _regression()
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    found = lr_find(nn.Linear(8, 1, bias=False), [(X, y)], num_steps=100, loss_fn=nn.MSELoss())
    assert found.steps <= 2 and len(found.lrs) <= 2


def test_a_rehearsal_steps_on_small_batches(monkeypatch):
    X, y, _ = _regression()
    sizes = []

    class Spy(nn.Linear):
        def forward(self, x):
            sizes.append(len(x))
            return super().forward(x)

    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "3")
    lr_find(Spy(8, 1, bias=False), [(X, y)], num_steps=4, loss_fn=nn.MSELoss())
    assert sizes == [3] * 4 and len(X) > 3
