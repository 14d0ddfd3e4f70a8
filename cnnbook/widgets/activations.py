"""ActivationExplorer: pick activations and an input range, see f, f' and where f' is zero.

Controls -> ``cnnbook.activations.compare_activations`` -> two panels (the functions and
their derivatives) and, per activation, the share of the range where the gradient is
exactly zero. An empty selection or a range with ``from >= to`` comes back as a
``ValueError`` and is shown as a message.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from cnnbook.activations import ACTIVATIONS, compare_activations
from cnnbook.viz import plot_functions
from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}


class ActivationExplorer(Explorer):
    """A multi-select of activations, the x range, LeakyReLU's slope and Swish's beta.

    The legend of the derivative panel gives, per activation, the share of the range where
    ``f'(x) = 0`` exactly: what a unit whose inputs all fall there can no longer learn.
    """

    def __init__(self, selected=("relu", "leaky_relu", "gelu", "swish"), x_min: float = -3.0,
                 x_max: float = 3.0, slope: float = 0.01, beta: float = 1.0,
                 points: int = 401):
        self.points = points
        controls = {
            "names": widgets.SelectMultiple(options=list(ACTIVATIONS), value=tuple(selected),
                                            rows=len(ACTIVATIONS), description="activations",
                                            style=_STYLE),
            "x_min": widgets.FloatText(value=x_min, step=0.5, description="x from",
                                       style=_STYLE, layout=widgets.Layout(width="150px")),
            "x_max": widgets.FloatText(value=x_max, step=0.5, description="to",
                                       style=_STYLE, layout=widgets.Layout(width="150px")),
            "slope": widgets.FloatSlider(value=slope, min=0.0, max=0.5, step=0.01,
                                         description="LeakyReLU slope", readout_format=".2f",
                                         continuous_update=False, style=_STYLE),
            "beta": widgets.FloatSlider(value=beta, min=0.0, max=5.0, step=0.1,
                                        description="Swish β", continuous_update=False,
                                        style=_STYLE),
        }
        layout = widgets.HBox([controls["names"], widgets.VBox(
            [widgets.HBox([controls["x_min"], controls["x_max"]]), controls["slope"],
             controls["beta"]])])
        super().__init__(controls, layout)

    def compute(self, names, x_min, x_max, slope, beta):
        out = compare_activations(names, x_min, x_max, points=self.points,
                                  params={"leaky_relu": slope, "swish": beta})
        fig, (ax_f, ax_g) = plt.subplots(1, 2, figsize=(10, 3.6))
        plot_functions(out["x"], out["f"], title="f(x)", ax=ax_f)
        grads = {f"{n} (f'=0 on {100 * out['zero_grad'][n]:.0f}%)": g
                 for n, g in out["df"].items()}
        plot_functions(out["x"], grads, title="f'(x)", ax=ax_g)
        return fig, {
            "names": list(names), "x_min": float(x_min), "x_max": float(x_max),
            "slope": float(slope), "beta": float(beta),
            "zero_grad": dict(out["zero_grad"]), "at_minus_1": dict(out["at_minus_1"]),
            "grad_at_minus_1": dict(out["grad_at_minus_1"]),
        }
