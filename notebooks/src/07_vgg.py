# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 07 · VGG: networks built from blocks
#
# AlexNet showed that a deep convolutional network trained on a GPU beats hand-made
# features, but its layers look hand-tuned: an 11x11 kernel here, a 5x5 there, pools in
# between. VGG asked a simpler question: what if every convolution is 3x3 and the network
# is just the same *block* repeated? The answer, two years later, was a network twice as
# deep, a top result in ImageNet 2014, and the way almost everyone has drawn CNNs since.
#
# **What you will learn**
#
# - the VGG block (n 3x3 convolutions, then a 2x2 max-pool) and how a table of blocks,
#   `conv_arch`, describes a whole network;
# - why two stacked 3x3 convolutions are better than one 5x5 (same receptive field,
#   fewer parameters, one more nonlinearity), computed rather than asserted;
# - the paper's six configurations A to E and what they taught: local response
#   normalisation did not help, 3x3 beats 1x1, deeper is better;
# - where VGG spends its budget: almost all multiply-adds in the convolutions, almost
#   all parameters in the three fully connected layers;
# - how to train d2l's VGG-11 on Fashion-MNIST and look at what it learned.

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
import torchvision
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.inspect import capture, first_conv
from cnnbook.models import vgg as vgg_lib
from cnnbook.profiling import count_flops, count_macs, count_params
from cnnbook.results import against_d2l
from cnnbook.summary import layer_shapes, shape_table, show_source
from cnnbook.train.recipes import recipe

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # resize=None trains on native 28x28 images; width_mult scales every conv's channels
    # (d2l divides them by 4: 0.25); fc_units is the width of the two hidden FC layers;
    # recipe: cnnbook.train.recipes ("d2l" = d2l's plain SGD at a constant lr, "laptop" =
    # Part III's, with lr as its peak).
    "smoke": dict(epochs=1, limit=1_000, test_limit=500, batch_size=128, resize=None,
                  width_mult=0.125, fc_units=64, lr=0.05, recipe="laptop"),
    "cpu":   dict(epochs=20, limit=None, test_limit=None, batch_size=128, resize=None,
                  width_mult=0.125, fc_units=256, lr=0.05, recipe="laptop"),
    "full":  dict(epochs=10, limit=None, test_limit=None, batch_size=128, resize=224,
                  width_mult=0.25, fc_units=4096, lr=0.05, recipe="d2l"),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")
META = torch.device("meta")  # for full-size models: shapes and counts, no memory

# %% [markdown]
# ## 1. From hand-tuned layers to blocks
#
# In 2014 Karen Simonyan and Andrew Zisserman, of Oxford's Visual Geometry Group (hence
# the name), submitted a network to the ImageNet challenge (ILSVRC 2014) that took first
# place in localisation and second in classification, behind GoogLeNet ([chapter 09](09_googlenet.ipynb)). Its
# recipe fits in one sentence: use only 3x3 convolutions with padding 1 (so the height
# and width never change inside a block), halve the resolution with a 2x2 max-pool after
# each block, double the channels after each pool (64, 128, 256, 512, capped at 512),
# and finish with AlexNet's three fully connected layers.
#
# The important idea is not the kernel size but the *unit of design*. AlexNet is a list
# of layers; VGG is a list of blocks, and a network becomes a table. Every later family
# in this course (Inception blocks, residual blocks, dense blocks, inverted residuals) is
# built the same way.
#
# ## 2. The VGG block
#
# A block is `num_convs` 3x3 convolutions with ReLUs, then a max-pool of size 2 and
# stride 2. Here it is, as d2l writes it:

