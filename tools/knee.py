"""Where more training stops paying: a chapter's main run at several epoch budgets.

Issue 13 asks for each architecture's cpu profile to spend its 10-minute budget where it
buys accuracy, chosen from measurements rather than guessed. This tool executes a chapter
notebook with papermill several times, each time with the profile's ``epochs`` knob
replaced (the whole ``KNOBS`` table is injected as a papermill parameter, so nothing in the
chapter changes), and collects the main run's record (the record named in
``cnnbook.models.registry``) from each execution:

    python tools/knee.py --chapter 08 --epochs 2 4 6 [--profile cpu]
    python tools/knee.py --chapter 08 --record old/08-nin.json   # a run made before, as a point

Every point goes to ``results/<profile>/knee/points.json`` (points of other chapters and
epoch counts are kept; a subfolder, so the results table never reads it as a training
record), and ``results/<profile>/knee/knee.md`` / ``knee.png`` show test accuracy
(last and best epoch) against training minutes, with d2l's GPU figure as a line.

Accuracy does not depend on the machine's load (seeded, deterministic on the CPU), but
minutes do. So each point also gives the minutes *at the throughput of the published main
run* (``examples_per_sec`` of ``results/<profile>/NN-<record>.json``): points measured while
the machine was busy are then comparable with the published table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnbook.files import atomic_write  # noqa: E402
from cnnbook.results import D2L_FASHION_MNIST, published_dir  # noqa: E402


def notebook_of(chapter: str) -> Path:
    found = sorted((ROOT / "notebooks").glob(f"{chapter}_*.ipynb"))
    if not found:
        raise SystemExit(f"no notebook for chapter {chapter!r} in notebooks/")
    return found[0]


def chapter_knobs(notebook: Path) -> dict:
    """The ``KNOBS`` table of a notebook's ``parameters`` cell (the cell is executed)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{notebook.name} has {len(cells)} parameters cells, expected 1")
    namespace: dict = {}
    exec("".join(cells[0]["source"]), namespace)  # noqa: S102 - our own notebook's knobs
    return namespace["KNOBS"]


def with_epochs(knobs: dict, profile: str, epochs: int) -> dict:
    """A copy of ``knobs`` whose ``profile`` trains for ``epochs``."""
    if "epochs" not in knobs[profile]:
        raise ValueError(f"the {profile} knobs have no 'epochs' (they have {sorted(knobs[profile])})")
    return {p: dict(v, epochs=epochs) if p == profile else dict(v) for p, v in knobs.items()}


def main_record(chapter: str) -> str:
    from cnnbook.models.registry import ARCHITECTURES

    names = [a.record for a in ARCHITECTURES if a.chapter == chapter and a.record]
    if not names:
        raise SystemExit(f"chapter {chapter} has no main training run in cnnbook.models.registry")
    return names[0]


def point(record: dict, published: dict | None) -> dict:
    """One knee point from a run's record; minutes also at the published run's throughput
    (only for the same network: another size trains at another speed)."""
    examples = record["train_examples"] * record["epochs"]
    same = published is not None and published.get("params") == record.get("params")
    rate = published.get("examples_per_sec") if same else None
    return {"chapter": str(record["chapter"]), "name": record["name"], "epochs": record["epochs"],
            "params": record.get("params"),
            "test_acc": record["test_acc"], "best_test_acc": record.get("best_test_acc"),
            "train_min": record["train_seconds"] / 60,
            "train_min_at_published_rate": examples / rate / 60 if rate else None,
            "examples_per_sec": record["examples_per_sec"], "finished": record["finished"]}


def run_point(chapter: str, profile: str, epochs: int, work: Path) -> dict:
    import papermill as pm

    notebook = notebook_of(chapter)
    knobs = with_epochs(chapter_knobs(notebook), profile, epochs)
    results = work / f"{chapter}-e{epochs}"
    os.environ["CNNBOOK_RESULTS_DIR"] = str(results)
    os.environ["CNNBOOK_PROFILE"] = profile
    print(f"== {notebook.name}: {profile}, epochs={epochs}", flush=True)
    pm.execute_notebook(str(notebook), str(work / f"{chapter}-e{epochs}.ipynb"),
                        parameters={"PROFILE": profile, "KNOBS": knobs}, kernel_name="python3",
                        cwd=str(notebook.parent), progress_bar=False)
    name = main_record(chapter)
    record = json.loads((results / profile / f"{chapter}-{name}.json").read_text())
    published = published_dir(profile) / f"{chapter}-{name}.json"
    return point(record, json.loads(published.read_text()) if published.exists() else None)



