# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 10 · Batch normalisation
#
# Deep networks are hard to train for a mundane reason: every layer receives numbers whose
# scale keeps changing, because all the layers before it keep changing. Batch
# normalisation (BN) fixes the scale where it matters, right before each nonlinearity, with
# four lines of arithmetic. It let networks train with learning rates that used to blow
# them up, and together with the residual connections of the next chapter
# ([chapter 11](11_resnet.ipynb)) it made networks of a hundred layers routine.
#
# **What you will learn**
#
# - the computation: mini-batch mean and variance, normalise, then a learnable scale
#   $\gamma$ and shift $\beta$; per feature after a linear layer, per channel after a
#   convolution;
# - running statistics for inference, and the two modes `train()` / `eval()`;
# - a from-scratch `batch_norm` that agrees with `nn.BatchNorm2d` / `nn.BatchNorm1d` to
#   the last digit: outputs, running mean and variance (with PyTorch's unbiased-variance
#   detail) and gradients;
# - where BN goes (after the conv or linear layer, before the activation), in d2l's
#   BN-LeNet;
# - why it helps, *measured*: LeNet with and without BN at the same high learning rate,
#   a sweep over learning rates, and the deep ReLU network that chapters 07 and 08 left
#   without BN (VGG-11), trained with and without it;
# - what the network does with $\gamma$ and $\beta$, and the train/eval pitfalls (a batch
#   of one; forgetting `model.eval()`).

# %%
import copy
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.inspect import capture, first_conv
from cnnbook.models.batchnorm import BatchNorm, BNLeNet, batch_norm, bn_lenet
from cnnbook.models.vgg import vgg_fashion
from cnnbook.profiling import count_params
from cnnbook.summary import layer_shapes, shape_table, show_source
from cnnbook.train import TrainingDiverged, init_weights

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # epochs / limit / batch_size / lr: the three LeNet runs (without BN, BN from scratch,
    # BN from PyTorch); sweep_*: the learning-rate sweep (both networks, every lr), where a
    # run "trains" if it reaches test accuracy sweep_good; deep_*: section 4's deep ReLU
    # network (chapter 07's VGG-11 at width deep_width, 28 px), trained with and without BN
    "smoke": dict(epochs=1, limit=1_000, batch_size=256, lr=1.0,
                  sweep_lrs=(1.0,), sweep_epochs=1, sweep_limit=500, sweep_good=0.2,
                  deep_width=0.125, deep_fc_units=64, deep_batch_size=128, deep_lr=0.1,
                  deep_epochs=1, deep_limit=512, deep_test_limit=256),
    "cpu":   dict(epochs=10, limit=None, batch_size=256, lr=1.0,
                  sweep_lrs=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), sweep_epochs=1,
                  sweep_limit=10_000, sweep_good=0.2,
                  deep_width=0.125, deep_fc_units=256, deep_batch_size=128, deep_lr=0.1,
                  deep_epochs=3, deep_limit=10_000, deep_test_limit=2_000),
    "full":  dict(epochs=10, limit=None, batch_size=256, lr=1.0,
                  sweep_lrs=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0), sweep_epochs=2,
                  sweep_limit=None, sweep_good=0.2,
                  # deep_*: as cpu, because the point is the start of training
                  deep_width=0.125, deep_fc_units=256, deep_batch_size=128, deep_lr=0.1,
                  deep_epochs=3, deep_limit=10_000, deep_test_limit=2_000),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# The `cpu` profile keeps d2l's network, image size (28 px), batch size, learning rate
# and 10 epochs (LeNet is small enough for a laptop) and cuts only the learning-rate
# sweep, to one epoch on 10,000 images: the difference BN makes is visible within the
# first epoch. `full` is d2l's setting: 10 epochs, lr 1.0, batch 256.
#
# ## 1. The idea and a little history
#
# Standardising the *inputs* of a model (zero mean, unit variance per feature) has long
# been standard advice: it puts all weights on a similar scale and lets gradient descent
# take equal-sized steps in all directions (LeCun et al., 1998, *Efficient BackProp*).
# Sergey Ioffe and Christian Szegedy (2015) asked: why only the inputs? Each layer is the
# input of the next one. Their batch normalisation standardises the inputs of *every*
# layer, using the statistics of the current mini-batch. Their explanation was "internal
# covariate shift" (a layer has to chase a distribution that moves whenever earlier
# layers are updated); later work found that BN's main effect is rather to make the loss
# smoother and the gradients better behaved (Santurkar et al., 2018), so that larger
# learning rates become safe (Bjorck et al., 2018). Either way, the practical outcome was
# dramatic: their BN-Inception reached the accuracy of GoogLeNet in a fraction of the
# training steps.
#
# For a mini-batch $\mathcal{B}$ of values $x$ of one feature (or one channel),
#
# $$\hat\mu_\mathcal{B} = \frac{1}{|\mathcal{B}|}\sum_{x\in\mathcal{B}} x,\qquad
#   \hat\sigma^2_\mathcal{B} = \frac{1}{|\mathcal{B}|}\sum_{x\in\mathcal{B}}(x-\hat\mu_\mathcal{B})^2,\qquad
#   \mathrm{BN}(x) = \gamma \odot \frac{x-\hat\mu_\mathcal{B}}{\sqrt{\hat\sigma^2_\mathcal{B}+\epsilon}} + \beta .$$
#
# - $\epsilon$ (1e-5 in PyTorch) keeps the division safe when a feature is constant.
# - $\gamma$ and $\beta$ are **learned**, one pair per feature or channel. Without them
#   every layer would be forced to output mean 0 and variance 1, which a sigmoid would see
#   as "always near its linear middle"; with them the network can choose any mean and
#   scale, including undoing the normalisation ($\gamma=\sigma$, $\beta=\mu$).
# - After a **fully connected** layer the statistics are per feature, over the batch
#   ($N$ values each). After a **convolution** they are per *channel*, over the batch and
#   all positions ($N\cdot H\cdot W$ values), so that every position of a feature map is
#   treated alike, as the convolution treats them.
#
# ## 2. `batch_norm` from scratch
#
# The whole method fits in one function. It lives in `cnnbook` because the tests below
# and [chapter 11](11_resnet.ipynb)'s networks rely on it; read it first:

