"""Look inside a trained model: its first convolution and the activations of chosen layers."""
from __future__ import annotations

import torch
from torch import nn


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` in the model's module order (whose kernels we plot)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer")


def _resolve(model: nn.Module, layers) -> dict:
    if isinstance(layers, dict):
        return dict(layers)
    named = dict(model.named_modules())
    missing = [name for name in layers if name not in named]
    if missing:
        raise ValueError(f"no layer named {', '.join(map(repr, missing))}; some layer names: "
                         f"{', '.join(list(named)[1:12])}")
    return {name: named[name] for name in layers}


@torch.no_grad()
def capture(model: nn.Module, x: torch.Tensor, layers) -> dict:
    """Outputs of ``layers`` (names from ``named_modules()``, or a name -> module dict)
    for input ``x``, recorded with forward hooks in eval mode and detached to the CPU."""
    modules = _resolve(model, layers)
    out: dict = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, name=name: out.__setitem__(name, o))
             for name, m in modules.items()]
    was_training = model.training
    model.eval()
    try:
        ref = next(model.parameters(), None)
        model(x.to(ref.device) if ref is not None else x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {name: (o.detach().float().cpu().contiguous() if torch.is_tensor(o) else o)
            for name, o in out.items()}


# --- feature maps of any layer, the layer list of any model, and images from anywhere -------

def _walk(module: nn.Module, prefix: str = ""):
    """Post-order ``(name, module)``: a container comes after everything inside it, as its
    output comes after theirs."""
    for name, child in module.named_children():
        full = f"{prefix}.{name}" if prefix else name
        yield from _walk(child, full)
        yield full, child


def _convs(model: nn.Module) -> list:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _blocks(model: nn.Module) -> list:
    """Top-level blocks: the model's children, where a child that holds *every* convolution
    (a ``features`` wrapper) is opened up into its own children."""
    all_convs = set(_convs(model))
    children = [(n, m) for n, m in model.named_children()]
    while True:
        wrapper = [(n, m) for n, m in children if not isinstance(m, nn.Conv2d) and len(all_convs) > 1
                   and {f"{n}.{c}" for c in _convs(m)} == all_convs]
        if not wrapper:
            return children
        name, module = wrapper[0]
        i = children.index(wrapper[0])
        children[i:i + 1] = [(f"{name}.{n}", m) for n, m in module.named_children()]


def forward_order(model: nn.Module, x: torch.Tensor) -> dict:
    """name -> output shape (``None`` if not a tensor) of every submodule that ran on the
    batch ``x``, in the order their outputs were produced."""
    order: dict = {}

    def record(name, output):  # returns None: a hook's return value would replace the output
        order.setdefault(name, tuple(output.shape) if torch.is_tensor(output) else None)

    hooks = [module.register_forward_hook(lambda _m, _i, o, name=name: record(name, o))
             for name, module in model.named_modules() if name]
    was_training = model.training
    model.eval()
    try:
        ref = next(model.parameters(), None)
        with torch.no_grad():
            model(x.to(ref.device) if ref is not None else x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return order


def layer_names(model: nn.Module, x: torch.Tensor | None = None) -> list:
    """The layers worth looking at: every ``nn.Conv2d`` and every top-level block.

    With an example input ``x`` (a batch), they come in the order the forward pass produces
    them and only those whose output is a feature map ``(N, C, H, W)`` are kept (the
    classifier head is not); without ``x``, in module order with each block after its
    contents, leaving out blocks with a ``nn.Linear`` inside (the head).
    """
    convs = _convs(model)
    blocks = [n for n, _ in _blocks(model)]
    wanted = set(convs) | set(blocks)
    if x is not None:
        order = forward_order(model, x)
        names = [n for n, shape in order.items() if n in wanted and shape is not None
                 and len(shape) == 4]
    else:
        modules = dict(model.named_modules())
        names = [n for n, _ in _walk(model) if n in wanted and (
            n in convs or not any(isinstance(m, (nn.Linear, nn.Flatten))
                                  for m in modules[n].modules()))]
    if not names:
        raise ValueError(f"{type(model).__name__} has no layer that outputs feature maps")
    return names


class FeatureMaps(tuple):
    """``(maps, logits, probabilities)`` of one forward pass; also by attribute."""

    __slots__ = ()

    def __new__(cls, maps, logits, probabilities):
        return super().__new__(cls, (maps, logits, probabilities))

    maps = property(lambda self: self[0], doc="layer name -> (N, C, H, W) float tensor on the CPU")
    logits = property(lambda self: self[1], doc="(N, classes) model outputs")
    probabilities = property(lambda self: self[2], doc="(N, classes) softmax of the logits")


def feature_maps(model: nn.Module, x: torch.Tensor, layers, normalize=None) -> FeatureMaps:
    """The feature maps of ``layers`` and the class probabilities for a batch ``x`` in [0, 1],
    all from one forward pass (eval mode, no gradients).

    ``normalize`` (a callable on the batch, or a ``(mean, std)`` pair of per-channel
    sequences) is applied first, as the training loader did. A layer whose output is not a
    4-D feature map (a linear layer) is refused with a ``ValueError`` naming its shape.
    """
    if not torch.is_tensor(x) or x.ndim != 4:
        raise ValueError(f"x must be a batch of images (N, C, H, W), got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    x = x.float()
    if normalize is not None:
        x = normalizer(normalize)(x)
    modules = _resolve(model, [layers] if isinstance(layers, str) else layers)
    out = capture(model, x, {"\0output": model, **modules})
    logits = out.pop("\0output")
    if not torch.is_tensor(logits) or logits.ndim != 2:
        raise ValueError("the model must return class scores (N, classes), got "
                         f"{tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__}")
    for name, m in out.items():
        if not torch.is_tensor(m) or m.ndim != 4:
            shape = tuple(m.shape) if torch.is_tensor(m) else type(m).__name__
            raise ValueError(f"layer {name!r} outputs {shape}, not feature maps (N, C, H, W): "
                             "choose a convolutional layer or block")
    missing = [n for n in modules if n not in out]
    if missing:
        raise ValueError(f"layer(s) {', '.join(map(repr, missing))} did not run in the forward pass")
    return FeatureMaps(out, logits, torch.softmax(logits, dim=1))


def normalizer(normalize):
    """A callable from ``normalize``: itself if callable, else a ``(mean, std)`` pair."""
    if callable(normalize):
        return normalize
    try:
        mean, std = normalize
        mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError("normalize must be a callable or a (mean, std) pair") from None
    if (std <= 0).any():
        raise ValueError("normalize: every std must be positive")
    return lambda x: (x - mean.to(x.device)) / std.to(x.device)


def producing_conv(model: nn.Module, layer: str, x: torch.Tensor, order: dict | None = None):
    """``(name, conv)``: the convolution whose kernels made ``layer``'s channels.

    The layer itself if it is a convolution; otherwise the last convolution that ran at or
    before it (in a block: its last conv, e.g. a residual block's second) with as many
    output channels as ``layer`` has. ``None`` if there is none (channels from a concat).
    ``order`` (from ``forward_order(model, x)``) saves the forward pass when asking about
    many layers.
    """
    order = forward_order(model, x) if order is None else order
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"no layer named {layer!r}")
    if isinstance(modules[layer], nn.Conv2d):
        return layer, modules[layer]
    names = list(order)
    if layer not in order or order[layer] is None or len(order[layer]) != 4:
        return None
    channels = order[layer][1]
    for name in reversed(names[:names.index(layer) + 1]):
        m = modules[name]
        if isinstance(m, nn.Conv2d):
            return (name, m) if m.out_channels == channels else None
    return None


def tile_maps(maps: torch.Tensor, ncols: int | None = None, scale: str = "each",
              gap: int = 1):
    """One 2-D array holding every channel of ``maps`` (C, H, W) as a tile, NaN between tiles.

    ``scale="each"`` stretches each map to [0, 1] on its own (its pattern shows, however
    weak); ``"shared"`` uses one range for all (which channels are strong, which are dead).
    One array drawn by one ``imshow`` renders hundreds of channels in milliseconds.
    Returns ``(array, ncols)``.
    """
    import math

    import numpy as np

    if maps.ndim != 3:
        raise ValueError(f"maps must be (C, H, W), got {tuple(maps.shape)}")
    if scale not in ("each", "shared"):
        raise ValueError(f"scale must be 'each' or 'shared', got {scale!r}")
    m = maps.detach().float().cpu()
    c, h, w = m.shape
    if scale == "each":
        lo = m.amin(dim=(1, 2), keepdim=True)
        hi = m.amax(dim=(1, 2), keepdim=True)
    else:
        lo, hi = m.min(), m.max()
    m = ((m - lo) / (hi - lo).clamp_min(1e-12)).numpy()
    ncols = ncols or max(1, math.ceil(math.sqrt(c * h / w)))
    nrows = math.ceil(c / ncols)
    out = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan, dtype=np.float32)
    for i in range(c):
        r, q = divmod(i, ncols)
        out[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = m[i]
    return out, ncols


class PreparedImage(tuple):
    """``(image, notes)``: a (C, H, W) float tensor in [0, 1] and what was done to get it."""

    __slots__ = ()

    def __new__(cls, image, notes):
        return super().__new__(cls, (image, tuple(notes)))

    image = property(lambda self: self[0])
    notes = property(lambda self: self[1])


MAX_UPLOAD_BYTES = 20_000_000   # a photo from a phone is 2-8 MB
MAX_PIXELS = 50_000_000         # larger is refused; up to this it is downscaled


def _decode(data: bytes, label: str, size: int, max_pixels: int):
    """Bytes of an image file -> (C, H, W) float tensor in [0, 1], notes."""
    import io
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ValueError(f"{label} is far too large to open: use an image under "
                         f"{max_pixels / 1e6:.0f} megapixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{label} is not an image this course can read (PNG, JPEG, GIF, BMP, "
                         f"TIFF or WebP): {type(exc).__name__}") from None
    w, h = img.size
    if w * h > max_pixels:
        raise ValueError(f"{label} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels): the limit "
                         f"is {max_pixels / 1e6:.0f}; shrink it first")
    if getattr(img, "n_frames", 1) > 1:
        notes.append(f"{label} has {img.n_frames} frames: the first is used")
    try:
        if img.format == "JPEG":
            img.draft("RGB" if img.mode not in ("L", "1") else "L", (4 * size, 4 * size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            img = ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{label} could not be decoded (a damaged or truncated file?): "
                         f"{exc}") from None
    return _from_pil(img, label, notes)


def _from_pil(img, label: str, notes: list):
    import numpy as np

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") else float(np.nanmax(arr)) if arr.size else 1.0
        x = torch.from_numpy(arr / (top if top > 0 else 1.0)).clamp(0, 1)[None]
        return x, notes
    if mode in ("LA", "PA", "RGBA", "La", "RGBa") or (mode == "P" and "transparency" in img.info):
        notes.append(f"{label}'s transparency was dropped")
    if mode in ("1", "L", "LA", "La"):
        img = img.convert("L")
    else:
        img = img.convert("RGB")
    x = torch.from_numpy(np.array(img, dtype=np.uint8))
    x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
    return x.float() / 255.0, notes


def _from_array(a, label: str, notes: list):
    import numpy as np

    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.dtype == torch.bool:
            a = a.float()
        if a.is_complex() or not (a.is_floating_point() or a.dtype in (
                torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
            raise ValueError(f"{label} has values of type {a.dtype}, not pixel intensities")
        x = a
    else:
        arr = np.asarray(a)
        if arr.dtype == np.bool_:
            arr = arr.astype(np.float32)
        if arr.dtype.kind not in "uif":
            raise ValueError(f"{label} has values of type {arr.dtype}, not pixel intensities")
        x = torch.from_numpy(np.ascontiguousarray(arr))
    while x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 3:
        if x.shape[0] not in (1, 2, 3, 4) and x.shape[-1] in (1, 2, 3, 4):
            x = x.permute(2, 0, 1)  # (H, W, C) as numpy and PIL keep it
        elif x.shape[0] not in (1, 2, 3, 4):
            raise ValueError(f"{label} has shape {tuple(x.shape)}: expected (H, W), (C, H, W) or "
                             "(H, W, C) with 1 to 4 channels")
    else:
        raise ValueError(f"{label} has shape {tuple(x.shape)}: expected one image, (H, W), "
                         "(C, H, W) or (H, W, C)")
    if x.shape[-1] < 1 or x.shape[-2] < 1:
        raise ValueError(f"{label} is empty (shape {tuple(x.shape)})")
    if x.dtype == torch.uint8:
        return x.float() / 255.0, notes
    x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{label} contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        if lo >= 0 and hi <= 255:
            x = x / 255.0
            notes.append(f"{label}'s values run to {hi:g}: read as 0-255 and divided by 255")
        else:
            x = (x - lo) / max(hi - lo, 1e-12)
            notes.append(f"{label}'s values run from {lo:g} to {hi:g}: stretched to [0, 1]")
    return x, notes


def prepare_image(image, channels: int, size, *, name: str | None = None,
                  max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> PreparedImage:
    """Any one image -> the model's input: a (channels, H, W) float tensor in [0, 1], and notes.

    ``image`` may be an encoded file (bytes, or an ipywidgets ``FileUpload`` entry), a path,
    a PIL image, a numpy array or a tensor ((H, W), (C, H, W) or (H, W, C)). A grey image for
    a colour model is repeated on 3 channels, a colour one for a grey model becomes its
    luminance, transparency is dropped, a non-square image is cut to its centre square and
    the result is resized (antialiased) to ``size``; each step is named in ``notes``.
    Something that is not an image, an empty or broken file, or one over ``max_bytes`` /
    ``max_pixels`` raises a ``ValueError`` that says what is wrong.
    """
    import os

    import numpy as np
    import torch.nn.functional as F
    from torchvision.transforms.v2 import functional as TF

    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be a positive int or (H, W), got {size!r}")
    if channels not in (1, 3):
        raise ValueError(f"this works for models with 1 or 3 input channels, not {channels}")
    if isinstance(image, dict) and "content" in image:   # an ipywidgets FileUpload entry
        name = name or image.get("name")
        image = image["content"]
    label = repr(name) if name else "the image"
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.isfile(path):
            raise ValueError(f"no image file at {path!r}")
        label = repr(name or os.path.basename(path))
        if os.path.getsize(path) > max_bytes:
            raise ValueError(f"{label} is {os.path.getsize(path) / 1e6:.0f} MB: the limit is "
                             f"{max_bytes / 1e6:.0f} MB")
        with open(path, "rb") as f:
            image = f.read()
    notes: list = []
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if not data:
            raise ValueError(f"{label} is empty (0 bytes)")
        if len(data) > max_bytes:
            raise ValueError(f"{label} is {len(data) / 1e6:.0f} MB: the limit is "
                             f"{max_bytes / 1e6:.0f} MB; upload a smaller image")
        x, notes = _decode(data, label, max(size), max_pixels)
    elif type(image).__module__.startswith("PIL."):
        x, notes = _from_pil(image, label, notes)
    elif isinstance(image, (torch.Tensor, np.ndarray, list)):
        x, notes = _from_array(image, label, notes)
    else:
        raise ValueError(f"{label} is a {type(image).__name__}, not an image (give bytes of a "
                         "file, a path, a PIL image, an array or a tensor)")
    h, w = x.shape[-2:]
    if h * w > max_pixels:
        raise ValueError(f"{label} is {w}x{h} pixels: the limit is {max_pixels / 1e6:.0f} megapixels")
    if x.shape[0] == 4:
        x = x[:3]
        notes.append(f"{label}'s fourth (alpha) channel was dropped")
    elif x.shape[0] == 2:
        x = x[:1]
        notes.append(f"{label}'s second (alpha) channel was dropped")
    if channels == 1 and x.shape[0] == 3:
        x = TF.rgb_to_grayscale(x)
        notes.append(f"{label} is in colour and this model takes grey images: converted to grey")
    elif channels == 3 and x.shape[0] == 1:
        x = x.expand(3, -1, -1)
        notes.append(f"{label} is grey and this model takes colour images: grey copied to R, G, B")
    want = size[0] / size[1]
    if abs(w / h - 1 / want) > 0.02 * (1 / want):
        if w / h > 1 / want:
            cw = max(1, round(h / want))
            x = x[..., :, (w - cw) // 2:(w - cw) // 2 + cw]
        else:
            ch = max(1, round(w * want))
            x = x[..., (h - ch) // 2:(h - ch) // 2 + ch, :]
        notes.append(f"{label} ({w}x{h}) was cut to its centre to fit the model's "
                     f"{size[1]}x{size[0]} input")
    if tuple(x.shape[-2:]) != size:
        h, w = x.shape[-2:]
        big = w > size[1] or h > size[0]
        if max(x.shape[-2:]) > 8 * max(size):  # two steps keep the antialiasing cheap
            step = (min(x.shape[-2], 4 * size[0]), min(x.shape[-1], 4 * size[1]))
            x = F.interpolate(x[None], size=step, mode="area")[0]
        x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False,
                          antialias=big)[0]
        notes.append(f"resized from {w}x{h} to {size[1]}x{size[0]} pixels, the model's input size")
    return PreparedImage(x.clamp(0, 1).contiguous(), notes)


def transform_image(x: torch.Tensor, shift=(0, 0), rotate: float = 0.0, invert: bool = False,
                    noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """A simple change of one image (C, H, W) in [0, 1], to see what the network tolerates.

    ``shift`` moves it ``(right, down)`` by whole pixels and ``rotate`` turns it by degrees
    (anticlockwise) in one torchvision affine warp, filling with black (the background of
    the course's grey datasets); then ``invert`` swaps light and dark, and ``noise`` adds
    Gaussian noise of that standard deviation (seeded, so the same setting gives the same
    picture), clipped to [0, 1].
    """
    import math

    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    if not torch.is_tensor(x) or x.ndim != 3:
        raise ValueError("x must be one image (C, H, W)")
    dx, dy = (float(v) for v in shift)
    if not all(math.isfinite(v) for v in (dx, dy, float(rotate), float(noise))):
        raise ValueError("shift, rotate and noise must be finite numbers")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    x = x.float()
    if dx or dy or rotate % 360:
        # affine's angle turns clockwise; ours, as TF.rotate's and np.rot90's, anticlockwise
        x = TF.affine(x, angle=-float(rotate), translate=[round(dx), round(dy)], scale=1.0,
                      shear=[0.0, 0.0], interpolation=InterpolationMode.BILINEAR, fill=0.0)
    if invert:
        x = 1.0 - x
    if noise > 0:
        g = torch.Generator().manual_seed(int(seed))
        x = x + noise * torch.randn(x.shape, generator=g)
    return x.clamp(0, 1)
