"""Batches from in-memory tensors, transformed per batch."""
import pytest
import torch

from cnnbook.data import BatchTransform, TensorLoader, load_data, random_crop, random_hflip, subset_per_class


def _toy(n=10, c=1, s=8):
    images = torch.arange(n * c * s * s, dtype=torch.int64).remainder(256).to(torch.uint8)
    return images.view(n, c, s, s), torch.arange(n) % 3


def test_batches_cover_every_example_once():
    images, labels = _toy(10)
    loader = TensorLoader(images, labels, batch_size=4, shuffle=True, device="cpu")
    assert len(loader) == 3
    seen = torch.cat([y for _, y in loader])
    assert sorted(seen.tolist()) == sorted(labels.tolist())
    xb, _ = next(iter(loader))
    assert xb.dtype == torch.float32 and 0.0 <= xb.min() and xb.max() <= 1.0


def test_same_seed_same_batches_and_epochs_differ():
    images, labels = _toy(32)
    a = TensorLoader(images, labels, 8, shuffle=True, device="cpu", seed=3)
    b = TensorLoader(images, labels, 8, shuffle=True, device="cpu", seed=3)
    first_a = [y.tolist() for _, y in a]
    assert first_a == [y.tolist() for _, y in b]
    assert first_a != [y.tolist() for _, y in a]  # the next epoch reshuffles


def test_transform_resize_normalize_channels_last():
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    t = BatchTransform(resize=96, mean=(0.5,), std=(0.25,), channels_last=True)
    out = t(x, train=False)
    assert out.shape == (2, 1, 96, 96)
    assert torch.allclose(out, torch.full_like(out, 2.0))
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_random_flip_and_crop_keep_shape_and_content():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    flipped = random_hflip(x, g)
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54
    cropped = random_crop(x, 2, g)
    assert cropped.shape == x.shape
    # a crop only moves pixels or drops them at the border: never adds mass
    assert float(cropped.sum()) <= float(x.sum()) + 1e-3


def test_random_crop_shifts_content():
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(200, 1, 5, 5)
    x[:, :, 2, 2] = 1.0
    out = random_crop(x, 1, g)
    pos = out.view(200, -1).argmax(1)
    assert len(set(pos.tolist())) == 9  # all 3x3 offsets of the bright pixel occur


def test_subset_is_class_balanced():
    labels = torch.arange(1000) % 10
    idx = subset_per_class(labels, 100, 10)
    assert torch.bincount(labels[idx]).tolist() == [10] * 10
    assert len(subset_per_class(labels, None, 10)) == 1000
    with pytest.raises(ValueError):
        subset_per_class(labels, 5, 10)


def test_load_data_limit_resize_and_determinism():
    tr, te = load_data("fashion_mnist", batch_size=50, limit=200, resize=32, device="cpu")
    assert tr.num_examples == 200 and te.num_examples == 200
    X, y = next(iter(tr))
    assert X.shape == (50, 1, 32, 32)
    tr2, _ = load_data("fashion_mnist", batch_size=50, limit=200, resize=32, device="cpu")
    assert torch.equal(next(iter(tr2))[1], y)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        TensorLoader(torch.rand(2, 1, 4, 4), torch.zeros(2), 1, device="cpu")
    with pytest.raises(ValueError, match="labels"):
        TensorLoader(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3), 1, device="cpu")


def test_state_dict_restores_the_next_epochs_shuffle_and_augmentation():
    images, labels = _toy(40)
    t = BatchTransform(flip=True, crop_padding=1)
    a = TensorLoader(images, labels, 8, shuffle=True, transform=t, train=True, device="cpu", seed=5)
    list(a)                                   # one epoch consumed
    state = a.state_dict()
    expected = [(x.clone(), y.clone()) for x, y in a]   # what epoch 2 gives
    b = TensorLoader(images, labels, 8, shuffle=True, transform=t, train=True, device="cpu", seed=99)
    b.load_state_dict(state)
    got = list(b)
    assert len(got) == len(expected)
    assert all(torch.equal(x, ex) and torch.equal(y, ey) for (x, y), (ex, ey) in zip(got, expected))
    fresh = TensorLoader(images, labels, 8, shuffle=True, transform=t, train=True, device="cpu", seed=5)
    assert not all(torch.equal(y, ey) for (_, y), (_, ey) in zip(fresh, expected))
