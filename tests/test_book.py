"""tools/book.py: the results table is built from the records, never typed by hand."""
import json

import pytest

from cnnbook.results import write_record



@pytest.fixture
def book(results_dir, tmp_path, monkeypatch, load_tool):
    monkeypatch.setenv("CNNBOOK_PUBLISHED_DIR", str(tmp_path / "published"))
    return load_tool("book")


def _run(name, chapter, acc, seconds, **more):
    write_record({"name": name, "chapter": chapter, "test_acc": acc, "epochs": 3,
                  "seconds": seconds, "device": "cpu (2 threads)", **more}, "cpu",
                 f"{chapter}-{name}")


def test_table_lists_every_run_with_its_measured_numbers(book, results_dir):
    _run("lenet5", "05", 0.8123, 90.0, best_test_acc=0.8299, best_epoch=2)
    _run("lenet5-modern", "05", 0.8801, 60.0)
    (results_dir / "cpu" / "_timings.json").write_text(json.dumps({
        "01_biology_of_vision": {"seconds": 30.0, "status": "ok"},
        "05_lenet": {"seconds": 300.0, "status": "ok"}}))
    text = book.table("cpu")
    lines = text.splitlines()
    assert "| 01_biology_of_vision | (no training) | | | | | 0.5 |" in lines
    assert "| 05_lenet | lenet5 (3 ep) | 0.812 | 0.830 (ep 2) | 0.776 | 1.5 | 5.0 |" in lines
    assert "|  | lenet5-modern (3 ep) | 0.880 |  |  | 1.0 |  |" in lines
    assert "cpu (2 threads)" in lines[-1]


def test_a_run_without_a_test_set_has_an_empty_accuracy(book, results_dir):
    _run("bench", "24", None, 30.0)
    _run("toy", "24", 1.0, 12.0)
    (results_dir / "cpu" / "_timings.json").write_text(json.dumps(
        {"24_distributed": {"seconds": 180.0, "status": "ok"}}))
    lines = book.table("cpu").splitlines()
    assert "| 24_distributed | bench (3 ep) |  |  |  | 0.5 | 3.0 |" in lines
    assert "|  | toy (3 ep) | 1.000 |  |  | 0.2 |  |" in lines


def test_publish_then_table_reads_the_published_records(book, results_dir):
    _run("alexnet", "06", 0.85, 120.0)
    (results_dir / "cpu" / "_timings.json").write_text(json.dumps(
        {"06_alexnet": {"seconds": 240.0, "status": "ok"}}))
    book.publish_profile("cpu")
    for path in (results_dir / "cpu").glob("*.json"):
        path.unlink()  # as in a fresh clone
    assert "| 06_alexnet | alexnet (3 ep) | 0.850 |  | 0.879 | 2.0 | 4.0 |" in book.table("cpu").splitlines()


def test_a_partial_run_keeps_the_other_chapters_published_times(book, results_dir, tmp_path):
    """`--only 15` re-runs one chapter: the table and the published timings still list the
    chapters it did not run, with their published times."""
    _run("alexnet", "06", 0.85, 120.0)
    (results_dir / "cpu" / "_timings.json").write_text(json.dumps(
        {"06_alexnet": {"seconds": 240.0, "status": "ok"},
         "07_vgg": {"seconds": 60.0, "status": "ok"}}))
    book.publish_profile("cpu")
    for path in (results_dir / "cpu").glob("*.json"):
        path.unlink()
    _run("cifar_baseline", "15", 0.5, 60.0)
    (results_dir / "cpu" / "_timings.json").write_text(json.dumps(
        {"07_vgg": {"seconds": 120.0, "status": "ok"},
         "15_cifar10": {"seconds": 300.0, "status": "ok"}}))
    lines = book.table("cpu").splitlines()
    assert "| 06_alexnet | alexnet (3 ep) | 0.850 |  | 0.879 | 2.0 | 4.0 |" in lines
    assert "| 07_vgg | (no training) | | | | | 2.0 |" in lines
    assert "| 15_cifar10 | cifar_baseline (3 ep) | 0.500 |  |  | 1.0 | 5.0 |" in lines
    book.publish_profile("cpu")
    published = json.loads((tmp_path / "published" / "cpu" / "_timings.json").read_text())
    assert sorted(published) == ["06_alexnet", "07_vgg", "15_cifar10"]
    assert published["07_vgg"]["seconds"] == 120.0


def test_readme_table_is_replaced_between_the_markers(book, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{book.START}\nold table\n{book.END}\noutro\n")
    book.update_readme("| new | table |", readme)
    assert readme.read_text() == f"intro\n{book.START}\n| new | table |\n{book.END}\noutro\n"
