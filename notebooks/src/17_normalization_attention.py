# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 17 · Normalisation and attention
#
# [Chapter 10](10_batch_norm.ipynb) introduced batch normalisation, and chapters
# [11](11_resnet.ipynb)-[14](14_comparison.ipynb) used it in every block without asking
# whether it was the only choice. It is not. Batch norm's statistics come from the *other
# images in the batch*, which is a weakness whenever batches are small: detection,
# segmentation, video and large images often train with 1-8 images per GPU. A family of
# normalisations followed that compute their statistics elsewhere. This chapter builds all
# of them from scratch and measures where batch norm breaks.
#
# The second half is about *attention inside a CNN*: small modules that let a layer
# rescale its own feature map using a summary of the whole map. Squeeze-and-excitation
# (SE) decides which channels matter for this image; CBAM adds *where* in the image to look.
# Both are cheap in parameters, but not free in time, so we compare them with a plain
# ResNet at **equal training time**, not equal epochs.
#
# **What you will learn**
#
# - the history and the one idea behind batch, layer, instance, group and switchable
#   normalisation: *which values share one mean and variance*, drawn as Wu & He's cubes;
# - each of them from scratch, checked against PyTorch's module in outputs **and**
#   gradients (switchable norm, which PyTorch lacks, against its parts and a direct formula);
# - batch norm at batch sizes 2-8, measured: how noisy its statistics become, and a short
#   CIFAR-10 training of the same ResNet with batch norm and with group norm;
# - squeeze-and-excitation (Hu et al., 2018) and CBAM (Woo et al., 2018) with the sources'
#   settings, and a residual block with CBAM before the addition;
# - what SE and CBAM add to a small ResNet on CIFAR-10 when every variant gets the same
#   training time; and CBAM's spatial attention maps on real test images.

# %%
import itertools
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

import cnnbook
from cnnbook.data.catalog import info
from cnnbook.inspect import capture
from cnnbook.models.attention import (CBAM, AttentionResidual, ChannelAttention,
                                      SpatialAttention, SqueezeExcite, attention_factory)
from cnnbook.models.cifar_resnet import cifar_resnet, group_norm as group_norm_layer
from cnnbook.models.mobilenet import SqueezeExcitation
from cnnbook.models.norms import (BatchNorm, GroupNorm, InstanceNorm2d, LayerNorm,
                                  SwitchableNorm2d, batch_statistics_noise, group_norm,
                                  instance_norm, layer_norm, switchable_norm)
from cnnbook.profiling import count_macs, count_params
from cnnbook.summary import show_source
from cnnbook.widgets.normalization import NormalizationExplorer, plot_norm_cubes

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # noise_*: the batch-statistics noise measurement (pool of images, random batches);
    # small_batches / normal_batch / norm_images / norm_groups: the BN-vs-GN training (every
    # run sees norm_images training images, lr scaled linearly with the batch size);
    # att_*: SE and CBAM vs a plain ResNet of att_depth layers, each given att_budget_s
    # seconds of training (None: att_steps steps each), evaluated att_evals times;
    # test_limit: test images used for every accuracy
    "smoke": dict(noise_pool=64, noise_trials=20, small_batches=(2, 8), normal_batch=32,
                  norm_images=16, norm_groups=8, train_limit=2_000, test_limit=100,
                  att_depth=8, att_batch=16, att_budget_s=None, att_steps=1, att_evals=1,
                  probe_steps=1),
    "cpu":   dict(noise_pool=512, noise_trials=200, small_batches=(2, 4, 8), normal_batch=32,
                  norm_images=1_920, norm_groups=8, train_limit=None, test_limit=2_000,
                  att_depth=8, att_batch=128, att_budget_s=40, att_steps=None, att_evals=3,
                  probe_steps=2),
    "full":  dict(noise_pool=2_048, noise_trials=500, small_batches=(2, 4, 8), normal_batch=32,
                  norm_images=50_000, norm_groups=8, train_limit=None, test_limit=None,
                  att_depth=20, att_batch=128, att_budget_s=600, att_steps=None, att_evals=10,
                  probe_steps=20),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")
chapter_start = time.perf_counter()

# %% [markdown]
# The `cpu` profile keeps every experiment but shortens it: the batch-size comparison
# trains each network on 1,920 images (4% of an epoch), and each attention variant gets
# 40 seconds of training. That is enough to measure the noise of batch statistics and
# the cost of attention, and gives a first look at BN vs GN with tiny batches; it is far
# too short to measure the accuracy SE and CBAM add on a
# converged network (about one percentage point in the papers), which is what the `full`
# profile (ResNet-20, ten minutes per variant on a GPU) is for.
#
# ## 1. The idea and its history: which values share a mean and a variance
#
# Every method in this chapter computes, for a feature map $x$ of shape
# $(N, C, H, W)$,
#
# $$y = \gamma\,\frac{x-\mu_\mathcal{S}}{\sqrt{\sigma^2_\mathcal{S}+\epsilon}} + \beta ,$$
#
# where $\mu_\mathcal{S}$ and $\sigma^2_\mathcal{S}$ are the mean and (biased) variance of
# a **set $\mathcal{S}$ of values** that contains $x$. They differ only in the set:
#
# | method | statistics over | proposed by | made for |
# |---|---|---|---|
# | batch norm | $(N, H, W)$: one channel, all images of the batch | Ioffe & Szegedy, 2015 | ImageNet classification |
# | layer norm | $(C, H, W)$: one image, all its channels | Ba, Kiros & Hinton, 2016 | recurrent nets; today every Transformer |
# | instance norm | $(H, W)$: one image, one channel | Ulyanov, Vedaldi & Lempitsky, 2016 | style transfer (remove each image's contrast) |
# | group norm | one image, a group of $C/G$ channels | Wu & He, 2018 ($G = 32$) | detection and segmentation with 1-2 images per GPU |
# | switchable norm | a learned mix of IN, LN and BN statistics | Luo, Ren, Peng, Zhang & Li, 2019 | letting each layer choose |
#
# Only batch norm mixes images: an image's output depends on which other images share its
# batch, so training and inference must differ (running averages at test time,
# [chapter 10](10_batch_norm.ipynb)), and with 2 images per batch the statistics are
# estimated from very few values. The other three use one image at a time and behave
# identically in training and inference. Group norm interpolates: $G=1$ is layer norm (over
# $C$, $H$, $W$, with a per-channel scale), $G=C$ is instance norm. Wu & He's Figure 2 draws
# each set as a shaded part of an $N \times C \times (H \cdot W)$ cube; here it is, computed by
# `pooled_mask` (blue: the values that share the statistics of one chosen value):

