"""A pretrained network split in two, a backbone and a new head, so parts of it can be frozen.

    net = TransferNet(resnet, num_classes=5, train_from="layer4")   # layer4 and the head learn
    fit(net, ..., optimizer=optim.adam(lr_mult={"backbone": 0.1}))    # backbone 10x slower

The sources fine-tune by replacing ``model.fc`` and training everything. Two more choices
need the split: *feature extraction* trains only the head on the backbone's fixed features
(``train_from="head"``), *partial fine-tuning* also trains the last stages. Frozen means
two things: no gradient (``requires_grad=False``, so no optimiser state and a cheaper
backward) and batch-norm layers kept in eval mode, so their running statistics stay the
pretrained ones while ``fit`` calls ``model.train()`` every epoch.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _head_name(model: nn.Module) -> str:
    for name in ("fc", "classifier", "head"):
        if isinstance(getattr(model, name, None), nn.Linear):
            return name
    raise ValueError(f"{type(model).__name__} has no Linear `fc`, `classifier` or `head` to replace")


class TransferNet(nn.Module):
    """``backbone`` (the pretrained network with its classifier removed) -> ``head`` (new Linear).

    ``train_from`` names the first top-level part of the backbone that learns (e.g.
    "layer4"); the parts before it are frozen. "head" freezes the whole backbone (feature
    extraction), None trains everything (full fine-tuning). ``stages`` lists the backbone's
    top-level parts in order, the choices for ``train_from``.
    """

    def __init__(self, pretrained: nn.Module, num_classes: int, train_from: str | None = None):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        head = _head_name(pretrained)
        features = getattr(pretrained, head).in_features
        setattr(pretrained, head, nn.Identity())
        self.backbone = pretrained
        self.head = nn.Linear(features, num_classes)
        self.stages = [n for n, m in pretrained.named_children()
                       if n != head and any(True for _ in m.parameters())]
        self.frozen: list[str] = []
        self.set_train_from(train_from)

    def set_train_from(self, train_from: str | None) -> "TransferNet":
        """Freeze the backbone parts before ``train_from`` ("head": all of them; None: none)."""
        if train_from is None:
            cut = 0
        elif train_from == "head":
            cut = len(self.stages)
        elif train_from in self.stages:
            cut = self.stages.index(train_from)
        else:
            raise ValueError(f"train_from must be None, 'head' or one of {self.stages}, "
                             f"not {train_from!r}")
        self.frozen = self.stages[:cut]
        for name, module in self.backbone.named_children():
            module.requires_grad_(name not in self.frozen)
        self.train(self.training)
        return self

    def train(self, mode: bool = True) -> "TransferNet":
        super().train(mode)
        for name in self.frozen:   # frozen parts keep their pretrained BN statistics
            getattr(self.backbone, name).eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.backbone(x), 1))

    def trainable_fraction(self) -> float:
        """Share of the parameters that learn (1.0 for full fine-tuning)."""
        total = sum(p.numel() for p in self.parameters())
        return sum(p.numel() for p in self.parameters() if p.requires_grad) / total


def class_subset(images: torch.Tensor, labels: torch.Tensor, classes: Sequence[int],
                 per_class: int | None = None, seed: int = 0, offset: int = 0):
    """The images of ``classes`` only, relabelled 0..len(classes)-1 in that order.

    ``per_class`` keeps that many per class (a seeded random choice; None keeps all);
    ``offset`` skips the first ``offset`` of each class's shuffled order, so two calls with
    different offsets give disjoint sets (e.g. a validation set beside a training set).
    """
    labels = torch.as_tensor(labels)
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes}")
    g = torch.Generator().manual_seed(seed)
    keep, new = [], []
    for k, c in enumerate(classes):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) == 0:
            raise ValueError(f"no image has label {c}")
        idx = idx[torch.randperm(len(idx), generator=g)]
        stop = None if per_class is None else offset + per_class
        chosen = idx[offset:stop]
        if per_class is not None and len(chosen) < per_class:
            raise ValueError(f"class {c} has {len(idx) - offset} images left, fewer than "
                             f"per_class={per_class}")
        keep.append(chosen)
        new.append(torch.full((len(chosen),), k, dtype=torch.long))
    keep_t, new_t = torch.cat(keep), torch.cat(new)
    order = torch.argsort(keep_t)
    return images[keep_t[order]], new_t[order]
