# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 22 · Export and fast inference
#
# A trained network in a notebook is a Python object that needs the notebook's code, its
# PyTorch version and an interpreter to run. A phone app, a web service or a C++ program
# needs something else: a *file* that describes the computation by itself, a runtime that
# executes it fast, and an answer to "how long until the first prediction?". This chapter
# takes Part IV's reference ResNet (trained once for [chapter 21](21_compression.ipynb)) out
# of the notebook by every route PyTorch offers today, checks that each gives the same
# numbers, measures which is fastest on *this* machine, and ends with a one-file predictor
# and a command-line tool that classifies your photos.
#
# **A short history.** PyTorch (2016) was loved for running models as plain Python, and
# that was exactly what made them hard to ship. Two answers came in 2017-2018. **ONNX**
# (Open Neural Network Exchange), announced by Facebook and Microsoft in September 2017, is
# a file format for computation graphs that any framework can write and any runtime can
# execute; Microsoft open-sourced **ONNX Runtime** in December 2018. PyTorch 1.0 (December
# 2018) brought **TorchScript**: `torch.jit.trace` records the operations one example runs
# through, `torch.jit.script` compiles a subset of Python, and the result runs in C++
# (libtorch) without Python. TorchScript's subset of Python never covered real code well,
# and PyTorch 2.0 (March 2023) started again from a bytecode-level graph capture,
# **TorchDynamo**: `torch.compile` uses it to compile models just in time, and
# **`torch.export`** (from PyTorch 2.1, October 2023) uses it to capture a whole model ahead
# of time as a clean graph of ATen operators with symbolic shapes. The ONNX exporter was
# rebuilt on top of `torch.export` (the *dynamo* exporter, `torch.onnx.export(...,
# dynamo=True)`), and TorchScript is now deprecated: this notebook's PyTorch prints the
# warning in section 3.
#
# **What you will learn**
#
# - TorchScript, tracing vs scripting, and the control-flow trap that made it legacy;
# - `torch.export`: an `ExportedProgram` with a dynamic batch size, and `torch.cond` for
#   the branch TorchScript's tracer silently froze;
# - ONNX through the dynamo exporter, run by ONNX Runtime, equal to PyTorch within 1e-4;
# - `torch.compile`, its compile time and what it buys, and bf16 inference (and when a CPU
#   can do it);
# - a proper benchmark: latency and throughput over batch sizes and thread counts for
#   every path, with warm-up, repeats, medians and spreads, and an explorer to read it;
# - cold start: a fresh process from nothing to its first prediction, per format;
# - serving: a predictor that is *one file* (weights, preprocessing, class names), a
#   command-line tool on top of it, and clear errors for bad input.

# %%
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import onnx
import pandas as pd
import torch
from PIL import Image
from torch import nn

import cnnbook
from cnnbook.data.catalog import CIFAR10_CLASSES, info
from cnnbook.deploy import export
from cnnbook.deploy.benchmark import load_average, time_call
from cnnbook.deploy.coldstart import cold_start
from cnnbook.deploy.predictor import Predictor, load_image, save_predictor, top_k
from cnnbook.deploy.reference import reference_model
from cnnbook.deploy.sweep import plot_sweep, slowest_ratio, sweep
from cnnbook.profiling import count_macs
from cnnbook.widgets.inference import InferenceExplorer

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # check_images: test images for the exactness checks; batch_sizes x threads: the sweep;
    # repeats/warmup: per setting; compile_backend: "eager" captures the graph with
    # TorchDynamo and runs it as captured (seconds), "inductor" is the real compiler (a
    # minute or more on a CPU);
    # cold_kinds: the formats started in a fresh process; exercise_batch: exercise 5;
    # bf16_images: test images for bf16's accuracy check (None: all check_images; emulated
    # bf16 runs at a few dozen images/s); bf16_max_batch: without native bf16 it is timed on
    # batches up to this size only; sweep_compile: time the compiled path in the sweep
    # (in smoke it is checked in section 5 but not timed: "eager" runs eager's kernels,
    # and each new thread count and batch size 1 would make it compile again)
    "smoke": dict(check_images=256, batch_sizes=(1, 16), threads=(1,), repeats=3, warmup=1,
                  compile_backend="eager", cold_kinds=("onnxruntime",), exercise_batch=8,
                  bf16_images=64, bf16_max_batch=1, sweep_compile=False),
    "cpu":   dict(check_images=2_000, batch_sizes=(1, 4, 16, 64, 256), threads=(1, 2),
                  repeats=8, warmup=2, compile_backend="inductor", bf16_images=500, bf16_max_batch=16,
                  sweep_compile=True,
                  cold_kinds=("eager", "torchscript", "export", "onnxruntime", "predictor",
                              "compile"), exercise_batch=64),
    "full":  dict(check_images=10_000, batch_sizes=(1, 4, 16, 64, 256, 512), threads=(1, 2),
                  repeats=30, warmup=5, compile_backend="inductor", bf16_images=None,
                  bf16_max_batch=16,
                  sweep_compile=True,
                  cold_kinds=("eager", "torchscript", "export", "onnxruntime", "predictor",
                              "compile"), exercise_batch=64),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
