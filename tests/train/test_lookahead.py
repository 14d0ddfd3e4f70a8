"""train.callbacks.Lookahead: the weight averaging of airbench, inside fit."""
import pytest
import torch
from torch import nn

import cnnbook
from cnnbook.train.callbacks import Lookahead


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    y = (X[:, 0] > 0).long()
    return [(X[i:i + 16], y[i:i + 16]) for i in range(0, n, 16)]


def test_decay_schedule_and_argument_checks():
    la = Lookahead(total_steps=100, every=5, max_decay=0.5, power=3)
    assert la.decay(0) == 0 and la.decay(100) == 0.5 and la.decay(50) == pytest.approx(0.0625)
    for bad in (dict(total_steps=0), dict(total_steps=10, every=0),
                dict(total_steps=10, max_decay=1.0)):
        with pytest.raises(ValueError):
            Lookahead(**bad)


def test_it_averages_every_few_steps_and_ends_on_the_average():
    """Replay the rule by hand with the same SGD steps and compare the weights."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    ref = nn.Linear(4, 2)
    ref.load_state_dict(model.state_dict())
    batches = _data()
    la = Lookahead(total_steps=8, every=3, max_decay=0.9, power=1)
    cnnbook.fit(model, batches * 2, None, epochs=1, lr=0.5, optimizer="sgd", callbacks=[la],
                device="cpu", progress=False, live_plot=False)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    avg = {k: v.clone() for k, v in ref.state_dict().items()}
    for step, (X, y) in enumerate(batches * 2, 1):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(X), y).backward()
        opt.step()
        if step % 3 == 0 or step == 8:
            decay = 1.0 if step == 8 else 0.9 * step / 8
            with torch.no_grad():
                for k, w in ref.state_dict().items():
                    avg[k].lerp_(w, 1 - decay)
                    w.copy_(avg[k])
    for k, w in model.state_dict().items():
        assert torch.allclose(w, ref.state_dict()[k], atol=1e-6), k
    assert la.step == 8


def test_state_round_trips_for_resume():
    model = nn.Linear(4, 2)
    la = Lookahead(total_steps=10)
    la.on_fit_start(model, None, [])
    for _ in range(5):
        la.on_batch_end(model, None)
    fresh = Lookahead(total_steps=10)
    fresh.load_state_dict(la.state_dict())
    fresh.on_fit_start(model, None, [{"epoch": 1}])      # a resumed run keeps its average
    assert fresh.step == 5 and fresh.average is la.average
