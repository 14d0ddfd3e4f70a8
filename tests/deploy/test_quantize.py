import math

import pytest
import torch
from torch import nn
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from cnnbook.deploy import quantize as Q


def test_qrange():
    assert Q.qrange(8) == (-128, 127) and Q.qrange(8, signed=False) == (0, 255)
    assert Q.qrange(4) == (-8, 7)
    for bad in (1, 17, 8.0, True):
        with pytest.raises(ValueError):
            Q.qrange(bad)


def test_per_tensor_affine_matches_minmax_observer():
    torch.manual_seed(0)
    x = torch.randn(1000) * 3 + 1
    obs = MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    obs(x)
    scale, zero = obs.calculate_qparams()
    s, z = Q.qparams(x, 8, symmetric=False)
    assert torch.allclose(s, scale) and int(z) == int(zero)
    q = Q.quantize(x, s, z, 8, signed=False)
    ref = torch.quantize_per_tensor(x, float(scale), int(zero), torch.quint8)
    assert torch.equal(q, ref.int_repr().long())
    assert torch.allclose(Q.dequantize(q, s, z), ref.dequantize())


def test_per_channel_symmetric_matches_library():
    torch.manual_seed(1)
    w = torch.randn(16, 8, 3, 3) * torch.linspace(0.1, 2, 16).reshape(-1, 1, 1, 1)
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                   qscheme=torch.per_channel_symmetric)
    obs(w)
    scale, zero = obs.calculate_qparams()
    s, z = Q.qparams(w, 8, symmetric=True, axis=0)
    assert torch.allclose(s, scale) and torch.equal(z, zero.long())
    q = Q.quantize(w, s, z, 8, axis=0)
    ref = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
    assert torch.equal(q, ref.int_repr().long())
    assert torch.allclose(Q.dequantize(q, s, z, axis=0), ref.dequantize())
    assert torch.allclose(Q.fake_quantize(w, 8, True, 0),
                          torch.fake_quantize_per_channel_affine(w, scale, zero.int(), 0,
                                                                 -128, 127))


def test_zero_is_exact_and_error_within_half_a_step():
    x = torch.tensor([-1.0, 0.0, 0.3, 2.5])
    for sym in (True, False):
        s, z = Q.qparams(x, 8, symmetric=sym)
        xq = Q.fake_quantize(x, 8, symmetric=sym)
        assert xq[1] == 0
        assert (xq - x).abs().max() <= s / 2 + 1e-7


def test_per_channel_beats_per_tensor_on_uneven_channels():
    torch.manual_seed(0)
    w = torch.randn(8, 50) * torch.tensor([0.01] * 7 + [10.0]).reshape(-1, 1)
    assert Q.quant_error(w, 8, axis=0)["rel_rms"] < Q.quant_error(w, 8)["rel_rms"]
    e4, e8 = Q.quant_error(w, 4, axis=0), Q.quant_error(w, 8, axis=0)
    assert e8["sqnr_db"] > e4["sqnr_db"] + 15    # about 6 dB per bit
    assert e4["levels_used"] <= 8 * 16


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        Q.qparams(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError):
        Q.qparams(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="axis"):
        Q.qparams(torch.ones(3), axis=2)
    z = Q.quant_error(torch.zeros(5))
    assert z["rel_rms"] == 0 and z["sqnr_db"] == math.inf


def _tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


