# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 16 · Regularisation
#
# A network with enough parameters can memorise its training set:
# [chapter 15](15_cifar10.ipynb)'s baseline reached a training accuracy far above its test
# accuracy on CIFAR-10. Everything that narrows that gap without making the network smaller
# is called *regularisation*. This chapter builds the techniques that modern CNNs use, each
# from scratch and each checked against the library version, then measures what each one
# does to the same small ResNet on CIFAR-10.
#
# **What you will learn**
#
# - the three levels of regularisation (data, model, training), as the sources draw them;
# - weight decay two ways: an L2 penalty in the loss, and decoupled weight decay (AdamW),
#   which are the same for SGD and not for Adam, measured;
# - why ordinary dropout is weak in convolutional layers, Dropout2d, and **DropBlock** from
#   scratch, equal to `torchvision.ops.drop_block2d` under the same random mask;
# - **stochastic depth** (skipping residual branches), equal to
#   `torchvision.ops.stochastic_depth`, in a residual block;
# - **label smoothing**, equal to `nn.CrossEntropyLoss(label_smoothing=0.1)`, and what it
#   does to the logits and the confidence;
# - data augmentation with the sources' settings, then **mixup** and **CutMix** with their
#   mixed loss, equal to `torchvision.transforms.v2.MixUp`/`CutMix`;
# - an **ablation table** on CIFAR-10: test accuracy and train/test gap of every technique
#   alone and of all of them together, from one run of this notebook.

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import drop_block2d
from torchvision.ops import stochastic_depth as tv_stochastic_depth
from torchvision.transforms import v2

import cnnbook
from cnnbook import viz
from cnnbook.data.augment import preview, sources_recipe, with_augment
from cnnbook.data.catalog import info
from cnnbook.regularization.diagram import plot_three_levels
from cnnbook.regularization.dropblock import drop_block, dropblock_gamma
from cnnbook.regularization.label_smoothing import (label_smoothing_cross_entropy,
                                                    optimal_logit_gap)
from cnnbook.regularization.masks import drop_mask, mask_stats
from cnnbook.regularization.mixing import (BatchMixer, cutmix, cutmix_box, mixed_cross_entropy,
                                           mixup, sample_lambda)
from cnnbook.regularization.resnet import RegResidual, small_resnet
from cnnbook.regularization.stochastic_depth import linear_drop_rates, stochastic_depth
from cnnbook.regularization.weight_decay import adam_step, sgd_step
from cnnbook.summary import show_source
from cnnbook.train.metrics import mean_confidence
from cnnbook.widgets.regularization import DropBlockExplorer, default_feature_maps

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # the ablation: a small CIFAR ResNet (blocks per stage), `limit` training images
    # (class-balanced), `test_limit` test images, `epochs` of SGD (momentum 0.9, cosine
    # decay from lr); the regulariser settings: weight decay, dropout before the classifier,
    # DropBlock rate and size (stages 2-3), stochastic-depth rate of the last block, label
    # smoothing, mixup/CutMix alpha
    "smoke": dict(blocks=(1, 1, 1), limit=100, test_limit=100, epochs=1, batch_size=50,
                  lr=0.05, weight_decay=5e-4, dropout=0.3, drop_block=0.1, block_size=3,
                  drop_path=0.2, smoothing=0.1, alpha=1.0),
    "cpu":   dict(blocks=(1, 1, 1), limit=2_000, test_limit=1_000, epochs=12, batch_size=32,
                  lr=0.05, weight_decay=5e-4, dropout=0.3, drop_block=0.1, block_size=3,
                  drop_path=0.2, smoothing=0.1, alpha=1.0),
    "full":  dict(blocks=(3, 3, 3), limit=None, test_limit=None, epochs=100, batch_size=128,
                  lr=0.1, weight_decay=5e-4, dropout=0.3, drop_block=0.1, block_size=3,
                  drop_path=0.2, smoothing=0.1, alpha=1.0),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# The `cpu` profile trains ten networks (section 7) on 2,000 CIFAR-10 training images for
# 12 epochs each (batches of 32), and tests them on 1,000 test images: a small training
# set seen many times makes overfitting show within minutes, and the whole ablation is
# sized for ten minutes of training on a laptop's CPU (the ablation cell prints the
# minutes it took). `full` trains a
# ResNet-20 on all 50,000 images for 100 epochs, the setting in which the papers report
# their gains (on a GPU).
#
# ## 1. The idea and a little history
#
# A model *overfits* when it fits the noise and the accidents of its training set: its
# training error keeps falling while its test error stops falling or rises. The classical
# cure is to make the model smaller. Deep learning went the other way: networks are made
# large, and overfitting is fought by making the task of memorising harder while the task
# of generalising stays the same.
#
# - **Weight decay** (an L2 penalty on the weights) is the oldest, from ridge regression
#   (Hoerl and Kennard, 1970) and early neural networks (Hanson and Pratt, 1988; Krogh and
#   Hertz, 1992). Loshchilov and Hutter (2019) showed that for adaptive optimisers "L2
#   penalty" and "weight decay" are not the same thing (AdamW).
# - **Data augmentation**: LeNet was trained on distorted digits, AlexNet (2012) on random
#   crops, flips and colour changes. Mixup (Zhang et al., 2018) and CutMix (Yun et al.,
#   2019) blend two images and their labels.
# - **Dropout** (Hinton et al., 2012; Srivastava et al., 2014) zeroes random units, so no
#   unit can rely on a particular other one. It worked in AlexNet's fully connected layers
#   but much less in convolutional layers; Dropout2d (Tompson et al., 2015) drops whole
#   channels, and **DropBlock** (Ghiasi, Lin and Le, 2018) drops contiguous square regions.
# - **Stochastic depth** (Huang et al., 2016) drops whole residual blocks at random.
# - **Label smoothing** (Szegedy et al., 2016, in Inception-v3) softens the targets so the
#   network cannot become arbitrarily confident.
#
# The sources sort these techniques by *where* they act: on the data, on the model, or on
# the training objective and optimiser.

