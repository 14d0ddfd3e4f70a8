"""Data augmentation on whole batches, on the device: every image gets its own random draw.

torchvision's transforms draw one set of random parameters per call, so the usual recipe
runs them image by image in DataLoader workers. Here each transform draws a *vector* of
parameters (one per image) from the ``torch.Generator`` it is given, and applies them to
the whole float batch ``(N, C, H, W)`` in [0, 1] at once: geometric transforms as one
``F.affine_grid`` + ``F.grid_sample`` call with a matrix per image, colour transforms by
broadcasting a factor per image. Each is checked in ``tests/data/test_augment.py`` against
``torchvision.transforms.v2.functional`` applied image by image with the same parameters.

    aug = Compose([RandomRotation(15), ColorJitter(0.2, 0.2, 0.2, 0.1),
                   RandomAffine(translate=0.1, scale=(0.9, 1.1)), RandomErasing(p=0.2)])
    train_iter = with_augment(train_iter, aug)   # BatchTransform(augment=aug) of the loader

A transform is a callable ``t(x, generator) -> x``; ``t.sample(n, generator)`` gives the
parameters it would draw and ``t.apply(x, params)`` applies given ones (tests use both).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from cnnbook.data.loader import random_crop, random_hflip

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601 luma, as torchvision (and PIL) use


def _gen_device(generator: torch.Generator | None):
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(n: int, lo: float, hi: float, generator) -> torch.Tensor:
    """``n`` draws from U(lo, hi) on the generator's device."""
    u = torch.rand(n, generator=generator, device=_gen_device(generator))
    return lo + (hi - lo) * u


def _range(value, name: str, center: float | None = None, bounds=(-math.inf, math.inf)):
    """A strength ``s`` -> (center - s, center + s); a pair is checked and kept as is."""
    if isinstance(value, (int, float)):
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, not {value}")
        lo, hi = (center - value, center + value) if center is not None else (-value, value)
        lo = max(lo, bounds[0])
    else:
        lo, hi = (float(v) for v in value)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"{name} must be a pair (low, high) with low <= high, not {value}")
    if lo < bounds[0] or hi > bounds[1]:
        raise ValueError(f"{name} range ({lo:g}, {hi:g}) leaves the allowed "
                         f"[{bounds[0]:g}, {bounds[1]:g}]")
    return lo, hi


class BatchAugmentation:
    """Base class: ``__call__`` = ``apply(x, sample(len(x), generator, size=(H, W)))``.

    ``sample`` draws every image's random parameters (``size`` is the images' height and
    width, for the transforms whose parameters depend on it); ``apply`` uses them, so a
    test can apply torchvision's transform with exactly the same parameters.
    """

    def sample(self, n: int, generator: torch.Generator | None = None,
               size: tuple[int, int] = (32, 32)) -> dict:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4 or not x.is_floating_point():
            raise ValueError(f"expected a float batch (N, C, H, W), got {tuple(x.shape)} {x.dtype}")
        params = self.sample(x.shape[0], generator, size=tuple(x.shape[-2:]))
        return self.apply(x, {k: v.to(x.device) for k, v in params.items()})

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


# ------------------------------------------------------------------ geometric transforms
def affine(x: torch.Tensor, angle: torch.Tensor, translate: torch.Tensor | None = None,
           scale: torch.Tensor | None = None, interpolation: str = "bilinear",
           fill: float | None = 0.0) -> torch.Tensor:
    """Rotate (degrees, clockwise), translate (pixels, (N, 2) as x, y) and scale each image.

    Same convention as ``torchvision.transforms.v2.functional.affine``: about the image
    centre, output pixel p is read from input point M^-1 p, outside pixels are 0, and a
    ``fill`` (not None) blends the uncovered area towards that value as torchvision does.
    """
    n, c, h, w = x.shape
    dev, dt = x.device, x.dtype
    angle = torch.as_tensor(angle, dtype=dt, device=dev).expand(n)
    scale = (torch.ones(n, dtype=dt, device=dev) if scale is None
             else torch.as_tensor(scale, dtype=dt, device=dev).expand(n))
    translate = (torch.zeros(n, 2, dtype=dt, device=dev) if translate is None
                 else torch.as_tensor(translate, dtype=dt, device=dev).expand(n, 2))
    rad = torch.deg2rad(angle)
    cos, sin = torch.cos(rad) / scale, torch.sin(rad) / scale
    tx, ty = translate[:, 0], translate[:, 1]
    # the inverse map in pixel coordinates centred on the image (x right, y down) ...
    m0, m1, m3, m4 = cos, sin, -sin, cos
    m2, m5 = -(m0 * tx + m1 * ty), -(m3 * tx + m4 * ty)
    # ... expressed in grid_sample's normalised coordinates (-1..1 across each side)
    theta = torch.stack([torch.stack([m0, m1 * h / w, m2 * 2 / w], 1),
                         torch.stack([m3 * w / h, m4, m5 * 2 / h], 1)], 1)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    if fill is None:
        return F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    out = F.grid_sample(torch.cat([x, torch.ones_like(x[:, :1])], 1), grid, mode=interpolation,
                        padding_mode="zeros", align_corners=False)
    out, mask = out[:, :c], out[:, c:]
    if interpolation == "nearest":
        return torch.where(mask < 0.5, torch.full_like(out, fill), out)
    return (out - fill) * mask + fill


