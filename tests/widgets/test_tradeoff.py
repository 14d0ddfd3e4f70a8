import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from cnnbook.widgets.tradeoff import TradeoffExplorer, front_labels, pareto_set, tradeoff_plot

BETTER = {"cost": "lower", "acc": "higher", "ms": "lower", "speed": "higher", "params": "lower"}


def _toy() -> pd.DataFrame:
    """Made by hand. Cost (lower is better) against accuracy (higher is better):
    a, b, d are on the front; c is beaten by b, e and f by d; g is b's twin (neither beats
    the other, so both stay); h has no cost (missing: never on the front, beats nothing)."""
    return pd.DataFrame({
        "architecture": list("abcdefgh"),
        "cost": [1.0, 2.0, 3.0, 4.0, 4.0, 5.0, 2.0, math.nan],
        "acc": [0.5, 0.7, 0.6, 0.8, 0.75, 0.8, 0.7, 0.99],
        "ms": [9.0, 3.0, 1.0, 2.0, 5.0, 1.0, 4.0, 0.5],
        "note": ["x"] * 8,   # not an axis: no direction given
    })


def _brute(xs, ys, bx, by):
    """The definition, one pair at a time, in plain Python."""
    sign = {"higher": 1.0, "lower": -1.0}
    pts = [(sign[bx] * a, sign[by] * b) for a, b in zip(xs, ys)]
    ok = [math.isfinite(a) and math.isfinite(b) for a, b in pts]
    out = []
    for i, (a, b) in enumerate(pts):
        beaten = any(ok[j] and j != i and c >= a and d >= b and (c > a or d > b)
                     for j, (c, d) in enumerate(pts))
        out.append(ok[i] and not beaten)
    return out


def test_pareto_set_on_the_hand_made_table():
    t = _toy()
    front = pareto_set(t.cost, t.acc, "lower", "higher")
    assert list(t.architecture[front]) == ["a", "b", "d", "g"]
    # cost against time, both lower is better: a cheap slow one and fast dearer ones
    assert list(t.architecture[pareto_set(t.cost, t.ms, "lower", "lower")]) == ["a", "b", "c"]
    # flip the directions and the front flips: f beats d (dearer, as accurate)
    assert list(t.architecture[pareto_set(t.cost, t.acc, "higher", "higher")]) == ["f"]
    assert list(t.architecture[pareto_set(t.cost, t.acc, "higher", "lower")]) == \
        ["a", "c", "e", "f"]


@pytest.mark.parametrize("bx,by", list(itertools.product(("higher", "lower"), repeat=2)))
def test_pareto_set_equals_the_definition_on_random_data(bx, by):
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 30):
        xs = rng.integers(0, 6, n).astype(float)       # few values: many ties
        ys = rng.integers(0, 6, n).astype(float)
        xs[rng.random(n) < 0.1] = np.nan
        ys[rng.random(n) < 0.1] = np.inf
        assert list(pareto_set(xs, ys, bx, by)) == _brute(xs, ys, bx, by)


def test_pareto_set_matches_the_sorted_sweep_without_ties():
    """The textbook sweep (sort by cost, keep each new best score) on distinct values."""
    rng = np.random.default_rng(1)
    xs, ys = rng.permutation(50).astype(float), rng.permutation(50).astype(float)
    sweep, best = set(), -math.inf
    for i in np.argsort(xs):
        if ys[i] > best:
            sweep.add(int(i))
            best = ys[i]
    assert set(np.flatnonzero(pareto_set(xs, ys))) == sweep


def test_pareto_set_refuses_bad_arguments():
    with pytest.raises(ValueError, match="higher' or 'lower"):
        pareto_set([1], [1], "up", "higher")
    with pytest.raises(ValueError, match="same length"):
        pareto_set([1, 2], [1])


def test_front_labels_are_ordered_from_the_better_end():
    t = _toy()
    assert front_labels(t, "cost", "acc", BETTER) == ["a", "b", "g", "d"]
    assert front_labels(t, "cost", "acc", BETTER, selected=["c", "e", "f"]) == ["c", "e", "f"]
    assert front_labels(t, "acc", "cost", {"acc": "higher", "cost": "lower"}) == \
        ["d", "b", "g", "a"]


def test_tradeoff_plot_state():
    fig, s = tradeoff_plot(_toy(), "cost", "acc", BETTER, log_x=True)
    assert s["front"] == ["a", "b", "g", "d"] and s["missing"] == ["h"]
    assert s["shown"] == list("abcdefg")
    assert s["dominated_by"] == {"c": ["b", "g"], "e": ["d"], "f": ["d"]}
    assert (s["better_x"], s["better_y"], s["same_axis"]) == ("lower", "higher", False)
    assert "not plotted, no value: h" in fig.axes[0].get_title()
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "linear"
    import matplotlib.pyplot as plt
    plt.close(fig)


@pytest.fixture
def explorer():
    other = pd.DataFrame({"architecture": ["p", "q", "r"], "params": [3.0, 1.0, 2.0],
                          "acc": [0.9, 0.8, 0.7]})
    return TradeoffExplorer({"toy": _toy(), "other": other}, BETTER)


