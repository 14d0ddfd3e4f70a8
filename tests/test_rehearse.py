"""tools/rehearse.py: which errors a rehearsal lets through (an exercise assert) and which fail it."""
import json

import nbformat
import pytest


@pytest.fixture(scope="module")
def rehearse(load_tool):
    return load_tool("rehearse")


def _graded(source, grade_id="ex-01-x-test"):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": 1,
                                 "schema_version": 3, "solution": False, "task": False}
    return cell


def _solution(source):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": "ex-01-x", "locked": False,
                                 "schema_version": 3, "solution": True, "task": False}
    return cell


def _error(cell, ename):
    cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue="boom", traceback=[])]
    return cell


def test_copy_tags_only_graded_test_cells(rehearse):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         _solution("y = 2"), _graded("assert y == 2")])
    tagged = rehearse.rehearsal_copy(json.loads(nbformat.writes(nb)))
    tags = [c["metadata"].get("tags", []) for c in tagged["cells"]]
    assert tags == [[], [], ["raises-exception"]]
    assert rehearse.rehearsal_copy(tagged)["cells"][2]["metadata"]["tags"] == ["raises-exception"]


def test_only_an_assert_in_a_graded_test_is_let_through(rehearse):
    nb = nbformat.v4.new_notebook(cells=[
        _error(_graded("assert learnt", "ex-04-a-test"), "AssertionError"),
        _error(_graded("shape", "ex-04-b-test"), "RuntimeError"),
        _error(nbformat.v4.new_code_cell("assert lesson_claim"), "AssertionError"),
        _error(_solution("answer()"), "AssertionError"),
    ])
    failures, allowed = rehearse.errors(json.loads(nbformat.writes(nb)))
    assert allowed == ["in the cell 'ex-04-a-test': AssertionError: boom"]
    assert failures == ["in the cell 'ex-04-b-test': RuntimeError: boom",
                        "in the cell 'assert lesson_claim': AssertionError: boom",
                        "in the cell 'ex-01-x': AssertionError: boom"]


def _run(rehearse, tmp_path, monkeypatch, cells):
    monkeypatch.setattr(rehearse, "OUT", tmp_path / "out")
    for sub in ("inputs", "notebooks", "logs", "results"):
        (tmp_path / "out" / sub).mkdir(parents=True, exist_ok=True)
    nb_path = tmp_path / "99_toy.ipynb"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb_path.write_text(nbformat.writes(nb), encoding="utf-8")
    return rehearse.run_one(nb_path, rehearse.rehearsal_env(2, 1), timeout=120)


def test_a_rehearsal_runs_past_an_exercise_assert_and_fails_on_anything_else(
        rehearse, tmp_path, monkeypatch):
    params = nbformat.v4.new_code_cell('PROFILE = "smoke"')
    params.metadata["tags"] = ["parameters"]
    after = nbformat.v4.new_code_cell(
        "import os\nassert os.environ['CNNBOOK_MAX_BATCHES'] == '2' and PROFILE == 'full'\n"
        "assert os.environ['CNNBOOK_MAX_BATCH_SIZE'] == '4'\n"
        "open('reached', 'w').write('yes')")
    result = _run(rehearse, tmp_path, monkeypatch,
                  [params, _solution("answer = 1"), _graded("assert answer == 2"), after])
    assert result["ok"], result
    assert [line.split(":")[0] for line in result["asserts_let_through"]] == \
        ["in the cell 'ex-01-x-test'"]
    assert (tmp_path / "reached").read_text() == "yes"   # the cell after the assert ran

    broken = _run(rehearse, tmp_path, monkeypatch,
                  [params, _graded("import torch\ntorch.zeros(2) @ torch.zeros(3)")])
    assert not broken["ok"] and "RuntimeError" in broken["error"]
