# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 06 · AlexNet: the deep era begins
#
# LeNet ([chapter 05](05_lenet.ipynb)) worked, and then for almost fifteen years computer vision mostly did
# something else: hand-designed features fed to a linear classifier or an SVM. In 2012 a
# convolutional network eight layers deep, trained on two gaming GPUs, won the ImageNet
# challenge by a margin nobody had seen before. The network, named AlexNet after its first
# author, is LeNet's design made bigger, fed a million images, and fitted with a handful of
# tricks that made that size trainable. This chapter takes those tricks one at a time.
#
# **What you will learn**
#
# - why 2012 was the year: a big labelled data set (ImageNet), fast hardware (GPUs), and
#   a network that could use both;
# - the ingredients AlexNet introduced or popularised, each in a few lines of code: ReLU,
#   overlapping max-pooling, local response normalisation, dropout and data augmentation;
# - how to build AlexNet one block at a time, follow its shapes, and count its 60 million
#   parameters, including the "two-tower" layout that split it over two GPUs;
# - where its parameters are (the fully connected layers) and where its computation is
#   (the convolutions), checked against torchvision;
# - how to train it on Fashion-MNIST, and what a ReLU network learns that a sigmoid one
#   of the same shape does not (with the same budget);
# - what its first layer learns.

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torchvision
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.data import class_names, random_crop, random_hflip
from cnnbook.inspect import capture, first_conv
from cnnbook.models.alexnet import (ALEXNET_2012, LRN_2012, AlexNet, alexnet, alexnet_2012,
                                    alexnet_fashion, conv_layer)
from cnnbook.profiling import count_macs, count_params
from cnnbook.results import against_d2l
from cnnbook.summary import layer_shapes, shape_table, show_source
from cnnbook.train import init_weights
from cnnbook.train.recipes import recipe

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # main run: alexnet_fashion(width_mult, small_input) on images of `resize` px (None:
    # native 28 px), trained with lr and recipe (cnnbook.train.recipes: "d2l" = d2l's plain
    # SGD at a constant rate, "laptop" = Part III's); limit / test_limit: class-balanced subsets
    # (None: all 60,000 / 10,000); compare_*: width, training / test images and epochs of
    # the ReLU-versus-sigmoid runs (SGD with lr and momentum)
    "smoke": dict(epochs=1, lr=0.01, recipe="laptop", momentum=0.9, batch_size=128, resize=None,
                  small_input=True, width_mult=0.125, limit=256, test_limit=256,
                  compare_width=0.125, compare_limit=256, compare_test_limit=256,
                  compare_epochs=1),
    "cpu":   dict(epochs=5, lr=0.01, recipe="laptop", momentum=0.9, batch_size=128, resize=None,
                  small_input=True, width_mult=0.25, limit=None, test_limit=None,
                  compare_width=0.125, compare_limit=8_000, compare_test_limit=1_000,
                  compare_epochs=3),
    "full":  dict(epochs=10, lr=0.01, recipe="d2l", momentum=0.0, batch_size=128, resize=224,
                  small_input=False, width_mult=1.0, limit=None, test_limit=None,
                  compare_width=1.0, compare_limit=None, compare_test_limit=None,
                  compare_epochs=2),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")
META = torch.device("meta")  # for full-size models: shapes and counts, no memory

