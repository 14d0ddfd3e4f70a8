"""d2l_fashion_mnist: d2l's loader on the course's data folder, from any working directory."""
import pytest


def test_reads_the_course_cache_from_any_folder(tmp_path, monkeypatch):
    pytest.importorskip("d2l")
    from cnnbook.data.d2l_loader import d2l_fashion_mnist
    from cnnbook.data.sources import data_dir

    if not (data_dir() / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip("Fashion-MNIST is not in the data cache (make data)")
    work = tmp_path / "autograded" / "alice"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)                 # as nbgrader runs a submission
    train, test = d2l_fashion_mnist(16)
    assert len(train.dataset) == 60_000 and len(test.dataset) == 10_000
    assert train.dataset.root == str(data_dir())
    X, y = train.dataset[0]
    assert tuple(X.shape) == (1, 28, 28) and 0.0 <= float(X.min()) <= float(X.max()) <= 1.0
    assert not (tmp_path / "autograded" / "data").exists(), "no data folder beside the submission"


def test_a_rehearsal_cuts_each_split_to_its_batches(monkeypatch):
    pytest.importorskip("d2l")
    from cnnbook.data.d2l_loader import d2l_fashion_mnist
    from cnnbook.data.sources import data_dir

    if not (data_dir() / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip("Fashion-MNIST is not in the data cache (make data)")
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "7")
    train, test = d2l_fashion_mnist(16)   # d2l's train_ch6 loops over these itself
    assert len(train) == len(test) == 7 and len(train.dataset) == len(test.dataset) == 7 * 16
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")   # train_ch6 plots every len // 5 batches
    train, test = d2l_fashion_mnist(16)
    assert len(train) == len(test) == 5 and len(train.dataset) == 5 * 16
