"""The pretrained ResNet-18 of chapter 19: ImageNet weights when reachable, else the course's own.

    pre = pretrained_resnet18(fallback=dict(size=32, limit=15_000, epochs=2))
    print(pre.description)        # which path was taken, and why
    net = TransferNet(pre.model, num_classes=5)

Transfer learning needs a *source* model trained on a large labelled set. The real one is
torchvision's ``resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)`` (``weights.load_torchvision``).
Offline with no copy of its checkpoint, the chapter still has to teach the idea, so the
course pretrains a source model itself: the same ResNet-18 architecture trained on five
CIFAR-10 classes (airplane, automobile, bird, cat, deer); the chapter then transfers it to
the other five (dog, frog, horse, ship, truck), which it has never seen. It is trained once
with ``fit`` and cached in the data cache (``data/pretrained/``), written atomically, so a
second run, or a second learner on the same machine, loads it in a second.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnbook.transfer.weights import WeightsUnavailable, load_torchvision

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SOURCE_CLASSES = (0, 1, 2, 3, 4)   # airplane, automobile, bird, cat, deer: the fallback's source
TARGET_CLASSES = (5, 6, 7, 8, 9)   # dog, frog, horse, ship, truck: never seen by the fallback


@dataclass
class Pretrained:
    """A pretrained network and how it was obtained."""

    model: nn.Module
    fallback: bool              # True: the course's own source model, not ImageNet weights
    where: str                  # "hub cache", "mirror", "download", "course cache", "trained now"
    mean: tuple = IMAGENET_MEAN  # the normalisation the source model was trained with
    std: tuple = IMAGENET_STD
    source_classes: tuple = ()  # CIFAR-10 labels the source saw (empty: ImageNet)
    reason: str = ""            # why the real weights were not used (the loader's message)
    info: dict = field(default_factory=dict)

    @property
    def description(self) -> str:
        if not self.fallback:
            return f"ImageNet ResNet-18 weights (IMAGENET1K_V1), from the {self.where}"
        return (f"the course's fallback source model ({self.where}): ResNet-18 trained on "
                f"CIFAR-10 classes {list(self.source_classes)} at {self.info.get('size')} px, "
                f"source test accuracy {self.info.get('source_acc', float('nan')):.3f}")


def cache_file(size: int, limit: int | None, epochs: int, seed: int = 0,
               classes=SOURCE_CLASSES) -> Path:
    """Where the fallback model of these settings is cached (one file per setting; in a
    rehearsal, its own file: ``cnnbook.config.rehearsal_tag``)."""
    from cnnbook.config import rehearsal_tag
    from cnnbook.data.sources import data_dir

    tag = "".join(str(c) for c in classes)
    rehearsal = rehearsal_tag()
    return (data_dir() / "pretrained" /
            f"resnet18_cifar10-{tag}_{size}px_{limit or 'all'}x{epochs}ep_seed{seed}"
            f"{'_' + rehearsal if rehearsal else ''}.pt")


def source_model(size: int = 32, limit: int | None = 15_000, epochs: int = 2,
                 batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                 classes=SOURCE_CLASSES, test_limit: int | None = 2_000,
                 retrain: bool = False, progress: bool = True) -> tuple[nn.Module, dict]:
    """torchvision's ResNet-18 trained on CIFAR-10 ``classes`` (the fallback source), cached.

    Recipe: AdamW (weight decay 5e-4), warm-up + cosine, random crop and flip, ImageNet
    normalisation (so that it is used exactly like the ImageNet weights). ``limit`` images
    (class-balanced) for ``epochs`` epochs at ``size`` px. Returns the model (eval mode) and
    its record: settings, source test accuracy, training seconds.
    """
    import torchvision

    from cnnbook.config import get_device, seed_everything
    from cnnbook.data import load_split
    from cnnbook.data.loader import BatchTransform, TensorLoader
    from cnnbook.files import atomic_write
    from cnnbook.train import fit, optim, schedules
    from cnnbook.transfer.finetune import class_subset

    path = cache_file(size, limit, epochs, seed, classes)
    model = torchvision.models.resnet18(num_classes=len(classes))
    if path.is_file() and not retrain:
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(saved["state_dict"])
            info = json.loads(saved["info"])
            info["where"] = "course cache"
            return model.eval(), info
        except Exception as exc:  # damaged or from an older version: train again
            import warnings
            warnings.warn(f"{path} could not be loaded ({type(exc).__name__}: {exc}); "
                          "training the source model again", stacklevel=2)
    seed_everything(seed)
    device = get_device()
    per_class = None if limit is None else limit // len(classes)
    images, labels = load_split("cifar10", "train")
    x_train, y_train = class_subset(images, labels, classes, per_class, seed=seed)
    images, labels = load_split("cifar10", "test")
    test_per = None if test_limit is None else test_limit // len(classes)
    x_test, y_test = class_subset(images, labels, classes, test_per, seed=seed)
    tf = BatchTransform(resize=size if size != 32 else None, mean=IMAGENET_MEAN,
                        std=IMAGENET_STD, flip=True, crop_padding=max(1, size // 8),
                        channels_last=device.type == "cpu")
    train_iter = TensorLoader(x_train, y_train, batch_size, shuffle=True, transform=tf,
                              train=True, device=device, seed=seed)
    test_iter = TensorLoader(x_test, y_test, 256, transform=tf, device=device)
    result = fit(model, train_iter, test_iter, epochs=epochs, lr=lr,
                 optimizer=optim.adamw(weight_decay=5e-4),
                 scheduler=schedules.warmup_cosine(warmup_fraction=0.1),
                 name="source_resnet18", chapter="19", progress=progress, live_plot=False,
                 extra={"source_classes": list(classes), "size": size})
    info = {"size": size, "limit": limit, "epochs": epochs, "seed": seed,
            "classes": list(classes), "source_acc": result.test_acc,
            "seconds": result.seconds, "examples": len(y_train)}
    model = model.cpu().eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: torch.save({"state_dict": state, "info": json.dumps(info)},
                                              tmp))
    info["where"] = "trained now"
    return model, info


def pretrained_resnet18(fallback: dict | None = None, download: bool | None = None,
                        use_imagenet: bool = True) -> Pretrained:
    """ImageNet ResNet-18 if its checkpoint is reachable, else the course's source model.

    ``fallback`` holds ``source_model``'s settings; ``use_imagenet=False`` skips straight to
    it (to compare both, or to run the course's path on a machine that has the weights).
    """
    reason = "use_imagenet=False"
    if use_imagenet:
        try:
            model, where = load_torchvision("resnet18", "IMAGENET1K_V1", download=download)
            return Pretrained(model, fallback=False, where=where)
        except WeightsUnavailable as exc:
            reason = str(exc)
    model, info = source_model(**(fallback or {}))
    return Pretrained(model, fallback=True, where=info.pop("where"),
                      source_classes=tuple(info["classes"]), reason=reason, info=info)
