"""Training: ``fit`` (one readable loop) and the small pieces it takes as arguments.

``loop`` holds ``fit``, ``evaluate`` and ``predict``; ``optim`` builds optimisers. Each
further feature (schedules, callbacks, checkpoints, mixed precision, metrics) lives in a
module of its own, tested on its own, and ``fit`` takes it as an argument.
"""
from cnnbook.train.loop import (FitResult, LivePlot, TrainingDiverged, accuracy_count, evaluate,
                                fit, init_weights, predict)
from cnnbook.train.optim import make_optimizer
from cnnbook.train.metrics import classification_report, confusion_matrix, predict_image
from cnnbook.train.lr_finder import LRFinderResult, lr_find
from cnnbook.train import optim, schedules  # builders: optim.adamw(...), schedules.step(...)

__all__ = ["FitResult", "LivePlot", "TrainingDiverged", "accuracy_count", "evaluate", "fit",
           "init_weights", "make_optimizer", "predict"]
__all__ += ["classification_report", "confusion_matrix", "predict_image"]
__all__ += ["LRFinderResult", "lr_find", "optim", "schedules"]
from cnnbook.train.callbacks import Callback, EarlyStopping, Lookahead  # noqa: E402
from cnnbook.train.checkpoint import CheckpointMismatch  # noqa: E402
__all__ += ["Callback", "CheckpointMismatch", "EarlyStopping", "Lookahead"]
