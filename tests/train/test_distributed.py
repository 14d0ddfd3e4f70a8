"""fit under DistributedDataParallel: 2 gloo processes on the CPU against one process.

The per-rank functions live in ``cnnbook.train.ddp_demo`` (spawned processes import them
by name). Each ``launch`` starts 2 fresh Pythons, so these tests are few and combined.
"""
from __future__ import annotations

import time

import pytest
import torch

from cnnbook.train import ddp_demo
from cnnbook.train.distributed import (Distributed, ShardedLoader, Workers, backend_for,
                                       is_main_process, launch, setup)
from cnnbook.train.loop import fit


def _single(epochs, batch_size, n=256, lr=0.05):
    torch.set_num_threads(1)
    train, test = ddp_demo.toy_data(n, batch_size)
    model = ddp_demo.toy_model()
    res = fit(model, train, test, epochs=epochs, lr=lr, momentum=0.9, progress=False,
              live_plot=False, record=False)
    return model.state_dict(), res.history.to_dict("records")


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_plain_process_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert setup("cpu") is None and is_main_process()
    assert backend_for("cpu") == "gloo" and backend_for("cuda") == "nccl"


def test_shards_are_disjoint_reshuffled_and_make_the_global_batches():
    train, _ = ddp_demo.toy_data(n=50, batch_size=4)
    whole, _ = ddp_demo.toy_data(n=50, batch_size=8)
    shards = [ShardedLoader(ddp_demo.toy_data(n=50, batch_size=4)[0], r, 2) for r in range(2)]
    for epoch in range(2):
        idx = [s.indices() for s in shards]
        assert len(idx[0]) == len(idx[1]) == 25 == shards[0].num_local_examples
        # 50 examples, no padding needed: disjoint and complete
        assert sorted(torch.cat(idx).tolist()) == list(range(50))
        order = torch.randperm(50, generator=whole.generator)   # the one-process order
        assert torch.equal(torch.stack(idx, 1).flatten(), order)
        if epoch == 0:
            first = idx[0].clone()
    assert not torch.equal(first, idx[0])   # reshuffled per epoch
    odd = [ShardedLoader(ddp_demo.toy_data(n=51, batch_size=4)[0], r, 2) for r in range(2)]
    a, b = (s.indices() for s in odd)
    assert len(a) == len(b) == 26 and set(a.tolist()) | set(b.tolist()) == set(range(51))
    ev = [ShardedLoader(ddp_demo.toy_data(n=51, batch_size=4)[1], r, 2, pad=False) for r in range(2)]
    assert sum(s.num_local_examples for s in ev) == 25   # the test split: 51 // 2, no padding
    with pytest.raises(TypeError, match="TensorLoader"):
        Distributed(0, 2, torch.device("cpu")).shard([(torch.zeros(1), torch.zeros(1))])


def test_ddp_equals_one_process_and_only_rank0_writes(tmp_path):
    ckpt, results = tmp_path / "ckpt", tmp_path / "results"
    t0 = time.perf_counter()
    out = launch(ddp_demo.train_rank, 2, (2, 32, 256, 0.05, str(ckpt), str(results)))
    seconds = time.perf_counter() - t0
    ref_state, ref_hist = _single(2, 64)
    diff = _max_diff(out[0]["state"], ref_state)
    print(f"\nDDP (2 x 32) vs one process (64), 2 epochs: max weight difference {diff:.2e}; "
          f"launch took {seconds:.1f} s")
    assert diff < 1e-5
    assert _max_diff(out[0]["state"], out[1]["state"]) == 0.0   # ranks hold the same weights
    # metrics are all-reduced: every rank reports the one-process (global) numbers
    for r in range(2):
        assert out[r]["world_size"] == 2 and out[r]["rank"] == r
        for mine, ref in zip(out[r]["history"], ref_hist):
            assert mine["train_loss"] == pytest.approx(ref["train_loss"], abs=1e-5)
            assert mine["train_acc"] == pytest.approx(ref["train_acc"], abs=1e-9)
            assert mine["test_acc"] == pytest.approx(ref["test_acc"], abs=1e-9)
    # rank 0 alone writes: checkpoints each epoch and the result record
    assert out[1]["writes"] == []
    assert sum(w.endswith("last.pt") for w in out[0]["writes"]) == 3   # 2 epochs + final
    assert any(w.startswith("record:") for w in out[0]["writes"])
    assert (ckpt / "last.pt").exists() and (ckpt / "best.pt").exists()
    assert len(list(results.rglob("*.json"))) == 1
    assert out[0]["record"]["train_examples"] == 256


