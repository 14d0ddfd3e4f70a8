"""A small CIFAR ResNet with non-trivial weights for the interpretation tests."""
import pytest
import torch

from cnnbook.models.cifar_resnet import cifar_resnet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = cifar_resnet(8, width_mult=0.5)
    # make batch norm's running statistics non-trivial, then freeze it in eval mode
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(16, 3, 32, 32))
    return model.eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
