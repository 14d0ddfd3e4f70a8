"""cnnbook.grading.course: grading stops, naming the fix, when the datasets are missing."""
import shutil
from pathlib import Path

import pytest

from cnnbook.grading.course import datasets_used, require_datasets

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_datasets_used_by_the_chapters():
    assert datasets_used(NOTEBOOKS / "01_biology_of_vision.ipynb") == set()
    assert datasets_used(NOTEBOOKS / "04_losses_backprop.ipynb") == {"mnist"}
    assert datasets_used(NOTEBOOKS / "05_lenet.ipynb") == {"fashion_mnist"}


def _course(tmp_path, chapter="05_lenet"):
    folder = tmp_path / "course" / "source" / chapter
    folder.mkdir(parents=True)
    shutil.copyfile(NOTEBOOKS / f"{chapter}.ipynb", folder / f"{chapter}.ipynb")
    return tmp_path / "course"


def test_missing_dataset_stops_grading_with_the_fix(empty_cache, tmp_path):
    course = _course(tmp_path)
    with pytest.raises(SystemExit) as info:
        require_datasets(["autograde", "05_lenet", "--force"], course=course)
    message = str(info.value)
    assert "fashion_mnist" in message and "make data" in message and "CNNBOOK_DATA_MIRROR" in message


def test_a_chapter_without_data_needs_nothing(empty_cache, tmp_path):
    course = _course(tmp_path, "01_biology_of_vision")
    assert require_datasets(["autograde", "01_biology_of_vision"], course=course) == set()


def test_present_datasets_pass(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    course = _course(tmp_path, "04_losses_backprop")
    assert require_datasets(["autograde", "04_losses_backprop"], course=course) == {"mnist"}
