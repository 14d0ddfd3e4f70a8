"""AugmentationExplorer: pick transforms and strengths, see what they do to real images.

Controls -> ``cnnbook.data.augment.build_augment`` (the pipeline) -> ``augment.preview``
(the same images augmented several times with one seed) -> a grid: the originals in the
top row, one augmented version per row below, and per row the mean absolute pixel
change. Every strength goes to its extreme without an exception: an impossible setting
(a seed out of range) comes back as a ``ValueError`` and is shown as a message.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from cnnbook.data import augment as A
from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}


def _slider(value, lo, hi, step, description, fmt=".2f"):
    return widgets.FloatSlider(value=value, min=lo, max=hi, step=step, description=description,
                               readout_format=fmt, continuous_update=False, style=_STYLE)


class AugmentationExplorer(Explorer):
    """Checkboxes turn each transform on, sliders set its strength; a seed fixes the draw.

    ``images`` is a uint8 batch (N, 3, H, W) with optional ``labels`` and ``class_names``
    (then a class can be picked); by default 20 CIFAR-10 test images per class,
    interleaved (airplane, automobile, ..., truck, airplane, ...). Defaults: the sources'
    settings (rotation 15°, jitter 0.2/0.2/0.2/0.1, translate 0.1, scale 0.9-1.1,
    erasing p 0.2), all switched on except flip and crop.
    """

    def __init__(self, images: torch.Tensor | None = None, labels=None, class_names=None,
                 n_images: int = 8, rows: int = 3, seed: int = 0):
        if images is None:
            images, labels, class_names = cifar10_examples()
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError("images must be an RGB batch (N, 3, H, W)")
        self.images = images
        self.labels = None if labels is None else torch.as_tensor(labels)
        self.class_names = list(class_names) if class_names is not None else None
        classes = ["all"] + (self.class_names if self.labels is not None and self.class_names
                             else [])
        controls = {
            "flip": widgets.Checkbox(value=False, description="flip", indent=False),
            "crop": widgets.Checkbox(value=False, description="crop", indent=False),
            "padding": widgets.IntSlider(value=4, min=1, max=16, description="crop padding",
                                         continuous_update=False, style=_STYLE),
            "rotate": widgets.Checkbox(value=True, description="rotation", indent=False),
            "degrees": _slider(15.0, 0.0, 180.0, 1.0, "± degrees", ".0f"),
            "jitter": widgets.Checkbox(value=True, description="colour jitter", indent=False),
            "brightness": _slider(0.2, 0.0, 1.0, 0.05, "brightness"),
            "contrast": _slider(0.2, 0.0, 1.0, 0.05, "contrast"),
            "saturation": _slider(0.2, 0.0, 1.0, 0.05, "saturation"),
            "hue": _slider(0.1, 0.0, 0.5, 0.01, "hue"),
            "affine": widgets.Checkbox(value=True, description="affine", indent=False),
            "translate": _slider(0.1, 0.0, 0.5, 0.01, "translate"),
            "scale": widgets.FloatRangeSlider(value=(0.9, 1.1), min=0.5, max=2.0, step=0.05,
                                              description="scale", continuous_update=False,
                                              style=_STYLE),
            "erase": widgets.Checkbox(value=True, description="random erasing", indent=False),
            "p_erase": _slider(0.2, 0.0, 1.0, 0.05, "erasing p"),
            "seed": widgets.IntText(value=seed, description="seed", style=_STYLE,
                                    layout=widgets.Layout(width="160px")),
            "n_images": widgets.IntSlider(value=n_images, min=1, max=12, description="images",
                                          continuous_update=False, style=_STYLE),
            "rows": widgets.IntSlider(value=rows, min=1, max=5, description="augmented rows",
                                      continuous_update=False, style=_STYLE),
            "klass": widgets.Dropdown(options=classes, value="all", description="class",
                                      style=_STYLE),
        }
        c = controls
        layout = widgets.HBox([
            widgets.VBox([c["rotate"], c["degrees"], c["affine"], c["translate"], c["scale"],
                          widgets.HBox([c["flip"], c["crop"]]), c["padding"]]),
            widgets.VBox([c["jitter"], c["brightness"], c["contrast"], c["saturation"], c["hue"],
                          c["erase"], c["p_erase"]]),
            widgets.VBox([c["seed"], c["n_images"], c["rows"], c["klass"]]),
        ])
        super().__init__(controls, layout)

    def pick(self, klass: str, n_images: int) -> torch.Tensor:
        """The first ``n_images`` images (of class ``klass`` unless "all")."""
        return self.images[self._indices(klass, n_images)]

    def _indices(self, klass: str, n_images: int) -> torch.Tensor:
        idx = torch.arange(len(self.images))
        if klass != "all":
            idx = idx[self.labels == self.class_names.index(klass)]
            if len(idx) == 0:
                raise ValueError(f"no images of class {klass!r} in this batch")
        return idx[:n_images]

    def compute(self, flip, crop, padding, rotate, degrees, jitter, brightness, contrast,
                saturation, hue, affine, translate, scale, erase, p_erase, seed, n_images,
                rows, klass):
        pipeline = A.build_augment(
            flip=flip, crop=padding if crop else 0, rotation=degrees if rotate else 0,
            brightness=brightness if jitter else 0, contrast=contrast if jitter else 0,
            saturation=saturation if jitter else 0, hue=hue if jitter else 0,
            translate=translate if affine else 0, scale=tuple(scale) if affine else (1, 1),
            erasing=p_erase if erase else 0)
        idx = self._indices(klass, n_images)
        images = self.images[idx]
        out = A.preview(images, pipeline, seed=seed, rows=rows)
        titles = ([self.class_names[int(self.labels[i])] for i in idx]
                  if self.labels is not None and self.class_names else None)
        fig = draw_preview(out["original"], out["augmented"], out["change"], titles)
        return fig, {"steps": [type(t).__name__ for t in pipeline.transforms],
                     "pipeline": repr(pipeline), "seed": int(seed), "images": len(images),
                     "rows": int(rows), "klass": klass, "change": out["change"],
                     "in_range": bool(out["augmented"].min() >= 0
                                      and out["augmented"].max() <= 1)}


def cifar10_examples(per_class: int = 20):
    """``per_class`` CIFAR-10 test images of each class, interleaved, with labels and names."""
    from cnnbook.data import class_names, load_split

    images, labels = load_split("cifar10", "test")
    idx = torch.stack([torch.nonzero(labels == c).flatten()[:per_class] for c in range(10)], 1)
    idx = idx.flatten()
    return images[idx], labels[idx], class_names("cifar10")


def draw_preview(original: torch.Tensor, augmented: torch.Tensor, change, titles=None):
    """Originals on top (titled with their classes if given), one row per augmented batch,
    labelled with its mean change."""
    rows, n = augmented.shape[0] + 1, original.shape[0]
    fig, axes = plt.subplots(rows, n, figsize=(1.3 * n + 1.2, 1.3 * rows), squeeze=False)
    for r in range(rows):
        batch = original if r == 0 else augmented[r - 1]
        for k in range(n):
            ax = axes[r, k]
            ax.imshow(batch[k].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and titles is not None:
                ax.set_title(titles[k], fontsize=8)
        axes[r, 0].set_ylabel("original" if r == 0 else f"aug {r}\nΔ {change[r - 1]:.3f}",
                              fontsize=8)
    fig.tight_layout()
    return fig
