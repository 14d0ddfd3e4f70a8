# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 19 · Transfer learning and your own images
#
# Every network so far started from random weights and learnt from tens of thousands of
# labelled images. Your own problem rarely has that many: a few hundred photos of the
# parts on your workbench, the birds at your feeder, the defects on a production line.
# *Transfer learning* starts instead from a network someone trained on a large dataset
# and adapts it. The sources' most practical recipe does exactly this: an ImageNet
# ResNet-18 fine-tuned on CIFAR-10 reaches 90.17% test accuracy in five epochs.
#
# **What you will learn**
#
# - why features learnt on one dataset help on another, and a short history of the idea;
# - loading pretrained weights with torchvision's API, offline from a cache or a mirror
#   folder, and what the course does when neither is there;
# - the sources' recipe, then the better one the course has taught (the right
#   normalisation, a slower backbone, warm-up + cosine, augmentation), measured;
# - feature extraction vs fine-tuning vs training from scratch on the same budget, and
#   accuracy against the number of labelled images per class;
# - your own images: a folder of photos, bad files found by name, a classification
#   report and single-image predictions with their confidence.

# %%
import copy
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torchvision
from torch import nn
from torchvision.transforms.v2 import functional as TF

import cnnbook
from cnnbook import viz
from cnnbook.data import build_demo_folder, class_names, data_dir, load_image_folder, load_split
from cnnbook.data.loader import BatchTransform, TensorLoader
from cnnbook.photos import load_photo
from cnnbook.train import optim, schedules
from cnnbook.train.metrics import classification_report, predict_image
from cnnbook.transfer import TransferNet, WeightsUnavailable, class_subset, pretrained_resnet18
from cnnbook.transfer import weights as W
from cnnbook.transfer.curves import label_equivalent, label_table
from cnnbook.transfer.source import SOURCE_CLASSES, TARGET_CLASSES
from cnnbook.widgets.transfer import TransferCurveExplorer

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # size: input side for every transfer run; source: the fallback source model's training
    # (used only when the ImageNet weights are not available); budgets: labelled images per
    # class for the curves; compare: the budget of the method comparison; steps/batch_size:
    # the training budget of every run (equal for all methods); test_per_class: test images
    # per class; recipe_*: the sources' recipe (classes "target" = the five held-out classes,
    # "all" = CIFAR-10; per_class None = all images); folder_*: the own-images task
    "smoke": dict(size=32, source=dict(size=32, limit=250, epochs=1, test_limit=100,
                                       batch_size=64),
                  budgets=(2, 6), compare=6, steps=4, batch_size=16, test_per_class=20,
                  recipe_classes="target", recipe_size=32, recipe_per_class=6,
                  recipe_epochs=1, folder_train=6, folder_val=2, folder_epochs=1),
    "cpu":   dict(size=32, source=dict(size=32, limit=15_000, epochs=2, test_limit=2_000,
                                       batch_size=128),
                  budgets=(10, 100, 1000), compare=10, steps=60, batch_size=64,
                  test_per_class=200, recipe_classes="target", recipe_size=32,
                  recipe_per_class=100, recipe_epochs=4, folder_train=30, folder_val=10,
                  folder_epochs=8),
    "full":  dict(size=96, source=dict(size=96, limit=None, epochs=15, test_limit=None,
                                       batch_size=128),
                  budgets=(10, 100, 1000), compare=100, steps=400, batch_size=64,
                  test_per_class=None, recipe_classes="all", recipe_size=224,
                  recipe_per_class=None, recipe_epochs=5, folder_train=30, folder_val=10,
                  folder_epochs=15),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
