"""tools/mutants.py: the curated mutant list still applies to the source (so it cannot rot).

Running the mutants takes minutes (see CONTRIBUTING.md); this only checks the list.
"""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    name = "cnnbook_tools_mutants"
    if name not in sys.modules:   # dataclasses look their module up in sys.modules
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "mutants.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_every_mutant_pattern_occurs_exactly_once_and_has_tests():
    mutants = _load()
    assert len(mutants.MUTANTS) >= 12
    assert mutants.check_patterns() == []


def test_the_check_reports_a_pattern_that_no_longer_matches(tmp_path):
    mutants = _load()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_m.py").write_text("")
    (tmp_path / "m.py").write_text("x = 1\nx = 1\n")
    bad = [mutants.Mutant("m.gone", "m.py", "y = 2", "y = 3", ("tests/test_m.py",), "gone"),
           mutants.Mutant("m.twice", "m.py", "x = 1", "x = 2", ("tests/test_m.py",), "twice"),
           mutants.Mutant("m.notest", "m.py", "x = 1\nx", "x", ("tests/nope.py",), "no test")]
    problems = mutants.check_patterns(bad, root=tmp_path)
    assert any("m.gone: pattern found 0 times" in p for p in problems)
    assert any("m.twice: pattern found 2 times" in p for p in problems)
    assert any("m.notest: no test file" in p for p in problems)
