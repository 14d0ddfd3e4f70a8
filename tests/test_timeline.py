import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402

from cnnbook.timeline import LANES, MILESTONES, milestones, plot_timeline  # noqa: E402


def test_milestones_span_lenet_to_convnext_in_order():
    rows = milestones()
    years = [m.year for m in rows]
    assert years == sorted(years)
    names = [m.name for m in rows]
    assert names.index("LeNet") < names.index("AlexNet") < names.index("ResNet") < names.index("ViT")
    assert rows[-1].name == "ConvNeXt" and {m.lane for m in MILESTONES} == set(LANES)
    # every Part II chapter has its architecture on the timeline
    assert {"05", "06", "07", "08", "09", "10", "11", "12", "13"} <= {m.chapter for m in rows}


def test_lanes_filter_and_reject_unknown():
    assert all(m.lane == "efficiency" for m in milestones("efficiency"))
    with pytest.raises(ValueError, match="unknown lane"):
        milestones("poetry")


def test_plot_has_one_marker_per_milestone():
    fig = plot_timeline()
    ax = fig.axes[0]
    markers = [line for line in ax.lines if line.get_marker() == "o" and len(line.get_xdata())]
    assert len(markers) == len(MILESTONES)
    assert len(ax.texts) == len(MILESTONES)
    with pytest.raises(ValueError):
        plot_timeline([])
