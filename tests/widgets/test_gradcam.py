import matplotlib.pyplot as plt
import pytest
import torch

from cnnbook.interpret.gradcam import grad_cam
from cnnbook.models.cifar_resnet import cifar_resnet
from cnnbook.widgets.gradcam import PREDICTED, GradCAMExplorer, default_layers, gradcam_figure

NAMES = [f"class {i}" for i in range(10)]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return cifar_resnet(8, width_mult=0.5).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def test_default_layers_are_the_feature_map_blocks(net, images):
    assert default_layers(net, images[0]) == ["stem", "stage1.0", "stage2.0", "stage3.0"]


def test_figure_state_matches_grad_cam(net, images):
    fig, state = gradcam_figure(net, images[1], "stage2.0", 4, class_names=NAMES, label=2)
    plt.close(fig)
    cam = grad_cam(net, images[1], "stage2.0", 4)[0]
    assert state["target"] == 4 and state["map_size"] == (16, 16)
    assert abs(state["map_max"] - float(cam.max())) < 1e-6
    assert state["peak"] == divmod(int(cam.argmax()), 16)
    fig, state = gradcam_figure(net, images[1], "stem", PREDICTED, class_names=NAMES)
    plt.close(fig)
    assert state["target"] == state["predicted"] == int(net(images[1:2]).argmax())


def test_normalize_goes_to_the_model(net, images):
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    fig, state = gradcam_figure(net, images[0], "stage3.0", 1, class_names=NAMES,
                                normalize=(mean, std))
    plt.close(fig)
    x = (images[:1] - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert abs(state["map_max"] - float(grad_cam(net, x, "stage3.0", 1).max())) < 1e-6


def test_explorer_controls(net, images):
    e = GradCAMExplorer(net, images, class_names=NAMES, labels=[0, 1, 2])
    assert e.state["error"] is None and e.state["layer"] == "stage3.0"
    e.controls["layer"].value = "stem"
    assert e.state["map_size"] == (32, 32)
    e.controls["target"].value = 7
    assert e.state["target"] == 7 and e.state["target_name"] == "class 7"
    e.controls["image"].value = 2
    assert e.state["image"] == 2 and e.renders == 4
    for layer in e.controls["layer"].options:
        for target in (PREDICTED, 0, 9):
            e.controls["layer"].value, e.controls["target"].value = layer, target
            assert e.state["error"] is None and not e.state.get("unexpected")


def test_bad_arguments_are_explained(net, images):
    with pytest.raises(ValueError, match="images"):
        GradCAMExplorer(net, images[0], class_names=NAMES)
    with pytest.raises(ValueError, match="target"):
        gradcam_figure(net, images[0], "stem", 10, class_names=NAMES)
    with pytest.raises(ValueError, match="normalize"):
        gradcam_figure(net, images[0], "stem", 1, class_names=NAMES, normalize=3)
    e = GradCAMExplorer(net, images, class_names=NAMES, layers=["stem", "fc"])
    e.controls["layer"].value = "fc"
    assert "(N, C, h, w)" in e.state["error"] and not e.state["unexpected"]
