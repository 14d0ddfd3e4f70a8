"""What runs inside each process in chapter 24 and the distributed tests.

``torch.multiprocessing`` starts processes with *spawn*: a fresh Python that imports the
function to run by its module and name. A function defined in a notebook cell cannot be
imported that way, so every per-rank function of the chapter lives here and is started
with ``cnnbook.train.distributed.launch(fn, nprocs, args)``:

- ``toy_data`` / ``toy_model``: a small, seeded problem both sides can rebuild exactly;
- ``train_rank``: ``fit`` on this rank (DDP when launched with 2 processes);
- ``allreduce_rank``: chapter 04's all-reduce (each rank's slice of a batch gradient,
  summed) done with ``dist.all_reduce`` and with a hand-written ring all-reduce;
- ``bucket_rank``: DDP's idea by hand: gradient hooks fill buckets during backward and each
  full bucket's all-reduce starts at once (``async_op=True``) while backward goes on;
- ``crash_rank``: a rank that raises mid-training, to show the run fails instead of hanging.
"""
from __future__ import annotations

import os
import time

import torch
import torch.distributed as dist
from torch import nn

from cnnbook.train.distributed import init_process_group, rank, world_size


def toy_data(n: int = 256, batch_size: int = 32, seed: int = 0, side: int = 8):
    """A seeded 4-class problem of ``n`` uint8 images (a bright quadrant gives the class)."""
    from cnnbook.data.loader import TensorLoader

    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randint(0, 100, (n, 1, side, side), generator=g)
    h = side // 2
    for c, (r0, c0) in enumerate(((0, 0), (0, h), (h, 0), (h, h))):
        x[y == c, :, r0:r0 + h, c0:c0 + h] += 120
    x = x.to(torch.uint8)
    train = TensorLoader(x, y, batch_size, shuffle=True, device="cpu", seed=seed)
    test = TensorLoader(x[: n // 2], y[: n // 2], batch_size, device="cpu")
    return train, test


def toy_model(seed: int = 0) -> nn.Module:
    """A small CNN without batch norm (whose statistics would differ per rank)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 4))


def train_rank(epochs: int = 1, batch_size: int = 32, n: int = 256, lr: float = 0.05,
               checkpoint: str | None = None, results_dir: str | None = None,
               stop_at_step: int | None = None) -> dict:
    """``fit`` the toy model on this rank with per-rank ``batch_size``; what it did.

    Returns the final weights, the history, this rank and the files this rank tried to
    write (checkpoint saves and result records, caught at the functions that write them).
    ``stop_at_step`` raises ``KeyboardInterrupt`` at that global step (to test resuming).
    """
    import cnnbook.results
    import cnnbook.train.checkpoint as ck
    from cnnbook.train.loop import fit

    if results_dir:
        os.environ["CNNBOOK_RESULTS_DIR"] = results_dir
    writes: list[str] = []
    real_save, real_record = ck.atomic_save, cnnbook.results.write_record
    ck.atomic_save = lambda obj, path: (writes.append(str(path)), real_save(obj, path))[1]
    cnnbook.results.write_record = lambda rec, profile, name: (
        writes.append(f"record:{name}"), real_record(rec, profile, name))[1]
    try:
        train, test = toy_data(n, batch_size)
        model = toy_model()
        callbacks = [_StopAt(stop_at_step)] if stop_at_step else []
        result = fit(model, train, test, epochs=epochs, lr=lr, momentum=0.9, progress=False,
                     live_plot=False, checkpoint=checkpoint, record=results_dir is not None,
                     name="toy-ddp", chapter="24", callbacks=callbacks,
                     profile="smoke")
    finally:
        ck.atomic_save, cnnbook.results.write_record = real_save, real_record
    return {"rank": rank(), "world_size": world_size(),
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "history": result.history.to_dict("records"), "writes": writes,
            "interrupted": result.interrupted, "record": result.record}


class _StopAt:
    """A callback that raises KeyboardInterrupt (as Ctrl-C would) at a given step."""

    def __init__(self, step: int):
        self.step, self.seen = step, 0

    def __call__(self, row, model, opt):
        return False

    def on_batch_end(self, model, opt):
        self.seen += 1
        if self.seen == self.step:
            raise KeyboardInterrupt


def resume_rank(checkpoint: str, epochs: int = 2, stop_at_step: int = 6) -> dict:
    """``train_rank`` interrupted at ``stop_at_step``, then called again: it resumes."""
    first = train_rank(epochs, checkpoint=checkpoint, stop_at_step=stop_at_step)
    second = train_rank(epochs, checkpoint=checkpoint)
    return dict(second, first_interrupted=first["interrupted"])


def crash_rank(crash_on: int = 1, epochs: int = 50, mode: str = "crash") -> dict:
    """Train the toy model, but rank ``crash_on`` fails after 3 steps.

    ``mode="crash"``: it raises (its process ends); ``"hang"``: it sleeps, so the others
    wait in their next all-reduce until the process group's timeout makes them fail.
    """
    from cnnbook.train.loop import fit

    class Crash:
        steps = 0

        def __call__(self, row, model, opt):
            return False

        def on_batch_end(self, model, opt):
            self.steps += 1
            if rank() == crash_on and self.steps == 3:
                if mode == "hang":
                    time.sleep(3600)
                raise RuntimeError(f"rank {crash_on} crashed on purpose at step 3")

    init_process_group()
    train, _ = toy_data(4096, 8)
    fit(toy_model(), train, epochs=epochs, lr=0.05, progress=False, live_plot=False,
        record=False, callbacks=[Crash()])
    return {"rank": rank()}


def ring_allreduce(chunks: list[torch.Tensor]) -> None:
    """Sum ``chunks`` over all ranks in place, as NCCL's ring does, with send/recv only.

    ``chunks`` is this rank's tensor cut into ``world_size`` pieces. Reduce-scatter: in
    ``p - 1`` steps each rank sends one chunk to its right neighbour and adds the chunk
    from its left one; afterwards rank ``r`` holds the full sum of chunk ``(r + 1) % p``.
    All-gather: ``p - 1`` more steps pass the finished chunks around the ring. Each rank
    sends ``2 (p - 1) / p`` times the tensor, whatever the number of ranks.
    """
    p, r = world_size(), rank()
    if len(chunks) != p:
        raise ValueError(f"need one chunk per rank ({p}), got {len(chunks)}")
    from cnnbook.train.ring import num_steps, transfers

    right, left = (r + 1) % p, (r - 1) % p
    for step in range(num_steps(p)):   # the schedule of cnnbook.train.ring, for real
        plan = transfers(p, step)
        send_i, recv_i, phase = plan[r][2], plan[left][2], plan[r][3]
        incoming = torch.empty_like(chunks[recv_i])
        req = dist.isend(chunks[send_i].contiguous(), right)
        dist.recv(incoming, left)
        req.wait()
        if phase == "reduce-scatter":
            chunks[recv_i] += incoming
        else:
            chunks[recv_i].copy_(incoming)


def allreduce_rank(seed: int = 0) -> dict:
    """Chapter 04's split batch gradient, all-reduced three ways on this rank.

    Every rank builds the same batch, computes the weight gradient of its own slice with
    the course's hand-written ``conv2d_backward``, then sums the slices with
    ``dist.all_reduce`` and with ``ring_allreduce``; rank 0 also has the whole-batch
    gradient (autograd) to compare with.
    """
    from cnnbook.backprop import conv2d_backward
    import torch.nn.functional as F

    init_process_group()
    p, r = world_size(), rank()
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(4 * p, 3, 9, 9, generator=g, dtype=torch.float64)
    W = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    G = torch.randn(4 * p, 4, 5, 5, generator=g, dtype=torch.float64)
    part = slice(4 * r, 4 * (r + 1))
    mine = conv2d_backward(X[part], W.detach(), G[part], stride=2, padding=1)[1]
    by_library = mine.clone()
    dist.all_reduce(by_library, op=dist.ReduceOp.SUM)
    by_ring = mine.clone().flatten()
    ring_allreduce(list(by_ring.tensor_split(p)))
    (F.conv2d(X, W, stride=2, padding=1) * G).sum().backward()
    return {"rank": r, "mine": mine, "all_reduce": by_library,
            "ring": by_ring.view_as(mine), "whole_batch": W.grad.detach()}


def bucket_rank(bucket_numel: int = 5000, seed: int = 0) -> dict:
    """DDP's mechanism by hand: buckets all-reduced asynchronously during backward.

    Each parameter's gradient hook adds it to the current bucket (parameters in reverse
    order of use, as gradients arrive); a full bucket is flattened and its
    ``dist.all_reduce(async_op=True)`` starts at once while autograd computes the earlier
    layers' gradients. After backward, wait for all, divide by the number of ranks and copy
    back. Returns the event log (when each bucket started, when backward ended) and the
    averaged gradients, compared by the caller with real DDP.
    """
    from cnnbook.models.cifar_resnet import resnet20

    init_process_group()
    p, r = world_size(), rank()
    torch.manual_seed(seed)
    model = resnet20()
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(8 * p, 3, 32, 32, generator=g)[8 * r:8 * (r + 1)]
    y = torch.randint(0, 10, (8 * p,), generator=g)[8 * r:8 * (r + 1)]

    params = [q for q in model.parameters() if q.requires_grad]
    buckets: list[list[int]] = [[]]
    size = 0
    for i in reversed(range(len(params))):   # gradients arrive roughly last layer first
        if size >= bucket_numel:
            buckets.append([])
            size = 0
        buckets[-1].append(i)
        size += params[i].numel()
    where = {i: b for b, idx in enumerate(buckets) for i in idx}
    ready = [0] * len(buckets)
    pending, log = {}, []

    def launch(b):
        flat = torch.cat([params[i].grad.flatten() for i in buckets[b]])
        pending[b] = (flat, dist.all_reduce(flat, async_op=True))
        log.append(("bucket", b, time.perf_counter() - t0))

    def hook(param):
        i = index[id(param)]
        ready[where[i]] += 1
        if ready[where[i]] == len(buckets[where[i]]):
            launch(where[i])

    index = {id(q): i for i, q in enumerate(params)}
    handles = [q.register_post_accumulate_grad_hook(hook) for q in params]
    model.train()
    loss = nn.functional.cross_entropy(model(X), y)
    t0 = time.perf_counter()   # the clock starts with backward
    loss.backward()
    log.append(("backward done", -1, time.perf_counter() - t0))
    for flat, work in pending.values():
        work.wait()
    log.append(("all waited", -1, time.perf_counter() - t0))
    for h in handles:
        h.remove()
    for b, (flat, _) in pending.items():
        flat /= p
        offset = 0
        for i in buckets[b]:
            n = params[i].numel()
            params[i].grad.copy_(flat[offset:offset + n].view_as(params[i]))
            offset += n
    by_hand = [q.grad.clone() for q in params]

    torch.manual_seed(seed)   # the same model and batch through real DDP
    ddp = nn.parallel.DistributedDataParallel(resnet20())
    nn.functional.cross_entropy(ddp(X), y).backward()
    by_ddp = [q.grad.clone() for q in ddp.module.parameters() if q.requires_grad]
    diff = max((a - b).abs().max().item() for a, b in zip(by_hand, by_ddp))
    return {"rank": r, "buckets": [len(b) for b in buckets],
            "bucket_numel": [sum(params[i].numel() for i in b) for b in buckets],
            "log": log, "max_diff_vs_ddp": diff}


def bench_rank(dataset: str = "toy", model: str = "resnet20", limit: int = 512,
               batch_size: int = 64, epochs: int = 1, threads: int = 1,
               name: str | None = None, profile: str | None = None) -> dict:
    """Train once on this rank with ``threads`` CPU threads; seconds and examples/second.

    ``dataset="toy"`` is ``toy_data`` with the toy model (smoke runs); otherwise a course
    dataset (``limit`` training images, class-balanced) and a model of
    ``cnnbook.train.run.build_model``. ``batch_size`` is per process. Only training steps
    are timed (fit's ``train_seconds``), not start-up or evaluation; ``cpu_seconds`` is the
    CPU time this process spent in ``fit`` (all its threads), whatever the machine's load.
    """
    from cnnbook.config import seed_everything
    from cnnbook.train.loop import fit

    torch.set_num_threads(threads)
    init_process_group()
    seed_everything(0)
    if dataset == "toy":
        train, _ = toy_data(limit, batch_size)
        net = toy_model()
    else:
        from cnnbook.data.catalog import info
        from cnnbook.data.loader import load_data
        from cnnbook.train.run import build_model

        train, _ = load_data(dataset, batch_size, limit=limit, test_limit=10, normalize=True,
                             device="cpu")
        net = build_model(model, len(info(dataset).classes), next(iter(train))[0].shape[1])
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = fit(net, train, epochs=epochs, lr=0.05, momentum=0.9, progress=False,
                 live_plot=False, record=name is not None, name=name, chapter="24",
                 profile=profile, extra={"world_size": world_size(), "threads": threads})
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"rank": rank(), "world_size": world_size(), "threads": threads,
            "train_seconds": result.record["train_seconds"], "wall_seconds": wall,
            "cpu_seconds": cpu,
            "examples_per_sec": result.examples_per_sec,
            "train_loss": result.history["train_loss"].iloc[-1]}


def bench_many(configs: list[dict]) -> list[dict]:
    """``bench_rank(**config)`` for each config in turn, in one process group (one start-up)."""
    return [bench_rank(**config) for config in configs]
