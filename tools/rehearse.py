"""``make rehearse``: every chapter with the ``full`` profile's knobs, every loop capped, on the CPU.

The ``full`` profile is the one the GPU workflow runs; nothing else executes it. A rehearsal
runs each notebook with ``PROFILE="full"`` (its image sizes, widths, depths and model variants)
and ``CNNBOOK_MAX_BATCHES=N`` (default 2), which ``cnnbook.config.capped`` turns into: every
``TensorLoader`` and ``StepsPerEpoch`` pass, every ``fit`` (epochs and batches), ``evaluate``,
``predict``, ``lr_find`` and every latency benchmark stop after N. So every shape, code path and
table of the full profile runs in minutes on a laptop; a failure here is a bug of the full
profile. Learning claims are not asserted (``cnnbook.config.claims_checked`` is False).

Nothing it writes can be mistaken for a real run: the notebooks go to ``build/rehearse/
notebooks/``, the result records to ``build/rehearse/results/`` (``CNNBOOK_RESULTS_DIR``),
nothing is published to ``results/`` and README.md is not touched.

    python tools/rehearse.py [--only 05 06] [--jobs 2] [--batches 2]

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


def rehearsal_env(batches: int, threads: int) -> dict:
    """The environment of a rehearsal's kernels: full profile, capped loops, CPU, own results."""
    env = dict(os.environ)
    env.update({
        "CNNBOOK_PROFILE": "full",
        "CNNBOOK_MAX_BATCHES": str(batches),
        "CNNBOOK_DEVICE": "cpu",   # a rehearsal checks shapes and code paths, on any machine
        "CNNBOOK_RESULTS_DIR": str(OUT / "results"),
        "OMP_NUM_THREADS": str(threads),
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def first_error(notebook: Path) -> str:
    """The first error a papermill output notebook holds: the cell's first line and the error."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return ""
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                source = "".join(cell.get("source", "")).strip().splitlines()
                head = source[0] if source else ""
                return f"in the cell starting {head!r}: {out.get('ename')}: {out.get('evalue')}"
    return ""


def run_one(nb: Path, env: dict, timeout: int) -> dict:
    out = OUT / "notebooks" / nb.name
    log = OUT / "logs" / f"{nb.stem}.log"
    cmd = [sys.executable, "-m", "papermill", str(nb), str(out), "-p", "PROFILE", "full",
           "--cwd", str(nb.parent), "-k", "python3", "--no-progress-bar",
           "--start-timeout", "600",   # a kernel starts slowly on a loaded machine
           "--execution-timeout", str(timeout)]
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        code = subprocess.call(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.perf_counter() - start
    error = "" if code == 0 else (first_error(out) or f"papermill exited with {code}; see {log}")
    return {"chapter": nb.stem, "seconds": seconds, "ok": code == 0, "error": error}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=[], help="chapter numbers, e.g. 05 06")
    ap.add_argument("--jobs", type=int, default=2, help="notebooks at a time (default 2)")
    ap.add_argument("--batches", type=int, default=2,
                    help="the cap: batches per loop, epochs per fit, benchmark repeats")
    ap.add_argument("--timeout", type=int, default=900, help="seconds a cell may take")
    args = ap.parse_args()
    if args.jobs < 1 or args.batches < 1:
        ap.error("--jobs and --batches must be at least 1")
    notebooks = [nb for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                 if not args.only or nb.stem[:2] in args.only]
    if not notebooks:
        ap.error(f"no notebook matches --only {' '.join(args.only)}")
    shutil.rmtree(OUT / "results", ignore_errors=True)   # records of the last rehearsal
    for sub in ("notebooks", "logs", "results"):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
    # the slowest chapters of the last rehearsal first, so two queues end together
    timings_path = OUT / "_timings.json"
    last = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    notebooks.sort(key=lambda nb: -last.get(nb.stem, {}).get("seconds", 0.0))
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    env = rehearsal_env(args.batches, threads)
    print(f"rehearsal of {len(notebooks)} notebooks: full profile, CNNBOOK_MAX_BATCHES="
          f"{args.batches}, {args.jobs} at a time, {threads} thread(s) each; output in "
          f"{OUT.relative_to(ROOT)}/", flush=True)
    start = time.perf_counter()
    results = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, nb, env, args.timeout) for nb in notebooks]
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            status = "ok" if r["ok"] else f"FAILED {r['error']}"
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
    failed = [r for r in results if not r["ok"]]
    for r in failed:
        print(f"FAILED {r['chapter']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
