import json
import math
import os
import time

import pandas as pd
import pytest
import torch
from torch import nn

from cnnbook import seed_everything
from cnnbook.config import describe_device
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


class _Spy(nn.Module):
    """``inner`` with a spy in front: ``record(spy, x)`` sees each batch (and the spy's
    mode) before ``inner`` computes on it."""

    def __init__(self, inner: nn.Module, record):
        super().__init__()
        self.inner, self.record = inner, record

    def forward(self, x):
        self.record(self, x)
        return self.inner(x)


def test_fit_learns_and_records(results_dir):
    seed_everything(0)
    tr, te = _loaders()
    started = time.perf_counter()
    result = fit(_model(), tr, te, epochs=3, lr=0.5, name="toy", chapter="00", profile="smoke",
                 device="cpu", progress=False)
    elapsed = time.perf_counter() - started
    hist = result.history
    # the times are measured, within the call's own wall time (the oracle: a clock outside)
    assert 0 < hist["seconds"].sum() <= result.seconds <= elapsed
    assert isinstance(hist, pd.DataFrame) and list(hist["epoch"]) == [1, 2, 3]
    assert {"train_loss", "train_acc", "test_acc", "seconds", "examples_per_sec"} <= set(hist)
    assert result.test_acc > 0.95
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    rec = json.loads(result.record_path.read_text())
    assert result.record_path == results_dir / "smoke" / "00-toy.json"
    assert rec["test_acc"] == result.test_acc and rec["profile"] == "smoke" and rec["epochs"] == 3
    assert rec["params"] == sum(p.numel() for p in _model().parameters())
    assert {k: rec[k] for k in ("name", "chapter", "lr", "batch_size", "train_examples", "device")} \
        == {"name": "toy", "chapter": "00", "lr": 0.5, "batch_size": 64, "train_examples": 512,
            "device": describe_device(torch.device("cpu"))}
    assert hist["examples_per_sec"].tolist() == pytest.approx((512 / hist["seconds"]).tolist())
    assert result.examples_per_sec == rec["examples_per_sec"]
    # throughput: the 3 x 512 examples trained on, over the epochs' measured seconds
    assert rec["examples_per_sec"] == pytest.approx(3 * 512 / hist["seconds"].sum(), rel=1e-9)


def test_record_keeps_the_best_epoch_beside_the_last():
    from cnnbook.train.loop import _record

    history = [{"epoch": 1, "train_loss": 1.0, "test_acc": 0.50},
               {"epoch": 2, "train_loss": 0.8, "test_acc": 0.81},
               {"epoch": 3, "train_loss": 0.7, "test_acc": 0.74}]
    totals = {"train_seconds": 2.0, "train_examples": 100, "wall": 3.0}
    args = (totals, _model(), torch.device("cpu"), None, "toy", "00", "smoke", 0.1, "fp32", None, None)
    rec = _record(history, *args)
    assert (rec["test_acc"], rec["best_test_acc"], rec["best_epoch"]) == (0.74, 0.81, 2)
    untested = [{k: v for k, v in row.items() if k != "test_acc"} for row in history]
    rec = _record(untested, *args)
    assert rec["best_test_acc"] is None and rec["best_epoch"] is None


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


# --- evaluate and predict against values computed here, in one piece ---------------------

def _uneven_split(n=130, seed=3):
    """Images whose labels a random model gets partly right, in batches of 48, 48 and 34."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 8, 8), generator=g).to(torch.uint8)
    y = torch.randint(0, 2, (n,), generator=g)
    return x, y, TensorLoader(x, y, 48, device="cpu")


def test_evaluate_gives_the_mean_cross_entropy_and_accuracy_over_all_examples():
    """Oracle: one forward pass over the whole split, the loss written out as -log softmax."""
    torch.manual_seed(0)
    model = _model()
    x, y, loader = _uneven_split()
    out = evaluate(model, loader)
    with torch.no_grad():
        logits = model(x.float() / 255)
    nll = -(logits - logits.exp().sum(1, keepdim=True).log())[torch.arange(len(y)), y]
    correct = sum(int(row.max() == row[label]) for row, label in zip(logits, y))
    assert out["loss"] == pytest.approx(float(nll.mean()), rel=1e-5)
    assert out["acc"] == pytest.approx(correct / len(y))
    assert 0.2 < out["acc"] < 0.8   # a random model: neither all right nor all wrong
    # a different loss function is used as given
    l1 = evaluate(model, loader, loss_fn=lambda z, t: (z[:, 0] - t.float()).abs().mean())
    assert l1["loss"] == pytest.approx(float((logits[:, 0] - y.float()).abs().mean()), rel=1e-5)


@pytest.mark.parametrize("helper", [evaluate, predict])
@pytest.mark.parametrize("mode", [True, False])
def test_evaluate_and_predict_run_in_eval_mode_and_restore_the_mode(helper, mode):
    seen = []
    model = _Spy(_model(), lambda spy, x: seen.append(spy.training)).train(mode)
    helper(model, _uneven_split()[2])
    assert seen and not any(seen)                 # every batch in eval mode
    assert model.training is mode and model.inner[0].training is mode


# --- init_weights against the schemes' own formulas ----------------------------------------

def test_xavier_init_has_glorots_bound_and_zero_biases():
    """Glorot & Bengio: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), std a / sqrt(3)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(16, 64, 3), nn.Flatten(), nn.Linear(400, 300))
    init_weights(model, "xavier")
    for layer, fan_in, fan_out in [(model[0], 16 * 9, 64 * 9), (model[2], 400, 300)]:
        bound = (6 / (fan_in + fan_out)) ** 0.5
        w = layer.weight.detach()
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.95 * bound
        assert float(w.std()) == pytest.approx(bound / 3 ** 0.5, rel=0.03)
        assert torch.equal(layer.bias.detach(), torch.zeros_like(layer.bias))


def test_init_weights_default_scheme_is_xavier():
    """Same seed, same draws: init_weights(model) is init_weights(model, "xavier")."""
    def layer():
        return nn.Sequential(nn.Linear(400, 300))

    torch.manual_seed(0)
    default = init_weights(layer())[0].weight.detach()
    torch.manual_seed(0)
    xavier = init_weights(layer(), "xavier")[0].weight.detach()
    assert torch.equal(default, xavier)
    bound = (6 / (400 + 300)) ** 0.5
    assert 0.95 * bound < float(default.abs().max()) <= bound


def test_kaiming_init_uses_fan_out_and_zero_biases():
    """He et al. with mode fan_out: N(0, 2 / (out_channels * k * k))."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 64, 3)
    init_weights(nn.Sequential(conv), "kaiming")
    assert float(conv.weight.std()) == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.03)
    assert abs(float(conv.weight.mean())) < 0.01
    assert torch.equal(conv.bias.detach(), torch.zeros(64))


def test_fit_with_init_reinitialises_the_weights(results_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    stats = []
    fit(model, [(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]))], epochs=1, lr=1e-9,
        init="kaiming", device="cpu", progress=False, record=False,
        callbacks=[lambda row, m, o: stats.append(float(m[1].weight.std()))])
    assert stats[0] == pytest.approx((2 / 2) ** 0.5, rel=0.25)   # fan_out = 2: std 1, not 0.07


# --- fit's steps and history against a loop written out here ------------------------------

def _softmax_regression_grad(W, b, x, y, classes=4):
    """Gradient of the mean cross-entropy of softmax(x W^T + b), derived by hand."""
    p = torch.softmax(x @ W.T + b, dim=1)
    delta = (p - nn.functional.one_hot(y, classes).float()) / len(y)
    return delta.T @ x, delta.sum(0)


def test_two_sgd_steps_use_only_their_own_batchs_gradient(results_dir):
    """A loop that forgets zero_grad adds the first batch's gradient to the second step."""
    torch.manual_seed(0)
    batches = [(torch.randn(16, 1, 2, 3), torch.randint(0, 4, (16,))) for _ in range(2)]
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    W, b = model[1].weight.detach().clone(), model[1].bias.detach().clone()
    fit(model, batches, epochs=1, lr=0.5, device="cpu", progress=False, record=False)
    for X, y in batches:
        gW, gb = _softmax_regression_grad(W, b, X.flatten(1), y)
        W, b = W - 0.5 * gW, b - 0.5 * gb
    assert torch.allclose(model[1].weight, W, atol=1e-6)
    assert torch.allclose(model[1].bias, b, atol=1e-6)


