# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 11 · ResNet: residual networks
#
# By 2015 the recipe "more layers, better features" had stopped working: past about twenty
# layers, networks trained *worse*, and not because they overfitted; their training error
# went up. Kaiming He and colleagues at Microsoft Research fixed it with one addition per
# block, $y = F(x) + x$, and won ImageNet 2015 with a network of 152 layers. The residual
# connection is now in almost every deep network, convolutional or not.
#
# **What you will learn**
#
# - why a bigger model class should *contain* the smaller one, and why that asks for
#   layers that can easily compute the identity (nested function classes);
# - the residual block (two 3x3 convs with batch norm, input added before the last
#   ReLU, a 1x1 conv on the shortcut when the shape changes) and the bottleneck block of
#   ResNet-50;
# - ResNet-18 built stage by stage, its shape table, and ResNet-18/34/50 read from one
#   stage table, with parameter counts and multiply-adds checked against torchvision;
# - the course's "ModernCNN": a ResNet-18 with dropout and a deliberate initialisation;
# - a measurement of *why* residuals matter: deep plain networks versus the same
#   networks with shortcuts, gradients at the first layer and training loss;
# - training ResNet-18 on Fashion-MNIST and looking inside it.

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torchvision
from matplotlib.patches import Ellipse
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.inspect import capture, first_conv
from cnnbook.models.resnet import (Bottleneck, Residual, ResNet, modern_cnn, resnet,
                                   resnet_stage, resnet_stem)
from cnnbook.profiling import count_macs, count_params
from cnnbook.results import against_d2l
from cnnbook.summary import layer_shapes, shape_table, show_source
from cnnbook.train.recipes import recipe

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # main run: ResNet-18 with width_mult, small_input (28 px stem), resize, epochs, lr and
    # recipe (cnnbook.train.recipes: "d2l" = d2l's plain SGD, "laptop" = Part III's);
    # modern_*: the ModernCNN run; deep_*: plain-vs-residual networks of 6n+2 layers
    # (n in deep_n) trained for deep_epochs on deep_limit images; depths: ResNets checked
    # against torchvision
    "smoke": dict(epochs=1, limit=512, batch_size=128, resize=None, small_input=True,
                  width_mult=0.125, lr=0.05, recipe="laptop", modern_epochs=1,
                  deep_n=(1, 2), deep_width=0.125, deep_limit=256, deep_epochs=1,
                  depths=(18,)),
    "cpu":   dict(epochs=5, limit=None, batch_size=128, resize=None, small_input=True,
                  width_mult=0.125, lr=0.1, recipe="laptop", modern_epochs=3,
                  deep_n=(1, 3, 5), deep_width=0.125, deep_limit=5_000, deep_epochs=2,
                  depths=(18, 34, 50)),
    "full":  dict(epochs=10, limit=None, batch_size=128, resize=96, small_input=False,
                  width_mult=1.0, lr=0.05, recipe="d2l", modern_epochs=10,
                  deep_n=(1, 3, 5, 9), deep_width=0.25, deep_limit=None, deep_epochs=5,
                  depths=(18, 34, 50, 101, 152)),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# In the `full` profile the chapter uses d2l's settings: ResNet-18 at full width on
