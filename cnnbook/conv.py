"""Convolution arithmetic and hand-made kernels: the reusable pieces of chapter 02.

* ``KERNEL_PRESETS`` and ``kernel_presets()``: classic image-processing kernels (edges,
  blur, sharpen, ...) as a table, ``preset_kernel(name)`` as a tensor.
* ``parse_kernel`` / ``format_kernel``: a kernel to and from the text a learner types.
* ``apply_kernel``: one 2-D kernel on a photograph (every colour channel on its own),
  with PyTorch's stride, padding, padding modes and dilation.
* ``conv_output_size``, ``same_padding`` and ``ConvGeometry``: where each window of a
  convolution sits, for the output-size formula and the arithmetic pictures.
* ``draw_conv_arithmetic`` and ``plot_kernel_result``: the pictures the two widgets show.

Deep-learning "convolution" (``F.conv2d``) is cross-correlation: no kernel flip.
Everything here follows that convention.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle

__all__ = [
    "KERNEL_PRESETS", "PADDING_MODES", "ConvGeometry", "apply_kernel", "conv_output_size",
    "draw_conv_arithmetic", "format_kernel", "kernel_presets", "pad_image", "parse_kernel",
    "plot_kernel_result", "preset_kernel", "same_padding",
]

#: Padding modes of ``nn.Conv2d`` and what ``F.pad`` calls them.
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                 "circular": "circular"}

_T = 1 / 9
#: name -> (rows, what it does). Kernels that sum to 0 respond only to change (edges);
#: kernels that sum to 1 keep the average brightness (blur, sharpen, emboss, identity).
KERNEL_PRESETS: dict[str, tuple[list[list[float]], str]] = {
    "identity": ([[0, 0, 0], [0, 1, 0], [0, 0, 0]],
                 "copies the image: the centre weight is the only one"),
    "horizontal edge": ([[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
                        "below minus above: bright where the image gets brighter downwards"),
    "vertical edge": ([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
                      "right minus left: bright where the image gets brighter to the right"),
    "diagonal edge": ([[0, 1, 1], [-1, 0, 1], [-1, -1, 0]],
                      "upper right minus lower left: edges running from top-left to bottom-right"),
    "anti-diagonal edge": ([[1, 1, 0], [1, 0, -1], [0, -1, -1]],
                           "upper left minus lower right: edges running from bottom-left to top-right"),
    "sobel x": ([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
                "vertical edge with the centre row weighted twice (Sobel 1968): less noise"),
    "sobel y": ([[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
                "horizontal edge with the centre column weighted twice"),
    "laplacian": ([[0, 1, 0], [1, -4, 1], [0, 1, 0]],
                  "second derivative: responds to edges of every orientation, zero on ramps"),
    "box blur 3x3": ([[_T] * 3] * 3, "the mean of the 3x3 neighbourhood (1/9 each)"),
    "gaussian blur 3x3": ([[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16],
                           [1 / 16, 2 / 16, 1 / 16]],
                          "a weighted mean, nearer pixels count more: a smoother blur"),
    "box blur 5x5": ([[1 / 25] * 5] * 5, "the mean of the 5x5 neighbourhood: a stronger blur"),
    "sharpen": ([[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
                "the image plus its negated Laplacian: edges get more contrast"),
    "emboss": ([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
               "a diagonal derivative added to the image: looks like a relief lit from one side"),
}


def preset_kernel(name: str) -> torch.Tensor:
    """The preset kernel ``name`` as a float32 tensor (kH, kW)."""
    if name not in KERNEL_PRESETS:
        raise ValueError(f"unknown kernel preset {name!r}: choose one of {', '.join(KERNEL_PRESETS)}")
    return torch.tensor(KERNEL_PRESETS[name][0], dtype=torch.float32)


def kernel_presets():
    """The presets as a table: name, size, sum of the weights and what each one does."""
    import pandas as pd

    rows = []
    for name, (rows_, note) in KERNEL_PRESETS.items():
        k = preset_kernel(name)
        rows.append({"kernel": name, "size": f"{k.shape[0]}x{k.shape[1]}",
                     "sum": round(float(k.sum()), 6), "what it does": note})
    return pd.DataFrame(rows).set_index("kernel")


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ENTRY = re.compile(rf"^({_NUMBER})(?:/({_NUMBER}))?$")
MAX_KERNEL_SIZE = 15
MAX_ENTRY = 1e6  # float32 holds it with room: 15x15 entries of 1e6 on pixels in [0, 1]


def _parse_entry(token: str, row: int, col: int) -> float:
    m = _ENTRY.match(token)
    if not m:
        raise ValueError(f"row {row}, entry {col}: {token!r} is not a number "
                         "(write numbers like 2, -0.5 or 1/9)")
    value = float(m.group(1))
    if m.group(2) is not None:
        den = float(m.group(2))
        if den == 0:
            raise ValueError(f"row {row}, entry {col}: {token!r} divides by zero")
        value /= den
    if not math.isfinite(value):
        raise ValueError(f"row {row}, entry {col}: {token!r} is not a finite number")
    if abs(value) > MAX_ENTRY:
        raise ValueError(f"row {row}, entry {col}: {token!r} is too large; keep the weights "
                         f"within +-{MAX_ENTRY:g} (the picture only depends on their ratios)")
    return value


def parse_kernel(text: str) -> torch.Tensor:
    """A kernel from text: one row per line (or rows separated by ``;``), entries separated
    by spaces or commas; an entry is a number or a fraction such as ``1/9``.

    Brackets are ignored, so ``[[1, 0], [0, 1]]`` works too. Raises ``ValueError`` with
    the row and entry at fault for anything that is not a rectangular table of numbers.
    """
    if not isinstance(text, str):
        raise ValueError("the kernel must be given as text")
    cleaned = re.sub(r"\]\s*,?\s*\[", ";", text).replace("[", " ").replace("]", " ")
    lines = [line.strip().strip(",").strip() for line in re.split(r"[;\n]", cleaned)]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError("the kernel is empty: type one row of numbers per line")
    rows = []
    for r, line in enumerate(lines, start=1):
        words = line.split()
        comma_decimal = [w for w in words if re.fullmatch(r"[-+]?\d+,\d+", w.strip(","))]
        if len(words) > 1 and comma_decimal:
            w = comma_decimal[0].strip(",")
            raise ValueError(f"row {r}: {w!r} looks like a decimal comma; write "
                             f"{w.replace(',', '.')} (a comma separates entries here)")
        tokens = [t for t in re.split(r"[,\s]+", line) if t]
        rows.append([_parse_entry(t, r, c) for c, t in enumerate(tokens, start=1)])
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        detail = ", ".join(f"row {i} has {len(row)}" for i, row in enumerate(rows, start=1))
        raise ValueError(f"every row needs the same number of entries: {detail}")
    if max(len(rows), len(rows[0])) > MAX_KERNEL_SIZE:
        raise ValueError(f"a {len(rows)}x{len(rows[0])} kernel is larger than the "
                         f"{MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE} this editor accepts")
    return torch.tensor(rows, dtype=torch.float32)


def _format_value(v: float) -> str:
    if abs(v - round(v)) < 1e-6:
        return str(int(round(v)))
    frac = Fraction(v).limit_denominator(100)
    if abs(float(frac) - v) < 1e-7 * max(1.0, abs(v)):  # float32 rounding, no more
        return f"{frac.numerator}/{frac.denominator}"
    return f"{v:.4g}"


def format_kernel(kernel) -> str:
    """A kernel as editable text, one row per line; simple fractions stay fractions (1/9)."""
    k = torch.as_tensor(kernel, dtype=torch.float32)
    if k.ndim != 2:
        raise ValueError(f"expected a 2-D kernel, got shape {tuple(k.shape)}")
    cells = [[_format_value(float(v)) for v in row] for row in k]
    width = max(len(c) for row in cells for c in row)
    return "\n".join("  ".join(c.rjust(width) for c in row) for row in cells)


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """The padding that keeps the size at stride 1: ``d (k - 1) / 2``, for odd ``k``."""
    span = dilation * (kernel_size - 1)
    if span % 2:
        raise ValueError(f"no symmetric 'same' padding for an even kernel span "
                         f"d(k-1) = {span}: pad one side more (PyTorch's padding='same' does)")
    return span // 2


def _check_ints(**values) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be a whole number, got {v!r}")
        if v < (0 if name == "padding" else 1):
            raise ValueError(f"{name} must be at least {0 if name == 'padding' else 1}, got {v}")


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution along one axis, as ``nn.Conv2d`` computes it:
    ``floor((size + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1``.

    Raises ``ValueError`` when the dilated kernel does not fit in the padded input (no
    output at all), with the two sizes in the message.
    """
    _check_ints(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                dilation=dilation)
    span = dilation * (kernel_size - 1) + 1
    padded = size + 2 * padding
    if span > padded:
        raise ValueError(f"the kernel spans {span} pixels (d(k-1)+1 with k={kernel_size}, "
                         f"d={dilation}) but the padded input has only {padded} "
                         f"({size} + 2x{padding}): the output would be empty")
    return (padded - span) // stride + 1


