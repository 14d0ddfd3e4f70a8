"""The compression table: one row per technique, every number measured the same way.

``measure_row`` takes a compressed model (or any callable with a separate module for its
size) and returns size in MB (tensors in memory, and the saved file), CPU latency at batch
1 and throughput at batch 32 (``cnnbook.deploy.benchmark``: median of repeated runs after
warm-up, threads stated), and test accuracy on the loader every row shares.
``compression_table`` adds the ratios to the fp32 reference and the sources' typical
figures (``SOURCE_FIGURES``, from the compression table of the course's sources), and
``table_record`` turns it into the JSON record ``results/<profile>/21-compression.json``.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable

import pandas as pd
import torch
from torch import nn

from cnnbook.config import rehearsal_batches
from cnnbook.deploy.benchmark import benchmark, file_size_mb, load_average, size_mb

__all__ = ["SOURCE_FIGURES", "accuracy", "measure_row", "compression_table", "table_record"]

# The sources' typical figures: (size reduction, accuracy loss in points, speed-up).
SOURCE_FIGURES = {
    "quantization": ("2-4x", "1-3", "2-3x"),
    "pruning": ("2-10x", "2-5", "1.5-3x"),
    "distillation": ("3-5x", "1-2", "3-5x"),
    "low-rank": ("1.5-3x", "0.5-2", "1.2-2x"),
    "fusion": ("-", "0", "-"),   # not in the sources' table: exact by construction
}


@torch.no_grad()
def accuracy(model: Callable, loader: Iterable) -> float:
    """Top-1 accuracy of ``model`` (any callable; an ``nn.Module`` is put in eval mode) on
    every batch of ``loader``, on the CPU (a rehearsal's capped batches, as ``evaluate``)."""
    if isinstance(model, nn.Module):
        model.eval()
    correct = total = 0
    for x, y in rehearsal_batches(loader):
        correct += int((model(x.cpu()).argmax(1) == y.cpu()).sum())
        total += len(y)
    if total == 0:
        raise ValueError("the loader gave no examples")
    return correct / total


def measure_row(method: str, family: str, model: Callable, loader: Iterable, *,
                module: nn.Module | None = None, input_shape=(3, 32, 32), threads: int | None = None,
                repeats: int = 20, warmup: int = 3, acc: float | None = None,
                state_dict_only: bool = True, note: str = "") -> dict:
    """Size, speed and accuracy of one technique.

    ``model`` is what runs (an eager module or a compiled callable); ``module`` is what is
    stored (default: ``model``). ``acc`` skips the evaluation when already known (e.g.
    measured on the same loader by a slower, numerically identical form of the model).
    """
    module = module if module is not None else model
    if not isinstance(module, nn.Module):
        raise TypeError("give the nn.Module that holds the weights as module=")
    speed = benchmark(model, batch_sizes=(1, 32), input_shape=input_shape, threads=threads,
                      repeats=repeats, warmup=warmup, label=method)
    b1, b32 = speed.iloc[0], speed.iloc[1]
    return {"method": method, "family": family,
            "size_mb": size_mb(module), "file_mb": file_size_mb(module, state_dict_only),
            "latency_b1_ms": float(b1["median_ms"]), "latency_b1_iqr_ms": float(b1["iqr_ms"]),
            "throughput_b32": float(b32["throughput"]),
            "spread_b32": float(b32["spread"]),   # interquartile range / median
            "threads": int(b32["threads"]), "load": float(b32["load"]),
            "accuracy": float(acc if acc is not None else accuracy(model, loader)),
            "note": note}


def compression_table(rows: list[dict], baseline: str = "fp32") -> pd.DataFrame:
    """The rows with the compression ratio, speed-up and accuracy change relative to the
    ``baseline`` row, and the sources' typical figures for each row's family."""
    df = pd.DataFrame(rows)
    if df.empty or baseline not in set(df["method"]):
        raise ValueError(f"the table needs a row named {baseline!r} to compare with")
    base = df[df["method"] == baseline].iloc[0]
    df["compression"] = base["size_mb"] / df["size_mb"]
    df["file_compression"] = base["file_mb"] / df["file_mb"]
    df["speedup_b32"] = df["throughput_b32"] / base["throughput_b32"]
    df["speedup_b1"] = base["latency_b1_ms"] / df["latency_b1_ms"]
    df["acc_change_points"] = 100 * (df["accuracy"] - base["accuracy"])
    typical = df["family"].map(lambda f: SOURCE_FIGURES.get(f, ("", "", "")))
    df["typical_size"] = typical.map(lambda t: t[0])
    df["typical_loss_points"] = typical.map(lambda t: t[1])
    df["typical_speedup"] = typical.map(lambda t: t[2])
    return df


def table_record(table: pd.DataFrame, profile: str, test_examples: int, **extra) -> dict:
    """The JSON record of the table: one dict per row, plus the conditions of the run.

    No ``chapter`` field, so the README's training-run table (``make book``) leaves it alone.
    """
    from cnnbook.config import describe_device

    rows = json.loads(table.to_json(orient="records"))
    return {"kind": "compression-table", "profile": profile, "name": "21-compression",
            "device": describe_device(torch.device("cpu")), "test_examples": int(test_examples),
            "load_average": load_average(), "torch": torch.__version__, "rows": rows, **extra}

