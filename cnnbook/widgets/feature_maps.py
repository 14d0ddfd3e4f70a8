"""FeatureMapExplorer: an image, a change to it and a layer in; that layer's feature maps out.

Controls -> ``cnnbook.inspect`` (``prepare_image`` for a test image, a bundled photo or an
upload; ``transform_image`` for a shift, rotation, inversion or noise; ``feature_maps`` for
one forward pass that records every layer) -> every channel of the chosen layer as one
mosaic, or one channel enlarged beside the kernel that made it, and the prediction with its
class probabilities. The model and its layers come from the caller, so the same explorer
serves LeNet, AlexNet, VGG, ResNet and MobileNet, grey or colour. One forward pass per image
is cached, so changing the layer or channel only redraws.
"""
from __future__ import annotations

import hashlib
import html
import time
from collections import OrderedDict

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import gridspec
from torch import nn

from cnnbook.inspect import (feature_maps, forward_order, layer_names, normalizer, prepare_image,
                             producing_conv, tile_maps, transform_image)
from cnnbook.photos import PHOTOS, load_photo
from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}
_SOURCES = [("test image", "test"), ("photo", "photo"), ("upload", "upload")]
_CACHE = 8          # forward passes kept (one per image and transformation)
_MAX_KERNELS = 8    # input-channel slices shown for one output channel's kernel