@dataclass(frozen=True)
class ConvGeometry:
    """Where the windows of a square convolution sit (Dumoulin and Visin 2016, one axis
    is enough because both axes follow the same arithmetic).

    Coordinates are in the *unpadded* input: padding cells have index ``-padding..-1``
    and ``size..size+padding-1``.
    """

    size: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    def __post_init__(self):
        conv_output_size(self.size, self.kernel_size, self.stride, self.padding, self.dilation)

    @property
    def out_size(self) -> int:
        return conv_output_size(self.size, self.kernel_size, self.stride, self.padding,
                                self.dilation)

    @property
    def span(self) -> int:
        """How many input pixels one window covers along an axis: ``d (k - 1) + 1``."""
        return self.dilation * (self.kernel_size - 1) + 1

    @property
    def padded_size(self) -> int:
        return self.size + 2 * self.padding

    @property
    def unused(self) -> int:
        """Padded rows (or columns) at the bottom (right) that no window reaches: the
        remainder that the floor in the output-size formula throws away."""
        return self.padded_size - ((self.out_size - 1) * self.stride + self.span)

    def start(self, i: int) -> int:
        """First input index of output position ``i``: ``i * stride - padding``."""
        if not 0 <= i < self.out_size:
            raise ValueError(f"output index {i} is outside 0..{self.out_size - 1}")
        return i * self.stride - self.padding

    def taps(self, i: int, j: int) -> list[tuple[int, int]]:
        """The (row, col) input positions that the kernel weights touch for output (i, j)."""
        r0, c0 = self.start(i), self.start(j)
        offs = [u * self.dilation for u in range(self.kernel_size)]
        return [(r0 + du, c0 + dv) for du in offs for dv in offs]

    def in_padding(self, row: int, col: int) -> bool:
        return not (0 <= row < self.size and 0 <= col < self.size)


