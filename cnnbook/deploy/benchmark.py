"""Inference benchmarks done properly: warm-up, repeats, median and spread, threads pinned.

A single ``time.time()`` around one forward pass measures the first call's one-off costs
(memory allocation, kernel selection, lazy initialisation), the noise of whatever else the
machine is doing, and a thread count nobody wrote down. The helpers here fix each of these:

* ``warmup`` untimed calls first;
* ``repeats`` timed blocks, each of ``number`` calls; the **median** block (robust to a
  stray slow one) and the spread (interquartile range, 10th and 90th percentile) are
  reported, not a mean;
* the thread count is **pinned** for the measurement with ``torch.utils.benchmark.Timer``
  (``num_threads``: it sets ``torch.set_num_threads`` around the timing and restores it)
  and written into every result, with the machine's load average at the time, because on
  a shared machine "slow" often means "busy".

``time_call`` times any callable (an eager model, an int8 ``GraphModule``, an ONNX Runtime
session's ``run``); ``benchmark`` sweeps batch sizes (and thread counts) for a model and
returns one row per setting with latency and throughput (images per second).
``cnnbook.profiling.latency_ms`` is the quick single-number version used in Parts I-III;
this module is its careful counterpart for the deployment chapters. ``size_mb`` and
``file_size_mb`` give a model's size in memory and on disk.
"""
from __future__ import annotations

import io
import math
import operator
import os
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import torch
from torch import nn
from torch.utils import benchmark as tbench

from cnnbook.config import capped

__all__ = ["Timing", "time_call", "benchmark", "example_input", "size_mb", "file_size_mb",
           "load_average"]


