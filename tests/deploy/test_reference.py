import pytest
import torch

from cnnbook.deploy import reference as R

TINY = dict(depth=8, limit=40, test_limit=20, epochs=1, batch_size=20, lr=0.05)


def test_settings_per_profile_and_overrides():
    for profile in ("smoke", "cpu", "full"):
        assert set(R.reference_settings(profile)) == set(R.REFERENCE_KNOBS["cpu"])
    assert R.reference_settings("smoke", epochs=3)["epochs"] == 3
    with pytest.raises(TypeError, match="unknown reference setting"):
        R.reference_settings("smoke", widht=3)
    with pytest.raises(ValueError):
        R.reference_settings("fast")


def test_cache_path_depends_on_every_setting(tmp_path):
    base = R.reference_settings("smoke")
    paths = {R.cache_path(base, tmp_path)}
    for key, value in [("epochs", 2), ("lr", 0.01), ("seed", 1), ("limit", 100), ("depth", 32)]:
        paths.add(R.cache_path({**base, key: value}, tmp_path))
    assert len(paths) == 6
    assert R.cache_path(base, tmp_path) == R.cache_path(dict(base), tmp_path)


def test_a_rehearsal_never_shares_the_real_runs_cache_file(tmp_path, monkeypatch):
    """A model trained on a rehearsal's capped loops must not be loaded by a real run."""
    settings = R.reference_settings("full")
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES", raising=False)
    real = R.cache_path(settings, tmp_path)
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "8")
    rehearsal_8 = R.cache_path(settings, tmp_path)
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "4")
    rehearsal_4 = R.cache_path(settings, tmp_path)
    assert len({real, rehearsal_8, rehearsal_4}) == 3
    assert "rehearsal" in rehearsal_4.name and "rehearsal" not in real.name
    assert real.parent == rehearsal_4.parent == tmp_path


def test_trains_once_then_loads_the_same_weights(mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("CNNBOOK_RESULTS_DIR", str(tmp_path / "results"))
    first = R.reference_model("smoke", folder=tmp_path / "models", progress=False, **TINY)
    assert first.trained and first.path.exists() and first.path.parent == tmp_path / "models"
    assert not first.model.training and next(first.model.parameters()).device.type == "cpu"
    assert first.test_iter.num_examples == 20 and 0 <= first.test_acc <= 1
    assert len(first.history) == 1
    assert not list((tmp_path / "models").glob(".*.part"))   # written atomically
    second = R.reference_model("smoke", folder=tmp_path / "models", progress=False, **TINY)
    assert not second.trained and second.test_acc == first.test_acc
    for (k, a), (_, b) in zip(first.model.state_dict().items(),
                              second.model.state_dict().items()):
        assert torch.equal(a, b), k
    x = next(iter(second.test_iter))[0][:4]
    assert torch.allclose(first.model(x), second.model(x))


def test_a_damaged_cache_file_is_replaced(mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNBOOK_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("CNNBOOK_RESULTS_DIR", str(tmp_path / "results"))
    path = R.cache_path(R.reference_settings("smoke", **TINY), tmp_path)
    path.write_bytes(b"not a checkpoint")
    ref = R.reference_model("smoke", folder=tmp_path, progress=False, **TINY)
    assert ref.trained and ref.path == path and path.stat().st_size > 1000
