# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 14 · Comparing the classic architectures
#
# Part II built nine networks, one chapter at a time, each answering a question the
# previous one left open, and [chapter 23](23_vit_convnext.ipynb) builds two that show where
# the story went after 2020: the Vision Transformer ViT-B/16 and ConvNeXt-T. This chapter
# puts them all side by side (the last two as a preview) and measures them with one ruler: how many
# parameters they have, how many multiply-adds an image costs, how long a CPU takes to
# run them, and how accurate they are, on ImageNet (torchvision's published numbers) and
# on Fashion-MNIST (the runs of Part II). Nothing is trained here: the
# chapter reads the result records the earlier chapters wrote.
#
# **What you will learn**
#
# - the history of convolutional networks, from LeNet (1989) to ViT and ConvNeXt, on one
#   timeline;
# - how to count a network's cost by hand (parameters and multiply-adds of a convolution
#   and a linear layer) and with a counter, and why "FLOPs" in model zoos are usually MACs;
# - the cost of every architecture of the course at ImageNet size, checked against
#   torchvision, next to its published ImageNet accuracy;
# - why multiply-adds do not predict speed: CPU latency at batch 1 and batch 64;
# - what the course's own Fashion-MNIST runs show, and how to reproduce them;
# - what each architecture added, in one line each.

# %%
import dataclasses
import math
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torchvision
from IPython.display import display
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.inspect import first_conv
from cnnbook.models.registry import (ARCHITECTURES, Architecture, cost_table, fashion_table,
                                     get, latency_table, macs_at, torchvision_meta)
from cnnbook.profiling import count_macs, count_params
from cnnbook.results import collect
from cnnbook.summary import show_source
from cnnbook.timeline import milestones, plot_timeline

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # latency: the registry keys timed (None: all of them); side_1 / side_big: image side
    # in px at batch 1 / at the big batch (LeNet-5 and BN-LeNet always run at 28 px);
    # big_batch: its size; repeats_1 / repeats_big: timed passes after one warm-up pass;
    # big_gmacs: the most multiply-adds (G) one big batch may cost, heavier ones are not
    # timed at the big batch (None: no limit)
    "smoke": dict(latency=("lenet5", "resnet18", "mobilenet_v2"), side_1=32, side_big=32,
                  big_batch=4, repeats_1=2, repeats_big=1, big_gmacs=300),
    "cpu":   dict(latency=None, side_1=224, side_big=112, big_batch=64, repeats_1=5,
                  repeats_big=2, big_gmacs=300),
    "full":  dict(latency=None, side_1=224, side_big=224, big_batch=64, repeats_1=20,
                  repeats_big=5, big_gmacs=None),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
