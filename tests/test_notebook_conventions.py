"""The stored notebooks follow the course conventions (CONTRIBUTING.md)."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell):
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4


def test_notebooks_match_their_sources():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "notebooks.py"), "check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_clean_with_kernelspec(path):
    assert NAME.match(path.name), "notebooks are named NN_topic.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_with_profile_and_knobs(path):
    cells = _cells(path)
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert tagged[0]["cell_type"] == "code"
    tree = ast.parse(_src(tagged[0]))
    assigned = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert "PROFILE" in assigned
    code = _src(tagged[0])
    for profile in ("smoke", "cpu", "full"):
        assert f'"{profile}"' in code or f"'{profile}'" in code, f"no {profile} knobs"


def _defined_names(source: str) -> set:
    """Names a cell binds: assignments, for targets, imports, functions and classes."""
    tree = ast.parse(source)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {n.name for n in ast.walk(tree)
              if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _exercises(cells):
    """(index of the solution cell among code cells, solution cell, the code cell after it)."""
    code = [c for c in cells if c["cell_type"] == "code"]
    out = []
    for i, cell in enumerate(code):
        if "### BEGIN SOLUTION" in _src(cell):
            out.append((i, cell, code[i + 1] if i + 1 < len(code) else None))
    return code, out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_follow_nbgrader_conventions(path):
    code, exercises = _exercises(_cells(path))
    assert 3 <= len(exercises) <= 6, f"{len(exercises)} exercises; a chapter has 3 to 6"
    ids = set()
    for i, solution, test in exercises:
        src = _src(solution)
        assert src.count("### BEGIN SOLUTION") == src.count("### END SOLUTION") >= 1
        meta = solution.get("metadata", {}).get("nbgrader", {})
        assert meta.get("solution") is True and meta.get("grade_id")
        assert test is not None, "a solution cell must be followed by its test cell"
        tmeta = test.get("metadata", {}).get("nbgrader", {})
        assert tmeta.get("grade") is True and tmeta.get("points", 0) > 0
        assert "assert" in _src(test) and "### BEGIN SOLUTION" not in _src(test)
        ids |= {meta["grade_id"], tmeta["grade_id"]}
    assert len(ids) == 2 * len(exercises), "grade_ids must be unique"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_tests_fail_on_a_blank_answer(path):
    """nbgrader replaces each solution region with ``raise NotImplementedError()``; the
    test cell must then fail. It does when it checks a name that only the solution binds:
    no earlier cell of the notebook may bind it too (a stale value would pass)."""
    code, exercises = _exercises(_cells(path))
    for i, solution, test in exercises:
        bound = _defined_names(_src(solution))
        earlier = set().union(*(_defined_names(_src(c)) for c in code[:i]))
        used = {n.id for n in ast.walk(ast.parse(_src(test))) if isinstance(n, ast.Name)}
        grade_id = solution["metadata"]["nbgrader"]["grade_id"]
        assert (bound & used) - earlier, (
            f"{grade_id}: its test cell checks no name that only its solution cell binds, "
            "so a blank answer could pass")
