"""Pretrained checkpoints: hub cache, mirror (checksum-checked), one clear error offline.

No network is used: a fake checkpoint (a randomly initialised ResNet-18's state dict) is
saved under a torchvision-style name whose hash prefix is its own SHA-256, and the
weights entry's URL is pointed at that name, so torchvision's real loading code runs.
"""
import os
import hashlib
import urllib.error

import pytest
import torch
import torchvision
from torchvision.models import ResNet18_Weights

from cnnbook.files import umask_mode
from cnnbook.transfer import weights as W
from cnnbook.transfer.source import pretrained_resnet18

ENTRY = ResNet18_Weights.IMAGENET1K_V1


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("CNNBOOK_WEIGHTS_MIRROR", raising=False)
    monkeypatch.setenv("CNNBOOK_OFFLINE", "1")
    return tmp_path


def fake_checkpoint(folder, seed=0):
    """A ResNet-18 state dict saved as resnet18-<its sha256 prefix>.pth; returns (path, state)."""
    torch.manual_seed(seed)
    state = torchvision.models.resnet18().state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    path = folder / f"resnet18-{digest}.pth"
    os.replace(tmp, path)
    return path, state


def point_entry_at(monkeypatch, path):
    monkeypatch.setattr(ENTRY.value, "url", f"https://download.pytorch.org/models/{path.name}")


def test_file_name_is_torchvisions():
    assert W.file_name(ENTRY) == "resnet18-f37072fd.pth"
    assert W.hub_checkpoints_dir() == __import__("pathlib").Path(torch.hub.get_dir()) / "checkpoints"


def test_offline_without_cache_or_mirror_is_one_clear_error(env):
    with pytest.raises(W.WeightsUnavailable) as info:
        W.load_torchvision("resnet18")
    msg = str(info.value)
    assert "resnet18-f37072fd.pth" in msg
    assert str(env / "torch" / "hub" / "checkpoints") in msg          # the cache looked in
    assert "CNNBOOK_WEIGHTS_MIRROR is not set" in msg and "CNNBOOK_OFFLINE" in msg
    assert "Fix:" in msg and "get_state_dict" in msg


def test_a_failed_download_is_the_same_error(env, monkeypatch):
    monkeypatch.delenv("CNNBOOK_OFFLINE")

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route to host")
    monkeypatch.setattr(W, "_download", no_network)
    with pytest.raises(W.WeightsUnavailable, match="download: .* failed .*no route"):
        W.load_torchvision("resnet18")


def test_mirror_file_is_checked_copied_and_loaded_by_torchvision(env, monkeypatch):
    path, state = fake_checkpoint(env / "mirror")
    point_entry_at(monkeypatch, path)
    monkeypatch.setenv("CNNBOOK_WEIGHTS_MIRROR", str(env / "mirror"))
    model, where = W.load_torchvision("resnet18")
    assert where == "mirror" and isinstance(model, torchvision.models.ResNet)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    cached = env / "torch" / "hub" / "checkpoints" / path.name
    assert cached.read_bytes() == path.read_bytes()
    assert oct(cached.stat().st_mode & 0o777) == oct(umask_mode())
    assert not [p for p in cached.parent.iterdir() if p.name.endswith(".part")]
    monkeypatch.delenv("CNNBOOK_WEIGHTS_MIRROR")
    assert W.load_torchvision("resnet18")[1] == "hub cache"   # second time: no mirror needed


def test_a_mirror_file_that_fails_its_checksum_is_refused(env, monkeypatch):
    mirror = env / "mirror"
    mirror.mkdir()
    torch.save({"not": torch.zeros(1)}, mirror / "resnet18-f37072fd.pth")  # torchvision's name
    monkeypatch.setenv("CNNBOOK_WEIGHTS_MIRROR", str(mirror))
    with pytest.raises(W.WeightsUnavailable, match=r"refused: its SHA-256 starts with"):
        W.load_torchvision("resnet18")
    assert (mirror / "resnet18-f37072fd.pth").exists()   # the mirror is left alone


def test_a_damaged_cache_file_is_moved_aside_and_replaced_from_the_mirror(env, monkeypatch):
    path, _ = fake_checkpoint(env / "mirror")
    point_entry_at(monkeypatch, path)
    cache = env / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / path.name).write_bytes(path.read_bytes()[:1000])
    monkeypatch.setenv("CNNBOOK_WEIGHTS_MIRROR", str(env / "mirror"))
    with pytest.warns(UserWarning, match="moved it aside"):
        _, where = W.load_torchvision("resnet18")
    assert where == "mirror" and (cache / (path.name + ".corrupt")).exists()


def test_a_mirror_variable_naming_nothing_says_so(env, monkeypatch):
    monkeypatch.setenv("CNNBOOK_WEIGHTS_MIRROR", str(env / "nowhere"))
    with pytest.raises(W.WeightsUnavailable, match="CNNBOOK_WEIGHTS_MIRROR=.*does not exist"):
        W.load_torchvision("resnet18")


def test_pretrained_resnet18_prefers_real_weights_and_falls_back(env, monkeypatch):
    from cnnbook.transfer import source

    path, _ = fake_checkpoint(env / "mirror")
    point_entry_at(monkeypatch, path)
    monkeypatch.setenv("CNNBOOK_WEIGHTS_MIRROR", str(env / "mirror"))
    pre = pretrained_resnet18()
    assert not pre.fallback and pre.where == "mirror" and "ImageNet" in pre.description
    assert pre.mean == source.IMAGENET_MEAN

    monkeypatch.delenv("CNNBOOK_WEIGHTS_MIRROR")
    (env / "torch" / "hub" / "checkpoints" / path.name).unlink()
    tiny = torchvision.models.resnet18(num_classes=5)
    monkeypatch.setattr(source, "source_model", lambda **kw: (
        tiny, {"where": "course cache", "classes": [0, 1, 2, 3, 4], "size": 32,
               "source_acc": 0.5}))
    pre = pretrained_resnet18(fallback={"size": 32})
    assert pre.fallback and pre.model is tiny and pre.where == "course cache"
    assert path.name in pre.reason and "fallback" in pre.description
