"""Result records: one JSON file per training run, collected into the course's results table.

``fit`` writes ``build/results/<profile>/<name>.json`` (untracked: every run, smoke included).
``make book PROFILE=cpu`` (or ``full``) publishes its records to ``results/<profile>/``,
which is tracked: the README's table and chapter 14's comparison read from there, so a
fresh clone shows measured numbers, and a learner's own newer runs take their place.
Records are written to a temporary file and renamed.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from cnnbook.files import atomic_write

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def results_dir(profile: str | None = None) -> Path:
    """``CNNBOOK_RESULTS_DIR`` or ``build/results`` of the project, per profile if given."""
    base = Path(os.environ.get("CNNBOOK_RESULTS_DIR") or PROJECT_ROOT / "build" / "results")
    return base / profile if profile else base


def published_dir(profile: str | None = None) -> Path:
    """``CNNBOOK_PUBLISHED_DIR`` or the project's tracked ``results/``, per profile if given."""
    base = Path(os.environ.get("CNNBOOK_PUBLISHED_DIR") or PROJECT_ROOT / "results")
    return base / profile if profile else base


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def _write_json_atomic(obj, path: Path) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_record(record: dict, profile: str, name: str) -> Path:
    """Write one run's record atomically; returns its path."""
    path = results_dir(profile) / f"{slug(name)}.json"
    _write_json_atomic(record, path)
    return path


def _read(folder: Path, pattern: str) -> dict:
    records = {}
    for path in sorted(folder.glob(pattern)):
        if path.name.startswith("_"):
            continue  # bookkeeping such as make book's _timings.json
        try:
            records[path.relative_to(folder).as_posix()] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue  # a record being written by another run; skip it
    return records


def collect(profile: str | None = None, published: bool = False):
    """All records (of one profile, or every profile) as a DataFrame, one row per run.

    With ``published=True`` the tracked records of ``results/`` come first and a local
    run with the same name replaces its published record; the ``source`` column says
    which one each row is ("published" or "local").
    """
    import pandas as pd

    pattern = f"{profile}/*.json" if profile else "*/*.json"
    merged = {}
    if published:
        merged.update({k: dict(v, source="published")
                       for k, v in _read(published_dir(), pattern).items()})
    merged.update({k: dict(v, source="local") for k, v in _read(results_dir(), pattern).items()})
    return pd.DataFrame([merged[k] for k in sorted(merged)])


def chapter_of(filename: str) -> str:
    """The chapter a record file belongs to: ``05-lenet5.json`` -> ``05``."""
    return filename.split("-", 1)[0]


def publish(profile: str) -> list[Path]:
    """Copy this machine's records of ``profile`` into the tracked ``results/<profile>/``.

    A chapter's published records are replaced as a whole, so a run that a chapter no
    longer makes does not linger in the table.
    """
    target = published_dir(profile)
    target.mkdir(parents=True, exist_ok=True)
    local = _read(results_dir(profile), "*.json")
    chapters = {chapter_of(name) for name in local}
    for old in target.glob("*.json"):
        if not old.name.startswith("_") and chapter_of(old.name) in chapters and old.name not in local:
            old.unlink()
    copied = []
    for name, record in local.items():
        path = target / name
        _write_json_atomic(record, path)
        copied.append(path)
    return copied


# d2l's published Fashion-MNIST test accuracies (d2l.ai, PyTorch edition, chapter 8 "Modern
# Convolutional Neural Networks" and 7.6 for LeNet): 10 epochs on a GPU, at 224 px (AlexNet,
# VGG-11 with channels / 4, NiN) or 96 px (GoogLeNet, ResNet-18, DenseNet), as the book's
# rendered notebooks print them. d2l has no MobileNet chapter: its row is the course's own
# target for MobileNet V2, marked as such. Keyed by the run name the chapters give ``fit``.
D2L_FASHION_MNIST: dict[str, tuple[float, str]] = {
    "lenet5": (0.776, "d2l 7.6, 10 epochs"),
    "alexnet": (0.879, "d2l 8.1, 224 px, 10 epochs"),
    "vgg11": (0.916, "d2l 8.2, 224 px, channels / 4, 10 epochs"),
    "nin": (0.865, "d2l 8.3, 224 px, 10 epochs"),
    "googlenet": (0.888, "d2l 8.4, 96 px, 10 epochs"),
    "resnet18": (0.919, "d2l 8.6, 96 px, 10 epochs"),
    "densenet": (0.891, "d2l 8.7, 96 px, 10 epochs"),
    "mobilenet_v2": (0.900, "no d2l chapter: the course's target"),
}


def against_d2l(record: dict, tolerance: float = 0.02) -> str:
    """One line comparing a run's record with d2l's published accuracy for the same network.

    Gives the last and the best epoch's test accuracy, the training minutes, d2l's figure and
    the gap in points, and whether the run is within ``tolerance`` of it (the cpu profile's
    goal: d2l's GPU accuracy less two points in at most ten minutes of training).
    """
    name, acc = record.get("name"), record.get("test_acc")
    if acc is None:
        return f"{name}: no test accuracy in this run's record"
    minutes = (record.get("seconds") or 0.0) / 60
    best = record.get("best_test_acc")
    best_text = f" (best epoch {best:.3f})" if best is not None else ""
    line = f"{name}: test accuracy {acc:.3f}{best_text} after {minutes:.1f} min of training"
    if name not in D2L_FASHION_MNIST:
        return line + "; d2l publishes no figure for it"
    ref, source = D2L_FASHION_MNIST[name]
    gap = 100 * (acc - ref)
    if gap >= 0:
        verdict = "at or above it"
    elif gap >= -100 * tolerance:
        verdict = f"within {100 * tolerance:.0f} points of it"
    else:
        verdict = f"more than {100 * tolerance:.0f} points below it"
    return f"{line}; d2l on a GPU: {ref:.3f} ({source}): {gap:+.1f} points, {verdict}"