# %% [markdown]
# The `full` profile runs d2l's setting: the full-width AlexNet on Fashion-MNIST resized
# to 224 px, plain SGD with learning rate 0.01, batch 128, 10 epochs (d2l reports a test
# accuracy of about 0.88). One 224 px image costs close to a billion multiply-adds forward
# (the shape table of section 4 counts them), so one epoch takes hours on a laptop CPU.
# The `cpu` profile therefore keeps AlexNet's *structure* (five convolutions, three
# overlapping max-pools, three fully connected layers with dropout) and shrinks its cost:
# native 28 px images with a 5x5 stride-1 first layer instead of the 11x11 stride-4 one
# (which would reduce 28 px to nothing), a quarter of the width (24-64-96-96-64 channels,
# 1,024 hidden units), and 5 epochs of all 60,000 images. With so few epochs plain SGD at
# lr 0.01 barely gets going, so the `cpu` profile trains with the recipe of Part III
# instead, which starts from the paper's own momentum of 0.9 (section 6).
# `smoke` trains on 256 images, only to run every cell.
#
# ## 1. History: data, hardware, and a network that could use them
#
# **Data.** Fei-Fei Li's ImageNet (Deng et al., 2009) labelled millions of photographs with
# the nouns of WordNet. Its yearly challenge (ILSVRC, from 2010) used 1.2 million training
# images in 1,000 classes: twenty times as many images as MNIST or CIFAR-10, a hundred
# times as many classes, and photographs of a few hundred pixels instead of 28 or 32.
# Before 2012 the winners extracted hand-designed features (SIFT, HOG, Fisher vectors) and
# trained a linear classifier on them.
#
# **Hardware.** Training a network of 60 million parameters on a million images, for
# ninety passes over the data, was out of reach of the CPUs of the day. Graphics cards,
# built to shade millions of pixels in parallel, had become programmable for general
# computation (NVIDIA's CUDA, 2007). Alex Krizhevsky wrote fast GPU convolution code
# (cuda-convnet) and trained the network on two GTX 580 cards of 3 GB each, for five to
# six days.
#
# **The result.** At ILSVRC 2012, Krizhevsky, Sutskever and Hinton's network reached a
# top-5 test error of 15.3%; the second-best entry, built on hand-designed features, had
# 26.2% (both numbers from the paper). Within two years almost every entry was a CNN, and
# the features were learned rather than designed: the question "which features?" became
# "which architecture?", which is the subject of the rest of Part II.
#
# **The network.** Five convolutional layers (11x11 with stride 4 and 96 kernels, then 5x5
# with 256, then three 3x3 with 384, 384 and 256), max-pooling after the first, second and
# fifth, and three fully connected layers (4096, 4096, 1000): eight layers with weights,
# 60 million parameters, 650,000 neurons. The paper lists what made it work, in order of
# importance as the authors saw it:
#
# 1. **ReLU** instead of the saturating tanh or sigmoid;
# 2. **training on two GPUs**, each holding half of the kernels;
# 3. **local response normalisation** (LRN) across channels;
# 4. **overlapping pooling** (3x3 windows with stride 2);
# 5. against overfitting: **data augmentation** (random crops, flips, colour changes) and
#    **dropout** in the fully connected layers.
#
# Training: SGD with momentum 0.9, weight decay 0.0005, batch 128, learning rate 0.01
# divided by 10 whenever the validation error stopped improving, about 90 epochs.
#
# ## 2. The ingredients, one at a time
#
# ### ReLU
#
# A sigmoid's slope is at most 1/4, and almost zero once its input is far from 0; tanh's
# is at most 1. Backpropagation multiplies these slopes layer after layer, so a deep
# stack of saturating units passes back very little gradient. The rectified linear unit
# $\mathrm{ReLU}(x) = \max(0, x)$ has slope exactly 1 for every positive input ([chapter 03](03_pooling_activations.ipynb)
# treats activations in depth). The paper's Figure 1: a four-layer CNN with ReLUs reached
# 25% training error on CIFAR-10 six times faster than the same network with tanh.

# %%
x = torch.linspace(-5, 5, 201, requires_grad=True)
acts = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "ReLU": torch.relu}
slopes = {name: torch.autograd.grad(f(x).sum(), x)[0] for name, f in acts.items()}
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
viz.plot_functions(x.detach(), {n: f(x).detach() for n, f in acts.items()},
                   title="activation", ax=axes[0])
viz.plot_functions(x.detach(), {f"{n}'": s for n, s in slopes.items()}, title="slope",
                   ax=axes[1])
for depth in (2, 5, 8):
    print(f"best case over {depth} layers: sigmoid slopes multiply to at most "
          f"{slopes['sigmoid'].max().item() ** depth:.1e}, ReLU slopes to "
          f"{slopes['ReLU'].max().item() ** depth:.0f}")

# %% [markdown]
# The printout is the best case: even with every sigmoid at the middle of its range, eight
# of them shrink the gradient by the factor printed above. Section 6 trains AlexNet with
# each activation and measures what that does.
#
# ### Overlapping max-pooling
#
# LeNet averaged 2x2 windows with stride 2: each input pixel falls in exactly one window.
# AlexNet takes the *maximum* over 3x3 windows with stride 2, so neighbouring windows
# share a row or a column. The output has almost the same size, but each output now sees
# 9 inputs instead of 4. The paper reports that overlapping pooling lowered the top-1 and
# top-5 errors by 0.4% and 0.3%, and that the network overfitted slightly less.

# %%
X = torch.arange(25.0).reshape(1, 1, 5, 5) % 7
for k, s in ((2, 2), (3, 2)):
    pool = nn.MaxPool2d(kernel_size=k, stride=s)
    print(f"{k}x{k} windows, stride {s}: 55 px -> {pool(torch.zeros(1, 1, 55, 55)).shape[-1]} px, "
          f"27 px -> {pool(torch.zeros(1, 1, 27, 27)).shape[-1]} px")
print("a 5x5 input\n", X[0, 0])
print("max over 3x3 windows with stride 2 (rows 0-2 and 2-4: they share row 2, and column 2)\n",
      nn.MaxPool2d(3, 2)(X)[0, 0])

# %% [markdown]
# ### Local response normalisation
#
# LRN divides each activation by the summed squares of the activations at the same
# position in the $n$ neighbouring channels:
#
# $$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\,i-n/2)}^{\min(N-1,\,i+n/2)}
# \big(a^j_{x,y}\big)^2\Big)^{\beta},$$
#
# with $k = 2$, $n = 5$, $\alpha = 10^{-4}$, $\beta = 0.75$ in the paper. It is a form of
# *lateral inhibition*, as in real neurons: a strongly active channel damps its
# neighbours, so channels compete. PyTorch's `nn.LocalResponseNorm` divides $\alpha$ by
# $n$, so the package passes $n\alpha$:

