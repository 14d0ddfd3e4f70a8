"""TransferCurveExplorer: controls drive the label-budget view; state says what it shows."""
import pytest

from cnnbook.transfer.curves import label_table
from cnnbook.widgets.transfer import TransferCurveExplorer


def table():
    rows = [{"method": m, "per_class": n, "acc": a} for m, accs in
            {"fine-tune": (0.5, 0.7, 0.85), "scratch": (0.25, 0.4, 0.6)}.items()
            for n, a in zip((10, 100, 1000), accs)]
    return label_table(rows)


def test_default_view_and_budget_control():
    w = TransferCurveExplorer(table())
    assert w.state["error"] is None and w.state["per_class"] == 100 and w.image.value
    assert w.state["gain_points"] == pytest.approx(30.0)
    w.controls["per_class"].value = 10
    assert w.state["per_class"] == 10 and w.state["scratch_needs"] == pytest.approx(10 ** 2.5)


def test_no_method_chosen_is_a_message():
    w = TransferCurveExplorer(table())
    w.controls["methods"].value = ()
    assert "at least one method" in w.state["error"] and not w.state["unexpected"]
    w.controls["methods"].value = ("scratch",)
    assert w.state["error"] is None and list(w.state["acc"]) == ["scratch"]


def test_every_control_through_its_extremes():
    w = TransferCurveExplorer(table())
    for v in ((), ("fine-tune",), ("fine-tune", "scratch")):
        w.controls["methods"].value = v
        assert not w.state.get("unexpected")
    for v in (10, 1000):
        w.controls["per_class"].value = v
        assert not w.state.get("unexpected")
    for v in (True, False):
        w.controls["log_x"].value = v
        assert not w.state.get("unexpected")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        TransferCurveExplorer(None)
    with pytest.raises(ValueError, match="measured budgets"):
        TransferCurveExplorer(table(), per_class=50)
