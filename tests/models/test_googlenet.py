import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.googlenet import (INCEPTION_STAGES, AuxLoss, GoogLeNet, Inception,
                                      InceptionAux, conv_relu, googlenet, googlenet_fashion,
                                      googlenet_torchvision)
from cnnbook.profiling import count_macs, count_params

META = torch.device("meta")  # shapes only: parameter counts and FLOPs without memory or init
WEIGHTS = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1


def _torchvision(aux_logits):
    return torchvision.models.googlenet(weights=None, aux_logits=aux_logits, init_weights=True)


def test_torchvision_configuration_has_exactly_its_parameter_count():
    with META:
        ours, theirs = googlenet_torchvision(), _torchvision(False)
    assert count_params(ours) == count_params(theirs) == 6_624_904 == WEIGHTS.meta["num_params"]


def test_torchvision_configuration_with_auxiliary_heads():
    with META:
        ours, theirs = googlenet_torchvision(aux_logits=True), _torchvision(True)
    assert count_params(ours) == count_params(theirs)
    assert len(ours.aux) == 2


def test_macs_match_torchvisions_published_gflops():
    with META:
        model = googlenet_torchvision()
    macs = count_macs(model, (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(WEIGHTS.meta["_ops"], rel=0.01)


def test_paper_version_uses_5x5_kernels_plain_convs_and_costs_more():
    with META:
        paper, tv = googlenet(), googlenet_torchvision()
    assert paper.b3.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert tv.b3.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    assert paper.b1.conv.conv.bias is not None and tv.b1.conv.conv.bias is None
    # every 5x5 weight is 25/9 times a 3x3 one; biases replace BN's two parameters
    extra = sum(m.weight.numel() * 16 / 25 for m in paper.modules()
                if isinstance(m, nn.Conv2d) and m.kernel_size == (5, 5))
    convs = [m for m in paper.modules() if isinstance(m, nn.Conv2d)]
    bn = sum(2 * c.out_channels for c in convs)
    bias = sum(c.out_channels for c in convs)
    assert count_params(paper) == count_params(tv) + extra + bias - bn


def test_first_inception_block_outputs_256_channels():
    block = Inception(192, 64, (96, 128), (16, 32), 32)
    assert block.out_channels == 256
    assert block(torch.randn(2, 192, 12, 12)).shape == (2, 256, 12, 12)


@pytest.mark.parametrize("c1, c2, c3, c4", [(64, (96, 128), (16, 32), 32),
                                            (5, (3, 7), (2, 4), 6), (1, (1, 1), (1, 1), 1)])
def test_inception_output_channels_are_the_sum_of_the_paths(c1, c2, c3, c4):
    block = Inception(12, c1, c2, c3, c4)
    y = block(torch.randn(1, 12, 9, 9))
    assert y.shape == (1, c1 + c2[1] + c3[1] + c4, 9, 9) and block.out_channels == y.shape[1]
    # the output is the four paths side by side, in order
    parts = [block.branch1, block.branch2, block.branch3, block.branch4]
    x = torch.randn(1, 12, 9, 9)
    assert torch.allclose(block(x), torch.cat([p(x) for p in parts], 1))


def test_inception_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pairs"):
        Inception(16, 8, (8,), (4, 4), 4)
    with pytest.raises(ValueError, match="positive"):
        Inception(16, 0, (8, 8), (4, 4), 4)
    with pytest.raises(ValueError, match="odd"):
        Inception(16, 8, (8, 8), (4, 4), 4, branch3_kernel=4)


def test_nine_inception_blocks_in_three_stages():
    model = googlenet_fashion(width_mult=0.25)
    assert [len(rows) for rows in INCEPTION_STAGES.values()] == [2, 5, 2]
    assert sum(isinstance(m, Inception) for m in model.modules()) == 9
    assert isinstance(model.b3.pool, nn.MaxPool2d) and isinstance(model.b4.pool, nn.MaxPool2d)
    assert not hasattr(model.b5, "pool")


def test_d2l_course_model_at_96_px_shapes_per_stage():
    model = googlenet_fashion().eval()
    x = torch.randn(2, 1, 96, 96)
    shapes = {}
    for name, stage in model.stages().named_children():
        x = stage(x)
        shapes[name] = tuple(x.shape[1:])
    assert shapes == {"b1": (64, 24, 24), "b2": (192, 12, 12), "b3": (480, 6, 6),
                      "b4": (832, 3, 3), "b5": (1024, 3, 3), "head": (10,)}


@pytest.mark.parametrize("width", [0.25, 0.5])
def test_small_input_and_width(width):
    model = googlenet_fashion(width, small_input=True).eval()
    assert model.b1.conv.conv.kernel_size == (3, 3) and model.b1.conv.conv.stride == (1, 1)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert model.b3.inception3a.out_channels == sum(round(c * width) for c in (64, 128, 32, 32))
    assert googlenet(width_mult=width, in_channels=2, num_classes=5).eval()(
        torch.randn(1, 2, 64, 64)).shape == (1, 5)


def test_auxiliary_heads_run_in_training_only():
    model = googlenet_fashion(width_mult=0.25, small_input=True, aux_logits=True)
    assert list(model.aux) == ["inception4a", "inception4d"]
    assert all(isinstance(h, InceptionAux) for h in model.aux.values())
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    model.train()
    logits = model(x)
    assert logits.shape == (4, 10) and [a.shape for a in model.aux_outputs] == [(4, 10)] * 2
    loss_fn = AuxLoss(model, weight=0.3)
    ce = nn.functional.cross_entropy
    expected = ce(logits, y) + 0.3 * sum(ce(a, y) for a in model.aux_outputs)
    assert torch.allclose(loss_fn(logits, y), expected)
    # the heads' purpose: their loss sends gradient into the trunk below them
    aux_only = sum(ce(a, y) for a in model.aux_outputs)
    trunk = next(m for m in model.b1.modules() if isinstance(m, nn.Conv2d)).weight
    head = model.aux.inception4a.fc2.weight
    g_trunk, g_head = torch.autograd.grad(aux_only, [trunk, head], retain_graph=True)
    assert float(g_trunk.abs().sum()) > 0 and float(g_head.abs().sum()) > 0
    # and AuxLoss's gradient is the main one plus 0.3 times the heads'
    g_main, = torch.autograd.grad(ce(logits, y), trunk, retain_graph=True)
    g_all, = torch.autograd.grad(loss_fn(logits, y), trunk, retain_graph=True)
    torch.testing.assert_close(g_all, g_main + 0.3 * g_trunk)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert model.aux_outputs == ()
    assert torch.allclose(loss_fn(logits, y), ce(logits, y))
    assert "aux" not in dict(model.stages().named_children())


def test_aux_heads_do_not_change_the_main_path():
    torch.manual_seed(0)
    plain = googlenet_fashion(0.25, small_input=True).eval()
    torch.manual_seed(0)
    with_aux = googlenet_fashion(0.25, small_input=True, aux_logits=True).eval()
    with_aux.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 1, 28, 28)
    assert torch.allclose(plain(x), with_aux(x))


def test_conv_relu_with_and_without_batch_norm():
    plain, bn = conv_relu(3, 8, 3, padding=1), conv_relu(3, 8, 3, padding=1, batch_norm=True)
    assert [type(m) for m in plain] == [nn.Conv2d, nn.ReLU]
    assert [type(m) for m in bn] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert bn.conv.bias is None and bn.bn.eps == 0.001


def test_bad_model_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="width_mult"):
        GoogLeNet(width_mult=0)
    with pytest.raises(ValueError, match="positive"):
        GoogLeNet(in_channels=0)