# %%
print("LRN_2012 =", LRN_2012)
norm = nn.LocalResponseNorm(**LRN_2012)
a = torch.full((1, 9, 1, 1), 5.0)
a[0, 4] = 40.0                      # one channel fires strongly
b = norm(a)
print("before:", a.flatten().tolist())
print("after: ", [round(v, 2) for v in b.flatten().tolist()])
print(f"a neighbour of the strong channel is damped {a[0, 3].item() / b[0, 3].item():.2f}x, "
      f"a channel far away {a[0, 0].item() / b[0, 0].item():.2f}x "
      f"(k ** beta = {LRN_2012['k'] ** LRN_2012['beta']:.2f}x is the least any channel is damped)")

# %% [markdown]
# The paper credits LRN with 1.4% and 1.2% lower top-1 and top-5 errors. It did not last:
# VGG ([chapter 07](07_vgg.ipynb)) found that it did not help its deeper networks, and batch
# normalisation ([chapter 10](10_batch_norm.ipynb)) replaced it. d2l's Fashion-MNIST AlexNet, and torchvision's,
# leave it out; the package's `alexnet_2012` keeps it.
#
# ### Dropout
#
# With 60 million parameters and 1.2 million images, AlexNet overfits. Dropout
# (Hinton et al., 2012; Srivastava et al., 2014) sets each hidden unit of the fully
# connected layers to zero with probability $p = 0.5$ at every training step, so no unit
# can rely on particular others being there: training samples a different thinned
# network at each step, and the test uses all of them at once. PyTorch's "inverted"
# dropout multiplies the survivors by $1/(1-p)$ during training, so the expected value of
# each unit is the same in training and at test time, when dropout does nothing.

# %%
drop = nn.Dropout(p=0.5)
h = torch.ones(12)
cnnbook.seed_everything(0)
print("train mode:", drop.train()(h).tolist())
print("eval mode: ", drop.eval()(h).tolist())
print(f"mean over a million units in train mode: {drop.train()(torch.ones(10**6)).mean():.3f}")

# %% [markdown]
# The paper says that without dropout the network overfitted substantially, and that
# dropout roughly doubled the number of iterations needed to converge.
#
# ### Data augmentation
#
# The other cure for overfitting is more data, and AlexNet made it up: it trained on
# random 224x224 crops of the 256x256 images and their mirror images (2,048 variants of
# each image, in the paper's count), and added to each image a random combination of the
# principal components of the RGB pixel colours (exercise 4). `cnnbook.load_data(...,
# augment=True)` does the first two for our data, batch by batch: `random_crop` pads each
# image by a few pixels and cuts a random window of the original size, and `random_hflip`
# mirrors half of the images. Eight test images, and two random versions of each:

# %%
originals = next(iter(cnnbook.load_data("fashion_mnist", batch_size=8, limit=80)[1]))[0].cpu()
gen = torch.Generator().manual_seed(0)
rows = [originals] + [random_hflip(random_crop(originals, 4, gen), gen) for _ in range(2)]
fig = viz.show_images(torch.cat(rows), ncols=8, scale=1.1,
                      suptitle="top: eight images; below: two random crops + flips of each")

# %% [markdown]
# Every epoch the network sees each image shifted by up to 4 pixels and, half of the
# time, mirrored. (Exercise 4 adds AlexNet's colour changes.) The main run below trains
# without augmentation, as d2l does: in 2 to 10 epochs on Fashion-MNIST the network has
# little time to overfit.
#
# ## 3. AlexNet for Fashion-MNIST, one block at a time
#
# We build d2l's version: one grey channel in, 10 classes out, the 2012 widths, no LRN and
# one tower, on images resized to 224 px. The first block is the big one: 96 kernels of
# 11x11 with stride 4 (padding 1), ReLU, and the overlapping pool.

# %%
block1 = nn.Sequential(nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2))
X = torch.randn(1, 1, 224, 224)
print("after block 1:", tuple(block1(X).shape))

# %% [markdown]
# The convolution gives $\lfloor (224 + 2 - 11)/4 \rfloor + 1 = 54$ and the pool
# $\lfloor (54 - 3)/2 \rfloor + 1 = 26$. A stride of 4 throws away resolution fast, which
# is what made 224 px affordable in 2012. Block 2: 256 kernels of 5x5, padding 2 (the size
# stays), and a pool:

# %%
block2 = nn.Sequential(nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2))
print("after block 2:", tuple(block2(block1(X)).shape))

# %% [markdown]
# Block 3 is three 3x3 convolutions with padding 1 (384, 384 and 256 kernels) and the
# last pool; then the 256 maps of 5x5 are flattened, and two fully connected layers of
# 4,096 units with dropout lead to the 10 outputs.

# %%
block3 = nn.Sequential(nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
                       nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
                       nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2))
head = nn.Sequential(nn.Flatten(),
                     nn.Linear(256 * 5 * 5, 4096), nn.ReLU(), nn.Dropout(0.5),
                     nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
                     nn.Linear(4096, 10))
net = nn.Sequential(*block1, *block2, *block3, *head)
layer_shapes(net, X)

# %% [markdown]
# Compare with LeNet: the same alternation of convolutions and pools, then fully
# connected layers; but the resolution falls from 224 to 5 and the channels rise to 384,
# and the first fully connected layer has to turn 6,400 numbers into 4,096.
#
# ## 4. The tested module
#
# `cnnbook.models.alexnet` describes every version of AlexNet with one table of rows
# `(out_channels, kernel, stride, padding, groups, LRN, pool)`, and one unit,
# `conv_layer`, in the paper's order: convolution, ReLU, LRN, pool.

