import json

import pytest

from cnnbook.results import collect, publish, slug, write_record


@pytest.fixture
def published(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_PUBLISHED_DIR", str(tmp_path / "published"))
    return tmp_path / "published"


def test_write_and_collect(results_dir):
    p = write_record({"name": "a", "test_acc": 0.5}, "cpu", "05_lenet-lenet5")
    write_record({"name": "b", "test_acc": 0.7}, "smoke", "x/y")
    assert p.parent == results_dir / "cpu" and json.loads(p.read_text())["test_acc"] == 0.5
    assert not list(results_dir.rglob("*.part"))
    assert list(collect("cpu")["name"]) == ["a"]
    assert sorted(collect()["name"]) == ["a", "b"]
    assert slug("05 lenet/x") == "05-lenet-x"


def test_collect_skips_unreadable_and_bookkeeping(results_dir):
    (results_dir / "cpu").mkdir(parents=True)
    (results_dir / "cpu" / "broken.json").write_text("{not json")
    (results_dir / "cpu" / "_timings.json").write_text('{"05_lenet": {"seconds": 1}}')
    assert collect("cpu").empty


def test_publish_then_local_runs_take_precedence(results_dir, published):
    write_record({"name": "lenet5", "test_acc": 0.80}, "cpu", "05-lenet5")
    write_record({"name": "alexnet", "test_acc": 0.85}, "cpu", "06-alexnet")
    assert sorted(p.name for p in publish("cpu")) == ["05-lenet5.json", "06-alexnet.json"]
    assert json.loads((published / "cpu" / "05-lenet5.json").read_text())["test_acc"] == 0.80
    # a fresh clone: no local records, the published ones are read
    for path in (results_dir / "cpu").glob("*.json"):
        path.unlink()
    assert collect("cpu").empty
    df = collect("cpu", published=True)
    assert sorted(df["name"]) == ["alexnet", "lenet5"] and set(df["source"]) == {"published"}
    # the learner reruns chapter 05: their record replaces the published one
    write_record({"name": "lenet5", "test_acc": 0.82}, "cpu", "05-lenet5")
    df = collect("cpu", published=True).set_index("name")
    assert df.loc["lenet5", "test_acc"] == 0.82 and df.loc["lenet5", "source"] == "local"
    assert df.loc["alexnet", "source"] == "published"


def test_publish_replaces_a_chapters_records_as_a_whole(results_dir, published):
    (published / "cpu").mkdir(parents=True)
    (published / "cpu" / "05-old-run.json").write_text('{"name": "old"}')
    (published / "cpu" / "06-alexnet.json").write_text('{"name": "alexnet"}')
    write_record({"name": "lenet5"}, "cpu", "05-lenet5")
    publish("cpu")
    names = sorted(p.name for p in (published / "cpu").glob("*.json"))
    assert names == ["05-lenet5.json", "06-alexnet.json"]


def test_against_d2l_gives_the_gap_in_points_and_the_verdict():
    from cnnbook.results import D2L_FASHION_MNIST, against_d2l

    ref = D2L_FASHION_MNIST["resnet18"][0]
    line = against_d2l({"name": "resnet18", "test_acc": ref - 0.015, "best_test_acc": ref,
                        "seconds": 372.0})
    assert f"{ref - 0.015:.3f}" in line and "(best epoch" in line and "6.2 min" in line
    assert "-1.5 points, within 2 points" in line
    line = against_d2l({"name": "resnet18", "test_acc": ref - 0.031, "seconds": 60.0})
    assert "-3.1 points, more than 2 points below it" in line and "best epoch" not in line
    assert "+1.0 points, at or above it" in against_d2l(
        {"name": "googlenet", "test_acc": D2L_FASHION_MNIST["googlenet"][0] + 0.01})
    assert "no figure" in against_d2l({"name": "toy", "test_acc": 0.5})
    assert "no test accuracy" in against_d2l({"name": "toy", "test_acc": None})
