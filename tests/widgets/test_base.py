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


# --- the error paths, the picture's size and bounded_slider (found by mutation testing) -----

import math  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402

from cnnbook.widgets.base import bounded_slider  # noqa: E402


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR), independent of matplotlib."""
    return struct.unpack(">II", data[16:24])


class Fragile(Explorer):
    """n < 0 is bad input (ValueError); n == 13 is a bug (ZeroDivisionError) mid-drawing."""

    def __init__(self, shared=None, layout_controls=None):
        self.shared = shared
        super().__init__({"n": widgets.IntText(value=1), "s": widgets.Text(value="a")},
                         layout_controls=layout_controls)

    def compute(self, n, s):
        if n < 0:
            raise ValueError("n must not be negative")
        fig, ax = plt.subplots(figsize=(1, 1))
        if n == 13:
            return fig, {"x": 1 / 0}
        if n == 14:   # a bug after drawing two figures: both must be closed
            plt.subplots()
            return fig, {"x": 1 / 0}
        state = self.shared if self.shared is not None else {}
        state.update(n=n, s=s)
        return fig, state


def test_a_bug_is_shown_warned_and_marked_unexpected_and_its_figure_closed():
    ex = Fragile()
    before = len(plt.get_fignums())
    with pytest.warns(RuntimeWarning, match=r"Fragile failed on \{'n': 13, 's': 'a'\}: "
                                            r"ZeroDivisionError"):
        ex.controls["n"].value = 13
    assert ex.state == {"error": "this setting could not be drawn (ZeroDivisionError: "
                                 "division by zero)", "unexpected": True}
    assert ex.message.value == ("<span style='color:#b00'>&#9888; this setting could not be "
                                "drawn (ZeroDivisionError: division by zero)</span>")
    assert len(plt.get_fignums()) <= before and ex.renders == 1
    with pytest.warns(RuntimeWarning):
        ex.controls["n"].value = 14
    assert plt.get_fignums() == []


def test_bad_input_leaves_other_figures_open():
    ex = Fragile()
    mine = plt.figure()
    ex.controls["n"].value = -1
    assert plt.fignum_exists(mine.number)
    plt.close(mine)


def test_bad_input_is_expected_and_the_next_good_value_clears_the_message():
    ex = Fragile()
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # bad input is not a bug: no warning
        ex.controls["n"].value = -2
    assert ex.state == {"error": "n must not be negative", "unexpected": False}
    assert ex.message.value == "<span style='color:#b00'>&#9888; n must not be negative</span>"
    ex.controls["s"].value = "b"                # every control is observed
    assert ex.state["error"] == "n must not be negative"
    ex.controls["n"].value = 4
    assert ex.state == {"n": 4, "s": "b", "error": None} and ex.message.value == ""
    assert ex.renders == 2 and ex.values() == {"n": 4, "s": "b"}


def test_the_state_is_a_copy_of_what_compute_returned():
    shared = {}
    ex = Fragile(shared=shared)
    assert ex.state == {"n": 1, "s": "a", "error": None} and "error" not in shared


def test_layout_controls_replace_the_default_box():
    box = widgets.HBox()
    ex = Fragile(layout_controls=box)
    assert ex.children[0] is box and ex.children[1] is ex.message and ex.children[2] is ex.image
    default = Fragile()
    assert list(default.children[0].children) == list(default.controls.values())


def test_figure_to_png_untight_is_the_figure_at_90_dpi_and_tight_crops():
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.plot([0, 1], [0, 1])
    assert _png_size(figure_to_png(fig, tight=False)) == (360, 180)
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.plot([0, 1], [0, 1])
    w, h = _png_size(figure_to_png(fig))
    assert w < 360 and h < 180 and not plt.fignum_exists(fig.number)


def test_an_explorer_can_skip_the_tight_crop():
    class Loose(Doubler):
        tight_png = False

    assert _png_size(Loose().image.value) == (90, 90)
    assert _png_size(Doubler().image.value) != (90, 90)


@pytest.mark.parametrize("value", [-3, 12, 5.5])
def test_bounded_slider_accepts_its_range_and_builds_the_slider(value):
    s = bounded_slider(widgets.FloatSlider, value, -3, 12, 0.5, "size", readout=False)
    assert (s.value, s.min, s.max, s.step, s.description) == (value, -3, 12, 0.5, "size")
    assert s.continuous_update is False and s.readout is False


@pytest.mark.parametrize("value", [-4, 13, 12.01, math.nan, math.inf, -math.inf, "3", None])
def test_bounded_slider_refuses_a_value_out_of_range(value):
    with pytest.raises(ValueError, match=r"^size must be between -3 and 12, got "):
        bounded_slider(widgets.FloatSlider, value, -3, 12, 1, "size")


def test_only_a_value_change_redraws_and_the_image_is_a_png():
    ex = Fragile()
    ex.controls["n"].description = "renamed"        # not a value: no redraw
    assert ex.renders == 1 and ex.image.format == "png"


def test_figure_to_png_is_png_whatever_the_savefig_format_setting():
    # a learner's matplotlibrc may say savefig.format: svg; the Image widget needs PNG
    import matplotlib as mpl

    with mpl.rc_context({"savefig.format": "svg"}):
        fig, _ = plt.subplots(figsize=(1, 1))
        assert figure_to_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_to_png_closes_its_own_figure_not_the_current_one():
    fig, _ = plt.subplots(figsize=(1, 1))
    current = plt.figure()        # made later: pyplot's current figure
    figure_to_png(fig)
    assert not plt.fignum_exists(fig.number) and plt.fignum_exists(current.number)
    plt.close(current)


def test_the_warning_of_a_bug_points_at_the_code_that_asked_for_the_redraw():
    # stacklevel=2: the warning names the caller of refresh(), here this test file, so a
    # learner sees which of their lines triggered the broken setting
    ex = Fragile()
    ex.controls["n"].value = 12
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ex.controls["n"].unobserve_all()   # set the value without a redraw, then ask for one
        ex.controls["n"].value = 13
        ex.refresh()
    # under mutmut every mutated function is called through its trampoline, one more frame
    # between this test and refresh(): there the caller stacklevel=2 names is the trampoline
    caller = __file__
    if "MUTANT_UNDER_TEST" in os.environ:
        import mutmut.mutation.trampoline as trampoline
        caller = trampoline.__file__
    assert [w.filename for w in caught] == [caller]
    plt.close("all")