# %%
print("ALEXNET_2012 =")
for row in ALEXNET_2012:
    print("   ", row)
show_source(conv_layer);

# %%
show_source(AlexNet);

# %% [markdown]
# `alexnet_fashion()` is the network we just built by hand, so it must have exactly as
# many parameters. Its shape table (torchinfo), one row per named layer:

# %%
model = alexnet_fashion()
assert count_params(model) == count_params(net)
print(f"alexnet_fashion(): {count_params(model):,} parameters, as the hand-built net")
print(shape_table(model, (1, 1, 224, 224), depth=2))
del model, net

# %% [markdown]
# ## 5. The 2012 network, two towers, and torchvision's variant
#
# In 2012 a 3 GB card could not hold the whole network, so the paper put half of each
# layer's kernels on each GPU. The GPUs exchange data only at some layers: conv3 and the
# fully connected layers see all the maps of the layer below; conv2, conv4 and conv5 see
# only the half on their own GPU. A convolution whose output channels see only a group of
# the input channels is a *grouped convolution* (`groups=2` in PyTorch), and it has half
# the weights. `alexnet_2012()` builds the published network, LRN included; we build it on
# PyTorch's `meta` device, which records shapes without allocating memory, and count the
# parameters and multiply-adds (MACs) of each layer:

# %%
with META:
    towers = alexnet_2012(two_towers=True)
    single = alexnet_2012(two_towers=False)
    tv = torchvision.models.alexnet(weights=None)
    ours_tv = alexnet()
macs = count_macs(towers, (1, 3, 224, 224))
rows = []
x = torch.zeros(1, 3, 224, 224, device=META)
for name, layer in towers.features.named_children():
    x_out = layer(x)
    rows.append({"layer": name, "groups": layer.conv.groups,
                 "output": "x".join(map(str, x_out.shape[1:])),
                 "parameters": count_params(layer),
                 "MACs": count_macs(layer, tuple(x.shape))})
    x = x_out
x = torch.zeros(1, 256 * 6 * 6, device=META)
for name in ("fc1", "fc2", "fc3"):
    fc = towers.classifier.get_submodule(name)
    rows.append({"layer": name, "groups": 1, "output": str(fc.out_features),
                 "parameters": count_params(fc), "MACs": fc.in_features * fc.out_features})
cost = pd.DataFrame(rows).set_index("layer")
cost["% of parameters"] = (100 * cost["parameters"] / cost["parameters"].sum()).round(1)
cost["% of MACs"] = (100 * cost["MACs"] / cost["MACs"].sum()).round(1)
print(f"two towers: {count_params(towers):,} parameters; one tower (no groups): "
      f"{count_params(single):,}; {macs / 1e9:.2f} G multiply-adds per image")
cost

# %% [markdown]
# The table is the paper's network layer by layer, and its total is the "60 million
# parameters" of the paper. Read the two percentage columns: the five convolutions do
# almost all of the arithmetic with a few percent of the parameters, and the three fully
# connected layers hold almost all of the parameters, fc1 alone most of them. That
# imbalance, already visible in LeNet, is what NiN ([chapter 08](08_nin.ipynb)) and GoogLeNet ([chapter 09](09_googlenet.ipynb))
# attack by removing the big fully connected layers.
#
# Two years later Krizhevsky ("One weird trick", 2014) trained a single-tower variant
# with 64-192-384-256-256 kernels and no LRN. That is the AlexNet torchvision ships, and
# `alexnet()` must match it exactly, in parameters and in the multiply-adds torchvision
# publishes with its weights:

# %%
meta = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta
check = pd.Series({"ours": count_params(ours_tv), "torchvision": count_params(tv),
                   "published (weights meta)": meta["num_params"]}, name="parameters")
assert check.nunique() == 1
ours_gmacs = count_macs(ours_tv, (1, 3, 224, 224)) / 1e9
assert abs(ours_gmacs / meta["_ops"] - 1) < 0.01
print(check.map("{:,}".format).to_string())
print(f"GMACs: ours {ours_gmacs:.3f}, torchvision's published {meta['_ops']:.3f}")
assert [p.shape for p in ours_tv.parameters()] == [p.shape for p in tv.parameters()]
print("layer by layer, every weight tensor has torchvision's shape")

# %% [markdown]
# ## 6. Training on Fashion-MNIST
#
# The data: Fashion-MNIST at the profile's resolution (`resize=None` keeps 28 px).

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          resize=cfg.resize, limit=cfg.limit,
                                          test_limit=cfg.test_limit)
size = cfg.resize or 28
print(f"{train_iter.num_examples:,} training and {test_iter.num_examples:,} test images "
      f"of {size} px, {len(train_iter)} batches of {cfg.batch_size}")
cnnbook.seed_everything(0)
model = alexnet_fashion(cfg.width_mult, small_input=cfg.small_input)
print(f"AlexNet (width x{cfg.width_mult}, {'5x5 stride-1' if cfg.small_input else '11x11 stride-4'} "
      f"first layer): {count_params(model):,} parameters, "
      f"{count_macs(model, (1, 1, size, size)) / 1e6:,.1f} M multiply-adds per image")
