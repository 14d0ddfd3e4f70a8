"""GaborExplorer: turn the knobs of a model simple cell and watch it look at a photograph.

Controls -> ``cnnbook.vision.gabor_kernel`` and ``filter_image`` -> photo, kernel and
response side by side. Bad settings (a width of 0, an even kernel size) come back from
``gabor_kernel`` as a ``ValueError`` and are shown as a message.
"""
from __future__ import annotations

import math

import ipywidgets as widgets

from cnnbook.conv import plot_kernel_result
from cnnbook.photos import PHOTOS, load_photo
from cnnbook.vision import filter_image, gabor_kernel
from cnnbook.widgets.base import Explorer, bounded_slider


def _slider(cls, value, lo, hi, step, description, fmt=None):
    kwargs = {"readout_format": fmt} if fmt else {}
    return bounded_slider(cls, value, lo, hi, step, description,
                          style={"description_width": "initial"}, **kwargs)


class GaborExplorer(Explorer):
    """Sliders for orientation, wavelength, width, aspect, phase and kernel size; a photo menu.

    The kernel is zero-mean (``gabor_kernel(..., zero_mean=True)``), like a cell that
    ignores uniform light, so the response map shows structure, not brightness. Angles
    are in degrees on the sliders and radians in ``cnnbook.vision``.
    """

    def __init__(self, photo: str = "camera", size: int = 192, theta: float = 0.0,
                 wavelength: float = 4.0, sigma: float = 2.0, gamma: float = 0.5,
                 psi: float = 0.0, kernel_size: int = 9):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size is the photo's shorter side in pixels (a positive whole "
                             f"number), got {size!r}")
        self.size = size
        self._photos: dict = {}
        controls = {
            "theta": _slider(widgets.FloatSlider, theta, 0, 180, 5, "orientation θ (°)", ".0f"),
            "wavelength": _slider(widgets.FloatSlider, wavelength, 2, 16, 0.5, "wavelength λ (px)"),
            "sigma": _slider(widgets.FloatSlider, sigma, 0, 8, 0.25, "width σ (px)", ".2f"),
            "gamma": _slider(widgets.FloatSlider, gamma, 0, 1.5, 0.05, "aspect γ", ".2f"),
            "psi": _slider(widgets.FloatSlider, psi, 0, 180, 15, "phase ψ (°)", ".0f"),
            "kernel_size": _slider(widgets.IntSlider, kernel_size, 3, 31, 2, "kernel size"),
            "photo": widgets.Dropdown(options=list(PHOTOS), value=photo, description="photo"),
        }
        names = list(controls)
        layout = widgets.HBox([widgets.VBox([controls[n] for n in names[:4]]),
                               widgets.VBox([controls[n] for n in names[4:]])])
        super().__init__(controls, layout)

    def photo(self, name: str):
        """The grey photo ``name`` at the explorer's size (loaded once)."""
        if name not in self._photos:
            self._photos[name] = load_photo(name, size=self.size)
        return self._photos[name]

    def compute(self, theta, wavelength, sigma, gamma, psi, kernel_size, photo):
        kernel = gabor_kernel(kernel_size, sigma=sigma, theta=math.radians(theta),
                              wavelength=wavelength, gamma=gamma, psi=math.radians(psi),
                              zero_mean=True)
        image = self.photo(photo)
        if kernel_size // 2 >= min(image.shape):
            raise ValueError(f"a {kernel_size}x{kernel_size} kernel needs a photo of at least "
                             f"{kernel_size // 2 + 1} px per side; this one is "
                             f"{image.shape[1]}x{image.shape[0]}: choose a smaller kernel")
        response = filter_image(image, kernel)
        fig = plot_kernel_result(image, kernel, response, titles=(
            photo, f"kernel θ={theta:.0f}° λ={wavelength:g} σ={sigma:g}", "response"))
        return fig, {
            "theta": theta, "wavelength": wavelength, "sigma": sigma, "gamma": gamma,
            "psi": psi, "photo": photo,
            "kernel_shape": tuple(kernel.shape), "input_shape": tuple(image.shape),
            "output_shape": tuple(response.shape),
            "mean_abs_response": float(response.abs().mean()),
            "max_abs_response": float(response.abs().max()),
        }
