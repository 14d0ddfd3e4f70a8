# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 08 · Network in Network (NiN): 1x1 convolutions and global average pooling
#
# LeNet, AlexNet and VGG share a shape: convolutions extract features, then a stack of
# fully connected layers turns the last feature map into class scores. Those layers hold
# most of the parameters ([chapter 05](05_lenet.ipynb) counted them for LeNet, [chapter 07](07_vgg.ipynb) for VGG). In
# 2013 Min Lin, Qiang Chen and Shuicheng Yan changed both halves of that design with two
# small ideas: make each convolution a little neural network of its own, and throw the
# fully connected layers away. Both ideas are now in almost every CNN.
#
# **What you will learn**
#
# - why a 1x1 convolution is a fully connected layer applied at every pixel, shown
#   numerically, and how two of them make a small MLP that slides over the image;
# - the NiN block (a convolution followed by two 1x1 convolutions) built step by step;
# - global average pooling: one channel per class, averaged into a logit, with no
#   parameters at all, and how many parameters it saves against AlexNet's and VGG's
#   fully connected heads;
# - why NiN is slow to start training with d2l's recipe, measured at initialisation, and
#   what makes it learn on a CPU;
# - training NiN on Fashion-MNIST and reading its *class maps*, the pictures that global
#   average pooling averages.

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.data import class_names
from cnnbook.inspect import capture
from cnnbook.models.alexnet import alexnet, alexnet_fashion
from cnnbook.models.nin import NiN, nin, nin_block, nin_fashion
from cnnbook.models.vgg import vgg16
from cnnbook.profiling import count_macs, count_params
from cnnbook.results import against_d2l
from cnnbook.summary import layer_shapes, shape_table, show_source
from cnnbook.train import init_weights, predict
from cnnbook.train.recipes import recipe as named_recipe  # "recipe" names a loop variable below

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # main run: NiN with width_mult and small_input (3x3 stem for 28 px) at resize px,
    # trained with lr and recipe (cnnbook.train.recipes: "d2l" = d2l's plain SGD at a
    # constant rate, "laptop" = Part III's) after re-initialising with init; limit/test_limit:
    # class-balanced subsets (None: all 60,000 / 10,000). stall_*: the short start-up
    # comparison of section 6 (d2l's start against Kaiming + momentum) on stall_limit images.
    "smoke": dict(epochs=1, limit=256, test_limit=200, batch_size=128, resize=None,
                  small_input=True, width_mult=0.25, lr=0.05, recipe="laptop", momentum=0.9,
                  init="kaiming", stall_limit=128, stall_epochs=1),
    "cpu":   dict(epochs=4, limit=None, test_limit=None, batch_size=128, resize=None,
                  small_input=True, width_mult=0.25, lr=0.05, recipe="laptop", momentum=0.9,
                  init="kaiming", stall_limit=10_000, stall_epochs=2),
    "full":  dict(epochs=10, limit=None, test_limit=None, batch_size=128, resize=224,
                  small_input=False, width_mult=1.0, lr=0.1, recipe="d2l", momentum=0.0,
                  init="xavier", stall_limit=10_000, stall_epochs=2),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")
META = torch.device("meta")  # for full-size models: shapes and counts, no memory

# %% [markdown]
# The `full` profile is d2l's setting: NiN with AlexNet's widths on Fashion-MNIST resized
# to 224 px, 10 epochs, batch 128, plain SGD with learning rate 0.1 and Xavier
# initialisation. On a CPU one epoch of that is hours, so the `cpu` profile keeps NiN's
# structure (four NiN blocks, three max-pools, dropout, global average pooling) and makes
# it affordable: native 28 px images with a 3x3 stride-1 first convolution in place of
# the 11x11 stride-4 one (which would shrink a 28 px image to nothing), a quarter of the
# channels (24-64-96 instead of 96-256-384), and 4 epochs on all 60,000 training images.
# It also changes the recipe to Kaiming initialisation and Part III's training recipe
# (Nesterov momentum 0.9 at a peak learning rate of 0.05, section 7), because with d2l's
# recipe this narrow NiN sits on a plateau for a long time; section 6 measures why.
# `smoke` trains one epoch on 256 images, just to run every cell.
#
# ## 1. History: a network inside the network
#
# By 2013 AlexNet ([chapter 06](06_alexnet.ipynb)) had shown what a deep CNN could do on ImageNet, and
# everybody's network looked like it. Lin, Chen and Yan, at the National University of
# Singapore, questioned two of its parts (Lin et al., 2013; published at ICLR 2014).
#
# **The convolution is a linear model.** A convolutional filter computes a weighted sum
# of a patch followed by a nonlinearity: a generalised linear model of the patch. It
# can only separate what is linearly separable, so a layer needs *many* filters to
# cover all the variants of one concept (a stroke in every thickness and contrast), and
# the next layer has to combine them. NiN replaces the linear filter by a small
# multilayer perceptron that slides over the image like a filter: the **mlpconv**
# layer, a "micro network" inside the big network, hence the name. A universal function
# approximator per patch, and, as the paper notes, one that is easy to build, because
# sliding an MLP over an image is the same as a normal convolution followed by 1x1
# convolutions.
#
# **The fully connected head overfits.** AlexNet's two 4,096-unit layers hold most of
# its parameters and need dropout to generalise. NiN ends instead with one feature map
# per class and averages each map into one score: **global average pooling**, no
# parameters to learn, and a map per class that shows where in the image the evidence
# for that class is. The paper calls it a structural regulariser.
#
# The paper trained NiNs of three mlpconv layers on CIFAR-10, CIFAR-100, SVHN and MNIST
# and reported the best results of the time on the CIFAR sets (8.81% test error on
# CIFAR-10 with data augmentation). Its lasting influence is larger than its accuracy:
# GoogLeNet ([chapter 09](09_googlenet.ipynb), 2014) took the 1x1 convolution to cut channels before expensive
# convolutions and the global average pooling at the end; ResNet's bottleneck block
# ([chapter 11](11_resnet.ipynb)), MobileNet's pointwise convolutions ([chapter 13](13_mobilenet.ipynb)) and nearly every modern
# classifier end the same way. Zhou et al. (2016) turned the class maps into *class
# activation maps*, one of the first tools to see where a CNN looks.
#
# We follow d2l's version, which keeps AlexNet's kernel sizes and widths (11x11, 5x5,
# 3x3 with 96, 256 and 384 channels) so that the two networks can be compared directly.
#
# ## 2. A 1x1 convolution is a fully connected layer at every pixel
#
# A convolution with a 1x1 kernel looks at one pixel at a time, so it cannot see
# shapes; but at that pixel it sees *all the input channels*. Its output channel $j$ at
# pixel $(h, w)$ is
# $$y_{j,h,w} = b_j + \sum_i W_{j,i}\, x_{i,h,w},$$
# the same formula as a linear layer from $c_\text{in}$ to $c_\text{out}$ features,
# applied to the channel vector of each pixel with the *same* weights everywhere. We
# check it: copy a 1x1 convolution's weights into an `nn.Linear`, move the channels to
# the last axis (where `nn.Linear` works), and compare.

