import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.vgg import (VGG, VGG11_ARCH, VGG_C_ARCH, VGG_CONFIGS, vgg11, vgg13, vgg16,
                                vgg19, vgg_block, vgg_config, vgg_fashion)
from cnnbook.profiling import count_macs, count_params

# Full-size VGGs have 133-144M parameters: build them on the "meta" device (shapes only, no
# memory, no initialisation), where parameter counts and FlopCounterMode still work.
META = torch.device("meta")

OURS = {"vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19}
PUBLISHED = {"vgg11": 132_863_336, "vgg16": 138_357_544}


def _weights(arch: str, bn: bool):
    name = arch.upper() + ("_BN" if bn else "") + "_Weights"
    return getattr(torchvision.models, name).IMAGENET1K_V1


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("arch", OURS)
def test_parameter_counts_are_torchvisions(arch, bn):
    with META:
        ours = count_params(OURS[arch](batch_norm=bn))
        tv_name = arch + ("_bn" if bn else "")
        theirs = count_params(getattr(torchvision.models, tv_name)(weights=None))
    assert ours == theirs == _weights(arch, bn).meta["num_params"]
    if not bn and arch in PUBLISHED:
        assert ours == PUBLISHED[arch]


@pytest.mark.parametrize("bn", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("arch", OURS)
def test_macs_match_torchvisions_published_gflops(arch, bn):
    with META:
        model = OURS[arch](batch_norm=bn)
    macs = count_macs(model, (1, 3, 224, 224))
    assert macs / 1e9 == pytest.approx(_weights(arch, bn).meta["_ops"], rel=0.01)


def test_paper_configurations():
    with META:
        models = {name: vgg_config(name) for name in VGG_CONFIGS}
        models["c"], vgg_a, vgg_e = vgg_config("c"), vgg11(), vgg19()  # names are case-insensitive
    params = {name: count_params(models[name]) for name in VGG_CONFIGS}
    # the paper's Table 2, in millions: A and A-LRN 133, B 133, C 134, D 138, E 144
    assert {k: round(v / 1e6) for k, v in params.items()} == {
        "A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}
    assert params["A"] == params["A-LRN"]  # LRN has no parameters
    assert params["A"] == count_params(vgg_a) and params["E"] == count_params(vgg_e)
    assert isinstance(models["A-LRN"].block1.lrn, nn.LocalResponseNorm)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in models["A"].modules())
    c = models["c"]
    one_by_one = [m for m in c.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(one_by_one) == 3
    assert sum(isinstance(m, nn.Conv2d) for m in c.modules()) == 13  # + 3 FC = 16 layers
    with pytest.raises(ValueError, match="unknown VGG configuration"):
        vgg_config("F")


@pytest.mark.parametrize("name, layers", [("A", 11), ("B", 13), ("C", 16), ("D", 16), ("E", 19)])
def test_configuration_depths(name, layers):
    with META:
        model = vgg_config(name)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == layers


def test_vgg_block_halves_the_resolution_and_keeps_it_in_the_convs():
    block = vgg_block(2, 3, 8)
    assert [type(m) for m in block] == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU, nn.MaxPool2d]
    assert block(torch.randn(2, 3, 32, 32)).shape == (2, 8, 16, 16)
    assert block[:-1](torch.randn(2, 3, 32, 32)).shape == (2, 8, 32, 32)
    assert vgg_block(1, 3, 8)(torch.randn(1, 3, 7, 7)).shape[-1] == 3
    assert vgg_block(1, 3, 8, ceil_mode=True)(torch.randn(1, 3, 7, 7)).shape[-1] == 4
    bn = vgg_block(3, 4, 4, kernel_sizes=(3, 3, 1), batch_norm=True)
    assert bn.conv3.kernel_size == (1, 1) and isinstance(bn.bn1, nn.BatchNorm2d)


@pytest.mark.parametrize("kwargs", [dict(num_convs=0, in_channels=3, out_channels=8),
                                    dict(num_convs=1, in_channels=0, out_channels=8),
                                    dict(num_convs=2, in_channels=3, out_channels=8,
                                         kernel_sizes=(3,)),
                                    dict(num_convs=1, in_channels=3, out_channels=8,
                                         kernel_sizes=(2,))])
def test_vgg_block_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        vgg_block(**kwargs)


def test_bad_model_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="width_mult"):
        VGG(width_mult=0)
    with pytest.raises(ValueError, match="arch"):
        VGG(arch=())
    with pytest.raises(ValueError, match="arch rows"):
        VGG(arch=((1,),))
    with pytest.raises(ValueError, match="positive"):
        VGG(num_classes=0)


def test_d2l_course_model_at_224_px():
    model = vgg_fashion()  # VGG-11, channels divided by 4, 1 input channel, 10 classes
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64, 128, 128, 128, 128]
    assert convs[0].in_channels == 1
    assert model(torch.randn(2, 1, 224, 224)).shape == (2, 10)
    # the last map is 7x7, so the adaptive pool does nothing and the FC sees 128*7*7 inputs
    assert model.classifier.fc1.in_features == 128 * 7 * 7
    feats = model[:5](torch.randn(1, 1, 224, 224))
    assert feats.shape == (1, 128, 7, 7)
    assert torch.equal(model.pool(feats), feats)


def test_small_input_fits_28_px_through_five_pools():
    model = vgg_fashion(width_mult=0.125, small_input=True, fc_units=64).eval()
    x = torch.randn(2, 1, 28, 28)
    assert model(x).shape == (2, 10)
    sizes = [x.shape[-1]]
    for i in range(1, 6):
        x = getattr(model, f"block{i}")(x)
        sizes.append(x.shape[-1])
    assert sizes == [28, 14, 7, 4, 2, 1]
    assert model.classifier.fc1.in_features == 64
    with pytest.raises(RuntimeError):  # floor pooling cannot take 28 px through five halvings
        vgg_fashion(width_mult=0.125, fc_units=64, pool_size=1)(torch.randn(1, 1, 28, 28))


@pytest.mark.parametrize("arch", [VGG11_ARCH, VGG_C_ARCH])
@pytest.mark.parametrize("bn", [False, True])
def test_output_shapes_for_any_channels_classes_and_width(arch, bn):
    model = VGG(arch, num_classes=7, in_channels=2, width_mult=0.125, batch_norm=bn,
                fc_units=32, pool_size=1).eval()
    assert model(torch.randn(2, 2, 32, 32)).shape == (2, 7)
    assert model(torch.randn(1, 2, 64, 64)).shape == (1, 7)  # the adaptive pool absorbs the size


def test_width_scales_conv_parameters_quadratically_but_not_the_fc_layers():
    def conv_params(model):
        return sum(p.numel() for name, p in model.named_parameters() if name.startswith("block"))
    with META:
        full, quarter = vgg11(), vgg11(width_mult=0.25)
    ratio = conv_params(quarter) / conv_params(full)
    assert 1 / 16 < ratio < 1 / 15  # weights scale by 1/16, biases by 1/4
    assert quarter.classifier.fc2.weight.shape == (4096, 4096)


def test_most_macs_in_convs_most_parameters_in_fc_layers():
    with META:
        model = vgg16()
    fc = sum(p.numel() for p in model.classifier.parameters())
    assert fc / count_params(model) > 0.85
    conv_macs = count_macs(model[:5], (1, 3, 224, 224))
    assert conv_macs / count_macs(model, (1, 3, 224, 224)) > 0.99