def test_history_train_loss_and_accuracy_are_means_over_every_example(results_dir):
    """With a frozen model (lr 0) the epoch's train loss and accuracy are those of one pass."""
    torch.manual_seed(0)
    model = _model()
    x, y, loader = _uneven_split()
    with torch.no_grad():
        logits = model(x.float() / 255)
    expected_loss = float(nn.functional.cross_entropy(logits, y, reduction="sum")) / len(y)
    expected_acc = float((logits.argmax(1) == y).sum()) / len(y)
    frozen = lambda m: torch.optim.SGD(m.parameters(), lr=0.0)   # noqa: E731
    result = fit(model, loader, loader, epochs=1, optimizer=frozen, device="cpu",
                 progress=False, record=False)
    row = result.history.iloc[0]
    assert row["train_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert row["train_acc"] == pytest.approx(expected_acc)
    assert row["test_acc"] == pytest.approx(expected_acc)
    assert 0.2 < expected_acc < 0.8


def test_fit_trains_in_training_mode_every_epoch(results_dir):
    """evaluate() switches to eval mode after each epoch: fit must switch back."""
    flags = []

    def record(spy, x):
        if torch.is_grad_enabled():   # a training step, not evaluate()
            flags.append(spy.training)

    tr, te = _loaders()
    model = _Spy(_model(), record).eval()
    fit(model, tr, te, epochs=2, lr=0.1, device="cpu", progress=False, record=False)
    assert len(flags) == 2 * len(tr) and all(flags)


# --- one step against a hand-computed update ------------------------------------------

def test_one_sgd_step_equals_the_hand_computed_update(results_dir):
    """Softmax regression: grad_W = (softmax(XW^T + b) - onehot)^T X / N, no autograd."""
    torch.manual_seed(0)
    X = torch.randn(16, 1, 2, 3)
    y = torch.randint(0, 4, (16,))
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    W0, b0 = model[1].weight.detach().clone(), model[1].bias.detach().clone()
    fit(model, [(X, y)], epochs=1, lr=0.5, device="cpu", progress=False, record=False)
    x = X.flatten(1)
    p = torch.softmax(x @ W0.T + b0, dim=1)
    delta = (p - nn.functional.one_hot(y, 4).float()) / len(y)
    assert torch.allclose(model[1].weight, W0 - 0.5 * delta.T @ x, atol=1e-6)
    assert torch.allclose(model[1].bias, b0 - 0.5 * delta.sum(0), atol=1e-6)


def test_fit_defaults_are_ten_epochs_of_plain_sgd_at_lr_0_1_with_a_progress_bar(results_dir,
                                                                               capsys):
    """Oracle: ten hand-computed SGD steps (lr 0.1, no momentum, no weight decay)."""
    torch.manual_seed(0)
    X, y = torch.randn(8, 1, 2, 3), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    W, b = model[1].weight.detach().clone(), model[1].bias.detach().clone()
    result = fit(model, [(X, y)], device="cpu")
    for _ in range(10):
        gW, gb = _softmax_regression_grad(W, b, X.flatten(1), y)
        W, b = W - 0.1 * gW, b - 0.1 * gb
    assert list(result.history["epoch"]) == list(range(1, 11))
    assert result.history["lr"].tolist() == [0.1] * 10 and result.record["lr"] == 0.1
    assert torch.allclose(model[1].weight, W, atol=1e-6)
    assert torch.allclose(model[1].bias, b, atol=1e-6)
    assert "epoch 1/10" in capsys.readouterr().err   # the bar is on by default
    assert result.record_path is not None            # and so is the result record
    assert result.record["name"] == "sequential"     # named after the model's class
    assert result.record["train_seconds"] == pytest.approx(result.history["seconds"].sum())


def test_weight_decay_is_the_hand_computed_l2_step_and_cpu_models_go_channels_last(results_dir):
    """SGD with weight decay wd: W <- W - lr (grad + wd W), biases included (torch's SGD)."""
    torch.manual_seed(0)
    X, y = torch.randn(8, 1, 2, 3), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    W, b = model[1].weight.detach().clone(), model[1].bias.detach().clone()
    fit(model, [(X, y)], epochs=1, lr=0.5, weight_decay=0.1, device="cpu", progress=False,
        record=False)
    gW, gb = _softmax_regression_grad(W, b, X.flatten(1), y)
    assert torch.allclose(model[1].weight, W - 0.5 * (gW + 0.1 * W), atol=1e-6)
    assert torch.allclose(model[1].bias, b - 0.5 * (gb + 0.1 * b), atol=1e-6)
    def conv_net():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    conv = conv_net()
    assert not conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    fit(conv, [(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 3, 2]))], epochs=1,
        device="cpu", progress=False, record=False)
    assert conv[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_the_loss_is_checked_every_25_steps_by_default(results_dir):
    """A NaN input in batch 20 of 30: the check at step 25 sees it, not the one at 50."""
    torch.manual_seed(0)
    batches = [(torch.randn(2, 6), torch.tensor([0, 1])) for _ in range(30)]
    batches[19][0][0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="^the training loss became nan in epoch 1 by "
                                               "step 25: "):
        fit(nn.Linear(6, 2), batches, epochs=1, device="cpu", progress=False, record=False)


def test_fit_trains_on_the_device_given_and_asks_get_device_only_without_one(monkeypatch,
                                                                           results_dir):
    import cnnbook.train.loop as loop

    asked = []
    monkeypatch.setattr(loop, "get_device", lambda: asked.append("asked") or torch.device("cpu"))
    batch = [(torch.randn(4, 6), torch.tensor([0, 1, 1, 0]))]
    fit(nn.Linear(6, 2), batch, epochs=1, device="cpu", progress=False, record=False)
    assert asked == []
    fit(nn.Linear(6, 2), batch, epochs=1, progress=False, record=False)
    assert asked == ["asked"]


# --- gradient clipping ----------------------------------------------------------------

def test_clipping_matches_a_hand_written_loop_and_counts_clipped_steps(results_dir):
    """Oracle: the same training written out by hand, norm and scale computed by hand."""
    max_norm = 0.25
    seed_everything(0)
    model = _model()
    reference = _model()
    reference.load_state_dict(model.state_dict())
    tr, _ = _loaders()
    result = fit(model, tr, epochs=2, lr=0.5, clip_grad_norm=max_norm, device="cpu",
                 progress=False, record=False)

    tr, _ = _loaders()
    opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    fractions = []
    for _ in range(2):
        clipped = steps = 0
        for X, y in tr:
            opt.zero_grad()
            nn.functional.cross_entropy(reference(X), y).backward()
            norm = sum(float((p.grad ** 2).sum()) for p in reference.parameters()) ** 0.5
            scale = min(1.0, max_norm / (norm + 1e-6))
            for p in reference.parameters():
                p.grad.mul_(scale)
            clipped += norm > max_norm
            steps += 1
            opt.step()
        fractions.append(clipped / steps)
    assert result.history["clipped"].tolist() == pytest.approx(fractions)
    assert result.record["clip_grad_norm"] == max_norm
    assert 0 < sum(fractions) < 2   # some steps clipped, some not: the count is tested
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def test_no_clipping_column_without_clipping(results_dir):
    tr, _ = _loaders()
    result = fit(_model(), tr, epochs=1, lr=0.1, device="cpu", progress=False, record=False)
    assert "clipped" not in result.history and "lr" in result.history
    result = fit(_model(), tr, epochs=1, lr=0.1, clip_grad_norm=1e-9, device="cpu",
                 progress=False, record=False)
    assert result.history["clipped"].tolist() == [1.0]


# --- schedules and optimiser factories -------------------------------------------------

def _halving_per_batch(optimizer, epochs, steps_per_epoch):
    """A tiny schedule factory of our own: the lr halves after every batch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)


_halving_per_batch.interval = "batch"


def test_schedule_factory_steps_per_batch_and_history_has_the_lr(results_dir):
    tr, _ = _loaders()           # 512 examples, batch 64: 8 steps per epoch
    seen = []

    def factory(optimizer, epochs, steps_per_epoch):
        seen.append((epochs, steps_per_epoch))
        return _halving_per_batch(optimizer, epochs, steps_per_epoch)

    factory.interval = "batch"
    model = _model()
    result = fit(model, tr, epochs=2, lr=0.4, scheduler=factory, device="cpu", progress=False,
                 record=False)
    assert seen == [(2, 8)]
    assert result.history["lr"].tolist() == pytest.approx([0.4, 0.4 * 0.5 ** 8])
    assert result.record["lr"] == 0.4


def test_schedule_factory_per_epoch_and_optimizer_factory(results_dir):
    tr, _ = _loaders()
    made = []

    def make_opt(model):
        made.append(model)
        return torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)

    def per_epoch(optimizer, epochs, steps):
        return torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.1)

    per_epoch.interval = "epoch"
    model = _model()
    result = fit(model, tr, epochs=3, optimizer=make_opt, scheduler=per_epoch, device="cpu",
                 progress=False, record=False)
    assert made == [model]
    assert result.history["lr"].tolist() == pytest.approx([0.3, 0.03, 0.003])


def test_scheduler_of_another_optimizer_or_needing_a_metric_is_refused(results_dir):
    tr, _ = _loaders()
    other = torch.optim.SGD(_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="another optimiser"):
        fit(_model(), tr, epochs=1, scheduler=torch.optim.lr_scheduler.StepLR(other, 1),
            device="cpu", progress=False, record=False)
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        fit(_model(), tr, epochs=1, scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(other),
            device="cpu", progress=False, record=False)

    def no_interval(optimizer, epochs, steps):
        return "not a scheduler"

    with pytest.raises(TypeError, match="returned str"):
        fit(_model(), tr, epochs=1, scheduler=no_interval, device="cpu", progress=False,
            record=False)


# --- argument checks at the door ---------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, message", [
    ({"epochs": 2.0}, TypeError, "epochs must be a whole number"),
    ({"epochs": 0}, ValueError, "epochs must be at least 1"),
    ({"lr": "0.1"}, TypeError, "lr must be a number"),
    ({"lr": float("nan")}, ValueError, "lr must be a finite number > 0"),
    ({"lr": -1.0}, ValueError, "lr must be"),
    ({"momentum": None}, TypeError, "momentum must be a number"),
    ({"clip_grad_norm": 0}, ValueError, "clip_grad_norm must be a finite number > 0"),
    ({"check_every": 0}, ValueError, "check_every"),
    ({"precision": "fp8"}, ValueError, "precision must be one of"),
    ({"precision": "fp16"}, ValueError, "needs a CUDA GPU"),
    ({"callbacks": [3]}, TypeError, "callable"),
    ({"scheduler": 3}, TypeError, "schedule factory"),
    ({"checkpoint": 3}, TypeError, "folder path"),
])
def test_bad_arguments_get_clear_messages(results_dir, kwargs, error, message):
    tr, _ = _loaders()
    with pytest.raises(error, match=message):
        fit(_model(), tr, **{"epochs": 1, **kwargs}, device="cpu", progress=False, record=False)


def test_bad_loaders_get_clear_messages(results_dir):
    tr, _ = _loaders()
    with pytest.raises(TypeError, match="train_iter must be an iterable"):
        fit(_model(), 42, epochs=1, device="cpu", progress=False)
    with pytest.raises(TypeError, match="one-shot iterator"):
        fit(_model(), iter(tr), epochs=1, device="cpu", progress=False)
    with pytest.raises(TypeError, match="test_iter must be an iterable"):
        fit(_model(), tr, 3.5, epochs=1, device="cpu", progress=False)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fit("resnet", tr, epochs=1, device="cpu", progress=False)


def test_too_few_outputs_names_the_last_layer(results_dir):
    x, y = _separable_data()
    y = y * 3   # labels 0 and 3: four classes needed, the model has two outputs
    tr = TensorLoader(x, y, 64, device="cpu")
    with pytest.raises(ValueError, match=r"labels go up to 3.*'4' \(Linear.*4 outputs"):
        fit(_model(), tr, epochs=1, device="cpu", progress=False, record=False)


# --- failures keep what was learnt ----------------------------------------------------

class _ExplodesAt(nn.Module):
    """The toy model; its forward raises ``error`` on call number ``at``."""

    def __init__(self, at, error=KeyboardInterrupt):
        super().__init__()
        self.net, self.calls, self.at, self.error = _model(), 0, at, error

    def forward(self, x):
        self.calls += 1
        if self.training and self.calls == self.at:
            raise self.error()
        return self.net(x)


def test_keyboard_interrupt_returns_the_finished_epochs(results_dir):
    seed_everything(0)
    tr, te = _loaders()          # 8 training steps per epoch, 2 test batches per epoch
    model = _ExplodesAt(at=2 * (8 + 2) + 3)   # in the third epoch's third step
    result = fit(model, tr, te, epochs=5, lr=0.3, name="ctrlc", device="cpu", progress=False)
    assert result.interrupted and list(result.history["epoch"]) == [1, 2]
    rec = json.loads(result.record_path.read_text())
    assert rec["interrupted"] is True and rec["epochs"] == 2
    assert rec["test_acc"] == result.history["test_acc"].iloc[-1]


def test_interrupt_in_the_first_epoch_returns_an_empty_history(results_dir):
    tr, _ = _loaders()
    result = fit(_ExplodesAt(at=2), tr, epochs=3, device="cpu", progress=False)
    assert result.interrupted and len(result.history) == 0 and result.record_path is None
    assert result.test_acc is None and result.train_acc is None


def test_divergence_keeps_history_and_last_good_weights_and_names_the_lr_in_force(results_dir):
    tr, te = _loaders()

    def explode_in_epoch_3(optimizer, epochs, steps):   # lr 0.1, 0.1, then 1e30
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0 if e < 2 else 1e31)

    explode_in_epoch_3.interval = "epoch"
    after = []
    seed_everything(0)
    model = _model()
    started = time.perf_counter()
    with pytest.raises(TrainingDiverged, match=r"learning rate in force then \(1e\+30\)") as info:
        fit(model, tr, te, epochs=5, lr=0.1, scheduler=explode_in_epoch_3, check_every=1,
            device="cpu", progress=False, record=False, name="boom", chapter="07",
            profile="cpu", clip_grad_norm=1e6, extra={"note": "x"},
            callbacks=[lambda row, m, o: after.append(
                {k: v.clone() for k, v in m.state_dict().items()})])
    elapsed = time.perf_counter() - started
    result = info.value.result
    assert list(result.history["epoch"]) == [1, 2] and result.record["diverged"]
    assert result.history["lr"].tolist() == pytest.approx([0.1, 0.1])
    # the record of the diverged run says what ran, as a finished run's does
    rec = result.record
    assert {k: rec[k] for k in ("name", "chapter", "profile", "lr", "precision", "clip_grad_norm",
                                "batch_size", "train_examples", "device", "note")} \
        == {"name": "boom", "chapter": "07", "profile": "cpu", "lr": 0.1, "precision": "fp32",
            "clip_grad_norm": 1e6, "batch_size": 64, "train_examples": 512, "note": "x",
            "device": describe_device(torch.device("cpu"))}
    trained = result.history["seconds"].sum()
    assert 0 < trained <= result.seconds == rec["seconds"] <= elapsed
    assert result.examples_per_sec == pytest.approx(2 * 512 / trained, rel=1e-9)
    for k, v in model.state_dict().items():   # back to the end of epoch 2, exactly
        assert torch.equal(v, after[-1][k]), k


def test_divergence_in_the_first_epoch_gives_back_the_initial_weights(results_dir):
    tr, _ = _loaders()
    model = _model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDiverged) as info:
        fit(model, tr, epochs=2, lr=1e30, check_every=1, device="cpu", progress=False)
    assert len(info.value.result.history) == 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, start[k]), k


def test_unwritable_results_dir_is_a_warning_not_a_lost_training(results_dir, monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the results folder should be")
    monkeypatch.setenv("CNNBOOK_RESULTS_DIR", str(blocker))
    tr, te = _loaders()
    with pytest.warns(RuntimeWarning, match=r"^fit could not write the result record "
                      r"'nowhere' \(.+\); the trained model and its FitResult are returned "
                      r"all the same$") as caught:
        result = fit(_model(), tr, te, epochs=1, lr=0.3, name="nowhere", device="cpu",
                     progress=False)
    assert result.record_path is None and len(result.history) == 1 and result.test_acc > 0
    # stacklevel=3: the warning names the line that called fit, here this test file; under
    # mutmut each mutated function is called through its trampoline, which then comes between
    caller = __file__
    if "MUTANT_UNDER_TEST" in os.environ:
        import mutmut.mutation.trampoline as trampoline
        caller = trampoline.__file__
    assert [w.filename for w in caught] == [caller]


def test_a_rehearsal_caps_epochs_batches_and_evaluation(monkeypatch, results_dir):
    """CNNBOOK_MAX_BATCHES=2: fit trains two epochs of two batches whatever it is given (a
    DataLoader-like list as well as a TensorLoader) and evaluates on two batches."""
    seed_everything(0)
    tr, te = _loaders()
    batches = [(X, y) for X, y in tr]   # 8 batches of 64, no len() cap of its own
    seen = {"train": 0}

    class Counting:   # like a DataLoader: its len() knows nothing of the cap
        def __len__(self):
            return len(batches)

        def __iter__(self):
            for b in batches:
                seen["train"] += 1
                yield b

    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    from cnnbook.train import schedules
    result = fit(_model(), Counting(), te, epochs=10, lr=0.1, device="cpu", progress=False,
                 name="toy", chapter="00", profile="full", scheduler=schedules.step(5, 0.1))
    assert list(result.history["epoch"]) == [1, 2] and seen["train"] == 4
    assert result.record["train_examples"] is None and result.record["epochs"] == 2
    assert result.record_path == results_dir / "full" / "00-toy.json"
    seen["train"] = 0
    evaluate(_model(), Counting())
    assert seen["train"] == 2   # 2 of the 8 batches
    preds, labels = predict(_model(), batches)
    assert len(preds) == len(labels) == 128
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES")
    assert len(predict(_model(), batches)[0]) == 512


def test_a_rehearsal_cuts_each_batch_fit_evaluate_and_predict_use(monkeypatch):
    """CNNBOOK_MAX_BATCH_SIZE=5: every batch the model sees holds the first 5 examples, each
    with its own label (a 224-pixel model's step on 128 images is what a rehearsal avoids)."""
    seed_everything(0)
    X, y = torch.randn(40, 1, 2, 2), torch.arange(40) % 4
    batches = [(X[i:i + 16], y[i:i + 16]) for i in range(0, 40, 16)]   # 16, 16, 8
    seen = []

    def spied_model():
        return _Spy(nn.Sequential(nn.Flatten(), nn.Linear(4, 4)),
                    lambda spy, x: seen.append(x.detach().clone()))

    monkeypatch.delenv("CNNBOOK_MAX_BATCHES", raising=False)
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "5")
    fit(spied_model(), batches, batches, epochs=1, lr=0.1, device="cpu", progress=False,
        record=False, live_plot=False)
    assert seen and {len(x) for x in seen} == {5}
    firsts = torch.cat([X[0:5], X[16:21], X[32:37]])
    assert all(any(torch.equal(x, f) for f in firsts.split(5)) for x in seen)
    preds, labels = predict(spied_model(), batches)
    assert torch.equal(labels, torch.cat([y[0:5], y[16:21], y[32:37]]))
    seen.clear()
    evaluate(spied_model(), batches)
    assert [len(x) for x in seen] == [5, 5, 5]
    monkeypatch.delenv("CNNBOOK_MAX_BATCH_SIZE")
    assert len(predict(spied_model(), batches)[0]) == 40


# --- the small helpers, called directly (found by python tools/mutants.py --broad loop) ----

def test_check_arguments_accepts_the_boundaries_and_refuses_just_past_them():
    from cnnbook.train.loop import _check_arguments

    model, data = _model(), [(torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long))]
    ok = dict(model=model, train_iter=data, test_iter=None, epochs=1, lr=1e-9, momentum=0.0,
              weight_decay=0, clip_grad_norm=None, check_every=1)
    _check_arguments(**ok)                                   # the smallest allowed values
    _check_arguments(**{**ok, "test_iter": data, "clip_grad_norm": 1e-9, "momentum": 0.9})
    cases = [({"epochs": True}, TypeError, "^epochs must be a whole number (an int), got True$"),
             ({"check_every": 0}, ValueError, "^check_every must be at least 1, got 0$"),
             ({"lr": 0}, ValueError, r"^lr must be a finite number > 0, got 0$"),
             ({"lr": True}, TypeError, r"^lr must be a number, got True \(bool\)$"),
             ({"lr": float("inf")}, ValueError, "^lr must be a finite number > 0, got inf$"),
             ({"momentum": -0.1}, ValueError, r"^momentum must be a finite number >= 0, got -0.1$"),
             ({"weight_decay": "0"}, TypeError, r"^weight_decay must be a number, got '0' \(str\)$"),
             ({"clip_grad_norm": -1.0}, ValueError, "^clip_grad_norm must be a finite number > 0"),
             ({"model": "resnet"}, TypeError, "^model must be a torch.nn.Module, got str$"),
             ({"train_iter": 42}, TypeError, r"^train_iter must be an iterable of \(X, y\) batches "
              r"such as a TensorLoader or DataLoader, got int$"),
             ({"test_iter": iter(data)}, TypeError, r"^test_iter is a one-shot iterator "
              r"\(list_iterator\), but fit goes over the data once per epoch: pass the loader "
              r"itself \(a TensorLoader, a DataLoader, or a list of \(X, y\) batches\)$")]
    for change, error, message in cases:
        with pytest.raises(error, match=message.replace("(an int)", r"\(an int\)")):
            _check_arguments(**{**ok, **change})

    class OldStyleSequence:   # iterable through __getitem__ alone, as Python allows
        def __getitem__(self, i):
            return data[i]

    _check_arguments(**{**ok, "train_iter": OldStyleSequence(), "test_iter": OldStyleSequence()})
    # what it accepts, fit can use
    fit(model, OldStyleSequence(), epochs=1, device="cpu", progress=False, record=False)