def test_pt2e_static_quantisation_is_close_to_fp32():
    net = _tiny_net()
    x = torch.randn(8, 3, 8, 8)
    q = Q.quantize_pt2e(net, [torch.randn(8, 3, 8, 8) for _ in range(3)], x)
    ops = Q.count_quantized_ops(q)
    assert ops["quantize"] > 0 and ops["dequantize"] > 0
    with torch.no_grad():
        ref, out = net(x), q(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 0.1 * ref.abs().max() + 1e-3
    assert q(torch.randn(3, 3, 8, 8)).shape == (3, 4)   # batch size stays free
    q.eval()                                             # goes where any nn.Module goes
    with pytest.raises(ValueError, match="calibration"):
        Q.quantize_pt2e(net, [], x)


def test_pt2e_dynamic_measures_activation_ranges_at_run_time():
    net = _tiny_net()
    q = Q.quantize_pt2e(net, [], torch.randn(4, 3, 8, 8), dynamic=True)
    targets = [str(n.target) for n in q.graph.nodes]
    assert any("choose_qparams" in t for t in targets)       # scale and zero point per batch
    assert Q.count_quantized_ops(q)["quantize"] > 0
    with torch.no_grad():
        x = torch.randn(4, 3, 8, 8)
        ref = net(x)
        assert q(x).shape == ref.shape and torch.isfinite(q(x)).all()
        # as close as static int8: the weights were observed (not left at scale 1, zero 0)
        assert (q(x) - ref).abs().max() < 0.1 * ref.abs().max() + 1e-3


def test_one_export_serves_several_recipes():
    """An exported graph can be passed instead of the model: it is copied, not changed, and
    gives the same int8 model as exporting afresh."""
    net = _tiny_net()
    x = torch.randn(8, 3, 8, 8)
    calibration = [torch.randn(8, 3, 8, 8) for _ in range(2)]
    graph = Q.export_model(net, x)
    nodes = [str(n.target) for n in graph.graph.nodes]
    static = Q.quantize_pt2e(graph, calibration, x)
    dynamic = Q.quantize_pt2e(graph, [], x, dynamic=True)
    assert [str(n.target) for n in graph.graph.nodes] == nodes        # untouched
    assert any("choose_qparams" in str(n.target) for n in dynamic.graph.nodes)
    assert not any("choose_qparams" in str(n.target) for n in static.graph.nodes)
    fresh = Q.quantize_pt2e(net, calibration, x)
    with torch.no_grad():
        assert torch.equal(static(x), fresh(x))


def _bn_training_flags(graph_module):
    return [n.args[5] for n in graph_module.graph.nodes if "batch_norm" in str(n.target)]


def test_qat_graph_starts_in_train_mode():
    """prepare_qat's graph is in train mode already: .train() leaves it alone, .eval() swaps
    batch norm to its running statistics and .train() swaps it back."""
    net = _tiny_net()
    prepared = Q.prepare_qat(net, torch.randn(8, 3, 8, 8))
    code = prepared.code
    assert _bn_training_flags(prepared) == [True]       # batch statistics
    prepared.train()
    assert prepared.code == code                        # not rewritten
    prepared.eval()
    assert _bn_training_flags(prepared) == [False]      # running statistics
    prepared.train()
    assert _bn_training_flags(prepared) == [True]


def test_qat_trains_and_converts():
    net = _tiny_net()
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))
    prepared = Q.prepare_qat(net, x)
    opt = torch.optim.SGD(prepared.parameters(), lr=0.1)
    prepared.train()
    losses = []
    for _ in range(10):
        loss = nn.functional.cross_entropy(prepared(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    q = Q.convert_qat(prepared)
    q.eval()
    assert Q.count_quantized_ops(q)["quantize"] > 0
    assert q(x).shape == (16, 4)


def test_resnet_with_a_reused_relu_quantises_and_compiles_to_int8_kernels():
    """A BasicBlock calls one ReLU module twice (as torchvision's does). Non-strict export
    merges both calls into one partition and the x86 quantizer refuses it; the compiled
    int8 graph must also build (Inductor's freezing) and stay close to the reference graph."""
    from cnnbook.models.cifar_resnet import CifarResNet

    torch.manual_seed(0)
    net = CifarResNet(blocks_per_stage=1, width_mult=0.5).eval()
    x = torch.randn(4, 3, 16, 16)
    q = Q.quantize_pt2e(net, [x], x)
    assert Q.count_quantized_ops(q)["quantize"] >= 6
    from cnnbook.deploy.benchmark import size_mb          # counts what the graph reads:
    assert size_mb(q) < size_mb(net) / 3                  # int8 weights, not the stale fp32 ones
    compiled = Q.compile_int8(q, x)
    with torch.no_grad():
        ref, out = q(x), compiled(x)
        assert out.shape == (4, 10)
        assert (out - ref).abs().max() < 0.05 * ref.abs().max() + 1e-3
        assert compiled(x[:1]).shape == (1, 10)            # a new batch size recompiles
    qat = Q.prepare_qat(net, x)                             # the QAT pattern has a BN too
    qat(x).sum().backward()
    assert Q.count_quantized_ops(Q.convert_qat(qat))["quantize"] >= 6