# Fashion-MNIST resized to 96 px, 10 epochs, batch 128, learning rate 0.05; d2l reports a
# test accuracy of about 0.92. A CPU cannot do that in minutes (one epoch is about 18
# trillion multiply-adds), so the `cpu` profile keeps ResNet-18's *structure* (four
# stages of two residual blocks) and shrinks its cost: native 28 px images with the small
# stem (a 3x3 conv, no max-pool: the ImageNet stem would shrink 28 px to 7 px before the
# first block), 1/8 of the width (8-16-32-64 channels), and 5 epochs on all 60,000
# training images (3 for the ModernCNN), with the training recipe of Part III (section 6).
# That is enough to see a ResNet learn Fashion-MNIST well; section 6 compares the result
# with d2l's.
#
# ## 1. The problem: deeper was getting worse
#
# VGG (2014) went to 19 layers and GoogLeNet (2014) to 22, both with tricks to get
# gradients to the bottom (careful initialisation, auxiliary classifiers). Batch
# normalisation ([chapter 10](10_batch_norm.ipynb)) helped the signal through, yet He et al. (2015) observed that
# a plain 56-layer network had *higher training error* than a 20-layer one on CIFAR-10.
# Overfitting cannot explain that: it is the optimiser failing to find a solution the deep
# network could express, for instance the 20-layer solution followed by 36 identity
# layers. They called it the **degradation problem**.
#
# ### Nested function classes
#
# Think of an architecture as a class $\mathcal{F}$ of functions it can represent, and of
# training as finding the best $f^*_\mathcal{F}$ in it. Making the network bigger gives a
# class $\mathcal{F}'$. Only if $\mathcal{F} \subseteq \mathcal{F}'$ (the classes are
# *nested*) is the new best function guaranteed to be at least as good as the old one;
# otherwise the bigger class may simply be somewhere else, possibly further from the truth
# $f$:

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, nested, title in ((axes[0], False, "non-nested classes"), (axes[1], True, "nested classes")):
    for i in range(4):
        if nested:
            xy, w, h = (1.2 + 0.35 * i, 1.0 + 0.12 * i), 1.2 + 0.8 * i, 0.9 + 0.55 * i
        else:
            xy, w, h = (0.8 + 0.6 * i, 1.0 + 0.35 * ((-1) ** i)), 1.3 + 0.25 * i, 0.9 + 0.1 * i
        ax.add_patch(Ellipse(xy, w, h, angle=15 * i, fill=False, lw=1.6, color=f"C{i}"))
        ax.text(xy[0] - w / 2 + 0.1, xy[1], f"$\\mathcal{{F}}_{i + 1}$", color=f"C{i}", fontsize=9)
    ax.plot([3.1], [1.9], "k*", ms=12)
    ax.text(3.2, 1.95, "$f$ (truth)")
    ax.set_xlim(-0.2, 4.2), ax.set_ylim(-0.4, 2.6), ax.set_aspect("equal"), ax.axis("off")
    ax.set_title(title)
fig.tight_layout()

# %% [markdown]
# A new block guarantees nesting if it can compute the identity $f(x) = x$: then the
# bigger network can reproduce the smaller one exactly. For a stack of convolutions, ReLUs
# and batch norms, the identity is a very particular set of weights, hard to find by
# gradient descent. He et al.'s answer: let the block compute $f(x) = g(x) + x$. To be
# the identity, the block now only needs $g = 0$, which any weight decay or small
# initialisation already pushes towards; and what it learns is the *residual* $g(x) = f(x)
# - x$, the correction to "do nothing".
#
# ## 2. The residual block
#
# ResNet's basic block, in the form torchvision uses (convolutions without bias, since
# the batch norm right after them has one; a batch norm on the projection shortcut):

# %%
show_source(Residual);

# %% [markdown]
# Reading `forward`: conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN is $g(x)$; the shortcut
# adds $x$ (or its projection) **before** the last ReLU. The two paths must have the same
# shape. When the block halves the resolution (stride 2) or changes the channel count,
# a 1x1 convolution with the same stride (plus BN) projects $x$ to the new shape. The
# shapes, d2l style:

# %%
X = torch.rand(4, 3, 6, 6)
blk = Residual(3, 3)
print("same shape:          ", tuple(blk(X).shape), "shortcut:", blk.shortcut)
blk = Residual(3, 6, stride=2)
print("halve size, 6 channels:", tuple(blk(X).shape), "shortcut:", blk.shortcut.conv)

# %% [markdown]
# **The block can be the identity.** Set $\gamma$ of the last batch norm to zero: the
# residual branch outputs $\beta = 0$, and the block returns $\mathrm{ReLU}(0 + x)$, the
# identity followed by a ReLU (the identity itself on the non-negative inputs that a
# previous ReLU produces). Initialising every block this way ("zero-init residual",
# Goyal et al., 2017) starts a deep ResNet as a shallow one.

# %%
blk = Residual(3, 3)
nn.init.zeros_(blk.bn2.weight)
X = torch.randn(4, 3, 6, 6)
for mode in ("train", "eval"):
    getattr(blk, mode)()
    gap = (blk(X) - torch.relu(X)).abs().max().item()
    print(f"{mode} mode: largest |block(x) - relu(x)| = {gap:.1e}")
    assert gap < 1e-6

