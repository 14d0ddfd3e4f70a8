import ipywidgets as widgets
import matplotlib.pyplot as plt

from cnnbook.widgets.base import Explorer, figure_to_png


class Doubler(Explorer):
    """The smallest Explorer: one integer box, a figure of a bar twice as high."""

    def __init__(self):
        super().__init__({"n": widgets.IntText(value=1)})

    def compute(self, n):
        if n < 0:
            raise ValueError("n must not be negative")
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.bar([0], [2 * n])
        return fig, {"double": 2 * n}


def test_renders_on_creation_and_on_each_change():
    ex = Doubler()
    assert ex.renders == 1 and ex.state == {"double": 2, "error": None}
    ex.controls["n"].value = 3
    assert ex.renders == 2 and ex.state["double"] == 6 and ex.image.value


def test_observers_of_the_image_see_the_new_render_count():
    # a notebook (and the browser test) labels the picture with the count as it arrives
    ex = Doubler()
    seen = []
    ex.image.observe(lambda _: seen.append(ex.renders), names="value")
    ex.controls["n"].value = 2
    assert seen == [2]


def test_bad_input_is_shown_and_keeps_the_last_picture():
    ex = Doubler()
    picture = ex.image.value
    ex.controls["n"].value = -1
    assert "must not be negative" in ex.message.value and ex.state["error"]
    assert ex.renders == 1 and ex.image.value == picture


def test_figure_to_png_writes_a_png_and_closes_the_figure():
    fig, _ = plt.subplots()
    data = figure_to_png(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
