"""Grade a chapter's blank, solution and every fake in ONE kernel, as nbgrader's autograde would.

Autograding a fake submission with nbgrader executes the whole notebook once per fake: about
seven executions per chapter. This check executes the teacher's notebook once, in the smoke
profile, from a temporary folder that holds only the notebook (the situation of a submission
under ``nbgrader autograde``: a relative ``../data`` breaks here as it would there). At each
exercise (a solution cell and the autograded test cells that follow it, as the nbgrader
metadata marks them) it grades, in the same kernel, each variant of the solution cell by
running the teacher's test cells after it (hidden tests included, as autograde runs them):

1. ``blank``: the cell as nbgrader releases it (``raise NotImplementedError()``);
2. ``solution``: the teacher's cell, from the random state the exercise started with, its
   tests right after it (as in a plain run: this is the state the following cells get);
3. each fake of ``cnnbook.grading.fakes``: only its epilogue runs, on what the solution cell
   just defined (the fake submission would run the same cell code first), then the tests;
   afterwards the solution's definitions, the genuine comparison functions and the random
   state are put back. A fake that cannot alter anything (the cell defines no function and
   no variable, or the task forbids nothing) is the solution itself: it is not run.

So a chapter costs one plain execution, plus its test cells run once per variant. Each test
cell is scored with nbgrader's own rule (``nbgrader.utils.determine_grade``: an error, or
anything on stderr, gives 0). ``tests/test_cheats.py`` checks on chapter 02 that every
exercise passes or fails here exactly as under ``nbgrader autograde`` of whole submissions.

Teacher-only (the student edition leaves it out).
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from pathlib import Path

from cnnbook.grading.fakes import cell_source, defined_names, fake_epilogue, helpers, kinds_for

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

_SAVE_RNG = """\
import random as _fk_random, torch as _fk_t
try:
    import numpy as _fk_np
    _fk_rng = (_fk_t.get_rng_state(), _fk_random.getstate(), _fk_np.random.get_state())
except ImportError:
    _fk_np, _fk_rng = None, (_fk_t.get_rng_state(), _fk_random.getstate(), None)
"""
_RESTORE_RNG = """\
_fk_t.set_rng_state(_fk_rng[0]); _fk_random.setstate(_fk_rng[1])
if _fk_np is not None: _fk_np.random.set_state(_fk_rng[2])
"""


def chapters_with_exercises(notebooks: Path = NOTEBOOKS) -> list[str]:
    """The chapter numbers ("02", ...) whose notebooks hold a graded exercise."""
    return sorted({p.name[:2] for p in Path(notebooks).glob("[0-9][0-9]_*.ipynb")
                   if "BEGIN SOLUTION" in p.read_text(encoding="utf-8")})


def notebook_of(chapter: str, notebooks: Path = NOTEBOOKS) -> Path:
    [path] = [p for p in sorted(Path(notebooks).glob(f"{chapter}_*.ipynb"))]
    return path


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def exercises(nb) -> list[tuple[int, list[int]]]:
    """(solution cell index, [its autograded test cell indices]) for every exercise.

    A test cell belongs to the closest solution cell above it; a solution cell without a
    test cell below it (before the next solution cell) is left out.
    """
    found, current = [], None
    for i, cell in enumerate(nb.cells):
        m = _meta(cell)
        if cell.cell_type == "code" and m.get("solution") and not m.get("grade"):
            current = (i, [])
            found.append(current)
        elif cell.cell_type == "code" and m.get("grade") and not m.get("solution") and current:
            current[1].append(i)
    return [(s, tests) for s, tests in found if tests]


def exercise_id(test_cell) -> str:
    gid = _meta(test_cell)["grade_id"]
    return gid[:-len("-test")] if gid.endswith("-test") else gid


def blank_sources(nb) -> dict[int, str]:
    """{solution cell index: its source in the student version}, by nbgrader's ClearSolutions."""
    from nbgrader.preprocessors import ClearSolutions

    student = copy.deepcopy(nb)
    ClearSolutions().preprocess(student, {"language": "python"})
    return {i: cell_source(student.cells[i]) for i, _ in exercises(nb)}