pd.set_option("display.width", 160)
print(f"profile {PROFILE}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# No profile trains anything. They differ in the latency measurement only: `smoke` times
# three networks on tiny images to run every cell; `cpu` times every network at 224 px
# with one image, and with a batch of 64 at 112 px, except ViT-B/16, which takes only
# 224 px images (section 5 says why, and why that batch is left out); `full` times the
# batch at 224 px, ViT-B/16's included, and repeats every measurement more often.
#
# ## 1. Sixty years in one picture
#
# The timeline below is drawn from `cnnbook.timeline.MILESTONES`: each dot is a paper,
# coloured by what it contributed, with the chapter of this course that covers it.

# %%
fig = plot_timeline()

# %% [markdown]
# Read it from left to right as a chain of answers:
#
# - **Foundations (1962-1986).** Hubel and Wiesel found cells in the visual cortex that
#   respond to edges in a small patch of the visual field, and cells that respond to the
#   same edge anywhere nearby ([chapter 01](01_biology_of_vision.ipynb)). Fukushima's
#   Neocognitron (1980) stacked the two kinds into a hierarchy; backpropagation (Rumelhart,
#   Hinton and Williams, 1986) made it possible to *learn* every layer of such a stack from
#   examples.
# - **LeNet (1989, 1998).** LeCun and colleagues trained a convolutional network end to end
#   to read ZIP codes; LeNet-5 read millions of cheques a day
#   ([chapter 05](05_lenet.ipynb)). Then, for a decade, hand-designed features with support
#   vector machines won most benchmarks.
# - **AlexNet (2012).** ImageNet (Deng et al., 2009) supplied a million labelled images;
#   GPUs supplied the compute. AlexNet won ILSVRC-2012 with a top-5 error of 15.3%
#   against 26.2% for the runner-up (Krizhevsky et al., 2012), and the field switched to
#   deep networks within two years ([chapter 06](06_alexnet.ipynb)).
# - **2013-2016, the architecture years.** NiN replaced the fully connected head with 1x1
#   convolutions and global average pooling ([chapter 08](08_nin.ipynb)); VGG made depth the
#   design knob with regular 3x3 blocks ([07](07_vgg.ipynb)); GoogLeNet went wide with
#   parallel paths ([09](09_googlenet.ipynb)); batch normalisation made deep networks easy
#   to optimise ([10](10_batch_norm.ipynb)); ResNet's shortcuts made them trainable at 152 layers
#   ([11](11_resnet.ipynb)); DenseNet reused every earlier feature map ([12](12_densenet.ipynb)).
# - **Efficiency (2017-2019).** MobileNet's depthwise separable convolutions, inverted
#   residuals and architecture search put these networks on phones
#   ([13](13_mobilenet.ipynb)); EfficientNet scaled depth, width and resolution together.
# - **Beyond CNNs (2020-2022).** The Vision Transformer (Dosovitskiy et al., 2020) cut an
#   image into 16x16 patches and dropped convolutions altogether; ConvNeXt (Liu et al.,
#   2022) answered by modernising a ResNet step by step with the Transformer's training
#   recipe and design choices, and matched it ([chapter 23](23_vit_convnext.ipynb) builds
#   both, and this chapter compares them with the rest). Convolutions did not go away: they are
#   what a Transformer must learn from data that a CNN has built in (locality and weight
#   sharing).
#
# The same milestones as a table, for reference:

# %%
timeline = pd.DataFrame([dataclasses.asdict(m) for m in milestones()])
timeline[["year", "name", "idea", "paper", "chapter"]]

# %% [markdown]
# ## 2. One table of architectures
#
# To compare networks fairly we need each one in a standard configuration. The module
# `cnnbook.models.registry` lists the architectures of Part II and the two of
# [chapter 23](23_vit_convnext.ipynb), each with its year, chapter, paper, what it added,
# and a builder from the course's *own* model files for its ImageNet configuration (3 x 224
# x 224 input, 1,000 classes). LeNet-5 and BN-LeNet never had an ImageNet version; they keep
# their 28 x 28 grey input. ViT-B/16 takes only the 224 px images it was built for
# (`fixed_input`): it learns one position embedding for each patch of a 14 x 14 grid, and a
# smaller image has fewer patches. Where torchvision ships the same network, the entry also
# names torchvision's builder and weights, so we can read torchvision's published numbers
# from the weights' metadata (no download). Three chapters contribute a second, bigger or
# newer variant (VGG-16, ResNet-50, MobileNet V3-Large). One entry is a small frozen dataclass:

# %%
show_source(Architecture)

# %%
registry = pd.DataFrame([{"key": a.key, "name": a.name, "year": a.year, "chapter": a.chapter,
                          "paper": a.paper, "Fashion-MNIST record": a.record or "",
                          "torchvision": a.torchvision or ""} for a in ARCHITECTURES])
registry

# %% [markdown]
# ## 3. What a network costs
#
# Two numbers describe the size of a network independently of any hardware: its number
# of **parameters** (memory, and how much data it can fit) and the number of
# **multiply-adds** (MACs) one forward pass of one image needs (work). Both are easy to
# count by hand for the two layers that matter.
#
# A convolution with $c_i$ input channels, $c_o$ output channels, a $k_h \times k_w$
# kernel and $g$ groups has $c_o \cdot (c_i/g) \cdot k_h k_w$ weights (plus $c_o$ biases),
# and each weight is used once at every output position, so it costs
# $c_o \cdot (c_i/g) \cdot k_h k_w \cdot h_o w_o$ MACs. A linear layer from $n$ to $m$
# units has $nm$ weights ($+m$ biases) and costs $nm$ MACs: each weight is used exactly
# once per image. That asymmetry is the whole story of fully connected heads: many
# parameters, little work.

# %%
def conv_macs(conv: nn.Conv2d, out_h: int, out_w: int) -> int:
    """Multiply-adds of a 2-D convolution producing an out_h x out_w map (bias not counted)."""
    k_h, k_w = conv.kernel_size
    return conv.out_channels * (conv.in_channels // conv.groups) * k_h * k_w * out_h * out_w


def linear_macs(fc: nn.Linear) -> int:
    """Multiply-adds of a linear layer for one input vector."""
    return fc.in_features * fc.out_features


with torch.device("meta"):  # shapes only: no memory, no initialisation, instant
    alex = get("alexnet").build()
    out = first_conv(alex)(torch.zeros(1, 3, 224, 224))
conv1 = first_conv(alex)
fc1 = next(m for m in alex.modules() if isinstance(m, nn.Linear))
print(f"AlexNet conv1 {tuple(conv1.weight.shape)} -> output {tuple(out.shape[1:])}: "
      f"{count_params(conv1):,} parameters, by hand {conv_macs(conv1, *out.shape[-2:]) / 1e6:.1f} M MACs, "
      f"counter {count_macs(conv1, (1, 3, 224, 224)) / 1e6:.1f} M")
print(f"AlexNet first linear layer {fc1.in_features} -> {fc1.out_features}: "
      f"{count_params(fc1):,} parameters, by hand {linear_macs(fc1) / 1e6:.1f} M MACs, "
      f"counter {count_macs(fc1, (1, fc1.in_features)) / 1e6:.1f} M")
assert conv_macs(conv1, *out.shape[-2:]) == count_macs(conv1, (1, 3, 224, 224))
assert linear_macs(fc1) == count_macs(fc1, (1, fc1.in_features))
del alex

# %% [markdown]
# The printout shows the asymmetry inside one network: the first convolution has few
# parameters and costs many MACs; the first linear layer is the other way round.
#
# For whole networks the course uses `cnnbook.profiling.count_macs`, which runs one
# forward pass under PyTorch's `FlopCounterMode` and halves its count (the counter says
# 2 FLOPs per multiply-add). A word on units: torchvision's model pages and most papers
# call their number "FLOPs" or "GFLOPS" but count multiply-adds; we say MACs throughout,
# and 1 MAC = 2 FLOPs.
#
# `cost_table` builds every registry entry on PyTorch's `meta` device (tensors with a
# shape but no memory, so even VGG-16's 138 M parameters cost nothing), counts its
# parameters and MACs, and puts them next to torchvision's published parameters,
# GMACs and ImageNet-1K accuracies (single 224 px centre crop, top-1 and top-5, %).

# %%
costs = cost_table()
same = costs.dropna(subset=["tv_params_m"])
assert (same["params_m"] == same["tv_params_m"]).all(), "our parameter counts are torchvision's"
assert ((same["gmacs"] / same["tv_gmacs"] - 1).abs() < 0.01).all(), "MACs within 1%"
print(f"{len(same)} of {len(costs)} architectures have a torchvision twin: same parameters, "
      f"MACs within {100 * (same['gmacs'] / same['tv_gmacs'] - 1).abs().max():.2f}% of its numbers")
costs.style.format({"params_m": "{:.3f}", "gmacs": "{:.4f}", "tv_params_m": "{:.3f}",
                    "tv_gmacs": "{:.3f}", "acc1": "{:.1f}", "acc5": "{:.1f}"}, na_rep="—")

# %% [markdown]
# Columns: `params_m` and `gmacs` are measured on the course's models (millions of
# parameters, billions of multiply-adds per image); `tv_*`, `acc1` and `acc5` are
# torchvision's published numbers for the weights `IMAGENET1K_V1` (trained with its
# reference recipes; the papers' own numbers differ, sometimes by several points:
# torchvision's AlexNet, for one, is a single-tower variant of the 2012 network). LeNet-5 and BN-LeNet run on 28 px
# grey images, which is why their costs look tiny; NiN has no torchvision twin (the
# course's NiN is d2l's AlexNet-sized version). ViT-B/16 and ConvNeXt-T are
# [chapter 23](23_vit_convnext.ipynb)'s own models, checked in the same way. For the ViT the
# counter must also see the two matrix products inside attention, $q k^\top$ and the weights
# times the values: PyTorch's fused attention kernel hides them from it on a CPU, so
# `cost_table` counts the ViT with attention written out ([chapter 23](23_vit_convnext.ipynb)'s
# `set_fused_attention(False)`). The next cell shows what they add.
#
# Some ratios worth reading off the table, printed by the next cell:

# %%
c = costs.set_index("architecture")
print(f"VGG-16 / AlexNet: {c.at['VGG-16', 'gmacs'] / c.at['AlexNet', 'gmacs']:.0f}x the MACs, "
      f"{c.at['VGG-16', 'params_m'] / c.at['AlexNet', 'params_m']:.1f}x the parameters")
print(f"GoogLeNet / AlexNet: {c.at['GoogLeNet', 'gmacs'] / c.at['AlexNet', 'gmacs']:.1f}x the MACs, "
      f"{c.at['GoogLeNet', 'params_m'] / c.at['AlexNet', 'params_m']:.2f}x the parameters")
print(f"ResNet-18 / VGG-11: {c.at['ResNet-18', 'gmacs'] / c.at['VGG-11', 'gmacs']:.2f}x the MACs, "
      f"{c.at['ResNet-18', 'params_m'] / c.at['VGG-11', 'params_m']:.2f}x the parameters")
print(f"MobileNet V2 / ResNet-18: {c.at['MobileNet V2', 'gmacs'] / c.at['ResNet-18', 'gmacs']:.2f}x "
      f"the MACs, {c.at['MobileNet V2', 'params_m'] / c.at['ResNet-18', 'params_m']:.2f}x the parameters")
print(f"DenseNet-121 / ResNet-18: {c.at['DenseNet-121', 'gmacs'] / c.at['ResNet-18', 'gmacs']:.2f}x "
      f"the MACs, {c.at['DenseNet-121', 'params_m'] / c.at['ResNet-18', 'params_m']:.2f}x the parameters")
later_vs_r50 = {}
for name in ("ConvNeXt-T", "ViT-B/16"):
    later_vs_r50[name] = (c.at[name, "gmacs"] / c.at["ResNet-50", "gmacs"],
                          c.at[name, "params_m"] / c.at["ResNet-50", "params_m"])
    print(f"{name} / ResNet-50: {later_vs_r50[name][0]:.2f}x the MACs, "
          f"{later_vs_r50[name][1]:.2f}x the parameters")
with torch.device("meta"):
    vit = get("vit_b_16").build()
tokens, width, depth = vit.num_patches + 1, vit.blocks[0].attn.dim, len(vit.blocks)
attention = depth * 2 * tokens ** 2 * width / 1e9   # q k^T and weights x v: N x N x d each
vit_macs, vit_tv = c.at["ViT-B/16", "gmacs"], c.at["ViT-B/16", "tv_gmacs"]
print(f"ViT-B/16 ({tokens} tokens of width {width}, {depth} blocks): attention's two products "
      f"cost {attention:.3f} of its {vit_macs:.3f} GMACs; a counter blind to them would be "
      f"{100 * ((vit_macs - attention) / vit_tv - 1):+.1f}% off torchvision's {vit_tv}")
assert abs((vit_macs - attention) / vit_tv - 1) > 0.01 > abs(vit_macs / vit_tv - 1)
assert attention / vit_macs < 0.1   # a small share at 224 px
assert all(1 < r < 1.2 for r in later_vs_r50["ConvNeXt-T"])
assert 3.5 < later_vs_r50["ViT-B/16"][0] < 5 and later_vs_r50["ViT-B/16"][1] > 3
del vit

# %% [markdown]
# Parameters and MACs are not the same kind of cost, and the architectures trade one
# for the other: VGG multiplies AlexNet's work many times over by going deep at high
# resolution; GoogLeNet and NiN do more work than AlexNet with a fraction of its
# parameters, because they dropped the huge fully connected head (exercise 1 measures
# how much of AlexNet and VGG that head is); DenseNet has fewer parameters than ResNet-18
# and needs more MACs; MobileNet V2 cuts both. Of [chapter 23](23_vit_convnext.ipynb)'s two
# networks, ConvNeXt-T costs a little more than ResNet-50 in both parameters and MACs (less
# than a fifth more, the printout says), while ViT-B/16 needs more than three times
# ResNet-50's parameters and about four times its work. At 224 px the ViT's attention is
# only a small share of that work: most of it is the linear layers that every one of its 197
# tokens goes through.
#
# ## 4. Accuracy against cost on ImageNet
#
# How much accuracy does each multiply-add buy? The plot below uses torchvision's
# published ImageNet top-1 accuracies and GMACs (x axis on a log scale; the area of each
# marker is proportional to the parameter count). The course's networks include
# [chapter 23](23_vit_convnext.ipynb)'s ViT-B/16 (2020) and ConvNeXt-T (2022); for context
# the plot adds one model the course does not build, read from torchvision's metadata in the
# same way: EfficientNet-B0 (2019).

# %%
later = {"EfficientNet-B0": "efficientnet_b0"}
points = [(row.architecture, row.tv_gmacs, row.acc1, row.tv_params_m, "course (chapters 06-13, 23)")
          for row in costs.dropna(subset=["acc1"]).itertuples()]
for label, builder in later.items():
    meta = torchvision_meta(builder)
    points.append((label, meta["gmacs"], meta["acc1"], meta["params"] / 1e6, "not built, for context"))
imagenet = pd.DataFrame(points, columns=["model", "gmacs", "acc1", "params_m", "group"])
fig = viz.plot_tradeoff(imagenet["gmacs"], imagenet["acc1"], imagenet["model"],
                        sizes=imagenet["params_m"], groups=imagenet["group"],
                        xlabel="multiply-adds per 224 px image (G, log scale)",
                        ylabel="ImageNet-1K top-1 accuracy (%)",
                        title="Accuracy vs cost (torchvision's published numbers)")
print("source: torchvision.models weights metadata (IMAGENET1K_V1), e.g.",
      torchvision_meta("resnet18")["recipe"])
v1, v2 = torchvision_meta("resnet50", "IMAGENET1K_V1"), torchvision_meta("resnet50", "IMAGENET1K_V2")
print(f"ResNet-50, same layers, two recipes: V1 {v1['acc1']:.1f}%, V2 {v2['acc1']:.1f}% "
      f"(+{v2['acc1'] - v1['acc1']:.1f} points)")
best = c["acc1"].idxmax()
print(f"most accurate course network: {best} ({c.at[best, 'acc1']:.1f}% at "
      f"{c.at[best, 'tv_gmacs']:.2f} GMACs); ViT-B/16: {c.at['ViT-B/16', 'acc1']:.1f}% at "
      f"{c.at['ViT-B/16', 'tv_gmacs']:.2f} GMACs, "
      f"{c.at['ViT-B/16', 'tv_gmacs'] / c.at['ConvNeXt-T', 'tv_gmacs']:.1f}x ConvNeXt-T's")
assert best == "ConvNeXt-T"
assert c.at["ViT-B/16", "acc1"] < c.at["ConvNeXt-T", "acc1"]
assert c.at["ViT-B/16", "tv_gmacs"] > 3 * c.at["ConvNeXt-T", "tv_gmacs"]
for key in ("vit_b_16", "convnext_tiny"):
    docs = torchvision.models.get_model_weights(key)["IMAGENET1K_V1"].meta.get("_docs", "")
    print(f"{get(key).name}, torchvision's note: {' '.join(docs.split())}")

# %% [markdown]
# The course's networks line up along a rising frontier, and the frontier moves left
# over time: each generation reaches a given accuracy with fewer multiply-adds than the
# one before. AlexNet sits alone at the bottom; VGG buys its accuracy with an enormous
# amount of work; GoogLeNet and ResNet-18 match the smallest VGG, VGG-11, at a fraction
# of its cost (VGG-16 stays ahead of both in the table above); the MobileNets reach the
# same level at a fraction of *their* cost. Exercise 3 asks you to find the
# networks on the frontier exactly.
#
# [Chapter 23](23_vit_convnext.ipynb)'s pair sits at the top. ConvNeXt-T is the most
# accurate network of the course, and ViT-B/16, two years older, is less accurate with more
# than three times its multiply-adds (the lines after the plot). torchvision's note, printed
# last, says the ViT was trained from scratch on ImageNet-1K: with a million images a
# Transformer must learn the locality that a ConvNet has built in, and the original ViT beat
# ResNets only after pre-training on far bigger datasets (ImageNet-21k, JFT-300M;
# Dosovitskiy et al., 2020). [Chapter 23](23_vit_convnext.ipynb) measures the same trade-off
# on CIFAR-10.
#
# Two cautions. First, these are torchvision's weights, trained with its own recipes. The
# last line of the printout shows what a newer recipe (torchvision's `IMAGENET1K_V2`
# weights: longer training, stronger augmentation and regularisation) does for ResNet-50
# without changing a single layer, so part of what the plot credits to an architecture is
# its training. Second, the newest networks (EfficientNet-B0, ViT-B/16, ConvNeXt-T) were
# trained with such modern recipes and the older ones were not: the ConvNeXt paper
# reports that its recipe alone lifts a ResNet-50 from 76.1% to 78.8% top-1 (Liu et al.,
# 2022), before any change to the architecture.
#
# ## 5. Latency on a CPU
#
# MACs count work, not time. Time depends on how well the hardware can do that work:
# a large convolution is a big matrix product that keeps every arithmetic unit busy,
# while a depthwise convolution or a concatenation moves a lot of memory for little
# arithmetic. So we measure: `latency_table` builds each network, runs it in eval mode
# without gradients, and reports the median over several timed forward passes
# (`cnnbook.profiling.latency_ms`), once with a single image, the latency a phone app
# sees, and once with a big batch, the throughput a server sees.

# %%
def gmacs_at(arch: Architecture, side: int) -> float:
    """GMACs of one image at `side` px (28 px networks and ViT-B/16 keep their own size)."""
    return macs_at(arch, side) / 1e9


B = cfg.big_batch
lat_archs = [get(k) for k in cfg.latency] if cfg.latency else list(ARCHITECTURES)
batch_gmacs = {a.name: B * gmacs_at(a, cfg.side_big) for a in lat_archs}
big_archs = [a for a in lat_archs if cfg.big_gmacs is None or batch_gmacs[a.name] <= cfg.big_gmacs]
skipped = [a.name for a in lat_archs if a not in big_archs]
for name in ("VGG-16", "ViT-B/16"):
    print(f"one batch of 64 at 224 px through {name} is {64 * c.at[name, 'gmacs']:,.0f} GMACs "
          f"({2 * 64 * c.at[name, 'gmacs'] / 1000:.1f} TFLOPs)")
assert 1 < c.at["ViT-B/16", "gmacs"] / c.at["VGG-16", "gmacs"] < 1.5
print(f"timing {len(lat_archs)} networks at batch 1 ({cfg.side_1} px) and {len(big_archs)} at "
      f"batch {B} ({cfg.side_big} px), on {torch.get_num_threads()} CPU threads")
heaviest = max(batch_gmacs[a.name] for a in big_archs)
for name in skipped:
    print(f"not timed at batch {B}: {name}, {batch_gmacs[name]:,.0f} GMACs per batch, over the "
          f"{PROFILE} profile's cap of {cfg.big_gmacs} ({batch_gmacs[name] / heaviest:.1f}x the "
          f"heaviest batch timed, {heaviest:,.0f} GMACs)")
if "ViT-B/16" in skipped:
    assert batch_gmacs["ViT-B/16"] > 3 * heaviest
start = time.perf_counter()
torch.manual_seed(0)
lat_1 = latency_table(lat_archs, side=cfg.side_1, batch_size=1, repeats=cfg.repeats_1)
lat_big = latency_table(big_archs, side=cfg.side_big, batch_size=B, repeats=cfg.repeats_big)
print(f"measured in {time.perf_counter() - start:.0f} s")

# %% [markdown]
# The first line of the printout is the reason for the `cpu` profile's choice: that much
# work for one batch of 64 images at 224 px through VGG-16 takes many seconds on a
# two-core laptop, and every timing is repeated. At 112 px each image costs about a
# quarter as much (the work of a convolution grows with the number of output positions,
# the square of the side; exercise 2 checks it), which keeps the whole measurement to a
# few minutes while still showing how batching changes the picture. The `full` profile
# times the batch at 224 px.
#
# ViT-B/16 cannot take the smaller images: its position embeddings fix it at 224 px. Its
# batch of 64 costs a little more than VGG-16's at 224 px (the first two lines), several
# times the heaviest batch the `cpu` profile times, so the `cpu` profile's cap
# (`big_gmacs`) leaves it out of the batch columns (the printout names what was left out
# and by how much) and times it with one image only; the `full` profile times it at
# batch 64 too. If other programs run on the machine, timings vary from run to run;
# compare networks measured in the same run.

# %%
timed_big = lat_big.set_index("architecture").reindex(lat_1["architecture"])
speed = pd.DataFrame({
    "architecture": lat_1["architecture"],
    "input (batch 1)": lat_1["input"],
    "GMACs/image (batch 1)": [gmacs_at(a, cfg.side_1) for a in lat_archs],
    "ms (batch 1)": lat_1["ms"],
    f"input (batch {B})": timed_big["input"].fillna("not timed").to_numpy(),
    f"GMACs/image (batch {B})": [batch_gmacs[a.name] / B if a in big_archs else math.nan
                                 for a in lat_archs],
    f"ms/image (batch {B})": timed_big["ms_per_image"].to_numpy(),
})
speed["GMAC/s (batch 1)"] = speed["GMACs/image (batch 1)"] / speed["ms (batch 1)"] * 1000
speed[f"GMAC/s (batch {B})"] = speed[f"GMACs/image (batch {B})"] / speed[f"ms/image (batch {B})"] * 1000
speed["batching gain"] = speed["ms (batch 1)"] / speed[f"ms/image (batch {B})"]
numeric = [col for col in speed.columns if col != "architecture" and not col.startswith("input")]
speed.style.format("{:.3g}", subset=numeric, na_rep="—")

# %% [markdown]
# `GMAC/s` is the useful work per second the CPU achieved on each network: MACs divided
# by time. If MACs predicted time, that column would be constant. `batching gain` is how
# many more images per second the big batch processes than single images at a time
# (when the big batch runs at a smaller side, as in the `cpu` profile, part of that gain
# is the smaller images; the `GMAC/s` columns are fair either way). The plots show the
# same data: time per image against MACs per image, both on log scales.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
viz.plot_tradeoff(speed["GMACs/image (batch 1)"], speed["ms (batch 1)"], speed["architecture"],
                  ax=axes[0], xlabel=f"GMACs per image at {cfg.side_1} px (log)",
                  ylabel="milliseconds per image (log)", title="batch 1", logy=True)
batched = speed.dropna(subset=[f"ms/image (batch {B})"])
viz.plot_tradeoff(batched[f"GMACs/image (batch {B})"], batched[f"ms/image (batch {B})"],
                  batched["architecture"], ax=axes[1],
                  xlabel=f"GMACs per image at {cfg.side_big} px (log)",
                  ylabel="milliseconds per image (log)", title=f"batch {B}", logy=True)
fig.tight_layout()

# %%
s = speed.set_index("architecture")
fastest = s["GMAC/s (batch 1)"].idxmax()
slowest = s["GMAC/s (batch 1)"].drop(["LeNet-5", "BN-LeNet"], errors="ignore").idxmin()
print(f"highest GMAC/s at batch 1: {fastest} ({s.at[fastest, 'GMAC/s (batch 1)']:.3g}); "
      f"lowest among the ImageNet networks: {slowest} ({s.at[slowest, 'GMAC/s (batch 1)']:.3g})")
if {"ResNet-18", "MobileNet V2"} <= set(s.index):
    macs_ratio = s.at["ResNet-18", "GMACs/image (batch 1)"] / s.at["MobileNet V2", "GMACs/image (batch 1)"]
    time_ratio = s.at["ResNet-18", "ms (batch 1)"] / s.at["MobileNet V2", "ms (batch 1)"]
    print(f"ResNet-18 / MobileNet V2 at batch 1: {macs_ratio:.1f}x the MACs, {time_ratio:.1f}x the time")
for name in ("ConvNeXt-T", "ViT-B/16"):
    if {name, "ResNet-50"} <= set(s.index):
        print(f"{name} / ResNet-50 at batch 1: "
              f"{s.at[name, 'GMACs/image (batch 1)'] / s.at['ResNet-50', 'GMACs/image (batch 1)']:.2f}x "
              f"the MACs, {s.at[name, 'ms (batch 1)'] / s.at['ResNet-50', 'ms (batch 1)']:.2f}x the time, "
              f"{s.at[name, 'GMAC/s (batch 1)']:.3g} vs {s.at['ResNet-50', 'GMAC/s (batch 1)']:.3g} GMAC/s")

# %% [markdown]
# The second line of the printout compares ResNet-18 with MobileNet V2 twice: in MACs and
# in time. On a CPU the second ratio is usually much smaller than the first: MobileNet's depthwise 3x3
# convolutions do 1/N of a standard convolution's work ([chapter 13](13_mobilenet.ipynb))
# but touch as much memory, so the CPU spends its time waiting for data rather than
# computing. Networks made of large dense convolutions (VGG, ResNet) typically achieve the
# highest GMAC/s (the first line names the best and the worst of this run); LeNet-5 and
# BN-LeNet are so small that a pass is dominated by the fixed overhead of calling each
# layer. Batching amortises that overhead and lets the matrix products grow, which is
# why servers batch requests and phones cannot.
#
# In the `cpu` and `full` profiles the last two lines put
# [chapter 23](23_vit_convnext.ipynb)'s networks beside ResNet-50, whose MACs are close to
# ConvNeXt-T's. ViT-B/16's work is almost all large matrix products (the linear layers over
# its 197 tokens), the kind of work a CPU typically does at its best rate. ConvNeXt-T mixes
# 7x7 depthwise convolutions (little arithmetic per byte moved, as in MobileNet) with large
# per-pixel linear layers; whether that makes it faster or slower per MAC than ResNet-50
# depends on the CPU and its libraries, so read the lines of your own run. The lesson for
# deployment (Part IV, from [chapter 21](21_compression.ipynb)): measure on the target
# device; MACs are a proxy, and a poor one across very different layer types.
#
# ## 6. The course's own runs: Fashion-MNIST
#
# Every Part II chapter trained its network on Fashion-MNIST and wrote a result record
# (`cnnbook.fit(..., name=..., chapter=...)`). `cnnbook.results.collect("cpu",
# published=True)` reads the `cpu`-profile records published in the repository's
# `results/cpu/` folder, replaced by your own newer runs from `build/results/cpu/`, and
# `fashion_table` picks each chapter's main record. When a record is missing, the table
# says so and how to produce it; it never fills in a number.

# %%
profiles = ["cpu"] if PROFILE == "cpu" else ["cpu", PROFILE]
fashion = {p: fashion_table(collect(p, published=True), p) for p in profiles}
columns = ["chapter", "architecture", "record", "test_acc", "d2l_acc", "recipe", "minutes",
           "epochs", "params", "source", "note"]
for p, table in fashion.items():
    found = int((table["source"] != "missing").sum())
    print(f"{p} profile: {found} of {len(table)} chapters have a record"
          + ("" if p == "cpu" else " (a quick run of the whole notebook, not a meaningful accuracy)"))
    display(table[columns].style.format({"test_acc": "{:.3f}", "d2l_acc": "{:.3f}",
                                         "minutes": "{:.1f}", "epochs": "{:.0f}",
                                         "params": "{:,.0f}"}, na_rep="—"))
cpu_acc = fashion["cpu"]["test_acc"].dropna()
imagenet_acc = costs.loc[costs["chapter"] < "14", "acc1"].dropna()   # Part II's networks
if len(cpu_acc) >= 2:
    print(f"Fashion-MNIST (cpu records): test accuracies from {cpu_acc.min():.1%} to "
          f"{cpu_acc.max():.1%}, a spread of {100 * (cpu_acc.max() - cpu_acc.min()):.1f} points")
print(f"ImageNet (torchvision, Part II's networks): top-1 from {imagenet_acc.min():.1f}% to "
      f"{imagenet_acc.max():.1f}%, a spread of {imagenet_acc.max() - imagenet_acc.min():.1f} points")

# %% [markdown]
# Read this table with the configurations in mind, which the chapters chose so that each
# run finishes in minutes on a laptop CPU: most networks run at native 28 px with reduced
# width and fewer epochs than d2l's settings (the `params` column shows how big each
# trained network really was, and each chapter states its choices), and the `recipe`
# column says how each was trained: "laptop" is Part III's (momentum, weight decay,
# one-cycle, label smoothing), "d2l" plain SGD at a constant rate. `d2l_acc` is d2l's
# published accuracy for the same network, trained on a GPU at 96 or 224 px. It answers "what
# does a learner get in a few minutes", not "which architecture is best": at this scale
# and budget a well-trained small network can beat a starved big one. Fashion-MNIST is
# also an easy task for all of them: compare the spread of the accuracies printed above
# (when there are records) with the spread of the same architectures on ImageNet, the
# last line. A hard benchmark separates architectures that an easy one cannot.
#
# When records exist, the plot shows accuracy against the size of each trained network
# and against its training time:

# %%
plotted = None
for p, table in fashion.items():
    have = table[table["source"] != "missing"]
    if len(have):
        plotted = p
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
        viz.plot_tradeoff(have["params"], have["test_acc"], have["architecture"], ax=axes[0],
                          xlabel="parameters of the trained network (log)",
                          ylabel="Fashion-MNIST test accuracy", title=f"{p} profile: size")
        viz.plot_tradeoff(have["minutes"], have["test_acc"], have["architecture"], ax=axes[1],
                          xlabel="minutes of training (log)", ylabel="Fashion-MNIST test accuracy",
                          title=f"{p} profile: time")
        fig.tight_layout()
        break
if plotted is None:
    print("no Fashion-MNIST records yet: run `make book PROFILE=cpu` (or the chapters 05-13 "
          "in the cpu profile) and run this notebook again")
else:
    print(f"plotted the {plotted} records")

# %% [markdown]
# The records store the parameter count of each trained network but not its
# multiply-adds; exercise 2 gives you the tool to estimate them from the resolution.
#
# ## 7. Your own trade-off plot
#
# Every plot above fixed its axes. The `TradeoffExplorer` lets you choose them: the data
# (torchvision's ImageNet numbers with this run's CPU times from section 5, or the course's
# Fashion-MNIST records from section 6), the architectures to show (Ctrl- or Shift-click to
# pick several), the x and y axes among the measured columns, and log or linear scales. It
# rings the **Pareto front**: the architectures that no other *shown* architecture beats on
# both axes at once, where a higher accuracy and a lower cost (parameters, multiply-adds,
# milliseconds, minutes) count as better; each axis label says which way is better. The
# front is found by `cnnbook.widgets.tradeoff.pareto_set`, the definition written out
# (exercise 3 asks you to write a faster one). The cell first prints the front for four
# questions, computed by the same function.

# %%
from cnnbook.widgets.tradeoff import TradeoffExplorer, front_labels

TOP1, TOP5, GMACS, PARAMS = ("ImageNet top-1 (%)", "ImageNet top-5 (%)",
                             "GMACs per 224 px image", "parameters (M)")
MS_1 = f"CPU ms per image, batch 1 at {cfg.side_1} px"
MS_B = f"CPU ms per image, batch {B} at {cfg.side_big} px"
FASHION_ACC, FASHION_MIN = "Fashion-MNIST test accuracy", "minutes of training"
acc5 = costs.set_index("architecture")["acc5"].to_dict()
acc5.update({label: torchvision_meta(builder)["acc5"] for label, builder in later.items()})
timed = speed.set_index("architecture")
imagenet_choice = pd.DataFrame({
    "architecture": imagenet["model"], TOP1: imagenet["acc1"], TOP5: imagenet["model"].map(acc5),
    GMACS: imagenet["gmacs"], PARAMS: imagenet["params_m"],
    MS_1: imagenet["model"].map(timed["ms (batch 1)"]),
    MS_B: imagenet["model"].map(timed[f"ms/image (batch {B})"])})
cpu_records = fashion["cpu"]
fashion_choice = pd.DataFrame({
    "architecture": cpu_records["architecture"], FASHION_ACC: cpu_records["test_acc"],
    "d2l's published accuracy (GPU)": cpu_records["d2l_acc"],
    "parameters of the trained network": cpu_records["params"],
    FASHION_MIN: cpu_records["minutes"],
    "training images per second": cpu_records["examples_per_sec"]})
better = {TOP1: "higher", TOP5: "higher", GMACS: "lower", PARAMS: "lower", MS_1: "lower",
          MS_B: "lower", FASHION_ACC: "higher", "d2l's published accuracy (GPU)": "higher",
          "parameters of the trained network": "lower", FASHION_MIN: "lower",
          "training images per second": "higher"}
IMAGENET_DATA, FASHION_DATA = ("ImageNet: torchvision's accuracy, this run's CPU time",
                               "Fashion-MNIST: the course's cpu records")
tables = {IMAGENET_DATA: imagenet_choice, FASHION_DATA: fashion_choice}

have_ms = list(imagenet_choice.dropna(subset=[MS_1])["architecture"])
questions = {"MACs": (IMAGENET_DATA, GMACS, TOP1, None),
             "MACs, timed only": (IMAGENET_DATA, GMACS, TOP1, have_ms),
             "time": (IMAGENET_DATA, MS_1, TOP1, have_ms),
             "training minutes": (FASHION_DATA, FASHION_MIN, FASHION_ACC, None)}
fronts = {}
for key, (data, x, y, chosen) in questions.items():
    table = tables[data]
    rows = table if chosen is None else table[table["architecture"].isin(chosen)]
    n = int(rows[[x, y]].notna().all(axis=1).sum())
    fronts[key] = front_labels(table, x, y, better, selected=chosen) if n else []
    print(f"{y} against {x}{'' if chosen is None else ' (networks timed)'}: "
          f"{len(fronts[key])} of {n} on the front: {', '.join(fronts[key]) or 'no data'}")
left = [a for a in fronts["MACs, timed only"] if a not in fronts["time"]]
joined = [a for a in fronts["time"] if a not in fronts["MACs, timed only"]]
print(f"x from multiply-adds to milliseconds, among the {len(have_ms)} networks timed: "
      f"{', '.join(left) or 'none'} left the front, {', '.join(joined) or 'none'} joined it")
for col in (GMACS, PARAMS):
    order = imagenet_choice.sort_values(col, kind="stable")["architecture"]
    print(f"cheapest to dearest by {col}: {', '.join(order)}")
explorer = TradeoffExplorer(tables, better, data=IMAGENET_DATA, x=GMACS, y=TOP1)
assert explorer.state["error"] is None and explorer.state["front"] == fronts["MACs"]
explorer

# %% [markdown]
# What to look for:
#
# - **Cost is not one number.** The printout lists the ImageNet front twice among the same
#   networks, once against multiply-adds and once against this CPU's milliseconds, and
#   names the networks that leave or join it when the x axis changes. Section 5 says why
#   the two can differ; set the x axis to each in turn and watch those networks.
# - **The front depends on who is shown.** Unselect a network on the front: the networks
#   it alone beat join the front. Unselect the MobileNets and see which older networks
#   look efficient without them.
# - **Parameters and multiply-adds.** The last two lines of the printout order the
#   networks by each; put parameters on the x axis and see which networks move, and
#   whether the front changes. Section 3 and exercise 1 explain the moves: a fully
#   connected head holds many parameters and costs few multiply-adds.
# - **The course's own runs.** Switch the data to Fashion-MNIST and put minutes of
#   training on the x axis (the fourth line of the printout gives that front): compare its
#   accuracy range with ImageNet's (section 6 printed both spreads). Networks without a
#   record are listed above the plot, not drawn.
# - **Log or linear.** A log x axis spaces costs that span orders of magnitude evenly; on
#   a linear one the cheap networks crowd at the left. The front does not change with the
#   scale, only how it looks.
#
# ## 8. What each architecture added
#
# The registry stores one line per network, the lesson its chapter teaches (variants
# such as VGG-16 say what they change):

# %%
lessons = pd.DataFrame([{"year": a.year, "chapter": a.chapter, "architecture": a.name,
                         "what it added": a.idea} for a in ARCHITECTURES])
lessons.sort_values(["year", "chapter"]).reset_index(drop=True)

# %% [markdown]
# Put together, the nine chapters of Part II are one argument, and
# [chapter 23](23_vit_convnext.ipynb) carries it past the CNN:
#
# - **LeNet-5**: the template. Convolutions share weights across positions, pooling
#   forgives small shifts, and everything is learned end to end.
# - **AlexNet**: the same template, eight layers deep, made trainable by ReLU, regularised
#   by dropout and augmentation, and fed by ImageNet and GPUs. Scale was the idea.
# - **VGG**: design with *blocks*, not layers; stacks of 3x3 convolutions see as far as
#   one big kernel with fewer parameters and more non-linearities. Deeper is better.
# - **NiN**: a 1x1 convolution is a small MLP at every pixel; global average pooling
#   replaces the fully connected head and most of the parameters with it.
# - **GoogLeNet**: go *wide* as well as deep, with parallel paths of several kernel
#   sizes, kept cheap by 1x1 reductions.
# - **Batch normalisation**: keep every layer's input at a stable scale; training gets
#   faster and less sensitive to the learning rate.
# - **ResNet**: make depth trainable by letting every block start from the identity;
#   residual connections are now in almost every deep network.
# - **DenseNet**: reuse features by concatenation; few parameters, but more work and
#   memory per image than the parameter count suggests.
# - **MobileNet**: spend every multiply-add carefully, with depthwise separable
#   convolutions, inverted residuals and architecture search.
# - **Vision Transformer**: drop the convolutions; cut the image into 16x16 patches and
#   let attention learn which patches matter to each other. With little built in, it
#   needs far more data, or a strong training recipe, to learn what a CNN is given
#   (section 4).
# - **ConvNeXt**: bring the Transformer's design choices and recipe back into a ResNet
#   (patchify stem, 7x7 depthwise convolutions, LayerNorm, inverted bottlenecks, GELU): a
#   pure ConvNet again, more accurate than ViT-B/16 in torchvision's numbers with less
#   than a third of its multiply-adds (section 4).
#
# Between the two, EfficientNet (2019, not built in the course) scaled depth, width and
# resolution together.
#
# ## Summary
#
# - Count parameters and multiply-adds by hand for a convolution
#   ($c_o c_i k_h k_w$ weights, used at all $h_o w_o$ positions) and a linear layer
#   ($nm$ weights, used once); the course's counter agrees, and for every network that
#   torchvision also ships, our parameter counts and MACs match its published ones,
#   [chapter 23](23_vit_convnext.ipynb)'s ViT-B/16 and ConvNeXt-T included (for the ViT, the
#   counter must see the matrix products inside attention).
# - Architectures trade parameters for work: fully connected heads are parameter-heavy
#   and cheap, convolutions at high resolution are cheap in parameters and expensive in
#   work.
# - On ImageNet each generation reaches the same accuracy with fewer MACs; part of
#   what the plots credit to architectures is better training. ConvNeXt-T is the most
#   accurate network of the course at about ResNet-50's cost; ViT-B/16, trained on
#   ImageNet-1K alone, needs more than three times that work for less accuracy.
# - MACs do not predict latency across layer types; batch size changes the picture;
#   measure on the device you deploy to.
# - The course's Fashion-MNIST records are read, never retyped; a missing record is
#   reported with the command that produces it (`make book PROFILE=cpu`).
#
# ## Exercises
#
# **Exercise 1 (where the parameters live).** Write `fc_share(model)`: the fraction of
# a model's parameters that sit in its `nn.Linear` layers (weights and biases). The test
# checks it on LeNet-5, AlexNet and NiN, and prints it for every network of the
# registry. Which networks are mostly a fully connected head? ViT-B/16 and ConvNeXt-T
# print shares above 90%, as AlexNet does, yet neither has a big head: what do their
# `nn.Linear` layers do? (Hint: a linear layer applied to every token or every pixel is
# a 1x1 convolution.)

# %% nbgrader={"grade": false, "grade_id": "ex-14-fc-share", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fc_share(model: nn.Module) -> float:
    """Fraction of the parameters of `model` that belong to nn.Linear layers."""
    ### BEGIN SOLUTION
    linear = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear)
                 for p in m.parameters(recurse=False))
    return linear / count_params(model)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-14-fc-share-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