# %%
fig = plot_norm_cubes(("batch", "layer", "instance", "group"), shape=(6, 6, 6), groups=3)

# %% [markdown]
# ## 2. Each one from scratch, and checked against PyTorch
#
# `cnnbook.models.norms` holds the from-scratch versions. Batch norm is
# [chapter 10](10_batch_norm.ipynb)'s `batch_norm` (reused, not rewritten). Layer, instance
# and group norm are a few lines each; the only thing that changes is the set of dimensions
# averaged over:

# %%
show_source(layer_norm);
show_source(instance_norm);
show_source(group_norm);

# %% [markdown]
# Group norm's trick is a reshape: $(N, C, H, W) \to (N, G, C/G \cdot H \cdot W)$, so a
# group's values lie in one row, normalised like layer norm; then back, and a per-channel
# scale and shift.
#
# Switchable normalisation has no PyTorch module. It computes the instance statistics
# once and derives the other two from them (the layer mean is the mean of the instance
# means; the variance comes from $E[x^2]-E[x]^2$), then mixes them with softmax weights
# learned by backpropagation like any other parameter:

# %%
show_source(switchable_norm);

# %% [markdown]
# ### Is it really PyTorch's layer? Outputs and gradients
#
# We give each from-scratch module and PyTorch's the same non-trivial scale and shift,
# feed the same input (every example and channel with its own offset and spread, so nothing
# is normalised already), and compare the outputs and `torch.autograd.grad` of a loss with
# respect to the input and every parameter. In float64, what remains is rounding. Batch
# norm is compared in training mode (two steps, so the running statistics update) and
# then in evaluation mode, where it uses them.

# %%
def twin_gap(ours, theirs, x, steps=1):
    """Largest absolute difference between two modules in output and every gradient."""
    worst = 0.0
    for step in range(steps):
        xs = [(x + step).clone().requires_grad_() for _ in range(2)]
        target = torch.randn_like(x)
        outs = []
        for m, xi in zip((ours, theirs), xs):
            y = m(xi)
            grads = torch.autograd.grad(((y - target) ** 2).sum(), [xi, *m.parameters()])
            outs.append((y, *grads))
        for a, b in zip(*outs):
            worst = max(worst, (a - b).abs().max().item())
    return worst


def same_affine(ours, theirs):
    """Copy random scale and shift (and any other parameters) into both modules."""
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            p.uniform_(0.5, 1.5)
            q.copy_(p)
    return ours, theirs


torch.manual_seed(0)
shape = (4, 64, 6, 6)
x = (torch.randn(shape, dtype=torch.float64) * torch.rand(4, 64, 1, 1, dtype=torch.float64) * 3
     + torch.randn(4, 64, 1, 1, dtype=torch.float64) * 2)
pairs = {
    "BatchNorm2d, train": (BatchNorm(64), nn.BatchNorm2d(64)),
    "LayerNorm (C, H, W)": (LayerNorm(shape[1:]), nn.LayerNorm(shape[1:])),
    "GroupNorm(32)": (GroupNorm(32, 64), nn.GroupNorm(32, 64)),
    "InstanceNorm2d (affine)": (InstanceNorm2d(64, affine=True), nn.InstanceNorm2d(64, affine=True)),
}
gaps = {}
for label, (ours, theirs) in pairs.items():
    ours, theirs = same_affine(ours.double(), theirs.double())
    gaps[label] = twin_gap(ours, theirs, x, steps=2)
bn_ours, bn_theirs = pairs["BatchNorm2d, train"]
gaps["BatchNorm2d, running stats"] = max(
    (bn_ours.running_mean - bn_theirs.running_mean).abs().max().item(),
    (bn_ours.running_var - bn_theirs.running_var).abs().max().item())
gaps["BatchNorm2d, eval"] = twin_gap(bn_ours.eval(), bn_theirs.eval(), x)
equality = pd.Series(gaps, name="largest difference (output and gradients)")
print(equality.map(lambda v: f"{v:.1e}").to_string())
assert (equality < 1e-9).all()

# %% [markdown]
# Every entry printed above is at the level of float64 rounding (the cell asserts below
# 1e-9), for the outputs and for the gradients with respect to the input, $\gamma$ and
# $\beta$. Switchable norm: with all its weight on one kind it must *be* that kind, and
# with a random mix it must equal the mix computed directly from each kind's definition
# (`x.mean(dims)`, `x.var(dims)`), gradients included (the tests in
# `tests/models/test_norms.py` check the same and more):