# %%
plot_three_levels()
plt.show()

# %% [markdown]
# Normalisation layers ([chapter 17](17_normalization_attention.ipynb)) also regularise a
# little (batch statistics add noise), and early stopping
# ([chapter 18](18_training_recipes.ipynb)) is a training-level regulariser too; the diagram
# names them where they belong, and this chapter treats the rest.
#
# ## 2. Weight decay: L2 in the loss, or decoupled
#
# Adding $\frac{\lambda}{2}\lVert w\rVert^2$ to the loss adds $\lambda w$ to the gradient.
# With plain SGD the step becomes
#
# $$w \leftarrow w - \eta\,(g + \lambda w) = (1 - \eta\lambda)\,w - \eta\,g,$$
#
# a multiplicative *decay* of the weights by $1-\eta\lambda$ each step, next to the usual
# gradient step. So for SGD "L2 regularisation" and "weight decay" are one and the same.
# Adam divides each coordinate of the gradient by the root of its running mean square
# $\sqrt{\hat v}$. If the L2 term is part of the gradient, it is divided too: a weight whose
# gradients are large and noisy gets its decay divided by a large number, a weight with
# small gradients gets it multiplied up. Loshchilov and Hutter's **decoupled** weight decay
# (AdamW) applies the decay outside of Adam's scaling, $w \leftarrow (1-\eta\lambda)w -
# \eta\,\hat m/(\sqrt{\hat v}+\epsilon)$, so every weight decays at the same rate. Both
# updates, written out:

# %%
show_source(sgd_step);
show_source(adam_step);

# %% [markdown]
# One step by hand against PyTorch's optimisers, on the same weights and gradients
# (`torch.optim.Adam(weight_decay=)` is the L2 version, `torch.optim.AdamW` the decoupled
# one):

# %%
def torch_step(opt_cls, w, g, steps=1, **kw):
    """``steps`` steps of a PyTorch optimiser from ``w`` with the gradient ``g``."""
    p = w.clone().requires_grad_()
    opt = opt_cls([p], **kw)
    for _ in range(steps):
        p.grad = g.clone()
        opt.step()
    return p.detach()

torch.manual_seed(0)
w = torch.randn(1000, dtype=torch.float64)
g = torch.randn(1000, dtype=torch.float64) * 10 ** torch.randn(1000, dtype=torch.float64)
kw = dict(lr=0.01, weight_decay=0.1)
checks = {
    "SGD, L2 by hand vs torch SGD": (sgd_step(w, g, **kw), torch_step(torch.optim.SGD, w, g, **kw)),
    "SGD, L2 vs decoupled (by hand)": (sgd_step(w, g, **kw), sgd_step(w, g, decoupled=True, **kw)),
    "Adam + L2 by hand vs torch Adam": (adam_step(w, g, {}, **kw),
                                        torch_step(torch.optim.Adam, w, g, **kw)),
    "AdamW by hand vs torch AdamW": (adam_step(w, g, {}, decoupled=True, **kw),
                                     torch_step(torch.optim.AdamW, w, g, **kw)),
    "Adam + L2 vs AdamW (torch)": (torch_step(torch.optim.Adam, w, g, **kw),
                                   torch_step(torch.optim.AdamW, w, g, **kw)),
}
wd_table = pd.Series({k: (a - b).abs().max().item() for k, (a, b) in checks.items()},
                     name="largest difference")
print(wd_table.map(lambda v: f"{v:.1e}"))
assert (wd_table.iloc[:4] < 1e-12).all() and wd_table.iloc[4] > 1e-4

# %% [markdown]
# The first four rows are zero up to rounding: our steps are PyTorch's, and for SGD the two
# kinds of decay give the same update. The last row is not zero: Adam with an L2 term and
# AdamW move the same weights differently.
#
# How differently? A tiny problem makes it visible. 1,000 weights receive large, noisy
# gradients (standard deviation 10, mean zero: they carry no signal), 1,000 others receive
# no gradient at all; all start at 1 and take 1,000 steps with lr 0.01 and decay 0.1. With
# decay alone, every weight should shrink by the same factor, $(1 - 0.01\cdot
# 0.1)^{1000}\approx e^{-1}$.