def test_make_scheduler_intervals_and_refusals():
    from cnnbook.train.loop import _make_scheduler

    opt = torch.optim.SGD(_model().parameters(), lr=0.1)
    assert _make_scheduler(None, opt, 3, 10) == (None, False)

    def factory(optimizer, epochs, steps):
        factory.args = (optimizer, epochs, steps)
        return torch.optim.lr_scheduler.StepLR(optimizer, 1)

    sched, per_batch = _make_scheduler(factory, opt, 3, 10)       # no interval: per epoch
    assert isinstance(sched, torch.optim.lr_scheduler.StepLR) and per_batch is False
    assert factory.args == (opt, 3, 10)
    factory.interval = "batch"
    assert _make_scheduler(factory, opt, 3, 10)[1] is True
    with pytest.raises(ValueError, match="^a per-batch schedule needs len"):
        _make_scheduler(factory, opt, 3, None)
    factory.interval = "epoch"
    assert _make_scheduler(factory, opt, 3, None)[1] is False     # per epoch needs no length
    factory.interval = "step"
    with pytest.raises(ValueError, match=r"^the schedule's interval must be 'batch' or 'epoch', got 'step'$"):
        _make_scheduler(factory, opt, 3, 10)
    ready = torch.optim.lr_scheduler.StepLR(opt, 1)
    assert _make_scheduler(ready, opt, 3, 10) == (ready, False)
    # the refusals' messages, which a learner reads, in full
    with pytest.raises(TypeError, match=r"^ReduceLROnPlateau needs a metric at each step, which "
                       r"fit does not pass: use a callback that calls it, or a schedule factory$"):
        _make_scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau(opt), opt, 3, 10)
    other = torch.optim.SGD(_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"^the scheduler was built for another optimiser than "
                       r"the one fit trains with: pass that optimiser as optimizer=\.\.\., or "
                       r"pass a schedule factory \(see cnnbook\.train\.schedules\)$"):
        _make_scheduler(torch.optim.lr_scheduler.StepLR(other, 1), opt, 3, 10)
    with pytest.raises(TypeError, match=r"^scheduler must be a schedule factory f\(optimizer, "
                       r"epochs, steps_per_epoch\) or an LRScheduler, got int$"):
        _make_scheduler(3, opt, 3, 10)


