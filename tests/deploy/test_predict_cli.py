"""``python -m cnnbook.deploy.predict`` in a fresh process: top-5 output, exit code 2 on bad input."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from cnnbook.data.catalog import CIFAR10_CLASSES
from cnnbook.deploy.predictor import save_predictor
from cnnbook.models.cifar_resnet import cifar_resnet


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_predictor(cifar_resnet(8, width_mult=0.5).eval(), folder / "model.onnx",
                       CIFAR10_CLASSES, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "ok.jpg")
    Image.fromarray(rng.integers(0, 256, (48, 60, 3), dtype=np.uint8)).save(folder / "big.png")
    (folder / "notes.jpg").write_text("this is not an image")
    data = (folder / "model.onnx").read_bytes()
    (folder / "cut.onnx").write_bytes(data[: len(data) // 2])
    return folder


def run(*args):
    return subprocess.run([sys.executable, "-m", "cnnbook.deploy.predict", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_prints_top5(files):
    proc = run(files / "model.onnx", files / "ok.jpg")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].endswith("ok.jpg") and len(lines) == 6
    names = [line.split()[0] for line in lines[1:]]
    probs = [float(line.split()[1]) for line in lines[1:]]
    assert set(names) <= set(CIFAR10_CLASSES) and len(set(names)) == 5
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-3


def test_resizes_with_a_note_or_refuses(files):
    proc = run(files / "model.onnx", files / "big.png", "--top", "3")
    assert proc.returncode == 0, proc.stderr
    assert "60x48, resized to 32x32" in proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 4
    proc = run(files / "model.onnx", files / "big.png", "--no-resize")
    assert proc.returncode == 2
    assert "60x48" in proc.stderr and "32x32" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("model, image, message", [
    ("model.onnx", "notes.jpg", "not an image"),
    ("model.onnx", "absent.jpg", "no image file"),
    ("cut.onnx", "ok.jpg", "truncated or damaged"),
    ("absent.onnx", "ok.jpg", "no model file"),
])
def test_bad_input_exit_2(files, model, image, message):
    proc = run(files / model, files / image)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_one_bad_image_among_good_ones(files):
    proc = run(files / "model.onnx", files / "ok.jpg", files / "notes.jpg")
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines()[0].endswith("ok.jpg")  # the good one still printed
    assert "not an image" in proc.stderr


def test_usage_errors_exit_2(files):
    assert run(files / "model.onnx").returncode == 2          # no image given
    assert run(files / "model.onnx", files / "ok.jpg", "--top", "0").returncode == 2
