"""Int8 quantisation: the arithmetic by hand, then PyTorch's current path (PT2E + torchao).

**The arithmetic.** A real number ``x`` is stored as an integer ``q`` in ``[qmin, qmax]``
with a *scale* (the step between neighbouring integers, in real units) and a *zero point*
(the integer that stands for 0.0, so zero padding and ReLU's zeros are exact):

    q = clamp(round(x / scale) + zero_point, qmin, qmax)      x_hat = (q - zero_point) * scale

*Affine* (asymmetric) parameters map the observed ``[min, max]`` (stretched to include 0)
onto all ``2^bits`` levels: ``scale = (max - min) / (qmax - qmin)``,
``zero_point = qmin - round(min / scale)``; the x86 recipe uses it for activations (uint8,
0..255). *Symmetric* parameters fix ``zero_point = 0`` and ``scale = max|x| / ((qmax -
qmin) / 2)``: the recipe for weights (int8, -128..127), because the product of two
integers then needs no zero-point correction terms. *Per-channel* quantisation gives every
output channel of a weight its own scale, so one channel with large weights does not
coarsen the grid of all the others. ``qparams``, ``quantize``, ``dequantize`` and
``fake_quantize`` are these formulas; the tests check them against PyTorch's observers and
``torch.quantize_per_channel``.

**The library path.** ``torch.ao.quantization``'s eager API (``QuantStub``, ``prepare``,
``convert``) is deprecated. The maintained path is PT2E: capture the model as a graph with
``torch.export``; a *quantizer* (torchao's ``X86InductorQuantizer`` for x86 CPUs) annotates
which tensors to quantise and how; ``prepare_pt2e`` inserts observers; calibration batches
run through; ``convert_pt2e`` replaces observers by quantise/dequantise pairs with the
measured parameters. The converted graph still computes in fp32 ("reference" int8: it gives
int8 *accuracy*); ``torch.compile`` with Inductor's freezing pass then lowers each
dequantise-conv-quantise pattern to one oneDNN int8 kernel, which is where any speed-up
comes from. ``prepare_qat_pt2e`` does the same for quantisation-aware training: fake
quantisation in the forward pass, straight-through gradients in the backward pass.
"""
from __future__ import annotations

import copy
import functools
import math
from typing import Iterable

import torch
from torch import nn

__all__ = ["qrange", "qparams", "quantize", "dequantize", "fake_quantize", "quant_error",
           "has_vnni", "export_model", "x86_quantizer", "quantize_pt2e", "prepare_qat",
           "convert_qat", "compile_int8", "count_quantized_ops"]


# --- the arithmetic ---------------------------------------------------------------------

