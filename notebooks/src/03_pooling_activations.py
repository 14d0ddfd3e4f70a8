# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 · Pooling and activations
#
# [Chapter 02](02_convolution_math.ipynb) built the convolution: a small kernel slid over the image, the same weights
# at every position. A convolutional network needs two more pieces between its
# convolutions. A **pooling** layer summarises each small window of a feature map by one
# number, so the map shrinks and small shifts of the input matter less. An **activation
# function** bends each value through a fixed nonlinearity; without it a stack of
# convolutions would collapse into one big linear filter. Both are tiny pieces of code
# with a large effect on what a network can learn and how fast it learns it.
#
# **What you will learn**
#
# - max, average, global and adaptive pooling: the formulas, a from-scratch
#   implementation, and what each keeps and throws away;
# - how much shift-invariance pooling buys, measured rather than asserted;
# - why global average pooling replaced the big fully connected heads of the 2012 networks,
#   and how adaptive pooling takes inputs of any size;
# - four advanced variants, stochastic, mixed, learnable and attention pooling, and how they
#   compare in a small network;
# - the activation functions of modern CNNs, from ReLU to GELU, Swish, Mish and hard-swish:
#   their formulas, their derivatives and their speed;
# - why ReLU units can "die" when the learning rate is high, measured in a trained network.

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.activations import (ACTIVATIONS, Swish, compare_activations, dead_fraction,
                                 formula_table, gradient_vanishes_below, make_activation,
                                 time_activations, zero_grad_fraction)
from cnnbook.equivariance import representation_change, shifted_accuracy
from cnnbook.inspect import capture
from cnnbook.photos import load_photo
from cnnbook.pooling import (POOLING_LAYERS, AttentionPool2d, LearnablePool2d, MixedPool2d,
                             StochasticPool2d, adaptive_bins)
from cnnbook.profiling import count_params
from cnnbook.results import collect
from cnnbook.summary import show_source
from cnnbook.train import init_weights

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # epochs / limit / test_limit / batch_size: the two small training experiments
    # (limit: class-balanced training images, None = all 60,000); lr: Adam's usual rate,
    # high_lr: the "too high" one of the dead-unit experiment; timing_numel /
    # timing_repeats: the speed comparison of the activations; check: assert the
    # experiments' expected outcome (only when they are long enough to be meaningful)
    "smoke": dict(epochs=1, limit=640, test_limit=256, batch_size=128, lr=1e-3,
                  high_lr=1e-2, timing_numel=2**18, timing_repeats=5, check=False),
    "cpu":   dict(epochs=2, limit=10_000, test_limit=None, batch_size=128, lr=1e-3,
                  high_lr=1e-2, timing_numel=2**20, timing_repeats=20, check=True),
    "full":  dict(epochs=10, limit=None, test_limit=None, batch_size=128, lr=1e-3,
                  high_lr=1e-2, timing_numel=2**22, timing_repeats=50, check=True),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# The two training experiments of this chapter (sections 5 and 9) use a small network on
# 28-pixel Fashion-MNIST, so the `cpu` profile can afford them: 2 epochs on a
# class-balanced sixth of the training set (10,000 images) for each of twelve runs, a few
# minutes on a 2-core CPU. `full` trains on all 60,000 images for 10 epochs; `smoke`
# trains one epoch on 640 images just to run every cell, too little for the outcome to
# mean anything, so it checks nothing.
#
# # Part A: pooling
#
# ## 1. The idea and its history
#
# Hubel and Wiesel's *complex cells* ([chapter 01](01_biology_of_vision.ipynb)) respond to an edge of one orientation
# anywhere within their receptive field: they pool the responses of several simple cells
# and forget exactly where the edge was. Fukushima's Neocognitron (1980) copied this as
# layers of "C-cells" between its feature-detecting "S-cells", and LeNet (LeCun et al.,
# 1989, 1998) kept the idea as **subsampling** layers: average a 2x2 window, multiply by a
# learned coefficient, add a bias.
#
# Taking the **maximum** instead of the mean came from models of the visual cortex
# (Riesenhuber and Poggio's HMAX, 1999) and was found to work better for learned features
# (Ranzato et al., 2007; Jarrett et al., 2009; Scherer, Müller and Behnke, 2010); Boureau,
# Ponce and LeCun (2010) analysed why: when a feature is rare, the max reports whether it
# occurred at all, while the mean dilutes it with the empty positions around it. AlexNet
# (2012) and VGG (2014) used max pooling throughout; Network in Network (Lin, Chen and Yan,
# 2013) introduced **global average pooling** to replace the fully connected classifier,
# and most networks since end with it.
#
# In formulas, for a $k \times k$ window and stride $s$, output position $(i, j)$ of a
# map $X$ is
#
# $$\text{max: } Z_{i,j} = \max_{0 \le u, v < k} X_{is + u,\, js + v}, \qquad
#   \text{average: } Z_{i,j} = \frac{1}{k^2}\sum_{0 \le u, v < k} X_{is + u,\, js + v}.$$
#
# Pooling has **no parameters**, acts on **each channel separately** (so it keeps the
# number of channels), and its output side follows the same rule as a convolution's:
# $\lfloor (n + 2p - k)/s \rfloor + 1$.
#
# ## 2. Pooling from scratch
#
# d2l's version, with stride 1 and no padding: slide the window and take the max or the
# mean of what lies under it.

# %%
def pool2d(X, pool_size, mode="max"):
    """Max or average pooling of a 2-D tensor, window pool_size = (p_h, p_w), stride 1."""
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            window = X[i: i + p_h, j: j + p_w]
            Y[i, j] = window.max() if mode == "max" else window.mean()
    return Y


X = torch.arange(9.0).reshape(3, 3)
print(X)
print("max:\n", pool2d(X, (2, 2)))
print("avg:\n", pool2d(X, (2, 2), "avg"))

# %% [markdown]
# PyTorch's layers do the same with a stride equal to the window by default
# (`nn.MaxPool2d(2)` moves 2 pixels at a time), which is why they halve a map. Here both
# are run with stride 1 and checked against our loop on a random map:

# %%
R = torch.randn(6, 7)
assert torch.allclose(pool2d(R, (2, 3)), F.max_pool2d(R[None, None], (2, 3), stride=1)[0, 0])
assert torch.allclose(pool2d(R, (2, 3), "avg"),
                      F.avg_pool2d(R[None, None], (2, 3), stride=1)[0, 0], atol=1e-6)