# %%
def one_hot(k):
    w = torch.zeros(3, dtype=torch.float64)
    w[k] = 1.0
    return w

references = {"instance": F.instance_norm(x), "layer": F.layer_norm(x, x.shape[1:]),
              "batch": F.batch_norm(x, None, None, training=True)}
for k, (kind, ref) in enumerate(references.items()):
    y = switchable_norm(x, one_hot(k), one_hot(k))[0]
    print(f"all weight on {kind:8s}: largest difference from PyTorch's {kind} norm "
          f"{(y - ref).abs().max():.1e}")
    assert torch.allclose(y, ref, atol=1e-9)

logits = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
xg = x.clone().requires_grad_()
mw, vw = logits.softmax(1)
y = switchable_norm(xg, mw, vw)[0]
dims = {"instance": (2, 3), "layer": (1, 2, 3), "batch": (0, 2, 3)}
mean = sum(w * xg.mean(d, keepdim=True) for w, d in zip(mw, dims.values()))
var = sum(w * xg.var(d, unbiased=False, keepdim=True) for w, d in zip(vw, dims.values()))
direct = (xg - mean) / torch.sqrt(var + 1e-5)
g1 = torch.autograd.grad(y.square().sum(), [xg, logits], retain_graph=True)  # the weights feed both
g2 = torch.autograd.grad(direct.square().sum(), [xg, logits])
mix_gap = max((y - direct).abs().max().item(),
              *[(a - b).abs().max().item() for a, b in zip(g1, g2)])
print(f"random mix {mw.detach().numpy().round(2)} (means), {vw.detach().numpy().round(2)} "
      f"(variances): largest difference from the direct formula {mix_gap:.1e}")
assert mix_gap < 1e-9

# %% [markdown]
# `SwitchableNorm2d` wraps this with learned logits (starting equal: 1/3 each) and running
# statistics for its batch part. A network that uses it learns, layer by layer, how much
# batch statistics to trust; the paper reports that detection layers trained with small
# batches drift towards the instance and layer statistics.

# %%
sn = SwitchableNorm2d(64)
print(sn, "starting weights:", [w.detach().numpy().round(3) for w in sn.mixing_weights()])

# %% [markdown]
# ### The normalisation explorer
#
# Pick a normalisation, the batch size, the number of channels and groups, and a cell
# (example, channel). The left panel shades the cells that share its mean and variance;
# the right panel shows, per example, the mean and spread of the input (each example has
# its own brightness and contrast) and of the output. Things to try: layer norm gives every
# example mean 0 and std 1, batch norm does not; with batch norm, the chosen example's
# output changes when the rest of the batch changes (the title says by how much), with
# group norm it never does; batch norm with one 1x1 image has nothing to average and
# says so.

# %%
NormalizationExplorer()

# %% [markdown]
# ## 3. Batch norm with tiny batches, measured
#
# ### How noisy are the batch statistics?
#
# Batch norm normalises with the mean and standard deviation *of the current batch*. At
# test time it uses running averages instead. The closer each batch's statistics are to
# those averages, the less the network notices the switch. We take real feature maps
# (the first convolution of a ResNet applied to CIFAR-10 training images), draw many
# random batches of each size, and measure how much the per-channel batch mean and batch
# standard deviation wander from batch to batch, in units of the channel's overall
# standard deviation.

# %%
train_iter, test_iter = cnnbook.load_data("cifar10", batch_size=cfg.normal_batch,
                                          limit=cfg.train_limit, test_limit=cfg.test_limit,
                                          normalize=True, augment=True)
