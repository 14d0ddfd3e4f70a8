# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 · LeNet: the first convolutional network at work
#
# Part I took convolution, pooling and backpropagation apart. This chapter puts them
# together into the network that first made them useful: LeNet-5, which read handwritten
# digits for banks and post offices in the 1990s. It is small enough to understand layer
# by layer and to train on a laptop in a minute, and every network in Part II is a
# descendant of it.
#
# **What you will learn**
#
# - where LeNet came from, and the three ideas it put together: local receptive fields,
#   shared weights, and subsampling;
# - how to build it one block at a time and follow the shape of the data through it;
# - where its parameters are (in the fully connected layers) and where its computation is
#   (in the convolutions);
# - how to train it with d2l's recipe in two pipelines, `d2l.train_ch6` and
#   `cnnbook.fit`, and why the second is more than twice as fast on a CPU;
# - what a "modern" LeNet (ReLU, max pooling, batch norm) gains with the same recipe;
# - what the trained network has learned: its kernels and feature maps.

# %%
import contextlib
import io
import re
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.data import class_names, subset_per_class
from cnnbook.inspect import capture, first_conv
from cnnbook.models.lenet import LeNet5, conv_stage, lenet5, lenet5_modern
from cnnbook.profiling import count_flops, count_params
from cnnbook.summary import layer_shapes, shape_table, show_source
from cnnbook.train import TrainingDiverged, predict

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # epochs / lr / batch_size: d2l's LeNet recipe, the same for both pipelines and both
    # networks; limit / test_limit: class-balanced subsets (None: all 60,000 / 10,000);
    # min_speedup: the speed ratio fit / train_ch6 the notebook asserts (None: no check)
    "smoke": dict(epochs=1, lr=0.9, batch_size=256, limit=1_500, test_limit=500,
                  min_speedup=None),
    "cpu":   dict(epochs=10, lr=0.9, batch_size=256, limit=None, test_limit=None,
                  min_speedup=2.0),
    "full":  dict(epochs=10, lr=0.9, batch_size=256, limit=None, test_limit=None,
                  min_speedup=None),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# LeNet is small, so the `cpu` profile can afford d2l's full setting: 10 epochs of all
# 60,000 training images at 28 px, learning rate 0.9, batch 256, with both pipelines and
# both networks; on a 2-core CPU that takes a few minutes. `full` is the same (on a GPU
# it takes seconds); `smoke` trains one epoch on 1,500 images just to run every cell
# (`train_ch6` needs at least 5 batches per epoch).
#
# ## 1. History: digits for the post office
#
# In 1989 Yann LeCun and his colleagues at AT&T Bell Labs trained a network by
# backpropagation to read the handwritten ZIP codes on US mail (LeCun et al., 1989). The
# images were 16x16 pixels; the network had about 10,000 weights, and it owed its success
# to three ideas about images that Part I met one by one:
#
# 1. **local receptive fields**: a unit looks at a small patch, as the simple cells of
#    Hubel and Wiesel do ([chapter 01](01_biology_of_vision.ipynb)), because the pixels that matter for an edge or a
#    stroke are close together;
# 2. **shared weights**: the same small kernel is applied at every position (a
#    convolution, [chapter 02](02_convolution_math.ipynb)), so a stroke detector learned in one place works in every
#    place, and the network has few parameters to learn;
# 3. **subsampling**: averaging neighbouring outputs (pooling, [chapter 03](03_pooling_activations.ipynb)) makes the exact
#    position of a feature matter less, as complex cells do.
#
# Kunihiko Fukushima's Neocognitron (1980) had the same architecture, but no way to learn
# all its layers from examples; LeCun trained the whole chain end to end by gradient
# descent. Nine years of refinement later, LeNet-5 (LeCun, Bottou, Bengio and Haffner,
# 1998) was the heart of a cheque-reading system that, in the paper's words, "is deployed
# commercially and reads several million checks per day".
#
# The 1998 network takes a 32x32 image and alternates convolutions (C) and subsamplings
# (S): C1 with 6 maps, S2, C3 with 16 maps, S4, then C5 with 120 units, F6 with 84, and 10
# outputs. We follow d2l's version: a 28x28 Fashion-MNIST image padded by 2 pixels plays
# the role of the 32x32 input, sigmoids replace the paper's scaled tanh, plain average
# pooling replaces its trainable subsampling, C3 sees all of S2's maps (the paper wired
# each C3 map to a chosen subset; exercise 2 builds that), and a linear layer with
# softmax replaces the final layer of Gaussian units. The shapes and the spirit are the
# paper's.
#
# ## 2. Building LeNet one block at a time
#
# The first block is a 5x5 convolution with 6 output channels, padding 2, a sigmoid, and
# a 2x2 average pool with stride 2:

# %%
block1 = nn.Sequential(nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
                       nn.AvgPool2d(kernel_size=2, stride=2))
X = torch.rand(1, 1, 28, 28)
print("after block 1:", tuple(block1(X).shape))

# %% [markdown]
# The convolution keeps the size, $\lfloor(28 + 2\cdot 2 - 5)/1\rfloor + 1 = 28$, and the
# pool halves it to 14. The second block has 16 channels and no padding, so its
# convolution trims 4 pixels ($14 - 5 + 1 = 10$) before the pool halves the map to 5:

# %%
block2 = nn.Sequential(nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
                       nn.AvgPool2d(kernel_size=2, stride=2))
print("after block 2:", tuple(block2(block1(X)).shape))

# %% [markdown]
# The 16 maps of 5x5 are flattened into 400 numbers, and three fully connected layers
# take them to 120, 84 and finally 10 class scores (no sigmoid on the last one: the loss
# applies the softmax). Together, in d2l's single `nn.Sequential`:

# %%
head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
                     nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
net = nn.Sequential(*block1, *block2, *head)
layer_shapes(net, X)

# %% [markdown]
# d2l's loop above pushes one image through each layer in turn and notes its output
# shape and parameters: the image shrinks (28 -> 14 -> 10 -> 5) while the channels grow
# (1 -> 6 -> 16), the pattern of almost every CNN since.
#
# ## 3. The tested module
#
# The course keeps LeNet in `cnnbook.models.lenet`, built from the same two kinds of
# pieces: `conv_stage` (conv -> [batch norm] -> activation -> pool) and fully connected
# layers. The class adds configuration (input channels, classes, a width multiplier, the
# image size, the activation, the pooling and batch norm), so that the modern variant of
# section 7 and later chapters can reuse it.

# %%
show_source(conv_stage);

# %%
show_source(LeNet5);

# %% [markdown]
# `fc1` is sized from the image: for 28 px the map after `stage2` has side
# $(28/2 - 4)/2 = 5$. `lenet5()` is the network we just built by hand, so it must have
# exactly as many parameters:

# %%
model = lenet5()
assert count_params(model) == count_params(net)
print(f"lenet5(): {count_params(model):,} parameters, as the hand-built net")
print(shape_table(model, (1, 1, 28, 28)))

# %% [markdown]
# ### Parameters and computation, layer by layer
#
# Weight sharing makes a convolution cheap in parameters and expensive in arithmetic: the
# same few weights are used at every one of its output positions. The table below counts
# both for each learned layer (multiply-adds, MACs, for one image, from PyTorch's FLOP
# counter):

# %%
learned = {"conv1": model.stage1.conv, "conv2": model.stage2.conv, "fc1": model.fc1.linear,
           "fc2": model.fc2.linear, "fc3": model.fc3}
inputs = {"conv1": (1, 1, 28, 28), "conv2": (1, 6, 14, 14), "fc1": (1, 400),
          "fc2": (1, 120), "fc3": (1, 84)}
cost = pd.DataFrame({name: {"parameters": count_params(layer),
                            "MACs": count_flops(layer, inputs[name]) // 2}
                     for name, layer in learned.items()}).T
cost["% of parameters"] = (100 * cost["parameters"] / cost["parameters"].sum()).round(1)
cost["% of MACs"] = (100 * cost["MACs"] / cost["MACs"].sum()).round(1)
cost["MACs per weight"] = (cost["MACs"] / cost["parameters"]).round(1)
cost

# %% [markdown]
# Read the table above by rows. The two convolutions hold a few percent of the
# parameters but do most of the multiply-adds: each conv1 weight is used once per output
# position, hundreds of times per image. The fully connected `fc1` is the opposite, one
# multiply-add per weight, and it alone holds most of the parameters. This imbalance will
# grow in AlexNet ([chapter 06](06_alexnet.ipynb)) and VGG, and NiN ([chapter 08](08_nin.ipynb)) will remove the big fully
# connected layers altogether.
#
# ## 4. The data
#
# Fashion-MNIST: 28x28 grey images of clothing in 10 classes, 60,000 for training and
# 10,000 for testing. `cnnbook.load_data` holds each split in memory as one uint8 tensor
# and cuts batches from it:

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          limit=cfg.limit, test_limit=cfg.test_limit)
print(f"{train_iter.num_examples:,} training and {test_iter.num_examples:,} test images, "
      f"{len(train_iter)} batches of {cfg.batch_size}")
