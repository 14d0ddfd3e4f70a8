"""Getting a dataset's raw files into the cache: from the cache itself, a local mirror, or a download.

The order is fixed: the project's ``data/`` cache, then the folder named by
``CNNBOOK_DATA_MIRROR`` (a copy of torchvision's raw layout, plus CIFAR-10 as a JPEG
ImageFolder tar), then torchvision's download. Every file is checked (size, header and
its published MD5) before it is trusted. A file in the cache is hashed when it enters
and again whenever its size or modification time changes: a small hidden stamp beside
it (``.NAME.md5``) remembers what was verified, so an unchanged file costs one ``stat``.
Copies and downloads go to a temporary name and are renamed only when complete, so an
interruption never leaves a half file that passes as good. A bad file already in the
cache is moved aside to ``*.corrupt`` (not deleted) and replaced from the next good
source. Not being allowed to read or write is never taken for damage: it gets its own
message and nothing is renamed.
"""
from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import warnings
from pathlib import Path

from cnnbook.data.catalog import CIFAR_TAR, CIFAR_TAR_MD5, DatasetInfo, RawFile, info
from cnnbook.files import atomic_copy, atomic_write


class DatasetUnavailable(RuntimeError):
    """No source could provide the dataset; the message names every place looked and the fix."""


class DatasetCorrupt(RuntimeError):
    """A dataset file exists but is truncated or damaged."""


class DataPermissionError(PermissionError):
    """The data cache (or mirror) may not be read or written: not damage, nothing is renamed."""


def permission_message(exc: OSError, doing: str = "use") -> str:
    """A message for a PermissionError met while handling dataset files: the path and the fix."""
    where = exc.filename or "a file in the data cache"
    return (f"permission denied: cannot {doing} {where}. Nothing was changed or renamed. "
            "Fix: set CNNBOOK_DATA_DIR to a folder you can write (e.g. "
            "CNNBOOK_DATA_DIR=~/cnnbook-data), or ask the owner of that folder to make it "
            "readable (and writable) for you.")


def data_dir() -> Path:
    """The dataset cache: ``CNNBOOK_DATA_DIR``, else the project's ``data/``, else ~/.cache/cnnbook."""
    env = os.environ.get("CNNBOOK_DATA_DIR")
    if env is not None and env != "":
        if not env.strip():
            raise ValueError("CNNBOOK_DATA_DIR is set but blank; set it to a writable folder "
                             "for the datasets, or unset it to use the project's data/")
        path = Path(env.strip()).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise ValueError(f"CNNBOOK_DATA_DIR={env!r} names a file, not a folder; set it to "
                             "a writable folder for the datasets, or unset it")
        return path
    project = Path(__file__).resolve().parents[2] / "data"
    if (project / "README.md").exists():
        return project
    return Path.home() / ".cache" / "cnnbook" / "data"


def mirror_dir() -> Path | None:
    """The local mirror named by ``CNNBOOK_DATA_MIRROR``, or None when unset.

    A mirror that does not exist, or is not a folder, is an error naming the variable:
    a typo in the path should not look like "the file is not in the mirror".
    """
    env = os.environ.get("CNNBOOK_DATA_MIRROR", "").strip()
    if not env:
        return None
    path = Path(env).expanduser().resolve()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise DatasetUnavailable(f"CNNBOOK_DATA_MIRROR={env!r} {what}. Point it at the folder "
                                 "holding the dataset copies (e.g. ../shared/datasets), or unset it.")
    return path


def downloads_allowed() -> bool:
    """False when ``CNNBOOK_OFFLINE`` is on (1/true/yes/on/y, any case)."""
    from cnnbook.config import env_flag

    return not env_flag("CNNBOOK_OFFLINE")


# ---------------------------------------------------------------------------- checks
def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def check_idx(path: Path, spec: RawFile, md5: bool = False) -> None:
    """Raise DatasetCorrupt unless ``path`` is a complete IDX file of the expected shape."""
    if not path.is_file():
        raise DatasetCorrupt(f"{path} is missing")
    size = path.stat().st_size
    if size != spec.nbytes:
        raise DatasetCorrupt(f"{path} has {size:,} bytes, expected {spec.nbytes:,} "
                             f"({'truncated' if size < spec.nbytes else 'too long'})")
    with open(path, "rb") as f:
        header = f.read(16 if spec.kind == "images" else 8)
    magic = int.from_bytes(header[:4], "big")
    count = int.from_bytes(header[4:8], "big")
    want_magic = 2051 if spec.kind == "images" else 2049
    if magic != want_magic or count != spec.count:
        raise DatasetCorrupt(f"{path} does not start with a valid IDX {spec.kind} header "
                             f"(magic {magic}, count {count})")
    if md5 and md5sum(path) != spec.md5:
        raise DatasetCorrupt(f"{path} has the right size but the wrong MD5 checksum")


