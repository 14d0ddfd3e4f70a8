"""Data-parallel training with PyTorch's ``DistributedDataParallel``, launched by ``torchrun``.

    torchrun --nproc-per-node 2 -m cnnbook.train --dataset cifar10 --model resnet20

``fit`` calls ``setup(device)`` first. Outside ``torchrun`` (no ``WORLD_SIZE`` > 1 in the
environment and no process group already made) it returns ``None`` and ``fit`` trains
exactly as before. Under ``torchrun`` it joins the process group (``gloo`` on the CPU,
``nccl`` on CUDA, one GPU per process chosen by ``LOCAL_RANK``) with a *timeout*, so a
rank that dies or hangs makes the others fail with a message instead of waiting forever,
and returns a ``Distributed`` with the pieces ``fit`` uses:

- ``wrap(model)``: the model in ``DistributedDataParallel``. Its backward sums the
  gradients of all ranks in *buckets* of about 25 MB, each all-reduced as soon as its
  gradients are ready, overlapping communication with the rest of the backward pass, and
  divides by the number of ranks: every rank then takes the same optimiser step.
- ``shard(loader)``: each rank's share of every epoch (``ShardedLoader``; the in-memory
  ``TensorLoader``'s version of torch's ``DistributedSampler``). All ranks draw the same
  permutation from the shared seed, so the shards are disjoint and reshuffled each epoch.
- ``sum(...)``: all-reduced metric sums, so every rank reports the global loss/accuracy.
- ``is_main``: rank 0 alone prints, plots, writes checkpoints and result records.

``launch(fn, nprocs)`` starts ``nprocs`` CPU processes as ``torchrun`` would (used by the
tests and chapter 24, where ``fn`` must be importable: spawned processes import it by name).
"""
from __future__ import annotations

import datetime
import os
import pickle
import socket
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

DEFAULT_TIMEOUT = 120.0   # seconds a collective may wait for the other ranks


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` alone)."""
    try:
        return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as exc:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be whole numbers ({exc})") from exc


def backend_for(device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` for everything else (CPU)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in a plain single process): the one that prints and writes."""
    return rank() == 0


def timeout_from_env(default: float = DEFAULT_TIMEOUT) -> float:
    """Seconds for the process group's timeout: ``CNNBOOK_DIST_TIMEOUT`` or ``default``."""
    value = os.environ.get("CNNBOOK_DIST_TIMEOUT")
    if value is None:
        return default
    seconds = float(value)
    if not seconds > 0:
        raise ValueError(f"CNNBOOK_DIST_TIMEOUT must be a positive number of seconds, got {value!r}")
    return seconds


def init_process_group(device=None, timeout: float | None = None) -> bool:
    """Join torchrun's process group if there is one; True if running distributed.

    Reads ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` (set by torchrun). Does
    nothing when ``WORLD_SIZE`` is 1 or absent, or when a group already exists.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    _, world, local = env_world()
    if world <= 1:
        return False
    device = torch.device(device) if device is not None else _default_device(local)
    if device.type == "cuda":
        torch.cuda.set_device(_default_device(local) if device.index is None else device)
    dist.init_process_group(backend_for(device),
                            timeout=datetime.timedelta(seconds=timeout or timeout_from_env()))
    return True


def _default_device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


@dataclass
class Distributed:
    """What ``fit`` needs to train on one of ``world_size`` ranks."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model in DDP (one device per process; buffers such as BN's broadcast from rank 0)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, loader, train: bool = True):
        """This rank's share of ``loader`` (None stays None; other loaders are refused)."""
        if loader is None:
            return None
        if isinstance(loader, ShardedLoader):
            return loader
        if not hasattr(loader, "images") or not hasattr(loader, "generator"):
            raise TypeError(f"under torchrun fit shards cnnbook's TensorLoader; got "
                            f"{type(loader).__name__}: use cnnbook.load_data's loaders, or give "
                            "each rank its own shard (torch's DistributedSampler) yourself")
        return ShardedLoader(loader, self.rank, self.world_size, pad=train)

    def sum(self, *values) -> list[torch.Tensor]:
        """Every value summed over the ranks (one all-reduce, in float64)."""
        t = torch.stack([torch.as_tensor(v, dtype=torch.float64).to(self.device) for v in values])
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return list(t.unbind())

    def mean(self, total, count) -> float:
        """The global mean of a quantity whose per-rank sum is ``total`` over ``count`` items."""
        t, c = self.sum(total, count)
        return (t / c).item()

    def barrier(self) -> None:
        dist.barrier()

    def evaluate(self, model, test_iter, device, evaluate) -> dict:
        """``evaluate`` on this rank's shard, combined over the ranks by example counts."""
        n = test_iter.num_local_examples
        out = evaluate(model, test_iter, device) if n else {"acc": 0.0, "loss": 0.0}
        acc_n, loss_n, total = self.sum(out["acc"] * n, out["loss"] * n, n)
        return {"acc": (acc_n / total).item(), "loss": (loss_n / total).item()}