# %%
def vgg_block(num_convs, in_channels, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


block = vgg_block(2, 3, 16)
X = torch.randn(1, 3, 32, 32)
print("input ", tuple(X.shape))
print("convs ", tuple(block[:-1](X).shape), "(3x3 with padding 1 keeps the size)")
print("block ", tuple(block(X).shape), "(the pool halves it)")

# %% [markdown]
# ### Why 3x3? Two small kernels against one big one
#
# Two stacked 3x3 convolutions see a 5x5 patch of the input: each output pixel of the
# second depends on a 3x3 patch of the first, and each of those on a 3x3 patch of the
# input. Three see 7x7. The paper's argument is that the stack is better than the single
# big kernel twice over: it has fewer parameters, and it puts a ReLU between the two
# halves, so the function it computes is more expressive. We can measure the receptive
# field directly: push a gradient back from one output pixel and see which input pixels
# receive any.

# %%
def receptive_side(net, size=15):
    """Side of the input square that the centre output pixel of ``net`` depends on."""
    x = torch.zeros(1, net[0].in_channels, size, size, requires_grad=True)
    y = net(x)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    rows = torch.nonzero(x.grad[0].abs().sum(dim=(0, 2)))
    return int(rows.max() - rows.min() + 1)


C = 64
designs = {
    "one 5x5": nn.Sequential(nn.Conv2d(C, C, 5, padding=2)),
    "two 3x3": nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.ReLU(), nn.Conv2d(C, C, 3, padding=1)),
    "one 7x7": nn.Sequential(nn.Conv2d(C, C, 7, padding=3)),
    "three 3x3": nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(C, C, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(C, C, 3, padding=1)),
}
for net in designs.values():  # positive weights, so no gradient cancels by accident
    for m in net:
        if isinstance(m, nn.Conv2d):
            nn.init.uniform_(m.weight, 0.01, 0.1)
            nn.init.constant_(m.bias, 1.0)
stacks = pd.DataFrame([{"design": name, "receptive field": receptive_side(net),
                        "parameters": count_params(net),
                        "MACs at 56x56 (M)": count_macs(net, (1, C, 56, 56)) / 1e6,
                        "ReLUs inside": sum(isinstance(m, nn.ReLU) for m in net)}
                       for name, net in designs.items()]).set_index("design")
stacks

# %%
p = stacks["parameters"]
print(f"two 3x3 / one 5x5 parameters: {p['two 3x3'] / p['one 5x5']:.2f} "
      f"(weights 2*9 / 25 = {18 / 25:.2f})")
print(f"three 3x3 / one 7x7 parameters: {p['three 3x3'] / p['one 7x7']:.2f} "
      f"(weights 3*9 / 49 = {27 / 49:.2f})")
assert stacks.loc["two 3x3", "receptive field"] == stacks.loc["one 5x5", "receptive field"] == 5
assert stacks.loc["three 3x3", "receptive field"] == stacks.loc["one 7x7", "receptive field"] == 7

# %% [markdown]
# The table shows both claims: the same receptive field for a fraction of the parameters
# and of the multiply-adds (the cell above prints the ratios; they are the ratios of the
# kernel areas, 2 x 9 against 25 and 3 x 9 against 49), plus one or two ReLUs that the
# big kernel does not have.
#
# ## 3. A network from a table
#
# VGG-11 (the paper's configuration A) has five blocks. Written as d2l's `conv_arch`,
# one `(number of convolutions, output channels)` pair per block:

# %%
conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg(conv_arch, in_channels=1, num_classes=10):
    blocks = []
    for num_convs, out_channels in conv_arch:
        blocks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    return nn.Sequential(
        *blocks, nn.Flatten(),
        nn.Linear(in_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, num_classes))


# %% [markdown]
# Five pools divide 224 by 2^5 = 32, so the last block hands a 7x7 map to the classifier.
# The full-size network has over a hundred million parameters; to look at its shapes we
# build it on PyTorch's `meta` device, which records shapes without allocating memory or
# computing anything (handy for any model too big to play with).

# %%
with META:
    net = vgg(conv_arch)
layer_shapes(net, torch.zeros(1, 1, 224, 224, device=META))

# %% [markdown]
# Each block halves the height and width and (up to 512) doubles the channels. The
# repeated unit lives in `cnnbook.models.vgg`, the tested version of the same code, with
# options that the rest of the chapter needs: batch norm, a 1x1 kernel inside a block
# (configuration C), local response normalisation (A-LRN), and "ceil" pooling that
# rounds odd sizes up so that five pools fit a 28x28 image (28, 14, 7, 4, 2, 1):

# %%
show_source(vgg_lib.vgg_block);

# %% [markdown]
# The network class reads the same kind of table. Two details follow torchvision: an
# adaptive average pool to 7x7 before the classifier (for a 224x224 input the map is
# already 7x7, so it does nothing; for bigger inputs it keeps the classifier's size
# fixed), and `width_mult`, which scales the channels of every convolution (d2l's course
# run divides them by 4, `width_mult=0.25`). Being an `nn.Sequential` with named blocks,
# it also works with d2l's shape loop.

