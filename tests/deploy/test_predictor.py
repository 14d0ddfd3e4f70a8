"""The one-file predictor: preprocessing and class names travel with the model; bad input is explained."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from cnnbook.deploy import predictor as pr
from cnnbook.models.cifar_resnet import cifar_resnet

CLASSES = [f"class{i}" for i in range(10)]
MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = cifar_resnet(8, width_mult=0.5).eval()
    path = tmp_path_factory.mktemp("pred") / "predictor.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr.save_predictor(model, path, CLASSES, MEAN, STD, description="test model")
    return model, path


def _reference(model, batch):
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return torch.softmax(model((torch.from_numpy(batch) - mean) / std), 1).numpy()


def test_probabilities_match_the_model(saved):
    model, path = saved
    p = pr.Predictor(path, threads=1)
    assert p.class_names == CLASSES and p.image_size == 32
    assert json.loads(p.metadata["cnnbook.mean"]) == list(MEAN)
    assert p.metadata["cnnbook.description"] == "test model"
    batch = np.random.default_rng(0).random((7, 3, 32, 32), dtype=np.float32)
    got = p.probabilities(batch)
    assert got.shape == (7, 10)
    assert np.allclose(got.sum(1), 1, atol=1e-5)
    assert np.abs(got - _reference(model, batch)).max() < 1e-5
    assert not list(path.parent.glob(".*.part"))
    assert "10 classes" in repr(p)


def test_predict_from_a_file_an_array_and_a_pil_image(saved, tmp_path):
    model, path = saved
    p = pr.Predictor(path)
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")  # lossless: the same pixels back
    from_file = p.predict(tmp_path / "x.png", k=5)
    assert from_file == p.predict(pixels, k=5) == p.predict(Image.fromarray(pixels), k=5)
    want = _reference(model, (pixels.transpose(2, 0, 1)[None] / 255.0).astype(np.float32))[0]
    names = [c for c, _ in from_file]
    assert names == [CLASSES[i] for i in np.argsort(-want)[:5]]
    assert all(abs(prob - want[CLASSES.index(c)]) < 1e-5 for c, prob in from_file)


def test_preprocess_modes_and_sizes():
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 10))
    assert pr.preprocess(rgba, 32)[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    grey = Image.new("L", (32, 32), 51)
    assert np.allclose(pr.preprocess(grey, 32), 0.2)
    big = Image.new("RGB", (64, 48), (0, 255, 0))
    out = pr.preprocess(big, 32)
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    assert np.allclose(out[1], 1.0)
    with pytest.raises(pr.PredictorError, match="64x48.*32x32"):
        pr.preprocess(big, 32, resize=False)


def test_bad_images(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(pr.PredictorError, match="not an image"):
        pr.load_image(tmp_path / "text.jpg", 32)
    Image.new("RGB", (200, 200), (10, 20, 30)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(pr.PredictorError, match="truncated|not an image"):
        pr.load_image(tmp_path / "cut.jpg", 32)
    with pytest.raises(pr.PredictorError, match="no image file"):
        pr.load_image(tmp_path / "missing.jpg", 32)
    with pytest.raises(pr.PredictorError, match="uint8"):
        pr.load_image(np.zeros((32, 32, 3), np.float32), 32)


def test_bad_model_files(saved, tmp_path):
    from cnnbook.deploy.export import to_onnx

    _, path = saved
    with pytest.raises(pr.PredictorError, match="no model file"):
        pr.Predictor(tmp_path / "none.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(pr.PredictorError, match="empty"):
        pr.Predictor(tmp_path / "empty.onnx")
    data = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(pr.PredictorError, match="truncated or damaged"):
        pr.Predictor(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("hello")
    with pytest.raises(pr.PredictorError, match="not a readable ONNX model"):
        pr.Predictor(tmp_path / "text.onnx")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = to_onnx(cifar_resnet(8, width_mult=0.25).eval(), torch.randn(1, 3, 32, 32),
                        tmp_path / "plain.onnx")
    with pytest.raises(pr.PredictorError, match="not a cnnbook predictor"):
        pr.Predictor(plain)


def test_top_k():
    probs = np.array([0.1, 0.5, 0.05, 0.3, 0.05])
    names = list("abcde")
    assert pr.top_k(probs, names, 3) == [("b", 0.5), ("d", 0.3), ("a", 0.1)]
    assert [n for n, _ in pr.top_k(probs, names, 99)] == ["b", "d", "a", "c", "e"]
    assert all(type(p) is float for _, p in pr.top_k(probs, names))
    with pytest.raises(ValueError):
        pr.top_k(probs, names[:3])


def test_save_refuses_wrong_class_names(tmp_path):
    model = cifar_resnet(8, width_mult=0.25).eval()
    with pytest.raises(ValueError, match="10 outputs but 3"):
        pr.save_predictor(model, tmp_path / "p.onnx", ["a", "b", "c"])
    with pytest.raises(ValueError, match="distinct"):
        pr.save_predictor(model, tmp_path / "p.onnx", ["a"] * 10)
    assert not (tmp_path / "p.onnx").exists()