def test_lr_in_force_and_its_text_by_group():
    from cnnbook.train.loop import _lr, _lr_text

    model = _model()
    one = torch.optim.SGD(model.parameters(), lr=0.05)
    assert _lr(one) == 0.05 and _lr_text(one) == "0.05"
    groups = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.001},
                              {"params": model[4].parameters(), "lr": 0.123456}], lr=0.1)
    assert _lr(groups) == 0.123456 and _lr_text(groups) == "0.1235 / 0.001 by group"


def test_improves_means_higher_accuracy_or_lower_loss():
    from cnnbook.train.loop import _improves

    assert _improves(0.8, 0.7, "test_acc") and not _improves(0.7, 0.7, "test_acc")
    assert not _improves(0.6, 0.7, "train_acc")
    assert _improves(0.6, 0.7, "train_loss") and not _improves(0.7, 0.7, "train_loss")
    assert not _improves(0.8, 0.7, "train_loss")


def test_last_layer_names_the_last_linear_or_conv():
    from cnnbook.train.loop import _last_layer

    assert _last_layer(_model()).startswith("'4' (Linear(in_features=16, out_features=2")
    assert _last_layer(nn.Sequential(nn.Conv1d(2, 3, 1), nn.ReLU())).startswith("'0' (Conv1d(2, 3")
    assert _last_layer(nn.Sequential(nn.Conv3d(1, 1, 1))).startswith("'0' (Conv3d")
    assert _last_layer(nn.Linear(2, 3)) == "(Linear(in_features=2, out_features=3, bias=True))"
    assert _last_layer(nn.ReLU()) == "of the model"


