"""Repository-wide pytest hooks: a table of per-notebook wall times at the end of the run.

nbval turns each notebook cell into a test item; with pytest-xdist the reports reach the
controller process, which adds up each notebook's setup (kernel start) and cell times.
"""
from __future__ import annotations

from collections import defaultdict

_notebook_seconds: dict = defaultdict(float)
_notebook_failed: dict = defaultdict(bool)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration
        if report.failed:
            _notebook_failed[path] = True


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    tr = terminalreporter
    tr.section("notebook wall times")
    width = max(len(p) for p in _notebook_seconds)
    for path, seconds in sorted(_notebook_seconds.items()):
        status = "FAILED" if _notebook_failed[path] else "ok"
        tr.write_line(f"{path:<{width}}  {seconds:7.1f} s  {status}")
    tr.write_line(f"{'total (summed over workers)':<{width}}  {sum(_notebook_seconds.values()):7.1f} s")
