"""Whole dataset splits as uint8 tensors in memory, cached in ``data/cache`` as .pt files.

Reading 60,000 JPEGs takes a while; reading one tensor file takes a fraction of a second.
The cache is derived data: a damaged cache file is set aside and rebuilt from the raw files.
"""
from __future__ import annotations

import os
import tarfile
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from cnnbook.data import sources
from cnnbook.data.catalog import info

CACHE_VERSION = 1
_memory: dict = {}


def _read_idx(path: Path) -> torch.Tensor:
    data = path.read_bytes()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    return torch.from_numpy(arr.copy())


def _from_mnist_raw(name: str, split: str):
    raw = sources.ensure_mnist_raw(name)
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(raw / f"{prefix}-images-idx3-ubyte").unsqueeze(1)
    labels = _read_idx(raw / f"{prefix}-labels-idx1-ubyte").long()
    return images, labels


def _from_cifar(split: str):
    kind, path = sources.ensure_cifar10()
    if kind == "canonical":
        import torchvision

        ds = torchvision.datasets.CIFAR10(root=str(path.parent), train=split == "train",
                                          download=False)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(ds.targets, dtype=torch.long)
    return _decode_cifar_tar(path, split)


def _decode_cifar_tar(path: Path, split: str):
    """Decode one split of the JPEG ImageFolder tar straight from the archive (no extraction)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    classes = info("cifar10").classes
    index = {c: i for i, c in enumerate(classes)}
    blobs, labels = [], []
    with tarfile.open(path) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3 or parts[-3] != split:
                continue
            if parts[-2] not in index:
                raise sources.DatasetCorrupt(f"{path}: unknown class folder {parts[-2]!r}")
            blobs.append(torch.frombuffer(bytearray(tar.extractfile(member).read()), dtype=torch.uint8))
            labels.append(index[parts[-2]])
    try:
        images = decode_jpeg(blobs, mode=ImageReadMode.RGB)
    except RuntimeError as exc:
        raise sources.DatasetCorrupt(f"{path}: a JPEG in the {split} split does not decode ({exc})")
    images = torch.stack(images)
    labels = torch.tensor(labels, dtype=torch.long)
    order = torch.argsort(labels, stable=True)  # class-grouped, as the folder order is
    return images[order].contiguous(), labels[order]


def cache_path(name: str, split: str) -> Path:
    return sources.data_dir() / "cache" / f"{info(name).name}-{split}.pt"


def _valid(obj, name: str, split: str) -> bool:
    ds = info(name)
    if not isinstance(obj, dict) or obj.get("version") != CACHE_VERSION:
        return False
    images, labels = obj.get("images"), obj.get("labels")
    n = ds.splits[split]
    return (isinstance(images, torch.Tensor) and images.dtype == torch.uint8
            and tuple(images.shape) == (n, ds.channels, ds.size, ds.size)
            and isinstance(labels, torch.Tensor) and labels.shape == (n,)
            and int(labels.min()) >= 0 and int(labels.max()) < len(ds.classes))


def _save_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_split(name: str, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split: images uint8 (N, C, H, W) and labels int64 (N,), on the CPU.

    Read once per process from the tensor cache (built on first use from the raw files).
    The returned tensors are shared: clone before changing them in place.
    """
    ds = info(name)
    if split not in ds.splits:
        raise ValueError(f"split must be one of {list(ds.splits)}, not {split!r}")
    key = (ds.name, split)
    if key in _memory:
        return _memory[key]
    path = cache_path(ds.name, split)
    obj = None
    if path.exists():
        try:
            obj = torch.load(path, weights_only=True)
        except Exception as exc:  # truncated or garbled file
            obj = exc
        if not _valid(obj, ds.name, split):
            bad = path.with_name(path.name + ".corrupt")
            warnings.warn(f"tensor cache {path} is damaged or stale; moved it to {bad.name} "
                          "and rebuilding it from the raw files", stacklevel=2)
            os.replace(path, bad)
            obj = None
    if obj is None:
        images, labels = (_from_cifar(split) if ds.name == "cifar10"
                          else _from_mnist_raw(ds.name, split))
        obj = {"version": CACHE_VERSION, "images": images, "labels": labels}
        if not _valid(obj, ds.name, split):
            raise sources.DatasetCorrupt(
                f"{ds.title} {split}: read {tuple(images.shape)} images, expected "
                f"{ds.splits[split]:,} of shape {(ds.channels, ds.size, ds.size)}")
        _save_atomic(obj, path)
    _memory[key] = (obj["images"], obj["labels"])
    return _memory[key]


def clear_memory() -> None:
    """Forget the splits held in memory (tests use it to force a reread)."""
    _memory.clear()


def prepare(names=("fashion_mnist", "mnist", "cifar10")) -> dict:
    """Make sure every split of the named datasets is cached; return their sizes (``make data``)."""
    sizes = {}
    for name in names:
        for split in info(name).splits:
            images, _ = load_split(name, split)
            sizes[f"{info(name).name}/{split}"] = len(images)
    return sizes


def subset_per_class(labels: torch.Tensor, limit: int | None, num_classes: int,
                     seed: int = 0) -> torch.Tensor:
    """Indices of a class-balanced subset of about ``limit`` examples (all when None)."""
    if limit is None or limit >= len(labels):
        return torch.arange(len(labels))
    if limit < num_classes:
        raise ValueError(f"limit={limit} is smaller than the {num_classes} classes")
    per_class = limit // num_classes
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.sort(torch.cat(chosen)).values
