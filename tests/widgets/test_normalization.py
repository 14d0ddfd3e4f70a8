import pytest
import torch

from cnnbook.models.norms import NORM_KINDS, explore_normalization
from cnnbook.widgets.normalization import NormalizationExplorer, plot_norm_cubes


@pytest.fixture
def explorer():
    return NormalizationExplorer(max_batch=8, max_channels=16)


def test_first_render_is_batch_norm(explorer):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    assert s["kind"] == "batch" and s["pooled"] == 4 * 4 * 4     # N * H * W of one channel
    assert s["depends_on_batch"] and s["batch_dependence"] > 0.01
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


@pytest.mark.parametrize("kind,pooled,depends", [("layer", 8 * 16, False), ("instance", 16, False),
                                                 ("group", 4 * 16, False),
                                                 ("switchable", 4 * 16 + 8 * 16 - 16, True)])
def test_each_kind_pools_what_it_should(explorer, kind, pooled, depends):
    explorer.controls["kind"].value = kind
    s = explorer.state
    assert s["error"] is None and s["pooled"] == pooled and s["depends_on_batch"] is depends
    assert s == {**explorer.state}
    ref = explore_normalization(kind, 4, 8, 2, 0, 0, 4)
    assert s["out_std"] == pytest.approx(ref["out_std"].tolist())


def test_layer_norm_gives_every_example_mean_0_std_1(explorer):
    explorer.controls["kind"].value = "layer"
    assert explorer.state["out_mean"] == pytest.approx([0.0] * 4, abs=1e-9)
    assert explorer.state["out_std"] == pytest.approx([1.0] * 4, abs=1e-4)
    explorer.controls["kind"].value = "batch"  # BN: examples keep their own brightness
    assert max(abs(m) for m in explorer.state["out_mean"]) > 0.1


def test_group_norm_with_one_group_is_layer_norm_and_with_c_groups_instance_norm():
    x = explore_normalization("group", 3, 8, 1, size=3)["y"]
    torch.testing.assert_close(x, explore_normalization("layer", 3, 8, size=3)["y"])
    x = explore_normalization("group", 3, 8, 8, size=3)["y"]
    torch.testing.assert_close(x, explore_normalization("instance", 3, 8, size=3)["y"])


@pytest.mark.parametrize("changes,message", [
    ({"kind": "group", "groups": 3}, "divide"),
    ({"example": 5}, "outside"),
    ({"kind": "batch", "batch_size": 1, "size": 1}, "more than one value"),
])
def test_bad_settings_show_a_message_and_keep_the_picture(explorer, changes, message):
    picture = explorer.image.value
    for name, value in changes.items():
        explorer.controls[name].value = value
    assert message in explorer.state["error"] and message in explorer.message.value
    assert explorer.image.value == picture or explorer.renders > 1
    explorer.controls["kind"].value = "instance"
    explorer.controls["example"].value = 0
    explorer.controls["size"].value = 2
    assert explorer.state["error"] is None and explorer.message.value == ""


def test_every_control_through_its_extremes_never_raises(explorer):
    for name, control in explorer.controls.items():
        values = control.options if name == "kind" else (control.min, control.max, control.min)
        for value in values:
            control.value = value  # must not raise; errors become a message
            assert "error" in explorer.state
    # now every slider sits at its minimum (a batch of one 1x1 image with one channel)
    for kind in NORM_KINDS:
        explorer.controls["kind"].value = kind
        assert ("more than one value" in (explorer.state["error"] or "")) == (kind == "batch")


def test_plot_norm_cubes():
    fig = plot_norm_cubes(("batch", "group", "switchable"), shape=(3, 4, 2), groups=2)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes][1] == "Group Norm (2 groups)"
