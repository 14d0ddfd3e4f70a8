"""The course folder's checks before autograding: the datasets must be ready.

A notebook whose data-loading cell fails under ``nbgrader autograde`` loses the points of
every exercise after it, through no fault of the student. ``require_datasets`` runs from
the course's ``nbgrader_config.py`` before any submission is graded and stops the run with
one message naming the fix instead.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

_LOADS = re.compile(r"""load_data\(\s*["'](\w+)["']""")


def datasets_used(notebook: Path) -> set[str]:
    """The datasets a chapter notebook loads (``load_data("name", ...)``, d2l's Fashion-MNIST)."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in cells if c["cell_type"] == "code")
    found = set(_LOADS.findall(text))
    if "load_data_fashion_mnist" in text or "d2l_fashion_mnist" in text:
        found.add("fashion_mnist")
    return found


def _assignments(argv, course: Path) -> list[str]:
    """The assignment named on an ``nbgrader autograde`` command line (all when none is)."""
    args = [a for a in argv[argv.index("autograde") + 1:] if not a.startswith("-")] \
        if "autograde" in argv else []
    if args:
        return args[:1]
    return sorted(p.name for p in (course / "source").glob("*") if p.is_dir())


def require_datasets(argv=None, course: Path | None = None) -> set[str]:
    """Make sure the datasets the graded chapter loads are cached; else stop with the fix.

    Returns the dataset names checked. Raises ``SystemExit`` (nbgrader then grades nothing)
    with a message that names the dataset, what went wrong and the command that fixes it.
    """
    import sys

    from cnnbook.data.sources import DatasetCorrupt, DatasetUnavailable
    from cnnbook.data.splits import prepare

    argv = list(sys.argv[1:] if argv is None else argv)
    course = Path.cwd() if course is None else Path(course)
    names: set[str] = set()
    for assignment in _assignments(argv, course):
        for nb in (course / "source" / assignment).glob("*.ipynb"):
            names |= datasets_used(nb)
    if not names:
        return names
    try:
        prepare(sorted(names))
    except (DatasetUnavailable, DatasetCorrupt, PermissionError, ValueError) as exc:
        raise SystemExit(
            f"cnnbook: not grading: the dataset(s) {', '.join(sorted(names))} are not ready, and "
            f"every submission would lose the points of the cells that load them.\n{exc}\n"
            "Fix: run `make data` in the cnnbook repository (with CNNBOOK_DATA_MIRROR set to a "
            "local copy if this machine is offline), then grade again with `make grade A=...`."
        ) from None
    return names