class RandomRotation(BatchAugmentation):
    """Rotate each image by an angle drawn from U(-degrees, degrees), counter-clockwise."""

    def __init__(self, degrees=15.0, interpolation: str = "bilinear", fill: float | None = 0.0):
        self.degrees = _range(degrees, "degrees", bounds=(-360, 360))
        self.interpolation = _check_mode(interpolation)
        self.fill = fill

    def sample(self, n, generator=None, size=None):
        return {"angle": _uniform(n, *self.degrees, generator)}

    def apply(self, x, params):
        # torchvision's rotate turns counter-clockwise, its affine clockwise: hence the minus
        return affine(x, -params["angle"], interpolation=self.interpolation, fill=self.fill)


class RandomAffine(BatchAugmentation):
    """Random rotation, shift (a fraction of the side, rounded to whole pixels) and zoom.

    As torchvision's ``RandomAffine(degrees, translate=(t, t), scale=scale)``.
    """

    def __init__(self, degrees=0.0, translate: float = 0.1, scale=(0.9, 1.1),
                 interpolation: str = "bilinear", fill: float | None = 0.0):
        self.degrees = _range(degrees, "degrees", bounds=(-360, 360))
        self.translate = float(translate)
        if not (0 <= self.translate <= 1):
            raise ValueError(f"translate must be a fraction in [0, 1], not {translate}")
        self.scale = _range(scale, "scale", bounds=(1e-3, math.inf))
        self.interpolation = _check_mode(interpolation)
        self.fill = fill

    def sample(self, n, generator=None, size: tuple[int, int] = (32, 32)):
        h, w = size
        angle = _uniform(n, *self.degrees, generator)
        dx = torch.round(_uniform(n, -self.translate * w, self.translate * w, generator))
        dy = torch.round(_uniform(n, -self.translate * h, self.translate * h, generator))
        scale = _uniform(n, *self.scale, generator)
        return {"angle": angle, "translate": torch.stack([dx, dy], 1), "scale": scale}

    def apply(self, x, params):
        return affine(x, params["angle"], params["translate"], params["scale"],
                      interpolation=self.interpolation, fill=self.fill)


def _check_mode(mode: str) -> str:
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', not {mode!r}")
    return mode


class RandomHorizontalFlip(BatchAugmentation):
    """Mirror left-right with probability 1/2 (``cnnbook.data.loader.random_hflip``)."""

    def __call__(self, x, generator=None):
        return random_hflip(x, generator)


class RandomCrop(BatchAugmentation):
    """Zero-pad by ``padding`` and cut a random crop of the original size (``random_crop``)."""

    def __init__(self, padding: int = 4):
        if int(padding) != padding or padding < 0:
            raise ValueError(f"padding must be a whole number >= 0, not {padding}")
        self.padding = int(padding)

    def __call__(self, x, generator=None):
        return random_crop(x, self.padding, generator) if self.padding else x


