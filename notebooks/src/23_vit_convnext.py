# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 23 · Beyond CNNs: Vision Transformers and ConvNeXt
#
# Every network of this course so far was built on the same prior: an image is made of
# local patterns that mean the same thing wherever they appear. Convolutions encode that
# prior (*locality* and *translation equivariance*) in the architecture, and pooling and
# striding build a hierarchy from small to large. In 2020 a network without any of it, a
# Transformer that reads an image as a sequence of patches, matched the best CNNs on
# ImageNet. Two years later a CNN modernised step by step with the Transformer's design
# choices matched the Transformers again. This chapter builds both and measures the
# trade-off behind the story: what an inductive bias is worth when data is scarce.
#
# **What you will learn**
#
# - the history: Transformers (2017), ViT (2020, "An image is worth 16x16 words"), DeiT
#   (2021), ConvNeXt (2022, "A ConvNet for the 2020s"), and the inductive-bias argument;
# - a Vision Transformer built step by step: patch embedding (a strided convolution,
#   shown numerically), the class token, position embeddings, multi-head self-attention
#   written out and checked against `nn.MultiheadAttention`, and ViT-B/16's parameter
#   count checked against torchvision's;
# - ViT against ResNet on CIFAR-10 at **equal training time** and over **growing
#   training-set sizes**, measured on this machine;
# - where the class token looks: attention maps and attention rollout on test images;
# - ConvNeXt built from a ResNet block one design step at a time, each step's parameters
#   and FLOPs counted, and ConvNeXt-T checked against torchvision in parameters and outputs;
# - a note on neural architecture search.

# %%
import math
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnbook
from cnnbook.data.catalog import info
from cnnbook.data.loader import StepsPerEpoch
from cnnbook.interpret.rollout import attention_rollout, class_token_map, fuse_heads, vit_attentions
from cnnbook.models.cifar_resnet import resnet20
from cnnbook.models.convnext import (DESIGN_STEPS, ConvNeXt, ConvNeXtBlock, LayerNorm2d, StepBlock,
                                     convnext_cifar, convnext_tiny, design_step_network)
from cnnbook.models.convnext import from_torchvision_state_dict as convnext_from_torchvision
from cnnbook.models.vit import (EncoderBlock, MultiHeadSelfAttention, PatchEmbedding,
                                VisionTransformer, patchify, scaled_dot_product_attention,
                                vit_b_16, vit_tiny)
from cnnbook.models.vit import from_torchvision_state_dict as vit_from_torchvision
from cnnbook.profiling import count_macs, count_params
from cnnbook.summary import show_source
from cnnbook.timeline import milestones, plot_timeline
from cnnbook.train import optim, schedules
from cnnbook.widgets.attention import AttentionExplorer

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # sizes: training-set sizes of the ViT-vs-ResNet comparison (class-balanced subsets);
    # budget_s: training seconds per run, turned into steps with each model's measured
    # throughput (None: `steps` steps each); evals: test evaluations per run; probe_steps:
    # steps of the throughput probe; test_limit: test images of every accuracy;
    # check_224: compare ViT-B/16 and ConvNeXt-T with torchvision at 224 px (else a small
    # configuration of the same code); flops_side: image side of the design-step FLOP
    # table; design_steps: the steps counted (None: all); convnext_run: train the small
    # ConvNeXt too; patch_steps: steps per run of the patch-size exercise; n_show: maps shown
    "smoke": dict(sizes=(100, 200), batch_size=16, budget_s=None, steps=1, evals=1,
                  probe_steps=1, test_limit=100, check_224=False, flops_side=64,
                  design_steps=(0, 5, 12), convnext_run=False, patch_steps=1, n_show=4),
    "cpu":   dict(sizes=(1_000, 4_000, 16_000), batch_size=128, budget_s=45, steps=None,
                  evals=3, probe_steps=3, test_limit=2_000, check_224=True, flops_side=224,
                  design_steps=None, convnext_run=True, patch_steps=40, n_show=8),
    "full":  dict(sizes=(1_000, 4_000, 16_000, 50_000), batch_size=128, budget_s=600,
                  steps=None, evals=10, probe_steps=20, test_limit=None, check_224=True,
                  flops_side=224, design_steps=None, convnext_run=True, patch_steps=2_000,
                  n_show=8),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")
chapter_start = time.perf_counter()

# %% [markdown]
# The `cpu` profile trains each network of the comparison for 45 seconds on training sets
# of 1,000, 4,000 and 16,000 CIFAR-10 images (seven runs, about five minutes); that is far
# from convergence, and it is the regime a laptop can afford. The `full` profile gives each
# run ten minutes on a GPU and adds the whole training set.
#
# ## 1. The idea and its history
#
# | year | paper | what it did |
# |---|---|---|
# | 2017 | Vaswani et al., "Attention is all you need" | the **Transformer**: a sequence model made only of self-attention and MLPs, no recurrence, no convolution |
# | 2018 | Wang et al., non-local networks; Hu et al., SENet | attention *inside* CNNs ([chapter 17](17_normalization_attention.ipynb)) |
# | 2020 | Dosovitskiy et al., "An image is worth 16x16 words" | **ViT**: cut the image into 16x16 patches, treat them as words, a plain Transformer encoder; beats ResNets *when pre-trained on 300 M images* (JFT-300M), loses to them on ImageNet alone |
# | 2021 | Touvron et al., DeiT | ViT trained on ImageNet-1k only, with strong augmentation, regularisation and distillation from a CNN teacher |
# | 2021 | Liu et al., Swin Transformer | attention in local windows with a hierarchy of resolutions: CNN priors put back into a Transformer |
# | 2022 | Liu et al., "A ConvNet for the 2020s" | **ConvNeXt**: ResNet-50 changed step by step with Transformer design choices; a pure ConvNet that matches Swin |
#
# **The inductive-bias argument.** A convolution *assumes* that nearby pixels belong
# together (locality) and that a pattern means the same everywhere (weight sharing,
# translation equivariance). Those assumptions are true enough of images that a CNN does
# not have to learn them: it needs fewer examples. Self-attention assumes almost nothing:
# every token may attend to every other from the first layer, and the only hint about
# geometry is a learned position embedding. The ViT paper's conclusion is that this
# weaker prior *loses* on small data (the network has to learn locality from examples)
# and *wins* on very large data (it is not held back by assumptions that are only
# approximately true). Section 3 measures the first half of this on CIFAR-10.
#
# [Chapter 14](14_comparison.ipynb)'s timeline, from ResNet on, with the two networks of
# this chapter:

# %%
recent = [m for m in milestones() if m.year >= 2012]
fig = plot_timeline(recent, figsize=(12, 4))
print(pd.DataFrame([(m.year, m.name, m.idea, m.chapter) for m in recent if m.lane == "beyond CNNs"],
                   columns=["year", "name", "idea", "chapter"]).to_string(index=False))

# %% [markdown]
# ## 2. A Vision Transformer, step by step
#
# ### Patches are tokens, and patch embedding is a strided convolution
#
# ViT cuts a $H \times W$ image into $N = HW/p^2$ non-overlapping $p \times p$ patches,
# flattens each into a vector of $C p^2$ numbers and maps it linearly to a
# $D$-dimensional *token*. `patchify` does the cutting with two reshapes and a permute:

# %%
show_source(patchify);

# %% [markdown]
# A $p \times p$ convolution with stride $p$ computes, at each output position, a dot
# product of its kernel with exactly one patch, and no two positions share a pixel. So
# "flatten the patches, then one `nn.Linear`" and "a strided conv" are the same map with
# the same weights, arranged differently. `PatchEmbedding` uses the conv (it is faster);
# here are both, numerically:

# %%
torch.manual_seed(0)
embed = PatchEmbedding(in_channels=3, dim=64, patch_size=4)
images = torch.randn(2, 3, 32, 32)
tokens_conv = embed(images)                                   # conv, flatten, transpose
linear = nn.Linear(3 * 4 * 4, 64)
with torch.no_grad():
    linear.weight.copy_(embed.proj.weight.reshape(64, -1))    # the same weights, as a matrix
    linear.bias.copy_(embed.proj.bias)
tokens_linear = linear(patchify(images, 4))
patch_gap = (tokens_conv - tokens_linear).abs().max().item()
print(f"{tuple(images.shape)} -> {tuple(patchify(images, 4).shape)} flattened patches "
      f"-> {tuple(tokens_conv.shape)} tokens")
print(f"strided conv vs patches x linear layer: largest difference {patch_gap:.1e}")
assert patch_gap < 1e-5

# %% [markdown]
# A 32x32 CIFAR image with 4x4 patches gives 64 tokens; a 224x224 ImageNet image with
# 16x16 patches gives 196. The cost of attention grows with the square of the number of
# tokens, which is why the patches are large.
#
# ### The class token and position embeddings
#
# Two learned parameters finish the input. A **class token** (one $D$-vector, the same for
# every image) is put in front of the sequence; after the last block its state is what the
# classifier reads, so the network must learn to gather the evidence into it (BERT's
# `[CLS]` token). **Position embeddings**, one learned $D$-vector per position (65 here),
# are added to the tokens. Without them the network could not tell a patch's place:
# self-attention treats its input as a *set*, so shuffling the patches would only shuffle
# the outputs (the tests in `tests/models/test_vit.py` check this both ways). The code is
# `VisionTransformer.tokens`:

# %%
show_source(VisionTransformer.tokens);
model = vit_tiny()
with torch.no_grad():
    t = model.tokens(torch.randn(2, 3, 32, 32))
print("tokens entering the encoder:", tuple(t.shape), "(batch, 1 class token + 64 patches, dim)")
print("class token", tuple(model.cls_token.shape), " position embeddings", tuple(model.pos_embed.shape))

# %% [markdown]
# ### Multi-head self-attention, written out
#
# Every token $x_i$ emits a query $q_i$, a key $k_i$ and a value $v_i$ (three linear maps).
# Token $i$ reads from token $j$ in proportion to how well its query matches $j$'s key:
#
# $$\text{Attention}(Q, K, V) = \operatorname{softmax}\!\Big(\frac{QK^\top}{\sqrt{d}}\Big) V .$$
#
# Row $i$ of the softmax is a probability distribution over the tokens (the *attention
# weights*); dividing by $\sqrt d$ keeps the dot products of $d$-dimensional vectors at
# unit scale, so the softmax does not saturate as $d$ grows. **Multi-head** attention splits
# $D$ into $h$ slices of $d = D/h$ and lets each head attend on its own (one may follow
# colour, another shape), then concatenates the heads and mixes them with one more linear
# layer:

# %%
show_source(scaled_dot_product_attention);
show_source(MultiHeadSelfAttention);

# %% [markdown]
# PyTorch's `nn.MultiheadAttention` stores the three input maps as one
# `in_proj_weight` (queries, keys, values, in that order), exactly our `qkv` layer. Copy
# the weights across and the two modules must agree in their outputs and in their
# attention weights (PyTorch returns the heads' average by default, or each head):

# %%
torch.manual_seed(0)
ours = MultiHeadSelfAttention(dim=64, heads=4).eval()
theirs = nn.MultiheadAttention(64, 4, batch_first=True).eval()
with torch.no_grad():
    theirs.in_proj_weight.copy_(ours.qkv.weight)
    theirs.in_proj_bias.copy_(ours.qkv.bias)
    theirs.out_proj.weight.copy_(ours.proj.weight)
    theirs.out_proj.bias.copy_(ours.proj.bias)
x = torch.randn(3, 65, 64)
with torch.no_grad():
    out, weights = ours(x)
    ref_out, ref_mean = theirs(x, x, x, need_weights=True)
    _, ref_heads = theirs(x, x, x, need_weights=True, average_attn_weights=False)
gaps = {"output": (out - ref_out).abs().max().item(),
        "weights, mean of heads": (weights.mean(1) - ref_mean).abs().max().item(),
        "weights, every head": (weights - ref_heads).abs().max().item()}
for k, v in gaps.items():
    print(f"ours vs nn.MultiheadAttention, {k:24s}: largest difference {v:.1e}")
print("each row of the weights sums to", weights.sum(-1).mean().item())
assert max(gaps.values()) < 1e-5