WORK = Path(tempfile.mkdtemp(prefix="cnnbook-22-"))
print(f"profile {PROFILE}, {torch.get_num_threads()} CPU threads, files in {WORK}")
print(f"load average now {load_average():.1f} on {os.cpu_count()} cores "
      "(above the core count, other programs compete for the CPU and timings grow)")

# %% [markdown]
# Everything in this chapter runs on the CPU: export is about shipping a model to machines
# without a GPU, and a CPU is where the differences between runtimes show most. The `full`
# profile only measures more settings more often.
#
# ## 1. The model
#
# Part IV measures one network: the CIFAR-10 ResNet-20 that `cnnbook.deploy.reference`
# trains once (in [chapter 21](21_compression.ipynb), or here if this chapter runs first)
# and caches. It takes images normalised by CIFAR-10's channel means and standard deviations.

# %%
ref = reference_model(PROFILE, chapter="22")
model = ref.model.eval()
x_test, y_test = (torch.cat(t) for t in zip(*[(x, y) for x, y in ref.test_iter]))
x_test, y_test = x_test[:cfg.check_images].float().contiguous(), y_test[:cfg.check_images]
with torch.inference_mode():
    eager_logits = torch.cat([model(x) for x in x_test.split(256)])
eager_acc = float((eager_logits.argmax(1) == y_test).float().mean())
macs = count_macs(model, (1, 3, 32, 32))
print(f"ResNet-{ref.settings['depth']}, {sum(p.numel() for p in model.parameters()):,} "
      f"parameters, {macs / 1e6:.1f} M multiply-adds per image, "
      f"{'trained now' if ref.trained else 'loaded from the cache'}")
print(f"{len(x_test)} test images, eager accuracy {eager_acc:.4f}")
example = x_test[:2]

# %% [markdown]
# ## 2. TorchScript: the legacy path
#
# `torch.jit.trace` runs the model once on an example input and records every tensor
# operation it performs. The recording is a graph that no longer needs the Python class:
# `torch.jit.save` writes it (with the weights) into a `.pt` zip that `torch.jit.load`,
# or libtorch in C++, can run. The cell prints the warning this PyTorch gives and the
# start of the code TorchScript recorded.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    traced = export.to_torchscript(model, example, WORK / "model.pt")
for w in {str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))}:
    print("warning:", w)
print(traced.code[:700], "...")
print(f"model.pt: {export.file_mb(WORK / 'model.pt'):.2f} MB")

# %% [markdown]
# A trace records *what happened*, not *what the code says*. Python control flow that
# depends on the data (an `if` on a tensor's value, a loop over a tensor's length) is
# evaluated once, at tracing time, and the branch taken is frozen into the graph. PyTorch
# warns (a `TracerWarning`) but the traced model runs, and gives wrong answers for inputs
# that would take the other branch. `torch.jit.script` compiles the source instead and
# keeps the `if`, but only for the subset of Python it understands.

