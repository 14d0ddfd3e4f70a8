"""Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019): train on blends of two images.

Both pair every image of a batch with a partner from the same batch and draw a mixing
weight ``lam ~ Beta(alpha, alpha)``:

* **mixup** blends whole images, ``x = lam * x_i + (1 - lam) * x_j``;
* **CutMix** pastes a box of the partner into the image; the box covers a fraction
  ``1 - lam`` of the area (side ``sqrt(1 - lam)`` times the image side, centred on a
  uniform random point and clipped at the border, after which ``lam`` is recomputed from
  the box actually pasted).

The label is blended with the same weight, ``lam * onehot(y_i) + (1 - lam) * onehot(y_j)``,
and since cross-entropy is linear in the target the loss is
``lam * CE(logits, y_i) + (1 - lam) * CE(logits, y_j)`` (``mixed_cross_entropy``).
As in torchvision, the partner of image ``i`` is image ``i - 1`` (the batch rolled by
one), which is a random pairing because the loader shuffles; ``perm`` picks another.

``BatchMixer`` plugs this into ``cnnbook.fit`` without changing the loop: ``wrap(loader)``
yields mixed images with the first labels, and ``loss`` (the ``loss_fn``) finds the
partner labels and ``lam`` of the batch it just produced.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnbook.data.loader import MapBatches

__all__ = ["BatchMixer", "cutmix", "cutmix_box", "mixed_cross_entropy", "mixup",
           "partner_index", "sample_lambda"]


def partner_index(n: int, device=None) -> torch.Tensor:
    """torchvision's pairing: image ``i`` is mixed with image ``i - 1`` (``roll(1, 0)``)."""
    return (torch.arange(n, device=device) - 1) % n


