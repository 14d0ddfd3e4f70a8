# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 02 · Convolution math
#
# A convolutional layer does one simple thing many times: it lays a small grid of weights
# (the *kernel*) over a patch of the image, multiplies, adds, and moves on. This chapter
# takes that sentence apart until every number in `nn.Conv2d` has a meaning.
#
# **What you will learn**
#
# - the definition of convolution, continuous and discrete, and why deep learning's
#   "convolution" is really *cross-correlation* (no kernel flip);
# - three implementations that agree to the last digit: plain loops, im2col (one matrix
#   product) and `F.conv2d`, and how far apart they are in speed;
# - stride, padding and its four modes, dilation, groups, depthwise convolution and
#   channels, and the formula for the output size;
# - why convolution needs so few parameters, and why two 3x3 layers beat one 5x5;
# - what hand-made kernels (edges, blur, sharpen) do to real photographs, with two
#   widgets to experiment: a kernel editor and a convolution-arithmetic explorer;
# - that an edge kernel can be *learned* from examples by gradient descent, the bridge
#   from hand-made kernels to a CNN's.

# %%
import itertools
import math
import timeit

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.conv import (ConvGeometry, apply_kernel, conv_output_size, draw_conv_arithmetic,
                          kernel_presets, pad_image, preset_kernel, same_padding)
from cnnbook.photos import load_photo
from cnnbook.profiling import count_macs, count_params
from cnnbook.summary import show_source

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # photo_size: shorter side of the photographs; time_*: the problem the three
    # implementations race on (batch, channels in -> out, image side); loop_repeats and
    # repeats: timed runs of the slow loops and of the fast versions (the best run counts);
    # fft_size: the image side of the FFT-versus-direct comparison
    "smoke": dict(photo_size=128, time_batch=1, time_channels=(3, 8), time_size=16,
                  loop_repeats=1, repeats=10, fft_size=64),
    "cpu":   dict(photo_size=256, time_batch=2, time_channels=(3, 16), time_size=32,
                  loop_repeats=2, repeats=20, fft_size=256),
    "full":  dict(photo_size=512, time_batch=4, time_channels=(3, 32), time_size=64,
                  loop_repeats=3, repeats=20, fft_size=512),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")
camera = load_photo("camera", size=cfg.photo_size)
print("the photograph:", tuple(camera.shape))

# %% [markdown]
# ## 1. From the integral to the sum
#
# Convolution comes from signal processing, long before neural networks. For two
# functions $f$ and $g$ of one variable it is
#
# $$(f * g)(t) = \int_{-\infty}^{\infty} f(\tau)\, g(t - \tau)\, d\tau .$$
#
# Read it as a recipe: *flip* $g$ (the $-\tau$), *slide* it by $t$, multiply with $f$
# and add up the overlap. Sampled signals turn the integral into a sum, and images need
# two indices. For an image $I$ and a kernel $K$:
#
# $$S(i, j) = (I * K)(i, j) = \sum_m \sum_n I(m, n)\, K(i - m, j - n).$$
#
# Convolutional networks compute something slightly different, the **cross-correlation**
#
# $$Z(i, j) = \sum_u \sum_v K(u, v)\, X(i + u, j + v) + b ,$$
#
# with the same sliding and summing but **no flip**: kernel entry $(0, 0)$ multiplies the
# top-left pixel of the window. Flip the kernel by 180 degrees (upside down and left to
# right) and one turns into the other. Deep-learning libraries all compute the
# cross-correlation and call it convolution; since the kernel is learned, the network
# simply learns the flipped weights, and nothing is lost. The difference matters when you
# copy a kernel from an image-processing book, and in the backward pass ([chapter 04](04_losses_backprop.ipynb)),
# where a true convolution appears.
#
# Let us check this on numbers. First the definition of convolution, taken literally. We
# keep only the positions where the kernel lies entirely inside the image (the "valid"
# part); in the formula above that means $i$ and $j$ start at $k_h - 1$ and $k_w - 1$, so
# we shift them.

# %%
def convolve2d_definition(X, K):
    """True 2-D convolution, straight from S(i, j) = sum_m sum_n X(m, n) K(i - m, j - n),
    keeping the positions where the flipped kernel lies inside X."""
    kh, kw = K.shape
    S = torch.zeros(X.shape[0] - kh + 1, X.shape[1] - kw + 1)
    for i in range(S.shape[0]):
        for j in range(S.shape[1]):
            for m in range(i, i + kh):          # the rows and columns under the kernel
                for n in range(j, j + kw):
                    S[i, j] += X[m, n] * K[i + kh - 1 - m, j + kw - 1 - n]
    return S


# %% [markdown]
# And the cross-correlation, exactly as *Dive into Deep Learning* writes it (d2l's
# `corr2d`): slide the kernel, multiply the window with it elementwise, sum.