def _default_positions(n: int) -> list[tuple[int, int]]:
    picks = [(0, 0), (0, 1), (1, 0), (n - 1, n - 1)]
    out = []
    for p in picks:
        if max(p) < n and p not in out:
            out.append(p)
    return out


def draw_conv_arithmetic(geometry: ConvGeometry, positions=None, scale: float = 0.32):
    """Dumoulin-and-Visin-style pictures: for each output position, the padded input
    (padding dashed), the kernel taps (dark, with the gaps of dilation), the window's
    extent (outline) and the output grid with that position marked."""
    g = geometry
    positions = _default_positions(g.out_size) if positions is None else list(positions)
    n_in, n_out, p = g.size, g.out_size, g.padding
    gap = 1.5
    width = g.padded_size + gap + n_out
    height = max(g.padded_size, n_out)
    ncols = len(positions)
    fig, axes = plt.subplots(1, ncols, squeeze=False,
                             figsize=(max(3.0, scale * width) * ncols, max(2.4, scale * height + 0.9)))
    for ax, (i, j) in zip(axes.flat, positions):
        taps = set(g.taps(i, j))
        r0, c0 = g.start(i), g.start(j)
        # input and padding: row index grows downwards, as in an image
        for r in range(-p, n_in + p):
            for c in range(-p, n_in + p):
                x, y = c + p, height - 1 - (r + p)
                pad = g.in_padding(r, c)
                tap = (r, c) in taps
                face = ("#1f4e79" if not pad else "#7f9fbf") if tap else ("white" if pad else "#9cc3e6")
                ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor="#555",
                                       lw=0.6, ls="--" if pad else "-"))
        # outline of the window's extent
        ax.add_patch(Rectangle((c0 + p, height - (r0 + p) - g.span), g.span, g.span,
                               fill=False, edgecolor="#d62728", lw=1.8))
        # output grid, to the right, top-aligned
        ox = g.padded_size + gap
        for a in range(n_out):
            for b in range(n_out):
                face = "#2ca02c" if (a, b) == (i, j) else "#b7e4b7"
                ax.add_patch(Rectangle((ox + b, height - 1 - a), 1, 1, facecolor=face,
                                       edgecolor="#555", lw=0.6))
        ax.set_xlim(-0.2, width + 0.2)
        ax.set_ylim(-0.2, height + 0.2)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"output ({i}, {j})", fontsize=9)
    fig.suptitle(f"input {n_in}, kernel {g.kernel_size}, stride {g.stride}, padding {p}, "
                 f"dilation {g.dilation}:  floor(({n_in} + 2*{p} - {g.dilation}*({g.kernel_size}-1)"
                 f" - 1) / {g.stride}) + 1 = {n_out}", fontsize=10)
    fig.text(0.5, 0.0, "light blue: input   white, dashed: padding   dark: kernel taps   "
             "red: window   green: output (dark: this position)", ha="center", va="top",
             fontsize=8, color="#444")
    fig.tight_layout()
    return fig


def _as_batch(image) -> tuple[torch.Tensor, int]:
    x = torch.as_tensor(image, dtype=torch.float32)
    if x.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or (C, H, W), got shape {tuple(x.shape)}")
    ndim = x.ndim
    if ndim == 2:
        x = x.unsqueeze(0)
    return x.unsqueeze(0), ndim  # (1, C, H, W)


