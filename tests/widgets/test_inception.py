import pytest
import torch

from cnnbook.inspect import capture
from cnnbook.models.googlenet import googlenet_fashion
from cnnbook.widgets.inception import (BRANCHES, InceptionExplorer, branch_activity,
                                       inception_blocks)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return googlenet_fashion(0.125, small_input=True).eval()


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.rand(4, 1, 28, 28)


@pytest.fixture
def explorer(model, images):
    return InceptionExplorer(model, images, labels=torch.tensor([0, 1, 2, 3]),
                             class_names=[f"c{i}" for i in range(10)], maps_per_path=4)


def test_blocks_in_forward_order(model):
    assert list(inception_blocks(model)) == ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]


def test_shares_are_the_captured_paths(model, images):
    out = branch_activity(model, images[:2])
    name = inception_blocks(model)["4c"]
    maps = capture(model, images[:2], [f"{name}.{b}" for b in BRANCHES])
    energy = torch.tensor([maps[f"{name}.{b}"].pow(2).sum().item() for b in BRANCHES])
    info = out["blocks"]["4c"]
    assert info["energy"] == pytest.approx((energy / energy.sum()).tolist(), rel=1e-5)
    assert sum(info["mean_abs"]) == pytest.approx(1.0)
    assert info["channels"] == [m.shape[1] for m in maps.values()]
    assert sum(info["channels"]) == model.get_submodule(name).out_channels
    assert info["names"] == ["1x1", "1x1 -> 3x3", "1x1 -> 5x5", "pool -> 1x1"]
    assert out["probabilities"].shape == (2, 10)
    assert torch.allclose(out["probabilities"].sum(1), torch.ones(2))


def test_first_render_and_state(explorer, model, images):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    assert s["block"] == "3a" and s["index"] == 0 and s["true_class"] == "c0"
    ref = branch_activity(model, images[:1])["blocks"]["3a"]
    assert list(s["shares"].values()) == pytest.approx(ref["energy"])
    assert s["strongest_path"] == ref["names"][max(range(4), key=ref["energy"].__getitem__)]
    assert all(len(v) == 4 for v in s["shown_channels"].values())
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_controls_change_the_view(explorer, images, model):
    c = explorer.controls
    c["index"].value = 2
    assert explorer.state["true_class"] == "c2"
    c["block"].value = "5b"
    ref = branch_activity(model, images[2:3])["blocks"]["5b"]
    assert list(explorer.state["shares"].values()) == pytest.approx(ref["energy"])
    c["measure"].value = "mean_abs"
    assert list(explorer.state["shares"].values()) == pytest.approx(ref["mean_abs"])
    c["maps"].value = 1
    assert all(len(v) == 1 for v in explorer.state["shown_channels"].values())
    assert explorer.renders == 5 and len(explorer._cache) == 2  # image 2 ran once


def test_the_strongest_maps_are_shown(explorer):
    info = explorer.activity(0)["blocks"]["3a"]
    first = info["names"][0]
    strength = info["maps"][0][0].flatten(1).pow(2).sum(1)
    assert explorer.state["shown_channels"][first][0] == int(strength.argmax())


def test_a_model_without_inception_blocks_is_refused():
    with pytest.raises(ValueError, match="no Inception block"):
        InceptionExplorer(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)),
                          torch.rand(2, 1, 2, 2))
    with pytest.raises(ValueError, match="labels"):
        InceptionExplorer(googlenet_fashion(0.125, small_input=True), torch.rand(2, 1, 28, 28),
                          labels=[0])