def _stamp(path: Path) -> Path:
    return path.with_name(f".{path.name}.md5")


def verify_md5(path: Path, expected: str, what: str, stamp: bool = True) -> None:
    """Raise DatasetCorrupt unless ``path`` hashes to ``expected``.

    With ``stamp`` (files in our cache), a stamp beside the file records the verified size,
    modification time and MD5; while they still match, the file is not hashed again. A
    stamp that cannot be written (a read-only cache) only means hashing again next time.
    ``stamp=False`` (a mirror, which is not ours to write into) always hashes.
    """
    st = path.stat()
    record = {"md5": expected, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if stamp:
        try:
            if json.loads(_stamp(path).read_text()) == record:
                return
        except (OSError, ValueError):
            pass
    got = md5sum(path)
    if got != expected:
        raise DatasetCorrupt(f"{path} has the wrong MD5 checksum ({got}, expected {expected}): "
                             f"it is not the published {what}")
    if not stamp:
        return
    try:
        atomic_write(_stamp(path), lambda tmp: tmp.write_text(json.dumps(record)))
    except OSError:
        pass


def check_cifar_tar(path: Path) -> None:
    """Raise DatasetCorrupt unless the tar opens and holds 50,000 + 10,000 JPEGs."""
    try:
        with tarfile.open(path) as tar:
            names = [m.name for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetCorrupt(f"{path} is not a complete tar archive ({exc})") from exc
    train = sum("/train/" in n for n in names)
    test = sum("/test/" in n for n in names)
    if (train, test) != (50_000, 10_000):
        raise DatasetCorrupt(f"{path} holds {train:,} train and {test:,} test images, "
                             "expected 50,000 and 10,000")


def set_aside(path: Path, reason: str, stacklevel: int = 3) -> None:
    """Move a damaged file to ``*.corrupt`` (kept for inspection) and say why.

    If another process moved it first (several runs met the same damaged file), there is
    nothing left to do. A PermissionError propagates: it is not ours to rename.
    """
    bad = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, bad)
    except FileNotFoundError:
        return
    _stamp(path).unlink(missing_ok=True)
    warnings.warn(f"{reason}; moved it to {bad.name} and fetching a fresh copy",
                  stacklevel=stacklevel)


_set_aside = set_aside  # the name earlier code and tests use


# ---------------------------------------------------------------------- the sources
def _fix_hint(ds: DatasetInfo) -> str:
    return ("Fix: point CNNBOOK_DATA_MIRROR at a folder holding a copy of the datasets "
            "(the Makefile does this for ../shared/datasets) and run `make data`, "
            f"or run `make data` once on a machine with internet access to download {ds.title}.")


def ensure_mnist_raw(name: str) -> Path:
    """The folder of a complete, checked set of raw IDX files for MNIST or Fashion-MNIST."""
    ds = info(name)
    raw = data_dir() / ds.folder / "raw"
    looked, problems = [f"cache {raw}"], []
    missing = []
    for spec in ds.raw_files:
        path = raw / spec.name
        if path.exists():
            try:
                check_idx(path, spec)
                verify_md5(path, spec.md5, f"{ds.title} file {spec.name}")
                continue
            except DatasetCorrupt as exc:
                problems.append(str(exc))
                set_aside(path, str(exc))
        missing.append(spec)
    if not missing:
        return raw

    mirror = mirror_dir()
    if mirror is not None:
        src_dir = mirror / ds.folder / "raw"
        looked.append(f"mirror {src_dir} (CNNBOOK_DATA_MIRROR)")
        still = []
        for spec in missing:
            src = src_dir / spec.name
            if not src.exists():
                still.append(spec)
                continue
            try:
                check_idx(src, spec, md5=True)
            except DatasetCorrupt as exc:
                problems.append(f"mirror file: {exc}")
                still.append(spec)
                continue
            atomic_copy(src, raw / spec.name)
            verify_md5(raw / spec.name, spec.md5, f"{ds.title} file {spec.name}")
        missing = still
    else:
        looked.append("no mirror (CNNBOOK_DATA_MIRROR is not set)")
    if not missing:
        return raw

    if downloads_allowed():
        looked.append("torchvision download")
        try:
            _download_mnist(ds, raw)
            return raw
        except Exception as exc:  # any network or format failure: report, don't traceback
            problems.append(f"download failed: {type(exc).__name__}: {exc}")
    else:
        looked.append("no download (CNNBOOK_OFFLINE is set)")
    raise DatasetUnavailable(_report(ds, looked, problems, [s.name for s in missing]))


def _report(ds: DatasetInfo, looked, problems, missing) -> str:
    lines = [f"{ds.title} is not available: missing {', '.join(missing)}.", "Looked in:"]
    lines += [f"  - {p}" for p in looked]
    if problems:
        lines.append("Problems found:")
        lines += [f"  - {p}" for p in problems]
    lines.append(_fix_hint(ds))
    return "\n".join(lines)


def _download_mnist(ds: DatasetInfo, raw: Path) -> None:
    """torchvision's download into a temporary root, checked, then renamed into the cache."""
    import torchvision

    cls = {"MNIST": torchvision.datasets.MNIST,
           "FashionMNIST": torchvision.datasets.FashionMNIST}[ds.folder]
    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=raw.parent.parent) as tmp:
        cls(root=tmp, train=True, download=True)
        cls(root=tmp, train=False, download=True)
        got = Path(tmp) / ds.folder / "raw"
        for spec in ds.raw_files:
            check_idx(got / spec.name, spec, md5=True)
        for spec in ds.raw_files:
            os.replace(got / spec.name, raw / spec.name)


