"""The ImageFolder path and the course's tensor path give the same bytes; extraction is atomic."""
import io
import os
import tarfile

import pytest
import torch
from torchvision.io import encode_jpeg

from cnnbook.data import DatasetUnavailable, image_folder, load_split, splits
from cnnbook.data.catalog import CIFAR_TAR, info
from cnnbook.data.sources import DatasetCorrupt

CLASSES = info("cifar10").classes


def make_tar(path, per_class=(3, 2), classes=CLASSES, seed=0):
    """A small tar with the mirror's layout: cifar10-jpg/{train,test}/<class>/NNNN.jpg."""
    g = torch.Generator().manual_seed(seed)
    with tarfile.open(path, "w") as tar:
        for split, n in zip(("test", "train"), per_class):
            for c in classes:
                for k in range(n):
                    img = (torch.rand(3, 32, 32, generator=g) * 255).to(torch.uint8)
                    data = encode_jpeg(img, quality=90).numpy().tobytes()
                    info_ = tarfile.TarInfo(f"cifar10-jpg/{split}/{c}/{k:04d}.jpg")
                    info_.size = len(data)
                    tar.addfile(info_, io.BytesIO(data))
    return path


def test_folder_and_tensor_paths_agree_on_a_small_tar(tmp_path):
    tar = make_tar(tmp_path / CIFAR_TAR)
    for split in ("test", "train"):
        ds = image_folder.cifar10_image_folder(split, root=tmp_path / "tree", tar=tar)
        assert ds.classes == list(CLASSES) and len(ds) == 10 * (3 if split == "test" else 2)
        images, labels = image_folder.folder_tensors(ds)
        course_images, course_labels = splits._decode_cifar_tar(tar, split)
        idx = image_folder.course_indices(ds, course_labels)
        assert torch.equal(course_labels[idx], labels)
        assert torch.equal(course_images[idx], images)


def test_extraction_is_atomic_and_reused(tmp_path, monkeypatch):
    tar = make_tar(tmp_path / CIFAR_TAR)
    root = tmp_path / "tree"
    folder = image_folder.extract_split("test", tar=tar, root=root)
    assert folder == root / "test" and (folder / image_folder.MARKER).read_text() == "30\n"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == list(CLASSES)
    assert [p.name for p in root.iterdir()] == ["test"]  # no temporary folder left behind
    assert oct(folder.stat().st_mode & 0o777) == oct(0o777 & ~_umask())

    def no_reading(*a, **k):
        raise AssertionError("the tar was opened again")
    monkeypatch.setattr(tarfile, "open", no_reading)
    stamp = folder.stat().st_mtime_ns
    assert image_folder.extract_split("test", tar=tar, root=root) == folder
    assert folder.stat().st_mtime_ns == stamp


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_interrupted_extraction_leaves_no_finished_looking_folder(tmp_path, monkeypatch):
    tar = make_tar(tmp_path / CIFAR_TAR)
    root = tmp_path / "tree"

    def fail(self, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(tarfile.TarFile, "extractall", fail)
    with pytest.raises(KeyboardInterrupt):
        image_folder.extract_split("test", tar=tar, root=root)
    assert list(root.iterdir()) == []
    monkeypatch.undo()
    assert (image_folder.extract_split("test", tar=tar, root=root) / "cat" / "0001.jpg").is_file()


def test_incomplete_folder_is_set_aside(tmp_path):
    tar = make_tar(tmp_path / CIFAR_TAR)
    root = tmp_path / "tree"
    (root / "train" / "cat").mkdir(parents=True)
    with pytest.warns(UserWarning, match="incomplete"):
        folder = image_folder.extract_split("train", tar=tar, root=root)
    assert (root / "train.incomplete").is_dir() and (folder / image_folder.MARKER).is_file()


def test_missing_tar_gets_a_clear_message(empty_cache):
    with pytest.raises(DatasetUnavailable) as err:
        image_folder.extract_split("test")
    msg = str(err.value)
    assert CIFAR_TAR in msg and str(empty_cache) in msg and "CNNBOOK_DATA_MIRROR" in msg


def test_tar_is_found_in_the_mirror(empty_cache, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_tar(mirror / CIFAR_TAR)
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    assert image_folder.cifar10_tar() == mirror / CIFAR_TAR
    ds = image_folder.cifar10_image_folder("test")
    assert len(ds) == 30 and ds.classes == list(CLASSES)
    assert (empty_cache / image_folder.FOLDER / "test").is_dir()


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="split must be"):
        image_folder.extract_split("valid", root=tmp_path)
    odd = make_tar(tmp_path / "odd.tar", classes=("cat", "dog"))
    with pytest.raises(DatasetCorrupt, match="class folders"):
        image_folder.cifar10_image_folder("test", root=tmp_path / "tree", tar=odd)
    empty = tmp_path / "empty.tar"
    tarfile.open(empty, "w").close()
    with pytest.raises(DatasetCorrupt, match="no cifar10-jpg/train"):
        image_folder.extract_split("train", tar=empty, root=tmp_path / "tree2")


def test_real_cifar10_both_paths_give_identical_tensors():
    """The real data: 200 test images spread over all classes, compared byte for byte."""
    try:
        course_images, course_labels = load_split("cifar10", "test")
        ds = image_folder.cifar10_image_folder("test")
    except DatasetUnavailable as exc:
        pytest.skip(f"CIFAR-10 not available here: {exc}")
    assert len(ds) == 10_000
    idx = image_folder.course_indices(ds, course_labels)
    pick = torch.arange(0, 10_000, 50)  # every 50th file: 20 per class
    images, labels = image_folder.folder_tensors(ds, pick)
    assert torch.equal(labels, course_labels[idx[pick]])
    assert torch.equal(images, course_images[idx[pick]])
    assert torch.equal(idx, torch.arange(10_000))  # the two orders are in fact the same


# ------------------------------------------------------------- load_image_folder (chapter 19)
def make_folder(root, classes=("cats", "dogs"), per_split=(3, 2), size=(40, 30)):
    from PIL import Image

    g = torch.Generator().manual_seed(1)
    for split, n in zip(("train", "val"), per_split):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                arr = (torch.rand(size[1], size[0], 3, generator=g) * 255).to(torch.uint8).numpy()
                Image.fromarray(arr).save(root / split / c / f"{k}.png")
    return root


def test_load_image_folder_reads_classes_and_resizes(tmp_path):
    from cnnbook.data import load_image_folder

    root = make_folder(tmp_path / "photos")
    data = load_image_folder(root, size=16)
    assert data.classes == ["cats", "dogs"] and data.skipped == []
    images, labels = data.train
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1] and data.val[1].tolist() == [0, 0, 1, 1]
    assert data.files["train"][3].endswith("dogs/0.png")
    assert data.counts().loc["dogs", "val"] == 2
    train_iter, val_iter = data.loaders(batch_size=4, device="cpu")
    assert sum(len(y) for _, y in train_iter) == 6 and len(val_iter) == 1