X4 = torch.arange(16.0).reshape(1, 1, 4, 4)
print("MaxPool2d(3) on a 4x4 map:", tuple(nn.MaxPool2d(3)(X4).shape))
print("MaxPool2d(3, padding=1, stride=2):\n", nn.MaxPool2d(3, padding=1, stride=2)(X4))
X2 = torch.cat([X4, X4 + 1], dim=1)  # two channels
print("two channels in, two out:", tuple(nn.MaxPool2d(3, padding=1, stride=2)(X2).shape))

# %% [markdown]
# The first print shows the default stride: a 3x3 window on a 4x4 map fits once. Max
# pooling pads with $-\infty$, so padding never wins the max. The last print shows that
# the channels pass through untouched: pooling mixes positions, never channels.
#
# ## 3. What max and average keep
#
# The comparison of the two in words: the max keeps the **salient** response of each
# window and loses its exact position; the average keeps a smoothed version of the
# **whole** window and blurs what is thin. The difference is largest on sparse maps, such
# as the output of an edge detector after a ReLU. The cell below takes the camera photo
# of [chapter 01](01_biology_of_vision.ipynb), detects vertical edges with a Sobel kernel and a ReLU, and pools the map
# with 4x4 windows both ways.

# %%
photo = load_photo("camera", size=256)
sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
edges = F.relu(F.conv2d(photo[None, None], sobel[None, None], padding=1))
pooled = {"max 4x4": F.max_pool2d(edges, 4), "avg 4x4": F.avg_pool2d(edges, 4)}
fig = viz.show_images([photo, edges[0, 0], *[p[0, 0] for p in pooled.values()]],
                      titles=["photo", "edges (Sobel + ReLU)", *pooled], ncols=4, scale=2.6)
sparsity = float((edges == 0).float().mean())
peak = {name: float(p.max() / edges.max()) for name, p in pooled.items()}
print(f"{sparsity:.0%} of the edge map is exactly zero; the strongest pooled value is "
      f"{peak['max 4x4']:.2f} (max) and {peak['avg 4x4']:.2f} (avg) of the strongest edge")

# %% [markdown]
# Much of the edge map is exactly zero (the cell prints how much), so a 4x4 average mixes
# every thin edge with the empty pixels next to it: thin edges fade and the peak drops.
# Max pooling keeps every edge at full strength, one pixel of output per window, thicker
# and blockier than before: the presence of the edge survives, its exact position within
# the window does not.
#
# ## 4. How much invariance does pooling buy?
#
# Pooling is said to make a network **invariant to small translations**. [Chapter 01](01_biology_of_vision.ipynb)
# measured it on a photo; here we measure how it depends on the kind of pooling and on
# the window. `representation_change(f, X, dy, dx)` shifts a batch of images by
# `(dy, dx)` pixels and returns the mean relative change of `f`'s output,
# $\lVert f(\text{shifted}) - f(X)\rVert / \lVert f(X)\rVert$: 0 means invariant. The
# feature extractor is a random 3x3 convolution with 16 channels and a ReLU; the images
# are 256 Fashion-MNIST test images.

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          limit=cfg.limit, test_limit=cfg.test_limit)
X_probe = torch.cat([X for X, _ in test_iter])[:256].float()
torch.manual_seed(0)
features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU())
heads = {"none": nn.Identity(), "max 2x2": nn.MaxPool2d(2), "avg 2x2": nn.AvgPool2d(2),
         "max 4x4": nn.MaxPool2d(4), "avg 4x4": nn.AvgPool2d(4),
         "global max": nn.AdaptiveMaxPool2d(1), "global avg": nn.AdaptiveAvgPool2d(1)}
invariance = pd.DataFrame({
    name: {f"shift {d} px": representation_change(nn.Sequential(features, head), X_probe, 0, d)
           for d in (1, 2, 3, 4)}
    for name, head in heads.items()}).T
invariance.round(3)

# %%
assert (invariance.iloc[1:, 0] < invariance.loc["none", "shift 1 px"]).all()
assert invariance.loc["global avg"].max() < invariance.loc["max 4x4"].min()

# %% [markdown]
# Read the table above by rows. Every pooling changes less than the raw feature map, and
# the larger the window, the less the output moves; global pooling, one number per
# channel for the whole image, barely notices a shift (only what leaves the frame or enters
# it changes the sum). Read it by columns too: a 2x2 pool forgives a 1-pixel shift much
# better than a 2-pixel one, because a shift by exactly the stride moves every value into
# the next window, and the output simply moves by one cell. Pooling buys *local*
# invariance, up to about the size of its window; stacking several pooling layers makes
# the tolerated shift grow with depth, as the receptive fields do. (Azulay and Weiss, 2019,
# showed that this invariance is far from perfect in real CNNs: a shift of one pixel can
# change a prediction, because striding samples the map and ignores the sampling theorem.)
#
# ## 5. Global average pooling and adaptive pooling
#
# AlexNet and VGG flatten their last feature map and feed it to fully connected layers.
# VGG-16's last map is 512 x 7 x 7, so its first fully connected layer alone has
# $25{,}088 \times 4{,}096$ weights. Global average pooling (GAP) averages each channel over
# all positions instead: 512 numbers, whatever the size of the map, and the classifier
# needs only one small linear layer (Lin et al., 2013). The cell counts the parameters of
# both heads for 1,000 classes.

# %%
with torch.device("meta"):  # shapes only: no memory, no time spent on random weights
    vgg_head = nn.Sequential(nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(),
                             nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))
    gap_head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000))
head_params = pd.Series({"flatten + 3 FC (VGG)": count_params(vgg_head),
                         "GAP + 1 FC": count_params(gap_head)}, name="parameters")
print(head_params.map("{:,}".format).to_string())
print(f"GAP's head has {head_params.iloc[0] / head_params.iloc[1]:.0f}x fewer parameters")

# %% [markdown]
# Fewer parameters means less to overfit, which is why GAP also acts as a regulariser;
# and since every channel is averaged over the image, each channel must become a detector
# of "its" class feature wherever it appears. The price: where in the image something
# was is gone before the classifier sees it.
#
# **Adaptive pooling** generalises this: `nn.AdaptiveAvgPool2d((h, w))` chooses the
# windows itself so that the output is always $h \times w$, for any input size. Global
# pooling is the case $(1, 1)$; torchvision's VGG and AlexNet use `(7, 7)` before the
# classifier so they accept images larger than 224 pixels. How does it choose the windows?
# `adaptive_bins` reproduces PyTorch's rule:

# %%
show_source(adaptive_bins);