# %%
torch.manual_seed(0)
pointwise = nn.Conv2d(6, 4, kernel_size=1)
linear = nn.Linear(6, 4)
with torch.no_grad():
    linear.weight.copy_(pointwise.weight.view(4, 6))   # (4, 6, 1, 1) -> (4, 6)
    linear.bias.copy_(pointwise.bias)

X = torch.randn(2, 6, 5, 5)                            # batch, channels, height, width
by_conv = pointwise(X)
by_linear = linear(X.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)   # channels last and back
gap = (by_conv - by_linear).abs().max().item()
print("conv output", tuple(by_conv.shape), "| largest difference from the per-pixel Linear:", f"{gap:.1e}")
assert gap < 1e-6

# %% [markdown]
# The two agree to float rounding. Another way to see it: flatten the pixels, and the 1x1
# convolution is one matrix product of the $(c_\text{out} \times c_\text{in})$ weight
# matrix with the $(c_\text{in} \times HW)$ matrix of pixels, which is how libraries
# compute it:

# %%
W = pointwise.weight.view(4, 6)
by_matmul = (W @ X.flatten(2) + pointwise.bias.view(4, 1)).view(2, 4, 5, 5)
assert torch.allclose(by_conv, by_matmul, atol=1e-6)
print("weight", tuple(W.shape), "@ pixels", tuple(X.flatten(2).shape[1:]), "->",
      tuple(by_matmul.flatten(2).shape[1:]), "per image")

# %% [markdown]
# Stack two 1x1 convolutions with ReLUs and you have a two-layer MLP that runs
# independently at every pixel: NiN's "micro network". The next cell builds the MLP as
# `nn.Linear` layers, puts the same weights into 1x1 convolutions, and checks that the
# convolutional version computes the MLP of each pixel's channel vector:

# %%
mlp = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
as_convs = nn.Sequential(nn.Conv2d(6, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU())
with torch.no_grad():
    for lin, conv in ((mlp[0], as_convs[0]), (mlp[2], as_convs[2])):
        conv.weight.copy_(lin.weight[:, :, None, None])
        conv.bias.copy_(lin.bias)
Y = as_convs(X)
for h, w in [(0, 0), (2, 3), (4, 4)]:
    assert torch.allclose(Y[:, :, h, w], mlp(X[:, :, h, w]), atol=1e-6)
print("two 1x1 convs + ReLU = the same MLP at every pixel:", tuple(X.shape), "->", tuple(Y.shape))

# %% [markdown]
# What does a 1x1 convolution cost? $c_\text{in} c_\text{out} + c_\text{out}$ parameters,
# whatever the image size, and $c_\text{in} c_\text{out}$ multiply-adds per pixel. Its
# most common use today is not NiN's (adding depth at constant width) but changing the
# number of channels cheaply: GoogLeNet and ResNet squeeze 256 channels into 64 before
# a 3x3 convolution. The ReLUs matter: without them, two 1x1 convolutions collapse into
# one (exercise 4).
#
# ### Explore: a 1x1 convolution mixes the channels of a photograph
#
# An RGB photograph has three channels, so a 1x1 convolution on it is a 3-column matrix
# that mixes red, green and blue at every pixel. Pick a preset or type your own rows (one
# row of three weights per output channel); the panel on the right writes out $y = Wx$ at
# the chosen pixel and the largest difference between `nn.Conv2d` and the matrix product
# over all pixels. Look at "opponent colours": one row averages the channels (brightness),
# the others take differences (red against green, yellow against blue), a recoding that
# colour vision and JPEG also use. Then choose "3 -> 5 channels": five outputs, but the
# printed rank of the output stays 3, because five linear mixes of three channels hold no
# more than three channels' worth of information; tick the ReLU and the rank rises to 5.
# That is why the ReLUs between NiN's 1x1 layers matter.

# %%
from cnnbook.widgets.channel_mixer import ChannelMixerExplorer

mixer = ChannelMixerExplorer(image="coffee", preset="3 -> 5 channels")
ranks = {"linear": mixer.state["rank"]}
mixer.controls["relu"].value = True
ranks["with ReLU"] = mixer.state["rank"]
print(f"5 output channels from 3: rank {ranks['linear']} without a ReLU, "
      f"{ranks['with ReLU']} with one; conv vs per-pixel product: "
      f"{mixer.state['max_diff_vs_conv']:.1e}")
assert ranks["linear"] == 3 and ranks["with ReLU"] == 5
mixer.controls["relu"].value = False
mixer.controls["preset"].value = "opponent colours"
mixer

# %% [markdown]
# ## 3. The NiN block
#
# A NiN block is an ordinary convolution (any kernel size, stride and padding) followed
# by two 1x1 convolutions with as many channels, each layer with a ReLU. As d2l writes
# it:

# %%
def nin_block_d2l(in_channels, out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU())


with META:  # shapes without computing anything (as in chapter 07)
    blk = nin_block_d2l(1, 96, kernel_size=11, strides=4, padding=0)
    X = torch.rand(1, 1, 224, 224)
layer_shapes(blk, X)

# %% [markdown]
# The 11x11 stride-4 convolution takes the 224 px image to $\lfloor (224 - 11)/4 \rfloor
# + 1 = 54$ px; the two 1x1 convolutions keep the size and the 96 channels. The course's
# tested version is the same code with named layers (`conv`, `mlp1`, `mlp2`), so that we
# can find them later:

# %%
show_source(nin_block);

# %% [markdown]
# Where do a block's parameters and multiply-adds go? For NiN's second block (5x5, 256
# channels, on the 26x26 map that a 224 px image reaches there):

# %%
with META:
    blk2 = nin_block(96, 256, kernel_size=5, padding=2)
side = 26
parts = pd.DataFrame({
    name: {"kernel": "x".join(map(str, layer.kernel_size)),
           "parameters": count_params(layer),
           "MMACs": count_macs(layer, (1, layer.in_channels, side, side)) / 1e6}
    for name, layer in [("conv", blk2.conv), ("mlp1", blk2.mlp1), ("mlp2", blk2.mlp2)]}).T
parts["% of block MACs"] = (100 * parts["MMACs"] / parts["MMACs"].sum()).astype(float).round(1)
print(parts.to_string())

# %% [markdown]
# The table above shows the price of the micro network: each 1x1 layer costs a fraction
# of the 5x5 convolution it follows (the ratio of $256 \cdot 1$ to $96 \cdot 25$
# weights per output value), so NiN gets two extra nonlinear layers per block for a
# modest share of the block's arithmetic.
#
# ## 4. Global average pooling instead of fully connected layers
#
# AlexNet flattens its last feature map and feeds it to fully connected layers. NiN's last
# block instead has exactly as many channels as there are classes, and **global average
# pooling** (GAP) averages each channel over all its pixels into one number, the logit of
# that class. That is all: $\text{logit}_k = \frac{1}{HW}\sum_{h,w} m_{k,h,w}$.

# %%
maps = torch.rand(2, 10, 5, 5)             # 10 class maps of 5x5 for 2 images
gap_layer = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
assert torch.allclose(gap_layer(maps), maps.mean(dim=(2, 3)))
print("class maps", tuple(maps.shape), "-> logits", tuple(gap_layer(maps).shape),
      "| parameters of the pooling:", count_params(gap_layer))

# %% [markdown]
# Three consequences follow.
#
# 1. **No parameters in the head.** The pooling has none; the last NiN block, which
#    produces the class maps, is an ordinary (small) convolutional block.
# 2. **Each channel must become a detector of its class.** A fully connected layer can mix
#    any feature at any position into any class; after GAP, the only way to raise the
#    score of "sneaker" is to light up the sneaker map. That is the structural
#    regularisation of the paper, and it makes the maps readable (section 8).
# 3. **Any input size works.** The average is taken over whatever height and width
#    arrive, so the logits always have shape (batch, classes). A flattening head fixes
#    the image size once and for all.
#
# How many parameters does GAP save? The next cell counts the fully connected heads of
# AlexNet and VGG-16 (ImageNet, 1,000 classes; built on the `meta` device, which records
# shapes without allocating memory) and, on the task of this chapter, d2l's AlexNet and
# NiN for Fashion-MNIST at 224 px. For NiN the "head" is everything after the last
# pooling: the class-map block and the parameter-free GAP.

# %%
with META:
    imagenet = {"AlexNet (torchvision)": alexnet(), "VGG-16": vgg16(), "NiN": nin()}
    fashion = {"AlexNet (d2l, Fashion-MNIST)": alexnet_fashion(), "NiN (d2l, Fashion-MNIST)": nin_fashion()}


def head_of(model):
    """The fully connected classifier of AlexNet/VGG, or NiN's class-map block + GAP."""
    return model.head if isinstance(model, NiN) else model.classifier


rows = []
for task, models in (("ImageNet, 1000 classes", imagenet), ("Fashion-MNIST, 10 classes", fashion)):
    for name, model in models.items():
        total, head = count_params(model), count_params(head_of(model))
        rows.append({"task": task, "model": name, "parameters": total, "head": head,
                     "head %": round(100 * head / total, 1)})
heads = pd.DataFrame(rows).set_index(["task", "model"])
print(heads.to_string())
ratio = heads.loc[("Fashion-MNIST, 10 classes", "AlexNet (d2l, Fashion-MNIST)"), "parameters"] / \
        heads.loc[("Fashion-MNIST, 10 classes", "NiN (d2l, Fashion-MNIST)"), "parameters"]
print(f"\nOn Fashion-MNIST at 224 px, d2l's AlexNet has {ratio:.0f}x the parameters of d2l's NiN.")

# %% [markdown]
# Read the table above by its "head %" column: in AlexNet and VGG-16 the fully connected
# head holds the large majority of the parameters; in NiN the head is a small share,
# and the whole network is more than an order of magnitude smaller than AlexNet on the
# same task, with the same convolutional kernel sizes and widths. (For 1,000 classes
# NiN's class-map block is not tiny, since its two 1x1 layers are 1,000 x 1,000, but it
# is still a fraction of AlexNet's head.)
#
# To see that GAP alone makes the difference, put an AlexNet-style head (flatten, two
# hidden layers of 4,096 units, 10 outputs) on NiN's own convolutional body at 224 px,
# whose last feature map is 384 x 5 x 5:

# %%
with META:
    body = nin_fashion()[:6]            # block1 ... pool3: the features, 384 x 5 x 5 at 224 px
    fc_head = nn.Sequential(nn.Flatten(), nn.Linear(384 * 5 * 5, 4096), nn.ReLU(),
                            nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10))
    gap_head = nin_fashion().head