# %% [markdown]
# ### The encoder block and the whole network
#
# A ViT block is a *pre-norm* Transformer block: LayerNorm, attention, add; LayerNorm, MLP
# (expand 4x, GELU, project back), add. Normalising before each sublayer leaves an
# untouched identity path through the whole network, as in [chapter 11](11_resnet.ipynb)'s
# pre-activation ResNet. The network: tokens, `depth` blocks, a final LayerNorm, the class
# token's state, one linear classifier.

# %%
show_source(EncoderBlock);
show_source(VisionTransformer.forward);

# %% [markdown]
# ViT-B/16 ("Base", 16x16 patches) has 12 blocks of width 768 with 12 heads and an MLP of
# 3072. Built from our table, its parameters and multiply-adds must be torchvision's. We
# build both on PyTorch's `meta` device (shapes without memory, so this is instant) and
# count; the FLOP counter needs the written-out attention (`set_fused_attention(False)`),
# because it cannot see inside PyTorch's fused attention kernel on a CPU.

# %%
with torch.device("meta"):
    vit_ours = vit_b_16().set_fused_attention(False)
    vit_tv = torchvision.models.vit_b_16()
vit_meta = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1.meta
vit_params = count_params(vit_ours)
vit_gmacs = count_macs(vit_ours) / 1e9
print(f"ViT-B/16 parameters: ours {vit_params:,}, torchvision {count_params(vit_tv):,}")
print(f"ViT-B/16 multiply-adds at 224 px: ours {vit_gmacs:.2f} G, torchvision's card "
      f"{vit_meta['_ops']:.2f} G; ImageNet top-1 of its weights {vit_meta['_metrics']['ImageNet-1K']['acc@1']}%")
parts = {"patch embedding": count_params(vit_ours.patch_embed),
         "class token + positions": vit_ours.cls_token.numel() + vit_ours.pos_embed.numel(),
         "12 encoder blocks": count_params(vit_ours.blocks),
         "final norm + classifier": count_params(vit_ours.norm) + count_params(vit_ours.head)}
print(pd.Series(parts, name="parameters").map("{:,}".format).to_string())
assert vit_params == count_params(vit_tv) == 86_567_656
assert abs(vit_gmacs - vit_meta["_ops"]) / vit_meta["_ops"] < 0.01

# %% [markdown]
# Same count, and the same function: torchvision's weights, renamed by
# `from_torchvision_state_dict` (its attention is an `nn.MultiheadAttention`, its MLP a
# numbered `Sequential`), load into our model with no key missing or left over, and the
# outputs agree. In the `cpu` and `full` profiles this is ViT-B/16 itself on a 224 px
# image; `smoke` checks a small ViT through the same code.

# %%
torch.manual_seed(0)
if cfg.check_224:
    tv_vit, our_vit, side = torchvision.models.vit_b_16(), vit_b_16(), 224
else:
    tv_vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2,
                                                  num_heads=4, hidden_dim=48, mlp_dim=96)
    our_vit = VisionTransformer(image_size=32, patch_size=8, dim=48, depth=2, heads=4, mlp_dim=96)
    side = 32
with torch.no_grad():   # torchvision starts its classifier at zero: give it weights to compare
    for p in tv_vit.parameters():
        p.add_(torch.randn_like(p) * 0.02)
loaded = our_vit.load_state_dict(vit_from_torchvision(tv_vit.state_dict()), strict=True)
img = torch.randn(1, 3, side, side)
with torch.no_grad():
    vit_gap = (our_vit.eval()(img) - tv_vit.eval()(img)).abs().max().item()
print(f"{side} px: missing keys {loaded.missing_keys}, unexpected {loaded.unexpected_keys}; "
      f"largest output difference {vit_gap:.1e}")
assert vit_gap < 1e-4
del tv_vit, our_vit, vit_ours, vit_tv

# %% [markdown]
# ## 3. ViT vs ResNet on CIFAR-10: equal time, growing data
#
# Now the experiment behind the inductive-bias argument. Two small networks of similar cost:
#
# - **ResNet-20** ([chapter 15](15_cifar10.ipynb)'s CIFAR ResNet, 0.27 M parameters): SGD
#   with momentum 0.9, learning rate 0.1, weight decay 5e-4;
# - **ViT-tiny** (`vit_tiny`: 4x4 patches, 64 tokens, width 128, 6 blocks, 4 heads,
#   0.81 M parameters): AdamW, learning rate 1e-3, weight decay 0.05, gradients clipped
#   at norm 1, the usual recipe for Transformers;
#
# both with warm-up then cosine decay, random crops and flips, batch 128. A third network,
# the small ConvNeXt of section 5 (`convnext_cifar`, AdamW like the ViT), runs on the largest
# training set only. Every run gets the **same number of training seconds**, whatever the
# training-set size: the budget is turned into steps with each network's throughput,
# measured by a short `fit` (`examples_per_sec` of its second epoch); training then runs for
# exactly that many steps (`StepsPerEpoch` hands `fit` a set number of batches per epoch,
# cycling through a small training set as often as needed), so a rerun gives the same
# numbers. On 1,000 images a run sees each image many times; on 16,000 only a few times.

# %%
ds = info("cifar10")
_, test_iter = cnnbook.load_data("cifar10", batch_size=256, limit=cfg.test_limit,
                                 test_limit=cfg.test_limit, normalize=True)
print(f"{test_iter.num_examples:,} test images for every accuracy")
RECIPES = {
    "ResNet-20": dict(build=resnet20, lr=0.1,
                      optimizer=optim.sgd(momentum=0.9, weight_decay=5e-4)),
    "ViT-tiny": dict(build=vit_tiny, lr=1e-3, optimizer=optim.adamw(weight_decay=0.05),
                     clip_grad_norm=1.0),
    "ConvNeXt-cifar": dict(build=convnext_cifar, lr=1e-3, optimizer=optim.adamw(weight_decay=0.05),
                           clip_grad_norm=1.0),
}
if not cfg.convnext_run:
    del RECIPES["ConvNeXt-cifar"]
