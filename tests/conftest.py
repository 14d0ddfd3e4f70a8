"""Shared fixtures: headless plotting, and an isolated data cache for tests that need one."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

SHARED_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# Read once, at import: fixtures such as empty_cache unset the variable for the test's own
# code, and the mirror fixture must still find the mirror the run was given.
MIRROR_ENV = os.environ.get("CNNBOOK_DATA_MIRROR")


ROOT = Path(__file__).resolve().parents[1]


def _load_tool(name: str):
    """The script ``tools/<name>.py`` imported as a module (tools/ is not a package), once.

    It is registered in ``sys.modules`` before it runs: a dataclass looks its module up there.
    """
    key = f"cnnbook_tools_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[key]
            raise
    return sys.modules[key]


@pytest.fixture(scope="session")
def load_tool():
    """``load_tool("knee")``: a script of tools/ as a module, for the tests of that tool."""
    return _load_tool


def mirror_path() -> Path | None:
    """The real dataset mirror: CNNBOOK_DATA_MIRROR, else ../shared/datasets beside the repo."""
    env = MIRROR_ENV
    if env and Path(env).is_dir():
        return Path(env)
    return SHARED_MIRROR if SHARED_MIRROR.is_dir() else None


@pytest.fixture
def mirror() -> Path:
    path = mirror_path()
    if path is None:
        pytest.skip("no dataset mirror on this machine (set CNNBOOK_DATA_MIRROR)")
    return path


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """A fresh, empty data cache with no mirror and no downloads; memory cache cleared."""
    from cnnbook.data import splits

    monkeypatch.setenv("CNNBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CNNBOOK_DATA_MIRROR", raising=False)
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    splits.clear_memory()
    yield tmp_path / "data"
    splits.clear_memory()


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test opened, so figures never pile up in a worker."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
