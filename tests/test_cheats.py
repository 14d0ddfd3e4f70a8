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

The fakes are built by ``cnnbook.grading.fakes`` from the solution cell: its code runs, then
an epilogue replaces what it defined. Exercises where a fake changes nothing (a class, a function without arguments, a
value that is the answer itself) are reported as not applicable: the submission records at
run time whether each fake actually altered an answer.

The default run checks the chapters in QUICK; ``CNNBOOK_GRADE_ALL=1`` (``make
grading-check``) checks every chapter that has exercises, ``CNNBOOK_GRADE=02,05`` the
chapters named.

This is the end-to-end proof for the cheap all-chapter check of ``tests/homework/``
(``cnnbook.grading.onekernel``: every variant graded in one kernel per chapter):
``test_one_kernel_grades_like_nbgrader`` requires both to give every exercise of the QUICK
chapters the same pass/fail for the blank, the solution and each fake.
"""
from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("nbgrader")
import nbformat  # noqa: E402

from cnnbook.grading import onekernel  # noqa: E402
from cnnbook.grading.fakes import FAKES, FORBIDDEN, fake_submission  # noqa: E402

# Chapters checked in every run (make test): chapter 02 (5 exercises, a forbidden function:
# every kind of fake applies). Its 7 submissions graded in 195 s here (2026-11-30, load
# falling from 4 to 0.5), one xdist worker's share of make test; `make grading-check` does
# every chapter (too long for make test: about 23 x 3 minutes).
QUICK: tuple = ("02",)


def _tool():
    spec = importlib.util.spec_from_file_location("assignments", ROOT / "tools" / "assignments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
        return onekernel.chapters_with_exercises()
    return list(QUICK)


_GRADED: dict = {}


def graded(chapter: str, tmp_path_factory) -> dict:
    """``grade_chapter`` once per chapter and run (two tests read its scores)."""
    if chapter not in _GRADED:
        _GRADED[chapter] = grade_chapter(chapter, tmp_path_factory.mktemp(f"grade{chapter}"))
    return _GRADED[chapter]


@pytest.mark.parametrize("chapter", chapters_to_check())
def test_cheats_get_no_points(chapter, tmp_path_factory):
    result = graded(chapter, tmp_path_factory)
    scores = result["scores"]
    table = {kind: f"{sum(s for s, _ in sc.values()):g}/{sum(m for _, m in sc.values()):g}"
             for kind, sc in scores.items()}
    print(f"\n{result['name']}: {table}; {result['per_submission']:.1f} s per submission, "
          f"longest cell {result['longest_cell']:.1f} s")
    problems = onekernel.problems(result)   # the same rules as the one-kernel check
    tool = _tool()
    assert result["longest_cell"] < tool.TIMEOUT / 3, "a cell comes too close to the grading timeout"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("chapter", QUICK)
def test_one_kernel_grades_like_nbgrader(chapter, tmp_path_factory):
    """The one-kernel check passes and fails exactly the exercises nbgrader's autograde does."""
    real = graded(chapter, tmp_path_factory)
    cheap = onekernel.check_chapter(chapter, timeout=_tool().TIMEOUT)
    print("\n" + onekernel.table(cheap))
    assert set(cheap["scores"]) == set(real["scores"])
    differ = []
    for kind, by_exercise in real["scores"].items():
        for ex, (score, top) in by_exercise.items():
            if kind in cheap["skipped"] and ex in cheap["skipped"][kind]:
                # not run: the fake leaves the solution as it is, so nbgrader gives it the
                # solution's marks (or it altered nothing there either)
                assert ex not in real["altered"].get(kind, ()), f"{kind} on {ex} skipped yet altered"
                continue
            mine = cheap["scores"][kind][ex]
            if (score == top) != (mine[0] == mine[1]) or (score == 0) != (mine[0] == 0):
                differ.append(f"{kind} {ex}: nbgrader {score}/{top}, one kernel {mine[0]:g}/{mine[1]:g}")
            if kind in cheap["altered"] and (ex in cheap["altered"][kind]) != (ex in real["altered"][kind]):
                differ.append(f"{kind} {ex}: altered in one run only")
    assert not differ, "\n".join(differ)