with torch.device("meta"):
    _models = {a.name: a.build() for a in ARCHITECTURES}
_lenet_fc = (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
assert fc_share(_models["LeNet-5"]) == _lenet_fc / 61_706
_alex_fc = (9216 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
assert abs(fc_share(_models["AlexNet"]) - _alex_fc / 61_100_840) < 1e-12
assert fc_share(_models["NiN"]) == 0  # global average pooling, no linear layer
for _name, _m in _models.items():
    print(f"{_name:20s} {fc_share(_m):6.1%}")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(model):
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear)
               for p in m.parameters(recurse=False)) / count_params(model)


_g = generator(1401)
_cases = []
for _ in range(3):
    _a, _b, _c = (int(v) for v in torch.randint(1, 30, (3,), generator=_g))
    _cases.append((nn.Sequential(nn.Conv2d(3, _a, 3), nn.Flatten(), nn.Linear(_a, _b), nn.Sequential(nn.Linear(_b, _c, bias=False))),))
agrees(fc_share, _ref, _cases, rtol=1e-9)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (the cost of resolution).** The work of a convolution grows with the
# number of output positions, so for a fully convolutional network the MACs should grow
# like the square of the image side. Write `resolution_exponent(key, small=224,
# large=448)` that builds the registry network `key` on the meta device, counts its MACs
# at both sides and returns the exponent $p$ in $\text{MACs} \propto \text{side}^p$ (a
# log ratio). Then look at the printout: why is AlexNet's exponent below 2 (hint: its
# adaptive pooling before the head), and why can NiN's be above 2 (hint: an unpadded
# 11x11 stride-4 convolution and unpadded pools)? Why would ViT-B/16 refuse to take part?

