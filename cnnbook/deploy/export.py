"""Ways to take a trained PyTorch model out of the notebook, each behind one calling convention.

Chapter 22 compares five ways of running the same network for inference on a CPU:

* ``eager``: the ``nn.Module`` itself, Python calling one operator at a time;
* ``torchscript``: the legacy graph format (2018-2023): ``torch.jit.trace`` records the
  operators one example input runs through, the result is saved as a ``.pt`` zip that C++
  can load without Python. Deprecated since torch.export and ``torch.compile`` took over;
* ``export``: ``torch.export.export`` (PyTorch 2) captures the whole forward as a graph of
  ATen operators with symbolic shapes (here: a dynamic batch dimension), saved as ``.pt2``;
* ``onnxruntime``: the exported graph translated to ONNX by the dynamo exporter
  (``torch.onnx.export(..., dynamo=True)``) and run by ONNX Runtime, no PyTorch needed;
* ``compile``: ``torch.compile`` (TorchDynamo + Inductor) turns the forward into fused
  kernels just in time, in the same process, with no file to ship;
* ``bf16``: the eager model under ``torch.autocast`` in bfloat16, which pays off only on
  CPUs with native bf16 arithmetic (AVX-512 BF16 or AMX); ``bf16_support`` says which.

Every path is wrapped in an :class:`InferencePath`: a float32 NCHW tensor in, float32
logits out, plus how long it took to build, the file it wrote and a ``set_threads`` that
pins the number of CPU threads the way that runtime needs (``torch.set_num_threads`` for
the PyTorch paths, a session per thread count for ONNX Runtime).
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from cnnbook.files import atomic_write

__all__ = ["PATHS", "InferencePath", "to_torchscript", "to_exported", "to_onnx",
           "onnx_session", "onnx_path", "compile_model", "bf16_support", "Bf16Autocast", "build_paths",
           "max_abs_difference", "file_mb"]

PATHS = ("eager", "torchscript", "export", "onnxruntime", "compile", "bf16")
INPUT_NAME, OUTPUT_NAME = "image", "logits"


def _batch_dim(max_batch: int = 4096):
    return {0: torch.export.Dim("batch", min=1, max=max_batch)}


def file_mb(path) -> float:
    """Size of a file in megabytes (10^6 bytes)."""
    return os.path.getsize(path) / 1e6


def to_torchscript(model: nn.Module, example: torch.Tensor, path=None,
                   method: str = "trace") -> torch.jit.ScriptModule:
    """TorchScript by tracing (records the ops ``example`` runs through; Python control flow
    is frozen at the branch it took) or scripting (compiles the Python source of a subset
    of the language). Saved with ``torch.jit.save`` to ``path`` (atomically) if given."""
    if method not in ("trace", "script"):
        raise ValueError(f"method must be 'trace' or 'script', got {method!r}")
    model = model.eval()
    with torch.no_grad():
        scripted = torch.jit.trace(model, example) if method == "trace" else torch.jit.script(model)
    if path is not None:
        atomic_write(Path(path), lambda tmp: torch.jit.save(scripted, str(tmp)))
    return scripted


def to_exported(model: nn.Module, example: torch.Tensor, path=None,
                dynamic_batch: bool = True) -> torch.export.ExportedProgram:
    """``torch.export.export`` of ``model`` in eval mode, with the batch dimension symbolic
    (any batch size from 1 to 4096) unless ``dynamic_batch=False``; saved as ``.pt2`` with
    ``torch.export.save`` if ``path`` is given."""
    model = model.eval()
    shapes = (_batch_dim(),) if dynamic_batch else None
    # the program keeps its example as sample input, and saving a view saves the whole
    # tensor it views (two test images sliced from 2,000 made a 26 MB file): a copy
    example = example.detach().clone()
    program = torch.export.export(model, (example,), dynamic_shapes=shapes)
    if path is not None:
        atomic_write(Path(path), lambda tmp: torch.export.save(program, str(tmp)))
    return program


def to_onnx(model, example: torch.Tensor, path, dynamic_batch: bool = True,
            metadata: dict | None = None, opset_version: int | None = None) -> Path:
    """Export ``model`` (an ``nn.Module`` or an ``ExportedProgram``) with the dynamo ONNX
    exporter to one self-contained ``.onnx`` file, written atomically.

    The graph's input is named ``image`` and its output ``logits``; the batch dimension is
    dynamic unless ``dynamic_batch=False``. ``metadata`` (str -> str) goes into the model's
    ``metadata_props``, where a predictor keeps its class names and preprocessing.
    """
    import onnx  # an optional dependency of the course: imported where it is needed

    if isinstance(model, nn.Module):
        model = model.eval()
    shapes = (_batch_dim(),) if dynamic_batch else None
    if isinstance(model, torch.export.ExportedProgram):
        shapes = None  # the program already carries its shapes
    program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=shapes,
                                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                opset_version=opset_version, verbose=False)
    proto = program.model_proto
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"ONNX metadata must map str to str, got {key!r}: {type(value).__name__}")
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return atomic_write(Path(path), lambda tmp: onnx.save_model(proto, str(tmp)))


def onnx_session(path, threads: int | None = None):
    """An ONNX Runtime CPU session for ``path`` with ``threads`` intra-op threads (None: ORT's
    default, one per core) and full graph optimisation."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), sess_options=options,
                                providers=["CPUExecutionProvider"])


