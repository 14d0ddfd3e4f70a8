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


# --- every example exactly once, told apart by a unique id --------------------------------

def _numbered(n, s=4):
    """Example i is an image filled with the value i and has the label i: ids are unique."""
    ids = torch.arange(n)
    return ids.view(n, 1, 1, 1).expand(n, 1, s, s).to(torch.uint8).contiguous(), ids


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, batch, sizes", [(10, 4, [4, 4, 2]), (12, 4, [4, 4, 4]), (3, 8, [3])])
def test_every_example_exactly_once_with_its_own_image(shuffle, n, batch, sizes):
    images, ids = _numbered(n)
    loader = TensorLoader(images, ids, batch, shuffle=shuffle, device="cpu", seed=1)
    for _ in range(2):   # two epochs: the reshuffled one too
        batches = list(loader)
        assert [len(y) for _, y in batches] == sizes == [len(x) for x, _ in batches]
        seen = torch.cat([y for _, y in batches])
        assert sorted(seen.tolist()) == list(range(n))
        for x, y in batches:   # each image travels with its own label
            assert torch.equal(torch.round(x * 255).amax(dim=(1, 2, 3)).long(), y)
    if shuffle and n > 3:
        assert seen.tolist() != list(range(n))
    dropped = TensorLoader(images, ids, batch, shuffle=shuffle, device="cpu", drop_last=True)
    assert [len(y) for _, y in dropped] == [batch] * (n // batch) == [batch] * len(dropped)



@pytest.mark.parametrize("shuffle", [False, True])
def test_a_default_device_the_caller_set_does_not_move_the_order(shuffle):
    # torch.set_default_device("cuda") in a notebook must not send the shuffle to the GPU
    # with a CPU generator (an error there); "meta" stands in for the accelerator here
    images, ids = _numbered(10)
    expected = [y.tolist() for _, y in TensorLoader(images, ids, 4, shuffle=shuffle,
                                                    device="cpu", seed=3)]
    loader = TensorLoader(images, ids, 4, shuffle=shuffle, device="cpu", seed=3)
    with torch.device("meta"):
        got = [y.tolist() for _, y in loader]
    assert got == expected


# --- augmentation: really done in training, never in evaluation -----------------------------

def _dots(n=64, s=6):
    """Non-constant images: one bright pixel at a different place in each image."""
    x = torch.zeros(n, 1, s, s, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    r, c = torch.randint(1, s - 1, (n,), generator=g), torch.randint(1, s - 1, (n,), generator=g)
    x[torch.arange(n), 0, r, c] = 255
    x[:, :, 0, :] = 60   # a grey top row, so a flip or a shift changes the image
    return x, torch.arange(n)


def test_training_batches_are_cropped_and_flipped():
    images, ids = _dots()
    t = BatchTransform(crop_padding=1)
    x = torch.cat([b for b, _ in TensorLoader(images, ids, 16, transform=t, train=True,
                                              device="cpu")])
    plain = images.float() / 255
    moved = ~(x == plain).flatten(1).all(1)
    assert 0.6 < float(moved.float().mean()) < 1.0   # 8 of 9 offsets move the image
    # a crop moves the bright pixel by at most one row and one column, never drops it
    pos = lambda z: torch.stack([z[:, 0].amax(2).argmax(1), z[:, 0].amax(1).argmax(1)], 1)  # noqa: E731
    assert bool(((pos(x) - pos(plain)).abs() <= 1).all())
    flipped = torch.cat([b for b, _ in TensorLoader(images, ids, 16, train=True, device="cpu",
                                                    transform=BatchTransform(flip=True))])
    mirrored = (flipped == plain.flip(-1)).flatten(1).all(1)
    assert 16 < int(mirrored.sum()) < 48


def test_evaluation_batches_are_free_of_augmentation():
    images, ids = _dots()
    calls = []

    def add_noise(x, generator):
        calls.append(len(x))
        return x + 0.5

    t = BatchTransform(flip=True, crop_padding=2, augment=add_noise, mean=(0.2,), std=(0.5,))
    loader = TensorLoader(images, ids, 16, transform=t, train=False, device="cpu")
    x = torch.cat([b for b, _ in loader])
    assert torch.allclose(x, (images.float() / 255 - 0.2) / 0.5)
    assert calls == []
    trained = torch.cat([b for b, _ in TensorLoader(images, ids, 16, transform=t, train=True,
                                                    device="cpu")])
    assert calls == [16] * 4 and not torch.allclose(trained, x)


def test_load_data_augments_and_shuffles_the_training_split_only():
    tr, te = load_data("fashion_mnist", batch_size=50, limit=100, augment=True, device="cpu")
    first, again = list(te), list(te)
    assert all(torch.equal(a, b) and torch.equal(ya, yb)
               for (a, ya), (b, yb) in zip(first, again))   # the same batches every epoch
    labels = torch.cat([y for _, y in first])
    assert torch.equal(labels, te.labels)                    # in the stored order
    assert torch.equal(torch.cat([x for x, _ in first]), te.images.float() / 255)
    x1, x2 = torch.cat([x for x, _ in tr]), torch.cat([x for x, _ in tr])
    assert not torch.equal(x1, x2)   # a new shuffle and new crops each epoch


def test_map_batches_maps_every_batch_and_keeps_the_loader_facts():
    from cnnbook.data.loader import MapBatches

    X = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    y = torch.arange(10)
    base = TensorLoader(X, y, batch_size=4, shuffle=False, device="cpu")
    mapped = MapBatches(base, lambda xb, yb: (xb * 2, yb + 1))
    assert len(mapped) == len(base) == 3
    assert mapped.batch_size == 4 and mapped.num_examples == base.num_examples
    out = list(mapped)
    assert torch.equal(torch.cat([xb for xb, _ in out]), torch.cat([xb for xb, _ in base]) * 2)
    assert torch.equal(torch.cat([yb for _, yb in out]), y + 1)


def test_steps_per_epoch_goes_on_where_the_last_epoch_stopped():
    from cnnbook.data.loader import StepsPerEpoch

    X = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    y = torch.arange(10)   # image i has label i
    base = TensorLoader(X, y, batch_size=4, shuffle=True, device="cpu", seed=1)
    steps = StepsPerEpoch(base, 2)
    assert len(steps) == 2 and steps.batch_size == 4 and steps.num_examples == 10
    first, second = [yb for _, yb in steps], [yb for _, yb in steps]
    # epoch 1: batches 1-2 of a pass; epoch 2: its last batch (2 images), then a new pass
    assert [len(b) for b in first + second] == [4, 4, 2, 4]
    assert sorted(torch.cat(first + second[:1]).tolist()) == list(range(10))
    reference = TensorLoader(X, y, batch_size=4, shuffle=True, device="cpu", seed=1)
    passes = [yb for _, yb in reference] + [yb for _, yb in reference]
    for got, want in zip(first + second, passes):
        assert torch.equal(got, want)
    for xb, yb in StepsPerEpoch(base, 3):   # images stay with their labels
        assert torch.equal((xb[:, 0, 0, 0] * 255).round(), yb.float())
    with pytest.raises(ValueError, match="steps"):
        StepsPerEpoch(base, 0)
    with pytest.raises(ValueError, match="no batches"):
        list(StepsPerEpoch([], 1))


def test_a_rehearsal_caps_every_pass_to_its_batches(monkeypatch):
    from cnnbook.data.loader import StepsPerEpoch

    X = torch.randint(0, 256, (100, 1, 4, 4), dtype=torch.uint8)
    y = torch.arange(100) % 10
    loader = TensorLoader(X, y, batch_size=8, shuffle=True, device="cpu")
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES", raising=False)
    assert len(loader) == 13 and len(list(loader)) == 13 and len(StepsPerEpoch(loader, 40)) == 40
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    batches = list(loader)
    assert len(loader) == 2 and [len(b) for _, b in batches] == [8, 8]
    assert len(list(StepsPerEpoch(loader, 40))) == 2 == len(StepsPerEpoch(loader, 40))
    train, test = load_data("fashion_mnist", batch_size=64, resize=40, device="cpu")
    assert len(train) == len(test) == 2   # the full splits load, two batches go out
    assert [tuple(xb.shape) for xb, _ in test] == [(64, 1, 40, 40)] * 2



# --- details the mutation run found unchecked (python tools/mutants.py --broad loader) ------

def test_resize_matches_torchvisions_resize_up_and_down():
    """Oracle: torchvision's resize (bilinear, antialiased when shrinking) on the float batch."""
    from torchvision.transforms.v2 import functional as TF

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 12, 12), dtype=torch.uint8, generator=g)
    for size in (5, 20):
        out = BatchTransform(resize=size)(x, train=False)
        want = TF.resize(x.float() / 255, [size, size], antialias=True)
        assert out.shape == (2, 3, size, size) and torch.allclose(out, want, atol=1e-5)
    down = BatchTransform(resize=5)(x, train=False)
    plain = TF.resize(x.float() / 255, [5, 5], antialias=False)
    assert not torch.allclose(down, plain, atol=1e-3)   # shrinking without antialias differs
    same = BatchTransform(resize=12)(x, train=False)
    assert torch.equal(same, x.float() / 255)


