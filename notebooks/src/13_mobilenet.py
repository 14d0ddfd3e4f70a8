# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 13 · MobileNet: convolutional networks for phones
#
# Every network so far in Part II was judged by one number, its accuracy, with cost as an
# afterthought. A phone turns that around: it has a battery, a few watts and a few
# milliseconds per camera frame, and a model must first fit that budget and then be as
# accurate as it can. MobileNet (Google, 2017-2019) is the family that made this the design
# goal. Its central trick, the *depthwise separable convolution*, does the work of a 3x3
# convolution for roughly a ninth of the price, and it now sits inside most efficient
# networks (EfficientNet, ConvNeXt and many more).
#
# **What you will learn**
#
# - the history: MobileNet V1 (Howard et al., 2017), V2 (Sandler et al., 2018) and V3
#   (Howard et al., 2019), and the ideas each one added;
# - the depthwise separable convolution built from `groups=`, and its saving measured in
#   parameters and multiply-adds against the formula $1/N + 1/k^2$;
# - V1's two knobs, the width multiplier $\alpha$ and the resolution multiplier $\rho$,
#   and how cost scales with them (a table and a plot, checked against the paper);
# - V2's inverted residual block and *linear* bottleneck, with the experiment that shows
#   why a ReLU on few channels destroys information;
# - V3's squeeze-and-excitation and hard-swish, and the architecture search that found it;
# - parameter counts and multiply-adds checked against torchvision, and CPU latency of the
#   variants (fewer multiply-adds is not always less time);
# - training MobileNet V2 on Fashion-MNIST and looking inside it.

# %%
import copy

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

import cnnbook
from cnnbook import viz
from cnnbook.inspect import capture, first_conv
from cnnbook.models.mobilenet import (V1_STAGES, V2_STAGES, V3_SMALL, ConvBNAct,
                                      DepthwiseSeparableConv, InvertedResidual, MobileNetV1,
                                      MobileNetV2, SqueezeExcitation, make_divisible,
                                      mobilenet_v1, mobilenet_v2, mobilenet_v2_fashion,
                                      mobilenet_v3_large, mobilenet_v3_small,
                                      separable_cost_ratio)
from cnnbook.models.resnet import resnet
from cnnbook.profiling import count_macs, count_params, latency_ms
from cnnbook.results import against_d2l
from cnnbook.train.recipes import recipe
from cnnbook.summary import shape_table, show_source

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # main run: MobileNet V2 with width_mult, small_input (stride-1 stem for 28 px), resize,
    # epochs, lr, recipe (cnnbook.train.recipes: "d2l" = d2l's plain SGD at a constant rate,
    # "laptop" = Part III's; smoke uses the stride-2 stem only to be quick); latency_*: input size
    # and repeats of the CPU timing section
    "smoke": dict(epochs=1, limit=256, batch_size=128, resize=None, small_input=False,
                  width_mult=0.25, lr=0.1, recipe="laptop", latency_size=32, latency_repeats=1),
    "cpu":   dict(epochs=3, limit=None, batch_size=128, resize=None, small_input=True,
                  width_mult=0.25, lr=0.1, recipe="laptop", latency_size=224, latency_repeats=10),
    "full":  dict(epochs=10, limit=None, batch_size=128, resize=96, small_input=False,
                  width_mult=1.0, lr=0.1, recipe="d2l", latency_size=224, latency_repeats=30),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# In the `full` profile the chapter trains a full-width MobileNet V2 on Fashion-MNIST
# resized to 96 px, 10 epochs, batch 128, learning rate 0.1 (the settings of the other
# Part II chapters). On a CPU that is slow, and, ironically, MobileNet is *not* fast to
# train on a CPU: its depthwise layers do little arithmetic per byte of memory they touch
# (section 7 measures this). So the `cpu` profile keeps the architecture (all 17 inverted
# residual blocks) and shrinks the cost: native 28 px images with a stride-1 stem (the
# ImageNet stem would shrink 28 px images to 1x1 in the last stages), width multiplier
# 0.25 (8 to 80 channels at the thin ends of the blocks), and 3 epochs on all 60,000
# training images with the training recipe of Part III (section 8). That shows MobileNet
# learning Fashion-MNIST well in minutes; it is not the `full` run.
#
# ## 1. History: efficiency as the goal
#
# AlexNet (2012) had 61 million parameters and VGG-16 (2014) 138 million; ResNet-50 (2015)
# needs about 4 billion multiply-adds per 224 px image. Such networks ran in data centres.
# From 2016 on, several groups asked what the *cheapest* good network is. SqueezeNet
# (Iandola et al., 2016) reached AlexNet's accuracy with 50x fewer parameters using 1x1
# convolutions; Xception (Chollet, 2016) rebuilt Inception from *depthwise separable*
# convolutions, an idea Laurent Sifre developed during an internship at Google Brain
# (2013) and described in his thesis (2014).
#
# **MobileNet V1** (Andrew Howard and colleagues at Google, 2017) made depthwise separable
# convolutions the whole network: a plain stack of 13 of them, no branches, plus two
# global knobs to trade accuracy for cost. The paper reports 70.6% ImageNet top-1 accuracy
# with 4.2 million parameters and 569 million multiply-adds (VGG-16: 71.5% with 138
# million and 15.3 billion).
#
# **MobileNet V2** (Mark Sandler, Andrew Howard and colleagues, CVPR 2018) added residual
# connections, but *inverted*: the block expands a thin tensor, filters it depthwise and
# projects it back down with a **linear** layer, with the shortcut between the thin ends.
# 72.0% top-1 with 3.4 million parameters and 300 million multiply-adds.
#
# **MobileNet V3** (Howard et al., ICCV 2019, "Searching for MobileNetV3") let a computer
# design the blocks: a platform-aware neural architecture search (MnasNet, Tan et al.,
# 2019) that scores candidate networks by accuracy *and* measured phone latency, refined
# layer by layer with NetAdapt (Yang et al., 2018). It added squeeze-and-excitation (Hu
# et al., 2018) and the hard-swish activation, and comes in a Large and a Small version.
#
# In the line of this course's architectures, MobileNet stands for **efficiency**.
#
# ## 2. The depthwise separable convolution
#
# A standard $k \times k$ convolution from $M$ input to $N$ output channels does two jobs
# at once: it filters *spatially* and it mixes *channels*. Each of its $N$ filters sees
# all $M$ channels, so it has $k^2 M N$ weights, and on an $H \times W$ output it costs
# $k^2 M N H W$ multiply-adds.
#
# A depthwise separable convolution does the two jobs one after the other:
#
# 1. **depthwise**: one $k \times k$ filter *per input channel*, each applied to its own
#    channel only ($k^2 M$ weights, $k^2 M H W$ multiply-adds);
# 2. **pointwise**: a 1x1 convolution that mixes the $M$ channels into $N$ ($M N$ weights,
#    $M N H W$ multiply-adds).
#
# The ratio of the costs is
#
# $$\frac{k^2 M H W + M N H W}{k^2 M N H W} = \frac{1}{N} + \frac{1}{k^2},$$
#
# the same for parameters (drop the $HW$). With $k = 3$ and hundreds of output channels
# that is a little more than $1/9$. In PyTorch the depthwise part is an ordinary
# `nn.Conv2d` with `groups=M`: the channels are split into $M$ groups of one, and each
# group gets its own filters. Let us check that claim against a loop over the channels.

