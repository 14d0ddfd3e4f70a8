"""``make student-edition``: the course without solutions, for a teacher to hand out.

Writes ``OUT/`` (default ``student-edition/``) with everything a student needs and no
solution anywhere:

- ``notebooks/NN_topic.ipynb``: nbgrader's release versions (each solution replaced by
  ``raise NotImplementedError()``, hidden tests removed, test cells locked), and
  ``notebooks/src/NN_topic.py`` written from them (so ``make notebooks`` keeps them);
- the ``cnnbook`` package, the Makefile, the README, the tools and the tests that need no
  solution (the tests of the exercises themselves, which grade solutions, stay with the
  teacher);
- in the Makefile, ``make test`` runs the unit tests only (the student notebooks stop at
  the first unanswered exercise, by design).

The files come from ``git ls-files`` (never the venv, datasets, results or a course folder).
``python tools/student_edition.py [--out student-edition]``
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = ".cnnbook-student-edition"
# Tests that run the teacher's solutions; a student edition has none to run.
TEACHER_ONLY = ("tests/test_assignments.py", "tests/test_cheats.py",
                "tests/test_student_edition.py", "tests/test_notebook_conventions.py",
                "tools/student_edition.py",
                # the fakes and the all-chapter check grade the teacher's solutions
                "cnnbook/grading/fakes.py", "cnnbook/grading/onekernel.py",
                "tests/grading/test_fakes.py", "tests/grading/test_onekernel.py",
                *(f"tests/homework/test_grades_{n}.py" for n in range(1, 5)))


def tracked_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.split("\0") if f]


def build(out: Path, course: Path | None = None, root: Path = ROOT) -> Path:
    """Write the student edition to ``out`` (replacing an earlier one); returns ``out``.

    ``course``: a course folder whose ``release/`` already holds every chapter (else the
    chapters are released into a temporary one first).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import jupytext
    from assignments import chapters, generate, solution_leaks

    out = Path(out).resolve()
    if out.exists():
        if not (out / MARKER).exists():
            raise SystemExit(f"{out} exists and is not a student edition; choose another OUT=")
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory() as tmp:
        if course is None:
            course = Path(tmp) / "course"
            generate(course)
        release = Path(course) / "release"
        stems = {nb.stem for nb in chapters()}
        missing = sorted(s for s in stems if not (release / s / f"{s}.ipynb").exists())
        if missing:            # chapters added since the course was released
            generate(course, missing)
        files = tracked_files(root)
        for rel in files:
            path = Path(rel)
            if rel in TEACHER_ONLY or path.parts[0] == "notebooks" and path.stem in stems:
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, target)
        (out / "notebooks" / "src").mkdir(parents=True, exist_ok=True)
        for stem in sorted(stems):
            released = release / stem / f"{stem}.ipynb"
            if not released.exists():
                raise SystemExit(f"{released} is missing: release every chapter first")
            if solution_leaks(released):
                raise SystemExit(f"{released} still holds a solution")
            shutil.copyfile(released, out / "notebooks" / f"{stem}.ipynb")
            nb = jupytext.read(released)
            nb.metadata.pop("kernelspec", None)
            jupytext.write(nb, out / "notebooks" / "src" / f"{stem}.py", fmt="py:percent")
    makefile = out / "Makefile"
    text = makefile.read_text(encoding="utf-8")
    text = text.replace("--nbval-cell-timeout=600 notebooks tests", "--nbval-cell-timeout=600 tests")
    makefile.write_text(text, encoding="utf-8")
    (out / MARKER).write_text("Written by `make student-edition`: the cnnbook course without "
                              "solutions.\n", encoding="utf-8")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "student-edition")
    args = ap.parse_args()
    print(f"student edition in {build(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