# %%
print("10 cells -> 4 bins:", adaptive_bins(10, 4))
print(" 7 cells -> 3 bins:", adaptive_bins(7, 3))
for side in (224, 256, 300):
    out = nn.AdaptiveAvgPool2d((7, 7))(torch.randn(1, 512, side // 32, side // 32))
    print(f"a {side}-px image: last map {side // 32}x{side // 32} -> {tuple(out.shape[2:])}")

# %% [markdown]
# The bins have nearly equal lengths and may overlap by one cell when the sizes do not
# divide (10 into 4 gives windows of 3 cells, the middle ones sharing a cell). The test
# file `tests/test_pooling.py` checks that averaging over these bins gives exactly
# `F.adaptive_avg_pool2d`.
#
# ## 6. Advanced pooling
#
# Max and average are fixed rules. Several variants let the data decide, or add noise to
# regularise. `cnnbook.pooling` holds four, as plain `nn.Module`s that shrink a map like
# `nn.MaxPool2d(k, stride)`.
#
# **Stochastic pooling** (Zeiler and Fergus, 2013). In training, each window outputs one
# of its (non-negative, post-ReLU) values $a_i$, drawn with probability
# $p_i = a_i / \sum_j a_j$: usually the largest, but sometimes a smaller one, a kind of
# dropout for pooling. At test time it outputs the expectation $\sum_i p_i a_i$, which lies
# between the mean and the max.

# %%
show_source(StochasticPool2d);

# %% [markdown]
# `forward` cuts the map into windows with `F.unfold` (the im2col of [chapter 02](02_convolution_math.ipynb)), then in
# training draws one index per window by inverse-CDF sampling: a uniform number $u$, and
# the first position where the running sum of the window passes $u$ times its total. On
# one window, $(1, 3, 0, 4)$, the eval output is $(1 + 9 + 16)/8$, and the training draws
# follow the probabilities $1/8, 3/8, 0, 4/8$:

# %%
window = torch.tensor([1.0, 3.0, 0.0, 4.0]).view(1, 1, 2, 2)
spool = StochasticPool2d(2, generator=torch.Generator().manual_seed(0))
print("eval:", spool.eval()(window).item(), "  max:", window.max().item(),
      "  mean:", window.mean().item())
draws = spool.train()(window.expand(4000, 1, 2, 2)).flatten()
print("share of 4000 training draws:",
      {v: round(float((draws == v).float().mean()), 3) for v in (1.0, 3.0, 0.0, 4.0)})

# %% [markdown]
# **Mixed pooling** runs max and average pooling side by side and lets a learned 1x1
# convolution fuse the $2C$ channels back to $C$: per channel, the network chooses its
# blend of peak and mean (Lee, Gallagher and Tu, 2016, study this family).
# **Learnable pooling** is a depthwise $k \times k$ convolution with stride $k$: one
# learned kernel per channel. Initialised to $1/k^2$ it *is* average pooling; training may
# move it anywhere. It is a close relative of the all-convolutional net (Springenberg et
# al., 2015), which replaced pooling with strided convolutions.
# **Attention pooling** scores each position with a 1x1 convolution and a sigmoid, weights
# the features by that map, then pools: it learns *where to look* before it summarises.

# %%
show_source(AttentionPool2d);

# %%
x = torch.relu(torch.randn(8, 16, 28, 28))
pool_table = pd.DataFrame({name: {"output shape": tuple(make(16)(x).shape),
                                  "parameters (16 channels)": count_params(make(16))}
                           for name, make in POOLING_LAYERS.items()}).T
pool_table

# %% [markdown]
# All six keep the channels and halve the map; the table lists their cost in parameters.
# Only mixed pooling's 1x1 fusion adds a noticeable number, and even that is small next
# to a convolution.
#
# ## 7. The six poolings in a network
#
# A small network with two conv-activation-pool stages and a fully connected head; the
# activation and the pooling are arguments, so the same code serves the activation
# experiment of Part B. With 28-pixel images and two poolings the last map is 7x7.

# %%
def small_net(act="relu", pool="max", width=16):
    """conv3x3 -> act -> pool -> conv3x3 -> act -> pool -> FC 128 -> act -> FC 10."""
    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1), make_activation(act), POOLING_LAYERS[pool](w),
        nn.Conv2d(w, 2 * w, 3, padding=1), make_activation(act), POOLING_LAYERS[pool](2 * w),
        nn.Flatten(), nn.Linear(2 * w * 7 * 7, 128), make_activation(act), nn.Linear(128, 10))


print(small_net())
print(f"{count_params(small_net()):,} parameters with max pooling")

# %% [markdown]
# Each pooling trains the same network from the same seed with Adam (learning rate
# `cfg.lr`, Kaiming initialisation). After training we score the test set twice: as it
# is, and with every image shifted by 2 pixels in each of the four directions
# (`shifted_accuracy`, the average of the four).

# %%
pool_runs = {}
for name in POOLING_LAYERS:
    cnnbook.seed_everything(0)
    model = small_net("relu", name)
    res = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                      optimizer="adam", init="kaiming", name=f"small_{name}_pool",
                      chapter="03", live_plot=False)
    shifted = shifted_accuracy(model, test_iter, shifts=(0, 2))
    pool_runs[name] = {"test acc": res.test_acc, "acc, shifted 2 px": shifted[2],
                       "examples/s": res.examples_per_sec}
pool_results = pd.DataFrame(pool_runs).T
print(pool_results.round({"test acc": 3, "acc, shifted 2 px": 3, "examples/s": 0}).to_string())

# %% [markdown]
# The table above is the outcome on your machine. The course's own `cpu` run, recorded
# when it was published (2 epochs on 10,000 images), is printed by the next cell.

# %%
recorded = collect("cpu", published=True)
if len(recorded):
    recorded = recorded[(recorded["chapter"] == "03") & recorded["name"].str.endswith("_pool")]
if len(recorded):
    recorded = (recorded.set_index("name")[["test_acc", "train_acc", "train_loss"]]
                .sort_values("test_acc"))
    print(recorded.round(3).to_string())
    weakest = recorded["test_acc"].idxmin()
    print(f"test accuracy from {recorded['test_acc'].min():.3f} ({weakest}) to "
          f"{recorded['test_acc'].max():.3f} ({recorded['test_acc'].idxmax()})")
    # the text's reading of the weakest run: it underfits (worst on its training images too)
    assert weakest == recorded["train_acc"].idxmin() == recorded["train_loss"].idxmax()
else:
    print("no published cpu records for chapter 03 here")

# %% [markdown]
# In that recorded run the six end between 0.741 (attention pooling) and 0.835 (mixed
# pooling), about nine points apart; the other five lie between 0.79 and 0.835. The
# weakest run is not overfitting: attention pooling also has the lowest accuracy on its
# own training images and the highest training loss, so it is simply learning more slowly.
# Its features pass through a sigmoid gate that starts untrained and must be learned along
# with everything else, and two short epochs are not enough for it to catch up. Part of
# the spread is noise (rerun with another seed and the order can change). Which pooling is
# best depends on the data, the network and the training budget, and none of the variants
# became standard. The other two columns of your table are more robust. Stochastic pooling
# is usually the slowest: it copies every window out with `unfold` and draws a random
# number for each, where max pooling is one optimised kernel. And every variant loses
# accuracy when the test images are shifted by 2 pixels: the invariance of section 4 is
# only partial. Max pooling remains the default inside networks, and global average
# pooling at their end.

