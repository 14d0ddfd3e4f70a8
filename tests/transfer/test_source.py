"""The fallback source model: trained once with fit, cached atomically, loaded afterwards."""
import pytest
import torch

from cnnbook.transfer import source


@pytest.fixture
def tiny_cifar(monkeypatch, tmp_path, results_dir):
    """A fake CIFAR-10 of 20 random 32x32 images per class, and an empty data cache."""
    monkeypatch.setenv("CNNBOOK_DATA_DIR", str(tmp_path / "data"))
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat(20)
    images = (torch.rand(len(labels), 3, 32, 32, generator=g) * 255).to(torch.uint8)
    import cnnbook.data as data
    monkeypatch.setattr(data, "load_split", lambda name, split="train": (images, labels))
    return tmp_path / "data"


def test_source_model_is_trained_once_and_cached(tiny_cifar, monkeypatch):
    kw = dict(size=32, limit=50, epochs=1, test_limit=25, batch_size=16, progress=False)
    model, info = source.source_model(**kw)
    assert info["where"] == "trained now" and 0.0 <= info["source_acc"] <= 1.0
    assert model.fc.out_features == len(source.SOURCE_CLASSES) and not model.training
    path = source.cache_file(32, 50, 1)
    assert path.is_file() and path.parent == tiny_cifar / "pretrained"
    assert not list(path.parent.glob(".*.part"))

    import cnnbook.train as train
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained a second time"))
    again, info2 = source.source_model(**kw)
    assert info2["where"] == "course cache" and info2["source_acc"] == info["source_acc"]
    for (k, v), v2 in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(v, v2), k


def test_a_rehearsal_trains_its_own_source_file(tiny_cifar, monkeypatch):
    """The fallback a rehearsal trains (capped loops) is cached apart from the real one."""
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES", raising=False)
    real = source.cache_file(96, None, 15)
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "4")
    rehearsal = source.cache_file(96, None, 15)
    assert rehearsal != real and rehearsal.parent == real.parent
    assert rehearsal.name.endswith("_rehearsal-2x4.pt") and "rehearsal" not in real.name


def test_a_damaged_cache_is_retrained_with_a_warning(tiny_cifar):
    kw = dict(size=32, limit=50, epochs=1, test_limit=25, batch_size=16, progress=False)
    path = source.cache_file(32, 50, 1)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    with pytest.warns(UserWarning, match="could not be loaded"):
        _, info = source.source_model(**kw)
    assert info["where"] == "trained now"


def test_source_and_target_classes_are_disjoint_halves_of_cifar10():
    assert sorted(source.SOURCE_CLASSES + source.TARGET_CLASSES) == list(range(10))
