"""Where data comes from: cache, mirror, download; offline errors; damaged files."""
import os
import shutil
import urllib.error

import pytest
import torch

from cnnbook.data import DatasetUnavailable, load_split, sources, splits
from cnnbook.data.catalog import info


def _copy_raw(mirror, cache, folder="FashionMNIST"):
    dst = cache / folder / "raw"
    dst.mkdir(parents=True)
    for f in (mirror / folder / "raw").iterdir():
        shutil.copy(f, dst / f.name)
    return dst


def test_offline_without_data_names_places_and_fix(empty_cache):
    with pytest.raises(DatasetUnavailable) as err:
        load_split("fashion_mnist", "train")
    msg = str(err.value)
    assert "Fashion-MNIST is not available" in msg
    assert str(empty_cache / "FashionMNIST" / "raw") in msg  # the cache it looked in
    assert "CNNBOOK_DATA_MIRROR is not set" in msg
    assert "make data" in msg
    assert "Traceback" not in msg


def test_failed_download_is_reported_not_raised_raw(empty_cache, monkeypatch):
    monkeypatch.delenv("CNNBOOK_OFFLINE")

    def no_network(ds, raw):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(sources, "_download_mnist", no_network)
    with pytest.raises(DatasetUnavailable) as err:
        load_split("mnist", "test")
    assert "download failed: URLError" in str(err.value)
    assert "torchvision download" in str(err.value)


def test_mirror_fills_the_cache(empty_cache, mirror, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    images, labels = load_split("mnist", "test")
    assert images.shape == (10_000, 1, 28, 28)
    raw = empty_cache / "MNIST" / "raw"
    files = sorted(p.name for p in raw.iterdir() if not p.name.startswith("."))
    assert files == sorted(f.name for f in info("mnist").raw_files)
    stamps = sorted(p.name for p in raw.glob(".*.md5"))  # each copied file's verified MD5
    assert stamps == sorted(f".{f.name}.md5" for f in info("mnist").raw_files)
    assert (empty_cache / "cache" / "mnist-test.pt").exists()
    assert not list(raw.glob(".*.part"))  # no temporary files left behind


def test_cache_is_used_without_mirror(empty_cache, mirror):
    _copy_raw(mirror, empty_cache)
    images, _ = load_split("fashion_mnist", "test")  # no mirror, offline: cache only
    assert len(images) == 10_000


def test_truncated_cache_file_is_detected_and_set_aside(empty_cache, mirror):
    raw = _copy_raw(mirror, empty_cache)
    victim = raw / "t10k-images-idx3-ubyte"
    with open(victim, "r+b") as f:
        f.truncate(1_000_000)
    with pytest.warns(UserWarning, match="truncated"), pytest.raises(DatasetUnavailable) as err:
        load_split("fashion_mnist", "test")
    assert "truncated" in str(err.value)
    assert (raw / "t10k-images-idx3-ubyte.corrupt").exists()  # kept, not deleted


def test_truncated_file_is_replaced_from_mirror(empty_cache, mirror, monkeypatch):
    raw = _copy_raw(mirror, empty_cache)
    with open(raw / "train-labels-idx1-ubyte", "r+b") as f:
        f.truncate(100)
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    with pytest.warns(UserWarning, match="truncated"):
        _, labels = load_split("fashion_mnist", "train")
    assert len(labels) == 60_000


def test_corrupt_mirror_file_is_reported(empty_cache, mirror, tmp_path, monkeypatch):
    fake = tmp_path / "mirror"
    shutil.copytree(mirror / "MNIST", fake / "MNIST")
    os.chmod(fake / "MNIST" / "raw", 0o755)
    target = fake / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    os.chmod(target, 0o644)
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF  # same size, one flipped byte: only the MD5 can tell
    target.write_bytes(bytes(data))
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(fake))
    with pytest.raises(DatasetUnavailable, match="wrong MD5"):
        load_split("mnist", "test")


def test_damaged_tensor_cache_is_rebuilt(empty_cache, mirror, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    first, _ = load_split("mnist", "test")
    path = splits.cache_path("mnist", "test")
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    splits.clear_memory()
    with pytest.warns(UserWarning, match="damaged"):
        again, _ = load_split("mnist", "test")
    assert torch.equal(first, again)
    assert path.exists() and path.with_name(path.name + ".corrupt").exists()


def test_check_cifar_tar_detects_truncation(mirror, tmp_path):
    part = tmp_path / "cifar10-jpg.tar"
    with open(mirror / "cifar10-jpg.tar", "rb") as src, open(part, "wb") as dst:
        dst.write(src.read(5_000_000))
    with pytest.raises(sources.DatasetCorrupt):
        sources.check_cifar_tar(part)


def test_atomic_copy_leaves_no_partial_file(tmp_path, monkeypatch):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)

    def explode(a, b):
        with open(b, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    import cnnbook.files

    monkeypatch.setattr(cnnbook.files.shutil, "copyfile", explode)
    with pytest.raises(KeyboardInterrupt):
        sources.atomic_copy(src, tmp_path / "out" / "dst.bin")
    assert list((tmp_path / "out").iterdir()) == []


def test_data_dir_and_mirror_come_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBOOK_DATA_DIR", str(tmp_path))
    (tmp_path / "m").mkdir()
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(tmp_path / "m"))
    assert sources.data_dir() == tmp_path.resolve()
    assert sources.mirror_dir() == (tmp_path / "m").resolve()
    monkeypatch.delenv("CNNBOOK_DATA_MIRROR")
    assert sources.mirror_dir() is None


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_split("imagenet")
    with pytest.raises(ValueError, match="split"):
        load_split("mnist", "val")


def test_blank_data_dir_is_an_error_not_a_folder_of_spaces(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNBOOK_DATA_DIR", "   ")
    with pytest.raises(ValueError, match="CNNBOOK_DATA_DIR is set but blank"):
        sources.data_dir()
    assert list(tmp_path.iterdir()) == []


def test_data_dir_naming_a_file_is_an_error(monkeypatch, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    monkeypatch.setenv("CNNBOOK_DATA_DIR", str(f))
    with pytest.raises(ValueError, match="names a file, not a folder"):
        sources.data_dir()


def test_missing_mirror_folder_is_named(empty_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(tmp_path / "no-such-mirror"))
    with pytest.raises(DatasetUnavailable, match="CNNBOOK_DATA_MIRROR=.*does not exist"):
        load_split("mnist", "test")


@pytest.mark.parametrize("word", ["on", "ON", "Yes", "true", "1"])
def test_offline_switch_accepts_the_usual_words(empty_cache, monkeypatch, word):
    monkeypatch.setenv("CNNBOOK_OFFLINE", word)

    def must_not_download(ds, raw):
        raise AssertionError("downloaded although CNNBOOK_OFFLINE is on")

    monkeypatch.setattr(sources, "_download_mnist", must_not_download)
    with pytest.raises(DatasetUnavailable, match="CNNBOOK_OFFLINE is set"):
        load_split("mnist", "test")


def test_cli_unknown_dataset_lists_the_datasets(capsys):
    from cnnbook.data.__main__ import main

    assert main(["imagenet"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset(s): imagenet" in err
    assert "fashion_mnist" in err and "cifar10" in err and "Traceback" not in err