savings = pd.Series({"NiN body (blocks 1-3)": count_params(body),
                     "FC head (9600 -> 4096 -> 4096 -> 10)": count_params(fc_head),
                     "NiN head (class-map block + GAP)": count_params(gap_head)}, name="parameters")
print(savings.to_string())
print(f"the FC head has {count_params(fc_head) / count_params(gap_head):,.0f}x the parameters "
      f"of NiN's head, and {count_params(fc_head) / count_params(body):.0f}x those of the whole body")

# %% [markdown]
# ## 5. The whole network
#
# NiN follows AlexNet's layout: a NiN block with AlexNet's first convolution (11x11,
# stride 4, 96 channels), then blocks with 5x5 and 3x3 kernels (256 and 384 channels),
# each followed by a 3x3 max-pool with stride 2. Then dropout with probability 0.5, a
# last NiN block with one channel per class, and global average pooling. d2l's code,
# built on the `meta` device again so that the 224 px pass costs nothing:

# %%
with META:
    net = nn.Sequential(
        nin_block_d2l(1, 96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block_d2l(96, 256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block_d2l(256, 384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        nin_block_d2l(384, 10, kernel_size=3, strides=1, padding=1),   # one channel per class
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())
layer_shapes(net, torch.rand(1, 1, 224, 224, device=META))

# %% [markdown]
# The map shrinks 224 -> 54 -> 26 -> 12 -> 5 while the channels grow to 384; the last
# block turns them into 10 class maps of 5x5, and the pooling into 10 logits. Note that
# the last block ends with a ReLU, so NiN's logits are never negative: a class with no
# evidence anywhere scores 0, and the softmax compares the others with it.
#
# The package builds the same network from a table of `(channels, kernel, stride,
# padding)` rows, AlexNet's, with a width multiplier and the small stem for 28 px images:

# %%
show_source(NiN);

# %%
ours = nin_fashion()
print(f"hand-built: {count_params(net):,} parameters; nin_fashion(): {count_params(ours):,}")
assert count_params(net) == count_params(ours)

# %% [markdown]
# And the network this profile trains, with torchinfo's table (for `cpu` and `smoke`:
# 28 px, the 3x3 stem, a quarter of the channels; for `full`: d2l's network at 224 px):

# %%
size = cfg.resize or 28
model = nin_fashion(width_mult=cfg.width_mult, small_input=cfg.small_input)
print(f"NiN, width x{cfg.width_mult}, {size} px: {count_params(model):,} parameters, "
      f"{count_macs(model, (1, 1, size, size)) / 1e6:,.1f} M multiply-adds per image")
print(shape_table(model, (1, 1, size, size), depth=1))

# %% [markdown]
# Because of GAP, the same trained network accepts any image size that survives the three
# pools. The 28 px network, fed larger images, still returns 10 logits; only the class
# maps grow:

# %%
probe = nin_fashion(width_mult=0.25, small_input=True).eval()
for s in (28, 56, 96):
    x = torch.rand(1, 1, s, s)
    print(f"{s:3d} px: class maps {tuple(probe[:-2](x).shape)} -> logits {tuple(probe(x).shape)}")

# %% [markdown]
# ## 6. Why NiN is slow to start
#
# NiN has a reputation for training slowly: with d2l's recipe the loss often sits at
# $\ln 10 \approx 2.30$, the loss of a uniform guess, for a long time before it falls.
# Two things conspire. The network is a stack of twelve convolutions with ReLUs and no
# batch normalisation, and Xavier initialisation keeps the variance of a layer's output
# equal to its input's only for layers *without* a ReLU; a ReLU zeroes half the values,
# so every layer shrinks the signal, and twelve of them shrink it a lot. And the logits
# are the averages of class maps, which are themselves small; so at the start all ten
# logits are nearly equal, the softmax is nearly uniform, and the gradients that reach
# the first layers are tiny. Kaiming initialisation (He et al., 2015) scales each layer
# for the ReLU that follows it. The next cell measures the size of the signal after each
# block for both initialisations, on a batch of random images, at initialisation:

# %%
def block_scales(init):
    """Root mean square of the output of each top-level stage, right after ``init``."""
    cnnbook.seed_everything(0)
    m = init_weights(nin_fashion(width_mult=cfg.width_mult,
                                               small_input=cfg.small_input), init).eval()
    x = torch.rand(64, 1, size, size)
    out = capture(m, x, ["block1", "block2", "block3", "head", "flatten"])
    logits = out["flatten"]
    scales = {name: out[name].pow(2).mean().sqrt().item() for name in ("block1", "block2", "block3", "head")}
    scales["logit spread (std over classes)"] = logits.std(dim=1).mean().item()
    return pd.Series(scales, name=init)


scales = pd.concat([block_scales("xavier"), block_scales("kaiming")], axis=1)
print(scales.to_string(float_format=lambda v: f"{v:.2e}"))
fade = scales.loc["block1"] / scales.loc["head"]
spread = scales.iloc[-1]
print(f"\nblock1 -> class maps, the signal shrinks {fade['xavier']:.1f}x with Xavier, "
      f"{fade['kaiming']:.1f}x with Kaiming; the logits are {spread['kaiming'] / spread['xavier']:.0f}x "
      "more spread out with Kaiming")

# %% [markdown]
# The table and the line under it compare the two: with Xavier initialisation the
# signal fades on its way to the class maps, with Kaiming's it keeps roughly its size
# (a factor below 1 means it grew). The last row is how different the ten logits of an
# image are, which is what the loss can learn from; with Xavier they are almost equal. On a GPU at 224 px with full width,
# d2l's recipe gets through the plateau within its 10 epochs; on the small `cpu` budget
# it may not. Here is a short comparison on a subset of the training images (the model
# and image size of this profile, two recipes, everything else equal):

# %%
stall_train, stall_test = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                            resize=cfg.resize, limit=cfg.stall_limit,
                                            test_limit=min(cfg.stall_limit, 2_000))
recipes = {"d2l: Xavier, SGD lr 0.1": dict(init="xavier", lr=0.1, momentum=0.0),
           f"Kaiming, SGD lr {cfg.lr} momentum {cfg.momentum}": dict(init="kaiming", lr=cfg.lr,
                                                                     momentum=cfg.momentum)}
stall = {}
for label, recipe in recipes.items():
    cnnbook.seed_everything(0)
    m = nin_fashion(width_mult=cfg.width_mult, small_input=cfg.small_input)
    res = cnnbook.fit(m, stall_train, stall_test, epochs=cfg.stall_epochs, record=False,
                      progress=False, live_plot=False, **recipe)
    stall[label] = res.history.set_index("epoch")[["train_loss", "test_acc"]]
stall = pd.concat(stall, axis=1)
print(f"{stall_train.num_examples:,} training images, {len(stall_train)} steps per epoch")
print(stall.round(3).to_string())
for label in recipes:
    last = stall[label]["train_loss"].iloc[-1]
    state = "still at chance" if abs(last - math.log(10)) < 0.05 else "has left the plateau"
    print(f"{label}: final training loss {last:.3f} (ln 10 = {math.log(10):.3f}): {state}")

# %% [markdown]
# The printout compares the two recipes after the same number of steps and says for
# each whether its training loss is still within 0.05 of $\ln 10$. (In `smoke` there
# are too few steps for either to move.) This is not a flaw of NiN's idea but of training a deep ReLU network without batch
# normalisation ([chapter 10](10_batch_norm.ipynb)) or a suitable initialisation; GoogLeNet and every later
# network in this course deal with it one way or another. The `cpu` profile therefore
# trains with Kaiming initialisation and the recipe of Part III
# ([chapter 18](18_training_recipes.ipynb)): momentum, weight decay, a one-cycle schedule that ends
# annealed, and label smoothing; `full` keeps d2l's recipe.
#
# ## 7. Training NiN on Fashion-MNIST

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          resize=cfg.resize, limit=cfg.limit,
                                          test_limit=cfg.test_limit)
print(f"{train_iter.num_examples:,} training images of {size} px, {test_iter.num_examples:,} test; "
      f"{len(train_iter)} steps per epoch")
cnnbook.seed_everything(0)
model = nin_fashion(width_mult=cfg.width_mult, small_input=cfg.small_input)
how = named_recipe(cfg.recipe)
print(f"recipe {how.name!r}: {how.summary}")
result = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, init=cfg.init, name="nin",
                     chapter="08", **how.fit_kwargs(cfg.lr),
                     extra={"init": cfg.init, **how.describe()})
