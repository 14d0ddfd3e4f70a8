"""Repository-wide pytest hooks: CPU threads shared fairly between xdist workers, and a
table of per-notebook wall times at the end of the run.

nbval turns each notebook cell into a test item; with pytest-xdist the reports reach the
controller process, which adds up each notebook's setup (kernel start) and cell times.
"""
from __future__ import annotations

import os
import sys
from collections import defaultdict


def pytest_configure(config):
    """Give each xdist worker (and the notebook kernels it starts) its share of the cores.

    Two workers on two cores that each run PyTorch with two threads fight over the CPU
    and both slow down; one thread each keeps every core busy without oversubscription.
    An explicit OMP_NUM_THREADS in the environment wins.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers <= 1 or "OMP_NUM_THREADS" in os.environ:
        return
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    os.environ["OMP_NUM_THREADS"] = threads  # inherited by the kernels nbval starts
    os.environ["MKL_NUM_THREADS"] = threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))

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
