import pytest
import torch
import torch.nn.functional as F

from cnnbook.widgets.channel_mixer import (PRESETS, ChannelMixerExplorer, format_matrix,
                                           mix_channels, parse_matrix)


@pytest.fixture
def explorer():
    return ChannelMixerExplorer(image="coffee", preset="grey (luma)", size=32)


def test_first_render_is_the_luma_mix(explorer):
    s = explorer.state
    assert s["error"] is None and explorer.renders == 1
    assert s["c_out"] == 1 and s["params"] == 3 and s["rank"] == 1
    r, g, b = s["x_pixel"]
    assert s["y_pixel"][0] == pytest.approx(0.299 * r + 0.587 * g + 0.114 * b, abs=1e-6)
    assert s["max_diff_vs_conv"] < 1e-5
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_mix_is_a_per_pixel_matrix_product_and_a_conv2d():
    g = torch.Generator().manual_seed(0)
    x, w = torch.rand(3, 10, 7, generator=g), torch.randn(5, 3, generator=g)
    out = mix_channels(x, w)
    assert out["max_diff_vs_conv"] < 1e-5
    ref = F.conv2d(x[None], w[:, :, None, None])[0]
    assert torch.allclose(out["output"], ref, atol=1e-5)
    for h, c in ((0, 0), (4, 6), (9, 2)):
        assert torch.allclose(out["output"][:, h, c], w @ x[:, h, c], atol=1e-6)
    # five linear mixes of three channels span three dimensions; a ReLU breaks that
    assert out["rank"] == 3 and mix_channels(x, w, relu=True)["rank"] == 5
    assert torch.equal(mix_channels(x, w, relu=True)["output"], out["output"].clamp(min=0))
    assert out["params"] == out["macs_per_pixel"] == 15


def test_matrix_text_round_trips_and_rejects_garbage():
    for m in PRESETS.values():
        assert torch.allclose(parse_matrix(format_matrix(m)), torch.tensor(m, dtype=torch.float32))
    assert parse_matrix("1, 0, 0; 0 1 0\n\n0 0 1").shape == (3, 3)
    for bad, match in (("", "type the mixing"), ("1 2", "needs 3"), ("1 x 2", "not a list"),
                       ("nan 0 0", "finite"), ("1e39 0 0", "finite"),
                       (";".join(["1 0 0"] * 7), "at most 6")):
        with pytest.raises(ValueError, match=match):
            parse_matrix(bad)


def test_preset_fills_the_text_and_typing_makes_it_custom(explorer):
    c = explorer.controls
    c["preset"].value = "swap red and blue"
    assert c["weights"].value == format_matrix(PRESETS["swap red and blue"])
    assert explorer.renders == 2                       # one redraw for the two changes
    s = explorer.state
    assert s["y_pixel"] == pytest.approx(s["x_pixel"][::-1]) and s["rank"] == 3
    c["weights"].value = "1 -1 0"
    assert c["preset"].value == "custom" and explorer.renders == 3
    assert explorer.state["c_out"] == 1
    c["relu"].value = True
    s = explorer.state
    assert s["y_pixel"][0] == pytest.approx(max(0.0, s["x_pixel"][0] - s["x_pixel"][1]), abs=1e-6)
    c["weights"].value = "oops"
    assert "not a list of numbers" in explorer.state["error"]
    c["row"].value, c["col"].value = 0, 31
    c["preset"].value = "3 -> 5 channels"              # back to a valid matrix
    assert explorer.state["error"] is None and explorer.state["c_out"] == 5
    assert (explorer.state["row"], explorer.state["col"]) == (0, 31)
    c["image"].value = "rocket"
    assert explorer.state["image"] == "rocket" and explorer.state["error"] is None
