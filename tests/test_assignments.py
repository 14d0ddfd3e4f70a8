"""nbgrader turns every chapter into a student version a teacher can hand out (make assignments)."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("nbgrader")


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("assignments")


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


@pytest.fixture(scope="module")
def course(tmp_path_factory, tool):
    """Every chapter released once for the tests of this module."""
    path = tmp_path_factory.mktemp("assignments") / "course"
    return path, tool.generate(path)


def test_student_versions_hide_solutions_and_lock_tests(course, tool, tmp_path):
    course_dir, released = course
    assert len(released) >= 4
    assert {p.parent.name for p in released} == {p.name for p in (course_dir / "source").iterdir()}
    assert (course_dir / "nbgrader_config.py").exists()
    for path in released:
        # the copy that was released (notebooks/ may have changed since the fixture ran)
        teacher = json.loads((course_dir / "source" / path.parent.name / path.name).read_text(encoding="utf-8"))["cells"]
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


# ------------------------------------------------------------------ the teacher's commands
def _tiny_notebook(path: Path) -> Path:
    """A one-exercise chapter in nbgrader's format (solution, visible and hidden tests)."""
    import nbformat

    def meta(**kw):
        return {"nbgrader": dict(kw, schema_version=3, task=False, locked=kw.get("locked", False))}

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        # The course's nbgrader_config.py sets the smoke profile for the notebooks it grades.
        nbformat.v4.new_code_cell("import os\nassert os.environ['CNNBOOK_PROFILE'] == 'smoke'"),
        nbformat.v4.new_markdown_cell("Write `double(x)`."),
        nbformat.v4.new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                                  "    ### END SOLUTION",
                                  metadata=meta(grade=False, grade_id="ex-00-double", solution=True)),
        nbformat.v4.new_code_cell("assert double(2) == 4\n### BEGIN HIDDEN TESTS\n"
                                  "from cnnbook.grading import same\nsame(double(21), 42)\n"
                                  "### END HIDDEN TESTS",
                                  metadata=meta(grade=True, grade_id="ex-00-double-test", solution=False,
                                                locked=True, points=2)),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _make(*args, cwd=ROOT):
    import os
    import subprocess

    # A teacher's shell: the venv is NOT on PATH (the Makefile must find its tools itself).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTEST", "CNNBOOK_PROFILE"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                  if ".venv" not in p) or "/usr/bin:/bin"
    out = subprocess.run(["make", "--no-print-directory", "-o", "install", "-o", "data", *args],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, f"make {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_readme_grading_commands_work_as_written(tmp_path):
    """release -> collect (zip) -> grade -> grades, with the README's make commands only."""
    import csv
    import shutil
    import zipfile

    nbdir = tmp_path / "notebooks"
    teacher = _tiny_notebook(nbdir / "00_tiny.ipynb")
    course = tmp_path / "course"
    _make("assignments", f"COURSE={course}", f"NOTEBOOKS={nbdir}")
    released = course / "release" / "00_tiny" / "00_tiny.ipynb"
    assert released.exists() and "BEGIN HIDDEN" not in released.read_text()
    config = (course / "nbgrader_config.py").read_text()
    assert str(tmp_path) not in config, "the course folder must not hold absolute paths"
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(teacher, "alice/00_tiny.ipynb")          # the right answer
        z.write(released, "bob/00_tiny.ipynb")           # handed in blank
    _make("collect", "A=00_tiny", f"ZIP={archive}", f"COURSE={course}")
    _make("grade", "A=00_tiny", f"COURSE={course}")
    assert (course / "feedback" / "alice" / "00_tiny" / "00_tiny.html").exists()
    _make("grades", f"COURSE={course}")
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(rows["alice"]["score"]) == float(rows["alice"]["max_score"]) == 2.0
    assert float(rows["bob"]["score"]) == 0.0
    # The course folder can be moved, and grading by hand in it gives the same result.
    moved = tmp_path / "moved"
    shutil.move(course, moved)
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "00_tiny", "--force"],
                         cwd=moved, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr


def test_grading_targets_depend_on_the_data_step():
    import subprocess

    for target in ("assignments", "grade A=00_x", "grading-check"):
        out = subprocess.run(["make", "-n", "-W", "pyproject.toml", *target.split()], cwd=ROOT,
                             capture_output=True, text=True)
        assert "-m cnnbook.data" in out.stdout, f"make {target} does not run the data step first"


# ------------------------------------------------------------------ the student edition
def _solution_lines() -> set:
    """Lines that occur only inside solution regions of the chapters (not in any lesson)."""
    inside, outside = set(), set()
    for src in sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")):
        region = False
        for line in src.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text == "### BEGIN SOLUTION":
                region = True
            elif text == "### END SOLUTION":
                region = False
            elif len(text) >= 12 and not text.startswith("#"):
                (inside if region else outside).add(text)
    for folder in ("cnnbook", "tools", "tests"):    # generic lines the package shares
        for path in (ROOT / folder).rglob("*.py"):
            outside |= {line.strip() for line in path.read_text(encoding="utf-8").splitlines()}
    return inside - outside


def test_student_edition_holds_no_solution(course, tool, load_tool, tmp_path):
    import subprocess
    import sys

    edition = load_tool("student_edition")
    MARKER, build = edition.MARKER, edition.build
    course_dir, released = course
    out = build(tmp_path / "edition", course=course_dir)
    assert (out / MARKER).exists() and (out / "cnnbook" / "__init__.py").exists()
    assert (out / "Makefile").exists() and (out / "README.md").exists()
    assert not (out / "tests" / "test_assignments.py").exists()
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(released) >= 4
    for nb in chapters:
        student = out / "notebooks" / nb.name
        assert student.exists() and (out / "notebooks" / "src" / f"{nb.stem}.py").exists()
        assert tool.solution_leaks(student) == []
    secret = _solution_lines()
    assert len(secret) > 100
    leaks = []
    for path in out.rglob("*"):
        if not path.is_file() or path.suffix not in (".py", ".ipynb", ".md", ".txt", ".toml", ".cfg", ".yml", ""):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.parts[-3:-1] == ("notebooks", "src") or path.parent.name == "notebooks":
            assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path
        if path.suffix == ".ipynb":
            lines = {line.strip() for cell in json.loads(text)["cells"]
                     for line in "".join(cell["source"]).splitlines()}
        else:
            lines = {line.strip() for line in text.splitlines()}
        leaks += [f"{path.relative_to(out)}: {line}" for line in lines & secret]
    assert not leaks, "solution lines in the student edition:\n" + "\n".join(leaks[:20])
    # make notebooks in the edition rebuilds the same student notebooks from their sources
    rebuilt = subprocess.run([sys.executable, "tools/notebooks.py", "build"], cwd=out,
                             capture_output=True, text=True)
    assert rebuilt.returncode == 0, rebuilt.stderr
    for nb in chapters:
        cells = json.loads((out / "notebooks" / nb.name).read_text())["cells"]
        assert not any("BEGIN SOLUTION" in "".join(c["source"]) for c in cells)
