"""cnnbook.grading: the checks a hidden test uses must reject the usual fakes."""
import math
import sys

import pytest
import torch
import torch.nn.functional as F

from cnnbook.grading import agrees, check_comparisons, exact_type, forbidden, generator, same


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __abs__(self):
        return 0

    def __sub__(self, other):
        return self


def test_same_accepts_the_right_answer_in_any_correct_form():
    same(3, 3)
    same(2.0, 2.0 + 1e-7)
    same(2, 2.0)                                   # an int where a float is expected
    same([1, (2.0, "a")], (1, [2.0, "a"]))         # tuple and list alike
    same({"a": torch.ones(2)}, {"a": torch.ones(2)})
    same(torch.tensor([1.0, float("nan"), math.inf]), torch.tensor([1.0, float("nan"), math.inf]))
    same(None, None)
    x = torch.linspace(-8, 8, 101)
    same(x * F.relu6(x + 3) / 6, F.hardswish(x), atol=1e-6)   # another bracketing


@pytest.mark.parametrize("got, want", [
    (AlwaysEqual(), 64), (AlwaysEqual(), 1.5), (AlwaysEqual(), torch.ones(3)), (AlwaysEqual(), (1, 2)),
    (True, 1), (1, True), (64.0, 64), ("64", 64), (torch.ones(3), torch.ones(4)), (torch.ones(3) + 1e-3, torch.ones(3)),
    (torch.ones(3, dtype=torch.long), torch.ones(3)), ([1, 2], [1, 2, 3]), ({"a": 1}, {"b": 1}), (0, None),
    (torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0])),
])
def test_same_rejects_wrong_types_and_values(got, want):
    with pytest.raises(AssertionError):
        same(got, want)


def test_same_cannot_be_fooled_by_a_replaced_comparison(monkeypatch):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    with pytest.raises(AssertionError, match="torch.allclose was replaced"):
        same(torch.zeros(2), torch.ones(2))
    with pytest.raises(AssertionError):
        check_comparisons()


@pytest.mark.parametrize("name", ["equal", "isclose"])
def test_check_comparisons_finds_replaced_torch_functions(monkeypatch, name):
    check_comparisons()
    monkeypatch.setattr(torch, name, lambda *a, **k: True)
    with pytest.raises(AssertionError, match=name):
        check_comparisons()


def test_check_comparisons_finds_replaced_tensor_methods_and_math(monkeypatch):
    monkeypatch.setattr(torch.Tensor, "allclose", lambda *a, **k: True, raising=False)
    with pytest.raises(AssertionError, match="Tensor.allclose"):
        check_comparisons()
    monkeypatch.undo()
    monkeypatch.setattr(math, "isclose", lambda *a, **k: True)
    with pytest.raises(AssertionError, match="math.isclose"):
        check_comparisons()


def test_agrees_checks_against_the_reference_on_every_case():
    g = generator(0)
    cases = [(torch.randn(3, 4, generator=g),) for _ in range(3)]
    # None, never a number: nbgrader would read a number a test cell shows as partial credit
    assert agrees(lambda x: x * 2, lambda x: x + x, cases) is None
    table = {id(cases[0][0]): cases[0][0] * 2}               # a lookup table of one input
    with pytest.raises(AssertionError):
        agrees(lambda x: table.get(id(x), torch.zeros_like(x)), lambda x: x * 2, cases)
    first = []                                               # a hard-coded first answer
    with pytest.raises(AssertionError):
        agrees(lambda x: first.append(x * 2) or first[0], lambda x: x * 2, cases)


def test_agrees_reference_sees_a_copy_of_the_inputs():
    def mutating(x):
        x.add_(1)
        return x
    with pytest.raises(AssertionError):
        agrees(mutating, lambda x: x, [(torch.zeros(2),)])


def test_forbidden_catches_direct_aliased_and_indirect_calls():
    x = torch.randn(1, 1, 5, 5)
    unfold = F.unfold                                         # an alias taken before the check
    for cheat in (lambda: F.unfold(x, 2), lambda: unfold(x, 2), lambda: torch.nn.Unfold(2)(x)):
        with pytest.raises(AssertionError, match="forbid"):
            with forbidden("torch.nn.functional.unfold", "torch._C._nn.im2col"):
                cheat()
    assert F.unfold(x, 2).shape == (1, 4, 16)                 # restored afterwards


def test_forbidden_sees_a_call_the_student_caught():
    def sneaky():
        try:
            return F.layer_norm(torch.ones(2, 3), (3,))
        except Exception:
            return torch.zeros(2, 3)
    with pytest.raises(AssertionError, match="layer_norm"):
        with forbidden("torch.nn.functional.layer_norm"):
            sneaky()


def test_forbidden_can_trap_building_modules_and_allow_some_calls():
    with pytest.raises(AssertionError):
        with forbidden("torch.nn.Module.__init__"):
            torch.nn.Conv2d(1, 1, 3)
    assert isinstance(torch.nn.Conv2d(1, 1, 3), torch.nn.Module)
    o, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    allow = lambda *a, **k: float(k.get("label_smoothing", 0.0)) == 0.0  # noqa: E731
    with forbidden("torch.nn.functional.cross_entropy", allow=allow):
        F.cross_entropy(o, y)
    with pytest.raises(AssertionError):
        with forbidden("torch.nn.functional.cross_entropy", allow=allow):
            F.cross_entropy(o, y, label_smoothing=0.1)


def test_agrees_with_forbidden_functions_computes_references_first():
    cases = [(torch.randn(2, 3, 4),)]
    ref = lambda X: F.layer_norm(X, X.shape[1:])  # noqa: E731
    mine = lambda X: (X - X.mean((1, 2), keepdim=True)) / torch.sqrt(X.var((1, 2), unbiased=False, keepdim=True) + 1e-5)  # noqa: E731
    agrees(mine, ref, cases, forbid=("torch.nn.functional.layer_norm",), atol=1e-5)
    with pytest.raises(AssertionError, match="layer_norm"):
        agrees(ref, ref, cases, forbid=("torch.nn.functional.layer_norm",))


def test_exact_type():
    assert exact_type(3, int) and not exact_type(True, int) and not exact_type(AlwaysEqual(), int, float)


def test_forbidden_catches_an_alias_imported_before_the_check():
    # `from torch.nn.utils import clip_grad_norm_` at the top of a cell: replacing the module
    # attribute does not reach this name; the profiler sees the function's own code run.
    from torch.nn.utils import clip_grad_norm_ as clip
    from torch.nn.functional import conv2d as conv            # a C function, aliased
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    with pytest.raises(AssertionError, match="clip_grad_norm_"):
        with forbidden("torch.nn.utils.clip_grad_norm_"):
            clip([p], 1.0)
    with pytest.raises(AssertionError, match="conv2d"):
        with forbidden("torch.nn.functional.conv2d"):
            conv(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2))
    with forbidden("torch.nn.utils.clip_grad_norm_", "torch.nn.functional.conv2d"):
        torch.nn.utils.get_total_norm([p.grad])           # a sibling under the same decorator
        F.conv1d(torch.ones(1, 1, 4), torch.ones(1, 1, 2))
    assert sys.getprofile() is None                          # the profiler is removed afterwards
    p.grad = torch.ones(3)
    assert abs(float(clip([p], 1.0)) - 3 ** 0.5) < 1e-5        # and the alias works again