def test_ddp_resume_after_interruption_matches(tmp_path):
    out = launch(ddp_demo.resume_rank, 2, (str(tmp_path / "ckpt"), 2, 6))
    ref_state, _ = _single(2, 64)
    for r in range(2):
        assert out[r]["first_interrupted"] and not out[r]["interrupted"]
        assert _max_diff(out[r]["state"], ref_state) < 1e-5
        assert len(out[r]["history"]) == 2


@pytest.mark.parametrize("mode", ["crash", "hang"])
def test_a_failing_rank_fails_the_run_quickly(mode):
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError) as info:
        launch(ddp_demo.crash_rank, 2, (1, 50, mode), timeout=300, collective_timeout=5)
    seconds = time.perf_counter() - t0
    text = str(info.value)
    assert "rank failed" in text
    if mode == "crash":
        assert "rank 1 crashed on purpose" in text
    else:   # rank 0 gave up waiting for rank 1 after the process group's timeout
        assert "rank 0" in text.lower() or "timed out" in text.lower() or "timeout" in text.lower()
    assert seconds < 300


def test_chapter_04_allreduce_on_workers_kept_between_jobs():
    """``Workers`` keep their processes; every job is a new process group (chapter 24)."""
    import os

    with Workers(2) as workers:
        pids = workers.launch(os.getpid)
        assert len(set(pids)) == 2
        assert workers.launch(os.getenv, 2, ("RANK",)) == ["0", "1"]
        assert workers.launch(os.getenv, 1, ("WORLD_SIZE",)) == ["1"]
        for _ in range(2):   # a process group made and destroyed twice in the same processes
            out = workers.launch(ddp_demo.allreduce_rank)
            for o in out:
                assert torch.allclose(o["all_reduce"], o["whole_batch"], atol=1e-10)
                assert torch.allclose(o["ring"], o["all_reduce"], atol=1e-12)
            assert not torch.allclose(out[0]["mine"], out[1]["mine"])   # the slices differ
            assert torch.allclose(out[0]["mine"] + out[1]["mine"], out[0]["all_reduce"],
                                  atol=1e-12)
        assert workers.launch(os.getpid) == pids   # the same processes did all of it
        with pytest.raises(RuntimeError, match="rank failed.*invalid literal"):
            workers.launch(int, 2, ("not a number",))
        assert set(workers.launch(os.getpid)).isdisjoint(pids)   # new processes after a failure
        with pytest.raises(ValueError, match="between 1 and 2"):
            workers.launch(os.getpid, 3)


def test_command_line_trains_under_torchrun(tmp_path, mirror):
    """``torchrun --nproc-per-node 2 -m cnnbook.train``: 2 gloo processes, rank 0 writes."""
    import os
    import subprocess
    import sys

    ckpt = tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "-m", "cnnbook.train", "--dataset", "fashion_mnist", "--model", "lenet5",
           "--epochs", "1", "--limit", "64", "--test-limit", "40", "--batch-size", "16",
           "--lr", "0.5", "--schedule", "none", "--precision", "fp32", "--no-normalize",
           "--checkpoint", str(ckpt), "--no-record", "--timeout", "120"]
    env = dict(os.environ, CNNBOOK_DATA_MIRROR=str(mirror), OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es)" in done.stdout and "batch 16/process = 32 effective" in done.stdout
    assert done.stdout.count("test accuracy") == 1   # rank 0 alone prints
    assert (ckpt / "last.pt").exists()
    saved = torch.load(ckpt / "last.pt", weights_only=True)
    assert saved["result"] is not None and saved["result"]["world_size"] == 2
    # the two shards together saw the class-balanced subset once (60 = 6 per class)
    assert saved["totals"]["train_examples"] == saved["result"]["train_examples"] == 60


def test_command_line_help_names_the_rendezvous():
    from cnnbook.train.run import build_model, parser

    text = parser().format_help()
    assert "--rdzv-endpoint" in text and "--nproc-per-node" in text and "--scale-lr" in text
    assert build_model("resnet20", 10, 3).fc.out_features == 10
    assert build_model("resnet20", 10, 1).stem.conv.in_channels == 1
