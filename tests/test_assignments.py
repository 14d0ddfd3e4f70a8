"""nbgrader turns every chapter into a student version a teacher can hand out (make assignments)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("nbgrader")


def _tool():
    spec = importlib.util.spec_from_file_location("assignments", ROOT / "tools" / "assignments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _without_hidden_tests(source: str) -> str:
    """The test cell as a student sees it: nbgrader drops the hidden-tests block, markers included."""
    kept, hidden = [], False
    for line in source.splitlines():
        if line.strip() == "### BEGIN HIDDEN TESTS":
            hidden = True
        elif line.strip() == "### END HIDDEN TESTS":
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept).rstrip()


def test_student_versions_hide_solutions_and_lock_tests(tmp_path):
    tool = _tool()
    released = tool.generate(tmp_path / "course")
    assert len(released) == len(tool.chapters()) >= 4
    assert (tmp_path / "course" / "nbgrader_config.py").exists()
    for path in released:
        teacher = json.loads((ROOT / "notebooks" / path.name).read_text(encoding="utf-8"))["cells"]
        student = json.loads(path.read_text(encoding="utf-8"))["cells"]
        assert tool.solution_leaks(path) == []
        assert len(student) == len(teacher)
        for t, s in zip(teacher, student):
            meta = t["metadata"].get("nbgrader", {})
            if meta.get("solution"):
                assert "raise NotImplementedError()" in _src(s), f"{path.name}: {meta['grade_id']}"
            elif meta.get("grade"):
                assert "HIDDEN TESTS" not in _src(s), f"{path.name}: {meta['grade_id']}"
                assert _src(s).rstrip() == _without_hidden_tests(_src(t))
                assert s["metadata"]["nbgrader"]["locked"] is True
                assert s["metadata"].get("editable") is False
            else:
                assert _src(s) == _src(t)  # the lesson itself is handed out unchanged
