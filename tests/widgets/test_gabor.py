import math

import pytest

from cnnbook.photos import load_photo
from cnnbook.vision import filter_image, gabor_kernel
from cnnbook.widgets.gabor import GaborExplorer


@pytest.fixture
def explorer():
    return GaborExplorer(size=64)


def test_first_render_uses_the_sources_settings(explorer):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    assert s["kernel_shape"] == (9, 9)
    assert s["input_shape"] == s["output_shape"] == (64, 64)
    assert (s["theta"], s["wavelength"], s["sigma"], s["gamma"]) == (0, 4, 2, 0.5)
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_state_is_the_pure_functions_applied_to_the_photo(explorer):
    c = explorer.controls
    c["theta"].value = 60
    c["wavelength"].value = 6.0
    c["psi"].value = 90
    assert explorer.renders == 4
    k = gabor_kernel(9, sigma=2.0, theta=math.radians(60), wavelength=6.0, gamma=0.5,
                     psi=math.radians(90), zero_mean=True)
    r = filter_image(load_photo("camera", size=64), k)
    assert explorer.state["mean_abs_response"] == pytest.approx(float(r.abs().mean()), rel=1e-5)
    assert explorer.state["max_abs_response"] == pytest.approx(float(r.abs().max()), rel=1e-5)


def test_turning_the_orientation_changes_picture_and_numbers(explorer):
    before, picture = explorer.state["mean_abs_response"], explorer.image.value
    explorer.controls["theta"].value = 90
    assert explorer.renders == 2 and explorer.state["theta"] == 90
    assert explorer.image.value != picture
    assert explorer.state["mean_abs_response"] != pytest.approx(before, rel=1e-3)


def test_kernel_size_and_photo(explorer):
    explorer.controls["kernel_size"].value = 21
    assert explorer.state["kernel_shape"] == (21, 21)
    explorer.controls["photo"].value = "coins"
    assert explorer.state["photo"] == "coins" and explorer.state["input_shape"][0] == 64
    assert explorer.renders == 3


@pytest.mark.parametrize("name,value,message", [("sigma", 0.0, "sigma must be a positive"),
                                                ("gamma", 0.0, "gamma must be a positive"),
                                                ("kernel_size", 8, "odd")])
def test_bad_values_show_a_message_and_keep_the_picture(explorer, name, value, message):
    picture = explorer.image.value
    explorer.controls[name].value = value
    assert message in explorer.state["error"]
    assert message in explorer.message.value
    assert explorer.renders == 1 and explorer.image.value == picture
    explorer.controls[name].value = {"sigma": 3.0, "gamma": 1.0, "kernel_size": 11}[name]
    assert explorer.state["error"] is None and explorer.message.value == ""
    assert explorer.renders == 2


def test_tiny_photo_and_out_of_range_settings_get_messages():
    e = GaborExplorer(size=8)  # the default 9x9 kernel reaches 4 px: fits
    assert e.state["error"] is None
    e.controls["kernel_size"].value = 31
    assert "at least 16 px" in e.state["error"]
    with pytest.raises(ValueError, match="positive whole number"):
        GaborExplorer(size=0)
    with pytest.raises(ValueError, match="between 3 and 31"):
        GaborExplorer(kernel_size=41)
