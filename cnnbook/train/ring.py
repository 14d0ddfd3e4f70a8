"""Ring all-reduce as pure functions: who sends which chunk where, step by step.

NCCL (on GPUs) and gloo sum a gradient over ``p`` ranks without a central server: each
rank cuts its tensor into ``p`` chunks and the ranks form a ring. In ``p - 1``
*reduce-scatter* steps every rank sends one chunk to its right neighbour, which adds it to
its own copy; after them rank ``r`` holds the complete sum of chunk ``(r + 1) % p``. In
``p - 1`` *all-gather* steps the finished chunks travel once more around the ring. Every
rank sends ``2 (p - 1)`` chunks of ``1/p`` of the tensor: ``2 (p - 1) / p`` times its size,
almost independent of ``p``, and all links are busy at once. That is why data-parallel
training scales to many GPUs. ``cnnbook.train.ddp_demo.ring_allreduce`` runs the same
schedule with ``torch.distributed`` send/recv; the explorer of chapter 24 draws it.
"""
from __future__ import annotations

import math

import torch


def _check_ranks(p) -> int:
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise ValueError(f"a ring needs a whole number of at least 2 ranks, got {p!r}")
    return p


def num_steps(p: int) -> int:
    """Steps of a ring all-reduce over ``p`` ranks: ``2 (p - 1)``."""
    return 2 * (_check_ranks(p) - 1)


def transfers(p: int, step: int) -> list[tuple[int, int, int, str]]:
    """The messages of step ``step`` (0-based): ``(from_rank, to_rank, chunk, phase)``."""
    _check_ranks(p)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < num_steps(p):
        raise ValueError(f"step must be a whole number in [0, {num_steps(p) - 1}] for {p} ranks, "
                         f"got {step!r}")
    out = []
    for r in range(p):
        if step < p - 1:
            out.append((r, (r + 1) % p, (r - step) % p, "reduce-scatter"))
        else:
            s = step - (p - 1)
            out.append((r, (r + 1) % p, (r + 1 - s) % p, "all-gather"))
    return out


def contributions(p: int, after: int) -> list[list[frozenset]]:
    """``[rank][chunk]``: whose gradients rank's copy of chunk holds after ``after`` steps."""
    _check_ranks(p)
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= num_steps(p):
        raise ValueError(f"after must be a whole number in [0, {num_steps(p)}] for {p} ranks, "
                         f"got {after!r}")
    held = [[frozenset({r}) for _ in range(p)] for r in range(p)]
    for step in range(after):
        sent = [(dst, chunk, held[src][chunk], phase) for src, dst, chunk, phase in transfers(p, step)]
        for dst, chunk, data, phase in sent:   # all messages of a step travel at once
            held[dst][chunk] = held[dst][chunk] | data if phase == "reduce-scatter" else data
    return held


def simulate(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Ring all-reduce of one tensor per rank, done in one process: every output is the sum."""
    p = _check_ranks(len(tensors))
    chunks = [list(t.detach().clone().flatten().tensor_split(p)) for t in tensors]
    for step in range(num_steps(p)):
        sent = [(dst, c, chunks[src][c].clone(), phase) for src, dst, c, phase in transfers(p, step)]
        for dst, c, data, phase in sent:
            if phase == "reduce-scatter":
                chunks[dst][c] += data
            else:
                chunks[dst][c].copy_(data)
    return [torch.cat(ch).view_as(t) for ch, t in zip(chunks, tensors)]


def traffic(p: int, megabytes: float) -> dict:
    """Megabytes each rank sends to all-reduce ``megabytes``: ring vs one central rank."""
    _check_ranks(p)
    if isinstance(megabytes, bool) or not isinstance(megabytes, (int, float)) \
            or not math.isfinite(megabytes) or megabytes < 0:
        raise ValueError(f"the gradient size must be a finite number of megabytes >= 0, "
                         f"got {megabytes!r}")
    return {"ring_per_rank": 2 * (p - 1) / p * megabytes,
            # a parameter server: everyone sends to rank 0, which sends the sum back to all
            "central_rank": 2 * (p - 1) * megabytes}