# %%
if cfg.check and cnnbook.claims_checked(PROFILE):   # learning claims (not in make rehearse)
    assert pool_results["test acc"].min() > 0.7
    assert (pool_results["acc, shifted 2 px"] < pool_results["test acc"]).all()

# %% [markdown]
# # Part B: activation functions
#
# ## 8. Why a nonlinearity, and which one
#
# Two linear layers in a row are one linear layer: $W_2(W_1 x + b_1) + b_2 = (W_2 W_1) x
# + (W_2 b_1 + b_2)$, and the same holds for convolutions. Depth buys nothing without a
# nonlinear function between the layers:

# %%
lin1, lin2 = nn.Linear(5, 8), nn.Linear(8, 3)
W, b = lin2.weight @ lin1.weight, lin2.weight @ lin1.bias + lin2.bias
x = torch.randn(4, 5)
assert torch.allclose(lin2(lin1(x)), x @ W.T + b, atol=1e-6)
print("two linear layers == one linear layer with W = W2 W1:", tuple(W.shape))

# %% [markdown]
# The history in brief. Early networks, LeNet included, used the **sigmoid** and
# **tanh**, smooth and bounded like a neuron's firing rate. Both saturate: for large
# $|x|$ their derivative is almost zero, so gradients vanish through many layers. The
# **ReLU**, $\max(0, x)$, was popularised by Nair and Hinton (2010) and by Glorot, Bordes
# and Bengio (2011); AlexNet (2012) trained several times faster with it than with tanh.
# Its derivative is exactly 1 for positive inputs and exactly 0 for negative ones, and
# that zero is its weakness: a unit whose input is negative for every example gets no
# gradient and never recovers ("dying ReLU"). The next decade produced fixes:
#
# - **LeakyReLU** (Maas, Hannun and Ng, 2013): a small slope $a = 0.01$ on the negative side;
# - **PReLU** (He et al., 2015): the same with $a$ learned (initialised to 0.25);
# - **ELU** (Clevert, Unterthiner and Hochreiter, 2015): a smooth exponential negative side
#   that saturates at $-\alpha$, pushing the mean activation towards zero;
# - **ReLU6** (Krizhevsky, 2010; MobileNet, Howard et al., 2017): ReLU capped at 6, so the
#   values stay in a range that low-precision (8-bit) arithmetic represents well;
# - **GELU** (Hendrycks and Gimpel, 2016): $x\,\Phi(x)$, the input weighted by the
#   probability that a standard normal is below it; smooth and slightly non-monotonic;
# - **Swish** (Ramachandran, Zoph and Le, 2017, found by an automatic search): $x\,
#   \sigma(\beta x)$; with $\beta = 1$ it is the **SiLU** of Elfwing, Uchibe and Doya (2018);
# - **Mish** (Misra, 2019): $x \tanh(\operatorname{softplus}(x))$, a close cousin of Swish;
# - **hard-swish** (MobileNetV3, Howard et al., 2019): Swish with the sigmoid replaced by
#   a piecewise-linear ramp, cheap on phones and in 8-bit.
#
# `cnnbook.activations.ACTIVATIONS` keeps them all, with their formulas:

# %%
table = formula_table()
display(Markdown("| name | $f(x)$ | parameter | source |\n|---|---|---|---|\n" + "\n".join(
    f"| {r.name} | {r.formula} | {r.parameter} | {r.source} |" for r in table.itertuples())))

# %% [markdown]
# Each is a line or two of tensor code. Written from the formulas and checked against
# PyTorch's modules:

# %%
def relu(x):
    return torch.clamp(x, min=0)

def leaky_relu(x, a=0.01):
    return torch.where(x > 0, x, a * x)

def elu(x, alpha=1.0):
    return torch.where(x > 0, x, alpha * (torch.exp(x) - 1))

def swish(x, beta=1.0):
    return x * torch.sigmoid(beta * x)

def mish(x):
    return x * torch.tanh(F.softplus(x))

def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

def hard_swish(x):
    return x * torch.clamp(x + 3, 0, 6) / 6


xs = torch.linspace(-5, 5, 1001)
mine = {"relu": relu, "leaky_relu": leaky_relu, "elu": elu, "silu": swish, "mish": mish,
        "gelu_tanh": gelu_tanh, "hardswish": hard_swish}
for name, f in mine.items():
    assert torch.allclose(f(xs), make_activation(name)(xs), atol=1e-6), name
gap = (gelu_tanh(xs) - F.gelu(xs)).abs().max()
print(f"all {len(mine)} match PyTorch; the tanh approximation of GELU is off by at most "
      f"{gap:.1e} on [-5, 5]")

# %% [markdown]
# ## 9. The functions and their derivatives
#
# `compare_activations` evaluates the chosen functions on a grid and gets each derivative
# $f'(x)$ from autograd (every activation acts elementwise, so the gradient of
# $\sum_i f(x_i)$ with respect to $x_i$ is $f'(x_i)$). Three families on $[-4, 4]$:

# %%
families = {"classic": ["sigmoid", "tanh", "relu"],
            "the ReLU family": ["relu", "leaky_relu", "prelu", "elu", "relu6"],
            "smooth gates": ["silu", "mish", "gelu", "hardswish"]}
fig, axes = plt.subplots(2, 3, figsize=(13, 6.4))
for col, (title, names) in enumerate(families.items()):
    out = compare_activations(names, -4, 4)
    viz.plot_functions(out["x"], out["f"], title=f"{title}: f(x)", ax=axes[0, col])
    viz.plot_functions(out["x"], out["df"], title=f"{title}: f'(x)", ax=axes[1, col])
fig.tight_layout()

# %% [markdown]
# What the pictures show:
#
# - the sigmoid's derivative is at most $1/4$ and tanh's at most 1, both fading to zero on
#   either side: a product of many such factors vanishes;
# - the ReLU family has derivative 1 on the right, and differs only on the left: 0 for
#   ReLU, a small constant for LeakyReLU and PReLU, a decaying exponential for ELU;
#   ReLU6 also has derivative 0 above 6 (outside this plot);
# - the gates (SiLU, Mish, GELU, hard-swish) are nearly the identity for large positive
#   $x$ and nearly zero for large negative $x$, with a slightly negative dip in between:
#   their derivative is negative left of the dip and even exceeds 1 for moderate positive
#   $x$. SiLU, Mish and GELU are smooth; hard-swish is piecewise, its derivative a straight
#   line $(2x + 3)/6$ between $-3$ and $3$ that jumps at both ends.
#
# How much of a layer's input can pass a gradient back? For inputs drawn from a standard
# normal (roughly what a normalised layer receives), the share of exact zero gradients,
# the share below $10^{-3}$, and each function's value and slope at $x = -1$:

# %%
z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
probe = compare_activations(list(ACTIVATIONS), -1.0, 1.0, points=3)
grads = pd.DataFrame({name: {"f' = 0": zero_grad_fraction(name, z),
                             "|f'| < 1e-3": zero_grad_fraction(name, z, tol=1e-3),
                             "f(-1)": probe["at_minus_1"][name],
                             "f'(-1)": probe["grad_at_minus_1"][name]}
                      for name in ACTIVATIONS}).T
grads.round(3)

# %%
assert grads.loc["relu", "f' = 0"] > 0.49 and grads.loc["leaky_relu", "f' = 0"] == 0
assert grads.loc["gelu", "f'(-1)"] < 0 < grads.loc["elu", "f'(-1)"]
gates = ("gelu", "silu", "mish")
dips = compare_activations(gates, -3.0, 0.0, points=301)           # a grid step of 0.01
x_dip = {g: float(dips["x"][dips["f"][g].argmin()]) for g in gates}  # where each dip bottoms out
slope_at_minus_1 = grads.loc[list(gates), "f'(-1)"]
print("minimum at x = " + ", ".join(f"{g} {x_dip[g]:.2f}" for g in gates) + "; f'(-1) = "
      + ", ".join(f"{g} {slope_at_minus_1[g]:+.3f}" for g in gates))
for g in gates:   # the slope is negative left of the minimum and positive right of it
    assert (slope_at_minus_1[g] < 0) == (-1.0 < x_dip[g])
    assert (dips["df"][g][dips["x"] < x_dip[g] - 0.01] < 0).all()
assert x_dip["gelu"] > -1.0 > max(x_dip["silu"], x_dip["mish"])

# %% [markdown]
# ReLU passes no gradient for half of its inputs, ReLU6 for a little more (the inputs
# above 6 are rare for a standard normal); every other function passes some gradient for
# (almost) all of them. GELU, SiLU and Mish dip below zero left of the origin; the line
# above prints where each dip bottoms out (GELU at about $-0.75$, SiLU at $-1.28$, Mish
# at $-1.19$). Left of its minimum each has a *negative* slope: there a larger input
# gives a smaller output, the non-monotonic part. At $x = -1$ only GELU is already past
# its minimum, so only its $f'(-1)$ is negative ($-0.083$); SiLU's and Mish's are still
# small positive numbers ($+0.072$ and $+0.059$), as the table shows.
#
# ## 10. Speed
#
# An activation does a few arithmetic operations per element, far fewer than a
# convolution, so its time is mostly spent moving memory. `time_activations` runs forward
# and backward through each on one tensor of `cfg.timing_numel` values and reports the
# best of `cfg.timing_repeats` runs (other programs can only add time, so the fastest run
# is the closest to the function's own cost), and the ratio to ReLU's time.

# %%
speed = time_activations(numel=cfg.timing_numel, repeats=cfg.timing_repeats, device=device)
print(speed.round({"ms": 2, "vs relu": 2}).to_string(index=False))

# %% [markdown]
# The table above is your machine's answer, and on a shared or busy machine it varies
# from run to run. Two things usually stand out. Most functions cost within a small factor
# of ReLU, because they are memory-bound: reading and writing each value dominates, not the
# exponential. And `swish`, which our `Swish` module computes as three separate tensor
# operations (multiply, sigmoid, multiply), is slower than `silu`, *the same function*
# computed by one fused PyTorch kernel: how a function is implemented matters as much as
# its formula. Hard-swish was designed for phones, where exponentials are expensive and
# 8-bit arithmetic rewards piecewise-linear functions; on a desktop CPU it has little to
# win.
#
# ## 11. Explore
#
# Pick activations in the list (Ctrl- or Shift-click for several), widen the range to see
# ReLU6's second flat part, or move LeakyReLU's slope and Swish's $\beta$: $\beta = 0$
# gives the straight line $x/2$, a large $\beta$ approaches ReLU. The legend of the right
# panel gives the share of the range where $f'$ is exactly zero.

# %%
from cnnbook.widgets.activations import ActivationExplorer

ActivationExplorer(selected=("relu", "leaky_relu", "gelu", "swish", "relu6"), x_min=-4,
                   x_max=8)

# %% [markdown]
# ## 12. Dying ReLUs, measured
#
# A ReLU unit is **dead** when its input is negative for every example: its output is
# always zero, its gradient too, so no training step can change its weights and it stays
# dead. A large learning rate is the usual cause: one big step can push a unit's bias or
# weights so far that no image activates it again. `dead_fraction(act, pre)` counts, in
# one layer, the units whose gradient $|f'(z)|$ stays below $10^{-3}$ for every image of a
# batch (and, for a convolution, every position: a convolutional unit is a channel, whose
# weights are shared over the map). By this measure LeakyReLU's units never die (its
# slope is 0.01), and GELU's only when their input stays below about $-3.81$: left of
# that point $|f'| \le 10^{-3}$. The cell below finds the point with
# `gradient_vanishes_below` and prints it for GELU and SiLU; for LeakyReLU it is
# $-\infty$.

# %%
show_source(dead_fraction);
print("|f'| <= 1e-3 for every input below: "
      + ", ".join(f"{a} {gradient_vanishes_below(a):.2f}" for a in ("gelu", "silu", "leaky_relu")))

# %% [markdown]
# The experiment: the network of section 7 (max pooling) with ReLU, LeakyReLU and GELU,
# trained with Adam at its usual learning rate `cfg.lr` and at a ten times larger one,
# `cfg.high_lr`, from the same starting weights. Before and after training we record the
# pre-activations of the three activated layers (`0`, `3` and `7` in the `nn.Sequential`:
# conv1, conv2 and fc1) on 256 test images and count the dead units.

# %%
X_dead = X_probe  # the 256 test images of section 4
layers = {"0": "conv1", "3": "conv2", "7": "fc1"}


def dead_units(model, act):
    """Share of dead units in each activated layer of small_net, on X_dead."""
    pre = capture(model, X_dead, list(layers))
    return {f"dead in {layers[k]}": dead_fraction(act, v) for k, v in pre.items()}


