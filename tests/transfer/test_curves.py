"""Accuracy-vs-labels tables and the scratch curve read backwards."""
import math

import numpy as np
import pandas as pd
import pytest

from cnnbook.transfer.curves import explore_label_budget, label_equivalent, label_table

ROWS = [{"method": m, "per_class": n, "acc": a} for m, accs in
        {"fine-tune": (0.5, 0.7, 0.85), "scratch": (0.25, 0.4, 0.6),
         "feature extraction": (0.45, 0.6, 0.65)}.items()
        for n, a in zip((10, 100, 1000), accs)]


def test_label_table_pivots_rows():
    t = label_table(ROWS)
    assert list(t.index) == [10, 100, 1000] and t.loc[100, "scratch"] == 0.4
    with pytest.raises(ValueError, match="missing"):
        label_table([{"method": "x", "acc": 1}])


def test_label_equivalent_interpolates_in_log_labels():
    s = pd.Series([0.4, 0.6], index=[10, 100])
    assert label_equivalent(s, 0.5) == pytest.approx(math.sqrt(10 * 100))
    assert label_equivalent(s, 0.3) == 10.0
    assert label_equivalent(s, 0.61) is None
    assert label_equivalent(s, math.nan) is None
    # a dip is treated as noise: the running maximum is used
    # (0.4, 0.35, 0.6) counts as (0.4, 0.4, 0.6): 0.5 lies halfway from 10 to 100 labels
    assert label_equivalent(pd.Series([0.4, 0.35, 0.6], index=[1, 10, 100]), 0.5) == pytest.approx(
        10 ** 1.5, rel=1e-6)


def test_against_numpy_interp_on_random_monotone_curves():
    rng = np.random.default_rng(0)
    for _ in range(50):
        xs = np.unique(rng.integers(1, 10_000, size=4))
        ys = np.sort(rng.uniform(0, 1, size=len(xs)))
        if len(np.unique(ys)) < len(ys):
            continue
        target = rng.uniform(ys[0], ys[-1])
        want = math.exp(np.interp(target, ys, np.log(xs)))
        assert label_equivalent(pd.Series(ys, index=xs), target) == pytest.approx(want)


def test_explore_label_budget_state():
    fig, state = explore_label_budget(label_table(ROWS), ["fine-tune", "scratch"], 10)
    assert state["acc"] == {"fine-tune": 0.5, "scratch": 0.25}
    assert state["gain_points"] == pytest.approx(25.0)
    assert state["scratch_needs"] == pytest.approx(10 ** 2.5)   # 0.5: halfway from 0.4 to 0.6
    _, state = explore_label_budget(label_table(ROWS), ["scratch"], 1000, log_x=False)
    assert state["scratch_needs"] is None                             # 0.85 is never reached
    for bad in (([], 10), (["nope"], 10), (["scratch"], 7)):
        with pytest.raises(ValueError):
            explore_label_budget(label_table(ROWS), *bad)
