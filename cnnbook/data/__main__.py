"""``python -m cnnbook.data [--verify] [NAME ...]``: make sure the datasets are cached (``make data``).

``--verify`` first hashes every cached file afresh (raw files, the CIFAR-10 tar, the tensor
caches), says what it found, sets aside what is damaged, then prepares the datasets again,
which replaces anything set aside from the next good source.
"""
import sys
import time

from cnnbook.data.catalog import DATASETS, info
from cnnbook.data.sources import DatasetCorrupt, DatasetUnavailable, data_dir
from cnnbook.data.splits import prepare, verify


def main(argv: list[str]) -> int:
    check = "--verify" in argv
    argv = [a for a in argv if a != "--verify"]
    names = argv or list(DATASETS)
    unknown = []
    for name in names:
        try:
            info(name)
        except ValueError:
            unknown.append(name)
    if unknown:
        print(f"unknown dataset(s): {', '.join(unknown)}. This course has: "
              f"{', '.join(DATASETS)}. Usage: python -m cnnbook.data [--verify] [NAME ...]", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        if check:
            findings = verify(names)
            for path, finding in findings:
                print(f"  {finding:<8s} {path}" if not finding.startswith("DAMAGED")
                      else f"  {finding}")
            bad = sum(f.startswith("DAMAGED") for _, f in findings)
            print(f"verified {sum(f == 'ok' for _, f in findings)} files as sound, "
                  f"{bad} damaged (set aside, replaced below)")
        sizes = prepare(names)
    except (DatasetUnavailable, DatasetCorrupt, ValueError, PermissionError) as exc:
        print(exc, file=sys.stderr)
        return 1
    for key, n in sizes.items():
        print(f"  {key:22s} {n:7,d} images")
    print(f"datasets ready in {data_dir()} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
