"""A predictor that is one file: an ONNX model that carries its preprocessing and class names.

A model file alone is not enough to serve a classifier: the server must also know the input
size, how to turn a photo into the tensor the network was trained on, and what the ten
outputs mean. Kept in a separate config, those drift apart from the weights. Here they
travel inside the ``.onnx`` file:

* in the **graph**: the per-channel normalisation ``(x - mean) / std`` before the network
  and the softmax after it, so the graph takes RGB pixels scaled to [0, 1] and returns
  probabilities;
* in the model's **metadata_props** (string key/value pairs ONNX keeps beside the graph):
  the class names, the input size, the resize rule and a format tag.

``save_predictor`` (needs PyTorch) writes the file atomically; ``Predictor`` (needs only
numpy, Pillow and ONNX Runtime, no PyTorch) loads it in any process and classifies image
files. Anything wrong with the input, an unreadable or truncated model file, a file that
is not an image, an image of the wrong size with resizing switched off, raises
:class:`PredictorError` with a message a user can act on.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["FORMAT", "PredictorError", "Predictor", "save_predictor", "load_image",
           "preprocess", "top_k"]

FORMAT = "cnnbook-predictor/1"
_KEYS = ("cnnbook.format", "cnnbook.classes", "cnnbook.image_size", "cnnbook.resize")


class PredictorError(ValueError):
    """Bad input to the predictor (model file or image), with a message for the user."""


def preprocess(image: Image.Image, image_size: int, resize: bool = True) -> np.ndarray:
    """A PIL image -> float32 array (3, S, S) of RGB values in [0, 1], the graph's input.

    Grey, palette and RGBA images become RGB (alpha dropped). An image that is not
    ``S x S`` is resized with bilinear interpolation (antialiased when shrinking) if
    ``resize``, else refused with a ``PredictorError`` naming both sizes.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (image_size, image_size):
        if not resize:
            raise PredictorError(f"the image is {image.size[0]}x{image.size[1]} pixels but the "
                                 f"model expects {image_size}x{image_size}; resize it or allow "
                                 "resizing")
        image = image.resize((image_size, image_size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def load_image(source, image_size: int, resize: bool = True) -> tuple[np.ndarray, tuple]:
    """Open ``source`` (a path, a PIL image or an HxWx3 uint8 array) and preprocess it.

    Returns the (3, S, S) array and the original (width, height). A missing file, a file
    that is not an image, or a truncated one raises ``PredictorError``.
    """
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] not in (1, 3, 4):
            raise PredictorError(f"an image array must be H x W x 1/3/4 uint8, got "
                                 f"{source.dtype} {source.shape}")
        image = Image.fromarray(source.squeeze(2) if source.shape[2] == 1 else source)
    else:
        path = Path(source)
        if not path.is_file():
            raise PredictorError(f"no image file at {path}")
        try:
            image = Image.open(path)
            image.load()  # decode now: a truncated file fails here, not later
        except UnidentifiedImageError:
            raise PredictorError(f"{path} is not an image (Pillow cannot identify its format)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise PredictorError(f"{path} could not be decoded as an image ({exc}); is it "
                                 "truncated or damaged?") from None
        try:
            return preprocess(image, image_size, resize), image.size
        except PredictorError as exc:
            raise PredictorError(f"{path}: {exc}") from None
    return preprocess(image, image_size, resize), image.size


def top_k(probabilities: np.ndarray, class_names, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one probability vector as (name, probability),
    most probable first (ties keep the class order)."""
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if len(probabilities) != len(class_names):
        raise ValueError(f"{len(probabilities)} probabilities for {len(class_names)} classes")
    k = max(0, min(int(k), len(class_names)))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def save_predictor(model, path, class_names, mean=None, std=None, image_size: int = 32,
                   description: str = "") -> Path:
    """Write ``model`` (logits from normalised images) as a self-contained predictor file.

    The graph gets ``(x - mean) / std`` in front (identity if ``mean`` is None) and a
    softmax at the end; the class names, the input size and the resize rule go into the
    metadata. The batch dimension stays dynamic. Written atomically.
    """
    import torch
    from torch import nn

    from cnnbook.deploy.export import to_onnx

    class_names = [str(c) for c in class_names]
    if len(set(class_names)) != len(class_names) or not class_names:
        raise ValueError("class names must be a non-empty list of distinct names")
    channels = 3 if mean is None else len(mean)

    class Deployable(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            m = torch.zeros(channels) if mean is None else torch.tensor(mean, dtype=torch.float32)
            s = torch.ones(channels) if std is None else torch.tensor(std, dtype=torch.float32)
            self.register_buffer("mean", m.view(1, -1, 1, 1))
            self.register_buffer("std", s.view(1, -1, 1, 1))

        def forward(self, x):
            return torch.softmax(self.model((x - self.mean) / self.std), dim=1)

    wrapped = Deployable().cpu().eval()
    example = torch.rand(2, channels, image_size, image_size)
    with torch.no_grad():
        n_out = wrapped(example).shape[1]
    if n_out != len(class_names):
        raise ValueError(f"the model has {n_out} outputs but {len(class_names)} class names")
    metadata = {"cnnbook.format": FORMAT, "cnnbook.classes": json.dumps(class_names),
                "cnnbook.image_size": str(image_size), "cnnbook.resize": "bilinear",
                "cnnbook.mean": json.dumps(list(mean) if mean is not None else None),
                "cnnbook.std": json.dumps(list(std) if std is not None else None),
                "cnnbook.description": description}
    return to_onnx(wrapped, example, path, metadata=metadata)


class Predictor:
    """Load a predictor file written by ``save_predictor`` and classify images with it.

    Needs numpy, Pillow and ONNX Runtime only. ``threads`` sets ONNX Runtime's intra-op
    threads (None: its default).
    """

    def __init__(self, path, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise PredictorError(f"no model file at {path}")
        if os.path.getsize(path) == 0:
            raise PredictorError(f"the model file {path} is empty")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: a bad file is reported below, once
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types for damaged files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PredictorError(f"{path} is not a readable ONNX model (truncated or damaged?): "
                                 f"{first}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in _KEYS if k not in meta]
        if missing:
            raise PredictorError(f"{path} is an ONNX model but not a cnnbook predictor "
                                 f"(metadata {', '.join(missing)} missing); write it with "
                                 "cnnbook.deploy.predictor.save_predictor")
        if meta["cnnbook.format"] != FORMAT:
            raise PredictorError(f"{path} has predictor format {meta['cnnbook.format']!r}, this "
                                 f"code reads {FORMAT!r}")
        try:
            self.class_names = [str(c) for c in json.loads(meta["cnnbook.classes"])]
            self.image_size = int(meta["cnnbook.image_size"])
        except (ValueError, TypeError) as exc:
            raise PredictorError(f"{path} has damaged predictor metadata: {exc}") from None
        self.path = path
        self.metadata = dict(meta)
        self.input_name = self.session.get_inputs()[0].name

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) for a float32 batch (N, 3, S, S) in [0, 1]."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(None, {self.input_name: batch})[0]

    def predict(self, image, k: int = 5, resize: bool = True) -> list[tuple[str, float]]:
        """Top-``k`` (class name, probability) for one image (path, PIL image or uint8 array)."""
        array, _size = load_image(image, self.image_size, resize)
        return top_k(self.probabilities(array[None])[0], self.class_names, k)

    def __repr__(self) -> str:
        return (f"Predictor({str(self.path)!r}, {len(self.class_names)} classes, "
                f"{self.image_size}x{self.image_size} input)")
