"""``make rehearse``: every chapter with the ``full`` profile's knobs, every loop capped, on the CPU.

The ``full`` profile is the one the GPU workflow runs; nothing else executes it. A rehearsal
runs each notebook with ``PROFILE="full"`` (its image sizes, widths, depths and model variants)
and ``CNNBOOK_MAX_BATCHES=N`` (default 2), which ``cnnbook.config.capped`` turns into: every
``TensorLoader`` and ``StepsPerEpoch`` pass, every ``fit`` (epochs and batches), ``evaluate``,
``predict``, ``lr_find`` and every latency benchmark stop after N, and every batch of the
course's loaders holds at most ``CNNBOOK_MAX_BATCH_SIZE`` examples (default 4: a 224-pixel
AlexNet batch of 128 costs seconds of CPU, one of 4 runs the same layers; batch norm, mixing
and a batch split over two processes still get two or more images). So every shape,
code path and table of the full profile runs in minutes on a laptop; a failure here is a
bug of the full profile. Learning claims are not asserted (``cnnbook.config.claims_checked`` is False).
A model a rehearsal trains and caches (Part IV's reference, chapter 19's source) is cached under a
name of its own (``cnnbook.config.rehearsal_tag``), never loaded by a real run.

Exercise test cells (nbgrader's graded cells) assert what the student's answer achieves, some
of it learning ("augmentation beats the plain MLP by 5 points"), which N batches cannot show.
So in a rehearsal a graded test cell may fail with an ``AssertionError`` (it is tagged
``raises-exception`` in the rehearsal's copy and the run goes on); any other error in it, and
any error in any other cell, fails the rehearsal. The summary counts the asserts let through.

Nothing it writes can be mistaken for a real run: the notebooks go to ``build/rehearse/
notebooks/``, the result records to ``build/rehearse/results/`` (``CNNBOOK_RESULTS_DIR``),
nothing is published to ``results/`` and README.md is not touched.

    python tools/rehearse.py [--only 05 06] [--jobs 2] [--batches 2] [--batch-size 4]

Notebooks run ``--jobs`` at a time (each on its own kernel, a subprocess of papermill); the
wall time of each is printed as it ends, then a table, and the exit status is 1 if any failed,
with the failing cell's error.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "rehearse"


def rehearsal_env(batches: int, threads: int, batch_size: int = 4) -> dict:
    """The environment of a rehearsal's kernels: full profile, capped loops and batches, CPU,
    own results."""
    env = dict(os.environ)
    env.update({
        "CNNBOOK_PROFILE": "full",
        "CNNBOOK_MAX_BATCHES": str(batches),
        "CNNBOOK_MAX_BATCH_SIZE": str(batch_size),
        "CNNBOOK_DEVICE": "cpu",   # a rehearsal checks shapes and code paths, on any machine
        "CNNBOOK_RESULTS_DIR": str(OUT / "results"),
        "OMP_NUM_THREADS": str(threads),
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
    })
    return env


ALLOWED_TAG = "raises-exception"   # nbclient lets a cell with this tag raise and goes on


def is_graded_test(cell: dict) -> bool:
    """An nbgrader test cell: graded, not a solution."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def rehearsal_copy(nb: dict) -> dict:
    """The notebook with every graded test cell tagged ``raises-exception``."""
    for cell in nb.get("cells", []):
        if is_graded_test(cell):
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if ALLOWED_TAG not in tags:
                tags.append(ALLOWED_TAG)
    return nb


def errors(nb: dict) -> tuple[list[str], list[str]]:
    """(failures, let through) of an executed rehearsal copy, one line per cell.

    Let through: an ``AssertionError`` in a graded test cell. Everything else is a failure.
    """
    failures, allowed = [], []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            source = "".join(cell.get("source", "")).strip().splitlines()
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            where = grade_id or (source[0] if source else "")
            line = f"in the cell {where!r}: {out.get('ename')}: {out.get('evalue')}"
            if is_graded_test(cell) and out.get("ename") == "AssertionError":
                allowed.append(line)
            else:
                failures.append(line)
    return failures, allowed


def ran_to_the_end(nb: dict) -> bool:
    """Every code cell of an executed notebook has run (papermill leaves the rest unnumbered)."""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    return bool(code) and all(c.get("execution_count") is not None for c in code)