def qrange(bits: int = 8, signed: bool = True) -> tuple[int, int]:
    """``(qmin, qmax)`` of a ``bits``-bit integer: -128..127 signed, 0..255 unsigned at 8 bits."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be a whole number from 2 to 16, got {bits!r}")
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def _reduce(x: torch.Tensor, fn, axis: int | None) -> torch.Tensor:
    if axis is None:
        return fn(x)
    return fn(x.transpose(0, axis).reshape(x.shape[axis], -1), dim=1)


def _amin(x, dim=None):
    return x.amin() if dim is None else x.amin(dim=dim)


def _amax(x, dim=None):
    return x.amax() if dim is None else x.amax(dim=dim)


def qparams(x: torch.Tensor, bits: int = 8, symmetric: bool = True, axis: int | None = None,
            eps: float = torch.finfo(torch.float32).eps) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point for ``x`` (per tensor, or per slice along ``axis``), min-max rule.

    Symmetric: signed range, zero point 0, ``scale = max|x| / ((qmax - qmin) / 2)``.
    Affine: unsigned range, ``scale = (max - min) / (qmax - qmin)`` over ``[min(x, 0),
    max(x, 0)]``, ``zero_point = qmin - round(min / scale)``. ``scale`` is at least ``eps``
    (an all-zero tensor still gets a usable grid). PyTorch's ``MinMaxObserver`` and
    ``PerChannelMinMaxObserver`` use the same rule.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor")
    if not torch.isfinite(x).all():
        raise ValueError("x holds NaN or infinite values: they have no place on an integer grid")
    if axis is not None and not -x.dim() <= axis < x.dim():
        raise ValueError(f"axis {axis} is out of range for a tensor of {x.dim()} dimensions")
    lo = torch.clamp(_reduce(x.detach().float(), _amin, axis), max=0)
    hi = torch.clamp(_reduce(x.detach().float(), _amax, axis), min=0)
    qmin, qmax = qrange(bits, signed=symmetric)
    if symmetric:
        scale = torch.maximum(-lo, hi) / ((qmax - qmin) / 2)
        scale = torch.clamp(scale, min=eps)
        zero = torch.zeros_like(scale, dtype=torch.int64)
    else:
        scale = torch.clamp((hi - lo) / (qmax - qmin), min=eps)
        zero = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax).to(torch.int64)
    return scale, zero


def _shape(t: torch.Tensor, x: torch.Tensor, axis: int | None) -> torch.Tensor:
    if axis is None or t.dim() == 0:
        return t
    shape = [1] * x.dim()
    shape[axis] = -1
    return t.reshape(shape)


def quantize(x: torch.Tensor, scale, zero_point, bits: int = 8, signed: bool = True,
             axis: int | None = None) -> torch.Tensor:
    """``clamp(round(x / scale) + zero_point, qmin, qmax)`` as an int64 tensor (round half to even).

    Computed as PyTorch's kernels do, in float32 as ``x * (1 / scale)``, so the integers are
    the library's to the last tie.
    """
    qmin, qmax = qrange(bits, signed)
    scale, zero_point = torch.as_tensor(scale), torch.as_tensor(zero_point)
    inv = 1.0 / _shape(scale, x, axis).float()
    q = torch.round(x.float() * inv) + _shape(zero_point, x, axis)
    return torch.clamp(q, qmin, qmax).to(torch.int64)


def dequantize(q: torch.Tensor, scale, zero_point, axis: int | None = None) -> torch.Tensor:
    """``(q - zero_point) * scale``: the real number each integer stands for."""
    scale, zero_point = torch.as_tensor(scale), torch.as_tensor(zero_point)
    return (q - _shape(zero_point, q, axis)).float() * _shape(scale, q, axis)


def fake_quantize(x: torch.Tensor, bits: int = 8, symmetric: bool = True,
                  axis: int | None = None) -> torch.Tensor:
    """``x`` rounded to its ``bits``-bit grid and back: what the network sees after quantisation."""
    scale, zero = qparams(x, bits, symmetric, axis)
    return dequantize(quantize(x, scale, zero, bits, symmetric, axis), scale, zero, axis)


def quant_error(x: torch.Tensor, bits: int = 8, symmetric: bool = True,
                axis: int | None = None) -> dict:
    """How much quantising ``x`` costs: relative RMS error, SQNR in dB, worst absolute error,
    the scale(s) and the number of distinct levels used."""
    x = x.detach().float()
    xq = fake_quantize(x, bits, symmetric, axis)
    noise = ((x - xq) ** 2).mean().item()
    signal = (x ** 2).mean().item()
    scale, _ = qparams(x, bits, symmetric, axis)
    return {"bits": bits, "rel_rms": math.sqrt(noise / signal) if signal > 0 else 0.0,
            "sqnr_db": 10 * math.log10(signal / noise) if noise > 0 else math.inf,
            "max_abs": (x - xq).abs().max().item(), "scale_min": scale.min().item(),
            "scale_max": scale.max().item(), "levels_used": int(torch.unique(xq).numel())}


# --- PT2E with torchao's x86 quantizer -----------------------------------------------------

def has_vnni() -> bool:
    """Whether this x86 CPU has VNNI int8 dot-product instructions (AVX-512 VNNI or AVX-VNNI).

    Without them, oneDNN's uint8 x int8 products go through 16-bit intermediates that can
    saturate, which is why torchao recommends ``reduce_range`` (7-bit activations) there.
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags


def export_model(model: nn.Module, example: torch.Tensor, train: bool = False):
    """``torch.export`` a copy of the model (eval mode, or train mode for QAT) and return the
    graph as an ``nn.Module``. One example batch fixes the graph; the batch size stays
    dynamic (from 2 in train mode, where batch norm needs two samples).

    Strict export (TorchDynamo tracing) records, for every node, which call of which module
    made it. The non-strict default of torch 2.14 records only the module's name, so a
    module called twice (a ResNet block's one ``ReLU``, torchvision's too) becomes one
    partition with two outputs, which the x86 quantizer refuses ("Input partition has more
    than one output node").
    """
    from torch.export import Dim, export

    model = copy.deepcopy(model).train(train)   # export shares tensors; quantising folds BN into them
    batch = Dim("batch", min=2 if train else 1, max=1024)
    return export(model, (example,), dynamic_shapes=({0: batch},), strict=True).module()


def x86_quantizer(dynamic: bool = False, qat: bool = False, reduce_range: bool | None = None):
    """torchao's ``X86InductorQuantizer`` with its default int8 recipe: per-tensor affine
    uint8 activations (histogram observer), per-channel symmetric int8 weights.
    ``reduce_range=None`` picks 7-bit activations on CPUs without VNNI, as torchao advises."""
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config)

    if reduce_range is None:
        reduce_range = not has_vnni()
    config = get_default_x86_inductor_quantization_config(is_qat=qat, is_dynamic=dynamic,
                                                          reduce_range=reduce_range)
    return X86InductorQuantizer().set_global(config)


