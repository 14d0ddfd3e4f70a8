"""Damaged, swapped, stale and unreadable dataset files: found by checksum, replaced, or explained.

Every case works on copies in temporary folders, never on the mirror itself.
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from cnnbook.data import DatasetUnavailable, load_split, sources, splits
from cnnbook.data.catalog import CIFAR_TAR, CIFAR_TAR_MD5, info
from cnnbook.files import atomic_write, remove_stale_parts, umask_mode


def _fill(mirror, monkeypatch, name="fashion_mnist", split="test"):
    """Prepare one split from the mirror into the (empty) cache; return the raw folder."""
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    load_split(name, split)
    splits.clear_memory()
    return sources.data_dir() / info(name).folder / "raw"


def _poke(path: Path, offset: int, value: int) -> int:
    """Write one byte (the file keeps its size and header); return the byte it replaced."""
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([value]))
    return old


def test_one_changed_pixel_byte_is_found_and_replaced_from_the_mirror(empty_cache, mirror, monkeypatch):
    raw = _fill(mirror, monkeypatch)
    good, _ = load_split("fashion_mnist", "test")
    good = good.clone()
    splits.cache_path("fashion_mnist", "test").unlink()  # force a rebuild from the raw files
    splits.clear_memory()
    old = _poke(raw / "t10k-images-idx3-ubyte", 16 + 5000, 0)
    assert old != 0
    with pytest.warns(UserWarning, match="wrong MD5"):
        images, _ = load_split("fashion_mnist", "test")
    assert torch.equal(images, good)
    assert (raw / "t10k-images-idx3-ubyte.corrupt").exists()


def test_flipped_or_out_of_range_label_byte_is_replaced(empty_cache, mirror, monkeypatch):
    raw = _fill(mirror, monkeypatch)
    splits.cache_path("fashion_mnist", "test").unlink()
    splits.clear_memory()
    _poke(raw / "t10k-labels-idx1-ubyte", 8 + 3, 250)  # a label no class has
    with pytest.warns(UserWarning, match="t10k-labels-idx1-ubyte has the wrong MD5"):
        _, labels = load_split("fashion_mnist", "test")
    assert int(labels.max()) == 9 and len(labels) == 10_000


def test_mnist_files_in_the_fashion_folder_are_refused(empty_cache, mirror, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    raw = empty_cache / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mirror / "MNIST" / "raw").iterdir():
        shutil.copy(f, raw / f.name)  # same names, sizes and headers: only MD5 can tell
    with pytest.warns(UserWarning, match="not the published Fashion-MNIST"):
        images, labels = load_split("fashion_mnist", "test")
    assert abs(images.float().mean().item() / 255 - 0.2868) < 0.003  # clothes, not digits


def test_a_changed_tensor_cache_is_set_aside_and_rebuilt(empty_cache, mirror, monkeypatch):
    _fill(mirror, monkeypatch)
    good, _ = load_split("fashion_mnist", "test")
    good = good.clone()
    splits.clear_memory()
    path = splits.cache_path("fashion_mnist", "test")
    size = path.stat().st_size
    _poke(path, size - 5000, 1)  # a pixel deep inside the tensor's storage
    with pytest.warns(UserWarning, match="wrong checksum"):
        images, _ = load_split("fashion_mnist", "test")
    assert torch.equal(images, good)
    assert path.with_name(path.name + ".corrupt").exists()


def test_a_cache_built_from_other_sources_is_rebuilt(empty_cache, mirror, monkeypatch):
    _fill(mirror, monkeypatch)
    path = splits.cache_path("fashion_mnist", "test")
    obj = torch.load(path, weights_only=True)
    obj["sources"] = {"t10k-images-idx3-ubyte": "0" * 32}  # as if built from another file
    splits._write_cache(obj, path)
    with pytest.warns(UserWarning, match="other source files"):
        load_split("fashion_mnist", "test")
    assert torch.load(path, weights_only=True)["sources"] == splits._mnist_sources("fashion_mnist", "test")


def test_an_old_version_cache_is_replaced_without_a_corrupt_copy(empty_cache, mirror, monkeypatch):
    _fill(mirror, monkeypatch)
    path = splits.cache_path("fashion_mnist", "test")
    obj = torch.load(path, weights_only=True)
    obj["version"] = 1
    torch.save(obj, path)
    splits._stamp(path).unlink()
    load_split("fashion_mnist", "test")
    assert not path.with_name(path.name + ".corrupt").exists()
    assert torch.load(path, weights_only=True)["version"] == splits.CACHE_VERSION


def test_a_changed_byte_in_the_cached_cifar_tar_is_found_and_replaced(empty_cache, mirror, monkeypatch):
    tar = empty_cache / CIFAR_TAR
    tar.parent.mkdir(parents=True)
    shutil.copyfile(mirror / CIFAR_TAR, tar)
    _poke(tar, tar.stat().st_size // 2, 0x5A)  # inside some JPEG's data
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    with pytest.warns(UserWarning, match="CIFAR-10 JPEG tar"):
        kind, path = sources.ensure_cifar10()
    assert kind == "jpeg-tar" and sources.md5sum(path) == CIFAR_TAR_MD5
    assert (empty_cache / (CIFAR_TAR + ".corrupt")).exists()


def test_a_damaged_mirror_tar_is_reported_with_its_name(empty_cache, tmp_path, mirror, monkeypatch):
    fake = tmp_path / "mirror"
    fake.mkdir()
    shutil.copyfile(mirror / CIFAR_TAR, fake / CIFAR_TAR)
    _poke(fake / CIFAR_TAR, 4096 * 7, 0)
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(fake))
    with pytest.raises(DatasetUnavailable) as err:
        sources.ensure_cifar10()
    assert "mirror file" in str(err.value) and CIFAR_TAR in str(err.value)
    assert "wrong MD5" in str(err.value)


def test_the_mirror_md5sums_agree_with_the_catalogue(mirror):
    listed = dict(line.split()[::-1] for line in (mirror / "MD5SUMS").read_text().splitlines() if line)
    assert listed[CIFAR_TAR] == CIFAR_TAR_MD5
    for name in ("mnist", "fashion_mnist"):
        ds = info(name)
        for f in ds.raw_files:
            assert listed[f"{ds.folder}/raw/{f.name}"] == f.md5


def test_verify_finds_damage_the_stamps_would_miss_and_the_next_run_repairs_it(empty_cache, mirror,
                                                                              monkeypatch, capsys):
    from cnnbook.data.__main__ import main

    raw = _fill(mirror, monkeypatch)
    victim = raw / "t10k-images-idx3-ubyte"
    st = victim.stat()
    _poke(victim, 16 + 123, 7)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # bit rot: size and time unchanged
    with pytest.warns(UserWarning):
        assert main(["--verify", "fashion_mnist"]) == 0
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "t10k-images-idx3-ubyte" in out and "1 damaged" in out
    assert sources.md5sum(victim) == info("fashion_mnist").raw_files[2].md5  # replaced


def test_new_files_are_readable_by_other_users(empty_cache, mirror, monkeypatch):
    raw = _fill(mirror, monkeypatch)
    mode = umask_mode()
    for path in [*raw.iterdir(), splits.cache_path("fashion_mnist", "test")]:
        if not path.name.startswith("."):
            assert path.stat().st_mode & 0o777 == mode, path


def test_stale_part_files_are_removed_young_ones_kept(tmp_path):
    old, young = tmp_path / ".a.pt.123.part", tmp_path / ".b.pt.456.part"
    old.write_bytes(b"x" * 10)
    young.write_bytes(b"y")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert remove_stale_parts(tmp_path) == [old]
    assert young.exists() and not old.exists()


def test_setting_aside_a_file_another_process_already_moved_is_fine(tmp_path):
    sources.set_aside(tmp_path / "gone", "damaged")  # no FileNotFoundError


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")])
def test_a_full_disk_says_so_and_leaves_no_part_file(tmp_path, exc):
    def write(tmp):
        tmp.write_bytes(b"partial")
        raise exc

    with pytest.raises(OSError, match="disk holding .* is full .* MiB free"):
        atomic_write(tmp_path / "x.pt", write)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------- permissions (as another user)
def _as_nobody(code: str, env: dict) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as an unprivileged user")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CNNBOOK_")}
    full_env.update(env, HOME="/nonexistent", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=120, cwd="/")


@pytest.fixture
def shared_dir():
    """A folder every user can reach (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="cnnbook-perm-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


LOAD = ("from cnnbook.data import load_split\n"
        "try:\n    load_split('fashion_mnist', 'test')\n"
        "except PermissionError as e:\n    print('MESSAGE:', e)\n")


def test_another_users_unreadable_cache_is_not_taken_for_damage(shared_dir, mirror, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA_DIR", str(shared_dir / "data"))
    splits.clear_memory()
    _fill(mirror, monkeypatch)
    cache = splits.cache_path("fashion_mnist", "test")
    cache.chmod(0o600)  # root's private file
    out = _as_nobody(LOAD, {"CNNBOOK_DATA_DIR": str(shared_dir / "data"), "CNNBOOK_OFFLINE": "1"})
    assert "MESSAGE: permission denied" in out.stdout and "CNNBOOK_DATA_DIR" in out.stdout, out
    assert "Traceback" not in out.stderr, out.stderr
    assert cache.exists() and not cache.with_name(cache.name + ".corrupt").exists()
    splits.clear_memory()


@pytest.mark.parametrize("damaged", [False, True])
def test_a_read_only_data_dir_gets_a_message(shared_dir, mirror, monkeypatch, damaged):
    data = shared_dir / "data"
    raw = data / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    if damaged:
        shutil.copy(mirror / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte", raw)
        _poke(raw / "t10k-labels-idx1-ubyte", 9, 3)
        (raw / "t10k-labels-idx1-ubyte").chmod(0o644)
    for d in (raw, raw.parent, data):
        d.chmod(0o555)
    out = _as_nobody(LOAD, {"CNNBOOK_DATA_DIR": str(data),
                            "CNNBOOK_DATA_MIRROR": str(mirror), "CNNBOOK_OFFLINE": "1"})
    assert "MESSAGE: permission denied" in out.stdout, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    if damaged:
        assert (raw / "t10k-labels-idx1-ubyte").exists()  # not renamed: we may not


def test_raw_files_present_but_no_writable_cache_folder(shared_dir, mirror):
    data = shared_dir / "data"
    raw = data / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mirror / "FashionMNIST" / "raw").iterdir():
        shutil.copy(f, raw / f.name)
        (raw / f.name).chmod(0o644)
    for d in (raw, raw.parent, data):
        d.chmod(0o555)  # readable, but cache/ cannot be created
    out = _as_nobody(LOAD, {"CNNBOOK_DATA_DIR": str(data), "CNNBOOK_OFFLINE": "1"})
    assert "MESSAGE: permission denied" in out.stdout and str(data) in out.stdout, out
    assert "Traceback" not in out.stderr


def test_a_mirror_with_unreadable_files(shared_dir, mirror):
    fake = shared_dir / "mirror" / "FashionMNIST" / "raw"
    fake.mkdir(parents=True)
    for f in (mirror / "FashionMNIST" / "raw").iterdir():
        shutil.copy(f, fake / f.name)
        (fake / f.name).chmod(0o600)  # root's: unreadable to the learner
    for d in (fake, fake.parent, fake.parent.parent):
        d.chmod(0o755)
    (shared_dir / "data").mkdir(mode=0o777)
    (shared_dir / "data").chmod(0o777)
    out = _as_nobody(LOAD, {"CNNBOOK_DATA_DIR": str(shared_dir / "data"),
                            "CNNBOOK_DATA_MIRROR": str(shared_dir / "mirror"),
                            "CNNBOOK_OFFLINE": "1"})
    assert "MESSAGE: permission denied" in out.stdout and "mirror" in out.stdout, out
    assert "Traceback" not in out.stderr


def test_an_unwritable_home_fallback_gets_a_message(mirror):
    # outside a checkout (no data/README.md beside the package) the cache is ~/.cache/cnnbook,
    # and HOME is /nonexistent for the unprivileged user: copying from the mirror must explain
    code = ("import cnnbook.data.sources as s\n"
            "s.__file__ = '/nonexistent/cnnbook/data/sources.py'\n" + LOAD)
    out = _as_nobody(code, {"CNNBOOK_OFFLINE": "1", "CNNBOOK_DATA_MIRROR": str(mirror)})
    assert "MESSAGE: permission denied" in out.stdout, out
    assert "Traceback" not in out.stderr
