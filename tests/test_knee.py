"""tools/knee.py: a chapter's own knobs with only the epochs replaced, and points from records."""
import copy
import json

import pytest


@pytest.fixture(scope="module")
def knee(load_tool):
    return load_tool("knee")


def test_chapter_knobs_are_the_notebooks_own(knee):
    knobs = knee.chapter_knobs(knee.notebook_of("08"))
    assert set(knobs) == {"smoke", "cpu", "full"}
    assert knobs["cpu"]["recipe"] == "laptop" and knobs["full"]["recipe"] == "d2l"
    assert isinstance(knobs["cpu"]["epochs"], int)


def test_with_epochs_changes_only_that_profiles_epochs(knee):
    knobs = knee.chapter_knobs(knee.notebook_of("11"))
    before = copy.deepcopy(knobs)
    changed = knee.with_epochs(knobs, "cpu", 3)
    assert changed["cpu"] == dict(before["cpu"], epochs=3)
    assert changed["full"] == before["full"] and changed["smoke"] == before["smoke"]
    assert knobs == before  # the chapter's table itself is untouched
    with pytest.raises(ValueError, match="no 'epochs'"):
        knee.with_epochs({"cpu": {"lr": 0.1}}, "cpu", 3)


def test_main_record_comes_from_the_registry(knee):
    assert knee.main_record("11") == "resnet18"
    assert knee.main_record("13") == "mobilenet_v2"
    with pytest.raises(SystemExit, match="no main training run"):
        knee.main_record("01")


def test_point_converts_minutes_at_the_published_throughput(knee):
    record = {"chapter": "08", "name": "nin", "epochs": 4, "test_acc": 0.9, "best_test_acc": 0.91,
              "train_examples": 60_000, "train_seconds": 600.0, "examples_per_sec": 400.0,
              "params": 99, "finished": "2026-11-30T08:00:00"}
    p = knee.point(record, {"examples_per_sec": 1_600.0, "params": 99})
    assert p["train_min"] == pytest.approx(10.0)
    assert p["train_min_at_published_rate"] == pytest.approx(4 * 60_000 / 1_600 / 60)
    assert knee.point(record, None)["train_min_at_published_rate"] is None
    assert p["params"] == 99
    other_network = knee.point(record, {"examples_per_sec": 1_600.0, "params": 100})
    assert other_network["train_min_at_published_rate"] is None


def test_merge_replaces_the_same_chapter_size_and_epochs(knee):
    old = [{"chapter": "08", "params": 5, "epochs": 2, "test_acc": 0.1},
           {"chapter": "11", "params": 5, "epochs": 2, "test_acc": 0.2}]
    new = [{"chapter": "08", "params": 5, "epochs": 2, "test_acc": 0.3},
           {"chapter": "08", "params": 5, "epochs": 4, "test_acc": 0.4},
           {"chapter": "08", "params": 7, "epochs": 2, "test_acc": 0.5}]  # a different network
    merged = knee.merge(old, new)
    assert [(p["chapter"], p["params"], p["epochs"], p["test_acc"]) for p in merged] == [
        ("08", 5, 2, 0.3), ("08", 5, 4, 0.4), ("08", 7, 2, 0.5), ("11", 5, 2, 0.2)]


def test_table_and_figure_from_points(knee, tmp_path):
    points = [{"chapter": "08", "name": "nin", "params": 1234, "epochs": e, "test_acc": a, "best_test_acc": a,
               "train_min": 2.0 * e, "train_min_at_published_rate": 1.0 * e,
               "examples_per_sec": 1.0, "finished": ""} for e, a in ((2, 0.85), (4, 0.9))]
    md = knee.table(points, "cpu")
    assert "| 08 | nin | 1,234 | 4 | 0.900 | 0.900 | 0.865 | 8.0 | 4.0 |" in md
    knee.figure(points, tmp_path / "knee.png")
    assert (tmp_path / "knee.png").read_bytes()[:4] == b"\x89PNG"


def _record(**more):
    return {"chapter": "08", "name": "nin", "epochs": 8, "test_acc": 0.91, "best_test_acc": 0.91,
            "train_examples": 60_000, "train_seconds": 780.0, "examples_per_sec": 615.0,
            "params": 1234, "finished": "2026-11-30T08:00:00", **more}


def test_main_adds_older_records_as_points(knee, tmp_path, monkeypatch):
    published = tmp_path / "published"
    monkeypatch.setenv("CNNBOOK_PUBLISHED_DIR", str(published))
    (published / "cpu").mkdir(parents=True)
    (published / "cpu" / "08-nin.json").write_text(json.dumps(_record(epochs=4, examples_per_sec=1_200.0)))
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_record()))
    knee.main(["--chapter", "08", "--record", str(old)])
    points = json.loads((published / "cpu" / "knee" / "points.json").read_text())
    assert [(p["epochs"], p["test_acc"]) for p in points] == [(8, 0.91)]
    assert points[0]["train_min_at_published_rate"] == pytest.approx(8 * 60_000 / 1_200 / 60)
    assert "| 08 | nin | 1,234 | 8 | 0.910 |" in (published / "cpu" / "knee" / "knee.md").read_text()
    assert (published / "cpu" / "knee" / "knee.png").stat().st_size > 1000
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_record(chapter="11", name="resnet18")))
    with pytest.raises(SystemExit, match="not chapter 08's nin run"):
        knee.main(["--chapter", "08", "--record", str(other)])
    with pytest.raises(SystemExit):
        knee.main(["--chapter", "08"])   # nothing to run or add
