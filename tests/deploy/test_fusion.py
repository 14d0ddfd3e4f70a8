import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from cnnbook.deploy.fusion import conv_bn_pairs, fold_conv_bn, fuse_model
from cnnbook.models.cifar_resnet import resnet20, resnet9


def _random_bn(channels, affine=True):
    bn = nn.BatchNorm2d(channels, affine=affine)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.2, 3.0)
        if affine:
            bn.weight.normal_()
            bn.bias.normal_()
    return bn.eval()


@pytest.mark.parametrize("bias,affine,groups", [(False, True, 1), (True, True, 1),
                                                (False, False, 1), (True, True, 4)])
def test_fold_matches_formula_library_and_unfused(bias, affine, groups):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, stride=2, padding=1, bias=bias, groups=groups).eval()
    bn = _random_bn(12, affine)
    x = torch.randn(2, 8, 9, 9)
    fused = fold_conv_bn(conv, bn)
    lib = fuse_conv_bn_eval(conv, bn)
    assert torch.allclose(fused.weight, lib.weight, atol=1e-6)
    assert torch.allclose(fused.bias, lib.bias, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(fused(x), bn(conv(x)), atol=1e-5)
    # the formula, written out
    s = (bn.weight if affine else 1) / torch.sqrt(bn.running_var + bn.eps)
    b = conv.bias if bias else 0
    assert torch.allclose(fused.bias, (b - bn.running_mean) * s + (bn.bias if affine else 0),
                          atol=1e-6)


def test_fold_refuses_mismatches():
    with pytest.raises(ValueError, match="channels"):
        fold_conv_bn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(5))
    with pytest.raises(TypeError):
        fold_conv_bn(nn.Linear(3, 4), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="running"):
        fold_conv_bn(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))


@pytest.mark.parametrize("make,pairs", [(resnet20, 19), (lambda: resnet20(shortcut="B"), 21),
                                        (lambda: resnet9((8, 16, 32, 64)), 8)])
def test_fused_model_equals_unfused_and_has_no_batch_norm(make, pairs):
    torch.manual_seed(0)
    model = make()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    model.eval()
    assert len(conv_bn_pairs(model)) == pairs
    fused = fuse_model(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())   # original untouched
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fused(x), model(x), atol=1e-5, rtol=1e-5)