# %%
def decay_experiment(opt_cls, steps=1000, n=1000, **kw):
    """Mean |w| of noisy-gradient and zero-gradient weights after ``steps`` steps."""
    torch.manual_seed(0)
    p = torch.ones(2 * n, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([p], **kw)
    for _ in range(steps):
        grad = torch.zeros(2 * n, dtype=torch.float64)
        grad[:n] = 10 * torch.randn(n, dtype=torch.float64)
        p.grad = grad
        opt.step()
    return {"noisy gradients": p[:n].abs().mean().item(),
            "no gradient": p[n:].abs().mean().item()}

decay = pd.DataFrame({
    "SGD, weight_decay (L2 = decoupled)": decay_experiment(torch.optim.SGD, lr=0.01, weight_decay=0.1),
    "Adam, weight_decay (L2)": decay_experiment(torch.optim.Adam, lr=0.01, weight_decay=0.1),
    "AdamW (decoupled)": decay_experiment(torch.optim.AdamW, lr=0.01, weight_decay=0.1),
}).T
print(f"pure decay would leave (1 - 0.001)^1000 = {(1 - 0.001) ** 1000:.3f}")
print(decay.round(3))
adam_l2, adamw = decay.loc["Adam, weight_decay (L2)"], decay.loc["AdamW (decoupled)"]
assert adam_l2["no gradient"] < 0.1 < 0.5 < adam_l2["noisy gradients"]
assert abs(adamw["no gradient"] - (1 - 0.001) ** 1000) < 0.01

# %% [markdown]
# With SGD both groups decay by the same factor (the weights without gradient end at
# 0.368; the noisy ones also random-walk, which raises their mean size). The table above
# shows the L2 penalty inside Adam doing two wrong things at once. The
# weights without any gradient are driven to zero (the first column of its row is near 0):
# their only gradient is the decay term $\lambda w$, which Adam rescales to a full-size step
# of about the learning rate, every step. The weights with large gradients are barely
# decayed: the decay term drowns in the noise that sets $\sqrt{\hat v}$. AdamW decays the
# silent weights by exactly the factor the formula predicts, $e^{-1}\approx 0.368$; its
# noisy weights end up smaller on average than under L2, because Adam's normalised noise
# makes them wander around a decaying centre. This is why AdamW
# (`torch.optim.AdamW`, or `cnnbook`'s `optimizer="adamw"`) is the default for Adam-style
# training, and why the weight decay of an SGD recipe cannot simply be reused with Adam.
#
# ## 3. Dropout in convolutional layers, and DropBlock
#
# Dropout multiplies each activation by an independent Bernoulli mask during training and
# rescales what is kept by $1/(1-p)$, so the expected activation is unchanged and nothing
# needs to change at test time (`nn.Dropout`). After a convolution, though, neighbouring
# activations of a feature map are strongly correlated: they were computed from overlapping
# image patches. A dropped unit is surrounded by kept neighbours that carry nearly the same
# information, and the next 3x3 convolution sees them. **Dropout2d** (`nn.Dropout2d`) drops
# whole channels instead; **DropBlock** drops square blocks, in between the two.
#
# DropBlock from scratch: block centres are drawn with probability $\gamma$ among the
# positions where a whole block fits, grown into `block_size` squares with a stride-1
# max-pool, and the kept activations are rescaled by the number of units over the number
# kept. The centre rate turns the wanted drop rate $p$ into a rate of centres: each centre
# drops $b^2$ units and only $(H-b+1)(W-b+1)$ of the $HW$ positions may be centres, so
#
# $$\gamma = \frac{p}{b^2}\cdot\frac{HW}{(H-b+1)(W-b+1)}.$$

# %%
show_source(dropblock_gamma);
show_source(drop_block);

# %% [markdown]
# The seed mask is drawn exactly as torchvision draws it (`bernoulli_` on a tensor of the
# valid positions), so with the same random seed our DropBlock and
# `torchvision.ops.drop_block2d` must give the same output:

# %%
x = torch.randn(8, 16, 16, 16)
diffs = {}
for p, b in [(0.1, 3), (0.2, 5), (0.3, 7)]:
    torch.manual_seed(42)
    ours = drop_block(x, p, b)
    torch.manual_seed(42)
    theirs = drop_block2d(x, p, b)
    diffs[f"p={p}, block {b}"] = (ours - theirs).abs().max().item()
print("largest difference to torchvision:", diffs)
assert max(diffs.values()) < 1e-5

# %% [markdown]
# Now the three methods on the same feature maps, the responses of four edge detectors
# (Gabor filters) to a photograph, at the same drop rate of 20% (16 random masks each, so
# that Dropout2d, which drops whole channels, has enough channels to count). `mask_stats` measures the
# fraction really dropped and the share of dropped units that still have a kept neighbour
# in their 3x3 window, i.e. holes the next convolution can "see around":

# %%
fmaps = default_feature_maps(48).unsqueeze(0).expand(16, -1, -1, -1)  # 16 draws of the masks
g = torch.Generator().manual_seed(0)
rows, masks = {}, {}
for method, b in [("dropout", 1), ("dropout2d", 1), ("dropblock", 3), ("dropblock", 7)]:
    label = method if method != "dropblock" else f"dropblock, block {b}"
    masks[label] = drop_mask(fmaps.shape, method, 0.2, b, generator=g)
    rows[label] = mask_stats(masks[label], 0.2, b)
mask_table = pd.DataFrame(rows).T[["target", "dropped", "recoverable"]]
print(mask_table.round(3))
assert mask_table.loc["dropout", "recoverable"] > 0.9
assert mask_table.loc["dropblock, block 7", "recoverable"] < mask_table.loc["dropout", "recoverable"] - 0.3

# %% [markdown]
# The table above prints what the argument predicts. Element-wise dropout leaves nearly
# every hole next to a kept unit (the `recoverable` column is close to 1): the next
# convolution can fill it in, and the network learns little from it. DropBlock with 7x7
# blocks leaves far fewer such holes: whole regions of a feature vanish and the network
# must use other evidence, e.g. other parts of the object. Dropout2d removes whole
# channels, so no neighbour in the channel is left at all. The `dropped` column also shows
# that DropBlock drops a little less than asked, because blocks overlap.
#
# The masks themselves (black = dropped):

# %%
viz.show_images([m[0, 0] for m in masks.values()], titles=list(masks), ncols=4, scale=2.4,
                normalize=False)
plt.show()

# %% [markdown]
# ## 4. Stochastic depth
#
# A residual block computes $x + F(x)$. Stochastic depth (Huang et al., 2016) drops the
# residual branch $F$ during training with probability $p$, so the block is the identity
# for that step. The network trained is on average shallower: faster and with short paths
# for the gradient, and the full network at test time is an ensemble of the shallower
# ones. The paper lets $p$ grow linearly with depth up to $p_L = 0.5$ at the last block
# (`linear_drop_rates`), drops per mini-batch, and multiplies the branch by its survival
# probability $1-p$ at test time. torchvision (and modern networks such as EfficientNet and
# ConvNeXt) drop per sample ("row" mode) and divide the surviving branches by $1-p$ during
# training instead, so the test-time network is the plain one. Ours does the same:

# %%
show_source(stochastic_depth);
print("linear rule for 6 blocks, p_L = 0.5:", linear_drop_rates(6, 0.5))

# %%
x = torch.randn(64, 8, 4, 4)
sd_diffs = {}
for mode in ("row", "batch"):
    for p in (0.2, 0.5):
        torch.manual_seed(3)
        ours = stochastic_depth(x, p, mode)
        torch.manual_seed(3)
        sd_diffs[f"{mode}, p={p}"] = (ours - tv_stochastic_depth(x, p, mode)).abs().max().item()
print("largest difference to torchvision.ops.stochastic_depth:", sd_diffs)
assert max(sd_diffs.values()) < 1e-6

# %% [markdown]
# In a residual block it goes on the branch, before the addition; `RegResidual` (built on
# [chapter 11](11_resnet.ipynb)'s `Residual`) also carries DropBlock on its output. In
# training mode the block is random, in evaluation mode it is the plain block:

# %%
show_source(RegResidual);
torch.manual_seed(0)
block = RegResidual(16, 16, drop_path=0.5)
x = torch.randn(8, 16, 8, 8)
block.train()
with torch.no_grad():
    branch_kept = [float((block(x) - block.relu(x)).abs().amax(dim=(1, 2, 3)).gt(0).float().mean())
                   for _ in range(200)]
print(f"training mode, p = 0.5: the branch contributed for {100 * sum(branch_kept) / 200:.0f}% "
      "of the samples")
block.eval()
plain = RegResidual(16, 16)
plain.load_state_dict(block.state_dict())
plain.eval()
assert torch.equal(block(x), plain(x))

# %% [markdown]
# The cell above prints how often the branch contributed in training mode (about half of
# the samples, as $p = 0.5$ asks), and checks that in evaluation mode the block equals the
# same block without stochastic depth.
#
# ## 5. Label smoothing
#
# With a one-hot target the cross-entropy $-\log p_y$ is only zero when $p_y = 1$, which
# softmax reaches only for an infinite gap between the right logit and the others: the
# network is always pushed to be more confident. Label smoothing (Szegedy et al., 2016)
# trains towards $q = (1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon/K$ instead, with
# $\varepsilon = 0.1$:

# %%
show_source(label_smoothing_cross_entropy);
torch.manual_seed(0)
logits, y = torch.randn(64, 10) * 3, torch.randint(0, 10, (64,))
ours = label_smoothing_cross_entropy(logits, y, 0.1)
theirs = nn.CrossEntropyLoss(label_smoothing=0.1)(logits, y)
print(f"ours {ours.item():.6f}, nn.CrossEntropyLoss(label_smoothing=0.1) {theirs.item():.6f}")
assert torch.allclose(ours, theirs)

# %% [markdown]
# The smoothed loss has a finite minimum: at the best output the softmax equals $q$, i.e.
# the right logit exceeds every other one by $\log\frac{1-\varepsilon+\varepsilon/K}{
# \varepsilon/K}$. The loss as a function of that gap, for one-hot and smoothed targets:

# %%
gaps = torch.linspace(0, 12, 241)
def loss_at_gap(gap, eps):
    logits = torch.zeros(len(gap), 10)
    logits[:, 0] = gap
    return F.cross_entropy(logits, torch.zeros(len(gap), dtype=torch.long),
                           reduction="none", label_smoothing=eps)
best = optimal_logit_gap(0.1, 10)
viz.plot_functions(gaps, {"one-hot (eps = 0)": loss_at_gap(gaps, 0.0),
                          "smoothed (eps = 0.1)": loss_at_gap(gaps, 0.1)},
                   title="cross-entropy vs logit gap (10 classes)", xlabel="gap")
plt.axvline(best, color="0.5", ls="--")
plt.show()
print(f"best gap with eps = 0.1: log(0.91 / 0.01) = {best:.2f}, where the softmax gives the "
      f"right class {0.9 + 0.1 / 10:.2f}; with eps = 0 the loss keeps falling as the gap grows")

# %% [markdown]
# Section 7 measures the consequence on CIFAR-10: the mean confidence (largest softmax
# probability) on the test images is lower for the network trained with label smoothing.
#
# ## 6. Data augmentation, mixup and CutMix
#
# Augmentation adds variations to the training images that should not change the label.
# The sources' recipe: horizontal flip, random crop, rotation up to 15°, colour jitter
# (brightness, contrast, saturation 0.2, hue 0.1), an affine transform with translation
# up to 10% and scale 0.9-1.1, random erasing with probability 0.2, and finally
# normalisation with the ImageNet mean (0.485, 0.456, 0.406) and standard deviation
# (0.229, 0.224, 0.225) when a network pretrained on ImageNet is used (on CIFAR-10 from
# scratch we use CIFAR-10's own statistics). `cnnbook.data.augment`
# ([chapter 15](15_cifar10.ipynb)) implements these transforms on whole batches on the
# device, every image with its own random draw; `load_data(augment=True)` gives the random
# crop (4 px padding) and flip. Six CIFAR-10 images under the rest of the recipe, three
# random draws:

# %%
train_plain, test_iter = cnnbook.load_data("cifar10", batch_size=cfg.batch_size,
                                           limit=cfg.limit, test_limit=cfg.test_limit,
                                           normalize=True)
classes = info("cifar10").classes
sample = train_plain.images[:6]
view = preview(sample, sources_recipe(), seed=0, rows=3)
viz.show_images(torch.cat([view["original"], *view["augmented"]]), ncols=6, scale=1.3,
                normalize=False, suptitle="top row: originals; below: rotation, colour "
                "jitter, affine, erasing")
plt.show()
print("mean absolute pixel change per draw:", [round(c, 3) for c in view["change"]])

# %% [markdown]
# **Mixup** (Zhang et al., 2018) goes further: it trains on convex combinations of two
# images, $\tilde x = \lambda x_i + (1-\lambda) x_j$, with the same combination of their
# one-hot labels, $\lambda \sim \mathrm{Beta}(\alpha, \alpha)$. **CutMix** (Yun et al.,
# 2019) pastes a rectangle of $x_j$ into $x_i$ instead (a cut-out that is not wasted: the
# pasted pixels are informative), with the label weight equal to the area fraction kept.
# Cross-entropy is linear in the target, so the loss against the blended label is
# $\lambda\,\mathrm{CE}(\hat y, y_i) + (1-\lambda)\,\mathrm{CE}(\hat y, y_j)$:

# %%
show_source(mixup);
show_source(cutmix_box);
show_source(mixed_cross_entropy);

# %% [markdown]
# torchvision's `v2.MixUp` and `v2.CutMix` pair image $i$ with image $i-1$ of the batch
# (the loader shuffles, so the pairing is random) and draw $\lambda$, then for CutMix the
# box centre, from the global random generator. With the same seed and pairing ours must
# give the same images and labels:

# %%
xb = sample.float() / 255
yb = train_plain.labels[:6].cpu()
mix_diffs = {}
torch.manual_seed(1)
tx, ty = v2.MixUp(alpha=1.0, num_classes=10)(xb, yb)
torch.manual_seed(1)
lam = sample_lambda(1.0)
ox, oy = mixup(xb, yb, lam, 10)
mix_diffs["mixup"] = max((ox - tx).abs().max().item(), (oy - ty).abs().max().item())
torch.manual_seed(2)
tx, ty = v2.CutMix(alpha=1.0, num_classes=10)(xb, yb)
torch.manual_seed(2)
lam = sample_lambda(1.0)
cx, cy = int(torch.randint(32, (1,))), int(torch.randint(32, (1,)))
box, lam_real = cutmix_box(lam, 32, 32, cy, cx)
ox, oy, _ = cutmix(xb, yb, box, 10)
mix_diffs["cutmix"] = max((ox - tx).abs().max().item(), (oy - ty).abs().max().item())
print("largest difference to torchvision v2:", mix_diffs)
assert max(mix_diffs.values()) < 1e-6

# %% [markdown]
# Two images mixed both ways at three values of $\lambda$, with the label weights:

# %%
a, b = xb[:2], yb[:2]
pics, titles = [], []
for lam in (0.8, 0.5, 0.3):
    m, soft = mixup(a, b, lam, 10, perm=torch.tensor([1, 0]))
    box, lam_c = cutmix_box(lam, 32, 32, 16, 16)
    c, soft_c, _ = cutmix(a, b, box, 10, perm=torch.tensor([1, 0]))
    name = lambda s: ", ".join(f"{classes[k]} {s[0, k]:.2f}" for k in s[0].nonzero().flatten().tolist())
    pics += [m[0], c[0]]
    titles += [f"mixup: {name(soft)}", f"CutMix: {name(soft_c)}"]
viz.show_images(pics, titles=titles, ncols=2, scale=2.6, normalize=False)
plt.show()

# %% [markdown]
# For training, `BatchMixer` wraps a loader (each batch mixed, with mixup, CutMix or one of
# the two at random) and provides the matching loss, so `fit` stays unchanged:
# `fit(model, mixer.wrap(train_iter), test_iter, loss_fn=mixer.loss)`. The training accuracy
# that `fit` reports is then measured on mixed images against the first label of each
# pair; below we therefore measure the training accuracy separately, on the clean
# training images.
#
# ## 7. The ablation: each technique alone, and all together
#
# The network: a small CIFAR ResNet (`small_resnet`: 3x3 stem with 16 channels, stages of
# basic blocks with 16, 32 and 64 channels, the model-level regularisers as switches).
# Every run uses the same data, initialisation seed, optimiser (SGD with momentum 0.9,
# cosine decay of the learning rate over the epochs) and budget; only one thing changes per
# row. After training we measure the accuracy on the **clean training images** (no
# augmentation, no mixing, evaluation mode) and on the test images; their difference is the
# *gap*, the part of the training accuracy that does not carry over to new images. We also
# record the mean confidence on the test images.

# %%
print(small_resnet(cfg.blocks, dropout=cfg.dropout, drop_block=cfg.drop_block,
                   block_size=cfg.block_size, stochastic_depth=cfg.drop_path))

def train_variant(name, model_kw=None, weight_decay=0.0, smoothing=0.0, augment=False,
                  mix=None, recipe=None):
    """Train one row of the ablation; returns the fitted model and its measurements."""
    cnnbook.seed_everything(0)
    train_iter, test = cnnbook.load_data("cifar10", batch_size=cfg.batch_size,
                                         limit=cfg.limit, test_limit=cfg.test_limit,
                                         normalize=True, augment=augment)
    if recipe is not None:
        train_iter = with_augment(train_iter, recipe)
    model = small_resnet(cfg.blocks, **(model_kw or {}))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9,
                          weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=smoothing)
    if mix is not None:
        mixer = BatchMixer(mix, alpha=cfg.alpha, num_classes=10, label_smoothing=smoothing)
        train_iter, loss_fn = mixer.wrap(train_iter), mixer.loss
    result = cnnbook.fit(model, train_iter, test, epochs=cfg.epochs, lr=cfg.lr, optimizer=opt,
                         scheduler=sched, loss_fn=loss_fn, name=name, chapter="16",
                         profile=PROFILE, progress=False, live_plot=False)
    train_acc = cnnbook.evaluate(model, train_plain, device)["acc"]
    test_acc = cnnbook.evaluate(model, test, device)["acc"]
    return model, result, {"train acc": train_acc, "test acc": test_acc,
                           "gap": train_acc - test_acc,
                           "confidence": mean_confidence(model, test),
                           "minutes": result.seconds / 60}

