"""Homework with nbgrader: release, collect, grade, export, and a student edition.

Each chapter becomes one nbgrader assignment of the course folder (``course/`` beside the
repository's files, git-ignored and never touched by ``make clean``):

    python tools/assignments.py release [--course course] [NN ...]   # make assignments
    python tools/assignments.py collect --course course A ZIP       # make collect A=.. ZIP=..
    python tools/assignments.py grade   --course course A           # make grade A=NN_topic
    python tools/assignments.py export  --course course [--to F]    # make grades
    python tools/assignments.py student --out student-edition       # make student-edition

``release`` copies ``notebooks/NN_topic.ipynb`` to ``course/source/NN_topic/`` and lets
``nbgrader generate_assignment`` write the student version to ``course/release/NN_topic/``
(every ``### BEGIN SOLUTION`` region replaced by ``raise NotImplementedError()``, hidden
tests removed, test cells locked). The course folder gets an ``nbgrader_config.py`` with
relative paths only (the folder can be moved) that sets the smoke profile and the cell
timeout itself and checks the datasets before autograding, so ``nbgrader autograde`` run
by hand grades exactly as ``make grade`` does. Every nbgrader call runs with the venv's
``bin`` first on PATH (nbgrader shells out to alembic and jupyter).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
COURSE = ROOT / "course"
COMMANDS = ("release", "collect", "grade", "export", "student")

# Grading runs every notebook top to bottom in the smoke profile: each lesson cell then takes
# seconds. The timeout leaves room for a slow laptop; the cheat-proofing test checks that
# the longest cell stays well inside it.
TIMEOUT = 300

CONFIG = '''\
# nbgrader configuration of the cnnbook course folder (written by tools/assignments.py).
# Run nbgrader from this folder (or use `make grade A=NN_topic` in the repository): every
# path is relative to it, so the folder can be moved.
import os
import sys

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "cnnbook"
# Autograde runs each notebook top to bottom in the smoke profile, where every cell ends
# well inside the timeout (the cpu profile trains for minutes in one cell).
os.environ.setdefault("CNNBOOK_PROFILE", "smoke")
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True
# A busy machine (a teacher grading while other work runs) starts kernels and delivers
# output slowly; nbgrader's defaults (60 s, 4 s) would fail correct submissions there.
c.Execute.startup_timeout = 300
c.Execute.iopub_timeout = 120
# Grading without the datasets would fail the data-loading cells and cost correct
# students their points; stop before grading instead, naming the fix.
if any(arg == "autograde" for arg in sys.argv[1:]):
    from cnnbook.grading.course import require_datasets

    require_datasets()
'''


def chapters(selected=(), notebooks: Path = NOTEBOOKS) -> list[Path]:
    found = sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb"))
    if selected:
        found = [p for p in found if p.stem in selected or p.stem[:2] in selected]
    return found


def nbgrader_env() -> dict:
    """The environment nbgrader runs in: the venv's tools first on PATH, smoke profile."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setdefault("CNNBOOK_PROFILE", "smoke")
    return env


def nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` in the course folder with the venv's tools."""
    out = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                         env=nbgrader_env(), capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def write_config(course: Path) -> Path:
    path = course / "nbgrader_config.py"
    path.write_text(CONFIG.format(timeout=TIMEOUT), encoding="utf-8")
    return path


def generate(course: Path = COURSE, selected=(), notebooks: Path = NOTEBOOKS) -> list[Path]:
    """Copy the chapters into ``course/source`` and let nbgrader write ``course/release``."""
    course = Path(course).resolve()
    found = chapters(selected, notebooks)
    if not found:
        raise SystemExit(f"no chapter notebooks found in {notebooks}"
                         + (f" matching {' '.join(selected)}" if selected else ""))
    source = course / "source"
    for nb in found:
        folder = source / nb.stem
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nb, folder / nb.name)
    write_config(course)
    assignment = found[0].stem if len(found) == 1 else "*"
    out = nbgrader(course, "generate_assignment", f"--assignment={assignment}", "--force",
                   "--log-level=WARN")
    released = [course / "release" / nb.stem / nb.name for nb in found]
    missing = [str(p) for p in released if not p.exists()]
    if missing:
        raise RuntimeError(f"nbgrader did not write {', '.join(missing)}:\n{out.stderr}")
    return released


def solution_leaks(path: Path) -> list[str]:
    """Cells of a released notebook that still hold a solution: must be empty."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    text = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    return [t for t in text if "BEGIN SOLUTION" in t or "END SOLUTION" in t
            or "BEGIN HIDDEN TESTS" in t]


def collect(course: Path, assignment: str, archive: Path) -> list[Path]:
    """Unpack a zip of ``<student>/<anything>.ipynb`` into ``submitted/<student>/A/A.ipynb``.

    The layout most learning platforms give when a teacher downloads all submissions as one
    folder per student; any other file in the zip is ignored. Returns the notebooks placed.
    """
    course = Path(course).resolve()
    placed = []
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            parts = Path(name).parts
            if name.endswith("/") or not name.endswith(".ipynb") or len(parts) < 2 \
                    or any(p.startswith(("__MACOSX", ".")) for p in parts):
                continue
            student = parts[-2]
            target = course / "submitted" / student / assignment / f"{assignment}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
            placed.append(target)
    if not placed:
        raise SystemExit(f"{archive} holds no <student>/<notebook>.ipynb files")
    return placed


def grade(course: Path, assignment: str, students=()) -> None:
    """Autograde every submission of ``assignment``, then write feedback for each student."""
    course = Path(course).resolve()
    if not (course / "source" / assignment).is_dir():
        raise SystemExit(f"{course}/source/{assignment} does not exist: run `make assignments` first")
    if not (course / "nbgrader_config.py").exists():
        write_config(course)
    picked = [f"--student={s}" for s in students]
    out = nbgrader(course, "autograde", assignment, "--force", *picked, check=False)
    if out.returncode != 0:
        raise SystemExit(f"nbgrader autograde {assignment} failed:\n{out.stdout}\n{out.stderr}")
    nbgrader(course, "generate_feedback", assignment, "--force", *picked)


def export(course: Path, to: Path | None = None) -> Path:
    """The gradebook as CSV (one row per student and assignment)."""
    course = Path(course).resolve()
    to = Path(to).resolve() if to else course / "grades.csv"
    nbgrader(course, "export", f"--to={to}")
    return to


def read_grades(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "release")  # the old interface: assignments.py [--course C] [NN ...]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="student versions of the chapters")
    p.add_argument("--course", type=Path, default=COURSE)
    p.add_argument("--notebooks", type=Path, default=NOTEBOOKS)
    p.add_argument("chapters", nargs="*", help="chapter numbers or names; default: all")
    p = sub.add_parser("collect", help="unpack a zip of submissions")
    p.add_argument("--course", type=Path, default=COURSE)
    p.add_argument("assignment")
    p.add_argument("archive", type=Path)
    p = sub.add_parser("grade", help="autograde and write feedback")
    p.add_argument("--course", type=Path, default=COURSE)
    p.add_argument("assignment")
    p.add_argument("students", nargs="*")
    p = sub.add_parser("export", help="the gradebook as CSV")
    p.add_argument("--course", type=Path, default=COURSE)
    p.add_argument("--to", type=Path)
    p = sub.add_parser("student", help="the course without solutions, to hand out")
    p.add_argument("--out", type=Path, default=ROOT / "student-edition")
    args = ap.parse_args(argv)
    if args.command == "release":
        released = generate(args.course, args.chapters, args.notebooks)
        for path in released:
            leaks = solution_leaks(path)
            if leaks:
                print(f"{path}: {len(leaks)} cell(s) still hold a solution", file=sys.stderr)
                return 1
            print(f"released {path.relative_to(args.course.resolve())}")
        print(f"student versions in {args.course / 'release'}; collect submissions into "
              f"{args.course / 'submitted'}/<student>/NN_topic/, then `make grade A=NN_topic`")
    elif args.command == "collect":
        for path in collect(args.course, args.assignment, args.archive):
            print(f"collected {path.relative_to(args.course.resolve())}")
    elif args.command == "grade":
        grade(args.course, args.assignment, args.students)
        print(f"graded {args.assignment}; feedback in {args.course / 'feedback'}; "
              "`make grades` writes the CSV")
    elif args.command == "export":
        path = export(args.course, args.to)
        print(f"grades of {len(read_grades(path))} submission(s) in {path}")
    elif args.command == "student":
        from student_edition import build  # tools/student_edition.py

        out = build(args.out)
        print(f"student edition in {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
