"""RingAllReduceExplorer: the pure drawing function, then the widget driven by its controls."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from cnnbook.widgets.ring_allreduce import RingAllReduceExplorer, draw_ring


def test_draw_ring_counts_complete_chunks():
    fig, state = draw_ring(4, 3, 1.0)
    plt.close(fig)
    assert state["phase"] == "all-gather" and state["complete_cells"] == 4
    fig, state = draw_ring(4, 6, 1.0)
    plt.close(fig)
    assert state["phase"] == "finished" and state["complete_cells"] == 16 and state["moves"] == []
    fig, state = draw_ring(3, 0, 2.0)
    plt.close(fig)
    assert state["complete_cells"] == 0 and len(state["moves"]) == 3
    assert state["ring_mb_per_rank"] == pytest.approx(2 * 2 / 3 * 2.0)
    with pytest.raises(ValueError, match="steps"):
        draw_ring(3, 5)


def test_explorer_follows_its_controls():
    e = RingAllReduceExplorer(ranks=2, step=0)
    assert e.state["ranks"] == 2 and e.state["error"] is None
    e.controls["step"].value = 2
    assert e.state["complete_cells"] == 4 and "MB" in e.message.value
    e.controls["step"].value = 3   # a ring of 2 has only 2 steps: a message, not a crash
    assert "pick step 0 to 2" in e.state["error"] and not e.state["unexpected"]
    e.controls["ranks"].value = 5
    assert e.state["steps"] == 8 and e.state["complete_cells"] == 0


def test_every_control_through_its_extremes():
    e = RingAllReduceExplorer()
    for name, values in {"ranks": [2, 8], "step": [0, 14],
                         "megabytes": [0.0, 1e12, math.nan, math.inf, -1.0]}.items():
        old = e.controls[name].value
        for v in values:
            e.controls[name].value = v
            assert not e.state.get("unexpected"), (name, v, e.state)
        e.controls[name].value = old
    e.controls["megabytes"].value = math.nan
    assert "finite" in e.state["error"]