# %% nbgrader={"grade": false, "grade_id": "ex-14-resolution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def resolution_exponent(key: str, small: int = 224, large: int = 448) -> float:
    """p such that MACs grow like side**p between `small` and `large` px."""
    ### BEGIN SOLUTION
    with torch.device("meta"):
        model = get(key).build()
    m_small = count_macs(model, (1, 3, small, small))
    m_large = count_macs(model, (1, 3, large, large))
    return math.log(m_large / m_small) / math.log(large / small)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-14-resolution-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_p = {k: resolution_exponent(k) for k in ("resnet18", "alexnet", "vgg11", "nin", "mobilenet_v2")}
print({k: round(v, 4) for k, v in _p.items()})
assert abs(_p["resnet18"] - 2) < 0.005
assert _p["alexnet"] < _p["resnet18"]  # the head's work does not grow with the image
with torch.device("meta"):
    _vgg = get("vgg11").build()
_ratio = count_macs(_vgg, (1, 3, 320, 320)) / count_macs(_vgg, (1, 3, 160, 160))
assert abs(resolution_exponent("vgg11", 160, 320) - math.log2(_ratio)) < 1e-9
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees
from cnnbook.models.registry import get as _get
from cnnbook.profiling import count_macs as _cm


def _ref(key, small=224, large=448):
    with torch.device("meta"):
        _mdl = _get(key).build()
    return math.log(_cm(_mdl, (1, 3, large, large)) / _cm(_mdl, (1, 3, small, small))) / math.log(large / small)


