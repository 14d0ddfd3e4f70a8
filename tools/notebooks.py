"""Build the chapter notebooks from their jupytext sources, and check that they agree.

The source of truth for ``notebooks/NN_topic.ipynb`` is ``notebooks/src/NN_topic.py`` in
jupytext's percent format (readable diffs, easy review). ``build`` writes the .ipynb
without outputs, execution counts or jupytext bookkeeping, with a ``python3``
kernelspec (papermill needs one). ``check`` fails when a notebook is stale, was edited
without its source, or carries outputs.

    python tools/notebooks.py build [NAME ...]   # after editing a source
    python tools/notebooks.py check              # what tests/test_notebook_conventions.py runs
    python tools/notebooks.py pull NAME          # after editing the .ipynb in JupyterLab
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
KEPT_CELL_METADATA = ("tags", "nbgrader")


def build(source: Path) -> nbformat.NotebookNode:
    """The clean notebook for one percent-format source."""
    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata = nbformat.from_dict({
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
    })
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict(
            {k: v for k, v in cell.metadata.items() if k in KEPT_CELL_METADATA})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.pop("id", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):  # stable ids: diffs stay small
        cell["id"] = f"{source.stem[:2]}-{i:03d}"
    return nb


def dumps(nb) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def target(source: Path) -> Path:
    return NOTEBOOKS / f"{source.stem}.ipynb"


def sources(names=()) -> list[Path]:
    found = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if names:
        found = [p for p in found if p.stem in names or p.stem[:2] in names]
    return found


def cmd_build(names) -> int:
    for src in sources(names):
        target(src).write_text(dumps(build(src)), encoding="utf-8")
        print(f"built {target(src).relative_to(ROOT)}")
    return 0


def problems() -> list[str]:
    """Every way the stored notebooks disagree with their sources."""
    out = []
    srcs = sources()
    stems = {p.stem for p in srcs}
    for nb_path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if nb_path.stem not in stems:
            out.append(f"{nb_path.name} has no source notebooks/src/{nb_path.stem}.py")
    for src in srcs:
        nb_path = target(src)
        if not nb_path.exists():
            out.append(f"{nb_path.name} is missing: run `python tools/notebooks.py build`")
        elif nb_path.read_text(encoding="utf-8") != dumps(build(src)):
            out.append(f"{nb_path.name} differs from src/{src.name}: rebuild it "
                       "(or `pull` it if you edited the notebook)")
    return out


def cmd_check() -> int:
    found = problems()
    for p in found:
        print(p)
    return 1 if found else 0


def cmd_pull(names) -> int:
    """Write the sources back from edited notebooks (outputs are dropped)."""
    for name in names:
        nb_path = next(NOTEBOOKS.glob(f"{name}*.ipynb"))
        nb = jupytext.read(nb_path)
        jupytext.write(nb, SOURCES / f"{nb_path.stem}.py", fmt="py:percent")
        print(f"pulled {nb_path.name}")
    return cmd_build([Path(n).stem for n in names])


if __name__ == "__main__":
    cmd, *args = sys.argv[1:] or ["check"]
    sys.exit({"build": lambda: cmd_build(args), "check": cmd_check,
              "pull": lambda: cmd_pull(args)}[cmd]())
