import pytest
import torch
from captum.attr import IntegratedGradients, Saliency

from cnnbook.interpret.saliency import (integrated_gradients, saliency_map, smoothgrad,
                                        vanilla_gradient)


def test_vanilla_gradient_equals_captum(net, images):
    ours = vanilla_gradient(net, images, [1, 4, 7])
    ref = Saliency(net).attribute(images, target=[1, 4, 7], abs=False)
    assert (ours - ref).abs().max() < 1e-6 and ours.abs().max() > 0


def test_integrated_gradients_equal_captum_and_add_up(net, images):
    ours = integrated_gradients(net, images, 2, steps=16, chunk=20)
    ref = IntegratedGradients(net).attribute(images, target=2, n_steps=16,
                                             method="riemann_middle")
    assert (ours - ref).abs().max() < 1e-5
    with torch.no_grad():
        gain = net(images)[:, 2] - net(torch.zeros_like(images))[:, 2]
    # completeness holds up to the midpoint rule's error: with many steps it is tight
    fine = integrated_gradients(net, images, 2, steps=256)
    assert torch.allclose(fine.sum((1, 2, 3)), gain, rtol=0.02, atol=0.02)


def test_integrated_gradients_from_a_baseline(net, images):
    grey = torch.full_like(images, 0.5)
    ours = integrated_gradients(net, images, 0, baseline=grey, steps=8)
    ref = IntegratedGradients(net).attribute(images, baselines=grey, target=0, n_steps=8,
                                             method="riemann_middle")
    assert (ours - ref).abs().max() < 1e-5


def test_smoothgrad(net, images):
    plain = vanilla_gradient(net, images)
    assert torch.allclose(smoothgrad(net, images, noise=0.0, samples=3), plain, atol=1e-6)
    g = lambda: torch.Generator().manual_seed(5)
    a = smoothgrad(net, images, samples=4, generator=g())
    assert torch.equal(a, smoothgrad(net, images, samples=4, generator=g()))
    assert not torch.allclose(a, plain, atol=1e-6)
    # the average of noisy gradients, written out
    t = net(images).argmax(1)
    gen, total = g(), 0
    span = (images.flatten(1).amax(1) - images.flatten(1).amin(1)).view(-1, 1, 1, 1)
    for _ in range(4):
        total = total + vanilla_gradient(net, images + 0.15 * span * torch.randn(images.shape, generator=gen), t)
    assert torch.allclose(a, total / 4, atol=1e-6)


def test_saliency_map_is_channel_max_of_abs():
    a = torch.tensor([[[[1.0, -3.0]], [[-2.0, 0.5]], [[0.0, 0.0]]]])
    assert torch.equal(saliency_map(a), torch.tensor([[[2.0, 3.0]]]))
    with pytest.raises(ValueError):
        saliency_map(torch.zeros(5))


def test_bad_inputs_are_explained(net, images):
    with pytest.raises(ValueError, match="float"):
        vanilla_gradient(net, (images * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        vanilla_gradient(net, images * float("nan"))
    with pytest.raises(ValueError, match="samples"):
        smoothgrad(net, images, samples=0)
    with pytest.raises(ValueError, match="noise"):
        smoothgrad(net, images, noise=float("nan"))
    with pytest.raises(ValueError, match="steps"):
        integrated_gradients(net, images, steps=0)