print(shape_table(model, (1, 1, size, size), depth=2))

# %% [markdown]
# With the 5x5 stride-1 first layer, a 28 px image keeps its size through conv1, and the
# three overlapping pools take it to 13, 6 and 2 px (the table above). We train with
# Xavier initialisation as d2l does. The `full` profile also trains as d2l does, with plain
# SGD at a constant learning rate; the `cpu` profile, with a narrower network on 28 px
# images, spends its ten minutes with the recipe of Part III
# ([chapter 18](18_training_recipes.ipynb)): momentum, weight decay, a one-cycle schedule
# that ends annealed, and label smoothing.

# %%
cnnbook.seed_everything(0)
how = recipe(cfg.recipe)
print(f"recipe {how.name!r}: {how.summary}")
result = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, init="xavier",
                     name="alexnet", chapter="06", **how.fit_kwargs(cfg.lr),
                     extra={"width_mult": cfg.width_mult, "resize": cfg.resize, **how.describe()})
print(against_d2l(result.record))
print(f"{result.examples_per_sec:.0f} examples/s on {device}")

# %%
fig = viz.plot_history(result.history, title=f"AlexNet (width x{cfg.width_mult}, {size} px)")
print(result.history.round(3).to_string(index=False))

# %% [markdown]
# The cell above prints the history epoch by epoch: training loss, training accuracy
# (measured with dropout on, while the network trains) and test accuracy (dropout off).
# Dropout is one reason the training accuracy can lag behind the test accuracy early on:
# the training figures come from thinned networks. The line above the curves compares the
# result with d2l's full-width AlexNet at 224 px after 10 epochs; the `full` profile runs
# that setting. Compare with LeNet's results in [chapter 05](05_lenet.ipynb), keeping in mind that LeNet
# trained with a plainer recipe, so part of the gap is the recipe: on 28 px grey clothing
# AlexNet's capacity buys a few points at many times the cost; it pays off on large,
# varied, high-resolution data such as ImageNet.
#
# ### ReLU against sigmoid, same network, same budget
#
# Now the measurement behind ingredient 1. We train the same AlexNet twice from the same
# seed on the same images, once with ReLU and once with a sigmoid after every
# convolution and hidden fully connected layer (`activation=nn.Sigmoid`), and record the
# gradient that reaches the first layer at initialisation. To afford more steps on a CPU,
# the `cpu` profile uses an eighth of the width here, on a subset of the images.

# %%
cmp_train, cmp_test = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                        resize=cfg.resize, limit=cfg.compare_limit,
                                        test_limit=cfg.compare_test_limit)
Xb, yb = next(iter(cmp_train))
Xb, yb = Xb[:cnnbook.config.capped_batch(len(yb))], yb[:cnnbook.config.capped_batch(len(yb))]
rows = []
for act in (nn.ReLU, nn.Sigmoid):
    cnnbook.seed_everything(0)
    net = alexnet_fashion(cfg.compare_width, small_input=cfg.small_input, activation=act)
    init_weights(net, "xavier")
    net.to(device).train()
    nn.functional.cross_entropy(net(Xb), yb).backward()
    grad = first_conv(net).weight.grad.norm().item()
    net.zero_grad()
    res = cnnbook.fit(net, cmp_train, cmp_test, epochs=cfg.compare_epochs, lr=cfg.lr,
                      momentum=cfg.momentum, record=False, progress=False, live_plot=False)
    rows.append({"activation": act.__name__, "conv1 gradient norm at init": grad,
                 "train loss": res.train_loss, "test accuracy": res.test_acc})
compare = pd.DataFrame(rows).set_index("activation")
print(f"width x{cfg.compare_width}, {cmp_train.num_examples:,} images, {cfg.compare_epochs} "
      f"epoch(s), lr {cfg.lr}, momentum {cfg.momentum}")
print(compare.to_string(float_format=lambda v: f"{v:.3g}"))
relu, sig = compare.loc["ReLU"], compare.loc["Sigmoid"]
print(f"sigmoid: train loss {sig['train loss']:.3f} (ln 10 = {math.log(10):.3f}), test accuracy "
      f"{sig['test accuracy']:.3f}; its conv1 gradient is "
      f"{relu['conv1 gradient norm at init'] / sig['conv1 gradient norm at init']:,.0f}x smaller")
assert sig["conv1 gradient norm at init"] < relu["conv1 gradient norm at init"] / 100
if cnnbook.claims_checked(PROFILE):   # a smoke run is too short for claims about learning
    # near ln 10, the loss of a uniform guess: within 0.2 (an average over the last epoch's
    # batches can sit a little above it while the weights drift)
    assert abs(sig["train loss"] - math.log(10)) < 0.2 and sig["test accuracy"] < 0.2
    assert relu["train loss"] < sig["train loss"] - 0.2
    assert relu["test accuracy"] > sig["test accuracy"] + 0.1