def setup(device=None) -> Distributed | None:
    """``fit``'s entry: None in a plain process; else join the group and describe this rank."""
    if not init_process_group(device):
        return None
    local = env_world()[2]
    device = torch.device(device) if device is not None else _default_device(local)
    if device.type == "cuda" and device.index is None:   # "cuda": this process's own GPU
        device = _default_device(local)
    return Distributed(dist.get_rank(), dist.get_world_size(), device)


class ShardedLoader:
    """Rank ``rank``'s part of every epoch of a ``TensorLoader`` (a ``DistributedSampler``).

    Each epoch all ranks draw the same permutation from the wrapped loader's seeded
    generator (same seed, same number of draws: they stay in step), pad it by wrapping
    around to a multiple of ``world_size`` (``pad=True``, training) and take every
    ``world_size``-th index from ``rank`` on. Batch ``b`` of all ranks together is then
    exactly batch ``b`` of one process with ``world_size`` times the batch size, which is
    why DDP matches single-process training. Random crops and flips use a second
    generator seeded per rank, so ranks do not augment in lockstep. Without ``pad``
    (evaluation) the shards are disjoint and cover every example once.
    """

    def __init__(self, loader, rank: int, world_size: int, pad: bool = True):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.loader, self.rank, self.world_size, self.pad = loader, rank, world_size, pad
        self.batch_size = loader.batch_size
        seed = loader.generator.initial_seed()   # the loader's seed: shared by all ranks
        self.aug_generator = torch.Generator().manual_seed(seed + 7919 * (rank + 1))

    @property
    def num_examples(self) -> int:   # the global number, as in the result records
        return self.loader.num_examples

    @property
    def labels(self):
        return self.loader.labels

    @property
    def num_local_examples(self) -> int:
        n, w = self.loader.num_examples, self.world_size
        return -(-n // w) if self.pad else len(range(self.rank, n, w))

    def __len__(self) -> int:
        n, b = self.num_local_examples, self.batch_size
        return n // b if self.loader.drop_last else -(-n // b)

    def state_dict(self) -> dict:
        return {"generator": self.loader.generator.get_state(),
                "aug_generator": self.aug_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.loader.generator.set_state(state["generator"])
        if "aug_generator" in state:
            self.aug_generator.set_state(state["aug_generator"])

    def indices(self) -> torch.Tensor:
        """This epoch's indices for this rank (advances the shared generator once)."""
        ld = self.loader
        n = ld.num_examples
        order = torch.randperm(n, generator=ld.generator) if ld.shuffle else torch.arange(n)
        if self.pad and n % self.world_size:
            extra = self.world_size - n % self.world_size
            order = torch.cat([order, order.repeat(-(-extra // n))[:extra]])
        return order[self.rank::self.world_size]

    def __iter__(self):
        ld = self.loader
        mine = self.indices().to(ld.device)
        for b in range(len(self)):
            idx = mine[b * self.batch_size:(b + 1) * self.batch_size]
            x = ld.transform(ld.images[idx].to(ld.device), ld.train, self.aug_generator)
            yield x, ld.labels[idx]


# --- launching CPU processes from Python (tests, notebooks) ---------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Workers:
    """``nprocs`` spawned CPU processes that stay alive and run one distributed job at a time.

    Starting a Python that imports torch costs seconds (more than a small job itself), so a
    notebook that launches many small jobs starts its processes once::

        workers = Workers(2)
        out = workers.launch(fn, 2, args)     # fn(*args) on 2 ranks: a list of 2 results
        one = workers.launch(fn, 1, args)     # the same job on worker 0 alone

    Every job is a fresh run as ``torchrun`` would start it: its own ``RANK``/
    ``WORLD_SIZE``/``MASTER_PORT`` (a new port, a new process group that ``fn`` joins with
    ``init_process_group``, destroyed afterwards), one torch thread, the environment as the
    worker started with. Only the Python processes (and their imports) are reused. If a
    rank raises, dies or the job outlives ``timeout``, all workers are stopped (the others
    may be waiting in a collective), a clear error is raised, and the next job starts new
    workers. ``fn`` must be importable: spawned processes import it by module and name.
    """

    def __init__(self, nprocs: int = 2):
        if nprocs < 1:
            raise ValueError(f"nprocs must be at least 1, got {nprocs}")
        self.nprocs = nprocs
        self._procs: list = []
        self._conns: list = []
        self._job = 0
        self.start()

    def start(self) -> None:
        """Spawn the processes (if not running); they import torch in the background."""
        if self._procs:
            return
        import torch.multiprocessing as mp

        ctx = mp.get_context("spawn")
        for i in range(self.nprocs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(i, theirs), daemon=True,
                               name=f"cnnbook-worker-{i}")
            proc.start()
            theirs.close()
            self._procs.append(proc)
            self._conns.append(mine)

    def close(self) -> None:
        """Stop the processes (between jobs they hold nothing worth a slow, polite exit)."""
        self._kill()

    def _kill(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self._procs:
            proc.join(5)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self._kill()
        except Exception:
            pass

    def launch(self, fn, nprocs: int | None = None, args: tuple = (), timeout: float = 600.0,
               collective_timeout: float = 60.0) -> list:
        """``fn(*args)`` on ranks ``0 .. nprocs - 1`` (default: all workers); their results."""
        from multiprocessing.connection import wait

        nprocs = self.nprocs if nprocs is None else nprocs
        if not 1 <= nprocs <= self.nprocs:
            raise ValueError(f"nprocs must be between 1 and {self.nprocs} (the workers started), "
                             f"got {nprocs}")
        self.start()
        self._job += 1
        port = free_port()
        conns = self._conns[:nprocs]
        for r, conn in enumerate(conns):
            conn.send_bytes(pickle.dumps((self._job, fn, args, r, nprocs, port, collective_timeout)))
        results: dict[int, object] = {}
        deadline = time.monotonic() + timeout
        try:
            while len(results) < nprocs:
                waiting = [c for r, c in enumerate(conns) if r not in results]
                sentinels = {self._procs[r].sentinel: r for r in range(nprocs) if r not in results}
                ready = wait(waiting + list(sentinels), timeout=max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise TimeoutError(f"the {nprocs} processes did not finish within "
                                       f"{timeout:.0f} s; stopped them")
                for obj in ready:
                    if obj in sentinels:
                        if conns[sentinels[obj]].poll():   # its answer came just before it ended
                            continue
                        code = self._procs[sentinels[obj]].exitcode
                        raise RuntimeError(f"a rank exited abnormally, so the distributed run was "
                                           f"stopped: process {sentinels[obj]} terminated with "
                                           f"exit code {code}")
                    r = conns.index(obj)
                    job, ok, payload = pickle.loads(obj.recv_bytes())
                    if job != self._job:
                        continue
                    if not ok:
                        last = payload.strip().splitlines()
                        raise RuntimeError(f"a rank failed, so the distributed run was stopped: "
                                           f"rank {r}: {last[-1] if last else ''}\n{payload}")
                    results[r] = payload
        except BaseException:
            self._kill()   # the other ranks may wait in a collective: stop them all
            raise
        return [pickle.loads(results[r]) for r in range(nprocs)]


def _serve(index: int, conn) -> None:
    """A worker's loop: run each job it is sent, answer ``(job, ok, result or traceback)``."""
    import traceback

    base_env = dict(os.environ)
    while True:
        try:
            blob = conn.recv_bytes()
        except (EOFError, OSError):   # the parent is gone
            return
        job, fn, args, local_rank, nprocs, port, collective_timeout = pickle.loads(blob)
        os.environ.clear()
        os.environ.update(base_env)
        os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank),
                          WORLD_SIZE=str(nprocs), LOCAL_WORLD_SIZE=str(nprocs),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                          CNNBOOK_DIST_TIMEOUT=str(collective_timeout))
        torch.set_num_threads(1)
        try:
            answer = (job, True, pickle.dumps(fn(*args)))   # by value: no shared memory needed
        except BaseException:
            answer = (job, False, traceback.format_exc())
        finally:
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
            os.environ.clear()
            os.environ.update(base_env)
        conn.send_bytes(pickle.dumps(answer))


def launch(fn, nprocs: int = 2, args: tuple = (), timeout: float = 600.0,
           collective_timeout: float = 60.0) -> list:
    """Run ``fn(*args)`` in ``nprocs`` new processes set up as torchrun would; their results.

    ``fn`` must be importable (spawned processes import it by name, so a function defined
    in a notebook cell will not do). Each process gets ``RANK``/``WORLD_SIZE``/``MASTER_*``
    and one thread. If a process raises, the others are stopped and a ``RuntimeError``
    names the rank and its error; after ``timeout`` seconds the run is stopped too.
    ``collective_timeout`` is the process group's timeout. The processes end with the job;
    ``Workers`` keeps them for the next one.
    """
    if nprocs < 1:
        raise ValueError(f"nprocs must be at least 1, got {nprocs}")
    with Workers(nprocs) as workers:
        return workers.launch(fn, nprocs, args, timeout=timeout,
                              collective_timeout=collective_timeout)
