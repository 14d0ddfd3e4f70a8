"""ChannelMixerExplorer: a 1x1 convolution as a per-pixel mixer of channels, on a photograph.

A 1x1 convolution with weight ``W`` (C_out x C_in) computes, at every pixel, ``y = W x``:
the same small matrix multiplies the channel vector of each pixel. ``mix_channels`` runs it
both ways, with ``nn.Conv2d`` and as one matrix product of ``W`` with the (C_in x H*W)
matrix of pixels, and reports the largest difference (float rounding). The explorer shows
the input channels of an RGB photograph, the output channels for a chosen mixing matrix
(a preset, or typed in), and the product written out at one chosen pixel. It also reports
the rank of the output's (C_out x H*W) matrix: without a nonlinearity, any number of output
channels made from three inputs carry at most three channels' worth of information.
"""
from __future__ import annotations

import math
import re

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}
#: colour photographs from ``cnnbook.photos`` (scikit-image's bundled samples)
IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
#: named mixing matrices for RGB input: rows are output channels, columns R, G, B
PRESETS = {
    "identity": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    "grey (luma)": [[0.299, 0.587, 0.114]],
    "swap red and blue": [[0, 0, 1], [0, 1, 0], [1, 0, 0]],
    "opponent colours": [[1 / 3, 1 / 3, 1 / 3], [1, -1, 0], [0.5, 0.5, -1]],
    "sepia": [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]],
    "redness": [[1, -0.5, -0.5]],
    "3 -> 5 channels": [[0.8, -0.3, 0.1], [-0.2, 0.9, -0.6], [0.4, 0.4, 0.4], [1.0, 0.5, -1.2],
                        [-0.7, 0.2, 0.9]],
}
MAX_OUT = 6


def parse_matrix(text: str, columns: int = 3, max_rows: int = MAX_OUT) -> torch.Tensor:
    """A matrix typed as rows of numbers (rows on new lines or separated by ``;``, numbers by
    spaces or commas) -> a float tensor (rows, ``columns``); a clear ``ValueError`` otherwise."""
    rows = [r for r in re.split(r"[;\n]", str(text)) if r.strip()]
    if not rows:
        raise ValueError(f"type the mixing matrix: one row of {columns} numbers per output "
                         "channel, rows separated by ';' or new lines")
    if len(rows) > max_rows:
        raise ValueError(f"at most {max_rows} output channels (rows), got {len(rows)}")
    matrix = []
    for i, row in enumerate(rows, 1):
        parts = [p for p in re.split(r"[,\s]+", row.strip()) if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"row {i} ({row.strip()[:40]!r}) is not a list of numbers") from None
        if len(values) != columns:
            raise ValueError(f"row {i} has {len(values)} numbers: each row needs {columns}, one "
                             "per input channel")
        if not all(math.isfinite(v) and abs(v) <= 1e6 for v in values):
            raise ValueError(f"row {i} has a number that is not finite or beyond ±1e6")
        matrix.append(values)
    return torch.tensor(matrix, dtype=torch.float32)


def format_matrix(matrix) -> str:
    """The text ``parse_matrix`` reads back: one row per line."""
    return "\n".join(" ".join(f"{v:g}" for v in row) for row in np.asarray(matrix, dtype=float))


