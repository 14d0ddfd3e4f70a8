import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam

from cnnbook.interpret.gradcam import grad_cam, layer_by_name, upsample


@pytest.mark.parametrize("layer", ["stem", "stage1.0", "stage2.0", "stage3.0"])
@pytest.mark.parametrize("target", [3, [0, 5, 9]])
def test_grad_cam_equals_captum(net, images, layer, target):
    ours = grad_cam(net, images, layer, target)
    ref = LayerGradCam(net, layer_by_name(net, layer)).attribute(
        images, target=target, relu_attributions=True)
    assert ours.shape == ref[:, 0].shape
    assert (ours - ref[:, 0]).abs().max() < 1e-5
    assert ours.abs().max() > 1e-4   # not an all-zero map that trivially matches


def test_without_relu_and_upsampled_equal_captum(net, images):
    layer = net.stage3[0]
    ours = grad_cam(net, images, layer, 1, relu=False, upsampled=True)
    ref = LayerGradCam(net, layer).attribute(images, target=1, relu_attributions=False)
    ref = LayerAttribution.interpolate(ref, (32, 32), interpolate_mode="bilinear")[:, 0]
    assert ours.shape == (3, 32, 32) and (ours - ref).abs().max() < 1e-5
    assert (ours < 0).any()
    assert torch.allclose(upsample(grad_cam(net, images, layer, 1, relu=False), (32, 32)), ours)


def test_predicted_class_and_logits(net, images):
    cam, logits = grad_cam(net, images, "stage2", return_logits=True)
    assert torch.allclose(cam, grad_cam(net, images, "stage2", logits.argmax(1)))
    assert logits.shape == (3, 10)


def test_mode_restored_and_single_image(net, images):
    net.train()
    try:
        one = grad_cam(net, images[0], "stem", 2)
        assert net.training and one.shape == (1, 32, 32)
    finally:
        net.eval()


@pytest.mark.parametrize("layer, message", [("nope", "no layer named"), ("fc", "(N, C, h, w)")])
def test_bad_layers_are_explained(net, images, layer, message):
    with pytest.raises(ValueError, match=message):
        grad_cam(net, images, layer, 0)


def test_bad_targets_are_explained(net, images):
    with pytest.raises(ValueError, match="0..9"):
        grad_cam(net, images, "stem", 10)
    with pytest.raises(ValueError, match="targets for 3 images"):
        grad_cam(net, images, "stem", [1, 2])
