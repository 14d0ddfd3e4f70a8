import matplotlib.pyplot as plt
import pytest
import torch

from cnnbook.interpret.rollout import attention_rollout, class_token_map
from cnnbook.models.vit import VisionTransformer
from cnnbook.widgets.attention import MEAN, ROLLOUT, AttentionExplorer, attention_figure

NAMES = [f"class {i}" for i in range(4)]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=16, patch_size=4, dim=16, depth=3, heads=2, mlp_dim=32,
                              num_classes=4)
    with torch.no_grad():   # non-trivial attention and a head that is not zero
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(3))


def test_figure_state_matches_rollout_and_one_layer(net, images):
    with torch.no_grad():
        _, maps = net(images[1:2], return_attention=True)
    fig, state = attention_figure(net, images[1], ROLLOUT, MEAN, class_names=NAMES, label=2)
    plt.close(fig)
    ref = class_token_map(attention_rollout(maps))[0]
    assert state["map_size"] == (4, 4)
    assert state["peak"] == divmod(int(ref.argmax()), 4)
    assert abs(state["patches_share"] - float(attention_rollout(maps)[0, 0, 1:].sum())) < 1e-6
    fig, state = attention_figure(net, images[1], 2, 1, class_names=NAMES)
    plt.close(fig)
    one = maps[2][0, 1, 0, 1:]
    assert state["peak"] == divmod(int(one.argmax()), 4)
    assert abs(state["patches_share"] - float(one.sum())) < 1e-6
    assert state["predicted"] == int(net(images[1:2]).argmax())


def test_normalize_goes_to_the_model(net, images):
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    fig, state = attention_figure(net, images[0], 0, MEAN, class_names=NAMES, normalize=(mean, std))
    plt.close(fig)
    x = (images[:1] - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        _, maps = net(x, return_attention=True)
    assert abs(state["patches_share"] - float(maps[0][0].mean(0)[0, 1:].sum())) < 1e-6


def test_explorer_controls(net, images):
    e = AttentionExplorer(net, images, class_names=NAMES, labels=[0, 1, 2])
    assert e.state["error"] is None and e.state["layer"] == ROLLOUT and e.state["head"] == MEAN
    e.controls["layer"].value = 0
    assert e.state["layer"] == 0
    e.controls["head"].value = 1
    assert e.state["head"] == 1
    e.controls["image"].value = 2
    assert e.state["image"] == 2 and e.renders == 4
    e.controls["layer"].value = ROLLOUT
    e.controls["discard"].value = 0.9
    assert e.state["discard_ratio"] == 0.9 and e.state["error"] is None


def test_every_control_through_its_extremes(net, images):
    e = AttentionExplorer(net, images, class_names=NAMES)

    def check():
        assert e.state["error"] is None and not e.state.get("unexpected"), e.state
        assert 0 <= e.state["peak"][0] < 4 and 0 < e.state["patches_share"] <= 1 + 1e-6

    for layer in e.controls["layer"].options:          # every layer with every head
        for head in e.controls["head"].options:
            e.controls["layer"].value, e.controls["head"].value = layer[1], head[1]
            check()
    e.controls["layer"].value = ROLLOUT
    for discard in (0.95, 0.0):                          # the slider's ends, then the images'
        e.controls["discard"].value = discard
        check()
    for image in (len(images) - 1, 0):
        e.controls["image"].value = image
        check()


def test_bad_arguments_are_explained(net, images):
    with pytest.raises(ValueError, match="images"):
        AttentionExplorer(net, images[0], class_names=NAMES)
    with pytest.raises(ValueError, match="VisionTransformer"):
        AttentionExplorer(torch.nn.Linear(2, 2), images, class_names=NAMES)
    with pytest.raises(ValueError, match="layer"):
        attention_figure(net, images[0], 3, MEAN, class_names=NAMES)
    with pytest.raises(ValueError, match="head"):
        attention_figure(net, images[0], 0, 2, class_names=NAMES)
    with pytest.raises(ValueError, match="discard"):
        attention_figure(net, images[0], ROLLOUT, MEAN, 1.0, class_names=NAMES)
    with pytest.raises(ValueError, match="class names"):
        attention_figure(net, images[0], ROLLOUT, MEAN, class_names=NAMES[:3])
