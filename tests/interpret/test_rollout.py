import pytest
import torch

from cnnbook.interpret.rollout import (attention_rollout, class_token_map, fuse_heads,
                                       vit_attentions)
from cnnbook.models.vit import VisionTransformer


def test_two_layers_by_hand():
    # 2 tokens, one head. Layer 1 attends [[0.2, 0.8], [0.6, 0.4]], layer 2 [[1, 0], [0.5, 0.5]]
    w1 = torch.tensor([[[[0.2, 0.8], [0.6, 0.4]]]])
    w2 = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    # with the residual: 0.5 W + 0.5 I (rows already sum to 1)
    a1 = torch.tensor([[0.6, 0.4], [0.3, 0.7]])
    a2 = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    expected = torch.tensor([[0.6, 0.4], [0.25 * 0.6 + 0.75 * 0.3, 0.25 * 0.4 + 0.75 * 0.7]])
    assert torch.allclose(a2 @ a1, expected)
    got = attention_rollout([w1, w2])
    assert torch.allclose(got[0], expected)
    # the order matters: layer 2 after layer 1, not before
    assert not torch.allclose(attention_rollout([w2, w1])[0], expected)
    # without the residual: the plain product of the attention matrices
    assert torch.allclose(attention_rollout([w1, w2], residual=False)[0], w2[0, 0] @ w1[0, 0])


def test_heads_are_averaged_before_the_residual():
    h1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    h2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    w = torch.stack([h1, h2])[None]            # (1, 2 heads, 2, 2)
    got = attention_rollout([w])[0]
    assert torch.allclose(got, 0.5 * torch.full((2, 2), 0.5) + 0.5 * torch.eye(2))
    assert torch.allclose(fuse_heads(w, "max")[0], torch.ones(2, 2))
    assert torch.allclose(fuse_heads(w, "min")[0], torch.zeros(2, 2))
    assert torch.equal(fuse_heads(w, 1)[0], h2)
    with pytest.raises(ValueError, match="head 2"):
        fuse_heads(w, 2)
    with pytest.raises(ValueError, match="fusion"):
        fuse_heads(w, "median")
    with pytest.raises(ValueError, match="heads"):
        fuse_heads(w[0], "mean")


def random_attention(b, h, n, gen):
    return torch.randn(b, h, n, n, generator=gen).mul(2).softmax(-1)


@pytest.mark.parametrize("fusion", ["mean", "max", "min", 0])
@pytest.mark.parametrize("discard", [0.0, 0.5, 0.9])
def test_rows_sum_to_one_and_are_non_negative(fusion, discard):
    gen = torch.Generator().manual_seed(0)
    layers = [random_attention(3, 4, 10, gen) for _ in range(5)]
    r = attention_rollout(layers, fusion=fusion, discard_ratio=discard)
    assert r.shape == (3, 10, 10)
    assert torch.allclose(r.sum(-1), torch.ones(3, 10), atol=1e-5)
    assert (r >= 0).all()


def test_identity_attention_rolls_out_to_the_identity():
    eye = torch.eye(6).expand(2, 3, 6, 6)
    assert torch.allclose(attention_rollout([eye] * 4), torch.eye(6).expand(2, 6, 6))


def test_uniform_attention_mixes_everything():
    # one layer of uniform attention without the residual: every token reads all equally
    u = torch.full((1, 2, 5, 5), 0.2)
    assert torch.allclose(attention_rollout([u], residual=False), torch.full((1, 5, 5), 0.2))


def test_discard_ratio_zeroes_the_weakest_weights_of_each_row():
    w = torch.tensor([[[[0.1, 0.2, 0.3, 0.4]] * 4]])       # every row the same
    r = attention_rollout([w], discard_ratio=0.5, residual=False)
    expected = torch.tensor([0.0, 0.0, 0.3, 0.4]) / 0.7
    assert torch.allclose(r[0], expected.expand(4, 4))
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout([w], discard_ratio=1.0)
    with pytest.raises(ValueError, match="at least one"):
        attention_rollout([])


def test_class_token_map_reads_row_zero_over_the_patches():
    joint = torch.zeros(1, 5, 5)
    joint[0, 0] = torch.tensor([0.5, 0.1, 0.2, 0.3, 0.4])
    m = class_token_map(joint)
    assert torch.allclose(m[0], torch.tensor([[0.25, 0.5], [0.75, 1.0]]))
    with pytest.raises(ValueError, match="grid"):
        class_token_map(torch.zeros(1, 6, 6))


def test_vit_attentions_and_rollout_on_a_model():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=16, patch_size=4, dim=16, depth=3, heads=2, mlp_dim=32,
                              num_classes=3).train()
    x = torch.randn(2, 3, 16, 16)
    logits, maps = vit_attentions(model, x)
    assert model.training                      # restored
    assert logits.shape == (2, 3) and len(maps) == 3 and maps[0].shape == (2, 2, 17, 17)
    r = attention_rollout(maps)
    assert class_token_map(r).shape == (2, 4, 4)
    assert torch.allclose(r.sum(-1), torch.ones(2, 17), atol=1e-5)
