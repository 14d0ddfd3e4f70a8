# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 09 · GoogLeNet: going wider with Inception blocks
#
# VGG ([chapter 07](07_vgg.ipynb)) made networks better by stacking more of the same 3x3 convolutions.
# The same year, a team at Google asked a different question: at each layer, *which*
# kernel size is right, 1x1, 3x3 or 5x5? Their answer was "all of them, side by side, and
# let training decide", and with a cheap trick to afford it (1x1 convolutions that shrink
# the channels first) their 22-layer GoogLeNet won ImageNet 2014 with fewer parameters
# than AlexNet.
#
# **What you will learn**
#
# - where GoogLeNet came from: Szegedy et al. (2014), ILSVRC 2014, and the ideas it took
#   from Network in Network ([chapter 08](08_nin.ipynb));
# - the Inception block: four parallel paths (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max-pool
#   -> 1x1) concatenated on channels, and how much the 1x1 "reductions" save, computed;
# - the network as d2l builds it, five stages `b1` ... `b5` with nine Inception blocks,
#   its shape table, and our parameter counts checked against torchvision's;
# - the auxiliary classifiers and their loss weight 0.3, with a small measurement;
# - training GoogLeNet on Fashion-MNIST, and looking inside: which of the four paths the
#   trained network actually uses.

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
from cnnbook.data import class_names
from cnnbook.inspect import capture, first_conv
from cnnbook.models.googlenet import (INCEPTION_STAGES, AuxLoss, GoogLeNet, Inception,
                                      InceptionAux, conv_relu, googlenet, googlenet_fashion,
                                      googlenet_torchvision)
from cnnbook.profiling import count_flops, count_macs, count_params
from cnnbook.results import against_d2l
from cnnbook.summary import layer_shapes, shape_table, show_source
from cnnbook.train.recipes import recipe

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # main run: GoogLeNet with width_mult, small_input (28 px stem), resize, epochs, lr,
    # batch_norm (conv + BN + ReLU units, BN-Inception's change) and recipe
    # (cnnbook.train.recipes: "d2l" = d2l's plain SGD, "laptop" = Part III's);
    # aux_*: the with/without auxiliary classifiers comparison (images, epochs);
    # probe_limit: test images for the branch measurements of section 8
    "smoke": dict(epochs=1, limit=256, batch_size=128, resize=None, small_input=True,
                  width_mult=0.125, lr=0.1, batch_norm=True, recipe="laptop",
                  aux_limit=128, aux_epochs=1, probe_limit=128),
    "cpu":   dict(epochs=4, limit=None, batch_size=128, resize=None, small_input=True,
                  width_mult=0.25, lr=0.1, batch_norm=True, recipe="laptop",
                  aux_limit=5_000, aux_epochs=2, probe_limit=1_000),
    "full":  dict(epochs=10, limit=None, batch_size=128, resize=96, small_input=False,
                  width_mult=1.0, lr=0.1, batch_norm=False, recipe="d2l",
                  aux_limit=None, aux_epochs=5, probe_limit=10_000),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
# Treat tiny "subnormal" floats as zero on the CPU. A deep network without batch norm
# produces many of them early in training, and x86 CPUs process them many times slower
# than normal numbers; flushing them changes no result that matters here.
torch.set_flush_denormal(True)
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# In the `full` profile the chapter uses d2l's settings: the full-width GoogLeNet on
# Fashion-MNIST resized to 96 px, 10 epochs, batch 128, learning rate 0.1, plain SGD and
# Xavier initialisation; d2l reports a test accuracy of about 0.9. One epoch of that is
# tens of trillions of multiply-adds, hours on a laptop CPU. The `cpu` profile keeps the
# *structure* (the stem, nine Inception blocks in three stages, every path of every
# block) and shrinks the cost: native 28 px images with a small stem (a 3x3 stride-1
# convolution instead of the 7x7 stride-2 one, which together with the four max-pools
# would shrink 28 px to a single pixel), a quarter of the width (the first Inception
# block has 16 + 32 + 8 + 8 channels instead of 64 + 128 + 32 + 32), and 4 epochs on all
# 60,000 training images. It changes how the network trains, too, so that those minutes
# are not spent on the plateau of section 6: batch normalisation after every convolution
# (the change of the Inception line's next paper, BN-Inception) and the training recipe of
# Part III. Section 7 says which and compares the result with d2l's. (A network of many
# small convolutions is sensitive to a busy CPU: if other programs are running, expect it
# to take longer.)
#
# ## 1. History: "we need to go deeper"
#
# In 2014 the ImageNet challenge (ILSVRC) was won by a team from Google led by Christian
# Szegedy. Their paper, *Going Deeper with Convolutions* (Szegedy et al., 2014; CVPR
# 2015), named the network GoogLeNet in homage to LeNet, and its building block
# *Inception* after the film: the paper's first reference is the internet meme "we need
# to go deeper". The published numbers: a top-5 classification error of 6.67% (an
# ensemble of seven networks), ahead of VGG, with a single network of 22 layers that has
# about 12 times fewer parameters than AlexNet and was designed to cost about 1.5 billion
# multiply-adds per image, so that it could run outside a data centre.
#
# Two ideas shaped it:
#
# 1. **Network in Network** (Lin et al., 2013; [chapter 08](08_nin.ipynb)) showed that 1x1 convolutions
#    are per-pixel fully connected layers, and that global average pooling can replace
#    the huge fully connected head of AlexNet and VGG. GoogLeNet uses both, the 1x1
#    convolutions mainly to make its blocks *cheap*.
# 2. **Multi-scale processing.** Objects appear at every size; a fixed kernel size per
#    layer is a guess. Instead of guessing, an Inception block applies several kernel
#    sizes in parallel and concatenates the results, and the next layer learns which
#    scales to combine. The paper motivates this with Arora et al.'s analysis of sparse
#    networks; the practical reading is "a wide layer of cheap, varied filters".
#
# VGG asked for depth through uniformity; GoogLeNet for width through parallel paths.
# Both were superseded a year later by ResNet ([chapter 11](11_resnet.ipynb)), but the Inception line went on
# (batch normalisation, factorised convolutions, label smoothing, residual connections;
# section 9) and its parallel-branch block is still in many networks.
#
# ## 2. The Inception block
#
# The block runs four paths on the same input and stacks their outputs on the channel
# axis:
#
# 1. a 1x1 convolution;
# 2. a 1x1 convolution that *reduces* the channels, then a 3x3 convolution;
# 3. a 1x1 reduction, then a 5x5 convolution;
# 4. a 3x3 max-pool with stride 1, then a 1x1 convolution (the "pool projection").
#
# Every path pads so that height and width do not change; only then can the outputs be
# concatenated. Every convolution is followed by a ReLU. The hyperparameters are the
# output channels of each path: `c1`, the pairs `c2 = (reduction, output)` and `c3`, and
# `c4`. The course's implementation:

# %%
show_source(Inception);

# %% [markdown]
# `__init__` builds the four paths with `conv_relu` (a convolution and a ReLU; with
# `batch_norm=True` the conv + BN + ReLU unit torchvision uses), and `forward` is one
# line: apply each path, `torch.cat` on dimension 1. `branch3_kernel` is 5 in the paper;
# we will meet the 3 of torchvision in section 5.
#
# The first block of GoogLeNet, "3a", takes 192 channels and outputs
# $64 + 128 + 32 + 32 = 256$. At the paper's resolution its input is 28x28:

# %%
blk = Inception(192, 64, (96, 128), (16, 32), 32)
X = torch.rand(1, 192, 28, 28)
for name in ("branch1", "branch2", "branch3", "branch4"):
    print(f"{name}: {tuple(getattr(blk, name)(X).shape)}")
print(f"block 3a: {tuple(blk(X).shape)}, out_channels = {blk.out_channels}")

# %% [markdown]
# Notice how the channels are split: the 3x3 path gets half of them, the cheap 1x1 path a
# quarter, the expensive 5x5 and the pooling paths an eighth each. The paper's authors
# chose these numbers by hand for each of the nine blocks (and, they admit, partly for
# engineering convenience).
#
# ## 3. What the 1x1 reductions save
#
# Why not apply the 3x3 and 5x5 convolutions to the 192 input channels directly? Count.
# A $k \times k$ convolution from $c_i$ to $c_o$ channels has $c_i c_o k^2$ weights (plus
# $c_o$ biases), and on an $h \times w$ output it does $h w c_i c_o k^2$ multiply-adds.
# The cell below compares, for block 3a at 28x28, each path with and without its 1x1
# reduction:

# %%
def path_cost(layers, size=28):
    """Parameters and multiply-adds of a chain of convolutions on a size x size map."""
    chain = nn.Sequential(*layers)
    return count_params(chain), count_macs(chain, (1, layers[0].in_channels, size, size))

paths = {
    "3x3 path": ([nn.Conv2d(192, 128, 3, padding=1)],
                 [nn.Conv2d(192, 96, 1), nn.Conv2d(96, 128, 3, padding=1)]),
    "5x5 path": ([nn.Conv2d(192, 32, 5, padding=2)],
                 [nn.Conv2d(192, 16, 1), nn.Conv2d(16, 32, 5, padding=2)]),
}
rows = []
for name, (direct, reduced) in paths.items():
    (p0, m0), (p1, m1) = path_cost(direct), path_cost(reduced)
    rows.append({"path": name, "params direct": p0, "params reduced": p1,
                 "MMACs direct": m0 / 1e6, "MMACs reduced": m1 / 1e6, "saving": m0 / m1})
savings = pd.DataFrame(rows)
print(savings.round(2).to_string(index=False))

# %% [markdown]
# The table above is computed: the reduction makes the 3x3 path somewhat cheaper and the
# 5x5 path several times cheaper, because the 5x5 kernel then reads 16 channels instead
# of 192. The ratio is roughly $c_i / c_{red}$ when the reduction is thin (exercise 1
# derives it exactly).
#
# The pooling path has a second, subtler problem. Without its 1x1 projection, max-pooling
# keeps all $c_i$ input channels, so a block's output would have *more* channels than its
# input, $c_i + c_1 + c_2 + c_3$, and stacking blocks would make every later block more
# expensive. The paper's "naive" Inception module had exactly this problem; the
# projection fixes the pooling path's width (to 32 in block 3a). Here is the channel
# count through the three blocks of stage 3 and 4a, naive versus projected:

# %%
c_naive = c_proj = 192
rows = []
for name, c1, c2, c3, c4 in (*INCEPTION_STAGES["b3"], INCEPTION_STAGES["b4"][0]):
    c_naive = c_naive + c1 + c2[1] + c3[1]      # pool path passes all inputs through
    c_proj = c1 + c2[1] + c3[1] + c4            # pool path projected to c4 channels
    rows.append({"block": name, "channels (naive)": c_naive, "channels (GoogLeNet)": c_proj})
print(pd.DataFrame(rows).to_string(index=False))

# %% [markdown]
# ## 4. GoogLeNet, one stage at a time
#
# d2l splits the network into five stages:
#
# - `b1`: a 7x7 convolution with 64 channels and stride 2, then a 3x3 max-pool with
#   stride 2 (the stem: quarter the resolution quickly, as in AlexNet);
# - `b2`: a 1x1 convolution (64) and a 3x3 convolution (192), then a max-pool;
# - `b3`: Inception blocks 3a and 3b, then a max-pool;
# - `b4`: five Inception blocks 4a ... 4e, then a max-pool;
# - `b5`: blocks 5a and 5b, then global average pooling (NiN's head) and one linear layer.
#
# The channel numbers of the nine blocks come from Table 1 of the paper; the package keeps
# them as a table, one row per block `(name, c1, (c2 reduce, c2), (c3 reduce, c3), c4)`:

# %%
table = pd.DataFrame([{"stage": stage, "block": name, "in": None, "#1x1": c1,
                       "#3x3 reduce": c2[0], "#3x3": c2[1], "#5x5 reduce": c3[0],
                       "#5x5": c3[1], "pool proj": c4, "out": c1 + c2[1] + c3[1] + c4}
                      for stage, rows in INCEPTION_STAGES.items()
                      for name, c1, c2, c3, c4 in rows])
table["in"] = [192] + table["out"].tolist()[:-1]
print(table.to_string(index=False))

# %% [markdown]
# Each block's input is the previous block's output: the channels grow from 192 to 1024
# while the resolution falls. We build the network by hand for one-channel 96 px images,
# as d2l does, and watch the shapes:

# %%
b1 = nn.Sequential(conv_relu(1, 64, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, padding=1))
b2 = nn.Sequential(conv_relu(64, 64, 1), conv_relu(64, 192, 3, padding=1),
                   nn.MaxPool2d(3, 2, padding=1))
b3 = nn.Sequential(Inception(192, 64, (96, 128), (16, 32), 32),
                   Inception(256, 128, (128, 192), (32, 96), 64),
                   nn.MaxPool2d(3, 2, padding=1))
b4 = nn.Sequential(Inception(480, 192, (96, 208), (16, 48), 64),
                   Inception(512, 160, (112, 224), (24, 64), 64),
                   Inception(512, 128, (128, 256), (24, 64), 64),
                   Inception(512, 112, (144, 288), (32, 64), 64),
                   Inception(528, 256, (160, 320), (32, 128), 128),
                   nn.MaxPool2d(3, 2, padding=1))
b5 = nn.Sequential(Inception(832, 256, (160, 320), (32, 128), 128),
                   Inception(832, 384, (192, 384), (48, 128), 128),
                   nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
net = nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, 10))
layer_shapes(net, torch.rand(1, 1, 96, 96))

# %% [markdown]
# The 96 px image becomes 24x24 after the stem, 12 after `b2`, 6 after `b3` and 3 after
# `b4`; `b5` averages the 3x3 map of 1024 channels into one vector. Why "22 layers"?
# Count the layers with weights along the *longest* path: 3 in the stem stages (7x7,
# 1x1, 3x3), 2 in each of the nine Inception blocks (reduction + 3x3 or 5x5), and the
# linear layer: $3 + 18 + 1 = 22$.
#
# The package's `GoogLeNet` builds the same modules from `INCEPTION_STAGES`, with a width
# multiplier, the small stem for 28 px images and optional auxiliary classifiers;
# `googlenet_fashion()` is the d2l network (one input channel, 10 classes):

# %%
show_source(GoogLeNet.__init__);

# %%
ours = googlenet_fashion()
print(f"hand-built: {count_params(net):,} parameters; googlenet_fashion(): {count_params(ours):,}")
assert count_params(net) == count_params(ours)
print(shape_table(ours, (1, 1, 96, 96), depth=1))

# %% [markdown]
# Where are the parameters and the computation? Per stage, for the 96 px network:

# %%
total_flops, per_stage = count_flops(ours.stages(), (1, 1, 96, 96), by_module=True)
cost = pd.DataFrame({"parameters": {s: count_params(m) for s, m in ours.stages().named_children()},
                     "MMACs": {s: per_stage.get(s, 0) / 2e6 for s, _ in ours.stages().named_children()}})
cost["% params"] = 100 * cost["parameters"] / cost["parameters"].sum()
cost["% MACs"] = 100 * cost["MMACs"] / cost["MMACs"].sum()
print(cost.round(1).to_string())

# %% [markdown]
# Unlike AlexNet and VGG, whose fully connected layers hold most of their weights, the
# head here is one small linear layer: the parameters sit in the Inception stages, above
# all `b4` and `b5`, where the channels are many. The computation, in contrast, is spread
# over the stages, because the early ones work on larger maps.
#
# ## 5. Checked against torchvision
#
# torchvision's `googlenet` differs from the paper in two ways. Every convolution is a
# "BasicConv2d", convolution (no bias) + batch norm + ReLU, a change from the later
# Inception papers. And its "5x5" path actually uses a 3x3 kernel, a slip in the original
# port that was kept so that the published ImageNet weights still load
# (pytorch/vision issue #906). `googlenet_torchvision()` reproduces both; with three
# input channels, 1000 classes and 224 px it must match torchvision's parameter count and
# the GFLOPS torchvision publishes with its weights (which count multiply-adds). We build
# the models on the "meta" device: shapes only, no memory, no initialisation.

# %%
weights = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1
with torch.device("meta"):
    tv_ours, tv_theirs = googlenet_torchvision(), torchvision.models.googlenet(
        weights=None, aux_logits=False, init_weights=True)
    tv_aux_ours = googlenet_torchvision(aux_logits=True)
    tv_aux_theirs = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    paper = googlenet()
compare = pd.DataFrame({
    "ours": [f"{count_params(tv_ours):,}", f"{count_params(tv_aux_ours):,}",
             f"{count_macs(tv_ours) / 1e9:.3f}"],
    "torchvision": [f"{count_params(tv_theirs):,}", f"{count_params(tv_aux_theirs):,}", "-"],
    "published": [f"{weights.meta['num_params']:,}", "-", f"{weights.meta['_ops']:.3f}"]},
    index=["params", "params with aux heads", "GMACs at 224 px"])
print(compare.to_string())
assert count_params(tv_ours) == count_params(tv_theirs) == weights.meta["num_params"]
assert count_params(tv_aux_ours) == count_params(tv_aux_theirs)
assert abs(count_macs(tv_ours) / 1e9 / weights.meta["_ops"] - 1) < 0.01
print(f"\nthe paper's version (real 5x5 kernels, biases, no BN): {count_params(paper):,} "
      f"parameters, {count_macs(paper) / 1e9:.2f} GMACs at 224 px")

