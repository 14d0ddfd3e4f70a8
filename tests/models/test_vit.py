import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from cnnbook.models.vit import (EncoderBlock, MultiHeadSelfAttention, PatchEmbedding,
                                VisionTransformer, from_torchvision_state_dict, patchify,
                                scaled_dot_product_attention, vit, vit_b_16, vit_tiny)
from cnnbook.profiling import count_params


def test_patchify_by_hand():
    # a 1-channel 4x4 image with values 0..15, 2x2 patches, read row by row
    img = torch.arange(16.0).reshape(1, 1, 4, 4)
    got = patchify(img, 2)
    assert got.tolist() == [[[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]]
    with pytest.raises(ValueError, match="multiples"):
        patchify(torch.zeros(1, 3, 10, 10), 4)


@pytest.mark.parametrize("c, p, size", [(3, 4, 32), (2, 3, 12), (3, 16, 48)])
def test_patch_embedding_equals_patches_times_a_linear_layer(c, p, size):
    torch.manual_seed(0)
    emb = PatchEmbedding(c, 24, p)
    x = torch.randn(2, c, size, size)
    lin = emb.as_linear()
    # an independent linear map built from the conv weight with F.linear
    ref = F.linear(patchify(x, p), emb.proj.weight.reshape(24, -1), emb.proj.bias)
    assert emb(x).shape == (2, (size // p) ** 2, 24)
    assert torch.allclose(emb(x), ref, atol=1e-5)
    assert torch.allclose(lin(patchify(x, p)), ref, atol=1e-5)


def test_patch_embedding_refuses_a_size_that_is_not_a_multiple():
    with pytest.raises(ValueError, match="patch size"):
        PatchEmbedding(3, 8, 4)(torch.zeros(1, 3, 30, 32))


def test_scaled_dot_product_attention_against_pytorch_and_a_hand_case():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 5))
    # hand case: two keys, d = 4; scores [2, 0] / sqrt(4) = [1, 0]
    q1 = torch.tensor([[[1.0, 1, 1, 1]]])
    k1 = torch.tensor([[[0.5, 0.5, 0.5, 0.5], [0, 0, 0, 0]]])
    v1 = torch.tensor([[[1.0, 0], [0, 1]]])
    out1, w1 = scaled_dot_product_attention(q1, k1, v1)
    e = math.e / (math.e + 1)
    assert torch.allclose(w1, torch.tensor([[[e, 1 - e]]]))
    assert torch.allclose(out1, torch.tensor([[[e, 1 - e]]]))


def copy_into_torch_mha(ours: MultiHeadSelfAttention) -> nn.MultiheadAttention:
    mha = nn.MultiheadAttention(ours.dim, ours.heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(ours.qkv.weight)
        mha.in_proj_bias.copy_(ours.qkv.bias)
        mha.out_proj.weight.copy_(ours.proj.weight)
        mha.out_proj.bias.copy_(ours.proj.bias)
    return mha


@pytest.mark.parametrize("dim, heads, n", [(16, 4, 7), (24, 3, 10), (8, 1, 3)])
def test_attention_equals_nn_multihead_attention(dim, heads, n):
    torch.manual_seed(dim + heads)
    ours = MultiHeadSelfAttention(dim, heads).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.5)
    mha = copy_into_torch_mha(ours).eval()
    x = torch.randn(3, n, dim)
    out, w = ours(x)
    ref_out, ref_w = mha(x, x, x, need_weights=True, average_attn_weights=True)
    assert w.shape == (3, heads, n, n)
    # outputs reach |10| here: float32 sums of that size differ in the 6th digit between
    # kernels (5.5e-6 seen on one host), so the output is compared at 1e-5; weights at 1e-6
    assert torch.allclose(out, ref_out, atol=1e-5)
    assert torch.allclose(w.mean(1), ref_w, atol=1e-6)
    _, per_head = mha(x, x, x, need_weights=True, average_attn_weights=False)
    assert torch.allclose(w, per_head, atol=1e-6)
    fast, none = ours(x, need_weights=False)   # the fused kernel: same output
    assert none is None and torch.allclose(fast, ref_out, atol=1e-5)
    ours.fused = False
    slow, none = ours(x, need_weights=False)   # written out, weights not returned
    assert none is None and torch.allclose(slow, ref_out, atol=1e-5)


def test_attention_gradients_equal_torchs():
    torch.manual_seed(1)
    ours = MultiHeadSelfAttention(12, 3)
    mha = copy_into_torch_mha(ours)
    x = torch.randn(2, 5, 12, requires_grad=True)
    g1 = torch.autograd.grad(ours(x)[0].square().sum(), [x, ours.qkv.weight])
    g2 = torch.autograd.grad(mha(x, x, x)[0].square().sum(), [x, mha.in_proj_weight])
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-5)


def test_attention_refuses_dim_not_divisible_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(10, 3)


def test_encoder_block_is_pre_norm_residual():
    torch.manual_seed(0)
    blk = EncoderBlock(16, 4, 32).eval()
    x = torch.randn(2, 5, 16)
    a = blk.attn(blk.norm1(x))[0]
    h = x + a
    ref = h + blk.mlp.fc2(F.gelu(blk.mlp.fc1(F.layer_norm(h, (16,), blk.norm2.weight, blk.norm2.bias, 1e-6))))
    out, w = blk(x, need_weights=True)
    assert torch.allclose(out, ref, atol=1e-5)
    assert w.shape == (2, 4, 5, 5)


