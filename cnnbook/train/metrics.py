"""Per-class metrics, the confusion matrix and single-image prediction.

Accuracy hides which classes a model confuses; these tables show it:

    report = classification_report(model, test_iter, class_names)    # or (y_true, y_pred, ...)
    cm = confusion_matrix(model, test_iter, class_names)             # rows: true, cols: predicted
    predict_image(model, image, class_names, transform=test_iter.transform, k=3)

The numbers come from scikit-learn (``precision_recall_fscore_support``, ``confusion_matrix``),
not from a hand-written version: precision = TP / (TP + FP), recall = TP / (TP + FN), and F1
their harmonic mean, per class; the macro average weighs every class equally, the weighted
average weighs each class by its support (its number of true examples).
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch
from torch import nn


def _labels(y_true, y_pred, class_names):
    """(y_true, y_pred) as 1-D int arrays, from labels or from (model, loader), and the names."""
    if isinstance(y_true, nn.Module):
        from cnnbook.train.loop import predict

        y_pred, y_true = predict(y_true, y_pred)
    y_true = torch.as_tensor(y_true).long().flatten().cpu().numpy()
    y_pred = torch.as_tensor(y_pred).long().flatten().cpu().numpy()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} labels but {y_pred.size} predictions")
    if y_true.size == 0:
        raise ValueError("no labels to score")
    if class_names is None:
        class_names = [str(i) for i in range(int(max(y_true.max(), y_pred.max())) + 1)]
    class_names = [str(c) for c in class_names]
    top = int(max(y_true.max(), y_pred.max()))
    if min(y_true.min(), y_pred.min()) < 0 or top >= len(class_names):
        raise ValueError(f"labels must lie in 0..{len(class_names) - 1} for "
                         f"{len(class_names)} class names; got up to {top}")
    return y_true, y_pred, class_names


def classification_report(y_true, y_pred, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, plus macro and weighted averages.

    Call it with labels, ``classification_report(y_true, y_pred, class_names)`` (scikit-learn's
    order: true labels first), or with a model and a loader,
    ``classification_report(model, test_iter, class_names)``, which predicts in eval mode.
    A class never predicted gets precision 0 (scikit-learn's ``zero_division=0``).
    ``report.attrs["accuracy"]`` holds the overall accuracy.
    """
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred, names = _labels(y_true, y_pred, class_names)
    labels = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    df = pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=names)
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg,
                                                     zero_division=0)
        df.loc[f"{avg} avg"] = [p, r, f, int(s.sum())]
    df["support"] = df["support"].astype(int)
    df.index.name = "class"
    df.attrs["accuracy"] = float((y_true == y_pred).mean())
    return df


def confusion_matrix(y_true, y_pred, class_names: Sequence[str] | None = None,
                     normalize: str | None = None) -> pd.DataFrame:
    """Counts of examples of true class i (row) predicted as class j (column), by scikit-learn.

    Takes ``(y_true, y_pred)`` or ``(model, loader)`` like ``classification_report``.
    ``normalize="true"`` divides each row by its total (the diagonal is then each class's
    recall); "pred" divides columns (precision), "all" the whole table.
    ``cnnbook.viz.plot_confusion_matrix`` draws it.
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    y_true, y_pred, names = _labels(y_true, y_pred, class_names)
    cm = sk_confusion_matrix(y_true, y_pred, labels=list(range(len(names))), normalize=normalize)
    return pd.DataFrame(cm, index=pd.Index(names, name="true"),
                        columns=pd.Index(names, name="predicted"))


@torch.no_grad()
def predict_image(model: nn.Module, image: torch.Tensor, class_names: Sequence[str],
                  transform=None, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most likely classes of one image with their softmax probabilities, best first.

    ``image`` is one (C, H, W) tensor, uint8 in 0..255 or float. ``transform`` prepares it
    as the model was trained: pass the loader's ``BatchTransform`` (``test_iter.transform``,
    which scales a uint8 image, resizes and normalises) or any callable on one (C, H, W)
    image; by default a uint8 image is scaled to [0, 1] and a float one used as it is.
    The model runs in eval mode (dropout off, batch-norm running statistics) and gets its
    previous mode back afterwards.
    """
    from cnnbook.data.loader import BatchTransform

    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError("image must be one (C, H, W) tensor; index a batch with images[i]")
    if k < 1:
        raise ValueError("k must be at least 1")
    device = next(model.parameters()).device
    x = image.to(device)
    if isinstance(transform, BatchTransform):
        if x.dtype != torch.uint8:
            raise ValueError("a BatchTransform expects a uint8 image (it divides by 255)")
        x = transform(x[None], train=False)
    else:
        if transform is not None:
            x = transform(x)
        elif x.dtype == torch.uint8:
            x = x.float() / 255
        x = x[None].float()
    was_training = model.training
    model.eval()
    try:
        logits = model(x)
    finally:
        model.train(was_training)
    if logits.shape[-1] != len(class_names):
        raise ValueError(f"the model gives {logits.shape[-1]} scores but there are "
                         f"{len(class_names)} class names")
    probs = torch.softmax(logits[0].float(), dim=0)
    top = torch.topk(probs, min(k, len(class_names)))
    return [(str(class_names[i]), float(p))
            for p, i in zip(top.values.tolist(), top.indices.tolist())]


@torch.no_grad()
def mean_confidence(model: nn.Module, data_iter) -> float:
    """Mean largest softmax probability over ``data_iter``, in eval mode (mode restored).

    A calibrated model's mean confidence equals its accuracy; an overconfident one's is
    higher (chapters 15 and 16 compare the two).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    for X, _ in data_iter:
        total += model(X.to(device)).float().softmax(dim=1).amax(dim=1).sum().item()
        n += len(X)
    model.train(was_training)
    if n == 0:
        raise ValueError("mean_confidence() got an empty data iterator")
    return total / n