act_runs = {}
for act in ("relu", "leaky_relu", "gelu"):
    cnnbook.seed_everything(0)
    start = init_weights(small_net(act, "max"), "kaiming")
    act_runs[("at start", act)] = {"test acc": cnnbook.evaluate(start, test_iter)["acc"],
                                   **dead_units(start, act)}
    for lr in (cfg.lr, cfg.high_lr):
        cnnbook.seed_everything(0)   # the same starting weights for both learning rates
        model = small_net(act, "max")
        res = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.epochs, lr=lr,
                          optimizer="adam", init="kaiming", record=False, live_plot=False)
        act_runs[(f"lr {lr:g}", act)] = {"test acc": res.test_acc, **dead_units(model, act)}
dead = pd.DataFrame(act_runs).T.rename_axis(["when", "activation"])
dead.round(3)

# %% [markdown]
# Read the table above one activation at a time (the exact numbers depend on the machine
# and the profile). Some of ReLU's fc1 units are dead before training even starts: the
# pooled maps that feed fc1 come out of a ReLU, so they are never negative, and a unit
# whose weights are mostly negative is negative for every image. Training kills more of
# them, and at the high learning rate the dying reaches the convolutional layers too.
# LeakyReLU's units cannot die by construction, and GELU's rarely do. The dead units cost
# capacity, not necessarily accuracy: on an easy problem the surviving units still
# classify well, which makes dying ReLUs easy to overlook. Lower learning rates, careful
# initialisation and batch normalisation ([chapter 10](10_batch_norm.ipynb)), which keeps every unit's input
# centred, are the usual remedies; a leaky or smooth activation is the other.

# %%
dead_cols = [c for c in dead.columns if c.startswith("dead")]
share = dead[dead_cols].mean(axis=1)   # the mean over the three layers
high = f"lr {cfg.high_lr:g}"
print(f"mean share of dead units after training at lr {cfg.high_lr:g}: "
      + ", ".join(f"{a} {share[(high, a)]:.2f}" for a in ("relu", "leaky_relu", "gelu")))
assert (dead.xs("leaky_relu", level="activation")[dead_cols] == 0).all().all()
if cfg.check and cnnbook.claims_checked(PROFILE):   # learning claims (not in make rehearse)
    assert share[(high, "relu")] > share[("at start", "relu")]
    assert share[(high, "relu")] > share[(high, "gelu")]

# %% [markdown]
# ## Summary
#
# - Pooling summarises each window of each channel by one number: the **max** keeps the
#   strongest response and forgets its position, the **average** keeps a blurred summary
#   of the whole window. Neither has parameters; both shrink the map like a convolution
#   with the same window and stride.
# - Pooling buys **local** translation invariance, about as large as its window; a shift
#   by the stride moves the output by one cell instead.
# - **Global average pooling** replaces the flatten-and-fully-connected head with one
#   number per channel, cutting the head's parameters by orders of magnitude; **adaptive
#   pooling** picks its windows to give a fixed output size for any input.
# - Stochastic, mixed, learnable and attention pooling let noise or learned weights into
#   the summary; on small problems they trade speed for little or no accuracy.
# - Without a nonlinearity, depth collapses into one linear map. ReLU made deep networks
#   trainable, but its zero gradient on the left lets units die at high learning rates.
#   LeakyReLU, PReLU and ELU keep a gradient there; GELU, SiLU/Swish and Mish are smooth,
#   slightly non-monotonic gates; ReLU6 and hard-swish are built for low-precision devices.
#
# ## Exercises
#
# **Exercise 1 (pooling with stride and padding).** Extend `pool2d` of section 2: write
# `pool2d_full(X, k, stride, padding, mode)` for a 2-D tensor `X`, a square window `k`, a
# stride and a zero-or-more padding on every side. Pad with $-\infty$ for max pooling
# (padding must never win) and with zeros for average pooling, dividing by $k^2$ (this is
# PyTorch's default, `count_include_pad=True`). The test compares with `F.max_pool2d` and
# `F.avg_pool2d`.

# %% nbgrader={"grade": false, "grade_id": "ex-03-pool2d-full", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pool2d_full(X, k, stride, padding=0, mode="max"):
    """Max or average pooling of a 2-D tensor with a k x k window, stride and padding."""
    ### BEGIN SOLUTION
    fill = float("-inf") if mode == "max" else 0.0
    Xp = F.pad(X, (padding,) * 4, value=fill)
    h = (Xp.shape[0] - k) // stride + 1
    w = (Xp.shape[1] - k) // stride + 1
    Y = torch.zeros(h, w)
    for i in range(h):
        for j in range(w):
            window = Xp[i * stride: i * stride + k, j * stride: j * stride + k]
            Y[i, j] = window.max() if mode == "max" else window.sum() / k ** 2
    return Y
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-03-pool2d-full-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_X = torch.randn(7, 9, generator=torch.Generator().manual_seed(1))
for _k, _s, _p in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (4, 3, 2), (2, 1, 0)]:
    _ref_max = F.max_pool2d(_X[None, None], _k, _s, _p)[0, 0]
    _ref_avg = F.avg_pool2d(_X[None, None], _k, _s, _p)[0, 0]
    assert torch.allclose(pool2d_full(_X, _k, _s, _p, "max"), _ref_max), (_k, _s, _p)
    assert torch.allclose(pool2d_full(_X, _k, _s, _p, "avg"), _ref_avg, atol=1e-6), (_k, _s, _p)
print("pool2d_full agrees with PyTorch")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(X, k, stride, padding=0, mode="max"):
    _f = F.max_pool2d if mode == "max" else F.avg_pool2d
    return _f(X[None, None], k, stride, padding)[0, 0]


_g = generator(301)
_cases = [(torch.randn(8, 11, generator=_g), 3, 3, 1, "max"), (torch.randn(8, 11, generator=_g), 3, 3, 1, "avg"),
          (torch.randn(5, 6, generator=_g) - 5, 2, 1, 1, "max"), (torch.randn(9, 4, generator=_g), 4, 2, 2, "avg")]
