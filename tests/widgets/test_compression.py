import math

import pytest
import torch
from torch import nn

from cnnbook.deploy.quantize import explore_quantization, quant_error
from cnnbook.models.cifar_resnet import resnet20
from cnnbook.widgets.compression import QuantizationExplorer, quantizable_weights


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return resnet20()


@pytest.fixture
def explorer(model):
    return QuantizationExplorer(model, layer="stage2.0.conv1.weight", bits=4)


def test_lists_every_conv_and_linear_weight(model):
    names = list(quantizable_weights(model))
    assert len(names) == 20 and names[0] == "stem.conv.weight" and names[-1] == "fc.weight"


def test_first_render(explorer):
    s = explorer.state
    assert s["error"] is None and explorer.renders == 1 and s["bits"] == 4
    assert bytes(explorer.image.value).startswith(b"\x89PNG")
    assert s["levels_used"] <= 16


def test_state_agrees_with_the_pure_function(explorer, model):
    explorer.controls["per_channel"].value = True
    w = quantizable_weights(model)["stage2.0.conv1.weight"]
    ref = quant_error(w, 4, True, 0)
    assert explorer.state["rel_rms"] == pytest.approx(ref["rel_rms"])
    assert explorer.state["sqnr_db"] == pytest.approx(ref["sqnr_db"])


def test_more_bits_less_error_about_6db_per_bit(explorer):
    sqnr = {}
    for bits in (2, 4, 8):
        explorer.controls["bits"].value = bits
        sqnr[bits] = explorer.state["sqnr_db"]
    assert sqnr[2] < sqnr[4] < sqnr[8]
    assert 4 * 4 < sqnr[8] - sqnr[4] < 4 * 8
    assert explorer.state["compression"] > 3.5


def test_per_channel_lowers_the_worst_channel_error(explorer):
    explorer.controls["bits"].value = 3
    shared = explorer.state["worst_channel_err"]
    explorer.controls["per_channel"].value = True
    assert explorer.state["worst_channel_err"] <= 1.05 * shared


def test_every_control_through_its_extremes(explorer, model):
    for layer in (list(quantizable_weights(model))[0], list(quantizable_weights(model))[-1]):
        explorer.controls["layer"].value = layer
        for bits in (2, 8):
            explorer.controls["bits"].value = bits
            for pc in (True, False):
                explorer.controls["per_channel"].value = pc
                for sym in (True, False):
                    explorer.controls["symmetric"].value = sym
                    assert explorer.state["error"] is None
                    assert not explorer.state.get("unexpected")
                    assert math.isfinite(explorer.state["rel_rms"])


def test_all_zero_layer_and_bad_arguments():
    net = nn.Sequential(nn.Linear(3, 2))
    nn.init.zeros_(net[0].weight)
    e = QuantizationExplorer(net)
    assert e.state["error"] is None and e.state["rel_rms"] == 0
    with pytest.raises(ValueError, match="no layer"):
        QuantizationExplorer(net, layer="nope")
    with pytest.raises(ValueError, match="no conv or linear"):
        QuantizationExplorer(nn.ReLU())
    with pytest.raises(ValueError, match="bits"):
        QuantizationExplorer(net, bits=9)
    with pytest.raises(ValueError):
        explore_quantization(torch.zeros(0))