# %% [markdown]
# The table and the line under it are the measurement, and the cell asserts what this
# paragraph says (the part about learning only in the `cpu` and `full` profiles, since a
# smoke run is too short). The gradient at the first layer of the sigmoid
# network is orders of magnitude smaller than the ReLU network's, and with the same
# budget its loss stays near $\ln 10 \approx 2.30$ and its accuracy near chance (0.1):
# it has not started to learn, while the ReLU network has. A sigmoid network of this
# depth can be trained, with far more patience or with tricks such as batch normalisation
# ([chapter 10](10_batch_norm.ipynb)); ReLU is the cheapest of those tricks, and it is still the default.
#
# ## 7. What the first layer learned
#
# The kernels of conv1 after training, red for positive weights and blue for negative
# (each on its own colour scale). The paper's Figure 3 shows its 96 first-layer kernels
# on ImageNet colour images: oriented edges at many angles and frequencies, and colour
# blobs, with the edge detectors on one GPU and the colour ones on the other.

# %%
weight = first_conv(model).weight.detach().cpu()
fig = viz.plot_kernels(weight, ncols=min(16, weight.shape[0]), scale=1.0,
                       title=f"AlexNet conv1: {weight.shape[0]} kernels of "
                             f"{weight.shape[-2]}x{weight.shape[-1]} after training")

# %% [markdown]
# On grey 28 px clothing the kernels are small (5x5 in the `cpu` profile, 11x11 in
# `full`), but many of them are again a bright region next to a dark one: detectors of an
# edge in one direction. What they do to one test image, the maps after conv1 (ReLU
# included, before the pool):

# %%
X_test, y_test = next(iter(test_iter))
names = class_names("fashion_mnist")
maps = capture(model, X_test[:1], ["features.conv1.act"])["features.conv1.act"]
fig = viz.show_images(X_test[:1].cpu(), titles=[names[int(y_test[0])]], ncols=1, scale=2)
fig = viz.plot_feature_maps(maps[0, :16].cpu(), ncols=8,
                            title=f"after conv1 (first 16 of {maps.shape[1]} maps)")

# %% [markdown]
# ### Explore: every layer of the trained AlexNet
#
# The same view for all five convolutional stages, on any test image, a photograph or an
# image of your own, shifted, rotated, inverted or noisy (`FeatureMapExplorer`, met in
# [chapter 05](05_lenet.ipynb)). *One channel* shows a map enlarged beside its kernel: for conv2 to conv5 a
# kernel has one slice per input channel, and the explorer shows the strongest ones.

# %%
from cnnbook.widgets import FeatureMapExplorer

explorer = FeatureMapExplorer(model, test_iter.images, labels=test_iter.labels,
                              class_names=names, image_size=size)
print(f"{len(explorer.layers)} layers; this picture took {explorer.state['render_ms']:.0f} ms")
explorer

# %% [markdown]
# Things to look for: with *colour scale: shared*, how many of a stage's channels are
# dark for this image (the title counts those that are constant)? ReLU networks switch
# whole channels off for inputs that lack their feature. Step from conv1 to conv5 and
# watch the maps shrink with each overlapping pool while their number grows.
#
# ## Summary
#
# - AlexNet (Krizhevsky, Sutskever and Hinton, 2012) won ILSVRC 2012 with a top-5 error
#   of 15.3% against 26.2%: a large labelled data set (ImageNet), GPUs, and a deep CNN
#   together. It started the deep era: features learned, not designed.
# - Eight layers with weights: conv 11x11/4 (96), 5x5 (256), 3x3 (384, 384, 256), with
#   overlapping 3x3/2 max-pools after conv1, conv2 and conv5, then FC 4096-4096-1000 with
#   dropout 0.5; about 60 million parameters, most of them in the FC layers, most of the
#   computation in the convolutions.
# - Its ingredients: ReLU (gradients that do not shrink layer after layer; measured here
#   against sigmoid), dropout and data augmentation against overfitting, LRN (later
#   dropped) and overlapping pooling; two GPUs, with grouped convolutions where the towers
#   did not talk.
# - torchvision's AlexNet is Krizhevsky's single-tower 2014 variant (61,100,840
#   parameters); d2l's Fashion-MNIST AlexNet keeps the 2012 widths for one grey channel.
#
# ## Exercises
#
# **Exercise 1 (count the 60 million).** Write `alexnet_params(two_towers, num_classes)`
# that computes the number of parameters of the published network from the table
# `ALEXNET_2012` (rows `(out_channels, kernel, stride, padding, groups, lrn, pool)`),
# without building it: a convolution has $k^2 \cdot (c_\text{in}/g) \cdot c_\text{out}$
# weights plus $c_\text{out}$ biases, where $g$ is its `groups` entry with two towers
# and 1 without; the last feature map is 6x6; the FC layers are 4,096, 4,096 and
# `num_classes` wide. The input has 3 channels.