# %% [markdown]
# ### The bottleneck block
#
# For ResNet-50 and deeper, two 3x3 convolutions on 256 channels cost too much. The
# *bottleneck* block reduces the channels 4x with a 1x1 conv, does the 3x3 conv on the
# thin tensor, and expands back with another 1x1 conv (torchvision puts the stride on the
# 3x3 conv, "ResNet v1.5"):

# %%
show_source(Bottleneck);

# %%
basic, bottleneck = Residual(256, 256), Bottleneck(256, 64)
cost = pd.DataFrame({
    "block": ["basic: 3x3(256) + 3x3(256)", "bottleneck: 1x1(64) + 3x3(64) + 1x1(256)"],
    "parameters": [count_params(basic), count_params(bottleneck)],
    "MMACs at 56x56": [count_macs(basic, (1, 256, 56, 56)) / 1e6,
                       count_macs(bottleneck, (1, 256, 56, 56)) / 1e6]})
print(cost.round(1).to_string(index=False))
ratio = count_params(basic) / count_params(bottleneck)
print(f"the basic block has {ratio:.1f}x the parameters of the bottleneck block, "
      "for the same 256 -> 256 channels")

# %% [markdown]
# The table above is computed, not quoted: on 256 channels the bottleneck block is
# several times cheaper, which is what lets ResNet-50 use three layers per block instead
# of two at about the cost of ResNet-34.
#
# ## 3. ResNet-18, one stage at a time
#
# ResNet-18 is a *stem* (7x7 conv with stride 2, BN, ReLU, 3x3 max-pool with stride 2),
# four *stages* of two residual blocks with 64, 128, 256 and 512 channels (each stage
# after the first halves the resolution in its first block), global average pooling and
# one fully connected layer. The stem and a stage:

# %%
show_source(resnet_stem);
show_source(resnet_stage);

# %% [markdown]
# Now we assemble it as d2l does, for one-channel Fashion-MNIST images of 96 px, and watch
# the shapes: every stage halves the height and width and doubles the channels.

# %%
b1 = resnet_stem(1, 64)
b2 = resnet_stage(Residual, 64, 64, 2, stride=1)
b3 = resnet_stage(Residual, 64, 128, 2, stride=2)
b4 = resnet_stage(Residual, 128, 256, 2, stride=2)
b5 = resnet_stage(Residual, 256, 512, 2, stride=2)
net = nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))
layer_shapes(net, torch.rand(1, 1, 96, 96))

# %% [markdown]
# Why 18? Count the layers with weights: the stem conv, 4 stages x 2 blocks x 2 convs = 16,
# and the final linear layer (the 1x1 shortcut convs are not counted). The package's
# `ResNet` builds the same thing from a table of blocks per stage; `resnet(18)` is
# `ResNet(Residual, (2, 2, 2, 2))`:

# %%
show_source(ResNet);

# %%
ours = resnet(18, num_classes=10, in_channels=1)
print(f"hand-built: {count_params(net):,} parameters; resnet(18): {count_params(ours):,}")
assert count_params(net) == count_params(ours)
print(shape_table(ours, (1, 1, 96, 96), depth=1))

# %% [markdown]
# ### One table, many ResNets
#
# Deeper ResNets change only the table: ResNet-34 has (3, 4, 6, 3) basic blocks, ResNet-50
# the same numbers of *bottleneck* blocks (3 layers each: 16 x 3 + 2 = 50), ResNet-101 and
# 152 more blocks in the third stage. With default settings (3 channels, 1000 classes,
# 224 px) our networks must have exactly torchvision's parameter counts, and their
# multiply-adds must match the GFLOPS torchvision publishes with its weights (which count
# multiply-adds):