# --------------------------------------------------------------------- colour transforms
def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma (N, 1, H, W) of an RGB batch."""
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """factor * x + (1 - factor) * other, clamped to [0, 1]; factor per image."""
    f = factor.view(-1, 1, 1, 1).to(x.dtype)
    return (f * x + (1 - f) * other).clamp(0, 1)


def adjust_brightness(x, factor):
    """Scale all values: 0 gives black, 1 the image, 2 twice as bright (clipped)."""
    return _blend(x, torch.zeros_like(x), factor)


def adjust_contrast(x, factor):
    """Blend with the image's mean grey: 0 gives flat grey, 1 the image."""
    return _blend(x, grayscale(x).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(x, factor):
    """Blend with the image's grey version: 0 gives black and white, 1 the image."""
    return _blend(x, grayscale(x), factor)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """Hue (in turns, [0, 1)), saturation and value of an RGB batch, (N, 3, H, W)."""
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp(min=1e-12), torch.zeros_like(maxc))
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    is_r = r == maxc
    is_g = (g == maxc) & ~is_r
    h = torch.where(is_r, ((g - b) / d) % 6,
                    torch.where(is_g, (b - r) / d + 2, (r - g) / d + 4)) / 6
    h = torch.where(delta > 0, h, torch.zeros_like(h)) % 1.0
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_hsv``: channel n in (5, 3, 1) is v - v s clamp(min(k, 4 - k), 0, 1)."""
    h, s, v = hsv.unbind(1)
    n = torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype).view(1, 3, 1, 1)
    k = (n + 6 * h.unsqueeze(1)) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return (v.unsqueeze(1) * (1 - s.unsqueeze(1) * ramp)).clamp(0, 1)


def adjust_hue(x, shift):
    """Turn the colour wheel by ``shift`` (a fraction of a turn, in [-0.5, 0.5]) per image."""
    hsv = rgb_to_hsv(x)
    h = (hsv[:, 0] + shift.view(-1, 1, 1).to(x.dtype)) % 1.0
    return hsv_to_rgb(torch.stack([h, hsv[:, 1], hsv[:, 2]], 1))


COLOR_OPS = (("brightness", adjust_brightness), ("contrast", adjust_contrast),
             ("saturation", adjust_saturation), ("hue", adjust_hue))


class ColorJitter(BatchAugmentation):
    """Random brightness, contrast, saturation and hue, in a random order per image.

    As torchvision's ``ColorJitter(brightness, contrast, saturation, hue)``: a strength
    ``s`` draws a factor from U(1 - s, 1 + s) (hue: a shift from U(-s, s)), and the four
    adjustments run in an order drawn per image.
    """

    def __init__(self, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1):
        self.brightness = _range(brightness, "brightness", 1.0, bounds=(0, math.inf))
        self.contrast = _range(contrast, "contrast", 1.0, bounds=(0, math.inf))
        self.saturation = _range(saturation, "saturation", 1.0, bounds=(0, math.inf))
        self.hue = _range(hue, "hue", bounds=(-0.5, 0.5))

    def sample(self, n, generator=None, size=None):
        order = torch.argsort(torch.rand(n, 4, generator=generator, device=_gen_device(generator)), 1)
        params = {name: _uniform(n, *getattr(self, name), generator) for name, _ in COLOR_OPS}
        params["order"] = order
        return params

    def apply(self, x, params):
        if x.shape[1] != 3:
            raise ValueError(f"colour jitter needs RGB images, got {x.shape[1]} channel(s)")
        for position in range(4):
            step = params["order"][:, position]
            out = x.clone()
            for k, (name, op) in enumerate(COLOR_OPS):
                chosen = step == k
                if chosen.any():
                    out[chosen] = op(x[chosen], params[name][chosen])
            x = out
        return x


# ---------------------------------------------------------------------------- erasing
class RandomErasing(BatchAugmentation):
    """With probability ``p`` per image, fill a random rectangle with ``value``.

    As torchvision's ``RandomErasing``: up to 10 attempts draw an area (a fraction ``scale``
    of the image) and a log-uniform aspect ratio; the first rectangle that fits is used,
    at a uniformly random position (none fits: the image is left alone). Here it runs
    before normalisation, so ``value=0`` is black; pass the dataset mean for a grey patch.
    """

    def __init__(self, p: float = 0.2, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0):
        if not (isinstance(p, (int, float)) and 0 <= p <= 1):
            raise ValueError(f"p must be a probability in [0, 1], not {p}")
        self.p = float(p)
        self.scale = _range(scale, "scale", bounds=(0, 1))
        self.ratio = _range(ratio, "ratio", bounds=(1e-6, math.inf))
        self.value = value

    def sample(self, n, generator=None, size: tuple[int, int] = (32, 32), attempts: int = 10):
        h_img, w_img = size
        dev = _gen_device(generator)
        erase = torch.rand(n, generator=generator, device=dev) < self.p
        area = h_img * w_img * (self.scale[0] + (self.scale[1] - self.scale[0])
                                * torch.rand(n, attempts, generator=generator, device=dev))
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        ratio = torch.exp(lo + (hi - lo) * torch.rand(n, attempts, generator=generator, device=dev))
        h = torch.round(torch.sqrt(area * ratio))
        w = torch.round(torch.sqrt(area / ratio))
        fits = (h < h_img) & (w < w_img)
        first = fits.float().argmax(1, keepdim=True)  # the first attempt that fits
        h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)
        erase = erase & fits.any(1)
        u = torch.rand(n, 2, generator=generator, device=dev)
        i = torch.floor(u[:, 0] * (h_img - h + 1)).clamp(max=h_img - h)
        j = torch.floor(u[:, 1] * (w_img - w + 1)).clamp(max=w_img - w)
        return {"erase": erase, "i": i.long(), "j": j.long(), "h": h.long(), "w": w.long()}

    def apply(self, x, params):
        n, c, hh, ww = x.shape
        rows = torch.arange(hh, device=x.device).view(1, hh, 1)
        cols = torch.arange(ww, device=x.device).view(1, 1, ww)
        i, j = params["i"].view(-1, 1, 1), params["j"].view(-1, 1, 1)
        h, w = params["h"].view(-1, 1, 1), params["w"].view(-1, 1, 1)
        inside = ((rows >= i) & (rows < i + h) & (cols >= j) & (cols < j + w)
                  & params["erase"].view(-1, 1, 1))
        value = torch.as_tensor(self.value, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
        return torch.where(inside.unsqueeze(1), value.expand(1, c, 1, 1), x)


# ---------------------------------------------------------------------- chaining them
class Compose:
    """Apply transforms in order, all drawing from the same generator: ``Compose([a, b])(x, g)``."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


