# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 20 · Seeing inside a CNN
#
# A trained network answers "cat" or "ship"; this chapter asks *why*, and how far the
# answers can be trusted. We train a CIFAR-10 ResNet and a network with a large first
# kernel ourselves, then open them up: the first layer's kernels next to
# [chapter 01](01_biology_of_vision.ipynb)'s Gabor filters, the feature maps through the
# depth of the ResNet, four ways to draw a *saliency map* (which pixels the decision rests
# on), Grad-CAM written from scratch and checked against Captum, a test from the literature
# that some saliency maps fail, and the geometry of the network's last hidden layer.
#
# **What you will learn**
#
# - how Gabor-like learned first-layer kernels are, *measured* (the correlation of the
#   best-fitting Gabor, against random kernels as a baseline);
# - what feature maps look like from the stem to the last stage of a ResNet;
# - vanilla gradients, SmoothGrad and integrated gradients, each checked against Captum;
# - **Grad-CAM** from scratch, equal to Captum's `LayerGradCam` within 1e-5, and a widget
#   to explore it by image, class and layer;
# - occlusion sensitivity, which needs no gradients, equal to Captum's `Occlusion`;
# - the **sanity check** of Adebayo et al. (2018): randomise the weights and see whether
#   the explanation notices;
# - t-SNE of the penultimate features, and nearest neighbours in feature space against
#   pixel space, with the agreement of their labels measured.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, LayerGradCam, Occlusion, Saliency
from torch import nn

import cnnbook
from cnnbook import viz
from cnnbook.data.catalog import info
from cnnbook.inspect import capture, first_conv
from cnnbook.interpret.embeddings import (nearest_neighbours, neighbour_agreement,
                                          penultimate_features, plot_embedding, plot_neighbours,
                                          tsne)
from cnnbook.interpret.gabor_fit import fit_gabors, gabor_dictionary
from cnnbook.interpret.gradcam import grad_cam, upsample
from cnnbook.interpret.occlusion import occlusion
from cnnbook.interpret.saliency import (integrated_gradients, saliency_map, smoothgrad,
                                        vanilla_gradient)
from cnnbook.interpret.sanity import block_names, cascading_randomization
from cnnbook.models.cifar_resnet import cifar_resnet
from cnnbook.train.schedules import warmup_cosine
from cnnbook.vision import gabor_bank, orientations
from cnnbook.widgets import FeatureMapExplorer
from cnnbook.widgets.gradcam import GradCAMExplorer

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # the ResNet: depth (6n + 2), `limit` training images (class-balanced), `epochs`,
    # batches of `batch_size`, SGD from `lr` with warm-up + cosine; the large-kernel net:
    # `stem_kernel` x `stem_kernel` first layer, its own images and epochs; explanations:
    # `n_explain` test images, SmoothGrad samples, integrated-gradient steps;
    # embeddings: `n_embed` test images for t-SNE and the neighbour counts
    "smoke": dict(depth=8, limit=500, test_limit=200, epochs=1, batch_size=64, lr=0.05,
                  stem_kernel=7, stem_limit=500, stem_epochs=1, n_explain=4, sg_samples=8,
                  ig_steps=16, n_embed=200, k=5),
    "cpu":   dict(depth=20, limit=8_000, test_limit=2_000, epochs=4, batch_size=64, lr=0.05,
                  stem_kernel=7, stem_limit=10_000, stem_epochs=6, n_explain=6,
                  sg_samples=25, ig_steps=32, n_embed=1_000, k=5),
    "full":  dict(depth=20, limit=None, test_limit=None, epochs=40, batch_size=128, lr=0.1,
                  stem_kernel=7, stem_limit=None, stem_epochs=30, n_explain=8,
                  sg_samples=50, ig_steps=64, n_embed=2_000, k=5),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