# %%
rows = []
for depth in cfg.depths:
    name = f"resnet{depth}"
    meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
    ours = resnet(depth)
    theirs = getattr(torchvision.models, name)(weights=None)
    rows.append({"model": f"ResNet-{depth}", "block": ours.stage1[0].__class__.__name__,
                 "params (ours)": count_params(ours), "params (torchvision)": count_params(theirs),
                 "params (published)": meta["num_params"],
                 "GMACs (ours)": count_macs(ours, (1, 3, 224, 224)) / 1e9,
                 "GFLOPS (published)": meta["_ops"]})
    assert rows[-1]["params (ours)"] == rows[-1]["params (torchvision)"] == meta["num_params"]
    assert abs(rows[-1]["GMACs (ours)"] / meta["_ops"] - 1) < 0.01
table = pd.DataFrame(rows)
print(table.round(3).to_string(index=False))

# %% [markdown]
# ## 4. The "ModernCNN"
#
# One of the course's source articles packages ResNet-18 as its "ModernCNN": the same
# body, a dropout of 0.5 before the classifier, and an explicit initialisation: Kaiming
# normal for the convolutions (variance $2/\text{fan\_out}$, right for ReLU networks; He et
# al., 2015b), batch norm weights 1 and biases 0, and the classifier's weights drawn from
# $\mathcal{N}(0, 0.01^2)$ so that the first predictions are nearly uniform.

# %%
show_source(modern_cnn);
modern = modern_cnn(num_classes=10, in_channels=1, small_input=cfg.small_input,
                    width_mult=cfg.width_mult)
conv = modern.stage3[0].conv1
print(f"stage3 conv std {conv.weight.std():.4f}, Kaiming fan_out predicts "
      f"{math.sqrt(2 / (conv.out_channels * 9)):.4f}")
print(f"classifier weight std {modern.fc.weight.std():.4f} (target 0.01); dropout p = {modern.dropout.p}")

# %% [markdown]
# ## 5. Why the shortcuts matter: a measurement
#
# We reproduce He et al.'s comparison at small scale. Their CIFAR networks have three
# stages of $n$ blocks, $6n + 2$ weighted layers; the *plain* twin has exactly the same
# layers without the additions (`residual=False`). At 28 px with narrow stages we build
# both for several depths, and measure:
#
# 1. the gradient norm at the first convolution at initialisation (how much signal
#    reaches the bottom of the network), averaged over a few batches;
# 2. the training loss after the same short training (SGD with momentum 0.9, lr 0.05).

# %%
def deep_net(n, residual):
    """6n + 2 layers: stem, three stages of n basic blocks, fc (He et al.'s CIFAR layout)."""
    return ResNet(Residual, (n, n, n), num_classes=10, in_channels=1, width_mult=cfg.deep_width,
                  small_input=True, residual=residual)

deep_train, deep_test = cnnbook.load_data("fashion_mnist", batch_size=128, limit=cfg.deep_limit)
batches = [b for _, b in zip(range(3), deep_train)]

def first_layer_grad(model):
    """Mean gradient norm of the first conv's weights over a few batches, at initialisation."""
    model.to(device).train()
    norms = []
    for Xb, yb in batches:
        model.zero_grad()
        nn.functional.cross_entropy(model(Xb), yb).backward()
        norms.append(first_conv(model).weight.grad.norm().item())
    return sum(norms) / len(norms)

rows = []
for n in cfg.deep_n:
    for residual in (False, True):
        cnnbook.seed_everything(0)
        model = deep_net(n, residual)
        grad = first_layer_grad(model)
        res = cnnbook.fit(model, deep_train, deep_test, epochs=cfg.deep_epochs, lr=0.05,
                          momentum=0.9, record=False, progress=False, live_plot=False)
        rows.append({"layers": 6 * n + 2, "network": "residual" if residual else "plain",
                     "first-layer grad": grad, "train loss": res.train_loss,
                     "test acc": res.test_acc, "seconds": res.seconds})
deep = pd.DataFrame(rows)
print(deep.round(3).to_string(index=False))
by_kind = deep.set_index(["network", "layers"])
spread = {kind: by_kind.loc[kind, "first-layer grad"].max() / by_kind.loc[kind, "first-layer grad"].min()
          for kind in ("plain", "residual")}
loss_change = {kind: by_kind.loc[kind, "train loss"].iloc[-1] - by_kind.loc[kind, "train loss"].iloc[0]
               for kind in ("plain", "residual")}
