"""What the course's datasets are: shapes, split sizes, class names, statistics, raw files."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawFile:
    """One IDX file of torchvision's raw MNIST layout, with its size and MD5 as published."""

    name: str
    count: int
    kind: str  # "images" or "labels"
    md5: str

    @property
    def nbytes(self) -> int:
        return 16 + self.count * 28 * 28 if self.kind == "images" else 8 + self.count


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    channels: int
    size: int
    splits: dict
    classes: tuple
    mean: tuple
    std: tuple
    folder: str  # torchvision's folder name under the data root
    raw_files: tuple = field(default=())


FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

DATASETS = {
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", "Fashion-MNIST", 1, 28, {"train": 60_000, "test": 10_000},
        FASHION_CLASSES, (0.2860,), (0.3530,), "FashionMNIST",
        (RawFile("train-images-idx3-ubyte", 60_000, "images", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
         RawFile("train-labels-idx1-ubyte", 60_000, "labels", "9018921c3c673c538a1fc5bad174d6f9"),
         RawFile("t10k-images-idx3-ubyte", 10_000, "images", "8181f5470baa50b63fa0f6fddb340f0a"),
         RawFile("t10k-labels-idx1-ubyte", 10_000, "labels", "15d484375f8d13e6eb1aabb0c3f46965"))),
    "mnist": DatasetInfo(
        "mnist", "MNIST", 1, 28, {"train": 60_000, "test": 10_000},
        MNIST_CLASSES, (0.1307,), (0.3081,), "MNIST",
        (RawFile("train-images-idx3-ubyte", 60_000, "images", "6bbc9ace898e44ae57da46a324031adb"),
         RawFile("train-labels-idx1-ubyte", 60_000, "labels", "a25bea736e30d166cdddb491f175f624"),
         RawFile("t10k-images-idx3-ubyte", 10_000, "images", "2646ac647ad5339dbf082846283269ea"),
         RawFile("t10k-labels-idx1-ubyte", 10_000, "labels", "27ae3e4e09519cfbb04c329615203637"))),
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10", 3, 32, {"train": 50_000, "test": 10_000},
        CIFAR10_CLASSES, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "cifar-10-batches-py"),
}

ALIASES = {"fashion-mnist": "fashion_mnist", "fashionmnist": "fashion_mnist",
           "fmnist": "fashion_mnist", "cifar-10": "cifar10", "cifar": "cifar10"}

CIFAR_TAR = "cifar10-jpg.tar"  # the mirror's JPEG ImageFolder copy of CIFAR-10
CIFAR_TAR_MD5 = "f456df65dc894259140e0a25f80e9206"  # as listed in the mirror's MD5SUMS


def info(name: str) -> DatasetInfo:
    """The catalogue entry for a dataset name (case and dashes forgiven)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[key]


def class_names(name: str) -> tuple:
    """The class names of a dataset, in label order."""
    return info(name).classes
