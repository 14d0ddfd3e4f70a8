import torch

from cnnbook.interpret.gradcam import grad_cam
from cnnbook.interpret.sanity import (block_names, cascading_randomization, randomize_,
                                      rank_similarity)
from cnnbook.interpret.saliency import saliency_map, vanilla_gradient


def test_block_names_of_a_cifar_resnet(net):
    assert block_names(net) == ["stem", "stage1.0", "stage2.0", "stage3.0", "fc"]


def test_rank_similarity():
    a = torch.rand(4, 6, 6, generator=torch.Generator().manual_seed(0))
    assert abs(rank_similarity(a, a) - 1) < 1e-12
    assert abs(rank_similarity(a, -a) - 1) < 1e-12            # absolute values
    assert abs(rank_similarity(a, -a, absolute=False) + 1) < 1e-12
    assert abs(rank_similarity(a, a ** 3) - 1) < 1e-12        # ranks, not values
    assert rank_similarity(a, torch.zeros_like(a)) == 0.0


def test_randomize_is_seeded_and_in_place(net):
    import copy
    a, b = copy.deepcopy(net.fc), copy.deepcopy(net.fc)
    randomize_(a, 3), randomize_(b, 3)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, net.fc.weight)


def test_cascading_randomization_changes_gradients_and_leaves_the_model(net, images):
    before = {k: v.clone() for k, v in net.state_dict().items()}
    targets = net(images).argmax(1)
    explain = lambda m, x: saliency_map(vanilla_gradient(m, x, targets))
    rows = cascading_randomization(net, images, explain)
    assert [r["randomized"] for r in rows] == ["none", "fc", "stage3.0", "stage2.0",
                                               "stage1.0", "stem"]
    assert rows[0]["spearman"] == 1.0 and all(r["maps"].shape == (3, 32, 32) for r in rows)
    assert rows[-1]["spearman"] < 0.9
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    cams = cascading_randomization(net, images, lambda m, x: grad_cam(m, x, "stage3", targets,
                                                                       upsampled=True),
                                   blocks=["stage3.0", "fc"])
    assert len(cams) == 3
