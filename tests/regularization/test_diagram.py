import matplotlib.pyplot as plt

from cnnbook.regularization.diagram import LEVELS, plot_three_levels


def test_three_levels_all_named_in_the_picture():
    ax = plot_three_levels()
    texts = " ".join(t.get_text() for t in ax.texts)
    assert list(LEVELS) == ["data-level", "model-level", "training-level"]
    for level, (_, items) in LEVELS.items():
        assert level in texts and all(item in texts for item in items)
    assert len(ax.patches) == 3 + 2  # three boxes, two arrows
    plt.close(ax.figure)
