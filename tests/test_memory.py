import pytest
import torch
from torch import nn

from cnnbook.memory import activation_bytes


def test_a_linear_layer_saves_its_input_only():
    model = nn.Sequential(nn.Linear(10, 5))
    # the input is not counted, and a linear layer saves nothing else
    assert activation_bytes(model, (4, 10)) == 0
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    # ReLU saves its output, the second linear layer its input: the same (4, 20) tensor
    assert activation_bytes(model, (4, 10)) == 4 * 20 * 4


def test_memory_grows_with_the_batch_and_restores_the_model():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = activation_bytes(model, (2, 3, 16, 16))
    big = activation_bytes(model, (8, 3, 16, 16))
    assert big == pytest.approx(4 * small, rel=0.05)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_shared_storage_counts_once():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 1))
    out_elems = 1 * 4 * 6 * 6
    # conv1's output is overwritten in place by ReLU and saved by conv2: one tensor
    assert activation_bytes(model, (1, 1, 8, 8)) == out_elems * 4