cifar_names = class_names("cifar10")
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# In the `cpu` profile every transfer run trains a ResNet-18 for the same 60 steps of 64
# images at 32x32 pixels, the labelled-data curve uses 10, 100 and 1,000 images per
# class, and the three methods are compared at 10 labelled images per class. `full` is for a GPU: the sources' recipe on all of CIFAR-10 at 224 pixels for
# five epochs, and the comparisons at 96 pixels.
#
# ## 1. The idea and a little history
#
# A CNN trained on many images learns a hierarchy: the first layer finds edges and colour
# blobs (Gabor-like, [chapter 01](01_biology_of_vision.ipynb)), the next ones textures and
# parts, the last ones whole objects of its own classes. The early features are hardly
# specific to the task, so a network trained on one dataset is a good start for another.
#
# - **2013-2014, off-the-shelf features.** DeCAF (Donahue et al., 2014) and Razavian et
#   al. ("CNN Features off-the-shelf: an Astounding Baseline", 2014) took the
#   penultimate-layer activations of an ImageNet AlexNet as features and trained only a
#   linear classifier on them: they beat the hand-engineered features on a dozen
#   recognition tasks. This is **feature extraction**.
# - **2014, how transferable are features?** Yosinski et al. transferred the first $n$
#   layers between two halves of ImageNet and measured: the first layers transfer almost
#   perfectly, the later ones less so, and *fine-tuning* the copied layers (training them
#   further on the new task) beat leaving them frozen, even with plenty of target data.
# - **2014-2015, fine-tuning everywhere.** Object detection (R-CNN, Girshick et al.,
#   2014) and segmentation (FCN, Long et al., 2015) started from ImageNet classifiers;
#   "pretrain on ImageNet, fine-tune on your task" became the default.
# - **2019, the limits.** Kornblith et al. found that better ImageNet models transfer
#   better; He et al. ("Rethinking ImageNet Pre-training") showed that with enough target
#   data and a long schedule, training from scratch catches up: pretraining buys *speed*
#   and *data efficiency*, not a higher ceiling. Section 5 measures the data efficiency.
#
# Two ways to reuse a network, and the baseline:
#
# | | what learns | cost per step |
# |---|---|---|
# | feature extraction | only the new classifier (the backbone is frozen) | forward pass only through the backbone |
# | fine-tuning | everything, the backbone usually with a smaller learning rate | as training from scratch |
# | from scratch | everything, from random weights | the same |
#
# ## 2. Loading pretrained weights
#
# torchvision ships each architecture with weights trained on ImageNet. The API names
# them by an enum entry, and the first call downloads the checkpoint into the torch hub
# cache (`~/.cache/torch/hub/checkpoints`, or `$TORCH_HOME/hub/checkpoints`):
#
# ```python
# from torchvision.models import resnet18, ResNet18_Weights
# model = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
# ```
#
# The entry carries the file's address and what it was trained for:

# %%
entry = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
meta = entry.meta
print(f"file {W.file_name(entry)} from {entry.url}")
print(f"ImageNet top-1 {meta['_metrics']['ImageNet-1K']['acc@1']}%, "
      f"{meta['num_params']:,} parameters, {len(meta['categories'])} classes")
print(f"its preprocessing: {entry.transforms()}")

# %% [markdown]
# The part of the file name after the dash, `f37072fd`, is the start of the file's
# SHA-256: torch.hub checks a download against it, and so does the course for every copy.
#
# A classroom often has no internet, or forty laptops downloading the same 45 MB at once.
# As for the datasets, `CNNBOOK_WEIGHTS_MIRROR` can name a folder of checkpoints copied
# once from a machine that has them (file names unchanged). `cnnbook.transfer.weights`
# looks in the hub cache, then the mirror (a checked copy goes into the cache), then tries
# a download (not when `CNNBOOK_OFFLINE=1`), and lets torchvision's API load the file. When
# none of them works you get one message: the file, every place looked, and the fix.

# %%
try:
    _, where = W.load_torchvision("resnet18", "IMAGENET1K_V1")
    print(f"the ImageNet weights are here (from the {where})")
except WeightsUnavailable as exc:
    print("WeightsUnavailable:", exc)

# %% [markdown]
# ### The fallback: a source model the course pretrains itself
#
# Without the ImageNet weights the chapter still needs a pretrained network to transfer.
# The course makes one: the *same* ResNet-18 architecture trained on five CIFAR-10
# classes (airplane, automobile, bird, cat, deer), with the ImageNet normalisation so it
# is used exactly like the real weights. It is trained once and cached in the data
# cache (`data/pretrained/`); later runs load it. The target task of sections 4-6 is then
# the *other* five classes (dog, frog, horse, ship, truck), which the source model has
# never seen: a small version of "ImageNet to your task". With the ImageNet weights the
# target task stays the same five classes, so both paths measure the same thing.
#
# The next cell says which path this run took.

# %%
t0 = time.perf_counter()
pre = pretrained_resnet18(fallback=cfg.source)
print(f"pretrained model: {pre.description}")
print(f"path taken: {'FALLBACK (course-pretrained source model)' if pre.fallback else 'IMAGENET WEIGHTS'}"
      f"; ready in {time.perf_counter() - t0:.1f} s")
if pre.fallback:
    print(f"source classes: {[cifar_names[c] for c in pre.source_classes]}")