def _errors(cell) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def check_chapter(chapter: str, timeout: float = 300, notebooks: Path = NOTEBOOKS,
                  workdir: Path | None = None, kinds=None) -> dict:
    """Execute chapter ``chapter`` once with every variant graded at each exercise.

    Returns ``{"name", "scores": {kind: {exercise: (score, max)}}, "altered": {kind: set of
    exercises a fake altered}, "skipped": {kind: exercises where it cannot alter anything},
    "lesson_errors": [...], "longest_cell": (seconds, label), "seconds", "kernel_cpu"
    (the kernel's CPU seconds), "spent" (seconds per kind of cell)}``. ``kinds``
    restricts the fakes (default: every one that applies).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbgrader.utils import determine_grade

    path = notebook_of(chapter, notebooks)
    teacher = nbformat.read(path, as_version=4)
    exs = exercises(teacher)
    by_solution = dict(exs)
    blanks = blank_sources(teacher)
    gids = [_meta(teacher.cells[s])["grade_id"] for s, _ in exs]
    fakes = list(kinds_for(gids) if kinds is None else kinds)
    variants = ["blank", "solution", *fakes]
    scores = {k: {} for k in variants}
    altered = {k: set() for k in fakes}
    skipped = {k: [] for k in fakes}
    lesson_errors, longest, spent = [], (0.0, ""), {}

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        folder = tmp / "submitted" / "student" / path.stem
        folder.mkdir(parents=True)
        nbformat.write(teacher, folder / path.name)
        env = dict(os.environ, CNNBOOK_PROFILE="smoke", CNNBOOK_RESULTS_DIR=str(tmp / "results"))
        run = nbformat.v4.new_notebook(metadata=teacher.metadata)
        client = NotebookClient(run, timeout=timeout, kernel_name="python3", allow_errors=True,
                                interrupt_on_timeout=True, startup_timeout=300,
                                extra_arguments=["--HistoryManager.hist_file=:memory:"],
                                resources={"metadata": {"path": str(folder)}})

        def execute(cell, label):
            nonlocal longest
            cell = copy.deepcopy(cell)
            cell.pop("id", None)
            run.cells.append(cell)
            start = time.perf_counter()
            client.execute_cell(cell, len(run.cells) - 1)
            seconds = time.perf_counter() - start
            part = label.split(" ", 1)[-1] if label[:3] == "ex-" else label.split(" ")[0]
            spent[part] = spent.get(part, 0.0) + seconds
            if seconds > longest[0]:
                longest = (seconds, label)
            return cell

        def snippet(code, label):
            out = execute(nbformat.v4.new_code_cell(code), label)
            assert not _errors(out), f"{label} failed in {path.name}: {_errors(out)}"

        start = time.perf_counter()
        with client.setup_kernel(env=env):
            logs = tmp / "logs"
            logs.mkdir()
            snippet(helpers(logs / "none.log"), "helpers")
            for i, cell in enumerate(teacher.cells):
                if cell.cell_type != "code":
                    continue
                if i in by_solution:
                    tests = by_solution[i]
                    ex = exercise_id(teacher.cells[tests[0]])
                    gid = _meta(cell)["grade_id"]
                    source = cell_source(cell)

                    def grade(kind, code, part):
                        variant = copy.deepcopy(cell)
                        variant.source = code
                        execute(variant, f"{ex} {kind} ({part})")
                        got = top = 0.0
                        for t in tests:
                            done = execute(teacher.cells[t], f"{ex} {kind} (test cell)")
                            score, points = determine_grade(done)
                            got, top = got + (score or 0), top + points
                        scores[kind][ex] = (got, top)

                    snippet(_SAVE_RNG, "save rng")
                    grade("blank", blanks[i], "solution cell")
                    snippet(_RESTORE_RNG, "restore rng")
                    grade("solution", source, "solution cell")
                    funcs, names = defined_names(source)
                    snippet(f"_fk_keep = {{n: globals()[n] for n in {funcs + names!r} if n in globals()}}\n"
                            + _SAVE_RNG, "keep")
                    for kind in fakes:
                        tail = fake_epilogue(kind, gid, source)
                        if tail is None:
                            skipped[kind].append(ex)
                            continue
                        log = logs / f"{kind}-{ex}.log"
                        log.write_text("")
                        snippet(f"_FK_LOG = {str(log)!r}", "log")
                        grade(kind, tail, "epilogue")
                        snippet("globals().update(_fk_keep)\n_fk_restore_comparisons()\n" + _RESTORE_RNG,
                                "restore")
                        if any(json.loads(line)[0] == gid for line in log.read_text().splitlines()
                               if line.strip()):
                            altered[kind].add(ex)
                    continue
                if any(i in tests for tests in by_solution.values()):
                    continue                  # test cells ran with each variant above
                done = execute(cell, f"lesson cell {i}")
                if _errors(done):
                    lesson_errors.append(f"cell {i}: {_errors(done)[0][:300]}")
            # the kernel's own CPU time: the cost of the check on an idle machine
            cpu = execute(nbformat.v4.new_code_cell("import os as _fk_os\nprint(sum(_fk_os.times()[:2]))"),
                          "cpu")
            kernel_cpu = float("".join(o.get("text", "") for o in cpu.outputs).strip() or "nan")
        seconds = time.perf_counter() - start
    return {"name": path.stem, "scores": scores, "altered": altered, "skipped": skipped,
            "lesson_errors": lesson_errors, "longest_cell": longest, "seconds": seconds, "kernel_cpu": kernel_cpu,
            "spent": {k: round(v, 1) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}}


def problems(result: dict) -> list[str]:
    """What grades wrongly: a solution short of full marks, a blank or an altering fake scoring."""
    out = [f"lesson {e}" for e in result.get("lesson_errors", [])]   # (nbgrader's: none)
    scores = result["scores"]
    for ex, (got, top) in scores["solution"].items():
        if got != top:
            out.append(f"solution loses points on {ex} ({got:g}/{top:g})")
    for ex, (got, _) in scores["blank"].items():
        if got:
            out.append(f"blank scores {got:g} on {ex}")
    for kind, altered in result["altered"].items():
        for ex, (got, _) in scores[kind].items():
            if ex in altered and got:
                out.append(f"{kind} fake scores {got:g} on {ex}")
    return out


def table(result: dict) -> str:
    """One line per variant: points per exercise (n/a: the fake altered nothing there)."""
    scores, altered = result["scores"], result["altered"]
    lines = [f"{result['name']}: {result['seconds']:.0f} s ({result['kernel_cpu']:.0f} s of kernel CPU), longest cell "
             f"{result['longest_cell'][0]:.1f} s ({result['longest_cell'][1]})"]
    for kind, sc in scores.items():
        cells = []
        for ex, (got, top) in sc.items():
            mark = "" if kind not in altered or ex in altered[kind] else " n/a"
            cells.append(f"{ex.split('-', 2)[-1]} {got:g}/{top:g}{mark}")
        for ex in result["skipped"].get(kind, []):
            cells.append(f"{ex.split('-', 2)[-1]} n/a (static)")
        total = sum(g for g, _ in sc.values()), sum(t for _, t in sc.values())
        lines.append(f"  {kind:12s} {total[0]:g}/{total[1]:g}: " + ", ".join(cells))
    return "\n".join(lines)


# make test spreads its files over the cores with pytest-xdist's ``--dist loadfile``, which
# keeps every test of a file on one worker: one module parametrized by chapter would grade
# all chapters on one worker, one after the other. So the chapters are dealt into this many
# files (tests/homework/test_grades_N.py), each holding about the same grading time
# (``SECONDS``), and the workers share them as they share the notebooks.
SHARDS = 4

# Seconds of one chapter's check (wall, one of two workers, OMP_NUM_THREADS=1, on a machine
# with a load of 3-8), measured 2026-11-30 (1,792 s in all); only used to deal the chapters
# evenly into the shards. A chapter missing here counts as the mean.
SECONDS: dict = {"01": 27, "02": 54, "03": 78, "04": 101, "05": 83, "06": 51, "07": 65, "08": 49,
                 "09": 71, "10": 31, "11": 28, "12": 50, "13": 116, "14": 69, "15": 44, "16": 44,
                 "17": 56, "18": 103, "19": 98, "20": 99, "21": 183, "22": 160, "23": 71, "24": 60}


def chosen(notebooks: Path = NOTEBOOKS) -> list[str]:
    """Every chapter with exercises, or those ``CNNBOOK_GRADE=02,05`` names."""
    chapters = chapters_with_exercises(notebooks)
    if os.environ.get("CNNBOOK_GRADE"):
        named = {c.strip() for c in os.environ["CNNBOOK_GRADE"].split(",")}
        chapters = [c for c in chapters if c in named]
    return chapters


def shard(index: int, shards: int = SHARDS, notebooks: Path = NOTEBOOKS) -> list[str]:
    """The chapters of shard ``index``: the longest first, each to the shard with the least
    time so far (``SECONDS``), so the shards take about as long as each other."""
    chapters = chosen(notebooks)
    mean = sum(SECONDS.values()) / len(SECONDS) if SECONDS else 1.0
    loads, dealt = [0.0] * shards, [[] for _ in range(shards)]
    for c in sorted(chapters, key=lambda c: (-SECONDS.get(c, mean), c)):
        i = loads.index(min(loads))
        loads[i] += SECONDS.get(c, mean)
        dealt[i].append(c)
    return sorted(dealt[index])


def assert_grades_like_homework(chapter: str, timeout: float) -> dict:
    """``check_chapter``, its table printed; fails on any ``problems`` or a cell too close to
    the timeout (a third of it: a teacher's laptop may be three times slower)."""
    result = check_chapter(chapter, timeout=timeout)
    print("\n" + table(result))
    found = problems(result)
    seconds, label = result["longest_cell"]
    if seconds >= timeout / 3:
        found.append(f"the longest cell ({label}) takes {seconds:.0f} s, over a third of the "
                     f"{timeout} s grading timeout")
    assert not found, f"{result['name']}:\n" + "\n".join(found)
    return result
