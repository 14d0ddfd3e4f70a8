"""Batched augmentations vs torchvision.transforms.v2.functional, image by image.

Tolerances: geometric transforms 1e-4 (grid coordinates are computed along a different
float32 path, a ~1e-6 pixel difference times a slope of at most 1 per pixel); colour
transforms 1e-5 (the same arithmetic, differently arranged); erasing exact.
"""
import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from cnnbook.data import augment as A
from cnnbook.data.loader import BatchTransform, TensorLoader


def batch(n=6, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    # smooth-ish images with structure in every channel, values spread over [0, 1]
    x = torch.rand(n, 3, h, w, generator=g)
    return torch.nn.functional.avg_pool2d(x, 3, 1, 1).mul(1.6).sub(0.3).clamp(0, 1)


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
@pytest.mark.parametrize("fill", [None, 0.0, 0.5])
def test_rotation_matches_torchvision(size, fill):
    x = batch(5, *size)
    t = A.RandomRotation(30, fill=fill)
    params = t.sample(len(x), gen())
    out = t.apply(x, params)
    for k in range(len(x)):
        ref = TF.rotate(x[k], float(params["angle"][k]), interpolation=InterpolationMode.BILINEAR,
                        fill=fill)
        torch.testing.assert_close(out[k], ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("size", [(32, 32), (24, 40)])
def test_affine_matches_torchvision(size):
    x = batch(6, *size)
    t = A.RandomAffine(degrees=20, translate=0.1, scale=(0.9, 1.1), fill=0.0)
    params = t.sample(len(x), gen(), size=size)
    tr = params["translate"]
    assert torch.equal(tr, tr.round()) and tr.abs().max() <= 0.1 * max(size)
    out = t.apply(x, params)
    for k in range(len(x)):
        ref = TF.affine(x[k], angle=float(params["angle"][k]),
                        translate=[float(v) for v in tr[k]], scale=float(params["scale"][k]),
                        shear=[0.0, 0.0], interpolation=InterpolationMode.BILINEAR, fill=0.0)
        torch.testing.assert_close(out[k], ref, atol=1e-4, rtol=0)


def test_nearest_interpolation_agrees_almost_everywhere():
    x = batch(4)
    t = A.RandomRotation(40, interpolation="nearest", fill=None)
    params = t.sample(len(x), gen())
    out = t.apply(x, params)
    ref = torch.stack([TF.rotate(x[k], float(params["angle"][k])) for k in range(len(x))])
    # a pixel centre that falls within float error of a cell border may round either way
    assert (out - ref).abs().gt(1e-6).float().mean() < 0.01


def test_zero_angle_and_unit_scale_are_the_identity():
    x = batch(3)
    same = A.affine(x, torch.zeros(3), fill=None)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,ref", [("brightness", TF.adjust_brightness),
                                      ("contrast", TF.adjust_contrast),
                                      ("saturation", TF.adjust_saturation),
                                      ("hue", TF.adjust_hue)])
def test_each_colour_op_matches_torchvision(name, ref):
    x = batch(8)
    op = dict(A.COLOR_OPS)[name]
    factors = (torch.linspace(-0.5, 0.5, 8) if name == "hue" else torch.linspace(0, 2, 8))
    out = op(x, factors)
    for k in range(len(x)):
        torch.testing.assert_close(out[k], ref(x[k], float(factors[k])), atol=1e-5, rtol=0)


