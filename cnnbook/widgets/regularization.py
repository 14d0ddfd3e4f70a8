"""DropBlockExplorer: dropout, Dropout2d and DropBlock masks on a real feature map.

Controls -> ``cnnbook.regularization.masks`` (``drop_mask`` then ``mask_stats``) -> the
feature map, the keep-mask and what the next layer receives, with the target and the
measured drop rate and the share of dropped units that a 3x3 window can still "see
around" (a kept neighbour). The default feature map is a fixed edge detector (a Gabor
filter) applied to a bundled photograph, so it needs no download; chapter 16 passes the
feature maps of a CIFAR-10 network instead.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from cnnbook.regularization.masks import METHODS, drop_mask, mask_stats
from cnnbook.widgets.base import Explorer

_STYLE = {"description_width": "initial"}


def default_feature_maps(size: int = 48) -> torch.Tensor:
    """Four ReLU'd Gabor responses (0, 45, 90, 135 degrees) of the bundled "camera" photo:
    a (4, size, size) stand-in for a first-layer feature map."""
    from cnnbook.photos import load_photo
    from cnnbook.vision import gabor_bank, orientations

    img = load_photo("camera", size=size, gray=True)
    img = img[..., :size, :size].reshape(1, 1, size, size)
    bank = gabor_bank(orientations(4), size=7, sigma=1.5, wavelengths=(4.0,))
    bank = bank.reshape(-1, 1, 7, 7).float()
    return F.relu(F.conv2d(img, bank, padding=3))[0]


class DropBlockExplorer(Explorer):
    """Pick the method, the drop rate, the block size, the channel shown and the seed.

    ``feature_maps`` is a (C, H, W) tensor (default: ``default_feature_maps()``); the
    statistics are measured over all its channels.
    """

    def __init__(self, feature_maps: torch.Tensor | None = None, method: str = "dropblock",
                 p: float = 0.1, block_size: int = 5):
        fmap = default_feature_maps() if feature_maps is None else feature_maps
        if not isinstance(fmap, torch.Tensor) or fmap.ndim != 3 or fmap.numel() == 0:
            raise ValueError("feature_maps must be a non-empty (C, H, W) tensor")
        self.fmap = fmap.detach().float().cpu()
        side = min(self.fmap.shape[-2:])
        controls = {
            "method": widgets.ToggleButtons(options=list(METHODS), value=method,
                                            description="method", style=_STYLE),
            "p": widgets.FloatSlider(value=p, min=0.0, max=0.5, step=0.01,
                                     description="drop rate", readout_format=".2f",
                                     continuous_update=False, style=_STYLE),
            "block_size": widgets.IntSlider(value=block_size, min=1,
                                            max=side if side % 2 else side - 1, step=2,
                                            description="block size", continuous_update=False,
                                            style=_STYLE),
            "channel": widgets.IntSlider(value=0, min=0, max=self.fmap.shape[0] - 1,
                                         description="channel shown", style=_STYLE,
                                         continuous_update=False),
            "seed": widgets.IntSlider(value=0, min=0, max=20, description="seed", style=_STYLE,
                                      continuous_update=False),
        }
        super().__init__(controls)

    def compute(self, method, p, block_size, channel, seed):
        g = torch.Generator().manual_seed(int(seed))
        x = self.fmap.unsqueeze(0)
        mask = drop_mask(x.shape, method, float(p), int(block_size), generator=g)
        stats = mask_stats(mask, float(p), int(block_size))
        out = x * mask * (stats["scale"] if stats["dropped"] < 1 else 0.0)
        c = int(channel)
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
        vmax = float(x[0, c].max()) or 1.0
        axes[0].imshow(x[0, c].numpy(), cmap="viridis", vmin=0, vmax=vmax)
        axes[0].set_title(f"feature map (channel {c})")
        axes[1].imshow(mask[0, c].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[1].set_title(f"keep-mask: {100 * stats['dropped']:.1f}% dropped "
                          f"(target {100 * p:.0f}%)")
        axes[2].imshow(out[0, c].numpy(), cmap="viridis", vmin=0, vmax=vmax * max(stats["scale"], 1)
                       if stats["dropped"] < 1 else vmax)
        rec = stats["recoverable"]
        axes[2].set_title("to the next layer (rescaled)\n"
                          + ("nothing dropped" if rec != rec else
                             f"{100 * rec:.0f}% of holes have a kept 3x3 neighbour"))
        for ax in axes:
            ax.axis("off")
        fig.tight_layout()
        return fig, {"method": method, "p": float(p), "block_size": int(block_size),
                     "channel": c, "seed": int(seed), **stats}