def test_bad_files_are_named_skipped_and_warned_about(tmp_path):
    from cnnbook.data import load_image_folder

    root = make_folder(tmp_path / "photos")
    (root / "train" / "cats" / "notes.jpg").write_text("not a photo")
    good = (root / "train" / "dogs" / "0.png").read_bytes()
    (root / "train" / "dogs" / "cut.png").write_bytes(good[:len(good) // 2])
    (root / "train" / "dogs" / "empty.jpg").write_bytes(b"")
    (root / "train" / "cats" / "list.csv").write_text("a,b\n")
    (root / "train" / "birds").mkdir()
    (root / "train" / "stray.jpg").write_bytes(good)
    (root / "val" / "fish").mkdir()
    (root / "val" / "fish" / "0.png").write_bytes(good)
    (root / "train" / "cats" / ".DS_Store").write_text("mac")
    with pytest.warns(UserWarning, match=r"7 item\(s\) skipped") as rec:
        data = load_image_folder(root, size=8)
    text = str(rec[0].message)
    for name in ("notes.jpg", "cut.png", "empty.jpg", "list.csv", "birds", "stray.jpg", "fish"):
        assert name in text
    assert ".DS_Store" not in text
    reasons = dict((p.split("/")[-1], why) for p, why in data.skipped)
    assert "empty file" in reasons["empty.jpg"] and "not an image file" in reasons["list.csv"]
    assert "no usable image" in reasons["birds"] and "not in train/" in reasons["fish"]
    assert data.classes == ["cats", "dogs"] and len(data.train[1]) == 6   # the good ones, all
    for _ in data.loaders(batch_size=2, device="cpu")[0]:                  # a whole epoch runs
        pass


def test_missing_folders_and_empty_trees_are_clear_errors(tmp_path):
    from cnnbook.data import load_image_folder

    with pytest.raises(FileNotFoundError, match="train/<class>/<images>"):
        load_image_folder(tmp_path / "nothing")
    (tmp_path / "t" / "train" / "a").mkdir(parents=True)
    (tmp_path / "t" / "val").mkdir()
    with pytest.raises(ValueError, match="no class folder with a usable"):
        load_image_folder(tmp_path / "t")
    with pytest.raises(ValueError, match="size"):
        load_image_folder(tmp_path / "t", size=0)


def test_build_demo_folder_arranges_a_new_task_with_planted_accidents(tmp_path):
    from cnnbook.data import build_demo_folder, load_image_folder

    source = tmp_path / "cifar"
    for c in ("airplane", "bird", "ship"):
        (source / c).mkdir(parents=True)
        for k in range(4):
            img = (torch.rand(3, 32, 32) * 255).to(torch.uint8)
            (source / c / f"{k:04d}.jpg").write_bytes(encode_jpeg(img).numpy().tobytes())
    groups = {"flies": ("airplane", "bird"), "floats": ("ship",)}
    root = build_demo_folder(tmp_path / "moves", 2, 1, source=source, groups=groups)
    assert (root / image_folder.MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    with pytest.warns(UserWarning, match="skipped"):
        data = load_image_folder(root, size=8)
    assert data.classes == ["flies", "floats"] and data.counts()["val"].tolist() == [1, 1]
    assert len(data.skipped) == 4 and any(p.endswith("swims") for p, _ in data.skipped)
    assert build_demo_folder(tmp_path / "moves", 2, 1, source=source, groups=groups) == root
