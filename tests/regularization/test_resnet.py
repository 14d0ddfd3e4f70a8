import torch

from cnnbook.regularization.dropblock import DropBlock2d
from cnnbook.regularization.resnet import RegResidual, small_resnet
from cnnbook.regularization.stochastic_depth import StochasticDepth


def test_plain_network_shapes_and_switches():
    net = small_resnet()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert not any(isinstance(m, (DropBlock2d, StochasticDepth, torch.nn.Dropout))
                   for m in net.modules())
    reg = small_resnet((2, 2, 2), dropout=0.2, drop_block=0.1, stochastic_depth=0.5)
    sd = [m.p for m in reg.modules() if isinstance(m, StochasticDepth)]
    assert sd == [0.5 * k / 6 for k in range(1, 7)]
    assert sum(isinstance(m, DropBlock2d) for m in reg.modules()) == 4  # stages 2 and 3
    assert isinstance(reg.dropout, torch.nn.Dropout)
    assert sum(p.numel() for p in reg.parameters()) == sum(
        p.numel() for p in small_resnet((2, 2, 2)).parameters())


def test_block_is_plain_in_eval_and_random_in_training():
    torch.manual_seed(0)
    block = RegResidual(8, 8, drop_path=0.5, drop_block=0.3)
    plain = RegResidual(8, 8)
    plain.load_state_dict(block.state_dict())
    x = torch.randn(4, 8, 8, 8)
    block.eval(), plain.eval()
    assert torch.allclose(block(x), plain(x))
    block.train(), plain.train()
    assert not torch.allclose(block(x), plain(x))
