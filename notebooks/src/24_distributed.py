# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 24 · Beyond one device: data-parallel training with DDP and torchrun
#
# [Chapter 04](04_losses_backprop.ipynb) split a batch's gradient into two slices and summed
# them, "as two GPUs would". This chapter does it for real: several processes, each with its
# own copy of the model and its own share of every batch, summing their gradients after each
# backward pass with PyTorch's `DistributedDataParallel` (DDP), launched by `torchrun`. The
# same code runs on the two CPU cores of a laptop (backend `gloo`), on eight GPUs of one
# machine and on many machines (backend `nccl`); only the launch command changes.
#
# **A short history.** Krizhevsky (2012) already trained AlexNet on two GPUs, splitting the
# *model* between them. Dean et al.'s DistBelief (2012) split the *data* across hundreds of
# machines that sent gradients to central *parameter servers*, which became the bottleneck.
# Baidu (Gibiansky, 2017) brought the *ring all-reduce* of high-performance computing
# (Patarasuk & Yuan, 2009) to deep learning: every worker sends about twice the gradient,
# however many workers there are; Uber's Horovod (Sergeev & Del Balso, 2018) packaged it
# and NVIDIA's NCCL runs it on GPUs. Goyal et al. (2017) trained ResNet-50 on ImageNet in
# one hour on 256 GPUs with the *linear learning-rate scaling rule* and a warm-up. PyTorch's
# DDP (Li et al., VLDB 2020) added the engineering that makes it fast: gradients grouped in
# *buckets*, each all-reduced as soon as backward has produced it, overlapping communication
# with computation.
#
# **What you will learn**
#
# - processes, ranks and a process group, started from a notebook (`cnnbook.train.distributed.Workers`)
#   and from the command line (`torchrun ... -m cnnbook.train`);
# - [chapter 04](04_losses_backprop.ipynb)'s all-reduce checked against `dist.all_reduce`,
#   and the ring all-reduce written with `send`/`recv`, with an explorer that moves its
#   chunks step by step;
# - what DDP does inside backward: buckets all-reduced asynchronously, rebuilt by hand with
#   gradient hooks and checked against DDP;
# - `fit` under DDP giving the same weights as one process with the same global batch;
# - the effective batch size and the linear learning-rate scaling rule;
# - 1 process against 2 on this machine, measured, and why 2 CPU processes are not 2x faster.

# %%
import os
import subprocess
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

import cnnbook
from cnnbook.train import ddp_demo, ring
from cnnbook.train.distributed import ShardedLoader, Workers
from cnnbook.widgets.ring_allreduce import RingAllReduceExplorer

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # equivalence: the toy problem of `eq_n` images, `eq_batch` per process, `eq_epochs`.
    # benchmark (1 process vs 2): `bench_dataset` ("toy" or a course dataset) and
    # `bench_model`, `bench_limit` training images, `bench_batch` per process, `bench_epochs`.
    # experiment: per-process batch sizes `exp_batches`, on `exp_limit` images.
    # `run_cli`: also train through `torchrun --nproc-per-node 2 -m cnnbook.train`, with
    # `cli_limit` images for `cli_epochs`, tested on `cli_test_limit` images (None: all).
    "smoke": dict(eq_n=256, eq_batch=32, eq_epochs=1, bench_dataset="toy", bench_model="toy",
                  bench_limit=512, bench_batch=32, bench_epochs=1, exp_batches=(8, 64),
                  exp_limit=256, run_cli=False, cli_limit=200, cli_epochs=1, cli_test_limit=200),
    "cpu":   dict(eq_n=1024, eq_batch=32, eq_epochs=2, bench_dataset="cifar10",
                  bench_model="resnet20", bench_limit=1_280, bench_batch=64, bench_epochs=1,
                  exp_batches=(8, 128), exp_limit=1_024, run_cli=True, cli_limit=2_000,
                  cli_epochs=2, cli_test_limit=2_000),
    "full":  dict(eq_n=4096, eq_batch=64, eq_epochs=3, bench_dataset="cifar10",
                  bench_model="resnet20", bench_limit=10_000, bench_batch=128, bench_epochs=1,
                  exp_batches=(8, 256), exp_limit=4_096, run_cli=True, cli_limit=None,
                  cli_epochs=5, cli_test_limit=None),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
print(f"profile {PROFILE}, device {device}, {os.cpu_count()} CPU cores, "
      f"{torch.get_num_threads()} torch threads, load average {load:.1f} "
      "(other programs running slow every timing below)")

