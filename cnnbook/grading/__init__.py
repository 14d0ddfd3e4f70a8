"""Checks for the hidden tests of the exercises: answers a student cannot fake.

A visible ``assert f(x) == 64`` is passed by typing ``64``, by a lookup table of the
tested inputs, by an object whose ``__eq__`` always says yes, or by replacing
``torch.allclose`` with ``lambda *a, **k: True``. A hidden test (nbgrader removes it from
the student's copy) calls these helpers instead:

- ``same(got, want)``: strict comparison. The type must be the real one (``int``, ``float``,
  ``bool``, ``str``, a ``torch.Tensor``, a tuple/list/dict of them), and the values are compared
  by this module's own arithmetic, never through a comparison function the student's code
  could have replaced.
- ``agrees(fn, reference, cases)``: ``fn`` against a reference computed inside the hidden
  test, on inputs the student never saw (``cases`` built from a seeded generator).
- ``check_comparisons()``: ``torch.allclose``, ``torch.equal``, ``torch.isclose``,
  ``math.isclose`` and the tensor methods are the genuine ones.
- ``forbidden("torch.nn.functional.unfold", ...)``: a context manager under which calling the
  named function fails the test, however the student reached it (``F.unfold``, an alias
  imported before the test, a module that calls it): the function is replaced on its owner
  for the duration, and a profiler watches for its own code (or, for a C function, the
  function object itself), which an alias still points to.

This module holds no answer to any exercise: the references live in the hidden tests.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import sys
import types
from typing import Any, Callable, Iterable

import torch

__all__ = ["check_comparisons", "same", "agrees", "forbidden", "exact_type", "generator"]

# The genuine comparison functions, looked up where torch defines them (not through the
# attributes a student's cell may have replaced).
_VF = torch._C._VariableFunctions
_GENUINE = {
    "torch.allclose": _VF.allclose,
    "torch.equal": _VF.equal,
    "torch.isclose": _VF.isclose,
    "torch.eq": _VF.eq,
}
_TENSOR_METHODS = ("allclose", "equal", "isclose", "eq", "__eq__", "__ne__", "__bool__",
                   "item", "tolist", "all", "any", "abs", "__sub__", "__le__", "double")


def check_comparisons() -> None:
    """Fail unless torch's and math's comparison functions are the genuine ones."""
    for name, genuine in _GENUINE.items():
        current = getattr(torch, name.split(".", 1)[1])
        assert current is genuine, f"{name} was replaced: comparisons cannot be trusted"
    replaced = [m for m in _TENSOR_METHODS if m in torch.Tensor.__dict__
                and torch.Tensor.__dict__[m] is not getattr(torch._C.TensorBase, m, None)]
    assert not replaced, f"torch.Tensor.{replaced[0]} was replaced: comparisons cannot be trusted"
    assert type(math.isclose).__name__ == "builtin_function_or_method" \
        and getattr(math.isclose, "__self__", None) is math, "math.isclose was replaced"


def exact_type(value: Any, *types: type) -> bool:
    """``type(value)`` is one of ``types`` exactly (no subclass that overrides ``__eq__``)."""
    return type(value) in types


def _plain_tensor(t: Any) -> bool:
    return type(t) in (torch.Tensor, torch.nn.Parameter)


def same(got: Any, want: Any, atol: float = 1e-5, rtol: float = 1e-4, what: str = "answer") -> None:
    """Assert ``got`` equals the reference ``want``, with real types and genuine arithmetic.

    ints, bools and strings must match exactly; floats within ``atol + rtol * |want|``
    (an ``int`` is accepted where a float is expected); tensors must have the same shape,
    a float dtype where ``want`` has one, and close values; tuples, lists and dicts are
    compared element by element (a tuple and a list with the same items are the same).
    """
    check_comparisons()
    if isinstance(want, torch.Tensor):
        assert _plain_tensor(got), f"{what}: expected a torch.Tensor, got {type(got).__name__}"
        assert tuple(got.shape) == tuple(want.shape), \
            f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        if want.is_floating_point():
            assert got.is_floating_point(), f"{what}: expected a float tensor, got {got.dtype}"
        else:
            assert not got.is_floating_point() or got.dtype == want.dtype, \
                f"{what}: expected a {want.dtype} tensor, got {got.dtype}"
        g = torch.Tensor.double(got.detach().cpu())
        w = torch.Tensor.double(want.detach().cpu())
        nan_g, nan_w = torch.isnan(g), torch.isnan(w)
        assert bool(torch.equal(nan_g, nan_w)), f"{what}: NaNs in the wrong places"
        g, w = torch.where(nan_g, 0.0, g), torch.where(nan_w, 0.0, w)
        inf = torch.isinf(w)
        assert bool(torch.equal(g[inf], w[inf])), f"{what}: infinities differ"
        err = (g - w).abs()[~inf]
        bound = (atol + rtol * w.abs())[~inf]
        bad = int((err > bound).sum())
        assert bad == 0, (f"{what}: {bad} of {w.numel()} values differ from the reference "
                          f"(largest error {float(err.max()):.3g})")
    elif type(want) is bool:
        assert type(got) is bool, f"{what}: expected a bool, got {type(got).__name__}"
        assert got is want, f"{what}: {got}, expected {want}"
    elif type(want) is int:
        assert type(got) is int, f"{what}: expected an int, got {type(got).__name__}"
        assert int.__eq__(got, want), f"{what}: {got}, expected {want}"
    elif type(want) is float:
        assert type(got) in (float, int), f"{what}: expected a float, got {type(got).__name__}"
        g = float(got)
        if math.isnan(want):
            assert math.isnan(g), f"{what}: {g}, expected NaN"
        else:
            assert abs(g - want) <= atol + rtol * abs(want), f"{what}: {g}, expected {want}"
    elif type(want) is str:
        assert type(got) is str and str.__eq__(got, want), f"{what}: {got!r}, expected {want!r}"
    elif want is None:
        assert got is None, f"{what}: {got!r}, expected None"
    elif type(want) in (tuple, list):
        assert type(got) in (tuple, list), f"{what}: expected a {type(want).__name__}, got {type(got).__name__}"
        assert len(got) == len(want), f"{what}: {len(got)} items, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, atol, rtol, f"{what}[{i}]")
    elif type(want) is dict:
        assert type(got) is dict, f"{what}: expected a dict, got {type(got).__name__}"
        keys_g, keys_w = sorted(map(repr, got)), sorted(map(repr, want))
        assert keys_g == keys_w, f"{what}: keys {keys_g}, expected {keys_w}"
        by_repr = {repr(k): v for k, v in got.items()}
        for k, w in want.items():
            same(by_repr[repr(k)], w, atol, rtol, f"{what}[{k!r}]")
    else:
        raise TypeError(f"same() cannot compare a reference of type {type(want).__name__}")


def agrees(fn: Callable, reference: Callable, cases: Iterable, what: str | None = None,
           forbid: tuple = (), allow: Callable | None = None, **tolerance) -> None:
    """``fn(*case)`` is ``same`` as ``reference(*case)`` for every case.

    Returns None on purpose: a test cell that ends with ``agrees(...)`` must show no value,
    since nbgrader reads a number shown by a test cell as partial credit.

    A case is a tuple of positional arguments, or a dict of keyword arguments. Every
    reference is computed first, on copies of the inputs (so a function that mutates its
    input cannot fool the check); then ``fn`` runs on each case with the functions named in
    ``forbid`` trapped (see ``forbidden``; ``allow`` lets some calls of them through).
    """
    name = what or getattr(fn, "__name__", "answer")
    cases = [((), c) if isinstance(c, dict) else (tuple(c), {}) for c in cases]
    assert cases, "agrees() was given no cases"
    wants = [reference(*_clone(args), **_clone(kwargs)) for args, kwargs in cases]
    with forbidden(*forbid, allow=allow, task=f"the task of {name}"):
        gots = [fn(*args, **kwargs) for args, kwargs in cases]
    for (args, kwargs), got, want in zip(cases, gots, wants):
        same(got, want, what=f"{name}{_show(args, kwargs)}", **tolerance)


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _show(args, kwargs) -> str:
    def short(v):
        if isinstance(v, torch.Tensor):
            return f"tensor{tuple(v.shape)}"
        text = repr(v)
        return text if len(text) < 40 else text[:37] + "..."
    parts = [short(a) for a in args] + [f"{k}={short(v)}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"


def generator(seed: int) -> torch.Generator:
    """A CPU generator for a hidden test's random inputs (the seed is hidden too)."""
    return torch.Generator().manual_seed(seed)


