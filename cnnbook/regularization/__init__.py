"""Regularisation (chapter 16): one module per technique, each checked against the library.

``dropblock`` (DropBlock, equal to ``torchvision.ops.drop_block2d`` under the same mask),
``stochastic_depth`` (equal to ``torchvision.ops.stochastic_depth``), ``label_smoothing``
(equal to ``nn.CrossEntropyLoss(label_smoothing=)``), ``mixing`` (mixup and CutMix, equal to
``torchvision.transforms.v2.MixUp``/``CutMix`` for the same lambda and pairing),
``weight_decay`` (L2 vs decoupled, equal to ``torch.optim.Adam``/``AdamW``) and ``resnet``
(a small CIFAR ResNet with these as switches).
"""
from cnnbook.regularization.dropblock import DropBlock2d, drop_block, dropblock_gamma
from cnnbook.regularization.label_smoothing import (label_smoothing_cross_entropy,
                                                    optimal_logit_gap, smooth_targets)
from cnnbook.regularization.mixing import BatchMixer, cutmix, mixed_cross_entropy, mixup
from cnnbook.regularization.resnet import RegResidual, small_resnet
from cnnbook.regularization.stochastic_depth import StochasticDepth, stochastic_depth
from cnnbook.regularization.weight_decay import adam_step, sgd_step

__all__ = ["BatchMixer", "DropBlock2d", "RegResidual", "StochasticDepth", "adam_step", "cutmix",
           "drop_block", "dropblock_gamma", "label_smoothing_cross_entropy",
           "mixed_cross_entropy", "mixup", "optimal_logit_gap", "sgd_step", "small_resnet",
           "smooth_targets", "stochastic_depth"]
