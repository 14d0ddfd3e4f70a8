# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 12 · DenseNet: densely connected networks
#
# ResNet ([chapter 11](11_resnet.ipynb)) let a block pass its input on by *adding* it to the block's output.
# A year later, Gao Huang, Zhuang Liu, Laurens van der Maaten and Kilian Weinberger asked
# what happens if a block passes its input on *unchanged*, by concatenating instead of
# adding, so that every layer can read the feature maps of every layer before it. The
# result, DenseNet, matched ResNets on ImageNet with a fraction of the parameters, and won
# the best paper award at CVPR 2017.
#
# **What you will learn**
#
# - concatenation versus addition: what a dense block keeps that a residual block mixes;
# - the growth rate $k$ and the channel arithmetic of a dense block ($c_0 + L k$
#   channels out), computed for the course's network;
# - transition layers (BN, ReLU, 1x1 conv, 2x2 average pooling) and the two ideas that
#   make DenseNets efficient: bottleneck layers (DenseNet-B) and compression
#   (DenseNet-C, together DenseNet-BC);
# - d2l's DenseNet built block by block with its shape table, and DenseNet-121/169/201
#   checked against torchvision;
# - the price of concatenation: training memory, measured, and how to cut it;
# - training a DenseNet on Fashion-MNIST, and a look at *which* earlier layers each layer
#   actually uses (the paper's heat map).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torchvision
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.inspect import capture
from cnnbook.memory import activation_bytes
from cnnbook.models.densenet import (DENSENET_CONFIGS, DenseBlock, DenseNet, conv_block,
                                     dense_layer, densenet121, densenet_d2l, source_weights,
                                     transition_block)
from cnnbook.models.resnet import resnet, resnet_stem
from cnnbook.profiling import count_macs, count_params
from cnnbook.results import against_d2l
from cnnbook.train.recipes import recipe
from cnnbook.summary import layer_shapes, shape_table, show_source

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # main run: a DenseNet with growth_rate, init_channels (stem width), block_config
    # (dense layers per block), small_input (28 px stem), resize, epochs, lr, batch_size,
    # recipe (cnnbook.train.recipes: "d2l" = d2l's plain SGD, "laptop" = Part III's);
    # mem_layers: dense-block lengths whose training memory we measure; cost_size: image
    # size for the variant and memory tables (224 = ImageNet; smaller is faster, similar
    # ratios); imagenet: models checked against torchvision (at 224 px)
    "smoke": dict(epochs=1, limit=512, batch_size=128, resize=None, small_input=True,
                  growth_rate=8, init_channels=16, block_config=(2, 2, 2, 2), lr=0.1,
                  recipe="laptop", mem_layers=(1, 2, 4, 6), cost_size=64, imagenet=("densenet121",)),
    "cpu":   dict(epochs=3, limit=None, batch_size=128, resize=None, small_input=True,
                  growth_rate=8, init_channels=16, block_config=(4, 4, 4, 4), lr=0.1,
                  recipe="laptop", mem_layers=(1, 2, 4, 8, 12, 16), cost_size=224,
                  imagenet=("densenet121", "densenet169", "densenet201", "resnet50", "resnet101")),
    "full":  dict(epochs=10, limit=None, batch_size=256, resize=96, small_input=False,
                  growth_rate=32, init_channels=64, block_config=(4, 4, 4, 4), lr=0.1,
                  recipe="d2l", mem_layers=(1, 2, 4, 8, 12, 16, 24), cost_size=224,
                  imagenet=("densenet121", "densenet169", "densenet201", "resnet50", "resnet101")),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# In the `full` profile the chapter uses d2l's settings: a 64-channel stem, four dense
# blocks of four layers with growth rate 32, channels halved in every transition,
# Fashion-MNIST resized to 96 px, 10 epochs, batch 256, learning rate 0.1. The `cpu`
# profile keeps that *structure* (four dense blocks of four layers, transitions that halve
# the channels) and shrinks its cost to fit in a few minutes on two cores: native 28 px
# images with the small stem (a 3x3 conv and no max-pool, so the four blocks see 28, 14,
# 7 and 3 px), growth rate 8 and a 16-channel stem instead of 32 and 64 (the paper's
# CIFAR DenseNets use 12), batch 128, and 3 epochs over all 60,000
# training images. That shows a DenseNet learning Fashion-MNIST well; it is not the
# published setting.
#
# ## 1. From adding to concatenating
#
# By 2016 there was evidence that very deep ResNets are wasteful. Huang et al.'s own
# *stochastic depth* (2016) trained a 110-layer ResNet while randomly *skipping* whole
# residual blocks in every mini-batch, and it generalised better than training them all:
# many layers contribute little, and much of what each layer computes is a slightly
# changed copy of what it received. Highway networks (2015), ResNets (2015) and FractalNets
# (2016) all shared one ingredient: short paths from early layers to late ones.
#
# DenseNet (Huang, Liu, van der Maaten and Weinberger; arXiv, August 2016; CVPR 2017,
# best paper award) takes that ingredient to its limit. In a *dense block* every layer
# receives the feature maps of **all** preceding layers as input and passes its own on to
# all subsequent layers. Written with $H_\ell$ for the $\ell$-th layer's transformation:
#
# $$\text{ResNet: } x_\ell = H_\ell(x_{\ell-1}) + x_{\ell-1}, \qquad
#   \text{DenseNet: } x_\ell = H_\ell\big([x_0, x_1, \ldots, x_{\ell-1}]\big),$$
#
# where $[\cdot]$ stacks tensors along the channel axis. A block of $L$ layers therefore
# has $L(L+1)/2$ direct connections instead of $L$.
#
# d2l explains the step with a Taylor expansion: $f(x) = f(0) + f'(0)\,x + \tfrac12
# f''(0)\,x^2 + \ldots$ splits a function into terms of increasing complexity. ResNet
# splits $f(x) = x + g(x)$ into a simple linear term and a nonlinear one. DenseNet keeps
# *every* term separately instead of summing them:
# $x \to [x,\; f_1(x),\; f_2([x, f_1(x)]),\; f_3([x, f_1(x), f_2([x, f_1(x)])]),\; \ldots]$.
#
# What that changes is easy to see on tensors. A residual block's output mixes its input
# with what it computed; a dense layer's output *contains its input unchanged*, so any
# later layer can read it directly:

# %%
torch.manual_seed(0)
x = torch.randn(2, 8, 6, 6)
g = conv_block(8, 8)      # a residual branch must keep the width: 8 -> 8
h = conv_block(8, 4)      # a dense layer only adds its few new channels: 8 -> 4
added = x + g(x)
stacked = torch.cat((x, h(x)), dim=1)
print("addition:      ", tuple(added.shape), "| first 8 channels equal x?", torch.equal(added[:, :8], x))
print("concatenation: ", tuple(stacked.shape), "| first 8 channels equal x?", torch.equal(stacked[:, :8], x))
assert torch.equal(stacked[:, :8], x) and not torch.equal(added, x)

# %% [markdown]
# Because nothing is overwritten, a layer does not need to copy forward what it received;
# it only has to add *new* information. That is why dense layers can be very narrow: a
# few channels each, where a ResNet layer carries the full width of the network. The
# paper calls this *feature reuse*, and argues it has two more benefits: every layer gets
# a direct path to the loss gradient (an implicit "deep supervision"), and the many narrow
# layers act as a regulariser on small data sets.
#
# ## 2. The dense block and the growth rate
#
# DenseNet's unit is the *pre-activation* convolution block of He et al. (2016): batch
# norm, ReLU, then a 3x3 convolution. (In ResNet the convolution comes first; here the
# normalisation comes first so that each layer can normalise the *concatenated* input it
# reads, whose channels were produced by different layers at different scales.)

# %%
show_source(conv_block);

# %% [markdown]
# A dense block is a sequence of such layers; `forward` concatenates each layer's output to
# its input, so the next layer reads everything so far:

# %%
show_source(DenseBlock);

# %% [markdown]
# Each layer produces the same number of new channels $k$, the **growth rate**. A block
# with $c_0$ input channels and $L$ layers therefore reads $c_0, c_0 + k, \ldots,
# c_0 + (L-1)k$ channels in its successive layers and outputs $c_0 + Lk$. d2l's example:
# two layers with growth rate 10 on a 3-channel input give $3 + 2 \cdot 10 = 23$ channels.

# %%
blk = DenseBlock(num_convs=2, in_channels=3, growth_rate=10)
X = torch.randn(4, 3, 8, 8)
Y = blk(X)
print("output shape:", tuple(Y.shape))
print("channels each layer reads:", [layer.conv.in_channels for layer in blk.net])
assert Y.shape[1] == 3 + 2 * 10 == blk.out_channels

# %% [markdown]
# The growth rate is DenseNet's width knob, and it can be small: the paper's CIFAR models
# use $k = 12$ and its ImageNet models $k = 32$. The state of the network can be read as a
# shared "collective knowledge" to which each layer adds its $k$ feature maps. The table
# below walks a dense block of the size of DenseNet-121's first block ($c_0 = 64$,
# $k = 32$, $L = 6$) and counts channels, parameters and connections as it grows:

# %%
c0, k, L = 64, 32, 6
rows = []
for layers in range(1, L + 1):
    b = DenseBlock(layers, c0, k)
    rows.append({"layers L": layers, "last layer reads": b.net[-1].conv.in_channels,
                 "block output c0 + Lk": b.out_channels, "parameters": count_params(b),
                 "direct connections L(L+1)/2": layers * (layers + 1) // 2})
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# The input of the last layer grows linearly with $L$, so the parameters of one block grow
# quadratically (the last column of the table above too). Left alone, a deep network of
# dense blocks would get very wide. Two devices keep it in check.
#
# ## 3. Transition layers
#
# Convolutions inside a dense block must keep the height and width (concatenation needs
# equal sizes), so the down-sampling happens *between* blocks, in a **transition layer**:
# batch norm, ReLU, a 1x1 convolution that sets the number of channels, and 2x2 average
# pooling with stride 2.

# %%
show_source(transition_block);
t = transition_block(23, 10)
print("transition of the block above:", tuple(Y.shape), "->", tuple(t(Y).shape))

# %% [markdown]
# The 1x1 convolution is where DenseNet **compresses**: if a block outputs $m$ channels,
# the transition keeps $\lfloor \theta m \rfloor$ with a compression factor
# $0 < \theta \le 1$. With $\theta = 1$ the channel count passes through; the paper calls
# a DenseNet with $\theta < 1$ *DenseNet-C* and uses $\theta = 0.5$, which is what d2l's
# network does ("halve the channels in every transition").
#
# ## 4. The course's DenseNet, one block at a time
#
# d2l's DenseNet starts with ResNet's stem (7x7 conv with stride 2, BN, ReLU, 3x3 max-pool
# with stride 2), then four dense blocks of four layers with growth rate 32, a transition
# halving the channels after each block but the last, and, as in ResNet, BN, ReLU, global
# average pooling and a linear layer. We assemble it by hand for 96 px images, keeping
# track of the channels exactly as the arithmetic above says:

# %%
num_channels, growth_rate = 64, 32
parts = [resnet_stem(1, num_channels)]
for i, num_convs in enumerate((4, 4, 4, 4)):
    parts.append(DenseBlock(num_convs, num_channels, growth_rate))
    num_channels += num_convs * growth_rate               # c0 + L k
    if i != 3:
        parts.append(transition_block(num_channels, num_channels // 2))
        num_channels //= 2                                # theta = 0.5
net = nn.Sequential(*parts, nn.BatchNorm2d(num_channels), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(num_channels, 10))
layer_shapes(net, torch.rand(1, 1, 96, 96))

# %% [markdown]
# Read the channel column: 64 from the stem, $64 + 4 \cdot 32$ after the first block,
# halved by the transition, and so on; the resolution drops only in the stem and the
# transitions. The package's `DenseNet` builds the same network from a table of layers per
# block, with named parts and torchvision's initialisation; `densenet_d2l()` is this
# configuration:

# %%
show_source(DenseNet);

# %%
ours = densenet_d2l()
print(f"hand-built: {count_params(net):,} parameters; densenet_d2l(): {count_params(ours):,}")
assert count_params(net) == count_params(ours)
print(shape_table(ours, (1, 1, 96, 96), depth=1))

# %% [markdown]
# ## 5. Bottlenecks, compression and DenseNet-121
#
# Each 3x3 layer in a late dense block reads hundreds of channels to produce $k$ new ones.
# **DenseNet-B** puts a 1x1 *bottleneck* convolution to $4k$ channels in front of each
# 3x3 convolution (BN-ReLU-Conv1x1-BN-ReLU-Conv3x3), so the expensive 3x3 kernels always
# see $4k$ channels however wide the concatenation gets. With compression too it is
# **DenseNet-BC**, the version used on ImageNet:

# %%
show_source(dense_layer);
plain, bottle = dense_layer(512, 32), dense_layer(512, 32, bottleneck=4)
print(f"a layer reading 512 channels, k = 32: {count_params(plain):,} parameters plain, "
      f"{count_params(bottle):,} with the 4k bottleneck")

# %% [markdown]
# The four variants on the same layout (DenseNet-121's blocks of 6, 12, 24 and 16 layers,
# $k = 32$, 3-channel input of `cfg.cost_size` px: 224, ImageNet's size, except in the
# quick `smoke` profile). Bottlenecks double the number of convolutions but make
# each layer cheaper; compression shrinks every block after the first:

# %%
variants = {"DenseNet (no B, theta = 1)": dict(bottleneck=None, compression=1.0),
            "DenseNet-B": dict(bottleneck=4, compression=1.0),
            "DenseNet-C (theta = 0.5)": dict(bottleneck=None, compression=0.5),
            "DenseNet-BC (DenseNet-121)": dict(bottleneck=4, compression=0.5)}
rows = []
for name, kw in variants.items():
    m = DenseNet(DENSENET_CONFIGS[121], growth_rate=32, init_channels=64, **kw)
    rows.append({"variant": name, "parameters (M)": count_params(m) / 1e6,
                 f"GMACs at {cfg.cost_size} px": count_macs(m, (1, 3, cfg.cost_size, cfg.cost_size)) / 1e9,
                 "channels before fc": m.fc.in_features})
print(pd.DataFrame(rows).round(2).to_string(index=False))

# %% [markdown]
# The table above is computed: both devices cut parameters and multiply-adds, and they
# combine. Where does the "121" come from? Count the layers with weights: the stem
# convolution, two convolutions per dense layer, one per transition and the final linear
# layer:

# %%
m = densenet121()
convs = sum(isinstance(mod, nn.Conv2d) for mod in m.modules())
linears = sum(isinstance(mod, nn.Linear) for mod in m.modules())
print(f"{convs} convolutions + {linears} linear layer = {convs + linears} weighted layers; "
      f"1 + 2 x {sum(DENSENET_CONFIGS[121])} + 3 + 1 = {1 + 2 * sum(DENSENET_CONFIGS[121]) + 3 + 1}")
assert convs + linears == 121

# %% [markdown]
# Our DenseNet-BC models must have exactly torchvision's parameter counts and their
# multiply-adds must match the GFLOPS torchvision publishes with its weights (which count
# multiply-adds). We add the ResNets of [chapter 11](11_resnet.ipynb) and the ImageNet top-1 accuracies
# torchvision reports for its pretrained weights, to compare the families:

# %%
rows = []
for name in cfg.imagenet:
    meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
    depth = int(name.removeprefix("densenet").removeprefix("resnet"))
    ours = DenseNet(DENSENET_CONFIGS[depth], bottleneck=4) if name.startswith("dense") else resnet(depth)
    theirs = getattr(torchvision.models, name)(weights=None)
    rows.append({"model": name, "params (ours)": count_params(ours),
                 "params (torchvision)": count_params(theirs),
                 "GMACs (ours)": count_macs(ours, (1, 3, 224, 224)) / 1e9,
                 "GFLOPS (published)": meta["_ops"],
                 "ImageNet top-1 (published)": meta["_metrics"]["ImageNet-1K"]["acc@1"]})
    assert rows[-1]["params (ours)"] == rows[-1]["params (torchvision)"] == meta["num_params"]
    assert abs(rows[-1]["GMACs (ours)"] / meta["_ops"] - 1) < 0.01
print(pd.DataFrame(rows).round(3).to_string(index=False))

# %% [markdown]
# In the `cpu` and `full` profiles the table lists DenseNet-121/169/201 and ResNet-50/101
# (the `smoke` profile checks DenseNet-121 only). Read the published columns side by side,
# for example DenseNet-169 and DenseNet-201 against ResNet-50: a DenseNet gets close to,
# or past, a ResNet's top-1 accuracy with markedly fewer parameters, at a comparable
# number of multiply-adds. That parameter efficiency is the paper's main claim. But
# parameters and multiply-adds are not the whole cost.
#
# ## 6. The price of concatenation: memory
#
# To back-propagate, autograd keeps the inputs of batch norms and convolutions. In a dense
# block, layer $\ell$'s input is a *new* tensor of $c_0 + (\ell-1)k$ channels (the
# concatenation), stored again by that layer's batch norm and convolution, although it
# holds the same numbers as the previous layer's input plus $k$ channels. The stored
# activations therefore grow *quadratically* with the number of layers, whereas a stack
# of constant-width layers (a ResNet stage) stores the same amount for every layer. We measure it with
# `cnnbook.memory.activation_bytes` (the bytes of the distinct tensors saved for the
# backward pass, for one image) on a dense block the size of DenseNet-121's first
# (64 input channels, $k = 32$, 56x56 maps):

# %%
rows = []
for layers in cfg.mem_layers:
    b = DenseBlock(layers, 64, 32)
    rows.append({"layers": layers, "activation MB": activation_bytes(b, (1, 64, 56, 56)) / 2**20,
                 "parameters": count_params(b)})
mem = pd.DataFrame(rows)
mem["MB per layer"] = mem["activation MB"] / mem["layers"]
print(mem.round(2).to_string(index=False))
quad = np.polyfit(mem["layers"], mem["activation MB"], 2)
print(f"quadratic fit: {quad[0]:.3f} L^2 + {quad[1]:.3f} L + {quad[2]:.3f} MB")

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.plot(mem["layers"], mem["activation MB"], "o", label="measured")
Ls = np.linspace(1, max(cfg.mem_layers), 50)
ax.plot(Ls, np.polyval(quad, Ls), "--", label="quadratic fit")
ax.set_xlabel("layers in the dense block"), ax.set_ylabel("saved activations (MB per image)")
ax.set_title("training memory of one dense block"), ax.grid(alpha=0.3), ax.legend()
fig.tight_layout()

# %% [markdown]
# The "MB per layer" column above (the average cost of a layer) grows with the length of
# the block: each new layer costs more memory than the one before, the signature of
# quadratic growth. For whole networks,
# one image of `cfg.cost_size` px (224 except in `smoke`), in training mode:

# %%
rows = []
shape = (1, 3, cfg.cost_size, cfg.cost_size)
for name, model_ in (("DenseNet-121", densenet121()), ("ResNet-18", resnet(18)),
                     ("ResNet-50", resnet(50))):
    rows.append({"model": name, "parameters (M)": count_params(model_) / 1e6,
                 "GMACs": count_macs(model_, shape) / 1e9,
                 "saved activations (MB/image)": activation_bytes(model_, shape) / 2**20})
whole = pd.DataFrame(rows).set_index("model")
print(whole.round(2).to_string())
ratio = whole.loc["DenseNet-121", "saved activations (MB/image)"] / whole.loc["ResNet-50", "saved activations (MB/image)"]
print(f"DenseNet-121 stores {ratio:.2f}x the activations of ResNet-50, "
      f"with {whole.loc['ResNet-50', 'parameters (M)'] / whole.loc['DenseNet-121', 'parameters (M)']:.1f}x fewer parameters")

# %% [markdown]
# The printout above is the trade-off in one line: DenseNet-121 has several times fewer
# parameters than ResNet-50 and needs fewer multiply-adds, yet it keeps more activations
# for training (and memory traffic, not arithmetic, often decides the speed on a GPU). This is
# the "higher cost" in the usual summary of DenseNet. The fix came quickly: Pleiss et al.
# (2017) showed that the concatenations need not be stored at all. Keep only each layer's
# $k$ new channels and *recompute* the concatenation, batch norm and ReLU during the
# backward pass; memory then grows linearly with depth, at the price of some extra
# computation.
# torchvision's DenseNets offer it as `memory_efficient=True` (gradient checkpointing);
# exercise 3 asks you to build it and measure the saving.
#
# ## 7. Training a DenseNet on Fashion-MNIST

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          resize=cfg.resize, limit=cfg.limit)
size = cfg.resize or 28
print(f"{train_iter.num_examples:,} training images of {size} px, {test_iter.num_examples:,} test")
cnnbook.seed_everything(0)
model = densenet_d2l(growth_rate=cfg.growth_rate, init_channels=cfg.init_channels,
                     block_config=cfg.block_config, small_input=cfg.small_input)
print(f"DenseNet: k = {cfg.growth_rate}, stem {cfg.init_channels} channels, blocks "
      f"{cfg.block_config}: {count_params(model):,} parameters, "
      f"{count_macs(model, (1, 1, size, size)) / 1e6:,.1f} M multiply-adds per image")
print(f"channels after each block: {[model.get_submodule(f'block{i}').out_channels for i in range(1, len(cfg.block_config) + 1)]}")
how = recipe(cfg.recipe)
print(f"recipe {how.name!r}: {how.summary}")
result = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, name="densenet",
                     chapter="12", **how.fit_kwargs(cfg.lr), extra=how.describe())
print(against_d2l(result.record))
print(f"{result.examples_per_sec:,.0f} training images/s")

# %%
fig = viz.plot_history(result.history, title="DenseNet on Fashion-MNIST")

# %% [markdown]
# The cell above the curves prints the test accuracy beside d2l's; the `full` profile runs
# d2l's setting (growth rate 32 and a 64-channel stem at 96 px, for 10 epochs of plain SGD
# at a constant rate). The `cpu` profile trains a narrower network on 28 px images for
# three epochs with the recipe of Part III ([chapter 18](18_training_recipes.ipynb)):
# momentum, weight decay, a one-cycle schedule that ends annealed, and label smoothing.
# The printed gap to d2l's figure says how close that gets. The cell also prints the
# training speed in images per second: compare it with [chapter 11](11_resnet.ipynb)'s ResNet-18 run.
# Multiply-adds do not tell the whole story, since every dense layer first copies the
# whole concatenation into a new tensor and normalises all of it again.
#
# ## 8. Inside the trained DenseNet
#
# **The input really does pass through.** The first channels of a dense block's output
# are the block's input, untouched; after them come the channels each layer added. Here
# are the first four channels of the stem's output, the same channels at the end of the
# first block, and the last channels of that block (the ones its last layer produced),
# for one test image:

# %%
X_test, y_test = next(iter(test_iter))
maps = capture(model, X_test[:1], ["stem", "block1"])
stem_out, block_out = maps["stem"][0], maps["block1"][0]
print("stem output", tuple(stem_out.shape), "-> block1 output", tuple(block_out.shape))
assert torch.allclose(block_out[:stem_out.shape[0]], stem_out)
fig = viz.plot_feature_maps(torch.cat([stem_out[:4], block_out[:4], block_out[-4:]]), ncols=4,
                            title="rows: stem output | first channels of block1 | last layer's channels")

# %% [markdown]
# **Which earlier layers does each layer use?** Huang et al. answered this with a heat map
# (their Figure 5): for every layer they averaged the absolute weights of its
# convolution over the input channels coming from each earlier source. A strong entry
# means the layer draws on that source; a weak one, that it largely ignores it.
# `source_weights` computes that matrix for one block (rows: the layers of the block and
# the transition after it; columns: the block's input and each layer's output). We
# normalise each row by its largest entry, as a way to compare layers whose weights have
# different scales.

# %%
show_source(source_weights);

# %%
n_blocks = len(cfg.block_config)
fig, axes = plt.subplots(1, n_blocks, figsize=(3.2 * n_blocks, 3.2))
reuse = {}
for i, ax in zip(range(1, n_blocks + 1), np.atleast_1d(axes)):
    trans = getattr(model, f"trans{i}", None)
    w = source_weights(model.get_submodule(f"block{i}"), trans)
    w = w / w.nan_to_num(0).amax(dim=1, keepdim=True)
    reuse[f"block{i}"] = w
    ax.imshow(w.numpy(), cmap="viridis", vmin=0, vmax=1)
    L = w.shape[1] - 1
    ax.set_xticks(range(L + 1), ["in"] + [str(s) for s in range(1, L + 1)])
    ax.set_yticks(range(w.shape[0]), [str(t) for t in range(1, L + 1)] + (["T"] if trans is not None else []))
    ax.set_xlabel("source"), ax.set_title(f"block{i}")
np.atleast_1d(axes)[0].set_ylabel("target layer (T = transition)")
fig.suptitle("mean |weight| from each source, normalised per target")
fig.tight_layout()

# %% [markdown]
# Before reading the maps, a control: the initialisation draws every weight of a layer
# from the same distribution, so an *untrained* network gives a flat map. The table below
# sets a few entries of the trained maps next to the largest change of any entry since
# initialisation (we rebuild the network with the same seed to recover its starting
# weights):

# %%
cnnbook.seed_everything(0)
untrained = densenet_d2l(growth_rate=cfg.growth_rate, init_channels=cfg.init_channels,
                         block_config=cfg.block_config, small_input=cfg.small_input)
rows = []
for name, w in reuse.items():
    L = w.shape[1] - 1
    w0 = source_weights(untrained.get_submodule(name), getattr(untrained, name.replace("block", "trans"), None))
    w0 = w0 / w0.nan_to_num(0).amax(dim=1, keepdim=True)
    rows.append({"block": name, "largest change since init": (w - w0).abs().nan_to_num(0).max().item(),
                 "last layer: weight on block input": w[L - 1, 0].item(),
                 "last layer: weight on newest layer": w[L - 1, L - 1].item(),
                 "transition: weight on block input": w[L, 0].item() if w.shape[0] > L else float("nan"),
                 "transition: mean over layers' outputs": w[L, 1:].mean().item() if w.shape[0] > L else float("nan")})
print(pd.DataFrame(rows).round(2).to_string(index=False))

# %% [markdown]
# Read the heat maps and the table above with the paper's observations in mind (on a
# 40-layer CIFAR DenseNet trained for 300 epochs with weight decay, which shrinks the
# weights a layer does not use): (1) layers spread their weight over many sources within
# a block, so even early features are used by deep layers; (2) the transition layers also
# spread their weight across the whole block; (3) the layers of the second and third
# blocks put little weight on the transition's output (the block input), a sign that
# transitions produce redundant features and one motivation for compression; (4) the
# final classifier concentrates on the last feature maps. Our network is much smaller and
# trained far more briefly, without weight decay: the "largest change since init" column
# says how far training has moved the maps away from the flat starting point, and so how
# much of the picture is learned. Which of the paper's patterns do you see? (Weights are
# only half the story: a batch norm before each convolution rescales every input channel.
# Exercise 4 measures reuse more directly, by removing connections.)
#
# ### Explore: growth rate, depth and compression
#
# The `DenseGrowthExplorer` builds the course's `DenseNet` (on the meta device, no
# memory needed) for the settings you choose and reads it layer by layer: on the left,
# which layer of one dense block reads which earlier output (every arc is one
# concatenated input; grey arcs carry the block's input, the coloured ones the $k$
# channels of one layer); in the middle, how many channels every layer reads along the
# whole network; on the right, every layer's parameters. It starts at the `cpu` profile's
# network. Things to look for: double the layers per block and watch the arcs (the
# connections grow as $L(L+1)/2$) and the parameters (quadratically); set the
# compression $\theta$ to 1 and see the second block start as wide as the first one ended;
# tick the bottleneck at growth rate 32 and 16 layers: which layers get cheaper?

# %%
from cnnbook.widgets.dense_growth import DenseGrowthExplorer

explorer = DenseGrowthExplorer(growth_rate=12, layers=4, blocks=4, compression=0.5,
                               init_channels=24)
print(f"{explorer.state['params']:,} parameters, channels after each block "
      f"{explorer.state['block_outputs']}; this picture took {explorer.state['render_ms']:.0f} ms")
explorer

# %% [markdown]
# ## Summary
#
# - A dense block concatenates each layer's output to its input:
#   $x_\ell = H_\ell([x_0, \ldots, x_{\ell-1}])$, with $H_\ell$ = BN-ReLU-Conv3x3. Nothing
#   is overwritten, so each layer adds only $k$ (the growth rate) new channels, and a block
#   of $L$ layers turns $c_0$ channels into $c_0 + Lk$.
# - Transition layers (BN-ReLU-Conv1x1, 2x2 average pooling) halve the resolution between
#   blocks and, with compression $\theta < 1$, the channels; bottleneck 1x1 convolutions
#   to $4k$ channels (DenseNet-B) keep the 3x3 convolutions cheap. DenseNet-121 is
#   DenseNet-BC with $k = 32$ and blocks of 6, 12, 24, 16 layers; ours matches torchvision.
# - DenseNets reach ResNet accuracy with markedly fewer parameters, but the
#   stored concatenations make training memory grow quadratically within a block; measured
#   here, DenseNet-121 keeps more activations than ResNet-50. Recomputing them in the
#   backward pass (memory-efficient DenseNet) makes the growth linear.
# - In the line of the course's architectures, DenseNet stands for *feature reuse*, paid
#   for in memory.
#
# ## Exercises
#
# **Exercise 1 (channel arithmetic).** Write `dense_channels(init_channels, block_config,
# growth_rate, compression)` that returns, without building a network, the list of channel
# counts after each dense block and each transition, in order (for d2l's network:
# `[192, 96, 224, 112, 240, 120, 248]`). A transition keeps
# $\lfloor \theta m \rfloor$ of $m$ channels.

# %% nbgrader={"grade": false, "grade_id": "ex-12-dense-channels", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dense_channels(init_channels: int, block_config, growth_rate: int,
                   compression: float = 0.5) -> list:
    """Channels after each dense block and transition, from the arithmetic alone."""
    ### BEGIN SOLUTION
    channels, out = init_channels, []
    for i, num_convs in enumerate(block_config):
        channels += num_convs * growth_rate
        out.append(channels)
        if i < len(block_config) - 1:
            channels = math.floor(compression * channels)
            out.append(channels)
    return out
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-12-dense-channels-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert dense_channels(64, (4, 4, 4, 4), 32, 0.5) == [192, 96, 224, 112, 240, 120, 248]
for _args in [(64, (6, 12, 24, 16), 32, 0.5), (24, (3, 5), 12, 1.0), (16, (2, 3, 4), 7, 0.7)]:
    _net = DenseNet(_args[1], growth_rate=_args[2], init_channels=_args[0], compression=_args[3])
    _expected = []
    for _name, _part in _net.named_children():
        if _name.startswith("block"):
            _expected.append(_part.out_channels)
        elif _name.startswith("trans"):
            _expected.append(_part.conv.out_channels)
    assert dense_channels(*_args) == _expected, _args
print("channel arithmetic OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.densenet import DenseNet as _DN


def _ref(init_channels, block_config, growth_rate, compression=0.5):
    _net = _DN(block_config, growth_rate=growth_rate, init_channels=init_channels, compression=compression)
    return [p.out_channels if n.startswith("block") else p.conv.out_channels
            for n, p in _net.named_children() if n.startswith(("block", "trans"))]


_g = generator(1201)
agrees(dense_channels, _ref, [(int(torch.randint(3, 40, (1,), generator=_g)),
                               tuple(int(v) for v in torch.randint(1, 5, (n,), generator=_g)),
                               int(torch.randint(2, 20, (1,), generator=_g)), c)
                              for n, c in ((3, 0.5), (2, 0.35), (4, 0.8))], forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (count the parameters).** Write `dense_layer_params(in_channels,
# growth_rate, bottleneck)` that returns the number of parameters of
# `dense_layer(in_channels, growth_rate, bottleneck)` from the formula, without building
# it: every conv block is a batch norm over its input channels (a $\gamma$ and a $\beta$
# each) and a convolution without bias. Then use it to explain the numbers in section 5: for which input widths is
# the bottleneck layer cheaper than the plain one when $k = 32$?

# %% nbgrader={"grade": false, "grade_id": "ex-12-layer-params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dense_layer_params(in_channels: int, growth_rate: int, bottleneck=None) -> int:
    """Parameters of one dense layer (plain, or with a 1x1 bottleneck to bottleneck * k)."""
    ### BEGIN SOLUTION
    if not bottleneck:
        return 2 * in_channels + 9 * in_channels * growth_rate
    inner = bottleneck * growth_rate
    return 2 * in_channels + in_channels * inner + 2 * inner + 9 * inner * growth_rate
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-12-layer-params-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

for _args in [(3, 10, None), (64, 32, None), (64, 32, 4), (512, 32, 4), (100, 12, 2)]:
    assert dense_layer_params(*_args) == count_params(dense_layer(*_args)), _args
_cheaper = [c for c in range(1, 600) if dense_layer_params(c, 32, 4) < dense_layer_params(c, 32)]
print(f"with k = 32 the bottleneck layer is cheaper from {_cheaper[0]} input channels on")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.densenet import dense_layer as _dl

_g = generator(1202)
agrees(dense_layer_params, lambda *a: count_params(_dl(*a)),
       [(int(a), int(b), bn) for (a, b), bn in zip(torch.randint(1, 90, (4, 2), generator=_g), (None, 3, 1, 5))],
       forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (memory-efficient DenseNet).** Pleiss et al. (2017) store only each layer's
# *new* feature maps and recompute the concatenation (and the batch norm and ReLU after it)
# in the backward pass. Write `MemoryEfficientDenseBlock`, a `DenseBlock` whose `forward`
# keeps a list of feature maps and computes each layer's output with
# `torch.utils.checkpoint.checkpoint(fn, *features, use_reentrant=False)`, where `fn`
# concatenates the features and applies the layer; return the concatenation of all of
# them. The test checks that outputs and gradients are those of `DenseBlock` with the same
# weights, and that the saved activations now grow linearly with the number of layers.

# %% nbgrader={"grade": false, "grade_id": "ex-12-memory-efficient", "locked": false, "schema_version": 3, "solution": true, "task": false}
from torch.utils.checkpoint import checkpoint


class MemoryEfficientDenseBlock(DenseBlock):
    """A dense block that recomputes its concatenations in the backward pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        features = [x]
        for layer in self.net:
            def fn(*feats, layer=layer):
                return layer(torch.cat(feats, dim=1))
            features.append(checkpoint(fn, *features, use_reentrant=False))
        return torch.cat(features, dim=1)
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-12-memory-efficient-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.memory import activation_bytes

torch.manual_seed(0)
_plain, _efficient = DenseBlock(6, 16, 8), MemoryEfficientDenseBlock(6, 16, 8)
_efficient.load_state_dict(_plain.state_dict())
_x = torch.randn(4, 16, 12, 12)
_y1, _y2 = _plain(_x), _efficient(_x)
assert torch.allclose(_y1, _y2, atol=1e-6)
_y1.square().sum().backward()
_y2.square().sum().backward()
for _p, _q in zip(_plain.parameters(), _efficient.parameters()):
    assert torch.allclose(_p.grad, _q.grad, atol=1e-5)
_mem = {n: (activation_bytes(DenseBlock(n, 16, 8), (2, 16, 8, 8)),
            activation_bytes(MemoryEfficientDenseBlock(n, 16, 8), (2, 16, 8, 8))) for n in (4, 8, 16)}
for _n, (_a, _b) in _mem.items():
    print(f"{_n:2d} layers: {_a / 1024:7.1f} KiB stored by DenseBlock, {_b / 1024:6.1f} KiB by the efficient block")
assert _mem[16][1] < 0.2 * _mem[16][0]
assert _mem[16][1] <= 2.5 * _mem[8][1]  # about linear: twice the layers, about twice the memory
print("memory-efficient dense block OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()
_g = generator(1203)
_plain, _eff = DenseBlock(3, 5, 4), MemoryEfficientDenseBlock(3, 5, 4)
_eff.load_state_dict(_plain.state_dict())
_x = torch.randn(2, 5, 6, 7, generator=_g)
_y1, _y2 = _plain(_x), _eff(_x)
same(_y2.detach(), _y1.detach(), atol=1e-6, what="output")
_w = torch.randn(_y1.shape, generator=_g)
(_y1 * _w).sum().backward()
(_y2 * _w).sum().backward()
for _p, _q in zip(_plain.parameters(), _eff.parameters()):
    same(_q.grad, _p.grad, atol=1e-5, what="gradient")
_n = int(torch.randint(16, 20, (1,), generator=_g))
assert activation_bytes(MemoryEfficientDenseBlock(_n, 16, 8), (2, 16, 8, 8)) < 0.2 * activation_bytes(
    DenseBlock(_n, 16, 8), (2, 16, 8, 8))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (cut a connection, measure the damage).** The heat maps show weights; a
# more direct test of feature reuse removes a source. Write `cut_source(model, block,
# source)` that returns a *copy* of the trained model in which every layer of dense block
# `block` (a name such as `"block2"`), and the transition after it if there is one, ignores
# the given source (0 = the block's input, s = layer s's output): zero the weights of its
# first convolution on that source's input channels. The test then compares the accuracy
# on 512 test images with each source of the first block cut. Which cut hurts most, and
# does that agree with the heat map?

# %% nbgrader={"grade": false, "grade_id": "ex-12-cut-source", "locked": false, "schema_version": 3, "solution": true, "task": false}
import copy


def cut_source(model: DenseNet, block: str, source: int) -> DenseNet:
    """A copy of ``model`` whose layers in ``block`` (and its transition) ignore ``source``."""
    ### BEGIN SOLUTION
    model = copy.deepcopy(model)
    blk = model.get_submodule(block)
    layers = list(blk.net)
    first = layers[0].bottleneck if hasattr(layers[0], "bottleneck") else layers[0]
    c0 = first.conv.in_channels
    k = (blk.out_channels - c0) // len(layers)
    lo, hi = (0, c0) if source == 0 else (c0 + (source - 1) * k, c0 + source * k)
    targets = layers[source:]
    trans = getattr(model, block.replace("block", "trans"), None)
    if trans is not None:
        targets.append(trans)
    with torch.no_grad():
        for layer in targets:
            conv = layer.bottleneck.conv if hasattr(layer, "bottleneck") else layer.conv
            conv.weight[:, lo:hi] = 0
    return model
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-12-cut-source-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_cut = cut_source(model, "block1", 1)
_c0 = model.block1.net[0].conv.in_channels
_k = cfg.growth_rate
assert _cut is not model and model.block1.net[1].conv.weight[:, _c0:_c0 + _k].abs().sum() > 0
for _layer in list(_cut.block1.net)[1:]:
    assert (_layer.conv.weight[:, _c0:_c0 + _k] == 0).all()
    assert (_layer.conv.weight[:, :_c0] != 0).any()  # the other sources are kept
assert (_cut.trans1.conv.weight[:, _c0:_c0 + _k] == 0).all()
assert torch.equal(_cut.block1.net[0].conv.weight, model.block1.net[0].conv.weight)
_sub = [(Xb, yb) for (Xb, yb), _ in zip(test_iter, range(max(1, 512 // cfg.batch_size)))]
_acc = {s: cnnbook.evaluate(cut_source(model, "block1", s) if s >= 0 else model, _sub)["acc"]
        for s in range(-1, len(model.block1.net) + 1)}
print(pd.Series({("none" if s < 0 else "input" if s == 0 else f"layer {s}"): a
                 for s, a in _acc.items()}, name="test accuracy with the source cut").round(3).to_string())
### BEGIN HIDDEN TESTS
import copy as _copy
from cnnbook.grading import check_comparisons, same
from cnnbook.models.densenet import DenseNet as _DN
check_comparisons()
torch.manual_seed(1205)
_m = _DN((3, 2), growth_rate=4, init_channels=6, compression=0.5, in_channels=1, num_classes=10) \
    if "in_channels" in _DN.__init__.__code__.co_varnames else _DN((3, 2), growth_rate=4, init_channels=6)
_before = {k: v.clone() for k, v in _m.state_dict().items()}
for _block, _source in (("block1", 2), ("block1", 0), ("block2", 1)):
    _cut = cut_source(_m, _block, _source)
    assert isinstance(_cut, _DN) and _cut is not _m
    _ref = _copy.deepcopy(_m)
    _blk = _ref.get_submodule(_block)
    _layers = list(_blk.net)
    _c0 = _layers[0].conv.in_channels
    _k = (_blk.out_channels - _c0) // len(_layers)
    _lo, _hi = (0, _c0) if _source == 0 else (_c0 + (_source - 1) * _k, _c0 + _source * _k)
    _targets = _layers[_source:] + ([getattr(_ref, _block.replace("block", "trans"))]
                                    if hasattr(_ref, _block.replace("block", "trans")) else [])
    with torch.no_grad():
        for _layer in _targets:
            _layer.conv.weight[:, _lo:_hi] = 0
    same(dict(_cut.state_dict()), dict(_ref.state_dict()), atol=0, rtol=0, what=f"cut_source({_block}, {_source})")
same(dict(_m.state_dict()), _before, atol=0, rtol=0, what="the original model (must not change)")
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger (2017). *Densely Connected
#   Convolutional Networks.* CVPR (best paper award); arXiv:1608.06993 (2016).
# - G. Pleiss, D. Chen, G. Huang, T. Li, L. van der Maaten, K. Q. Weinberger (2017).
#   *Memory-Efficient Implementation of DenseNets.* arXiv:1707.06990.
# - G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Q. Weinberger (2016). *Deep Networks with
#   Stochastic Depth.* ECCV.
# - K. He, X. Zhang, S. Ren, J. Sun (2016). *Deep Residual Learning for Image
#   Recognition.* CVPR; and *Identity Mappings in Deep Residual Networks.* ECCV
#   (pre-activation blocks).
# - R. K. Srivastava, K. Greff, J. Schmidhuber (2015). *Highway Networks.* arXiv:1505.00387.
# - G. Larsson, M. Maire, G. Shakhnarovich (2017). *FractalNet: Ultra-Deep Neural Networks
#   without Residuals.* ICLR.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, section
#   8.7 "Densely Connected Networks (DenseNet)". Cambridge University Press.