def pad_image(image, padding: int, padding_mode: str = "zeros") -> torch.Tensor:
    """Pad an image (H, W) or (C, H, W) on every side as ``nn.Conv2d``'s ``padding_mode`` does."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding_mode!r}: choose one of {', '.join(PADDING_MODES)}")
    _check_ints(padding=padding)
    x, ndim = _as_batch(image)
    x = _pad(x, (padding,) * 4, padding_mode)
    return x[0, 0] if ndim == 2 else x[0]


def _pad(x: torch.Tensor, pad4, padding_mode: str) -> torch.Tensor:
    if not any(pad4):
        return x
    limit = min(x.shape[-2:]) - (padding_mode == "reflect")
    if padding_mode in ("reflect", "circular") and max(pad4) > limit:
        raise ValueError(f"{padding_mode} padding of {max(pad4)} copies pixels from inside "
                         f"the image, so it cannot exceed {limit} for an image of "
                         f"{tuple(x.shape[-2:])}")
    return F.pad(x, pad4, mode=PADDING_MODES[padding_mode])


def apply_kernel(image, kernel, stride: int = 1, padding=0, padding_mode: str = "zeros",
                 dilation: int = 1) -> torch.Tensor:
    """Cross-correlate a photo (H, W) or (C, H, W) with one 2-D kernel, channel by channel.

    The arguments mean what they mean for ``nn.Conv2d``; ``padding="same"`` keeps the
    size at stride 1 (an even kernel gets its extra padding at the bottom and right, as
    PyTorch does). Returns a tensor with the image's number of dimensions.
    """
    k = torch.as_tensor(kernel, dtype=torch.float32)
    if k.ndim != 2:
        raise ValueError(f"expected a 2-D kernel, got shape {tuple(k.shape)}")
    x, ndim = _as_batch(image)
    if padding == "same":  # as PyTorch: an odd total padding puts the extra pixel last
        if stride != 1:
            raise ValueError("padding='same' needs stride 1")
        _check_ints(dilation=dilation)
        (th, tw) = (dilation * (s - 1) for s in k.shape)
        pad4 = (tw // 2, tw - tw // 2, th // 2, th - th // 2)
    else:
        _check_ints(padding=padding)
        pad4 = (padding,) * 4
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding_mode!r}: choose one of {', '.join(PADDING_MODES)}")
    for n, kk, before, after in ((x.shape[-2], k.shape[0], pad4[2], pad4[3]),
                                 (x.shape[-1], k.shape[1], pad4[0], pad4[1])):
        conv_output_size(int(n) + before + after, int(kk), stride, 0, dilation)
    x = _pad(x, pad4, padding_mode)
    c = x.shape[1]
    weight = k.to(x.device).expand(c, 1, *k.shape).contiguous()
    y = F.conv2d(x, weight, stride=stride, dilation=dilation, groups=c)
    return y[0, 0] if ndim == 2 else y[0]


def plot_kernel_result(image, kernel, feature, titles=("input", "kernel", "feature map")):
    """Three panels: the photo, the kernel with its weights written in, the feature map.

    A kernel whose weights sum to about 0 answers with signed values (edges), drawn with a
    diverging map centred on zero; any other feature map is drawn in grey like a photo.
    """
    img = torch.as_tensor(image, dtype=torch.float32).detach().cpu()
    k = torch.as_tensor(kernel, dtype=torch.float32).detach().cpu()
    fmap = torch.as_tensor(feature, dtype=torch.float32).detach().cpu()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6),
                             gridspec_kw={"width_ratios": [1, 0.6, 1]})
    show = img.permute(1, 2, 0).clamp(0, 1).numpy() if img.ndim == 3 else img.clamp(0, 1).numpy()
    axes[0].imshow(show, cmap="gray", vmin=0, vmax=1)
    lim = float(k.abs().max()) or 1.0
    axes[1].imshow(k.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
    if k.numel() <= 49:
        for (r, c), v in np.ndenumerate(k.numpy()):
            axes[1].text(c, r, _format_value(float(v)), ha="center", va="center", fontsize=8,
                         color="white" if abs(v) > 0.6 * lim else "black")
    zero_sum = abs(float(k.sum())) < 1e-6 * max(1.0, float(k.abs().sum()))
    f = fmap.mean(0) if fmap.ndim == 3 else fmap  # colour: the mean response over channels
    if zero_sum:
        flim = float(f.abs().max()) or 1.0
        axes[2].imshow(f.numpy(), cmap="RdBu_r", vmin=-flim, vmax=flim)
    else:
        axes[2].imshow(fmap.permute(1, 2, 0).clamp(0, 1).numpy() if fmap.ndim == 3
                       else f.clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
