"""Whole dataset splits as uint8 tensors in memory, cached in ``data/cache`` as .pt files.

Reading 60,000 JPEGs takes a while; reading one tensor file takes a fraction of a second.
The cache is derived data, and it is checked like the raw files: each ``.pt`` records the
checksums of the sources it was built from (a changed source rebuilds it), and a stamp
beside it (``.NAME.pt.sha256``) holds the ``.pt``'s own SHA-256 (our own checksum, so the
fastest one here: CPUs with SHA extensions hash it 2-3x faster than MD5), checked on every
load while the bytes are read (one pass, no second read). A damaged or stale cache file is set aside and
rebuilt from the raw files.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import warnings
from pathlib import Path

import numpy as np
import torch

from cnnbook.data import sources
from cnnbook.data.catalog import CIFAR_TAR, CIFAR_TAR_MD5, info
from cnnbook.files import atomic_write, remove_stale_parts

CACHE_VERSION = 2  # 2: records its sources' checksums, with an MD5 stamp of its own
_memory: dict = {}


def _read_idx(path: Path) -> torch.Tensor:
    data = path.read_bytes()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    return torch.from_numpy(arr.copy())


def _from_mnist_raw(name: str, split: str):
    """Images, labels and the checksums of the two raw files they came from."""
    raw = sources.ensure_mnist_raw(name)
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(raw / f"{prefix}-images-idx3-ubyte").unsqueeze(1)
    labels = _read_idx(raw / f"{prefix}-labels-idx1-ubyte").long()
    return images, labels, _mnist_sources(name, split)


def _mnist_sources(name: str, split: str) -> dict:
    prefix = "train" if split == "train" else "t10k"
    return {f.name: f.md5 for f in info(name).raw_files if f.name.startswith(prefix)}


def _from_cifar(split: str):
    kind, path = sources.ensure_cifar10()
    if kind == "canonical":
        import torchvision

        ds = torchvision.datasets.CIFAR10(root=str(path.parent), train=split == "train",
                                          download=False)  # torchvision checks its MD5s
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return (images, torch.tensor(ds.targets, dtype=torch.long),
                {"cifar-10-batches-py": "checked by torchvision"})
    images, labels = _decode_cifar_tar(path, split)
    return images, labels, {CIFAR_TAR: CIFAR_TAR_MD5}


def _decode_cifar_tar(path: Path, split: str):
    """Decode one split of the JPEG ImageFolder tar straight from the archive (no extraction)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    classes = info("cifar10").classes
    index = {c: i for i, c in enumerate(classes)}
    blobs, labels = [], []
    with tarfile.open(path) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3 or parts[-3] != split:
                continue
            if parts[-2] not in index:
                raise sources.DatasetCorrupt(f"{path}: unknown class folder {parts[-2]!r}")
            blobs.append(torch.frombuffer(bytearray(tar.extractfile(member).read()), dtype=torch.uint8))
            labels.append(index[parts[-2]])
    try:
        images = decode_jpeg(blobs, mode=ImageReadMode.RGB)
    except RuntimeError as exc:
        raise sources.DatasetCorrupt(f"{path}: a JPEG in the {split} split does not decode "
                                     f"({exc}); the tar is damaged") from exc
    images = torch.stack(images)
    labels = torch.tensor(labels, dtype=torch.long)
    order = torch.argsort(labels, stable=True)  # class-grouped, as the folder order is
    return images[order].contiguous(), labels[order]


def cache_path(name: str, split: str) -> Path:
    return sources.data_dir() / "cache" / f"{info(name).name}-{split}.pt"


def _problem(obj, name: str, split: str) -> str | None:
    """What is wrong with a loaded (or freshly built) split, or None if it is sound."""
    ds = info(name)
    if not isinstance(obj, dict) or obj.get("version") != CACHE_VERSION:
        return "written by an older version of cnnbook"
    images, labels = obj.get("images"), obj.get("labels")
    n = ds.splits[split]
    shape = (n, ds.channels, ds.size, ds.size)
    if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8
            and tuple(images.shape) == shape):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        return f"holds images of shape {got}, expected {n:,} of shape {shape[1:]}"
    if not (isinstance(labels, torch.Tensor) and labels.shape == (n,)):
        return f"holds {getattr(labels, 'shape', '?')} labels, expected {n:,}"
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= len(ds.classes):
        return (f"holds labels from {lo} to {hi}, but {ds.title} has classes "
                f"0-{len(ds.classes) - 1}")
    return None