def test_normalisation_is_per_channel_and_layout_as_asked():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.4, 0.8)
    out = BatchTransform(mean=mean, std=std)(x, train=True)   # no augmentation configured
    for c in range(3):
        assert torch.allclose(out[:, c], (x[:, c].float() / 255 - mean[c]) / std[c], atol=1e-6)
    assert out.is_contiguous() and not out.is_contiguous(memory_format=torch.channels_last)
    cl = BatchTransform(channels_last=True)(x, train=False)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(cl, x.float() / 255)


def test_flip_and_crop_work_without_a_generator():
    torch.manual_seed(0)
    x = torch.rand(32, 1, 4, 4)
    flipped = random_hflip(x)
    mirrored = (flipped == x.flip(-1)).flatten(1).all(1)
    assert bool(((flipped == x).flatten(1).all(1) | mirrored).all()) and 0 < int(mirrored.sum()) < 32
    out = random_crop(x, 1)
    assert out.shape == x.shape and not torch.equal(out, x)


def test_loader_refuses_bad_shapes_and_sizes_with_clear_messages():
    with pytest.raises(ValueError, match=r"^images must be a uint8 tensor of shape \(N, C, H, W\)$"):
        TensorLoader(torch.zeros(2, 4, 4, dtype=torch.uint8), torch.zeros(2), 1, device="cpu")
    with pytest.raises(ValueError, match=r"^2 images but 3 labels$"):
        TensorLoader(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3), 1, device="cpu")
    with pytest.raises(ValueError, match=r"^batch_size must be at least 1$"):
        TensorLoader(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2), 0, device="cpu")
    images, ids = _numbered(3)
    one = TensorLoader(images, ids, 1, device="cpu")          # batch size 1 is allowed
    assert [y.tolist() for _, y in one] == [[0], [1], [2]] and one.num_examples == 3