# %% [markdown]
# The printout shows our torchvision configuration matching both the library and the
# published count exactly, and the paper's version, with its real 5x5 kernels, a little
# larger. Compare AlexNet's roughly 61 million parameters ([chapter 06](06_alexnet.ipynb)): GoogLeNet is
# deeper and more accurate with about a tenth of them, and its cost of about 1.5 billion
# multiply-adds is the paper's stated budget.
#
# ## 6. Auxiliary classifiers
#
# In 2014 there was no batch normalisation, and a 22-layer network was deep enough to
# worry about gradients reaching the lower layers. The paper attached two small
# classifiers to intermediate blocks, 4a and 4d: an average pool to 4x4, a 1x1
# convolution with 128 channels, a fully connected layer of 1024 units, dropout 0.7 and a
# linear layer to the classes.

# %%
show_source(InceptionAux);

# %% [markdown]
# During training their cross-entropy losses are added to the main loss with a weight of
# **0.3** each,
#
# $$\mathcal{L} = \mathcal{L}_\text{main} + 0.3\,\mathcal{L}_\text{aux,4a} + 0.3\,\mathcal{L}_\text{aux,4d},$$
#
# so the middle of the network receives a gradient straight from a loss, not only the
# one that travels down from the top. At inference the auxiliary heads are thrown away.
# In the package, `GoogLeNet(aux_logits=True)` runs them in training mode only and keeps
# their logits in `model.aux_outputs`; `forward` still returns the main logits, so `fit`
# and `evaluate` work unchanged, and `AuxLoss` adds the weighted terms:

# %%
show_source(AuxLoss);

# %%
cnnbook.seed_everything(0)
aux_model = googlenet_fashion(cfg.width_mult, small_input=True, aux_logits=True)
Xb, yb = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
aux_model.train()
logits = aux_model(Xb)
ce = nn.functional.cross_entropy
parts = [ce(logits, yb)] + [ce(a, yb) for a in aux_model.aux_outputs]
loss = AuxLoss(aux_model, weight=0.3)(logits, yb)
print("main, aux 4a, aux 4d losses:", [round(p.item(), 3) for p in parts])
print(f"total = {parts[0]:.3f} + 0.3 x ({parts[1]:.3f} + {parts[2]:.3f}) = {loss:.3f}")
assert torch.isclose(loss, parts[0] + 0.3 * (parts[1] + parts[2]))
aux_model.eval()
with torch.no_grad():
    aux_model(Xb)
print("auxiliary outputs in eval mode:", aux_model.aux_outputs)
extra = count_params(aux_model) - count_params(googlenet_fashion(cfg.width_mult, small_input=True))
print(f"the two heads add {extra:,} parameters that are used only during training")

# %% [markdown]
# Do they help? We train the same network from the same initialisation twice, with and
# without the auxiliary losses, on a subset for a short budget (`aux_limit` images,
# `aux_epochs` epochs; with the profile's width and image size), and compare the main
# head's test accuracy. This is a throw-away measurement (`record=False`).

# %%
aux_train, aux_test = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                        resize=cfg.resize, limit=cfg.aux_limit)
rows = []
for with_aux in (False, True):
    cnnbook.seed_everything(0)
    model = googlenet_fashion(cfg.width_mult, small_input=cfg.small_input, aux_logits=with_aux)
    res = cnnbook.fit(model, aux_train, aux_test, epochs=cfg.aux_epochs, lr=cfg.lr,
                      loss_fn=AuxLoss(model) if with_aux else None,
                      record=False, progress=False, live_plot=False)
    for _, row in res.history.iterrows():
        rows.append({"aux heads": with_aux, "epoch": int(row["epoch"]),
                     "train loss (incl. aux)": row["train_loss"], "test acc": row["test_acc"]})
aux_cmp = pd.DataFrame(rows)
print(aux_cmp.round(3).to_string(index=False))
last = int(aux_cmp.epoch.max())   # cfg.aux_epochs, unless a rehearsal capped the runs
final = aux_cmp[aux_cmp.epoch == last].set_index("aux heads")["test acc"]
print(f"\nmain-head test accuracy after {last} epoch(s): {final[True]:.3f} with "
      f"auxiliary heads, {final[False]:.3f} without ({final[True] - final[False]:+.3f})")

# %% [markdown]
# Read the table above with care. The training loss of the run with auxiliary heads
# *includes* their weighted terms, so it is not comparable with the other run's; the test
# accuracy of the main head is, and the last line prints the difference. This plain
# (no batch norm) network first spends a few hundred steps near the guessing loss
# $\ln 10 \approx 2.30$, and a short run like this one is mostly that phase: a head at
# block 4a sends a gradient to the stem through far fewer layers, which can help the
# network leave the plateau sooner. The difference is a single seed on a small subset;
# exercise-sized runs vary. Over full ImageNet training the Inception authors found a
# year later (Szegedy et al., 2015b) that the auxiliary heads did *not* speed up early
# training and helped a little at the end, acting as a regulariser. Batch normalisation
# then made them unnecessary, and they are rarely used today.
#
# ## 7. Training GoogLeNet on Fashion-MNIST
#
# The main run: no auxiliary heads (as in d2l), Xavier-initialised weights (`GoogLeNet`
# initialises itself so). The `full` profile trains d2l's network as d2l does: no batch
# norm, plain SGD at the constant learning rate 0.1. The `cpu` profile has ten minutes, and
# a plain network would spend a good part of them on the plateau above. It adds batch
# normalisation after every convolution (`batch_norm=True`: the conv + BN + ReLU unit of
# BN-Inception and torchvision, [chapter 10](10_batch_norm.ipynb)) and trains with the
# recipe of Part III ([chapter 18](18_training_recipes.ipynb)): momentum, weight decay, a
# one-cycle schedule that ends annealed, and label smoothing.

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          resize=cfg.resize, limit=cfg.limit)
size = cfg.resize or 28
print(f"{train_iter.num_examples:,} training images of {size} px, {test_iter.num_examples:,} test")
cnnbook.seed_everything(0)
model = googlenet_fashion(cfg.width_mult, small_input=cfg.small_input, batch_norm=cfg.batch_norm)
print(f"GoogLeNet (width x{cfg.width_mult}, batch norm {cfg.batch_norm}): "
      f"{count_params(model):,} parameters, "
      f"{count_macs(model, (1, 1, size, size)) / 1e6:,.1f} M multiply-adds per image")