for name, recipe in RECIPES.items():
    print(f"{name:15s} {count_params(recipe['build']()):>9,} parameters, "
          f"{count_macs(recipe['build'](), (1, 3, 32, 32)) / 1e6:5.1f} M multiply-adds per image "
          "(the ViT's attention products run in a fused kernel the counter cannot see)")


def loader_of(size):
    return cnnbook.load_data("cifar10", batch_size=cfg.batch_size, limit=size,
                             test_limit=cfg.test_limit, normalize=True, augment=True)[0]


def fit_recipe(key, loader, steps, epochs, **kwargs):
    """Train a fresh network of RECIPES[key] for `steps` batches per epoch with its recipe."""
    recipe = dict(RECIPES[key])
    build = recipe.pop("build")
    cnnbook.seed_everything(0)
    loader.generator.manual_seed(0)   # every run sees the same batches
    model = build()
    result = cnnbook.fit(model, StepsPerEpoch(loader, steps), epochs=epochs, progress=False,
                         live_plot=False, scheduler=schedules.warmup_cosine(warmup_fraction=0.1),
                         **recipe, **kwargs)
    return model, result

# %%
largest = loader_of(max(cfg.sizes))
speed = {}
if cfg.budget_s is not None:   # smoke trains a fixed number of steps and needs no probe
    for name in RECIPES:
        probe = fit_recipe(name, largest, cfg.probe_steps, epochs=2, record=False)[1]
        speed[name] = float(probe.history["examples_per_sec"].iloc[-1])
    print("training throughput (images/s):", {k: round(v) for k, v in speed.items()})


def steps_for(name):
    if cfg.budget_s is None:
        return cfg.steps
    return max(cfg.evals, round(cfg.budget_s * speed[name] / cfg.batch_size))

