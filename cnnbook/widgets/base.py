"""The shared shape of every explorer: controls -> pure function -> picture + numbers."""
from __future__ import annotations

import io
import math
import warnings

import ipywidgets as widgets
import matplotlib.pyplot as plt


def figure_to_png(fig, tight: bool = True) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (no figure leaks per redraw).

    ``tight`` crops the white margins (``bbox_inches="tight"``), which draws the figure
    twice; an explorer that must redraw fast lays its figure out itself and passes False.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buf.getvalue()


class Explorer(widgets.VBox):
    """A VBox of named controls above a picture and a message line.

    Subclasses set ``self.controls`` (name -> widget) and implement ``compute(**values)``,
    which returns ``(figure, state_dict)``. Any change of a control re-renders; an
    invalid input (``ValueError``) is shown in the message line instead of the picture,
    and ``state["error"]`` holds the message, so nothing fails silently. Any other
    exception is a bug in the explorer: it is shown the same way, marked
    ``state["unexpected"] = True`` and warned about, so the widget keeps working for the
    learner while the tests (which check ``unexpected``) still catch it.
    """

    #: crop the picture's margins (one more drawing pass); see ``figure_to_png``
    tight_png = True

    def __init__(self, controls: dict, layout_controls=None):
        self.controls = dict(controls)
        self.image = widgets.Image(format="png")
        self.message = widgets.HTML()
        self.state: dict = {}
        self.renders = 0
        box = layout_controls if layout_controls is not None else widgets.VBox(list(self.controls.values()))
        super().__init__([box, self.message, self.image])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def compute(self, **values):  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_change(self, _change):
        self.refresh()

    def refresh(self) -> None:
        """Recompute from the current control values and redraw."""
        try:
            fig, state = self.compute(**self.values())
        except ValueError as exc:
            self._show_error(str(exc))
            return
        except Exception as exc:  # a bug, not bad input: keep the widget alive and say so
            warnings.warn(f"{type(self).__name__} failed on {self.values()}: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            self._show_error(f"this setting could not be drawn ({type(exc).__name__}: {exc})",
                             unexpected=True)
            return
        self.state = dict(state)
        self.state.setdefault("error", None)
        self.message.value = ""
        png = figure_to_png(fig, tight=self.tight_png)
        self.renders += 1  # before the image changes, so observers of the image see the new count
        self.image.value = png

    def _show_error(self, message: str, unexpected: bool = False) -> None:
        plt.close("all") if unexpected else None  # a half-drawn figure must not leak
        self.state = {"error": message, "unexpected": unexpected}
        self.message.value = f"<span style='color:#b00'>&#9888; {message}</span>"


def bounded_slider(cls, value, lo, hi, step, description: str, **kwargs):
    """A slider whose initial value must lie in ``[lo, hi]``: ipywidgets would clamp it silently.

    Raises ``ValueError`` naming the control and its range, so ``Explorer(size=50)`` on a
    slider that stops at 12 says so instead of quietly drawing size 12.
    """
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{description} must be between {lo} and {hi}, got {value!r}")
    return cls(value=value, min=lo, max=hi, step=step, description=description,
               continuous_update=False, **kwargs)