def _resolve(path: str):
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:-1]:
            owner = getattr(owner, attr)
        return owner, parts[-1]
    raise ValueError(f"cannot resolve {path!r}")


@contextlib.contextmanager
def forbidden(*paths: str, task: str = "the task", allow: Callable | None = None):
    """Within the block, calling any function named in ``paths`` fails the test.

    Each function is replaced on its owner (module or class) by one that records the call
    and raises, so an alias, a helper or a library function that reaches it is caught too;
    a student's ``try``/``except`` around the call does not help, since the record is
    checked when the block ends. The originals are always restored. ``allow(*args,
    **kwargs)``, when given, lets the calls it returns True for through to the original
    (for example F.cross_entropy without its ``label_smoothing`` argument).
    """
    saved, used, codes, builtins = [], [], {}, {}
    for path in paths:
        owner, attr = _resolve(path)
        original = owner.__dict__[attr] if attr in getattr(owner, "__dict__", {}) else getattr(owner, attr)
        if allow is None:                    # (an allowed call through an alias looks the same)
            _watch(original, path, codes, builtins)

        def trap(*args, _path=path, _original=original, **kwargs):
            if allow is not None and allow(*args, **kwargs):
                return _original(*args, **kwargs)
            used.append(_path)
            raise AssertionError(f"{_path} is forbidden by {task}")

        saved.append((owner, attr, original))
        setattr(owner, attr, trap)

    def profiler(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            used.append(codes[frame.f_code])
        elif event == "c_call" and id(arg) in builtins and builtins[id(arg)][0] is arg:
            used.append(builtins[id(arg)][1])
    previous = sys.getprofile()
    if codes or builtins:
        sys.setprofile(profiler)
    try:
        yield used
    except AssertionError:
        if used:
            raise AssertionError(f"{used[0]} was called, which {task} forbids") from None
        raise
    finally:
        if codes or builtins:
            sys.setprofile(previous)
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)
    assert not used, f"{used[0]} was called, which {task} forbids"


def _watch(original, path: str, codes: dict, builtins: dict) -> None:
    """Record what the profiler of ``forbidden`` recognises ``original`` by, whatever name
    calls it: the code of the innermost function (a decorator's wrapper code is shared with
    other functions, so not that), or a C function's object."""
    func = getattr(original, "__func__", original)          # staticmethod / classmethod
    try:
        func = inspect.unwrap(func)
    except ValueError:
        pass
    if isinstance(func, types.FunctionType):
        codes[func.__code__] = path
    elif isinstance(func, types.BuiltinFunctionType):
        builtins[id(func)] = (func, path)
