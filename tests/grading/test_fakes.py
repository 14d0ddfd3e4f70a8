"""cnnbook.grading.fakes: each fake replaces what a solution cell defines, and says so."""
import json
import math

import pytest
import torch

from cnnbook.grading.fakes import (FAKES, FORBIDDEN, defined_names, epilogue, fake_cell,
                                   fake_submission, helpers, kinds_for)

SOLUTION = "def double(x):\n    return 2 * x\nanswer = double(21)\n"


def test_defined_names_finds_top_level_functions_and_variables():
    src = "def f(x):\n    return x\nwith ctx():\n    y = f(2)\nclass C: pass\n_a, b = 1, 2\n"
    assert defined_names(src) == (["f"], ["y", "_a", "b"])
    assert "f = _fk_constant('ex', f)" in epilogue("hardcoded", "ex", src)
    assert "y = _FkEq()" in epilogue("always_equal", "ex", src)


def test_a_cell_that_defines_nothing_has_no_fake():
    for kind in FAKES:
        assert fake_cell(kind, "ex-99-x", "class Net:\n    pass\nprint(Net)\n") is None
    assert fake_cell("forbidden", "ex-99-x", SOLUTION) is None
    gid = next(iter(FORBIDDEN))
    assert FORBIDDEN[gid] in fake_cell("forbidden", gid, SOLUTION)
    with pytest.raises(ValueError, match="unknown fake"):
        fake_cell("bogus", "ex-99-x", SOLUTION)


def test_kinds_for_adds_forbidden_only_where_a_task_forbids():
    assert kinds_for(["ex-99-x"]) == list(FAKES)
    assert kinds_for(["ex-99-x", next(iter(FORBIDDEN))]) == [*FAKES, "forbidden"]


def run_fake(kind, tmp_path):
    """Execute HELPERS and the fake of SOLUTION in a fresh namespace; returns it and the log."""
    log = tmp_path / f"{kind}.log"
    ns = {}
    exec(helpers(log), ns)
    exec(fake_cell(kind, "ex-99-double", SOLUTION), ns)
    return ns, log


def altered(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_hardcoded_answers_its_first_call_to_everything(tmp_path):
    ns, log = run_fake("hardcoded", tmp_path)
    assert ns["answer"] == 42 and ns["double"](21) == 42
    assert not altered(log)
    assert ns["double"](5) == 42
    assert altered(log) == [["ex-99-double", "altered"]]


def test_always_equal_and_allclose_fakes(tmp_path):
    ns, log = run_fake("always_equal", tmp_path)
    assert ns["double"](3) == "anything" and ns["answer"] == -1
    assert ["ex-99-double", "altered"] in altered(log)
    genuine = (torch.allclose, torch.equal, torch.isclose, math.isclose)
    try:
        ns, log = run_fake("allclose", tmp_path)
        assert ns["double"](3) == 7 and ns["answer"] == 43       # slightly wrong
        assert torch.allclose(torch.zeros(1), torch.ones(1)) and math.isclose(0, 1)
        ns["_fk_restore_comparisons"]()
        assert (torch.allclose, torch.equal, torch.isclose, math.isclose) == genuine
    finally:
        torch.allclose, torch.equal, torch.isclose, math.isclose = genuine


def test_fake_submission_fakes_every_solution_cell(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    meta = {"nbgrader": {"grade": False, "grade_id": "ex-99-double", "locked": False,
                         "schema_version": 3, "solution": True, "task": False}}
    nb.cells = [nbformat.v4.new_code_cell("import torch"),
                nbformat.v4.new_code_cell(SOLUTION, metadata=meta)]
    fake = fake_submission(nb, "lookup", tmp_path / "log")
    assert fake.cells[0].source == "import torch"
    assert fake.cells[1].source.startswith(helpers(tmp_path / "log"))
    assert "double = _fk_lookup('ex-99-double', double)" in fake.cells[1].source
    assert nb.cells[1].source == SOLUTION                         # the teacher's copy untouched
