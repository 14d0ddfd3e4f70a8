import pytest
import torch
import torch.nn.functional as F

from cnnbook.widgets.conv_arithmetic import ConvArithmeticExplorer


def _torch_out(size, kernel_size, stride, padding, dilation):
    x = torch.zeros(1, 1, size, size)
    w = torch.zeros(1, 1, kernel_size, kernel_size)
    return F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation).shape[-1]


def test_default_picture_and_state():
    ex = ConvArithmeticExplorer()
    assert ex.renders == 1 and ex.state["error"] is None
    assert ex.state["out_size"] == _torch_out(5, 3, 2, 1, 1) == 3
    assert ex.state["padded_size"] == 7 and ex.state["positions"] == 4
    assert bytes(ex.image.value[:4]) == b"\x89PNG"


@pytest.mark.parametrize("settings", [
    dict(size=7, kernel_size=3, stride=1, padding=0, dilation=2),
    dict(size=8, kernel_size=4, stride=3, padding=2, dilation=1),
    dict(size=12, kernel_size=5, stride=2, padding=2, dilation=1),
    dict(size=6, kernel_size=1, stride=4, padding=0, dilation=1),
    dict(size=9, kernel_size=3, stride=2, padding=4, dilation=3),
])
def test_sliders_give_pytorchs_output_size(settings):
    ex = ConvArithmeticExplorer()
    for name, value in settings.items():
        ex.controls[name].value = value
    assert ex.state["error"] is None
    assert ex.state["out_size"] == _torch_out(**settings)
    assert ex.state["span"] == settings["dilation"] * (settings["kernel_size"] - 1) + 1
    assert ex.state["parameters"] == settings["kernel_size"] ** 2  # dilation adds none


def test_each_slider_move_renders_once():
    ex = ConvArithmeticExplorer()
    ex.controls["stride"].value = 1
    ex.controls["dilation"].value = 2
    assert ex.renders == 3


def test_settings_without_output_show_a_message():
    ex = ConvArithmeticExplorer(size=4, kernel_size=3, stride=1, padding=0, dilation=1)
    picture = ex.image.value
    ex.controls["dilation"].value = 3  # spans 7 pixels > 4
    assert "spans 7 pixels" in ex.state["error"] and "empty" in ex.message.value
    assert ex.renders == 1 and ex.image.value == picture
    ex.controls["padding"].value = 2  # 4 + 2*2 = 8 >= 7: valid again
    assert ex.state["error"] is None and ex.state["out_size"] == _torch_out(4, 3, 1, 2, 3) == 2


def test_out_of_range_start_values_are_refused_not_clamped():
    import pytest

    from cnnbook.widgets.conv_arithmetic import ConvArithmeticExplorer

    with pytest.raises(ValueError, match="input must be between 1 and 12, got 50"):
        ConvArithmeticExplorer(size=50)