# %%
show_source(vgg_lib.VGG);

# %% [markdown]
# Our VGG-11, 13, 16 and 19 must have exactly torchvision's parameter counts (which
# torchvision's weights also record in their metadata), and their multiply-adds (MACs)
# must match the GFLOPS figure of torchvision's model card, which counts multiply-adds:

# %%
rows = []
for depth in (11, 13, 16, 19):
    for bn in (False, True):
        tv_name = f"vgg{depth}" + ("_bn" if bn else "")
        weights = torchvision.models.get_model_weights(tv_name).IMAGENET1K_V1
        with META:
            ours = getattr(vgg_lib, f"vgg{depth}")(batch_norm=bn)
            theirs = torchvision.models.get_model(tv_name, weights=None)
        rows.append({"model": tv_name, "ours": count_params(ours), "torchvision": count_params(theirs),
                     "weights meta": weights.meta["num_params"],
                     "our GMACs": count_macs(ours, (1, 3, 224, 224)) / 1e9,
                     "torchvision GFLOPS": weights.meta["_ops"]})
check = pd.DataFrame(rows).set_index("model")
assert (check["ours"] == check["torchvision"]).all() and (check["ours"] == check["weights meta"]).all()
assert ((check["our GMACs"] / check["torchvision GFLOPS"] - 1).abs() < 0.01).all()
check.round(3)

# %% [markdown]
# ## 4. The paper's experiments: configurations A to E
#
# The paper trained six networks of increasing depth (its Table 1), all with the same
# 5-block layout and the same FC head:
#
# - **A** (11 weight layers) and **A-LRN**, the same with AlexNet's local response
#   normalisation after the first layer;
# - **B** (13): two convolutions in every block;
# - **C** (16): B plus a *1x1* convolution at the end of blocks 3, 4 and 5;
# - **D** (16): B plus a *3x3* convolution there instead (VGG-16);
# - **E** (19): four convolutions in blocks 3 to 5 (VGG-19).
#
# `VGG_CONFIGS` holds them as a table; the cell below builds each one and counts its
# layers, parameters and multiply-adds. The last column is the top-1 validation error
# the paper reports for each configuration (Table 3, single-scale evaluation, networks
# trained at scale 256): published numbers, not ours.

# %%
PAPER_TOP1 = {"A": 29.6, "A-LRN": 29.7, "B": 28.7, "C": 28.1, "D": 27.0, "E": 27.3}
rows = []
for name, config in vgg_lib.VGG_CONFIGS.items():
    with META:
        model = vgg_lib.vgg_config(name)
    rows.append({"config": name,
                 "weight layers": sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules()),
                 "convs per block": "-".join(str(row[0]) for row in config["arch"]),
                 "1x1 convs": sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
                                  for m in model.modules()),
                 "params (M)": count_params(model) / 1e6,
                 "GMACs at 224": count_macs(model, (1, 3, 224, 224)) / 1e9,
                 "paper top-1 error (%)": PAPER_TOP1[name]})
configs = pd.DataFrame(rows).set_index("config")
configs.round(2)

# %% [markdown]
# Read the table from top to bottom:
#
# - **LRN did not help.** A-LRN has no extra parameters (LRN has none) and the same
#   error as A, so the paper dropped it from the deeper networks; batch normalisation
#   ([chapter 10](10_batch_norm.ipynb)) replaced it as the normalisation of choice.
# - **3x3 beats 1x1.** C and D have the same depth; C's extra layers are 1x1 (a
#   per-pixel linear map plus a ReLU, [chapter 08](08_nin.ipynb)'s idea) and D's are 3x3. D costs more
#   (the cell computes how much) and is clearly better: extra nonlinearity helps, but
#   so does seeing spatial context.
# - **Deeper is better, up to a point.** Error falls from A to B to D; E, three layers
#   deeper than D, is no better at this scale (it was slightly better with scale
#   augmentation). Plain networks stop improving around 16-19 layers; [chapter 11](11_resnet.ipynb)'s
#   residual connections remove that ceiling.
#
# Note also how little the parameter count moves from A to E compared with the
# multiply-adds (the cell below prints both ratios): the extra convolutions are cheap in
# parameters but expensive in arithmetic.

