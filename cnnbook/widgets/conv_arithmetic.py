"""ConvArithmeticExplorer: move the sliders of a convolution and watch the windows slide.

Controls -> ``cnnbook.conv.ConvGeometry`` -> ``draw_conv_arithmetic`` (the style of
Dumoulin and Visin's "A guide to convolution arithmetic", 2016) and the output size.
"""
from __future__ import annotations

import ipywidgets as widgets

from cnnbook.conv import ConvGeometry, draw_conv_arithmetic
from cnnbook.widgets.base import Explorer, bounded_slider


class ConvArithmeticExplorer(Explorer):
    """Input size, kernel size, stride, padding and dilation of a square convolution.

    ``state["out_size"]`` is the output size by the formula; settings with no output
    (the dilated kernel is larger than the padded input) show a message instead.
    """

    def __init__(self, size: int = 5, kernel_size: int = 3, stride: int = 2, padding: int = 1,
                 dilation: int = 1):
        def slider(name, value, lo, hi):
            return bounded_slider(widgets.IntSlider, value, lo, hi, 1, name)

        controls = {
            "size": slider("input", size, 1, 12),
            "kernel_size": slider("kernel", kernel_size, 1, 7),
            "stride": slider("stride", stride, 1, 4),
            "padding": slider("padding", padding, 0, 4),
            "dilation": slider("dilation", dilation, 1, 4),
        }
        super().__init__(controls)

    def compute(self, size: int, kernel_size: int, stride: int, padding: int, dilation: int):
        g = ConvGeometry(size, kernel_size, stride, padding, dilation)
        fig = draw_conv_arithmetic(g)
        return fig, {"out_size": g.out_size, "span": g.span, "padded_size": g.padded_size,
                     "unused": g.unused, "parameters": kernel_size * kernel_size,
                     "positions": len(fig.axes)}