X_test, y_test = next(iter(test_iter))
names = class_names("fashion_mnist")
fig = viz.show_images(X_test[:16], titles=[names[int(i)] for i in y_test[:16]], ncols=8,
                      scale=1.3)

# %% [markdown]
# ## 5. Training: d2l's pipeline and ours, side by side
#
# d2l trains LeNet with `train_ch6`: plain SGD, learning rate 0.9, batch 256, 10 epochs,
# Xavier-initialised weights, data from `d2l.load_data_fashion_mnist`. `cnnbook.fit` with
# `init="xavier"` does the same computation, so we run both on the same network and
# starting weights (the same seed before the Xavier initialisation, biases zeroed for
# both), the same recipe, the same images (in `smoke`, the same class-balanced subset) and
# the same final test; only the order of the shuffled batches differs. `d2l_fashion_mnist`
# is d2l's loader reading the course's data folder rather than `../data`, so it also works
# under nbgrader. `train_ch6` draws its own live plot and prints a summary, which we
# capture to show below.

# %%
from d2l import torch as d2l

from cnnbook.data.d2l_loader import d2l_fashion_mnist

d2l_train, d2l_test = d2l_fashion_mnist(cfg.batch_size)


def d2l_subset(loader, limit, shuffle):
    """d2l's loader restricted to the class-balanced subset that ``load_data`` uses."""
    if limit is None:
        return loader
    idx = subset_per_class(loader.dataset.targets, limit, num_classes=10, seed=0)
    return torch.utils.data.DataLoader(torch.utils.data.Subset(loader.dataset, idx.tolist()),
                                       cfg.batch_size, shuffle=shuffle,
                                       num_workers=d2l.get_dataloader_workers())


d2l_train = d2l_subset(d2l_train, cfg.limit, shuffle=True)
d2l_test = d2l_subset(d2l_test, cfg.test_limit, shuffle=False)
print(f"d2l: {len(d2l_train.dataset):,} training and {len(d2l_test.dataset):,} test images, "
      f"{d2l_train.num_workers} worker processes")

# %%
net_d2l = lenet5()
for m in net_d2l.modules():
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.zeros_(m.bias)   # as fit(init="xavier") does; train_ch6 sets the weights
cnnbook.seed_everything(0)
captured = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stdout(captured):
    d2l.train_ch6(net_d2l, d2l_train, d2l_test, cnnbook.config.capped(cfg.epochs), cfg.lr, device)
d2l_seconds = time.perf_counter() - start

# %%
from matplotlib_inline.backend_inline import set_matplotlib_formats

set_matplotlib_formats("png")  # d2l switched the notebook's figures to SVG; switch back
print(captured.getvalue().strip())

# %% [markdown]
# Now the same network, recipe and images with `cnnbook.fit` and `cnnbook.load_data`
# (the loaders of section 4):

# %%
net_fit = lenet5()
cnnbook.seed_everything(0)
start = time.perf_counter()
result = cnnbook.fit(net_fit, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                     init="xavier", name="lenet5", chapter="05")
fit_seconds = time.perf_counter() - start

# %% [markdown]
# Both results in one table. "Wall-clock examples/s" is the number of training examples
# processed (epochs x images) divided by the whole time of the call, evaluation after
# each epoch and plotting included: what you wait for. Each tool also reports its own
# throughput, measured differently (d2l's timer runs only while a batch is being
# processed, so it leaves out the wait for the next batch; `fit` times the training loop
# including data, but not the evaluation).

# %%
d2l_reported = float(re.search(r"([\d.]+) examples/sec", captured.getvalue()).group(1))
n_train = train_iter.num_examples * cfg.epochs
comparison = pd.DataFrame({
    "d2l.train_ch6": {"test accuracy": cnnbook.evaluate(net_d2l, test_iter)["acc"],
                      "seconds": d2l_seconds, "wall-clock examples/s": n_train / d2l_seconds,
                      "examples/s (tool's own)": d2l_reported},
    "cnnbook.fit": {"test accuracy": cnnbook.evaluate(net_fit, test_iter)["acc"],
                    "seconds": fit_seconds, "wall-clock examples/s": n_train / fit_seconds,
                    "examples/s (tool's own)": result.examples_per_sec},
}).T
speedup = d2l_seconds / fit_seconds
print(comparison.round({"test accuracy": 3, "seconds": 1, "wall-clock examples/s": 0,
                        "examples/s (tool's own)": 0}).to_string())
