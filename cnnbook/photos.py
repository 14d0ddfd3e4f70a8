"""Real photographs for the foundation chapters, from scikit-image's bundled samples.

scikit-image ships these images inside the package, so they work offline and need no
download; every function returns float tensors in [0, 1] ready for ``F.conv2d``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: Photographs bundled with scikit-image (no network needed).
PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "rocket", "brick", "grass",
          "gravel", "moon", "page", "coins", "text")


def _raw(name: str) -> np.ndarray:
    from skimage import data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}: choose one of {', '.join(PHOTOS)}")
    return getattr(data, name)()


def load_photo(name: str = "camera", size: int | None = None, gray: bool = True) -> torch.Tensor:
    """A bundled photograph as a float32 tensor in [0, 1]: (H, W) if ``gray`` else (3, H, W).

    ``size`` resizes the shorter side to ``size`` pixels (antialiased), keeping the aspect
    ratio, so convolution demos stay fast.
    """
    img = np.asarray(_raw(name))
    if img.dtype == np.bool_:
        img = img.astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(img)).float()
    if img.dtype == np.uint8:
        x = x / 255.0
    elif x.max() > 1:
        x = x / x.max()
    if x.ndim == 2:
        x = x.unsqueeze(0)
    else:
        x = x[..., :3].permute(2, 0, 1)
    if gray and x.shape[0] == 3:
        weights = torch.tensor([0.2125, 0.7154, 0.0721]).view(3, 1, 1)  # ITU-R 709 luma
        x = (x * weights).sum(0, keepdim=True)
    elif not gray and x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    if size is not None:
        if size < 1:
            raise ValueError("size must be a positive number of pixels")
        h, w = x.shape[-2:]
        scale = size / min(h, w)
        new = (max(1, round(h * scale)), max(1, round(w * scale)))
        x = F.interpolate(x.unsqueeze(0), size=new, mode="bilinear", antialias=True,
                          align_corners=False)[0].clamp(0, 1)
    x = x.contiguous()
    return x[0] if gray else x
