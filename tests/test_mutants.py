"""tools/mutants.py: the curated mutant list still applies to the source (so it cannot rot).

Running the mutants takes minutes (see CONTRIBUTING.md); this only checks the list.
"""
import pytest


@pytest.fixture(scope="module")
def mutants(load_tool):
    return load_tool("mutants")


def test_every_mutant_pattern_occurs_exactly_once_and_has_tests(mutants):
    assert len(mutants.MUTANTS) >= 12
    assert mutants.check_patterns() == []


def test_the_check_reports_a_pattern_that_no_longer_matches(mutants, tmp_path):
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