print(f"{train_iter.num_examples:,} training and {test_iter.num_examples:,} test images")
pool = torch.cat([X for X, _ in itertools.islice(iter(train_iter), 1 + cfg.noise_pool // cfg.normal_batch)])
pool = pool[:cfg.noise_pool]
cnnbook.seed_everything(0)
features = capture(cifar_resnet(8), pool, ["stem.conv"])["stem.conv"]
batch_sizes = sorted({1, *cfg.small_batches, cfg.normal_batch, 128} & set(range(1, len(pool) // 2 + 1)))
noise = pd.DataFrame(batch_statistics_noise(features, batch_sizes, trials=cfg.noise_trials)).T
noise.index.name = "batch size"
print(noise.round(3))
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.loglog(noise.index, noise["mean_noise"], "o-", label="batch mean")
ax.loglog(noise.index, noise["std_noise"], "s-", label="batch std")
ax.loglog(noise.index, noise["mean_noise"].iloc[0] / noise.index.to_numpy() ** 0.5, "k--", lw=0.8,
          label=r"$\propto 1/\sqrt{B}$")
ax.set_xlabel("batch size B")
ax.set_ylabel("spread across batches\n(in channel std units)")
ax.legend()
ax.set_title("batch norm's statistics are noisy at small B")
ratio = noise.loc[min(cfg.small_batches), "mean_noise"] / noise.loc[cfg.normal_batch, "mean_noise"]
print(f"the batch mean wanders {ratio:.1f}x more at B={min(cfg.small_batches)} than at "
      f"B={cfg.normal_batch} (1/sqrt(B) predicts {(cfg.normal_batch / min(cfg.small_batches)) ** 0.5:.1f}x)")
assert ratio > 2

# %% [markdown]
# The table and plot above: the spread of the batch mean falls roughly like $1/\sqrt{B}$
# (the dashed line), the rate of a mean of $B$ independent values: it is the *images*
# that count, not the $B \cdot H \cdot W$ positions, because the positions of one image
# move together (a dark image is dark everywhere). The printout compares the measured
# ratio with $1/\sqrt{B}$ (the measured one is a little larger because the batches are
# drawn without replacement from a finite pool). With two images per batch, what batch
# norm subtracts and divides by is off by a sizeable fraction of a standard deviation
# (the table's first rows), differently at every step, and training never sees the running
# averages it will use at test time. Group norm's statistics come from one image, so they
# do not depend on $B$ at all.
#
# ### The same ResNet with batch norm and with group norm, at batch sizes 2 to 32
#
# We train the CIFAR ResNet of `cnnbook.models.cifar_resnet` (ResNet-8: one basic block
# per stage, 16-32-64 channels) twice at each batch size, once with `nn.BatchNorm2d` and
# once with `nn.GroupNorm` (`norm_layer=group_norm(8)`: 8 groups; the paper's 32 groups
# assume at least 64 channels, and 32 groups of 16 channels would be instance norm).
# Every run sees the same number of training images; the learning rate follows the linear
# scaling rule (Goyal et al., 2017), $0.1 \cdot B / 32$, SGD with momentum 0.9. The test
# accuracy is measured in evaluation mode (batch norm with its running averages), as a
# deployed network would be. A training "epoch" here is a fixed number of batches, drawn
# from a fresh shuffle of the full training set:

# %%
class FirstBatches:
    """The first ``steps`` batches of a fresh pass over ``loader`` (cycling if needed), as
    one epoch for ``fit``: training for a set number of steps instead of whole epochs.
    The loader's shuffling restarts from ``seed``, so every run sees the same batches."""

    def __init__(self, loader, steps, seed=0):
        self.loader, self.steps = loader, max(1, int(steps))
        loader.generator.manual_seed(seed)
        self.batch_size, self.labels = loader.batch_size, loader.labels
        self.num_examples = loader.num_examples

    def __len__(self):
        return self.steps

    def __iter__(self):
        return itertools.islice(itertools.chain.from_iterable(itertools.repeat(self.loader)),
                                self.steps)

# %%
norm_rows = []
for batch in (*cfg.small_batches, cfg.normal_batch):
    loader = cnnbook.load_data("cifar10", batch_size=batch, limit=cfg.train_limit,
                               test_limit=cfg.test_limit, normalize=True, augment=True)[0]
    for label, norm_layer in (("BN", None), ("GN", group_norm_layer(cfg.norm_groups))):
        cnnbook.seed_everything(0)
        net = cifar_resnet(8, norm_layer=norm_layer)
        res = cnnbook.fit(net, FirstBatches(loader, cfg.norm_images // batch), test_iter, epochs=1,
                          lr=0.1 * batch / 32, momentum=0.9, name=f"resnet8_{label.lower()}_b{batch}",
                          chapter="17", progress=False, live_plot=False)
        norm_rows.append({"batch size": batch, "norm": label, "test_acc": res.test_acc,
                          "train_acc": res.history["train_acc"].iloc[-1],
                          "seconds": res.seconds})
norm_table = pd.DataFrame(norm_rows)
acc = norm_table.pivot(index="batch size", columns="norm", values="test_acc")
acc["GN - BN"] = acc["GN"] - acc["BN"]
print(f"test accuracy after {cfg.norm_images:,} training images:")
print(acc.round(3))
print(norm_table.pivot(index="batch size", columns="norm", values="seconds").round(1)
      .rename(columns=lambda c: f"{c} seconds"))

# %% [markdown]
# The first table above prints the test accuracy of each run and the difference GN - BN at
# each batch size; the second, the training time (small batches are slow on a CPU: many
# small steps). Read it row by row. Only the *difference* within a row is the point: the
# rows are not comparable with each other, because a batch of 32 takes 16 times fewer steps
# than a batch of 2 for the same images. What the numbers show is printed by the next
# cell, from the values themselves.

# %%
smallest, normal = min(cfg.small_batches), cfg.normal_batch
gap_small, gap_normal = acc.loc[smallest, "GN - BN"], acc.loc[normal, "GN - BN"]
print(f"GN - BN at B={smallest}: {gap_small:+.3f};  at B={normal}: {gap_normal:+.3f}")
print("at the smallest batch, group norm is", "ahead of" if gap_small > 0 else "behind",
      "batch norm; the gap", "shrinks" if gap_normal < gap_small else "does not shrink",
      "at the normal batch size")

# %% [markdown]
# The lines above print the gaps and say, from the values, whether the gap in favour of
# group norm is larger at the smallest batch than at the normal one. Wu & He report on
# ImageNet (ResNet-50, full training) that GN's error is flat from 32 images per GPU
# down to 2 while BN's grows sharply below 8. Two mechanisms work against batch norm at
# tiny batches: every training step normalises with noisy statistics (a noise injection
# that regularises a little at moderate batch sizes and hurts when it is large), and the
# network is evaluated with running averages that no training step ever used. Group norm
# does the same computation in training and evaluation, whatever the batch. Our runs are
# short (a few percent of an epoch) and single-seeded, so read a difference of a few
# points with care; exercise 4 adds a batch size of your choice.
#
# ## 4. Attention: squeeze-and-excitation and CBAM
#
# **Squeeze-and-excitation** (Hu, Shen & Sun, 2018; the winner of ImageNet 2017). A
# convolution mixes channels only locally. SE adds a global step: *squeeze* every channel
# to one number with global average pooling; *excite* with a small MLP (reduce by $r = 16$,
# ReLU, expand back, sigmoid) that outputs one gate in $(0,1)$ per channel; multiply each
# channel by its gate. The gates depend on the image, so the block can turn channels up or
# down per input; about 10% more parameters for ResNet-50, a fraction of a percent more
# multiply-adds, and 1-2 points of ImageNet accuracy.
#
# **CBAM** (Woo, Park, Lee & Kweon, 2018) refines this in two steps, applied in this order:
#
# - *channel attention*: the average-pooled **and** the max-pooled channel descriptors go
#   through **one shared** MLP (reduction 16); the two outputs are summed, then a sigmoid;
# - *spatial attention*: at every position, the mean and the max over the channels give two
#   maps; concatenated, a 7x7 convolution and a sigmoid turn them into one weight per
#   position, shared by all channels: *where* to look.
#
# Both papers put the module at the end of the residual branch, **before** the shortcut is
# added, so the identity path stays untouched. The code, from `cnnbook.models.attention`
# (the MLPs are 1x1 convolutions, equal to fully connected layers on the pooled vector):

# %%
show_source(SqueezeExcite);
show_source(ChannelAttention);
show_source(SpatialAttention);
show_source(CBAM);
show_source(AttentionResidual);

# %% [markdown]
# The shapes, the range of the weights, and that the channel MLP is one module used twice:

# %%
torch.manual_seed(0)
feat = torch.randn(2, 64, 8, 8)
cbam = CBAM(64)
print("input", tuple(feat.shape), "-> channel weights", tuple(cbam.channel.weights(feat).shape),
      "-> spatial map", tuple(cbam.spatial.weights(cbam.channel(feat)).shape),
      "-> output", tuple(cbam(feat).shape))
w = cbam.spatial.weights(feat)
print(f"spatial weights between {w.min():.3f} and {w.max():.3f}")
print("channel MLP (shared by the avg and max paths):", cbam.channel.mlp)
block = AttentionResidual(64, 128, stride=2, attention="cbam")
print("residual block with CBAM:", tuple(block(feat).shape))
assert 0 < w.min() and w.max() < 1

# %% [markdown]
# Our SE block is MobileNet V3's `SqueezeExcitation` ([chapter 13](13_mobilenet.ipynb)) with
# a sigmoid instead of the hard sigmoid: with the same weights the outputs agree.

# %%
se, se_v3 = SqueezeExcite(64), SqueezeExcitation(64, 4, gate=nn.Sigmoid)
se_v3.load_state_dict({"fc1.weight": se.mlp[0].weight, "fc1.bias": se.mlp[0].bias,
                       "fc2.weight": se.mlp[2].weight, "fc2.bias": se.mlp[2].bias})
se_gap = (se(feat) - se_v3(feat)).abs().max().item()
print(f"SE vs MobileNet's SqueezeExcitation: largest difference {se_gap:.1e}")
assert se_gap < 1e-6

# %% [markdown]
# ### What they cost
#
# The same CIFAR ResNet three times: plain, with SE in every block, with CBAM in every
# block (`cifar_resnet(..., attention=attention_factory(kind))`). Parameters and
# multiply-adds (of the convolutions and linear layers) are exact counts; the training throughput is measured (images per second
# in a training step, forward + backward + update, the variants interleaved so that the
# load of the machine hits them alike; median of three rounds).

# %%
variants = {"plain": None, "SE": "se", "CBAM": "cbam"}

def make_variant(kind):
    return cifar_resnet(cfg.att_depth, attention=attention_factory(kind))

def train_step_seconds(model, X, y, steps):
    """Median seconds of one SGD training step on the batch (X, y)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]

att_train = cnnbook.load_data("cifar10", batch_size=cfg.att_batch, limit=cfg.train_limit,
                              test_limit=cfg.test_limit, normalize=True, augment=True)[0]
Xp, yp = next(iter(att_train))
n_probe = cnnbook.config.capped_batch(len(yp))   # make rehearse: a small batch
Xp, yp = Xp[:n_probe], yp[:n_probe]
probes = {name: make_variant(kind).to(device).train() for name, kind in variants.items()}
if device.type == "cpu":
    for m in probes.values():
        m.to(memory_format=torch.channels_last)
step_times = {name: [] for name in variants}
for _ in range(3):
    for name, model in probes.items():
        step_times[name].append(train_step_seconds(model, Xp, yp, cfg.probe_steps))
cost = pd.DataFrame({
    "params": {n: count_params(m) for n, m in probes.items()},
    "MACs (M)": {n: count_macs(make_variant(k), (1, 3, 32, 32)) / 1e6 for n, k in variants.items()},
    "train img/s": {n: len(yp) / sorted(t)[1] for n, t in step_times.items()},
})
cost["time vs plain"] = cost["train img/s"]["plain"] / cost["train img/s"]
print(cost.round({"MACs (M)": 2, "train img/s": 0, "time vs plain": 2}))
extra = cost.loc[["SE", "CBAM"]] / cost.loc["plain"] - 1
print(f"extra parameters: SE {extra.loc['SE', 'params']:.1%}, CBAM {extra.loc['CBAM', 'params']:.1%}; "
      f"extra multiply-adds: SE {extra.loc['SE', 'MACs (M)']:.1%}, CBAM {extra.loc['CBAM', 'MACs (M)']:.1%}")
assert (extra[["params", "MACs (M)"]] < 0.03).all().all()
if cnnbook.claims_checked(PROFILE):
    assert cost.loc["CBAM", "time vs plain"] > 1.2

# %% [markdown]
# The table above: SE and CBAM add about 1-2% parameters and almost no multiply-adds
# (the cell asserts both), yet CBAM's training step takes clearly longer (the "time vs
# plain" column; asserted above 1.2x in the cpu and full profiles); SE's extra time is
# small and, on a busy machine, within the noise of the measurement. Pooling, the tiny
# MLPs and the elementwise products are cheap in arithmetic but are many small operations
# that each read and write the whole feature map; CBAM adds a max and a mean over the
# channels and a 7x7 convolution on two maps, and that memory traffic is what costs. This
# is why an epoch-for-epoch comparison would flatter attention.
#
# ### Equal training time
#
# We give every variant the same budget of training *seconds* and convert it into
# training steps with the measured throughput: steps = budget x (images per second) /
# batch size. Training then runs for exactly that many steps (so a rerun gives the same
# numbers); `fit`'s own clock reports the seconds each variant really trained.

# %%
att_rows, att_nets = [], {}
for name, kind in variants.items():
    if cfg.att_budget_s is None:
        steps = cfg.att_steps
    else:
        steps = round(cfg.att_budget_s * cost.loc[name, "train img/s"] / cfg.att_batch)
    per_eval = max(1, steps // cfg.att_evals)
    cnnbook.seed_everything(0)
    net = make_variant(kind)
    res = cnnbook.fit(net, FirstBatches(att_train, per_eval), test_iter, epochs=cfg.att_evals,
                      lr=0.05, momentum=0.9, weight_decay=5e-4, name=f"resnet{cfg.att_depth}_{name.lower()}",
                      chapter="17", progress=False, live_plot=False)
    att_nets[name] = net
    att_rows.append({"variant": name, "steps": per_eval * cfg.att_evals,
                     "images": per_eval * cfg.att_evals * cfg.att_batch,
                     "train seconds": res.record.get("train_seconds", res.seconds),
                     "test_acc": res.test_acc, "params": cost.loc[name, "params"]})
att_table = pd.DataFrame(att_rows).set_index("variant")
print(att_table.round(3))

# %%
best = att_table["test_acc"].idxmax()
spread = att_table["test_acc"].max() - att_table["test_acc"].min()
seconds_spread = att_table["train seconds"].max() / att_table["train seconds"].min()
print(f"highest test accuracy: {best}; the three variants lie within {spread:.3f} of each other")
print(f"training seconds differ by a factor {seconds_spread:.2f} (equal budgets, measured on a "
      "machine whose load changes)")
print(f"CBAM trained on {att_table.loc['CBAM', 'images'] / att_table.loc['plain', 'images']:.2f}x "
      "the images of the plain network in the same time")
if cnnbook.claims_checked(PROFILE):
    assert att_table.loc["CBAM", "images"] < att_table.loc["plain", "images"]

# %% [markdown]
# The cells above print the comparison. At equal time a slower variant sees fewer images
# (the "images" column; for CBAM this is asserted), so on a short budget it starts behind
# and must make up for it with better use of each step. Read the accuracy column with the
# noise between two runs of the *same* network in mind (exercise 3 measures it): a
# difference smaller than that noise is no evidence either way. What attention costs is
# measured with certainty above; what it adds on a budget of minutes is at most what the
# accuracy column shows, from one run each. The papers' gains (SE: ResNet-50 from 23.3% to 22.3% top-1 error on ImageNet; CBAM a
# further 0.3-0.6 points) come from full training runs, where the extra images the plain
# network saw no longer matter. The `full` profile trains ResNet-20 for ten minutes per
# variant on a GPU to look for them.
#
# ## 5. Where CBAM looks: spatial attention maps on test images
#
# The spatial attention of the trained CBAM network is a map in $(0, 1)$ per block: which
# positions of the feature map are kept and which are damped. We read it with a forward
# hook on the sigmoid (`cnnbook.inspect.capture`) for the last block of each stage (32,
# 16 and 8 pixels) and lay it over the test image, upsampled.

# %%
cbam_net = att_nets["CBAM"].eval()
ds = info("cifar10")
X_test, y_test = next(iter(test_iter))
X_show, y_show = X_test[:8], y_test[:8]
stages = [n for n, _ in cbam_net.named_children() if n.startswith("stage")]
layers = [f"{s}.{len(getattr(cbam_net, s)) - 1}.attention.spatial.gate" for s in stages]
maps = capture(cbam_net, X_show, layers)
with torch.no_grad():
    pred = cbam_net(X_show.to(device)).argmax(1).cpu()
mean = torch.tensor(ds.mean).view(1, 3, 1, 1)
std = torch.tensor(ds.std).view(1, 3, 1, 1)
images = (X_show.cpu().float() * std + mean).clamp(0, 1)
fig, axes = plt.subplots(len(layers) + 1, len(X_show), figsize=(1.45 * len(X_show), 1.5 * (len(layers) + 1)))
for j in range(len(X_show)):
    axes[0, j].imshow(images[j].permute(1, 2, 0).numpy())
    axes[0, j].set_title(f"{ds.classes[y_show[j]]}\n(pred. {ds.classes[pred[j]]})", fontsize=7)
    for i, name in enumerate(layers, 1):
        m = F.interpolate(maps[name][j:j + 1].float(), size=32, mode="bilinear", align_corners=False)[0, 0]
        axes[i, j].imshow(images[j].permute(1, 2, 0).numpy())
        axes[i, j].imshow(m.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
for i, name in enumerate(["image", *[f"{s} ({32 >> k} px)" for k, s in enumerate(stages)]]):
    axes[i, 0].set_ylabel(name, fontsize=8)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
for name in layers:
    m = maps[name]
    print(f"{name:32s} weights from {m.min():.2f} to {m.max():.2f}, mean {m.mean():.2f}")
assert all(((maps[n] > 0) & (maps[n] < 1)).all() for n in layers)

# %% [markdown]
# The printout gives the range of each map. Red means "keep", blue "damp". Things to
# look for: whether a map damps the flat background or the image border, and whether the
# deeper maps (8 px) highlight a blob around the object. How clean the maps become
# depends strongly on training time, so treat the pictures of a short cpu run as a first
# look, not as evidence that the network "knows where the object is".
#
# ## Summary
#
# - Batch, layer, instance and group normalisation differ only in the set of values that
#   share a mean and variance: $(N,H,W)$, $(C,H,W)$, $(H,W)$, or a channel group with
#   $(H,W)$; switchable normalisation learns a softmax mix of the IN, LN and BN statistics.
#   Our from-scratch versions equal PyTorch's modules in outputs and gradients, to
#   float64 rounding.
# - Batch statistics get noisier roughly like $1/\sqrt{B}$, measured above; group norm's
#   statistics ignore the batch. The short CIFAR-10 runs above print how BN and GN
#   compare at batch sizes 2 to 32.
# - SE gates channels with a global descriptor; CBAM adds a max-pooled descriptor through
#   the same MLP, then a 7x7 spatial gate; both sit at the end of the residual branch,
#   before the addition.
# - Attention adds few parameters and multiply-adds but real training time (CBAM most);
#   compared at equal time, a slower variant trains on fewer images, and on a short
#   budget one run per variant cannot resolve the paper-sized gains of about a point.
#
# ## Exercises
#
# **Exercise 1 (group norm without the library).** Write `my_group_norm(x, groups, eps)`
# for a (N, C, H, W) tensor, without scale and shift, without using `F.group_norm`,
# `nn.GroupNorm` or this chapter's `group_norm`: reshape, mean, biased variance, normalise,
# reshape back.

# %% nbgrader={"grade": false, "grade_id": "ex-17-group-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_group_norm(x: torch.Tensor, groups: int, eps: float = 1e-5) -> torch.Tensor:
    """Group normalisation of x (N, C, H, W) with `groups` groups, no affine."""
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    g = x.reshape(n, groups, -1)
    mean = g.mean(-1, keepdim=True)
    var = ((g - mean) ** 2).mean(-1, keepdim=True)
    return ((g - mean) / torch.sqrt(var + eps)).reshape(n, c, h, w)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-17-group-norm-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
import torch
import torch.nn.functional as F
_x = torch.randn(2, 8, 3, 3) * 3 + 1
assert isinstance(my_group_norm(_x, 4), torch.Tensor)
assert torch.allclose(my_group_norm(_x, 4), F.group_norm(_x, 4), atol=1e-5)
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, forbidden
check_comparisons()   # torch.allclose & co. are the genuine ones
# the task forbids these, also under another name (from torch.nn.functional import group_norm)
_no_gn = ("torch.nn.functional.group_norm", "torch.group_norm", "torch.nn.GroupNorm.__init__",
          "cnnbook.models.norms.group_norm")
_gen = torch.Generator().manual_seed(17)
for _ in range(5):
    _g = int(torch.randint(1, 5, (1,), generator=_gen))
    _c = _g * int(torch.randint(1, 4, (1,), generator=_gen))
    _x = torch.randn(3, _c, 4, 5, generator=_gen) * float(torch.rand(1, generator=_gen) * 5 + 0.1)
    _eps = float(torch.rand(1, generator=_gen)) * 0.1
    with forbidden(*_no_gn, task="exercise 1 (group norm without the library)"):
        _got = my_group_norm(_x, _g, _eps)
    assert isinstance(_got, torch.Tensor) and _got.shape == _x.shape
    assert torch.allclose(_got, F.group_norm(_x, _g, eps=_eps), atol=1e-5)
### END HIDDEN TESTS
print("my_group_norm agrees with F.group_norm")

# %% [markdown]
# **Exercise 2 (the spatial attention map).** Write `spatial_map(x, conv)` that returns
# CBAM's spatial attention weights for a feature map `x` (N, C, H, W), given the 2 -> 1
# channel convolution `conv` (7x7, padding 3): channel-wise mean and max, concatenated in
# that order, the convolution, a sigmoid. Shape (N, 1, H, W).

# %% nbgrader={"grade": false, "grade_id": "ex-17-spatial-map", "locked": false, "schema_version": 3, "solution": true, "task": false}
def spatial_map(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """CBAM's spatial attention weights for x, in (0, 1), shape (N, 1, H, W)."""
    ### BEGIN SOLUTION
    pooled = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True).values], dim=1)
    return torch.sigmoid(conv(pooled))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-17-spatial-map-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
import torch
from cnnbook.models.attention import SpatialAttention
torch.manual_seed(0)
_sa = SpatialAttention()
_x = torch.randn(2, 16, 6, 6)
_w = spatial_map(_x, _sa.conv)
assert isinstance(_w, torch.Tensor) and _w.shape == (2, 1, 6, 6)
assert torch.allclose(_w, _sa.weights(_x), atol=1e-6)
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
_gen = torch.Generator().manual_seed(71)
for _ in range(4):
    _sa = SpatialAttention()
    with torch.no_grad():
        for _p in _sa.parameters():
            _p.copy_(torch.randn(_p.shape, generator=_gen) * 0.2)
    _n, _c = (int(v) for v in torch.randint(1, 9, (2,), generator=_gen))
    _x = torch.randn(_n, _c, 5, 7, generator=_gen) * 2 - 1
    _w = spatial_map(_x, _sa.conv)
    assert isinstance(_w, torch.Tensor) and _w.shape == (_n, 1, 5, 7)
    assert torch.allclose(_w, _sa.weights(_x), atol=1e-5)
    assert ((_w > 0) & (_w < 1)).all()
### END HIDDEN TESTS
print("spatial_map equals CBAM's spatial attention")

# %% [markdown]
# **Exercise 3 (experiment: seeds vs attention).** The attention comparison above used one
# seed per variant. Is a difference of one or two points meaningful? Train the *plain*
# ResNet with `FirstBatches(att_train, steps)` for a small number of steps of your choice
# (at least 2; keep it under a minute), with two different seeds (`cnnbook.seed_everything(s)`
# before building the network), and return the two test accuracies measured on
# `test_iter` (use `cnnbook.fit(..., record=False)` or `cnnbook.evaluate`). Then compare
# the difference between your two seeds with the differences in the table of section 4, and
# write your interpretation in `seed_answer`: would you trust the ranking of the attention
# variants from one run each?

# %% nbgrader={"grade": false, "grade_id": "ex-17-seeds", "locked": false, "schema_version": 3, "solution": true, "task": false}
def seed_spread(steps: int, seeds=(0, 1)) -> list:
    """Test accuracies of the plain variant trained for `steps` steps with each seed."""
    ### BEGIN SOLUTION
    accs = []
    for s in seeds:
        cnnbook.seed_everything(s)
        res = cnnbook.fit(make_variant(None), FirstBatches(att_train, steps), test_iter, epochs=1,
                          lr=0.05, momentum=0.9, weight_decay=5e-4, record=False,
                          progress=False, live_plot=False)
        accs.append(float(res.test_acc))
    return accs
    ### END SOLUTION

seed_steps = 1 if PROFILE == "smoke" else 10
seed_accs = seed_spread(seed_steps)
print(f"two seeds, {seed_steps} steps each: test accuracies {seed_accs}")
### BEGIN SOLUTION
seed_answer = ("Two seeds of the same network and budget already differ by a margin comparable "
               "to the differences between the attention variants, so one run each cannot rank "
               "them; several seeds per variant (and a longer budget) would be needed.")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-17-seeds-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert isinstance(seed_accs, list) and len(seed_accs) == 2
assert all(type(a) is float and 0.0 <= a <= 1.0 for a in seed_accs)
assert isinstance(seed_answer, str) and len(seed_answer.split()) >= 15, "write a few sentences"
### BEGIN HIDDEN TESTS
_n_test = test_iter.num_examples
for _a in seed_accs:  # an accuracy on test_iter is a whole number of correct images
    assert abs(_a * _n_test - round(_a * _n_test)) < 1e-6
_again = seed_spread(1, seeds=(3,))
assert isinstance(_again, list) and len(_again) == 1 and type(_again[0]) is float
assert abs(_again[0] * _n_test - round(_again[0] * _n_test)) < 1e-6
### END HIDDEN TESTS
print("seed experiment recorded")

# %% [markdown]
# **Exercise 4 (experiment: your own batch size).** Rerun the BN-vs-GN comparison of
# section 3 at a batch size the chapter did not use (between 1 and 16, e.g. 3 or 12),
# with the same number of images, learning-rate rule and networks: write
# `bn_vs_gn(batch)` returning `{"BN": acc, "GN": acc}` (test accuracies as floats). Where
# does your result fall between the rows of the table, and what does that say about the
# batch size at which batch norm becomes usable?

# %% nbgrader={"grade": false, "grade_id": "ex-17-bn-vs-gn", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bn_vs_gn(batch: int) -> dict:
    """Test accuracy of ResNet-8 with BN and with GN after cfg.norm_images images at `batch`."""
    ### BEGIN SOLUTION
    loader = cnnbook.load_data("cifar10", batch_size=batch, limit=cfg.train_limit,
                               test_limit=cfg.test_limit, normalize=True, augment=True)[0]
    out = {}
    for label, norm_layer in (("BN", None), ("GN", group_norm_layer(cfg.norm_groups))):
        cnnbook.seed_everything(0)
        res = cnnbook.fit(cifar_resnet(8, norm_layer=norm_layer),
                          FirstBatches(loader, cfg.norm_images // batch), test_iter, epochs=1,
                          lr=0.1 * batch / 32, momentum=0.9, record=False, progress=False,
                          live_plot=False)
        out[label] = float(res.test_acc)
    return out
    ### END SOLUTION

my_batch = 12 if PROFILE != "smoke" else 16
my_result = bn_vs_gn(my_batch)
print(f"batch size {my_batch}: {my_result}")
### BEGIN SOLUTION
my_answer = ("At batch 12 the gap between group norm and batch norm lies between the rows for "
             "8 and 32: with a dozen images per batch the statistics are noisy but usable, and "
             "batch norm is close to group norm; it falls behind below about 8 images.")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-17-bn-vs-gn-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert isinstance(my_result, dict) and set(my_result) == {"BN", "GN"}
assert all(type(v) is float and 0.0 <= v <= 1.0 for v in my_result.values())
assert my_batch not in (*cfg.small_batches, cfg.normal_batch) or PROFILE == "smoke"
assert isinstance(my_answer, str) and len(my_answer.split()) >= 15, "write a few sentences"
### BEGIN HIDDEN TESTS
_n_test = test_iter.num_examples
for _v in my_result.values():
    assert abs(_v * _n_test - round(_v * _n_test)) < 1e-6
assert 1 <= my_batch <= 16
### END HIDDEN TESTS
print("BN vs GN at your batch size recorded")

# %% [markdown]
# ## Closing note: time of this chapter

# %%
minutes = (time.perf_counter() - chapter_start) / 60
print(f"profile {PROFILE}: the chapter ran in {minutes:.1f} minutes (from the parameters cell)")
