"""Cold start is measured in a fresh process, phase by phase."""
from __future__ import annotations

import warnings

import pytest
import torch

from cnnbook.deploy import coldstart, export
from cnnbook.models.cifar_resnet import cifar_resnet


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cold")
    model = cifar_resnet(8, width_mult=0.25).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export.to_torchscript(model, torch.randn(1, 3, 32, 32), folder / "m.pt")
        export.to_onnx(model, torch.randn(1, 3, 32, 32), folder / "m.onnx")
    return folder


@pytest.mark.parametrize("kind, name", [("onnxruntime", "m.onnx"), ("torchscript", "m.pt")])
def test_phases_are_timed(files, kind, name):
    r = coldstart.cold_start(kind, files / name, batch_size=2)
    assert r["kind"] == kind
    for key in ("import_s", "load_s", "first_s", "second_s"):
        assert 0 < r[key] < r["wall_s"]
    assert r["total_s"] == pytest.approx(r["import_s"] + r["load_s"] + r["first_s"])
    assert r["wall_s"] > r["total_s"] + r["second_s"]  # the interpreter's own start and exit


def test_bad_arguments(files, tmp_path):
    with pytest.raises(ValueError, match="unknown kind"):
        coldstart.cold_start("tflite", files / "m.onnx")
    with pytest.raises(FileNotFoundError):
        coldstart.cold_start("onnxruntime", tmp_path / "absent.onnx")
    (tmp_path / "bad.onnx").write_text("not a model")
    with pytest.raises(RuntimeError, match="onnxruntime cold-start process failed"):
        coldstart.cold_start("onnxruntime", tmp_path / "bad.onnx")


def test_serving_without_pytorch(files):
    """ONNX Runtime and the course's predictor start without importing PyTorch (``cnnbook``
    imports its parts lazily); the torch formats import it, so the flag is not constant."""
    from cnnbook.deploy.predictor import save_predictor

    classes = [f"c{i}" for i in range(10)]
    model = cifar_resnet(8, width_mult=0.25).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = save_predictor(model, files / "p.onnx", classes, (0.5,) * 3, (0.25,) * 3)
    assert coldstart.cold_start("predictor", path)["torch_loaded"] is False
    assert coldstart.cold_start("onnxruntime", files / "m.onnx")["torch_loaded"] is False
    assert coldstart.cold_start("torchscript", files / "m.pt")["torch_loaded"] is True


def test_importing_cnnbook_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, cnnbook, cnnbook.deploy.predict; assert 'torch' not in sys.modules; "
            "cnnbook.fit; assert 'torch' in sys.modules; print(cnnbook.settings.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cnnbook.config"