def quantize_pt2e(model: nn.Module, calibration: Iterable, example: torch.Tensor, *,
                  dynamic: bool = False, reduce_range: bool | None = None):
    """Post-training int8: export, insert observers, calibrate, convert.

    ``model`` is an ``nn.Module``, or the graph ``export_model`` returned for it: export is
    the slow step (TorchDynamo traces the model), so one export can serve several recipes;
    the graph is copied, never changed. ``calibration`` yields input batches (or ``(X, y)``
    pairs; ``y`` is ignored), run in
    eval mode with no gradients. ``dynamic=True`` measures each activation's range at run
    time instead (a ``choose_qparams`` node per quantised input, every batch); the example
    batch then calibrates only the weights, if no calibration batches are given. Returns
    the converted ``GraphModule`` (reference int8: quantise/dequantise nodes around fp32
    ops; ``compile_int8`` makes it run int8 kernels).
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if isinstance(model, torch.fx.GraphModule):
        graph = copy.deepcopy(model)      # prepare_pt2e rewrites the graph in place
    else:
        graph = export_model(model, example)
    prepared = prepare_pt2e(graph, x86_quantizer(dynamic=dynamic, reduce_range=reduce_range))
    n = 0
    with torch.no_grad():
        for batch in calibration:
            prepared(batch[0] if isinstance(batch, (tuple, list)) else batch)
            n += 1
    if n == 0 and not dynamic:
        raise ValueError("static quantisation needs calibration batches; the iterable was empty")
    if n == 0:   # the weights' observers still need one pass, or convert uses scale 1, zero 0
        with torch.no_grad():
            prepared(example)
    return _with_train_eval(convert_pt2e(prepared))


def _with_train_eval(graph_module):
    """Exported graphs refuse ``.eval()``/``.train()``; allow them (torchao's switch), so a
    quantised model goes wherever an ``nn.Module`` does (``accuracy``, ``fit``, benchmarks)."""
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    return allow_exported_model_train_eval(graph_module)


def prepare_qat(model: nn.Module, example: torch.Tensor, reduce_range: bool | None = None):
    """Quantisation-aware training: the exported model with fake quantisation inserted,
    ready to train (``train()``/``eval()`` work on it, so ``cnnbook.fit`` can train it)."""
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    graph = export_model(model, example, train=True)   # a copy trains; the original stays
    prepared = prepare_qat_pt2e(graph, x86_quantizer(qat=True, reduce_range=reduce_range))
    # The graph was exported in train mode: record it, or the first .train() rewrites every
    # batch norm into what it already is (torchao re-exports its patterns for that: seconds).
    from torchao.quantization.pt2e import export_utils
    setattr(prepared, getattr(export_utils, "_EXPORTED_TRAINING_ATTR", "_exported_training"), True)
    return allow_exported_model_train_eval(prepared)


def convert_qat(prepared) -> nn.Module:
    """The QAT-trained graph converted to (reference) int8, in eval mode."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    move_exported_model_to_eval(prepared)
    return _with_train_eval(convert_pt2e(prepared))


def compile_int8(model: nn.Module, example: torch.Tensor):
    """``torch.compile`` a converted int8 graph with Inductor's freezing (weights prepacked as
    int8 constants), and run ``example`` once so the compilation happens here, not in a
    timing loop. Returns a callable that runs the compiled graph (and compiles again for a
    new input shape, with the same settings).

    The freezing flag is set in Inductor's global config around every call: the int8
    lowering reads it there, and ``torch.compile(options={"freezing": True})`` alone fails
    on the prepacking op (``UnsupportedOperatorException: onednn.qconv_prepack``, torch 2.14).
    """
    import torch._inductor.config as inductor_config

    compiled = torch.compile(model)

    @functools.wraps(model.forward)
    def run(*args, **kwargs):
        with inductor_config.patch(freezing=True), torch.no_grad():
            return compiled(*args, **kwargs)

    run(example)
    return run


def count_quantized_ops(graph_module) -> dict:
    """How many quantise / dequantise nodes a converted graph holds (0 and 0: nothing happened)."""
    counts = {"quantize": 0, "dequantize": 0}
    for node in getattr(graph_module, "graph").nodes:
        name = str(node.target)
        if "quantize_per" in name:
            counts["dequantize" if "dequantize" in name else "quantize"] += 1
    return counts


def explore_quantization(weight: torch.Tensor, bits: int = 8, per_channel: bool = True,
                         symmetric: bool = True) -> dict:
    """Everything the quantisation explorer draws for one weight tensor: the weights and
    their quantised values (flattened), each output channel's scale and relative error,
    and the summary of ``quant_error``. Pure: no plotting."""
    if not isinstance(weight, torch.Tensor) or weight.dim() < 1 or weight.numel() == 0:
        raise ValueError("pick a layer with a non-empty weight tensor")
    w = weight.detach().float()
    axis = 0 if per_channel else None
    wq = fake_quantize(w, bits, symmetric, axis)
    scale, zero = qparams(w, bits, symmetric, axis)
    flat, flat_q = w.flatten(1) if w.dim() > 1 else w[None], wq.flatten(1) if w.dim() > 1 else wq[None]
    energy = flat.pow(2).sum(1).clamp_min(1e-30)
    channel_err = ((flat - flat_q).pow(2).sum(1) / energy).sqrt()
    summary = quant_error(w, bits, symmetric, axis)
    return {"w": w.flatten(), "wq": wq.flatten(), "scale": scale.flatten(),
            "zero_point": zero.flatten(), "channel_rel_err": channel_err,
            "summary": summary, "bytes_fp32": w.numel() * 4,
            "bytes_quantised": math.ceil(w.numel() * bits / 8) + scale.numel() * 8}