how = recipe(cfg.recipe)
print(f"recipe {how.name!r}: {how.summary}")
result = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, name="googlenet",
                     chapter="09", **how.fit_kwargs(cfg.lr),
                     extra={"batch_norm": cfg.batch_norm, **how.describe()})
print(against_d2l(result.record))
first_loss = result.history["train_loss"].iloc[0]
print(f"mean training loss over the first epoch: {first_loss:.3f} (guessing: ln 10 = 2.303)")

# %%
fig = viz.plot_history(result.history, title="GoogLeNet on Fashion-MNIST")
print(result.history.round(3).to_string(index=False))
if cnnbook.claims_checked(PROFILE) and cfg.batch_norm:   # the claim above, on the numbers
    assert first_loss < 0.8 * math.log(10), first_loss

# %% [markdown]
# The cell above prints the test accuracy beside d2l's full-size GoogLeNet at 96 px, and
# the mean training loss of the first epoch. Without batch normalisation a network this
# deep often sits near the guessing loss ($\ln 10 \approx 2.30$) for a while before it
# starts to learn, much like the sigmoid LeNet of [chapter 05](05_lenet.ipynb) and the runs of section
# 6; the `full` profile, d2l's plain network, will show it. With batch normalisation the
# first epoch's mean loss already ends well below it (asserted in the next cell for the
# `cpu` profile).
#
# ## 8. Inside the trained network: which paths does it use?
#
# An Inception block offers four paths; training decides how much each one matters. We
# look at this in two ways, on `probe_limit` test images.
#
# 1. **Activation share.** For every block, the fraction of the output's energy (sum of
#    squared activations) that comes from each path. A path whose ReLUs are mostly silent
#    contributes little to what the next block sees.
# 2. **Ablation.** Zero one path of one block (a forward hook replaces its output with
#    zeros) and measure the test accuracy; the drop is how much the network relies on it.

# %%
BRANCHES = ("branch1", "branch2", "branch3", "branch4")
BRANCH_NAMES = ("1x1", "1x1 -> 3x3", "1x1 -> 5x5", "pool -> 1x1")
blocks = {name.split(".")[-1].replace("inception", ""): name
          for name, m in model.named_modules() if isinstance(m, Inception)}
probe = [(Xp, yp) for Xp, yp in test_iter]
Xp = torch.cat([b[0] for b in probe])[:cfg.probe_limit]
yp = torch.cat([b[1] for b in probe])[:cfg.probe_limit]
probe = [(Xp[i:i + 250], yp[i:i + 250]) for i in range(0, len(yp), 250)]  # batches of 250

energy, channels = {}, {}
for short, name in blocks.items():
    maps = capture(model, probe[0][0], [f"{name}.{b}" for b in BRANCHES])
    e = torch.tensor([maps[f"{name}.{b}"].pow(2).sum().item() for b in BRANCHES])
    energy[short] = (e / e.sum()).tolist()
    channels[short] = [maps[f"{name}.{b}"].shape[1] for b in BRANCHES]
energy = pd.DataFrame(energy, index=BRANCH_NAMES).T
channels = pd.DataFrame(channels, index=BRANCH_NAMES).T
channel_share = channels.div(channels.sum(axis=1), axis=0)
print("share of output energy (rows: blocks):")
print(energy.round(2).to_string())


# %%
def accuracy_without(model, module=None):
    """Test accuracy on the probe images, with ``module``'s output replaced by zeros."""
    hook = (module.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
            if module is not None else None)
    try:
        return cnnbook.evaluate(model, probe)["acc"]
    finally:
        if hook is not None:
            hook.remove()

base_acc = accuracy_without(model)
drops = pd.DataFrame({short: [base_acc - accuracy_without(model, getattr(model.get_submodule(n), b))
                              for b in BRANCHES] for short, n in blocks.items()},
                     index=BRANCH_NAMES).T