# %%
M, N, k = 4, 6, 3
X = torch.randn(2, M, 8, 8)
depthwise = nn.Conv2d(M, M, k, padding=1, groups=M, bias=False)
pointwise = nn.Conv2d(M, N, 1, bias=False)
print("depthwise weight:", tuple(depthwise.weight.shape), " pointwise weight:",
      tuple(pointwise.weight.shape))

# the depthwise conv is M separate one-channel convolutions
by_hand = torch.cat([F.conv2d(X[:, c:c + 1], depthwise.weight[c:c + 1], padding=1)
                     for c in range(M)], dim=1)
assert torch.allclose(depthwise(X), by_hand, atol=1e-6)
print("groups=M is the same as filtering each channel on its own:", tuple(by_hand.shape))
print("separable output:", tuple(pointwise(depthwise(X)).shape),
      " standard conv output:", tuple(nn.Conv2d(M, N, k, padding=1)(X).shape))

# %% [markdown]
# The package's version adds a batch norm and a ReLU6 after *each* half (so V1 counts it
# as two layers). `ConvBNAct` is the brick: convolution without bias (the batch norm has
# one), batch norm, activation.

# %%
show_source(ConvBNAct);
show_source(DepthwiseSeparableConv);

# %% [markdown]
# **ReLU6** is $\min(\max(x, 0), 6)$. Capping the activation keeps values in a range that
# survives low-precision (8-bit, fixed-point) arithmetic on phones, which is why all of
# MobileNet V1 and V2 uses it.
#
# ### The saving, measured
#
# Now the formula against measurement: for several output widths $N$ and kernel sizes $k$
# we build a standard convolution and a separable one (both without bias and batch norm,
# to compare like with like) and count parameters and multiply-adds with
# `cnnbook.profiling`.