for kind in ("plain", "residual"):
    print(f"{kind:8s}: first-layer gradient varies {spread[kind]:.1f}x over "
          f"{list(by_kind.loc[kind].index)} layers; training loss from the shallowest to the "
          f"deepest {'rises' if loss_change[kind] > 0 else 'falls'} by {abs(loss_change[kind]):.3f}")
if cnnbook.claims_checked(PROFILE):   # the claim below, on the numbers above
    assert spread["plain"] > 2 * spread["residual"], spread

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for network, style in (("plain", "o--"), ("residual", "s-")):
    d = deep[deep.network == network]
    axes[0].plot(d["layers"], d["first-layer grad"], style, label=network)
    axes[1].plot(d["layers"], d["train loss"], style, label=network)
axes[0].set_yscale("log")
axes[0].set_title("gradient norm at the first conv (init)")
axes[1].set_title(f"training loss after {cfg.deep_epochs} epoch(s)")
for ax in axes:
    ax.set_xlabel("weighted layers")
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()

# %% [markdown]
# The table and plots above are the measurement. Look at two things. On the left: as the
# plain network gets deeper, the gradient that reaches its first layer changes by the
# factor the cell prints (with batch norm it tends to *explode* rather than vanish), at
# least twice the residual network's factor (asserted): each residual block adds its
# correction to an identity path, so the gradient always has a short route back. On the
# right: the degradation problem says that, with the same budget, deeper plain networks
# reach a *higher* training loss than shallower ones, while residual networks get better
# or stay level. The cell prints which way each kind went here; a couple of epochs on a few
# thousand images show it only faintly, if at all. The `full` profile runs deeper networks
# for longer, where He et al. saw the gap grow with depth.
#
# ## 6. Training ResNet-18 on Fashion-MNIST

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          resize=cfg.resize, limit=cfg.limit)
size = cfg.resize or 28
print(f"{train_iter.num_examples:,} training images of {size} px, {test_iter.num_examples:,} test")
cnnbook.seed_everything(0)
model = resnet(18, num_classes=10, in_channels=1, small_input=cfg.small_input,
               width_mult=cfg.width_mult)
print(f"ResNet-18 (width x{cfg.width_mult}): {count_params(model):,} parameters, "
      f"{count_macs(model, (1, 1, size, size)) / 1e6:,.1f} M multiply-adds per image")
how = recipe(cfg.recipe)
print(f"recipe {how.name!r}: {how.summary}")
result = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, name="resnet18", chapter="11",
                     **how.fit_kwargs(cfg.lr), extra=how.describe())
print(against_d2l(result.record))

# %%
fig = viz.plot_history(result.history, title="ResNet-18 on Fashion-MNIST")

# %% [markdown]
# The cell above prints the test accuracy beside d2l's, whose ResNet-18 trains at 96 px and
# full width for 10 epochs on a GPU with plain SGD at a constant rate; the `full` profile
# runs that setting and recipe. The `cpu` profile trains a network an eighth as wide on the
# 28 px images with the recipe of Part III ([chapter 18](18_training_recipes.ipynb)):
# momentum, weight decay, a one-cycle schedule that ends annealed, and label smoothing.
# The line above shows how that small network, trained that way, compares with d2l's.
# Now the ModernCNN, with the same data, recipe and learning rate, over a shorter schedule:

# %%
cnnbook.seed_everything(0)
modern = modern_cnn(num_classes=10, in_channels=1, small_input=cfg.small_input,
                    width_mult=cfg.width_mult)
modern_result = cnnbook.fit(modern, train_iter, test_iter, epochs=cfg.modern_epochs,
                            name="modern_cnn", chapter="11", **how.fit_kwargs(cfg.lr),
                            extra=how.describe())
print(f"ModernCNN: test accuracy {modern_result.test_acc:.3f} after {cfg.modern_epochs} epoch(s); "
      f"ResNet-18: {result.test_acc:.3f} after {cfg.epochs}")