def _stamp(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def _read_cache(path: Path):
    """The cache file's dict, or a string saying why it cannot be used (damaged, stale).

    The bytes are read once, hashed and compared with the stamp written beside the file,
    then unpickled from memory. A PermissionError propagates: it is not damage.
    """
    data = path.read_bytes()
    try:
        expected = json.loads(_stamp(path).read_text())["sha256"]
    except FileNotFoundError:
        try:  # a cache from before version 2 has no stamp: let the version check retire it
            old = torch.load(io.BytesIO(data), weights_only=True)
        except Exception:
            old = None
        if isinstance(old, dict) and old.get("version", CACHE_VERSION) < CACHE_VERSION:
            return old
        return "has no checksum stamp (it was lost or removed)"
    except (ValueError, KeyError, TypeError):
        return "has an unreadable checksum stamp"
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        return f"has the wrong checksum (SHA-256 {got[:12]}..., expected {expected[:12]}...): it was changed or damaged"
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # unreadable in spite of its checksum: a stamp written for garbage
        return f"does not load ({type(exc).__name__})"


def _write_cache(obj, path: Path) -> None:
    """Serialise once, stamp the bytes' SHA-256, write both atomically (the stamp last)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    record = json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    atomic_write(_stamp(path), lambda tmp: tmp.write_text(record))


def _expected_sources(name: str, split: str) -> dict | None:
    """The checksums a sound cache of this split records, when they can be known cheaply."""
    ds = info(name)
    if ds.name == "cifar10":
        return None  # canonical batches or the JPEG tar: the tar is checked when it is read
    return _mnist_sources(ds.name, split)


def load_split(name: str, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split: images uint8 (N, C, H, W) and labels int64 (N,), on the CPU.

    Read once per process from the tensor cache (built on first use from the raw files,
    every one checked against its published MD5). The returned tensors are shared: clone
    before changing them in place. A permission problem raises ``DataPermissionError``
    with the path and the fix; nothing is renamed.
    """
    ds = info(name)
    if split not in ds.splits:
        raise ValueError(f"split must be one of {list(ds.splits)}, not {split!r}")
    key = (ds.name, split)
    if key in _memory:
        return _memory[key]
    path = cache_path(ds.name, split)
    try:
        _memory[key] = _load_or_build(ds.name, split, path)
    except PermissionError as exc:
        raise sources.DataPermissionError(sources.permission_message(exc)) from exc
    return _memory[key]


def _load_or_build(name: str, split: str, path: Path):
    obj = None
    if path.exists():
        obj = _read_cache(path)
        problem = obj if isinstance(obj, str) else _problem(obj, name, split)
        expected = _expected_sources(name, split)
        if problem is None and expected is not None and obj.get("sources") != expected:
            problem = "was built from other source files than the published ones"
        if problem is not None and not isinstance(obj, str) and obj.get("version") != CACHE_VERSION:
            path.unlink()  # merely out of date, not damaged: rebuild it, keep no copy
            obj = None
        elif problem is not None:
            sources.set_aside(path, f"tensor cache {path} {problem}", stacklevel=5)
            obj = None
    if obj is None:
        root = sources.data_dir()
        for folder in {path.parent, root, root / info(name).folder / "raw"}:
            remove_stale_parts(folder)
        images, labels, used = (_from_cifar(split) if name == "cifar10"
                                else _from_mnist_raw(name, split))
        obj = {"version": CACHE_VERSION, "images": images, "labels": labels, "sources": used}
        problem = _problem(obj, name, split)
        if problem is not None:
            raise sources.DatasetCorrupt(
                f"{info(name).title} {split}: the raw files passed their checks, yet the "
                f"data read from them {problem}. Run `python -m cnnbook.data --verify`.")
        _write_cache(obj, path)
    return obj["images"], obj["labels"]


def verify(names=("fashion_mnist", "mnist", "cifar10")) -> list[tuple[str, str]]:
    """Hash every cached file of the named datasets afresh (stamps ignored); set aside the bad.

    Returns ``(file, finding)`` pairs, the finding "ok" or what is wrong. A damaged file is
    moved to ``*.corrupt``, so the next ``prepare`` replaces it from the next good source.
    """
    root = sources.data_dir()
    found = []

    def check(path: Path, test) -> None:
        if not path.exists():
            found.append((str(path), "absent (fetched on first use)"))
            return
        try:
            test(path)
            found.append((str(path), "ok"))
        except sources.DatasetCorrupt as exc:
            found.append((str(path), f"DAMAGED: {exc}"))
            sources.set_aside(path, str(exc))

    for name in names:
        ds = info(name)
        for spec in ds.raw_files:
            def raw_ok(p, spec=spec):
                sources.check_idx(p, spec)
                sources.verify_md5(p, spec.md5, f"{ds.title} file {spec.name}", stamp=False)
            check(root / ds.folder / "raw" / spec.name, raw_ok)
        if ds.name == "cifar10":
            check(root / CIFAR_TAR,
                  lambda p: sources.verify_md5(p, CIFAR_TAR_MD5, "CIFAR-10 JPEG tar", stamp=False))
        for split in ds.splits:
            def cache_ok(p, split=split):
                obj = _read_cache(p)
                problem = obj if isinstance(obj, str) else _problem(obj, ds.name, split)
                expected = _expected_sources(ds.name, split)
                if problem is None and expected is not None and obj.get("sources") != expected:
                    problem = "was built from other source files than the published ones"
                if problem:
                    raise sources.DatasetCorrupt(f"tensor cache {p} {problem}")
            check(cache_path(ds.name, split), cache_ok)
    clear_memory()
    return found


def clear_memory() -> None:
    """Forget the splits held in memory (tests use it to force a reread)."""
    _memory.clear()


def prepare(names=("fashion_mnist", "mnist", "cifar10")) -> dict:
    """Make sure every split of the named datasets is cached; return their sizes (``make data``)."""
    sizes = {}
    for name in names:
        for split in info(name).splits:
            images, _ = load_split(name, split)
            sizes[f"{info(name).name}/{split}"] = len(images)
    return sizes


def subset_per_class(labels: torch.Tensor, limit: int | None, num_classes: int,
                     seed: int = 0) -> torch.Tensor:
    """Indices of a class-balanced subset of about ``limit`` examples (all when None)."""
    if limit is None or limit >= len(labels):
        return torch.arange(len(labels))
    if limit < num_classes:
        raise ValueError(f"limit={limit} is smaller than the {num_classes} classes")
    per_class = limit // num_classes
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.sort(torch.cat(chosen)).values
