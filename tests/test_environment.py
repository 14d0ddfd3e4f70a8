"""environment.yml (conda) and pyproject.toml (pip) list the same packages and ranges."""
import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(data["dependencies"])
    for extra in data.get("optional-dependencies", {}).values():
        reqs += extra
    return {re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def _conda():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    reqs = [l.strip()[2:].strip() for l in lines if l.startswith("      - ")]
    reqs = [r for r in reqs if not r.startswith("-e")]
    return {re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in reqs}


def test_same_packages_and_ranges():
    assert _pyproject() == _conda()


def test_d2l_is_installed_without_its_pins():
    assert "d2l" not in _pyproject()
    assert '--no-deps "d2l' in (ROOT / "Makefile").read_text()
