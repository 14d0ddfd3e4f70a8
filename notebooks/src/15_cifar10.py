# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 15 · CIFAR-10: a harder dataset
#
# Part II ended with networks that classify Fashion-MNIST's grey, centred, clean clothes
# at around 90% accuracy. That is a good test bench but a gentle one: every image is shot
# the same way, on the same black background. Part III is about *making CNNs work*, and
# for that we need a dataset where the tricks matter. CIFAR-10 is the classic choice:
# 60,000 small colour photographs of ten everyday classes, taken from the web, with
# clutter, odd poses and any background. A network that shines on Fashion-MNIST does much
# worse here, and, more instructive, a plain network *overfits*: it learns the training
# images almost perfectly and the test images far less well.
#
# **What you will learn**
#
# - where CIFAR-10 comes from and how the best results on it moved over fifteen years;
# - the standard way to load images in PyTorch: a folder per class, torchvision's
#   `ImageFolder`, `transforms` and a `DataLoader`; then the course's way (the same
#   pixels as one uint8 tensor in memory), checked byte for byte against it, and timed;
# - the dataset itself: per-channel statistics, classes, examples;
# - a plain VGG-style baseline that overfits visibly, and the train/test gap measured;
#   the same network on Fashion-MNIST, to put a number on "harder";
# - per-class precision, recall and F1, the confusion matrix, which classes get confused,
#   and single-image predictions with their confidence;
# - data augmentation done on whole batches on the device, checked against torchvision,
#   and an explorer to see what each transform does.

# %%
import math
import tarfile
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as TF

import cnnbook
from cnnbook import viz
from cnnbook.data import augment as A
from cnnbook.data import class_names, info, load_split, subset_per_class
from cnnbook.data.image_folder import (cifar10_image_folder, cifar10_tar, course_indices,
                                       folder_tensors)
from cnnbook.data.loader import BatchTransform, TensorLoader
from cnnbook.models.cifar_baseline import CifarBaseline
from cnnbook.profiling import count_macs, count_params
from cnnbook.summary import show_source
from cnnbook.train import predict
from cnnbook.train.metrics import (classification_report, confusion_matrix, mean_confidence,
                                   predict_image)
from cnnbook.widgets.augmentation import AugmentationExplorer

# %% tags=["parameters"]
from cnnbook.config import active_profile
PROFILE = active_profile()  # "smoke", "cpu" or "full"; CNNBOOK_PROFILE sets the default
KNOBS = {
    # limit / test_limit / epochs / batch_size / lr / widths: the baseline (and exercise 3,
    # which trains it again with augmentation); compare_epochs: the same network on
    # Fashion-MNIST; folder_split / folder_limit / workers: the ImageFolder pipeline and its
    # timing; check_every: every how many-th file is compared byte for byte; stats_limit:
    # images used for the channel statistics (None: the whole training split)
    "smoke": dict(limit=300, test_limit=100, epochs=1, batch_size=64, lr=1e-3,
                  widths=(8, 16, 32), compare_epochs=1, folder_split="test", folder_limit=128,
                  workers=0, check_every=100, stats_limit=1_000),
    "cpu":   dict(limit=5_000, test_limit=1_000, epochs=20, batch_size=32, lr=1e-3,
                  widths=(16, 32, 64), compare_epochs=2, folder_split="test",
                  folder_limit=None, workers=0, check_every=5, stats_limit=None),
    "full":  dict(limit=None, test_limit=None, epochs=30, batch_size=128, lr=1e-3,
                  widths=(32, 64, 128), compare_epochs=5, folder_split="train",
                  folder_limit=None, workers=2, check_every=1, stats_limit=None),
}

# %%
cfg = cnnbook.settings(PROFILE, KNOBS)
cnnbook.seed_everything(0)
device = cnnbook.get_device()
names = class_names("cifar10")
print(f"profile {PROFILE}, device {device}, {torch.get_num_threads()} CPU threads")

# %% [markdown]
# The `cpu` profile trains the baseline (at half width: 16, 32 and 64 channels) on a
# class-balanced 5,000-image subset of the training split for 20 epochs in batches of 32
# (about 3,000 steps) and tests it on 1,000 test images: enough to watch it overfit within
# a few minutes on a laptop. `full` uses the full width (32, 64, 128), all 50,000 + 10,000
# images, batches of 128 and 30 epochs (a GPU run).
#
# ## 1. The idea and a little history
#
# In 2008 Antonio Torralba, Rob Fergus and William Freeman collected **80 Million Tiny
# Images**: every image that web search engines returned for 75,062 English nouns,
# shrunk to 32x32 pixels. The labels were just the search words, so most were wrong. Alex
# Krizhevsky, Vinod Nair and Geoffrey Hinton had students label a subset by hand and in
# 2009 published two clean datasets from it: **CIFAR-10** (ten classes) and CIFAR-100
# (a hundred). CIFAR-10 has 6,000 images per class, 60,000 in all, split into 50,000 for
# training and 10,000 for testing (5,000 and 1,000 per class), every one a 32x32 RGB
# photograph (Krizhevsky, 2009). The parent collection was withdrawn in 2020, after an
# audit found offensive labels and images in it (Prabhu and Birhane, 2020); the
# hand-checked CIFAR sets remain in use.
#
# Why is it hard, compared with Fashion-MNIST? The object can be anywhere in the picture,
# any size, seen from any side, on any background; the same class covers very different
# looks (a "bird" is an ostrich or a sparrow in flight); and some classes are close
# relatives (cat and dog, automobile and truck, deer and horse). Colour carries
# information, but it also varies, and 32x32 pixels leave little detail.
#
# The published error rates tell the story of deep learning in miniature (all as
# reported by their authors, with data augmentation unless noted):
#
# | year | model | test error |
# | --- | --- | --- |
# | 2010 | a convolutional deep belief network (Krizhevsky) | 21.1% |
# | 2012 | cuda-convnet, the code AlexNet grew from (Krizhevsky) | 11% (18% without augmentation) |
# | 2013 | Maxout networks (Goodfellow et al.) | 9.4% |
# | 2013 | Network in Network (Lin et al., our [chapter 08](08_nin.ipynb)) | 8.8% |
# | 2015 | ResNet-110 (He et al., [chapter 11](11_resnet.ipynb)) | 6.4% |
# | 2016 | DenseNet-BC (Huang et al., [chapter 12](12_densenet.ipynb)) | 3.5% |
# | 2018 | AutoAugment on PyramidNet + ShakeDrop (Cubuk et al.) | 1.5% |
# | 2020 | ViT-H/14 pre-trained on 300 M images (Dosovitskiy et al.) | 0.5% |
#
# Two more landmarks bear on this part of the course. Recht et al. (2018) collected a
# fresh test set the CIFAR way and found that accuracies drop by 4-10 points on it: years
# of choosing models by the same 10,000 test images had tuned them to that sample. And
# speed runs turned CIFAR-10 into a benchmark for *training recipes*: Keller Jordan's
# airbench94 (2024) reaches 94% in under four seconds on one A100 GPU.
# [Chapter 18](18_training_recipes.ipynb) goes after that kind of result on a CPU; this
# chapter measures the starting point.
#
# ## 2. The ImageFolder pipeline
#
# Most image datasets you will meet (and your own photos, in
# [chapter 19](19_transfer_learning.ipynb)) come as files: one folder per class, the folder
# name being the label. The mirror's copy of CIFAR-10 is such a tree, packed in one tar
# file. Let us look inside:

