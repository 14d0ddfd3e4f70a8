"""The shared shape of every explorer: controls -> pure function -> picture + numbers."""
from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib.pyplot as plt


def figure_to_png(fig) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (no figure leaks per redraw)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


class Explorer(widgets.VBox):
    """A VBox of named controls above a picture and a message line.

    Subclasses set ``self.controls`` (name -> widget) and implement ``compute(**values)``,
    which returns ``(figure, state_dict)``. Any change of a control re-renders; an
    invalid input (``ValueError``) is shown in the message line instead of the picture,
    and ``state["error"]`` holds the message, so nothing fails silently.
    """

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
            self.state = {"error": str(exc)}
            self.message.value = f"<span style='color:#b00'>&#9888; {exc}</span>"
            return
        self.state = dict(state)
        self.state.setdefault("error", None)
        self.message.value = ""
        png = figure_to_png(fig)
        self.renders += 1  # before the image changes, so observers of the image see the new count
        self.image.value = png
