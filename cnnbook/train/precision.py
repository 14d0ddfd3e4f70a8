"""Mixed precision for ``fit``: which number format the forward pass computes in.

    fit(model, ..., precision="bf16")     # "fp32" (default), "bf16", "fp16" or "auto"

Under ``torch.autocast`` the matrix multiplies and convolutions of the forward pass run in a
16-bit format while the weights, the optimiser state and numerically touchy operations
(softmax, losses, reductions) stay in float32. Two 16-bit formats exist:

- **bf16** (bfloat16) keeps float32's 8 exponent bits and cuts the mantissa to 7 bits: the
  same range, less precision. Gradients do not underflow, so no scaler is needed. It works
  on recent GPUs (``torch.cuda.is_bf16_supported()``) and on CPUs; whether it is *faster*
  on a CPU depends on the chip (AMX or AVX512-BF16 units) and on the layer: matrix
  multiplies gain most, convolution training often does not. Measure it (chapter 18 does).
- **fp16** (half) has 5 exponent bits: small gradients underflow to zero. A
  ``torch.amp.GradScaler`` multiplies the loss by a large factor before ``backward`` and
  divides the gradients back before the step, skipping steps whose gradients overflowed.
  fp16 is a CUDA format here; on a CPU it is refused with a clear message.

``"auto"`` picks bf16 on a CUDA GPU that supports it, else fp16 on CUDA, and fp32 elsewhere
(on a CPU, bf16 conv training is not reliably faster, so the safe choice is kept).

``fit`` uses one ``Precision`` object for its three moments: ``with amp.autocast():`` around
the forward pass and loss, ``amp.backward(loss)``, and ``amp.step(optimizer)``;
``amp.unscale(optimizer)`` comes before gradient clipping, which must see true gradients.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

PRECISIONS = ("fp32", "bf16", "fp16", "auto")


@dataclass
class Precision:
    """The resolved choice: ``name`` ("fp32", "bf16" or "fp16"), autocast dtype, scaler."""

    name: str
    device_type: str
    dtype: torch.dtype | None = None          # None: plain float32, no autocast
    scaler: torch.amp.GradScaler | None = None  # fp16 only

    def autocast(self):
        """Context for the forward pass and loss (does nothing in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the loss scale (before clipping); no-op without a scaler."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)   # skipped if the gradients hold inf/NaN
            self.scaler.update()          # grow or shrink the scale


def resolve_precision(precision: str, device) -> Precision:
    """The ``Precision`` for a name and a device, or a ``ValueError`` saying why not."""
    if not isinstance(precision, str) or precision.lower() not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    device = torch.device(device)
    kind, name = device.type, precision.lower()
    if name == "auto":
        if kind == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            name = "fp32"
    if name == "fp32":
        return Precision("fp32", kind)
    if name == "fp16":
        if kind != "cuda":
            raise ValueError(f"precision='fp16' needs a CUDA GPU (this device is {kind}): fp16 "
                             "training relies on a gradient scaler and fast half-precision "
                             "kernels. Use precision='bf16' or 'fp32' here.")
        return Precision("fp16", kind, torch.float16, torch.amp.GradScaler("cuda"))
    # bf16
    if kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU does not support bfloat16: use precision='fp16' or 'fp32'")
    if kind not in ("cuda", "cpu"):
        raise ValueError(f"precision='bf16' is supported here on CUDA and CPU, not {kind}")
    return Precision("bf16", kind, torch.bfloat16)