def test_check_outputs_reads_all_labels_of_a_loader_and_refuses_negative_ones():
    from cnnbook.train.loop import _check_outputs

    logits, y = torch.zeros(2, 3), torch.tensor([0, 2])
    _check_outputs(_model(), logits, y, None)                 # 3 outputs, labels up to 2: fine
    with pytest.raises(ValueError, match=r"^the model gives 3 score\(s\) per example, but the "
                                         r"labels go up to 3, so it needs at least 4 \(one per "
                                         r"class\): change the last layer '4' \(Linear\(in_"
                                         r"features=16, out_features=2, bias=True\)\) to have 4 "
                                         r"outputs \(for example num_classes=4\)$"):
        _check_outputs(_model(), logits, torch.tensor([0, 3]), None)
    images, labels = torch.zeros(3, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 5])
    loader = TensorLoader(images, labels, 3, device="cpu")
    with pytest.raises(ValueError, match="labels go up to 5"):  # the loader's labels, not y's
        _check_outputs(_model(), logits, y, loader)
    with pytest.raises(ValueError, match=r"^the labels must be class numbers 0, 1, ...; the smallest is -1$"):
        _check_outputs(_model(), logits, torch.tensor([-1, 0]), None)
    _check_outputs(_model(), logits, torch.tensor([0.0, 7.0]), None)      # soft/float labels
    _check_outputs(_model(), torch.zeros(2, 3, 4), torch.tensor([0, 9]), None)  # not (N, C)
    _check_outputs(_model(), logits, torch.tensor([[0, 9]]), None)        # not (N,)
    _check_outputs(_model(), logits, [0, 9], None)                       # not a tensor