print(f"\nfit is {speedup:.1f}x as fast as train_ch6 (wall clock) on {device}; test accuracy "
      f"{comparison.loc['cnnbook.fit', 'test accuracy'] - comparison.loc['d2l.train_ch6', 'test accuracy']:+.3f}")
if cfg.min_speedup is not None and device.type == "cpu":
    assert speedup >= cfg.min_speedup, f"expected fit to be {cfg.min_speedup}x as fast"
    # same recipe and weights: accuracies agree up to the noise of a different shuffle
    assert comparison.loc["cnnbook.fit", "test accuracy"] >= comparison.loc["d2l.train_ch6", "test accuracy"] - 0.03

# %% [markdown]
# The table above prints both runs; in the `cpu` profile the cell also asserts that `fit`
# is at least twice as fast and that its accuracy is as good, within the few points that
# a different shuffling of the batches can move a sigmoid network (d2l's book reports a
# test accuracy of about 0.78 after these 10 epochs). The two pipelines do the same
# arithmetic on the network; where the time goes is engineering rather than LeNet, and the
# optional section at the end of the chapter measures it.
#
# ## 6. Learning curves and errors
#
# `fit` returns the history of every epoch; here are the curves of our run, and the
# confusion matrix of its test predictions (rows: true class, columns: predicted; the
# diagonal is the recall of each class).

# %%
fig = viz.plot_history(result.history, title=f"LeNet-5, lr {cfg.lr}, batch {cfg.batch_size}")
print(result.history.round(3).to_string(index=False))

# %%
preds, labels = predict(net_fit, test_iter)
fig = viz.plot_confusion_matrix(labels, preds, names, title="LeNet-5 on the test set")
recall = viz.confusion_matrix(labels, preds, 10).diag() / torch.bincount(labels, minlength=10)
worst = recall.argsort()[:3]
print("hardest classes:", ", ".join(f"{names[i]} ({recall[i]:.2f})" for i in worst.tolist()))

# %% [markdown]
# The loss stays close to $\ln 10 \approx 2.30$ (guessing) for a while before it falls:
# at the start the sigmoids pass only weak gradients back to the convolutions, and the
# network must first find a direction worth following. The printout names the classes
# it confuses most; typically the shirt, t-shirt, pullover and coat, which differ in
# details that 28x28 grey pixels barely show.
#
# ## 7. A modern LeNet
#
# Twenty years of practice changed three habits, all of which we will meet again in Part
# II: **ReLU** instead of the sigmoid (its gradient does not vanish for large inputs;
# [chapter 03](03_pooling_activations.ipynb) and AlexNet), **max pooling** instead of averaging (it keeps the strongest
# response), and **batch normalisation** after every convolution and hidden linear layer
# ([chapter 10](10_batch_norm.ipynb)). `lenet5_modern()` is the same `LeNet5` with these three switches; the
# convolutions lose their biases, which the batch norm's shift makes redundant.

# %%
modern = lenet5_modern()
print(f"modern LeNet: {count_params(modern):,} parameters (LeNet-5: {count_params(model):,})")
print(shape_table(modern, (1, 1, 28, 28), depth=2))

# %% [markdown]
# Same recipe, same data, same seed:

# %%
cnnbook.seed_everything(0)
modern_result = cnnbook.fit(modern, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                            init="xavier", name="lenet5_modern", chapter="05")

# %%
both = pd.DataFrame({
    "LeNet-5 (sigmoid, avg pool)": result.history.set_index("epoch")["test_acc"],
    "modern (ReLU, max pool, BN)": modern_result.history.set_index("epoch")["test_acc"]})
fig, ax = plt.subplots(figsize=(5.5, 3.4))
both.plot(ax=ax, marker="o")
ax.set(xlabel="epoch", ylabel="test accuracy", title="Same recipe, two LeNets")
ax.grid(alpha=0.3)
summary_table = pd.DataFrame({
    "parameters": [count_params(net_fit), count_params(modern)],
    "test accuracy": [result.test_acc, modern_result.test_acc],
    "examples/s": [result.examples_per_sec, modern_result.examples_per_sec]},
    index=both.columns)
print(summary_table.round({"test accuracy": 3, "examples/s": 0}).to_string())