def _as_batch(images) -> torch.Tensor:
    """The test images as a float (N, C, H, W) tensor in [0, 1] on the CPU."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        raise ValueError("images must be a non-empty tensor (N, C, H, W)")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, not {images.shape[1]}")
    x = images.detach().cpu()
    if x.dtype == torch.uint8:
        return x
    x = x.float()
    if not torch.isfinite(x).all() or x.min() < -1e-3 or x.max() > 1 + 1e-3:
        raise ValueError("float images must lie in [0, 1] (give uint8 images, or the "
                         "images before normalisation and the normalisation as normalize=)")
    return x


class FeatureMapExplorer(Explorer):
    """Choose an image (a test image by index and class, a photo, your own upload), shift,
    rotate, invert or add noise to it, and a layer: see all its channels, or one enlarged
    with its kernel, and what the network predicts.

    ``model`` is a trained classifier; ``images`` its test images (N, C, H, W), uint8 or
    float in [0, 1] *before* normalisation, with optional ``labels`` (then a class can be
    picked and the true class is shown) and ``class_names``; ``layers`` a list of module
    names (default: ``cnnbook.inspect.layer_names``, every conv and top-level block in
    forward order); ``normalize`` a callable or ``(mean, std)`` applied before the model, as
    in training; ``image_size`` the model's input size (default: the test images' size; the
    test images are resized to it).
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, *, class_names, layers=None,
                 labels=None, normalize=None, image_size=None, layer: str | None = None):
        if not isinstance(model, nn.Module):
            raise ValueError("model must be a torch nn.Module")
        self.model = model
        self.images = _as_batch(images)
        self.channels_in = int(self.images.shape[1])
        size = image_size if image_size is not None else tuple(self.images.shape[-2:])
        self.size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        self.labels = None if labels is None else torch.as_tensor(labels).detach().cpu().long()
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.class_names = [str(c) for c in class_names]
        self.normalize = None if normalize is None else normalizer(normalize)
        example = self._test_image(0)[None]
        probe = feature_maps(model, example, [], self.normalize)
        if probe.logits.shape[1] != len(self.class_names):
            raise ValueError(f"the model gives {probe.logits.shape[1]} class scores but "
                             f"{len(self.class_names)} class names were given")
        self.layers = list(layers) if layers is not None else layer_names(
            model, self._model_input(example))
        if not self.layers:
            raise ValueError("layers is empty: give at least one layer name")
        shapes = feature_maps(model, example, self.layers, self.normalize).maps  # checks names
        self.layer_channels = {n: int(m.shape[1]) for n, m in shapes.items()}
        self._kernels = {}
        order = forward_order(model, self._model_input(example))
        for n in self.layers:
            found = producing_conv(model, n, None, order=order)
            self._kernels[n] = None if found is None else (
                found[0], found[1].weight.detach().float().cpu())
        self._cache: OrderedDict = OrderedDict()
        self._uploads: dict = {}
        self._syncing = False
        self.border_mean = float(self._border(self.images[:256].float()
                                              / (255.0 if self.images.dtype == torch.uint8 else 1.0)))
        first = layer if layer is not None else self.layers[0]
        if first not in self.layers:
            raise ValueError(f"layer {first!r} is not one of {self.layers}")
        classes = [("all classes", -1)]
        if self.labels is not None:
            classes += [(name, i) for i, name in enumerate(self.class_names)]
        h, w = self.size
        c = {
            "source": widgets.ToggleButtons(options=_SOURCES, value="test", description="image",
                                            style={**_STYLE, "button_width": "90px"}),
            "index": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1,
                                       description="test image #", continuous_update=False,
                                       style=_STYLE),
            "klass": widgets.Dropdown(options=classes, value=-1, description="of class",
                                      disabled=self.labels is None, style=_STYLE,
                                      layout=widgets.Layout(width="230px")),
            "photo": widgets.Dropdown(options=list(PHOTOS), value="camera", description="photo",
                                      style=_STYLE, layout=widgets.Layout(width="200px")),
            "upload": widgets.FileUpload(accept="image/*", multiple=False,
                                         description="your image"),
            "shift_x": widgets.IntSlider(value=0, min=-(w // 2), max=w // 2, description="shift →",
                                         continuous_update=False, style=_STYLE),
            "shift_y": widgets.IntSlider(value=0, min=-(h // 2), max=h // 2, description="shift ↓",
                                         continuous_update=False, style=_STYLE),
            "rotate": widgets.IntSlider(value=0, min=-180, max=180, step=5,
                                        description="rotate °", continuous_update=False,
                                        style=_STYLE),
            "invert": widgets.Checkbox(value=False, description="invert", indent=False),
            "noise": widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05,
                                         description="noise σ", continuous_update=False,
                                         style=_STYLE),
            "layer": widgets.Dropdown(options=self.layers, value=first, description="layer",
                                      style=_STYLE, layout=widgets.Layout(width="330px")),
            "view": widgets.ToggleButtons(options=[("all channels", "all"), ("one channel", "one")],
                                          value="all", description="show",
                                          style={**_STYLE, "button_width": "100px"}),
            "channel": widgets.IntSlider(value=0, min=0, max=self.layer_channels[first] - 1,
                                         description="channel", continuous_update=False,
                                         style=_STYLE),
            "scale": widgets.ToggleButtons(options=[("each map", "each"), ("shared", "shared")],
                                           value="each", description="colour scale",
                                           style={**_STYLE, "button_width": "80px"}),
        }
        layout = widgets.VBox([
            c["source"],
            widgets.HBox([widgets.VBox([widgets.HBox([c["index"], c["klass"]]),
                                        widgets.HBox([c["photo"], c["upload"]])]),
                          widgets.VBox([widgets.HBox([c["shift_x"], c["shift_y"]]),
                                        widgets.HBox([c["rotate"], c["noise"], c["invert"]])])]),
            widgets.HBox([c["layer"], c["view"]]),
            widgets.HBox([c["channel"], c["scale"]]),
        ])
        super().__init__(c, layout)

    # -- images -------------------------------------------------------------------------
    def _test_image(self, i: int) -> torch.Tensor:
        x = self.images[i]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x[None], size=self.size, mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size[1])[0].clamp(0, 1)
        return x

    def _model_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(x) if self.normalize is not None else x

    @staticmethod
    def _border(x: torch.Tensor) -> torch.Tensor:
        """Mean brightness of the outer ring of pixels (the background, for centred objects)."""
        ring = torch.cat([x[..., 0, :].flatten(), x[..., -1, :].flatten(),
                          x[..., :, 0].flatten(), x[..., :, -1].flatten()])
        return ring.mean()

    def _pick_test(self, index: int, klass: int):
        if klass is None or klass < 0 or self.labels is None:
            return index, []
        members = (self.labels == klass).nonzero().flatten()
        if len(members) == 0:
            raise ValueError(f"no test image of class {self.class_names[klass]!r} among the "
                             f"{len(self.images)} given")
        return int(members[index % len(members)]), [
            f"image {index % len(members)} of the {len(members)} of class "
            f"{self.class_names[klass]!r}"]

    def _upload(self, files):
        if not files:
            raise ValueError("no image uploaded yet: click 'your image' and choose a PNG or "
                             "JPEG file")
        entry = files[-1]
        content = bytes(entry.get("content", b""))
        name = entry.get("name") or "the upload"
        key = (name, hashlib.sha1(content).hexdigest())
        if key not in self._uploads:
            self._uploads.clear()  # keep one decoded upload, never a pile of them
            self._uploads[key] = prepare_image(content, self.channels_in, self.size, name=name)
        x, notes = self._uploads[key]
        return key, x, list(notes)

    def _source_image(self, source, index, klass, photo, upload):
        """(cache key, image (C, H, W) in [0, 1], title, notes) for the chosen source."""
        if source == "test":
            i, notes = self._pick_test(index, klass)
            title = f"test image {i}"
            if self.labels is not None:
                title += f" ({self.class_names[int(self.labels[i])]})"
            return ("test", i), self._test_image(i), title, notes, i
        if source == "photo":
            key = ("photo", photo)
            if key not in self._uploads:
                raw = load_photo(photo, size=max(self.size) * 2, gray=self.channels_in == 1)
                self._uploads[key] = prepare_image(raw, self.channels_in, self.size,
                                                   name=f"photo {photo}")
            x, notes = self._uploads[key]
            return key, x, f"photo '{photo}'", [n for n in notes if "resized" not in n], None
        if source == "upload":
            key, x, notes = self._upload(upload)
            return ("upload",) + key, x, f"upload '{key[0]}'", notes, None
        raise ValueError(f"unknown image source {source!r}")

    def _forward(self, key, x):
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        result = feature_maps(self.model, x[None], self.layers, self.normalize)
        self._cache[key] = result
        while len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return result

    # -- controls -----------------------------------------------------------------------
    def _on_change(self, change):
        if self._syncing:
            return
        owner = change.get("owner") if isinstance(change, dict) else getattr(change, "owner", None)
        c = self.controls
        self._syncing = True
        try:
            follow = {"index": "test", "klass": "test", "photo": "photo", "upload": "upload"}
            for name, source in follow.items():
                if owner is c[name] and c["source"].value != source:
                    c["source"].value = source
            if owner is c["channel"] and c["view"].value != "one":
                c["view"].value = "one"
            channels = self.layer_channels[c["layer"].value]
            if c["channel"].max != channels - 1:
                c["channel"].value = min(c["channel"].value, channels - 1)
                c["channel"].max = channels - 1
        finally:
            self._syncing = False
        self.refresh()

    tight_png = False   # laid out by hand: one drawing pass per redraw (the 0.5 s budget)

    def refresh(self) -> None:
        start = time.perf_counter()
        super().refresh()
        if self.state.get("error") is None and "layer" in self.state:
            self.state["render_ms"] = 1000 * (time.perf_counter() - start)
            if self.state.get("notes"):
                self.message.value = ("<span style='color:#555'>&#9432; "
                                      + html.escape("; ".join(self.state["notes"])) + "</span>")

    # -- the picture --------------------------------------------------------------------
    def compute(self, source, index, klass, photo, upload, shift_x, shift_y, rotate, invert,
                noise, layer, view, channel, scale):
        start = time.perf_counter()
        key, image, title, notes, test_index = self._source_image(source, index, klass, photo,
                                                                  upload)
        if layer not in self.layer_channels:
            raise ValueError(f"unknown layer {layer!r}")
        changes = []
        if shift_x or shift_y:
            changes.append(f"shifted ({shift_x:+d}, {shift_y:+d}) px")
        if rotate % 360:
            changes.append(f"rotated {rotate:+d}°")
        if invert:
            changes.append("inverted")
        if noise > 0:
            changes.append(f"noise σ={noise:.2f}")
        x = transform_image(image, shift=(shift_x, shift_y), rotate=rotate, invert=invert,
                            noise=noise)
        if source != "test" and self.channels_in == 1 and not invert:
            if (self._border(x) > 0.5) != (self.border_mean > 0.5):
                notes.append("its background is " + ("light" if self._border(x) > 0.5 else "dark")
                             + " and the test images' is "
                             + ("light" if self.border_mean > 0.5 else "dark")
                             + ": try 'invert'")
        result = self._forward(key + (shift_x, shift_y, rotate, invert, noise), x)
        maps = result.maps[layer][0]
        probs = result.probabilities[0]
        pred = int(probs.argmax())
        forward_ms = 1000 * (time.perf_counter() - start)
        c, h, w = maps.shape
        flat = maps.flatten(1)
        dead = int(((flat.amax(1) - flat.amin(1)) <= 1e-6 * (1 + flat.abs().amax(1))).sum())
        true = None
        if test_index is not None and self.labels is not None:
            true = self.class_names[int(self.labels[test_index])]

        fig = plt.figure(figsize=(11, 4.6))
        outer = gridspec.GridSpec(2, 2, figure=fig, width_ratios=[1, 2.6],
                                  height_ratios=[1, 1], wspace=0.25, hspace=0.45,
                                  left=0.1, right=0.99, top=0.88, bottom=0.06)
        ax_img = fig.add_subplot(outer[0, 0])
        shown = x.permute(1, 2, 0).numpy() if x.shape[0] == 3 else x[0].numpy()
        ax_img.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax_img.set_title(title + ("\n" + ", ".join(changes) if changes else ""), fontsize=8)
        ax_img.axis("off")
        ax_p = fig.add_subplot(outer[1, 0])
        self._draw_probabilities(ax_p, probs, pred, true)
        channel = int(min(max(channel, 0), c - 1))
        kernel = self._kernels.get(layer)
        if view == "all":
            ax_m = fig.add_subplot(outer[:, 1])
            self._draw_mosaic(ax_m, maps, scale)
            ax_m.set_title(f"{layer}: all {c} channels, {h}x{w} each "
                           f"({'each on its own scale' if scale == 'each' else 'one shared scale'}"
                           f"{f'; {dead} constant' if dead else ''})", fontsize=9)
        else:
            inner = gridspec.GridSpecFromSubplotSpec(1, 2, subplot_spec=outer[:, 1],
                                                     width_ratios=[1.5, 1], wspace=0.25)
            ax_m = fig.add_subplot(inner[0])
            one = maps[channel].numpy()
            lim = (float(maps.min()), float(maps.max())) if scale == "shared" else (None, None)
            im = ax_m.imshow(one, cmap="viridis", vmin=lim[0], vmax=lim[1],
                             interpolation="nearest")
            fig.colorbar(im, ax=ax_m, fraction=0.046, pad=0.04,
                         ticks=matplotlib.ticker.MaxNLocator(4))
            ax_m.set_title(f"{layer}, channel {channel} of {c} ({h}x{w})\n"
                           f"min {one.min():.3g}, max {one.max():.3g}", fontsize=9)
            ax_m.axis("off")
            self._draw_kernel(fig, inner[1], kernel, channel)
        return fig, {
            "source": source, "image": title, "test_index": test_index, "true_class": true,
            "transform": changes, "layer": layer, "channels": c, "map_size": (h, w),
            "view": view, "channel": channel if view == "one" else None, "scale": scale,
            "dead_channels": dead,
            "kernel": None if kernel is None else kernel[0],
            "prediction": self.class_names[pred],
            "confidence": float(probs[pred]),
            "probabilities": {n: float(p) for n, p in zip(self.class_names, probs.tolist())},
            "notes": notes, "forward_ms": forward_ms, "render_ms": forward_ms,
        }

    def _draw_probabilities(self, ax, probs, pred, true):
        k = min(10, len(probs))
        top = probs.argsort(descending=True)[:k].tolist()
        top = sorted(top) if len(probs) <= 10 else top
        names = [self.class_names[i] for i in top]
        colors = ["#d62728" if i == pred else "#1f77b4" for i in top]
        ax.barh(range(k), [float(probs[i]) for i in top], color=colors)
        ax.set_yticks(range(k), names, fontsize=7)
        for tick, i in zip(ax.get_yticklabels(), top):
            if true is not None and self.class_names[i] == true:
                tick.set_fontweight("bold")
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1])   # few ticks: each one costs a few ms to draw
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"prediction: {self.class_names[pred]} ({float(probs[pred]):.0%})"
                     + (f"\ntrue: {true} (bold)" if true is not None else ""), fontsize=8)

    @staticmethod
    def _draw_mosaic(ax, maps, scale):
        tiles, ncols = tile_maps(maps, scale=scale)
        ax.imshow(np.ma.masked_invalid(tiles), cmap="viridis", vmin=0, vmax=1,
                  interpolation="nearest")
        c, h, w = maps.shape
        if c <= 64:
            for i in range(c):
                r, q = divmod(i, ncols)
                ax.text(q * (w + 1) + 0.3, r * (h + 1) + 0.3, str(i), color="white",
                        fontsize=6, va="top", ha="left")
        ax.set_facecolor("white")
        ax.axis("off")

    @staticmethod
    def _draw_kernel(fig, spec, kernel, channel):
        ax = fig.add_subplot(spec)
        ax.axis("off")
        if kernel is None:
            ax.text(0.5, 0.5, "no single convolution\nmade this layer's channels",
                    ha="center", va="center", fontsize=9, transform=ax.transAxes)
            return
        name, weight = kernel
        k = weight[channel]  # (in_channels / groups, kh, kw)
        order = k.flatten(1).norm(dim=1).argsort(descending=True)[:_MAX_KERNELS].tolist()
        n = len(order)
        cols = 1 if n == 1 else 2
        kh, kw = k.shape[-2:]
        lim = float(k.abs().max()) or 1.0
        # every slice in one image, a row of NaN between them: one imshow, not one axes
        # per slice (axes dominate the drawing time; the redraw has a 0.5 s budget)
        rows = -(-n // cols)
        tiles = np.full((rows * (kh + 1), cols * (kw + 1) - 1), np.nan, dtype=np.float32)
        for j, i in enumerate(order):
            r, q = divmod(j, cols)
            top, left = r * (kh + 1) + 1, q * (kw + 1)
            tiles[top:top + kh, left:left + kw] = k[i].numpy()
            ax.text(left - 0.45, top - 0.5, f"from input {i}", fontsize=6, va="bottom",
                    ha="left")
        ax.imshow(np.ma.masked_invalid(tiles), cmap="RdBu_r", vmin=-lim, vmax=lim,
                  interpolation="nearest")
        more = f", {n} of {k.shape[0]} inputs (strongest)" if k.shape[0] > n else ""
        ax.set_title(f"kernel of {name}\nfor channel {channel} "
                     f"({kh}x{kw}{more})", fontsize=8)