print(against_d2l(result.record))
print(f"{result.examples_per_sec:.0f} training examples/s")

# %%
fig = viz.plot_history(result.history, title=f"NiN (width x{cfg.width_mult}, {size} px)")
print(result.history.round(3).to_string(index=False))

# %% [markdown]
# The cells above print the test accuracy after each epoch, and the first line compares the
# last with d2l's full-width NiN at 224 px, which the `full` profile runs. Which classes
# does our NiN confuse?

# %%
preds, labels = predict(model, test_iter)
names = class_names("fashion_mnist")
fig = viz.plot_confusion_matrix(labels, preds, names, title="NiN on the test set")
recall = viz.confusion_matrix(labels, preds, 10).diag() / torch.bincount(labels, minlength=10)
worst = recall.argsort()[:3]
print("hardest classes:", ", ".join(f"{names[i]} ({recall[i]:.2f})" for i in worst.tolist()))

# %% [markdown]
# ## 8. Inside NiN: the class maps
#
# Global average pooling makes NiN's last block easy to read: channel $k$ of its output
# is a map of the evidence for class $k$, and the logit is its average. Here are the ten
# class maps of a few test images (all maps of one image share one colour scale, so you
# can compare classes), with the predicted class in the title:

# %%
X_test, y_test = next(iter(test_iter))
picks = [int((y_test == c).nonzero()[0]) for c in (0, 5, 8, 9) if (y_test == c).any()]
images = X_test[picks].cpu()
class_maps = capture(model, images, ["head"])["head"]          # (n, 10, h, w), before GAP
logits = class_maps.mean(dim=(2, 3))
assert torch.allclose(logits, capture(model, images, ["flatten"])["flatten"], atol=1e-5)