def build_augment(flip: bool = False, crop: int = 0, rotation: float = 0.0,
                  brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0,
                  hue: float = 0.0, translate: float = 0.0, scale=(1.0, 1.0),
                  erasing: float = 0.0) -> Compose:
    """A pipeline from strengths; a strength of 0 (or scale (1, 1)) leaves that step out.

    Order: crop, flip, rotation, colour jitter, affine, erasing (last, on the finished
    image, as torchvision's recipes place it). ``load_data(augment=True)`` already crops
    and flips: leave ``flip`` and ``crop`` off when adding this to such a loader.
    """
    steps = []
    if crop:
        steps.append(RandomCrop(crop))
    if flip:
        steps.append(RandomHorizontalFlip())
    if rotation:
        steps.append(RandomRotation(rotation))
    if any((brightness, contrast, saturation, hue)):
        steps.append(ColorJitter(brightness, contrast, saturation, hue))
    scale = _range(scale, "scale", bounds=(1e-3, math.inf))
    if translate or scale != (1.0, 1.0):
        steps.append(RandomAffine(0, translate, scale))
    if erasing:
        steps.append(RandomErasing(erasing))
    return Compose(steps)


def sources_recipe() -> Compose:
    """The sources' augmentation: rotation 15°, colour jitter 0.2/0.2/0.2/0.1, affine
    translate 0.1 scale 0.9-1.1, random erasing p 0.2 (crop and flip come from the loader)."""
    return build_augment(rotation=15, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1,
                         translate=0.1, scale=(0.9, 1.1), erasing=0.2)


def preview(images: torch.Tensor, augment: Callable, seed: int = 0, rows: int = 3) -> dict:
    """``rows`` independent augmentations of the same images, for looking at a pipeline.

    ``images`` is a uint8 (N, C, H, W) batch. Returns the originals in [0, 1], the
    augmented batches (rows, N, C, H, W), and per row the mean absolute pixel change.
    The same seed gives the same pictures.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        raise ValueError("images must be a non-empty batch (N, C, H, W)")
    if int(rows) != rows or rows < 1:
        raise ValueError(f"rows must be a whole number >= 1, not {rows}")
    if int(seed) != seed or not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed must be a whole number in [0, 2**63), not {seed}")
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    g = torch.Generator().manual_seed(int(seed))
    out = torch.stack([augment(x, g) for _ in range(int(rows))])
    change = (out - x).abs().mean(dim=(1, 2, 3, 4))
    return {"original": x, "augmented": out, "change": [float(c) for c in change]}


def with_augment(loader, augment: Callable | None):
    """Give a training ``TensorLoader`` an augmentation (``BatchTransform(augment=...)``).

    The loader gets its own copy of its transform, so the test loader that ``load_data``
    built with the same transform object is not touched. Returns the loader.
    """
    if augment is not None and not callable(augment):
        raise ValueError("augment must be a callable t(x, generator) -> x, or None")
    loader.transform = dataclasses.replace(loader.transform, augment=augment)
    return loader
