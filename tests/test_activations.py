import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnbook.activations import (ACTIVATIONS, Swish, compare_activations, dead_fraction,
                                 formula_table, gradient_vanishes_below, make_activation,
                                 time_activations, values_and_grads, zero_grad_fraction)

X = torch.linspace(-4, 4, 161, dtype=torch.float64)


def _formula(name, x):
    """The curriculum's formulas, written out independently of torch.nn."""
    sig = torch.sigmoid
    return {
        "sigmoid": 1 / (1 + torch.exp(-x)),
        "tanh": torch.tanh(x),
        "relu": x.clamp_min(0),
        "leaky_relu": x.clamp_min(0) + 0.01 * x.clamp_max(0),
        "elu": torch.where(x > 0, x, torch.exp(x) - 1),
        "prelu": x.clamp_min(0) + 0.25 * x.clamp_max(0),
        "relu6": x.clamp(0, 6),
        "silu": x * sig(x),
        "swish": x * sig(x),
        "mish": x * torch.tanh(torch.log1p(torch.exp(x))),
        "gelu": 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
        "gelu_tanh": 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
        "hardswish": x * (x + 3).clamp(0, 6) / 6,
    }[name]


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_each_activation_matches_its_formula(name):
    f = make_activation(name).double()
    assert torch.allclose(f(X), _formula(name, X), atol=1e-9)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_gradients_match_finite_differences(name):
    x = X[(X.abs() > 0.05) & ((X - 3).abs() > 0.05) & ((X + 3).abs() > 0.05)
          & ((X - 6).abs() > 0.05)]  # away from the kinks
    _, g = values_and_grads(make_activation(name).double(), x)
    h = 1e-6
    fd = (_formula(name, x + h) - _formula(name, x - h)) / (2 * h)
    assert torch.allclose(g, fd, atol=1e-5)


def test_parameters_and_registry_errors():
    assert make_activation("leaky_relu", 0.2).negative_slope == 0.2
    assert float(make_activation("prelu").weight.detach()) == pytest.approx(0.25)
    assert float(make_activation("swish", 2.0).beta) == 2.0
    with pytest.raises(ValueError, match="unknown activation"):
        make_activation("softsign")
    with pytest.raises(ValueError, match="no parameter"):
        make_activation("relu", 1.0)


def test_swish_limits_and_learnable_beta():
    x = torch.linspace(-3, 3, 61)
    assert torch.allclose(Swish(0.0)(x), x / 2)
    assert torch.allclose(Swish(100.0)(x), torch.relu(x), atol=1e-4)
    assert torch.allclose(Swish(1.0)(x), F.silu(x))
    s = Swish(1.0, learnable=True)
    assert [n for n, _ in s.named_parameters()] == ["beta"]
    s(x).sum().backward()
    sig = 1 / (1 + torch.exp(-x))   # d/d(beta) of x * sigmoid(beta x) = x^2 s (1 - s) at beta 1
    assert float(s.beta.grad) == pytest.approx(float((x ** 2 * sig * (1 - sig)).sum()), rel=1e-5)
    assert list(Swish(1.0).parameters()) == [] and "beta" in dict(Swish().named_buffers())


def test_zero_grad_fraction():
    x = torch.tensor([-2.0, -1.0, 1.0, 2.0, 7.0])
    assert zero_grad_fraction("relu", x) == pytest.approx(2 / 5)
    assert zero_grad_fraction("relu6", x) == pytest.approx(3 / 5)
    assert zero_grad_fraction("leaky_relu", x) == 0.0
    assert zero_grad_fraction("sigmoid", torch.tensor([-20.0, 0.0]), tol=1e-6) == 0.5