# %%
print(f"D costs {configs.loc['D', 'GMACs at 224'] / configs.loc['C', 'GMACs at 224']:.2f}x "
      f"the MACs of C and {configs.loc['D', 'params (M)'] - configs.loc['C', 'params (M)']:.1f}M "
      "more parameters")
print(f"E / A: parameters x{configs.loc['E', 'params (M)'] / configs.loc['A', 'params (M)']:.2f}, "
      f"MACs x{configs.loc['E', 'GMACs at 224'] / configs.loc['A', 'GMACs at 224']:.2f}")

# %% [markdown]
# ## 5. Where the cost is
#
# That last observation is worth making precise. For VGG-16 at 224x224, the cell below
# measures the multiply-adds and parameters of each block and of the classifier
# (`count_flops(..., by_module=True)` counts per top-level child).

# %%
with META:
    vgg16 = vgg_lib.vgg16()
total_flops, per_module = count_flops(vgg16, (1, 3, 224, 224), by_module=True)
stages = [n for n, _ in vgg16.named_children() if n.startswith("block")] + ["classifier"]
cost = pd.DataFrame({
    "GMACs": [per_module.get(n, 0) / 2e9 for n in stages],
    "params (M)": [count_params(getattr(vgg16, n)) / 1e6 for n in stages]}, index=stages)
cost["% of MACs"] = 100 * cost["GMACs"] / cost["GMACs"].sum()
cost["% of params"] = 100 * cost["params (M)"] / cost["params (M)"].sum()
cost.round(2)

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
cost["% of MACs"].plot.bar(ax=axes[0], color="tab:blue", title="share of multiply-adds")
cost["% of params"].plot.bar(ax=axes[1], color="tab:orange", title="share of parameters")
for ax in axes:
    ax.set_ylabel("%")
    ax.tick_params(axis="x", rotation=0)
fig.suptitle("VGG-16 at 224x224: compute in the convolutions, memory in the classifier")
fig.tight_layout()

# %%
print(f"classifier: {cost.loc['classifier', '% of params']:.1f}% of the parameters, "
      f"{cost.loc['classifier', '% of MACs']:.2f}% of the MACs")
early = cost.loc[["block1", "block2", "block3"]].sum()
print(f"blocks 1-3: {early['% of MACs']:.1f}% of the MACs, {early['% of params']:.2f}% of the parameters")
fc1 = vgg16.classifier.fc1
print(f"first linear layer alone: {count_params(fc1) / 1e6:.1f}M parameters "
      f"({fc1.in_features:,} inputs x {fc1.out_features:,} outputs), "
      f"{100 * count_params(fc1) / count_params(vgg16):.0f}% of the network")

# %% [markdown]
# The arithmetic happens early, where the maps are big: halving the side divides the
# positions by 4 while doubling the channels multiplies the work per position by 4, so
# the blocks stay in the same range until the channels stop doubling at 512 and the last
# block becomes cheap. The first three blocks do most of the multiply-adds with a tiny
# share of the parameters (the cell above prints both). The parameters are the opposite
# story: the first fully connected layer alone holds most of them, because it connects
# every value of the last 512x7x7 map to each of 4,096 units. This is why the next
# chapter's NiN, and almost every network after it, replaced that head with global
# average pooling.
#
# ## 6. Training VGG-11 on Fashion-MNIST
#
# d2l trains VGG-11 with every conv's channels divided by 4 (`width_mult=0.25`) on
# Fashion-MNIST resized to 224x224, with SGD at learning rate 0.05, batch 128, for 10
# epochs, and reports a test accuracy of about 0.92. That is the `full` profile, and
# it needs a GPU: one epoch is 60,000 forward and backward passes of a network whose
# cost per image the next cell prints.
#
# The `cpu` profile keeps the architecture (VGG-11's five blocks and three FC layers)
# and changes what a laptop cannot afford, so that training fits in about ten minutes
# on two CPU cores: native 28x28 images (64 times fewer pixels than 224x224; the pools
# round up so the five blocks still fit), channels divided by 8, and 256 units in the
# hidden FC layers instead of 4,096 (at 28 px the last map is 1x1, so a 4096-wide head
# would cost more than all the convolutions), for 20 epochs. It also trains differently:
# d2l (and the `full` profile) uses plain SGD at a constant learning rate; the `cpu`
# profile uses the recipe of Part III ([chapter 18](18_training_recipes.ipynb)): Nesterov momentum,
# weight decay, a one-cycle schedule that ends annealed, and label smoothing. The `smoke`
# profile only checks that everything runs. Weights are initialised as in d2l (Xavier
# uniform).