def test_default_device_and_seed(monkeypatch):
    monkeypatch.setenv("CNNBOOK_DEVICE", "cpu")
    images, ids = _numbered(20)
    loader = TensorLoader(images, ids, 5, shuffle=True)       # device from get_device()
    assert loader.device == torch.device("cpu") and loader.labels.device.type == "cpu"
    seeded = TensorLoader(images, ids, 5, shuffle=True, device="cpu", seed=0)
    assert [y.tolist() for _, y in loader] == [y.tolist() for _, y in seeded]   # seed 0
    other = TensorLoader(images, ids, 5, shuffle=True, device="cpu", seed=1)
    assert [y.tolist() for _, y in other] != [y.tolist() for _, y in seeded]


def test_steps_per_epoch_refuses_what_is_not_a_whole_number_and_accepts_one():
    from cnnbook.data.loader import StepsPerEpoch

    images, ids = _numbered(4)
    base = TensorLoader(images, ids, 2, device="cpu")
    for bad in (True, 2.5, -1):
        with pytest.raises(ValueError, match=r"^steps must be a whole number >= 1, got "):
            StepsPerEpoch(base, bad)
    one = StepsPerEpoch(base, 1.0)
    assert one.steps == 1 and type(one.steps) is int and len(one) == 1
    assert [y.tolist() for _, y in one] == [[0, 1]] and [y.tolist() for _, y in one] == [[2, 3]]


def test_wrappers_of_a_plain_list_have_no_loader_facts():
    from cnnbook.data.loader import MapBatches, StepsPerEpoch

    batches = [(torch.zeros(2, 1), torch.tensor([0, 1]))]
    for w in (MapBatches(batches, lambda x, y: (x, y)), StepsPerEpoch(batches, 1)):
        assert w.batch_size is None and w.num_examples is None


