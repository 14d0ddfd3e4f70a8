"""BatchStatsExplorer: how far a mini-batch's mean and variance stray from the population's.

Batch norm normalises with the statistics of the current batch, which are estimates of the
statistics of the whole data (what the running averages converge to and eval mode uses).
``batch_statistics`` draws many random batches of a layer's activations (one channel of a
convolution, or one unit of a linear layer) and measures how those estimates scatter with
the batch size, and what the scatter does to a fixed image's normalised activation: in
training mode its value depends on which other images share its batch.

The spread of the batch mean is also predicted: a batch's mean is the mean of its images'
map means, so its standard deviation is ``sd(image means) / sqrt(B)`` (times the finite
population correction ``sqrt((N - B) / (N - 1))``). Beside it is what it would be if the
``B * H * W`` values of a batch were independent, ``sigma / sqrt(B * H * W)``: the values
of one feature map are correlated, so an image is worth fewer independent values than it
has pixels (``effective_per_image``).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}


def image_moments(acts) -> dict:
    """Per image and channel: the map's mean, mean of squares, largest value, and the map's
    number of values (``H * W``, 1 after a linear layer). ``acts`` is (N, C, ...)."""
    x = torch.as_tensor(acts).detach().to(torch.float64).cpu()
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"activations must be (N, C, ...) with N >= 2 images, got "
                         f"{tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("the activations contain NaN or inf")
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    return {"mean": flat.mean(-1).numpy(), "sq": (flat * flat).mean(-1).numpy(),
            "max": flat.amax(-1).numpy(), "per_image": flat.shape[-1]}


def batch_statistics(moments: dict, batch_size: int, channel: int = 0, n_batches: int = 200,
                     probe: int = 0, seed: int = 0, eps: float = 1e-5, sizes=None) -> dict:
    """Draw ``n_batches`` random batches of ``batch_size`` images (without replacement) and
    measure their statistics for ``channel`` against the population's (all N images).

    ``moments`` comes from ``image_moments``. Returns the batch means and (biased, as batch
    norm uses them) variances, their spread, the predictions described in the module
    docstring, the spread at each of ``sizes`` (default: powers of two up to ``batch_size``
    and beyond, within N), and the normalised value of image ``probe``'s largest activation
    in batches that contain it, against its value under the population statistics (eval
    mode, once the running averages have converged). ``batches`` and ``probe_batches`` are
    the image indices drawn, one row per batch (the probe first).
    """
    m, q, peak, hw = moments["mean"], moments["sq"], moments["max"], moments["per_image"]
    n, channels = m.shape
    if not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
        raise ValueError(f"the batch size must be a whole number from 1 to the {n} images "
                         f"available, got {batch_size!r}")
    if not isinstance(channel, (int, np.integer)) or not 0 <= channel < channels:
        raise ValueError(f"this layer has {channels} channels: choose one from 0 to "
                         f"{channels - 1}, got {channel!r}")
    if not isinstance(probe, (int, np.integer)) or not 0 <= probe < n:
        raise ValueError(f"the probe image must be one of the {n} images, got {probe!r}")
    if batch_size == 1 and hw == 1:
        raise ValueError("a batch of one cannot be normalised after a linear layer: the "
                         "variance of a single value is 0 (PyTorch refuses it in training mode)")
    m, q, x = m[:, channel], q[:, channel], float(peak[probe, channel])
    mu = float(m.mean())
    var = float(q.mean() - mu * mu)
    if not var > 1e-12 * max(1.0, mu * mu):
        raise ValueError(f"channel {channel} is constant over the {n} images: there is no "
                         "spread to normalise")
    rng = np.random.default_rng(seed)
    if sizes is None:
        sizes = sorted({2 ** k for k in range(1, 12) if 2 ** k <= n} | {int(batch_size)} - {1})
    biggest = max([int(batch_size), *sizes])
    if biggest > n:
        raise ValueError(f"batch sizes must be at most the {n} images available")
    # one random permutation per batch: its first B images form a batch of size B, so the
    # cumulative sums give every batch size at once
    perm = rng.random((n_batches, n)).argsort(axis=1)[:, :biggest]
    cm, cq = np.cumsum(m[perm], axis=1), np.cumsum(q[perm], axis=1)

    def stats(b):
        mean = cm[:, b - 1] / b
        return mean, np.maximum(cq[:, b - 1] / b - mean * mean, 0.0)

    b_mean, b_var = stats(int(batch_size))
    sd_images = float(m.std())

    def predicted(b):
        return sd_images / np.sqrt(b) * np.sqrt((n - b) / (n - 1))

    curve = {int(b): (float(stats(b)[0].std()), float(stats(b)[1].std() / var)) for b in sizes}
    # batches that contain the probe: the probe plus B - 1 of the others
    others = np.delete(np.arange(n), probe)
    pick = others[rng.random((n_batches, n - 1)).argsort(axis=1)[:, :int(batch_size) - 1]]
    p_mean = (m[probe] + m[pick].sum(1)) / batch_size
    p_var = np.maximum((q[probe] + q[pick].sum(1)) / batch_size - p_mean ** 2, 0.0)
    normalised = (x - p_mean) / np.sqrt(p_var + eps)
    at_eval = (x - mu) / np.sqrt(var + eps)
    return {
        "batch_size": int(batch_size), "channel": int(channel), "n_images": n,
        "per_image": int(hw), "n_batches": int(n_batches),
        "population_mean": mu, "population_var": var,
        "batch_means": b_mean, "batch_vars": b_var,
        "mean_spread": float(b_mean.std()), "mean_spread_predicted": float(predicted(batch_size)),
        "mean_spread_iid": float(np.sqrt(var / (batch_size * hw))),
        "var_spread_relative": float(b_var.std() / var),
        "effective_per_image": float(var / sd_images ** 2) if sd_images > 0 else float("inf"),
        "curve": curve, "predicted_curve": {b: float(predicted(b)) for b in curve},
        "batches": perm[:, :int(batch_size)],
        "probe_batches": np.concatenate([np.full((n_batches, 1), probe), pick], axis=1),
        "probe": int(probe), "probe_value": x, "probe_normalised": normalised,
        "probe_at_eval": float(at_eval), "probe_spread": float(normalised.std()),
        "probe_mean_shift": float(normalised.mean() - at_eval),
    }


class BatchStatsExplorer(Explorer):
    """Choose a layer (``acts`` maps names to activations (N, C, ...) recorded before the
    batch norm layer), a channel, the batch size and the image whose activation is
    followed. ``n_batches`` random batches are drawn per setting, always with the same seed.
    """

    tight_png = False

    def __init__(self, acts: dict, layer: str | None = None, channel: int = 0,
                 batch_size: int = 16, probe: int = 0, n_batches: int = 200,
                 max_batch: int = 256, max_probe: int = 20):
        if not acts:
            raise ValueError("BatchStatsExplorer needs at least one layer's activations")
        self.moments = {name: image_moments(a) for name, a in acts.items()}
        self.n_batches = n_batches
        n = min(mm["mean"].shape[0] for mm in self.moments.values())
        channels = max(mm["mean"].shape[1] for mm in self.moments.values())
        slider = dict(continuous_update=False, style=_STYLE)
        controls = {
            "layer": widgets.Dropdown(options=list(acts), value=layer or next(iter(acts)),
                                      description="layer", style=_STYLE),
            "channel": widgets.IntSlider(value=channel, min=0, max=channels - 1,
                                         description="channel / unit", **slider),
            "batch_size": widgets.IntSlider(value=batch_size, min=1, max=min(max_batch, n),
                                            description="batch size B", **slider),
            "probe": widgets.IntSlider(value=probe, min=0, max=min(max_probe, n) - 1,
                                       description="followed image", **slider),
        }
        super().__init__(controls)

    def compute(self, layer, channel, batch_size, probe):
        mom = self.moments[layer]
        out = batch_statistics(mom, batch_size, channel, self.n_batches, probe)
        mu, sigma = out["population_mean"], np.sqrt(out["population_var"])
        fig, (ax_s, ax_c, ax_p) = plt.subplots(1, 3, figsize=(13, 3.8))
        ax_s.scatter(out["batch_means"], np.sqrt(out["batch_vars"]), s=8, alpha=0.5)
        ax_s.axvline(mu, color="k", lw=1)
        ax_s.axhline(sigma, color="k", lw=1, label="population")
        ax_s.set_xlabel("batch mean")
        ax_s.set_ylabel("batch standard deviation")
        ax_s.set_title(f"{layer}[{channel}], {out['n_batches']} batches of {batch_size}",
                       fontsize=10)
        ax_s.legend(fontsize=8, loc="upper right")
        sizes = np.array(sorted(out["curve"]))
        measured = np.array([out["curve"][b][0] for b in sizes]) / sigma
        ax_c.loglog(sizes, measured, "o", ms=4, label="sd of batch mean (measured)")
        ax_c.loglog(sizes, np.array([out["predicted_curve"][b] for b in sizes]) / sigma, "-",
                    lw=1, label="predicted from image means")
        ax_c.loglog(sizes, 1 / np.sqrt(sizes * out["per_image"]), "--", lw=1,
                    label="if all B·H·W values were independent")
        rel_var = np.array([out["curve"][b][1] for b in sizes])
        ax_c.loglog(sizes, rel_var, "s", ms=4, label="sd of batch variance (measured)")
        ax_c.axvline(batch_size, color="gray", ls=":", lw=1)
        ax_c.set_xlabel("batch size B")
        ax_c.set_ylabel("spread / population value (σ or σ²)")
        ax_c.set_title("spread of the batch statistics", fontsize=10)
        ax_c.legend(fontsize=7, loc="lower left")
        ax_c.grid(alpha=0.3, which="major")
        ax_p.hist(out["probe_normalised"], bins=30, color="tab:green", alpha=0.7)
        ax_p.axvline(out["probe_at_eval"], color="k", lw=1.5,
                     label=f"eval mode: {out['probe_at_eval']:.2f}")
        ax_p.set_xlabel("normalised value in training mode")
        ax_p.set_title(f"image {probe}'s largest activation, normalised:\n"
                       f"spread {out['probe_spread']:.2f} across batches", fontsize=10)
        ax_p.legend(fontsize=8, loc="upper right")
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.86, wspace=0.28)
        keys = ("batch_size", "channel", "n_images", "per_image", "population_mean",
                "population_var", "mean_spread", "mean_spread_predicted", "mean_spread_iid",
                "var_spread_relative", "effective_per_image", "probe", "probe_value",
                "probe_at_eval", "probe_spread", "probe_mean_shift")
        state = {k: out[k] for k in keys}
        state["layer"] = layer
        return fig, state
