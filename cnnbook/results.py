"""Result records: one JSON file per training run, collected into the course's results table.

``fit`` writes ``build/results/<profile>/<name>.json``; ``make book`` (and chapter 14) read
them back with ``collect``. Records are written to a temporary file and renamed.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def results_dir(profile: str | None = None) -> Path:
    """``CNNBOOK_RESULTS_DIR`` or ``build/results`` of the project, per profile if given."""
    base = Path(os.environ.get("CNNBOOK_RESULTS_DIR") or PROJECT_ROOT / "build" / "results")
    return base / profile if profile else base


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def write_record(record: dict, profile: str, name: str) -> Path:
    """Write one run's record atomically; returns its path."""
    folder = results_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug(name)}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)
    return path


def collect(profile: str | None = None):
    """All records (of one profile, or every profile) as a DataFrame, one row per run."""
    import pandas as pd

    base = results_dir()
    pattern = f"{profile}/*.json" if profile else "*/*.json"
    rows = []
    for path in sorted(base.glob(pattern)):
        try:
            rows.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue  # a record being written by another run; skip it
    return pd.DataFrame(rows)
