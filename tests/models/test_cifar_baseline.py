import pytest
import torch
from torch import nn

from cnnbook.models.cifar_baseline import CifarBaseline
from cnnbook.profiling import count_macs, count_params


def expected_params(widths=(32, 64, 128), convs=2, hidden=256, classes=10, in_channels=3, size=32):
    c_in = in_channels
    total, c = 0, c_in
    for w in widths:
        for _ in range(convs):
            total += c * w * 9 + w
            c = w
    side = size // 2 ** len(widths)
    return total + (c * side * side + 1) * hidden + (hidden + 1) * classes


def expected_macs(widths=(32, 64, 128), convs=2, hidden=256, classes=10, in_channels=3, size=32):
    c_in = in_channels
    total, c, s = 0, c_in, size
    for w in widths:
        for _ in range(convs):
            total += s * s * c * w * 9
            c = w
        s //= 2
    return total + c * s * s * hidden + hidden * classes


@pytest.mark.parametrize("kw", [{}, dict(widths=(16, 32, 64)), dict(convs=1),
                                dict(in_channels=1, widths=(8, 16), size=28)])
def test_shapes_params_and_macs(kw):
    model = CifarBaseline(**kw)
    size = kw.get("size", 32)
    x = torch.randn(2, kw.get("in_channels", 3), size, size)
    assert model(x).shape == (2, 10)
    assert count_params(model) == expected_params(**kw)
    assert count_macs(model, (1, kw.get("in_channels", 3), size, size)) == expected_macs(**kw)


def test_default_is_plain_vgg_style():
    model = CifarBaseline()
    kinds = {type(m) for m in model.modules()}
    assert not kinds & {nn.BatchNorm2d, nn.Dropout, nn.Dropout2d}  # no regulariser at all
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert count_params(model) == 814_122
    assert model[:3](torch.randn(1, 3, 32, 32)).shape == (1, 128, 4, 4)


@pytest.mark.parametrize("kw,message", [(dict(widths=()), "widths"), (dict(widths=(8, 0)), "widths"),
                                        (dict(hidden=0), "positive"), (dict(size=30), "divisible"),
                                        (dict(widths=(4,) * 6), "divisible")])
def test_bad_settings(kw, message):
    with pytest.raises(ValueError, match=message):
        CifarBaseline(**kw)