agrees(resolution_exponent, _ref, [("alexnet", 240, 300), ("mobilenet_v2", 96, 200)], rtol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (the frontier).** A network is on the *Pareto frontier* if no other
# network is at least as cheap *and* at least as accurate, and strictly better in one of
# the two. Write `pareto_front(df, cost, score, label)` that returns the labels of the
# frontier networks of a DataFrame, ordered by cost. Which of the course's ImageNet
# networks are on the frontier of accuracy against MACs?

# %% nbgrader={"grade": false, "grade_id": "ex-14-pareto", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pareto_front(df: pd.DataFrame, cost: str = "gmacs", score: str = "acc1",
                 label: str = "architecture") -> list:
    """Labels of the rows that no other row dominates (cheaper-or-equal and better-or-equal)."""
    ### BEGIN SOLUTION
    rows = df.dropna(subset=[cost, score]).sort_values([cost, score], ascending=[True, False])
    front, best = [], -math.inf
    for _, r in rows.iterrows():
        if r[score] > best:
            front.append(r[label])
            best = r[score]
    return front
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-14-pareto-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_toy = pd.DataFrame({"architecture": list("abcde"), "gmacs": [1, 2, 3, 4, 4],
                     "acc1": [0.5, 0.7, 0.6, 0.8, 0.75]})