# %% [markdown]
# The printout gives both networks' final accuracy, each at the end of its own one-cycle
# schedule (the ModernCNN's is shorter, so the comparison favours ResNet-18). Dropout slows the fit of the training set a little and
# matters most late in training, when a network starts to overfit.
#
# ## 7. Inside the trained ResNet
#
# The first layer's kernels (7x7 with the ImageNet stem, 3x3 with the 28 px stem):

# %%
fig = viz.plot_kernels(first_conv(model).weight, ncols=16, title="ResNet-18: stem kernels")

# %% [markdown]
# And the feature maps of one test image after the stem and after each stage: the maps
# get smaller and more numerous, and less like the image (we show the first 16 channels).

# %%
X_test, y_test = next(iter(test_iter))
maps = capture(model, X_test[:1], ["stem", "stage1", "stage2", "stage4"])
for name, m in maps.items():
    print(f"{name:7s} {tuple(m.shape)}")
fig = viz.show_images(X_test[:1].cpu(), titles=["input"], ncols=1, scale=2)
for name in ("stage1", "stage4"):
    fig = viz.plot_feature_maps(maps[name][0, :16], ncols=8, title=f"after {name}")

# %% [markdown]
# ### Explore: every convolution and stage of the trained ResNet
#
# The `FeatureMapExplorer` ([chapter 05](05_lenet.ipynb)) on this ResNet-18: the stem, each convolution
# inside the residual blocks (and the 1x1 shortcut convolutions where a stage halves the
# size), and each stage's output, in forward order. For a stage, *one channel* shows the
# kernel of its last convolution; the map itself is that convolution's output plus the
# shortcut, after the final ReLU.

# %%
from cnnbook.data import class_names as dataset_classes
from cnnbook.widgets import FeatureMapExplorer

explorer = FeatureMapExplorer(model, test_iter.images, labels=test_iter.labels,
                              class_names=dataset_classes("fashion_mnist"), image_size=size)
print(f"{len(explorer.layers)} layers; this picture took {explorer.state['render_ms']:.0f} ms")
explorer

# %% [markdown]
# Things to look for: compare `stage1.0.conv2` with `stage1` for the same channel. The
# stage output is that convolution's (normalised) map plus the block's input, carried by
# the shortcut: which of the two does it resemble more? Then add noise (σ 0.3): which
# stage's maps change most, and does the prediction survive?

# %% [markdown]
# How much does each residual branch contribute? For every block we compare the size of
# what the residual branch adds with the size of the shortcut it is added to, on a batch
# of test images. Small ratios mean the block mostly passes its input on, a gentle
# correction, as the residual idea intends.

# %%
def branch_ratios(model, X):
    """||g(x)|| / ||shortcut(x)|| for every residual block, in eval mode."""
    ratios = {}
    hooks = []
    def hook(name):
        def fn(block, inputs, output):
            x = inputs[0]
            g = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
            s = x if block.shortcut is None else block.shortcut(x)
            ratios[name] = (g.norm() / s.norm()).item()
        return fn
    for name, m in model.named_modules():
        if isinstance(m, Residual):
            hooks.append(m.register_forward_hook(hook(name)))
    model.eval()
    with torch.no_grad():
        model(X)
    for h in hooks:
        h.remove()
    return pd.Series(ratios, name="||g(x)|| / ||x||")

print(branch_ratios(model, X_test).round(2).to_string())

# %% [markdown]
# ## Summary
#
# - A bigger network is only guaranteed to be at least as good if its function class
#   contains the smaller one's; a block that can easily become the identity provides that.
# - ResNet's block computes $\mathrm{ReLU}(g(x) + x)$: two 3x3 conv + BN layers learn the
#   residual $g$; a strided 1x1 conv (+ BN) adapts the shortcut when the shape changes.
#   With the last $\gamma = 0$ the block is the identity (then ReLU).
# - ResNet-18/34 stack basic blocks, ResNet-50/101/152 bottleneck blocks
#   (1x1 -> 3x3 -> 1x1, 4x expansion), in four stages that halve the resolution and double
#   the width; our versions match torchvision's parameter counts and published costs.
# - Measured here: without shortcuts, the first-layer gradient drifts by orders of
#   magnitude with depth and deeper plain networks train worse; with shortcuts, neither.
# - In the line of the course's architectures, ResNet stands for *depth* made trainable
#   by residual paths.
#
# ## Exercises
#
# **Exercise 1 (count the parameters).** Write `residual_params(in_channels, channels,
# stride)` that returns the number of parameters of `Residual(in_channels, channels,
# stride)` from the formula, without building it: two 3x3 convolutions without bias, two
# batch norms (a $\gamma$ and a $\beta$ per channel), and, when the shape changes, a 1x1
# convolution and a batch norm on the shortcut.