# %%
rows, nets = [], {}
for size in cfg.sizes:
    loader = largest if size == max(cfg.sizes) else loader_of(size)
    for name in RECIPES:
        if name == "ConvNeXt-cifar" and size != max(cfg.sizes):
            continue
        steps = steps_for(name)
        per_eval = max(1, steps // cfg.evals)
        net, res = fit_recipe(name, loader, per_eval, epochs=cfg.evals, test_iter=test_iter,
                              name=f"{name.lower()}_{size}", chapter="23",
                              extra={"train_images": size, "budget_s": cfg.budget_s})
        nets[name, size] = net
        rows.append({"model": name, "train images": size, "steps": per_eval * cfg.evals,
                     "passes over the data": per_eval * cfg.evals * cfg.batch_size / size,
                     "train seconds": res.record["train_seconds"],
                     "train_acc": res.history["train_acc"].iloc[-1], "test_acc": res.test_acc})
        print(f"{name:15s} {size:>6,} images: {per_eval * cfg.evals:4d} steps in "
              f"{res.record['train_seconds']:5.1f} s, test accuracy {res.test_acc:.3f}")
runs = pd.DataFrame(rows)
print(runs.round(3).to_string(index=False))

# %%
acc = runs.pivot(index="train images", columns="model", values="test_acc")
acc["ResNet - ViT"] = acc["ResNet-20"] - acc["ViT-tiny"]
print(acc.round(3))
fig, ax = plt.subplots(figsize=(5.8, 3.6))
for name, marker in (("ResNet-20", "o-"), ("ViT-tiny", "s-")):
    ax.semilogx(acc.index, acc[name], marker, label=name)
if "ConvNeXt-cifar" in acc:
    ax.semilogx(acc.index, acc["ConvNeXt-cifar"], "^", ms=9, label="ConvNeXt-cifar")
ax.axhline(0.1, color="grey", lw=0.8, ls=":", label="chance")
ax.set_xlabel("training images (log scale)")
ax.set_ylabel("test accuracy")
ax.set_title(f"CIFAR-10, {cfg.budget_s or cfg.steps} {'s' if cfg.budget_s else 'steps'} of training per point")
ax.legend()
small, big = min(cfg.sizes), max(cfg.sizes)
print(f"ResNet-20 minus ViT-tiny: {acc.loc[small, 'ResNet - ViT']:+.3f} with {small:,} images, "
      f"{acc.loc[big, 'ResNet - ViT']:+.3f} with {big:,}")
print("with the fewest images the ResNet is", "ahead of" if acc.loc[small, "ResNet - ViT"] > 0
      else "not ahead of", "the ViT; the gap", "narrows" if acc.loc[big, "ResNet - ViT"]
      < acc.loc[small, "ResNet - ViT"] else "does not narrow", "as the training set grows")
vit_gain = acc.loc[big, "ViT-tiny"] - acc.loc[small, "ViT-tiny"]
cnn_gain = acc.loc[big, "ResNet-20"] - acc.loc[small, "ResNet-20"]
print(f"from {small:,} to {big:,} images the ViT gains {vit_gain:+.3f}, the ResNet {cnn_gain:+.3f}")
steps_small = runs.set_index(["model", "train images"]).loc[("ResNet-20", small), "steps"]
print(f"the ResNet trained {steps_small} steps on {small:,} images in its {cfg.budget_s or '-'} s")
if cnnbook.claims_checked(PROFILE) and acc.loc[small, "ResNet-20"] > 0.2:
    assert acc.loc[small, "ResNet - ViT"] > 0
elif cnnbook.claims_checked(PROFILE):   # a busy machine turns the seconds into too few steps
    print("the ResNet is still near chance: on this machine's load the budget bought too few "
          "steps for the comparison to say anything; rerun on an idle machine")

# %% [markdown]
# The table and the plot above are this machine's measurement; the last lines print what
# they show. The claim asserted in the `cpu` and `full` profiles is the robust one: with
# 1,000 images the ResNet beats the ViT at equal training time (asserted once the ResNet is
# clearly above chance, above 20%; on a heavily loaded machine the 45 seconds buy so few
# steps that neither network learns, and the cell says so instead). The convolution's
# assumptions are worth many examples: the ResNet does not have to discover that nearby
# pixels belong together, the ViT has to learn it from the thousand images (the runs
# table's `train_acc` beside `test_acc` shows whether it got as far as fitting them on
# this budget, or whether the budget, not the data, held it back). As the training set
# grows, the printout says whether the gap narrows on this budget; the ViT paper's crossover
# (Transformers ahead) needed on the order of 100 million images and far longer training,
# which no laptop reproduces. Two things limit this comparison: each run is short and
# single-seeded ([chapter 17](17_normalization_attention.ipynb)'s exercise 3 measures how
# much two seeds differ), and the recipes are each network's usual ones rather than tuned
# for this budget. The ConvNeXt point (one run, largest set) shows where a modern ConvNet
# with the ViT's optimiser lands on the same budget.
#
# ## 4. Where does the class token look? Attention maps and rollout
#
# Every attention layer gives, for the class token, a distribution over the 64 patches:
# which patches it reads *in that layer*. One layer's map is hard to interpret, because
# after the first layer every token is already a mixture of many patches. **Attention
# rollout** (Abnar & Zuidema, 2020) follows the mixing through the layers: average the
# heads, add the identity for the residual connection ($A = \frac12 W + \frac12 I$),
# renormalise the rows, and multiply the layers' matrices, last layer on the left:

# %%
show_source(attention_rollout);

# %% [markdown]
# On the ViT trained on the largest training set, for the first test images: the image, the
# rollout map of the class token laid over it, and the raw attention of the last layer
# (mean of the heads).

# %%
vit_net = nets["ViT-tiny", max(cfg.sizes)].eval()
X_test, y_test = next(iter(test_iter))
X_show, y_show = X_test[:cfg.n_show].cpu().float(), y_test[:cfg.n_show].cpu()
mean = torch.tensor(ds.mean).view(1, 3, 1, 1)
std = torch.tensor(ds.std).view(1, 3, 1, 1)
shown = (X_show * std + mean).clamp(0, 1)
logits, maps = vit_attentions(vit_net.cpu(), X_show)
rollout = attention_rollout(maps)
roll_maps = class_token_map(rollout)
last_maps = class_token_map(fuse_heads(maps[-1]))
pred = logits.argmax(1)
fig, axes = plt.subplots(3, len(X_show), figsize=(1.5 * len(X_show), 4.8))
for j in range(len(X_show)):
    rgb = shown[j].permute(1, 2, 0).numpy()
    for i, m in enumerate((None, roll_maps[j], last_maps[j])):
        axes[i, j].imshow(rgb)
        if m is not None:
            big_map = F.interpolate(m[None, None], size=32, mode="bilinear", align_corners=False)[0, 0]
            axes[i, j].imshow(big_map.numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
    axes[0, j].set_title(f"{ds.classes[y_show[j]]}\n(pred. {ds.classes[pred[j]]})", fontsize=7)
for i, label in enumerate(("image", "rollout", "last layer")):
    axes[i, 0].set_ylabel(label, fontsize=8)
fig.tight_layout()
uniform = math.log(64)
entropy = lambda m: float(-(m * m.clamp_min(1e-12).log()).sum(-1).mean())
roll_rows = rollout[:, 0, 1:] / rollout[:, 0, 1:].sum(-1, keepdim=True)
last_rows = fuse_heads(maps[-1])[:, 0, 1:] / fuse_heads(maps[-1])[:, 0, 1:].sum(-1, keepdim=True)
print(f"class token's share of attention on the patches (rest on itself): rollout "
      f"{rollout[:, 0, 1:].sum(-1).mean():.2f}, last layer {fuse_heads(maps[-1])[:, 0, 1:].sum(-1).mean():.2f}")
print(f"entropy over the 64 patches (uniform = {uniform:.2f} nats): rollout {entropy(roll_rows):.2f}, "
      f"last layer {entropy(last_rows):.2f}")
assert torch.allclose(rollout.sum(-1), torch.ones(rollout.shape[:2]), atol=1e-4)
vit_net.to(device)

# %% [markdown]
# The printout gives two summaries. The entropy of the maps says how spread the attention
# is: the closer to the uniform value, the less the class token prefers particular patches.
# Rollout maps are smoother than single layers by construction (they average over paths
# through all layers); the first line gives how much of the class token's attention lands
# on the patches rather than on itself.
# Whether the maps highlight the object depends strongly on training: after a few minutes
# on a CPU they are a first look, not evidence that the network found the object; the same
# code on a network trained for hours gives the crisp maps of the papers.
#
# ### The attention explorer
#
# Choose a test image, a layer (or the rollout over all layers), a head (or the mean of the
# heads), and a discard ratio (rollout only: the weakest weights of each row are dropped
# before the product, a variant that sharpens the maps). Things to try: do different heads
# of the first layer look at different places (some at the patch's neighbours, as a
# convolution would)? Does the class token attend more to the patches in later layers?

# %%
AttentionExplorer(vit_net.cpu(), shown, class_names=ds.classes, labels=y_show,
                  normalize=(ds.mean, ds.std))

# %% [markdown]
# ## 5. ConvNeXt: a ResNet modernised one step at a time
#
# Liu et al. (2022) asked which of the Transformer's design choices a ConvNet lacks, and
# tested them one at a time on ResNet-50, first training it with a Transformer's recipe
# (AdamW, 300 epochs, heavy augmentation), which alone raised its ImageNet accuracy from
# 76.1% to 78.8%. Then, keeping every change that helped:
#
# 1. **macro design**: blocks per stage in the ratio 3:3:9:3 (Swin's 1:1:3:1) instead of
#    3:4:6:3; a **patchify stem**, a 4x4 conv with stride 4 (a ViT's patch embedding),
#    instead of the 7x7 conv and max-pool;
# 2. **ResNeXt-ify**: the 3x3 conv becomes **depthwise** (one filter per channel, like
#    attention's per-channel weighted sum), and the width grows from 64 to 96 to pay for it;
# 3. **inverted bottleneck**: thin -> 4x wider -> thin, like the Transformer's MLP (and
#    MobileNet V2, [chapter 13](13_mobilenet.ipynb));
# 4. **large kernels**: the depthwise conv moved to the top of the block (where the
#    channels are few, so it is cheap), then enlarged to **7x7** (Swin's window size);
# 5. **micro design**: ReLU -> **GELU**; **one** activation per block (between the two 1x1
#    convs) and **one** norm (after the depthwise conv); BatchNorm -> **LayerNorm**;
#    **separate downsampling layers** (LN + 2x2 conv with stride 2) between stages.
#
# The result, the ConvNeXt block, as `cnnbook.models.convnext` writes it (channels-last
# inside, so the LayerNorm and the 1x1 convs are plain `nn.LayerNorm` and `nn.Linear`):

# %%
show_source(ConvNeXtBlock);

# %% [markdown]
# *Layer scale* multiplies the branch by a learned per-channel factor that starts at
# 1e-6, so every block starts as (almost) the identity; stochastic depth
# ([chapter 16](16_regularization.ipynb)) skips whole branches in training. To follow the
# design path, every step is a setting of one generic block, `StepBlock` (three convs, with
# switches for the kernel, depthwise, the order, the norm and the activations and how many
# of each), and one network `StepNetwork`. The first row of `DESIGN_STEPS` is ResNet-50 (the
# tests check that it has exactly torchvision's parameters); each next row changes one
# thing; the last is our `convnext_tiny`. Parameters and multiply-adds of each step, counted
# on the `meta` device:

# %%
show_source(StepBlock.__init__);
step_rows = []
for k, (label, _) in enumerate(DESIGN_STEPS):
    if cfg.design_steps is not None and k not in cfg.design_steps:
        continue
    with torch.device("meta"):
        net = design_step_network(k)
    step_rows.append({"step": k, "design": label, "params (M)": count_params(net) / 1e6,
                      f"GMACs at {cfg.flops_side} px": count_macs(net, (1, 3, cfg.flops_side, cfg.flops_side)) / 1e9})
steps_table = pd.DataFrame(step_rows).set_index("step")
print(steps_table.round(2).to_string())
macs_col = f"GMACs at {cfg.flops_side} px"
with torch.device("meta"):
    r50_tv, cnx_tv = torchvision.models.resnet50(), torchvision.models.convnext_tiny()
print(f"ResNet-50: {count_params(r50_tv):,} parameters in torchvision; ConvNeXt-T: {count_params(cnx_tv):,}")
assert steps_table["params (M)"].iloc[0] * 1e6 == count_params(r50_tv)
assert round(steps_table["params (M)"].iloc[-1] * 1e6) == count_params(cnx_tv) == 28_589_128
if cfg.flops_side == 224:   # torchvision's model cards give the multiply-adds at 224 px
    r50_ops = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["_ops"]
    cnx_ops = torchvision.models.ConvNeXt_Tiny_Weights.IMAGENET1K_V1.meta["_ops"]
    print(f"torchvision's cards: ResNet-50 {r50_ops:.2f} G, ConvNeXt-T {cnx_ops:.2f} G multiply-adds")
    assert abs(steps_table[macs_col].iloc[0] - r50_ops) < 0.01
    assert abs(steps_table[macs_col].iloc[-1] - cnx_ops) < 0.01
if cfg.design_steps is None:   # the path's shape, as the next paragraph reads it
    m = steps_table[macs_col]
    assert m[1] > m[0] and m[3] < 0.6 * m[2] and m[4] > m[2]   # ratio costs; depthwise saves; width spends
    assert m[6] < m[5] < m[4] and m[7] < 1.05 * m[6]            # inverted, moved up; 7x7 nearly free
    assert (m.loc[8:11] == m[7]).all()                             # micro design: no multiply-adds

# %% [markdown]
# The table above (the paper's Figure 2 gives the same FLOPs per step: 4.1 G for
# ResNet-50, 4.5 G for ConvNeXt-T) shows the budget being spent and won back; in the `cpu`
# and `full` profiles, which count every step, the cell asserts each of the following. The
# stage ratio costs compute; the depthwise conv removes almost half of it (a 3x3 depthwise
# conv does $1/C$ of a dense conv's work), and the wider network spends it again; the
# inverted bottleneck and moving the depthwise conv up bring it back down, so the 7x7
# kernel comes almost for free. The micro-design steps change no multiply-add (one fewer
# norm saves a few parameters) but, in the paper, each adds accuracy. What this table does
# not show is time: depthwise convolutions do little arithmetic per byte of memory, so on
# a CPU ConvNeXt-T is slower than its FLOPs suggest ([chapter 13](13_mobilenet.ipynb)
# measured the same for MobileNets).
#
# ### ConvNeXt-T: the same network as torchvision's
#
# `convnext_tiny` has torchvision's 28,589,128 parameters (asserted above). With
# torchvision's weights, renamed by `from_torchvision_state_dict` (layer scale reshaped
# from (C, 1, 1) to (C,)), it computes the same function. Layer scale starts at 1e-6, which
# would make every block nearly the identity and hide a mistake in the blocks; we set it to
# random values of order 0.1-0.5 first.

# %%
torch.manual_seed(0)
if cfg.check_224:
    tv_cnx, our_cnx, side = torchvision.models.convnext_tiny(), convnext_tiny(), 224
else:
    from torchvision.models.convnext import CNBlockConfig
    tv_cnx = torchvision.models.convnext.ConvNeXt(
        [CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 2)], num_classes=10)
    our_cnx, side = ConvNeXt((16, 32), (2, 2), num_classes=10), 32
with torch.no_grad():
    for pname, p in tv_cnx.named_parameters():
        if pname.endswith("layer_scale"):
            p.uniform_(0.1, 0.5)
loaded = our_cnx.load_state_dict(convnext_from_torchvision(tv_cnx.state_dict()), strict=True)
img = torch.randn(1, 3, side, side)
with torch.no_grad():
    ref = tv_cnx.eval()(img)
    cnx_gap = (our_cnx.eval()(img) - ref).abs().max().item()
print(f"{side} px: missing keys {loaded.missing_keys}, unexpected {loaded.unexpected_keys}; "
      f"largest output difference {cnx_gap:.1e} (outputs of size up to {ref.abs().max():.2f})")
assert cnx_gap < 1e-4 * max(1.0, ref.abs().max().item())
del tv_cnx, our_cnx

# %% [markdown]
# ## 6. A note on neural architecture search
#
# ConvNeXt's path is a search by hand: a sequence of design changes, each kept if it
# improved accuracy at roughly constant FLOPs. **Neural architecture search** (NAS)
# automates the same loop. Zoph & Le (2017) trained a recurrent controller with
# reinforcement learning to propose layers, at a cost of thousands of GPU-days; NASNet
# (Zoph et al., 2018) searched for a *cell* on CIFAR-10 and stacked it for ImageNet;
# DARTS (Liu et al., 2019) made the choice differentiable and cut the cost to GPU-days;
# MnasNet and **MobileNet V3** ([chapter 13](13_mobilenet.ipynb)) searched with the measured
# latency on a phone in the objective, and **EfficientNet**-B0 came out of such a search
# before being scaled up. Radosavovic et al.'s RegNet (2020) searched *design spaces*
# instead of single networks, and found simple rules (widths that grow linearly across
# stages). The sources' compression table lists NAS with typical figures of 2-4x smaller and
# faster models at 0-1% accuracy loss; its price is the search itself, and the networks it
# finds are often less regular, which can make them slower on hardware than their FLOPs suggest.
#
# ## Summary
#
# - A ViT is a Transformer encoder on patch tokens: patch embedding (a strided conv,
#   equal to patches times a linear layer), a class token, learned position embeddings,
#   pre-norm blocks of multi-head self-attention and a GELU MLP. Ours equals
#   `nn.MultiheadAttention` in outputs and weights, and ViT-B/16 has torchvision's
#   86,567,656 parameters and outputs under its weights.
# - Self-attention has weaker built-in assumptions than a convolution. At equal training
#   time on CIFAR-10 subsets, the runs above measure what that costs when data is scarce.
# - Attention rollout combines the layers' attention with the residual path to show what
#   the class token draws on.
# - ConvNeXt is ResNet-50 changed step by step with the Transformer's choices (patchify
#   stem, 3:3:9:3, depthwise 7x7, inverted bottleneck, GELU, one LN and one activation per
#   block, separate downsampling); the FLOPs of each step are counted above, and
#   ConvNeXt-T equals torchvision's model.
#
# ## Exercises
#
# **Exercise 1 (patches by reshaping).** Write `my_patchify(images, p)` that turns a batch
# (B, C, H, W) into (B, N, C·p·p): the non-overlapping p x p patches, row by row (left to
# right, then top to bottom), each flattened in the order (channel, row, column), so that
# `F.linear(my_patchify(x, p), conv.weight.reshape(D, -1), conv.bias)` equals the strided
# convolution's tokens. Use only `reshape`/`view`, `permute`/`transpose` (no `F.unfold`,
# `nn.Unfold`, no convolution and not this chapter's `patchify`).

# %% nbgrader={"grade": false, "grade_id": "ex-23-patchify", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_patchify(images: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/p)(W/p), C*p*p), patches row by row, each in (C, p, p) order."""
    ### BEGIN SOLUTION
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-23-patchify-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
import torch
import torch.nn.functional as F
from torch import nn
_conv = nn.Conv2d(3, 8, 4, stride=4)
_x = torch.randn(2, 3, 8, 12)
_got = my_patchify(_x, 4)
assert isinstance(_got, torch.Tensor) and _got.shape == (2, 6, 48), "shape (B, N, C*p*p)"
_tokens = _conv(_x).flatten(2).transpose(1, 2)
assert torch.allclose(F.linear(_got, _conv.weight.reshape(8, -1), _conv.bias), _tokens, atol=1e-5)
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref_patches(x, p):
    # an independent reference: F.unfold gives (B, C*p*p, N) in the same orders
    return F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)


