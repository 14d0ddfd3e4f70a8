import io
import math

import numpy as np
import pytest
import torch

from cnnbook.train.schedules import (constant, lr_curve, one_cycle, plot_schedules, step,
                                     warmup_cosine)


def _opt(lrs=(0.1,), momentum=0.9):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)],
                           lr=lrs[0], momentum=momentum)


def _run(factory, opt, epochs, spe, n=None):
    """Step like fit; the lr of every group before each batch."""
    s = factory(opt, epochs, spe)
    out = []
    for i in range(n if n is not None else epochs * spe):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        if factory.interval == "batch" or (i + 1) % spe == 0:
            s.step()
    return s, np.array(out)


def test_intervals():
    assert constant().interval == "epoch" and step(3).interval == "epoch"
    assert warmup_cosine().interval == "batch" and one_cycle().interval == "batch"


def test_warmup_then_cosine_against_the_formula():
    epochs, spe, lr, eta_min, s0 = 4, 10, 0.1, 1e-4, 0.01
    curve = lr_curve(warmup_cosine(1, eta_min=eta_min, start_factor=s0), epochs, spe, lr)
    assert len(curve) == 40
    W, T = 10, 30
    warm = [lr * (s0 + (1 - s0) * i / W) for i in range(W)]
    cos = [eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(T)]
    assert curve.tolist() == pytest.approx(warm + cos, rel=1e-9, abs=1e-12)
    assert curve[W] == pytest.approx(lr, rel=1e-12)      # the warm-up ends exactly at the lr ...
    assert curve[W - 1] < lr and np.all(np.diff(curve[:W + 1]) > 0)  # ... and not before
    assert np.all(np.diff(curve[W:]) < 0)
    # the same warm-up given as a fraction of training
    frac = lr_curve(warmup_cosine(warmup_fraction=0.25, eta_min=eta_min, start_factor=s0),
                    epochs, spe, lr)
    assert frac.tolist() == pytest.approx(curve.tolist(), rel=1e-12)


def test_cosine_ends_at_eta_min_per_group():
    opt = _opt((0.2, 0.02))
    s, lrs = _run(warmup_cosine(0.5, eta_min=1e-5), opt, 3, 8)
    assert lrs[4] == pytest.approx([0.2, 0.02])  # both groups reach their own lr after 4 steps
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-5, 1e-5], abs=1e-12)
    no_warm = lr_curve(warmup_cosine(0, eta_min=0.0), 2, 5, 1.0)
    assert no_warm[0] == 1.0 and no_warm[-1] == pytest.approx((1 + math.cos(math.pi * 9 / 10)) / 2)
    with pytest.raises(ValueError, match="shorter than training"):
        lr_curve(warmup_cosine(5), 4, 10, 0.1)


def test_one_cycle_peaks_at_max_lr_and_keeps_group_ratios():
    total, max_lr = 100, 0.5
    curve = lr_curve(one_cycle(max_lr, pct_start=0.3), 10, 10, 0.1)
    assert curve.max() == pytest.approx(max_lr)
    assert int(curve.argmax()) == pytest.approx(0.3 * total, abs=1)
    assert curve[0] == pytest.approx(max_lr / 25)
    assert curve[-1] < max_lr / 25 / 100
    opt = _opt((0.1, 0.01))
    _, lrs = _run(one_cycle(1.0), opt, 5, 10)
    assert lrs.max(0) == pytest.approx([1.0, 0.1])
    # max_lr=None peaks at the optimiser's own lr; plain SGD's momentum is left alone
    opt = _opt((0.3,), momentum=0.0)
    _, lrs = _run(one_cycle(), opt, 2, 10)
    assert lrs.max() == pytest.approx(0.3) and opt.param_groups[0]["momentum"] == 0.0
    opt = _opt((0.3,), momentum=0.9)
    _run(one_cycle(), opt, 2, 10, n=3)
    assert 0.85 < opt.param_groups[0]["momentum"] < 0.95  # cycled down from max_momentum


def test_step_and_constant_per_epoch():
    curve = lr_curve(step(2, gamma=0.5), 5, 3, 0.8)
    assert curve.tolist() == pytest.approx(np.repeat([0.8, 0.8, 0.4, 0.4, 0.2], 3).tolist())
    curve = lr_curve(step([1, 3], gamma=0.1), 4, 2, 1.0)
    assert curve.tolist() == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01])
    assert lr_curve(constant(), 3, 4, 0.05).tolist() == [0.05] * 12
    with pytest.raises(ValueError):
        step(0)


@pytest.mark.parametrize("factory", [constant(), step(1, 0.5), warmup_cosine(1, 1e-4),
                                     one_cycle(0.4)], ids=repr)
def test_state_dict_round_trip(factory):
    """Stop after 7 steps, save optimiser + scheduler, rebuild, load: the rest is identical."""
    epochs, spe = 3, 5
    _, full = _run(factory, _opt(), epochs, spe)
    opt = _opt()
    s, first = _run(factory, opt, epochs, spe, n=7)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": s.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    opt2 = _opt((123.0,))
    s2 = factory(opt2, epochs, spe)
    opt2.load_state_dict(saved["opt"])
    s2.load_state_dict(saved["sched"])
    rest = []
    for i in range(7, epochs * spe):
        rest.append([g["lr"] for g in opt2.param_groups])
        opt2.step()
        if factory.interval == "batch" or (i + 1) % spe == 0:
            s2.step()
    got = np.concatenate([first, np.array(rest)]).ravel()
    assert got.tolist() == pytest.approx(full.ravel().tolist(), rel=1e-12)


def test_plot_schedules():
    fig = plot_schedules({"constant": constant(), "cosine": warmup_cosine(1),
                          "one-cycle": one_cycle(0.2)}, 4, 10, 0.1)
    ax = fig.axes[0]
    assert [l.get_label() for l in ax.get_lines()] == ["constant", "cosine", "one-cycle"]
    assert ax.get_lines()[2].get_ydata().max() == pytest.approx(0.2)