# %% [markdown]
# The rows: the baseline; weight decay 5e-4 (L2 through SGD, which section 2 showed is the
# same as decoupled decay); dropout before the classifier; DropBlock in stages 2 and 3;
# stochastic depth; label smoothing 0.1; augmentation (random crop and flip); mixup;
# CutMix; and everything at once (with mixup or CutMix chosen at random for each batch).

# %%
VARIANTS = {
    "baseline": dict(),
    "weight decay": dict(weight_decay=cfg.weight_decay),
    "dropout (classifier)": dict(model_kw=dict(dropout=cfg.dropout)),
    "DropBlock": dict(model_kw=dict(drop_block=cfg.drop_block, block_size=cfg.block_size)),
    "stochastic depth": dict(model_kw=dict(stochastic_depth=cfg.drop_path)),
    "label smoothing": dict(smoothing=cfg.smoothing),
    "crop + flip": dict(augment=True),
    "mixup": dict(mix="mixup"),
    "CutMix": dict(mix="cutmix"),
    "all together": dict(weight_decay=cfg.weight_decay, smoothing=cfg.smoothing, augment=True,
                         mix="both", model_kw=dict(dropout=cfg.dropout,
                                                   drop_block=cfg.drop_block,
                                                   block_size=cfg.block_size,
                                                   stochastic_depth=cfg.drop_path)),
}
runs, models = {}, {}
for name, kwargs in VARIANTS.items():
    slug = "reg_" + name.split(" (")[0].lower().replace(" + ", "_").replace(" ", "_")
    models[name], _, runs[name] = train_variant(slug, **kwargs)
    print(f"{name:22s} " + ", ".join(f"{k} {v:.3f}" for k, v in runs[name].items()))