# %%
tar_path = cifar10_tar()
with tarfile.open(tar_path) as tar:
    first = [m for _, m in zip(range(6), tar)]
for m in first:
    print(f"{'dir ' if m.isdir() else 'file'} {m.name:45s} {m.size:6d} bytes")
print(f"archive: {tar_path} ({tar_path.stat().st_size / 1e6:.0f} MB)")

# %% [markdown]
# The layout is `cifar10-jpg/{train,test}/<class>/NNNN.jpg`: every image is a small JPEG
# of about 900 bytes. `cifar10_image_folder(split)` unpacks one split into the data
# cache (once: into a temporary folder beside the target, renamed when complete, so an
# interrupted run never leaves half a tree) and hands the folder to torchvision's
# `ImageFolder`. Here is that function and the dataset it returns:

# %%
show_source(cifar10_image_folder);

# %%
folder_ds = cifar10_image_folder(cfg.folder_split)
print(folder_ds)
print("classes:", folder_ds.classes)
print("class_to_idx:", folder_ds.class_to_idx)
print("first samples:", folder_ds.samples[:2])
print("images per class:", torch.bincount(torch.tensor(folder_ds.targets)).tolist())

# %% [markdown]
# `ImageFolder` made the classes from the **sorted** sub-folder names (label = position in
# that list) and listed the files of each class in sorted order. Indexing the dataset
# opens one file with PIL and applies the `transform`. The standard recipe turns the PIL
# image into a float tensor in [0, 1] and normalises each channel with the dataset's mean
# and standard deviation (section 3 computes them); a `DataLoader` then shuffles, batches
# with its `collate_fn`, and can run several worker processes:

# %%
mean, std = info("cifar10").mean, info("cifar10").std
folder_transform = v2.Compose([
    v2.ToImage(),                            # PIL -> uint8 tensor (C, H, W)
    v2.ToDtype(torch.float32, scale=True),   # -> float in [0, 1]
    v2.Normalize(mean, std),                 # per channel: (x - mean) / std
])
folder_ds.transform = folder_transform
g = torch.Generator().manual_seed(0)
subset = (torch.randperm(len(folder_ds), generator=g)[:cfg.folder_limit]
          if cfg.folder_limit else torch.arange(len(folder_ds)))
folder_loader = DataLoader(Subset(folder_ds, subset.tolist()), batch_size=cfg.batch_size,
                           shuffle=True, num_workers=cfg.workers, generator=g)
X, y = next(iter(folder_loader))
print(f"{len(subset):,} images, one batch: X {tuple(X.shape)} {X.dtype}, y {tuple(y.shape)}, "
      f"X mean {X.mean():.3f}, std {X.std():.3f}")

# %% [markdown]
# ### The same pixels as one tensor
#
# Decoding JPEGs and building tensors image by image costs CPU time on every epoch.
# `cnnbook.data` decodes the same files *once*, keeps a split as one uint8 tensor
# (`load_split("cifar10", split)`, cached on disk as a `.pt` file) and does everything else
# to whole batches ([chapter 05](05_lenet.ipynb) introduced this loader). It is a shortcut
# only if it gives exactly the same images. The course tensor is ordered class by class, in
# file order, so the k-th file of class c is the k-th image with label c; `course_indices`
# makes that map, and we compare bytes (PIL's decoder against torchvision's, on every
# `check_every`-th file):

# %%
course_images, course_labels = load_split("cifar10", cfg.folder_split)
raw_ds = cifar10_image_folder(cfg.folder_split)          # no transform: PIL images
to_course = course_indices(raw_ds, course_labels)
checked = torch.arange(0, len(raw_ds), cfg.check_every)
folder_images, folder_labels = folder_tensors(raw_ds, checked)
same = torch.equal(folder_images, course_images[to_course[checked]])
print(f"compared {len(checked):,} images ({folder_images.numel():,} bytes): identical = {same}; "
      f"labels identical = {torch.equal(folder_labels, course_labels[to_course[checked]])}")
