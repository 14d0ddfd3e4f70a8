"""Cheats lose their points: fake answers go through nbgrader's autograde like real homework.

For each chapter checked, the teacher's notebook is released with nbgrader and these
submissions are autograded in one course folder:

- ``solution``: the teacher's notebook: every exercise must get full marks;
- ``blank``: the student version untouched: every exercise must get 0;
- ``hardcoded``: each function the solution defines returns, whatever it is asked, the answer
  to its first call (the visible value typed in);
- ``lookup``: each function answers correctly the calls made by the visible asserts and
  wrongly the others (a lookup table of the visible inputs, the best a student who reads the
  visible tests can do);
- ``always_equal``: every function and variable of the solution is an object whose ``==``
  always says yes (and ``<``, ``abs``, ``-`` and attribute access play along);
- ``allclose``: ``torch.allclose``, ``torch.equal``, ``torch.isclose`` and ``math.isclose``
  patched to say yes, and every answer slightly wrong;
- ``forbidden``: where a task forbids a function, a solution that calls it.

A fake is built from the solution cell: its code runs, then an epilogue replaces what it
defined. Exercises where a fake changes nothing (a class, a function without arguments, a
value that is the answer itself) are reported as not applicable: the submission records at
run time whether each fake actually altered an answer.

The default run checks the chapters in QUICK; ``CNNBOOK_GRADE_ALL=1`` (``make
grading-check``) checks every chapter that has exercises, ``CNNBOOK_GRADE=02,05`` the
chapters named.
"""
from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("nbgrader")
import nbformat  # noqa: E402

# Chapters checked in every run (make test): chapter 02 (5 exercises, a forbidden function:
# every kind of fake applies). Its 7 submissions graded in 195 s here (2026-11-30, load
# falling from 4 to 0.5), one xdist worker's share of make test; `make grading-check` does
# every chapter (too long for make test: about 23 x 3 minutes).
QUICK: tuple = ("02",)
FAKES = ("hardcoded", "lookup", "always_equal", "allclose")

# Where a task forbids a function: a solution that calls it (replaces the student's answer).
FORBIDDEN = {
    "ex-02-im2col-general": "def im2col_general(X, kernel_size, stride=1, padding=0, dilation=1):\n"
                            "    return F.unfold(X, kernel_size, dilation=dilation, padding=padding, stride=stride)",
    "ex-04-manual-grads": "def manual_grads(X, y, K, W):\n"
                          "    K, W = K.clone().requires_grad_(True), W.clone().requires_grad_(True)\n"
                          "    F.cross_entropy(F.relu(F.conv2d(X, K)).mean(dim=(2, 3)) @ W.T, y).backward()\n"
                          "    return K.grad, W.grad",
    "ex-07-block-params": "def vgg_block_params(num_convs, in_channels, out_channels):\n"
                          "    return count_params(vgg_lib.vgg_block(num_convs, in_channels, out_channels))",
    "ex-08-conv1x1": "def conv1x1(x, weight, bias):\n    return F.conv2d(x, weight, bias)",
    "ex-09-label-smoothing": "def smoothed_cross_entropy(logits, y, eps):\n"
                             "    return nn.functional.cross_entropy(logits, y, label_smoothing=eps)",
    "ex-10-layer-norm": "def layer_norm(X, eps=1e-5):\n    return F.layer_norm(X, X.shape[1:], eps=eps)",
    "ex-13-hard-swish": "def hard_sigmoid(x):\n    return F.hardsigmoid(x)\n\n"
                       "def hard_swish(x):\n    return F.hardswish(x)",
}