# %%
ablation = pd.DataFrame(runs).T
ablation["test acc vs baseline"] = ablation["test acc"] - ablation.loc["baseline", "test acc"]
ablation["gap vs baseline"] = ablation["gap"] - ablation.loc["baseline", "gap"]
total_minutes = ablation["minutes"].sum()
print(f"{PROFILE} profile: {len(ablation)} runs of {cfg.epochs} epochs on "
      f"{train_plain.num_examples:,} training images, {total_minutes:.1f} minutes in total")
ablation.round(3)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
ablation["test acc"].plot.barh(ax=ax1, color="#4c72b0", title="test accuracy")
ablation["gap"].plot.barh(ax=ax2, color="#dd8452", title="train - test accuracy (gap)")
ax1.axvline(ablation.loc["baseline", "test acc"], color="0.4", ls="--")
ax2.axvline(ablation.loc["baseline", "gap"], color="0.4", ls="--")
ax1.invert_yaxis()
fig.tight_layout()
plt.show()

# %% [markdown]
# What the table shows, in the `cpu` profile (a short training on a small training set;
# read the numbers in your own run above, the cell below prints the comparisons):
#
# - The baseline overfits: its clean training accuracy is far above its test accuracy.
# - Random crops and flips, and all the techniques together, shrink the gap: the training
#   accuracy falls closer to the test accuracy (the cell below checks both, and lists every
#   technique that narrowed the gap by more than two points).
# - Label smoothing lowers the network's confidence on the test images, as section 5
#   predicted.
# - Whether a technique also *raises* the test accuracy depends on the budget, and the
#   cell below prints which ones did in your run. Augmentation, mixup, CutMix and the
#   combination make the training task much harder; in a dozen epochs on 2,000 images the
#   network is still far from fitting it (compare their training accuracy with the
#   baseline's), and a narrower gap need not mean a better test accuracy yet. The papers
#   train for hundreds of epochs, where these techniques win. The model-level
#   regularisers (dropout, DropBlock, stochastic depth) act here on a network of only three
#   blocks trained briefly. With one run per row, a difference of a point or so is not
#   evidence either way: another random seed moves every row's numbers too.