CLASSES = info("cifar10").classes
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# The `cpu` profile trains a ResNet-20 on 8,000 CIFAR-10 images for 4 epochs and the
# large-kernel network on 10,000 images for 6 epochs, sized from the speed of the course's
# small CIFAR ResNets on a 2-core CPU in chapters
# [16](16_regularization.ipynb)-[17](17_normalization_attention.ipynb), with a margin of two
# for a busy machine, to stay within ten minutes together; the training cells print their
# accuracy and minutes. That is far from converged (He et al. report 91.25 % for ResNet-20
# after 64,000 steps of batch 128), and the maps below get sharper with a better network:
# the `full` profile trains on all 50,000 images for 40 epochs on a GPU.
#
# ## 1. The idea and a little history
#
# - **Looking at the weights.** Hubel and Wiesel's oriented receptive fields
#   ([chapter 01](01_biology_of_vision.ipynb)) reappeared in the first layer of AlexNet
#   (Krizhevsky et al., 2012): Gabor-like edge and colour-blob detectors, learnt from data.
#   Only the first layer can be read this way; deeper kernels act on feature maps, not on pixels.
# - **Deconvolution and occlusion.** Zeiler and Fergus (2014, *Visualizing and
#   Understanding Convolutional Networks*) projected activations back to pixel space and
#   slid a grey square over the image to see where the class score collapses (occlusion
#   sensitivity). Their pictures of what layers 1-5 respond to shaped how we think about
#   CNNs, and helped them tune AlexNet into ZFNet.
# - **Gradients.** Simonyan, Vedaldi and Zisserman (2013, *Deep Inside Convolutional
#   Networks*) took the gradient of the class score with respect to the pixels: a
#   *saliency map* from one backward pass.
# - **Less noise, and axioms.** Gradients are speckled; SmoothGrad (Smilkov et al., 2017)
#   averages them over noisy copies of the image. Integrated gradients (Sundararajan, Taly
#   and Yan, 2017) integrate them along a path from a baseline image, so the attributions
#   add up to the change of the score (*completeness*).
# - **Class activation maps.** Grad-CAM (Selvaraju et al., 2017) weights a convolutional
#   layer's feature maps by the average gradient of the class score: coarse, but
#   class-discriminative, and it works for any CNN without retraining.
# - **Sanity checks.** Adebayo et al. (2018, *Sanity Checks for Saliency Maps*) randomised
#   a trained network's weights and found that some popular maps hardly changed: they
#   showed the image's edges, not the model's reasoning. A saliency method must pass this
#   test before its maps say anything about a model.
#
# ## 2. Two networks to look into
#
# A CIFAR ResNet ([chapter 15](15_cifar10.ipynb)'s `cifar_resnet`) for everything after the
# first layer. Its stem is a 3x3 convolution: nine weights per channel are too few to show
# the shape of a Gabor filter (section 3 measures why), so for the first layer we also train a small
# network whose first layer has 7x7 kernels with stride 2, as AlexNet's 11x11 and ResNet's
# 7x7 stems have.

# %%
train_iter, test_iter = cnnbook.load_data("cifar10", batch_size=cfg.batch_size, limit=cfg.limit,
                                          test_limit=cfg.test_limit, augment=True)
resnet = cifar_resnet(cfg.depth)
res_fit = cnnbook.fit(resnet, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                      momentum=0.9, weight_decay=5e-4,
                      scheduler=warmup_cosine(min(1, cfg.epochs / 4)),
                      name=f"resnet{cfg.depth}", chapter="20", profile=PROFILE)
resnet_minutes = res_fit.record["train_seconds"] / 60   # fit times its training epochs
resnet = resnet.eval().to(memory_format=torch.contiguous_format)
resnet_acc = float(res_fit.history["test_acc"].iloc[-1])
print(f"ResNet-{cfg.depth}: test accuracy {resnet_acc:.3f} after {cfg.epochs} epochs, "
      f"{resnet_minutes:.1f} min of training")