# %% nbgrader={"grade": false, "grade_id": "ex-06-alexnet-params", "locked": false, "schema_version": 3, "solution": true, "task": false}
def alexnet_params(two_towers: bool = True, num_classes: int = 1000) -> int:
    """Parameters of the 2012 AlexNet, from ALEXNET_2012 and the formula."""
    ### BEGIN SOLUTION
    total, c_in = 0, 3
    for c_out, k, _, _, g, _, _ in ALEXNET_2012:
        g = g if two_towers else 1
        total += k * k * (c_in // g) * c_out + c_out
        c_in = c_out
    for n_in, n_out in ((c_in * 6 * 6, 4096), (4096, 4096), (4096, num_classes)):
        total += n_in * n_out + n_out
    return total
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-06-alexnet-params-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_params

for _towers in (True, False):
    for _classes in (1000, 10):
        with META:
            _expected = count_params(alexnet_2012(two_towers=_towers, num_classes=_classes))
        assert alexnet_params(_towers, _classes) == _expected, (_towers, _classes)
print(f"two towers: {alexnet_params(True):,}; one tower: {alexnet_params(False):,}")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.alexnet import alexnet_2012 as _ax


def _ref(two_towers=True, num_classes=1000):
    with torch.device("meta"):
        return count_params(_ax(two_towers=two_towers, num_classes=num_classes))


_n = (2 + torch.randperm(500, generator=generator(601))[:2]).tolist()
agrees(alexnet_params, _ref, [(True, _n[0]), (False, _n[1]), dict(num_classes=_n[1])], forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (LRN by hand).** Implement the paper's local response normalisation,
# `local_response_norm(a, n=5, alpha=1e-4, beta=0.75, k=2.0)`, for a tensor of shape
# (batch, channels, height, width), directly from the formula of section 2 (the sum runs
# over the channels $\max(0, i - n/2)$ to $\min(N - 1, i + n/2)$, with $n/2$ rounded
# down). The test compares it with PyTorch's module, which divides $\alpha$ by $n$.

# %% nbgrader={"grade": false, "grade_id": "ex-06-lrn", "locked": false, "schema_version": 3, "solution": true, "task": false}
def local_response_norm(a: torch.Tensor, n: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 2.0) -> torch.Tensor:
    """AlexNet's LRN: a / (k + alpha * sum of squares over n neighbouring channels) ** beta."""
    ### BEGIN SOLUTION
    N = a.shape[1]
    sq = a ** 2
    out = torch.empty_like(a)
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * sq[:, lo:hi + 1].sum(dim=1)) ** beta
    return out
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-06-lrn-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_a = 30 * torch.randn(2, 9, 4, 4)
assert torch.allclose(local_response_norm(_a), nn.LocalResponseNorm(**LRN_2012)(_a), atol=1e-5)
_ref = nn.LocalResponseNorm(3, alpha=3 * 0.01, beta=0.5, k=1.0)(_a)
assert torch.allclose(local_response_norm(_a, n=3, alpha=0.01, beta=0.5, k=1.0), _ref, atol=1e-5)
print("your LRN matches nn.LocalResponseNorm")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(a, n=5, alpha=1e-4, beta=0.75, k=2.0):
    return nn.LocalResponseNorm(n, alpha=n * alpha, beta=beta, k=k)(a)


_g = generator(602)
agrees(local_response_norm, _ref, [(10 * torch.randn(3, 6, 3, 5, generator=_g), 3, 0.02, 0.6, 1.5),
                                   (30 * torch.randn(1, 11, 2, 2, generator=_g),),
                                   (5 * torch.randn(2, 4, 4, 4, generator=_g), 7, 0.05, 1.0, 0.5)],
       forbid=("torch.nn.functional.local_response_norm",), atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (dropout by hand).** Write `inverted_dropout(x, p, training, generator)`:
# in training mode, zero each element independently with probability `p` (draw the
# random numbers with `torch.rand(..., generator=generator)`) and divide the survivors by
# $1 - p$; in evaluation mode return `x` unchanged. Why divide? The test checks that the
# mean is preserved.

# %% nbgrader={"grade": false, "grade_id": "ex-06-dropout", "locked": false, "schema_version": 3, "solution": true, "task": false}
def inverted_dropout(x: torch.Tensor, p: float = 0.5, training: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training only)."""
    ### BEGIN SOLUTION
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1 - p)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-06-dropout-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_x = torch.rand(200_000) + 1
_g = torch.Generator().manual_seed(0)
assert torch.equal(inverted_dropout(_x, 0.5, training=False), _x)
for _p in (0.2, 0.5, 0.8):
    _y = inverted_dropout(_x, _p, training=True, generator=_g)
    assert abs((_y == 0).float().mean().item() - _p) < 0.01, "about a fraction p must be zero"
    _kept = _y != 0
    assert torch.allclose(_y[_kept], _x[_kept] / (1 - _p)), "survivors are scaled by 1/(1-p)"
    assert abs(_y.mean().item() / _x.mean().item() - 1) < 0.02, "the mean must be preserved"
print("inverted dropout OK")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()
_g = generator(603)
_x = torch.rand(50_000, generator=_g) + 0.5
same(inverted_dropout(_x, 0.3, training=False), _x, what="eval mode")
same(inverted_dropout(_x, 0.0, training=True), _x, what="p = 0")
for _p in torch.rand(3, generator=_g).mul(0.8).add(0.1).tolist():
    _y = inverted_dropout(_x.view(100, 500), _p, training=True, generator=torch.Generator().manual_seed(7))
    assert type(_y) is torch.Tensor and tuple(_y.shape) == (100, 500), "same shape as the input"
    _y = _y.flatten()
    _frac = float((_y == 0).double().mean())
    assert abs(_frac - _p) < 0.02, f"{_frac:.3f} of the values are zero, expected about {_p:.3f}"
    _kept = _y != 0
    same(_y[_kept], _x[_kept] / (1 - _p), what="survivors")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (PCA colour augmentation).** AlexNet changed the colour of each training
# image by adding, to every pixel, the vector $[\mathbf{p}_1, \mathbf{p}_2,
# \mathbf{p}_3]\,[\alpha_1\lambda_1, \alpha_2\lambda_2, \alpha_3\lambda_3]^\top$, where
# $\mathbf{p}_i$ and $\lambda_i$ are the eigenvectors and eigenvalues of the 3x3
# covariance matrix of the RGB pixel values (over the training set) and $\alpha_i$ are
# drawn from $\mathcal{N}(0, 0.1^2)$ once per image. The paper says it lowered the top-1
# error by over 1%. Write `pca_color_offset(pixels, alphas)` that takes the pixels as an
# (N, 3) tensor and the three $\alpha_i$, and returns that RGB offset (a tensor of 3
# numbers). Hint: `torch.linalg.eigh`.

# %% nbgrader={"grade": false, "grade_id": "ex-06-pca-color", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pca_color_offset(pixels: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """The RGB shift P @ (alphas * eigenvalues) of AlexNet's colour augmentation."""
    ### BEGIN SOLUTION
    cov = torch.cov(pixels.T)
    eigenvalues, P = torch.linalg.eigh(cov)
    return P @ (alphas * eigenvalues)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-06-pca-color-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.photos import load_photo

_pixels = load_photo("astronaut", size=64, gray=False).reshape(3, -1).T.double()
_cov = torch.cov(_pixels.T)
assert torch.allclose(pca_color_offset(_pixels, torch.zeros(3, dtype=torch.double)),
                      torch.zeros(3, dtype=torch.double))
for _i in range(3):
    _v = pca_color_offset(_pixels, torch.eye(3, dtype=torch.double)[_i])
    _lam = _v.norm()              # alpha = e_i: the offset is lambda_i times a unit eigenvector
    assert torch.allclose(_cov @ _v, _lam * _v, atol=1e-8), "the offset must be an eigenvector"
_alphas = torch.tensor([0.1, -0.2, 0.05], dtype=torch.double)
_parts = sum(a * pca_color_offset(_pixels, torch.eye(3, dtype=torch.double)[i])
             for i, a in enumerate(_alphas))
assert torch.allclose(pca_color_offset(_pixels, _alphas), _parts), "linear in the alphas"
print("RGB offset for alphas", _alphas.tolist(), ":",
      [round(v, 4) for v in pca_color_offset(_pixels, _alphas).tolist()])
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()
_g = generator(604)
_px = torch.rand(500, 3, generator=_g, dtype=torch.double) @ torch.rand(3, 3, generator=_g, dtype=torch.double)
_cov = torch.cov(_px.T)
_vs = [pca_color_offset(_px, torch.eye(3, dtype=torch.double)[i]) for i in range(3)]
for _v in _vs:
    assert type(_v) is torch.Tensor and tuple(_v.shape) == (3,)
    same(_cov @ _v, _v.norm() * _v, atol=1e-9, what="an eigenvector times its eigenvalue")
same(torch.sort(torch.stack([_v.norm() for _v in _vs])).values, torch.linalg.eigvalsh(_cov), atol=1e-9,
     what="the eigenvalues of the pixel covariance")
_al = torch.randn(3, generator=_g, dtype=torch.double)
same(pca_color_offset(_px, _al), sum(a * v for a, v in zip(_al, _vs)), atol=1e-9, what="linear in the alphas")
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - J. Deng, W. Dong, R. Socher, L.-J. Li, K. Li, L. Fei-Fei (2009). *ImageNet: A
#   Large-Scale Hierarchical Image Database.* CVPR.
# - A. Krizhevsky, I. Sutskever, G. E. Hinton (2012). *ImageNet Classification with Deep
#   Convolutional Neural Networks.* NeurIPS (NIPS 2012).
# - A. Krizhevsky (2014). *One weird trick for parallelizing convolutional neural
#   networks.* arXiv:1404.5997 (the single-tower variant torchvision implements).
# - V. Nair, G. E. Hinton (2010). *Rectified Linear Units Improve Restricted Boltzmann
#   Machines.* ICML.
# - G. E. Hinton, N. Srivastava, A. Krizhevsky, I. Sutskever, R. R. Salakhutdinov (2012).
#   *Improving neural networks by preventing co-adaptation of feature detectors.*
#   arXiv:1207.0580.
# - N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov (2014).
#   *Dropout: A Simple Way to Prevent Neural Networks from Overfitting.* JMLR 15.
# - K. Simonyan, A. Zisserman (2014). *Very Deep Convolutional Networks for Large-Scale
#   Image Recognition.* arXiv:1409.1556 (LRN did not help).
# - O. Russakovsky et al. (2015). *ImageNet Large Scale Visual Recognition Challenge.*
#   IJCV 115.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, section
#   8.1 "Deep Convolutional Neural Networks (AlexNet)". Cambridge University Press.