# %%
base = ablation.loc["baseline"]
helped = ablation.index[ablation["test acc vs baseline"] > 0.01].tolist()
narrowed = ablation.index[ablation["gap vs baseline"] < -0.02].tolist()
print(f"baseline: train {base['train acc']:.3f}, test {base['test acc']:.3f}, gap {base['gap']:.3f}")
print("raised the test accuracy by more than a point:", helped)
print("narrowed the gap by more than two points:", narrowed)
print(f"test confidence: baseline {base['confidence']:.3f}, label smoothing "
      f"{ablation.loc['label smoothing', 'confidence']:.3f}")
if cnnbook.claims_checked(PROFILE):
    assert base["gap"] > 0.1
    assert ablation.loc["crop + flip", "gap"] < base["gap"]
    assert ablation.loc["all together", "gap"] < base["gap"] - 0.05
    assert ablation.loc["label smoothing", "confidence"] < base["confidence"] - 0.02

# %% [markdown]
# ## 8. Explorer: DropBlock on the network's own feature maps
#
# The feature maps of the trained baseline after its second stage (32 channels of 16x16,
# for a test image). Pick the method, the drop rate and the block size: the middle panel
# shows the keep-mask with the fraction really dropped next to the target, the right one
# what the next layer receives (rescaled), and the title the share of holes that still
# have a kept neighbour. Things to try: dropout at 0.3 vs DropBlock at 0.3 with block 5;
# a block size as large as the map; the drop rate at 0.5 with block size 1 (DropBlock with
# $b = 1$ *is* dropout).