agrees(pool2d_full, _ref, _cases, atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (spatial pyramid pooling).** He et al. (2014) let a CNN take images of any
# size by pooling the last feature map at several fixed grids and concatenating the
# results. Write `spp(x, levels=(1, 2, 4))`: for a batch `x` of shape (N, C, H, W), max
# pool it adaptively to $l \times l$ for each level $l$, flatten each result to
# (N, C l²) and concatenate them into one (N, C (1 + 4 + 16)) tensor. The output length
# must not depend on H and W.

# %% nbgrader={"grade": false, "grade_id": "ex-03-spp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def spp(x, levels=(1, 2, 4)):
    """Spatial pyramid pooling: adaptive max pooling at each level, flattened and joined."""
    ### BEGIN SOLUTION
    return torch.cat([F.adaptive_max_pool2d(x, l).flatten(1) for l in levels], dim=1)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-03-spp-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_g = torch.Generator().manual_seed(2)
for _h, _w in [(13, 13), (7, 20), (4, 4)]:
    _x = torch.randn(2, 3, _h, _w, generator=_g)
    _out = spp(_x)
    assert _out.shape == (2, 3 * 21), (_h, _w, _out.shape)
    assert torch.allclose(_out[:, :3], _x.amax(dim=(2, 3)))          # level 1: global max
    _bins_r, _bins_c = adaptive_bins(_h, 2), adaptive_bins(_w, 2)  # level 2, channel 0
    _level2 = torch.stack([torch.stack([_x[:, 0, r0:r1, c0:c1].amax(dim=(1, 2))
                                        for c0, c1 in _bins_c]) for r0, r1 in _bins_r])
    assert torch.allclose(_out[:, 3:7], _level2.permute(2, 0, 1).reshape(2, 4))
assert spp(torch.randn(1, 5, 9, 9), levels=(1, 3)).shape == (1, 5 * 10)
print("spp gives", spp(torch.randn(1, 3, 30, 17)).shape[1], "numbers for any image size")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(x, levels=(1, 2, 4)):
    return torch.cat([F.adaptive_max_pool2d(x, l).flatten(1) for l in levels], dim=1)


_g = generator(302)
agrees(spp, _ref, [(torch.randn(3, 2, 11, 6, generator=_g),), (torch.randn(1, 4, 9, 9, generator=_g), (2, 3)),
                   (torch.randn(2, 3, 5, 17, generator=_g), (1, 5))])
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (the gradient of max pooling).** In the backward pass, max pooling sends
# each output's gradient to the one input that was the maximum of its window, and
# nothing to the others; average pooling spreads it evenly over the window. Write
# `max_pool_backward(X, grad_out, k)` for a 2-D `X` with non-overlapping $k \times k$
# windows (stride $k$, sides divisible by $k$, distinct values): return $\partial L /
# \partial X$ given $\partial L / \partial Z$ = `grad_out`. Do it without autograd; the
# test compares with autograd.

# %% nbgrader={"grade": false, "grade_id": "ex-03-max-pool-backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_pool_backward(X, grad_out, k):
    """dL/dX of k x k max pooling with stride k, given dL/dZ (grad_out)."""
    ### BEGIN SOLUTION
    grad = torch.zeros_like(X)
    for i in range(grad_out.shape[0]):
        for j in range(grad_out.shape[1]):
            window = X[i * k:(i + 1) * k, j * k:(j + 1) * k]
            u, v = divmod(int(window.argmax()), k)
            grad[i * k + u, j * k + v] = grad_out[i, j]
    return grad
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-03-max-pool-backward-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_g = torch.Generator().manual_seed(3)
for _k, (_h, _w) in [(2, (6, 8)), (3, (9, 6)), (4, (8, 8))]:
    _X = torch.randn(_h, _w, generator=_g, requires_grad=True)
    _Z = F.max_pool2d(_X[None, None], _k)[0, 0]
    _G = torch.randn(_Z.shape, generator=_g)
    (_Z * _G).sum().backward()
    _mine = max_pool_backward(_X.detach(), _G, _k)
    assert torch.allclose(_mine, _X.grad), _k
    assert int((_mine != 0).sum()) == _Z.numel()   # one input per window gets the gradient
print("max pooling routes each gradient to its window's maximum")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref(X, grad_out, k):
    _X = X.clone().requires_grad_(True)
    (F.max_pool2d(_X[None, None], k)[0, 0] * grad_out).sum().backward()
    return _X.grad


_g = generator(303)
agrees(max_pool_backward, _ref, [(torch.randn(h, w, generator=_g), torch.randn(h // k, w // k, generator=_g), k)
                                 for k, h, w in [(2, 4, 10), (5, 10, 5), (3, 12, 9)]])
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (GELU's dip).** GELU, $x\,\Phi(x)$, is not monotonic: it dips below zero
# left of the origin and has a single minimum there. Find it: write `gelu_minimum()`
# returning `(x_star, f_star)`, the location and value of the minimum of `F.gelu`, both
# to within $10^{-4}$. Derive the condition $f'(x) = \Phi(x) + x\,\varphi(x) = 0$ and solve
# it numerically (bisection or Newton's method on $f'$, using `torch.special.ndtr` for
# $\Phi$ or autograd for $f'$); a grid search fine enough to reach $10^{-4}$ is allowed too.

# %% nbgrader={"grade": false, "grade_id": "ex-03-gelu-minimum", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gelu_minimum():
    """(x*, GELU(x*)) at the minimum of GELU."""
    ### BEGIN SOLUTION
    def slope(x):
        x = torch.tensor(x, dtype=torch.float64)
        return float(torch.special.ndtr(x) + x * torch.exp(-x * x / 2) / math.sqrt(2 * math.pi))

    lo, hi = -2.0, 0.0        # slope(-2) < 0 < slope(0)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
    x_star = (lo + hi) / 2
    return x_star, float(F.gelu(torch.tensor(x_star, dtype=torch.float64)))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-03-gelu-minimum-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_xs, _fs = gelu_minimum()
_grid = torch.linspace(-3, 1, 400_001, dtype=torch.float64)
_vals = F.gelu(_grid)
assert abs(_xs - float(_grid[_vals.argmin()])) < 1e-4, _xs
assert abs(_fs - float(_vals.min())) < 1e-4, _fs
print(f"GELU's minimum: f({_xs:.4f}) = {_fs:.4f}")
### BEGIN HIDDEN TESTS
from cnnbook.grading import same
_xs2, _fs2 = gelu_minimum()
same((_xs2, _fs2), (-0.7517916, -0.1699712), atol=1e-4, rtol=0.0, what="gelu_minimum()")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 5 (revive a dead unit).** Show that a dead ReLU unit stays dead and a
# LeakyReLU unit does not. Write `steps_to_revive(act, steps=200, lr=0.1)`: a single unit
# $y = f(w x + b)$ with $w = 1$ and $b = -5$ (dead for every input in $[-1, 1]$), trained by
# plain gradient descent on the loss $\text{mean}\,(y - t)^2$ with inputs
# `x = torch.linspace(-1, 1, 64)` and targets `t = x.clamp(min=0)` (a ReLU is the
# right answer). Return the number of the first step after which the unit is alive
# (its pre-activation $w x + b$ positive for some input), or `None` if it never is within
# `steps`. Use `make_activation(act)` for $f$. The test also runs LeakyReLU and ELU with
# `lr=1.0`. Then, untested, think about GELU: far left of zero its derivative
# $\Phi(z) + z\,\varphi(z)$ is tiny but *negative*. Which way does a gradient step move
# the bias, and can GELU's unit come back?

# %% nbgrader={"grade": false, "grade_id": "ex-03-revive", "locked": false, "schema_version": 3, "solution": true, "task": false}
def steps_to_revive(act, steps=200, lr=0.1):
    """First gradient step after which the unit f(w x + b), started at b = -5, is alive."""
    ### BEGIN SOLUTION
    f = make_activation(act)
    w = torch.tensor(1.0, requires_grad=True)
    b = torch.tensor(-5.0, requires_grad=True)
    x = torch.linspace(-1, 1, 64)
    t = x.clamp(min=0)
    for step in range(1, steps + 1):
        loss = ((f(w * x + b) - t) ** 2).mean()
        gw, gb = torch.autograd.grad(loss, (w, b))
        with torch.no_grad():
            w -= lr * gw
            b -= lr * gb
            if bool((w * x + b > 0).any()):
                return step
    return None
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-03-revive-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert steps_to_revive("relu") is None
_leaky = steps_to_revive("leaky_relu", steps=5000, lr=1.0)
_elu = steps_to_revive("elu", steps=5000, lr=1.0)
assert _leaky is not None and _elu is not None, (_leaky, _elu)
print(f"ReLU: never; LeakyReLU revives after {_leaky} steps, ELU after {_elu}")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees
from cnnbook.activations import make_activation as _ma


def _ref(act, steps=200, lr=0.1):
    _f = _ma(act)
    _w = torch.tensor(1.0, requires_grad=True)
    _b = torch.tensor(-5.0, requires_grad=True)
    _xx = torch.linspace(-1, 1, 64)
    _t = _xx.clamp(min=0)
    for _step in range(1, steps + 1):
        _gw, _gb = torch.autograd.grad(((_f(_w * _xx + _b) - _t) ** 2).mean(), (_w, _b))
        with torch.no_grad():
            _w -= lr * _gw
            _b -= lr * _gb
            if bool((_w * _xx + _b > 0).any()):
                return _step
    return None


agrees(steps_to_revive, _ref, [("leaky_relu", 3000, 0.7), ("elu", 3000, 1.3), ("relu", 50, 2.0), ("elu", 5, 1.0)])
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - D. H. Hubel, T. N. Wiesel (1962). *Receptive fields, binocular interaction and
#   functional architecture in the cat's visual cortex.* Journal of Physiology 160.
# - K. Fukushima (1980). *Neocognitron: A self-organizing neural network model for a
#   mechanism of pattern recognition unaffected by shift in position.* Biological
#   Cybernetics 36.
# - Y. LeCun, L. Bottou, Y. Bengio, P. Haffner (1998). *Gradient-Based Learning Applied to
#   Document Recognition.* Proceedings of the IEEE 86(11).
# - M. Riesenhuber, T. Poggio (1999). *Hierarchical models of object recognition in
#   cortex.* Nature Neuroscience 2.
# - M. Ranzato, F. J. Huang, Y. Boureau, Y. LeCun (2007). *Unsupervised learning of
#   invariant feature hierarchies with applications to object recognition.* CVPR.
# - K. Jarrett, K. Kavukcuoglu, M. Ranzato, Y. LeCun (2009). *What is the best multi-stage
#   architecture for object recognition?* ICCV.
# - D. Scherer, A. Müller, S. Behnke (2010). *Evaluation of pooling operations in
#   convolutional architectures for object recognition.* ICANN.
# - Y. Boureau, J. Ponce, Y. LeCun (2010). *A theoretical analysis of feature pooling in
#   visual recognition.* ICML.
# - V. Nair, G. E. Hinton (2010). *Rectified linear units improve restricted Boltzmann
#   machines.* ICML.
# - A. Krizhevsky (2010). *Convolutional deep belief networks on CIFAR-10.* Technical
#   report (ReLU6).
# - X. Glorot, A. Bordes, Y. Bengio (2011). *Deep sparse rectifier neural networks.*
#   AISTATS.
# - A. Krizhevsky, I. Sutskever, G. E. Hinton (2012). *ImageNet classification with deep
#   convolutional neural networks.* NeurIPS.
# - A. L. Maas, A. Y. Hannun, A. Y. Ng (2013). *Rectifier nonlinearities improve neural
#   network acoustic models.* ICML workshop (LeakyReLU).
# - M. D. Zeiler, R. Fergus (2013). *Stochastic pooling for regularization of deep
#   convolutional neural networks.* ICLR.
# - M. Lin, Q. Chen, S. Yan (2013). *Network in network.* arXiv:1312.4400 (global average
#   pooling).
# - K. He, X. Zhang, S. Ren, J. Sun (2014). *Spatial pyramid pooling in deep convolutional
#   networks for visual recognition.* ECCV.
# - K. He, X. Zhang, S. Ren, J. Sun (2015). *Delving deep into rectifiers: surpassing
#   human-level performance on ImageNet classification.* ICCV (PReLU, Kaiming
#   initialisation).
# - J. T. Springenberg, A. Dosovitskiy, T. Brox, M. Riedmiller (2015). *Striving for
#   simplicity: the all convolutional net.* ICLR workshop.
# - D.-A. Clevert, T. Unterthiner, S. Hochreiter (2015). *Fast and accurate deep network
#   learning by exponential linear units (ELUs).* arXiv:1511.07289.
# - C.-Y. Lee, P. W. Gallagher, Z. Tu (2016). *Generalizing pooling functions in
#   convolutional neural networks: mixed, gated, and tree.* AISTATS.
# - D. Hendrycks, K. Gimpel (2016). *Gaussian error linear units (GELUs).*
#   arXiv:1606.08415.
# - A. G. Howard et al. (2017). *MobileNets: efficient convolutional neural networks for
#   mobile vision applications.* arXiv:1704.04861.
# - P. Ramachandran, B. Zoph, Q. V. Le (2017). *Searching for activation functions.*
#   arXiv:1710.05941 (Swish).
# - S. Elfwing, E. Uchibe, K. Doya (2018). *Sigmoid-weighted linear units for neural
#   network function approximation in reinforcement learning.* Neural Networks 107 (SiLU).
# - A. Howard et al. (2019). *Searching for MobileNetV3.* ICCV (hard-swish).
# - D. Misra (2019). *Mish: a self regularized non-monotonic neural activation function.*
#   arXiv:1908.08681.
# - A. Azulay, Y. Weiss (2019). *Why do deep convolutional networks generalize so poorly to
#   small image transformations?* JMLR 20.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, sections
#   5.1 (activations) and 7.5 "Pooling". Cambridge University Press.
