"""Checkpoints: atomic files, last/best, resume in-process, refusal of another run's file."""
import json
import os
import random
import stat

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cnnbook import seed_everything
from cnnbook.data import BatchTransform, TensorLoader
from cnnbook.train import CheckpointMismatch, EarlyStopping, fit, optim, schedules
from cnnbook.train.checkpoint import (Checkpoint, atomic_save, differences, loader_state,
                                      rng_state, set_loader_state, set_rng_state)


def test_atomic_save_mode_follows_the_umask_and_leaves_no_temporary(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_save({"x": torch.arange(3)}, tmp_path / "sub" / "a.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644      # not mkstemp's 0600
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = atomic_save({"v": 1}, tmp_path / "a.pt")

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"v": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_rng_state_round_trip():
    seed_everything(3)
    state = rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    set_rng_state(state)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


class _Wrapper:
    """A loader wrapping another one, as mixup's ``BatchMixer.wrap`` does."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        return iter(self.loader)


def test_loader_state_of_a_torch_dataloader_and_of_a_wrapped_loader():
    data = torch.utils.data.TensorDataset(torch.arange(20.0))
    dl = torch.utils.data.DataLoader(data, batch_size=5, shuffle=True,
                                     generator=torch.Generator().manual_seed(1))
    tl, _ = _loaders()
    for loader in (dl, _Wrapper(tl)):
        state = loader_state(loader)
        first = [b[-1].tolist() for b in loader]
        set_loader_state(loader, state)
        assert [b[-1].tolist() for b in loader] == first
    assert loader_state(_Wrapper([1, 2])) is None and loader_state(None) is None


def test_checkpoint_path_must_be_a_folder(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        Checkpoint(tmp_path / "run.pt")


# --- fit with checkpoints --------------------------------------------------------------

def _loaders(seed=0, batch=32):
    g = torch.Generator().manual_seed(7)
    y = torch.randint(0, 3, (192,), generator=g)
    x = torch.randint(0, 90, (192, 1, 8, 8), generator=g)
    for c in range(3):
        x[y == c, :, c * 2:c * 2 + 3] += 60
    x = x.to(torch.uint8)
    aug = BatchTransform(flip=True, crop_padding=1)
    return (TensorLoader(x, y, batch, shuffle=True, transform=aug, train=True, device="cpu",
                         seed=seed),
            TensorLoader(x[:64], y[:64], 32, device="cpu"))


class _Net(nn.Module):
    """A tiny CNN with dropout (so the torch RNG matters); forward raises KeyboardInterrupt
    on training call number ``interrupt_at`` and anything at all when ``forbid``."""

    def __init__(self, width=4, interrupt_at=None):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.3),
                                  nn.Linear(4 * width, 3))
        self.calls, self.interrupt_at, self.forbid = 0, interrupt_at, False

    def forward(self, x):
        if self.forbid:
            raise AssertionError("a finished run was trained again")
        if self.training:
            self.calls += 1
            if self.calls == self.interrupt_at:
                raise KeyboardInterrupt
        return self.body(x)


def _run(folder, interrupt_at=None, epochs=4, width=4, batch=32, **kwargs):
    seed_everything(0)
    model = _Net(width, interrupt_at)
    tr, te = _loaders(batch=batch)
    settings = dict(epochs=epochs, optimizer=optim.sgd(momentum=0.9, weight_decay=5e-4), lr=0.2,
                    scheduler=schedules.one_cycle(), callbacks=[EarlyStopping(patience=50)],
                    checkpoint=folder, device="cpu", progress=False, record=False, name="ckpt")
    return model, fit(model, tr, te, **{**settings, **kwargs})


def _same_run(model_a, result_a, model_b, result_b):
    cols = ["epoch", "train_loss", "train_acc", "test_acc", "lr"]
    pd.testing.assert_frame_equal(result_a.history[cols], result_b.history[cols], check_exact=True)
    sa, sb = model_a.state_dict(), model_b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_interrupted_then_resumed_equals_uninterrupted_bit_for_bit(tmp_path, capsys):
    ref_model, ref = _run(None, epochs=3)
    steps = 6                                     # 192 / 32 training steps per epoch
    model, part = _run(tmp_path / "run", interrupt_at=steps + 4, epochs=3)   # in epoch 2
    assert part.interrupted and len(part.history) == 1
    assert (tmp_path / "run" / "last.pt").exists() and (tmp_path / "run" / "best.pt").exists()
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert 0 < saved["totals"]["wall"] <= part.seconds   # epoch 1's time is in the checkpoint
    assert saved["best"] == {"monitor": "test_acc", "value": part.history["test_acc"][0],
                             "epoch": 1}
    capsys.readouterr()
    model, resumed = _run(tmp_path / "run", epochs=3, progress=True)   # fresh model and
    assert model.calls == 2 * steps               # loaders: trained only epochs 2 and 3
    last = tmp_path / "run" / "last.pt"
    assert capsys.readouterr().out == f"fit: resuming from {last} after epoch 1 of 3\n"
    assert resumed.seconds > saved["totals"]["wall"]   # and counts on from it
    _same_run(ref_model, ref, model, resumed)


def test_best_holds_the_best_epoch_and_a_finished_run_is_not_trained_again(tmp_path, capsys):
    model, result = _run(tmp_path / "run", epochs=3)
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    accs = result.history["test_acc"].tolist()
    assert len(best["history"]) == accs.index(max(accs)) + 1
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert last["result"]["test_acc"] == result.test_acc and len(last["history"]) == 3

    seed_everything(1)
    again = _Net()
    again.forbid = True
    tr, te = _loaders()
    stored = fit(again, tr, te, epochs=3, optimizer=optim.sgd(momentum=0.9, weight_decay=5e-4),
                 lr=0.2, scheduler=schedules.one_cycle(), callbacks=[EarlyStopping(patience=50)],
                 checkpoint=tmp_path / "run", device="cpu", progress=True, record=False,
                 name="ckpt")
    _same_run(model, result, again, stored)
    # the stored result, field by field, as the finished run returned it
    assert (stored.seconds, stored.examples_per_sec) == (result.seconds, result.examples_per_sec)
    assert stored.record == json.loads(json.dumps(result.record, default=str))
    assert stored.record_path is None and stored.interrupted is False
    assert capsys.readouterr().out == (
        f"fit: {tmp_path / 'run' / 'last.pt'} holds this run, finished: returning its result "
        "without training (delete the folder to train again)\n")


def test_a_finished_run_with_values_json_cannot_hold_stores_them_as_text(tmp_path):
    # extra= (and callbacks' on_fit_end) may carry paths, numpy numbers...: the stored result
    # keeps their text rather than losing the finished run
    _, result = _run(tmp_path / "run", epochs=1, extra={"source": tmp_path, "steps": np.int64(6)})
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert last["result"]["source"] == str(tmp_path) and last["result"]["steps"] == "6"
    assert result.record["source"] == tmp_path   # the returned record keeps the objects


def test_a_run_a_callback_stopped_is_not_trained_on_when_resumed(tmp_path):
    """Stopped by a callback at epoch 2 of 4, then the process died before the final save:
    resuming must not train the epochs the callback had cut off."""
    class StopAtEpoch2:
        crash = True

        def __call__(self, row, model, opt):
            return row["epoch"] == 2

        def on_fit_end(self, model, opt, history):
            if self.crash:
                raise RuntimeError("the power went off")

    stopper = StopAtEpoch2()
    with pytest.raises(RuntimeError, match="power"):
        _run(tmp_path / "run", epochs=4, callbacks=[EarlyStopping(patience=50), stopper])
    stopper.crash = False
    model, resumed = _run(tmp_path / "run", epochs=4,
                          callbacks=[EarlyStopping(patience=50), stopper])
    assert model.calls == 0 and resumed.history["epoch"].tolist() == [1, 2]


def test_another_model_or_run_is_refused_with_the_difference(tmp_path):
    _run(tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointMismatch, match=r"last\.pt.*\n.*parameters differ.*different shapes"):
        _run(tmp_path / "run", epochs=1, width=5)
    with pytest.raises(CheckpointMismatch, match="epochs: checkpoint has 1, this run has 2"):
        _run(tmp_path / "run", epochs=2)
    with pytest.raises(CheckpointMismatch, match="optimizer: checkpoint has 'SGD', this run has 'Adam'"):
        _run(tmp_path / "run", epochs=1, optimizer="adam")
    with pytest.raises(CheckpointMismatch, match="stateful_callbacks"):
        _run(tmp_path / "run", epochs=1, callbacks=[])


@pytest.mark.parametrize("change, difference", [
    ({"lr": 0.1}, "lr: checkpoint has 0.2, this run has 0.1"),
    ({"name": "other"}, "name: checkpoint has 'ckpt', this run has 'other'"),
    ({"batch": 48}, "batch_size: checkpoint has 32, this run has 48"),
    ({"scheduler": None}, "scheduler: checkpoint has 'one_cycle"),
    ({"precision": "bf16"}, "precision: checkpoint has 'fp32', this run has 'bf16'"),
    ({"clip_grad_norm": 1.0}, "clip_grad_norm: checkpoint has None, this run has 1.0"),
    ({"loss_fn": nn.functional.cross_entropy},
     "loss_fn: checkpoint has \"CrossEntropyLoss(ignore_index=-100, label_smoothing=0.0, "
     "reduction='mean')\", this run has 'cross_entropy'"),
    # a loss module's repr hides its settings: the recipes' label smoothing is one of them
    ({"loss_fn": nn.CrossEntropyLoss(label_smoothing=0.1)},
     "loss_fn: checkpoint has \"CrossEntropyLoss(ignore_index=-100, label_smoothing=0.0, "
     "reduction='mean')\", this run has \"CrossEntropyLoss(ignore_index=-100, "
     "label_smoothing=0.1, reduction='mean')\""),
])
def test_each_setting_of_the_run_is_named_when_it_differs_on_resume(tmp_path, change, difference):
    _run(tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointMismatch) as refused:
        _run(tmp_path / "run", epochs=1, **change)
    assert f"\n  {difference}" in str(refused.value)


def test_without_a_test_set_best_keeps_the_lowest_training_loss(tmp_path):
    seed_everything(0)
    tr, _ = _loaders()
    result = fit(_Net(), tr, epochs=3, lr=0.2, checkpoint=tmp_path / "run", device="cpu",
                 progress=False, record=False)
    losses = result.history["train_loss"].tolist()
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["best"] == {"monitor": "train_loss", "value": min(losses),
                            "epoch": losses.index(min(losses)) + 1}


def test_differences_lists_each_changed_setting():
    a = {"model": "A", "parameters": [["w", [2, 3]], ["b", [2]]], "epochs": 3}
    b = {"model": "B", "parameters": [["w", [2, 4]], ["c", [2]]], "epochs": 3}
    diff = differences(a, b)
    assert diff[0] == "model: checkpoint has 'A', this run has 'B'"
    assert "only in the checkpoint: ['b']" in diff[1] and "only in this model: ['c']" in diff[1]
    assert "w [2, 3] vs [2, 4]" in diff[1] and differences(a, a) == []


def test_a_corrupt_file_gets_a_clear_error(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatch, match="cannot read the checkpoint .*last.pt"):
        _run(tmp_path / "run", epochs=1)