print("the two orders coincide:", torch.equal(to_course, torch.arange(len(raw_ds))))
assert same and torch.equal(folder_labels, course_labels[to_course[checked]])

# %% [markdown]
# The cell compares the bytes and asserts they are identical (`tests/data/test_image_folder.py`
# checks the same on every run of the test suite). Now the time of one epoch over the
# same images through each path, both ending in normalised float batches:

# %%
def time_epoch(loader):
    t0 = time.perf_counter()
    n = 0
    for X, y in loader:
        n += len(y)
    return time.perf_counter() - t0, n

course_loader = TensorLoader(course_images[to_course[subset]], course_labels[to_course[subset]],
                             batch_size=cfg.batch_size, shuffle=True,
                             transform=BatchTransform(mean=mean, std=std), device="cpu")
time_epoch(course_loader)  # warm-up
folder_seconds, n_folder = time_epoch(folder_loader)
tensor_seconds, n_tensor = time_epoch(course_loader)
if not cnnbook.config.rehearsing():   # make rehearse cuts the tensor loader to two batches
    assert n_folder == n_tensor == len(subset)
speedup = (folder_seconds / n_folder) / (tensor_seconds / n_tensor)   # per image
print(f"one epoch over {n_folder:,} images: ImageFolder + DataLoader ({cfg.workers} workers) "
      f"{folder_seconds:.2f} s, in-memory tensor {tensor_seconds:.3f} s: {speedup:.0f}x faster")
if cnnbook.claims_checked(PROFILE):
    assert speedup > 2

# %% [markdown]
# The printout above gives both times and their ratio (on a shared machine the numbers
# move from run to run; the order of magnitude does not). The folder path opens a file,
# decodes a JPEG, makes a PIL image, converts it and normalises it, for every image and
# every epoch, in Python. The tensor path indexes one block of memory and normalises the
# whole batch in one vectorised operation. Worker processes (`num_workers`) hide the cost
# behind the GPU when there is one; on a two-core laptop there is nothing to hide it behind.
# The folder pipeline is still what you use for data that does not fit in memory, or that
# arrives as files ([chapter 19](19_transfer_learning.ipynb)).
#
# ## 3. The dataset: statistics, classes, examples
#
# `Normalize` needs the mean and standard deviation of each colour channel over the
# training images. We compute them (in float64, in chunks, so that 150 million values do
# not need a float copy at once) and compare with the values stored in `cnnbook.data`'s
# catalogue, which are the usual published ones for the original CIFAR-10 files:

# %%
train_images, train_labels = load_split("cifar10", "train")
stat_idx = subset_per_class(train_labels, cfg.stats_limit, 10)
s = torch.zeros(3, dtype=torch.float64)
s2 = torch.zeros(3, dtype=torch.float64)
for chunk in train_images[stat_idx].split(5_000):
    x = chunk.double() / 255
    s += x.sum(dim=(0, 2, 3))
    s2 += (x ** 2).sum(dim=(0, 2, 3))
n_values = len(stat_idx) * 32 * 32
chan_mean = s / n_values
chan_std = (s2 / n_values - chan_mean ** 2).sqrt()
stats = pd.DataFrame({"mean (computed)": chan_mean.numpy(), "mean (catalogue)": mean,
                      "std (computed)": chan_std.numpy(), "std (catalogue)": std},
                     index=["red", "green", "blue"])
print(f"over {len(stat_idx):,} training images")
print(stats.round(4))
worst = max((chan_mean - torch.tensor(mean, dtype=torch.float64)).abs().max(),
            (chan_std - torch.tensor(std, dtype=torch.float64)).abs().max()).item()
print(f"largest difference: {worst:.4f}")
assert worst < (0.01 if cfg.stats_limit is None else 0.03)
assert chan_mean.argmin() == 2 and chan_std.argmax() == 2  # blue: darkest, most spread

# %% [markdown]
# The table above shows the two agree to within the printed largest difference. They
# cannot agree exactly: the mirror holds a JPEG re-encoding of CIFAR-10, and lossy
# compression moves pixel values a little. Blue is on average the darkest channel and
# the most spread out (the cell asserts both). Each class has exactly the same number of
# images:

# %%
counts = pd.DataFrame({"train": torch.bincount(train_labels, minlength=10).numpy(),
                       "test": torch.bincount(load_split("cifar10", "test")[1], minlength=10).numpy()},
                      index=names)
print(counts.T)
assert (counts["train"] == 5_000).all() and (counts["test"] == 1_000).all()

# %%
per_class = 3
pick = torch.cat([torch.nonzero(train_labels == c).flatten()[:per_class] for c in range(10)])
pick = pick.view(10, per_class).T.flatten()  # one row per example, classes along the row
fig = viz.show_images(train_images[pick].float() / 255, titles=[names[int(train_labels[i])] for i in pick],
                      ncols=10, scale=1.2, normalize=False)

# %% [markdown]
# Three examples per class, one per row. Notice how much the backgrounds vary, and how
# often they go with the class (ships with water, airplanes with sky): a network happily
# uses such a shortcut, which will not help when a bird sits on a boat.
#
# ## 4. A baseline that overfits
#
# Our baseline is a plain small VGG network ([chapter 07](07_vgg.ipynb)): three blocks of two 3x3
# convolutions with ReLUs, each block ending in a 2x2 max-pool (32 -> 16 -> 8 -> 4 px),
# then a hidden fully connected layer of 256 units and the ten outputs. It has on purpose
# nothing against overfitting: no batch norm, no dropout, no weight decay, no augmentation.

# %%
show_source(CifarBaseline);
baseline = CifarBaseline(cfg.widths)
print(baseline)
print(f"{count_params(baseline):,} parameters, "
      f"{count_macs(baseline, (1, 3, 32, 32)) / 1e6:.1f} M multiply-adds per image")