# %% [markdown]
# The curves and table above compare the two networks. The modern variant learns from
# the very first epoch, where the sigmoid network first has to leave its plateau, and it
# ends higher, with almost the same number of parameters; batch norm costs some speed per
# example. None of the three changes adds capacity: they make the same network *easier to
# optimise*.
#
# ### One change at a time
#
# The modern LeNet changed three things at once, so the comparison above cannot say which
# of them did the work. An *ablation* answers that: train LeNet-5 with each change alone,
# same recipe, data and seed. One more precaution: at a learning rate as high as 0.9 the
# test accuracy jumps by a point or more from one epoch to the next, so a single final
# epoch is a noisy summary. The table gives the last epoch, the mean and the spread
# (standard deviation) of the last three, and the best epoch.

# %%
def last_epochs(history, k=3):
    """Mean and spread of the test accuracy over the last k epochs, and the best epoch's."""
    tail = history["test_acc"].tail(k)
    return {"last epoch": tail.iloc[-1], f"mean of last {len(tail)}": tail.mean(),
            f"spread of last {len(tail)}": tail.std(ddof=0), "best epoch": history["test_acc"].max()}


variants = {"ReLU only": dict(activation="relu"), "max pool only": dict(pool="max"),
            "batch norm only": dict(batch_norm=True)}
ablation = {"LeNet-5 (sigmoid, avg pool)": last_epochs(result.history),
            "modern (all three)": last_epochs(modern_result.history)}
for label, change in variants.items():
    cnnbook.seed_everything(0)
    try:
        run = cnnbook.fit(LeNet5(**change), train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                          init="xavier", record=False, progress=False, live_plot=False)
        ablation[label] = last_epochs(run.history)
    except TrainingDiverged as err:   # a NaN loss: the history so far is kept on the error
        ablation[label] = {"last epoch": float("nan"), "diverged in epoch":
                           len(err.result.history) + 1}
ablation = pd.DataFrame(ablation).T
print(ablation.round(3).to_string())
best = ablation["best epoch"]
base = best["LeNet-5 (sigmoid, avg pool)"]
gains = (best[list(variants)] - base).dropna()
if len(gains):
    print(f"largest single gain over LeNet-5 (best epochs): {gains.idxmax()}, "
          f"{100 * gains.max():+.1f} points; all three together: "
          f"{100 * (best['modern (all three)'] - base):+.1f} points")
diverged = [v for v in variants if ablation.loc[v, "last epoch"] != ablation.loc[v, "last epoch"]]
print(f"diverged at lr {cfg.lr}: {', '.join(diverged) or 'none'}")
chance = 1 / 10   # ten classes
stuck = [v for v in variants if v not in diverged and best[v] < chance + 0.05]
print(f"never left chance accuracy ({chance:.2f}) at lr {cfg.lr}: {', '.join(stuck) or 'none'}")

# %% [markdown]
# Read the table row by row: the lines printed under it name the single change that buys
# the most, and whether any variant diverged (a NaN loss) or never left chance accuracy at
# this learning rate. Compare the spread column with the differences between rows: a gap
# smaller than the spread is not one you can trust from a single seed. If a variant
# diverged or stayed at chance, suspect the learning rate first: d2l chose 0.9 for
# the sigmoid network, and without batch norm nothing keeps a ReLU network's activations
# in range at such a rate ([chapter 10](10_batch_norm.ipynb) measures what batch norm
# does to the usable learning rates).
#
# ## 8. Inside the trained network
#
# The first layer's six 5x5 kernels, red for positive weights and blue for negative
# ones (each kernel on its own colour scale):

# %%
fig = viz.plot_kernels(first_conv(net_fit).weight, ncols=6, scale=1.3,
                       title="LeNet-5: conv1 kernels after training")
fig = viz.plot_kernels(first_conv(modern).weight, ncols=6, scale=1.3,
                       title="modern LeNet: conv1 kernels after training")

# %% [markdown]
# Most kernels are a blob of one sign next to a blob of the other: they respond to a
# change of brightness in one direction, an edge, like the oriented simple cells of
# [chapter 01](01_biology_of_vision.ipynb). With only 5x5 weights and 6 channels, the first layer cannot be much more
# than a small bank of edge and blob detectors.
#
# What those detectors do to one test image: the activations of the first stage (6 maps
# of 28x28) and of the second (16 maps of 10x10), each taken just before its pool:

# %%
image = X_test[:1]
maps = capture(net_fit, image, ["stage1.act", "stage2.act"])
fig = viz.show_images(image, titles=[names[int(y_test[0])]], ncols=1, scale=2)
fig = viz.plot_feature_maps(maps["stage1.act"][0], ncols=6, title="after stage 1 (6 x 28 x 28)")
fig = viz.plot_feature_maps(maps["stage2.act"][0], ncols=8, title="after stage 2 (16 x 10 x 10)")
print({name: tuple(m.shape) for name, m in maps.items()})