print(f"accuracy on {len(yp):,} test images: {base_acc:.3f}; drop when one path is zeroed:")
print(drops.round(3).to_string())
worst_block, worst_path = drops.stack().idxmax()
print(f"largest drop: path {worst_path} of block {worst_block} ({drops.stack().max():+.3f}); "
      f"mean drop per path in b3: {drops.loc[['3a', '3b']].values.mean():.3f}, "
      f"in b5: {drops.loc[['5a', '5b']].values.mean():.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharey=True)
for ax, (data, title, cmap) in zip(axes, ((channel_share, "share of channels", "Blues"),
                                          (energy, "share of output energy", "Greens"),
                                          (drops, "accuracy drop when zeroed", "Reds"))):
    im = ax.imshow(data.values, cmap=cmap, aspect="auto")
    ax.set_xticks(range(4), BRANCH_NAMES, rotation=30, ha="right")
    ax.set_yticks(range(len(data)), data.index)
    for (i, j), v in np.ndenumerate(data.values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(title)
axes[0].set_ylabel("Inception block")
fig.tight_layout()

# %% [markdown]
# Compare the three panels row by row. The left one is the design: how the authors
# split each block's channels. The middle one is what the trained network does with
# them: some paths carry more of the signal than their share of channels, others less.
# The right one says how much the network *needs* each path. A large drop in an early
# block is partly a shock to everything downstream (the later blocks never saw that path
# silent), so read the ablation as "how much the rest of the network relies on it", not
# as a pure measure of usefulness. The last line of the printout names the path the
# network misses most and compares the average drop in the first and the last stage; a
# small drop in the last blocks means their four paths are largely redundant there, and
# one can stand in for another.
#
# What the four paths of the first Inception block compute for one test image (the first
# 8 channels of each path; at 28 px with the small stem this block works on 7x7 maps):

# %%
image, label = Xp[:1], int(yp[0])
first = blocks["3a"]
maps = capture(model, image, [f"{first}.{b}" for b in BRANCHES])
names = class_names("fashion_mnist")
fig = viz.show_images(image.cpu(), titles=[names[label]], ncols=1, scale=2)
for b, bname in zip(BRANCHES, BRANCH_NAMES):
    fig = viz.plot_feature_maps(maps[f"{first}.{b}"][0, :8], ncols=8, scale=1.1,
                                title=f"block 3a, path {bname}")

# %% [markdown]
# And the stem's kernels, which, as in every network so far, become small edge and blob
# detectors:

# %%
fig = viz.plot_kernels(first_conv(model).weight, ncols=16, title="GoogLeNet: stem kernels")

# %% [markdown]
# ### Explore: the four paths, image by image
#
# The shares above are averages over many images. The `InceptionExplorer` shows them for
# one test image at a time, on the network trained above: pick an image and an Inception
# block and see each path's share of the block's output activity (grey bars: its share
# of the channels, the design), the same shares for all nine blocks (bottom left), and
# each path's strongest feature maps. Things to look for: does the pooling path's share
# change from image to image, or is it the same for a sandal and a shirt? In which
# blocks does one path carry far more than its share of channels, and is that the same
# path for every image?

# %%
from cnnbook.widgets.inception import InceptionExplorer

explorer = InceptionExplorer(model, Xp[:200], labels=yp[:200], class_names=names)
print(f"block {explorer.state['block']}, image 0: strongest path "
      f"{explorer.state['strongest_path']}; this picture took {explorer.state['render_ms']:.0f} ms")
explorer

# %% [markdown]
# ## 9. After GoogLeNet: the Inception family
#
# - **Inception v2 / BN-Inception** (Ioffe & Szegedy, 2015): batch normalisation after
#   every convolution ([chapter 10](10_batch_norm.ipynb)), which made training many times faster and the
#   auxiliary classifiers unnecessary; also the 5x5 convolution replaced by two 3x3 ones.
# - **Inception v3** (Szegedy et al., 2015b, *Rethinking the Inception Architecture*):
#   factorised convolutions (a 5x5 as two 3x3, an $n \times n$ as $1 \times n$ followed
#   by $n \times 1$), label smoothing (exercise 3), and a more careful down-sampling.
# - **Inception v4 and Inception-ResNet** (Szegedy et al., 2016): Inception blocks with
#   residual connections ([chapter 11](11_resnet.ipynb)), which trained faster still.
# - **Xception** (Chollet, 2017) took the idea to its end: separate the spatial and the
#   channel mixing completely, with depthwise separable convolutions, which MobileNet
#   ([chapter 13](13_mobilenet.ipynb)) uses too.
#
# ## Summary
#
# - GoogLeNet (Szegedy et al., 2014) won ILSVRC 2014 with 22 layers and far fewer
#   parameters than AlexNet, by going *wide* inside each block rather than only deep.
# - An Inception block runs a 1x1, a 3x3, a 5x5 and a pooling path in parallel, each
#   padded to keep the size, and concatenates them on channels; block 3a turns 192
#   channels into 64 + 128 + 32 + 32 = 256.
# - 1x1 reductions before the 3x3 and 5x5 convolutions, and a 1x1 projection after the
#   pool, keep the cost and the channel count under control (computed in section 3).
# - The network: stem stages `b1`, `b2`, nine Inception blocks in `b3` (2), `b4` (5) and
#   `b5` (2), global average pooling and one linear layer; our torchvision configuration
#   matches its 6,624,904 parameters.
# - Auxiliary classifiers after 4a and 4d add $0.3 \times$ their losses during training;
#   batch normalisation later made them unnecessary.
# - In the line of the course's architectures, GoogLeNet stands for *width*: parallel
#   paths with different receptive fields.
#
# ## Exercises
#
# **Exercise 1 (the cost of a block).** Write `inception_params(in_channels, c1, c2, c3,
# c4, k=5)`: the number of parameters of `Inception(in_channels, c1, c2, c3, c4,
# branch3_kernel=k)` from the formula, without building it (every convolution has a
# bias; the max-pool has no parameters), and `inception_macs(size, in_channels, c1, c2, c3, c4, k=5)`: its
# multiply-adds on a `size x size` map (a $k \times k$ convolution from $c_i$ to $c_o$
# channels costs $c_i c_o k^2$ per output position; biases, ReLUs, pooling and the
# concatenation are free in this count).

# %% nbgrader={"grade": false, "grade_id": "ex-09-inception-cost", "locked": false, "schema_version": 3, "solution": true, "task": false}
def inception_params(in_channels, c1, c2, c3, c4, k=5) -> int:
    """Parameters of an Inception block, from the formula."""
    ### BEGIN SOLUTION
    conv = lambda ci, co, kk: ci * co * kk * kk + co  # noqa: E731
    return (conv(in_channels, c1, 1)
            + conv(in_channels, c2[0], 1) + conv(c2[0], c2[1], 3)
            + conv(in_channels, c3[0], 1) + conv(c3[0], c3[1], k)
            + conv(in_channels, c4, 1))
    ### END SOLUTION


def inception_macs(size, in_channels, c1, c2, c3, c4, k=5) -> int:
    """Multiply-adds of an Inception block on a size x size map, from the formula."""
    ### BEGIN SOLUTION
    per_pixel = (in_channels * c1 + in_channels * c2[0] + c2[0] * c2[1] * 9
                 + in_channels * c3[0] + c3[0] * c3[1] * k * k + in_channels * c4)
    return size * size * per_pixel
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-09-inception-cost-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_macs, count_params

for _args in [(192, 64, (96, 128), (16, 32), 32), (832, 384, (192, 384), (48, 128), 128),
              (7, 3, (2, 5), (1, 4), 2)]:
    for _k in (3, 5):
        _blk = Inception(*_args, branch3_kernel=_k)
        assert inception_params(*_args, k=_k) == count_params(_blk), (_args, _k)
        assert inception_macs(14, *_args, k=_k) == count_macs(_blk, (1, _args[0], 14, 14)), (_args, _k)
print("block 3a at 28 px:", f"{inception_params(192, 64, (96, 128), (16, 32), 32):,} parameters,",
      f"{inception_macs(28, 192, 64, (96, 128), (16, 32), 32) / 1e6:.1f} M multiply-adds")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.googlenet import Inception as _Inc

_g = generator(901)
_cases = []
for _k in (3, 5):
    _v = [int(v) for v in torch.randint(1, 30, (7,), generator=_g)]
    _cases.append((_v[0], _v[1], (_v[2], _v[3]), (_v[4], _v[5]), _v[6], _k))
agrees(inception_params, lambda i, c1, c2, c3, c4, k=5: count_params(_Inc(i, c1, c2, c3, c4, branch3_kernel=k)),
       _cases, forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
_s = int(torch.randint(5, 20, (1,), generator=_g))
agrees(inception_macs,
       lambda s, i, c1, c2, c3, c4, k=5: count_macs(_Inc(i, c1, c2, c3, c4, branch3_kernel=k), (1, i, s, s)),
       [(_s,) + c for c in _cases], forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (factorise the 5x5).** Inception v3 replaced each 5x5 convolution by two
# stacked 3x3 convolutions: the same 5x5 receptive field with $2 \cdot 9 = 18$ instead of
# 25 weights per input-output channel pair, and an extra ReLU in between. Write
# `FactorisedInception(in_channels, c1, c2, c3, c4)`: like `Inception`, except that
# `branch3` is a 1x1 reduction to `c3[0]` channels, a 3x3 convolution that keeps `c3[0]`
# channels and a second 3x3 convolution from `c3[0]` to `c3[1]` (all padded, each
# followed by a ReLU; use `conv_relu`). The test checks the output shape, that an output pixel of `branch3`
# sees exactly a 5x5 window of the input, and that the block is cheaper than the 5x5
# original for block 3a's channels.

# %% nbgrader={"grade": false, "grade_id": "ex-09-factorised", "locked": false, "schema_version": 3, "solution": true, "task": false}
class FactorisedInception(nn.Module):
    """An Inception block whose 5x5 path is two stacked 3x3 convolutions."""

    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        ### BEGIN SOLUTION
        self.branch1 = conv_relu(in_channels, c1, 1)
        self.branch2 = nn.Sequential(conv_relu(in_channels, c2[0], 1),
                                     conv_relu(c2[0], c2[1], 3, padding=1))
        self.branch3 = nn.Sequential(conv_relu(in_channels, c3[0], 1),
                                     conv_relu(c3[0], c3[0], 3, padding=1),
                                     conv_relu(c3[0], c3[1], 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     conv_relu(in_channels, c4, 1))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-09-factorised-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

_args = (192, 64, (96, 128), (16, 32), 32)
_fac, _orig = FactorisedInception(*_args), Inception(*_args)
_x = torch.rand(1, 192, 12, 12, requires_grad=True)
assert _fac(_x).shape == _orig(_x).shape == (1, 256, 12, 12)
assert count_params(_fac) < count_params(_orig)
assert len([m for m in _fac.branch3.modules() if isinstance(m, nn.Conv2d)]) == 3
# receptive field of one branch3 output pixel: a 5x5 window (use positive weights so no
# ReLU is silent)
_probe_branch = FactorisedInception(2, 1, (1, 1), (1, 1), 1).branch3
for _p in _probe_branch.parameters():
    nn.init.constant_(_p, 0.1)
_xi = torch.rand(1, 2, 11, 11, requires_grad=True)
_probe_branch(_xi)[0, :, 5, 5].sum().backward()
_seen = (_xi.grad[0].abs().sum(0) > 0).nonzero()
assert (_seen.max(0).values - _seen.min(0).values + 1).tolist() == [5, 5]
print(f"factorised block 3a: {count_params(_fac):,} parameters vs {count_params(_orig):,}")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
from cnnbook.models.googlenet import conv_relu as _cr
check_comparisons()
_g = generator(902)
_v = [int(v) for v in torch.randint(1, 12, (7,), generator=_g)]
_blk = FactorisedInception(_v[0], _v[1], (_v[2], _v[3]), (_v[4], _v[5]), _v[6])
_want = (count_params(_cr(_v[0], _v[1], 1)) + count_params(_cr(_v[0], _v[2], 1))
         + count_params(_cr(_v[2], _v[3], 3)) + count_params(_cr(_v[0], _v[4], 1))
         + count_params(_cr(_v[4], _v[4], 3)) + count_params(_cr(_v[4], _v[5], 3))
         + count_params(_cr(_v[0], _v[6], 1)))
same(count_params(_blk), _want, what="parameters of the factorised block")
same(tuple(_blk(torch.rand(2, _v[0], 9, 7, generator=_g)).shape), (2, _v[1] + _v[3] + _v[5] + _v[6], 9, 7),
     what="output shape")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (label smoothing).** Inception v3 also introduced *label smoothing*: train
# against a target that puts $1 - \varepsilon$ on the true class and spreads $\varepsilon$
# evenly over all $K$ classes (so the true class gets $1 - \varepsilon + \varepsilon/K$),
# which stops the network from pushing its logits to extremes. Write
# `smoothed_cross_entropy(logits, y, eps)`: the mean over the batch of
# $-\sum_k q_k \log p_k$ with $p = \mathrm{softmax}(\text{logits})$ and $q$ the smoothed
# target. Do not use the `label_smoothing` argument of PyTorch's loss (the test compares
# with it).

# %% nbgrader={"grade": false, "grade_id": "ex-09-label-smoothing", "locked": false, "schema_version": 3, "solution": true, "task": false}
def smoothed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Cross-entropy against targets smoothed with eps (Szegedy et al., 2015b)."""
    ### BEGIN SOLUTION
    k = logits.shape[1]
    logp = torch.log_softmax(logits, dim=1)
    q = torch.full_like(logp, eps / k)
    q[torch.arange(len(y)), y] += 1 - eps
    return -(q * logp).sum(dim=1).mean()
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-09-label-smoothing-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_g = torch.Generator().manual_seed(0)
_logits, _y = torch.randn(16, 10, generator=_g) * 3, torch.randint(0, 10, (16,), generator=_g)
for _eps in (0.0, 0.1, 0.5):
    _ref = nn.functional.cross_entropy(_logits, _y, label_smoothing=_eps)
    assert torch.isclose(smoothed_cross_entropy(_logits, _y, _eps), _ref, atol=1e-5), _eps
# with smoothing, a perfectly confident correct prediction is no longer the best
_confident = torch.full((1, 10), -20.0)
_confident[0, 3] = 20.0
_calibrated = torch.zeros(1, 10)
_calibrated[0, 3] = 5.0
_t = torch.tensor([3])
assert smoothed_cross_entropy(_calibrated, _t, 0.1) < smoothed_cross_entropy(_confident, _t, 0.1)
print("label smoothing OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator

_g = generator(903)
_cases = [(3 * torch.randn(n, c, generator=_g), torch.randint(0, c, (n,), generator=_g), e)
          for n, c, e in ((5, 4, 0.25), (12, 9, 0.05), (1, 3, 0.9))]
agrees(smoothed_cross_entropy, lambda o, y, e: nn.functional.cross_entropy(o, y, label_smoothing=e), _cases, atol=1e-5,
       forbid=("torch.nn.functional.cross_entropy",),
       allow=lambda *a, **k: float(k.get("label_smoothing", a[7] if len(a) > 7 else 0.0)) == 0.0)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (channels and resolution).** Write `googlenet_shapes(size)`: a dict with
# the output shape `(channels, height, width)` of each stage `"b1"` ... `"b5"` of the d2l
# GoogLeNet (`googlenet_fashion()`, without its head) for a grey `size x size` image,
# computed from the architecture and not by running the network. Each 3x3 max-pool with
# stride 2 and padding 1, like the stride-2 7x7 convolution with padding 3, maps a side
# $n$ to $\lfloor (n - 1)/2 \rfloor + 1$; everything else keeps the size. Use
# `INCEPTION_STAGES` for the channels.

# %% nbgrader={"grade": false, "grade_id": "ex-09-shapes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def googlenet_shapes(size: int) -> dict:
    """(channels, height, width) after each stage b1 ... b5 of the d2l GoogLeNet."""
    ### BEGIN SOLUTION
    half = lambda n: (n - 1) // 2 + 1  # noqa: E731
    side = half(half(size))                  # b1: 7x7/2 conv, pool
    shapes = {"b1": (64, side, side)}
    side = half(side)                        # b2: pool
    shapes["b2"] = (192, side, side)
    for stage, rows in INCEPTION_STAGES.items():
        _, c1, c2, c3, c4 = rows[-1]
        if stage != "b5":
            side = half(side)
        shapes[stage] = (c1 + c2[1] + c3[1] + c4, side, side)
    return shapes
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-09-shapes-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
with torch.device("meta"):  # shapes only: no memory, no arithmetic
    _m = googlenet_fashion().eval()
    for _size in (96, 224, 67):
        _x = torch.zeros(1, 1, _size, _size)
        _expected = {}
        for _s in _m.stage_names:
            _x = getattr(_m, _s)(_x)
            _expected[_s] = tuple(_x.shape[1:])
        assert googlenet_shapes(_size) == _expected, (_size, googlenet_shapes(_size), _expected)
print("224 px:", googlenet_shapes(224))
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.googlenet import googlenet_fashion as _gf


def _ref(size):
    with torch.device("meta"):
        _m = _gf().eval()
        _x = torch.zeros(1, 1, size, size)
        _out = {}
        for _st in _m.stage_names:
            _x = getattr(_m, _st)(_x)
            _out[_st] = tuple(_x.shape[1:])
    return _out


# every size checked (odd and even sides round differently), not only the last one
_sizes = [96, 224, 67, 50] + (40 + torch.randperm(200, generator=generator(904))[:4]).tolist()
agrees(googlenet_shapes, _ref, [(int(s),) for s in _sizes],
       forbid=("torch.nn.Module.__call__", "torch.nn.Module.__init__"))
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan,
#   V. Vanhoucke, A. Rabinovich (2014). *Going Deeper with Convolutions.*
#   arXiv:1409.4842; CVPR 2015.
# - M. Lin, Q. Chen, S. Yan (2013). *Network In Network.* arXiv:1312.4400; ICLR 2014.
# - S. Arora, A. Bhaskara, R. Ge, T. Ma (2014). *Provable Bounds for Learning Some Deep
#   Representations.* ICML.
# - S. Ioffe, C. Szegedy (2015). *Batch Normalization: Accelerating Deep Network Training
#   by Reducing Internal Covariate Shift.* ICML (Inception v2 / BN-Inception).
# - C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna (2015b). *Rethinking the
#   Inception Architecture for Computer Vision.* arXiv:1512.00567; CVPR 2016 (Inception
#   v3, label smoothing).
# - C. Szegedy, S. Ioffe, V. Vanhoucke, A. Alemi (2016). *Inception-v4, Inception-ResNet
#   and the Impact of Residual Connections on Learning.* arXiv:1602.07261; AAAI 2017.
# - F. Chollet (2017). *Xception: Deep Learning with Depthwise Separable Convolutions.*
#   CVPR.
# - O. Russakovsky et al. (2015). *ImageNet Large Scale Visual Recognition Challenge.*
#   IJCV 115.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, section
#   8.4 "Multi-Branch Networks (GoogLeNet)". Cambridge University Press.
