"""``make assignments``: the student versions of every chapter, made by nbgrader.

Each chapter becomes one nbgrader assignment: ``build/course/source/NN_topic/NN_topic.ipynb``
is copied from ``notebooks/``, and ``nbgrader generate_assignment`` writes the student
version to ``build/course/release/NN_topic/`` with every ``### BEGIN SOLUTION`` region
replaced by ``raise NotImplementedError()`` and the test cells locked. The course folder
gets an ``nbgrader_config.py`` so a teacher can collect submissions and autograde there.

    python tools/assignments.py [--course build/course] [NN ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

CONFIG = '''\
# nbgrader configuration of the cnnbook course folder (written by tools/assignments.py).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "cnnbook"
c.CourseDirectory.root = {root!r}
# Autograding runs each notebook top to bottom. Run it in the smoke profile
# (CNNBOOK_PROFILE=smoke nbgrader autograde NN_topic): every cell then finishes well
# inside this timeout, while the cpu profile trains for minutes in a single cell.
c.ExecutePreprocessor.timeout = 300
'''


def chapters(selected=()) -> list[Path]:
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if selected:
        found = [p for p in found if p.stem in selected or p.stem[:2] in selected]
    return found


def generate(course: Path, selected=()) -> list[Path]:
    """Copy the chapters into ``course/source`` and let nbgrader write ``course/release``."""
    course = course.resolve()
    notebooks = chapters(selected)
    if not notebooks:
        raise SystemExit("no chapter notebooks found")
    source = course / "source"
    for nb in notebooks:
        folder = source / nb.stem
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nb, folder / nb.name)
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course)), encoding="utf-8")
    # nbgrader shells out to alembic for its gradebook: it must find the venv's copy on PATH.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assignment = notebooks[0].stem if len(notebooks) == 1 else "*"
    out = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment",
                          f"--assignment={assignment}", "--force", "--log-level=WARN"],
                         cwd=course, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{out.stdout}\n{out.stderr}")
    released = [course / "release" / nb.stem / nb.name for nb in notebooks]
    missing = [str(p) for p in released if not p.exists()]
    if missing:
        raise RuntimeError(f"nbgrader did not write {', '.join(missing)}:\n{out.stderr}")
    return released


def solution_leaks(path: Path) -> list[str]:
    """Cells of a released notebook that still hold a solution: must be empty."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    return [t for t in text if "### BEGIN SOLUTION" in t or "### END SOLUTION" in t]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--course", type=Path, default=ROOT / "build" / "course")
    ap.add_argument("chapters", nargs="*", help="chapter numbers or names; default: all")
    args = ap.parse_args()
    released = generate(args.course, args.chapters)
    for path in released:
        leaks = solution_leaks(path)
        if leaks:
            print(f"{path}: {len(leaks)} cell(s) still hold a solution", file=sys.stderr)
            return 1
        print(f"released {path.relative_to(args.course.resolve())}")
    print(f"student versions in {args.course / 'release'}; autograde with "
          f"`cd {args.course} && CNNBOOK_PROFILE=smoke nbgrader autograde NN_topic`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