_g = generator(2301)
_cases = []
for _ in range(5):
    _p = int(torch.randint(1, 5, (1,), generator=_g))
    _h, _w = (int(v) * _p for v in torch.randint(1, 5, (2,), generator=_g))
    _c = int(torch.randint(1, 4, (1,), generator=_g))
    _cases.append((torch.randn(int(torch.randint(1, 4, (1,), generator=_g)), _c, _h, _w, generator=_g), _p))
agrees(my_patchify, _ref_patches, _cases,
       forbid=("torch.nn.functional.unfold", "torch.nn.functional.conv2d",
               "torch.nn.Unfold.forward", "cnnbook.models.vit.patchify"))
### END HIDDEN TESTS
print("my_patchify gives the strided convolution's patches")

# %% [markdown]
# **Exercise 2 (scaled dot-product attention).** Write `my_attention(q, k, v)` for tensors
# of shape (..., N, d): return `(output, weights)` where `weights = softmax(q kᵀ / √d)`
# over the last dimension and `output = weights @ v`. Do not call
# `F.scaled_dot_product_attention`, `nn.MultiheadAttention` or this chapter's
# `scaled_dot_product_attention`.

# %% nbgrader={"grade": false, "grade_id": "ex-23-attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """softmax(q k^T / sqrt(d)) v and the weights, for (..., N, d) inputs."""
    ### BEGIN SOLUTION
    weights = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(-1)
    return weights @ v, weights
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-23-attention-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
import torch
import torch.nn.functional as F
torch.manual_seed(0)
_q, _k, _v = torch.randn(2, 5, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 3)
_out, _w = my_attention(_q, _k, _v)
assert isinstance(_w, torch.Tensor) and _w.shape == (2, 5, 5) and _out.shape == (2, 5, 3)
assert torch.allclose(_w.sum(-1), torch.ones(2, 5), atol=1e-5), "each row of weights sums to 1"
assert torch.allclose(_out, F.scaled_dot_product_attention(_q, _k, _v), atol=1e-5)
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator


def _ref_attention(q, k, v):
    scores = torch.einsum("...id,...jd->...ij", q.double(), k.double()) / q.shape[-1] ** 0.5
    w = torch.exp(scores - scores.amax(-1, keepdim=True))
    w = w / w.sum(-1, keepdim=True)
    return (w @ v.double()).to(q.dtype), w.to(q.dtype)


_g = generator(2302)
_cases = []
for _ in range(5):
    _n, _m, _d, _dv = (int(v) for v in torch.randint(1, 9, (4,), generator=_g))
    _lead = tuple(int(v) for v in torch.randint(1, 4, (int(torch.randint(0, 3, (1,), generator=_g)),), generator=_g))
    _scale = float(torch.rand(1, generator=_g)) * 3 + 0.2
    _cases.append((torch.randn(*_lead, _n, _d, generator=_g) * _scale,
                   torch.randn(*_lead, _m, _d, generator=_g) * _scale,
                   torch.randn(*_lead, _m, _dv, generator=_g)))
agrees(my_attention, _ref_attention, _cases, atol=1e-5,
       forbid=("torch.nn.functional.scaled_dot_product_attention",
               "torch.nn.functional.multi_head_attention_forward",
               "cnnbook.models.vit.scaled_dot_product_attention"))
### END HIDDEN TESTS
print("my_attention agrees with scaled dot-product attention")

