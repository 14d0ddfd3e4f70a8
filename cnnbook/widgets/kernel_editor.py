"""KernelEditor: type a 2-D kernel (or load a classic one) and see what it does to a photo.

Controls -> ``cnnbook.conv.parse_kernel`` and ``apply_kernel`` -> input, kernel and
feature map side by side. A kernel that does not parse is shown as a message.
"""
from __future__ import annotations

import ipywidgets as widgets

from cnnbook.conv import (KERNEL_PRESETS, PADDING_MODES, apply_kernel, format_kernel,
                          parse_kernel, plot_kernel_result, preset_kernel)
from cnnbook.photos import PHOTOS, load_photo
from cnnbook.widgets.base import Explorer


class KernelEditor(Explorer):
    """A preset menu, an editable kernel (one row per line), a photo and a border mode.

    Choosing a preset writes its weights into the text box, which re-renders once; typing
    a kernel that matches no preset clears the menu, so any preset can be loaded again.
    The feature map keeps the photo's size (``padding="same"``, stride 1).
    """

    def __init__(self, preset: str = "horizontal edge", photo: str = "camera", size: int = 160,
                 padding_mode: str = "replicate"):
        if preset not in KERNEL_PRESETS:
            raise ValueError(f"unknown kernel preset {preset!r}")
        self.size = size
        self._photos: dict = {}
        self.preset = widgets.Dropdown(options=list(KERNEL_PRESETS), value=preset,
                                       description="preset")
        kernel = widgets.Textarea(value=format_kernel(preset_kernel(preset)),
                                  description="kernel", continuous_update=False,
                                  placeholder="one row per line, e.g.\n-1 0 1\n-1 0 1\n-1 0 1",
                                  layout=widgets.Layout(width="320px", height="130px"))
        photo_menu = widgets.Dropdown(options=list(PHOTOS), value=photo, description="photo")
        mode = widgets.Dropdown(options=list(PADDING_MODES), value=padding_mode,
                                description="border")
        controls = {"kernel": kernel, "photo": photo_menu, "padding_mode": mode}
        hint = widgets.HTML("<small>Edit the weights, then click outside the box.</small>")
        layout = widgets.HBox([widgets.VBox([self.preset, photo_menu, mode]),
                               widgets.VBox([kernel, hint])])
        super().__init__(controls, layout)
        self.preset.observe(self._load_preset, names="value")
        kernel.observe(self._forget_preset, names="value")

    def _load_preset(self, change) -> None:
        # writing the text box triggers the one re-render through its own observer
        if change["new"] is not None:
            self.controls["kernel"].value = format_kernel(preset_kernel(change["new"]))

    def _forget_preset(self, change) -> None:
        name = self.preset.value
        if name is not None and change["new"] != format_kernel(preset_kernel(name)):
            self.preset.value = None  # a custom kernel: no preset is selected

    def photo(self, name: str):
        """The grey photo ``name`` at the editor's size (loaded once)."""
        if name not in self._photos:
            self._photos[name] = load_photo(name, size=self.size)
        return self._photos[name]

    def compute(self, kernel: str, photo: str, padding_mode: str):
        k = parse_kernel(kernel)
        image = self.photo(photo)
        feature = apply_kernel(image, k, padding="same", padding_mode=padding_mode)
        fig = plot_kernel_result(image, k, feature)
        name = self.preset.value
        if name is not None and kernel != format_kernel(preset_kernel(name)):
            name = None  # edited by hand: the menu is cleared right after this render
        return fig, {
            "preset": name,
            "kernel": k.tolist(), "kernel_sum": float(k.sum()),
            "photo": photo, "padding_mode": padding_mode,
            "input_shape": tuple(image.shape), "output_shape": tuple(feature.shape),
            "output_min": float(feature.min()), "output_max": float(feature.max()),
        }