def test_hsv_round_trip_and_grey_pixels():
    x = batch(4)
    x[0] = 0.5  # grey: hue and saturation 0
    x[1, :, :4, :4] = 0.0  # black
    torch.testing.assert_close(A.hsv_to_rgb(A.rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    hsv = A.rgb_to_hsv(x)
    assert hsv[0, :2].abs().max() == 0 and (hsv[:, 0] < 1).all() and (hsv[:, 0] >= 0).all()


def test_color_jitter_matches_torchvision_in_the_drawn_order():
    x = batch(10)
    t = A.ColorJitter(0.4, 0.4, 0.4, 0.1)
    params = t.sample(len(x), gen())
    assert sorted(params["order"][0].tolist()) == [0, 1, 2, 3]
    assert (params["brightness"] >= 0.6).all() and (params["brightness"] <= 1.4).all()
    assert params["hue"].abs().max() <= 0.1
    out = t.apply(x, params)
    fns = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    names = [n for n, _ in A.COLOR_OPS]
    for k in range(len(x)):
        ref = x[k]
        for idx in params["order"][k].tolist():
            ref = fns[idx](ref, float(params[names[idx]][k]))
        torch.testing.assert_close(out[k], ref, atol=1e-5, rtol=0)
    assert len({tuple(o) for o in params["order"].tolist()}) > 1  # orders differ per image


def test_random_erasing_matches_torchvision_erase():
    x = batch(40)
    t = A.RandomErasing(p=0.5, value=0.25)
    params = t.sample(len(x), gen())
    out = t.apply(x, params)
    erased = 0
    for k in range(len(x)):
        if params["erase"][k]:
            i, j, h, w = (int(params[key][k]) for key in "ijhw")
            assert 0 < h < 32 and 0 < w < 32 and i + h <= 32 and j + w <= 32
            assert 0.02 * 1024 * 0.8 <= h * w <= 0.33 * 1024 * 1.25  # area, up to rounding
            ref = TF.erase(x[k], i, j, h, w, torch.tensor(0.25))
            erased += 1
        else:
            ref = x[k]
        assert torch.equal(out[k], ref)
    assert 5 < erased < 35


def test_erasing_probability_is_respected():
    params = A.RandomErasing(p=0.2).sample(20_000, gen())
    assert abs(params["erase"].float().mean().item() - 0.2) < 0.015
    assert not A.RandomErasing(p=0.0).sample(100, gen())["erase"].any()


def test_rotation_angles_are_uniform_in_range():
    angles = A.RandomRotation(15).sample(10_000, gen())["angle"]
    assert angles.abs().max() <= 15 and abs(angles.mean().item()) < 0.3
    assert abs(angles.std().item() - 30 / 12 ** 0.5) < 0.3


def test_same_generator_seed_same_batch_and_images_differ():
    x = batch(6)
    aug = A.sources_recipe()
    assert len(aug) == 4
    a, b = aug(x, gen(7)), aug(x, gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, aug(x, gen(8)))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    # per-image randomness: the same image repeated gets different results
    same = x[:1].repeat(4, 1, 1, 1)
    out = A.RandomRotation(15)(same, gen())
    assert not torch.allclose(out[0], out[1])


def test_compose_runs_in_order():
    calls = []
    def tag(name):
        def t(x, g):
            calls.append(name)
            return x + 1
        return t
    out = A.Compose([tag("a"), tag("b")])(torch.zeros(1, 3, 2, 2), None)
    assert calls == ["a", "b"] and torch.equal(out, torch.full((1, 3, 2, 2), 2.0))
    assert "Compose" in repr(A.sources_recipe())


def test_flip_and_crop_wrappers():
    x = batch(8)
    flipped = A.RandomHorizontalFlip()(x, gen())
    for k in range(8):
        assert torch.equal(flipped[k], x[k]) or torch.equal(flipped[k], x[k].flip(-1))
    assert torch.equal(A.RandomCrop(0)(x, gen()), x)
    assert A.RandomCrop(4)(x, gen()).shape == x.shape


def test_plugs_into_batch_transform_and_loader():
    images = (batch(12) * 255).to(torch.uint8)
    labels = torch.arange(12) % 10
    loader = TensorLoader(images, labels, batch_size=4, shuffle=True, train=True,
                          transform=BatchTransform(), device="cpu")
    test_loader = TensorLoader(images, labels, batch_size=4, transform=loader.transform,
                               device="cpu")
    plain = [xb for xb, _ in loader]
    assert A.with_augment(loader, A.sources_recipe()) is loader
    assert loader.transform.augment is not None and test_loader.transform.augment is None
    loader.generator.manual_seed(0)
    first = torch.cat([xb for xb, _ in loader])
    loader.generator.manual_seed(0)
    second = torch.cat([xb for xb, _ in loader])
    assert torch.equal(first, second) and not torch.equal(first, torch.cat(plain))
    with pytest.raises(ValueError, match="callable"):
        A.with_augment(loader, "rotate")


@pytest.mark.parametrize("make,message", [
    (lambda: A.RandomRotation(-1), ">= 0"), (lambda: A.RandomRotation(float("nan")), "finite"),
    (lambda: A.RandomRotation(400), "allowed"), (lambda: A.ColorJitter(hue=0.7), "allowed"),
    (lambda: A.ColorJitter(brightness=float("inf")), "finite"),
    (lambda: A.RandomAffine(translate=1.5), "fraction"),
    (lambda: A.RandomAffine(scale=(1.2, 0.8)), "low <= high"),
    (lambda: A.RandomErasing(p=1.5), "probability"), (lambda: A.RandomCrop(-2), "whole number"),
    (lambda: A.RandomRotation(10, interpolation="cubic"), "interpolation")])
def test_bad_settings_get_clear_messages(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_input_gets_a_clear_message():
    with pytest.raises(ValueError, match="float batch"):
        A.RandomRotation(10)(torch.zeros(3, 8, 8, dtype=torch.uint8), gen())
    with pytest.raises(ValueError, match="RGB"):
        A.ColorJitter()(torch.rand(2, 1, 8, 8), gen())


def test_strong_brightness_clamps_at_zero():
    t = A.ColorJitter(brightness=3, contrast=0, saturation=0, hue=0)
    assert t.brightness == (0.0, 4.0)
    out = t(batch(4), gen())
    assert out.min() >= 0 and out.max() <= 1