# %%
def separable(M, N, k):
    """Depthwise k x k + pointwise 1x1, bare (no BN, no activation) for a fair count."""
    return nn.Sequential(nn.Conv2d(M, M, k, padding=k // 2, groups=M, bias=False),
                         nn.Conv2d(M, N, 1, bias=False))

rows = []
M, size = 64, 28
for k in (3, 5):
    for N in (16, 64, 256, 1024):
        std = nn.Conv2d(M, N, k, padding=k // 2, bias=False)
        sep = separable(M, N, k)
        shape = (1, M, size, size)
        rows.append({"k": k, "N": N,
                     "params std": count_params(std), "params sep": count_params(sep),
                     "MACs ratio (measured)": count_macs(sep, shape) / count_macs(std, shape),
                     "params ratio (measured)": count_params(sep) / count_params(std),
                     "1/N + 1/k^2": separable_cost_ratio(N, k)})
        assert abs(rows[-1]["MACs ratio (measured)"] - rows[-1]["1/N + 1/k^2"]) < 1e-9
        assert abs(rows[-1]["params ratio (measured)"] - rows[-1]["1/N + 1/k^2"]) < 1e-9
savings = pd.DataFrame(rows)
print(f"M = {M} input channels, {size}x{size} output")
print(savings.round(4).to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
Ns = torch.logspace(0, 11, 100, base=2)
for i, kk in enumerate((3, 5, 7)):
    ax.plot(Ns, [separable_cost_ratio(n, kk) for n in Ns], color=f"C{i}", label=f"1/N + 1/{kk}²")
    ax.axhline(1 / kk ** 2, color=f"C{i}", ls=":", lw=0.8)
ax.plot(savings["N"], savings["MACs ratio (measured)"], "ko", ms=4, label="measured (k = 3, 5)")
ax.set_xscale("log", base=2), ax.set_yscale("log")
ax.set_xlabel("output channels N"), ax.set_ylabel("cost of separable / standard")
ax.set_title("depthwise separable convolution: relative cost")
ax.grid(alpha=0.3, which="both"), ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The measured points sit on the curves (the cell above asserts they agree to nine
# decimals). For wide layers the cost tends to $1/k^2$ (dotted lines): the pointwise 1x1
# convolution becomes almost all of it. Larger kernels are relatively *cheaper* in a
# separable layer, which is why MobileNet V3 and EfficientNet can afford 5x5 depthwise
# filters.
#
# What is lost? A standard convolution can learn any joint spatial-and-channel filter; the
# separable one only those that factor into "filter each channel, then mix". The bet of
# Xception and MobileNet is that real networks do not need the rest. The MobileNet paper
# measures the bet directly (its Table 4): the same network reaches 71.7% ImageNet top-1
# built from full 3x3 convolutions and 70.6% built from separable ones, for 4,866 against
# 569 million multiply-adds: about one point of accuracy for 8.6 times less work (the
# paper's accuracies; section 3 builds both networks and counts their multiply-adds).
#
# ## 3. MobileNet V1
#
# V1 is a 3x3 standard convolution with stride 2 (the stem) followed by 13 depthwise
# separable blocks; four of them halve the resolution with a stride-2 depthwise conv, and
# the channel count doubles along the way from 32 to 1024. Then global average pooling
# and one fully connected layer. The paper's Table 1 becomes a table of stages:

# %%
print("V1 stages (out_channels, first stride, blocks):", V1_STAGES)
show_source(MobileNetV1);

# %% [markdown]
# The "28 layers" of the paper count the stem, the depthwise and the pointwise
# convolution of each of the 13 blocks separately, and the classifier:

# %%
v1 = mobilenet_v1()
convs = [m for m in v1.modules() if isinstance(m, nn.Conv2d)]
linears = [m for m in v1.modules() if isinstance(m, nn.Linear)]
print(f"{len(convs)} convolutions + {len(linears)} linear layer = {len(convs) + len(linears)} layers")
assert len(convs) + len(linears) == 28
print(shape_table(v1, (1, 3, 224, 224), depth=2))

# %% [markdown]
# ### Where the cost is
#
# The paper (Table 2) reports where V1 spends its multiply-adds and parameters: about 95%
# of the computation and 75% of the parameters in 1x1 convolutions, about 3% of the
# computation in depthwise convolutions, and about 24% of the parameters in the final
# fully connected layer. We recompute it with forward hooks that count each layer's
# weights and multiply-adds. The model is built on PyTorch's `meta` device: tensors with
# shapes but no numbers, so the pass through the network costs nothing and we can count
# even large models instantly.

# %%
def cost_by_kind(model, input_size):
    """Multiply-adds and weights of each kind of layer (stem, depthwise, 1x1, fc)."""
    totals = {}
    def hook(module, inputs, output):
        if isinstance(module, nn.Linear):
            kind, macs = "fully connected", module.in_features * module.out_features
        else:
            k = module.kernel_size[0]
            per_out = module.in_channels // module.groups * k * k
            macs = output[0].numel() * per_out
            kind = ("depthwise" if module.groups > 1 else
                    "pointwise 1x1" if k == 1 else f"standard {k}x{k}")
        t = totals.setdefault(kind, {"MACs": 0, "params": 0})
        t["MACs"] += macs
        t["params"] += sum(p.numel() for p in module.parameters())
    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(input_size, device=next(model.parameters()).device))
    for h in hooks:
        h.remove()
    table = pd.DataFrame(totals).T
    return (100 * table / table.sum()).rename(columns=lambda c: f"% of {c}")

with torch.device("meta"):
    v1_meta = mobilenet_v1()
print(cost_by_kind(v1_meta, (1, 3, 224, 224)).round(2))

# %% [markdown]
# The table above is computed from our model; compare it with the paper's 94.86% / 74.59%
# (1x1), 3.06% / 1.06% (depthwise), 1.19% / 0.02% (stem) and 0.18% / 24.33% (fully
# connected). Only the stem's share of the multiply-adds differs; check it by hand: the
# stem makes 32 maps of 112x112 pixels, each pixel costing 3 x 9 multiply-adds, out of a
# total of 569 million (the paper's figure looks like a slip). The depthwise filters, the spatial part of the network, are almost free;
# the 1x1 convolutions are where a phone spends its time. That is good news for speed:
# a 1x1 convolution is a plain matrix product, the operation every library optimises best.
#
# The paper's Table 4 compares V1 with its twin built from full convolutions. Build that
# twin by swapping every separable block for one standard 3x3 convolution with the same
# channels and stride, and count both:

# %%
with torch.device("meta"):
    v1_full = mobilenet_v1()
    for name, block in list(v1_full.features.named_children()):
        if isinstance(block, DepthwiseSeparableConv):
            dw, pw = block.depthwise.conv, block.pointwise.conv
            setattr(v1_full.features, name,
                    ConvBNAct(dw.in_channels, pw.out_channels, 3, dw.stride[0]))
twins = pd.DataFrame({name: [count_macs(m, (1, 3, 224, 224)), count_params(m)]
                      for name, m in (("separable (V1)", v1_meta), ("full 3x3", v1_full))},
                     index=["MMACs", "params (M)"]) / 1e6
print(twins.round(1).to_string())
sep_mmacs, full_mmacs = twins.loc["MMACs"]
print(f"the full-convolution twin costs {full_mmacs / sep_mmacs:.2f}x the multiply-adds "
      "(the paper: 4,866 / 569 = 8.55)")
assert abs(full_mmacs / 4866 - 1) < 0.01 and abs(sep_mmacs / 569 - 1) < 0.01

# %% [markdown]
# The ratio printed above is the "8.6 times less work" of section 2: counted on our own
# two networks, it matches the paper's 4,866 and 569 million multiply-adds; the
# accuracies (71.7% and 70.6%) are the paper's, measured on ImageNet.
#
# ### Two knobs: width $\alpha$ and resolution $\rho$
#
# V1's paper gives two global hyperparameters to shrink the network for a given budget:
#
# - the **width multiplier** $\alpha \in \{1, 0.75, 0.5, 0.25\}$ multiplies every layer's
#   channels; since both $M$ and $N$ shrink, the cost falls roughly as $\alpha^2$;
# - the **resolution multiplier** $\rho$ shrinks the input image (224, 192, 160 or 128
#   px); every feature map shrinks with it, so the cost falls as $\rho^2$, and the
#   parameters do not change at all.
#
# In our code $\alpha$ is the `alpha` argument (channel counts are rounded to multiples of
# 8 by `make_divisible`), and $\rho$ is simply the size of the image we feed. All 16
# combinations, counted on the meta device:

# %%
alphas, resolutions = (1.0, 0.75, 0.5, 0.25), (224, 192, 160, 128)
rows = []
for alpha in alphas:
    with torch.device("meta"):
        model = mobilenet_v1(alpha)
    for r in resolutions:
        rows.append({"alpha": alpha, "resolution": r, "params (M)": count_params(model) / 1e6,
                     "MMACs": count_macs(model, (1, 3, r, r)) / 1e6})
knobs = pd.DataFrame(rows)
print(knobs.pivot(index="alpha", columns="resolution", values="MMACs").round(0)
      .sort_index(ascending=False).to_string())
print(knobs.groupby("alpha")["params (M)"].first().round(2).sort_index(ascending=False).to_string())

# %% [markdown]
# The paper's Tables 6 and 7 report, at 224 px, 569, 325, 149 and 41 million multiply-adds
# with 4.2, 2.6, 1.3 and 0.5 million parameters for $\alpha$ = 1, 0.75, 0.5, 0.25, and for
# $\alpha = 1$ at 224, 192, 160, 128 px: 569, 418, 290 and 186 million multiply-adds;
# the unit tests of `cnnbook.models.mobilenet` check our model against these numbers.
# How close is the simple rule "cost $\propto \alpha^2 \rho^2$"?

# %%
base = knobs.query("alpha == 1.0 and resolution == 224")["MMACs"].item()
knobs["relative cost"] = knobs["MMACs"] / base
knobs["alpha² rho²"] = knobs["alpha"] ** 2 * (knobs["resolution"] / 224) ** 2

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for i, r in enumerate(resolutions):
    d = knobs[knobs.resolution == r]
    axes[0].plot(d["alpha"], d["MMACs"], "o-", color=f"C{i}", label=f"{r} px")
axes[0].set_xlabel(r"width multiplier $\alpha$"), axes[0].set_ylabel("million multiply-adds")
axes[0].set_yscale("log"), axes[0].set_title("MobileNet V1: cost of the 16 settings")
axes[1].plot(knobs["alpha² rho²"], knobs["relative cost"], "ko", ms=4)
axes[1].plot([0, 1], [0, 1], "r--", lw=1, label=r"cost $= \alpha^2\rho^2$")
axes[1].set_xlabel(r"$\alpha^2 \rho^2$"), axes[1].set_ylabel("measured cost / full model")
axes[1].set_title("the quadratic rule")
for ax in axes:
    ax.grid(alpha=0.3, which="both"), ax.legend(fontsize=8)
fig.tight_layout()
worst = (knobs["relative cost"] / knobs["alpha² rho²"]).max()
print(f"largest measured cost / (alpha² rho²): {worst:.2f}")

# %% [markdown]
# The rule holds for the resolution exactly and for the width nearly: at small $\alpha$
# the measured cost lies above the line (the cell above prints by how much at worst),
# because the stem's input (3 colour channels) does not shrink with $\alpha$ and
# `make_divisible` rounds thin layers *up* to 8 channels. Accuracy, by the paper's
# account, falls smoothly with $\alpha$ and drops sharply only at $\alpha = 0.25$: a
# family of networks from one design, to pick from by budget.
#
# ## 4. MobileNet V2: inverted residuals and linear bottlenecks
#
# ### The linear bottleneck
#
# Sandler et al. start from an observation about ReLU. The activations of a layer
# ("the manifold of interest") often occupy a low-dimensional subspace of its channels.
# A ReLU sets every negative coordinate to zero, so it *destroys* information unless the
# representation has enough dimensions that what is zeroed in one is still visible in
# others. Their Figure 1 makes this concrete, and we repeat it: a 2-D spiral is embedded
# into $n$ dimensions by a random matrix $T$, passed through a ReLU, and mapped back with
# the pseudo-inverse $T^{+}$.

# %%
torch.manual_seed(0)
t = torch.linspace(0, 4 * torch.pi, 400)
spiral = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / (4 * torch.pi)
dims = (2, 3, 5, 15, 30)
fig, axes = plt.subplots(1, len(dims) + 1, figsize=(2.2 * (len(dims) + 1), 2.4))
axes[0].scatter(*spiral.T, c=t, s=2, cmap="viridis")
axes[0].set_title("input")
recoverable = {}
for ax, n in zip(axes[1:], dims):
    T = torch.randn(n, 2)
    hidden = torch.relu(spiral @ T.T)             # n coordinates, the negative ones zeroed
    back = hidden @ torch.linalg.pinv(T).T        # the paper's way back to 2-D
    # a point can be recovered exactly iff at least 2 of its n coordinates survive the ReLU
    recoverable[n] = ((hidden > 0).sum(dim=1) >= 2).float().mean().item()
    ax.scatter(*back.T, c=t, s=2, cmap="viridis")
    ax.set_title(f"n = {n}")
for ax in axes:
    ax.set_aspect("equal"), ax.set_xticks([]), ax.set_yticks([])
fig.suptitle("ReLU(T x) mapped back with the pseudo-inverse of T", y=1.02)
fig.tight_layout()
print("fraction of the spiral that is exactly recoverable:",
      {n: round(f, 3) for n, f in recoverable.items()})

# %% [markdown]
# With 2 or 3 dimensions the spiral comes back collapsed and folded: the ReLU threw parts
# of it away. With 15 or 30 it keeps its shape (shrunk, since the pseudo-inverse undoes
# $T$ but not the ReLU). The printed fractions say why: a point can be recovered exactly
# (by solving $T_{\text{active}}\,x = y_{\text{active}}$ on its surviving coordinates)
# only if at least two of its coordinates are positive, and in few dimensions many points
# lose all but one or none; in many dimensions almost none do. The lesson for block design: apply ReLUs only where the tensor is *wide*,
# and keep the thin tensors, the bottlenecks, **linear**.
#
# ### The inverted residual block
#
# ResNet's bottleneck block ([chapter 11](11_resnet.ipynb)) goes wide -> thin -> wide and puts the shortcut
# between the wide ends. V2 inverts it: thin -> wide -> thin.
#
# 1. a 1x1 convolution **expands** the $c$ input channels by a factor $t$ (6 in V2), with
#    ReLU6;
# 2. a 3x3 **depthwise** convolution filters the wide tensor (stride 1 or 2), with ReLU6;
# 3. a 1x1 convolution **projects** back to a few channels, *without* an activation: the
#    linear bottleneck;
# 4. when stride is 1 and the channel count is unchanged, the input is **added** to the
#    output: the shortcut joins the thin ends.
#
# Only thin tensors cross from block to block, which keeps the memory a phone needs at
# inference small; the expensive-looking wide tensor is filtered depthwise, which is cheap.
# The package's version (V3 reuses it with other kernels and activations, and an optional
# squeeze-and-excitation, section 5):

# %%
show_source(InvertedResidual);

# %%
X = torch.rand(2, 16, 14, 14)
for c_out, stride in ((16, 1), (24, 1), (24, 2)):
    blk = InvertedResidual(16, c_out, stride, expanded=6 * 16)
    names = [name for name, _ in blk.block.named_children()]
    print(f"16 -> {c_out}, stride {stride}: output {tuple(blk(X).shape)}, "
          f"shortcut {blk.use_residual}, layers {names}")
assert not hasattr(blk.block.project, "act")  # the projection is linear

# %% [markdown]
# ### MobileNet V2, from its table
#
# V2 is a 3x3 stem with 32 channels, 17 inverted residual blocks read from the paper's
# Table 2 (rows of expansion $t$, output channels $c$, repeats $n$, first stride $s$), a
# 1x1 convolution to 1280 channels, global average pooling and a linear classifier with
# dropout 0.2:

# %%
print(pd.DataFrame(V2_STAGES, columns=["t (expansion)", "c (channels)", "n (blocks)",
                                       "s (first stride)"]).to_string(index=False))
show_source(MobileNetV2);

# %% [markdown]
# The course's Fashion-MNIST version has one input channel and 10 classes. At 96 px the
# five stride-2 steps take the image from 96 to 3 pixels; with `small_input=True` the stem
# keeps stride 1, so a native 28 px image ends at 2x2 instead of vanishing. Both shape
# tables, at the top level of blocks:

# %%
print(shape_table(mobilenet_v2_fashion(), (1, 1, 96, 96), depth=2))

# %%
print(shape_table(mobilenet_v2_fashion(cfg.width_mult, small_input=True), (1, 1, 28, 28),
                  depth=2))

# %% [markdown]
# ## 5. MobileNet V3: search, squeeze-and-excitation, hard-swish
#
# V3 keeps V2's inverted residual block and changes three things.
#
# **The blocks were searched, not designed.** MnasNet's search (Tan et al., 2019) trains
# and times many candidate networks on a real phone and maximises
# $\text{accuracy} \times (\text{latency}/\text{target})^{w}$ with a small negative $w$;
# it chooses each stage's kernel size (3 or 5), expansion width, number of blocks and
# whether to use squeeze-and-excitation. NetAdapt (Yang et al., 2018) then trims the
# channels of one layer at a time, keeping the change that loses least accuracy per
# millisecond saved. The result is a table of rows; here is V3-Small's (kernel, expanded
# channels, output channels, SE, activation, stride):

# %%
print(pd.DataFrame(V3_SMALL, columns=["kernel", "expanded", "out", "SE", "activation",
                                      "stride"]).to_string(index=False))

# %% [markdown]
# **Squeeze-and-excitation** (Hu et al., 2018, winner of the last ImageNet challenge in
# 2017): global average pooling *squeezes* each channel to one number; two small layers
# turn those numbers into a gate in $[0, 1]$ per channel; the block's channels are
# multiplied by their gates (*excitation*). The network can turn channels up or down
# depending on the whole image, at almost no cost in multiply-adds.

# %%
show_source(SqueezeExcitation);
se = SqueezeExcitation(8, 4)
x = torch.randn(2, 8, 5, 5)
gates = se(x) / x
print("gate per (image, channel), constant over the 5x5 positions:",
      torch.allclose(gates, gates[..., :1, :1].expand_as(gates), atol=1e-5))
print(gates[0, :, 0, 0].detach().numpy().round(3))

# %% [markdown]
# **Hard-swish.** Swish, $x \cdot \sigma(x)$ (Ramachandran et al., 2017), trained better
# than ReLU in the search, but the sigmoid is expensive on a phone. V3 replaces it by a
# piecewise-linear imitation built from ReLU6,
#
# $$\text{h-swish}(x) = x \cdot \frac{\text{ReLU6}(x + 3)}{6}, \qquad
#   \text{h-sigmoid}(x) = \frac{\text{ReLU6}(x + 3)}{6},$$
#
# and uses it only in the deeper half of the network, where tensors are smaller (the
# first layers keep ReLU). The squeeze-and-excitation gate uses the hard sigmoid.

# %%
xs = torch.linspace(-6, 6, 400)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
viz.plot_functions(xs, {"swish x·σ(x)": xs * torch.sigmoid(xs), "hard-swish": F.hardswish(xs),
                        "ReLU6": F.relu6(xs)}, title="swish and its hard version", ax=axes[0])
viz.plot_functions(xs, {"sigmoid": torch.sigmoid(xs), "hard sigmoid": F.hardsigmoid(xs)},
                   title="the gates", ax=axes[1])
fig.tight_layout()
gap = (xs * torch.sigmoid(xs) - F.hardswish(xs)).abs().max().item()
print(f"largest |swish - hard-swish| on [-6, 6]: {gap:.3f}")

# %% [markdown]
# V3 also reworked the expensive ends of V2: the stem has 16 channels instead of 32 (with
# hard-swish), and the final 1x1 convolution to a wide layer was moved *after* the global
# pooling, where it runs on a 1x1 map (the first of V3's two linear layers).
#
# ## 6. Counts checked against torchvision
#
# With default settings (3 channels, 1000 classes) our V2 and V3 networks must have exactly
# torchvision's parameter counts, and their multiply-adds must match the GFLOPS torchvision
# publishes with its weights (which count multiply-adds). V1 is not in torchvision; we
# compare it with the paper's 4.2 million parameters and 569 million multiply-adds.

# %%
rows = []
for name, build in (("mobilenet_v2", mobilenet_v2), ("mobilenet_v3_large", mobilenet_v3_large),
                    ("mobilenet_v3_small", mobilenet_v3_small)):
    meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
    with torch.device("meta"):
        ours, theirs = build(), getattr(torchvision.models, name)(weights=None)
    rows.append({"model": name, "params (ours)": count_params(ours),
                 "params (torchvision)": count_params(theirs),
                 "params (published)": meta["num_params"],
                 "GMACs (ours)": count_macs(ours, (1, 3, 224, 224)) / 1e9,
                 "GFLOPS (published)": meta["_ops"], "top-1 (published)": meta["_metrics"]
                 ["ImageNet-1K"]["acc@1"]})
    assert rows[-1]["params (ours)"] == rows[-1]["params (torchvision)"] == meta["num_params"]
    assert abs(rows[-1]["GMACs (ours)"] / meta["_ops"] - 1) < 0.01
rows.append({"model": "mobilenet_v1", "params (ours)": count_params(v1_meta),
             "GMACs (ours)": count_macs(v1_meta, (1, 3, 224, 224)) / 1e9})
counts = pd.DataFrame(rows).astype({"params (torchvision)": "Int64", "params (published)": "Int64"})
print(counts.round(3).to_string(index=False, na_rep="-"))

# %% [markdown]
# The published top-1 accuracies are torchvision's own retrainings (not the papers'). Read
# the table across: V3-Large is more accurate than V2 at a lower cost, and V3-Small gives
# up several points for a network several times cheaper.
#
# ## 7. Latency on this CPU
#
# Multiply-adds are a proxy. What a phone (or a learner's laptop) feels is time. We time
# one image through each network, in eval mode, on this machine's CPU, with ResNet-18 as
# a reference. (Timings on a shared or busy machine are noisy; run the cell again on an
# idle one.)

# %%
size = cfg.latency_size
nets = {"ResNet-18": resnet(18), "MobileNet V1": mobilenet_v1(),
        "MobileNet V2": mobilenet_v2(), "MobileNet V3-Large": mobilenet_v3_large(),
        "MobileNet V3-Small": mobilenet_v3_small(), "MobileNet V1 (alpha 0.5)": mobilenet_v1(0.5)}
rows = []
for name, net in nets.items():
    t = latency_ms(net, (1, 3, size, size), repeats=cfg.latency_repeats, warmup=1)
    rows.append({"model": name, "params (M)": count_params(net) / 1e6,
                 "MMACs": count_macs(net, (1, 3, size, size)) / 1e6, "ms / image": t["median"]})
lat = pd.DataFrame(rows)
lat["GMACs per s"] = lat["MMACs"] / lat["ms / image"]
print(f"batch 1, {size} px, median of {cfg.latency_repeats} runs")
print(lat.round(2).to_string(index=False))
del nets

# %%
fig = viz.plot_tradeoff(lat["MMACs"], lat["ms / image"], lat["model"], sizes=lat["params (M)"],
                        xlabel="million multiply-adds (log)", ylabel="CPU ms per image",
                        title=f"cost vs CPU latency at {size} px (marker area: parameters)")

# %% [markdown]
# Compare the MMACs and the time columns of the table above. The MobileNets need far
# fewer multiply-adds than ResNet-18, but on a CPU they are typically not faster by the
# same factor: the last column (billions of multiply-adds per second) shows how
# efficiently this CPU executes each network. A depthwise
# convolution reads and writes a whole feature map to do only 9 multiply-adds per value,
# so it is limited by memory traffic, not arithmetic; ResNet's dense 3x3 convolutions do
# hundreds per value. The same holds on a single layer:

# %%
C, s = 128, 28
layer_std = nn.Conv2d(C, C, 3, padding=1, bias=False)
layer_sep = separable(C, C, 3)
rows = []
for name, layer in (("standard 3x3", layer_std), ("depthwise separable", layer_sep)):
    rows.append({"layer": name, "MMACs": count_macs(layer, (1, C, s, s)) / 1e6,
                 "ms": latency_ms(layer, (1, C, s, s), repeats=max(5, cfg.latency_repeats),
                                  warmup=1)["median"]})
one = pd.DataFrame(rows)
print(one.round(3).to_string(index=False))
print(f"{C} -> {C} channels at {s}x{s}: separable costs "
      f"{one.MMACs[1] / one.MMACs[0]:.3f} of the multiply-adds and "
      f"{one.ms[1] / one.ms[0]:.3f} of the time")

# %% [markdown]
# The last line printed gives both ratios; on CPUs the time ratio is usually well above
# the multiply-add ratio. This is why V3 was searched with *measured* latency on the
# target phone instead of multiply-adds, and why the later chapters on deployment
# ([chapter 21](21_compression.ipynb) on compression, [chapter 22](22_export.ipynb) on
# export and fast inference) time models rather than count them.
#
# ## 8. Training MobileNet V2 on Fashion-MNIST

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          resize=cfg.resize, limit=cfg.limit)
size = cfg.resize or 28
print(f"{train_iter.num_examples:,} training images of {size} px, {test_iter.num_examples:,} test")
cnnbook.seed_everything(0)
model = mobilenet_v2_fashion(cfg.width_mult, small_input=cfg.small_input)
print(f"MobileNet V2 (width x{cfg.width_mult}, stem stride "
      f"{model.features.stem.conv.stride[0]}): {count_params(model):,} parameters, "
      f"{count_macs(model, (1, 1, size, size)) / 1e6:,.1f} M multiply-adds per image")
how = recipe(cfg.recipe)
print(f"recipe {how.name!r}: {how.summary}")
result = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, name="mobilenet_v2",
                     chapter="13", **how.fit_kwargs(cfg.lr), extra=how.describe())
print(against_d2l(result.record))
print(f"{result.examples_per_sec:,.0f} training images/s")

# %%
fig = viz.plot_history(result.history, title="MobileNet V2 on Fashion-MNIST")

# %% [markdown]
# The cell above the curves prints the test accuracy, the training time and the
# throughput. d2l has no MobileNet chapter, so the line compares with the course's own
# target, 0.90. The `cpu` profile reaches for it with the recipe of Part III
# ([chapter 18](18_training_recipes.ipynb)): momentum, weight decay, a one-cycle schedule
# that ends annealed, and label smoothing; the `full` profile keeps the Part II chapters'
# plain SGD at a constant rate, as d2l trains every network of its chapter 8. Compare the parameter count with the models of the earlier chapters: the
# `full` run trains a network with a fraction of ResNet-18's parameters and
# multiply-adds; [chapter 14](14_comparison.ipynb) puts all the Part II models on one accuracy-versus-cost plot.
#
# ## 9. Inside the trained MobileNet
#
# The stem is an ordinary 3x3 convolution over the grey image; its kernels:

# %%
fig = viz.plot_kernels(first_conv(model).weight, ncols=16, title="MobileNet V2: stem kernels")

# %% [markdown]
# The depthwise kernels of the first inverted residual block with an expansion: each is
# a 3x3 filter for *one* channel of the expanded tensor (here we show the first 32).

# %%
dw = model.features.block2.block.depthwise.conv.weight
print("depthwise weight shape:", tuple(dw.shape), "(channels, 1 input channel each, 3, 3)")
fig = viz.plot_kernels(dw[:32], ncols=16, title="block2: depthwise kernels")

# %% [markdown]
# The feature maps of one test image: the thin outputs of the blocks at the end of three
# stages (we show up to 16 channels). They shrink and multiply, as in every network of
# Part II.

# %%
X_test, y_test = next(iter(test_iter))
maps = capture(model, X_test[:1], ["features.stem", "features.block3", "features.block6",
                                   "features.block13"])
for name, m in maps.items():
    print(f"{name:17s} {tuple(m.shape)}")
fig = viz.show_images(X_test[:1].cpu(), titles=["input"], ncols=1, scale=2)
for name in ("features.block3", "features.block6"):
    fig = viz.plot_feature_maps(maps[name][0, :16], ncols=8, title=f"after {name}")

# %% [markdown]
# What happens inside the expansion? A direct look at the linear bottleneck argument:
# inside each block, the fraction of the *expanded* activations that the ReLU6 sets to
# zero. Many zeros in a wide tensor are
# harmless (section 4); the thin projection that follows has no ReLU to lose more.

# %%
expanded_acts = capture(model, X_test[:64], [f"features.block{i}.block.expand"
                                             for i in range(2, 18)])
zeros = pd.Series({name.split(".")[1]: (a == 0).float().mean().item()
                   for name, a in expanded_acts.items()}, name="fraction zero after expand")
print(zeros.round(2).to_string())

# %% [markdown]
# The printout lists, block by block, how much of the expanded representation is zero.
# Whatever the share, it is information the ReLU removed, affordable only because the
# tensor is wide; on the thin output, where V2 has no ReLU, the same loss would cut into
# the few channels that carry everything to the next block.
#
# ## 10. Explore: width, resolution and time
#
# Section 3 counted V1's sixteen settings; section 7 showed that multiply-adds and time
# part ways. The `MultiplierExplorer` puts the two together: pick the width multiplier
# $\alpha$ and the input resolution; the left panels show the multiply-adds and the
# parameters (counted with `torch.utils.flop_counter`, relative to the $\alpha = 1$,
# 224 px network) against the rule $\alpha^2 \rho^2$, and the right one times the chosen
# network on this CPU (batch 1, once per setting, then cached) next to every setting
# timed so far. Things to look for: at $\alpha = 0.25$ the cost sits above the rule (the
# rounding to multiples of 8); the resolution moves the multiply-adds but never the
# parameters; and on the right, is time proportional to multiply-adds, or are the thin
# networks slower per multiply-add than the wide ones?

# %%
from cnnbook.widgets.multipliers import MultiplierExplorer

explorer = MultiplierExplorer(alpha=1.0, resolution=224, repeats=3)
print(f"alpha 1.0 at 224 px: {explorer.state['macs'] / 1e6:,.0f} M multiply-adds, "
      f"{explorer.state['params'] / 1e6:.2f} M parameters, {explorer.state['latency_ms']:.1f} ms "
      f"on this CPU; this picture took {explorer.state['render_ms']:.0f} ms")
explorer

# %% [markdown]
# ## Summary
#
# - MobileNet makes efficiency the design goal: V1 (2017) builds the whole network from
#   depthwise separable convolutions, V2 (2018) adds inverted residual blocks with linear
#   bottlenecks, V3 (2019) is found by latency-aware architecture search and adds
#   squeeze-and-excitation and hard-swish.
# - A depthwise separable convolution = a depthwise $k \times k$ conv (`groups=M`, one
#   filter per channel) + a pointwise 1x1 conv. It costs $1/N + 1/k^2$ of a standard
#   convolution in parameters and multiply-adds; measured here, exactly.
# - V1's width multiplier $\alpha$ and resolution multiplier $\rho$ scale the cost by
#   about $\alpha^2 \rho^2$; $\alpha$ also shrinks the parameters, $\rho$ does not.
# - A ReLU on a thin tensor destroys information; so V2 expands (x6), filters depthwise,
#   and projects back *linearly*, with shortcuts between the thin ends.
# - Multiply-adds do not translate one-to-one into time: depthwise layers are
#   memory-bound, so latency must be measured on the target hardware.
#
# ## Exercises
#
# **Exercise 1 (parameters of a separable layer).** Write `separable_params(in_channels,
# out_channels, kernel_size)` that returns the number of parameters of the package's
# `DepthwiseSeparableConv(in_channels, out_channels, kernel_size=kernel_size)` from the
# formula, without building it: a depthwise convolution and a pointwise convolution,
# neither with bias, each followed by a batch norm ($\gamma$ and $\beta$ per channel).

# %% nbgrader={"grade": false, "grade_id": "ex-13-separable-params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def separable_params(in_channels: int, out_channels: int, kernel_size: int = 3) -> int:
    """Parameters of DepthwiseSeparableConv, from the formula."""
    ### BEGIN SOLUTION
    depthwise = kernel_size ** 2 * in_channels + 2 * in_channels
    pointwise = in_channels * out_channels + 2 * out_channels
    return depthwise + pointwise
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-13-separable-params-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

for _args in [(32, 64, 3), (64, 128, 3), (3, 7, 5), (512, 512, 3), (1, 1, 7)]:
    _layer = DepthwiseSeparableConv(_args[0], _args[1], kernel_size=_args[2])
    assert separable_params(*_args) == count_params(_layer), _args
print("the formula matches count_params")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.mobilenet import DepthwiseSeparableConv as _DSC

_g = generator(1301)
agrees(separable_params, lambda i, o, k=3: count_params(_DSC(i, o, kernel_size=k)),
       [(int(a), int(b), k) for (a, b), k in zip(torch.randint(1, 300, (3, 2), generator=_g), (3, 1, 5))],
       forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (cost of an inverted residual block).** Write
# `inverted_residual_macs(in_channels, out_channels, expansion, stride, size, kernel_size=3)`
# that returns the multiply-adds of `InvertedResidual(in_channels, out_channels, stride,
# expanded=expansion * in_channels, kernel_size=kernel_size)` on a `size` x `size` input,
# from the formula, without building it (count the convolutions only: the expansion 1x1 conv, present only when `expansion` is
# not 1; the depthwise conv, whose output has `size // stride` pixels per side; the
# projection). Then use it to see which of the three layers dominates.

# %% nbgrader={"grade": false, "grade_id": "ex-13-ir-macs", "locked": false, "schema_version": 3, "solution": true, "task": false}
def inverted_residual_macs(in_channels: int, out_channels: int, expansion: int, stride: int,
                           size: int, kernel_size: int = 3) -> int:
    """Multiply-adds of an inverted residual block's three convolutions."""
    ### BEGIN SOLUTION
    wide = expansion * in_channels
    out_size = size // stride
    expand = in_channels * wide * size * size if expansion != 1 else 0
    depthwise = kernel_size ** 2 * wide * out_size * out_size
    project = wide * out_channels * out_size * out_size
    return expand + depthwise + project
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-13-ir-macs-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_macs

for _c_in, _c_out, _t, _s, _size, _k in [(16, 24, 6, 2, 28, 3), (24, 24, 6, 1, 14, 3),
                                         (32, 16, 1, 1, 8, 3), (40, 48, 3, 1, 7, 5)]:
    _blk = InvertedResidual(_c_in, _c_out, _s, expanded=_t * _c_in, kernel_size=_k)
    _want = count_macs(_blk, (1, _c_in, _size, _size))
    assert inverted_residual_macs(_c_in, _c_out, _t, _s, _size, _k) == _want, (_c_in, _c_out, _t)
print("the formula matches count_macs")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.mobilenet import InvertedResidual as _IR

_g = generator(1302)
_cases = []
for _t, _s, _k in ((4, 2, 3), (1, 1, 5), (2, 1, 3)):
    _ci, _co = (int(v) for v in torch.randint(2, 40, (2,), generator=_g))
    _cases.append((_ci, _co, _t, _s, 2 * int(torch.randint(3, 12, (1,), generator=_g)), _k))
agrees(inverted_residual_macs,
       lambda ci, co, t, s, size, k=3: count_macs(_IR(ci, co, s, expanded=t * ci, kernel_size=k), (1, ci, size, size)),
       _cases, forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (hard-swish from ReLU6).** Implement `hard_swish(x)` and
# `hard_sigmoid(x)` using only `torch.nn.functional.relu6` and arithmetic (no
# `F.hardswish`). The test compares them with PyTorch's versions and checks where
# hard-swish equals ReLU exactly.

# %% nbgrader={"grade": false, "grade_id": "ex-13-hard-swish", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """ReLU6(x + 3) / 6: 0 below -3, 1 above 3, linear in between."""
    ### BEGIN SOLUTION
    return F.relu6(x + 3) / 6
    ### END SOLUTION


def hard_swish(x: torch.Tensor) -> torch.Tensor:
    """x * hard_sigmoid(x), MobileNet V3's cheap swish."""
    ### BEGIN SOLUTION
    return x * hard_sigmoid(x)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-13-hard-swish-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_x = torch.linspace(-8, 8, 1001)
assert torch.allclose(hard_sigmoid(_x), nn.Hardsigmoid()(_x), atol=1e-6)
assert torch.allclose(hard_swish(_x), nn.Hardswish()(_x), atol=1e-6)
_far = _x.abs() >= 3
assert torch.allclose(hard_swish(_x)[_far], torch.relu(_x)[_far], atol=1e-6)  # ReLU outside [-3, 3]
print("hard-swish OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator

_g = generator(1303)
_xs = [(10 * torch.randn(300, generator=_g),), (torch.randn(2, 3, 4, 4, generator=_g) * 4,)]
_no = ("torch.nn.functional.hardsigmoid", "torch.nn.functional.hardswish", "torch._C._nn.hardsigmoid",
       "torch._C._nn.hardswish", "torch.nn.Module.__init__", "torch.nn.Module.__call__")
agrees(hard_sigmoid, F.hardsigmoid, _xs, atol=1e-6, forbid=_no)
agrees(hard_swish, F.hardswish, _xs, atol=1e-6, forbid=_no)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (make any CNN separable).** Write `separabilize(model)` that returns a *copy*
# of `model` in which every standard convolution with a kernel larger than 1x1
# (`groups == 1`) whose input has more than 3 channels is replaced by an
# `nn.Sequential` of a depthwise convolution (same kernel size, stride, padding,
# `groups=in_channels`, no bias) and a 1x1 pointwise convolution (with a bias if the
# original had one). Leave the first layer (the one on the image, 1 or 3 channels) as it
# is, since there is nothing to separate there. The test applies it to a small VGG-style
# network and checks the output shape and the saving. Hint: walk `named_children()`
# recursively and use `setattr`.

# %% nbgrader={"grade": false, "grade_id": "ex-13-separabilize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def separabilize(model: nn.Module) -> nn.Module:
    """A copy of model with k x k convolutions (k > 1, > 3 input channels) made separable."""
    model = copy.deepcopy(model)
    ### BEGIN SOLUTION
    def replace(parent):
        for name, child in parent.named_children():
            if (isinstance(child, nn.Conv2d) and child.groups == 1
                    and child.kernel_size != (1, 1) and child.in_channels > 3):
                m, n = child.in_channels, child.out_channels
                setattr(parent, name, nn.Sequential(
                    nn.Conv2d(m, m, child.kernel_size, child.stride, child.padding,
                              groups=m, bias=False),
                    nn.Conv2d(m, n, 1, bias=child.bias is not None)))
            else:
                replace(child)
    replace(model)
    ### END SOLUTION
    return model

# %% nbgrader={"grade": true, "grade_id": "ex-13-separabilize-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_macs, count_params

_net = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
    nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
    nn.Conv2d(64, 128, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(128, 10, 1),
    nn.AdaptiveAvgPool2d(1), nn.Flatten())
_sep = separabilize(_net)
_x = torch.randn(2, 1, 28, 28)
assert _sep(_x).shape == _net(_x).shape == (2, 10)
assert isinstance(_net[2][0], nn.Conv2d), "the original model must not change"
assert isinstance(_sep[0], nn.Conv2d) and _sep[0].groups == 1  # the first layer stays
_big = [m for m in _sep.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
assert all(m.groups == m.in_channels for m in _big[1:]), "k x k convs must be depthwise"
assert _sep[3][0].stride == (2, 2) and _sep[3][0].kernel_size == (5, 5)
assert count_macs(_sep, (1, 1, 28, 28)) < 0.2 * count_macs(_net, (1, 1, 28, 28))
print(f"separable copy: {count_params(_sep):,} parameters instead of {count_params(_net):,}")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()
torch.manual_seed(1304)
_net2 = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                      nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False), nn.ReLU(),
                      nn.Sequential(nn.Conv2d(8, 8, 1), nn.Conv2d(8, 12, 7, padding=3)), nn.AdaptiveAvgPool2d(1))
_sep2 = separabilize(_net2)
_x2 = torch.randn(2, 2, 16, 16)
same(tuple(_sep2(_x2).shape), (2, 12, 1, 1), what="output shape")
assert type(_net2[3]) is nn.Conv2d and _net2[3].groups == 1, "the original model must not change"
assert type(_sep2[0]) is nn.Conv2d and _sep2[0].groups == 1
for _orig, _new in ((_net2[3], _sep2[3]), (_net2[5][1], _sep2[5][1])):
    _convs = [m for m in _new.modules() if isinstance(m, nn.Conv2d)]
    same(len(_convs), 2, what="convolutions replacing one")
    _dw, _pw = _convs
    same((_dw.in_channels, _dw.out_channels, _dw.groups, _dw.kernel_size, _dw.stride, _dw.padding),
         (_orig.in_channels, _orig.in_channels, _orig.in_channels, _orig.kernel_size, _orig.stride, _orig.padding),
         what="depthwise conv")
    same((_pw.in_channels, _pw.out_channels, _pw.kernel_size), (_orig.in_channels, _orig.out_channels, (1, 1)),
         what="pointwise conv")
assert type(_sep2[5][0]) is nn.Conv2d and _sep2[5][0].kernel_size == (1, 1), "1x1 convs stay"
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 5 (spend a budget).** A phone allows 200 million multiply-adds per 224 px
# image. Write `best_v1_setting(budget_macs, alphas, resolutions)` that returns the
# `(alpha, resolution)` pair of MobileNet V1 with the *most* multiply-adds that still fits
# the budget (count them with `count_macs`; building models on the `meta` device keeps it
# fast). Which pair does your function pick? The most expensive setting within a budget
# is not necessarily the most accurate one: compare the candidates near the budget in the
# paper's Tables 6 and 7.

# %% nbgrader={"grade": false, "grade_id": "ex-13-budget", "locked": false, "schema_version": 3, "solution": true, "task": false}
def best_v1_setting(budget_macs: float, alphas=(1.0, 0.75, 0.5, 0.25),
                    resolutions=(224, 192, 160, 128)):
    """(alpha, resolution) of the most expensive MobileNet V1 within budget_macs."""
    ### BEGIN SOLUTION
    best, best_macs = None, -1
    for alpha in alphas:
        with torch.device("meta"):
            net = mobilenet_v1(alpha)
        for r in resolutions:
            macs = count_macs(net, (1, 3, r, r))
            if best_macs < macs <= budget_macs:
                best, best_macs = (alpha, r), macs
    return best
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-13-budget-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_macs

_choice = best_v1_setting(200e6)
print("within 200 million multiply-adds:", _choice)
assert _choice in {(a, r) for a in (1.0, 0.75, 0.5, 0.25) for r in (224, 192, 160, 128)}
with torch.device("meta"):
    _macs = count_macs(mobilenet_v1(_choice[0]), (1, 3, _choice[1], _choice[1]))
assert _macs <= 200e6
_grid = dict(alphas=(1.0, 0.5), resolutions=(224, 128))
assert best_v1_setting(1e12, **_grid) == (1.0, 224) and best_v1_setting(1e3, **_grid) is None
assert best_v1_setting(200e6, **_grid) == (1.0, 128)  # 186 M beats 0.5 at 224 px (149 M)
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.mobilenet import mobilenet_v1 as _mv1


def _ref(budget_macs, alphas=(1.0, 0.75, 0.5, 0.25), resolutions=(224, 192, 160, 128)):
    _best, _bm = None, -1
    for _a in alphas:
        with torch.device("meta"):
            _net = _mv1(_a)
        for _r in resolutions:
            _mc = count_macs(_net, (1, 3, _r, _r))
            if _bm < _mc <= budget_macs:
                _best, _bm = (_a, _r), _mc
    return _best


_u = torch.rand(2, generator=generator(1305)).tolist()
agrees(best_v1_setting, _ref, [(40e6 + 300e6 * _u[0], (0.75, 0.5), (192, 96)), (10e6 + 100e6 * _u[1], (0.5, 0.25), (160, 128, 64))])
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto,
#   H. Adam (2017). *MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
#   Applications.* arXiv:1704.04861.
# - M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen (2018). *MobileNetV2: Inverted
#   Residuals and Linear Bottlenecks.* CVPR.
# - A. Howard, M. Sandler, G. Chu, L.-C. Chen, B. Chen, M. Tan, W. Wang, Y. Zhu, R. Pang,
#   V. Vasudevan, Q. V. Le, H. Adam (2019). *Searching for MobileNetV3.* ICCV.
# - L. Sifre (2014). *Rigid-Motion Scattering for Image Classification.* PhD thesis, École
#   Polytechnique (depthwise separable convolutions).
# - F. Chollet (2017). *Xception: Deep Learning with Depthwise Separable Convolutions.*
#   CVPR (arXiv 2016).
# - F. N. Iandola, S. Han, M. W. Moskewicz, K. Ashraf, W. J. Dally, K. Keutzer (2016).
#   *SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size.*
#   arXiv:1602.07360.
# - J. Hu, L. Shen, G. Sun (2018). *Squeeze-and-Excitation Networks.* CVPR.
# - M. Tan, B. Chen, R. Pang, V. Vasudevan, M. Sandler, A. Howard, Q. V. Le (2019).
#   *MnasNet: Platform-Aware Neural Architecture Search for Mobile.* CVPR.
# - T.-J. Yang, A. Howard, B. Chen, X. Zhang, A. Go, M. Sandler, V. Sze, H. Adam (2018).
#   *NetAdapt: Platform-Aware Neural Network Adaptation for Mobile Applications.* ECCV.
# - P. Ramachandran, B. Zoph, Q. V. Le (2017). *Searching for Activation Functions.*
#   arXiv:1710.05941 (swish).