# %%
baseline_model = models["baseline"].eval()
X_test, _ = next(iter(test_iter))
with torch.no_grad():
    stage2 = baseline_model[:3](X_test[:1].to(device))[0].cpu()  # stem, stage1, stage2
print("feature maps:", tuple(stage2.shape))
explorer = DropBlockExplorer(feature_maps=stage2, method="dropblock", p=0.2, block_size=5)
explorer

# %%
print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in explorer.state.items()})

# %% [markdown]
# ## Summary
#
# - Regularisation acts on the data (augmentation, mixup, CutMix), on the model (dropout,
#   DropBlock, stochastic depth) or on the training objective and optimiser (weight decay,
#   label smoothing).
# - Weight decay equals an L2 penalty for SGD but not for Adam, where the penalty is
#   rescaled per weight; AdamW decouples it.
# - In convolutional layers dropped units are easy to fill in from their neighbours;
#   DropBlock drops contiguous blocks so that they are not.
# - Every technique of this chapter is a few lines, and each equals the library's version.
# - The ablation shows which techniques narrow the train/test gap and which also help
#   test accuracy at this budget.
#
# ## Exercises

# %% [markdown]
# ### Exercise 1: the DropBlock centre rate
#
# Write `centre_rate(p, block_size, height, width)` returning, as a Python `float`, the
# rate $\gamma$ at which DropBlock draws block centres so that a fraction `p` of a
# `height x width` map is dropped (blocks may only be centred where they fit entirely). Do
# not call `dropblock_gamma`.

# %% nbgrader={"grade": false, "grade_id": "ex-16-gamma", "locked": false, "schema_version": 3, "solution": true, "task": false}
def centre_rate(p, block_size, height, width):
    ### BEGIN SOLUTION
    valid = (height - block_size + 1) * (width - block_size + 1)
    return float(p * height * width / (block_size ** 2 * valid))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-16-gamma-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert type(centre_rate(0.1, 3, 16, 16)) is float
assert math.isclose(centre_rate(0.1, 1, 8, 8), 0.1)
assert math.isclose(centre_rate(0.1, 3, 16, 16), 0.1 / 9 * 256 / 196)
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
import inspect
import random

from cnnbook.regularization.dropblock import dropblock_gamma as _ref_gamma
_rng = random.Random(16)
for _ in range(50):
    _h, _w = _rng.randint(5, 40), _rng.randint(5, 40)
    _b = _rng.choice([b for b in (1, 3, 5, 7) if b <= min(_h, _w)])
    _p = _rng.random()
    assert math.isclose(centre_rate(_p, _b, _h, _w), _ref_gamma(_p, _b, _h, _w), rel_tol=1e-9)
assert "dropblock_gamma" not in inspect.getsource(centre_rate)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: label smoothing by hand
#
# Write `smoothed_ce(logits, y, eps)`: the mean cross-entropy of `logits` (N, K) against
# the targets $(1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon/K$, as a 0-dimensional
# tensor. Use `F.log_softmax` (or `torch.log_softmax`); do not use `F.cross_entropy`,
# `nn.CrossEntropyLoss` or this chapter's `label_smoothing_cross_entropy`.

# %% nbgrader={"grade": false, "grade_id": "ex-16-smoothing", "locked": false, "schema_version": 3, "solution": true, "task": false}
def smoothed_ce(logits, y, eps):
    ### BEGIN SOLUTION
    k = logits.shape[1]
    target = torch.full_like(logits, eps / k)
    target[torch.arange(len(y)), y] += 1 - eps
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-16-smoothing-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
_y = torch.tensor([0, 2])
_out = smoothed_ce(_logits, _y, 0.1)
assert isinstance(_out, torch.Tensor) and _out.ndim == 0
assert torch.allclose(_out, nn.CrossEntropyLoss(label_smoothing=0.1)(_logits, _y))
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
import inspect
_src = inspect.getsource(smoothed_ce)
assert "cross_entropy" not in _src and "CrossEntropyLoss" not in _src
_g = torch.Generator().manual_seed(1616)
for _ in range(20):
    _n, _k = int(torch.randint(1, 40, (1,), generator=_g)), int(torch.randint(2, 20, (1,), generator=_g))
    _eps = float(torch.rand((), generator=_g))
    _l = torch.randn(_n, _k, generator=_g, dtype=torch.float64) * 4
    _t = torch.randint(0, _k, (_n,), generator=_g)
    assert torch.allclose(smoothed_ce(_l, _t, _eps),
                          nn.CrossEntropyLoss(label_smoothing=_eps)(_l, _t))
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3: mixup by hand
#
# Write `mix_batch(x, y, lam, num_classes)` that returns the mixed images and the mixed
# one-hot labels (float, shape (N, num_classes)) when every image $i$ is mixed with image
# $i-1$ of the batch (image 0 with the last one), with weight `lam` on image $i$: the
# pairing torchvision uses. Do not use this chapter's `mixup` or torchvision.

