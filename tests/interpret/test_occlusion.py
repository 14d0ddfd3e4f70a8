import pytest
import torch
from captum.attr import Occlusion

from cnnbook.interpret.occlusion import occlusion, occlusion_masks


@pytest.mark.parametrize("window, stride", [(8, 4), (5, 3), (32, 1), (6, 6)])
def test_occlusion_equals_captum(net, images, window, stride):
    ours = occlusion(net, images, [0, 3, 8], window=window, stride=stride, baseline=0.3)
    ref = Occlusion(net).attribute(images, sliding_window_shapes=(3, window, window),
                                   strides=(3, stride, stride), baselines=0.3, target=[0, 3, 8])
    assert ours.shape == (3, 32, 32)
    assert torch.allclose(ref[:, 0], ref[:, 2])
    assert (ours - ref[:, 0]).abs().max() < 1e-5 and ours.abs().max() > 0


def test_masks_cover_every_pixel():
    m = occlusion_masks(10, 12, 4, 3)
    assert m.shape == (3 * 4, 10, 12) and (m.sum(0) > 0).all()   # tops 0, 3, 6; lefts 0, 3, 6, 9
    assert m[0, :4, :4].all() and m[0].sum() == 16
    assert m[-1].sum() == 4 * 3 and m[-1, 6:, 9:].all()   # the last column of windows is cut to 3


def test_whole_image_window_gives_the_logit_drop(net, images):
    out = occlusion(net, images, 1, window=32, stride=32, baseline=0.0)
    with torch.no_grad():
        drop = net(images)[:, 1] - net(torch.zeros_like(images))[:, 1]
    assert torch.allclose(out, drop.view(-1, 1, 1).expand(-1, 32, 32), atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(window=0), "window"), (dict(window=40), "does not fit"),
    (dict(window=4, stride=5), "stride"), (dict(stride=2.5), "stride")])
def test_bad_settings_are_explained(net, images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        occlusion(net, images, **kwargs)
