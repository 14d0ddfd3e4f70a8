import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnbook.widgets.batch_stats import BatchStatsExplorer, batch_statistics, image_moments


def _acts(seed=0):
    """Correlated maps (a blurred random field per image, plus a per-image offset) and a
    linear layer's features."""
    g = torch.Generator().manual_seed(seed)
    field = F.avg_pool2d(torch.randn(300, 3, 12, 12, generator=g), 3, 1, 1)
    conv = field + 0.5 * torch.randn(300, 3, 1, 1, generator=g) + torch.tensor([0.0, 2.0, -1.0]).view(1, 3, 1, 1)
    fc = torch.randn(300, 5, generator=g) * torch.arange(1, 6)
    return {"conv": conv, "fc": fc}


@pytest.fixture
def explorer():
    return BatchStatsExplorer(_acts(), batch_size=8, n_batches=100)


def test_first_render(explorer):
    s = explorer.state
    assert s["error"] is None and explorer.renders == 1
    assert s["layer"] == "conv" and s["batch_size"] == 8 and s["per_image"] == 144
    conv = _acts()["conv"][:, 0]
    assert s["population_mean"] == pytest.approx(conv.mean().item())
    assert s["population_var"] == pytest.approx(conv.var(unbiased=False).item(), rel=1e-6)
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_batch_statistics_are_batch_norms_and_the_spread_is_predicted():
    acts = _acts()["conv"].double()
    out = batch_statistics(image_moments(acts), 16, channel=1, n_batches=2000, probe=3)
    for row in range(3):   # each batch's statistics are those batch norm computes
        x = acts[out["batches"][row], 1]
        assert out["batch_means"][row] == pytest.approx(x.mean().item())
        assert out["batch_vars"][row] == pytest.approx(x.var(unbiased=False).item())
        # the probe's largest activation, normalised by nn.BatchNorm2d in training mode
        batch = acts[out["probe_batches"][row]]
        y = F.batch_norm(batch, None, None, training=True, eps=1e-5)[0, 1]
        assert out["probe_batches"][row][0] == 3
        assert out["probe_normalised"][row] == pytest.approx(y[batch[0, 1] == batch[0, 1].max()].item())
    bn = torch.nn.BatchNorm2d(3, affine=False).double().eval()   # eval mode: population stats
    bn.running_mean.copy_(acts.mean((0, 2, 3)))
    bn.running_var.copy_(acts.var((0, 2, 3), unbiased=False))
    assert out["probe_at_eval"] == pytest.approx(bn(acts[3:4])[0, 1].max().item())
    assert out["mean_spread"] == pytest.approx(out["mean_spread_predicted"], rel=0.1)
    # blurred maps: a 12 x 12 map is worth far fewer than 144 independent values
    assert out["effective_per_image"] < 144 / 4
    assert out["mean_spread"] > 2 * out["mean_spread_iid"]
    spreads = [out["curve"][b][0] for b in (2, 8, 32, 128)]
    assert all(a > b for a, b in zip(spreads, spreads[1:]))


def test_linear_features_are_independent_and_a_batch_of_one_is_refused():
    m = image_moments(_acts()["fc"])
    assert m["per_image"] == 1
    out = batch_statistics(m, 32, channel=4, n_batches=1500)
    assert out["effective_per_image"] == pytest.approx(1.0)
    assert out["mean_spread"] == pytest.approx(out["mean_spread_iid"] * np.sqrt(268 / 299), rel=0.1)
    with pytest.raises(ValueError, match="batch of one"):
        batch_statistics(m, 1)


def test_explorer_follows_its_controls(explorer):
    c = explorer.controls
    small = explorer.state["probe_spread"]
    c["batch_size"].value = 128
    assert explorer.state["probe_spread"] < small
    assert explorer.state["mean_spread"] < explorer.state["mean_spread_iid"] * 100
    c["layer"].value = "fc"
    assert explorer.state["per_image"] == 1 and explorer.state["error"] is None
    c["batch_size"].value = 1
    assert "batch of one" in explorer.state["error"]
    c["layer"].value = "conv"                  # after a convolution a batch of one runs
    assert explorer.state["error"] is None and explorer.state["probe_spread"] == pytest.approx(0)
    c["channel"].value = 4                     # conv has 3 channels, fc 5
    assert "3 channels" in explorer.state["error"]
    c["probe"].value = 7
    c["channel"].value = 2
    assert explorer.state["probe"] == 7 and explorer.state["error"] is None


def test_bad_input_is_a_clear_message():
    m = image_moments(_acts()["conv"])
    with pytest.raises(ValueError, match="batch size"):
        batch_statistics(m, 301)
    with pytest.raises(ValueError, match="constant"):
        batch_statistics(image_moments(torch.ones(10, 2, 3, 3)), 4)
    with pytest.raises(ValueError, match="NaN"):
        image_moments(torch.tensor([[1.0], [float("nan")]]))
    with pytest.raises(ValueError, match="N >= 2"):
        image_moments(torch.ones(1, 3))
