import json

import pandas as pd
import pytest
import torch
from torch import nn

from cnnbook import seed_everything
from cnnbook.data import TensorLoader
from cnnbook.train import TrainingDiverged, evaluate, fit, init_weights, predict


def _separable_data(n=512, seed=0):
    """Two classes of 8x8 images: a bright left half or a bright right half."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 60, (n, 1, 8, 8), generator=g, dtype=torch.int64)
    images[labels == 0, :, :, :4] += 180
    images[labels == 1, :, :, 4:] += 180
    return images.clamp(0, 255).to(torch.uint8), labels


def _model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 2))


def _loaders():
    x, y = _separable_data()
    return (TensorLoader(x, y, 64, shuffle=True, train=True, device="cpu"),
            TensorLoader(x[:128], y[:128], 64, device="cpu"))


def test_fit_learns_and_records(results_dir):
    seed_everything(0)
    tr, te = _loaders()
    result = fit(_model(), tr, te, epochs=3, lr=0.5, name="toy", chapter="00", profile="smoke",
                 device="cpu", progress=False)
    hist = result.history
    assert isinstance(hist, pd.DataFrame) and list(hist["epoch"]) == [1, 2, 3]
    assert {"train_loss", "train_acc", "test_acc", "seconds", "examples_per_sec"} <= set(hist)
    assert result.test_acc > 0.95
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    rec = json.loads(result.record_path.read_text())
    assert result.record_path == results_dir / "smoke" / "00-toy.json"
    assert rec["test_acc"] == result.test_acc and rec["profile"] == "smoke" and rec["epochs"] == 3
    assert rec["examples_per_sec"] > 0 and rec["params"] == sum(p.numel() for p in _model().parameters())


def test_fit_is_repeatable(results_dir):
    runs = []
    for _ in range(2):
        seed_everything(1)
        tr, te = _loaders()
        runs.append(fit(_model(), tr, te, epochs=2, lr=0.3, device="cpu", progress=False,
                        record=False).history[["train_loss", "test_acc"]])
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_nan_loss_stops_training_with_a_message(results_dir):
    seed_everything(0)
    tr, te = _loaders()
    with pytest.raises(TrainingDiverged, match="learning rate"):
        fit(_model(), tr, te, epochs=3, lr=1e30, device="cpu", progress=False, check_every=1)


def test_callback_can_stop_early(results_dir):
    tr, te = _loaders()
    seen = []

    def stop_after_two(row, model, opt):
        seen.append(row["epoch"])
        return row["epoch"] == 2

    result = fit(_model(), tr, te, epochs=5, lr=0.3, device="cpu", progress=False,
                 callbacks=[stop_after_two], record=False)
    assert seen == [1, 2] and len(result.history) == 2


def test_scheduler_steps_per_epoch(results_dir):
    tr, te = _loaders()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    result = fit(model, tr, te, epochs=3, lr=0.4, optimizer=opt, scheduler=sched,
                 device="cpu", progress=False, record=False)
    assert result.history["lr"].tolist() == pytest.approx([0.4, 0.2, 0.1])


def test_evaluate_predict_and_init():
    tr, te = _loaders()
    model = init_weights(_model(), "xavier")
    out = evaluate(model, te)
    assert 0.0 <= out["acc"] <= 1.0 and out["loss"] > 0
    preds, labels = predict(model, te)
    assert preds.shape == labels.shape == (128,)
    assert out["acc"] == pytest.approx((preds == labels).float().mean().item())
    with pytest.raises(ValueError, match="init scheme"):
        init_weights(_model(), "magic")
    with pytest.raises(ValueError, match="optimizer"):
        fit(_model(), tr, te, epochs=1, optimizer="lbfgs2", device="cpu", progress=False)
