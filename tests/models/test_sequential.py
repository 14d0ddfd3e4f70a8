import torch
from torch import nn

from cnnbook.models._sequential import NamedSequential
from cnnbook.models.nin import nin_fashion


def test_slices_are_plain_sequentials_sharing_the_layers():
    model = nin_fashion(width_mult=0.25, small_input=True)
    assert isinstance(model, NamedSequential)
    head = model[:2]
    assert type(head) is nn.Sequential and list(head._modules) == ["block1", "pool1"]
    assert head.block1 is model.block1
    assert isinstance(model[0], nn.Sequential) and model[0] is model.block1
    assert head(torch.randn(1, 1, 28, 28)).shape == (1, 24, 13, 13)