assert pareto_front(_toy) == ["a", "b", "d"]
_front = pareto_front(costs.dropna(subset=["acc1"]))
print("frontier of the course's ImageNet networks:", _front)
assert "MobileNet V3-Large" in _front and "VGG-16" not in _front and "AlexNet" not in _front
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(df, cost="gmacs", score="acc1", label="architecture"):
    _rows = df.dropna(subset=[cost, score]).sort_values([cost, score], ascending=[True, False])
    _front, _best = [], -math.inf
    for _, _r in _rows.iterrows():
        if _r[score] > _best:
            _front.append(_r[label])
            _best = _r[score]
    return _front


_g = generator(1403)
_cases = []
for _n in (6, 12):
    _c, _s = torch.rand(_n, generator=_g).tolist(), torch.rand(_n, generator=_g).tolist()
    _cases.append((pd.DataFrame({"net": [f"n{i}" for i in range(_n)], "cost": _c, "score": _s}), "cost", "score", "net"))
agrees(pareto_front, _ref, _cases)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (extend the registry).** ResNet-34 is in `cnnbook.models.resnet` but not
# in the registry. Create `resnet34_entry`, an `Architecture` for it (key `"resnet34"`,
# chapter `"11"`, its paper and idea, the course's builder, and torchvision's
# `"resnet34"` with weights `"IMAGENET1K_V1"`). The test puts it through `cost_table`,
# which checks it against torchvision the way the chapter checked every other network.