def test_load_data_normalises_to_zero_mean_unit_std_and_limits_the_test_split():
    """Oracle: normalised with the dataset's statistics, the images have mean ~0, std ~1."""
    tr, te = load_data("fashion_mnist", batch_size=500, limit=1000, test_limit=50,
                       normalize=True, device="cpu")
    x = torch.cat([b for b, _ in tr])
    assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1) < 0.1
    assert tr.num_examples == 1000 and te.num_examples == 50
    assert torch.bincount(te.labels).tolist() == [5] * 10          # class-balanced
    assert not tr.transform.flip and tr.transform.crop_padding == 0   # augment off


def test_load_data_augmentation_scales_the_crop_and_spares_digits():
    """The docstring's rule: padding 4 at 32 px (1/8 of the side, at least 1); no flip for digits."""
    tr, _ = load_data("fashion_mnist", batch_size=10, limit=10, resize=32, augment=True,
                      device="cpu")
    assert tr.transform.crop_padding == 4 and tr.transform.flip and tr.train and tr.shuffle
    tr, te = load_data("mnist", batch_size=10, limit=10, resize=4, augment=True, device="cpu")
    assert tr.transform.crop_padding == 1 and not tr.transform.flip
    assert not te.train and not te.shuffle
    tr, _ = load_data("mnist", batch_size=10, limit=10, resize=16, augment=True, device="cpu")
    assert tr.transform.crop_padding == 2
    assert tr.transform.channels_last       # on the CPU by default
    tr, _ = load_data("mnist", batch_size=10, limit=10, device="cpu", channels_last=False)
    assert not tr.transform.channels_last


def test_load_data_seed_picks_the_subset_and_the_shuffle():
    a, _ = load_data("mnist", batch_size=10, limit=20, device="cpu", seed=0)
    b, _ = load_data("mnist", batch_size=10, limit=20, device="cpu")
    c, _ = load_data("mnist", batch_size=10, limit=20, device="cpu", seed=3)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


# --- what the second mutation run found (non-square images, devices, load_data's defaults) --

def test_resize_makes_non_square_images_square_like_torchvision():
    """Oracle: torchvision's resize. Both sides count, whichever already has the size, and
    antialiasing is on whenever one of them shrinks."""
    from torchvision.transforms.v2 import functional as TF

    g = torch.Generator().manual_seed(0)
    wide = torch.randint(0, 256, (2, 3, 8, 12), dtype=torch.uint8, generator=g)
    for x in (wide, wide.transpose(2, 3)):            # 8 x 12 and 12 x 8
        for size in (8, 10, 12):
            out = BatchTransform(resize=size)(x, train=False)
            want = TF.resize(x.float() / 255, [size, size], antialias=True)
            assert out.shape == (2, 3, size, size) and torch.allclose(out, want, atol=1e-5)
    four = torch.randint(0, 256, (2, 4, 8, 8), dtype=torch.uint8, generator=g)
    out = BatchTransform(resize=4)(four, train=False)   # 4 channels: the side is still 8
    assert torch.allclose(out, TF.resize(four.float() / 255, [4, 4], antialias=True), atol=1e-5)


def test_extra_augmentation_draws_from_the_loaders_generator():
    images, ids = _dots(8)
    got = []

    def record(x, generator):
        got.append(generator)
        return x

    loader = TensorLoader(images, ids, 4, transform=BatchTransform(augment=record), train=True,
                          device="cpu")
    list(loader)
    assert len(got) == 2 and all(g is loader.generator for g in got)


def test_a_loader_without_train_leaves_its_batches_unaugmented():
    images, ids = _dots(16)
    t = BatchTransform(flip=True, crop_padding=2)
    x = torch.cat([b for b, _ in TensorLoader(images, ids, 8, transform=t, device="cpu")])
    assert torch.equal(x, images.float() / 255)


def test_batches_are_made_and_augmented_on_the_loaders_device():
    """The meta device stands in for an accelerator: like CUDA it refuses to mix its tensors
    with CPU ones, so a split, an index, a crop offset or a mean left on the CPU fails."""
    images, ids = _numbered(10, s=6)
    t = BatchTransform(resize=4, flip=True, crop_padding=1, mean=(0.5,), std=(0.25,))
    loader = TensorLoader(images, ids, 4, shuffle=True, transform=t, train=True, device="meta")
    assert loader.device == torch.device("meta")
    assert loader.images.device.type == "meta" and loader.labels.device.type == "meta"
    batches = list(loader)
    assert [tuple(x.shape) for x, _ in batches] == [(4, 1, 4, 4)] * 2 + [(2, 1, 4, 4)]
    assert all(x.device.type == "meta" and y.device.type == "meta" for x, y in batches)
    x = torch.zeros(3, 2, 5, 5, device="meta")
    g = torch.Generator().manual_seed(0)
    assert random_crop(x, 2, g).device.type == "meta" and random_hflip(x, g).device.type == "meta"