# Run inside the submission: the fakes. ``_fk_log`` records, per exercise, whether a fake
# altered an answer (else the fake is the solution itself and proves nothing).
HELPERS = r'''
import copy as _fk_copy, json as _fk_json, linecache as _fk_lc, math as _fk_math, sys as _fk_sys
import torch as _fk_torch
_FK_LOG = {log!r}
_FK_MARK = "### BEGIN " + "HIDDEN TESTS"   # spelled in two parts: this cell is no test cell


def _fk_log(gid, kind):
    with open(_FK_LOG, "a") as f:
        f.write(_fk_json.dumps([gid, kind]) + "\n")


class _FkEq:
    """Equal to everything; plays along with the operations visible asserts use."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __bool__(self): return True
    def __hash__(self): return 0
    def __abs__(self): return self
    def __neg__(self): return self
    def __add__(self, other): return self
    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __add__
    __floordiv__ = __mod__ = __pow__ = __matmul__ = __rmatmul__ = __add__
    def __call__(self, *a, **k): return self
    def __getitem__(self, key): return self
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self
    def __iter__(self): return iter(())
    def __len__(self): return 0
    def __float__(self): return 0.0
    def __int__(self): return 0
    def __index__(self): return 0
    def __format__(self, spec): return "0"
    def __repr__(self): return "AlwaysEqual()"


def _fk_perturb(v):
    """A slightly wrong copy of v, and whether it differs."""
    if isinstance(v, _fk_torch.Tensor):
        if v.dtype == _fk_torch.bool:
            return ~v, v.numel() > 0
        if v.is_floating_point():
            return v.detach() * 1.01 + 0.01, v.numel() > 0
        return v + 1, v.numel() > 0
    if type(v) is bool:
        return (not v), True
    if type(v) is int:
        return v + 1, True
    if type(v) is float:
        return v * 1.01 + 0.01, True
    if type(v) in (tuple, list):
        out = [_fk_perturb(x) for x in v]
        return type(v)(x for x, _ in out), any(c for _, c in out)
    if type(v) is dict:
        out = {k: _fk_perturb(x) for k, x in v.items()}
        return {k: x for k, (x, _) in out.items()}, any(c for _, c in out.values())
    if type(v) is str:
        return v + " (fake)", True
    if v is None:
        return 0, True
    return v, False


def _fk_in_hidden():
    """True when the call comes from a line inside a test cell's hidden block."""
    f = _fk_sys._getframe(2)
    while f is not None:
        lines = _fk_lc.getlines(f.f_code.co_filename)
        marks = [i + 1 for i, line in enumerate(lines) if _FK_MARK in line]
        if marks:
            return f.f_lineno > marks[0]
        f = f.f_back
    return False


def _fk_constant(gid, fn):
    memo = []
    def fake(*args, **kwargs):
        if not memo:
            memo.append((repr((args, kwargs)), fn(*args, **kwargs)))
        elif repr((args, kwargs)) != memo[0][0]:
            _fk_log(gid, "altered")
        return memo[0][1]
    return fake


def _fk_lookup(gid, fn):
    def fake(*args, **kwargs):
        out = fn(*args, **kwargs)
        if _fk_in_hidden():
            out, changed = _fk_perturb(out)
            if changed:
                _fk_log(gid, "altered")
        return out
    return fake


def _fk_wrong(gid, fn):
    def fake(*args, **kwargs):
        out, changed = _fk_perturb(fn(*args, **kwargs))
        if changed:
            _fk_log(gid, "altered")
        return out
    return fake


def _fk_equal(gid, fn):
    def fake(*args, **kwargs):
        _fk_log(gid, "altered")
        return _FkEq()
    return fake


def _fk_patch_comparisons():
    import math
    import torch
    yes = lambda *a, **k: True  # noqa: E731
    torch.allclose = torch.equal = yes
    torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
    math.isclose = yes
'''


