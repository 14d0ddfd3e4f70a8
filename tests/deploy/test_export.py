"""Every export path gives eager's outputs (ONNX Runtime within 1e-4), and its files are valid."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from cnnbook.deploy import export
from cnnbook.models.cifar_resnet import cifar_resnet

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning",
                                        "ignore::UserWarning")


def small_model(seed: int = 0):
    """An untrained ResNet-8 (half width) with random batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = cifar_resnet(8, width_mult=0.5)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paths")
    model = small_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = export.build_paths(model, torch.randn(2, 3, 32, 32), folder,
                                   compile_backend="aot_eager")
    return model, paths, folder


@pytest.mark.parametrize("name", ["torchscript", "export", "onnxruntime", "compile"])
def test_paths_equal_eager(built, name):
    model, paths, _ = built
    g = torch.Generator().manual_seed(1)
    inputs = [torch.randn(b, 3, 32, 32, generator=g) for b in (1, 3, 17)]
    diff = export.max_abs_difference(paths[name], model, inputs)
    assert diff < 1e-4, f"{name}: max |difference| {diff}"


def test_bf16_is_close_not_equal(built):
    model, paths, _ = built
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(x)
    got = paths["bf16"](x)
    assert got.dtype == torch.float32
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) < 0.1 * scale + 0.05


def test_files_written_and_reload(built):
    model, paths, folder = built
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
    assert paths["torchscript"].artefact == folder / "model.pt"
    reloaded = torch.jit.load(str(folder / "model.pt"))
    assert torch.allclose(reloaded(x), want, atol=1e-5)
    program = torch.export.load(str(folder / "model.pt2"))
    assert torch.allclose(program.module()(x), want, atol=1e-5)
    assert not list(folder.glob(".*.part")), "a temporary file was left behind"
    for p in ("model.pt", "model.pt2", "model.onnx"):
        assert export.file_mb(folder / p) > 0


def test_onnx_file_is_valid_with_dynamic_batch(built):
    import onnx

    _, _, folder = built
    proto = onnx.load(str(folder / "model.onnx"))
    onnx.checker.check_model(proto)
    (inp,) = proto.graph.input
    assert inp.name == "image"
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value")  # symbolic batch
    assert [d.dim_value for d in dims[1:]] == [3, 32, 32]
    assert proto.graph.output[0].name == "logits"


def test_onnx_metadata_and_static_batch(tmp_path):
    import onnx

    model = small_model(3)
    path = export.to_onnx(model, torch.randn(2, 3, 32, 32), tmp_path / "m.onnx",
                          dynamic_batch=False, metadata={"who": "test"})
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["who"] == "test"
    session = export.onnx_session(path, threads=1)
    out = session.run(None, {"image": np.zeros((2, 3, 32, 32), np.float32)})[0]
    assert out.shape == (2, 10)
    with pytest.raises(Exception):  # a static graph refuses any other batch size
        session.run(None, {"image": np.zeros((3, 3, 32, 32), np.float32)})
    with pytest.raises(ValueError, match="str"):
        export.to_onnx(model, torch.randn(1, 3, 32, 32), tmp_path / "n.onnx", metadata={"a": 1})
    assert not (tmp_path / "n.onnx").exists()


def test_onnx_from_exported_program(tmp_path):
    model = small_model(4)
    program = export.to_exported(model, torch.randn(2, 3, 32, 32))
    path = export.to_onnx(program, torch.randn(2, 3, 32, 32), tmp_path / "ep.onnx")
    session = export.onnx_session(path)
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        want = model(x).numpy()
    assert np.abs(session.run(None, {"image": x.numpy()})[0] - want).max() < 1e-4


def test_threads_pinned(built):
    model, paths, _ = built
    ort_path = paths["onnxruntime"]
    x = torch.randn(4, 3, 32, 32)
    ort_path.set_threads(1)
    one = ort_path(x)
    ort_path.set_threads(2)
    two = ort_path(x)
    assert set(ort_path._sessions) >= {1, 2}
    assert torch.allclose(one, two, atol=1e-5)
    before = torch.get_num_threads()
    try:
        paths["eager"].set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError):
            ort_path.set_threads(bad)
    with pytest.raises(ValueError):
        export.onnx_session(paths["onnxruntime"].artefact, threads=0)


def test_bf16_support_reports_this_cpu():
    info = export.bf16_support()
    assert set(info) == {"capability", "native_flags", "onednn_bf16", "native"}
    assert isinstance(info["capability"], str) and isinstance(info["native"], bool)
    assert info["native"] == (info["onednn_bf16"] or bool(info["native_flags"]))


def test_bad_arguments(tmp_path):
    model = small_model()
    with pytest.raises(ValueError, match="unknown path"):
        export.build_paths(model, torch.randn(1, 3, 32, 32), tmp_path, paths=("eager", "tflite"))
    with pytest.raises(ValueError, match="trace"):
        export.to_torchscript(model, torch.randn(1, 3, 32, 32), method="jit")


def test_max_abs_difference_sees_a_difference():
    model = small_model()
    x = [torch.randn(2, 3, 32, 32)]
    assert export.max_abs_difference(lambda t: model(t) + 0.5, model, x) == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ValueError, match="shape"):
        export.max_abs_difference(lambda t: model(t)[:1], model, x)


def test_saved_program_holds_its_example_not_the_tensor_it_was_sliced_from(tmp_path):
    model = small_model(4)
    many = torch.randn(2_000, 3, 32, 32)                 # 24.6 MB
    export.to_exported(model, many[:2], tmp_path / "m.pt2")
    assert (tmp_path / "m.pt2").stat().st_size < 5e6     # the weights and two images
    program = torch.export.load(str(tmp_path / "m.pt2"))
    with torch.no_grad():
        assert torch.allclose(program.module()(many[:3]), model(many[:3]), atol=1e-5)
