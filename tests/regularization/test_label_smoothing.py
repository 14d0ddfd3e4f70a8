import math

import pytest
import torch
from torch import nn

from cnnbook.regularization.label_smoothing import (label_smoothing_cross_entropy,
                                                    optimal_logit_gap, smooth_targets)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3, 1.0])
def test_equals_pytorch(eps):
    torch.manual_seed(0)
    logits = torch.randn(32, 10, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 10, (32,))
    ours = label_smoothing_cross_entropy(logits, y, eps)
    theirs = nn.CrossEntropyLoss(label_smoothing=eps)(logits, y)
    assert torch.allclose(ours, theirs)
    g1, = torch.autograd.grad(ours, logits)
    g2, = torch.autograd.grad(theirs, logits)
    assert torch.allclose(g1, g2)


def test_targets_sum_to_one():
    q = smooth_targets(torch.tensor([0, 3]), 4, 0.1)
    assert torch.allclose(q.sum(1), torch.ones(2))
    assert q[0, 0].item() == pytest.approx(0.925) and q[0, 1].item() == pytest.approx(0.025)
    with pytest.raises(ValueError):
        smooth_targets(torch.tensor([0]), 4, 1.5)


def test_optimal_gap_minimises_the_loss():
    gap = optimal_logit_gap(0.1, 10)
    assert gap == pytest.approx(math.log(91))
    y = torch.tensor([0])

    def loss(g):
        logits = torch.zeros(1, 10, dtype=torch.float64)
        logits[0, 0] = g
        return label_smoothing_cross_entropy(logits, y, 0.1).item()
    assert loss(gap) < loss(gap - 0.5) and loss(gap) < loss(gap + 0.5)
    assert optimal_logit_gap(0.0, 10) == math.inf
    with pytest.raises(ValueError):
        optimal_logit_gap(0.1, 1)