def mix_channels(image: torch.Tensor, weight: torch.Tensor, relu: bool = False) -> dict:
    """Apply the 1x1 convolution ``weight`` (C_out, C_in) to ``image`` (C_in, H, W).

    Computed with ``nn.Conv2d`` (no bias) and as ``W @ pixels``; returns the output, the
    largest difference between the two, the output's numerical rank as a (C_out x H*W)
    matrix, and the parameter and per-pixel multiply-add counts.
    """
    image = torch.as_tensor(image, dtype=torch.float32)
    weight = torch.as_tensor(weight, dtype=torch.float32)
    if image.ndim != 3 or weight.ndim != 2 or weight.shape[1] != image.shape[0]:
        raise ValueError(f"need an image (C_in, H, W) and a weight (C_out, C_in), got "
                         f"{tuple(image.shape)} and {tuple(weight.shape)}")
    c_out, c_in = weight.shape
    conv = nn.Conv2d(c_in, c_out, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(weight[:, :, None, None])
        by_conv = conv(image[None])[0]
    by_matmul = (weight @ image.reshape(c_in, -1)).reshape(c_out, *image.shape[1:])
    out = F.relu(by_conv) if relu else by_conv
    return {
        "output": out, "max_diff_vs_conv": float((by_conv - by_matmul).abs().max()),
        "rank": _rank(out.reshape(c_out, -1)),
        "params": c_out * c_in, "macs_per_pixel": c_out * c_in,
    }


def _rank(rows: torch.Tensor, rtol: float = 1e-5) -> int:
    """Numerical rank of a wide matrix from its small Gram matrix (singular values squared);
    ``rtol`` is relative to the largest singular value, above float32 rounding."""
    gram = rows.double() @ rows.double().T
    s2 = torch.linalg.eigvalsh(gram).clamp(min=0)
    return int((s2.sqrt() > rtol * s2.max().sqrt()).sum()) if s2.max() > 0 else 0


def _photo(name: str, size: int) -> torch.Tensor:
    from cnnbook.photos import load_photo

    x = load_photo(name, size=size, gray=False)
    h, w = x.shape[1:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[:, top:top + size, left:left + size].contiguous()


class ChannelMixerExplorer(Explorer):
    """A photograph, a mixing matrix (a preset, which fills the text box, or typed rows of
    three numbers), an optional ReLU after the mix, and the pixel whose product is written
    out. Editing the text box switches the preset to "custom"."""

    tight_png = False

    def __init__(self, image: str = "coffee", preset: str = "opponent colours",
                 relu: bool = False, row: int | None = None, col: int | None = None,
                 size: int = 96):
        self.size = size
        self._photos: dict[str, torch.Tensor] = {}
        self._syncing = False
        row = size // 2 if row is None else row
        col = size // 2 if col is None else col
        slider = dict(continuous_update=False, style=_STYLE)
        controls = {
            "image": widgets.Dropdown(options=list(IMAGES), value=image, description="photo",
                                      style=_STYLE),
            "preset": widgets.Dropdown(options=[*PRESETS, "custom"], value=preset,
                                       description="mixing matrix", style=_STYLE),
            "weights": widgets.Textarea(value=format_matrix(PRESETS.get(preset, PRESETS["identity"])),
                                        description="W (rows: R G B weights)", rows=4,
                                        style=_STYLE, layout=widgets.Layout(width="330px")),
            "relu": widgets.Checkbox(value=relu, description="ReLU after the mix"),
            "row": widgets.IntSlider(value=row, min=0, max=size - 1, description="pixel row",
                                     **slider),
            "col": widgets.IntSlider(value=col, min=0, max=size - 1, description="pixel column",
                                     **slider),
        }
        c = controls
        layout = widgets.HBox([widgets.VBox([c["image"], c["preset"], c["relu"]]), c["weights"],
                               widgets.VBox([c["row"], c["col"]])])
        super().__init__(controls, layout)

    def _on_change(self, change):
        """Keep the preset and the text box in step, then redraw once."""
        if self._syncing:
            return
        preset, text = self.controls["preset"], self.controls["weights"]
        self._syncing = True
        try:
            if change["owner"] is preset and preset.value in PRESETS:
                text.value = format_matrix(PRESETS[preset.value])
            elif change["owner"] is text and preset.value in PRESETS \
                    and text.value != format_matrix(PRESETS[preset.value]):
                preset.value = "custom"
        finally:
            self._syncing = False
        self.refresh()

    def photo(self, name: str) -> torch.Tensor:
        if name not in self._photos:
            self._photos[name] = _photo(name, self.size)
        return self._photos[name]

    def compute(self, image, preset, weights, relu, row, col):
        W = parse_matrix(weights)
        x = self.photo(image)
        out = mix_channels(x, W, relu=bool(relu))
        y = out["output"]
        c_out = y.shape[0]
        xv, yv = x[:, row, col], y[:, row, col]
        k = max(3, c_out)
        fig = plt.figure(figsize=(1.45 * (k + 3.4), 3.5))
        grid = fig.add_gridspec(2, 3, width_ratios=[1, k, 2.4], left=0.01, right=0.99,
                                bottom=0.02, top=0.92, wspace=0.05, hspace=0.2)
        ax_in, ax_rgb = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        ax_out, ax_mix = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
        ax_txt = fig.add_subplot(grid[:, 2])
        for ax in (ax_in, ax_rgb, ax_out, ax_mix, ax_txt):
            ax.axis("off")
        size = x.shape[-1]
        gap = torch.full((x.shape[1], max(2, size // 16)), float("nan"))

        def strip(maps):   # channels side by side, with a gap between them
            return torch.cat([t for m in maps for t in (m, gap)][:-1], dim=1).numpy()

        ax_in.imshow(x.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax_in.set_title(image, fontsize=9)
        ax_rgb.imshow(strip(list(x)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax_rgb.set_title("input channels R, G, B", fontsize=9)
        if c_out == 3:
            ax_out.imshow(y.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax_out.set_title("output as RGB", fontsize=9)
        elif c_out == 1:
            ax_out.imshow(y[0].numpy(), cmap="gray", interpolation="nearest")
            ax_out.set_title("output", fontsize=9)
        else:
            ax_out.text(0.5, 0.5, f"{c_out} channels\nfrom 3:\nrank {out['rank']}",
                        ha="center", va="center", fontsize=9, transform=ax_out.transAxes)
        scale = y.reshape(c_out, -1).abs().amax(1).clamp(min=1e-12).view(-1, 1, 1)
        ax_mix.imshow(strip(list(y / scale)), cmap="RdBu_r", vmin=-1, vmax=1,
                      interpolation="nearest")
        ax_mix.set_title(f"output channels 0-{c_out - 1} (each scaled to its largest |value|; "
                         "red +, blue -)" if c_out > 1 else "output channel 0 (red +, blue -)",
                         fontsize=9)
        for ax in (ax_in, ax_out) if c_out in (1, 3) else (ax_in,):
            ax.plot(col, row, "+", color="yellow", ms=10, mew=2)
        lines = [f"pixel ({row}, {col})", "y = W x" + (", then ReLU" if relu else ""), ""]
        for j in range(c_out):
            terms = " ".join(f"{w:+.2f}·{v:.2f}" for w, v in zip(W[j].tolist(), xv.tolist()))
            lines.append(f"y{j} = {terms}")
            lines.append(f"   = {float(yv[j]):+.3f}")
        lines += ["", f"conv vs W @ pixels: {out['max_diff_vs_conv']:.1e}",
                  f"output rank {out['rank']} of {c_out} channels"]
        ax_txt.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace",
                    fontsize=7, transform=ax_txt.transAxes)
        state = {"image": image, "preset": preset, "weights": W.tolist(), "c_in": 3,
                 "c_out": c_out, "relu": bool(relu), "row": int(row), "col": int(col),
                 "x_pixel": xv.tolist(), "y_pixel": yv.tolist(),
                 "max_diff_vs_conv": out["max_diff_vs_conv"], "rank": out["rank"],
                 "params": out["params"], "macs_per_pixel": out["macs_per_pixel"]}
        return fig, state