# %% [markdown]
# ## 3. The target task and the data
#
# The target task: the five held-out CIFAR-10 classes, with a chosen number of labelled
# training images per class (`class_subset` keeps that many, seeded, and relabels the
# classes 0-4) and a class-balanced test set from the test split.

# %%
target_names = [cifar_names[c] for c in TARGET_CLASSES]
train_all = load_split("cifar10", "train")
test_all = load_split("cifar10", "test")
x_test, y_test = class_subset(*test_all, TARGET_CLASSES, cfg.test_per_class, seed=0)
print(f"target classes {target_names}; {len(y_test)} test images")


def loaders(per_class, transform, classes=TARGET_CLASSES, steps=None, seed=0):
    """Train loader of `per_class` labelled images and a test loader. With `steps`, one
    epoch of exactly `steps` batches, drawn as successive shuffles of the labelled set, so
    every method and budget gets the same number of updates and sees every image."""
    x, y = class_subset(*train_all, classes, per_class, seed=seed)
    shuffle = steps is None
    if steps is not None:
        g = torch.Generator().manual_seed(seed)
        need = steps * cfg.batch_size
        order = torch.cat([torch.randperm(len(y), generator=g)
                           for _ in range(-(-need // len(y)))])[:need]
        x, y = x[order], y[order]
    test_x, test_y = (x_test, y_test) if classes == TARGET_CLASSES else class_subset(
        *test_all, classes, cfg.test_per_class, seed=0)
    return (TensorLoader(x, y, cfg.batch_size, shuffle=shuffle, transform=transform,
                         train=True, device=device, seed=seed),
            TensorLoader(test_x, test_y, 256, transform=transform, device=device))


cpu = device.type == "cpu"
resize = cfg.size if cfg.size != 32 else None
course_tf = BatchTransform(resize=resize, mean=pre.mean, std=pre.std, flip=True,
                           crop_padding=max(1, cfg.size // 8), channels_last=cpu)
x_show, y_show = class_subset(*train_all, TARGET_CLASSES, 2, seed=0)
viz.show_images(x_show, [target_names[i] for i in y_show], ncols=10, scale=1.1);

# %% [markdown]
# ## 4. The sources' recipe, and a better one
#
# The sources fine-tune the whole network: replace the last layer `fc` (1,000 ImageNet
# classes) by a new 10-way `nn.Linear`, resize the 32-pixel images to 224 (the size
# ImageNet models are trained at), normalise with mean and standard deviation 0.5 per
# channel, Adam at learning rate 1e-3, batches of 64, five epochs. They report the
# training losses 0.5615, 0.3187, 0.2207, 0.1634, 0.1233 and a test accuracy of 0.9017.
# Here is that code; the `full` profile runs it on all of CIFAR-10 at 224 pixels (a GPU
# job), the `cpu` profile on the target task at 32 pixels.

# %%
recipe_classes = tuple(range(10)) if cfg.recipe_classes == "all" else TARGET_CLASSES
sources_tf = BatchTransform(resize=cfg.recipe_size if cfg.recipe_size != 32 else None,
                            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), channels_last=cpu)
model = copy.deepcopy(pre.model)
model.fc = nn.Linear(model.fc.in_features, len(recipe_classes))   # the new 10-way head
train_iter, test_iter = loaders(cfg.recipe_per_class, sources_tf, recipe_classes)
cnnbook.seed_everything(0)
sources_run = cnnbook.fit(model, train_iter, test_iter, epochs=cfg.recipe_epochs, lr=1e-3,
                          optimizer="adam", name="recipe_sources", chapter="19",
                          profile=PROFILE, extra={"weights": pre.description})
print(f"sources' recipe: test accuracy {sources_run.test_acc:.4f} "
      f"({len(train_iter.labels)} training images, {cfg.recipe_epochs} epochs, "
      f"{sources_run.seconds:.0f} s)")
print("losses per epoch:", [round(v, 4) for v in sources_run.history["train_loss"]])
if PROFILE == "full" and cnnbook.claims_checked(PROFILE) and not pre.fallback:
    assert sources_run.test_acc >= 0.9017, "the sources report 0.9017 with this recipe"

# %% [markdown]
# The course has taught four improvements, and each has a reason here:
#
# 1. **Normalise as the source model was trained**: ImageNet's channel mean
#    (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), the numbers in the weights'
#    `transforms()` above. With 0.5/0.5 the first layer sees inputs shifted and scaled
#    differently from what its filters were tuned to.
# 2. **A slower backbone** ([chapter 18](18_training_recipes.ipynb)'s parameter groups): the
#    new head starts random and needs lr 1e-3; ImageNet's pretrained layers only need
#    nudging, at 1e-4. `TransferNet` splits the network into `backbone` and `head`, so
#    `lr_mult={"backbone": 0.1}` does it. This is what the course uses with the ImageNet
#    weights. The fallback's source model is different: it saw five CIFAR classes for a
#    few minutes, so its features are a start that still has to change a lot; in our
#    trials a 10x slower backbone left fine-tuning no better than training from scratch
#    with 100 labels per class. On the fallback path the course therefore trains the
#    backbone at the full rate (`BACKBONE_MULT` below, printed by the next cell; try
#    `course_run(..., backbone_mult=0.1)` yourself). With very few labels the balance can
#    tip the other way: exercise 4's question of *how much* to adapt is the same trade-off.
# 3. **Warm-up then cosine** ([chapter 18](18_training_recipes.ipynb)): large random
#    gradients from the new head in the first steps would otherwise wreck the pretrained features.
# 4. **Augmentation** (chapters [15](15_cifar10.ipynb)-[16](16_regularization.ipynb)):
#    random crops and flips, since small labelled sets overfit fast.

# %%
# the backbone's learning-rate multiplier: 0.1 for ImageNet features, 1.0 (one rate for the
# whole network) for the fallback's weaker source features
BACKBONE_MULT = 1.0 if pre.fallback else 0.1
print(f"backbone learning rate: {BACKBONE_MULT} x the head's "
      f"({'fallback source' if pre.fallback else 'ImageNet weights'})")


def course_run(name, per_class, train_from=None, pretrained=True, steps=None, lr=1e-3,
               backbone_mult=None, transform=None):
    """Train one transfer configuration with the course's recipe; returns the FitResult.
    `backbone_mult` None: `BACKBONE_MULT`."""
    backbone_mult = BACKBONE_MULT if backbone_mult is None else backbone_mult
    cnnbook.seed_everything(0)
    base = copy.deepcopy(pre.model) if pretrained else torchvision.models.resnet18()
    net = TransferNet(base, len(TARGET_CLASSES), train_from=train_from)
    train_iter, test_iter = loaders(per_class, transform or course_tf, steps=steps)
    mult = {"backbone": backbone_mult} if pretrained and train_from != "head" else None
    return cnnbook.fit(net, train_iter, test_iter, epochs=1 if steps else cfg.recipe_epochs,
                       lr=lr, optimizer=optim.adamw(weight_decay=1e-4, lr_mult=mult),
                       scheduler=schedules.warmup_cosine(warmup_fraction=0.1),
                       name=name, chapter="19", profile=PROFILE, progress=False,
                       live_plot=False, extra={"per_class": per_class, "train_from": train_from,
                              "pretrained": pretrained, "weights": pre.description,
                              "backbone_mult": backbone_mult if mult else None})


course = course_run("recipe_course", cfg.recipe_per_class if cfg.recipe_classes == "target"
                    else cfg.compare, steps=None if cfg.recipe_classes == "target" else cfg.steps)
print(f"course recipe: test accuracy {course.test_acc:.4f} ({course.seconds:.0f} s)")
if cfg.recipe_classes == "target":
    print(f"sources' recipe {sources_run.test_acc:.4f} -> course recipe {course.test_acc:.4f} "
          f"on the same images and epochs: {100 * (course.test_acc - sources_run.test_acc):+.1f} points")

# %% [markdown]
# The cell above prints both accuracies on the same images, epochs and starting weights;
# exercise 4 lets you take the recipe apart and see which change matters most here.
#
# ## 5. Feature extraction vs fine-tuning vs from scratch
#
# Now the three ways on one budget: the same labelled images, the same number of
# optimiser steps (`cfg.steps` batches drawn from successive shuffles of the labelled
# set), the same recipe. From scratch uses a freshly initialised ResNet-18 and one learning rate for
# all layers.

# %%
runs = {}
for per_class in cfg.budgets:
    for method, kw in (("fine-tune", dict()), ("feature extraction", dict(train_from="head")),
                       ("scratch", dict(pretrained=False))):
        res = course_run(f"{method.replace(' ', '_')}_{per_class}pc", per_class,
                         steps=cfg.steps, **kw)
        runs[method, per_class] = res
        print(f"{per_class:5d}/class  {method:18s} test acc {res.test_acc:.3f}  "
              f"train {res.seconds:5.1f} s")

# %%
compare = pd.DataFrame([{"method": m, "test_acc": runs[m, cfg.compare].test_acc,
                         "train_acc": runs[m, cfg.compare].train_acc,
                         "seconds": runs[m, cfg.compare].seconds}
                        for m in ("feature extraction", "fine-tune", "scratch")]).set_index("method")
print(f"{cfg.compare} labelled images per class, {cfg.steps} steps of {cfg.batch_size}:")
print(compare.round(3).to_string())
best = compare.drop(index="scratch")["test_acc"].idxmax()   # the better pretrained method
gain = compare.loc[best, "test_acc"] - compare.loc["scratch", "test_acc"]
print(f"pretrained ({best}) minus scratch: {100 * gain:+.1f} points with {cfg.compare} labelled "
      f"images per class and the same {cfg.steps} steps "
      f"({compare.loc[best, 'seconds']:.0f} s vs {compare.loc['scratch', 'seconds']:.0f} s of training)")
for n in cfg.budgets:
    top = max(runs["fine-tune", n].test_acc, runs["feature extraction", n].test_acc)
    print(f"  {n:5d}/class: best pretrained minus scratch {100 * (top - runs['scratch', n].test_acc):+.1f} points")
if cnnbook.claims_checked(PROFILE):
    if pre.fallback:   # the course's own small source: a head start, not ImageNet's
        assert gain > 0, f"the pretrained start should beat scratch, got {100 * gain:+.1f} points"
    else:              # ImageNet features: the bar
        assert gain >= 0.10, f"pretrained should beat scratch by >= 10 points, got {100 * gain:.1f}"
if pre.fallback:
    source_acc = pre.info.get("source_acc", float("nan"))
    print(f"(source: the course's fallback model, {source_acc:.3f} on its own classes; "
          f"ImageNet-pretrained ResNet-18 weights were not available, and a source trained "
          f"for minutes on {len(pre.info.get('classes', []))} CIFAR classes is a much weaker "
          f"starting point)")

# %% [markdown]
# Fine-tuning and training from scratch cost the same per step (same network, same
# backward pass), so the table compares them at equal training time; the difference is
# only where the weights started. Feature extraction skips the backward pass through the
# backbone, so it costs less per step (the `seconds` column). The comparison is made
# where transfer learning is meant to help, with few labels: `cfg.compare` per class (10
# in the `cpu` profile), and the cell compares scratch with the *better* pretrained method
# there. With so few labels, training all 11.7 million weights (section 2 prints the
# count) overfits fast, and a frozen backbone with a new linear head can come out ahead;
# the cell prints which one won, and the lines under it give the gap at every budget.
#
# How much a start is worth depends on what the source model learnt. ImageNet's 1.28
# million images give features that carry over to CIFAR classes: with those weights the
# run asserts the bar, a gain of at least 10 points. The fallback's few minutes
# on five CIFAR classes are a far smaller head start; with it the run asserts only that
# pretraining helps at all, and the gap it prints is the honest size of that help, not
# the ImageNet one (the line above says which source this run had).
#
# ## 6. How many labelled images is pretraining worth?

# %%
table = label_table([{"method": m, "per_class": n, "acc": r.test_acc}
                     for (m, n), r in runs.items()])
print(table.round(3).to_string())
fig, ax = plt.subplots(figsize=(5.6, 3.4))
for m in table.columns:
    ax.plot(table.index, table[m], "o-", label=m)
ax.axhline(1 / len(TARGET_CLASSES), color="0.6", ls=":", label="chance")
ax.set(xscale="log", xlabel="labelled training images per class", ylabel="test accuracy",
       title=f"{len(TARGET_CLASSES)} held-out CIFAR-10 classes, {cfg.steps} steps each")
ax.legend(fontsize=8)
plt.show()
small, large = min(cfg.budgets), max(cfg.budgets)
best_small = table.drop(columns="scratch").loc[small].idxmax()   # the better pretrained method
need = label_equivalent(table["scratch"], table.loc[small, best_small])
print(f"with {small}/class, {best_small} reaches {table.loc[small, best_small]:.3f}; scratch "
      + (f"needs about {need:,.0f}/class for that" if need is not None
         else f"does not reach it even with {large}/class"))

# %% [markdown]
# The curve is transfer learning's real promise. Read the gap between the pretrained
# methods and scratch at each budget from the cells' output (section 5 prints it in
# points), and which pretrained method leads at which budget: a frozen backbone risks
# less with few labels, fine-tuning can use more. The last line converts the gap at the
# smallest budget into labelled images (the scratch curve read backwards, interpolated in
# log(labels)).
# With many labels and long training the gap narrows (He et al., 2019).
#
# The explorer lets you pick a budget and see what each method reached there and how
# many labels scratch would need to match fine-tuning.

# %%
TransferCurveExplorer(table, per_class=cfg.compare)

# %% [markdown]
# ## 7. Your own images
#
# A real project starts with a folder of photos. The sources' layout, which torchvision's
# `ImageFolder` reads, has one folder per split and one sub-folder per class:
#
# ```
# my_images/
#   train/  cats/  img001.jpg ...      dogs/ ...
#   val/    cats/ ...                  dogs/ ...
# ```
#
# `cnnbook.data.load_image_folder(path, size)` reads such a folder: the class names are the
# sub-folders of `train/`, every file is decoded once, up front (so a broken file is
# found now, by name, never halfway through an epoch), resized and centre-cropped to a
# square. Files that are not images, cannot be read or are truncated, and class folders
# left empty are skipped with a warning that names them.
#
# To try it without your own photos, the course builds a small folder from CIFAR-10's
# photographs arranged as a *new* task, "how does it move?" (flies: airplanes and birds;
# drives: cars and trucks; floats: ships; walks: cats, deer, dogs, horses), and plants a
# few typical accidents in it. Set `MY_IMAGES` to your own folder to use yours.

# %%
MY_IMAGES = None   # e.g. "/home/me/photos/my_task" with train/ and val/ inside
folder = MY_IMAGES or build_demo_folder(data_dir() / "own_images" / f"moves_{PROFILE}",
                                        cfg.folder_train, cfg.folder_val)
own = load_image_folder(folder, size=cfg.size)
print(own)
print(own.counts().to_string())
for path, why in own.skipped:
    print(f"skipped {path}: {why}")

# %%
cnnbook.seed_everything(0)
own_net = TransferNet(copy.deepcopy(pre.model), len(own.classes))
own_tf = BatchTransform(mean=pre.mean, std=pre.std, flip=True,
                        crop_padding=max(1, cfg.size // 8), channels_last=cpu)
own_train, own_val = own.loaders(batch_size=16, transform=own_tf, device=device)
# a few dozen photos per class: the slower backbone on either path (exercise 4's trade-off)
own_run = cnnbook.fit(own_net, own_train, own_val, epochs=cfg.folder_epochs, lr=1e-3,
                      optimizer=optim.adamw(weight_decay=1e-4, lr_mult={"backbone": 0.1}),
                      scheduler=schedules.warmup_cosine(warmup_fraction=0.1),
                      name="own_images", chapter="19", profile=PROFILE, progress=False,
                      live_plot=False,
                      extra={"weights": pre.description, "folder": str(folder)})
print(f"own images: val accuracy {own_run.test_acc:.3f} on {len(own.val[1])} images "
      f"({len(own.train[1])} training images, {own_run.seconds:.1f} s)")

# %% [markdown]
# A single accuracy hides which classes work. The classification report (scikit-learn's
# precision, recall and F1 per class) and single-image predictions with their softmax
# confidence show it. Below, the first validation images, then a real photograph the
# network has never seen: scikit-image's cat, Chelsea (a 451x300 photo, resized and
# cropped like the folder's images).

# %%
report = classification_report(own_net, own_val, own.classes)
print(report.round(3).to_string())


def as_input(photo, size):
    """A float (3, H, W) photo in [0, 1] -> the folder's uint8 square at `size` pixels."""
    x = (photo * 255).round().to(torch.uint8)
    return TF.center_crop(TF.resize(x, [size], antialias=True), [size, size])


examples = [own.val[0][i] for i in range(0, len(own.val[1]), max(1, len(own.val[1]) // 5))][:5]
examples.append(as_input(load_photo("chelsea", gray=False), cfg.size))
titles = []
for img in examples:
    top = predict_image(own_net, img, own.classes, transform=own_val.transform, k=2)
    titles.append("\n".join(f"{c} {p:.0%}" for c, p in top))
viz.show_images(torch.stack(examples), titles, ncols=6, scale=1.4);
print("Chelsea the cat:", predict_image(own_net, examples[-1], own.classes,
                                        transform=own_val.transform, k=len(own.classes)))

# %% [markdown]
# The confidence is the softmax probability of the top class. It is not a calibrated
# probability ([chapter 15](15_cifar10.ipynb) measured how over-confident networks are), but
# a low one is a useful flag: look at those images first.
#
# ## Summary
#
# - A network trained on a large dataset learns features that help on other tasks:
#   freeze them and train a classifier (feature extraction), or train on from them
#   (fine-tuning).
# - torchvision's weights come through its API and the hub cache; `CNNBOOK_WEIGHTS_MIRROR`
#   serves a classroom offline, and the loader says exactly what is missing.
# - The sources' recipe works; the course's improvements (the source's normalisation, a
#   slower backbone, warm-up + cosine, augmentation) are measured above on the same budget.
# - Pretraining's value is largest when labels are few: section 6 puts it in labelled
#   images.
# - Your own images: check the folder once, up front; report per class; look at the
#   predictions and their confidence.
#
# ## Exercises
#
# **Exercise 1 (a new head).** Write `new_head(model, num_classes)` that replaces the
# network's last layer `model.fc` by a fresh `nn.Linear` with the same number of inputs
# and `num_classes` outputs, as the sources do, and returns the model. Do not hard-code
# 512: read the inputs from the old layer.

# %% nbgrader={"grade": false, "grade_id": "ex-19-head", "locked": false, "schema_version": 3, "solution": true, "task": false}
def new_head(model: nn.Module, num_classes: int) -> nn.Module:
    """`model` with `fc` replaced by a new Linear(fc.in_features, num_classes)."""
    ### BEGIN SOLUTION
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-19-head-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_m = new_head(torchvision.models.resnet18(), 10)
assert isinstance(_m.fc, nn.Linear) and _m.fc.in_features == 512 and _m.fc.out_features == 10
assert _m.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
### BEGIN HIDDEN TESTS
import random as _random
from cnnbook.models.resnet import resnet18 as _course_resnet18
for _base in (torchvision.models.resnet18(), _course_resnet18(width_mult=0.25, num_classes=7)):
    _k = _random.randint(2, 50)
    _before = {n: p for n, p in _base.named_parameters() if not n.startswith("fc")}
    _in = _base.fc.in_features
    _out = new_head(_base, _k)
    assert _out is _base and isinstance(_out.fc, nn.Linear)
    assert (_out.fc.in_features, _out.fc.out_features) == (_in, _k)
    _after = {n: p for n, p in _out.named_parameters() if not n.startswith("fc")}
    assert _after.keys() == _before.keys() and all(_after[n] is _before[n] for n in _after)
### END HIDDEN TESTS
print("new_head works")

# %% [markdown]
# **Exercise 2 (features, extracted once).** Feature extraction does not need to run the
# frozen backbone every epoch: compute the features once and train a classifier on them.
# Write `extract_features(backbone, loader)` returning `(features, labels)`: the
# backbone's outputs for every batch, concatenated into one float tensor of shape
# (N, D) on the CPU, and the labels (N,). Run the backbone in eval mode (batch-norm
# statistics, no dropout), without building a graph, and give the backbone its previous
# mode back.

# %% nbgrader={"grade": false, "grade_id": "ex-19-features", "locked": false, "schema_version": 3, "solution": true, "task": false}
def extract_features(backbone: nn.Module, loader):
    """(features (N, D) float on the CPU, labels (N,)) of every batch, in eval mode."""
    ### BEGIN SOLUTION
    was = backbone.training
    backbone.eval()
    feats, labels = [], []
    with torch.no_grad():
        for X, y in loader:
            feats.append(torch.flatten(backbone(X), 1).float().cpu())
            labels.append(y.cpu())
    backbone.train(was)
    return torch.cat(feats), torch.cat(labels)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-19-features-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
_bb = TransferNet(copy.deepcopy(pre.model), 5).backbone
_f, _l = extract_features(_bb, [(x_test[:8].float() / 255, y_test[:8])])
assert isinstance(_f, torch.Tensor) and _f.shape == (8, 512) and torch.equal(_l, y_test[:8])
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
_net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.5),
                     nn.AdaptiveAvgPool2d(1), nn.Flatten())
_net.train()
_x = torch.randn(int(torch.randint(5, 20, ())), 3, 8, 8)
_y = torch.randint(0, 3, (len(_x),))
_batches = [(_x[i:i + 4], _y[i:i + 4]) for i in range(0, len(_x), 4)]
_stats = _net[1].running_mean.clone()
_f, _l = extract_features(_net, _batches)
assert _net.training, "give the backbone its previous mode back"
assert torch.equal(_net[1].running_mean, _stats), "eval mode: batch-norm statistics must not move"
assert not _f.requires_grad and _f.dtype == torch.float32 and _f.shape == (len(_x), 6)
_net.eval()
with torch.no_grad():
    _want = _net(_x)
assert torch.allclose(_f, _want, atol=1e-5) and torch.equal(_l, _y)
### END HIDDEN TESTS
print("extract_features works")

# %% [markdown]
# **Exercise 3 (labels, read backwards).** Write `labels_needed(budgets, accs, target)`:
# `budgets` are labelled images per class (increasing), `accs` the accuracies measured
# there. Return the budget at which the curve reaches `target`, interpolating linearly in
# log(budget) between the two measured points around it, as a Python `float`; the first
# budget if `accs[0] >= target`; `None` if no measured accuracy reaches it. You may assume
# the accuracies increase. (This is what the explorer's "scratch needs" shows.)

# %% nbgrader={"grade": false, "grade_id": "ex-19-labels", "locked": false, "schema_version": 3, "solution": true, "task": false}
import math


def labels_needed(budgets, accs, target):
    """Budget where the accuracy curve reaches `target` (log-linear interpolation), or None."""
    ### BEGIN SOLUTION
    if accs[0] >= target:
        return float(budgets[0])
    for b0, b1, a0, a1 in zip(budgets, budgets[1:], accs, accs[1:]):
        if a0 < target <= a1:
            t = (target - a0) / (a1 - a0)
            return float(math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))))
    return None
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-19-labels-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert labels_needed([10, 100], [0.4, 0.6], 0.3) == 10.0
assert labels_needed([10, 100], [0.4, 0.6], 0.7) is None
assert abs(labels_needed([10, 100], [0.4, 0.6], 0.5) - 31.6227766) < 1e-4
### BEGIN HIDDEN TESTS
import numpy as _np
_rng = _np.random.default_rng()
for _ in range(20):
    _b = sorted(set(int(v) for v in _rng.integers(2, 5000, size=int(_rng.integers(2, 6)))))
    if len(_b) < 2:
        continue
    _a = sorted(float(v) for v in _rng.uniform(0.2, 0.9, size=len(_b)))
    _t = float(_rng.uniform(0.1, 1.0))
    _got = labels_needed(_b, _a, _t)
    _want = label_equivalent(pd.Series(_a, index=_b), _t)
    if _want is None:
        assert _got is None
    else:
        assert type(_got) is float and abs(_got - _want) < 1e-6 * _want
### END HIDDEN TESTS
print("labels_needed matches cnnbook.transfer.curves.label_equivalent")

# %% [markdown]
# **Exercise 4 (experiment: how much to unfreeze).** Between feature extraction (train
# only the head) and full fine-tuning lies *partial* fine-tuning: freeze the early stages,
# train the last one and the head. Train `TransferNet(..., train_from="layer4")` with
# `course_run` on the comparison budget (`cfg.compare` per class, `cfg.steps` steps) under
# the name `"partial_layer4"`, and store its test accuracy in `partial_acc` (a float).
# Then put the three methods in `ranking`, a list from best to worst of
# `"feature extraction"`, `"partial"` and `"fine-tune"`, ordered by the accuracies you
# measured (section 5 has the other two in `compare`). Interpret in a sentence or two:
# which layers of the source model were worth adapting for this target task, and would
# you expect the same with 10 times more labels?

# %% nbgrader={"grade": false, "grade_id": "ex-19-unfreeze", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
partial = course_run("partial_layer4", cfg.compare, train_from="layer4", steps=cfg.steps)
partial_acc = float(partial.test_acc)
measured = {"feature extraction": compare.loc["feature extraction", "test_acc"],
            "partial": partial_acc, "fine-tune": compare.loc["fine-tune", "test_acc"]}
ranking = sorted(measured, key=measured.get, reverse=True)
print(measured, ranking)
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-19-unfreeze-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
assert type(partial_acc) is float and 0.0 <= partial_acc <= 1.0
assert sorted(ranking) == ["feature extraction", "fine-tune", "partial"]
### BEGIN HIDDEN TESTS
import json as _json
from cnnbook.results import results_dir as _results_dir
_rec = _json.loads((_results_dir(PROFILE) / "19-partial_layer4.json").read_text())
assert abs(_rec["test_acc"] - partial_acc) < 1e-9, "partial_acc must be the run's test accuracy"
assert _rec.get("per_class") == cfg.compare and _rec.get("train_from") == "layer4"
_acc = {"feature extraction": float(compare.loc["feature extraction", "test_acc"]),
        "partial": partial_acc, "fine-tune": float(compare.loc["fine-tune", "test_acc"])}
for _hi, _lo in zip(ranking, ranking[1:]):
    assert _acc[_hi] >= _acc[_lo], f"{_hi} is ranked above {_lo} but measured lower"
### END HIDDEN TESTS
print("ranking:", ranking)