def test_fit_checks_every_label_of_the_loader_before_the_first_step():
    # a class that only a later batch holds is named at the start, not by cross-entropy's
    # index error in the middle of an epoch
    loader = TensorLoader(torch.zeros(6, 1, 8, 8, dtype=torch.uint8),
                          torch.tensor([0, 1, 0, 1, 0, 5]), 3, device="cpu")
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="labels go up to 5"):
        fit(model, loader, epochs=1, device="cpu", progress=False, record=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_the_labels_are_checked_once_per_run_not_at_every_step(monkeypatch, results_dir):
    # the check reads labels on the host: at every step it would be a GPU sync per step
    import cnnbook.train.loop as loop

    checked = []
    real = loop._check_outputs
    monkeypatch.setattr(loop, "_check_outputs", lambda *args: checked.append(1) or real(*args))
    tr, _ = _loaders()   # 8 steps per epoch
    fit(_model(), tr, epochs=2, device="cpu", progress=False, record=False)
    assert checked == [1]


def test_check_finite_names_epoch_step_and_lr():
    from cnnbook.train.loop import _check_finite

    opt = torch.optim.SGD(_model().parameters(), lr=0.25)
    _check_finite(1e30, 1, 1, opt)
    with pytest.raises(TrainingDiverged, match=r"^the training loss became nan in epoch 2 by "
                                               r"step 7: training stopped\. The learning rate "
                                               r"in force then \(0\.25\) is probably too high "
                                               r"for this model; try a smaller one, or add batch "
                                               r"normalisation or gradient clipping\. The model "
                                               r"was given back the weights of the last finished "
                                               r"epoch\.$"):
        _check_finite(float("nan"), 2, 7, opt)
    with pytest.raises(TrainingDiverged, match="became -inf"):
        _check_finite(float("-inf"), 1, 1, opt)


def test_record_fields_from_history_and_totals():
    from cnnbook.train.loop import FitResult, _record

    x, y = _separable_data(10)
    tr = TensorLoader(x, y, 4, device="cpu")
    history = [{"epoch": 1, "train_loss": 0.9, "train_acc": 0.5, "test_acc": 0.6},
               {"epoch": 2, "train_loss": 0.4, "train_acc": 0.8, "test_acc": 0.7}]
    totals = {"train_seconds": 4.0, "train_examples": 20, "wall": 5.0}
    model = _model()
    rec = _record(history, totals, model, torch.device("cpu"), tr, "toy", "07", "smoke", 0.3,
                  "fp32", 1.5, {"note": "x"})
    want = {"name": "toy", "chapter": "07", "model": "Sequential", "profile": "smoke",
            "epochs": 2, "lr": 0.3, "batch_size": 4, "train_examples": 10,
            "params": 4 * 9 + 4 + 16 * 2 + 2, "train_loss": 0.4, "train_acc": 0.8,
            "test_acc": 0.7, "best_test_acc": 0.7, "best_epoch": 2, "seconds": 5.0,
            "train_seconds": 4.0, "examples_per_sec": 5.0, "precision": "fp32",
            "clip_grad_norm": 1.5, "interrupted": False, "diverged": False, "note": "x"}
    assert {k: rec[k] for k in want} == want
    assert rec["torch"] == str(torch.__version__) and rec["device"].startswith("cpu (")
    meta = _record(history, totals, model, torch.device("meta"), tr, "toy", "07", "smoke", 0.3,
                   "fp32", None, None)
    assert meta["device"] == "meta"   # the device it was given, not the default one
    assert len(rec["finished"]) == 19 and rec["finished"][4] == "-" and rec["finished"][10] == "T"
    cpu = torch.device("cpu")
    back = _record(history, totals, model, cpu, tr, "toy", None, "smoke", 0.3, "fp32", None,
                   None, interrupted=True, diverged=True, restored_epoch=1)
    assert (back["train_loss"], back["test_acc"], back["interrupted"], back["diverged"]) == \
        (0.9, 0.6, True, True)
    empty = _record([], {"train_seconds": 0.0, "train_examples": 0, "wall": 0.0}, model, cpu,
                    [], "toy", None, "smoke", 0.3, "fp32", None, None)
    assert empty["examples_per_sec"] == 0.0 and empty["train_loss"] is None
    assert empty["batch_size"] is None and empty["epochs"] == 0
    result = FitResult(pd.DataFrame(history), 5.0, 5.0, rec)
    assert (result.test_acc, result.train_acc, result.train_loss) == (0.7, 0.8, 0.4)
    assert result.record_path is None and result.interrupted is False
    assert FitResult(pd.DataFrame(), 0.0, 0.0).test_acc is None


def test_accuracy_count_and_len_of_a_loader_without_one():
    from cnnbook.train.loop import _len, accuracy_count

    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0], [1.0, 4.0, 0.0], [0.0, 0.0, 9.0]])
    assert int(accuracy_count(logits, torch.tensor([0, 2, 0, 1]))) == 2
    assert _len([1, 2, 3]) == 3 and _len(x for x in ()) is None


def test_progress_bar_shows_the_epoch_and_its_steps_then_clears_its_line(capsys):
    from cnnbook.train.loop import _progress

    bar = _progress(8, "epoch 2/5", True)
    assert bar.mininterval == 0.5 and callable(bar.dynamic_ncols)   # redraws <= 2/s, resizes
    bar.update(8)
    bar.close()
    err = capsys.readouterr().err
    assert "epoch 2/5:   0%" in err and "| 0/8 [" in err   # desc, total: a percentage
    assert err.endswith("\r") and "\n" not in err        # leave=False: no line left behind
    quiet = _progress(8, "epoch 2/5", False)
    quiet.update(8)
    quiet.close()
    assert capsys.readouterr().err == ""


# --- notebooks: _in_notebook under a faked IPython, LivePlot on matplotlib's Agg backend ----

def _fake_ipython(monkeypatch, shell_class_name=None, has_get_ipython=True):
    """Put an "IPython" module in sys.modules whose get_ipython() returns an instance of a
    class of that name (None: returns None), as IPython does in each kind of session."""
    import sys
    import types

    import matplotlib.pyplot as plt

    plt.close(plt.figure())   # pyplot sets up its backend now, while IPython is the real one
    module = types.ModuleType("IPython")
    if has_get_ipython:
        shell = type(shell_class_name, (), {})() if shell_class_name else None
        module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_in_notebook_only_under_a_jupyter_kernel(monkeypatch):
    import sys

    from cnnbook.train.loop import _in_notebook

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert _in_notebook() is False                       # plain python, IPython not imported
    _fake_ipython(monkeypatch, has_get_ipython=False)
    assert _in_notebook() is False
    _fake_ipython(monkeypatch, None)                      # IPython imported, no shell running
    assert _in_notebook() is False
    _fake_ipython(monkeypatch, "TerminalInteractiveShell")   # the ipython terminal
    assert _in_notebook() is False
    _fake_ipython(monkeypatch, "ZMQInteractiveShell")     # a Jupyter kernel
    assert _in_notebook() is True


class _FakeDisplay:
    """IPython.display.display's contract: display(obj, display_id=True) shows obj and
    returns a handle whose update(obj) redraws it in place; without display_id, None."""

    def __init__(self):
        self.shown, self.updates = [], []

    def __call__(self, obj, display_id=None):
        self.shown.append(obj)
        if display_id is not True:
            return None
        fake = self

        class Handle:
            def update(self, new):
                fake.updates.append(new)

        return Handle()


def _lines(ax):
    return {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}


def test_live_plot_draws_the_history_in_its_figure_and_closes_only_it(monkeypatch):
    import IPython.display
    import matplotlib.pyplot as plt

    from cnnbook.train.loop import LivePlot

    shown = _FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", shown)
    plot = LivePlot("lenet (smoke)")
    assert shown.shown == [plot.fig] and plot.ax.figure is plot.fig
    assert tuple(plot.fig.get_size_inches()) == pytest.approx((5, 3.2))
    history = [{"epoch": 1, "train_loss": 0.9, "train_acc": 0.6, "test_acc": 0.55},
               {"epoch": 2, "train_loss": 0.5, "train_acc": 0.8, "test_acc": 0.75}]
    plot.update(history[:1])
    plot.update(history)   # redrawn: the old curves are cleared, not drawn over
    assert _lines(plot.ax) == {"train loss": [0.9, 0.5], "train acc": [0.6, 0.8],
                               "test acc": [0.55, 0.75]}
    assert plot.ax.get_title() == "lenet (smoke)"
    assert shown.updates == [plot.fig, plot.fig] and shown.shown == [plot.fig]
    other = plt.figure()   # the current figure now: close must close the plot's, not this one
    try:
        plot.close()
        assert not plt.fignum_exists(plot.fig.number) and plt.fignum_exists(other.number)
    finally:
        plt.close(other)


