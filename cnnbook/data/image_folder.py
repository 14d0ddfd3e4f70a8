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


# ---------------------------------------------------------------- your own images
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class FolderData:
    """A train/ and val/ image folder decoded once into uint8 tensors, with what was skipped.

    ``train`` and ``val`` are ``(images, labels)``: images (N, 3, size, size) uint8, labels
    int64 indices into ``classes``. ``files`` lists each split's file paths in the same
    order; ``skipped`` lists ``(path, reason)`` for every file or folder left out.
    """

    def __init__(self, root, classes, train, val, files, skipped, size):
        self.root, self.classes, self.train, self.val = root, classes, train, val
        self.files, self.skipped, self.size = files, skipped, size

    def loaders(self, batch_size: int = 32, transform=None, device=None, seed: int = 0):
        """``TensorLoader``s over train (shuffled) and val, as ``load_data`` gives them."""
        from cnnbook.data.loader import TensorLoader

        return (TensorLoader(*self.train, batch_size, shuffle=True, transform=transform,
                             train=True, device=device, seed=seed),
                TensorLoader(*self.val, batch_size, transform=transform, device=device))

    def counts(self):
        """Images per class and split, as a pandas table."""
        import pandas as pd

        return pd.DataFrame({split: torch.bincount(y, minlength=len(self.classes)).tolist()
                             for split, (_, y) in (("train", self.train), ("val", self.val))},
                            index=pd.Index(self.classes, name="class"))

    def __repr__(self) -> str:
        return (f"FolderData({str(self.root)!r}: {len(self.classes)} classes, "
                f"{len(self.train[1])} train + {len(self.val[1])} val images at {self.size} px, "
                f"{len(self.skipped)} skipped)")


