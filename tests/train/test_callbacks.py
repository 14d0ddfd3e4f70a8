"""Callbacks: plain functions still work; EarlyStopping counts patience and restores the best."""
import pytest
import torch
from torch import nn

from cnnbook import seed_everything
from cnnbook.data import TensorLoader
from cnnbook.train import fit
from cnnbook.train.callbacks import Callback, EarlyStopping, as_callbacks


def _rows(values, key="test_acc"):
    return [{"epoch": i + 1, key: v} for i, v in enumerate(values)]


def _feed(cb, rows, model=None):
    model = model or nn.Linear(1, 1)
    for row in rows:
        if cb(row, model, None):
            return row["epoch"]
    return None


def test_patience_counts_epochs_without_improvement():
    cb = EarlyStopping("test_acc", patience=2, restore_best=False)
    # best 0.5 at epoch 2; epochs 3 and 4 do not beat it: stop at 4
    assert _feed(cb, _rows([0.4, 0.5, 0.5, 0.45, 0.9])) == 4
    assert (cb.best, cb.best_epoch, cb.stopped_epoch) == (0.5, 2, 4)


def test_min_delta_and_min_mode():
    cb = EarlyStopping("test_acc", patience=2, min_delta=0.05, restore_best=False)
    assert _feed(cb, _rows([0.50, 0.54, 0.53, 0.70])) == 3     # +0.04 is not > 0.05
    cb = EarlyStopping("test_acc", patience=2, min_delta=0.05, restore_best=False)
    assert _feed(cb, _rows([0.50, 0.54, 0.56, 0.60, 0.61])) == 5 and cb.best == 0.56
    cb = EarlyStopping("train_loss", patience=1, restore_best=False)
    assert cb.mode == "min"
    assert _feed(cb, _rows([1.0, 0.8, 0.9], "train_loss")) == 3
    assert cb.best == 0.8


def test_nan_never_counts_as_an_improvement():
    cb = EarlyStopping("train_loss", patience=1, restore_best=False)
    assert _feed(cb, _rows([1.0, float("nan")], "train_loss")) == 2 and cb.best == 1.0


def test_bad_settings_and_a_missing_column():
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=-1)
    with pytest.raises(KeyError, match="test_iter"):
        EarlyStopping("test_acc")({"epoch": 1, "train_loss": 1.0}, nn.Linear(1, 1), None)


def test_state_dict_round_trip_continues_identically():
    a = EarlyStopping("test_acc", patience=3)
    model = nn.Linear(2, 2)
    _feed(a, _rows([0.3, 0.6, 0.5]), model)
    b = EarlyStopping("test_acc", patience=3)
    b.load_state_dict(a.state_dict())
    rest = _rows([0.3, 0.6, 0.5, 0.55, 0.58])[3:]
    assert _feed(a, rest, model) == _feed(b, rest, model) == 5
    assert torch.equal(a.best_state["weight"], b.best_state["weight"])


def test_as_callbacks():
    def f(row, model, opt):
        return False

    assert as_callbacks(None) == [] and as_callbacks(f) == [f] and as_callbacks((f, f)) == [f, f]
    with pytest.raises(TypeError, match="callable"):
        as_callbacks([f, "stop"])
    with pytest.raises(TypeError, match="list of callables"):
        as_callbacks(3)


def _loaders():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (256,), generator=g)
    x = torch.randint(0, 60, (256, 1, 6, 6), generator=g)
    x[y == 1, :, :, 3:] += 12   # a faint signal: accuracy climbs over epochs, then wobbles
    x = x.to(torch.uint8)
    return (TensorLoader(x, y, 32, shuffle=True, train=True, device="cpu"),
            TensorLoader(x[:64], y[:64], 64, device="cpu"))


def _model():
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(16, 2))


def test_early_stopping_in_fit_restores_the_best_epochs_weights(results_dir):
    """Oracle: a plain callback copies the weights after every epoch; the final weights must
    equal the copy from the epoch with the best test accuracy (first one on ties)."""
    seed_everything(0)
    tr, te = _loaders()
    snapshots = {}

    def keep(row, model, opt):
        snapshots[row["epoch"]] = {k: v.clone() for k, v in model.state_dict().items()}

    stopper = EarlyStopping("test_acc", patience=2)
    model = _model()
    result = fit(model, tr, te, epochs=8, lr=2.0, callbacks=[keep, stopper], name="es",
                 device="cpu", progress=False)
    hist = result.history
    accs = hist["test_acc"].tolist()
    best_epoch = accs.index(max(accs)) + 1
    assert stopper.best_epoch == best_epoch and 1 < best_epoch
    # it stopped patience (2) epochs after the best, before the 8 asked for
    assert len(hist) == stopper.stopped_epoch == best_epoch + 2 < 8
    assert not torch.equal(model.state_dict()["4.weight"], snapshots[len(hist)]["4.weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[best_epoch][k]), k
    rec = result.record
    assert rec["restored_epoch"] == best_epoch and rec["test_acc"] == max(accs)
    assert rec["early_stopping"]["best_epoch"] == best_epoch


def test_hooks_are_called_and_plain_callables_still_work(results_dir):
    calls = []

    class Spy(Callback):
        def on_fit_start(self, model, optimizer, history):   # handed fit's own optimiser
            calls.append(("start", len(history), type(optimizer).__name__,
                          optimizer.param_groups[0]["lr"]))

        def __call__(self, row, model, optimizer):
            calls.append(("epoch", row["epoch"]))
            return row["epoch"] == 2

        def on_fit_end(self, model, optimizer, history):
            calls.append(("end", len(history), type(optimizer).__name__))
            return {"spy": "seen"}

    tr, te = _loaders()
    result = fit(_model(), tr, te, epochs=5, lr=0.3, callbacks=[Spy(), lambda r, m, o: None],
                 device="cpu", progress=False, record=False)
    assert calls == [("start", 0, "SGD", 0.3), ("epoch", 1), ("epoch", 2), ("end", 2, "SGD")]
    assert len(result.history) == 2 and result.record["spy"] == "seen"