@pytest.mark.parametrize("shell, live_plot, drawn", [
    ("ZMQInteractiveShell", None, True), ("TerminalInteractiveShell", None, False),
    ("ZMQInteractiveShell", False, False), ("TerminalInteractiveShell", True, True)])
def test_fit_draws_a_live_plot_in_notebooks_or_when_asked(monkeypatch, results_dir, shell,
                                                          live_plot, drawn):
    import IPython.display
    import matplotlib.pyplot as plt

    shown = _FakeDisplay()
    _fake_ipython(monkeypatch, shell)
    monkeypatch.setattr(IPython.display, "display", shown)   # LivePlot imports it by name
    x, y = _separable_data(32)
    tr, te = TensorLoader(x, y, 16, device="cpu"), TensorLoader(x[:16], y[:16], 16, device="cpu")
    result = fit(_model(), tr, te, epochs=2, lr=0.3, name="toy", profile="smoke",
                 device="cpu", progress=False, record=False, live_plot=live_plot)
    if not drawn:
        assert shown.shown == [] and shown.updates == []
        return
    fig, = shown.shown
    assert shown.updates == [fig, fig]                     # redrawn after each epoch
    assert fig.axes[0].get_title() == "toy (smoke)"
    assert _lines(fig.axes[0])["test acc"] == result.history["test_acc"].tolist()
    assert not plt.fignum_exists(fig.number)               # closed when fit returns


# --- under torchrun, in one process: a Distributed with no process group -------------------

class _RankOfTwo:
    """cnnbook.train.distributed.Distributed's interface for one of two ranks, without a
    process group: the other rank holds a copy of this rank's shard, so every global sum is
    twice the local one. A loader's shard is its first batch."""

    def __init__(self, rank):
        self.rank, self.world_size, self.device = rank, 2, torch.device("cpu")
        self.calls, self.wrapped_calls = [], 0

    @property
    def is_main(self):
        return self.rank == 0

    def shard(self, loader, train=True):
        self.calls.append(("shard", train))
        return None if loader is None else loader[:1]

    def wrap(self, model):
        outer = self

        class Wrapped(nn.Module):
            def __init__(self):
                super().__init__()
                self.module = model

            def forward(self, x):
                outer.wrapped_calls += 1
                return self.module(x)

        return Wrapped()

    def sum(self, *values):
        return [2 * torch.as_tensor(v, dtype=torch.float64) for v in values]

    def mean(self, total, count):
        return float(2 * total / (2 * count))

    def evaluate(self, model, test_iter, device, evaluate):
        self.calls.append(("evaluate", device))
        return evaluate(model, test_iter, device)

    def barrier(self):
        self.calls.append("barrier")


@pytest.mark.parametrize("rank", [0, 1])
def test_under_torchrun_fit_trains_on_its_shard_and_only_rank_0_prints_records_and_plots(
        monkeypatch, results_dir, capsys, rank):
    """Oracle: one hand-computed SGD step on the shard (the first batch) alone."""
    import IPython.display

    import cnnbook.train.loop as loop

    ddp, asked = _RankOfTwo(rank), []
    monkeypatch.setattr(loop, "setup_distributed", lambda device: asked.append(device) or ddp)
    shown = _FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", shown)
    torch.manual_seed(0)
    batches = [(torch.randn(8, 1, 2, 3), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])),
               (torch.randn(8, 1, 2, 3), torch.tensor([1, 1, 1, 1, 2, 2, 2, 2]))]
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    W, b = model[1].weight.detach().clone(), model[1].bias.detach().clone()
    X, y = batches[0]
    loss0 = float(nn.functional.cross_entropy(X.flatten(1) @ W.T + b, y))
    result = fit(model, batches, batches, epochs=1, lr=0.5, device="cpu", check_every=1,
                 progress=rank == 1, record=True, live_plot=True,   # rank 0 asks for no bar
                 checkpoint=results_dir / "ckpt")
    gW, gb = _softmax_regression_grad(W, b, X.flatten(1), y)
    assert torch.allclose(model[1].weight, W - 0.5 * gW, atol=1e-6)
    assert torch.allclose(model[1].bias, b - 0.5 * gb, atol=1e-6)
    assert result.history["train_loss"].tolist() == pytest.approx([loss0], rel=1e-5)
    assert asked == [torch.device("cpu")] and ddp.wrapped_calls == 1   # trained through DDP
    assert ddp.calls == [("shard", True), ("shard", False), ("evaluate", torch.device("cpu")),
                         "barrier"]
    assert capsys.readouterr().err == ""                     # no bar on either rank
    assert (result.record_path is not None) == (rank == 0)   # rank 0 alone writes
    assert (results_dir / "ckpt" / "last.pt").exists() == (rank == 0)   # its checkpoint too
    assert len(shown.shown) == (rank == 0)                   # and plots


def test_evaluate_and_predict_run_without_autograd_and_leave_it_as_it_was():
    # no graph is kept for an evaluation pass (memory), and the caller's grad mode survives
    seen = []
    data = [(torch.randn(3, 2), torch.tensor([0, 1, 0]))]
    model = _Spy(nn.Linear(2, 2), lambda spy, x: seen.append(torch.is_grad_enabled()))
    evaluate(model, data)
    predict(model, data)
    assert seen == [False, False] and torch.is_grad_enabled()


def test_evaluate_refuses_an_empty_loader_and_scores_a_single_example():
    # an empty loader is a mistake to name (not a ZeroDivisionError); one example is fine
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    with pytest.raises(ValueError, match=r"^evaluate\(\) got an empty data iterator$"):
        evaluate(model, [])
    x, y = torch.tensor([[3.0, 1.0]]), torch.tensor([0])
    out = evaluate(model, [(x, y)])
    # logits (3, 1): right class, cross-entropy log(1 + e^-2) worked out by hand
    assert out["acc"] == 1.0
    assert out["loss"] == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)


# --- devices: the meta device stands in for an accelerator ---------------------------------
# A model on "meta" has parameters with shapes and no data: what reaches it shows where
# fit, evaluate and predict put each batch. Reading a number back (.item()) is impossible
# there, so each call ends in that error, after the spies have seen the batch.

def _device_spies():
    seen = {}
    model = _Spy(nn.Linear(2, 3, device="meta"), lambda spy, x: seen.update(X=x.device))

    def loss_fn(logits, y):
        seen["y"] = y.device
        return nn.functional.cross_entropy(logits, y)

    return model, loss_fn, seen


_CPU_BATCHES = [(torch.randn(4, 2), torch.tensor([0, 1, 2, 0]))]
_META = torch.device("meta")


def test_evaluate_moves_images_and_labels_to_the_models_device_by_default():
    model, loss_fn, seen = _device_spies()
    with pytest.raises(RuntimeError, match="cannot be called on meta tensors"):
        evaluate(model, _CPU_BATCHES, loss_fn=loss_fn)
    assert seen == {"X": _META, "y": _META}