def test_first_render_and_defaults(explorer):
    s, c = explorer.state, explorer.controls
    assert explorer.renders == 1 and s["error"] is None
    assert (s["x"], s["y"]) == ("cost", "acc")   # the first cost and the first score
    assert list(c["x"].options) == ["cost", "acc", "ms"]   # "note" has no direction
    assert c["architectures"].value == tuple("abcdefgh")
    assert s["front"] == ["a", "b", "g", "d"] and s["missing"] == ["h"]
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_the_front_depends_on_who_is_shown(explorer):
    c = explorer.controls
    c["architectures"].value = ("c", "d", "e", "f")
    assert explorer.state["front"] == ["c", "d"]
    c["architectures"].value = ("c", "e", "f")     # without d, e and f join the front
    assert explorer.state["front"] == ["c", "e", "f"] and explorer.state["error"] is None


def test_empty_one_and_missing_selections(explorer):
    c = explorer.controls
    before = explorer.image.value
    c["architectures"].value = ()
    assert "choose at least one" in explorer.state["error"] and explorer.message.value
    assert explorer.image.value == before            # the last picture stays
    c["architectures"].value = ("e",)
    assert explorer.state["front"] == ["e"] and explorer.state["dominated_by"] == {}
    c["architectures"].value = ("h",)                 # its only row has no cost
    assert "none of the chosen architectures" in explorer.state["error"]
    c["architectures"].value = ("b", "h")
    assert explorer.state["front"] == ["b"] and explorer.state["missing"] == ["h"]


def test_same_column_on_both_axes(explorer):
    explorer.controls["y"].value = "cost"
    s = explorer.state
    assert s["error"] is None and s["same_axis"] and s["front"] == ["a"]
    explorer.controls["x"].value = "acc"
    explorer.controls["y"].value = "acc"
    assert explorer.state["front"] == ["h"]   # h has an accuracy, and the best


def test_log_scale_over_zero_is_explained():
    t = _toy().assign(cost=[0.0, 2, 3, 4, 4, 5, 2, 1])
    e = TradeoffExplorer(t, BETTER, log_x=False)
    assert e.state["error"] is None and e.state["front"][0] == "a"
    e.controls["log_x"].value = True
    assert "log scale needs positive values" in e.state["error"] and "'cost'" in e.state["error"]
    assert not e.state["unexpected"]


def test_changing_the_table_offers_its_columns_and_architectures(explorer):
    c = explorer.controls
    renders = explorer.renders
    c["data"].value = "other"
    assert explorer.renders == renders + 1          # one picture, not one per control synced
    assert list(c["x"].options) == ["params", "acc"] and c["x"].value == "params"
    assert c["y"].value == "acc"                     # kept: the new table has it
    assert c["architectures"].value == ("p", "q", "r")
    assert explorer.state["front"] == ["q", "p"] and explorer.state["error"] is None
    c["data"].value = "toy"
    assert c["x"].value == "cost" and explorer.state["front"] == ["a", "b", "g", "d"]


def test_every_choice_draws_or_explains(explorer):
    """Every table, pair of axes and scale, and the selection's extremes: no exception
    escapes, and nothing goes wrong unnoticed (the base class marks a bug 'unexpected')."""
    c = explorer.controls
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for data in c["data"].options:
            c["data"].value = data
            names = c["architectures"].options
            for chosen in ((), names[:1], names[-1:], names):
                c["architectures"].value = tuple(chosen)
                assert not explorer.state.get("unexpected"), explorer.state
            c["architectures"].value = tuple(names)
            c["log_x"].value, c["log_y"].value = False, False
            c["log_x"].value, c["log_y"].value = True, True   # every column here is positive
            for x, y in itertools.product(c["x"].options, c["y"].options):
                c["x"].value, c["y"].value = x, y
                s = explorer.state
                assert not s.get("unexpected"), s
                assert s["error"] is None and (s["x"], s["y"]) == (x, y)
                assert set(s["front"]) <= set(s["shown"])


def test_non_numeric_values_count_as_missing():
    t = _toy().astype({"cost": object})
    t.loc[2, "cost"] = "n/a"
    t.loc[3, "cost"] = None
    _, s = tradeoff_plot(t, "cost", "acc", BETTER)
    assert s["missing"] == ["c", "d", "h"] and s["front"] == ["a", "b", "g", "e", "f"]


@pytest.mark.parametrize("kwargs,message", [
    ({"tables": {}}, "at least one table"),
    ({"better": {"cost": "less"}}, "'higher' or 'lower'"),
    ({"x": "note"}, "x must be one of"),
    ({"data": "nope"}, "no table 'nope'"),
    ({"tables": pd.DataFrame({"architecture": ["a", "a"], "cost": [1, 2]})}, "repeats a name"),
    ({"tables": pd.DataFrame({"architecture": ["a"], "note": [1]})}, "at least one column"),
    ({"label": "model"}, "'model' column"),
])
def test_constructor_refuses_bad_input(kwargs, message):
    args = {"tables": _toy(), "better": BETTER, **kwargs}
    with pytest.raises(ValueError, match=message):
        TradeoffExplorer(**args)


def test_tradeoff_plot_refuses_unknown_columns_and_labels():
    with pytest.raises(ValueError, match="no column 'gmacs'"):
        tradeoff_plot(_toy(), "gmacs", "acc", BETTER)
    with pytest.raises(ValueError, match="higher or a lower 'note'"):
        tradeoff_plot(_toy(), "note", "acc", BETTER)
    with pytest.raises(ValueError, match="no such architecture in the table: z"):
        tradeoff_plot(_toy(), "cost", "acc", BETTER, selected=["a", "z"])