# %% nbgrader={"grade": false, "grade_id": "ex-16-mixup", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mix_batch(x, y, lam, num_classes):
    ### BEGIN SOLUTION
    onehot = F.one_hot(y, num_classes).float()
    return (lam * x + (1 - lam) * x.roll(1, 0),
            lam * onehot + (1 - lam) * onehot.roll(1, 0))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-16-mixup-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_x = torch.arange(3.0).view(3, 1, 1, 1)
_mx, _my = mix_batch(_x, torch.tensor([0, 1, 2]), 0.75, 3)
assert torch.allclose(_mx.flatten(), torch.tensor([0.5, 0.75, 1.75]))
assert torch.allclose(_my[0], torch.tensor([0.75, 0.0, 0.25]))
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
import inspect
from torchvision.transforms import v2 as _v2
_src = inspect.getsource(mix_batch)
assert "mixup" not in _src.replace("mix_batch", "") and "MixUp" not in _src
for _seed in range(5):
    _xb = torch.rand(7, 3, 5, 5)
    _yb = torch.randint(0, 10, (7,))
    torch.manual_seed(_seed)
    _tx, _ty = _v2.MixUp(alpha=0.4, num_classes=10)(_xb, _yb)
    torch.manual_seed(_seed)
    _lam = float(torch.distributions.Beta(torch.tensor([0.4]), torch.tensor([0.4])).sample(()))
    _ox, _oy = mix_batch(_xb, _yb, _lam, 10)
    assert torch.allclose(_ox, _tx, atol=1e-6) and torch.allclose(_oy.float(), _ty, atol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (experiment): the sources' full augmentation recipe
#
# The ablation's augmentation row used only random crops and flips. Train the baseline
# network again with crop and flip **plus** the sources' recipe (`sources_recipe()`:
# rotation 15°, colour jitter, affine, random erasing), using `train_variant` with
# `augment=True, recipe=sources_recipe()` and the name `"reg_ex_recipe"`. Store the model
# in `recipe_model` and the measurements dictionary in `recipe_run`. Then compare its
# test accuracy and gap with the "crop + flip" row in a markdown cell: does the stronger
# recipe narrow the gap further? Does it help the test accuracy at this budget, and what
# would you change (epochs, recipe strength) to let it help?

# %% nbgrader={"grade": false, "grade_id": "ex-16-recipe", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
recipe_model, recipe_result, recipe_run = train_variant("reg_ex_recipe", augment=True,
                                                        recipe=sources_recipe())
print({k: round(v, 3) for k, v in recipe_run.items()})
print("crop + flip:", ablation.loc["crop + flip", ["test acc", "gap"]].round(3).to_dict())
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-16-recipe-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert isinstance(recipe_model, nn.Module) and isinstance(recipe_run, dict)
assert 0 <= recipe_run["train acc"] <= 1 and 0 <= recipe_run["test acc"] <= 1
assert math.isclose(recipe_run["gap"], recipe_run["train acc"] - recipe_run["test acc"])
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
import json
from cnnbook.results import results_dir as _results_dir
_path = _results_dir(PROFILE) / "16-reg_ex_recipe.json"
assert _path.exists(), "no result record named reg_ex_recipe: train through train_variant"
assert json.loads(_path.read_text())["chapter"] == "16"
assert math.isclose(cnnbook.evaluate(recipe_model, train_plain, device)["acc"],
                    recipe_run["train acc"], abs_tol=1e-9)
assert math.isclose(cnnbook.evaluate(recipe_model, test_iter, device)["acc"],
                    recipe_run["test acc"], abs_tol=1e-9)
### END HIDDEN TESTS

# %% [markdown]
# *Your interpretation here.*

# %% [markdown]
# ## References
#
# - I. Loshchilov, F. Hutter (2019). *Decoupled Weight Decay Regularization.* ICLR.
# - A. Krogh, J. A. Hertz (1992). *A Simple Weight Decay Can Improve Generalization.* NIPS.
# - N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov (2014).
#   *Dropout: A Simple Way to Prevent Neural Networks from Overfitting.* JMLR 15.
# - J. Tompson, R. Goroshin, A. Jain, Y. LeCun, C. Bregler (2015). *Efficient Object
#   Localization Using Convolutional Networks.* CVPR (spatial dropout, Dropout2d).
# - G. Ghiasi, T.-Y. Lin, Q. V. Le (2018). *DropBlock: A regularization method for
#   convolutional networks.* NeurIPS.
# - G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Q. Weinberger (2016). *Deep Networks with
#   Stochastic Depth.* ECCV.
# - C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna (2016). *Rethinking the
#   Inception Architecture for Computer Vision.* CVPR (label smoothing).
# - H. Zhang, M. Cisse, Y. N. Dauphin, D. Lopez-Paz (2018). *mixup: Beyond Empirical Risk
#   Minimization.* ICLR.
# - S. Yun, D. Han, S. J. Oh, S. Chun, J. Choe, Y. Yoo (2019). *CutMix: Regularization
#   Strategy to Train Strong Classifiers with Localizable Features.* ICCV.