def test_predict_moves_images_to_the_models_device_by_default():
    model, _, seen = _device_spies()
    with pytest.raises(NotImplementedError, match="meta tensor"):   # .cpu() of the predictions
        predict(model, _CPU_BATCHES)
    assert seen == {"X": _META}


def test_fit_moves_the_model_and_each_batch_to_the_device_it_trains_on():
    seen = {}
    model = _Spy(nn.Linear(2, 3), lambda spy, x: seen.update(X=x.device))   # on the CPU
    with pytest.raises(RuntimeError, match="cannot be called on meta tensors"):
        fit(model, _CPU_BATCHES, epochs=1, device="meta", progress=False, record=False)
    assert seen == {"X": _META}   # the labels' check (.item()) ends the stand-in run here
    assert {p.device for p in model.parameters()} == {_META}


# --- what the progress bar shows, and parameters a step does not reach ---------------------

def test_the_bar_shows_the_running_mean_loss_and_accuracy(capsys):
    torch.manual_seed(0)
    X, y = torch.randn(8, 1, 2, 3), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    W, b = model[1].weight.detach().clone(), model[1].bias.detach().clone()
    logits = X.flatten(1) @ W.T + b   # the one batch, before its step: what the bar reports
    loss = float(nn.functional.cross_entropy(logits, y))
    acc = float((logits.argmax(1) == y).float().mean())
    fit(model, [(X, y)], epochs=1, device="cpu", check_every=1, record=False)
    err = capsys.readouterr().err
    assert f"loss={loss:.3f}" in err and f"acc={acc:.3f}" in err
    assert "| 0/1 [" in err   # the bar knows how many steps the epoch has


def test_a_parameter_without_a_gradient_is_not_moved_by_momentum_or_weight_decay(results_dir):
    """zero_grad(set_to_none=True): a parameter a step does not use (a block stochastic depth
    dropped, a head of another task) has no gradient, and SGD skips it. Zeroed gradients
    instead would let momentum and weight decay move it. Oracle: its value after step 1."""
    torch.manual_seed(0)

    class FirstBatchOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.extra, self.calls = nn.Linear(6, 4), nn.Parameter(torch.ones(4)), 0

        def forward(self, x):
            self.calls += 1
            out = self.lin(x.flatten(1))
            return out + self.extra if self.calls == 1 else out

    class AfterEachStep:
        def __init__(self):
            self.extra = []

        def __call__(self, row, model, opt):
            return False

        def on_batch_end(self, model, opt):
            self.extra.append(model.extra.detach().clone())

    batches = [(torch.randn(8, 1, 2, 3), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0]))] * 3
    model, steps = FirstBatchOnly(), AfterEachStep()
    fit(model, batches, epochs=1, lr=0.1, momentum=0.9, weight_decay=0.1, callbacks=[steps],
        device="cpu", progress=False, record=False)
    assert not torch.equal(steps.extra[0], torch.ones(4))   # step 1 did train it
    assert len(steps.extra) == 3
    assert all(torch.equal(after, steps.extra[0]) for after in steps.extra[1:])


# --- the bar's steps, the clipping boundary, and checks between and across ranks -----------

def test_the_bar_advances_one_step_per_batch_of_an_epoch_of_known_length(monkeypatch):
    import cnnbook.train.loop as loop

    bars = []

    class Bar:   # what fit asks of tqdm
        def __init__(self, total, desc, enabled):
            self.total, self.desc, self.steps = total, desc, 0
            bars.append(self)

        def update(self, k):
            self.steps += k

        def set_postfix(self, **values):
            pass

        def close(self):
            pass

    monkeypatch.setattr(loop, "_progress", Bar)
    tr, _ = _loaders()   # 512 examples in batches of 64: 8 steps
    fit(_model(), tr, epochs=2, device="cpu", record=False)
    assert [(b.total, b.desc, b.steps) for b in bars] == [(8, "epoch 1/2", 8), (8, "epoch 2/2", 8)]


def test_a_step_whose_norm_equals_the_threshold_is_not_counted_as_clipped(results_dir):
    # "clipped" counts the steps whose gradient norm exceeded the threshold; oracle: the
    # norm torch's clip_grad_norm_ measures on the same step, outside fit
    torch.manual_seed(0)
    X, y = torch.randn(8, 6), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    reference = nn.Linear(6, 4)
    weights = {k: v.clone() for k, v in reference.state_dict().items()}
    nn.functional.cross_entropy(reference(X), y).backward()
    norm = nn.utils.clip_grad_norm_(reference.parameters(), float("inf"))
    just_below = torch.nextafter(norm, torch.zeros(()))   # the next float32 down
    fractions = []
    for threshold in (float(norm), float(just_below)):
        model = nn.Linear(6, 4)
        model.load_state_dict(weights)
        result = fit(model, [(X, y)], epochs=1, clip_grad_norm=threshold, device="cpu",
                     progress=False, record=False)
        fractions.append(result.history["clipped"].tolist())
    assert fractions == [[0.0], [1.0]]


def test_a_loss_that_became_nan_between_checks_is_caught_at_the_end_of_the_epoch(results_dir):
    # 10 steps, checked every 25: the epoch's own check names the epoch, its last step and lr
    torch.manual_seed(0)
    batches = [(torch.randn(2, 6), torch.tensor([0, 1])) for _ in range(10)]
    batches[6][0][0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"^the training loss became nan in epoch 1 by "
                                               r"step 10: training stopped\. The learning rate "
                                               r"in force then \(0\.1\) is probably"):
        fit(nn.Linear(6, 2), batches, epochs=1, device="cpu", progress=False, record=False)


def test_an_empty_training_loader_is_named():
    with pytest.raises(ValueError, match="^the training iterator gave no batches$"):
        fit(_model(), [], epochs=1, device="cpu", progress=False, record=False)


def test_under_torchrun_every_rank_stops_when_the_mean_loss_diverged(monkeypatch, results_dir):
    # each rank checks the loss averaged over all ranks, so they stop together (a rank that
    # went on alone would wait for the others forever); here the other rank's loss is inf
    import cnnbook.train.loop as loop

    class OtherRankDiverged(_RankOfTwo):
        def mean(self, total, count):
            return float("inf")

    monkeypatch.setattr(loop, "setup_distributed", lambda device: OtherRankDiverged(1))
    torch.manual_seed(0)
    batches = [(torch.randn(8, 1, 2, 3), torch.tensor([0, 1, 2, 3, 3, 2, 1, 0]))] * 2
    with pytest.raises(TrainingDiverged, match="^the training loss became inf in epoch 1 by "
                                               "step 1: "):
        fit(nn.Sequential(nn.Flatten(), nn.Linear(6, 4)), batches, epochs=1, device="cpu",
            check_every=1, progress=False, record=False)


def test_the_record_names_the_device_fit_trained_on_not_the_default_one(monkeypatch,
                                                                       results_dir):
    import cnnbook.config as config

    monkeypatch.setattr(config, "get_device", lambda: torch.device("meta"))   # the default
    cpu = describe_device(torch.device("cpu"))
    tr, _ = _loaders()
    result = fit(_model(), tr, epochs=1, device="cpu", progress=False, record=False)
    assert result.record["device"] == cpu and describe_device() == "meta"
    with pytest.raises(TrainingDiverged) as diverged:
        fit(_model(), tr, epochs=1, lr=1e30, check_every=1, device="cpu", progress=False,
            record=False)
    assert diverged.value.result.record["device"] == cpu