# %% [markdown]
# The first stage's maps are still recognisably the garment, each lit where its kernel's
# edge is present: outlines, the left or right side, the bright fabric. After the second
# stage the maps are coarse and abstract, a 10x10 code for "what is where" that the fully
# connected layers turn into a class.
#
# ### Explore: any image, any layer
#
# The `FeatureMapExplorer` below runs the trained LeNet-5 on an image you choose: a test
# image (by number, or the n-th of a class), a bundled photograph, or one of your own
# (the *your image* button), shifted, rotated, inverted or made noisy. Pick a layer to see
# all its channels, or *one channel* to see it enlarged beside the 5x5 kernel that made it;
# the bars on the left are the predicted class probabilities.

# %%
from cnnbook.widgets import FeatureMapExplorer

explorer = FeatureMapExplorer(net_fit, test_iter.images, labels=test_iter.labels,
                              class_names=names)
print(f"layers: {', '.join(explorer.layers)}; this picture took "
      f"{explorer.state['render_ms']:.0f} ms")
explorer

# %% [markdown]
# Things to try: shift a sandal by a few pixels and watch the stage-1 maps shift with it
# (convolution is equivariant, [chapter 02](02_convolution_math.ipynb)); does the prediction hold? Rotate it by 90° or
# invert it, which no training image ever was: which classes take over? A photo of your
# own clothes has a chance only as a light garment on a dark background, like the
# training images (the message line says when to tick *invert*).

# %% [markdown]
# ## Optional: where the pipeline's time goes
#
# Section 5 printed how much faster `fit` is than `train_ch6` on the same arithmetic. Four
# things differ:
#
# - **Per-image work.** d2l's `FashionMNIST` dataset returns one image at a time: it turns
#   a row of the uint8 array into a PIL image, `ToTensor` turns that into a float tensor,
#   and the `DataLoader` stacks 256 of them into a batch. That is a few Python function
#   calls per image, 60,000 times an epoch. `load_data` keeps the split as one uint8
#   tensor; a batch is one indexing operation and one conversion to float.
# - **Worker processes.** To hide that per-image work, d2l's loaders run 4 worker
#   processes that prepare batches and send them to the training process through shared
#   memory. On a GPU machine with many cores that overlap pays; on a 2-core laptop the
#   workers compete with the training for the same two cores, and every epoch starts them
#   anew. `load_data` needs no workers.
# - **No synchronisation per step.** `train_ch6` adds the loss and accuracy of each batch
#   to Python floats (`float(l)`), which makes the program wait for the device at every
#   step. `fit` accumulates them in tensors on the device and reads them only every 25
#   steps, so a GPU never sits idle waiting for Python (on a CPU this matters less).
# - **channels_last.** On the CPU, `fit` stores the model's weights and `load_data` the
#   images in the channels-last memory layout (height, width, channel), for which
#   PyTorch's oneDNN convolution kernels are faster.
#
# The next cell isolates the first two causes: one pass over the training images, with
# no network at all, through each pipeline.

# %%
def data_epoch_seconds(loader):
    """Seconds to draw every batch of one epoch (and touch it), without any model."""
    start = time.perf_counter()
    total = 0.0
    for Xb, yb in loader:
        total += float(Xb[:, :, 0, 0].sum())
    return time.perf_counter() - start

data_only = pd.Series({"d2l DataLoader (4 workers)": data_epoch_seconds(d2l_train),
                       "cnnbook TensorLoader": data_epoch_seconds(train_iter)},
                      name="seconds per epoch, data only")
print(data_only.round(2).to_string())
print(f"per epoch, the data alone costs d2l {data_only.iloc[0] / data_only.iloc[1]:.0f}x as much time")

# %% [markdown]
# The cell above prints the time of one epoch of data alone; multiply by the number of
# epochs and compare it with the gap between the two training runs of section 5.

