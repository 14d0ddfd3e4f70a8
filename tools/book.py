"""``make book``: execute every chapter with papermill in one profile and tabulate the results.

Each notebook runs on a fresh kernel with ``PROFILE`` injected, into
``build/notebooks/<profile>/``; its wall time goes to ``build/results/<profile>/_timings.json``
and the training runs leave their own records (``cnnbook.results``). The table of every
chapter's accuracy and minutes is written to ``build/results/<profile>.md`` and, for the
``cpu`` profile, into README.md between the ``results`` markers, so no number in it is
typed by hand. The ``cpu`` and ``full`` records (and timings) are also published to the
tracked ``results/<profile>/`` folder (``cnnbook.results.publish``): chapter 14 and a
fresh clone read the measured numbers from there.

    python tools/book.py --profile cpu [--only 05 06] [--table-only] [--no-publish]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnbook.files import atomic_write  # noqa: E402
from cnnbook.results import (D2L_FASHION_MNIST, collect, publish, published_dir,  # noqa: E402
                             results_dir)

START, END = "<!-- results:start -->", "<!-- results:end -->"


def run_notebooks(profile: str, only: list[str]) -> dict:
    import papermill as pm

    out_dir = ROOT / "build" / "notebooks" / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    timings_path = results_dir(profile) / "_timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    os.environ["CNNBOOK_PROFILE"] = profile
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if only and nb.stem[:2] not in only:
            continue
        print(f"== {nb.name} ({profile})", flush=True)
        for stale in results_dir(profile).glob(f"{nb.stem[:2]}-*.json"):
            stale.unlink()  # this chapter's records are about to be written afresh
        start = time.perf_counter()
        status = "ok"
        try:
            pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters={"PROFILE": profile},
                                kernel_name="python3", cwd=str(nb.parent), progress_bar=False)
        except Exception as exc:  # keep going: one broken chapter should not hide the others
            status = f"failed: {type(exc).__name__}"
            print(f"   {status}: {str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
        seconds = time.perf_counter() - start
        timings[nb.stem] = {"seconds": seconds, "status": status}
        print(f"   {seconds / 60:.1f} min", flush=True)
        timings_path.parent.mkdir(parents=True, exist_ok=True)
        timings_path.write_text(json.dumps(timings, indent=2, sort_keys=True))
    return timings


def _timings_in(folder: Path) -> dict:
    path = folder / "_timings.json"
    return json.loads(path.read_text()) if path.exists() else {}


def read_timings(profile: str) -> dict:
    """Notebook wall times: the published ones, each replaced by this machine's where it ran
    that chapter (a run with ``--only 15`` keeps every other chapter's published time)."""
    return {**_timings_in(published_dir(profile)), **_timings_in(results_dir(profile))}


def publish_profile(profile: str) -> None:
    """Copy the records and timings of a real profile to the tracked results/ folder; the
    published timings of chapters this machine did not run are kept."""
    copied = publish(profile)
    if (results_dir(profile) / "_timings.json").exists():
        text = json.dumps(read_timings(profile), indent=2, sort_keys=True) + "\n"
        atomic_write(published_dir(profile) / "_timings.json", lambda tmp: tmp.write_text(text))
    print(f"published {len(copied)} records to {published_dir(profile)}")


def table(profile: str) -> str:
    timings = read_timings(profile)
    runs = collect(profile, published=True)
    lines = ["| chapter | training run | test accuracy | best epoch | d2l (GPU) | training min "
             "| notebook min |", "|---|---|---|---|---|---|---|"]
    for stem in sorted(timings):
        t = timings[stem]
        chapter_runs = (runs[runs["chapter"].astype(str) == stem[:2]]
                        if not runs.empty and "chapter" in runs else [])
        nb_min = f"{t['seconds'] / 60:.1f}" + ("" if t["status"] == "ok" else f" ({t['status']})")
        if len(chapter_runs) == 0:
            lines.append(f"| {stem} | (no training) | | | | | {nb_min} |")
            continue
        for i, (_, r) in enumerate(chapter_runs.sort_values("name").iterrows()):
            acc = r.get("test_acc")   # None in the record, NaN in the frame: a run without a test
            acc = "" if acc is None or acc != acc else f"{acc:.3f}"
            best, epoch = r.get("best_test_acc"), r.get("best_epoch")  # absent in older records
            best = "" if best is None or best != best else f"{best:.3f} (ep {int(epoch)})"
            d2l = D2L_FASHION_MNIST.get(r["name"])
            d2l = "" if d2l is None else f"{d2l[0]:.3f}" + ("" if r["name"] != "mobilenet_v2"
                                                            else " (target)")
            lines.append(f"| {stem if i == 0 else ''} | {r['name']} ({int(r['epochs'])} ep) | "
                         f"{acc} | {best} | {d2l} | {r['seconds'] / 60:.1f} | "
                         f"{nb_min if i == 0 else ''} |")
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    devices = sorted(set(runs["device"])) if not runs.empty and "device" in runs else []
    lines.append("")
    lines.append(f"Profile `{profile}`, measured on {machine} ({', '.join(devices) or 'no training'}) "
                 f"by `make book PROFILE={profile}`.")
    return "\n".join(lines)


def update_readme(text: str, readme: Path = ROOT / "README.md") -> None:
    """Replace the table between the results markers of README.md."""
    content = readme.read_text(encoding="utf-8")
    if START not in content or END not in content:
        print("README.md has no results markers; table not inserted")
        return
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")
    print("README.md results table updated")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=os.environ.get("PROFILE", "cpu"),
                    choices=["smoke", "cpu", "full"])
    ap.add_argument("--only", nargs="*", default=[], help="chapter numbers, e.g. 05 06")
    ap.add_argument("--table-only", action="store_true", help="rebuild the table from records")
    ap.add_argument("--no-publish", action="store_true",
                    help="do not copy cpu/full records to the tracked results/ folder")
    args = ap.parse_args()
    timings = {} if args.table_only else run_notebooks(args.profile, args.only)
    if args.profile != "smoke" and not args.no_publish and not args.table_only:
        publish_profile(args.profile)
    text = table(args.profile)
    out = results_dir() / f"{args.profile}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    print(text)
    if args.profile == "cpu":
        update_readme(text)
    failed = [k for k, v in timings.items() if v["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