# %%
class Gate(nn.Module):
    """Doubles inputs with a positive sum, negates the others."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return -x


gate = Gate()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    traced_gate = torch.jit.trace(gate, torch.ones(3))   # traced on a positive input
    scripted_gate = torch.jit.script(gate)
negative = -torch.ones(3)
print("python  :", gate(negative).tolist())
print("traced  :", traced_gate(negative).tolist(), "<- the frozen 'positive' branch")
print("scripted:", scripted_gate(negative).tolist())
assert not torch.equal(traced_gate(negative), gate(negative))
assert torch.equal(scripted_gate(negative), gate(negative))

# %% [markdown]
# ## 3. `torch.export`: the PyTorch 2 graph
#
# `torch.export.export` captures the forward pass with TorchDynamo at the level of Python
# bytecode, then traces it down to ATen, PyTorch's library of tensor operators. The result
# is an `ExportedProgram`: a graph, its weights, and the shapes it is valid for. We declare
# the batch dimension *dynamic* (`torch.export.Dim`), so one program serves any batch size;
# the other dimensions are checked. Batch norm in eval mode becomes one ATen call per layer,
# the residual additions are plain `add` nodes; the cell counts them.

# %%
t0 = time.perf_counter()
program = export.to_exported(model, example, WORK / "model.pt2")
export_s = time.perf_counter() - t0
ops = collections.Counter(str(n.target) for n in program.graph.nodes if n.op == "call_function")
print(f"export took {export_s:.1f} s; input shape {program.graph_signature.user_inputs} ->",
      [tuple(str(d) for d in n.meta["val"].shape) for n in program.graph.nodes
       if n.op == "placeholder" and n.name in program.graph_signature.user_inputs])
print(pd.Series(ops).sort_values(ascending=False).to_string())
print(f"model.pt2: {export.file_mb(WORK / 'model.pt2'):.2f} MB")
x5 = x_test[:5]
with torch.inference_mode():
    assert torch.allclose(torch.export.load(str(WORK / "model.pt2")).module()(x5), model(x5), atol=1e-5)

# %% [markdown]
# Where TorchScript's tracer silently froze a branch, `torch.export` refuses: a branch on
# a tensor's *value* cannot be decided at export time, and it says so. The fix is to state
# the branch as data: `torch.cond(pred, true_fn, false_fn, operands)` puts both branches
# into the graph and picks one at run time.

# %%
try:
    torch.export.export(Gate(), (torch.ones(3),))
    print("exported (unexpected)")
except Exception as exc:   # the exception type differs between PyTorch versions
    print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}")


class CondGate(nn.Module):
    def forward(self, x):
        return torch.cond(x.sum() > 0, lambda x: x * 2, lambda x: -x, (x,))


gate_program = torch.export.export(CondGate(), (torch.ones(3),))
print("exported with torch.cond:", gate_program.module()(negative).tolist(),
      gate_program.module()(torch.ones(3)).tolist())
assert torch.equal(gate_program.module()(negative), gate(negative))

# %% [markdown]
# ## 4. ONNX and ONNX Runtime
#
# The dynamo ONNX exporter starts from such an `ExportedProgram` (we pass ours, so it is not
# captured twice), translates each ATen operator into ONNX operators (written in
# *onnxscript*), and optimises the graph (constant folding, removing no-ops). The `.onnx`
# file is a protobuf: the graph, the weights, the opset version and free-form metadata.
# ONNX Runtime loads it, fuses operators further (a convolution and the ReLU after it
# become one kernel) and runs it with its own CPU kernels; no PyTorch is needed at all.
#
# The requirement: ONNX Runtime's outputs equal eager PyTorch's within 1e-4, on
# every test image.

# %%
t0 = time.perf_counter()
onnx_file = export.to_onnx(program, example, WORK / "model.onnx")
onnx_s = time.perf_counter() - t0
proto = onnx.load(str(onnx_file))
opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
print(f"ONNX export took {onnx_s:.1f} s; opset {opset}, "
      f"{len(proto.graph.node)} nodes, {export.file_mb(onnx_file):.2f} MB")
print(dict(collections.Counter(n.op_type for n in proto.graph.node).most_common()))
session = export.onnx_session(onnx_file)
ort_logits = torch.cat([torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
                        for x in x_test.split(256)])
onnx_max_diff = float((ort_logits - eager_logits).abs().max())
onnx_agree = float((ort_logits.argmax(1) == eager_logits.argmax(1)).float().mean())
print(f"max |ONNX Runtime - eager| over {len(x_test)} images: {onnx_max_diff:.2e}; "
      f"same top-1 class for {100 * onnx_agree:.2f}% of them")
assert onnx_max_diff < 1e-4

# %% [markdown]
# The difference is not zero: ONNX Runtime adds up the products of a convolution in another
# order (and folds batch norm into the convolution's weights), and float32 addition is not
# associative. Differences of order 1e-6 on logits of order 1-10 are rounding, not error.
#
# ## 5. `torch.compile`
#
# `torch.compile` does not produce a file. On the first call TorchDynamo captures the graph
# (with *guards*: conditions on shapes, dtypes and Python values under which it stays
# valid), and a backend compiles it. The default backend, **Inductor**, fuses element-wise
# operations into generated C++/OpenMP loops (Triton kernels on a GPU) and calls oneDNN for
# the convolutions. The price is paid at the first call, and again whenever a guard fails:
# a new dtype; a new shape unless the shapes are dynamic (and even then batch size 1, which
# dynamic shapes treat as a special case); a switch between gradient modes; a new thread
# count. A server that compiles should therefore warm up with the thread count and the batch
# sizes it will serve. The `smoke` profile uses the `eager` backend, which captures the graph
# with TorchDynamo, guards and all, and runs it as captured without compiling it, so that
# the notebook finishes in a minute; `cpu` and `full` use Inductor.

# %%
compiled = export.compile_model(model, backend=cfg.compile_backend)
with torch.inference_mode():
    t0 = time.perf_counter()
    compiled(example)
    compile_first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled(example)
    compile_second_s = time.perf_counter() - t0
    compiled_logits = torch.cat([compiled(x) for x in x_test.split(256)])
compile_max_diff = float((compiled_logits - eager_logits).abs().max())
print(f"backend {cfg.compile_backend}: first call {compile_first_s:.1f} s (compilation), "
      f"second call {1000 * compile_second_s:.1f} ms")
print(f"max |compiled - eager| = {compile_max_diff:.2e}")
assert compile_max_diff < 1e-3

# %% [markdown]
# ## 6. bfloat16 inference, where the CPU can do it
#
# bfloat16 keeps float32's 8 exponent bits and only 7 of its 23 mantissa bits: the same
# range, about 3 significant digits. Half the bytes mean half the memory traffic, and CPUs
# with native bf16 instructions (Intel's AVX-512 BF16 since Cooper Lake, 2020, and the AMX
# tile units since Sapphire Rapids, 2023; AMD since Zen 4) multiply bf16 matrices several
# times faster than float32. A CPU without them must convert every value to float32 and
# back, and bf16 is then *slower*. `torch.autocast("cpu", dtype=torch.bfloat16)` runs
# convolutions and matrix products in bf16 and keeps the rest in float32. The cell asks
# this CPU what it has, and measures the accuracy cost; section 7 measures the speed.

# %%
bf16_info = export.bf16_support()
print("this CPU:", bf16_info)
bf16_model = export.Bf16Autocast(model)
n_bf16 = len(x_test) if cfg.bf16_images is None else min(cfg.bf16_images, len(x_test))
with torch.inference_mode():
    bf16_logits = torch.cat([bf16_model(x) for x in x_test[:n_bf16].split(256)])
fp32_logits, fp32_labels = eager_logits[:n_bf16], y_test[:n_bf16]
bf16_agree = float((bf16_logits.argmax(1) == fp32_logits.argmax(1)).float().mean())
bf16_acc = float((bf16_logits.argmax(1) == fp32_labels).float().mean())
fp32_acc = float((fp32_logits.argmax(1) == fp32_labels).float().mean())
print(f"on {n_bf16:,} test images: max |bf16 - fp32| = "
      f"{float((bf16_logits - fp32_logits).abs().max()):.3f}; same top-1 class for "
      f"{100 * bf16_agree:.2f}% of images; accuracy {bf16_acc:.4f} vs fp32 {fp32_acc:.4f}")

# %% [markdown]
# ## 7. Which path is fastest? Latency and throughput
#
# Two numbers describe inference speed. **Latency** is the time for one request (here: one
# batch); a user waiting for a photo's label feels it, and it is best at batch size 1.
# **Throughput** is images per second; a job classifying a million photos cares only about
# it, and it grows with the batch size until the cores are saturated. The sweep below
# measures every path at every batch size and thread count with
# `cnnbook.deploy.benchmark.time_call` (warm-up calls first, then repeated timed calls; the
# median and the 10th-90th percentile spread; the thread count pinned and written into
# every row, with the load average). The paths are measured interleaved, all paths at one
# setting before the next, so a burst of load from other programs hits them alike.

# %%
paths = {
    "eager": export.InferencePath("eager", model),
    "torchscript": export.InferencePath("torchscript", traced),
    "export": export.InferencePath("export", program.module()),
    "onnxruntime": export.onnx_path(onnx_file),
    "compile": export.InferencePath("compile", compiled),
    "bf16": export.InferencePath("bf16", bf16_model),
}
if not cfg.sweep_compile:
    del paths["compile"]
t0 = time.perf_counter()
sweep_paths = {k: v for k, v in paths.items() if k != "bf16" or bf16_info["native"]}
batch_sizes = sorted({cnnbook.config.capped_batch(b) for b in cfg.batch_sizes})  # (make rehearse: small)
table = sweep(sweep_paths, batch_sizes, cfg.threads, repeats=cfg.repeats, warmup=cfg.warmup)
if not bf16_info["native"]:
    # emulated bf16 is many times slower than fp32: measured apart, on small batches, one
    # thread count, against its own eager baseline, so the sweep stays within budget
    small = [b for b in batch_sizes if b <= cfg.bf16_max_batch] or [min(batch_sizes)]
    bf16_rows = sweep({"eager": paths["eager"], "bf16": paths["bf16"]}, small,
                      cfg.threads[:1], repeats=3, warmup=1)
    table = pd.concat([table, bf16_rows[bf16_rows["path"] == "bf16"]], ignore_index=True)
print(f"sweep: {len(table)} settings in {time.perf_counter() - t0:.0f} s, load average "
      f"{table['load'].min():.1f}-{table['load'].max():.1f} during it")
throughput = table.pivot_table(index=["threads", "batch_size"], columns="path",
                               values="throughput")[list(paths)]
print("images per second (median):")
print(throughput.round(0).to_string())

# %%
for t in cfg.threads:
    plot_sweep(table, threads=t, title=f"ResNet-20 on this CPU, {t} thread(s)")
    plt.show()

# %%
speedup = table.pivot_table(index=["threads", "batch_size"], columns="path",
                            values="speedup")[list(paths)]
print("speed-up over eager at the same setting (above 1 = faster):")
print(speedup.round(2).to_string())
ort_by_batch = speedup["onnxruntime"].groupby(level="batch_size").median()
print(f"\nONNX Runtime's speed-up over eager: {ort_by_batch.iloc[0]:.2f}x at batch "
      f"{ort_by_batch.index[0]}, {ort_by_batch.iloc[-1]:.2f}x at batch {ort_by_batch.index[-1]} "
      "(median over thread counts)")
ort_worst = slowest_ratio(table, "onnxruntime")
worst_row = table[table["path"] == "onnxruntime"].sort_values("speedup").iloc[0]
print(f"ONNX Runtime vs eager: {speedup['onnxruntime'].min():.2f}x to "
      f"{speedup['onnxruntime'].max():.2f}x; slowest at batch {int(worst_row['batch_size'])}, "
      f"{int(worst_row['threads'])} thread(s)")
print("the issue's target 'ONNX Runtime never slower than eager at any batch size': "
      + ("met on this run" if ort_worst >= 1 else
         f"MISSED on this run (ratio {ort_worst:.2f} at batch {int(worst_row['batch_size'])})"))
bf16_ratio = float(speedup["bf16"].median())
print(f"bf16 autocast runs at {bf16_ratio:.2f}x eager's speed (median over the settings) on "
      f"this CPU ({'native bf16' if bf16_info['native'] else 'no native bf16: emulated'}; "
      f"vector ISA {bf16_info['capability']})")

# %% [markdown]
# How to read the tables above. The numbers are this run's, and a busy machine (see the
# load average) makes them noisy, which is why the spread is drawn. What to look for:
#
# - **Small batches are dominated by overhead.** At batch 1 a ResNet-20 does the few tens
#   of millions of multiply-adds section 1 printed, a fraction of a millisecond of
#   arithmetic; Python dispatch, memory allocation and kernel launches are a large share of
#   the time. A runtime that removes the per-operator Python overhead (ONNX Runtime,
#   TorchScript, a compiled graph) can gain most there; the cell above prints ONNX
#   Runtime's speed-up at the smallest and the largest batch of this run.
# - **Large batches are dominated by the convolutions**, and paths that call similar
#   convolution kernels approach each other: export does not make arithmetic faster, only
#   the glue around it (ONNX Runtime also folds batch norm into the convolutions).
# - **bf16** is worth it only where the CPU has native bf16 units: the cell above prints
#   what this CPU has and what bf16 gave. The targets were written for a CPU with
#   AMX, where bf16 autocast gave about 2.3x on ResNet-18 at 224 px (the figure);
#   on a CPU without bf16 units the conversions cost time and nothing pays them back.
# - **Threads**: compare the two thread counts in the table (`cpu` profile); a second
#   thread has more to split in a large batch than in a batch of one.
#
# ## 8. The explorer
#
# Pick a metric, a thread count and a batch size; the left picture shows the metric of
# every path against batch size (the best path drawn thick), the right one the paths at that
# setting with their speed-up over eager. It shows only what the sweep measured.

# %%
explorer = InferenceExplorer(table)
explorer

# %% [markdown]
# ## 9. Cold start
#
# A benchmark after warm-up hides what a fresh process pays before its first answer:
# starting Python, importing the libraries, loading the model, and the first inference
# (memory allocation, kernel selection, and for `torch.compile` the compilation). A server
# that scales down to zero, a command-line tool or a serverless function pays it on every
# start. `cnnbook.deploy.coldstart.cold_start` runs each format in a new process and times
# the phases there; `wall_s` is the whole process as the notebook saw it. The `onnxruntime`
# kind does not import PyTorch at all; `predictor` is what the command-line tool of section
# 10 does, and it does not import PyTorch either: `cnnbook` imports its parts on first use,
# so the tool loads only ONNX Runtime, numpy and Pillow (the `torch_loaded` column checks
# it in each fresh process). In the `cpu` profile the `compile`
# kind profits from Inductor's on-disk cache, which section 5 filled: a truly first
# compilation takes longer.

# %%
torch.save(model, WORK / "model_eager.pth")  # a pickle of the whole module: needs cnnbook's code
mean, std = info("cifar10").mean, info("cifar10").std
predictor_file = save_predictor(model, WORK / "cifar10_resnet20.onnx", CIFAR10_CLASSES, mean,
                                std, description=f"CIFAR-10 ResNet-20, chapter 22, {PROFILE}")
artefacts = {"eager": "model_eager.pth", "torchscript": "model.pt", "export": "model.pt2",
             "onnxruntime": "model.onnx", "predictor": predictor_file.name,
             "compile": "model_eager.pth"}
cold = pd.DataFrame([cold_start(kind, WORK / artefacts[kind],
                                compile_backend=cfg.compile_backend)
                     for kind in cfg.cold_kinds]).set_index("kind")
print(cold[["import_s", "load_s", "first_s", "second_s", "total_s", "wall_s", "torch_loaded"]]
      .round(3).to_string())
assert not cold.loc[[k for k in ("onnxruntime", "predictor") if k in cold.index], "torch_loaded"].any()
ax = cold[["import_s", "load_s", "first_s"]].plot.barh(stacked=True, figsize=(8, 0.5 + 0.5 * len(cold)))
ax.set(xlabel="seconds in a fresh process", title="cold start: import + load + first inference")
plt.show()

# %% [markdown]
# The table prints this run's numbers, and the cell under it compares the phases. Look at
# how the import of a framework compares with loading a model of about 1 MB, at how much
# sooner a process that imports only ONNX Runtime and numpy is ready than one that imports
# PyTorch, and at `first_s` against `second_s`: for `compile` the first call *is* the
# compilation.

# %%
print(f"largest phase of each kind: {cold[['import_s', 'load_s', 'first_s']].idxmax(axis=1).to_dict()}")
print(f"first inference / second inference: {(cold['first_s'] / cold['second_s']).round(1).to_dict()}")
if {"onnxruntime", "torchscript"} <= set(cold.index):
    print(f"import: onnxruntime {cold.loc['onnxruntime', 'import_s']:.2f} s, "
          f"torch {cold.loc['torchscript', 'import_s']:.2f} s")

# %% [markdown]
# ## 10. Serving: a predictor in one file
#
# A model file alone does not make a classifier: the server must also know the input size,
# the normalisation the network was trained with, and what its ten outputs mean. Kept in a
# separate config, they drift away from the weights. `save_predictor` (section 9 called it)
# puts them all into the `.onnx` file: the normalisation and a softmax *into the graph*
# (its input is RGB pixels in [0, 1], its output probabilities), the class names, input
# size and resize rule into the model's `metadata_props`. `Predictor` loads it with ONNX
# Runtime, numpy and Pillow only.

# %%
predictor = Predictor(predictor_file)
print(predictor)
print({k: v[:70] for k, v in predictor.metadata.items()})
pixels = (x_test[:8] * torch.tensor(std).view(1, 3, 1, 1)
          + torch.tensor(mean).view(1, 3, 1, 1)).clamp(0, 1)   # undo the normalisation
probs = predictor.probabilities(pixels.numpy())
with torch.inference_mode():
    want = torch.softmax(model(x_test[:8]), 1).numpy()
print(f"max |predictor - softmax(eager)| = {np.abs(probs - want).max():.2e}")
assert np.abs(probs - want).max() < 1e-4
for i in range(8):   # as lossless PNG files, and one as JPEG (lossy: the pixels change a little)
    Image.fromarray((pixels[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(WORK / f"test{i}.png")
Image.open(WORK / "test0.png").save(WORK / "test0.jpg", quality=90)

# %% [markdown]
# The command-line tool runs in a fresh process, as a user would start it:
# `python -m cnnbook.deploy.predict MODEL IMAGE...`. We give it a test image as JPEG and a
# real photograph that is not 32x32 (Chelsea the cat, from scikit-image's samples): it is
# resized, and a note on stderr says so.

# %%
from skimage import data as skdata

Image.fromarray(skdata.chelsea()).save(WORK / "chelsea.jpg")


def predict_cli(*args):
    """Run the command-line predictor in a new process and show what a user would see."""
    proc = subprocess.run([sys.executable, "-m", "cnnbook.deploy.predict", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    print(proc.stdout + proc.stderr + f"[exit code {proc.returncode}]")
    return proc


ok = predict_cli(predictor_file, WORK / "test0.jpg", WORK / "chelsea.jpg")
assert ok.returncode == 0 and "resized to 32x32" in ok.stderr

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
cat_top5 = predictor.predict(WORK / "chelsea.jpg")
axes[0].imshow(skdata.chelsea())
axes[0].set_title("the photograph (451x300)")
axes[0].axis("off")
axes[1].barh([c for c, _ in cat_top5][::-1], [p for _, p in cat_top5][::-1])
axes[1].set(xlabel="probability", title="top 5 after resizing to 32x32")
fig.tight_layout()
plt.show()
print(f"true class: cat; the model's top-1: {cat_top5[0][0]} ({cat_top5[0][1]:.2f})")

# %% [markdown]
# Whether the cat is recognised depends on the model (the `smoke` profile's is barely
# trained) and on the resize: a 451x300 photo squeezed to 32x32 changes its aspect ratio.
# Bad input must give a clear message and exit code 2, not a traceback: a file that is not
# an image, an image of the wrong size with `--no-resize`, and a model file cut in half (an
# interrupted download).

# %%
(WORK / "notes.jpg").write_text("this is a text file with a .jpg name")
(WORK / "cut.onnx").write_bytes(predictor_file.read_bytes()[: predictor_file.stat().st_size // 2])
bad = [predict_cli(predictor_file, WORK / "notes.jpg", WORK / "chelsea.jpg", "--no-resize"),
       predict_cli(WORK / "cut.onnx", WORK / "test0.png")]
assert all(p.returncode == 2 and "Traceback" not in p.stderr for p in bad)

# %% [markdown]
# ## Summary
#
# - **TorchScript** (2018) traced or scripted models into a graph for C++; tracing freezes
#   data-dependent branches, scripting covers only a subset of Python. It is deprecated.
# - **`torch.export`** captures the whole model as an ATen graph with dynamic shapes, and
#   refuses what it cannot capture soundly (use `torch.cond`).
# - **ONNX** via the dynamo exporter, run by **ONNX Runtime**, equals eager PyTorch within
#   the float rounding printed in section 4, and needs no PyTorch to run.
# - **`torch.compile`** speeds up the same process after a compilation paid at the first
#   call; **bf16** pays only on CPUs with native bf16 units.
# - Measure **latency and throughput** over batch sizes and threads with warm-up, repeats
#   and medians, and state the load; measure **cold start** in a fresh process.
# - Ship **one file** that carries the preprocessing and the class names, and answer bad
#   input with a message and an exit code.
#
# ## Exercises

# %% [markdown]
# **Exercise 1 (top-k by hand).** Write `top5(probabilities, class_names)` that returns the
# five most probable classes of one probability vector as a list of `(name, probability)`
# pairs, most probable first, with each probability a Python `float`.

# %% nbgrader={"grade": false, "grade_id": "ex-22-top5", "locked": false, "schema_version": 3, "solution": true, "task": false}
def top5(probabilities, class_names):
    """The five most probable (class name, probability) pairs, most probable first."""
    ### BEGIN SOLUTION
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    order = np.argsort(-p, kind="stable")[:5]
    return [(class_names[i], float(p[i])) for i in order]
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-22-top5-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_got = top5(np.array([0.05, 0.4, 0.1, 0.2, 0.03, 0.02, 0.1, 0.06, 0.01, 0.03]), CIFAR10_CLASSES)
assert [c for c, _ in _got][:2] == ["automobile", "cat"] and len(_got) == 5
assert all(type(p) is float for _, p in _got)
### BEGIN HIDDEN TESTS
_rng = np.random.default_rng()
for _ in range(5):
    _p = _rng.dirichlet(np.ones(10))
    _want = top_k(_p, CIFAR10_CLASSES, 5)
    _g = top5(_p, CIFAR10_CLASSES)
    assert isinstance(_g, list) and len(_g) == 5
    assert [c for c, _ in _g] == [c for c, _ in _want]
    assert all(type(p) is float and abs(p - q) < 1e-9 for (_, p), (_, q) in zip(_g, _want))
### END HIDDEN TESTS
print("top5 agrees with cnnbook.deploy.predictor.top_k")

# %% [markdown]
# **Exercise 2 (the predictor's preprocessing).** Write `to_input(image, size)` that turns a
# PIL image of any mode and size into the predictor's input: a float32 numpy array of shape
# `(1, 3, size, size)` holding RGB values in [0, 1]. Convert the mode to RGB, resize to
# `size x size` with `Image.BILINEAR` when the size differs, divide by 255 and move the
# channels first.

# %% nbgrader={"grade": false, "grade_id": "ex-22-preprocess", "locked": false, "schema_version": 3, "solution": true, "task": false}
def to_input(image, size=32):
    """A PIL image -> float32 array (1, 3, size, size) in [0, 1]."""
    ### BEGIN SOLUTION
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return (np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-22-preprocess-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from cnnbook.deploy.predictor import preprocess as _preprocess

_x = to_input(Image.open(WORK / "test0.png"))
assert isinstance(_x, np.ndarray) and _x.shape == (1, 3, 32, 32) and _x.dtype == np.float32
assert np.allclose(_x[0], pixels[0].numpy(), atol=1 / 255)
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
_rng = np.random.default_rng()
for _mode in ("RGB", "L", "RGBA", "P"):
    _w, _h = int(_rng.integers(8, 90)), int(_rng.integers(8, 90))
    _img = Image.fromarray(_rng.integers(0, 256, (_h, _w, 3), dtype=np.uint8)).convert(_mode)
    _s = int(_rng.integers(16, 40))
    _got = to_input(_img, _s)
    assert _got.shape == (1, 3, _s, _s) and _got.dtype == np.float32
    assert np.allclose(_got[0], _preprocess(_img, _s), atol=1e-6), _mode
### END HIDDEN TESTS
print("to_input matches the predictor's preprocessing")

# %% [markdown]
# **Exercise 3 (a batch size the file did not see).** `torch.onnx.export` without
# `dynamic_shapes` writes a graph for exactly the example's shape. Write
# `export_any_batch(model, path)` that exports `model` with the dynamo exporter
# (`dynamo=True`) to `path` so that the ONNX input, named `"image"`, accepts **any** batch
# size of 3x32x32 images, and returns `path`. Do not use `cnnbook.deploy.export`: call
# `torch.onnx.export` yourself (hint: `torch.export.Dim`).

# %% nbgrader={"grade": false, "grade_id": "ex-22-dynamic", "locked": false, "schema_version": 3, "solution": true, "task": false}
def export_any_batch(model, path):
    """Export ``model`` to ONNX at ``path`` with a dynamic batch dimension; return ``path``."""
    ### BEGIN SOLUTION
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(model.eval(), (torch.randn(2, 3, 32, 32),), dynamo=True,
                                input_names=["image"], dynamic_shapes=({0: batch},),
                                verbose=False)
    program.save(str(path))
    return path
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-22-dynamic-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
import onnxruntime as _ort

from cnnbook.models.cifar_resnet import cifar_resnet as _cifar_resnet

torch.manual_seed(int(time.time()) % 1000)
_net = _cifar_resnet(8, width_mult=0.5).eval()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _path = export_any_batch(_net, WORK / "exercise3.onnx")
_sess = _ort.InferenceSession(str(_path), providers=["CPUExecutionProvider"])
assert _sess.get_inputs()[0].name == "image"
### BEGIN HIDDEN TESTS
from cnnbook.grading import forbidden
# the task forbids cnnbook.deploy.export (torch.onnx.export yourself), also under another name
_no_export = tuple(f"cnnbook.deploy.export.{f}" for f in ("to_onnx", "to_exported", "to_torchscript",
                                                          "_batch_dim", "build_paths", "onnx_path"))
_net = _cifar_resnet(8, width_mult=0.5).eval()   # other weights, another file
_hidden = WORK / "exercise3_hidden.onnx"
_hidden.unlink(missing_ok=True)
with warnings.catch_warnings(), forbidden(*_no_export, task="exercise 3 (export with a dynamic batch)"):
    warnings.simplefilter("ignore")
    _path = export_any_batch(_net, _hidden)
assert str(_path) == str(_hidden) and _hidden.exists()
_sess = _ort.InferenceSession(str(_hidden), providers=["CPUExecutionProvider"])
assert _sess.get_inputs()[0].name == "image"
for _b in (1, int(np.random.default_rng().integers(3, 40))):
    _x = torch.randn(_b, 3, 32, 32)
    with torch.no_grad():
        _want = _net(_x).numpy()
    _got = _sess.run(None, {"image": _x.numpy()})[0]
    assert _got.shape == _want.shape, (_b, _got.shape)
    assert np.abs(_got - _want).max() < 1e-4
assert isinstance(_sess.get_inputs()[0].shape[0], str)  # a symbolic batch dimension
### END HIDDEN TESTS
print("the exported file takes any batch size and equals eager within 1e-4")

# %% [markdown]
# **Exercise 4 (a benchmark summary by hand).** Write `summarize(times_ms, batch_size)`
# that returns a dict with the `median_ms` of the per-call times, the interquartile range
# `iqr_ms` (75th minus 25th percentile, numpy's default linear interpolation) and the
# `throughput` in images per second at the median, all Python floats. Why the median and
# not the mean? Think of one call that was slow because another program woke up.

# %% nbgrader={"grade": false, "grade_id": "ex-22-summary", "locked": false, "schema_version": 3, "solution": true, "task": false}
def summarize(times_ms, batch_size):
    """Median, interquartile range (ms) and throughput (images/s) of per-call times."""
    ### BEGIN SOLUTION
    t = np.asarray(times_ms, dtype=np.float64)
    median = float(np.median(t))
    q1, q3 = np.percentile(t, [25, 75])
    return {"median_ms": median, "iqr_ms": float(q3 - q1),
            "throughput": float(batch_size / (median / 1000))}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-22-summary-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_s = summarize([10.0, 11.0, 12.0, 13.0, 100.0], 32)
assert abs(_s["median_ms"] - 12.0) < 1e-9 and abs(_s["iqr_ms"] - 2.0) < 1e-9
assert abs(_s["throughput"] - 32 / 0.012) < 1e-6
### BEGIN HIDDEN TESTS
import statistics as _st

_rng = np.random.default_rng()
for _ in range(5):
    _t = list(_rng.gamma(2.0, 3.0, size=int(_rng.integers(3, 40))))
    _b = int(_rng.integers(1, 512))
    _g = summarize(_t, _b)
    assert all(type(_g[k]) is float for k in ("median_ms", "iqr_ms", "throughput"))
    _m = _st.median(_t)
    _q = _st.quantiles(_t, n=4, method="inclusive")
    assert abs(_g["median_ms"] - _m) < 1e-9 and abs(_g["iqr_ms"] - (_q[2] - _q[0])) < 1e-9
    assert abs(_g["throughput"] - _b * 1000 / _m) < 1e-6
### END HIDDEN TESTS
print("summary correct")

# %% [markdown]
# **Exercise 5 (experiment: do two threads make inference twice as fast?).** Time eager
# PyTorch and ONNX Runtime (the `paths` of section 7: call `paths[name].set_threads(n)`
# first, then `time_call(paths[name], x, threads=n, batch_size=b, repeats=..., warmup=...)`)
# at batch size `cfg.exercise_batch` with 1 and with 2 threads. Store the four `Timing`s in
# `timings[(name, n)]` for `name in ("eager", "onnxruntime")` and `n in (1, 2)`, set
# `scaling[name]` to the 1-thread median time divided by the 2-thread median, and
# `better = ` the name that scales better. Then, in a markdown cell, interpret: is the
# scaling close to 2? Why might it not be (a small network's layers are short work to split;
# both threads share the memory bandwidth; and what does the load average say about the
# second core on this machine)? Would it differ at batch 1?

# %% nbgrader={"grade": false, "grade_id": "ex-22-threads", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
x_ex = x_test[:cfg.exercise_batch].contiguous()
timings = {}
for name in ("eager", "onnxruntime"):
    for n in (1, 2):
        paths[name].set_threads(n)
        timings[(name, n)] = time_call(paths[name], x_ex, threads=n, batch_size=len(x_ex),
                                       repeats=max(3, cfg.repeats), warmup=cfg.warmup, label=name)
scaling = {name: timings[(name, 1)].median_ms / timings[(name, 2)].median_ms
           for name in ("eager", "onnxruntime")}
better = max(scaling, key=scaling.get)
### END SOLUTION
print({k: f"{v:.2f}x" for k, v in scaling.items()}, "-> scales better:", better)

# %% nbgrader={"grade": true, "grade_id": "ex-22-threads-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert set(timings) == {("eager", 1), ("eager", 2), ("onnxruntime", 1), ("onnxruntime", 2)}
assert better in ("eager", "onnxruntime")
### BEGIN HIDDEN TESTS
from cnnbook.deploy.benchmark import Timing as _Timing

for (_name, _n), _t in timings.items():
    assert isinstance(_t, _Timing) and _t.threads == _n and _t.batch_size == cfg.exercise_batch
for _name in ("eager", "onnxruntime"):
    assert type(scaling[_name]) is float
    assert abs(scaling[_name] - timings[(_name, 1)].median_ms / timings[(_name, 2)].median_ms) < 1e-9
assert better == max(scaling, key=scaling.get)
### END HIDDEN TESTS
print("consistent with your timings")