# %% [markdown]
# ## 1. Processes, ranks and a process group
#
# Data parallelism runs one *process* per device. Each has a *rank* (0, 1, ..., `world_size - 1`)
# and they meet in a *process group*: rank 0 opens a small key-value store at
# `MASTER_ADDR:MASTER_PORT`, the others connect to it, and from then on they can call
# *collectives* such as `dist.all_reduce(t)`, which replaces `t` on every rank by the sum of
# all ranks' `t`. `torchrun` starts the processes and sets `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
# `MASTER_ADDR` and `MASTER_PORT` for them; `cnnbook.train.distributed.init_process_group`
# reads them and picks the *backend*: `gloo` (TCP, CPU tensors) on the CPU, `nccl` on CUDA.
# It also sets a *timeout*: a collective that waits longer for a rank that died raises an
# error, so a crash ends the run instead of leaving the others waiting forever.
#
# From a notebook, `launch(fn, nprocs)` does what `torchrun` does, with one catch: the new
# processes are *spawned* (fresh Pythons), which import `fn` by its module and name, so `fn`
# cannot be defined in a notebook cell. The chapter's per-rank functions live in
# `cnnbook.train.ddp_demo`. A fresh Python that imports torch takes seconds to start, longer
# than most of this chapter's jobs, so the chapter starts its two processes once,
# `workers = Workers(2)`, and gives them one job per cell with `workers.launch(fn, nprocs, args)`.
# Each job is a new run as `torchrun` would start it (ranks, a new port, a new process group
# destroyed at the end); only the Pythons and their imports are kept. (`launch(fn, nprocs)`
# is the same with processes that end with their job.) The first job redoes
# [chapter 04](04_losses_backprop.ipynb)'s experiment: every rank builds the same batch,
# computes the weight gradient of *its* slice with the course's hand-written
# `conv2d_backward`, and the ranks sum their slices three ways.

# %%
t0 = time.perf_counter()
workers = Workers(2)   # two spawned Pythons, kept for every job of this chapter
ar = workers.launch(ddp_demo.allreduce_rank, 2)
first_seconds = time.perf_counter() - t0
t0 = time.perf_counter()
again = workers.launch(ddp_demo.allreduce_rank, 2)   # a new process group, the same processes
again_seconds = time.perf_counter() - t0
print(f"2 processes started, ran the job and answered in {first_seconds:.1f} s; the same job "
      f"again on the running processes: {again_seconds:.2f} s (the rest was Python and torch "
      "starting twice)")
for o in ar:
    print(f"rank {o['rank']}: |own slice - whole batch| max {(o['mine'] - o['whole_batch']).abs().max():.3f};"
          f" dist.all_reduce vs whole-batch autograd {(o['all_reduce'] - o['whole_batch']).abs().max():.1e};"
          f" ring vs dist.all_reduce {(o['ring'] - o['all_reduce']).abs().max():.1e}")
assert all(torch.allclose(o["all_reduce"], o["whole_batch"], atol=1e-10) for o in ar)
assert all(torch.allclose(o["ring"], o["all_reduce"], atol=1e-12) for o in ar)
assert torch.allclose(ar[0]["mine"] + ar[1]["mine"], ar[0]["all_reduce"], atol=1e-12)
assert all(torch.equal(a["all_reduce"], b["all_reduce"]) for a, b in zip(ar, again))
assert again_seconds < first_seconds

# %% [markdown]
# Each rank alone holds only its slice's gradient (far from the whole batch's); after the
# all-reduce both hold the sum, equal to autograd's whole-batch gradient to float64
# rounding. That is the all-reduce of [chapter 04](04_losses_backprop.ipynb), now across processes.
#
# ## 2. The ring all-reduce
#
# How do $p$ ranks sum a tensor without one of them receiving everything? In a *ring*:
# each rank cuts its tensor into $p$ chunks. In $p-1$ **reduce-scatter** steps every rank
# sends one chunk to its right neighbour, which adds it to its own copy; afterwards rank
# $r$ holds the complete sum of chunk $(r+1) \bmod p$. In $p-1$ **all-gather** steps the
# finished chunks go once more around the ring. Every rank sends $2(p-1)$ chunks of size
# $1/p$: $2(p-1)/p$ times the tensor, *less than twice its size however many ranks there
# are*, while a central server would receive and send $p-1$ copies. `cnnbook.train.ring`
# holds the schedule as pure functions; `ddp_demo.ring_allreduce` (used above) runs it with
# `dist.isend`/`dist.recv`. In one process, `ring.simulate` checks it against a plain sum:

# %%
gen = torch.Generator().manual_seed(0)
for p in (2, 3, 5, 8):
    tensors = [torch.randn(101, generator=gen, dtype=torch.float64) for _ in range(p)]
    out = ring.simulate(tensors)
    err = max((o - sum(tensors)).abs().max().item() for o in out)
    mb = ring.traffic(p, 1.0)
    print(f"{p} ranks: {ring.num_steps(p)} steps, max error {err:.1e}; per rank sends "
          f"{mb['ring_per_rank']:.2f} x the gradient (a central server: {mb['central_rank']:.0f} x)")
    assert err < 1e-12

# %% [markdown]
# **Explorer.** Rows are ranks, columns chunks; a cell says how many ranks' gradients that
# copy of the chunk already sums. Red arrows are reduce-scatter messages, green ones
# all-gather. Step through a ring of 4: after 3 steps one cell per row is complete (dark),
# after 6 all are. The line above the picture gives the megabytes each rank sends for a
# gradient of the chosen size (ResNet-20's 0.27 M float32 parameters are 1.1 MB; ResNet-50's
# 25.6 M are 102 MB).

# %%
explorer = RingAllReduceExplorer(ranks=4, step=3)
explorer

# %%
print({k: explorer.state[k] for k in ("ranks", "step", "phase", "complete_cells")})
assert explorer.state["complete_cells"] == 4   # after p - 1 steps: one finished chunk per rank

# %% [markdown]
# ## 3. What DDP does inside backward: buckets, overlapped
#
# The obvious data-parallel step is: backward, then one all-reduce of all gradients, then
# the optimiser step. The network sits idle during backward and the processors sit idle
# during the all-reduce. DDP (Li et al., 2020) overlaps them. It groups the parameters in
# *buckets* of about 25 MB, in the reverse order of the forward pass (the order in which
# backward produces their gradients). A hook on every parameter notices when its gradient is
# ready; when a bucket is full its all-reduce starts *asynchronously* while autograd goes on
# with the earlier layers. After backward, DDP waits for the last buckets and divides by
# the number of ranks (the mean loss of the global batch). Many small all-reduces would pay
# their latency many times; one big one could not start before backward ends: buckets are
# the compromise (`bucket_cap_mb`).
#
# `ddp_demo.bucket_rank` rebuilds this with `torch.distributed` primitives on a ResNet-20:
# `register_post_accumulate_grad_hook` on each parameter, `dist.all_reduce(async_op=True)`
# per bucket of at least 5,000 numbers, `work.wait()` at the end. Then it runs the same model
# and batch through the real `DistributedDataParallel` and compares the gradients.

# %%
bk = workers.launch(ddp_demo.bucket_rank, 2)[0]
log = pd.DataFrame(bk["log"], columns=["event", "bucket", "ms after backward began"])
log["ms after backward began"] *= 1000
done = log.loc[log.event == "backward done", "ms after backward began"].item()
started = log[(log.event == "bucket") & (log["ms after backward began"] < done)]
print(f"{len(bk['buckets'])} buckets (parameters per bucket {bk['buckets']}); "
      f"{len(started)} of them started their all-reduce before backward ended ({done:.0f} ms)")
print(f"hand-made buckets vs DistributedDataParallel: max gradient difference {bk['max_diff_vs_ddp']:.1e}")
assert bk["max_diff_vs_ddp"] < 1e-6 and len(started) == len(bk["buckets"])
fig, ax = plt.subplots(figsize=(7, 2.2))
b = log[log.event == "bucket"]
ax.scatter(b["ms after backward began"], b.bucket, s=18, label="bucket's all-reduce starts")
ax.axvline(done, color="k", ls="--", label="backward ends")
ax.set(xlabel="ms after backward began", ylabel="bucket")
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# Every bucket's all-reduce starts inside backward, as soon as its last gradient exists
# (the cell counts them), and only the last bucket, the first layers', starts at the very
# end: on GPUs with a fast link most of the communication hides behind the computation of
# the earlier layers. (Here the two ranks share two CPU cores, so the overlap only means the
# messages are queued early; the cores do both jobs in turn.)
#
# ## 4. `fit` under DDP: the same training as one process
#
# `fit` needs no new argument. When `torchrun` (or `workers.launch`) has set up a process group,
# `fit` calls `cnnbook.train.distributed.setup`, which returns what each rank needs:
#
# - the model wrapped in `DistributedDataParallel` (it also broadcasts rank 0's initial
#   weights, so all ranks start equal);
# - each rank's *shard* of every epoch: `ShardedLoader`, the in-memory loader's version of
#   torch's `DistributedSampler`. All ranks draw the same permutation from the shared seed,
#   pad it to a multiple of the world size, and rank $r$ takes every `world_size`-th index
#   from $r$ on; the next epoch draws a new permutation;
# - all-reduced metrics: each rank sums its loss and correct predictions, one all-reduce
#   per epoch makes them global, so every rank's history is the same;
# - rank 0 alone prints, plots, writes checkpoints and the result record; every rank loads
#   a checkpoint to resume.
#
# Batch $b$ of both ranks together is exactly batch $b$ of one process with twice the batch
# size:

