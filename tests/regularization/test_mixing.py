import pytest
import torch
from torchvision.transforms import v2

from cnnbook.regularization.mixing import (BatchMixer, cutmix, cutmix_box, mixed_cross_entropy,
                                           mixup, partner_index, sample_lambda)


def _batch(n=6, size=8):
    torch.manual_seed(123)
    return torch.rand(n, 3, size, size), torch.randint(0, 10, (n,))


@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_mixup_equals_torchvision(alpha):
    x, y = _batch()
    torch.manual_seed(5)
    tx, ty = v2.MixUp(alpha=alpha, num_classes=10)(x, y)
    torch.manual_seed(5)
    lam = sample_lambda(alpha)
    ox, oy = mixup(x, y, lam, 10)
    assert torch.allclose(ox, tx, atol=1e-6) and torch.allclose(oy, ty, atol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_equals_torchvision(seed):
    x, y = _batch(size=12)
    torch.manual_seed(seed)
    tx, ty = v2.CutMix(alpha=1.0, num_classes=10)(x, y)
    torch.manual_seed(seed)  # torchvision draws lam, then the centre's x, then its y
    lam = sample_lambda(1.0)
    cx, cy = int(torch.randint(12, (1,))), int(torch.randint(12, (1,)))
    box, lam_real = cutmix_box(lam, 12, 12, cy, cx)
    ox, oy, lam2 = cutmix(x, y, box, 10)
    assert lam2 == pytest.approx(lam_real)
    assert torch.equal(ox, tx) and torch.allclose(oy, ty, atol=1e-6)


def test_pairing_and_box_arithmetic():
    assert partner_index(4).tolist() == [3, 0, 1, 2]
    box, lam = cutmix_box(0.75, 32, 32, 16, 16)  # side sqrt(0.25) * 32 = 16 px
    assert box == (8, 24, 8, 24) and lam == pytest.approx(0.75)
    box, lam = cutmix_box(0.75, 32, 32, 0, 0)    # clipped at the corner: a quarter of it
    assert box == (0, 8, 0, 8) and lam == pytest.approx(1 - 64 / 1024)
    with pytest.raises(ValueError):
        cutmix_box(1.5, 8, 8, 0, 0)
    with pytest.raises(ValueError):
        sample_lambda(0.0)


def test_mixed_loss_is_cross_entropy_against_the_soft_labels():
    torch.manual_seed(0)
    logits = torch.randn(6, 10, dtype=torch.float64)
    x, y = _batch()
    _, soft = mixup(x, y, 0.3, 10)
    perm = partner_index(6)
    ours = mixed_cross_entropy(logits, y, y[perm], 0.3)
    theirs = torch.nn.functional.cross_entropy(logits, soft.double())
    assert torch.allclose(ours, theirs)
    ls = mixed_cross_entropy(logits, y, y[perm], 0.3, label_smoothing=0.1)
    assert torch.allclose(ls, torch.nn.functional.cross_entropy(
        logits, soft.double() * 0.9 + 0.01))


@pytest.mark.parametrize("mode", ["mixup", "cutmix", "both"])
def test_batch_mixer_with_a_loader(mode):
    x, y = _batch(8)
    loader = [(x[:4], y[:4]), (x[4:], y[4:])]
    mixer = BatchMixer(mode, alpha=1.0, num_classes=10)
    wrapped = mixer.wrap(loader)
    assert len(wrapped) == 2
    torch.manual_seed(0)
    for (xm, ya), (xo, yo) in zip(wrapped, loader):
        assert torch.equal(ya, yo) and xm.shape == xo.shape
        lam, yb = mixer.last["lam"], mixer.last["y_b"]
        assert 0 <= lam <= 1 and torch.equal(yb, yo[partner_index(4)])
        logits = torch.randn(4, 10)
        assert torch.allclose(mixer.loss(logits, ya), mixed_cross_entropy(logits, ya, yb, lam))
    # a rehearsal's fit trains on the first examples of the batch: the loss pairs those
    assert torch.allclose(mixer.loss(logits[:3], ya[:3]),
                          mixed_cross_entropy(logits[:3], ya[:3], yb[:3], lam))
    with pytest.raises(RuntimeError, match="wrap"):
        mixer.loss(logits[:3], ya[1:])   # not the batch the mixer produced
    with pytest.raises(RuntimeError, match="wrap"):
        BatchMixer().loss(torch.randn(4, 10), y[:4])
    with pytest.raises(ValueError):
        BatchMixer("mix")
    unmixed = BatchMixer(p=0.0)(x, y)
    assert unmixed[3] == 1.0 and torch.equal(unmixed[0], x)
