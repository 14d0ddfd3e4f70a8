"""A training process SIGKILLed mid-epoch and resumed from its checkpoint ends bit-for-bit
where an uninterrupted run ends: same weights (every tensor of the state dict, batch-norm
statistics included) and the same per-epoch losses, accuracies and learning rates.

Two processes run the same script. The *victim* trains with a checkpoint, prints a marker in
the middle of epoch 3 and is SIGKILLed on reading it (its checkpoint holds epochs 1-2). The
*survivor* starts at the same time (so the two imports overlap), waits, then calls the same
``fit`` with the same checkpoint folder, which repeats epoch 3 from its start and finishes;
then, in the same process, it trains an uninterrupted reference without a checkpoint. The
script uses synthetic images (no dataset needed), shuffling with random crops and flips,
dropout, batch norm, SGD with momentum and a one-cycle schedule: every kind of state a
checkpoint must carry. Both processes use one thread, so the arithmetic is the same.
"""
import os
import signal
import subprocess
import sys
import textwrap

import torch

CHILD = textwrap.dedent('''
    import sys, time
    import torch
    from torch import nn
    torch.set_num_threads(1)
    import cnnbook
    from cnnbook.data import BatchTransform, TensorLoader
    from cnnbook.train import EarlyStopping, fit, optim, schedules

    role, folder, out = sys.argv[1], sys.argv[2], sys.argv[3]


    class Net(nn.Module):
        def __init__(self, pause_at):
            super().__init__()
            self.calls, self.pause_at = 0, pause_at
            self.body = nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                nn.Dropout(0.3), nn.Linear(32, 4))

        def forward(self, x):
            if self.training:
                self.calls += 1
                if self.calls == self.pause_at:   # mid-epoch: tell the parent, wait to be killed
                    print("MARK", flush=True)
                    time.sleep(120)
            return self.body(x)


    def run(checkpoint, pause_at=None):
        cnnbook.seed_everything(0)
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 4, (320,), generator=g)
        x = torch.randint(0, 100, (320, 1, 12, 12), generator=g)
        for c in range(4):
            x[y == c, :, 3 * c:3 * c + 3] += 80
        x = x.to(torch.uint8)
        train = TensorLoader(x[:256], y[:256], 32, shuffle=True, train=True, device="cpu",
                             transform=BatchTransform(flip=True, crop_padding=1))
        test = TensorLoader(x[256:], y[256:], 64, device="cpu")
        model = Net(pause_at)
        result = fit(model, train, test, epochs=4, lr=0.1,
                     optimizer=optim.sgd(momentum=0.9, weight_decay=5e-4),
                     scheduler=schedules.one_cycle(), callbacks=[EarlyStopping(patience=10)],
                     checkpoint=checkpoint, device="cpu", progress=False, record=False,
                     name="resume-test")
        return {"state": model.state_dict(), "history": result.history.to_dict("list"),
                "calls": model.calls}


    if role == "victim":
        run(folder, pause_at=2 * 8 + 3)            # killed in epoch 3 (8 steps per epoch)
    else:
        print("READY", flush=True)
        sys.stdin.readline()                       # the victim has been killed
        resumed = run(folder)
        reference = run(None)
        torch.save({"resumed": resumed, "reference": reference}, out)
''')

STEPS = 256 // 32   # training steps per epoch


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(CHILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNBOOK_RESULTS_DIR": str(tmp_path / "results")}
    folder, out = tmp_path / "run", tmp_path / "out.pt"

    def start(role):
        return subprocess.Popen([sys.executable, str(script), role, str(folder), str(out)],
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    victim, survivor = start("victim"), start("survivor")
    try:
        for line in victim.stdout:
            if line.strip() == "MARK":
                victim.send_signal(signal.SIGKILL)
                break
        victim.wait(timeout=120)
        assert victim.returncode == -signal.SIGKILL, victim.stderr.read()
        saved = torch.load(folder / "last.pt", weights_only=True)
        assert len(saved["history"]) == 2 and saved["result"] is None   # epochs 1-2 kept
        assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "last.pt"]

        assert survivor.stdout.readline().strip() == "READY", survivor.stderr.read()
        survivor.stdin.write("go\n")
        survivor.stdin.flush()
        assert survivor.wait(timeout=180) == 0, survivor.stderr.read()
    finally:
        for proc in (victim, survivor):
            if proc.poll() is None:
                proc.kill()
    runs = torch.load(out, weights_only=True)
    ref, got = runs["reference"], runs["resumed"]
    assert ref["calls"] == 4 * STEPS and got["calls"] == 2 * STEPS   # epochs 3 and 4 only
    assert ref["state"].keys() == got["state"].keys()
    for name, tensor in ref["state"].items():
        assert torch.equal(tensor, got["state"][name]), name
    for column in ("epoch", "train_loss", "train_acc", "test_acc", "lr"):
        assert ref["history"][column] == got["history"][column], column
    assert len(ref["history"]["epoch"]) == 4
