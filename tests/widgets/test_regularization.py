import math

import pytest
import torch

from cnnbook.regularization.masks import drop_mask, mask_stats
from cnnbook.widgets.regularization import DropBlockExplorer, default_feature_maps


@pytest.fixture
def explorer():
    return DropBlockExplorer(feature_maps=torch.rand(3, 24, 24) + 0.1)


def test_first_render(explorer):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    assert (s["method"], s["p"], s["block_size"]) == ("dropblock", 0.1, 5)
    assert 0 < s["dropped"] < 0.2 and bytes(explorer.image.value).startswith(b"\x89PNG")


def test_state_is_the_pure_function(explorer):
    explorer.controls["method"].value = "dropout"
    explorer.controls["p"].value = 0.3
    g = torch.Generator().manual_seed(0)
    mask = drop_mask((1, 3, 24, 24), "dropout", 0.3, 5, generator=g)
    ref = mask_stats(mask, 0.3, 5)
    assert explorer.state["dropped"] == pytest.approx(ref["dropped"])
    assert explorer.state["recoverable"] == pytest.approx(ref["recoverable"])
    assert explorer.renders == 3


def test_dropblock_holes_are_harder_to_see_around_than_dropout_holes():
    fmap = torch.rand(16, 32, 32)
    e = DropBlockExplorer(feature_maps=fmap, method="dropout", p=0.2)
    dropout_rec = e.state["recoverable"]
    e.controls["method"].value = "dropblock"
    e.controls["block_size"].value = 7
    assert dropout_rec > 0.95 and e.state["recoverable"] < 0.7
    assert e.state["dropped"] == pytest.approx(0.2, abs=0.06)  # overlaps: a bit below target
    e.controls["method"].value = "dropout2d"
    assert e.state["recoverable"] < 0.2  # whole channels: no neighbours left in the channel


def test_seed_and_channel_change_the_picture_zero_rate_drops_nothing(explorer):
    pic = explorer.image.value
    explorer.controls["seed"].value = 3
    assert explorer.image.value != pic
    explorer.controls["p"].value = 0.0
    assert explorer.state["dropped"] == 0.0 and math.isnan(explorer.state["recoverable"])
    explorer.controls["channel"].value = 2
    assert explorer.state["channel"] == 2 and explorer.state["error"] is None


def test_every_control_at_its_extremes(explorer):
    for name, control in explorer.controls.items():
        start = control.value
        values = (list(control.options) if hasattr(control, "options")
                  else [control.min, control.max])
        for value in values:
            control.value = value
            assert explorer.state.get("error") is None, (name, value, explorer.state)
        control.value = start
    explorer.controls["p"].value = 0.5
    explorer.controls["block_size"].value = explorer.controls["block_size"].max
    assert explorer.state["error"] is None and explorer.state["block_size"] == 23


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="odd"):
        drop_mask((1, 1, 8, 8), "dropblock", 0.1, 4)
    with pytest.raises(ValueError, match="method"):
        drop_mask((1, 1, 8, 8), "cutout", 0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        drop_mask((1, 1, 8, 8), "dropout", float("nan"))
    with pytest.raises(ValueError, match="C, H, W"):
        DropBlockExplorer(feature_maps=torch.rand(8, 8))


def test_default_feature_maps_are_real_and_nonnegative():
    f = default_feature_maps(32)
    assert f.shape == (4, 32, 32) and (f >= 0).all() and f.std() > 0
