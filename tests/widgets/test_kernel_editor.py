import pytest

from cnnbook.conv import KERNEL_PRESETS, apply_kernel, format_kernel, preset_kernel
from cnnbook.photos import load_photo
from cnnbook.widgets.kernel_editor import KernelEditor


@pytest.fixture
def editor():
    return KernelEditor(size=48)


def _dropdowns(widget):
    """Dropdowns in the order the browser shows them (depth-first through the boxes)."""
    import ipywidgets as widgets

    found = []
    for child in getattr(widget, "children", ()):
        if isinstance(child, widgets.Dropdown):
            found.append(child)
        found += _dropdowns(child)
    return found


def test_first_dropdown_is_the_preset_menu(editor):
    first = _dropdowns(editor)[0]
    assert first is editor.preset and list(first.options) == list(KERNEL_PRESETS)
    assert editor.renders == 1 and editor.state["error"] is None
    assert editor.state["output_shape"] == editor.state["input_shape"] == (48, 48)
    assert editor.state["preset"] == "horizontal edge"


def test_loading_a_preset_renders_once_and_fills_the_grid(editor):
    before = editor.image.value
    editor.preset.value = list(KERNEL_PRESETS)[-1]  # what the browser test picks
    assert editor.renders == 2
    assert editor.image.value != before
    last = list(KERNEL_PRESETS)[-1]
    assert editor.controls["kernel"].value == format_kernel(preset_kernel(last))
    assert editor.state["kernel"] == preset_kernel(last).tolist()
    assert editor.state["preset"] == last


def test_feature_map_is_the_kernel_applied_to_the_photo(editor):
    editor.preset.value = "box blur 3x3"
    x = load_photo("camera", size=48)
    y = apply_kernel(x, preset_kernel("box blur 3x3"), padding="same", padding_mode="replicate")
    assert editor.state["output_min"] == pytest.approx(float(y.min()), abs=1e-6)
    assert editor.state["output_max"] == pytest.approx(float(y.max()), abs=1e-6)
    assert editor.state["kernel_sum"] == pytest.approx(1.0)


def test_typed_kernel_is_used_and_clears_the_preset(editor):
    editor.controls["kernel"].value = "0 0 0\n0 2 0\n0 0 0"
    assert editor.renders == 2
    assert editor.state["kernel"] == [[0, 0, 0], [0, 2, 0], [0, 0, 0]]
    assert editor.state["preset"] is None and editor.preset.value is None
    editor.preset.value = "horizontal edge"  # the original preset loads again
    assert editor.renders == 3 and editor.state["preset"] == "horizontal edge"


def test_even_and_wide_kernels_keep_the_photo_size(editor):
    editor.controls["kernel"].value = "1 -1"
    assert editor.state["error"] is None and editor.state["output_shape"] == (48, 48)


@pytest.mark.parametrize("text,message", [("1 2 3\n4 5", "same number of entries"),
                                          ("1 two 3", "'two' is not a number"),
                                          ("", "empty")])
def test_bad_kernel_shows_a_message_and_keeps_the_picture(editor, text, message):
    picture = editor.image.value
    editor.controls["kernel"].value = text
    assert message in editor.state["error"]
    assert message.replace("'", "&#x27;") in editor.message.value or message in editor.message.value
    assert editor.renders == 1 and editor.image.value == picture
    editor.controls["kernel"].value = "1"
    assert editor.state["error"] is None and editor.message.value == "" and editor.renders == 2


def test_photo_and_border_controls(editor):
    editor.controls["photo"].value = "coins"
    assert editor.renders == 2 and editor.state["photo"] == "coins"
    assert editor.state["input_shape"][0] == 48
    editor.controls["photo"].value = "camera"
    high = editor.state["output_max"]
    # a black frame above the bright sky: the horizontal edge kernel answers strongly there
    editor.controls["padding_mode"].value = "zeros"
    assert editor.renders == 4 and editor.state["padding_mode"] == "zeros"
    assert editor.state["output_max"] > high + 0.5


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown kernel preset"):
        KernelEditor(preset="nope")
