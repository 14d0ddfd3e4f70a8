import math

import numpy as np
import pytest
import torch

from cnnbook.train import schedules
from cnnbook.train.lr_finder import LRFinderResult
from cnnbook.widgets.schedule import SCHEDULES, ScheduleExplorer, build_schedule, schedule_summary


@pytest.fixture
def explorer():
    return ScheduleExplorer(epochs=4, batch_size=2048, n_train=10_000)  # 5 steps per epoch


def test_first_render_is_one_cycle_peaking_after_the_warm_up(explorer):
    s = explorer.state
    assert s["error"] is None and explorer.renders == 1
    assert s["kind"] == "one_cycle" and s["steps"] == 20 and s["steps_per_epoch"] == 5
    assert s["peak_lr"] == pytest.approx(0.2)
    assert s["peak_step"] == pytest.approx(5, abs=1)  # one warm-up epoch of 5 steps
    assert s["first_lr"] == pytest.approx(0.2 / 25) and s["final_lr"] < 1e-5
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_state_is_the_pure_function_and_the_closed_forms():
    const = schedule_summary("constant", 0.1, 3, 7)
    assert np.allclose(const["lrs"], 0.1) and const["mean_lr"] == pytest.approx(0.1)
    step = schedule_summary("step", 1.0, 8, 2)
    # divided by 10 at epoch 4 (half) and again at epoch 6 (three quarters)
    assert np.allclose(step["lrs"], [1.0] * 8 + [0.1] * 4 + [0.01] * 4)
    cos = schedule_summary("warmup_cosine", 0.5, 10, 10, warmup_epochs=2)
    assert cos["peak_step"] == 20 and cos["peak_lr"] == pytest.approx(0.5)
    k = np.arange(80)  # the cosine half after the warm-up, to eta_min = 0
    assert np.allclose(cos["lrs"][20:], 0.25 * (1 + np.cos(np.pi * k / 80)), atol=1e-6)
    assert np.allclose(cos["lrs"][:20], np.linspace(0.005, 0.5, 21)[:20], atol=1e-9)


def test_explorer_follows_its_controls(explorer):
    c = explorer.controls
    c["kind"].value = "warmup_cosine"
    c["warmup_epochs"].value = 2.0
    ref = schedule_summary("warmup_cosine", 0.2, 4, 5, 2.0)
    assert explorer.state["peak_step"] == ref["peak_step"] == 10
    assert explorer.state["mean_lr"] == pytest.approx(ref["mean_lr"])
    c["batch_size"].value = 512
    assert explorer.state["steps_per_epoch"] == 20 and explorer.state["steps"] == 80
    c["peak_lr"].value = 1.0
    assert explorer.state["peak_lr"] == pytest.approx(1.0, rel=1e-6)


def test_bad_settings_are_messages_not_exceptions(explorer):
    picture = explorer.image.value
    explorer.controls["warmup_epochs"].value = 10.0  # longer than the 4 epochs
    assert "shorter than the run" in explorer.state["error"]
    assert explorer.image.value == picture
    explorer.controls["kind"].value = "constant"  # a warm-up does not concern it
    assert explorer.state["error"] is None
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive"):
            schedule_summary("constant", bad, 2, 2)
    with pytest.raises(ValueError, match="unknown schedule"):
        build_schedule("linear", 3)
    with pytest.raises(ValueError, match="epochs"):
        schedule_summary("step", 0.1, 0, 5)


def test_every_schedule_matches_fit_stepping_a_real_optimizer():
    """lr_curve runs the factory the way fit does: compare with torch stepping by hand."""
    for kind in SCHEDULES:
        factory = build_schedule(kind, 3, 1.0)
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.3, momentum=0.9)
        sched = factory(opt, 3, 4)
        seen = []
        for _ in range(3):
            for _ in range(4):
                seen.append(opt.param_groups[0]["lr"])
                opt.step()
                if factory.interval == "batch":
                    sched.step()
            if factory.interval == "epoch":
                sched.step()
        assert np.allclose(schedule_summary(kind, 0.3, 3, 4, 1.0)["lrs"], seen)


def test_finder_panel_shades_the_visited_range():
    lrs = np.logspace(-4, 1, 50)
    losses = 2.3 - np.exp(-((np.log10(lrs) + 1) ** 2))
    finder = LRFinderResult(lrs, losses, losses, suggestion=0.05, min_loss_lr=0.1, steps=50,
                            stopped_early=False)
    e = ScheduleExplorer(finder=finder, epochs=3, batch_size=2048, n_train=4096)
    assert e.state["error"] is None
    assert e.state["finder_suggestion"] == pytest.approx(0.05)
    assert e.state["peak_over_suggestion"] == pytest.approx(0.2 / 0.05)
    assert isinstance(schedules.one_cycle(), schedules.Schedule)