# %% nbgrader={"grade": false, "grade_id": "ex-11-residual-params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def residual_params(in_channels: int, channels: int, stride: int = 1) -> int:
    """Parameters of ResNet's basic block, from the formula."""
    ### BEGIN SOLUTION
    n = 9 * in_channels * channels + 2 * channels      # conv1 + bn1
    n += 9 * channels * channels + 2 * channels        # conv2 + bn2
    if stride != 1 or in_channels != channels:
        n += in_channels * channels + 2 * channels     # 1x1 conv + bn on the shortcut
    return n
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-11-residual-params-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

for _args in [(64, 64, 1), (64, 128, 2), (3, 6, 1), (128, 256, 2), (16, 16, 2)]:
    assert residual_params(*_args) == count_params(Residual(*_args)), _args
print("the formula matches count_params")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.resnet import Residual as _Res

_g = generator(1101)
agrees(residual_params, lambda i, c, s=1: count_params(_Res(i, c, s)),
       [(int(a), int(b), s) for (a, b), s in zip(torch.randint(1, 70, (4, 2), generator=_g), (1, 2, 1, 2))] + [(9, 9, 1)],
       forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (pre-activation block).** He et al. (2016, *Identity Mappings in Deep
# Residual Networks*) moved BN and ReLU *before* each convolution and removed the ReLU
# after the addition: $y = x + \mathrm{conv}(\mathrm{ReLU}(\mathrm{BN}(\mathrm{conv}(\mathrm{ReLU}(\mathrm{BN}(x))))))$.
# Then the shortcut is a pure identity all the way through the network. Implement
# `PreActResidual(channels)` (same number of channels in and out, stride 1, 3x3 convs with
# padding 1 and no bias, attributes `bn1, conv1, bn2, conv2`). Its test checks that with
# `conv2`'s weights set to zero the block is *exactly* the identity, not identity-then-ReLU.

# %% nbgrader={"grade": false, "grade_id": "ex-11-preact", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PreActResidual(nn.Module):
    """Pre-activation residual block: x + conv2(relu(bn2(conv1(relu(bn1(x))))))."""

    def __init__(self, channels: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        y = self.conv1(torch.relu(self.bn1(x)))
        y = self.conv2(torch.relu(self.bn2(y)))
        return x + y
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-11-preact-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

_blk = PreActResidual(4)
_x = torch.randn(2, 4, 5, 5)
assert _blk(_x).shape == _x.shape
assert count_params(_blk) == 2 * (9 * 16 + 8)
nn.init.zeros_(_blk.conv2.weight)
assert torch.allclose(_blk(_x), _x), "with conv2 = 0 the block must be exactly the identity"
assert (_x < 0).any()  # ... including the negative inputs a ReLU would have removed
print("pre-activation block OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()
_g = generator(1102)
_blk = PreActResidual(6)
same(count_params(_blk), 2 * (9 * 36 + 12), what="parameters")
_x = torch.randn(3, 6, 7, 5, generator=_g)
_want = _x + _blk.conv2(torch.relu(_blk.bn2(_blk.conv1(torch.relu(_blk.bn1(_x))))))
same(_blk(_x).detach(), _want.detach(), atol=1e-5, what="pre-activation block")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (a shortcut without parameters).** For CIFAR, He et al. also used "option
# A": when a block halves the resolution and doubles the channels, the shortcut takes
# every second pixel (stride 2) and pads the new channels with zeros, so it has no
# parameters. Write `pad_shortcut(x, out_channels, stride)`.

# %% nbgrader={"grade": false, "grade_id": "ex-11-pad-shortcut", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pad_shortcut(x: torch.Tensor, out_channels: int, stride: int = 2) -> torch.Tensor:
    """Subsample x by `stride` and append zero channels up to `out_channels`."""
    ### BEGIN SOLUTION
    x = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    return torch.cat([x, x.new_zeros(x.shape[0], extra, *x.shape[2:])], dim=1)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-11-pad-shortcut-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_x = torch.randn(2, 16, 8, 8)
_y = pad_shortcut(_x, 32, 2)
assert _y.shape == (2, 32, 4, 4)
assert torch.equal(_y[:, :16], _x[:, :, ::2, ::2]) and (_y[:, 16:] == 0).all()
assert _y.shape == Residual(16, 32, stride=2)(_x).shape  # it fits where the 1x1 conv did
print("option-A shortcut OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(x, out_channels, stride=2):
    _y = x[:, :, ::stride, ::stride]
    return torch.cat([_y, _y.new_zeros(_y.shape[0], out_channels - _y.shape[1], *_y.shape[2:])], dim=1)


_g = generator(1103)
agrees(pad_shortcut, _ref, [(torch.randn(2, 3, 7, 9, generator=_g), 8, 3), (torch.randn(1, 5, 6, 6, generator=_g), 5, 1),
                            (torch.randn(3, 4, 10, 5, generator=_g), 12)])
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (what the 18 counts).** Write `resnet_depth(layers, bottleneck)` that
# returns the number of weighted layers of a ResNet with `layers` blocks per stage: the
# stem conv, the convolutions of the blocks (2 per basic block, 3 per bottleneck block;
# shortcut projections not counted) and the fully connected layer. Then check your formula
# against a built model by counting its modules.

# %% nbgrader={"grade": false, "grade_id": "ex-11-depth", "locked": false, "schema_version": 3, "solution": true, "task": false}
def resnet_depth(layers, bottleneck: bool) -> int:
    """Weighted layers of a ResNet: stem + block convs + fc."""
    ### BEGIN SOLUTION
    return 1 + (3 if bottleneck else 2) * sum(layers) + 1
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-11-depth-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert resnet_depth((2, 2, 2, 2), False) == 18
assert resnet_depth((3, 4, 6, 3), False) == 34 and resnet_depth((3, 4, 6, 3), True) == 50
assert resnet_depth((3, 4, 23, 3), True) == 101 and resnet_depth((3, 8, 36, 3), True) == 152
_m = ResNet(Bottleneck, (1, 2, 1), num_classes=3, width_mult=0.125)
_convs = [n for n, m in _m.named_modules() if isinstance(m, nn.Conv2d) and "shortcut" not in n]
assert resnet_depth((1, 2, 1), True) == len(_convs) + 1
print("depth formula OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator

_g = generator(1104)
agrees(resnet_depth, lambda layers, bottleneck: 2 + (3 if bottleneck else 2) * sum(layers),
       [(tuple(int(v) for v in torch.randint(1, 30, (n,), generator=_g)), bool(n % 2)) for n in (2, 3, 4, 5)])
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - K. He, X. Zhang, S. Ren, J. Sun (2015). *Deep Residual Learning for Image
#   Recognition.* arXiv:1512.03385; CVPR 2016.
# - K. He, X. Zhang, S. Ren, J. Sun (2016). *Identity Mappings in Deep Residual Networks.*
#   ECCV.
# - K. He, X. Zhang, S. Ren, J. Sun (2015b). *Delving Deep into Rectifiers: Surpassing
#   Human-Level Performance on ImageNet Classification.* ICCV (Kaiming initialisation).
# - R. K. Srivastava, K. Greff, J. Schmidhuber (2015). *Highway Networks.*
#   arXiv:1505.00387 (gated shortcuts, a precursor).
# - P. Goyal et al. (2017). *Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour.*
#   arXiv:1706.02677 (zero-initialised last $\gamma$ of each block).
# - S. Xie, R. Girshick, P. Dollár, Z. Tu, K. He (2017). *Aggregated Residual
#   Transformations for Deep Neural Networks (ResNeXt).* CVPR.
# - S. Zagoruyko, N. Komodakis (2016). *Wide Residual Networks.* BMVC.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, section
#   8.6 "Residual Networks (ResNet) and ResNeXt". Cambridge University Press.