# %%
def corr2d(X, K):
    """2-D cross-correlation (d2l): Y[i, j] = sum of X[i:i+h, j:j+w] * K."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
print("cross-correlation (what nn.Conv2d computes):\n", corr2d(X, K))
print("true convolution (the textbook definition):\n", convolve2d_definition(X, K))

# %% [markdown]
# The two results differ because `K` is not symmetric. Flipping the kernel with
# `torch.flip` along both axes turns either operation into the other, and `F.conv2d` (which
# wants tensors shaped batch x channels x height x width) agrees with `corr2d`:

# %%
K_flipped = torch.flip(K, dims=(0, 1))  # 180-degree rotation
print("flipped kernel:\n", K_flipped)
assert torch.equal(convolve2d_definition(X, K), corr2d(X, K_flipped))
assert torch.equal(corr2d(X, K), convolve2d_definition(X, K_flipped))
assert torch.equal(F.conv2d(X[None, None], K[None, None])[0, 0], corr2d(X, K))

torch.manual_seed(0)  # the same on a random image and kernel
X_rand, K_rand = torch.randn(7, 9), torch.randn(3, 4)
assert torch.allclose(convolve2d_definition(X_rand, K_rand), corr2d(X_rand, torch.flip(K_rand, (0, 1))), atol=1e-5)
assert torch.allclose(F.conv2d(X_rand[None, None], K_rand[None, None])[0, 0], corr2d(X_rand, K_rand), atol=1e-5)
print("convolution = cross-correlation with the flipped kernel: checked")

# %% [markdown]
# A little history. Using a small, shared kernel to detect a pattern anywhere in an image
# goes back to Fukushima's Neocognitron (1980). LeCun and colleagues (1989) trained such
# shared weights with backpropagation to read handwritten zip codes, and LeNet-5 (LeCun
# et al., 1998) fixed the recipe most networks still follow: convolution, subsampling,
# convolution, and a classifier on top. Two properties make it work. The kernel looks at a
# *small neighbourhood* (local connectivity), and the *same* kernel is used at every
# position (weight sharing): a pattern learned in one corner is recognised everywhere.
#
# ## 2. Convolution with loops
#
# A real layer has more than one channel. An RGB image has 3 input channels, and a layer
# has many kernels, one per output channel (one *feature map* each). With input channels
# $d$ and output channels $c$:
#
# $$Z(i, j, c) = \sum_{u, v, d} K(u, v, d, c)\, X(i + u, j + v, d) + b_c ,$$
#
# so each kernel is a small 3-D block as deep as the input, and there is **one bias per
# output channel**. PyTorch stores all kernels of a layer in one weight tensor of shape
# `(out_channels, in_channels, kH, kW)`.
#
# Stride, padding and dilation change only *where* the window sits: stride $s$ moves it
# $s$ pixels at a time, padding $p$ adds a frame of zeros around the input, and dilation
# $d$ spreads the kernel's taps $d$ pixels apart. Output pixel $(i, j)$ reads the input
# rows $i s,\ i s + d,\ \dots,\ i s + d(k - 1)$ of the padded image, and the same for
# columns. Here is the whole layer as four nested loops: batch, output channel, row,
# column; in the body, cut out the receptive field, multiply, sum.

# %%
def receptive_window(Xp, i, j, kh, kw, stride, dilation):
    """The (C_in, kh, kw) block of the padded input Xp (C_in, H, W) that output (i, j) reads."""
    r, c = i * stride, j * stride
    return Xp[:, r:r + dilation * (kh - 1) + 1:dilation, c:c + dilation * (kw - 1) + 1:dilation]


def conv2d_loop(X, weight, bias=None, stride=1, padding=0, dilation=1):
    """nn.Conv2d's forward pass with Python loops: X (B, C_in, H, W), weight (C_out, C_in, kh, kw)."""
    B, C_in, H, W = X.shape
    C_out, _, kh, kw = weight.shape
    Xp = F.pad(X, (padding, padding, padding, padding))  # zeros around the border
    H_out = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    W_out = (W + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    Z = torch.zeros(B, C_out, H_out, W_out)
    for b in range(B):
        for c in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    field = receptive_window(Xp[b], i, j, kh, kw, stride, dilation)
                    Z[b, c, i, j] = (field * weight[c]).sum()
            if bias is not None:
                Z[b, c] += bias[c]  # one bias per output channel
    return Z


# %% [markdown]
# Does it compute what PyTorch computes? We try it on random data with several
# settings: different channel counts, kernel sizes, strides, paddings and dilations.

# %%
SETTINGS = [
    dict(B=1, C_in=1, C_out=1, H=6, W=6, k=3, stride=1, padding=0, dilation=1),
    dict(B=2, C_in=3, C_out=4, H=8, W=7, k=3, stride=1, padding=1, dilation=1),
    dict(B=1, C_in=2, C_out=5, H=9, W=9, k=5, stride=2, padding=2, dilation=1),
    dict(B=2, C_in=3, C_out=2, H=10, W=8, k=3, stride=1, padding=0, dilation=2),
    dict(B=1, C_in=4, C_out=3, H=11, W=12, k=2, stride=3, padding=1, dilation=1),
]


def random_problem(s, seed=0):
    """Random input, weights and biases for one row of SETTINGS."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(s["B"], s["C_in"], s["H"], s["W"], generator=g)
    weight = torch.randn(s["C_out"], s["C_in"], s["k"], s["k"], generator=g)
    bias = torch.randn(s["C_out"], generator=g)
    return X, weight, bias


rows = []
for s in SETTINGS:
    X_s, W_s, b_s = random_problem(s)
    options = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"])
    expected = F.conv2d(X_s, W_s, b_s, **options)
    got = conv2d_loop(X_s, W_s, b_s, **options)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-4)
    rows.append({**s, "output shape": tuple(got.shape),
                 "max |difference|": float((got - expected).abs().max())})
pd.DataFrame(rows)

# %% [markdown]
# The loop version agrees with `F.conv2d` up to float32 rounding in every setting (the
# last column). It is also the clearest statement of the cost: every output number is one
# multiply-add per weight of its kernel, $C_{in} k_h k_w$ of them.
#
# ## 3. im2col: convolution as one matrix product
#
# Python loops are slow, and even compiled loops over tiny windows waste the machine.
# Chellapilla, Puri and Simard (2006) rewrote convolution as a single matrix product, the
# operation every numerical library makes fast. The trick is called **im2col** (image to
# columns): copy every receptive field into a column of a matrix. With $L$ output
# positions, the columns form a $(C_{in} k_h k_w) \times L$ matrix; the kernels, each
# flattened into a row, form a $C_{out} \times (C_{in} k_h k_w)$ matrix; and
#
# $$Z = K_{\text{flat}} \cdot X_{\text{im2col}}$$
#
# is the whole layer: one matrix product, then reshape the $C_{out} \times L$ result into
# feature maps. Our `im2col` loops over the kernel's $k_h k_w$ offsets instead of the
# output positions: for offset $(u, v)$, one slice of the input holds that entry of
# *every* window at once.

# %%
def im2col(X, kh, kw, padding=0):
    """Every kh x kw window of X (B, C, H, W) as a column: (B, C*kh*kw, L), stride 1."""
    X = F.pad(X, (padding, padding, padding, padding))
    B, C, H, W = X.shape
    H_out, W_out = H - kh + 1, W - kw + 1
    cols = torch.empty(B, C, kh, kw, H_out, W_out, dtype=X.dtype)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, u, v] = X[:, :, u:u + H_out, v:v + W_out]  # entry (u, v) of all windows
    return cols.reshape(B, C * kh * kw, H_out * W_out)


def conv2d_im2col(X, weight, bias=None, padding=0):
    """A stride-1 convolution as one matrix product: (C_out, C_in*kh*kw) @ (B, C_in*kh*kw, L)."""
    B, C_in, H, W = X.shape
    C_out, _, kh, kw = weight.shape
    cols = im2col(X, kh, kw, padding)
    Z = weight.reshape(C_out, -1) @ cols  # broadcasts over the batch: (B, C_out, L)
    if bias is not None:
        Z = Z + bias.view(1, C_out, 1)
    return Z.reshape(B, C_out, H + 2 * padding - kh + 1, W + 2 * padding - kw + 1)


# %% [markdown]
# PyTorch has the same unfolding built in as `F.unfold`, with the same order of rows
# (channel, then kernel row, then kernel column). We compare both the columns and the
# final result with `F.conv2d`, on the stride-1 settings of our table:

# %%
for s in SETTINGS:
    if s["stride"] != 1 or s["dilation"] != 1:
        continue
    X_s, W_s, b_s = random_problem(s, seed=1)
    cols = im2col(X_s, s["k"], s["k"], s["padding"])
    assert torch.equal(cols, F.unfold(X_s, s["k"], padding=s["padding"]))
    expected = F.conv2d(X_s, W_s, b_s, padding=s["padding"])
    assert torch.allclose(conv2d_im2col(X_s, W_s, b_s, s["padding"]), expected, atol=1e-4)
    assert torch.allclose(conv2d_loop(X_s, W_s, b_s, padding=s["padding"]), expected, atol=1e-4)
    print(f"C_in={s['C_in']} k={s['k']} padding={s['padding']}: kernels "
          f"{tuple(W_s.reshape(s['C_out'], -1).shape)} @ columns {tuple(cols.shape[1:])} "
          f"-> {tuple(expected.shape)}   im2col = F.unfold, result = F.conv2d")

# %% [markdown]
# The price of im2col is memory: every input pixel is copied into up to $k_h k_w$
# columns. The cell below measures the blow-up for a 3x3 layer on our photograph.

# %%
photo_batch = camera[None, None]
cols = im2col(photo_batch, 3, 3, padding=1)
print(f"input {photo_batch.numel():,} numbers, im2col matrix {cols.numel():,} numbers: "
      f"{cols.numel() / photo_batch.numel():.1f} times larger")

# %% [markdown]
# ## 4. The output size
#
# How large is the output? Along one axis, the padded input has $W + 2p$ pixels, and a
# dilated kernel spans $d(k - 1) + 1$ of them. The first window starts at 0 and each step
# moves it by $s$, so the number of positions is
#
# $$W_{out} = \left\lfloor \frac{W + 2p - d(k - 1) - 1}{s} \right\rfloor + 1 .$$
#
# Without dilation ($d = 1$) this is the familiar $\lfloor (W + 2p - k)/s \rfloor + 1$.
# The floor means that a window which would stick out of the padded input is simply not
# computed: the last rows and columns may be ignored. `cnnbook.conv.conv_output_size`
# implements the formula (and refuses settings with no output at all). We check it against
# the shape `F.conv2d` really produces on every combination of a grid:

# %%
checked = 0
for n, k, s, p, d in itertools.product(range(1, 11), range(1, 6), range(1, 4), range(3), range(1, 3)):
    if d * (k - 1) + 1 > n + 2 * p:  # the kernel does not fit: no output, PyTorch refuses too
        continue
    real = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
    assert conv_output_size(n, k, s, p, d) == real.shape[-1], (n, k, s, p, d)
    checked += 1
print(f"the formula matches F.conv2d on all {checked} settings of the grid")

# %% [markdown]
# **"Same" padding.** With stride 1 the output loses $d(k - 1)$ pixels, so padding
# $p = d(k - 1)/2$ on each side keeps the size. For odd $k$ that is a whole number
# ($p = 1$ for 3x3, $p = 2$ for 5x5); this is one reason kernels are almost always odd.
# `nn.Conv2d(..., padding="same")` does it for you (and pads one side more for even kernels).

# %%
for k, d in [(1, 1), (3, 1), (5, 1), (7, 1), (3, 2), (3, 3)]:
    p = same_padding(k, d)
    out = F.conv2d(torch.zeros(1, 1, 13, 13), torch.zeros(1, 1, k, k), padding=p, dilation=d).shape[-1]
    assert out == 13
    print(f"k={k} d={d}: padding {p} keeps 13 -> {out}")

# %% [markdown]
# Dumoulin and Visin (2016) drew these settings as pictures that have become the standard
# way to explain them. `draw_conv_arithmetic` draws one panel per output position: the
# input in light blue with its padding dashed, the pixels the kernel's weights touch in
# dark blue, the window's extent in red, and, to the right, the output grid with the
# current position in dark green. Here a 3x3 kernel with stride 2 and padding 1 on a 5x5
# input; the title repeats the formula:

# %%
fig = draw_conv_arithmetic(ConvGeometry(size=5, kernel_size=3, stride=2, padding=1))

# %% [markdown]
# With a 6x6 input and no padding, the same kernel and stride leave the last row and
# column unread: the floor at work. `ConvGeometry.unused` counts them.

# %%
g = ConvGeometry(size=6, kernel_size=3, stride=2, padding=0)
print(f"output {g.out_size}x{g.out_size}; padded rows no window reads: {g.unused}")
fig = draw_conv_arithmetic(g, positions=[(0, 0), (1, 1)])

# %% [markdown]
# Now try it yourself. Move the sliders: the title shows the formula with your numbers,
# and settings where the kernel no longer fits produce a message instead of a picture.
# Things to try: dilation 2 with kernel 3 (a 5-pixel span with 9 weights); stride 3 with
# kernel 2 (gaps: some pixels are never read); padding larger than the kernel (windows
# made only of zeros).

# %%
from cnnbook.widgets.conv_arithmetic import ConvArithmeticExplorer

ConvArithmeticExplorer(size=7, kernel_size=3, stride=1, padding=0, dilation=2)

# %% [markdown]
# ## 5. Stride, padding modes and dilation on a photograph
#
# **Stride.** A stride of 2 computes every second window in each direction, so the
# output has about a quarter of the pixels: the usual way to shrink a feature map
# inside a network (the alternative, pooling, is [chapter 03](03_pooling_activations.ipynb)).

# %%
blur = preset_kernel("box blur 3x3")
for stride in (1, 2, 3):
    out = apply_kernel(camera, blur, stride=stride, padding=1)
    assert out.shape[-1] == conv_output_size(camera.shape[-1], 3, stride, 1)
    print(f"stride {stride}: {tuple(camera.shape)} -> {tuple(out.shape)}")

# %% [markdown]
# **Padding modes.** Zeros are not the only way to invent pixels beyond the border.
# `nn.Conv2d` has four `padding_mode`s: `zeros` (a black frame), `reflect` (mirror the
# image without repeating the edge pixel), `replicate` (repeat the edge pixel outwards)
# and `circular` (wrap around: the left border continues with the right edge, as if the
# image were on a torus). Here is the bottom-left corner of the astronaut photograph,
# padded generously so you can see what each mode invents:

# %%
astronaut = load_photo("astronaut", size=cfg.photo_size)
pad = cfg.photo_size // 8
padded = {mode: pad_image(astronaut, pad, mode)[-3 * pad:, :3 * pad]
          for mode in ("zeros", "reflect", "replicate", "circular")}
fig = viz.show_images(list(padded.values()), titles=list(padded), ncols=4, scale=2.4,
                      normalize=False)

# %% [markdown]
# The mode matters wherever the kernel overlaps the border. With zero padding, the
# photograph suddenly meets a black frame, and an edge detector sees an edge there. The
# cell below applies the horizontal-edge kernel with each mode and compares the mean
# absolute response on the top row (where the window reaches into the padding) with the
# mean over the interior:

# %%
edge = preset_kernel("horizontal edge")
rows = []
responses = {}
for mode in ("zeros", "reflect", "replicate", "circular"):
    r = apply_kernel(camera, edge, padding=1, padding_mode=mode)
    responses[mode] = r
    rows.append({"padding mode": mode, "top row": float(r[0].abs().mean()),
                 "interior": float(r[1:-1, 1:-1].abs().mean())})
border = pd.DataFrame(rows).set_index("padding mode")
border["top row / interior"] = border["top row"] / border["interior"]
border.round(3)

# %%
fig = viz.show_images([r[: 3 * pad, : 3 * pad] for r in responses.values()],
                      titles=list(responses), ncols=4, scale=2.4)

# %% [markdown]
# Read the last column of the table: with `zeros` the top row answers far more strongly
# than the interior, a false edge drawn by the padding (the bright sky of the photograph
# meets the black frame). `circular` also answers strongly, for a different reason: it
# glues the dark bottom of the photograph on top of the sky. `replicate` and `reflect`
# continue the image plausibly; with `reflect` the top row is even exactly zero, because
# the mirrored row above the image equals the row below the border pixel, and this kernel
# subtracts one from the other. Networks mostly use zeros anyway: the next layers learn
# to live with the frame, and zeros are cheap.
#
# **Dilation.** A dilated kernel (also called *atrous*, "with holes") spreads its taps
# apart: a 3x3 kernel with dilation 2 covers a 5x5 area with the same 9 weights. Yu and
# Koltun (2016) used stacks of dilated convolutions to see large contexts without losing
# resolution. One way to *see* which pixels an output depends on is to ask autograd: the
# gradient of one output pixel with respect to the input is nonzero exactly where the
# kernel reads.

# %%
def input_footprint(net, in_channels=1, size=9):
    """Where the central output pixel of `net` reads its input: 1 where the gradient is nonzero."""
    x = torch.zeros(1, in_channels, size, size, requires_grad=True)
    y = net(x)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    return (x.grad[0, 0] != 0).int()


dense = nn.Conv2d(1, 1, 3, padding=1)
dilated = nn.Conv2d(1, 1, 3, padding=2, dilation=2)
for conv in (dense, dilated):
    nn.init.constant_(conv.weight, 1.0)  # no accidental zero weight hides a tap
    foot = input_footprint(conv)
    rows_used = torch.nonzero(foot.any(1)).flatten()
    span = int(rows_used.max() - rows_used.min() + 1)
    print(f"dilation {conv.dilation[0]}: {conv.weight.numel()} weights, reads "
          f"{int(foot.sum())} pixels spread over {span}x{span}\n{foot.numpy()}")

# %% [markdown]
# Same number of parameters, a larger view with holes in it.
#
# ## 6. Channels, groups and depthwise convolution
#
# A layer with `in_channels` inputs and `out_channels` outputs holds `out_channels`
# kernels of depth `in_channels`. Networks typically double the channels as they halve
# the resolution (16 -> 32 -> 64 ...). A special case worth knowing: a **1x1
# convolution** has no spatial extent at all; it is a fully connected layer applied to
# the channel vector of each pixel separately. The cell checks that with `einsum`.

# %%
x = torch.randn(2, 6, 5, 5)
conv1x1 = nn.Conv2d(6, 4, kernel_size=1)
per_pixel = torch.einsum("oc,bchw->bohw", conv1x1.weight[:, :, 0, 0], x) + conv1x1.bias.view(1, 4, 1, 1)
assert torch.allclose(conv1x1(x), per_pixel, atol=1e-5)
print("weight", tuple(conv1x1.weight.shape), "bias", tuple(conv1x1.bias.shape),
      ": a 1x1 convolution is a linear layer on each pixel's channels")

# %% [markdown]
# **Groups.** `groups=g` splits the input channels into $g$ groups and gives each group its
# own set of `out_channels / g` kernels, which see only their group. The weight shrinks to
# `(out_channels, in_channels / g, k, k)`. AlexNet (2012) used two groups to split the
# model over two GPUs. With `groups = in_channels = out_channels` every channel is filtered
# by its own single kernel: a **depthwise convolution**, the first half of MobileNet's
# depthwise separable convolution (Howard et al., 2017; the second half is a 1x1
# convolution that mixes the channels).

# %%
rows = []
for groups in (1, 2, 3, 6):
    conv = nn.Conv2d(6, 6, 3, groups=groups, bias=False)
    rows.append({"groups": groups, "weight shape": tuple(conv.weight.shape),
                 "parameters": count_params(conv)})
pd.DataFrame(rows)

# %% [markdown]
# Depthwise means "each channel on its own": applying the layer equals filtering each
# channel separately with its kernel and stacking the results.

# %%
depthwise = nn.Conv2d(6, 6, 3, groups=6, padding=1, bias=False)
separately = torch.cat([F.conv2d(x[:, c:c + 1], depthwise.weight[c:c + 1], padding=1)
                        for c in range(6)], dim=1)
assert torch.allclose(depthwise(x), separately, atol=1e-5)
print("depthwise convolution = one kernel per channel, applied separately: checked")

# %% [markdown]
# ## 7. Why so few parameters?
#
# Take a 224x224 RGB image. A first convolutional layer with 32 kernels of size 3x3
# needs $3 \cdot 3 \cdot 3 \cdot 32$ weights, whatever the size of the image. A fully
# connected layer with 512 units needs one weight per input number per unit,
# $224 \cdot 224 \cdot 3 \cdot 512$. The cell computes both by hand and asks PyTorch to
# count (the big layer is created on the `meta` device, which knows shapes but allocates
# no memory).

# %%
conv_weights = 3 * 3 * 3 * 32
fc_weights = 224 * 224 * 3 * 512
first_conv = nn.Conv2d(3, 32, kernel_size=3)
big_fc = nn.Linear(224 * 224 * 3, 512, device="meta")
assert count_params(first_conv) == conv_weights + 32     # + one bias per output channel
assert count_params(big_fc) == fc_weights + 512
print(f"3x3 conv, 32 channels:     {conv_weights:>12,} weights (+{32} biases)")
print(f"fully connected, 512 units: {fc_weights:>12,} weights (+{512} biases), "
      f"about {fc_weights / 1e6:.0f} million")
print(f"ratio: {fc_weights / conv_weights:,.0f} times more weights")

# %% [markdown]
# The convolution is not free, though: its weights are *reused* at every position, so
# the number of multiply-adds grows with the image. `count_macs` measures it with
# PyTorch's FLOP counter:

# %%
conv_macs = count_macs(first_conv, (1, 3, 224, 224))
assert conv_macs == conv_weights * 222 * 222  # each weight once per output position
print(f"multiply-adds of the conv layer: {conv_macs:,} ({conv_weights} weights x 222 x 222 positions)")

# %% [markdown]
# **Two 3x3 layers or one 5x5?** Stacking two 3x3 convolutions gives each output pixel a
# 5x5 view of the input, like one 5x5 convolution, but with $2 \cdot 9 C^2$ instead of
# $25 C^2$ weights (for $C$ channels in and out), and with a nonlinearity in between.
# Three 3x3 layers see 7x7 for $27 C^2$ instead of $49 C^2$. This is the argument of VGG
# (Simonyan and Zisserman, 2014), and the reason 3x3 is the default kernel size. The
# cell counts the weights and measures both views with the gradient footprint from
# section 5:

# %%
C = 64
rows = []
for name, layers in {"one 5x5": [nn.Conv2d(C, C, 5, padding=2)],
                     "two 3x3": [nn.Conv2d(C, C, 3, padding=1) for _ in range(2)],
                     "one 7x7": [nn.Conv2d(C, C, 7, padding=3)],
                     "three 3x3": [nn.Conv2d(C, C, 3, padding=1) for _ in range(3)]}.items():
    stack = nn.Sequential(*layers)
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    foot = input_footprint(stack, in_channels=C, size=11)
    view = int(foot.any(1).sum())
    rows.append({"layers": name, "weights": sum(c.weight.numel() for c in layers),
                 "view (pixels)": f"{view}x{view}"})
stacks = pd.DataFrame(rows).set_index("layers")
print(f"two 3x3 / one 5x5: {stacks.loc['two 3x3', 'weights'] / stacks.loc['one 5x5', 'weights']:.2f}, "
      f"three 3x3 / one 7x7: {stacks.loc['three 3x3', 'weights'] / stacks.loc['one 7x7', 'weights']:.2f}")
stacks

# %% [markdown]
# ## 8. Hand-made kernels on photographs
#
# Before networks learned their kernels, image processing designed them by hand, and the
# classics are still the best way to build intuition. `cnnbook.conv` keeps a table of
# them. Note the sums: kernels that respond to *change* (edges) sum to 0, so a flat
# region gives 0; kernels that keep the brightness (blur, sharpen) sum to 1.

# %%
kernel_presets()

# %% [markdown]
# `apply_kernel` runs one of them over a photograph; it is a thin layer over `F.conv2d`
# with one kernel per colour channel (`groups` equal to the channels), and accepts the
# same stride, padding, padding mode and dilation as `nn.Conv2d`:

# %%
show_source(apply_kernel);

# %% [markdown]
# Start with a synthetic image where the answer is known: a bright disc on black. Each
# edge kernel lights up the part of the rim that runs across its direction; the signs
# tell dark-to-bright from bright-to-dark (in these pictures mid-grey is about zero, white
# positive, black negative).

# %%
yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
disc = (((yy - 23.5) ** 2 + (xx - 23.5) ** 2) < 15 ** 2).float()
names = ["horizontal edge", "vertical edge", "diagonal edge", "anti-diagonal edge", "laplacian"]
fig = viz.show_images([disc] + [apply_kernel(disc, preset_kernel(n), padding=1) for n in names],
                      titles=["disc"] + names, ncols=6, scale=1.8)

# %% [markdown]
# Now the photograph. Blur averages the noise away, sharpen adds the negated Laplacian to
# exaggerate edges, the edge kernels find the outlines, and emboss adds a diagonal
# derivative to the image, which reads as a relief.

# %%
names = ["horizontal edge", "vertical edge", "diagonal edge", "box blur 5x5", "sharpen",
         "laplacian", "sobel x", "emboss"]
maps = []
for n in names:
    out = apply_kernel(camera, preset_kernel(n), padding="same", padding_mode="replicate")
    keeps_brightness = abs(float(preset_kernel(n).sum()) - 1) < 1e-6
    maps.append(out.clamp(0, 1) if keeps_brightness else out)  # photos stay photos
fig = viz.show_images([camera] + maps, titles=["photo"] + names, ncols=5, scale=2.2)

# %% [markdown]
# On a colour photograph, `apply_kernel` filters each channel with the same kernel (a
# depthwise convolution), so the sharpened image stays in colour:

# %%
coffee = load_photo("coffee", size=cfg.photo_size, gray=False)
sharp = apply_kernel(coffee, preset_kernel("sharpen"), padding="same", padding_mode="replicate")
fig = viz.show_images([coffee, sharp.clamp(0, 1)], titles=["coffee", "sharpened"], ncols=2,
                      scale=3.2, normalize=False)

# %% [markdown]
# **The kernel editor.** Pick a preset or type your own kernel (one row per line; entries
# may be fractions such as `1/9`; click outside the box to apply). Choose a photograph and
# how the border is padded. Feature maps of kernels that sum to 0 are drawn red
# (positive) and blue (negative) around white zero; the others in grey like a photo.
# Things to try: flip the horizontal edge kernel upside down (the colours swap); make a
# 5x5 blur; write a kernel that finds only the *left* edges of the coins; make a row of
# text disappear into a blur; type something invalid and read the message.

# %%
from cnnbook.widgets.kernel_editor import KernelEditor

KernelEditor(preset="horizontal edge", photo="camera", size=min(cfg.photo_size, 256))

# %% [markdown]
# ### From designed to learned kernels
#
# A CNN does not take its kernels from a table: it learns them from examples. The
# smallest demonstration, from *Dive into Deep Learning* (section 7.2): an image that is
# white with a black vertical band, and as the target the output of the edge kernel
# $[1, -1]$, which marks the band's left border with $+1$ and its right border with $-1$.
# Starting from random weights, can gradient descent find the kernel from the input and
# the target alone? The loop below is the whole of training: predict with the current
# kernel, measure the squared error, let autograd compute the gradient, step against it.

# %%
X_band = torch.ones(6, 8)
X_band[:, 2:6] = 0                          # black band in columns 2-5
K_edge = torch.tensor([[1.0, -1.0]])
Y_band = corr2d(X_band, K_edge)             # the target: +1 / -1 at the band's borders
print(Y_band)

torch.manual_seed(0)
learner = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)   # random initial kernel
print("initial kernel:", learner.weight.data.flatten())
learn_steps, learn_lr = 30, 0.03
for step in range(1, learn_steps + 1):
    loss = ((learner(X_band[None, None]) - Y_band[None, None]) ** 2).sum()
    learner.zero_grad()
    loss.backward()
    with torch.no_grad():
        learner.weight -= learn_lr * learner.weight.grad
    if step % 5 == 0:
        print(f"step {step:2d}: loss {loss.item():.5f}, kernel {learner.weight.data.flatten().tolist()}")
learned = learner.weight.data.reshape(1, 2)
print("learned kernel:", learned)
assert torch.allclose(learned, K_edge, atol=0.01), learned

# %% [markdown]
# The printout shows the loss falling step by step, and the kernel the loop ends with is
# within 0.01 of $[1, -1]$ (the cell asserts it): the edge detector was recovered from
# examples of what it does. A network does the same with many kernels at once, and with
# a target that is not the output of a known kernel but the right class of each image;
# the kernels it ends up with are whatever makes that class easiest to read, which in the
# first layer often turns out to be edge and blob detectors much like the ones above
# ([chapter 20](20_seeing_inside.ipynb) measures how Gabor-like they are).
#
# ## 9. How fast is each implementation?
#
# All three implementations compute the same numbers. Here they race on the same
# problem (sizes from the parameters cell), each timed as the best of several runs on the
# CPU with **one thread**: our loops cannot use more, so this compares the algorithms
# rather than the thread counts, and single-threaded timings stay meaningful on a machine
# that other programs share (multi-threaded ones can be slowed down enormously when a
# thread has to wait for a busy core). Treat the numbers as rough; the ratios are what
# matter.

# %%
def best_ms(fn, repeats):
    """Fastest of `repeats` runs of fn(), in milliseconds (the least disturbed run)."""
    repeats = cnnbook.config.capped(repeats)   # make rehearse: a couple
    return 1000 * min(timeit.repeat(fn, number=1, repeat=repeats))


threads = torch.get_num_threads()
torch.set_num_threads(1)  # restored after the FFT comparison below
c_in, c_out = cfg.time_channels
X_t = torch.randn(cfg.time_batch, c_in, cfg.time_size, cfg.time_size)
W_t, b_t = torch.randn(c_out, c_in, 3, 3), torch.randn(c_out)
reference = F.conv2d(X_t, W_t, b_t, padding=1)
implementations = {
    "loops (conv2d_loop)": lambda: conv2d_loop(X_t, W_t, b_t, padding=1),
    "im2col + matmul (conv2d_im2col)": lambda: conv2d_im2col(X_t, W_t, b_t, padding=1),
    "F.conv2d": lambda: F.conv2d(X_t, W_t, b_t, padding=1),
}
rows = []
with torch.no_grad():
    for name, fn in implementations.items():
        assert torch.allclose(fn(), reference, atol=1e-4)  # same answer first
        repeats = cfg.loop_repeats if name.startswith("loops") else cfg.repeats
        rows.append({"implementation": name, "ms": best_ms(fn, repeats)})
timing = pd.DataFrame(rows).set_index("implementation")
timing["times slower than F.conv2d"] = timing["ms"] / timing.loc["F.conv2d", "ms"]
print(f"problem: input {tuple(X_t.shape)}, weight {tuple(W_t.shape)}, padding 1; "
      f"{reference[0, 0].numel() * c_out * cfg.time_batch:,} outputs")
print(f"im2col is {timing['ms'].iloc[0] / timing['ms'].iloc[1]:.0f} times faster than the loops")
timing.round(3)

# %% [markdown]
# The loop pays Python's overhead for every single output number; im2col pays it a
# handful of times and hands the arithmetic to an optimised matrix product. `F.conv2d`
# runs compiled code all the way: depending on the shapes, PyTorch picks the same
# im2col-plus-matrix-product idea in C++, or (on x86 CPUs) oneDNN's direct convolution
# kernels, which skip the big im2col matrix and use vector instructions. On a GPU, cuDNN
# spreads the output positions over thousands of threads, since every output number can
# be computed independently of the others. Run the chapter in
# the `cpu` or `full` profile to see how the ratios change with the size of the problem.
#
# **Winograd and FFT.** Two algorithms reduce the arithmetic itself. Winograd's minimal
# filtering (1980), brought to CNNs by Lavin and Gray (2016), computes several outputs of a
# small kernel at once with fewer multiplications: $F(2, 3)$ produces 2 outputs of a
# 3-tap filter with 4 multiplications instead of 6, and its 2-D version $F(2{\times}2,
# 3{\times}3)$ uses 16 instead of 36. The kernel's transform is computed once and reused
# at every position. Here is $F(2, 3)$ checked against the direct sum:

# %%
d_in = torch.randn(4)    # 4 input samples
g_k = torch.randn(3)     # a 3-tap kernel
kernel_t = torch.stack([g_k[0], (g_k[0] + g_k[1] + g_k[2]) / 2, (g_k[0] - g_k[1] + g_k[2]) / 2, g_k[2]])  # once per kernel
m = torch.stack([d_in[0] - d_in[2], d_in[1] + d_in[2], d_in[2] - d_in[1], d_in[1] - d_in[3]]) * kernel_t  # 4 multiplications
winograd = torch.stack([m[0] + m[1] + m[2], m[1] - m[2] - m[3]])
direct = torch.stack([(d_in[0:3] * g_k).sum(), (d_in[1:4] * g_k).sum()])  # 6 multiplications
assert torch.allclose(winograd, direct, atol=1e-5)
print("Winograd F(2,3):", winograd.tolist(), "= direct:", direct.tolist())

# %% [markdown]
# The **FFT** route uses the convolution theorem: convolution in space is multiplication
# in frequency. Transform image and kernel, multiply, transform back: $O(N \log N)$ work
# for an $N$-pixel image, whatever the kernel size. Mathieu, Henaff and LeCun (2013)
# trained CNNs this way on GPUs; it pays off for large kernels, while small ones stay
# faster directly or with Winograd. Two details: the theorem is about *true* convolution,
# so we flip the kernel to get cross-correlation; and the FFT's convolution is circular
# (it wraps around), which only affects the border positions we throw away.

# %%
def conv2d_fft(x, k):
    """Cross-correlation of an image x (H, W) with k (kh, kw), 'valid' part, via the FFT."""
    H, W = x.shape
    kh, kw = k.shape
    spectrum = torch.fft.rfft2(x) * torch.fft.rfft2(torch.flip(k, (0, 1)), s=(H, W))
    circular = torch.fft.irfft2(spectrum, s=(H, W))  # circular convolution, size H x W
    return circular[kh - 1:, kw - 1:]  # drop the wrapped-around border


photo_fft = load_photo("camera", size=cfg.fft_size)
rows = []
for k in (3, 31):
    kernel = torch.randn(k, k)
    direct_fn = lambda: F.conv2d(photo_fft[None, None], kernel[None, None])[0, 0]
    fft_fn = lambda: conv2d_fft(photo_fft, kernel)
    assert torch.allclose(fft_fn(), direct_fn(), atol=1e-3 * k)
    rows.append({"kernel": f"{k}x{k}", "F.conv2d ms": best_ms(direct_fn, cfg.repeats),
                 "FFT ms": best_ms(fft_fn, cfg.repeats)})
fft_table = pd.DataFrame(rows).set_index("kernel")
fft_table["FFT faster"] = fft_table["FFT ms"] < fft_table["F.conv2d ms"]
torch.set_num_threads(threads)
print(f"image {tuple(photo_fft.shape)}: FFT result = F.conv2d result for both kernels")
fft_table.round(3)

# %% [markdown]
# The table shows, for this machine and image size, whether the FFT wins for the small
# and for the large kernel: its cost barely depends on the kernel, the direct method's
# grows with $k^2$.
#
# ## Summary
#
# - Convolution flips the kernel; deep learning's "convolution" is cross-correlation and
#   does not. `torch.flip(K, (0, 1))` converts one into the other.
# - A convolutional layer computes $Z(i,j,c) = \sum_{u,v,d} K(u,v,d,c) X(i+u, j+v, d) + b_c$:
#   weights `(C_out, C_in, kH, kW)`, one bias per output channel.
# - Loops, im2col with one matrix product, and `F.conv2d` give the same numbers; the
#   speed differences are large (table in section 9). Winograd and the FFT reduce the
#   arithmetic further for small and large kernels respectively.
# - Output size: $\lfloor (W + 2p - d(k-1) - 1)/s \rfloor + 1$; padding $(k-1)/2$ keeps
#   the size for odd $k$.
# - Stride downsamples; padding modes decide what the border looks like; dilation widens
#   the view without parameters; groups and depthwise convolution cut the cost.
# - Convolution needs orders of magnitude fewer weights than a fully connected layer, and
#   stacked 3x3 kernels see as far as larger ones for fewer weights.
#
# ## Exercises
#
# Each exercise has a cell for your answer, followed by a test cell that checks it: run
# the test after writing your answer.
#
# **Exercise 1 (full convolution).** scipy's `convolve2d(X, K, mode="full")` computes the
# true convolution at every position where kernel and image overlap at all, so the output
# is $(H + k_h - 1) \times (W + k_w - 1)$. Implement it with a single call of `F.conv2d`
# (think about the flip and the padding). [Chapter 04](04_losses_backprop.ipynb) will meet this operation again: it is
# how the gradient flows back to the input of a convolutional layer.

# %% nbgrader={"grade": false, "grade_id": "ex-02-full-convolution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def convolve_full(X, K):
    """True 2-D convolution of X (H, W) with K (kh, kw), output (H + kh - 1, W + kw - 1)."""
    ### BEGIN SOLUTION
    kh, kw = K.shape
    flipped = torch.flip(K, (0, 1))
    return F.conv2d(X[None, None], flipped[None, None], padding=(kh - 1, kw - 1))[0, 0]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex-02-full-convolution-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from scipy.signal import convolve2d

torch.manual_seed(1)
for shape, kshape in [((5, 6), (3, 3)), ((7, 4), (2, 5)), ((4, 4), (1, 1)), ((3, 3), (3, 3))]:
    X_e, K_e = torch.randn(*shape), torch.randn(*kshape)
    expected = torch.from_numpy(convolve2d(X_e.numpy(), K_e.numpy(), mode="full")).float()
    got = convolve_full(X_e, K_e)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert torch.allclose(got, expected, atol=1e-4)
print("convolve_full matches scipy")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, forbidden, generator
from scipy.signal import convolve2d as _c2


def _ref(X, K):
    return torch.from_numpy(_c2(X.double().numpy(), K.double().numpy(), mode="full")).to(X.dtype)


_g = generator(201)
_cases = [(torch.randn(h, w, generator=_g), torch.randn(kh, kw, generator=_g))
          for h, w, kh, kw in [(6, 9, 4, 2), (3, 8, 3, 5), (10, 5, 1, 4), (2, 2, 2, 2)]]
agrees(convolve_full, _ref, _cases, atol=1e-4)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (receptive field).** The *receptive field* of a stack of convolutions is
# the side of the input square that one output pixel depends on. Write
# `receptive_field(layers)` for a list of `(kernel_size, stride, dilation)` tuples, first
# layer first. Hint: each layer adds $d(k - 1)$ times the product of the strides of the
# layers *before* it. The test checks that $n$ stacked 3x3 layers see $2n + 1$ pixels and
# compares your formula with a gradient measurement on random stacks.

# %% nbgrader={"grade": false, "grade_id": "ex-02-receptive-field", "locked": false, "schema_version": 3, "solution": true, "task": false}
def receptive_field(layers):
    """Side (in input pixels) of what one output pixel sees through `layers` = [(k, stride, dilation), ...]."""
    ### BEGIN SOLUTION
    size, jump = 1, 1
    for k, stride, dilation in layers:
        size += dilation * (k - 1) * jump
        jump *= stride
    return size
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex-02-receptive-field-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
def measured_receptive_field(layers, size=96):
    """Extent of the input gradient of output pixel (0, 0) through a stack of all-ones convolutions."""
    stack = nn.Sequential(*[nn.Conv2d(1, 1, k, stride=s, dilation=d, bias=False) for k, s, d in layers])
    for conv in stack:
        nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    stack(x)[0, 0, 0, 0].backward()
    rows_read = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    return int(rows_read.max()) + 1


for n in range(1, 7):
    assert receptive_field([(3, 1, 1)] * n) == 2 * n + 1
assert receptive_field([]) == 1
cases = [[(5, 1, 1)], [(3, 2, 1)] * 3, [(7, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2)],
         [(3, 1, 2), (3, 1, 4), (3, 1, 8)], [(2, 2, 1), (3, 3, 1), (1, 1, 1)]]
for layers in cases:
    assert receptive_field(layers) == measured_receptive_field(layers), layers
print("receptive fields:", [receptive_field(c) for c in cases])
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(layers):
    _size, _jump = 1, 1
    for _k, _s, _d in layers:
        _size += _d * (_k - 1) * _jump
        _jump *= _s
    return _size


_g = generator(202)
_cases = [([tuple(int(v) for v in torch.randint(1, 5, (3,), generator=_g)) for _ in range(n)],)
          for n in (1, 2, 3, 4, 5, 7)]
agrees(receptive_field, _ref, _cases)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (cost of a layer).** Write `conv_cost` returning the number of parameters
# and of multiply-adds of `nn.Conv2d(c_in, c_out, k, stride, padding, groups=groups,
# bias=bias)` applied to one `(c_in, h, w)` input (count one multiply-add per weight per
# output position; the bias additions are not counted). Then use it: how many times fewer
# multiply-adds does a depthwise 3x3 layer on 64 channels need than a full 3x3 layer from
# 64 to 64 channels?

# %% nbgrader={"grade": false, "grade_id": "ex-02-conv-cost", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv_cost(c_in, c_out, k, h, w, stride=1, padding=0, groups=1, bias=True):
    """(parameters, multiply-adds) of one square convolution layer on a (c_in, h, w) input."""
    ### BEGIN SOLUTION
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (w + 2 * padding - k) // stride + 1
    weights = c_out * (c_in // groups) * k * k
    return weights + (c_out if bias else 0), weights * h_out * w_out
    ### END SOLUTION


### BEGIN SOLUTION
depthwise_saving = conv_cost(64, 64, 3, 56, 56, padding=1)[1] / conv_cost(64, 64, 3, 56, 56, padding=1, groups=64)[1]
### END SOLUTION
print(f"a depthwise layer needs {depthwise_saving:.0f} times fewer multiply-adds")

# %% nbgrader={"grade": true, "grade_id": "ex-02-conv-cost-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_macs, count_params

for args in [dict(c_in=3, c_out=32, k=3, h=224, w=224), dict(c_in=16, c_out=8, k=5, h=30, w=28, stride=2, padding=2),
             dict(c_in=12, c_out=12, k=3, h=17, w=17, padding=1, groups=12, bias=False),
             dict(c_in=8, c_out=4, k=1, h=9, w=9, groups=2)]:
    layer = nn.Conv2d(args["c_in"], args["c_out"], args["k"], stride=args.get("stride", 1),
                      padding=args.get("padding", 0), groups=args.get("groups", 1), bias=args.get("bias", True))
    params, macs = conv_cost(**args)
    assert params == count_params(layer), (args, params)
    assert macs == count_macs(layer, (1, args["c_in"], args["h"], args["w"])), (args, macs)
assert abs(depthwise_saving - 64) < 1e-9
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator, same


def _ref(c_in, c_out, k, h, w, stride=1, padding=0, groups=1, bias=True):
    _layer = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, groups=groups, bias=bias)
    return count_params(_layer), count_macs(_layer, (1, c_in, h, w))


_g = generator(203)
_cases = []
for _ in range(4):
    _grp = int(torch.randint(1, 4, (1,), generator=_g))
    _ci, _co = _grp * int(torch.randint(1, 6, (1,), generator=_g)), _grp * int(torch.randint(1, 6, (1,), generator=_g))
    _k, _s, _p = (int(v) for v in torch.randint(1, 4, (3,), generator=_g))
    _cases.append(dict(c_in=_ci, c_out=_co, k=_k, h=int(torch.randint(8, 20, (1,), generator=_g)),
                       w=int(torch.randint(8, 20, (1,), generator=_g)), stride=_s, padding=_p - 1,
                       groups=_grp, bias=bool(_k % 2)))
agrees(conv_cost, _ref, _cases)
same(depthwise_saving, 64.0, atol=1e-9, what="depthwise_saving")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (im2col with stride and dilation).** Our `im2col` only handles stride 1
# and no dilation. Write `im2col_general` that also takes `stride` and `dilation` and
# returns exactly what `F.unfold` returns (you may not call `F.unfold` or `F.conv2d`).
# The test also uses your columns for a strided, dilated convolution as one matrix product.

# %% nbgrader={"grade": false, "grade_id": "ex-02-im2col-general", "locked": false, "schema_version": 3, "solution": true, "task": false}
def im2col_general(X, kernel_size, stride=1, padding=0, dilation=1):
    """Columns (B, C*k*k, L) of every k x k window of X (B, C, H, W), as F.unfold gives them."""
    ### BEGIN SOLUTION
    k = kernel_size
    X = F.pad(X, (padding, padding, padding, padding))
    B, C, H, W = X.shape
    H_out = (H - dilation * (k - 1) - 1) // stride + 1
    W_out = (W - dilation * (k - 1) - 1) // stride + 1
    cols = torch.empty(B, C, k, k, H_out, W_out, dtype=X.dtype)
    for u in range(k):
        for v in range(k):
            r, c = u * dilation, v * dilation
            cols[:, :, u, v] = X[:, :, r:r + stride * (H_out - 1) + 1:stride,
                                 c:c + stride * (W_out - 1) + 1:stride]
    return cols.reshape(B, C * k * k, H_out * W_out)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex-02-im2col-general-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(2)
for k, s, p, d in [(3, 1, 0, 1), (3, 2, 1, 1), (2, 3, 0, 1), (3, 1, 2, 2), (3, 2, 1, 3), (1, 2, 0, 1)]:
    X_e = torch.randn(2, 3, 11, 10)
    cols_e = im2col_general(X_e, k, stride=s, padding=p, dilation=d)
    assert torch.equal(cols_e, F.unfold(X_e, k, dilation=d, padding=p, stride=s)), (k, s, p, d)
    W_e = torch.randn(4, 3, k, k)
    Z_e = W_e.reshape(4, -1) @ cols_e
    expected = F.conv2d(X_e, W_e, stride=s, padding=p, dilation=d)
    assert torch.allclose(Z_e.reshape(expected.shape), expected, atol=1e-4)
print("im2col_general = F.unfold")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(X, kernel_size, stride=1, padding=0, dilation=1):
    return F.unfold(X, kernel_size, dilation=dilation, padding=padding, stride=stride)


_g = generator(204)
agrees(im2col_general, _ref,
       [(torch.randn(1, 2, 9, 13, generator=_g), 2, 2, 1, 2), (torch.randn(3, 1, 8, 8, generator=_g), 3, 3, 2, 1),
        (torch.randn(2, 4, 12, 7, generator=_g), 4, 1, 0, 2)],
       forbid=("torch.nn.functional.unfold", "torch._C._nn.im2col", "torch.nn.functional.conv2d", "torch.conv2d",
               "torch.nn.Module.__call__"), atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 5 (a kernel that finds a pattern).** The image below contains small plus
# signs, but also x shapes, filled squares and lines. Design a 3x3 `plus_kernel` whose
# response (cross-correlation with padding 1) is higher at the centre of every plus sign
# than anywhere else. A kernel that only rewards the plus's five pixels also fires on
# the squares: think about what negative weights should punish.

# %%
def stamp(image, pattern, row, col):
    """Draw a small 0/1 pattern into the image with its centre at (row, col)."""
    h, w = pattern.shape
    image[row - h // 2:row - h // 2 + h, col - w // 2:col - w // 2 + w] += pattern


plus = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)
cross = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.float32)
square = torch.ones(3, 3)
patterns = torch.zeros(24, 32)
plus_centres = [(3, 4), (12, 20), (19, 9), (5, 27)]
for r, c in plus_centres:
    stamp(patterns, plus, r, c)
for r, c in [(4, 14), (19, 27)]:
    stamp(patterns, cross, r, c)
for r, c in [(12, 4), (13, 12), (19, 18)]:
    stamp(patterns, square, r, c)
patterns[8, 22:29] = 1   # a horizontal line
patterns[14:21, 30] = 1  # a vertical line
fig = viz.show_images([patterns], titles=["find the plus signs"], scale=4)

# %% nbgrader={"grade": false, "grade_id": "ex-02-plus-kernel", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
plus_kernel = 2 * plus - 1  # +1 on the plus, -1 on the corners: squares and x shapes lose
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-02-plus-kernel-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert tuple(plus_kernel.shape) == (3, 3)
response = F.conv2d(patterns[None, None], plus_kernel.float()[None, None], padding=1)[0, 0]
at_plus = torch.stack([response[r, c] for r, c in plus_centres])
elsewhere = response.clone()
for r, c in plus_centres:
    elsewhere[r, c] = -math.inf
assert at_plus.min() > elsewhere.max(), (at_plus.min(), elsewhere.max())
print(f"weakest plus {float(at_plus.min()):.2f} > strongest other position {float(elsewhere.max()):.2f}")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()
assert type(plus_kernel) in (torch.Tensor, torch.nn.Parameter) and plus_kernel.shape == (3, 3)
# Any shifted copy of the figure: plus signs must still win at their centres.
_pat = torch.zeros(20, 20)
_centres = [(4, 5), (14, 14)]
for _r, _c in _centres:
    _pat[_r - 1:_r + 2, _c - 1:_c + 2] += plus
_pat[3:6, 12:15] += cross
_pat[12:15, 3:6] += square
_resp = F.conv2d(_pat[None, None], plus_kernel.detach().float()[None, None], padding=1)[0, 0]
_best = torch.stack([_resp[r, c] for r, c in _centres]).min()
for _r, _c in _centres:
    _resp[_r, _c] = -math.inf
assert float(_best) > float(_resp.max()), "the plus signs must give the strongest responses"
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - K. Fukushima (1980). Neocognitron: a self-organizing neural network model for a
#   mechanism of pattern recognition unaffected by shift in position. *Biological Cybernetics* 36.
# - S. Winograd (1980). *Arithmetic Complexity of Computations*. SIAM.
# - Y. LeCun, B. Boser, J. S. Denker et al. (1989). Backpropagation applied to handwritten
#   zip code recognition. *Neural Computation* 1(4).
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner (1998). Gradient-based learning applied to
#   document recognition. *Proceedings of the IEEE* 86(11).
# - K. Chellapilla, S. Puri, P. Simard (2006). High performance convolutional neural
#   networks for document processing. *10th International Workshop on Frontiers in
#   Handwriting Recognition* (the unfolding that became im2col).
# - A. Krizhevsky, I. Sutskever, G. Hinton (2012). ImageNet classification with deep
#   convolutional neural networks. *NeurIPS* (grouped convolution over two GPUs).
# - M. Mathieu, M. Henaff, Y. LeCun (2013). Fast training of convolutional networks
#   through FFTs. arXiv:1312.5851 (ICLR 2014).
# - K. Simonyan, A. Zisserman (2014). Very deep convolutional networks for large-scale
#   image recognition. arXiv:1409.1556 (stacked 3x3 kernels).
# - V. Dumoulin, F. Visin (2016). A guide to convolution arithmetic for deep learning.
#   arXiv:1603.07285.
# - A. Lavin, S. Gray (2016). Fast algorithms for convolutional neural networks. *CVPR*
#   (Winograd convolution).
# - F. Yu, V. Koltun (2016). Multi-scale context aggregation by dilated convolutions. *ICLR*.
# - I. Goodfellow, Y. Bengio, A. Courville (2016). *Deep Learning*, chapter 9. MIT Press.
# - A. G. Howard et al. (2017). MobileNets: efficient convolutional neural networks for
#   mobile vision applications. arXiv:1704.04861 (depthwise separable convolution).
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*,
#   chapter 7. Cambridge University Press (`corr2d`).