def merge(points: list[dict], new: list[dict]) -> list[dict]:
    """``points`` with each of ``new`` replacing the point of the same chapter, network size
    (parameter count: a chapter whose cpu network changes starts a new curve) and epochs."""
    key = lambda p: (p["chapter"], p.get("params") or 0, p["epochs"])  # noqa: E731
    merged = {key(p): p for p in points}
    merged.update({key(p): p for p in new})
    return sorted(merged.values(), key=key)


def table(points: list[dict], profile: str) -> str:
    lines = [f"Profile `{profile}`: each chapter's main run at several epoch budgets "
             "(`python tools/knee.py`).", "",
             "| chapter | run | parameters | epochs | test acc (last) | best | d2l (GPU) | train min | "
             "train min at the published run's throughput |", "|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        d2l = D2L_FASHION_MNIST.get(p["name"])
        at_rate = p["train_min_at_published_rate"]
        params = "" if p.get("params") is None else f"{p['params']:,}"
        lines.append(f"| {p['chapter']} | {p['name']} | {params} | {p['epochs']} | {p['test_acc']:.3f} | "
                     f"{p['best_test_acc']:.3f} | {'' if d2l is None else f'{d2l[0]:.3f}'} | "
                     f"{p['train_min']:.1f} | {'' if at_rate is None else f'{at_rate:.1f}'} |")
    return "\n".join(lines) + "\n"


def figure(points: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = sorted({(p["name"], p.get("params")) for p in points}, key=str)
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for ax, (name, params) in zip(axes[0], curves):
        ps = sorted((p for p in points if (p["name"], p.get("params")) == (name, params)),
                    key=lambda p: p["epochs"])
        x = [p["train_min_at_published_rate"] or p["train_min"] for p in ps]
        ax.plot(x, [p["test_acc"] for p in ps], "o-", label="last epoch")
        ax.plot(x, [p["best_test_acc"] for p in ps], "x--", label="best epoch")
        for xi, p in zip(x, ps):
            ax.annotate(f"{p['epochs']} ep", (xi, p["test_acc"]), textcoords="offset points",
                        xytext=(0, -12), ha="center", fontsize=8)
        if name in D2L_FASHION_MNIST:
            ax.axhline(D2L_FASHION_MNIST[name][0], color="grey", ls=":", label="d2l (GPU)")
        ax.axvline(10, color="red", lw=0.8, label="10 min budget")
        ax.set(title=name if params is None else f"{name} ({params:,} parameters)",
               xlabel="training minutes", ylabel="test accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", required=True, help="two digits, e.g. 08")
    parser.add_argument("--epochs", type=int, nargs="+", default=[],
                        help="epoch budgets to run the chapter at")
    parser.add_argument("--record", type=Path, nargs="+", default=[],
                        help="records of runs made before (e.g. an older published one) to add")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "knee")
    args = parser.parse_args(argv)
    if not args.epochs and not args.record:
        parser.error("give --epochs to run, or --record files to add")
    out = published_dir(args.profile)
    name = main_record(args.chapter)
    published = out / f"{args.chapter}-{name}.json"
    published = json.loads(published.read_text()) if published.exists() else None
    new = []
    for path in args.record:
        record = json.loads(path.read_text())
        if (str(record.get("chapter")), record.get("name")) != (args.chapter, name):
            raise SystemExit(f"{path} is not chapter {args.chapter}'s {name} run")
        new.append(point(record, published))
    new += [run_point(args.chapter, args.profile, e, args.work) for e in args.epochs]
    store = out / "knee" / "points.json"
    points = merge(json.loads(store.read_text()) if store.exists() else [], new)
    text = json.dumps(points, indent=2, sort_keys=True) + "\n"
    atomic_write(store, lambda tmp: tmp.write_text(text))
    md = table(points, args.profile)
    atomic_write(out / "knee" / "knee.md", lambda tmp: tmp.write_text(md))
    figure(points, out / "knee" / "knee.png")
    print(md)


if __name__ == "__main__":
    main()
