import pytest
import torch

from cnnbook.photos import PHOTOS, load_photo


def test_every_photo_loads_in_unit_range():
    for name in PHOTOS:
        x = load_photo(name)
        assert x.ndim == 2 and x.dtype == torch.float32
        assert 0 <= float(x.min()) and float(x.max()) <= 1


def test_colour_and_resize_keep_aspect():
    x = load_photo("coffee", size=50, gray=False)  # 400 x 600 original
    assert x.shape == (3, 50, 75)
    g = load_photo("camera", size=32)  # grey original expanded to 3 channels on request
    assert g.shape == (32, 32)
    assert load_photo("camera", gray=False).shape[0] == 3


def test_bad_names_and_sizes_are_clear():
    with pytest.raises(ValueError, match="unknown photo"):
        load_photo("no-such-photo")
    with pytest.raises(ValueError, match="positive"):
        load_photo("camera", size=0)