# %% nbgrader={"grade": false, "grade_id": "ex-14-registry", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
from cnnbook.models.resnet import resnet34

resnet34_entry = Architecture(
    "resnet34", "ResNet-34", 2015, "11", "He, Zhang, Ren & Sun, CVPR 2016 (arXiv 2015)",
    "basic residual blocks in stages of 3, 4, 6 and 3", resnet34,
    torchvision="resnet34", weights="IMAGENET1K_V1")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-14-registry-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_row = cost_table([resnet34_entry]).iloc[0]
print(_row.to_string())
assert resnet34_entry.key == "resnet34" and resnet34_entry.chapter == "11"
assert _row["params_m"] == _row["tv_params_m"]
assert abs(_row["gmacs"] / _row["tv_gmacs"] - 1) < 0.01
assert _row["acc1"] > c.at["ResNet-18", "acc1"]
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, same
from cnnbook.models.registry import Architecture as _Arch
from cnnbook.models.resnet import resnet34 as _r34
check_comparisons()
assert type(resnet34_entry) is _Arch
same((resnet34_entry.key, resnet34_entry.chapter, resnet34_entry.torchvision), ("resnet34", "11", "resnet34"),
     what="key, chapter, torchvision name")
assert resnet34_entry.build is _r34 or resnet34_entry.build().__class__ is _r34().__class__
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - D. H. Hubel, T. N. Wiesel (1962). *Receptive fields, binocular interaction and
#   functional architecture in the cat's visual cortex.* J. Physiology.
# - K. Fukushima (1980). *Neocognitron.* Biological Cybernetics.
# - Y. LeCun et al. (1989). *Backpropagation Applied to Handwritten Zip Code
#   Recognition.* Neural Computation. Y. LeCun, L. Bottou, Y. Bengio, P. Haffner (1998).
#   *Gradient-Based Learning Applied to Document Recognition.* Proc. IEEE.
# - J. Deng et al. (2009). *ImageNet: A Large-Scale Hierarchical Image Database.* CVPR.
# - A. Krizhevsky, I. Sutskever, G. E. Hinton (2012). *ImageNet Classification with Deep
#   Convolutional Neural Networks.* NeurIPS.
# - M. Lin, Q. Chen, S. Yan (2013). *Network In Network.* arXiv:1312.4400; ICLR 2014.
# - K. Simonyan, A. Zisserman (2014). *Very Deep Convolutional Networks for Large-Scale
#   Image Recognition.* arXiv:1409.1556; ICLR 2015.
# - C. Szegedy et al. (2014). *Going Deeper with Convolutions.* arXiv:1409.4842; CVPR 2015.
# - S. Ioffe, C. Szegedy (2015). *Batch Normalization.* ICML.
# - K. He, X. Zhang, S. Ren, J. Sun (2015). *Deep Residual Learning for Image
#   Recognition.* arXiv:1512.03385; CVPR 2016.
# - G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger (2016). *Densely Connected
#   Convolutional Networks.* arXiv:1608.06993; CVPR 2017.
# - A. G. Howard et al. (2017). *MobileNets.* arXiv:1704.04861. M. Sandler et al. (2018).
#   *MobileNetV2: Inverted Residuals and Linear Bottlenecks.* CVPR. A. Howard et al.
#   (2019). *Searching for MobileNetV3.* ICCV.
# - M. Tan, Q. V. Le (2019). *EfficientNet: Rethinking Model Scaling for Convolutional
#   Neural Networks.* ICML.
# - A. Dosovitskiy et al. (2020). *An Image is Worth 16x16 Words: Transformers for Image
#   Recognition at Scale.* arXiv:2010.11929; ICLR 2021.
# - Z. Liu et al. (2022). *A ConvNet for the 2020s.* CVPR.
# - A. Canziani, A. Paszke, E. Culurciello (2016). *An Analysis of Deep Neural Network
#   Models for Practical Applications.* arXiv:1605.07678 (accuracy, operations and
#   latency compared, the model for this chapter).
# - torchvision model documentation and weights metadata (ImageNet accuracies, GFLOPS,
#   parameters): https://pytorch.org/vision/stable/models.html
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, chapter
#   8 "Modern Convolutional Neural Networks". Cambridge University Press.