# %% [markdown]
# **Exercise 3 (attention rollout).** Write `my_rollout(attentions)` for a list of
# per-layer attention weights, each (B, heads, N, N), first layer first: average the heads,
# add the residual (`A = 0.5 * W + 0.5 * I`), renormalise each row to sum 1, and multiply
# the layers so that the result is `A_L @ ... @ A_1` (B, N, N). Do not call this chapter's
# `attention_rollout`.

# %% nbgrader={"grade": false, "grade_id": "ex-23-rollout", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_rollout(attentions) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) with the heads averaged."""
    ### BEGIN SOLUTION
    result = None
    for w in attentions:
        a = w.mean(1)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(-1, keepdim=True)
        result = a if result is None else a @ result
    return result
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-23-rollout-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
import torch
_w1 = torch.tensor([[[[0.2, 0.8], [0.6, 0.4]]]])
_w2 = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
_r = my_rollout([_w1, _w2])
assert isinstance(_r, torch.Tensor) and _r.shape == (1, 2, 2)
assert torch.allclose(_r[0], torch.tensor([[0.6, 0.4], [0.375, 0.625]]), atol=1e-6)
### BEGIN HIDDEN TESTS
from cnnbook.grading import agrees, generator
from cnnbook.interpret.rollout import attention_rollout as _oracle

_g = generator(2303)
_cases = []
for _ in range(4):
    _b, _h, _n, _layers = (int(v) for v in torch.randint(1, 6, (4,), generator=_g))
    _cases.append(([torch.randn(_b, _h, _n + 1, _n + 1, generator=_g).mul(2).softmax(-1)
                    for _ in range(_layers)],))
agrees(my_rollout, lambda maps: _oracle(maps), _cases, atol=1e-5,
       forbid=("cnnbook.interpret.rollout.attention_rollout",))
### END HIDDEN TESTS
print("my_rollout agrees with attention rollout")

# %% [markdown]
# **Exercise 4 (experiment: patch size).** The patch size sets the number of tokens: 4x4
# patches give 64 tokens on a CIFAR image, 8x8 only 16, 2x2 give 256. Write
# `patch_run(patch_size)` that trains a ViT like `vit_tiny` but with that patch size
# (`VisionTransformer(image_size=32, patch_size=..., dim=128, depth=6, heads=4, mlp_dim=256,
# num_classes=10)`) on the largest training set of section 3 (`largest`) for
# `cfg.patch_steps` steps with the ViT's recipe (`fit_recipe` helps: add your builder to
# `RECIPES` under a new name, or call `cnnbook.fit` yourself with `record=False`), and
# returns `{"test_acc": ..., "seconds": ...}` (the test accuracy on `test_iter` and
# `fit`'s training seconds, as floats). Run it for patch sizes 8 and 4, then explain in
# `patch_answer` what the number of tokens does to the cost per step and to the accuracy
# at equal steps, and why.

# %% nbgrader={"grade": false, "grade_id": "ex-23-patch-size", "locked": false, "schema_version": 3, "solution": true, "task": false}
def patch_run(patch_size: int) -> dict:
    """Test accuracy and training seconds of a ViT with `patch_size` after cfg.patch_steps steps."""
    ### BEGIN SOLUTION
    RECIPES[f"ViT-p{patch_size}"] = dict(RECIPES["ViT-tiny"], build=lambda: VisionTransformer(
        image_size=32, patch_size=patch_size, dim=128, depth=6, heads=4, mlp_dim=256, num_classes=10))
    _, res = fit_recipe(f"ViT-p{patch_size}", largest, cfg.patch_steps, epochs=1,
                        test_iter=test_iter, record=False)
    return {"test_acc": float(res.test_acc), "seconds": float(res.record["train_seconds"])}
    ### END SOLUTION

patch_results = {p: patch_run(p) for p in (8, 4)}
print(pd.DataFrame(patch_results).T)
### BEGIN SOLUTION
patch_answer = ("Halving the patch side quadruples the number of tokens, so every block's MLP "
                "does four times the work and attention sixteen times, and a step takes longer; "
                "at equal steps the finer patches usually reach a higher accuracy because each "
                "token describes a smaller region, so at equal time the comparison can go either way.")
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-23-patch-size-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert isinstance(patch_results, dict) and set(patch_results) == {8, 4}
for _p, _r in patch_results.items():
    assert set(_r) == {"test_acc", "seconds"}
    assert type(_r["test_acc"]) is float and 0.0 <= _r["test_acc"] <= 1.0
    assert type(_r["seconds"]) is float and _r["seconds"] > 0
assert isinstance(patch_answer, str) and len(patch_answer.split()) >= 20, "write a few sentences"
### BEGIN HIDDEN TESTS
_n_test = test_iter.num_examples
for _r in patch_results.values():   # an accuracy on test_iter is a whole number of images
    assert abs(_r["test_acc"] * _n_test - round(_r["test_acc"] * _n_test)) < 1e-6
_again = patch_run(16)
assert type(_again["test_acc"]) is float and type(_again["seconds"]) is float
assert abs(_again["test_acc"] * _n_test - round(_again["test_acc"] * _n_test)) < 1e-6
### END HIDDEN TESTS
print("patch-size experiment recorded")

# %% [markdown]
# ## Closing note: time of this chapter

# %%
minutes = (time.perf_counter() - chapter_start) / 60
print(f"profile {PROFILE}: the chapter ran in {minutes:.1f} minutes (from the parameters cell)")
