import math

import pytest

from cnnbook.activations import compare_activations
from cnnbook.widgets.activations import ActivationExplorer


@pytest.fixture
def explorer():
    return ActivationExplorer(points=101)


def test_first_render(explorer):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    assert s["names"] == ["relu", "leaky_relu", "gelu", "swish"]
    assert (s["x_min"], s["x_max"]) == (-3.0, 3.0)
    assert s["zero_grad"]["relu"] == pytest.approx(0.5, abs=0.01)  # the left half
    assert s["zero_grad"]["gelu"] == 0.0
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_state_is_the_pure_function(explorer):
    c = explorer.controls
    c["names"].value = ("relu6", "elu")
    c["x_max"].value = 9.0
    assert explorer.renders == 3
    ref = compare_activations(["relu6", "elu"], -3.0, 9.0, points=101)
    assert explorer.state["zero_grad"] == pytest.approx(ref["zero_grad"])
    # ReLU6 is flat below 0 and above 6: 3 + 3 of the 12 units of range, plus the kinks
    assert explorer.state["zero_grad"]["relu6"] == pytest.approx(0.5, abs=0.02)


def test_parameters_change_curves_and_picture(explorer):
    picture = explorer.image.value
    explorer.controls["slope"].value = 0.2
    assert explorer.state["at_minus_1"]["leaky_relu"] == pytest.approx(-0.2)
    assert explorer.state["grad_at_minus_1"]["leaky_relu"] == pytest.approx(0.2)
    assert explorer.image.value != picture
    explorer.controls["beta"].value = 2.0
    assert explorer.state["at_minus_1"]["swish"] == pytest.approx(-1 / (1 + math.exp(2)))
    assert explorer.renders == 3


@pytest.mark.parametrize("name,value,message", [("names", (), "select at least one"),
                                                ("x_min", 5.0, "min < max")])
def test_bad_input_shows_a_message_and_keeps_the_picture(explorer, name, value, message):
    picture = explorer.image.value
    explorer.controls[name].value = value
    assert message in explorer.state["error"] and message in explorer.message.value
    assert explorer.renders == 1 and explorer.image.value == picture
    explorer.controls[name].value = {"names": ("tanh",), "x_min": -5.0}[name]
    assert explorer.state["error"] is None and explorer.message.value == ""
    assert explorer.renders == 2