# %%
def large_kernel_net(kernel: int = 7, width: int = 48) -> nn.Sequential:
    """A first layer of `kernel` x `kernel` kernels (stride 2), then two 3x3 layers, GAP, fc."""
    return nn.Sequential(
        nn.Conv2d(3, width, kernel, stride=2, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        nn.Conv2d(width, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


cnnbook.seed_everything(0)
stem_net = large_kernel_net(cfg.stem_kernel)
init_kernels = first_conv(stem_net).weight.detach().clone()
stem_train, stem_test = cnnbook.load_data("cifar10", batch_size=cfg.batch_size,
                                          limit=cfg.stem_limit, test_limit=cfg.test_limit,
                                          augment=True)
stem_fit = cnnbook.fit(stem_net, stem_train, stem_test, epochs=cfg.stem_epochs, lr=cfg.lr,
                       momentum=0.9, weight_decay=5e-4,
                       scheduler=warmup_cosine(min(1, cfg.stem_epochs / 4)),
                       name=f"large_kernel{cfg.stem_kernel}", chapter="20", profile=PROFILE)
stem_minutes = stem_fit.record["train_seconds"] / 60
stem_net = stem_net.eval()
print(f"{cfg.stem_kernel}x{cfg.stem_kernel}-stem net: test accuracy "
      f"{stem_fit.history['test_acc'].iloc[-1]:.3f}, {stem_minutes:.1f} min of training; "
      f"both networks: {resnet_minutes + stem_minutes:.1f} min")

# %% [markdown]
# ## 3. First-layer kernels and Gabor filters
#
# Here are the learnt 7x7 kernels (each shown in colour, scaled to its own range), and
# [chapter 01](01_biology_of_vision.ipynb)'s Gabor filters for comparison.

# %%
learned = first_conv(stem_net).weight.detach().cpu()
viz.plot_kernels(learned, ncols=12, scale=0.9, title=f"learnt {cfg.stem_kernel}x{cfg.stem_kernel} kernels")
plt.show()
bank = gabor_bank(orientations(8), wavelengths=(3.0, 5.0), size=cfg.stem_kernel, sigma=(1.2, 2.0))
viz.plot_kernels(bank, ncols=8, scale=0.9, title="chapter 01's Gabor filters (8 orientations, 2 wavelengths)")
plt.show()

# %% [markdown]
# How Gabor-like is a kernel? `cnnbook.interpret.gabor_fit` gives a number. An RGB kernel is
# first reduced to its main spatial pattern (the first singular vector of its 3 x 49
# matrix: the shape, whatever the colours). Then, over a dictionary of Gabor envelopes
# (orientation, wavelength, width, aspect ratio, a centre shift of up to one pixel), it
# fits the best Gabor of any phase, amplitude and offset by least squares and keeps the
# best **correlation**: 1 is a perfect Gabor. With this many Gabors to choose from, even
# noise gets a fair score, so the number only means something against a baseline: the
# same network's kernels *before* training (random), and Gaussian noise.

# %%
dictionary = gabor_dictionary(cfg.stem_kernel)
fits = {"trained": fit_gabors(learned, dictionary),
        "at initialisation": fit_gabors(init_kernels, dictionary),
        "Gaussian noise": fit_gabors(torch.randn(256, 3, cfg.stem_kernel, cfg.stem_kernel,
                                                 generator=torch.Generator().manual_seed(0)),
                                     dictionary)}
gabor_table = pd.DataFrame({name: dict(mean=float(f.correlation.mean()),
                                       median=float(f.correlation.median()),
                                       **{"share > 0.8": float((f.correlation > 0.8).float().mean())})
                            for name, f in fits.items()}).T
print(f"{len(dictionary)} Gabor envelopes in the dictionary")
print(gabor_table.round(3))
# the 3x3 stem of the ResNet, for comparison: nine numbers fit (almost) anything
res_stem = fit_gabors(first_conv(resnet).weight.detach().cpu()).correlation
rand3 = fit_gabors(torch.randn(256, 3, 3, 3, generator=torch.Generator().manual_seed(0))).correlation
print(f"ResNet's 3x3 stem: mean {res_stem.mean():.3f}; 3x3 noise: mean {rand3.mean():.3f}")

# %%
if cnnbook.claims_checked(PROFILE):
    assert gabor_table.loc["trained", "mean"] > gabor_table.loc["at initialisation", "mean"]
    assert gabor_table.loc["trained", "mean"] > gabor_table.loc["Gaussian noise", "mean"]

# %% [markdown]
# The table above compares the trained kernels with the two random baselines (in the `cpu`
# profile the cell asserts that training raised the mean score above both). The 3x3 line
# is the reason for the second network: with 9 pixels and a rich dictionary, noise already
# scores about as high as anything, so no claim about 3x3 kernels can be made this way.
#
# The best-scoring kernels next to their fitted Gabors, and the scores as histograms:

# %%
fit = fits["trained"]
order = fit.correlation.argsort(descending=True)
show = order[:8]
fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for j, i in enumerate(show.tolist()):
    k = learned[i].permute(1, 2, 0)
    axes[0, j].imshow(((k - k.min()) / (k.max() - k.min() + 1e-12)).numpy())
    axes[0, j].set_title(f"r = {fit.correlation[i]:.2f}", fontsize=8)
    lim = float(fit.fitted[i].abs().max())
    axes[1, j].imshow(fit.fitted[i].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("learnt"), axes[1, 0].set_ylabel("best Gabor")
plt.tight_layout()
plt.show()
plt.figure(figsize=(6, 3))
for name, f in fits.items():
    plt.hist(f.correlation.numpy(), bins=20, range=(0, 1), alpha=0.5, label=name, density=True)
plt.xlabel("best-fitting Gabor's correlation"), plt.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 4. Feature maps through the depth of the ResNet
#
# Each residual stage sees the image at a coarser grid with more channels: 32x32 in the
# stem and stage 1, 16x16 in stage 2, 8x8 in stage 3. The stem's maps still look like the
# image (edges, colours); the last stage's are blobs that light up where parts of an
# object are.

# %%
test_x, test_y = next(iter(test_iter))
test_x = test_x[:cfg.n_explain].float().contiguous().to(device)
test_y = test_y[:cfg.n_explain].cpu()
layers = [n for n in block_names(resnet) if n != "fc"]
depth_layers = [layers[0], layers[len(layers) // 3], layers[2 * len(layers) // 3], layers[-1]]
maps = capture(resnet, test_x[:1], depth_layers)
for name in depth_layers:
    m = maps[name][0]
    print(f"{name}: {tuple(m.shape)}")
    viz.plot_feature_maps(m[:16], ncols=16, scale=0.8, title=f"{name}: 16 of {m.shape[0]} channels")
    plt.show()

# %% [markdown]
# The same feature maps, live: `FeatureMapExplorer` (the widget of chapters
# [05](05_lenet.ipynb)-[11](11_resnet.ipynb)) on the trained ResNet. Choose a test image (or
# a photo, or your own upload), shift, rotate or invert it, and a block: all its channels,
# or one enlarged with the kernel that made it, and the prediction.

# %%
fmap_explorer = FeatureMapExplorer(resnet, test_x.cpu(), class_names=CLASSES, layers=layers,
                                   labels=test_y)
fmap_explorer

# %% [markdown]
# ## 5. Saliency from gradients
#
# The **vanilla gradient** $\partial y_c / \partial x$ of the class logit $y_c$ says how
# the score changes when one pixel changes a little. One backward pass:

# %%
x = test_x.clone().requires_grad_(True)
logits = resnet(x)
targets = logits.argmax(1).detach()             # explain the predicted classes
logits.gather(1, targets[:, None]).sum().backward()
grad = x.grad.detach()
print("gradient shape", tuple(grad.shape))
diff = (grad - Saliency(resnet).attribute(test_x, target=targets, abs=False)).abs().max()
print(f"largest difference from Captum's Saliency: {diff:.2e}")
assert diff < 1e-5
assert torch.allclose(grad, vanilla_gradient(resnet, test_x, targets), atol=1e-6)

# %% [markdown]
# **SmoothGrad** averages that gradient over noisy copies $x + \mathcal N(0, \sigma^2)$,
# with $\sigma$ 15 % of the image's range. **Integrated gradients** average it along the
# straight path from a black image $x'$ to $x$ and multiply by $x - x'$; the midpoint rule
# with `ig_steps` points approximates the integral, the same rule as Captum's
# `method="riemann_middle"`:

# %%
sg = smoothgrad(resnet, test_x, targets, samples=cfg.sg_samples,
                generator=torch.Generator().manual_seed(0))
ig = integrated_gradients(resnet, test_x, targets, steps=cfg.ig_steps)
ig_ref = IntegratedGradients(resnet).attribute(test_x, target=targets, n_steps=cfg.ig_steps,
                                               method="riemann_middle")
ig_diff = float((ig - ig_ref).abs().max())
with torch.no_grad():
    gain = (resnet(test_x) - resnet(torch.zeros_like(test_x))).gather(1, targets[:, None])[:, 0]
print(f"integrated gradients vs Captum: largest difference {ig_diff:.2e}")
print("completeness: sum of attributions", ig.sum((1, 2, 3)).cpu().numpy().round(2),
      "vs score gain", gain.cpu().numpy().round(2))
assert ig_diff < 1e-5

# %%
def show_maps(images, rows: dict, titles=None):
    """Images in the first row, then one row per method (each map scaled to its own range)."""
    n = len(images)
    fig, axes = plt.subplots(1 + len(rows), n, figsize=(1.6 * n, 1.6 * (1 + len(rows))), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(images[j].cpu().permute(1, 2, 0).clamp(0, 1).numpy())
        if titles is not None:
            axes[0, j].set_title(titles[j], fontsize=8)
        for r, (name, m) in enumerate(rows.items(), start=1):
            axes[r, j].imshow(m[j].cpu().numpy(), cmap="inferno")
            axes[r, 0].set_ylabel(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


names = [f"{CLASSES[p]}{'' if p == t else ' (' + CLASSES[t] + ')'}"
         for p, t in zip(targets.tolist(), test_y.tolist())]
show_maps(test_x, {"gradient": saliency_map(grad), "SmoothGrad": saliency_map(sg),
                   "integrated grad.": saliency_map(ig)}, names)
plt.show()

# %% [markdown]
# Titles give the predicted class (and the true one in brackets where they differ). The
# raw gradient is speckled; SmoothGrad keeps what survives the noise.
#
# ## 6. Grad-CAM from scratch
#
# Grad-CAM looks at a convolutional layer's output $A$ (K channels of h x w) instead of the
# pixels. Each channel gets the weight $\alpha_k = \frac{1}{hw}\sum_{i,j} \partial y_c /
# \partial A_k[i, j]$, and the map is $\mathrm{ReLU}(\sum_k \alpha_k A_k)$. Step by step,
# with a forward hook to catch $A$:

# %%
layer = resnet.get_submodule(layers[-1])          # the last residual block
store = {}
hook = layer.register_forward_hook(lambda _m, _inp, out: store.__setitem__("A", out))
logits = resnet(test_x)
hook.remove()
A = store["A"]                                     # (N, K, 8, 8)
dA, = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), A)
alpha = dA.mean(dim=(2, 3), keepdim=True)          # one weight per channel and image
cam = F.relu((alpha * A).sum(dim=1)).detach()      # (N, 8, 8)
print(f"layer {layers[-1]}: A {tuple(A.shape)}, map {tuple(cam.shape)}")

# %% [markdown]
# The same map from `cnnbook.interpret.gradcam.grad_cam` (the tested version of these
# lines), and from Captum's `LayerGradCam`, a well-kept library, on the same model and layer:

# %%
ours = grad_cam(resnet, test_x, layers[-1], targets)
captum_cam = LayerGradCam(resnet, layer).attribute(test_x, target=targets,
                                                   relu_attributions=True)[:, 0].detach()
gradcam_diff = float((ours - captum_cam).abs().max())
print(f"Grad-CAM: hand-written vs cnnbook {float((cam - ours).abs().max()):.2e}, "
      f"vs Captum {gradcam_diff:.2e} (largest absolute difference; maps peak at "
      f"{float(ours.max()):.3f})")
assert gradcam_diff < 1e-5 and torch.allclose(cam, ours, atol=1e-6)

# %% [markdown]
# ## 7. Occlusion sensitivity
#
# Zeiler and Fergus's test needs no gradient: hide an 8x8 patch (black), slide it with
# stride 4, and record how much the class logit drops; each pixel gets the mean drop of
# the patches that covered it. It costs one forward pass per patch position (49 here),
# and it is checked against Captum's `Occlusion`:

# %%
occ = occlusion(resnet, test_x, targets, window=8, stride=4)
occ_ref = Occlusion(resnet).attribute(test_x, sliding_window_shapes=(3, 8, 8), strides=(3, 4, 4),
                                      baselines=0.0, target=targets)[:, 0]
occ_diff = float((occ - occ_ref).abs().max())
print(f"occlusion vs Captum: largest difference {occ_diff:.2e}")
assert occ_diff < 1e-5
cams = {name: upsample(grad_cam(resnet, test_x, name, targets), (32, 32))
        for name in (layers[-1], depth_layers[1])}
show_maps(test_x, {f"Grad-CAM {n}": m for n, m in cams.items()}
          | {"occlusion": occ.clamp_min(0), "SmoothGrad": saliency_map(sg)}, names)
plt.show()

# %% [markdown]
# Grad-CAM at the last block is coarse (8x8 upsampled) but tends to cover the object;
# at an earlier block it is finer and less specific to the class.
#
# ## 8. A Grad-CAM explorer
#
# Pick a test image, the class whose evidence you want to see (the predicted one, or any
# other: where does the network see "cat" in a dog?), and the layer. The bars show the
# probabilities; red marks the target class, blue the prediction.

# %%
explorer = GradCAMExplorer(resnet, test_x, class_names=CLASSES, labels=test_y)
explorer

# %%
print(explorer.state)

# %% [markdown]
# ## 9. The sanity check: randomise the model
#
# If a map explains the *model*, destroying the model must destroy the map. Following
# Adebayo et al. (2018), `cascading_randomization` re-initialises the network block by
# block from the top (the classifier first) down to the stem, and measures the Spearman
# rank correlation of each map with the trained network's map (absolute values, averaged
# over the images). The targets stay the trained network's predictions, so only the
# weights change.

# %%
def explain_gradient(model, x):
    return saliency_map(vanilla_gradient(model, x, targets))


def explain_gradcam(model, x):
    return grad_cam(model, x, layers[-1], targets, upsampled=True)


def explain_smoothgrad(model, x):
    return saliency_map(smoothgrad(model, x, targets, samples=cfg.sg_samples,
                                   generator=torch.Generator().manual_seed(0)))


sanity = {name: cascading_randomization(resnet, test_x, fn)
          for name, fn in [("gradient", explain_gradient), ("SmoothGrad", explain_smoothgrad),
                           ("Grad-CAM", explain_gradcam)]}
sanity_table = pd.DataFrame({name: [r["spearman"] for r in rows] for name, rows in sanity.items()},
                            index=[r["randomized"] for r in sanity["gradient"]])
sanity_table.index.name = "randomised down to"
print(sanity_table.round(3))

# %%
steps = [0, len(sanity_table) // 2, len(sanity_table) - 1]
fig, axes = plt.subplots(3, len(steps) + 1, figsize=(1.8 * (len(steps) + 1), 5.4))
for r, name in enumerate(sanity):
    axes[r, 0].imshow(test_x[0].cpu().permute(1, 2, 0).numpy())
    axes[r, 0].set_ylabel(name, fontsize=9)
    for c, s in enumerate(steps, start=1):
        row = sanity[name][s]
        axes[r, c].imshow(row["maps"][0].numpy(), cmap="inferno")
        axes[r, c].set_title(f"{row['randomized']}: {row['spearman']:.2f}", fontsize=8)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
plt.tight_layout()
plt.show()
final = sanity_table.iloc[-1]
print("rank correlation with the trained model's maps once every block is random:",
      final.round(3).to_dict())

# %%
if cnnbook.claims_checked(PROFILE):
    # every method's maps must move away from the trained model's maps
    assert (final < 0.7).all(), final
    assert sanity_table["Grad-CAM"].iloc[-1] < 0.5

# %% [markdown]
# The table above and the pictures show each map losing its resemblance to the trained
# model's map as more blocks are randomised (the cell above asserts, in the `cpu` and
# `full` profiles, that none keeps a rank correlation of 0.7 with its trained self and
# Grad-CAM none of 0.5). What does *not* fall to zero is telling: a
# fully random network's gradients still follow the image's edges and colours, because
# the input's structure passes through any convolution. A saliency map that looks
# plausible is therefore no proof that it explains anything; a method must fail this test
# (change with the weights) to be trusted to show what a model learnt.
#
# ## 10. The penultimate layer: embeddings and neighbours
#
# The classifier is a linear layer on the global-average-pooled features (64 numbers for a
# ResNet-20). Those features are where the network has made the classes separable. t-SNE
# (scikit-learn) draws them in 2-D, coloured by the true class:

# %%
feats, labels, imgs = penultimate_features(resnet, test_iter, limit=cfg.n_embed)
points = tsne(feats, seed=0)
plot_embedding(points, labels, CLASSES, title=f"t-SNE of {len(feats)} test images' "
               f"{feats.shape[1]}-d features")
plt.show()

# %% [markdown]
# t-SNE keeps neighbourhoods and distorts distances, so read the clusters, not the gaps
# between them. A number that does not depend on the drawing: of each image's `k` nearest
# neighbours, how many have its label, in feature space and, for comparison, in pixel space
# (the raw 3,072 pixel values)?

# %%
agree = {"features": neighbour_agreement(feats, labels, cfg.k),
         "pixels": neighbour_agreement(imgs.flatten(1), labels, cfg.k),
         "chance": sum(float((labels == c).float().mean()) ** 2 for c in range(10))}
print({k: round(v, 3) for k, v in agree.items()},
      f"(fraction of the {cfg.k} nearest neighbours with the same label)")
if cnnbook.claims_checked(PROFILE):
    assert agree["features"] > agree["pixels"] + 0.1

# %%
queries = [0, 1, 2]
nbrs = {"pixels": nearest_neighbours(imgs.flatten(1), cfg.k),
        "features": nearest_neighbours(feats, cfg.k)}
plot_neighbours(imgs, queries, nbrs, labels, CLASSES)
plt.show()

# %% [markdown]
# The cell above prints both agreements. In pixel space a neighbour is an image with a
# similar layout of colours (a blue sky, a green background), whatever is in it; in the
# network's feature space neighbours share what the classifier needs, and the share of
# same-label neighbours is higher (asserted in the `cpu` profile by at least 10 points).
#
# ## 11. Summary
#
# | technique | needs | shows | checked against |
# |---|---|---|---|
# | first-layer kernels | weights only | Gabor-like edge and colour filters | random kernels |
# | feature maps | a forward pass | what each layer responds to | - |
# | vanilla gradient | one backward pass | sensitivity, speckled | Captum `Saliency` |
# | SmoothGrad | n backward passes | sharper sensitivity | (written out in the tests) |
# | integrated gradients | n backward passes | attributions that add up | Captum, completeness |
# | Grad-CAM | one backward pass | coarse, class-specific regions | Captum `LayerGradCam` |
# | occlusion | one forward pass per patch | where hiding hurts | Captum `Occlusion` |
#
# and one test that every explanation must pass before it is believed: randomise the model.

# %% [markdown]
# ## Exercises
#
# ### Exercise 1: Grad-CAM from a layer's activations and gradients
#
# Write `cam_from(A, dA)`: given a layer's activations `A` and the gradients `dA` of a
# class score with respect to them (both (N, K, h, w) tensors), return the Grad-CAM maps
# (N, h, w): the channels weighted by their spatially averaged gradient, summed, then
# ReLU. Do not call `grad_cam` or Captum.

# %% nbgrader={"grade": false, "grade_id": "ex-20-cam", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cam_from(A, dA):
    ### BEGIN SOLUTION
    return F.relu((dA.mean(dim=(2, 3), keepdim=True) * A).sum(dim=1))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-20-cam-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_A = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]])       # (1, 2, 1, 2)
_dA = torch.tensor([[[[1.0, 1.0]], [[-1.0, 0.0]]]])      # channel weights 1 and -0.5
_out = cam_from(_A, _dA)
assert isinstance(_out, torch.Tensor) and _out.shape == (1, 1, 2)
assert torch.allclose(_out, torch.tensor([[[0.0, 2.5]]]))
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, forbidden
check_comparisons()   # torch.allclose & co. are the genuine ones
import inspect
from captum.attr import LayerGradCam as _LGC
_src = inspect.getsource(cam_from)
assert "grad_cam" not in _src and "LayerGradCam" not in _src
# the task forbids grad_cam and Captum, also under another name
_no_cam = ("cnnbook.interpret.gradcam.grad_cam", "captum.attr.LayerGradCam.attribute",
           "captum.attr.GuidedGradCam.attribute")
_g = torch.Generator().manual_seed(2020)
for _ in range(10):
    _n, _k, _h, _w = (int(v) for v in torch.randint(1, 6, (4,), generator=_g))
    _a, _d = torch.randn(_n, _k, _h, _w, generator=_g), torch.randn(_n, _k, _h, _w, generator=_g)
    _ref = ((_d.sum((2, 3)) / (_h * _w))[:, :, None, None] * _a).sum(1).clamp_min(0)
    with forbidden(*_no_cam, task="exercise 1 (Grad-CAM by hand)"):
        _got = cam_from(_a, _d)
    assert isinstance(_got, torch.Tensor) and torch.allclose(_got, _ref, atol=1e-6)
# on the trained network, against Captum
_layer = resnet.get_submodule(layers[-2])
_st = {}
_hk = _layer.register_forward_hook(lambda _m, _i, o: _st.__setitem__("A", o))
_lg = resnet(test_x[:2])
_hk.remove()
_grad, = torch.autograd.grad(_lg[:, 3].sum(), _st["A"])
_cap = _LGC(resnet, _layer).attribute(test_x[:2], target=3, relu_attributions=True)[:, 0]
with forbidden(*_no_cam, task="exercise 1 (Grad-CAM by hand)"):
    _got = cam_from(_st["A"].detach(), _grad)
assert isinstance(_got, torch.Tensor) and torch.allclose(_got, _cap, atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: integrated gradients with your own loop
#
# Write `my_integrated_gradients(model, x, target, steps)` for a batch `x` (N, C, H, W),
# one target class per image (a long tensor of length N) and a black baseline: the
# midpoint rule with $\alpha_k = (k + \tfrac12)/\text{steps}$, $k = 0, \dots,
# \text{steps}-1$, multiplied by $x$. Use `torch.autograd.grad`; do not use Captum or
# `cnnbook.interpret`.

# %% nbgrader={"grade": false, "grade_id": "ex-20-ig", "locked": false, "schema_version": 3, "solution": true, "task": false}
def my_integrated_gradients(model, x, target, steps):
    ### BEGIN SOLUTION
    total = torch.zeros_like(x)
    for k in range(steps):
        xa = ((k + 0.5) / steps * x).detach().requires_grad_(True)
        score = model(xa).gather(1, target[:, None]).sum()
        total += torch.autograd.grad(score, xa)[0]
    return x * total / steps
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-20-ig-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
_x = torch.rand(2, 3, 2, 2)
_t = torch.tensor([0, 2])
_out = my_integrated_gradients(_lin, _x, _t, 4)
assert isinstance(_out, torch.Tensor) and _out.shape == _x.shape
# for a linear model the attributions are x * w exactly
assert torch.allclose(_out.flatten(1), _x.flatten(1) * _lin[1].weight[_t].detach(), atol=1e-6)
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
import inspect
from cnnbook.interpret.saliency import integrated_gradients as _ref_ig
_src = inspect.getsource(my_integrated_gradients).replace("my_integrated_gradients", "")
_body = _src.replace("my_integrated_gradients(", "")   # the student's own name is allowed
assert "captum" not in _src.lower() and "cnnbook" not in _src and "integrated_gradients(" not in _body
# the task forbids Captum and cnnbook.interpret, also under another name
from cnnbook.grading import forbidden
_no_ig = tuple(f"captum.attr.{c}.attribute" for c in ("IntegratedGradients", "Saliency", "NoiseTunnel",
                                                      "InputXGradient", "LayerGradCam", "Occlusion")) \
    + tuple(f"cnnbook.interpret.saliency.{f}" for f in ("input_gradient", "vanilla_gradient", "smoothgrad",
                                                        "integrated_gradients", "saliency_map")) \
    + ("cnnbook.interpret.gradcam.grad_cam", "cnnbook.interpret.occlusion.occlusion")
_g = torch.Generator().manual_seed(20)
for _steps in (1, 3, 7):
    _xx = torch.rand(3, 3, 32, 32, generator=_g).to(test_x.device)
    _tt = torch.randint(0, 10, (3,), generator=_g).to(test_x.device)
    with forbidden(*_no_ig, task="exercise 2 (integrated gradients with your own loop)"):
        _got = my_integrated_gradients(resnet, _xx, _tt, _steps)
    assert isinstance(_got, torch.Tensor)
    assert torch.allclose(_got, _ref_ig(resnet, _xx, _tt, steps=_steps), atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3: neighbours with the same label
#
# Write `same_label_share(features, labels, k)`: for every row of `features` (N, D), find
# its `k` nearest *other* rows (Euclidean distance) and return the fraction of all those
# N x k neighbours whose label equals the row's label, as a Python `float`. Use
# `torch.cdist` and `topk` (or `argsort`); do not use scikit-learn or
# `cnnbook.interpret`. (Ties between equal distances will not occur in the tests.)

# %% nbgrader={"grade": false, "grade_id": "ex-20-knn", "locked": false, "schema_version": 3, "solution": true, "task": false}
def same_label_share(features, labels, k):
    ### BEGIN SOLUTION
    d = torch.cdist(features.double(), features.double())
    d.fill_diagonal_(float("inf"))
    idx = d.topk(k, largest=False).indices
    return float((labels[idx] == labels[:, None]).double().mean())
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-20-knn-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_f = torch.tensor([[0.0], [1.0], [10.0], [11.5], [13.2]])
_l = torch.tensor([0, 0, 1, 1, 0])
assert type(same_label_share(_f, _l, 1)) is float
assert math.isclose(same_label_share(_f, _l, 1), 4 / 5, abs_tol=1e-6)   # only 13.2's neighbour (11.5) differs
assert math.isclose(same_label_share(_f, _l, 2), 4 / 10, abs_tol=1e-6)
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
import inspect
from cnnbook.interpret.embeddings import neighbour_agreement as _ref_agree
_src = inspect.getsource(same_label_share)
assert "sklearn" not in _src and "neighbour_agreement" not in _src and "NearestNeighbors" not in _src
# the task forbids scikit-learn and cnnbook.interpret, also under another name
from cnnbook.grading import forbidden
_no_knn = ("sklearn.neighbors._base.KNeighborsMixin.kneighbors", "sklearn.neighbors._base.NeighborsBase._fit",
           "sklearn.metrics.pairwise.pairwise_distances", "sklearn.metrics.pairwise.euclidean_distances",
           "cnnbook.interpret.embeddings.nearest_neighbours", "cnnbook.interpret.embeddings.neighbour_agreement")
_g = torch.Generator().manual_seed(7)
for _ in range(10):
    _n, _d = int(torch.randint(8, 60, (1,), generator=_g)), int(torch.randint(1, 20, (1,), generator=_g))
    _ff = torch.randn(_n, _d, generator=_g, dtype=torch.float64)
    _ll = torch.randint(0, 4, (_n,), generator=_g)
    _kk = int(torch.randint(1, 6, (1,), generator=_g))
    with forbidden(*_no_knn, task="exercise 3 (neighbours without scikit-learn)"):
        _got = same_label_share(_ff, _ll, _kk)
    assert type(_got) is float and math.isclose(_got, _ref_agree(_ff, _ll, _kk), abs_tol=1e-6)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (experiment): does integrated gradients pass the sanity check?
#
# Run the cascading randomisation of section 9 on **integrated gradients** (with
# `cfg.ig_steps` steps, the trained model's predicted `targets`, and `saliency_map` to turn
# the attributions into maps) on `test_x`, and store the rows in `ig_rows`. Then answer in
# a markdown cell: how fast does its rank correlation fall compared with the gradient,
# SmoothGrad and Grad-CAM rows of `sanity_table`? Integrated gradients multiplies the
# gradient by the input $x$: what does that factor keep in the map even for a random
# network, and what does that mean for reading its maps?

# %% nbgrader={"grade": false, "grade_id": "ex-20-sanity", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
def explain_ig(model, x):
    return saliency_map(integrated_gradients(model, x, targets, steps=cfg.ig_steps))


ig_rows = cascading_randomization(resnet, test_x, explain_ig)
print(pd.Series({r["randomized"]: round(r["spearman"], 3) for r in ig_rows}).to_string())
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-20-sanity-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert isinstance(ig_rows, list) and len(ig_rows) == len(sanity_table)
assert ig_rows[0]["spearman"] == 1.0 and ig_rows[0]["maps"].shape == (len(test_x), 32, 32)
assert all(-1 <= r["spearman"] <= 1 for r in ig_rows)
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
_ref0 = saliency_map(integrated_gradients(resnet, test_x, targets, steps=cfg.ig_steps))
assert torch.allclose(ig_rows[0]["maps"], _ref0, atol=1e-5), "the first row must be the trained model's IG maps"
assert [r["randomized"] for r in ig_rows] == list(sanity_table.index)
assert not torch.allclose(ig_rows[-1]["maps"], _ref0)
### END HIDDEN TESTS