# %%
show_source(batch_norm);

# %% [markdown]
# Walking through it:
#
# - `shape` is `(1, C)` or `(1, C, 1, 1)`: a per-channel vector reshaped so it broadcasts
#   over the batch (and the positions).
# - `dims` lists every dimension except the channel one: `[0]` for a linear layer,
#   `[0, 2, 3]` for a convolution.
# - In **training** the batch statistics normalise the batch, and the running
#   statistics are nudged towards them: `running = (1 - momentum) * running + momentum * batch`
#   (momentum 0.1: each new batch gets 10% weight). The running variance uses the
#   *unbiased* batch variance ($n/(n-1)$ times the biased one), as PyTorch does, while the
#   batch is normalised with the biased one. It matters for small batches.
# - In **evaluation** the running statistics replace the batch ones, so a test image is
#   processed the same way whatever else is in its batch.
#
# A batch of four values of one feature, by hand:

# %%
x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])
y, rmean, rvar = batch_norm(x, None, None, torch.zeros(1), torch.ones(1), training=True)
print("normalised:", y.flatten().tolist())
print(f"batch mean {x.mean():.2f}, biased variance {x.var(unbiased=False):.2f}, "
      f"unbiased {x.var():.3f}")
print(f"running mean 0.9*0 + 0.1*{x.mean():.1f} = {rmean.item():.3f}; "
      f"running var 0.9*1 + 0.1*{x.var():.3f} = {rvar.item():.4f}")

# %% [markdown]
# The layer around it keeps $\gamma$ and $\beta$ as parameters and the running
# statistics as *buffers* (saved with the model, not trained), and picks training or
# evaluation from the module's `self.training` flag that `model.train()` and
# `model.eval()` set:

# %%
show_source(BatchNorm);

# %% [markdown]
# ### Is it really PyTorch's batch norm?
#
# We give both layers the same $\gamma$ and $\beta$, feed the same three batches in
# training mode, then one in evaluation mode, and compare everything: outputs, running
# statistics and the gradients with respect to the input, $\gamma$ and $\beta$.

# %%
def compare_with_pytorch(num_dims, shape, steps=3):
    """Largest relative difference between our BatchNorm and PyTorch's, in float64."""
    torch.manual_seed(0)
    ours = BatchNorm(shape[1], num_dims).double()
    theirs = (nn.BatchNorm2d if num_dims == 4 else nn.BatchNorm1d)(shape[1]).double()
    with torch.no_grad():
        ours.gamma.uniform_(0.5, 2)
        ours.beta.uniform_(-1, 1)
        theirs.weight.copy_(ours.gamma)
        theirs.bias.copy_(ours.beta)
    diffs = {}
    def worst(key, a, b):
        rel = ((a - b).abs().max() / b.abs().max()).item()
        diffs[key] = max(diffs.get(key, 0.0), rel)
    for step in range(steps):
        xa = (torch.randn(shape, dtype=torch.float64) * 3 + step).requires_grad_()
        xb = xa.detach().clone().requires_grad_()
        ya, yb = ours(xa), theirs(xb)
        (ya ** 3).sum().backward()
        (yb ** 3).sum().backward()
        worst("train output", ya, yb)
        worst("running mean", ours.running_mean, theirs.running_mean)
        worst("running var", ours.running_var, theirs.running_var)
        worst("grad input", xa.grad, xb.grad)
    worst("grad gamma", ours.gamma.grad, theirs.weight.grad)
    worst("grad beta", ours.beta.grad, theirs.bias.grad)
    ours.eval(), theirs.eval()
    x = torch.randn(shape, dtype=torch.float64)
    worst("eval output", ours(x), theirs(x))
    return diffs

equality = pd.DataFrame({"BatchNorm2d (N, C, H, W)": compare_with_pytorch(4, (8, 3, 5, 5)),
                         "BatchNorm1d (N, C)": compare_with_pytorch(2, (16, 6))})
print(equality.map(lambda v: f"{v:.1e}"))
assert (equality.to_numpy() < 1e-12).all()

# %% [markdown]
# The table above prints the largest difference in each quantity, relative to its
# size. We compared in float64 (double precision, about 16 significant digits), so that
# what remains is rounding in the last digits, nothing more; the cell asserts every entry
# is below 1e-12. (In float32 the same comparison agrees to about 6 digits, the precision
# of float32.) Had we updated the running variance with the biased variance, as d2l's
# from-scratch version does, the "running var" row would be off by a factor $(n-1)/n$ of
# the batch part: small for big batches, but not PyTorch's layer.
#
# ## 3. Where it goes: BN-LeNet
#
# The rule of the paper: batch norm goes **after** the convolution or fully connected
# layer and **before** the activation. (A bias in the layer before a BN is wasted: BN
# subtracts the mean anyway and $\beta$ provides the shift. d2l keeps the biases, and so do
# we, to keep its network.) d2l's BN-LeNet puts one after each of LeNet's four hidden
# layers; unlike [chapter 05](05_lenet.ipynb)'s LeNet, the first convolution has no padding (28 -> 24 px).
# `bn_lenet(norm=...)` builds it with our layer (`"scratch"`), PyTorch's (`"torch"`), or
# none (`None`: the same network without BN, our comparison):

# %%
show_source(BNLeNet);
net = bn_lenet("scratch")
print(net)

# %%
X = torch.randn(2, 1, 28, 28)
shapes = layer_shapes(net, X)
shapes

# %%
plain_params, bn_params = count_params(bn_lenet(None)), count_params(net)
print(f"LeNet without BN: {plain_params:,} parameters; BN-LeNet: {bn_params:,} "
      f"(+{bn_params - plain_params}: a gamma and a beta per channel or unit)")
assert bn_params - plain_params == 2 * (6 + 16 + 120 + 84)

# %% [markdown]
# torchinfo's view of the same network, with the parameters of each layer:

# %%
print(shape_table(net, (1, 1, 28, 28)))

# %% [markdown]
# ## 4. Why it helps: the same LeNet, the same high learning rate
#
# d2l trains BN-LeNet with a learning rate of **1.0**, plain SGD, batch 256, Xavier
# initialisation, and reports a test accuracy around 0.80 after 10 epochs. We train the
# network twice with exactly these settings: without BN, and with our from-scratch BN.
# The batches are identical (same seed, same order).

# %%
train_iter, test_iter = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                          limit=cfg.limit)
print(f"{train_iter.num_examples:,} training and {test_iter.num_examples:,} test images, "
      f"{len(train_iter)} batches per epoch")

# %%
cnnbook.seed_everything(0)
plain = bn_lenet(None)
plain_result = cnnbook.fit(plain, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                           init="xavier", name="lenet_no_bn_lr1", chapter="10")

# %%
cnnbook.seed_everything(0)
bn_net = bn_lenet("scratch")
bn_result = cnnbook.fit(bn_net, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                        init="xavier", name="bn_lenet_scratch", chapter="10")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
viz.plot_history(plain_result.history, ax=axes[0], title=f"LeNet without BN, lr {cfg.lr}")
viz.plot_history(bn_result.history, ax=axes[1], title=f"BN-LeNet (from scratch), lr {cfg.lr}")
axes[0].set_ylim(0, 2.5)
fig.tight_layout()
comparison = pd.DataFrame({
    "without BN": plain_result.history.set_index("epoch")["test_acc"],
    "with BN": bn_result.history.set_index("epoch")["test_acc"]})
print("test accuracy after each epoch:")
print(comparison.round(3))
first_plain, first_bn = plain_result.history.iloc[0], bn_result.history.iloc[0]
print(f"first epoch: mean training loss {first_plain.train_loss:.3f} without BN, "
      f"{first_bn.train_loss:.3f} with (chance: ln 10 = {math.log(10):.3f}); "
      f"test accuracy {first_plain.test_acc:.3f} vs {first_bn.test_acc:.3f}")
final_gap = bn_result.test_acc - plain_result.test_acc
print(f"after {cfg.epochs} epochs: test accuracy {plain_result.test_acc:.3f} without BN, "
      f"{bn_result.test_acc:.3f} with ({100 * final_gap:+.1f} points for BN)")
print(f"training time: {plain_result.seconds:.0f} s without BN, {bn_result.seconds:.0f} s with")

# %% [markdown]
# The table above prints the test accuracy after every epoch, and the lines under it the
# first epoch of each run and the final gap. With sigmoids and a learning rate of 1.0, the
# plain LeNet spends its whole first epoch at chance: its mean training loss over that
# epoch is at $\ln 10 \approx 2.30$ (the loss of a uniform guess) or above, because the
# sigmoids of the hidden layers sit in their flat tails and the gradient that reaches the
# first layers is tiny. BN-LeNet learns from the first batches: every sigmoid receives
# inputs of mean $\beta$ and spread $\gamma$, where it has a usable slope, and its
# first-epoch loss is far below chance. The plain network does get going later; the last
# line prints where both end after the full budget, within a few points of each other. So at this
# setting BN buys a fast, safe start more than a different end point (the deep network
# at the end of this section is where it makes the difference between training and not).
# The price is per step: BN adds computation (and our from-scratch version is slower than
# PyTorch's fused kernel), as the training times above show. The cell below asserts all
# three parts (chance, far below chance, within 10 points at the end) on the numbers above.

# %%
if cnnbook.claims_checked(PROFILE):   # the claim above, on the numbers above
    assert first_plain.train_loss > math.log(10) - 0.05, "the plain LeNet left chance in epoch 1"
    assert first_bn.train_loss < math.log(10) - 0.5, "BN-LeNet did not learn in epoch 1"
    assert abs(final_gap) < 0.1, "the plain LeNet did not catch up"

# %% [markdown]
# ### PyTorch's layer, trained the same way
#
# `norm="torch"` uses `nn.BatchNorm2d` and `nn.BatchNorm1d`. Given the same starting
# weights and the same batches, the two versions should follow the same trajectory. We
# check that first on a few steps, then train the concise version like the other two.

# %%
cnnbook.seed_everything(0)
ours, theirs = bn_lenet("scratch"), bn_lenet("torch")
theirs.load_state_dict({k.replace("gamma", "weight").replace("beta", "bias"): v
                        for k, v in ours.state_dict().items()})
