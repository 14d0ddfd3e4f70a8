"""``python -m cnnbook.data [NAME ...]``: make sure the datasets are cached (``make data``)."""
import sys
import time

from cnnbook.data.catalog import DATASETS, info
from cnnbook.data.sources import DatasetCorrupt, DatasetUnavailable, data_dir
from cnnbook.data.splits import prepare


def main(argv: list[str]) -> int:
    names = argv or list(DATASETS)
    unknown = []
    for name in names:
        try:
            info(name)
        except ValueError:
            unknown.append(name)
    if unknown:
        print(f"unknown dataset(s): {', '.join(unknown)}. This course has: "
              f"{', '.join(DATASETS)}. Usage: python -m cnnbook.data [NAME ...]", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        sizes = prepare(names)
    except (DatasetUnavailable, DatasetCorrupt, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    for key, n in sizes.items():
        print(f"  {key:22s} {n:7,d} images")
    print(f"datasets ready in {data_dir()} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