def compile_model(model: nn.Module, backend: str = "inductor", dynamic: bool = True):
    """``torch.compile`` of a copy of ``model`` in eval mode. The first call compiles (slow,
    seconds to minutes on a CPU); later calls with the same shapes run the compiled code.
    ``dynamic=True`` compiles one kernel set for every batch size instead of one per size;
    ``backend="eager"`` only captures the graph with TorchDynamo and runs it as captured
    (seconds, for smoke runs), ``"aot_eager"`` also traces it with AOTAutograd (no code
    generated), ``"inductor"`` is the real compiler."""
    return torch.compile(copy.deepcopy(model).eval(), backend=backend, dynamic=dynamic)


def _cpu_flags() -> set:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_support() -> dict:
    """What this CPU offers for bfloat16: the vector ISA PyTorch dispatches to, the CPU flags
    for native bf16 (``avx512_bf16``, ``amx_bf16``), and oneDNN's own verdict. Without native
    support bf16 is emulated by conversions and is usually *slower* than float32."""
    flags = _cpu_flags()
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn = False
    native = sorted(f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f in flags)
    return {"capability": torch.backends.cpu.get_cpu_capability(), "native_flags": native,
            "onednn_bf16": onednn, "native": onednn or bool(native)}


class Bf16Autocast(nn.Module):
    """Runs ``model`` under ``torch.autocast`` in bfloat16 on the CPU and returns float32:
    convolutions and matrix products in bf16 (8 bits of mantissa), the rest in float32."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(x).float()


@dataclass
class InferencePath:
    """One way of running the model: ``path(x)`` maps a float32 NCHW tensor to float32 logits.

    ``build_seconds`` is the time export (or compilation, for ``compile``: the first call)
    took, ``artefact`` the file it wrote (None for in-process paths), ``note`` a line of
    explanation. ``set_threads(n)`` pins the CPU threads the runtime uses.
    """
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    build_seconds: float = 0.0
    artefact: Path | None = None
    note: str = ""
    _session_factory: Callable | None = field(default=None, repr=False)
    _sessions: dict = field(default_factory=dict, repr=False)
    threads: int | None = None

    def set_threads(self, n: int) -> None:
        """Use ``n`` CPU threads from now on (ONNX Runtime: a session made for ``n``)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"threads must be a whole number >= 1, got {n!r}")
        self.threads = n
        if self._session_factory is None:
            torch.set_num_threads(n)
        elif n not in self._sessions:
            self._sessions[n] = self._session_factory(n)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._session_factory is not None:
            n = self.threads
            if n not in self._sessions:
                self._sessions[n] = self._session_factory(n)
            session = self._sessions[n]
            out = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x.numpy())})[0]
            return torch.from_numpy(out)
        with torch.inference_mode():
            return self.fn(x)


def onnx_path(path, threads: int | None = None) -> InferencePath:
    """An :class:`InferencePath` that runs the ``.onnx`` file at ``path`` with ONNX Runtime
    (``threads`` intra-op threads, default ``torch.get_num_threads()``; ``set_threads``
    makes a session per thread count)."""
    path = Path(path)
    runner = InferencePath("onnxruntime", None, artefact=path,
                           note="dynamo ONNX exporter + ONNX Runtime CPU session",
                           _session_factory=lambda n: onnx_session(path, n))
    runner.set_threads(threads or torch.get_num_threads())
    return runner


def build_paths(model: nn.Module, example: torch.Tensor, folder, paths=PATHS,
                compile_backend: str = "inductor") -> dict:
    """Every requested path of ``PATHS`` for ``model`` (CPU, eval mode), name -> InferencePath.

    Files go to ``folder`` (``model.pt``, ``model.pt2``, ``model.onnx``). ``compile`` is
    compiled by running ``example`` through it once, so its ``build_seconds`` includes the
    first call. ``example`` sets the shape traced; the batch dimension stays dynamic.
    """
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise ValueError(f"unknown path(s) {unknown}: choose from {', '.join(PATHS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()
    example = example.cpu().float()
    out = {}
    for name in paths:
        t0 = time.perf_counter()
        if name == "eager":
            out[name] = InferencePath(name, model, note="the nn.Module, one operator at a time")
            continue
        if name == "torchscript":
            fn = to_torchscript(model, example, folder / "model.pt")
            out[name] = InferencePath(name, fn, time.perf_counter() - t0, folder / "model.pt",
                                      "torch.jit.trace, saved with torch.jit.save (legacy)")
        elif name == "export":
            program = to_exported(model, example, folder / "model.pt2")
            out[name] = InferencePath(name, program.module(), time.perf_counter() - t0,
                                      folder / "model.pt2",
                                      "torch.export.export, run as its .module()")
        elif name == "onnxruntime":
            out[name] = onnx_path(to_onnx(model, example, folder / "model.onnx"))
            out[name].build_seconds = time.perf_counter() - t0
        elif name == "compile":
            fn = compile_model(model, backend=compile_backend)
            with torch.inference_mode():
                fn(example)
            out[name] = InferencePath(name, fn, time.perf_counter() - t0,
                                      note=f"torch.compile(backend={compile_backend!r}, dynamic=True)")
        elif name == "bf16":
            out[name] = InferencePath(name, Bf16Autocast(model), note="torch.autocast bfloat16")
    for p in out.values():
        p.threads = p.threads or torch.get_num_threads()
    return out


def max_abs_difference(path: Callable, model: nn.Module, inputs) -> float:
    """The largest absolute difference between ``path(x)`` and eager ``model(x)`` over the
    tensors in ``inputs`` (the exactness check of every export)."""
    model = model.eval()
    worst = 0.0
    with torch.inference_mode():
        for x in inputs:
            want = model(x)
            got = path(x)
            if tuple(got.shape) != tuple(want.shape):
                raise ValueError(f"shape {tuple(got.shape)} differs from eager {tuple(want.shape)}")
            worst = max(worst, float((got.float() - want.float()).abs().max()))
    return worst
