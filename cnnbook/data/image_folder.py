"""CIFAR-10 the standard way: a folder of JPEGs per class, read by torchvision's ``ImageFolder``.

Most tutorials (and chapter 15's sources) load images like this::

    dataset = torchvision.datasets.ImageFolder("cifar10-jpg/train", transform=ToTensor())
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, shuffle=True)

``ImageFolder`` takes the sorted sub-folder names as classes (label = position in that
list) and lists the files of each class in sorted order. The mirror's ``cifar10-jpg.tar``
has exactly this layout (``cifar10-jpg/{train,test}/<class>/NNNN.jpg``). Here we unpack
one split of it, once, into the data cache, and check that it gives the same pixels as
``cnnbook.data.load_split("cifar10", split)``, which decodes the same JPEGs into one
uint8 tensor held in memory.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import warnings
from pathlib import Path

import torch

from cnnbook.data import sources
from cnnbook.data.catalog import CIFAR_TAR, info

FOLDER = "cifar10-jpg"  # the tree's top folder in the tar, and its name in the cache
MARKER = ".complete"    # written last into the temporary folder: present = fully extracted


def cifar10_tar() -> Path:
    """The JPEG tar: in the data cache, else in the mirror (``CNNBOOK_DATA_MIRROR``)."""
    looked = []
    for folder, label in ((sources.data_dir(), "data cache"), (sources.mirror_dir(), "mirror")):
        if folder is None:
            looked.append("no mirror (CNNBOOK_DATA_MIRROR is not set)")
            continue
        path = folder / CIFAR_TAR
        if path.is_file():
            return path
        looked.append(f"{label}: {path}")
    raise sources.DatasetUnavailable(
        f"the CIFAR-10 JPEG archive {CIFAR_TAR} was not found. Looked in:\n"
        + "\n".join(f"  - {p}" for p in looked)
        + "\nFix: point CNNBOOK_DATA_MIRROR at the folder that holds it (the Makefile uses "
          "../shared/datasets) and run `make data`, or copy it into the data cache.")


def extract_split(split: str, tar: Path | None = None, root: Path | None = None) -> Path:
    """Unpack one split of the tar into ``root/split`` (default: the cache's ``cifar10-jpg``).

    Extraction goes to a temporary folder beside the target, which is renamed into place
    only when complete, so an interrupted run never leaves half a tree that looks finished.
    A second call finds the complete folder and returns at once.
    """
    if split not in info("cifar10").splits:
        raise ValueError(f"split must be one of {list(info('cifar10').splits)}, not {split!r}")
    root = Path(root) if root is not None else sources.data_dir() / FOLDER
    target = root / split
    if (target / MARKER).is_file():
        return target
    if target.exists():  # not ours or damaged: keep it for inspection, extract afresh
        bad = target.with_name(f"{split}.incomplete")
        shutil.rmtree(bad, ignore_errors=True)
        warnings.warn(f"{target} is incomplete; moved it to {bad.name} and extracting again",
                      stacklevel=2)
        os.replace(target, bad)
    tar = Path(tar) if tar is not None else cifar10_tar()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}.", suffix=".part", dir=root))
    try:
        count = 0
        with tarfile.open(tar) as archive:
            members = []
            for m in archive:
                parts = m.name.split("/")
                if len(parts) == 4 and parts[0] == FOLDER and parts[1] == split and m.isfile():
                    members.append(m)
            archive.extractall(tmp, members=members, filter="data")
            count = len(members)
        if count == 0:
            raise sources.DatasetCorrupt(f"{tar} holds no {FOLDER}/{split}/<class>/*.jpg files")
        tree = tmp / FOLDER / split
        (tree / MARKER).write_text(f"{count}\n")
        mode = 0o777 & ~_umask()
        for d in (tree, *[p for p in tree.iterdir() if p.is_dir()]):
            d.chmod(mode)  # readable by others, as any folder we create
        try:
            os.rename(tree, target)
        except OSError:  # another process finished first: use its copy
            if not (target / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cifar10_image_folder(split: str = "train", transform=None, root: Path | None = None,
                         tar: Path | None = None):
    """torchvision's ``ImageFolder`` over one CIFAR-10 split (extracted on first use)."""
    from torchvision.datasets import ImageFolder

    folder = extract_split(split, tar=tar, root=root)
    dataset = ImageFolder(str(folder), transform=transform)
    expected = list(info("cifar10").classes)
    if dataset.classes != expected:
        raise sources.DatasetCorrupt(f"{folder} has class folders {dataset.classes}, "
                                     f"expected {expected}")
    return dataset


def folder_tensors(dataset, indices=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples of an ``ImageFolder`` as one uint8 tensor (N, C, H, W) and their labels.

    Reads each file with the dataset's own loader (PIL), then ``PILToTensor``: no scaling,
    so the bytes can be compared exactly with the course's tensors.
    """
    from torchvision.transforms.v2.functional import pil_to_tensor

    indices = range(len(dataset)) if indices is None else [int(i) for i in indices]
    images, labels = [], []
    for i in indices:
        path, label = dataset.samples[i]
        images.append(pil_to_tensor(dataset.loader(path)))
        labels.append(label)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def course_indices(dataset, course_labels: torch.Tensor) -> torch.Tensor:
    """For each ``ImageFolder`` sample, the index of the same image in the course's split.

    Both list the images class by class in file order, so the k-th file of class c is
    the k-th image labelled c in the course tensor. Raises if the class sizes differ.
    """
    course_labels = torch.as_tensor(course_labels)
    folder_labels = torch.tensor(dataset.targets, dtype=torch.long)
    n = len(dataset.classes)
    want = torch.bincount(folder_labels, minlength=n)
    have = torch.bincount(course_labels, minlength=n)
    if not torch.equal(want, have):
        raise ValueError(f"class sizes differ: folder {want.tolist()}, course {have.tolist()}")
    out = torch.empty(len(folder_labels), dtype=torch.long)
    for c in range(n):
        out[folder_labels == c] = torch.nonzero(course_labels == c).flatten()
    return out