def test_dead_fraction_counts_units_not_values():
    z = torch.randn(8, 4, 5, 5)
    z[:, 1] = -z[:, 1].abs() - 0.1      # channel 1: negative everywhere -> dead ReLU unit
    z[:, 2] = -z[:, 2].abs() - 5.0      # channel 2: very negative -> dead for GELU too
    assert dead_fraction("relu", z) == pytest.approx(2 / 4)
    assert dead_fraction("leaky_relu", z) == 0.0
    assert dead_fraction("gelu", z) == pytest.approx(1 / 4)
    fc = torch.tensor([[1.0, -1.0, -2.0], [-1.0, -3.0, 0.5]])  # unit 1 never positive
    assert dead_fraction("relu", fc) == pytest.approx(1 / 3)
    assert dead_fraction(nn.PReLU(), fc) == 0.0
    with pytest.raises(ValueError, match="pre-activations"):
        dead_fraction("relu", torch.zeros(2, 3, 4))


def test_time_activations_returns_a_sorted_table():
    df = time_activations(["relu", "gelu", "silu"], numel=4096, repeats=2)
    assert set(df["activation"]) == {"relu", "gelu", "silu"}
    assert df["ms"].is_monotonic_increasing and (df["ms"] > 0).all()
    assert float(df.loc[df["activation"] == "relu", "vs relu"].iloc[0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        time_activations(["relu"], repeats=0)


def test_compare_activations():
    out = compare_activations(["relu", "leaky_relu", "elu", "swish"], -3, 3, points=601,
                              params={"leaky_relu": 0.1, "swish": 2.0})
    assert out["x"].shape == (601,) and out["f"]["relu"].shape == (601,)
    # half of [-3, 3] is at or below zero, where ReLU's gradient is 0 (x = 0 included)
    assert out["zero_grad"]["relu"] == pytest.approx(301 / 601)
    assert out["zero_grad"]["leaky_relu"] == 0.0 == out["zero_grad"]["elu"]
    assert out["at_minus_1"]["leaky_relu"] == pytest.approx(-0.1)
    assert out["grad_at_minus_1"]["elu"] == pytest.approx(math.exp(-1))
    assert out["at_minus_1"]["swish"] == pytest.approx(-1 / (1 + math.exp(2)))
    for bad, msg in [(dict(names=[]), "at least one"),
                     (dict(names=["relu"], x_min=1, x_max=1), "min < max"),
                     (dict(names=["relu", "nope"]), "unknown activation")]:
        with pytest.raises(ValueError, match=msg):
            compare_activations(**bad)


def test_formula_table():
    df = formula_table(["relu", "leaky_relu"])
    assert list(df["name"]) == ["relu", "leaky_relu"]
    assert df["formula"].str.startswith("$").all() and df.loc[1, "parameter"] == "slope = 0.01"
    assert len(formula_table()) == len(ACTIVATIONS)


@pytest.mark.parametrize("lo,hi", [(-3.0, float("inf")), (float("nan"), 3.0), (-1e5, 1.0)])
def test_compare_activations_refuses_ranges_it_cannot_draw(lo, hi):
    from cnnbook.activations import compare_activations

    with pytest.raises(ValueError, match="x range"):
        compare_activations(["relu"], lo, hi)


def test_a_unit_that_passes_gradient_for_one_input_is_alive():
    """A unit is dead only if no input of the batch gets gradient through it (counted here)."""
    z = -torch.rand(8, 4, 16, 16) - 0.1       # every unit negative everywhere ...
    z[3, 0, 5, 7] = 2.0                       # ... but channel 0 once positive: alive
    z[:, 2] = torch.randn(8, 16, 16)          # channel 2: mixed signs, alive
    assert dead_fraction("relu", z) == pytest.approx(2 / 4)   # channels 1 and 3
    fc = -torch.rand(100, 5) - 0.1
    fc[0, 4] = 1.0                            # unit 4 alive through one example of 100
    assert dead_fraction("relu", fc) == pytest.approx(4 / 5)
    assert dead_fraction("relu6", torch.full((3, 2), 7.0)) == 1.0   # saturated above 6


def test_time_activations_takes_the_best_of_the_repeats_and_divides_by_relus(monkeypatch):
    """Oracle: steps whose durations are fixed here, so the table is known exactly."""
    import cnnbook.activations as acts

    durations = {"gelu": [0.004, 0.001, 0.003], "relu": [0.005, 0.004, 0.002],
                 "mish": [0.006, 0.009, 0.008]}
    calls = []

    def fake_step(f, x):
        name = {nn.GELU: "gelu", nn.ReLU: "relu", nn.Mish: "mish"}[type(f)]
        left = list(durations[name])

        def step():
            calls.append(name)
            return left.pop(0)

        return step

    monkeypatch.setattr(acts, "_fwd_bwd_step", fake_step)
    df = time_activations(["relu", "gelu", "mish"], numel=8, repeats=3, warmup=0)
    assert list(df["activation"]) == ["gelu", "relu", "mish"]
    assert df["ms"].tolist() == pytest.approx([1.0, 2.0, 6.0])
    assert df["vs relu"].tolist() == pytest.approx([0.5, 1.0, 3.0])
    assert calls == ["relu", "gelu", "mish"] * 3     # round-robin over the activations


def _leftmost_crossing(df, tol, lo=-50.0, hi=-0.5):
    """Bisection on a hand-written derivative: the x where |f'| first exceeds tol, from the left."""
    a, b = lo, hi
    assert abs(df(a)) <= tol < abs(df(b))
    for _ in range(100):
        m = 0.5 * (a + b)
        a, b = (a, m) if abs(df(m)) > tol else (m, b)
    return a


def test_gradient_vanishes_below_matches_the_closed_form_derivatives():
    """GELU' = Phi(x) + x phi(x) and SiLU' = s(1 + x(1 - s)), written out with math only."""
    def gelu_d(x):
        return 0.5 * (1 + math.erf(x / math.sqrt(2))) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def silu_d(x):
        s = 1 / (1 + math.exp(-x))
        return s * (1 + x * (1 - s))

    gelu_x = gradient_vanishes_below("gelu")
    assert gelu_x == pytest.approx(_leftmost_crossing(gelu_d, 1e-3), abs=1e-6)
    assert round(gelu_x, 2) == -3.81          # the number chapter 03 prints
    assert gradient_vanishes_below("silu") == pytest.approx(_leftmost_crossing(silu_d, 1e-3), abs=1e-6)
    assert gradient_vanishes_below("gelu", tol=1e-2) == pytest.approx(
        _leftmost_crossing(gelu_d, 1e-2), abs=1e-6)
    assert gradient_vanishes_below("gelu", tol=1e-2) > gelu_x   # a looser tolerance reaches further right


def test_gradient_vanishes_below_agrees_with_dead_fraction_and_its_edge_cases():
    x = gradient_vanishes_below("gelu")
    just_left, just_right = torch.full((4, 3), x - 1e-3), torch.full((4, 3), x + 1e-3)
    assert dead_fraction("gelu", just_left) == 1.0 and dead_fraction("gelu", just_right) == 0.0
    assert gradient_vanishes_below("relu") == 0.0                  # flat on the whole range
    assert gradient_vanishes_below("leaky_relu") == -math.inf      # slope 0.01 never vanishes
    s = (1 - math.sqrt(1 - 4e-3)) / 2                              # s (1 - s) = 1e-3
    assert gradient_vanishes_below(nn.Sigmoid()) == pytest.approx(math.log(s / (1 - s)), abs=1e-6)
    for bad in (dict(lo=0.0, hi=-1.0), dict(lo=-math.inf), dict(points=1), dict(tol=float("nan"))):
        with pytest.raises(ValueError):
            gradient_vanishes_below("gelu", **bad)


# --- Mutation-testing follow-ups: defaults, messages, edge cases the tests above skip ---

def test_formula_table_columns_and_empty_parameter_for_fixed_activations():
    df = formula_table(["relu", "elu"])
    assert list(df.columns) == ["name", "formula", "parameter", "source"]
    assert df.loc[0, "parameter"] == "" and df.loc[1, "parameter"] == "alpha = 1"
    assert df.loc[0, "source"] == "Nair & Hinton 2010"


def test_unknown_activation_message_lists_the_choices():
    with pytest.raises(ValueError, match="choose one of sigmoid, tanh, relu, leaky_relu"):
        make_activation("softsign")


def test_swish_default_beta_is_one_and_repr_shows_beta():
    assert float(Swish().beta) == 1.0
    assert "beta=2.5" in repr(Swish(2.5)) and "beta=1)" in repr(Swish())


def test_dead_fraction_tolerance_is_inclusive():
    # ReLU's gradient is exactly 0 on negatives: with tol=0 those units still count as dead
    assert dead_fraction("relu", -torch.rand(4, 3) - 0.1, tol=0.0) == 1.0


def test_gradient_vanishes_below_edge_arguments():
    # tol=0: ReLU's gradient is exactly 0 on [lo, 0] (torch sets ReLU'(0) = 0), so flat throughout
    assert gradient_vanishes_below("relu", tol=0.0) == 0.0
    # a two-point grid is allowed: flat at -50, steep at 0, bisection does the rest
    s = (1 - math.sqrt(1 - 4e-3)) / 2                              # s (1 - s) = 1e-3
    assert gradient_vanishes_below("sigmoid", points=2) == pytest.approx(math.log(s / (1 - s)), abs=1e-6)
    with pytest.raises(ValueError, match=r"need finite lo < hi, got \[1, 1\]"):
        gradient_vanishes_below("gelu", lo=1.0, hi=1.0)
    with pytest.raises(ValueError, match="^points must be at least 2 and tol a number >= 0$"):
        gradient_vanishes_below("gelu", points=1)


def test_gradient_vanishes_below_works_in_float64_for_tiny_tolerances():
    # sigmoid'(x) = s (1 - s) ~ e^x far left: it exceeds 1e-50 from x = ln(1e-50) ~ -115.13 on,
    # far below where float32 underflows (about -103)
    assert gradient_vanishes_below("sigmoid", tol=1e-50, lo=-200.0) == pytest.approx(
        math.log(1e-50), abs=1e-6)


def test_compare_activations_defaults_and_boundaries():
    out = compare_activations(["relu"])
    assert out["x"].shape == (601,) and float(out["x"][0]) == -3.0 and float(out["x"][-1]) == 3.0
    edge = compare_activations(["relu"], -1e4, 1e4, points=2)     # the limits themselves are allowed
    assert out["x"].dtype == torch.float64 and edge["x"].tolist() == [-1e4, 1e4]
    # a parameter given for an activation that has none is ignored (the explorer sends them all)
    assert compare_activations(["relu"], params={"relu": 0.5})["at_minus_1"]["relu"] == 0.0
    # f(-1) is computed in float64: swish with beta 2 at -1 is -sigmoid(-2) to full precision
    swish = compare_activations(["swish"], params={"swish": 2.0})
    assert swish["at_minus_1"]["swish"] == pytest.approx(-1 / (1 + math.exp(2)), rel=1e-13)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(names=[]), "^select at least one activation$"),
    (dict(names=["relu"], x_min=-3.0, x_max=float("inf")), r"must be finite numbers, got \[-3, inf\]"),
    (dict(names=["relu"], x_min=float("nan"), x_max=3.0), "must be finite numbers"),
    (dict(names=["relu"], x_min=-2e4), "beyond that the curves are straight lines or overflow$"),
    (dict(names=["relu"], points=1), "^points must be at least 2$"),
])
def test_compare_activations_error_messages(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        compare_activations(**kwargs)


def test_fwd_bwd_step_returns_the_elapsed_clock_time(monkeypatch):
    import cnnbook.activations as acts

    clock = iter([10.0, 10.25])
    monkeypatch.setattr(acts.time, "perf_counter", lambda: next(clock))
    step = acts._fwd_bwd_step(nn.ReLU(), torch.randn(5))
    assert step() == pytest.approx(0.25)


def test_fwd_bwd_step_waits_for_the_gpu_on_cuda_tensors(monkeypatch):
    """No GPU needed: a stand-in input that reports a CUDA device, and a recorded synchronize."""
    import cnnbook.activations as acts

    class FakeCudaInput:
        device = torch.device("cuda", 0)
        grad = None

        def detach(self):
            return self

        clone = detach

        def requires_grad_(self, flag):
            return self

    out = torch.zeros(3, requires_grad=True)
    synced = []
    monkeypatch.setattr(acts.torch.cuda, "synchronize", lambda device=None: synced.append(device))
    acts._fwd_bwd_step(lambda x: out, FakeCudaInput())()
    assert synced == [torch.device("cuda", 0)]
    assert out.grad.tolist() == [1.0, 1.0, 1.0]       # backward ran with a gradient of ones


def _recording_steps(monkeypatch):
    """Replace _fwd_bwd_step by one that records its module and input and counts the calls."""
    import cnnbook.activations as acts

    seen = {"calls": 0, "made": []}

    def fake_step(f, x):
        seen["made"].append((f, x))

        def step():
            seen["calls"] += 1
            return 0.001

        return step

    monkeypatch.setattr(acts, "_fwd_bwd_step", fake_step)
    return seen


def test_time_activations_defaults_one_warmup_and_five_repeats(monkeypatch):
    seen = _recording_steps(monkeypatch)
    time_activations(["relu"], numel=8)
    assert seen["calls"] == 1 + 5
    seen["calls"] = 0
    time_activations(["relu", "gelu"], numel=8, repeats=1, warmup=3)    # repeats = 1 is allowed
    assert seen["calls"] == 2 * (3 + 1)


def test_time_activations_input_is_seeded_and_of_the_asked_size(monkeypatch):
    seen = _recording_steps(monkeypatch)
    torch.manual_seed(1234)            # the global generator must not matter
    time_activations(["relu"], numel=1)                  # numel = 1 is allowed
    time_activations(["relu"], numel=16, seed=0)
    time_activations(["relu"], numel=16)
    time_activations(["relu"], numel=16, seed=3)
    xs = [x for _, x in seen["made"]]
    assert xs[0].shape == (1,)
    assert torch.equal(xs[1], torch.randn(16, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(xs[2], xs[1])                     # seed 0 is the default
    assert torch.equal(xs[3], torch.randn(16, generator=torch.Generator().manual_seed(3)))


def test_time_activations_moves_input_and_module_to_the_device(monkeypatch):
    seen = _recording_steps(monkeypatch)
    time_activations(["prelu"], numel=4, repeats=1, device="meta")
    f, x = seen["made"][0]
    assert x.device.type == "meta" and f.weight.device.type == "meta"
    time_activations(["prelu"], numel=4, repeats=1)
    f, x = seen["made"][1]
    assert x.device.type == "cpu" and f.weight.device.type == "cpu"


def test_time_activations_table_index_and_errors(monkeypatch):
    import cnnbook.activations as acts

    times = {nn.ReLU: 0.002, nn.GELU: 0.001, nn.Mish: 0.003}
    monkeypatch.setattr(acts, "_fwd_bwd_step", lambda f, x: (lambda: times[type(f)]))
    df = time_activations(["relu", "gelu", "mish"], numel=8, repeats=1)
    assert list(df["activation"]) == ["gelu", "relu", "mish"] and list(df.index) == [0, 1, 2]
    assert list(df.columns) == ["activation", "ms", "vs relu"]
    for bad in (dict(repeats=0), dict(numel=0)):
        with pytest.raises(ValueError, match="^repeats and numel must be positive$"):
            time_activations(["relu"], **bad)
