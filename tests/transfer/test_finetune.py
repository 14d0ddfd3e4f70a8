"""TransferNet: a new head, frozen parts without gradients and with fixed BN statistics."""
import pytest
import torch
import torchvision
from torch import nn

from cnnbook.models.resnet import resnet18 as course_resnet18
from cnnbook.train import optim
from cnnbook.transfer.finetune import TransferNet, class_subset


def test_head_is_replaced_and_outputs_the_new_classes():
    base = torchvision.models.resnet18()
    conv = base.conv1.weight.detach().clone()
    net = TransferNet(base, num_classes=7)
    assert net.head.in_features == 512 and net.head.out_features == 7
    assert isinstance(net.backbone.fc, nn.Identity)
    assert torch.equal(net.backbone.conv1.weight, conv)       # the backbone is kept as it was
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert net.stages == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]


def test_the_course_resnet_works_too():
    net = TransferNet(course_resnet18(width_mult=0.125, num_classes=10), num_classes=3)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    assert "stage4" in net.stages


def test_feature_extraction_freezes_the_backbone_and_its_batch_norm():
    net = TransferNet(torchvision.models.resnet18(), num_classes=3, train_from="head")
    assert all(not p.requires_grad for p in net.backbone.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    net.train()
    assert net.training and net.head.training and not net.backbone.layer1.training
    before = net.backbone.bn1.running_mean.clone()
    net(torch.randn(4, 3, 32, 32) * 3 + 1)
    assert torch.equal(net.backbone.bn1.running_mean, before)  # statistics stay pretrained
    assert net.trainable_fraction() == pytest.approx(3 * 513 / sum(p.numel() for p in net.parameters()))


def test_partial_fine_tuning_and_back():
    net = TransferNet(torchvision.models.resnet18(), num_classes=3, train_from="layer4")
    assert net.frozen == ["conv1", "bn1", "layer1", "layer2", "layer3"]
    assert all(p.requires_grad for p in net.backbone.layer4.parameters())
    assert not any(p.requires_grad for p in net.backbone.layer3.parameters())
    net.train()
    assert net.backbone.layer4.training and not net.backbone.layer3.training
    net.set_train_from(None)
    assert all(p.requires_grad for p in net.parameters()) and net.backbone.layer1.training
    with pytest.raises(ValueError, match="train_from must be"):
        net.set_train_from("layer9")


def test_backbone_gets_its_own_learning_rate():
    net = TransferNet(torchvision.models.resnet18(), num_classes=3)
    opt = optim.adam(lr=1e-3, lr_mult={"backbone": 0.1})(net)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["base"] == pytest.approx(1e-3) and lrs["backbone"] == pytest.approx(1e-4)
    head_ids = {id(p) for p in net.head.parameters()}
    base = [g for g in opt.param_groups if g["name"].startswith("base")]
    assert {id(p) for g in base for p in g["params"]} == head_ids


def test_a_model_without_a_linear_head_is_refused():
    with pytest.raises(ValueError, match="no Linear"):
        TransferNet(nn.Sequential(nn.Conv2d(3, 4, 3)), 2)


def test_class_subset_relabels_and_balances():
    labels = torch.arange(10).repeat(20)
    images = torch.arange(200).view(200, 1, 1, 1).to(torch.uint8)
    x, y = class_subset(images, labels, [7, 2], per_class=5, seed=1)
    assert torch.bincount(y).tolist() == [5, 5]
    assert torch.equal(labels[x.flatten().long()], torch.where(y == 0, 7, 2))
    x2, _ = class_subset(images, labels, [7, 2], per_class=5, seed=1, offset=5)
    assert not set(x.flatten().tolist()) & set(x2.flatten().tolist())   # disjoint
    x3, _ = class_subset(images, labels, [7, 2], per_class=5, seed=1)
    assert torch.equal(x, x3)                                            # seeded
    with pytest.raises(ValueError, match="fewer than"):
        class_subset(images, labels, [1], per_class=30)
