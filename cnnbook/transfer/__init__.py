"""Transfer learning (chapter 19): pretrained weights, a course-made fallback, fine-tuning.

``weights`` finds torchvision's ImageNet checkpoints (torch hub cache, then the folder named
by ``CNNBOOK_WEIGHTS_MIRROR``, then a download) and says clearly when none is reachable;
``source`` pretrains the course's own fallback model once and caches it; ``finetune`` splits
a network into a backbone and a new head (feature extraction, fine-tuning, partial
unfreezing); ``curves`` turns measured runs into accuracy-vs-labels curves.
"""
from cnnbook.transfer.weights import WeightsUnavailable, load_torchvision, weights_mirror_dir
from cnnbook.transfer.finetune import TransferNet, class_subset
from cnnbook.transfer.source import Pretrained, pretrained_resnet18, source_model

__all__ = ["Pretrained", "TransferNet", "WeightsUnavailable", "class_subset", "load_torchvision",
           "pretrained_resnet18", "source_model", "weights_mirror_dir"]