# %% [markdown]
# ## Summary
#
# - LeNet-5 (LeCun et al., 1989 and 1998) combined local receptive fields, shared weights
#   and subsampling, trained end to end by backpropagation. d2l's version: two stages of
#   5x5 conv + sigmoid + 2x2 average pool (6 and 16 channels), then fully connected
#   layers 400 -> 120 -> 84 -> 10; 61,706 parameters.
# - The convolutions do most of the computation with few parameters; the first fully
#   connected layer holds most of the parameters with little computation.
# - Trained with d2l's recipe (SGD, lr 0.9, batch 256, 10 epochs), `cnnbook.fit` reaches
#   the accuracy of `d2l.train_ch6` in well under half the time on a CPU: whole uint8
#   tensors cut into batches instead of per-image PIL work in worker processes, no
#   per-step synchronisation, and channels-last convolutions.
# - ReLU, max pooling and batch norm make the same network learn faster and better.
#
# ## Exercises
#
# **Exercise 1 (cost by hand).** Write `lenet_macs(image_size)`: the number of
# multiply-adds of one forward pass of `lenet5(image_size=image_size)` for a grey image,
# counting convolutions (each output value of a $k \times k$ conv over $c$ input channels
# costs $c k^2$) and linear layers (one per weight), and nothing else (pooling, biases and
# activations are free in this count), from the formula: do not build the network (the
# hidden test fails an answer that builds a module). The test compares with PyTorch's counter.