fig, axes = plt.subplots(len(picks), 11, figsize=(13, 1.35 * len(picks) + 0.4))
axes = axes.reshape(len(picks), 11)
for r in range(len(picks)):
    axes[r, 0].imshow(images[r, 0], cmap="gray")
    axes[r, 0].set_title(f"true: {names[int(y_test[picks[r]])]}", fontsize=8)
    vmax = float(class_maps[r].max()) or 1.0
    for k in range(10):
        axes[r, k + 1].imshow(class_maps[r, k], cmap="viridis", vmin=0, vmax=vmax)
        bold = k == int(logits[r].argmax())
        axes[r, k + 1].set_title(names[k][:8] + (" *" if bold else ""), fontsize=7,
                                 fontweight="bold" if bold else "normal")
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"class maps of the last block ({class_maps.shape[2]}x{class_maps.shape[3]}), * = predicted class")
fig.tight_layout()

# %% [markdown]
# Typically the predicted class (marked with a star) has the brightest map, related
# classes light up too (a shirt's map next to a t-shirt's, a sneaker's next to a
# sandal's or an ankle boot's), and unrelated classes stay dark: with GAP, a class can
# only win by lighting up its own map. At 28 px the maps are small (the cell prints their size in the title: three
# pools leave 2x2); at 224 px in the `full` profile they are 5x5.
#
# Since the network does not care about the image size, we can also show it a picture it
# never saw in training: four test garments tiled into one 56x56 image. Each class map
# now has more pixels, and the map of each garment's class should be brightest in its
# own quadrant, at least where the units' receptive fields do not reach across the
# borders.