# %%
train_small, _ = ddp_demo.toy_data(n=20, batch_size=2)
one, _ = ddp_demo.toy_data(n=20, batch_size=4)
shards = [ShardedLoader(ddp_demo.toy_data(n=20, batch_size=2)[0], r, 2) for r in range(2)]
idx = [s.indices() for s in shards]
order = torch.randperm(20, generator=one.generator)
print("one process, epoch 1 order:", order.tolist())
print("rank 0's shard:            ", idx[0].tolist())
print("rank 1's shard:            ", idx[1].tolist())
assert torch.equal(torch.stack(idx, 1).flatten(), order)

# %% [markdown]
# So DDP with 2 ranks of batch $B$ and a *mean* loss should follow the same trajectory as one
# process with batch $2B$: each rank's gradient is the mean over its $B$ examples, and DDP
# averages the two. The classic check (also in `tests/train/test_distributed.py`): train the
# toy CNN both ways and compare the weights.

# %%
t0 = time.perf_counter()
eq = workers.launch(ddp_demo.train_rank, 2, (cfg.eq_epochs, cfg.eq_batch, cfg.eq_n))
ddp_seconds = time.perf_counter() - t0
model_1 = ddp_demo.toy_model()
train_1, test_1 = ddp_demo.toy_data(cfg.eq_n, 2 * cfg.eq_batch)
res_1 = cnnbook.fit(model_1, train_1, test_1, epochs=cfg.eq_epochs, lr=0.05, momentum=0.9,
                    name="toy-one-process", chapter="24", live_plot=False, progress=False)
diff = max((eq[0]["state"][k] - v).abs().max().item() for k, v in model_1.state_dict().items())
between = max((eq[0]["state"][k] - eq[1]["state"][k]).abs().max().item() for k in eq[0]["state"])
hist = pd.DataFrame(eq[0]["history"])[["epoch", "train_loss", "train_acc", "test_acc"]]
hist["one process: train_loss"] = res_1.history["train_loss"].values
print(hist.round(5).to_string(index=False))
print(f"max |w_DDP - w_one process| = {diff:.1e}; between the two ranks: {between:.1e}")
assert between == 0.0
# (make rehearse cuts every batch to 8 examples, per process: there the two runs differ)
if not cnnbook.config.rehearsing():
    assert diff < 1e-5
    assert np.allclose(hist.train_loss, hist["one process: train_loss"], atol=1e-5)

# %% [markdown]
# The weights agree to float32 rounding (the cell prints the difference; summing in another
# order changes the last bits), the two ranks hold bit-identical weights, and the all-reduced
# losses equal the one-process ones.
#
# ## 5. The effective batch size and the linear scaling rule
#
# With $p$ processes of batch $B$ each, one optimiser step sees the **effective batch**
# $pB$. Two consequences. First, an epoch has $p$ times fewer steps; with the same
# learning rate, training makes less progress per epoch. Goyal et al. (2017)'s **linear
# scaling rule**: when the batch is multiplied by $k$, multiply the learning rate by $k$.
# The argument: $k$ small steps of SGD with rate $\eta$ move the weights by about
# $-\eta \sum_{j<k} \nabla L_j$; one step with batch $kB$ and rate $k\eta$ moves them by
# $-k\eta \cdot \frac1k \sum_j \nabla L_j$, the same, *as long as the gradient changes little
# over those $k$ steps*. That fails early in training when the weights move fast, hence a
# **warm-up** (5 epochs from a small rate in Goyal et al.), and it fails for very large
# batches (beyond 8k images for ResNet-50 on ImageNet in their measurements), where LARS/LAMB
# take over. `python -m cnnbook.train --scale-lr` applies the rule. Second, batch-dependent
# layers see only the *local* batch: batch norm's statistics are computed per rank
# (`nn.SyncBatchNorm.convert_sync_batchnorm` makes them global, at the cost of one more
# all-reduce per BN layer).