# %%
with META:
    d2l_vgg11 = vgg_lib.vgg_fashion(width_mult=0.25)
print(f"d2l's VGG-11 at 224 px: {count_params(d2l_vgg11) / 1e6:.1f}M parameters, "
      f"{count_macs(d2l_vgg11, (1, 1, 224, 224)) / 1e6:.0f}M MACs per image")

# %%
small_input = cfg.resize is None  # native 28x28 images
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          resize=cfg.resize, limit=cfg.limit,
                                          test_limit=cfg.test_limit)
size = cfg.resize or 28
model = vgg_lib.vgg_fashion(width_mult=cfg.width_mult, small_input=small_input,
                            fc_units=cfg.fc_units)
print(f"{count_params(model):,} parameters, {count_macs(model, (1, 1, size, size)) / 1e6:.1f}M "
      f"MACs per {size}x{size} image")
shape_table(model, (1, 1, size, size), depth=1)

# %%
how = recipe(cfg.recipe)
print(f"recipe {how.name!r}: {how.summary}")
result = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, init="xavier",
                     name="vgg11", chapter="07", **how.fit_kwargs(cfg.lr),
                     extra={"width_mult": cfg.width_mult, "fc_units": cfg.fc_units,
                            "image_size": size, **how.describe()})
viz.plot_history(result.history, title=f"VGG-11 on Fashion-MNIST ({PROFILE})");

# %%
print(against_d2l(result.record))
print(f"{result.examples_per_sec:.0f} training examples/s on {device}")
result.history.round(3)

# %% [markdown]
# The cell above prints the test accuracy beside d2l's VGG-11 (224 px, channels divided by
# 4, 10 epochs on a GPU). Without batch normalisation a plain VGG can
# sit at chance level for the first few hundred steps before the loss starts to fall
# (watch the first epoch of the curve); with only a few epochs that slow start costs
# accuracy, one reason batch normalisation ([chapter 10](10_batch_norm.ipynb) introduces it
# on LeNet, then trains this VGG-11 with and without it) was soon added to exactly this
# kind of network (torchvision ships `vgg11_bn` to `vgg19_bn`).
#
# ## 7. A look inside
#
# The first layer's kernels are 3x3, too small to look like the Gabor filters of
# [chapter 01](01_biology_of_vision.ipynb), but the signs already show edge and blob detectors (red positive, blue
# negative):

# %%
viz.plot_kernels(first_conv(model).weight, ncols=8, title="VGG-11: first-layer 3x3 kernels");

# %% [markdown]
# The feature maps of the first and third blocks for one test image: the first block
# still looks like the garment, the third has traded resolution for more abstract
# channels.

# %%
X_test, y_test = next(iter(test_iter))
image = X_test[:1]
maps = capture(model, image, ["block1.relu1", "block3.relu2"])
class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
viz.show_images(image.cpu(), titles=[class_names[int(y_test[0])]], ncols=1);

# %%
viz.plot_feature_maps(maps["block1.relu1"][0, :16], title="block 1, after the first conv");

# %%
viz.plot_feature_maps(maps["block3.relu2"][0, :16], title="block 3, after its second conv");

# %% [markdown]
# ### Explore: all eight convolutions and five blocks
#
# The `FeatureMapExplorer` ([chapter 05](05_lenet.ipynb)) lists every convolution and every block of the
# trained VGG-11 in the order the forward pass reaches them. Choose an image (a test
# image, a photograph, your own upload, each shifted, rotated, inverted or noisy) and a
# layer; *one channel* shows a map with its 3x3 kernel, one slice per input channel.

# %%
from cnnbook.widgets import FeatureMapExplorer

explorer = FeatureMapExplorer(model, test_iter.images, labels=test_iter.labels,
                              class_names=class_names, image_size=size)
print(f"layers: {', '.join(explorer.layers)}; this picture took "
      f"{explorer.state['render_ms']:.0f} ms")
explorer