def run_one(nb: Path, env: dict, timeout: int) -> dict:
    out = OUT / "notebooks" / nb.name
    log = OUT / "logs" / f"{nb.stem}.log"
    source = OUT / "inputs" / nb.name
    source.write_text(json.dumps(rehearsal_copy(json.loads(nb.read_text(encoding="utf-8")))),
                      encoding="utf-8")
    cmd = [sys.executable, "-m", "papermill", str(source), str(out), "-p", "PROFILE", "full",
           "--cwd", str(nb.parent), "-k", "python3", "--no-progress-bar",
           "--start-timeout", "600",   # a kernel starts slowly on a loaded machine
           "--execution-timeout", str(timeout)]
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        code = subprocess.call(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.perf_counter() - start
    try:
        executed = json.loads(out.read_text(encoding="utf-8"))
        failures, allowed = errors(executed)
    except (OSError, json.JSONDecodeError):
        executed, failures, allowed = {}, [], []
    # papermill exits 1 after a let-through assert too, but only once every cell has run
    if code != 0 and not failures and not (allowed and ran_to_the_end(executed)):
        failures = [f"papermill exited with {code}; see {log}"]
    return {"chapter": nb.stem, "seconds": seconds, "ok": not failures,
            "error": failures[0] if failures else "", "asserts_let_through": allowed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=[], help="chapter numbers, e.g. 05 06")
    ap.add_argument("--jobs", type=int, default=2, help="notebooks at a time (default 2)")
    ap.add_argument("--batches", type=int, default=2,
                    help="the cap: batches per loop, epochs per fit, benchmark repeats")
    ap.add_argument("--batch-size", type=int, default=4,
                    help="examples per batch of the course's loaders (default 4)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds a cell may take")
    args = ap.parse_args()
    if args.jobs < 1 or args.batches < 1 or args.batch_size < 1:
        ap.error("--jobs, --batches and --batch-size must be at least 1")
    notebooks = [nb for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                 if not args.only or nb.stem[:2] in args.only]
    if not notebooks:
        ap.error(f"no notebook matches --only {' '.join(args.only)}")
    shutil.rmtree(OUT / "results", ignore_errors=True)   # records of the last rehearsal
    for sub in ("inputs", "notebooks", "logs", "results"):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
    # the slowest chapters of the last rehearsal first, so two queues end together
    timings_path = OUT / "_timings.json"
    last = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    notebooks.sort(key=lambda nb: -last.get(nb.stem, {}).get("seconds", 0.0))
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    env = rehearsal_env(args.batches, threads, args.batch_size)
    print(f"rehearsal of {len(notebooks)} notebooks: full profile, CNNBOOK_MAX_BATCHES="
          f"{args.batches}, CNNBOOK_MAX_BATCH_SIZE={args.batch_size}, {args.jobs} at a time, "
          f"{threads} thread(s) each; output in "
          f"{OUT.relative_to(ROOT)}/", flush=True)
    start = time.perf_counter()
    results = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, nb, env, args.timeout) for nb in notebooks]
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            status = "ok" if r["ok"] else f"FAILED {r['error']}"
            if r["asserts_let_through"]:
                status += f" ({len(r['asserts_let_through'])} exercise assert(s) let through)"
            print(f"  {r['chapter']:<28} {r['seconds']:6.1f} s  {status}", flush=True)
    total = time.perf_counter() - start
    timings = {**last, **{r["chapter"]: {"seconds": r["seconds"], "ok": r["ok"]} for r in results}}
    timings_path.write_text(json.dumps(timings, indent=2, sort_keys=True) + "\n")
    results.sort(key=lambda r: r["chapter"])
    print("\n| chapter | seconds | status |\n|---|---|---|")
    for r in results:
        print(f"| {r['chapter']} | {r['seconds']:.1f} | {'ok' if r['ok'] else 'FAILED'} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nrehearsal: {len(results)} notebooks in {total / 60:.1f} min of wall time "
          f"({args.jobs} at a time; load average {load:.1f} at the end)")
    through = [(r["chapter"], line) for r in results for line in r["asserts_let_through"]]
    if through:
        print(f"\n{len(through)} exercise test cell(s) failed an assert on capped training "
              "(let through; any other error fails):")
        for chapter, line in through:
            print(f"  {chapter}: {line}")
    failed = [r for r in results if not r["ok"]]
    for r in failed:
        print(f"FAILED {r['chapter']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