def test_vit_b_16_parameter_count_equals_torchvisions():
    ours = count_params(vit_b_16())
    theirs = count_params(torchvision.models.vit_b_16())
    assert ours == theirs == 86_567_656
    weights = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1
    assert ours == weights.meta["num_params"]


def test_vit_b_16_multiply_adds_equal_torchvisions_published_count():
    from cnnbook.profiling import count_macs
    model = vit_b_16().set_fused_attention(False)
    meta = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1.meta
    assert count_macs(model) / 1e9 == pytest.approx(meta["_ops"], rel=0.01)
    small = vit_tiny()   # the fused kernel is invisible to the counter on a CPU
    fused = count_macs(small, (1, 3, 32, 32))
    written = count_macs(small.set_fused_attention(False), (1, 3, 32, 32))
    # the difference is the attention's two products: q k^T and weights @ v, 65x65x128 each
    assert written - fused == 6 * 2 * 65 * 65 * 128


@pytest.mark.parametrize("name", ["vit_b_32"])
def test_other_configurations_match_torchvision(name):
    assert count_params(vit(name)) == count_params(getattr(torchvision.models, name)())


def load_torchvision_into_ours(tv_model, **config):
    ours = VisionTransformer(**config)
    missing = ours.load_state_dict(from_torchvision_state_dict(tv_model.state_dict()), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    return ours


def randomise(model):
    """Non-zero weights everywhere (torchvision starts the head and class token at zero)."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    return model


def test_small_torchvision_vit_loads_into_ours_with_the_same_outputs():
    # the fast check of the mapping: a small torchvision ViT (same code path as B/16)
    torch.manual_seed(0)
    config = dict(image_size=32, patch_size=8, dim=48, depth=3, heads=4, mlp_dim=96, num_classes=7)
    tv = randomise(torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=3, num_heads=4, hidden_dim=48, mlp_dim=96,
        num_classes=7)).eval()
    ours = load_torchvision_into_ours(tv, **config).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref, got = tv(x), ours(x)
        got_w, maps = ours(x, return_attention=True)
    assert torch.allclose(got, ref, atol=1e-5)
    assert torch.allclose(got_w, ref, atol=1e-5)
    assert len(maps) == 3 and maps[0].shape == (3, 4, 17, 17)


def test_vit_b_16_with_torchvisions_weights_gives_torchvisions_outputs():
    torch.manual_seed(0)
    tv = randomise(torchvision.models.vit_b_16()).eval()
    ours = vit_b_16()
    ours.load_state_dict(from_torchvision_state_dict(tv.state_dict()), strict=True)
    ours.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-4)


def test_mapping_refuses_unknown_keys():
    with pytest.raises(KeyError, match="unexpected"):
        from_torchvision_state_dict({"encoder.layers.encoder_layer_0.foo.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="unexpected"):
        from_torchvision_state_dict({"bar": torch.zeros(1)})


def test_vit_tiny_shapes_attention_and_class_token():
    torch.manual_seed(0)
    model = vit_tiny().eval()
    x = torch.randn(2, 3, 32, 32)
    logits, maps = model(x, return_attention=True)
    assert logits.shape == (2, 10)
    cfg = model.blocks[0].attn
    assert len(maps) == len(model.blocks)
    assert maps[0].shape == (2, cfg.heads, 65, 65)
    assert torch.allclose(maps[-1].sum(-1), torch.ones(2, cfg.heads, 65), atol=1e-5)
    assert torch.allclose(model(x), logits, atol=1e-5)
    # the prediction is read from the class token: changing its value changes the output
    with torch.no_grad():
        model.head.weight.normal_()
        before = model(x)
        model.cls_token.add_(1.0)
        assert not torch.allclose(model(x), before)


def test_vit_uses_positions():
    # without position embeddings attention is permutation-equivariant, so shuffling the
    # patches would not change the class token's output; with them it does
    torch.manual_seed(0)
    model = VisionTransformer(image_size=8, patch_size=4, dim=16, depth=2, heads=2, mlp_dim=32,
                              num_classes=3).eval()
    with torch.no_grad():
        model.head.weight.normal_()
    x = torch.randn(1, 3, 8, 8)
    swapped = torch.cat([x[..., 4:], x[..., :4]], dim=-1)   # the left and right patches swap
    with torch.no_grad():
        assert not torch.allclose(model(x), model(swapped), atol=1e-4)
        model.pos_embed.zero_()
        assert torch.allclose(model(x), model(swapped), atol=1e-5)


def test_vit_refuses_bad_sizes():
    with pytest.raises(ValueError, match="multiple"):
        VisionTransformer(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match="32x32"):
        vit_tiny()(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="no ViT"):
        vit("vit_h_99")


def test_vit_trains_a_step():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=16, patch_size=4, dim=32, depth=2, heads=4, mlp_dim=64,
                              num_classes=4)
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8) % 4
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