# %% [markdown]
# Things to look for: each block halves the maps' side, so by `block4` a 28 px image is
# a few pixels across and a channel says *whether* its pattern is present, hardly
# *where*. Shift the image by 4 pixels: the block-1 maps move by 4, the block-4 maps by
# about one cell, and the prediction on the left shows how much the network cares.
#
# ## Summary
#
# - VGG made the *block* the unit of design: n 3x3 convolutions (padding 1) with ReLUs,
#   then a 2x2 max-pool; a network is a table such as
#   `conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))`.
# - Stacked 3x3 convolutions see as far as one big kernel with fewer parameters and more
#   nonlinearity, which is why almost every later CNN uses them.
# - The paper's configurations showed that LRN does not help, 3x3 beats 1x1 at equal
#   depth, and depth helps up to 16-19 plain layers.
# - The cost is lopsided: the convolutions do nearly all the arithmetic, the fully
#   connected head holds most of the parameters. Removing that head is the next
#   chapter's idea.
#
# ## Exercises

# %% [markdown]
# **Exercise 1 (parameters of a block).** Write `vgg_block_params(num_convs, in_channels,
# out_channels)` that returns the number of parameters of a VGG block (weights and
# biases) from the formula, without building any layer.

# %% nbgrader={"grade": false, "grade_id": "ex-07-block-params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def vgg_block_params(num_convs, in_channels, out_channels):
    """Parameters of ``num_convs`` 3x3 convolutions in_channels -> out_channels -> ... ."""
    ### BEGIN SOLUTION
    first = 9 * in_channels * out_channels + out_channels
    rest = (num_convs - 1) * (9 * out_channels * out_channels + out_channels)
    return first + rest
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex-07-block-params-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

for args in [(1, 3, 64), (2, 64, 128), (3, 256, 512), (4, 512, 512), (1, 1, 1)]:
    assert vgg_block_params(*args) == count_params(vgg_lib.vgg_block(*args)), args
print("vgg_block_params agrees with the layers")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models import vgg as _vgg

_g = generator(701)
_cases = [tuple(int(v) for v in torch.randint(1, 40, (3,), generator=_g) % torch.tensor([5, 40, 40]) + 1)
          for _ in range(4)]
agrees(vgg_block_params, lambda *a: count_params(_vgg.vgg_block(*a)), _cases, forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (VGG-16 from the paper).** Configuration D has two convolutions in each of
# the first two blocks and three in each of the last three, with 64, 128, 256, 512 and
# 512 channels. Write its `conv_arch` as `vgg16_arch`, without looking at
# `vgg_lib.VGG16_ARCH`. The test builds `vgg_lib.VGG(vgg16_arch)` and compares it with
# torchvision's `vgg16`.

# %% nbgrader={"grade": false, "grade_id": "ex-07-vgg16-arch", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
vgg16_arch = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-07-vgg16-arch-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

with torch.device("meta"):
    yours = vgg_lib.VGG(vgg16_arch)
    reference = torchvision.models.vgg16(weights=None)
assert len(vgg16_arch) == 5
assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in yours.modules()) == 16
assert count_params(yours) == count_params(reference) == 138_357_544
print("16 weight layers, 138,357,544 parameters: configuration D")
### BEGIN HIDDEN TESTS
from cnnbook.grading import same
same(vgg16_arch, ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), what="vgg16_arch")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (a head without the giant FC layers).** Build `gap_vgg11`: the five
# convolutional blocks of VGG-11 (take them from `vgg_lib.vgg11()`, e.g. with slicing
# `[:5]`), then global average pooling (`nn.AdaptiveAvgPool2d(1)`), `nn.Flatten()` and a
# single `nn.Linear(512, 1000)`. Build it on the meta device (`with torch.device("meta"):`)
# so it costs no memory. How many parameters does it save compared with VGG-11, and
# how many multiply-adds?

# %% nbgrader={"grade": false, "grade_id": "ex-07-gap-head", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
with torch.device("meta"):
    gap_vgg11 = nn.Sequential(*vgg_lib.vgg11()[:5], nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Linear(512, 1000))
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-07-gap-head-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_macs, count_params

with torch.device("meta"):
    full_vgg11 = vgg_lib.vgg11()