def _decode(path: Path, size: int) -> torch.Tensor:
    """One image file -> (3, size, size) uint8: RGB, shorter side resized to ``size``, centre crop."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    with Image.open(path) as img:
        img.load()   # decode now: a truncated file fails here, not in the middle of an epoch
        img = img.convert("RGB")
        x = TF.pil_to_tensor(img)
    x = TF.resize(x, [size], antialias=True)
    return TF.center_crop(x, [size, size])


def load_image_folder(root, size: int = 64, splits=("train", "val"),
                      warn: bool = True) -> FolderData:
    """Your own images: ``root/train/<class>/*`` and ``root/val/<class>/*``, checked and decoded.

    As in the sources, the classes are the sorted sub-folder names of ``train/`` (the folder
    name is the label) and ``val/`` must use the same names. Every file is opened and decoded
    up front (PIL), resized (shorter side to ``size``, antialiased) and centre-cropped to a
    square, so a bad file is found now, by name, and never in the middle of an epoch. Left out
    with a warning, and listed in ``.skipped``: a file that is not an image or cannot be read
    or decoded (truncated, empty, no permission), a class folder with no usable image (in
    ``train/`` the class is dropped), a file directly in ``train/``; hidden files (``.name``)
    are ignored silently. A missing folder, or no usable class at all, is an error.
    """
    import warnings

    root = Path(root)
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    for split in splits:
        if not (root / split).is_dir():
            found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
            raise FileNotFoundError(
                f"{root / split} is not a folder. Expected {root}/train/<class>/<images> and "
                f"{root}/val/<class>/<images>" + (f"; {root} holds {found}" if root.is_dir()
                                                  else f"; {root} does not exist"))
    skipped: list[tuple[str, str]] = []
    decoded: dict[str, dict[str, list]] = {}
    for split in splits:
        decoded[split] = {}
        for entry in sorted((root / split).iterdir()):
            if entry.name.startswith("."):
                continue
            if not entry.is_dir():
                skipped.append((str(entry), f"a file directly in {split}/, not in a class folder"))
                continue
            good = []
            for f in sorted(entry.iterdir()):
                if f.name.startswith(".") or f.is_dir():
                    continue
                if f.suffix.lower() not in IMAGE_EXTENSIONS:
                    skipped.append((str(f), f"not an image file (extension {f.suffix or 'none'})"))
                    continue
                try:
                    good.append((f, _decode(f, size)))
                except PermissionError:
                    skipped.append((str(f), "cannot be read (permission denied)"))
                except Exception as exc:  # PIL raises several types for broken files
                    why = "empty file" if f.stat().st_size == 0 else f"{type(exc).__name__}: {exc}"
                    skipped.append((str(f), f"not a readable image ({why})"))
            if not good:
                skipped.append((str(entry), "class folder with no usable image"))
                continue
            decoded[split][entry.name] = good
    classes = sorted(decoded[splits[0]])
    if not classes:
        raise ValueError(f"{root / splits[0]} has no class folder with a usable image")
    for split in splits[1:]:
        extra = sorted(set(decoded[split]) - set(classes))
        for name in extra:
            skipped.append((str(root / split / name), f"class not in {splits[0]}/: ignored"))
        for name in sorted(set(classes) - set(decoded[split])):
            warnings.warn(f"{root / split} has no usable images of class {name!r}", stacklevel=2)
    tensors, files = {}, {}
    for split in splits:
        imgs, labels, paths = [], [], []
        for k, name in enumerate(classes):
            for f, x in decoded[split].get(name, []):
                imgs.append(x)
                labels.append(k)
                paths.append(str(f))
        images = torch.stack(imgs) if imgs else torch.empty(0, 3, size, size, dtype=torch.uint8)
        tensors[split] = (images, torch.tensor(labels, dtype=torch.long))
        files[split] = paths
    if warn and skipped:
        warnings.warn(f"{len(skipped)} item(s) skipped in {root}:\n" + "\n".join(
            f"  - {p}: {why}" for p, why in skipped), stacklevel=2)
    return FolderData(root, classes, tensors[splits[0]], tensors[splits[-1]], files,
                      skipped, size)


#: A new task made of CIFAR-10 photographs: how does the thing in the picture move?
MOVES = {"flies": ("airplane", "bird"), "drives": ("automobile", "truck"),
         "floats": ("ship",), "walks": ("cat", "deer", "dog", "horse")}


def build_demo_folder(root, train_per_class: int = 30, val_per_class: int = 10,
                      source: Path | None = None, groups: dict | None = None,
                      broken: bool = True, seed: int = 0) -> Path:
    """Write a small "your own images" folder from the CIFAR-10 JPEGs: a new task, no download.

    ``groups`` maps each new class to CIFAR-10 classes (default ``MOVES``: flies / drives /
    floats / walks), drawn at random from ``source``, a folder of CIFAR-10 class folders
    (default: the test split unpacked by ``extract_split("test")``, as chapter 15 does). With
    ``broken`` it also plants what a real folder contains sooner or later: a text file named
    ``.jpg``, a truncated JPEG, a notes file and an empty class folder, for
    ``load_image_folder`` to report. The folder is built under a temporary name and renamed
    when complete; a complete one is reused.
    """
    import random

    groups = dict(groups or MOVES)
    root = Path(root)
    if (root / MARKER).is_file():
        return root
    source = Path(source) if source is not None else extract_split("test")
    want = train_per_class + val_per_class
    rng = random.Random(seed)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".part", dir=root.parent))
    try:
        for new, olds in groups.items():
            missing = [c for c in olds if not (source / c).is_dir()]
            if missing:
                raise ValueError(f"{source} has no class folders {missing}")
            pool = [f for c in olds for f in sorted((source / c).glob("*.jpg"))]
            if len(pool) < want:
                raise ValueError(f"{source} has {len(pool)} images for {new!r}, need {want}")
            picks = rng.sample(pool, want)
            for split, chosen in (("train", picks[:train_per_class]),
                                  ("val", picks[train_per_class:])):
                folder = tmp / split / new
                folder.mkdir(parents=True, exist_ok=True)
                for f in chosen:
                    shutil.copyfile(f, folder / f"{f.parent.name}_{f.name}")
        if broken:
            first, last = sorted(groups)[0], sorted(groups)[-1]
            (tmp / "train" / first / "holiday_notes.jpg").write_text("not a photo\n")
            good = sorted((tmp / "train" / first).glob("*.jpg"))[0].read_bytes()
            (tmp / "train" / last / "half_copied.jpg").write_bytes(good[:len(good) // 3])
            (tmp / "train" / first / "README.txt").write_text("photos from my phone\n")
            (tmp / "train" / "swims").mkdir()
        (tmp / MARKER).write_text("complete\n")
        mode = 0o777 & ~_umask()
        for d in [tmp, *[p for p in tmp.rglob("*") if p.is_dir()]]:
            d.chmod(mode)
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
