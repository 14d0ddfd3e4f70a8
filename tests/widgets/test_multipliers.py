import pytest
import torch

from cnnbook.models.mobilenet import mobilenet_v1
from cnnbook.profiling import count_macs, count_params
from cnnbook.widgets.multipliers import MultiplierExplorer, multiplier_table


@pytest.fixture
def explorer():
    return MultiplierExplorer(alpha=0.25, resolution=64, alphas=(0.25, 0.5, 1.0),
                              resolutions=(32, 64, 224), repeats=1)


def test_table_equals_the_library_counted_at_each_size():
    table = multiplier_table((0.25, 0.75), (96, 160), in_channels=1, num_classes=10)
    for _, row in table.iterrows():
        with torch.device("meta"):
            model = mobilenet_v1(row.alpha, in_channels=1, num_classes=10)
        r = int(row.resolution)
        assert row.macs == count_macs(model, (1, 1, r, r))
        assert row.params == count_params(model)


def test_table_matches_the_paper():
    """MobileNet V1 paper, Tables 6 and 7: millions of multiply-adds and parameters."""
    t = multiplier_table((1.0, 0.5), (224, 128)).set_index(["alpha", "resolution"])
    assert t.loc[(1.0, 224), "macs"] / 1e6 == pytest.approx(569, rel=0.01)
    assert t.loc[(1.0, 128), "macs"] / 1e6 == pytest.approx(186, rel=0.01)
    assert t.loc[(0.5, 224), "macs"] / 1e6 == pytest.approx(149, rel=0.01)
    assert t.loc[(1.0, 224), "params"] / 1e6 == pytest.approx(4.2, abs=0.05)
    assert t.loc[(1.0, 224), "rule"] == t.loc[(1.0, 224), "macs"]
    assert t.loc[(0.5, 128), "rule"] == pytest.approx(t.loc[(1.0, 224), "macs"] / 4 * (128 / 224) ** 2)


@pytest.mark.parametrize("kwargs,message", [({"alphas": (0.0,)}, "alpha"),
                                            ({"resolutions": (100,)}, "multiple of 32"),
                                            ({"resolutions": ()}, "at least one")])
def test_table_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        multiplier_table(**kwargs)


def test_first_render_and_state(explorer):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    assert (s["alpha"], s["resolution"]) == (0.25, 64)
    ref = multiplier_table((0.25,), (64,)).iloc[0]
    assert s["macs"] == ref.macs and s["params"] == ref.params
    # the rounding to multiples of 8 keeps thin networks above the quadratic rule
    assert s["macs_over_rule"] > 1.0
    assert s["latency_ms"] > 0 and s["timed_settings"] == 1
    assert s["gmacs_per_s"] == pytest.approx(s["macs"] / s["latency_ms"] / 1e6)
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_resolution_changes_macs_not_parameters(explorer):
    before = dict(explorer.state)
    explorer.controls["resolution"].value = 32
    after = explorer.state
    assert after["params"] == before["params"]
    assert after["macs"] < before["macs"]
    assert explorer.renders == 2 and after["timed_settings"] == 2


def test_each_setting_is_timed_once(explorer):
    first = explorer.state["latency_ms"]
    explorer.controls["alpha"].value = 0.5
    assert explorer.state["timed_settings"] == 2 and explorer.state["params"] > 0
    explorer.controls["alpha"].value = 0.25
    assert explorer.state["latency_ms"] == first and explorer.state["timed_settings"] == 2


def test_timing_can_be_switched_off(explorer):
    explorer.controls["time_it"].value = False
    explorer.controls["alpha"].value = 1.0
    assert explorer.state["latency_ms"] is None and explorer.state["gmacs_per_s"] is None
    assert explorer.state["timed_settings"] == 1 and explorer.state["error"] is None


def test_a_setting_outside_the_options_is_refused():
    with pytest.raises(ValueError, match="alpha must be one of"):
        MultiplierExplorer(alpha=0.3)
