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


def test_every_listed_equivalent_mutant_has_a_reason_and_a_broad_module(mutants, tmp_path):
    known = mutants.equivalents()
    modules = {src[:-3].replace("/", ".") for src, _ in mutants.BROAD.values()}
    for name, reason in known.items():
        assert name.split(".x", 1)[0].split(".xǁ", 1)[0] in modules, name
        assert len(reason.split()) >= 3, f"{name}: give the reason it changes no behaviour"
    listing = tmp_path / "eq.txt"
    listing.write_text("# a comment\n\ncnnbook.pooling.x_f__mutmut_1  adds zero to zero\n")
    assert mutants.equivalents(listing) == {"cnnbook.pooling.x_f__mutmut_1": "adds zero to zero"}


def test_every_broad_module_and_its_test_files_exist(mutants):
    root = mutants.ROOT
    for name, (src, tests) in mutants.BROAD.items():
        assert (root / src).is_file(), name
        assert isinstance(tests, tuple) and tests, f"{name}: a tuple of test files"
        for test in tests:
            assert (root / test).is_file(), f"{name}: {test}"


def test_every_accepted_survivor_has_a_reason_a_broad_module_and_is_not_also_equivalent(mutants):
    accepted = mutants.equivalents(mutants.ACCEPTED_FILE)
    modules = {src[:-3].replace("/", ".") for src, _ in mutants.BROAD.values()}
    assert accepted, "tools/mutants_accepted.txt is read"
    for name, reason in accepted.items():
        assert name.split(".x", 1)[0].split(".xǁ", 1)[0] in modules, name
        assert len(reason.split()) >= 5, f"{name}: say what differs and what would kill it"
        assert name not in mutants.equivalents(), f"{name} is listed as equivalent too"
