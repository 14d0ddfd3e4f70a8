"""cnnbook.grading.onekernel: one kernel grades the blank, the solution and every fake."""
import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbgrader")

from cnnbook.grading import onekernel  # noqa: E402


def _meta(gid, solution, points=None):
    m = {"grade": points is not None, "grade_id": gid, "locked": not solution,
         "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def toy_chapter(folder):
    """A chapter with a well-tested exercise and one a fake can pass (visible assert only)."""
    cell = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Toy"),
        cell("import os\nassert os.listdir('.') == ['98_toy.ipynb'], os.listdir('.')"),
        cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
             metadata=_meta("ex-98-square", True)),
        cell("assert square(3) == 9\n### BEGIN HIDDEN TESTS\nfrom cnnbook.grading import agrees\n"
             "agrees(square, lambda x: x * x, [(k,) for k in range(-3, 5)])\n### END HIDDEN TESTS",
             metadata=_meta("ex-98-square-test", False, 2)),
        cell("print(square(4))"),
        cell("### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION", metadata=_meta("ex-98-answer", True)),
        cell("assert answer == 42", metadata=_meta("ex-98-answer-test", False, 1)),
    ]
    folder.mkdir()
    nbformat.write(nb, folder / "98_toy.ipynb")
    return nb


def test_exercises_and_blank_sources(tmp_path):
    nb = toy_chapter(tmp_path / "notebooks")
    assert onekernel.exercises(nb) == [(2, [3]), (5, [6])]
    assert onekernel.chapters_with_exercises(tmp_path / "notebooks") == ["98"]
    blanks = onekernel.blank_sources(nb)
    assert "raise NotImplementedError()" in blanks[2] and "x * x" not in blanks[2]
    assert "answer = 6 * 7" not in blanks[5]


def test_one_kernel_finds_the_fake_a_visible_assert_lets_through(tmp_path):
    toy_chapter(tmp_path / "notebooks")
    result = onekernel.check_chapter("98", timeout=120, notebooks=tmp_path / "notebooks")
    print(onekernel.table(result))
    scores = result["scores"]
    assert scores["solution"] == {"ex-98-square": (2, 2), "ex-98-answer": (1, 1)}
    assert scores["blank"] == {"ex-98-square": (0, 2), "ex-98-answer": (0, 1)}
    for kind in ("hardcoded", "lookup", "always_equal", "allclose"):
        assert scores[kind]["ex-98-square"] == (0, 2), kind
    assert "forbidden" not in scores                       # no task of the toy forbids a call
    assert onekernel.problems(result) == ["always_equal fake scores 1 on ex-98-answer"]
    assert result["lesson_errors"] == []
    assert 0 < result["longest_cell"][0] < result["seconds"]


def test_shards_deal_every_chapter_once_and_evenly(monkeypatch):
    monkeypatch.delenv("CNNBOOK_GRADE", raising=False)
    everyone = onekernel.chapters_with_exercises()
    dealt = [onekernel.shard(i) for i in range(onekernel.SHARDS)]
    assert sorted(c for d in dealt for c in d) == everyone
    if onekernel.SECONDS:
        mean = sum(onekernel.SECONDS.values()) / len(onekernel.SECONDS)
        loads = [sum(onekernel.SECONDS.get(c, mean) for c in d) for d in dealt]
        assert max(loads) - min(loads) <= max(onekernel.SECONDS.values())
    monkeypatch.setenv("CNNBOOK_GRADE", "02,05")
    assert sorted(c for i in range(onekernel.SHARDS) for c in onekernel.shard(i)) == ["02", "05"]
