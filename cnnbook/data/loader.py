"""Shuffled mini-batches from in-memory uint8 tensors, transformed per batch on the device.

The d2l way (a DataLoader of PIL images, ``ToTensor`` per sample, worker processes) spends
most of a small model's CPU time moving single images around. Here a split lives in memory
as one uint8 tensor; each batch is indexed, converted to float, resized with one
``F.interpolate`` call, augmented and normalised, all on the training device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from cnnbook.config import capped, get_device
from cnnbook.data.catalog import info
from cnnbook.data.splits import load_split, subset_per_class


@dataclass
class BatchTransform:
    """What happens to a uint8 batch: scale to [0,1], resize, augment (train), normalise."""

    resize: int | None = None
    mean: tuple | None = None
    std: tuple | None = None
    flip: bool = False            # random horizontal flip, p = 0.5
    crop_padding: int = 0         # random crop after zero padding by this many pixels
    channels_last: bool = False   # memory format that speeds up CPU convolutions
    # more training-time augmentation, called as augment(x, generator) on the float batch in
    # [0, 1] after crop and flip and before normalisation (see cnnbook.data.augment)
    augment: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None

    def __call__(self, x: torch.Tensor, train: bool, generator: torch.Generator | None = None):
        x = x.float().div_(255)
        if self.resize is not None and tuple(x.shape[-2:]) != (self.resize, self.resize):
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear",
                              align_corners=False, antialias=self.resize < max(x.shape[-2:]))
        if train and self.crop_padding:
            x = random_crop(x, self.crop_padding, generator)
        if train and self.flip:
            x = random_hflip(x, generator)
        if train and self.augment is not None:
            x = self.augment(x, generator)
        if self.mean is not None:
            mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
            x = (x - mean) / std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def random_hflip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image of a batch left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=_gen_device(generator)) < 0.5
    flip = flip.to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad each image by ``padding`` zeros and cut a random crop of the original size."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dev = _gen_device(generator)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h))  # (n, h)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w))  # (n, w)
    idx_n = torch.arange(n, device=x.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()


def _gen_device(generator):
    return generator.device if generator is not None else "cpu"


class MapBatches:
    """A loader whose every batch goes through ``fn(X, y) -> (X, y)`` on the way out.

    Keeps ``len``, ``batch_size`` and ``num_examples``, so ``fit`` treats it as the loader it
    wraps. Used where a training loss needs something computed per batch beside it: mixup
    and CutMix (``regularization.BatchMixer.wrap``), a teacher's logits for distillation
    (``deploy.distill.Distillation.wrap``).
    """

    def __init__(self, loader, fn):
        self.loader, self.fn = loader, fn
        self.batch_size = getattr(loader, "batch_size", None)
        self.num_examples = getattr(loader, "num_examples", None)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for X, y in self.loader:
            yield self.fn(X, y)


class StepsPerEpoch:
    """``steps`` batches of ``loader`` as one epoch of ``fit``, each epoch going on where the
    last one stopped (a new pass, with a new shuffle, starts whenever the loader runs out).

    Trains for a set number of steps rather than whole passes (equal-time comparisons turn
    seconds into steps) and lets ``fit`` evaluate every ``steps`` batches on any data size.
    """

    def __init__(self, loader, steps: int):
        if isinstance(steps, bool) or int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
        self.loader, self.steps = loader, int(steps)
        self.batch_size = getattr(loader, "batch_size", None)
        self.num_examples = getattr(loader, "num_examples", None)
        self._batches = None

    def __len__(self) -> int:
        return capped(self.steps)   # a rehearsal (CNNBOOK_MAX_BATCHES) runs a couple

    def __iter__(self):
        for _ in range(len(self)):
            batch = next(self._batches, None) if self._batches is not None else None
            if batch is None:
                self._batches = iter(self.loader)
                batch = next(self._batches, None)
                if batch is None:
                    raise ValueError("the loader gave no batches")
            yield batch


class TensorLoader:
    """Iterate ``(X, y)`` mini-batches of an in-memory split on ``device``.

    ``len()`` is the number of batches, so it also drops into d2l's ``train_ch6``.
    Shuffling uses its own seeded generator: the same seed gives the same batches. In a
    rehearsal (``CNNBOOK_MAX_BATCHES=N``, ``make rehearse``) every pass stops after N batches.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, transform: BatchTransform | None = None,
                 train: bool = False, device=None, seed: int = 0, drop_last: bool = False):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.device = torch.device(device) if device is not None else get_device()
        # On an accelerator the whole uint8 split moves over once; batches never touch the CPU.
        self.images = images.to(self.device) if self.device.type != "cpu" else images
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform or BatchTransform()
        self.train = train
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.labels)
        return capped(n // self.batch_size if self.drop_last else -(-n // self.batch_size))

    @property
    def num_examples(self) -> int:
        return len(self.labels)

    def state_dict(self) -> dict:
        """The shuffling/augmentation generator's state, saved in ``fit``'s checkpoints.

        Taken between epochs, it is the loader's whole position: restoring it makes the next
        ``iter()`` give the same shuffle and the same random crops and flips as it would have.
        """
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def __iter__(self):
        n = len(self.labels)
        # drawn where the generator lives, whatever default device the caller has set
        where = self.generator.device
        order = (torch.randperm(n, generator=self.generator, device=where) if self.shuffle
                 else torch.arange(n, device=where))
        order = order.to(self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.transform(self.images[idx].to(self.device), self.train, self.generator)
            yield x, self.labels[idx]


def load_data(name: str = "fashion_mnist", batch_size: int = 256, resize: int | None = None,
              limit: int | None = None, test_limit: int | None = None, normalize: bool = False,
              augment: bool = False, device=None, seed: int = 0,
              channels_last: bool | None = None) -> tuple[TensorLoader, TensorLoader]:
    """Train and test loaders for a course dataset, like d2l's ``load_data_fashion_mnist``.

    ``limit`` keeps a class-balanced subset of the training split (smoke runs);
    ``test_limit`` does the same for the test split (default: ``limit``). ``normalize``
    uses the dataset's channel mean and std; ``augment`` adds random crops (padding 4 at
    32 px, scaled with ``resize``) and horizontal flips (not for digits).
    """
    ds = info(name)
    device = torch.device(device) if device is not None else get_device()
    if channels_last is None:
        channels_last = device.type == "cpu"
    size = resize or ds.size
    transform = BatchTransform(
        resize=resize,
        mean=ds.mean if normalize else None, std=ds.std if normalize else None,
        flip=augment and ds.name != "mnist",
        crop_padding=max(1, round(size / 8)) if augment else 0,
        channels_last=channels_last)
    loaders = []
    for split, lim in (("train", limit), ("test", limit if test_limit is None else test_limit)):
        images, labels = load_split(ds.name, split)
        idx = subset_per_class(labels, lim, len(ds.classes), seed)
        if len(idx) < len(labels):
            images, labels = images[idx], labels[idx]
        train = split == "train"
        loaders.append(TensorLoader(images, labels, batch_size, shuffle=train,
                                    transform=transform, train=train, device=device, seed=seed))
    return loaders[0], loaders[1]