def sample_lambda(alpha: float) -> float:
    """A draw of ``Beta(alpha, alpha)`` from the global RNG, as torchvision draws it."""
    if not (alpha > 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a positive finite number, got {alpha}")
    dist = torch.distributions.Beta(torch.tensor([float(alpha)]), torch.tensor([float(alpha)]))
    return float(dist.sample(()))


def _soft(y: torch.Tensor, num_classes: int, lam: float, perm: torch.Tensor) -> torch.Tensor:
    onehot = F.one_hot(y, num_classes).float()
    return lam * onehot + (1 - lam) * onehot[perm]


def _check_lam(lam: float) -> None:
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be between 0 and 1, got {lam}")


def mixup(x: torch.Tensor, y: torch.Tensor, lam: float, num_classes: int,
          perm: torch.Tensor | None = None):
    """Blend each image with its partner: ``(lam * x + (1 - lam) * x[perm], soft labels)``."""
    _check_lam(lam)
    perm = partner_index(len(x), x.device) if perm is None else perm
    return lam * x + (1 - lam) * x[perm], _soft(y, num_classes, lam, perm)


def cutmix_box(lam: float, height: int, width: int, cy: int, cx: int):
    """The box ``(y1, y2, x1, x2)`` CutMix pastes for ``lam`` around the centre ``(cy, cx)``,
    and the ``lam`` it really gives (1 minus the pasted area fraction, after clipping).

    The half-sides are ``int(sqrt(1 - lam) / 2 * side)``, as in torchvision.
    """
    _check_lam(lam)
    r = 0.5 * math.sqrt(1.0 - lam)
    half_w, half_h = int(r * width), int(r * height)
    x1, x2 = max(cx - half_w, 0), min(cx + half_w, width)
    y1, y2 = max(cy - half_h, 0), min(cy + half_h, height)
    lam_real = 1.0 - (x2 - x1) * (y2 - y1) / (width * height)
    return (y1, y2, x1, x2), lam_real


def cutmix(x: torch.Tensor, y: torch.Tensor, box, num_classes: int,
           perm: torch.Tensor | None = None):
    """Paste ``box = (y1, y2, x1, x2)`` of each partner into each image; labels weighted by
    the area kept. Returns ``(images, soft labels, lam)``."""
    y1, y2, x1, x2 = box
    h, w = x.shape[-2:]
    perm = partner_index(len(x), x.device) if perm is None else perm
    out = x.clone()
    out[..., y1:y2, x1:x2] = x[perm][..., y1:y2, x1:x2]
    lam = 1.0 - (x2 - x1) * (y2 - y1) / (w * h)
    return out, _soft(y, num_classes, lam, perm), lam


def mixed_cross_entropy(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor,
                        lam: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """``lam * CE(logits, y_a) + (1 - lam) * CE(logits, y_b)``: the cross-entropy against the
    blended one-hot labels, without building them."""
    ce_a = F.cross_entropy(logits, y_a, label_smoothing=label_smoothing)
    ce_b = F.cross_entropy(logits, y_b, label_smoothing=label_smoothing)
    return lam * ce_a + (1 - lam) * ce_b


class BatchMixer:
    """Mixup and/or CutMix for ``cnnbook.fit``: ``fit(model, mixer.wrap(train), test,
    loss_fn=mixer.loss)``.

    ``mode`` is ``"mixup"``, ``"cutmix"`` or ``"both"`` (each batch picks one of the two
    with equal chance, as timm and torchvision's ``RandomChoice`` recipes do). ``p`` is the
    chance that a batch is mixed at all. Draws use the global RNG (``seed_everything``).
    ``last`` holds the partner labels and ``lam`` of the batch last produced, which
    ``loss`` reads; fit's training accuracy then counts the first label of each pair.
    """

    def __init__(self, mode: str = "mixup", alpha: float = 1.0, num_classes: int = 10,
                 p: float = 1.0, label_smoothing: float = 0.0):
        if mode not in ("mixup", "cutmix", "both"):
            raise ValueError(f"mode must be 'mixup', 'cutmix' or 'both', got {mode!r}")
        if not (alpha > 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha must be a positive finite number, got {alpha}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be between 0 and 1, got {p}")
        self.mode, self.alpha, self.num_classes, self.p = mode, alpha, num_classes, p
        self.label_smoothing = label_smoothing
        self.last: dict | None = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        """Mix one batch; returns ``(images, y_a, y_b, lam)``."""
        n = len(x)
        if n < 2 or float(torch.rand(())) >= self.p:
            return x, y, y, 1.0
        kind = self.mode
        if kind == "both":
            kind = "mixup" if float(torch.rand(())) < 0.5 else "cutmix"
        lam = sample_lambda(self.alpha)
        perm = partner_index(n, x.device)
        if kind == "mixup":
            x = lam * x + (1 - lam) * x[perm]
        else:
            h, w = x.shape[-2:]
            cx, cy = int(torch.randint(w, (1,))), int(torch.randint(h, (1,)))
            box, lam = cutmix_box(lam, h, w, cy, cx)
            y1, y2, x1, x2 = box
            x = x.clone()
            x[..., y1:y2, x1:x2] = x[perm][..., y1:y2, x1:x2]
        return x, y, y[perm], lam

    def wrap(self, loader):
        """The loader with every batch mixed (keeps ``len``, ``batch_size``, ``num_examples``)."""
        return MapBatches(loader, self._mix_and_remember)

    def _mix_and_remember(self, x, y):
        x, y_a, y_b, lam = self(x, y)
        self.last = {"y_a": y_a, "y_b": y_b, "lam": lam}
        return x, y_a

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mixed cross-entropy of the batch last produced by ``wrap``'s loader.

        ``y`` may be the first examples of that batch only (a rehearsal,
        ``CNNBOOK_MAX_BATCH_SIZE``, trains on a prefix of every batch).
        """
        last, n = self.last, len(y)
        if (last is None or n > len(last["y_a"])
                or not torch.equal(last["y_a"][:n].to(y.device), y)):
            raise RuntimeError("BatchMixer.loss needs the batch from the loader returned by "
                               "mixer.wrap(...): train with fit(model, mixer.wrap(train_iter), "
                               "..., loss_fn=mixer.loss)")
        return mixed_cross_entropy(logits, y, last["y_b"][:n].to(y.device), last["lam"],
                                   self.label_smoothing)