# %% nbgrader={"grade": false, "grade_id": "ex-05-lenet-macs", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lenet_macs(image_size: int) -> int:
    """Multiply-adds of LeNet-5 (6 and 16 channels, 120, 84, 10 units) for one image."""
    ### BEGIN SOLUTION
    s1 = image_size                      # conv1: padding 2 keeps the size
    conv1 = s1 * s1 * 6 * 1 * 25
    s2 = s1 // 2 - 4                     # pool halves, conv2 trims 4
    conv2 = s2 * s2 * 16 * 6 * 25
    features = 16 * (s2 // 2) ** 2
    return conv1 + conv2 + features * 120 + 120 * 84 + 84 * 10
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-05-lenet-macs-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from cnnbook.profiling import count_flops

for _size in (28, 32, 64):
    _expected = count_flops(lenet5(image_size=_size), (1, 1, _size, _size)) // 2
    assert lenet_macs(_size) == _expected, (_size, lenet_macs(_size), _expected)
print("lenet_macs agrees with PyTorch's FLOP counter")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.models.lenet import lenet5 as _lenet5

_sizes = (36 + 4 * torch.randperm(6, generator=generator(501))[:3]).tolist()
agrees(lenet_macs, lambda s: count_flops(_lenet5(image_size=s), (1, 1, s, s)) // 2, [(s,) for s in _sizes],
       forbid=("torch.nn.Module.__init__", "torch.nn.Module.__call__", "torch.nn.Module.parameters"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (LeNet's original C3).** In the 1998 paper, the 16 maps of C3 (our second
# convolution) do not all see the 6 maps of S2. Table I of the paper wires them so: maps
# 0-5 each see 3 neighbouring input maps, maps 6-11 see 4 neighbouring ones, maps 12-14
# see 4 non-neighbouring ones, map 15 sees all 6. The reason given: fewer connections,
# and different maps are forced to learn different features. Write
# `MaskedConv2d(in_channels, out_channels, kernel_size, table)`, a subclass of
# `nn.Conv2d` whose output map `j` only depends on the input maps `i` with
# `table[i, j] == True` (multiply the weight by a fixed mask in `forward`; register the
# mask as a buffer). Then `effective_params(conv)` should count only the weights that can
# be nonzero, plus the biases: 1,516 for C3, as the paper says.

# %% nbgrader={"grade": false, "grade_id": "ex-05-c3-table", "locked": false, "schema_version": 3, "solution": true, "task": false}
import torch.nn.functional as F


class MaskedConv2d(nn.Conv2d):
    """A convolution whose output channel j sees only the input channels i with table[i, j]."""

    def __init__(self, in_channels, out_channels, kernel_size, table, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        ### BEGIN SOLUTION
        table = torch.as_tensor(table, dtype=torch.bool)
        assert table.shape == (in_channels, out_channels)
        self.register_buffer("mask", table.T.float()[:, :, None, None])
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)
        ### END SOLUTION


def effective_params(conv: MaskedConv2d) -> int:
    """Weights that the mask lets through, plus the biases."""
    ### BEGIN SOLUTION
    kernel = conv.kernel_size[0] * conv.kernel_size[1]
    return int(conv.mask.sum().item()) * kernel + conv.out_channels
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-05-c3-table-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_C3 = ["X...XXX..XXXX.XX", "XX...XXX..XXXX.X", "XXX...XXX..X.XXX",
       ".XXX..XXXX..X.XX", "..XXX..XXXX.XX.X", "...XXX..XXXX.XXX"]  # rows: S2 maps
_table = torch.tensor([[c == "X" for c in row] for row in _C3])
assert _table.sum(0).tolist() == [3] * 6 + [4] * 9 + [6]
_c3 = MaskedConv2d(6, 16, 5, _table)
assert effective_params(_c3) == 1_516
_x = torch.randn(2, 6, 14, 14, requires_grad=True)
_y = _c3(_x)
assert _y.shape == (2, 16, 10, 10)
_y[:, 0].sum().backward()          # output map 0 sees input maps 0, 1, 2 only
_seen = _x.grad.abs().sum(dim=(0, 2, 3)) > 0
assert _seen.tolist() == _table[:, 0].tolist()
print("C3 wired as in 1998:", effective_params(_c3), "parameters")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()
_g = generator(502)
for _ci, _co, _k in ((4, 5, 3), (7, 3, 1), (2, 9, 5)):
    _t = torch.rand(_ci, _co, generator=_g) < 0.5
    _t[0] = True                                     # every output map sees some input
    _conv = MaskedConv2d(_ci, _co, _k, _t.tolist() if _k == 1 else _t, padding=1)
    same(effective_params(_conv), int(_t.sum()) * _k * _k + _co, what="effective_params")
    _x = torch.randn(2, _ci, 7, 6, generator=_g)
    _want = F.conv2d(_x, _conv.weight * _t.T.float()[:, :, None, None], _conv.bias, padding=1)
    same(_conv(_x).detach(), _want.detach(), what="MaskedConv2d output")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (receptive field).** How many input pixels can one unit of `stage2`'s
# output (a 5x5 map) see? Write `receptive_field(layers)` for a list of `(kernel, stride)`
# pairs applied in order, returning the side of the input square that influences one
# output unit. (A layer with kernel $k$ widens the field by $(k-1)$ times the product of
# the strides *before* it.) The test checks your formula on LeNet against the gradient of
# one output unit with respect to the input image.

# %% nbgrader={"grade": false, "grade_id": "ex-05-receptive-field", "locked": false, "schema_version": 3, "solution": true, "task": false}
def receptive_field(layers) -> int:
    """Side of the input region seen by one output unit of a chain of (kernel, stride) layers."""
    ### BEGIN SOLUTION
    field, jump = 1, 1
    for k, s in layers:
        field += (k - 1) * jump
        jump *= s
    return field
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-05-receptive-field-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_lenet_layers = [(5, 1), (2, 2), (5, 1), (2, 2)]  # conv1, pool1, conv2, pool2
_probe = lenet5()
_img = torch.rand(1, 1, 28, 28, requires_grad=True)
_out = _probe.stage2(_probe.stage1(_img))
_out[0, :, 2, 2].sum().backward()                 # the centre unit of the 5x5 map
_rows = (_img.grad[0, 0].abs().sum(1) > 0).nonzero()
assert receptive_field(_lenet_layers) == int(_rows.max() - _rows.min() + 1)
assert receptive_field([(3, 1), (3, 1)]) == 5 and receptive_field([(3, 2), (3, 2)]) == 7
print("one unit after stage 2 sees", receptive_field(_lenet_layers), "x",
      receptive_field(_lenet_layers), "pixels")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(layers):
    _f, _j = 1, 1
    for _k, _s in layers:
        _f += (_k - 1) * _j
        _j *= _s
    return _f


_g = generator(503)
agrees(receptive_field, _ref, [([tuple(int(v) for v in torch.randint(1, 6, (2,), generator=_g)) for _ in range(n)],)
                               for n in (0, 1, 2, 3, 5)])
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - K. Fukushima (1980). *Neocognitron: A self-organizing neural network model for a
#   mechanism of pattern recognition unaffected by shift in position.* Biological
#   Cybernetics 36.
# - Y. LeCun, B. Boser, J. S. Denker, D. Henderson, R. E. Howard, W. Hubbard, L. D. Jackel
#   (1989). *Backpropagation Applied to Handwritten Zip Code Recognition.* Neural
#   Computation 1(4).
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner (1998). *Gradient-Based Learning Applied to
#   Document Recognition.* Proceedings of the IEEE 86(11).
# - X. Glorot, Y. Bengio (2010). *Understanding the difficulty of training deep
#   feedforward neural networks.* AISTATS (Xavier initialisation).
# - H. Xiao, K. Rasul, R. Vollgraf (2017). *Fashion-MNIST: a Novel Image Dataset for
#   Benchmarking Machine Learning Algorithms.* arXiv:1708.07747.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, section
#   7.6 "Convolutional Neural Networks (LeNet)". Cambridge University Press.
