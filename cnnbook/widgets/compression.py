"""QuantizationExplorer: quantise one layer's weights to 2-8 bits and see what is lost.

Controls -> ``cnnbook.deploy.quantize.explore_quantization`` -> two panels: the weights'
histogram with the quantised values on top (each spike is one integer level; with
per-channel scales every channel has its own grid, so the spikes blur), and each output
channel's relative error (with its scale). The title gives the layer's relative RMS
error, the signal-to-quantisation-noise ratio in dB (about 6 dB per bit), the levels used
and the bytes saved.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from cnnbook.deploy.quantize import explore_quantization
from cnnbook.widgets.base import Explorer, bounded_slider

_STYLE = {"description_width": "initial"}


def quantizable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Name -> weight of every conv and linear layer (what int8 quantisation stores)."""
    return {f"{name}.weight": m.weight.detach() for name, m in model.named_modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))}


class QuantizationExplorer(Explorer):
    """Dropdown for the layer; slider for the bits; per-channel and symmetric switches."""

    def __init__(self, model: nn.Module, layer: str | None = None, bits: int = 4,
                 per_channel: bool = False, symmetric: bool = True):
        self.weights = quantizable_weights(model)
        if not self.weights:
            raise ValueError("the model has no conv or linear layer to quantise")
        names = list(self.weights)
        layer = layer if layer is not None else names[len(names) // 2]
        if layer not in self.weights:
            raise ValueError(f"no layer {layer!r}; choose one of {', '.join(names)}")
        controls = {
            "layer": widgets.Dropdown(options=names, value=layer, description="layer",
                                      style=_STYLE),
            "bits": bounded_slider(widgets.IntSlider, bits, 2, 8, 1, "bits", style=_STYLE),
            "per_channel": widgets.Checkbox(value=per_channel, description="per-channel scales"),
            "symmetric": widgets.Checkbox(value=symmetric,
                                          description="symmetric (zero point 0)"),
        }
        c = controls
        layout = widgets.HBox([widgets.VBox([c["layer"], c["bits"]]),
                               widgets.VBox([c["per_channel"], c["symmetric"]])])
        super().__init__(controls, layout)

    def compute(self, layer, bits, per_channel, symmetric):
        if layer not in self.weights:
            raise ValueError(f"no layer {layer!r}")
        view = explore_quantization(self.weights[layer], int(bits), bool(per_channel),
                                    bool(symmetric))
        s = view["summary"]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
        w, wq = view["w"].numpy(), view["wq"].numpy()
        ax1.hist(w, bins=120, color="#bbb", label="fp32 weights")
        ax1.hist(wq, bins=600, histtype="step", color="C0", label=f"{bits}-bit values")
        ax1.set_yscale("log")
        ax1.set_xlabel("weight value")
        ax1.set_title(f"{layer}: {w.size:,} weights")
        ax1.legend(fontsize=8)
        err = view["channel_rel_err"].numpy()
        ax2.bar(range(len(err)), err, color="C3")
        ax2.set_xlabel("output channel")
        ax2.set_ylabel("relative RMS error")
        ax2.set_title("error per channel" + (" (own scale each)" if per_channel
                                             else " (one shared scale)"))
        fig.tight_layout()
        ratio = view["bytes_fp32"] / view["bytes_quantised"]
        state = {"layer": layer, "bits": int(bits), "per_channel": bool(per_channel),
                 "symmetric": bool(symmetric), "rel_rms": s["rel_rms"], "sqnr_db": s["sqnr_db"],
                 "levels_used": s["levels_used"], "max_abs": s["max_abs"],
                 "worst_channel_err": float(err.max()), "compression": ratio}
        fig.suptitle(f"relative RMS error {s['rel_rms']:.2%}, SQNR {s['sqnr_db']:.1f} dB, "
                     f"{s['levels_used']} distinct values, {ratio:.1f}x smaller than fp32",
                     fontsize=10, y=1.03)
        return fig, state