conv_part = sum(count_params(full_vgg11[i]) for i in range(5))
assert gap_vgg11(torch.zeros(1, 3, 224, 224, device="meta")).shape == (1, 1000)
assert count_params(gap_vgg11) == conv_part + 512 * 1000 + 1000
saved = count_params(full_vgg11) - count_params(gap_vgg11)
mac_share = count_macs(gap_vgg11, (1, 3, 224, 224)) / count_macs(full_vgg11, (1, 3, 224, 224))
print(f"global average pooling saves {saved / 1e6:.1f}M parameters "
      f"({100 * saved / count_params(full_vgg11):.0f}%) and keeps {100 * mac_share:.1f}% of the MACs")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, same
check_comparisons()
assert isinstance(gap_vgg11, nn.Module)
assert not any(isinstance(m, nn.Linear) and m.in_features != 512 for m in gap_vgg11.modules())
_gap = gap_vgg11.to_empty(device="cpu") if next(gap_vgg11.parameters()).is_meta else gap_vgg11
_out = _gap(torch.rand(2, 3, 64, 48))
same(tuple(_out.shape), (2, 1000), what="output shape at 64 x 48 px")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (how far does a VGG see?).** Write `vgg_receptive_field(conv_arch)`, the
# side in input pixels of the patch that one pixel of the last block's output depends
# on. A 3x3 convolution adds `2 * jump` pixels, where `jump` is the product of the
# strides so far; a 2x2 stride-2 pool adds `jump` and doubles it. (Hint: VGG-11's first
# block alone gives 3 + 1 = 4.) How does the answer compare with a 224x224 image?

# %% nbgrader={"grade": false, "grade_id": "ex-07-receptive-field", "locked": false, "schema_version": 3, "solution": true, "task": false}
def vgg_receptive_field(conv_arch):
    """Receptive field side of one output pixel of the last block (after its pool)."""
    ### BEGIN SOLUTION
    side, jump = 1, 1
    for num_convs, _ in conv_arch:
        side += num_convs * 2 * jump
        side += jump
        jump *= 2
    return side
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex-07-receptive-field-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
def measured_receptive_field(arch, size=256):
    """Push a gradient back from the centre output pixel; average pools instead of max
    pools, so that every pixel of a window (not only the largest) receives gradient."""
    layers = []
    for num_convs, _ in arch:
        layers += [nn.Conv2d(1, 1, 3, padding=1) for _ in range(num_convs)]
        layers.append(nn.AvgPool2d(2))
    convs = nn.Sequential(*layers)
    for m in convs.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 0.1)
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = convs(x)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1))
    return int(rows.max() - rows.min() + 1)


assert vgg_receptive_field(((1, 64),)) == 4
for arch in [((1, 64), (1, 128)), vgg_lib.VGG11_ARCH[:3], vgg_lib.VGG16_ARCH[:3]]:
    assert vgg_receptive_field(arch) == measured_receptive_field(arch), arch
print("VGG-11:", vgg_receptive_field(vgg_lib.VGG11_ARCH), "pixels; VGG-16:",
      vgg_receptive_field(vgg_lib.VGG16_ARCH), "pixels")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(conv_arch):
    _s, _j = 1, 1
    for _n, _ in conv_arch:
        _s += _n * 2 * _j + _j
        _j *= 2
    return _s


_g = generator(702)
agrees(vgg_receptive_field, _ref, [(tuple((int(n), 8) for n in torch.randint(1, 5, (m,), generator=_g)),)
                                   for m in (1, 2, 4, 6)])
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - K. Simonyan, A. Zisserman (2014). Very deep convolutional networks for large-scale
#   image recognition. arXiv:1409.1556 (ICLR 2015). Tables 1-3: the configurations,
#   their parameter counts and errors.
# - A. Krizhevsky, I. Sutskever, G. Hinton (2012). ImageNet classification with deep
#   convolutional neural networks. *NeurIPS* (AlexNet, local response normalisation).
# - O. Russakovsky et al. (2015). ImageNet large scale visual recognition challenge.
#   *IJCV* 115 (the ILSVRC 2014 results).
# - M. D. Zeiler, R. Fergus (2014). Visualizing and understanding convolutional networks.
#   *ECCV* (smaller first-layer kernels and strides, a step towards VGG).
# - K. He, X. Zhang, S. Ren, J. Sun (2016). Deep residual learning for image recognition.
#   *CVPR* (why plain networks stop improving with depth).
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*,
#   section 8.2 "Networks using blocks (VGG)". Cambridge University Press.
# - torchvision `models/vgg.py` (the reference implementation whose counts we match).