def canonical_cifar_dir() -> Path | None:
    """torchvision's ``cifar-10-batches-py`` in the cache, if present and intact."""
    root = data_dir()
    if not (root / "cifar-10-batches-py").is_dir():
        return None
    import torchvision

    try:
        torchvision.datasets.CIFAR10(root=str(root), train=False, download=False)
    except RuntimeError as exc:  # torchvision's integrity (MD5) check failed
        warnings.warn(f"{root / 'cifar-10-batches-py'} failed torchvision's check ({exc}); "
                      "using the JPEG copy instead", stacklevel=2)
        return None
    return root / "cifar-10-batches-py"


def ensure_cifar10() -> tuple[str, Path]:
    """Where to read CIFAR-10 from: ("canonical", folder) or ("jpeg-tar", tar file)."""
    ds = info("cifar10")
    canonical = canonical_cifar_dir()
    if canonical is not None:
        return "canonical", canonical
    tar = data_dir() / CIFAR_TAR
    looked = [f"cache {data_dir() / 'cifar-10-batches-py'}", f"cache {tar}"]
    problems = []
    if tar.exists():
        try:
            verify_md5(tar, CIFAR_TAR_MD5, "CIFAR-10 JPEG tar")
            return "jpeg-tar", tar
        except DatasetCorrupt as exc:
            problems.append(str(exc))
            set_aside(tar, str(exc))
    mirror = mirror_dir()
    if mirror is not None:
        src = mirror / CIFAR_TAR
        looked.append(f"mirror {src} (CNNBOOK_DATA_MIRROR)")
        if src.exists():
            try:
                verify_md5(src, CIFAR_TAR_MD5, "CIFAR-10 JPEG tar", stamp=False)
                atomic_copy(src, tar)
                verify_md5(tar, CIFAR_TAR_MD5, "CIFAR-10 JPEG tar")
                return "jpeg-tar", tar
            except DatasetCorrupt as exc:
                problems.append(f"mirror file: {exc}")
    else:
        looked.append("no mirror (CNNBOOK_DATA_MIRROR is not set)")
    if downloads_allowed():
        looked.append("torchvision download")
        try:
            return "canonical", _download_cifar10()
        except Exception as exc:
            problems.append(f"download failed: {type(exc).__name__}: {exc}")
    else:
        looked.append("no download (CNNBOOK_OFFLINE is set)")
    raise DatasetUnavailable(_report(ds, looked, problems, ["CIFAR-10 images"]))


def _download_cifar10() -> Path:
    import torchvision

    root = data_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as tmp:
        torchvision.datasets.CIFAR10(root=tmp, train=True, download=True)  # checks MD5s
        os.replace(Path(tmp) / "cifar-10-batches-py", root / "cifar-10-batches-py")
    return root / "cifar-10-batches-py"
