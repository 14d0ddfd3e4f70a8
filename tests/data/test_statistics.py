"""The real datasets (from the project cache, filled from the mirror by `make data`)."""
import pytest
import torch

from cnnbook.data import class_names, load_split


def _mean_std(images: torch.Tensor):
    x = images.double().div_(255)
    return x.mean().item(), x.std().item()


def test_mnist_statistics_and_first_labels():
    images, labels = load_split("mnist", "train")
    assert images.shape == (60_000, 1, 28, 28) and images.dtype == torch.uint8
    mean, std = _mean_std(images)
    assert mean == pytest.approx(0.1307, abs=5e-5)
    assert std == pytest.approx(0.3081, abs=5e-5)
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    test_images, test_labels = load_split("mnist", "test")
    assert test_images.shape == (10_000, 1, 28, 28) and len(test_labels) == 10_000


def test_fashion_mnist_statistics():
    images, labels = load_split("fashion_mnist", "train")
    mean, std = _mean_std(images)
    assert mean == pytest.approx(0.2860, abs=5e-5)
    assert std == pytest.approx(0.3530, abs=5e-5)
    assert torch.bincount(labels).tolist() == [6000] * 10
    assert len(load_split("fashion_mnist", "test")[1]) == 10_000
    assert class_names("fashion_mnist")[9] == "ankle boot"


def test_cifar10_per_class_counts():
    images, labels = load_split("cifar10", "train")
    assert images.shape == (50_000, 3, 32, 32)
    assert torch.bincount(labels, minlength=10).tolist() == [5000] * 10
    _, test_labels = load_split("cifar10", "test")
    assert torch.bincount(test_labels, minlength=10).tolist() == [1000] * 10
    # CIFAR-10's per-channel means are about (0.49, 0.48, 0.45): red > green > blue
    means = images[::10].double().div(255).mean(dim=(0, 2, 3))
    assert means[0] > means[1] > means[2]
    assert class_names("cifar10") == ("airplane", "automobile", "bird", "cat", "deer",
                                      "dog", "frog", "horse", "ship", "truck")
