import pytest
import torch
from torch import nn

from cnnbook.models.batchnorm import BatchNorm
from cnnbook.train import optim
from cnnbook.train.optim import (adam, adamw, groups_table, is_norm, make_optimizer,
                                 param_groups, sgd)


class Small(nn.Module):
    """conv (with bias) -> bn -> conv (no bias) -> from-scratch BatchNorm -> linear head."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.Conv2d(4, 4, 3, padding=1, bias=False), BatchNorm(4),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.backbone(x))


def _names(model, group):
    ids = {id(p) for p in group["params"]}
    return sorted(n for n, p in model.named_parameters() if id(p) in ids)


def test_groups_by_module_type():
    m = Small()
    groups = param_groups(m, lr=0.1, weight_decay=5e-4)
    by = {g["name"]: g for g in groups}
    assert list(by) == ["base", "base/no_decay"]
    assert _names(m, by["base"]) == ["backbone.0.weight", "backbone.3.weight", "head.weight"]
    assert _names(m, by["base/no_decay"]) == [
        "backbone.0.bias", "backbone.1.bias", "backbone.1.weight",
        "backbone.4.beta", "backbone.4.gamma", "head.bias"]
    assert by["base"]["weight_decay"] == 5e-4 and by["base/no_decay"]["weight_decay"] == 0.0
    assert all(g["lr"] == 0.1 for g in groups)
    assert is_norm(m.backbone[4]) and is_norm(nn.GroupNorm(2, 4)) and not is_norm(m.head)


def test_lr_mult_groups_and_errors():
    m = Small()
    groups = param_groups(m, lr=0.1, weight_decay=1e-2, lr_mult={"backbone": 0.1,
                                                                 "backbone.3": 0.5})
    by = {g["name"]: g for g in groups}
    assert list(by) == ["base", "base/no_decay", "backbone", "backbone/no_decay", "backbone.3"]
    assert _names(m, by["base"]) == ["head.weight"] and by["base"]["lr"] == 0.1
    assert _names(m, by["backbone"]) == ["backbone.0.weight"]
    assert by["backbone"]["lr"] == pytest.approx(0.01)
    assert _names(m, by["backbone.3"]) == ["backbone.3.weight"]  # longest prefix wins
    assert by["backbone.3"]["lr"] == pytest.approx(0.05)
    # every trainable parameter exactly once
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in m.parameters()) and len(set(seen)) == len(seen)
    with pytest.raises(ValueError, match="matches no parameter"):
        param_groups(m, 0.1, lr_mult={"backbone.9": 0.1})
    with pytest.raises(ValueError, match="matches no parameter"):
        param_groups(m, 0.1, lr_mult={"back": 0.1})  # a prefix matches whole name parts


def test_no_split_frozen_and_table():
    m = Small()
    m.backbone.requires_grad_(False)
    groups = param_groups(m, 0.1, 1e-3, no_decay_norm_bias=False)
    assert [g["name"] for g in groups] == ["base"]
    assert _names(m, groups[0]) == ["head.bias", "head.weight"]
    t = groups_table(param_groups(Small(), 0.1, 1e-3))
    assert list(t.index) == ["base", "base/no_decay"]
    assert t.loc["base", "tensors"] == 3 and t.loc["base", "params"] == 3 * 4 * 9 + 4 * 4 * 9 + 12
    assert t.loc["base/no_decay", "params"] == 4 + 4 + 4 + 4 + 4 + 3
    assert t["params"].sum() == sum(p.numel() for p in Small().parameters())


def _hand_groups(m, lr, wd, mult):
    bb, hd = m.backbone, m.head
    return [
        {"params": [hd.weight], "lr": lr, "weight_decay": wd},
        {"params": [hd.bias], "lr": lr, "weight_decay": 0.0},
        {"params": [bb[0].weight, bb[3].weight], "lr": lr * mult, "weight_decay": wd},
        {"params": [bb[0].bias, bb[1].weight, bb[1].bias, bb[4].gamma, bb[4].beta],
         "lr": lr * mult, "weight_decay": 0.0},
    ]


@pytest.mark.parametrize("build, torch_opt", [
    (lambda: sgd(0.1, momentum=0.9, nesterov=True, weight_decay=1e-2, lr_mult={"backbone": 0.1}),
     lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True)),
    (lambda: adam(0.01, weight_decay=1e-2, lr_mult={"backbone": 0.1}),
     lambda g: torch.optim.Adam(g, lr=0.01)),
    (lambda: adamw(0.01, weight_decay=1e-2, betas=(0.8, 0.99), lr_mult={"backbone": 0.1}),
     lambda g: torch.optim.AdamW(g, lr=0.01, betas=(0.8, 0.99))),
])
def test_steps_equal_hand_built_torch_optimizer(build, torch_opt):
    torch.manual_seed(0)
    a = Small()
    b = Small()
    b.load_state_dict(a.state_dict())
    lr = build().lr
    opt_a = build()(a)
    opt_b = torch_opt(_hand_groups(b, lr, 1e-2, 0.1))
    x, y = torch.randn(8, 3, 6, 6), torch.randint(0, 3, (8,))
    for _ in range(3):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), n
    assert not torch.equal(a.head.weight, Small().head.weight)


def test_adamw_decay_is_decoupled_and_skips_norm_bias():
    """With zero gradients AdamW only decays: weights shrink by (1 - lr*wd), the rest stays."""
    m = Small()
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    opt = adamw(lr=0.1, weight_decay=0.5)(m)
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in m.named_parameters():
        decayed = n in ("backbone.0.weight", "backbone.3.weight", "head.weight")
        expect = before[n] * (1 - 0.1 * 0.5) if decayed else before[n]
        assert torch.allclose(p, expect), n


def test_make_optimizer_paths():
    m = Small()
    opt = make_optimizer("sgd", m, 0.05, momentum=0.9, weight_decay=1e-3)
    assert isinstance(opt, torch.optim.SGD) and len(opt.param_groups) == 1
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["weight_decay"]) == (0.05, 0.9, 1e-3)
    assert isinstance(make_optimizer("Adam", m, 1e-3), torch.optim.Adam)
    assert isinstance(make_optimizer("adamw", m, 1e-3), torch.optim.AdamW)
    ready = torch.optim.SGD(m.parameters(), lr=1.0)
    assert make_optimizer(ready, m, 0.1) is ready
    # a builder without lr takes fit's; with lr it keeps its own
    assert {g["lr"] for g in make_optimizer(sgd(), m, 0.07).param_groups} == {0.07}
    assert {g["lr"] for g in make_optimizer(adamw(1e-3), m, 0.07).param_groups} == {1e-3}
    # any callable factory
    opt = make_optimizer(lambda model: torch.optim.RMSprop(model.parameters(), lr=0.01), m, 0.1)
    assert isinstance(opt, torch.optim.RMSprop)
    with pytest.raises(TypeError, match="not a torch.optim.Optimizer"):
        make_optimizer(lambda model: None, m, 0.1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("lion", m, 0.1)
    with pytest.warns(UserWarning, match="ignored"):
        make_optimizer(sgd(0.1), m, 0.1, weight_decay=1e-4)
    with pytest.raises(ValueError, match="no learning rate"):
        sgd()(m)
    assert repr(adamw(1e-3, lr_mult={"backbone": 0.1})).startswith("adamw(lr=0.001")
    assert optim.OptimizerFactory is type(sgd())


def test_fit_accepts_a_factory(results_dir):
    from cnnbook.data import TensorLoader
    from cnnbook.train import fit

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 6, 6), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 3, (64,), generator=g)
    tr = TensorLoader(x, y, 32, shuffle=True, train=True, device="cpu")
    m = Small()
    seen = []
    fit(m, tr, epochs=1, lr=0.1, optimizer=sgd(weight_decay=1e-3, lr_mult={"backbone": 0.5}),
        device="cpu", progress=False, record=False, live_plot=False,
        callbacks=[lambda row, model, opt: seen.append(groups_table(opt))])
    assert list(seen[0]["lr"]) == [0.1, 0.1, 0.05, 0.05]