def _tool():
    spec = importlib.util.spec_from_file_location("assignments", ROOT / "tools" / "assignments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _src(cell) -> str:
    return "".join(cell.source) if isinstance(cell.source, list) else cell.source


def defined_names(source: str) -> tuple[list[str], list[str]]:
    """(functions, variables) a solution cell defines at top level (classes are left alone)."""
    tree = ast.parse(source)
    funcs, names = [], []

    def visit(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and n.id not in names:
                            names.append(n.id)
            elif isinstance(node, (ast.With, ast.If, ast.For, ast.Try)):
                visit(node.body)
    visit(tree.body)
    return funcs, [n for n in names if n not in funcs]


def epilogue(kind: str, gid: str, source: str) -> str:
    funcs, names = defined_names(source)
    lines = [f"# --- fake: {kind}"]
    if kind == "allclose":
        lines.append("_fk_patch_comparisons()")
    for f in funcs:
        wrap = {"hardcoded": "_fk_constant", "lookup": "_fk_lookup", "always_equal": "_fk_equal",
                "allclose": "_fk_wrong"}[kind]
        lines.append(f"{f} = {wrap}({gid!r}, {f})")
    for n in names:
        if kind == "always_equal":
            lines += [f"{n} = _FkEq()", f"_fk_log({gid!r}, 'altered')"]
        elif kind == "allclose":
            lines += [f"{n}, _fk_changed = _fk_perturb({n})",
                      f"if _fk_changed: _fk_log({gid!r}, 'altered')"]
    return "\n".join(lines)


def fake_submission(teacher: nbformat.NotebookNode, kind: str, log: Path) -> nbformat.NotebookNode:
    nb = copy.deepcopy(teacher)
    first = True
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("solution") or cell.cell_type != "code":
            continue
        gid = meta["grade_id"]
        source = _src(cell)
        prefix = HELPERS.replace("{log!r}", repr(str(log))) + "\n" if first else ""
        first = False
        if kind == "forbidden":
            if gid in FORBIDDEN:
                cell.source = prefix + source + f"\n\n{FORBIDDEN[gid]}\n_fk_log({gid!r}, 'altered')\n"
            elif prefix:
                cell.source = prefix + source
            continue
        cell.source = prefix + source + "\n\n" + epilogue(kind, gid, source) + "\n"
    return nb


def exercise_scores(course: Path, assignment: str, student: str) -> dict:
    """{exercise id: (score, max score)} of one autograded submission, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name[:-len("-test")]: (g.score, g.max_score) for g in nb.grades
                if g.name.endswith("-test")}


def longest_cell_seconds(path: Path) -> float:
    """The longest cell of an executed notebook, from nbclient's timing metadata."""
    from datetime import datetime

    longest = 0.0
    for cell in nbformat.read(path, as_version=4).cells:
        t = cell.get("metadata", {}).get("execution", {})
        start, end = t.get("iopub.execute_input"), t.get("shell.execute_reply")
        if start and end:
            d = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                 - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            longest = max(longest, d)
    return longest


def grade_chapter(chapter: str, tmp: Path, notebooks: Path = ROOT / "notebooks") -> dict:
    """Autograde the solution, the blank and every fake of one chapter; returns the scores."""
    tool = _tool()
    course = tmp / "course"
    [released] = tool.generate(course, [chapter], notebooks)
    name = released.stem
    teacher = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
    logs = {}
    kinds = ["solution", "blank", *FAKES]
    if any(f"ex-{chapter}-" in gid for gid in FORBIDDEN):
        kinds.append("forbidden")
    for kind in kinds:
        folder = course / "submitted" / kind / name
        folder.mkdir(parents=True, exist_ok=True)
        logs[kind] = tmp / f"{kind}.log"
        logs[kind].write_text("")
        if kind == "solution":
            nb = teacher
        elif kind == "blank":
            nb = nbformat.read(released, as_version=4)
        else:
            nb = fake_submission(teacher, kind, logs[kind])
        nbformat.write(nb, folder / f"{name}.ipynb")
    start = time.perf_counter()
    tool.grade(course, name)
    seconds = time.perf_counter() - start
    scores = {kind: exercise_scores(course, name, kind) for kind in kinds}
    altered = {}
    for kind, log in logs.items():
        altered[kind] = {json.loads(line)[0] for line in log.read_text().splitlines() if line}
    longest = max(longest_cell_seconds(course / "autograded" / k / name / f"{name}.ipynb") for k in kinds)
    return {"name": name, "scores": scores, "altered": altered, "seconds": seconds,
            "per_submission": seconds / len(kinds), "longest_cell": longest}


def chapters_to_check() -> list[str]:
    if os.environ.get("CNNBOOK_GRADE"):
        return [c.strip() for c in os.environ["CNNBOOK_GRADE"].split(",") if c.strip()]
    if os.environ.get("CNNBOOK_GRADE_ALL"):
        return sorted({p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
                       if "BEGIN SOLUTION" in p.read_text(encoding="utf-8")})
    return list(QUICK)


def test_defined_names_and_epilogue():
    src = "def f(x):\n    return x\nwith ctx():\n    y = f(2)\nclass C: pass\n_a, b = 1, 2\n"
    assert defined_names(src) == (["f"], ["y", "_a", "b"])
    assert "f = _fk_constant('ex', f)" in epilogue("hardcoded", "ex", src)
    assert "y = _FkEq()" in epilogue("always_equal", "ex", src)


@pytest.mark.parametrize("chapter", chapters_to_check())
def test_cheats_get_no_points(chapter, tmp_path):
    result = grade_chapter(chapter, tmp_path)
    scores, altered = result["scores"], result["altered"]
    table = {kind: f"{sum(s for s, _ in sc.values()):g}/{sum(m for _, m in sc.values()):g}"
             for kind, sc in scores.items()}
    print(f"\n{result['name']}: {table}; {result['per_submission']:.1f} s per submission, "
          f"longest cell {result['longest_cell']:.1f} s")
    problems = []
    for gid, (score, top) in scores["solution"].items():
        if score != top:
            problems.append(f"solution loses points on {gid} ({score}/{top})")
    for gid, (score, _) in scores["blank"].items():
        if score:
            problems.append(f"blank scores {score} on {gid}")
    for kind in scores:
        if kind in ("solution", "blank"):
            continue
        for gid, (score, _) in scores[kind].items():
            if gid in altered[kind] and score:
                problems.append(f"{kind} fake scores {score} on {gid}")
    tool = _tool()
    assert result["longest_cell"] < tool.TIMEOUT / 3, "a cell comes too close to the grading timeout"
    assert not problems, "\n".join(problems)
