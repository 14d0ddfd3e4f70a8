"""Cost of a model: parameters, FLOPs and CPU latency, measured the same way for every chapter.

FLOPs come from ``torch.utils.flop_counter`` (it counts matrix products and convolutions,
two FLOPs per multiply-add); papers and torchvision's model cards quote multiply-adds
(MACs), so ``count_macs`` halves the counter's figure.
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnbook.config import capped, capped_batch


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _example(model: nn.Module, input_size) -> torch.Tensor:
    try:
        ref = next(model.parameters())
        device, dtype = ref.device, ref.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    return torch.zeros(tuple(input_size), device=device, dtype=dtype)


def count_flops(model: nn.Module, input_size=(1, 3, 224, 224), by_module: bool = False):
    """FLOPs of one forward pass in eval mode (2 per multiply-add), via ``FlopCounterMode``.

    With ``by_module`` also returns a dict of FLOPs per top-level child module name.
    """
    x = _example(model, input_size)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    total = int(counter.get_total_flops())
    if not by_module:
        return total
    per = {}
    for key, ops in counter.get_flop_counts().items():
        parts = key.split(".")
        if len(parts) == 2 and parts[0] == "Global":
            continue
        if len(parts) >= 2 and len(parts[1:]) == 1:
            per[parts[1]] = int(sum(ops.values()))
    return total, per


def count_macs(model: nn.Module, input_size=(1, 3, 224, 224)) -> int:
    """Multiply-adds of one forward pass: the unit of torchvision's ``_ops`` and of papers."""
    return count_flops(model, input_size) // 2


@torch.no_grad()
def latency_ms(model: nn.Module, input_size=(1, 3, 224, 224), batch_size: int | None = None,
               repeats: int = 20, warmup: int = 3, device=None) -> dict:
    """Wall-clock forward time in milliseconds: median and 90th percentile over ``repeats``.

    ``batch_size`` replaces the first dimension of ``input_size``. Runs in eval mode
    with no autograd, after ``warmup`` untimed passes; synchronises CUDA before reading
    the clock. ``per_image`` is the median divided by the batch size. A rehearsal
    (``CNNBOOK_MAX_BATCHES``, ``CNNBOOK_MAX_BATCH_SIZE``) caps the passes and the batch.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    repeats, warmup = capped(repeats), capped(warmup)   # a rehearsal: a couple (0 stays 0)
    size = list(input_size)
    if batch_size is not None:
        size[0] = batch_size
    size[0] = capped_batch(size[0])   # a rehearsal: the same layers on a small batch
    if device is not None:
        model = model.to(device)
    x = _example(model, size)
    dev = x.device
    was_training = model.training
    model.eval()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    times = []
    try:
        for _ in range(warmup):
            model(x)
        sync()
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            sync()
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        model.train(was_training)
    times.sort()
    median = statistics.median(times)
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return {"median": median, "p90": p90, "per_image": median / size[0],
            "batch_size": size[0], "repeats": repeats}


def profile_model(model: nn.Module, input_size=(1, 3, 224, 224), latency: bool = False,
                  **latency_kwargs) -> dict:
    """Parameters, MACs and FLOPs (and optionally latency) of ``model`` in one dict."""
    flops = count_flops(model, input_size)
    out = {"params": count_params(model), "flops": flops, "macs": flops // 2}
    if latency:
        out["latency_ms"] = latency_ms(model, input_size, **latency_kwargs)["median"]
    return out