def test_cpu_batches_are_augmented_on_the_cpu_whatever_the_default_device():
    """torch.set_default_device("cuda") is common in notebooks; it must not move the index
    or statistics tensors of a CPU batch (the meta device stands in for cuda)."""
    x = torch.randint(0, 256, (6, 3, 5, 5), dtype=torch.uint8)
    t = BatchTransform(flip=True, crop_padding=1, mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7))
    want = t(x, True, torch.Generator().manual_seed(4))
    with torch.device("meta"):
        got = t(x, True, torch.Generator().manual_seed(4))
    assert got.device.type == "cpu" and torch.equal(got, want)


def test_random_draws_are_made_on_the_generators_device(monkeypatch):
    """A CUDA generator can only draw CUDA numbers, so flip and crop must ask for the
    generator's device. No accelerator here: a stand-in generator on "meta", and torch's
    samplers replaced by ones that record where they were asked to draw."""
    from types import SimpleNamespace

    asked, real_rand = [], torch.rand

    def rand(*size, generator=None, device=None):          # torch.rand's own signature
        asked.append((generator, device))
        return real_rand(*size).to(device)

    def randint(*bounds_and_size, generator=None, device=None):   # ([low,] high, size)
        asked.append((generator, device))
        return torch.zeros(bounds_and_size[-1], dtype=torch.long).to(device)

    fake = SimpleNamespace(device=torch.device("meta"))
    x = torch.zeros(3, 1, 4, 4, device="meta")
    monkeypatch.setattr(torch, "rand", rand)
    monkeypatch.setattr(torch, "randint", randint)
    random_hflip(x, fake)
    random_crop(x, 1, fake)
    assert asked == [(fake, torch.device("meta"))] * 3


def test_steps_per_epoch_says_why_an_empty_loader_is_refused():
    from cnnbook.data.loader import StepsPerEpoch

    with pytest.raises(ValueError, match=r"^the loader gave no batches$"):
        list(StepsPerEpoch([], 1))


def test_load_data_defaults_whole_fashion_mnist_in_batches_of_256(monkeypatch):
    """Without arguments: Fashion-MNIST (60000 / 10000 images), batches of 256, the device
    from get_device(); the cached splits are used as they are, not copied."""
    from cnnbook.data import loader as loader_module
    from cnnbook.data.splits import load_split

    monkeypatch.delenv("CNNBOOK_MAX_BATCHES", raising=False)
    monkeypatch.setattr(loader_module, "get_device", lambda: torch.device("meta"))
    tr, te = load_data()
    assert tr.device == te.device == torch.device("meta")
    assert not tr.transform.channels_last                      # not on the CPU
    assert tr.transform.mean is None and tr.transform.std is None   # normalize is off
    tr, te = load_data(device="cpu")                           # a given device wins
    assert tr.device == te.device == torch.device("cpu") and tr.transform.channels_last
    assert tr.batch_size == te.batch_size == 256 and (len(tr), len(te)) == (235, 40)
    assert tr.images is load_split("fashion_mnist", "train")[0]
    assert te.images is load_split("fashion_mnist", "test")[0]
    assert (tr.num_examples, te.num_examples) == (60000, 10000)


def test_load_data_seed_also_seeds_the_shuffle_and_crop_scales_to_64_pixels():
    a, _ = load_data("mnist", batch_size=64, device="cpu", seed=0)
    b, _ = load_data("mnist", batch_size=64, device="cpu", seed=3)
    c, _ = load_data("mnist", batch_size=64, device="cpu", seed=3)
    assert a.images is b.images                                # the whole split either way
    ya, yb, yc = (next(iter(loader))[1] for loader in (a, b, c))
    assert torch.equal(yb, yc) and not torch.equal(ya, yb)
    tr, _ = load_data("mnist", batch_size=10, limit=10, resize=64, augment=True, device="cpu")
    assert tr.transform.crop_padding == 8                      # 4 at 32 px, scaled
