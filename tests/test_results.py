import json

from cnnbook.results import collect, slug, write_record


def test_write_and_collect(results_dir):
    p = write_record({"name": "a", "test_acc": 0.5}, "cpu", "05_lenet-lenet5")
    write_record({"name": "b", "test_acc": 0.7}, "smoke", "x/y")
    assert p.parent == results_dir / "cpu" and json.loads(p.read_text())["test_acc"] == 0.5
    assert not list(results_dir.rglob("*.part"))
    assert list(collect("cpu")["name"]) == ["a"]
    assert sorted(collect()["name"]) == ["a", "b"]
    assert slug("05 lenet/x") == "05-lenet-x"


def test_collect_skips_unreadable(results_dir):
    (results_dir / "cpu").mkdir(parents=True)
    (results_dir / "cpu" / "broken.json").write_text("{not json")
    assert collect("cpu").empty