ours.to(device), theirs.to(device)
opts = [torch.optim.SGD(m.parameters(), lr=cfg.lr) for m in (ours, theirs)]
gaps = []
for step, (Xb, yb) in zip(range(20), train_iter):
    losses = []
    for model, opt in zip((ours, theirs), opts):
        loss = F.cross_entropy(model(Xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    gaps.append(abs(losses[0] - losses[1]))
print(f"{len(gaps)} SGD steps, losses {losses[0]:.4f} (scratch) vs {losses[1]:.4f} (torch); "
      f"largest gap {max(gaps):.1e}")
assert max(gaps) < 1e-3

# %%
cnnbook.seed_everything(0)
torch_bn_net = bn_lenet("torch")
torch_result = cnnbook.fit(torch_bn_net, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                           init="xavier", name="bn_lenet", chapter="10")
print(f"test accuracy: from scratch {bn_result.test_acc:.3f}, nn.BatchNorm {torch_result.test_acc:.3f}; "
      f"{bn_result.examples_per_sec:,.0f} vs {torch_result.examples_per_sec:,.0f} examples/s")

# %% [markdown]
# The two final accuracies printed above should agree closely (the runs differ only by
# float rounding, which grows slowly over thousands of steps); PyTorch's fused kernel is
# faster per example.
#
# ### Sensitivity to the learning rate
#
# One high learning rate is an anecdote. Here is a sweep: each network, trained for the
# same short budget at each learning rate, from the same start. A run whose loss becomes
# NaN counts as chance (0.1).

# %%
sweep_train, sweep_test = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size,
                                            limit=cfg.sweep_limit)
rows = []
for lr in cfg.sweep_lrs:
    for label, norm in (("without BN", None), ("with BN", "torch")):
        cnnbook.seed_everything(0)
        try:
            res = cnnbook.fit(bn_lenet(norm), sweep_train, sweep_test, epochs=cfg.sweep_epochs,
                              lr=lr, init="xavier", record=False, progress=False,
                              live_plot=False)
            acc = res.test_acc
        except TrainingDiverged:
            acc = 0.1
        rows.append({"lr": lr, "network": label, "test_acc": acc})
sweep = pd.DataFrame(rows).pivot(index="lr", columns="network", values="test_acc")
print(sweep.round(3))
good_lrs = {net: [lr for lr in sweep.index if sweep.loc[lr, net] >= cfg.sweep_good]
            for net in sweep.columns}
for net, lrs in good_lrs.items():
    span = f"from {min(lrs):g} to {max(lrs):g}" if lrs else "at none of them"
    print(f"{net}: test accuracy >= {cfg.sweep_good} at {len(lrs)} of {len(sweep)} learning "
          f"rates, {span}")
fig = viz.plot_functions(sweep.index, {c: sweep[c] for c in sweep.columns},
                         title=f"test accuracy after {cfg.sweep_epochs} epoch(s)",
                         xlabel="learning rate", ylabel="test accuracy")
fig.axes[0].set_xscale("log")

# %% [markdown]
# The table and plot above show, for each learning rate, what each network reached, and
# the two lines under the table at how many of the rates each one got clearly above chance
# (test accuracy at least `sweep_good`, 0.2; chance is 0.1). With this short budget (in
# `cpu`, one epoch on 10,000 images: 40 steps) the plain sigmoid LeNet has not left chance
# at a single rate of the sweep, from 0.01 to 10: it needs more steps than that to get off
# its plateau, whatever the step size. BN-LeNet is above the bar over a wide range of
# rates, in the `cpu` run all seven (three orders of magnitude); its test accuracy is highest
# in the middle of the range and falls again at the largest rates, where the weights (and
# with them the running statistics that the test uses) still move a lot from step to
# step. The cell below asserts that every rate at which the plain LeNet clears the bar is
# one where BN-LeNet does too, and that BN-LeNet clears it at more of them. That
# robustness is the practical meaning of "BN makes training easier": less tuning, and
# larger steps.

# %%
if cnnbook.claims_checked(PROFILE):   # the claim above, on the sweep above
    assert set(good_lrs["without BN"]) <= set(good_lrs["with BN"])
    assert len(good_lrs["with BN"]) > len(good_lrs["without BN"])

# %% [markdown]
# Why larger steps are safe has a neat partial explanation, which exercise 3 asks you to
# verify: the output of conv + BN does not change when the conv's weights are multiplied
# by a constant $c$, and the gradient with respect to those weights is divided by $c$. Weights
# that grow therefore receive smaller updates, a built-in brake on the effective learning
# rate.

# %% [markdown]
# ### Where BN matters most: a deep ReLU network
#
# LeNet has four hidden layers, and its trouble at lr 1.0 came from sigmoids. The networks
# that made BN indispensable were deep stacks of ReLU convolutions: [chapter 07](07_vgg.ipynb)'s
# VGG and [chapter 08](08_nin.ipynb)'s NiN both train without it, both can sit at chance for a
# long time at the start, and both chapters leave the cure to this one. Here it is, measured on
# chapter 07's VGG-11 (eight 3x3 convolutions in five blocks, then three fully connected
# layers, all with ReLUs) on 28 px Fashion-MNIST, at the width this profile sets. We build it
# twice with `vgg_fashion`, once as it is and once with `batch_norm=True`, which puts a
# `BatchNorm2d` between every convolution and its ReLU (the layout of torchvision's
# `vgg11_bn`); the fully connected layers keep no BN, as in torchvision. Both get Xavier
# initialisation (as in chapter 07 and d2l), plain SGD at the same constant learning rate,
# and the same batches.

# %%
deep_train, deep_test = cnnbook.load_data("fashion_mnist", batch_size=cfg.deep_batch_size,
                                          limit=cfg.deep_limit, test_limit=cfg.deep_test_limit)


def deep_vgg(batch_norm: bool) -> nn.Module:
    """Chapter 07's VGG-11 for 28x28 Fashion-MNIST at this profile's width, with or without BN."""
    return vgg_fashion(width_mult=cfg.deep_width, small_input=True,
                       fc_units=cfg.deep_fc_units, batch_norm=batch_norm)


for bn in (False, True):
    m = deep_vgg(bn)
    kinds = [type(layer).__name__ for layer in m.modules()]
    print(f"VGG-11{' with BN' if bn else ' without BN'}: {kinds.count('Conv2d')} conv + "
          f"{kinds.count('Linear')} linear layers, {kinds.count('ReLU')} ReLUs, "
          f"{kinds.count('BatchNorm2d')} BN layers, {count_params(m):,} parameters")
print(f"{deep_train.num_examples:,} training images, {len(deep_train)} SGD steps per epoch, "
      f"lr {cfg.deep_lr}")

# %% [markdown]
# First, what the two networks look like at the start, before any training: one batch
# through each, freshly initialised (Xavier), in training mode (so BN uses the batch's
# statistics, as it will while training). The cell prints the size (root mean square) of
# each block's output, how different the ten logits of an image are, and the size of the
# gradient that reaches the first convolution's weights.

# %%
def signal_at_init(batch_norm: bool) -> pd.Series:
    """RMS of each block's output, logit spread and first-layer gradient norm at init."""
    cnnbook.seed_everything(0)
    m = init_weights(deep_vgg(batch_norm), "xavier").train()
    X, y = next(iter(deep_train))
    sizes = {}
    blocks = [name for name, _ in m.named_children() if name.startswith("block")]
    hooks = [getattr(m, name).register_forward_hook(
        lambda _m, _i, out, name=name: sizes.__setitem__(name, out.pow(2).mean().sqrt().item()))
        for name in blocks]
    logits = m(X.cpu())
    for h in hooks:
        h.remove()
    F.cross_entropy(logits, y.cpu()).backward()
    sizes["logit spread (std over classes)"] = logits.std(dim=1).mean().item()
    sizes["first conv: gradient norm"] = first_conv(m).weight.grad.norm().item()
    return pd.Series(sizes)


at_init = pd.DataFrame({"without BN": signal_at_init(False), "with BN": signal_at_init(True)})
print(at_init.to_string(float_format=lambda v: f"{v:.2e}"))
grad_ratio = (at_init.loc["first conv: gradient norm", "with BN"]
              / at_init.loc["first conv: gradient norm", "without BN"])
print(f"the first convolution's gradient is {grad_ratio:.0f}x larger with BN")
fade = at_init.loc["block1"] / at_init.loc["block5"]
print(f"block1 -> block5 the signal shrinks {fade['without BN']:.0f}x without BN "
      f"({fade['with BN']:.2f}x with)")
assert fade["without BN"] > 5 and grad_ratio > 100   # the description below, on these numbers

# %% [markdown]
# Now both networks train, from the same start, on the same batches:

# %%
deep_runs = {}
for label, bn in (("without BN", False), ("with BN", True)):
    cnnbook.seed_everything(0)
    try:
        res = cnnbook.fit(deep_vgg(bn), deep_train, deep_test, epochs=cfg.deep_epochs,
                          lr=cfg.deep_lr, init="xavier", name=f"vgg11_{'bn' if bn else 'no_bn'}",
                          chapter="10", extra={"width_mult": cfg.deep_width,
                                               "fc_units": cfg.deep_fc_units})
        deep_runs[label] = res.history
    except TrainingDiverged as exc:   # a NaN loss: keep the epochs before it
        print(f"{label}: {exc}")
        deep_runs[label] = exc.result.history
deep = pd.concat({label: h.set_index("epoch")[["train_loss", "train_acc", "test_acc"]]
                  for label, h in deep_runs.items()}, axis=1)
print(deep.round(3).to_string())
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
for ax, (label, h) in zip(axes, deep_runs.items()):
    viz.plot_history(h, ax=ax, title=f"VGG-11 {label}, lr {cfg.deep_lr}")
axes[0].axhline(math.log(10), color="k", lw=0.7, ls="--")
axes[0].set_ylim(0, 2.6)
fig.tight_layout()

# %% [markdown]
# The table prints each epoch of both runs (in `smoke` there are too few steps for either
# to learn). Without BN the eleven-layer ReLU network does not train at this learning rate
# within the budget: its loss stays at $\ln 10$ (the dashed line) through the first epoch
# and has only begun to fall by the last, and its best test accuracy stays far below BN's
# (the cell compares best epochs: at this rate BN's test accuracy can jump by many points
# from one epoch to the next, as its running statistics trail the moving weights). The
# numbers at initialisation above show why: with Xavier initialisation every ReLU halves
# the signal's power, so the plain network's blocks hand on an ever fainter signal (the
# printed shrink factor from block 1 to block 5), its ten logits are nearly equal, and the
# gradient that reaches the first convolution is hundreds of times smaller than with BN.
# With BN every layer's input is rescaled to a usable size, whatever the weights, and the
# same network, at the same learning rate, on the same batches, trains from the first
# epoch. This is the situation [chapter 07](07_vgg.ipynb) and [chapter 08](08_nin.ipynb)
# describe (a plain deep ReLU network sitting at chance at the start), and why
# torchvision's `vgg11_bn` and every later network in this course have BN. The cell below
# asserts it on the numbers above (in `cpu` and `full`, whose `deep_*` knobs are the same:
# the demonstration is about the start of training). Kaiming initialisation (chapter 08)
# and residual connections ([chapter 11](11_resnet.ipynb)) are the other remedies.

# %%
if cnnbook.claims_checked(PROFILE):   # the claim above, on the numbers above
    plain_h, bn_h = deep_runs["without BN"], deep_runs["with BN"]
    assert plain_h.train_loss.iloc[0] > math.log(10) - 0.05, "plain VGG left chance in epoch 1"
    assert plain_h.test_acc.max() < 0.4, "the plain VGG trained"
    assert bn_h.train_loss.iloc[0] < math.log(10) - 0.5, "BN-VGG did not learn in epoch 1"
    assert bn_h.train_loss.iloc[-1] < 1.0, "BN-VGG did not train"
    assert bn_h.test_acc.max() > max(0.65, plain_h.test_acc.max() + 0.3), "BN-VGG did not generalise"

# %% [markdown]
# ## 5. What the network did with $\gamma$ and $\beta$
#
# The layers started at $\gamma = 1$, $\beta = 0$. Where did training move them?

# %%
fig, axes = plt.subplots(2, 4, figsize=(12, 4.5))
for col, name in enumerate(["bn1", "bn2", "bn_fc1", "bn_fc2"]):
    layer = getattr(bn_net, name)
    for row, (param, color) in enumerate(((layer.gamma, "tab:blue"), (layer.beta, "tab:orange"))):
        values = param.detach().cpu()
        axes[row, col].bar(range(len(values)), values, color=color)
        axes[row, col].axhline(1.0 if row == 0 else 0.0, color="k", lw=0.7, ls="--")
        axes[row, col].set_title(f"{name}: {'gamma' if row == 0 else 'beta'}", fontsize=9)
fig.tight_layout()
for name in ["bn1", "bn2", "bn_fc1", "bn_fc2"]:
    layer = getattr(bn_net, name)
    print(f"{name:7s} gamma mean {layer.gamma.mean():5.2f} (range {layer.gamma.min():5.2f} .. "
          f"{layer.gamma.max():5.2f}), beta mean {layer.beta.mean():5.2f}")

# %% [markdown]
# The dashed lines mark the starting values. Every layer has moved away from them (how
# far depends on how long it trained): the network uses $\gamma$ to choose how much of the
# sigmoid's curved part each channel uses (a large $\gamma$ pushes values into the
# saturating tails, making the unit more like a switch), and $\beta$ to shift the
# operating point. Normalisation fixes the scale; $\gamma$ and $\beta$ hand its choice back
# to the optimiser, as a plain, well-conditioned parameter.
#
# The running statistics are what the trained model uses at test time:

# %%
print("bn1 running mean:", bn_net.bn1.running_mean.cpu().numpy().round(2))
print("bn1 running var: ", bn_net.bn1.running_var.cpu().numpy().round(2))
print("batches seen:    ", int(bn_net.bn1.num_batches_tracked))

# %% [markdown]
# ## 6. Train mode and eval mode: two pitfalls
#
# **In training mode a prediction depends on the rest of the batch.** The same four test
# images, classified alone and together with four others, give different logits in
# `train()` mode, and identical ones in `eval()` mode. (We work on a copy, because every
# forward pass in training mode also updates the running statistics.)

# %%
X_test, y_test = next(iter(test_iter))
probe = copy.deepcopy(bn_net)
with torch.no_grad():
    probe.train()
    train_gap = (probe(X_test[:4]) - probe(X_test[:8])[:4]).abs().max().item()
    probe.eval()
    eval_gap = (probe(X_test[:4]) - probe(X_test[:8])[:4]).abs().max().item()
print(f"largest logit difference, batch of 4 vs batch of 8: train mode {train_gap:.3f}, "
      f"eval mode {eval_gap:.1e}")
assert eval_gap < 1e-4 < train_gap

# %% [markdown]
# **A batch of one cannot be normalised in training mode** after a fully connected
# layer: the variance of a single value is undefined, and both our layer and PyTorch's
# refuse:

# %%
probe.train()
for model in (probe, copy.deepcopy(torch_bn_net)):
    try:
        model.train()(X_test[:1])
    except ValueError as err:
        print(f"{type(model.bn_fc1).__name__}: {err}")

# %% [markdown]
# (After a convolution a single image still has $H\cdot W$ values per channel, so
# `BatchNorm2d` runs, with statistics from one image only.) **Forgetting `model.eval()`**
# is the classic bug: predictions then use the statistics of whatever batch you happen to
# feed, and quietly overwrite the running statistics. `cnnbook.evaluate` switches to eval
# mode for you; a loop you write yourself must do it. How much does it cost? Test accuracy
# on the same images in eval mode, and in training mode with small and large batches:

# %%
def accuracy_in_train_mode(model, X, y, batch_size):
    """Accuracy when the model (a copy) is left in training mode, batch by batch."""
    model = copy.deepcopy(model).train()
    with torch.no_grad():
        correct = sum((model(X[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
                      for i in range(0, len(y), batch_size))
    return correct / len(y)

modes = {"eval mode": cnnbook.evaluate(bn_net, [(X_test, y_test)])["acc"]}
for bs in (2, 8, len(y_test)):
    modes[f"train mode, batches of {bs}"] = accuracy_in_train_mode(bn_net, X_test, y_test, bs)
for k, v in modes.items():
    print(f"{k:28s} {v:.3f}")

# %% [markdown]
# The accuracies above are for one batch of test images. With large batches, training-mode
# statistics are close to the running ones and little is lost; with tiny batches the
# statistics are noisy and accuracy drops. That is also why BN struggles when the batch
# must be small (detection, segmentation, big images on small GPUs), and why layer
# normalisation (exercise 1) and group normalisation exist.
#
# ### Explore: batch statistics against batch size
#
# How noisy are a batch's statistics? The explorer below takes the trained BN-LeNet's
# activations just before each BN layer (`conv1`, `conv2`, `fc1`) on up to 2,048 test
# images, treats those images as the population, and draws 200 random batches of the
# chosen size. Left: each batch's mean and standard deviation of one channel against the
# population's (the cross). Middle: how the spread of the batch mean shrinks with the
# batch size, measured, predicted from the spread of the images' own map means (as
# $1/\sqrt{B}$), and what it would be if all $B \cdot H \cdot W$ values in a batch were
# independent. Right: one image's strongest activation after normalisation in training
# mode, across batches that contain it, against its eval-mode value. Look for how small
# $B$ must be before the right panel's spread matters, and for the gap between the
# measured and the "independent" lines for the convolutions: the values of one feature
# map move together, so an image adds far fewer independent values than it has pixels
# (the cell prints how many it is worth).

# %%
from cnnbook.widgets.batch_stats import BatchStatsExplorer

population = []
for X_batch, _ in test_iter:
    population.append(X_batch)
    if sum(len(x) for x in population) >= 2048:
        break
population = torch.cat(population)[:2048]
pre_bn = capture(bn_net, population, ["conv1", "conv2", "fc1"])
batch_stats = BatchStatsExplorer(pre_bn, layer="conv1", batch_size=8)
for layer in ("conv1", "conv2"):
    batch_stats.controls["layer"].value = layer
    s = batch_stats.state
    print(f"{layer}[0]: {s['per_image']} values per map, worth {s['effective_per_image']:.1f} "
          f"independent ones; batch-of-8 mean spread {s['mean_spread']:.3g} measured, "
          f"{s['mean_spread_iid']:.3g} if independent")
batch_stats.controls["layer"].value = "conv1"
batch_stats

# %% [markdown]
# ## 7. Inside the trained BN-LeNet
#
# The first layer's six 5x5 kernels, and what they do to one test image: the raw
# convolution, the same maps after batch norm, and after the sigmoid.

# %%
fig = viz.plot_kernels(first_conv(bn_net).weight, ncols=6, title="BN-LeNet: conv1 kernels")

# %%
maps = capture(bn_net, X_test[:1], ["conv1", "bn1", "act1"])
for name, title in (("conv1", "after conv1"), ("bn1", "after bn1"), ("act1", "after the sigmoid")):
    m = maps[name][0]
    print(f"{title:18s} values from {m.min():6.2f} to {m.max():6.2f}")
fig = viz.plot_feature_maps(maps["act1"][0], ncols=6, title="conv1 -> bn1 -> sigmoid, one test image")

# %% [markdown]
# The printout above shows the ranges: the raw convolution outputs are on whatever scale
# the weights happen to have; after BN (in eval mode: running statistics, then $\gamma$,
# $\beta$) they sit where the sigmoid is sensitive, and the sigmoid maps them to (0, 1).
#
# ## Summary
#
# - Batch norm standardises each feature (after a linear layer) or channel (after a
#   convolution) with the mean and variance of the mini-batch, then applies a learned
#   scale $\gamma$ and shift $\beta$. It goes after the conv/linear layer, before the
#   activation.
# - Training uses batch statistics and keeps running averages of them; evaluation uses the
#   running averages, so a prediction no longer depends on the batch. PyTorch updates the
#   running variance with the unbiased batch variance; our from-scratch layer does the
#   same and matches `nn.BatchNorm1d/2d` in outputs, running statistics and gradients.
# - Measured here: at learning rate 1.0 the sigmoid LeNet without BN spends its first
#   epoch at chance where BN-LeNet learns at once, and ends within a few points of it; in the
#   short learning-rate sweep BN-LeNet gets above chance at more learning rates than the
#   plain LeNet; and chapter 07's VGG-11, a deep ReLU network, does not train within the budget
#   without BN at a learning rate where with BN it does.
# - Pitfalls: call `model.eval()` for inference; batches of one cannot be normalised in
#   training; small batches give noisy statistics.
#
# ## Exercises
#
# **Exercise 1 (layer normalisation).** Layer normalisation (Ba et al., 2016) normalises
# each *example* over its own features instead of each feature over the batch, so it
# works for a batch of one and behaves the same in training and evaluation. Implement
# `layer_norm(X, eps)` for inputs of shape (N, ...) without $\gamma$ and $\beta$: every
# example is shifted to mean 0 and scaled to variance 1 (biased) over all its other
# dimensions.

# %% nbgrader={"grade": false, "grade_id": "ex-10-layer-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_norm(X: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each example of X over all its non-batch dimensions."""
    ### BEGIN SOLUTION
    dims = tuple(range(1, X.dim()))
    mean = X.mean(dim=dims, keepdim=True)
    var = ((X - mean) ** 2).mean(dim=dims, keepdim=True)
    return (X - mean) / torch.sqrt(var + eps)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-10-layer-norm-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_X = torch.randn(3, 4, 5, 5) * 4 + 2
assert torch.allclose(layer_norm(_X), F.layer_norm(_X, _X.shape[1:]), atol=1e-5)
_X = torch.randn(1, 7)
assert torch.allclose(layer_norm(_X), F.layer_norm(_X, (7,)), atol=1e-5)  # a batch of one
print("layer_norm agrees with F.layer_norm")
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator

_g = generator(1001)
agrees(layer_norm, lambda X, eps=1e-5: F.layer_norm(X, X.shape[1:], eps=eps),
       [(3 * torch.randn(2, 3, 4, 5, generator=_g) - 1, 1e-3), (torch.randn(5, 9, generator=_g),),
        (torch.randn(4, 2, 7, generator=_g) * 0.01, 1e-2)], atol=1e-5,
       forbid=("torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm",
               "torch.nn.functional.group_norm", "torch.group_norm", "torch.nn.Module.__init__"))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (fold BN into the convolution).** At inference a BN layer is just a fixed
# per-channel affine map, so it can be merged into the convolution before it, a standard
# trick of deployment tools: one layer less, same output. Write `fold_bn(conv, bn)` that
# returns a new `nn.Conv2d` (with a bias) computing `bn(conv(x))` in eval mode. Hint: with
# $s = \gamma / \sqrt{\text{running\_var} + \epsilon}$, the weight becomes $s\,W$ (per output
# channel) and the bias $s\,(b - \text{running\_mean}) + \beta$.

# %% nbgrader={"grade": false, "grade_id": "ex-10-fold-bn", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv equal to bn(conv(x)) in eval mode."""
    ### BEGIN SOLUTION
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        fused.bias.copy_(scale * (bias - bn.running_mean) + bn.bias)
    return fused
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-10-fold-bn-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(0)
for _bias in (True, False):
    _conv, _bn = nn.Conv2d(3, 5, 3, padding=1, bias=_bias), nn.BatchNorm2d(5)
    with torch.no_grad():
        _bn.running_mean.uniform_(-1, 1); _bn.running_var.uniform_(0.5, 2)
        _bn.weight.uniform_(0.5, 2); _bn.bias.uniform_(-1, 1)
    _bn.eval()
    _x = torch.randn(2, 3, 6, 6)
    _fused = fold_bn(_conv, _bn)
    assert isinstance(_fused, nn.Conv2d) and _fused.bias is not None
    assert torch.allclose(_fused(_x), _bn(_conv(_x)), atol=1e-5)
print("folded conv == conv + BN")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()
_g = generator(1002)
for _ci, _co, _k, _s, _p, _bias in ((2, 6, 3, 2, 0, True), (4, 3, 1, 1, 1, False), (3, 5, 5, 1, 2, True)):
    _conv, _bn = nn.Conv2d(_ci, _co, _k, stride=_s, padding=_p, bias=_bias), nn.BatchNorm2d(_co, eps=1e-3)
    with torch.no_grad():
        _bn.running_mean.copy_(torch.randn(_co, generator=_g))
        _bn.running_var.copy_(torch.rand(_co, generator=_g) + 0.3)
        _bn.weight.copy_(torch.randn(_co, generator=_g))
        _bn.bias.copy_(torch.randn(_co, generator=_g))
    _bn.eval()
    _x = torch.randn(3, _ci, 9, 8, generator=_g)
    _fused = fold_bn(_conv, _bn)
    assert isinstance(_fused, nn.Conv2d) and type(_fused).forward is nn.Conv2d.forward
    same(_fused(_x).detach(), _bn(_conv(_x)).detach(), atol=1e-5, what="folded conv")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (scale invariance).** Take a convolution without bias followed by
# `nn.BatchNorm2d` in training mode, and a fixed loss `(bn(conv(x)) * target).sum()`.
# Multiply the convolution's weights by `c`. Write `scale_effect(c)` that returns two
# numbers: the largest absolute change of the BN output, and the ratio
# `||grad W (scaled)|| / ||grad W (original)||` of the gradient norms with respect to the
# conv weight. What do you expect for `c = 10`? What does it mean for a learning rate?
# (For very small `c` the $\epsilon$ in the denominator starts to matter: why?)

# %% nbgrader={"grade": false, "grade_id": "ex-10-scale-invariance", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scale_effect(c: float, seed: int = 0) -> tuple[float, float]:
    """(max |output change|, gradient-norm ratio) when the conv weights are scaled by c."""
    torch.manual_seed(seed)
    conv, bn = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)
    x, target = torch.randn(8, 3, 6, 6), torch.randn(8, 4, 4, 4)
    ### BEGIN SOLUTION
    results = []
    for factor in (1.0, c):
        scaled = copy.deepcopy(conv)
        with torch.no_grad():
            scaled.weight.mul_(factor)
        out = bn(scaled(x))
        (out * target).sum().backward()
        results.append((out.detach(), scaled.weight.grad.norm().item()))
    change = (results[1][0] - results[0][0]).abs().max().item()
    return change, results[1][1] / results[0][1]
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-10-scale-invariance-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
for _c in (10.0, 0.5):
    _change, _ratio = scale_effect(_c)
    assert _change < 1e-3, "the BN output should not depend on the weight scale"
    assert abs(_ratio - 1 / _c) < 0.02 / _c, f"expected a gradient ratio of 1/{_c}, got {_ratio}"
print("output unchanged, gradient divided by c")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, generator, same
check_comparisons()


def _ratio(c, seed):
    torch.manual_seed(seed)
    _conv, _bn = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)
    _x, _t = torch.randn(8, 3, 6, 6), torch.randn(8, 4, 4, 4)
    _norms = []
    for _f in (1.0, c):
        _w = (_conv.weight.detach() * _f).requires_grad_(True)
        (_bn(F.conv2d(_x, _w)) * _t).sum().backward()
        _norms.append(_w.grad.norm().item())
    return _norms[1] / _norms[0]


_g = generator(1003)
for _c, _seed in zip((0.1 + 5 * torch.rand(3, generator=_g)).tolist(), (3, 11, 5)):
    _res = scale_effect(_c, _seed)
    assert type(_res) is tuple and len(_res) == 2 and all(type(v) is float for v in _res)
    assert _res[0] < 1e-3
    same(_res[1], _ratio(_c, _seed), rtol=1e-3, what=f"gradient ratio for c = {_c:.3f}")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (where BN goes).** Write `add_batch_norm(mlp)` that takes an `nn.Sequential`
# MLP (linear layers with activations between them) and returns a new `nn.Sequential`
# with an `nn.BatchNorm1d` inserted after every linear layer that is followed by an
# activation, and before that activation. The output layer gets none. Reuse the given
# layer objects.

# %% nbgrader={"grade": false, "grade_id": "ex-10-add-batch-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def add_batch_norm(mlp: nn.Sequential) -> nn.Sequential:
    """The MLP with BatchNorm1d between each hidden linear layer and its activation."""
    ### BEGIN SOLUTION
    layers = list(mlp)
    out = []
    for i, layer in enumerate(layers):
        out.append(layer)
        followed = i + 1 < len(layers) and not isinstance(layers[i + 1], nn.Linear)
        if isinstance(layer, nn.Linear) and followed:
            out.append(nn.BatchNorm1d(layer.out_features))
    return nn.Sequential(*out)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-10-add-batch-norm-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 32), nn.Sigmoid(),
                     nn.Linear(32, 10))
