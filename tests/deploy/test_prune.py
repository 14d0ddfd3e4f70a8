import pytest
import torch
from torch import nn

from cnnbook.deploy import prune as P
from cnnbook.models.cifar_resnet import resnet20
from cnnbook.profiling import count_macs, count_params


def _trained_like(seed=0):
    torch.manual_seed(seed)
    model = resnet20()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model.eval()


def test_l1_unstructured_zeroes_the_smallest_30_percent_per_layer():
    model = _trained_like()
    pruned = P.l1_unstructured(model, 0.3)
    assert P.sparsity(model) == 0
    assert abs(P.sparsity(pruned) - 0.3) < 0.01
    conv = pruned.stage1[0].conv1
    orig = model.stage1[0].conv1.weight
    kept = conv.weight != 0
    assert orig[~kept].abs().max() <= orig[kept].abs().min()
    assert not hasattr(conv, "weight_mask")        # made permanent
    assert count_params(pruned) == count_params(model)  # nothing got smaller
    with pytest.raises(ValueError):
        P.l1_unstructured(model, 1.0)


def test_channels_to_remove_picks_the_smallest_filters():
    conv = nn.Conv2d(2, 6, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([3.0, 1, 5, 0.5, 4, 2]).reshape(6, 1, 1, 1).repeat(1, 2, 1, 1))
    assert P.channels_to_remove(conv, 0.5) == [1, 3, 5]
    assert P.channels_to_remove(conv, 0.0) == []
    assert len(P.channels_to_remove(conv, 0.99)) == 5   # one filter always stays


def test_block_channel_pruning_shrinks_the_layers_and_matches_torch_pruning():
    model = _trained_like()
    x = torch.randn(2, 3, 32, 32)
    ours = P.prune_block_channels(model, 0.5)
    with torch.no_grad():                     # as a notebook cell may call it
        theirs = P.prune_block_channels_tp(model, 0.5, x)
    for (name, a), (_, b) in zip(P.inner_blocks(ours), P.inner_blocks(theirs)):
        assert a.conv1.out_channels == b.conv1.out_channels == model.get_submodule(name).conv1.out_channels // 2
        assert a.conv2.in_channels == a.conv1.out_channels == a.bn1.num_features
        assert torch.equal(a.conv1.weight, b.conv1.weight)
        assert torch.equal(a.conv2.weight, b.conv2.weight)
        assert torch.equal(a.bn1.running_var, b.bn1.running_var)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert not any(m.training for m in ours.modules())   # eval mode kept
    # the blocks' convs cost half: MACs and parameters really drop
    assert count_macs(ours, (1, 3, 32, 32)) < 0.6 * count_macs(model, (1, 3, 32, 32))
    assert count_params(ours) < 0.6 * count_params(model)


def test_removing_zero_filters_changes_nothing():
    model = _trained_like()
    for _, block in P.inner_blocks(model):   # make half the filters of conv1 exactly zero
        with torch.no_grad():
            block.conv1.weight[::2] = 0
            block.bn1.bias[::2] = -5       # and their BN output negative: ReLU gives 0
    pruned = P.prune_block_channels(model, 0.5)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(pruned(x), model(x), atol=1e-5)


def test_no_blocks_is_an_error():
    with pytest.raises(ValueError, match="residual blocks"):
        P.prune_block_channels(nn.Sequential(nn.Conv2d(3, 4, 3)), 0.5)