# %%
base_lr, base_batch = 0.1, 128
rows = [{"processes": p, "batch per process": 128, "effective batch": 128 * p,
         "steps per epoch (50k images)": -(-50_000 // (128 * p)),
         "lr by the linear rule": base_lr * 128 * p / base_batch} for p in (1, 2, 4, 8, 32)]
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# ## 6. One process against two, measured on this machine
#
# Now the honest measurement. Three ways to train the same model on the same images for the
# same epochs, timing only the training steps (fit's `train_seconds`, start-up excluded):
#
# 1. one process with 1 thread;
# 2. one process with as many threads as cores (PyTorch's default: intra-op parallelism
#    splits each convolution over the cores);
# 3. two processes of 1 thread each under DDP, each with half of every global batch.
#
# Besides the wall-clock seconds and examples per second, the table gives the CPU seconds
# the run's processes spent (summed over both ranks for DDP). All three runs train the same
# model on the same global batches, so they reach the same loss (up to batch norm, whose
# statistics each DDP rank computes on its half of the batch): the cell after the
# explanation checks it, so the comparison is of speed alone.

# %%
bench = dict(dataset=cfg.bench_dataset, model=cfg.bench_model, limit=cfg.bench_limit,
             batch_size=cfg.bench_batch, epochs=cfg.bench_epochs, profile=PROFILE)
threads = torch.get_num_threads()
# the one-process runs go to worker 0 alone, so both sides run alike (in a spawned Python)
one = workers.launch(ddp_demo.bench_many, 1,
                     ([dict(bench, threads=1, name="bench-1proc-1thread"),
                       dict(bench, threads=os.cpu_count() or 1, name="bench-1proc-all-threads")],),
                     timeout=900)[0]
runs = [dict(r, processes=1) for r in one]
two = workers.launch(ddp_demo.bench_many, 2, ([dict(bench, threads=1, name="bench-2proc",
                                                     batch_size=cfg.bench_batch // 2)],),
                     timeout=900)
runs.append(dict(two[0][0], processes=2, cpu_seconds=sum(r[0]["cpu_seconds"] for r in two)))
table = pd.DataFrame(runs)[["processes", "threads", "train_seconds", "examples_per_sec",
                            "cpu_seconds", "train_loss"]]
table["speed-up vs 1 process, 1 thread"] = table.examples_per_sec / table.examples_per_sec[0]
print(f"{cfg.bench_model} on {cfg.bench_limit} {cfg.bench_dataset} images, global batch "
      f"{cfg.bench_batch}, load average now {os.getloadavg()[0]:.1f}")
print(table.round(3).to_string(index=False))
speedup_ddp = table["speed-up vs 1 process, 1 thread"].iloc[2]
speedup_threads = table["speed-up vs 1 process, 1 thread"].iloc[1]

# %% [markdown]
# The table above is this machine's answer (the numbers change with its load: other
# programs share the same two cores). On a machine of their own, two processes on two cores
# cannot be twice as fast as one process with one thread: they have two cores' worth of
# compute at most, and communication and a second Python come on top. Against one process
# that already uses both cores through threads, three things work against them:
#
# - **the cores are the same**: a one-process run with 2 threads already keeps both cores
#   busy in the large convolutions; DDP only moves the parallelism from inside each
#   operation to across the batch. Its gain over 1 thread is at most 2x, minus the rest;
# - **communication costs CPU time**: gloo's all-reduce of every gradient bucket goes through
#   TCP sockets, copies and sums on the same cores that should be computing; here it cannot
#   overlap with anything, because nothing else is free to run;
# - **smaller per-process batches** use the cores less efficiently (fewer rows per matrix
#   multiply), and every process pays its own Python overhead per step.
#
# On a machine shared with other programs the comparison is skewed further: the operating
# system gives every runnable process (or thread) its share of the cores, so two processes,
# or two threads, can simply grab more of the contested cores than one thread does, and the
# load can change between the runs, so the wall-clock speed-up can even pass 2. That is a
# bigger slice of the machine, not parallel speed: rerun the cell and compare the load
# averages printed with the table. Even the CPU seconds move with the load (a core that
# other programs share computes more slowly: its caches, and the hyper-threads that share
# one physical core). Threads suffer most: the two threads of one operation wait for each other at its end, so whenever
# the system hands one of the cores to another program, the other thread waits; on a busy
# machine one process with 2 threads can be slower than with 1, while two processes of one
# thread each only lose their own share.
#
# On GPUs the picture changes: each process gets its own device with its own compute, the
# all-reduce runs over NVLink or InfiniBand with NCCL on dedicated hardware, and DDP's
# buckets overlap it with backward. Data parallelism then scales close to linearly: Goyal
# et al. measured 90% scaling efficiency from 8 to 256 GPUs, as long as the per-GPU batch stays
# large enough to keep each GPU busy and the gradient is small relative to the compute (a
# CNN's few million parameters against billions of multiply-adds per image).

# %%
print(f"2 processes vs 1 process 1 thread: x{speedup_ddp:.2f}; "
      f"1 process with {int(table.threads[1])} threads: x{speedup_threads:.2f}; "
      f"2 processes vs 1 process with all threads: x{speedup_ddp / speedup_threads:.2f}; "
      f"CPU seconds of 2 processes / 1 process 1 thread: "
      f"{table.cpu_seconds[2] / table.cpu_seconds[0]:.2f}; largest train-loss difference "
      f"between the three runs {table.train_loss.sub(table.train_loss[0]).abs().max():.3f}")
# the same training three ways: the same loss up to summation order and per-rank batch norm
# (not in make rehearse: there each rank's batch norm sees 2-4 images, so their statistics
# and the losses differ by more)
if not cnnbook.config.rehearsing():
    assert table.train_loss.sub(table.train_loss[0]).abs().max() < 0.05

# %% [markdown]
# ## 7. From the command line: `torchrun`
#
# The same training runs from a terminal. `python -m cnnbook.train` (module
# `cnnbook/train/run.py`) trains a chapter's model with the notebook's knobs; under
# `torchrun`, `fit` finds the process group by itself:
#
# ```bash
# torchrun --nproc-per-node 2 -m cnnbook.train --dataset cifar10 --model resnet20 --epochs 2 --limit 2000
# # one process per GPU, linear lr scaling:
# torchrun --nproc-per-node gpu -m cnnbook.train --model resnet56 --epochs 30 --scale-lr
# # two machines with 8 GPUs each (the same command on both):
# torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \
#     --rdzv-id run1 -m cnnbook.train --model resnet56 --epochs 30 --scale-lr
# ```
#
# `--batch-size` is per process; `--checkpoint DIR` resumes a killed run (rank 0 writes,
# every rank reads); `--timeout` bounds how long a rank waits for a dead one. In the cpu and
# full profiles the next cell runs the first command.

# %%
cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
       "-m", "cnnbook.train", "--dataset", "cifar10", "--model", "resnet20",
       "--epochs", str(cfg.cli_epochs), "--batch-size", "64", "--lr", "0.05",
       "--no-record", "--timeout", "120"] + (["--limit", str(cfg.cli_limit)] if cfg.cli_limit else []) \
    + (["--test-limit", str(cfg.cli_test_limit)] if cfg.cli_test_limit else [])
print(" ".join(cmd[2:]).replace("torch.distributed.run", "torchrun"))
if cfg.run_cli:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1500,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    print(done.stdout[-2500:])
    assert done.returncode == 0, done.stderr[-3000:]

# %% [markdown]
# ## Exercises

# %% [markdown]
# **Exercise 1 (a distributed sampler).** Write `shard(order, rank, world_size)` that takes
# one epoch's permutation `order` (a 1-D `LongTensor` of length `n`) and returns rank
# `rank`'s indices as `ShardedLoader` takes them: if `n` is not a multiple of `world_size`,
# first pad `order` by repeating its own first entries until it is; then take every
# `world_size`-th entry starting at `rank`. Return a `LongTensor`.

# %% nbgrader={"grade": false, "grade_id": "ex-24-shard", "locked": false, "schema_version": 3, "solution": true, "task": false}
def shard(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank `rank`'s indices of the permutation `order`, padded to a multiple of world_size."""
    ### BEGIN SOLUTION
    n = len(order)
    extra = (-n) % world_size
    if extra:
        order = torch.cat([order, order.repeat(-(-extra // n))[:extra]])
    return order[rank::world_size]
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-24-shard-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from cnnbook.train.distributed import ShardedLoader as _Sharded
from cnnbook.train.ddp_demo import toy_data as _toy
_o = torch.tensor([4, 0, 3, 1, 2])
assert isinstance(shard(_o, 0, 2), torch.Tensor)
assert shard(_o, 0, 2).tolist() == [4, 3, 2] and shard(_o, 1, 2).tolist() == [0, 1, 4]
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
_g = torch.Generator().manual_seed(24)
for _ in range(6):
    _n = int(torch.randint(3, 40, (1,), generator=_g))
    _w = int(torch.randint(2, 6, (1,), generator=_g))
    _loaders = [_Sharded(_toy(_n, 4, seed=_n)[0], _r, _w) for _r in range(_w)]
    for _r, _ld in enumerate(_loaders):
        _perm = torch.randperm(_n, generator=_toy(_n, 4, seed=_n)[0].generator)
        _got = shard(_perm, _r, _w)
        assert isinstance(_got, torch.Tensor) and _got.dtype == torch.int64
        assert torch.equal(_got, _ld.indices()), (_n, _w, _r)
### END HIDDEN TESTS
print("your shards are those of ShardedLoader")

# %% [markdown]
# **Exercise 2 (the linear scaling rule).** A recipe says "lr 0.1 for batch 256". Write
# `scaled_lr(base_lr, base_batch, batch_per_process, processes)` that returns the learning
# rate the linear scaling rule gives for `processes` processes of `batch_per_process`
# examples each, as a Python `float`.

# %% nbgrader={"grade": false, "grade_id": "ex-24-scaled-lr", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scaled_lr(base_lr: float, base_batch: int, batch_per_process: int, processes: int) -> float:
    """The learning rate for the effective batch, by Goyal et al.'s linear scaling rule."""
    ### BEGIN SOLUTION
    return float(base_lr * batch_per_process * processes / base_batch)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-24-scaled-lr-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert type(scaled_lr(0.1, 256, 128, 2)) is float
assert abs(scaled_lr(0.1, 256, 128, 2) - 0.1) < 1e-12
assert abs(scaled_lr(0.1, 256, 256, 8) - 0.8) < 1e-12
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng(24)
for _ in range(20):
    _lr, _b0, _b, _p = float(_rng.uniform(1e-4, 1)), int(_rng.integers(1, 1024)), \
        int(_rng.integers(1, 512)), int(_rng.integers(1, 64))
    _v = scaled_lr(_lr, _b0, _b, _p)
    assert type(_v) is float and abs(_v - _lr * _b * _p / _b0) < 1e-9 * max(1, _v)
### END HIDDEN TESTS
print("linear scaling rule: correct")

# %% [markdown]
# **Exercise 3 (uneven last batches).** DDP averages the ranks' gradients with equal
# weights. That is the global batch's mean gradient only when every rank had the same
# number of examples. Write `global_mean_gradient(grads, counts)`: `grads[i]` is rank `i`'s
# gradient, the mean over its `counts[i]` examples (`counts[i] >= 1`); return the gradient of
# the mean loss over *all* examples (a tensor of the same shape). Then set
# `ddp_average_is_right` to the Python `bool` saying whether DDP's plain average equals it
# when `counts = [32, 32]`.

# %% nbgrader={"grade": false, "grade_id": "ex-24-global-mean", "locked": false, "schema_version": 3, "solution": true, "task": false}
def global_mean_gradient(grads: list, counts: list) -> torch.Tensor:
    """The mean-loss gradient over all ranks' examples from per-rank mean gradients."""
    ### BEGIN SOLUTION
    total = sum(counts)
    return sum(g * (c / total) for g, c in zip(grads, counts))
    ### END SOLUTION


### BEGIN SOLUTION
ddp_average_is_right = True
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-24-global-mean-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
_a, _b = torch.ones(3), torch.zeros(3)
assert isinstance(global_mean_gradient([_a, _b], [3, 1]), torch.Tensor)
assert torch.allclose(global_mean_gradient([_a, _b], [3, 1]), torch.full((3,), 0.75))
assert type(ddp_average_is_right) is bool
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
assert ddp_average_is_right is True
_g = torch.Generator().manual_seed(240)
for _ in range(5):
    _p = int(torch.randint(2, 5, (1,), generator=_g))
    _counts = [int(c) for c in torch.randint(1, 9, (_p,), generator=_g)]
    _X = torch.randn(sum(_counts), 4, generator=_g, dtype=torch.float64)
    _y = torch.randn(sum(_counts), generator=_g, dtype=torch.float64)
    _w = torch.randn(4, generator=_g, dtype=torch.float64, requires_grad=True)
    ((_X @ _w - _y) ** 2).mean().backward()
    _grads, _start = [], 0
    for _c in _counts:
        _wi = _w.detach().clone().requires_grad_(True)
        ((_X[_start:_start + _c] @ _wi - _y[_start:_start + _c]) ** 2).mean().backward()
        _grads.append(_wi.grad)
        _start += _c
    _got = global_mean_gradient(_grads, _counts)
    assert isinstance(_got, torch.Tensor) and _got.shape == _w.shape
    assert torch.allclose(_got, _w.grad, atol=1e-10)
### END HIDDEN TESTS
print("global mean gradient: correct")

# %% [markdown]
# **Exercise 4 (experiment: does a bigger batch per process help DDP?).** Communication per
# step is the same whatever the batch (one gradient's worth), while computation grows with
# it. Measure it: for each per-process batch size in `cfg.exp_batches`, train with
# `workers.launch(ddp_demo.bench_many, 1, ...)` (1 process, 1 thread, global batch = 2 x
# the per-process batch) and with `workers.launch(ddp_demo.bench_many, 2, ...)` (2 processes of 1
# thread, each with the per-process batch), using `dataset=cfg.bench_dataset`,
# `model=cfg.bench_model`, `limit=cfg.exp_limit`, `epochs=1`. Fill `experiment`, a
# `DataFrame` with one row per batch size and columns `batch_per_process`, `one_process`
# and `two_processes` (examples per second), and `speedup` (`two_processes / one_process`).
# Then set `bigger_batch_scales_better` to the Python `bool` your numbers give (is the
# speed-up at the largest batch higher than at the smallest?), and explain in the markdown
# cell below why.

# %% nbgrader={"grade": false, "grade_id": "ex-24-experiment", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
_common = dict(dataset=cfg.bench_dataset, model=cfg.bench_model, limit=cfg.exp_limit, epochs=1)
_one = workers.launch(ddp_demo.bench_many, 1,
                      ([dict(_common, batch_size=2 * b, threads=1) for b in cfg.exp_batches],),
                      timeout=900)[0]
_two = workers.launch(ddp_demo.bench_many, 2,
                      ([dict(_common, batch_size=b, threads=1) for b in cfg.exp_batches],),
                      timeout=900)[0]
experiment = pd.DataFrame({"batch_per_process": list(cfg.exp_batches),
                           "one_process": [r["examples_per_sec"] for r in _one],
                           "two_processes": [r["examples_per_sec"] for r in _two]})
experiment["speedup"] = experiment.two_processes / experiment.one_process
bigger_batch_scales_better = bool(experiment.speedup.iloc[-1] > experiment.speedup.iloc[0])
### END SOLUTION
print(experiment.round(3).to_string(index=False))

# %% nbgrader={"grade": true, "grade_id": "ex-24-experiment-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert isinstance(experiment, pd.DataFrame)
assert {"batch_per_process", "one_process", "two_processes", "speedup"} <= set(experiment.columns)
assert type(bigger_batch_scales_better) is bool
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
assert sorted(experiment.batch_per_process.tolist()) == sorted(cfg.exp_batches)
assert (experiment.one_process > 0).all() and (experiment.two_processes > 0).all()
assert np.allclose(experiment.speedup, experiment.two_processes / experiment.one_process)
_e = experiment.sort_values("batch_per_process")
assert bigger_batch_scales_better == bool(_e.speedup.iloc[-1] > _e.speedup.iloc[0])
### END HIDDEN TESTS
print("experiment recorded; now explain it below")

# %% [markdown]
# *Your interpretation:* (what did the speed-up do as the batch grew, and why? Think of what
# each step costs: the computation grows with the batch, the all-reduce of the gradient does
# not; and of what else was running on the two cores.)
#
# *One answer:* with a tiny batch per process most of each step is fixed cost (Python,
# launching kernels, the all-reduce of the whole gradient, which is the same size whatever
# the batch), so on an idle machine two processes gain little or even lose; with a larger
# batch the computation dominates and the communication is amortised over more examples, so
# the speed-up rises towards what two cores can give. On a shared machine the wall clock also
# measures how much of the cores each run was given: two processes get two shares of the
# contested cores, and the load changes from one run to the next, so a speed-up above 2, or
# one that falls as the batch grows, tells you about the other programs, not about DDP. The
# CPU seconds `bench_rank` returns (`cpu_seconds`) show the cost without the sharing: rerun
# the experiment and compare them.

# %% [markdown]
# ## Summary
#
# - Data parallelism: one process per device, each with a full model and a shard of every
#   batch; an all-reduce averages the gradients so all take the same step.
# - The ring all-reduce sends about $2\times$ the gradient per rank whatever the number of
#   ranks; DDP buckets the gradients and all-reduces them during backward.
# - `fit` runs unchanged under `torchrun`: DDP wrapping, per-rank shards reshuffled from a
#   shared seed, global metrics, rank 0 writing, checkpoints that resume on every rank, and
#   a timeout that turns a dead rank into an error. It matches one process with the same
#   global batch to float rounding.
# - Effective batch = processes x batch per process; scale the learning rate with it (and
#   warm up). On one CPU, more processes do not add compute; on GPUs they do.

# %%
workers.close()   # the chapter's two processes end here (they would end with the kernel too)