_new = add_batch_norm(_mlp)
assert [type(m) for m in _new] == [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear,
                                   nn.BatchNorm1d, nn.Sigmoid, nn.Linear]
assert _new[2].num_features == 64 and _new[5].num_features == 32 and _new[1] is _mlp[1]
assert _new(torch.randn(4, 1, 28, 28)).shape == (4, 10)
print("BN after each hidden linear layer, before its activation")
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, same
check_comparisons()
for _mlp in (nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)),
             nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 6), nn.GELU(),
                           nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)),
             nn.Sequential(nn.Linear(4, 4))):
    _want = []
    for _i, _m in enumerate(_mlp):
        _want.append(_m)
        if isinstance(_m, nn.Linear) and _i + 1 < len(_mlp) and not isinstance(_mlp[_i + 1], nn.Linear):
            _want.append(nn.BatchNorm1d(_m.out_features))
    _new = add_batch_norm(_mlp)
    assert isinstance(_new, nn.Sequential)
    same([type(m).__name__ for m in _new], [type(m).__name__ for m in _want], what="layers")
    same([m.num_features for m in _new if isinstance(m, nn.BatchNorm1d)],
         [m.num_features for m in _want if isinstance(m, nn.BatchNorm1d)], what="BatchNorm1d sizes")
    assert all(a is b for a, b in zip([m for m in _new if isinstance(m, nn.Linear)],
                                      [m for m in _mlp if isinstance(m, nn.Linear)])), "reuse the layers"
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - S. Ioffe, C. Szegedy (2015). *Batch Normalization: Accelerating Deep Network Training
#   by Reducing Internal Covariate Shift.* ICML.
# - Y. LeCun, L. Bottou, G. Orr, K.-R. Müller (1998). *Efficient BackProp.* In Neural
#   Networks: Tricks of the Trade.
# - S. Santurkar, D. Tsipras, A. Ilyas, A. Madry (2018). *How Does Batch Normalization
#   Help Optimization?* NeurIPS.
# - J. Bjorck, C. Gomes, B. Selman, K. Weinberger (2018). *Understanding Batch
#   Normalization.* NeurIPS.
# - J. L. Ba, J. R. Kiros, G. E. Hinton (2016). *Layer Normalization.* arXiv:1607.06450.
# - Y. Wu, K. He (2018). *Group Normalization.* ECCV.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, section
#   8.5 "Batch Normalization". Cambridge University Press.