# %%
quad_classes = (1, 7, 3, 8)    # trouser, sneaker, dress, bag
quad = [int((y_test == c).nonzero()[0]) for c in quad_classes if (y_test == c).any()]
if len(quad) == 4:
    tiles = X_test[quad].cpu()
    mosaic = torch.cat([torch.cat([tiles[0], tiles[1]], dim=2),
                        torch.cat([tiles[2], tiles[3]], dim=2)], dim=1)[None]   # (1, 1, 56, 56)
    if cfg.resize:
        mosaic = F.interpolate(mosaic, scale_factor=cfg.resize / 28, mode="bilinear")
    mosaic_maps = capture(model, mosaic, ["head"])["head"][0]
    fig, axes = plt.subplots(1, 5, figsize=(11, 2.6))
    axes[0].imshow(mosaic[0, 0], cmap="gray")
    axes[0].set_title("input (56 px)" if not cfg.resize else "input")
    vmax = float(mosaic_maps[list(quad_classes)].max()) or 1.0
    for ax, c in zip(axes[1:], quad_classes):
        ax.imshow(mosaic_maps[c], cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(f"map: {names[c]}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    hot = {names[c]: divmod(int(mosaic_maps[c].argmax()), mosaic_maps.shape[-1]) for c in quad_classes}
    print("class maps", tuple(mosaic_maps.shape), "| brightest (row, col) of each map:", hot)

# %% [markdown]
# The printout gives the brightest cell of each map; at 56 px the maps are 6x6, so each
# garment's quadrant is a 3x3 corner of them (rows and columns 0-2 or 3-5, in the order
# trouser, sneaker / dress, bag). Check which maps peak in their own corner. That they
# can at all is the idea behind class activation maps (Zhou et al., 2016): with global
# average pooling, the last block's maps *localise* the classes, although the network
# was trained with image labels only, never with positions. Where a map peaks in the
# wrong corner, remember that one unit of the last block sees most of the 56 px mosaic,
# and that at 28 px a long dress and a pair of trousers look much alike (exercise 3
# computes how the map size follows the input size).
#
# ## Summary
#
# - A 1x1 convolution is a linear layer applied to the channel vector of every pixel
#   with shared weights; two of them with ReLUs form a small MLP that slides over the
#   image, NiN's "mlpconv" (Lin, Chen and Yan, 2013).
# - A NiN block is a convolution followed by two 1x1 convolutions, each with a ReLU; d2l's
#   NiN uses AlexNet's kernels and widths (11, 5, 3; 96, 256, 384), 3x3 stride-2 max-pools
#   and dropout 0.5.
# - Global average pooling replaces the fully connected head: the last block has one map
#   per class and each map's average is a logit. No parameters, any input size, and maps
#   that show where the evidence is. On the same task NiN has a small fraction of
#   AlexNet's parameters (computed in section 4).
# - Twelve ReLU layers without batch norm start with a faint signal under Xavier
#   initialisation, and NiN can sit at chance for a while; Kaiming initialisation and
#   momentum get it going on a small budget.
# - NiN's 1x1 convolutions and global average pooling live on in GoogLeNet, ResNet,
#   MobileNet and almost every later CNN.
#
# ## Exercises
#
# **Exercise 1 (a 1x1 convolution by hand).** Write `conv1x1(x, weight, bias)` for `x` of
# shape (N, C_in, H, W), `weight` of shape (C_out, C_in, 1, 1) and `bias` of shape
# (C_out,), without `F.conv2d` or `nn.Conv2d`: one `torch.einsum` or matrix product
# does it. The test compares with PyTorch's convolution.

# %% nbgrader={"grade": false, "grade_id": "ex-08-conv1x1", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as a per-pixel linear map of the channels."""
    ### BEGIN SOLUTION
    return torch.einsum("oi,nihw->nohw", weight[:, :, 0, 0], x) + bias.view(1, -1, 1, 1)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-08-conv1x1-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_g = torch.Generator().manual_seed(1)
for _shape, _cout in [((2, 3, 5, 7), 4), ((1, 16, 1, 1), 2), ((3, 8, 6, 6), 8)]:
    _x = torch.randn(*_shape, generator=_g)
    _w = torch.randn(_cout, _shape[1], 1, 1, generator=_g)
    _b = torch.randn(_cout, generator=_g)
    assert torch.allclose(conv1x1(_x, _w, _b), F.conv2d(_x, _w, _b), atol=1e-5), _shape
print("conv1x1 agrees with F.conv2d")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator

_g = generator(801)
_cases = []
for _n, _ci, _co, _h, _w in ((2, 5, 3, 4, 9), (1, 1, 6, 3, 3), (3, 7, 7, 2, 5)):
    _cases.append((torch.randn(_n, _ci, _h, _w, generator=_g), torch.randn(_co, _ci, 1, 1, generator=_g),
                   torch.randn(_co, generator=_g)))
agrees(conv1x1, lambda x, w, b: F.conv2d(x, w, b), _cases, atol=1e-5,
       forbid=("torch.nn.functional.conv2d", "torch.conv2d", "torch.convolution", "torch.nn.Module.__init__"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (count a NiN block).** Write `nin_block_params(in_channels, out_channels,
# kernel_size)`, the number of parameters of `nin_block(in_channels, out_channels,
# kernel_size)` from the formula, without building it. Then use it (in your head or in
# the cell) to see how many parameters d2l's whole NiN has: the test checks both.

# %% nbgrader={"grade": false, "grade_id": "ex-08-block-params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def nin_block_params(in_channels: int, out_channels: int, kernel_size: int) -> int:
    """Parameters of a k x k conv and two 1x1 convs, all with biases."""
    ### BEGIN SOLUTION
    conv = kernel_size * kernel_size * in_channels * out_channels + out_channels
    return conv + 2 * (out_channels * out_channels + out_channels)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-08-block-params-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

for _args in [(1, 96, 11), (96, 256, 5), (384, 10, 3), (3, 7, 1)]:
    assert nin_block_params(*_args) == count_params(nin_block(*_args)), _args
_total = sum(nin_block_params(*a) for a in [(1, 96, 11), (96, 256, 5), (256, 384, 3), (384, 10, 3)])
assert _total == count_params(nin_fashion())
print(f"d2l's NiN: {_total:,} parameters, all in its four NiN blocks")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.nin import nin_block as _nb

_g = generator(802)
agrees(nin_block_params, lambda *a: count_params(_nb(*a)),
       [tuple(int(v) for v in torch.randint(1, 60, (2,), generator=_g)) + (k,) for k in (1, 3, 7)], forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (any image size).** Write `class_map_side(image_size, small_input)`: the
# side of NiN's class maps (the output of `head`) for a square grey image, from the
# layer arithmetic: an output side is $\lfloor (s + 2p - k)/\text{stride} \rfloor + 1$
# for every convolution and pool, with the stems `(11, 4, 0)` (default) or `(3, 1, 1)`
# (`small_input=True`), and return 0 if the image is too small to get through. The test
# compares with the network on several sizes.

# %% nbgrader={"grade": false, "grade_id": "ex-08-map-side", "locked": false, "schema_version": 3, "solution": true, "task": false}
def class_map_side(image_size: int, small_input: bool = False) -> int:
    """Side of NiN's class maps for an image_size x image_size input (0 if too small)."""
    ### BEGIN SOLUTION
    def out(s, k, stride=1, p=0):
        return (s + 2 * p - k) // stride + 1

    k, stride, p = (3, 1, 1) if small_input else (11, 4, 0)
    s = out(image_size, k, stride, p)                    # stem conv (1x1 convs keep the size)
    for k_next, p_next in ((5, 2), (3, 1)):
        s = out(s, 3, 2)                                 # max-pool 3/2
        s = out(s, k_next, 1, p_next)                    # next block's conv keeps the size
    s = out(s, 3, 2)                                     # pool3; the head conv keeps the size
    return max(s, 0)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-08-map-side-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_nets = {flag: nin_fashion(width_mult=0.125, small_input=flag).eval() for flag in (False, True)}
for _flag, _sizes in ((False, (224, 96, 67, 150)), (True, (28, 15, 56, 40))):
    for _s in _sizes:
        _side = _nets[_flag][:-2](torch.zeros(1, 1, _s, _s)).shape[-1]
        assert class_map_side(_s, _flag) == _side, (_s, _flag, class_map_side(_s, _flag), _side)
assert class_map_side(28, False) == 0 and class_map_side(224) == 5 and class_map_side(28, True) == 2
print("class-map sides OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(image_size, small_input=False):
    _o = lambda s, k, st=1, p=0: (s + 2 * p - k) // st + 1  # noqa: E731
    _k, _st, _p = (3, 1, 1) if small_input else (11, 4, 0)
    _s = _o(image_size, _k, _st, _p)
    for _kn, _pn in ((5, 2), (3, 1)):
        _s = _o(_o(_s, 3, 2), _kn, 1, _pn)
    return max(_o(_s, 3, 2), 0)


_sizes = (20 + torch.randperm(300, generator=generator(803))[:4]).tolist()
agrees(class_map_side, _ref, [(s, bool(i % 2)) for i, s in enumerate(_sizes)] + [(17, True), (40, False)], forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (why the ReLUs matter).** Without a nonlinearity between them, two 1x1
# convolutions are one 1x1 convolution in disguise: $W_2(W_1 x + b_1) + b_2 = (W_2 W_1)x
# + (W_2 b_1 + b_2)$. Write `fold_1x1(first, second)` that returns a single `nn.Conv2d`
# with kernel size 1 computing `second(first(x))`. So the "micro network" is only more
# powerful than one layer because of its ReLUs.

# %% nbgrader={"grade": false, "grade_id": "ex-08-fold", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fold_1x1(first: nn.Conv2d, second: nn.Conv2d) -> nn.Conv2d:
    """One 1x1 convolution equal to second(first(x)) (no activation in between)."""
    ### BEGIN SOLUTION
    w1, w2 = first.weight[:, :, 0, 0], second.weight[:, :, 0, 0]
    folded = nn.Conv2d(first.in_channels, second.out_channels, kernel_size=1)
    with torch.no_grad():
        folded.weight.copy_((w2 @ w1)[:, :, None, None])
        folded.bias.copy_(w2 @ first.bias + second.bias)
    return folded
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-08-fold-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(3)
_a, _b = nn.Conv2d(5, 7, 1), nn.Conv2d(7, 3, 1)
_f = fold_1x1(_a, _b)
assert isinstance(_f, nn.Conv2d) and _f.kernel_size == (1, 1)
assert (_f.in_channels, _f.out_channels) == (5, 3)
_x = torch.randn(2, 5, 4, 6)
assert torch.allclose(_f(_x), _b(_a(_x)), atol=1e-5)
assert not torch.allclose(_f(_x), _b(torch.relu(_a(_x))), atol=1e-3)  # with a ReLU it differs
print("two linear 1x1 convs fold into one")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()
_g = generator(804)
for _ci, _cm, _co in ((3, 9, 2), (6, 1, 4)):
    _a, _b = nn.Conv2d(_ci, _cm, 1), nn.Conv2d(_cm, _co, 1)
    _f = fold_1x1(_a, _b)
    assert type(_f) is nn.Conv2d and _f.kernel_size == (1, 1)
    _x = torch.randn(2, _ci, 5, 3, generator=_g)
    same(_f(_x).detach(), _b(_a(_x)).detach(), atol=1e-5, what="folded conv")
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - M. Lin, Q. Chen, S. Yan (2013). *Network In Network.* arXiv:1312.4400; ICLR 2014.
# - A. Krizhevsky, I. Sutskever, G. E. Hinton (2012). *ImageNet Classification with Deep
#   Convolutional Neural Networks.* NeurIPS (AlexNet).
# - K. Simonyan, A. Zisserman (2014). *Very Deep Convolutional Networks for Large-Scale
#   Image Recognition.* arXiv:1409.1556 (VGG).
# - C. Szegedy et al. (2014). *Going Deeper with Convolutions.* arXiv:1409.4842; CVPR 2015
#   (GoogLeNet: 1x1 reductions and global average pooling).
# - K. He, X. Zhang, S. Ren, J. Sun (2015). *Delving Deep into Rectifiers: Surpassing
#   Human-Level Performance on ImageNet Classification.* ICCV (Kaiming initialisation).
# - X. Glorot, Y. Bengio (2010). *Understanding the difficulty of training deep
#   feedforward neural networks.* AISTATS (Xavier initialisation).
# - B. Zhou, A. Khosla, A. Lapedriza, A. Oliva, A. Torralba (2016). *Learning Deep
#   Features for Discriminative Localization.* CVPR (class activation maps).
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, section
#   8.3 "Network in Network (NiN)". Cambridge University Press.