# %% [markdown]
# We train it with Adam (learning rate 1e-3) on normalised images, and record the
# training and test accuracy after every epoch.

# %%
train_iter, test_iter = cnnbook.load_data("cifar10", batch_size=cfg.batch_size, limit=cfg.limit,
                                          test_limit=cfg.test_limit, normalize=True)
print(f"{train_iter.num_examples:,} training and {test_iter.num_examples:,} test images")
cnnbook.seed_everything(0)
baseline = CifarBaseline(cfg.widths)
result = cnnbook.fit(baseline, train_iter, test_iter, epochs=cfg.epochs, lr=cfg.lr,
                     optimizer="adam", name="cifar_baseline", chapter="15")

# %%
hist = result.history.set_index("epoch")
hist["gap"] = hist["train_acc"] - hist["test_acc"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
viz.plot_history(result.history, metrics=("train_acc", "test_acc"), ax=axes[0],
                 title="baseline: accuracy per epoch")
axes[1].bar(hist.index, hist["gap"], color="tab:red")
axes[1].set(xlabel="epoch", ylabel="train acc - test acc", title="the train/test gap")
fig.tight_layout()
print(hist[["train_loss", "train_acc", "test_acc", "gap"]].round(3))
final_gap = float(hist["gap"].iloc[-1])
best_epoch = int(hist["test_acc"].idxmax())
print(f"after {len(hist)} epochs: train accuracy {result.train_acc:.3f}, test accuracy "
      f"{result.test_acc:.3f}, gap {100 * final_gap:.1f} points; best test accuracy "
      f"{hist['test_acc'].max():.3f} at epoch {best_epoch}; "
      f"{result.seconds / 60:.1f} min of training")
if cnnbook.claims_checked(PROFILE):
    assert final_gap > 0.10, "the baseline should overfit visibly"
    assert final_gap > float(hist["gap"].iloc[0]) + 0.08, "and the gap should grow"

# %% [markdown]
# The table and the plot above tell the story of overfitting. In the first epochs both
# accuracies rise together. Then the training accuracy keeps climbing towards 100% while
# the test accuracy levels off: the network has started to memorise the training images
# (their backgrounds, their exact pixels) instead of learning what generalises. The last
# line prints the gap in points after the final epoch and the epoch where the test
# accuracy peaked; in the `cpu` and `full` profiles the cell asserts that the gap exceeds
# 10 points and grew by at least 8 points since the first epoch. The next three
# chapters shrink this gap: regularisation ([16](16_regularization.ipynb)), normalisation
# ([17](17_normalization_attention.ipynb)) and training recipes ([18](18_training_recipes.ipynb)).
#
# ### How much harder than Fashion-MNIST?
#
# The same network (with one input channel; images resized from 28 to 32 px so that the
# three pools fit), the same number of training images, the same optimiser and the same
# number of epochs on Fashion-MNIST. The CIFAR-10 number is the baseline's test accuracy
# after the same number of epochs, read from its history.

# %%
f_train, f_test = cnnbook.load_data("fashion_mnist", batch_size=cfg.batch_size, resize=32,
                                    limit=cfg.limit, test_limit=cfg.test_limit, normalize=True)
cnnbook.seed_everything(0)
f_result = cnnbook.fit(CifarBaseline(cfg.widths, in_channels=1), f_train, f_test,
                       epochs=cfg.compare_epochs, lr=cfg.lr, optimizer="adam",
                       name="cifar_baseline_on_fashion_mnist", chapter="15")
cifar_same_budget = float(hist.loc[len(f_result.history), "test_acc"])   # the same epochs
print(f"after {cfg.compare_epochs} epoch(s) on {f_train.num_examples:,} images: "
      f"Fashion-MNIST {f_result.test_acc:.3f}, CIFAR-10 {cifar_same_budget:.3f} test accuracy")
if cnnbook.claims_checked(PROFILE):
    assert f_result.test_acc > cifar_same_budget + 0.15

# %% [markdown]
# The printout above puts a number on "harder": the same network, budget and recipe
# reach a much higher test accuracy on Fashion-MNIST than on CIFAR-10 (the cell asserts a
# difference of more than 15 points outside the smoke profile).
#
# ## 5. Which classes, and how sure? Per-class metrics
#
# One accuracy number hides a lot. `cnnbook.train.metrics` computes per-class
# **precision** (of the images predicted as class c, the share that are c), **recall** (of
# the images of class c, the share found) and **F1** (their harmonic mean), with
# scikit-learn, and the **confusion matrix** (row: true class, column: predicted class).

# %%
y_pred, y_true = predict(baseline, test_iter)
report = classification_report(y_true, y_pred, names)
cm = confusion_matrix(y_true, y_pred, names)
print(report.round(3))
print(f"accuracy {report.attrs['accuracy']:.3f}")
fig = viz.plot_confusion_matrix(y_true, y_pred, names, normalize=True,
                               title="baseline: confusion matrix (rows sum to 1)")

# %% [markdown]
# The formulas are simple enough to apply by hand once, from the counts: the diagonal
# holds the true positives, a column sum is everything predicted as that class, a row
# sum everything that truly is that class.

# %%
C = torch.tensor(cm.to_numpy(), dtype=torch.float64)
tp = C.diag()
precision = torch.where(C.sum(0) > 0, tp / C.sum(0).clamp(min=1), torch.zeros_like(tp))
recall = torch.where(C.sum(1) > 0, tp / C.sum(1).clamp(min=1), torch.zeros_like(tp))
f1 = torch.where(precision + recall > 0,
                 2 * precision * recall / (precision + recall).clamp(min=1e-12), torch.zeros_like(tp))
support = C.sum(1)
by_hand = pd.DataFrame({"precision": precision.numpy(), "recall": recall.numpy(),
                        "f1": f1.numpy()}, index=names)
by_hand.loc["macro avg"] = by_hand.iloc[:10].mean()
by_hand.loc["weighted avg"] = (by_hand.iloc[:10].mul(support.numpy(), axis=0).sum()
                               / support.sum().item())
diff = np.abs(by_hand.to_numpy() - report[["precision", "recall", "f1"]].to_numpy()).max()
print(f"largest difference from scikit-learn: {diff:.1e}")
assert diff < 1e-12

# %% [markdown]
# Same numbers as scikit-learn's. Which classes does the baseline mix up? The largest
# off-diagonal counts, with both directions of a pair added:

# %%
off = C.clone()
off.fill_diagonal_(0)
pairs = sorted(((int(off[i, j] + off[j, i]), names[i], names[j])
                for i in range(10) for j in range(i + 1, 10)), reverse=True)
for count, a, b in pairs[:6]:
    print(f"{a:>10s} <-> {b:<10s} {count:4d} test images")
animals = {"bird", "cat", "deer", "dog", "frog", "horse"}
kind = ["animal" if n in animals else "vehicle" for n in names]
same_kind = sum(off[i, j] for i in range(10) for j in range(10) if kind[i] == kind[j]).item()
share = same_kind / max(off.sum().item(), 1)
chance = (6 * 5 + 4 * 3) / 90  # share if errors fell on the 9 other classes uniformly
print(f"{100 * share:.0f}% of the mistakes stay within animals or within vehicles "
      f"({100 * chance:.0f}% if errors were spread uniformly)")
if cnnbook.claims_checked(PROFILE):
    assert share > chance

# %% [markdown]
# The printout above lists the most confused pairs of this run, and the share of mistakes
# that stay inside the animals (bird, cat, deer, dog, frog, horse) or inside the vehicles
# (airplane, automobile, ship, truck), against the share expected if mistakes fell at
# random. Outside the smoke profile the cell asserts that the mistakes cluster like this
# more than chance would make them: the network separates the broad categories better
# than the classes inside them. The per-class table shows which classes are weakest;
# look for them among the pairs above.
#
# ### One image at a time
#
# `predict_image` runs the model in evaluation mode on one image (prepared with the test
# loader's transform) and returns the most likely classes with their softmax
# probabilities:

# %%
shown, titles = [], []
for c in (3, 5, 2, 8, 9, 1):
    i = int(torch.nonzero(test_iter.labels.cpu() == c)[0])
    img = test_iter.images[i].cpu()
    top = predict_image(baseline, img, names, transform=test_iter.transform, k=3)
    shown.append(img)
    titles.append(f"{names[c]}\n-> {top[0][0]} {top[0][1]:.2f}")
    print(f"true {names[c]:>10s}: " + ", ".join(f"{n} {p:.2f}" for n, p in top))
fig = viz.show_images(torch.stack(shown).float() / 255, titles=titles, ncols=6, scale=1.6, normalize=False)

# %% [markdown]
# Are these probabilities trustworthy? If they were, the average top probability over the
# test images would match the accuracy:

# %%
mean_conf = mean_confidence(baseline, test_iter)
print(f"mean top probability {mean_conf:.3f}, accuracy {result.test_acc:.3f}")
if cnnbook.claims_checked(PROFILE):
    assert mean_conf > result.test_acc

# %% [markdown]
# The printout compares the two: outside the smoke profile the cell asserts that the
# baseline is *over*confident, its average confidence above its accuracy. An overfitted
# network has learnt to be sure of its training images, and carries that certainty to
# test images it gets wrong (exercise 4 looks at its most confident mistakes).
#
# ## 6. Data augmentation on the device
#
# The most direct cure for overfitting is more data. Augmentation manufactures it: every
# epoch shows each training image with a random change that keeps its class (a small
# rotation, a shift, another brightness). The sources use torchvision's transforms in the
# `ImageFolder` pipeline: `RandomRotation(15)`, `ColorJitter(0.2, 0.2, 0.2, 0.1)`,
# `RandomAffine(0, translate=(0.1, 0.1), scale=(0.9, 1.1))` and `RandomErasing(p=0.2)`.
# Applied one image at a time, in worker processes, they are slow on a CPU. Our
# `cnnbook.data.augment` does the same on a whole batch at once, on the device, with a
# *different* random draw for each image: one `affine_grid` + `grid_sample` call with a
# matrix per image for the geometric transforms, a factor per image broadcast over the
# pixels for the colour ones. The core of the geometric part:

# %%
show_source(A.affine);

# %% [markdown]
# Each transform draws its parameters from the `torch.Generator` it is given (the
# loader's, so that a run repeats exactly) with `sample`, and applies them with `apply`.
# That split lets us check it against torchvision applied image by image with the same
# parameters, as the tests in `tests/data/test_augment.py` do for every transform. For
# the rotation:

# %%
x = train_images[pick[:8]].float() / 255
rot = A.RandomRotation(15)
params = rot.sample(len(x), torch.Generator().manual_seed(0))
ours = rot.apply(x, params)
theirs = torch.stack([TF.rotate(x[k], float(params["angle"][k]),
                                interpolation=InterpolationMode.BILINEAR, fill=0.0)
                      for k in range(len(x))])
print("angles:", [round(a, 1) for a in params["angle"].tolist()])
print(f"largest difference from torchvision: {(ours - theirs).abs().max():.1e}")
assert torch.allclose(ours, theirs, atol=1e-4)

# %% [markdown]
# The sources' whole recipe is one `Compose`; `with_augment(train_iter, recipe)` plugs it
# into a training loader (as `BatchTransform(augment=...)`, applied after crop and flip
# and before normalisation). What does it cost per batch, next to a training step?

# %%
recipe = A.sources_recipe()
print(recipe)
xb = (train_images[:cfg.batch_size].float() / 255).to(device)
gen = torch.Generator().manual_seed(0)
recipe(xb, gen)  # warm-up
t0 = time.perf_counter()
for _ in range(3):
    recipe(xb, gen)
aug_ms = (time.perf_counter() - t0) / 3 * 1000
step_ms = cfg.batch_size / result.examples_per_sec * 1000
print(f"augmenting a batch of {cfg.batch_size}: {aug_ms:.1f} ms; "
      f"one training step of the baseline: {step_ms:.1f} ms "
      f"(augmentation would add {100 * aug_ms / step_ms:.0f}%)")

# %% [markdown]
# The printout gives both times and the share augmentation would add to a step on this
# machine. On a CPU it is not free: the colour jitter (its conversion to hue, saturation
# and value) is the most expensive part. On a GPU the same code runs on the device next to
# the model, with no images travelling through worker processes. Explore the transforms on real images: switch them on and
# off, push the strengths to their limits, change the seed. The top row is the original
# batch, each row below an independent random draw; Δ is the mean absolute change of a
# pixel value. Strong settings make images that no longer look like their class, which
# teaches the network nothing useful.

# %%
explorer = AugmentationExplorer(n_images=8, rows=3)
explorer

# %% [markdown]
# ## Summary
#
# - CIFAR-10: 60,000 colour photos of 32x32 pixels in ten classes (50,000 train, 10,000
#   test), a hand-labelled subset of the 80 Million Tiny Images. Clutter, pose, background
#   and close classes make it far harder than Fashion-MNIST: measured above, the same
#   network and budget lose a large part of their accuracy.
# - `ImageFolder` + `transforms` + `DataLoader` is the standard, general pipeline for
#   image files; the course's in-memory uint8 tensor gives byte-identical images and
#   loads an epoch many times faster.
# - A plain VGG-style network without regularisation overfits: the training accuracy runs
#   away from the test accuracy, and the gap widens as training goes on.
# - Per-class precision, recall, F1 and the confusion matrix show *where* a classifier
#   fails; here, more often than chance, between animals or between vehicles.
# - Augmentation runs on whole batches on the device, with a random draw per image, and
#   agrees with torchvision image by image. Exercise 3 measures what it does to the gap.
#
# ## Exercises
#
# **Exercise 1 (the most confused pairs).** Write `most_confused(cm, k)` that takes a
# confusion matrix (a square tensor of counts, rows true, columns predicted) and returns
# the `k` largest off-diagonal cells as a list of `(true, predicted, count)` tuples of
# Python ints, largest count first; equal counts in row-major order (smaller `true`
# first, then smaller `predicted`). Use it on the baseline's matrix.

# %% nbgrader={"grade": false, "grade_id": "ex-15-most-confused", "locked": false, "schema_version": 3, "solution": true, "task": false}
def most_confused(cm: torch.Tensor, k: int = 5) -> list:
    """The k largest off-diagonal cells (true, predicted, count), largest first."""
    ### BEGIN SOLUTION
    cm = torch.as_tensor(cm)
    cells = [(-int(cm[i, j]), i, j) for i in range(cm.shape[0]) for j in range(cm.shape[1])
             if i != j]
    return [(i, j, -neg) for neg, i, j in sorted(cells)[:k]]
    ### END SOLUTION

for t, p, n in most_confused(torch.tensor(cm.to_numpy()), 3):
    print(f"{names[t]} predicted as {names[p]}: {n}")

# %% nbgrader={"grade": true, "grade_id": "ex-15-most-confused-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_cm = torch.tensor([[5, 1, 3], [2, 7, 0], [3, 4, 1]])
assert most_confused(_cm, 3) == [(2, 1, 4), (0, 2, 3), (2, 0, 3)]
assert all(type(v) is int for cell in most_confused(_cm, 6) for v in cell)
assert len(most_confused(_cm, 6)) == 6
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
_g = torch.Generator().manual_seed(1515)
for _ in range(20):
    _n = int(torch.randint(2, 12, (1,), generator=_g))
    _m = torch.randint(0, 6, (_n, _n), generator=_g)
    _k = int(torch.randint(1, _n * (_n - 1) + 1, (1,), generator=_g))
    _ref = sorted(((int(_m[i, j]), i, j) for i in range(_n) for j in range(_n) if i != j),
                  key=lambda c: (-c[0], c[1], c[2]))[:_k]
    assert most_confused(_m, _k) == [(i, j, c) for c, i, j in _ref]
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (a batched random transform).** Write `random_grayscale(x, generator, p)`
# for a float batch `x` (N, 3, H, W): each image, with probability `p`, becomes its grey
# version, three equal channels of $0.2989\,R + 0.587\,G + 0.114\,B$ (the weights
# torchvision uses). Draw exactly one number per image with
# `torch.rand(len(x), generator=generator)` and grey the image when that number is below
# `p`. Work on the whole batch at once (no loop over the images), and do not call
# torchvision or this chapter's `augment` module.

# %% nbgrader={"grade": false, "grade_id": "ex-15-grayscale", "locked": false, "schema_version": 3, "solution": true, "task": false}
def random_grayscale(x: torch.Tensor, generator: torch.Generator, p: float = 0.1) -> torch.Tensor:
    """Each image of the batch turned grey with probability p."""
    ### BEGIN SOLUTION
    chosen = torch.rand(len(x), generator=generator) < p
    weights = torch.tensor([0.2989, 0.587, 0.114], dtype=x.dtype, device=x.device)
    grey = (x * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True).expand_as(x)
    return torch.where(chosen.to(x.device).view(-1, 1, 1, 1), grey, x)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex-15-grayscale-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_x = torch.rand(16, 3, 8, 8)
_out = random_grayscale(_x, torch.Generator().manual_seed(0), p=0.5)
assert isinstance(_out, torch.Tensor) and _out.shape == _x.shape
_chosen = torch.rand(16, generator=torch.Generator().manual_seed(0)) < 0.5
for _k in range(16):
    _want = TF.rgb_to_grayscale(_x[_k], num_output_channels=3) if _chosen[_k] else _x[_k]
    assert torch.allclose(_out[_k], _want, atol=1e-5), f"image {_k}"
assert torch.equal(random_grayscale(_x, torch.Generator().manual_seed(1), p=0.0), _x)
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons, forbidden
check_comparisons()   # torch.allclose & co. are the genuine ones
import inspect
_src = inspect.getsource(random_grayscale)
assert "for " not in _src.split('"""')[-1], "work on the whole batch, without a loop"
# the task forbids torchvision's grey conversions and the augment module, also under another name
_no_grey = ("torchvision.transforms.functional.rgb_to_grayscale", "torchvision.transforms.functional.to_grayscale",
            "torchvision.transforms._functional_tensor.rgb_to_grayscale",
            "torchvision.transforms.v2.functional._color.rgb_to_grayscale_image",
            "torchvision.transforms.v2.functional._color._rgb_to_grayscale_image") \
    + tuple(f"cnnbook.data.augment.{f}" for f in ("grayscale", "adjust_saturation", "adjust_brightness",
                                                  "adjust_contrast", "adjust_hue", "BatchAugmentation.__call__"))
for _seed in range(5):
    _n = 5 + 7 * _seed
    _p = float(torch.rand((), generator=torch.Generator().manual_seed(100 + _seed)))
    _x = torch.rand(_n, 3, 5, 7, generator=torch.Generator().manual_seed(_seed))
    with forbidden(*_no_grey, task="exercise 2 (grey images without torchvision or augment)"):
        _out = random_grayscale(_x, torch.Generator().manual_seed(_seed), p=_p)
    _chosen = torch.rand(_n, generator=torch.Generator().manual_seed(_seed)) < _p
    _grey = TF.rgb_to_grayscale(_x, num_output_channels=3)
    assert isinstance(_out, torch.Tensor) and _out.shape == _x.shape
    assert torch.allclose(_out, torch.where(_chosen.view(-1, 1, 1, 1), _grey, _x), atol=1e-5)
with forbidden(*_no_grey, task="exercise 2 (grey images without torchvision or augment)"):
    _out = random_grayscale(_x, torch.Generator(), p=1.0)
assert isinstance(_out, torch.Tensor) and torch.allclose(_out, _grey, atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (an experiment: does augmentation close the gap?).** Train the baseline
# again with exactly the settings of section 4 (same images, epochs, learning rate,
# optimiser, seed), but with augmentation switched on in the training loader: for example
# `cnnbook.load_data(..., augment=True)` (random crops after 4-pixel padding, and
# horizontal flips), or `A.with_augment(loader, A.build_augment(...))` with transforms of
# your choice. Keep the loader in `aug_train_iter`, the result of `cnnbook.fit` (with
# `name=` and `chapter="15"`) in `aug_result`, the final train/test gaps of the baseline
# and of your run in `gap_plain` and `gap_aug` (floats), and write in `interpretation`
# (a string of a few sentences) what changed in the training accuracy, the test accuracy
# and the gap, and why.

# %% nbgrader={"grade": false, "grade_id": "ex-15-augment-experiment", "locked": false, "schema_version": 3, "solution": true, "task": false}
### BEGIN SOLUTION
aug_train_iter, _ = cnnbook.load_data("cifar10", batch_size=cfg.batch_size, limit=cfg.limit,
                                      test_limit=cfg.test_limit, normalize=True, augment=True)
cnnbook.seed_everything(0)
aug_result = cnnbook.fit(CifarBaseline(cfg.widths), aug_train_iter, test_iter, epochs=cfg.epochs,
                         lr=cfg.lr, optimizer="adam", name="cifar_baseline_crop_flip",
                         chapter="15")
gap_plain = float(result.train_acc - result.test_acc)
gap_aug = float(aug_result.train_acc - aug_result.test_acc)
interpretation = (
    f"With random crops and flips the training accuracy after {cfg.epochs} epochs is "
    f"{aug_result.train_acc:.3f} instead of {result.train_acc:.3f}: the network never sees "
    f"exactly the same image twice, so it cannot memorise pixels. The test accuracy is "
    f"{aug_result.test_acc:.3f} instead of {result.test_acc:.3f}, and the gap fell from "
    f"{gap_plain:.3f} to {gap_aug:.3f}. Augmentation acts as a regulariser: it trades "
    "training fit for features that survive shifts and mirror images, which the test "
    "images need too.")
### END SOLUTION
print(interpretation)

# %% nbgrader={"grade": true, "grade_id": "ex-15-augment-experiment-test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
_t = aug_train_iter.transform
assert _t.flip or _t.crop_padding or _t.augment is not None, "switch an augmentation on"
assert isinstance(aug_result, cnnbook.train.FitResult)
assert len(aug_result.history) == cnnbook.config.capped(cfg.epochs)   # all of them (make rehearse: 2)
assert aug_result.record["chapter"] == "15"
assert type(gap_plain) is float and type(gap_aug) is float
assert isinstance(interpretation, str) and len(interpretation.split()) >= 20
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
_last = aug_result.history.iloc[-1]
assert math.isclose(gap_aug, _last["train_acc"] - _last["test_acc"], abs_tol=1e-9)
assert math.isclose(gap_plain, result.train_acc - result.test_acc, abs_tol=1e-9)
assert aug_result.record["train_examples"] == result.record["train_examples"]
assert aug_result.record["lr"] == result.record["lr"]
assert "gap" in interpretation.lower()
if cnnbook.claims_checked(PROFILE):
    assert gap_aug < gap_plain, "with augmentation the gap should shrink"
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 4 (confidently wrong).** Write `confident_mistakes(model, images, labels,
# transform, k)`: for uint8 test images (N, 3, 32, 32) and their labels, prepare the images
# with `transform(images, train=False)` (a `BatchTransform`, such as
# `test_iter.transform`), run the model in evaluation mode, and return the indices of the
# `k` *misclassified* images whose predicted class had the highest softmax probability,
# most confident first, together with those probabilities: a tuple of two tensors. Then
# look at them: are they mislabelled, ambiguous, or plain mistakes?

# %% nbgrader={"grade": false, "grade_id": "ex-15-confident-mistakes", "locked": false, "schema_version": 3, "solution": true, "task": false}
def confident_mistakes(model, images, labels, transform, k=8):
    """Indices and confidences of the k most confident wrong predictions."""
    ### BEGIN SOLUTION
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(transform(images.to(device), train=False)).float(), dim=1)
    model.train(was_training)
    conf, pred = probs.max(dim=1)
    wrong = torch.nonzero(pred.cpu() != labels.cpu()).flatten()
    order = torch.argsort(conf[wrong].cpu(), descending=True)[:k]
    return wrong[order], conf[wrong].cpu()[order]
    ### END SOLUTION

_idx, _conf = confident_mistakes(baseline, test_iter.images[:500].cpu(),
                                 test_iter.labels[:500].cpu(), test_iter.transform, k=8)
_titles = [f"{names[int(test_iter.labels[i])]}\n-> "
           f"{predict_image(baseline, test_iter.images[i].cpu(), names, test_iter.transform, 1)[0][0]}"
           f" {c:.2f}" for i, c in zip(_idx.tolist(), _conf.tolist())]
if len(_titles):
    fig = viz.show_images(test_iter.images[_idx].cpu().float() / 255, titles=_titles, ncols=8, scale=1.5,
                          normalize=False)

# %% nbgrader={"grade": true, "grade_id": "ex-15-confident-mistakes-test", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
_imgs, _labs = test_iter.images[:200].cpu(), test_iter.labels[:200].cpu()
_i, _c = confident_mistakes(baseline, _imgs, _labs, test_iter.transform, k=5)
assert isinstance(_i, torch.Tensor) and isinstance(_c, torch.Tensor) and len(_i) == len(_c) <= 5
assert (_c[:-1] >= _c[1:]).all(), "most confident first"
### BEGIN HIDDEN TESTS
from cnnbook.grading import check_comparisons
check_comparisons()   # torch.allclose & co. are the genuine ones
baseline.eval()
with torch.no_grad():
    _p = torch.softmax(baseline(test_iter.transform(_imgs.to(device), train=False)).float(), 1).cpu()
baseline.train()
_cf, _pr = _p.max(1)
_w = torch.nonzero(_pr != _labs).flatten()
_ref = _w[torch.argsort(_cf[_w], descending=True)][:5]
assert torch.allclose(_c.float(), _cf[_ref], atol=1e-5)
assert set(_i.tolist()) <= set(_w.tolist())
assert all(int(_pr[i]) != int(_labs[i]) for i in _i.tolist())
_i2, _c2 = confident_mistakes(baseline, _imgs, _labs, test_iter.transform, k=200)
assert len(_i2) == len(_w) and set(_i2.tolist()) == set(_w.tolist())   # every mistake, once
assert torch.allclose(_c2.float(), _cf[_w].sort(descending=True).values, atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## References
#
# - A. Krizhevsky (2009). *Learning Multiple Layers of Features from Tiny Images.*
#   Technical report, University of Toronto.
# - A. Torralba, R. Fergus, W. T. Freeman (2008). *80 Million Tiny Images: A Large Data
#   Set for Nonparametric Object and Scene Recognition.* IEEE TPAMI 30(11).
# - V. U. Prabhu, A. Birhane (2020). *Large Image Datasets: A Pyrrhic Win for Computer
#   Vision?* arXiv:2006.16923.
# - A. Krizhevsky (2010). *Convolutional Deep Belief Networks on CIFAR-10.* Unpublished
#   manuscript; and the cuda-convnet project page (2012).
# - I. Goodfellow, D. Warde-Farley, M. Mirza, A. Courville, Y. Bengio (2013). *Maxout
#   Networks.* ICML.
# - M. Lin, Q. Chen, S. Yan (2014). *Network in Network.* ICLR.
# - K. He, X. Zhang, S. Ren, J. Sun (2016). *Deep Residual Learning for Image
#   Recognition.* CVPR.
# - G. Huang, Z. Liu, L. van der Maaten, K. Weinberger (2017). *Densely Connected
#   Convolutional Networks.* CVPR.
# - E. D. Cubuk, B. Zoph, D. Mané, V. Vasudevan, Q. V. Le (2019). *AutoAugment: Learning
#   Augmentation Strategies from Data.* CVPR.
# - A. Dosovitskiy et al. (2021). *An Image is Worth 16x16 Words: Transformers for Image
#   Recognition at Scale.* ICLR.
# - B. Recht, R. Roelofs, L. Schmidt, V. Shankar (2018). *Do CIFAR-10 Classifiers
#   Generalize to CIFAR-10?* arXiv:1806.00451.
# - K. Jordan (2024). *94% on CIFAR-10 in 3.29 Seconds on a Single GPU.* arXiv:2404.00498.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola (2023). *Dive into Deep Learning*, section
#   14.13 "Image Classification (CIFAR-10) on Kaggle". Cambridge University Press.
