import pytest
import torch

from cnnbook.data import augment as A
from cnnbook.widgets.augmentation import AugmentationExplorer

NAMES = ("a", "b", "c")


def images(n=10, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    x = torch.nn.functional.avg_pool2d(x, 5, 1, 2)  # some structure for the transforms to move
    return (x * 255).to(torch.uint8)


@pytest.fixture
def explorer():
    return AugmentationExplorer(images(), labels=torch.arange(10) % 3, class_names=NAMES,
                                n_images=4, rows=2)


def test_first_render(explorer):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    assert s["steps"] == ["RandomRotation", "ColorJitter", "RandomAffine", "RandomErasing"]
    assert s["images"] == 4 and s["rows"] == 2 and len(s["change"]) == 2
    assert all(c > 0 for c in s["change"]) and s["in_range"]
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_state_is_the_pure_function(explorer):
    ref = A.preview(images()[:4], A.sources_recipe(), seed=0, rows=2)
    assert explorer.state["change"] == pytest.approx(ref["change"])
    explorer.controls["seed"].value = 5
    assert explorer.state["change"] != pytest.approx(ref["change"])
    explorer.controls["seed"].value = 0
    assert explorer.state["change"] == pytest.approx(ref["change"])


def test_everything_off_is_the_identity(explorer):
    for name in ("rotate", "jitter", "affine", "erase"):
        explorer.controls[name].value = False
    assert explorer.state["steps"] == [] and explorer.state["change"] == [0.0, 0.0]
    explorer.controls["flip"].value = True
    explorer.controls["crop"].value = True
    assert explorer.state["steps"] == ["RandomCrop", "RandomHorizontalFlip"]


def test_strength_changes_the_picture(explorer):
    before = explorer.state["change"]
    picture = explorer.image.value
    explorer.controls["degrees"].value = 90.0
    assert sum(explorer.state["change"]) > sum(before)
    assert explorer.image.value != picture


def test_class_filter(explorer):
    explorer.controls["klass"].value = "b"
    assert explorer.state["klass"] == "b" and explorer.state["images"] == 3  # labels 1, 4, 7
    assert explorer.pick("b", 2).shape == (2, 3, 32, 32)


def test_bad_seed_shows_a_message_and_keeps_the_picture(explorer):
    picture = explorer.image.value
    explorer.controls["seed"].value = -1
    assert "seed" in explorer.state["error"] and "seed" in explorer.message.value
    assert explorer.image.value == picture
    explorer.controls["seed"].value = 3
    assert explorer.state["error"] is None and explorer.message.value == ""


def test_every_control_at_its_extremes_never_raises():
    explorer = AugmentationExplorer(images(4, 16), labels=torch.arange(4) % 3, class_names=NAMES,
                                    n_images=1, rows=1)  # small: about fifty renders follow
    for name, control in explorer.controls.items():
        if hasattr(control, "options"):
            values = list(control.options)
        elif isinstance(control.value, bool):
            values = [True, False]
        elif isinstance(control.value, tuple):  # the range slider
            values = [(control.min, control.min), (control.max, control.max),
                      (control.min, control.max)]
        elif hasattr(control, "min"):
            values = [control.min, control.max]
        else:  # IntText: any integer
            values = [0, -(2 ** 70), 2 ** 70, 2 ** 63 - 1]
        original = control.value
        for v in values:
            control.value = v  # must not raise; errors become messages
            assert isinstance(explorer.state, dict)
            if explorer.state["error"] is None:
                assert explorer.state["in_range"]
        control.value = original
    assert explorer.state["error"] is None


def test_without_labels_only_all_is_offered():
    ex = AugmentationExplorer(images(3), n_images=12, rows=1)
    assert list(ex.controls["klass"].options) == ["all"] and ex.state["images"] == 3


def test_bad_construction():
    with pytest.raises(ValueError, match="RGB batch"):
        AugmentationExplorer(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


def test_preview_checks_inputs():
    with pytest.raises(ValueError, match="rows"):
        A.preview(images(2), A.Compose([]), rows=0)
    with pytest.raises(ValueError, match="non-empty"):
        A.preview(torch.zeros(0, 3, 8, 8), A.Compose([]))


def test_default_images_are_cifar10_classes_interleaved():
    from cnnbook.data import DatasetUnavailable
    from cnnbook.widgets.augmentation import cifar10_examples
    try:
        imgs, labels, names = cifar10_examples(per_class=2)
    except DatasetUnavailable as exc:
        pytest.skip(f"no CIFAR-10 here: {exc}")
    assert imgs.shape == (20, 3, 32, 32) and labels[:10].tolist() == list(range(10))
    assert names[3] == "cat"
    ex = AugmentationExplorer(n_images=10, rows=1)
    assert ex.state["images"] == 10 and "cat" in ex.controls["klass"].options
