"""The named recipes give fit exactly the optimiser, schedule and loss they describe."""
import pytest
import torch
from torch import nn

from cnnbook import seed_everything
from cnnbook.data import TensorLoader
from cnnbook.train import fit, schedules
from cnnbook.train.recipes import RECIPES, recipe


def _model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _loader(n=96):
    g = torch.Generator().manual_seed(0)
    return TensorLoader(torch.randint(0, 256, (n, 1, 6, 6), generator=g, dtype=torch.uint8),
                        torch.randint(0, 3, (n,), generator=g), 32, shuffle=True, train=True,
                        device="cpu")


def _trace(name, lr, epochs=2):
    """The optimiser's lr and settings at every step of a fit with the named recipe."""
    seen = []

    def spy(opt):
        seen.append({k: opt.param_groups[0][k] for k in ("lr", "momentum", "nesterov")}
                    | {"decays": [g["weight_decay"] for g in opt.param_groups]})

    class Spy:
        def on_batch_end(self, model, optimizer):
            spy(optimizer)

        def __call__(self, row, model, optimizer):
            return False

    seed_everything(0)
    kwargs = recipe(name).fit_kwargs(lr)
    fit(_model(), _loader(), epochs=epochs, callbacks=[Spy()], device="cpu", progress=False,
        record=False, **kwargs)
    return seen, kwargs


def test_d2l_is_plain_sgd_at_a_constant_rate_with_plain_cross_entropy():
    seen, kwargs = _trace("d2l", 0.3)
    assert {s["lr"] for s in seen} == {0.3}
    assert all(s["momentum"] == 0 and not s["nesterov"] for s in seen)
    assert all(d == 0 for s in seen for d in s["decays"])
    assert kwargs["loss_fn"].label_smoothing == 0.0


def test_laptop_is_nesterov_one_cycle_peaking_at_the_rate_with_decay_on_weights_only():
    seen, kwargs = _trace("laptop", 0.3, epochs=4)
    lrs = [s["lr"] for s in seen]   # read after each step: the lr of the step that follows
    curve = schedules.lr_curve(schedules.one_cycle(), 4, 3, 0.3)
    assert lrs[:-1] == pytest.approx(list(curve[1:]), rel=1e-9)
    assert 0.3 * 0.99 < max(curve) <= 0.3 and curve[0] == pytest.approx(0.3 / 25)  # peak ~lr
    assert all(s["nesterov"] for s in seen)
    assert sorted(seen[0]["decays"]) == [0.0, 5e-4]              # no decay on BN and biases
    assert kwargs["loss_fn"].label_smoothing == 0.1


def test_every_recipe_says_what_it_is_and_bad_names_or_rates_get_a_message():
    for name, r in RECIPES.items():
        assert r.name == name and r.summary and r.describe()["recipe"] == name
    with pytest.raises(ValueError, match="unknown recipe 'fast'.*d2l"):
        recipe("fast")
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            recipe("laptop").fit_kwargs(bad)