def load_average() -> float:
    """The 1-minute load average (NaN where the OS does not report one)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return float("nan")


@dataclass
class Timing:
    """One measured setting: per-call times in milliseconds and what they were measured under."""

    label: str
    batch_size: int
    threads: int
    repeats: int
    number: int
    median_ms: float
    iqr_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    load: float

    @property
    def throughput(self) -> float:
        """Images per second at the median time."""
        return self.batch_size / (self.median_ms / 1000)

    @property
    def per_image_ms(self) -> float:
        return self.median_ms / self.batch_size

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0.05 = the middle half within 5%)."""
        return self.iqr_ms / self.median_ms

    def as_dict(self) -> dict:
        return {**asdict(self), "throughput": self.throughput, "per_image_ms": self.per_image_ms,
                "spread": self.spread}


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _quantile(sorted_times: list[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted list (numpy's default method)."""
    pos = q * (len(sorted_times) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_times[lo] + (sorted_times[hi] - sorted_times[lo]) * (pos - lo)


def time_call(fn: Callable, *args, repeats: int = 20, warmup: int = 3, number: int = 1,
              threads: int | None = None, batch_size: int = 1, label: str = "") -> Timing:
    """Time ``fn(*args)``: ``warmup`` untimed calls, then ``repeats`` blocks of ``number`` calls.

    Each block is timed by ``torch.utils.benchmark.Timer`` with ``num_threads=threads``
    (default: the current ``torch.get_num_threads()``), which also synchronises CUDA. The
    result holds the median and spread of the per-call time in milliseconds; ``batch_size``
    only labels the result (throughput = batch_size / median).
    """
    _check_count("repeats", repeats, 1)
    _check_count("warmup", warmup, 0)
    _check_count("number", number, 1)
    _check_count("batch_size", batch_size, 1)
    threads = torch.get_num_threads() if threads is None else _check_count("threads", threads, 1)
    repeats, warmup = capped(repeats), capped(warmup)   # a rehearsal: a couple (0 stays 0)
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    timer = tbench.Timer(stmt="fn(*args)", globals={"fn": fn, "args": args},
                         num_threads=threads, label=label or getattr(fn, "__name__", "call"))
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with torch.no_grad():   # (inference_mode would make compiled models recompile)
            for _ in range(warmup):
                fn(*args)
            times = [timer.timeit(number).median * 1000 for _ in range(repeats)]
    finally:
        torch.set_num_threads(previous)
    times.sort()
    return Timing(label=label, batch_size=batch_size, threads=threads, repeats=repeats,
                  number=number, median_ms=statistics.median(times),
                  iqr_ms=_quantile(times, 0.75) - _quantile(times, 0.25),
                  p10_ms=_quantile(times, 0.1), p90_ms=_quantile(times, 0.9),
                  min_ms=times[0], load=load_average())


def example_input(batch_size: int, input_shape: Sequence[int] = (3, 32, 32), seed: int = 0,
                  channels_last: bool = False) -> torch.Tensor:
    """A seeded standard-normal batch of shape ``(batch_size, *input_shape)`` (like normalised images)."""
    _check_count("batch_size", batch_size, 1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *input_shape), generator=g)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def benchmark(model: Callable, batch_sizes: Iterable[int] = (1, 32),
              input_shape: Sequence[int] = (3, 32, 32), threads: Iterable[int] | int | None = None,
              repeats: int = 20, warmup: int = 3, number: int = 1, label: str = "",
              make_input: Callable[[int], Any] | None = None) -> pd.DataFrame:
    """Latency and throughput of ``model`` at each batch size (and thread count).

    ``model`` is any callable taking one batch (an ``nn.Module`` is put in eval mode for the
    measurement and restored after). ``make_input(batch_size)`` builds the batch (default:
    ``example_input``, seeded normal noise; pass one for ONNX Runtime's numpy inputs).
    Returns a DataFrame with one row per (threads, batch size): ``median_ms``, ``iqr_ms``,
    ``p10_ms``, ``p90_ms``, ``throughput`` (images/s), ``per_image_ms``, ``threads``,
    ``load``.
    """
    sizes = [_check_count("batch size", int(b) if not isinstance(b, bool) else b, 1)
             for b in batch_sizes]
    if not sizes:
        raise ValueError("batch_sizes is empty: give at least one batch size, e.g. (1, 32)")
    if threads is None:
        thread_list = [torch.get_num_threads()]
    elif isinstance(threads, int):
        thread_list = [threads]
    else:
        thread_list = list(threads)
    make_input = make_input or (lambda b: example_input(b, input_shape))
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    rows = []
    try:
        for t in thread_list:
            for b in sizes:
                timing = time_call(model, make_input(b), repeats=repeats, warmup=warmup,
                                   number=number, threads=t, batch_size=b, label=label)
                rows.append(timing.as_dict())
    finally:
        if was_training:
            model.train()
    return pd.DataFrame(rows)


def _tensors(module: nn.Module):
    """Every tensor a module holds, once: parameters, buffers, and plain tensor attributes
    (a PT2E-quantised ``GraphModule`` keeps its int8 weights as such attributes).

    For an ``fx.GraphModule`` (an exported or quantised graph), only the tensors its graph
    reads (``get_attr`` nodes): quantisation leaves the replaced fp32 weights registered
    but unused, and they are not part of what runs or what one would ship.
    """
    seen: dict[int, torch.Tensor] = {}
    if isinstance(module, torch.fx.GraphModule):
        for sub in module.modules():
            if not isinstance(sub, torch.fx.GraphModule):
                continue
            for node in sub.graph.nodes:
                if node.op == "get_attr":
                    value = operator.attrgetter(node.target)(sub)
                    if isinstance(value, torch.Tensor):
                        seen.setdefault(id(value), value)
        return seen.values()
    for t in list(module.parameters()) + list(module.buffers()):
        seen.setdefault(id(t), t)
    for sub in module.modules():
        for value in vars(sub).values():
            if isinstance(value, torch.Tensor):
                seen.setdefault(id(value), value)
    return seen.values()


def size_mb(model: nn.Module) -> float:
    """Bytes of the model's tensors (parameters + buffers + tensor attributes), in MB (10^6).

    Counts each storage by its element size, so an int8 weight is a quarter of its fp32
    self; a sparse-by-masking pruned weight (zeros stored densely) is not smaller.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"size_mb needs an nn.Module, got {type(model).__name__}")
    return sum(t.numel() * t.element_size() for t in _tensors(model)) / 1e6


def file_size_mb(model: nn.Module, state_dict_only: bool = True) -> float:
    """Size in MB of the model's weights saved with ``torch.save``: its state dict, or with
    ``state_dict_only=False`` every tensor it holds (parameters, buffers and tensor
    attributes, as ``size_mb`` counts them).

    Written to memory, not disk; the weight file a user would ship. A PT2E-quantised
    ``GraphModule`` keeps its int8 weights as attributes, outside its state dict, so it
    needs ``state_dict_only=False``. (The module itself is not pickled: an exported graph
    with train/eval switching allowed cannot be.)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"file_size_mb needs an nn.Module, got {type(model).__name__}")
    tensors = model.state_dict() if state_dict_only else \
        {f"t{i}": t.detach() for i, t in enumerate(_tensors(model))}
    buf = io.BytesIO()
    torch.save(tensors, buf)
    return buf.getbuffer().nbytes / 1e6
