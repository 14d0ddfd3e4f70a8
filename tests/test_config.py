import random

import numpy as np
import pytest
import torch

from cnnbook import config


def test_active_profile_reads_environment(monkeypatch):
    monkeypatch.setenv("CNNBOOK_PROFILE", "smoke")
    assert config.active_profile() == "smoke"
    monkeypatch.setenv("CNNBOOK_PROFILE", "FULL")
    assert config.active_profile() == "full"
    monkeypatch.delenv("CNNBOOK_PROFILE")
    assert config.active_profile() == config.DEFAULT_PROFILE
    monkeypatch.setenv("CNNBOOK_PROFILE", "turbo")
    with pytest.raises(ValueError, match="turbo"):
        config.active_profile()


def test_pick_and_settings():
    assert config.pick("cpu", smoke=1, cpu=2, full=3) == 2
    with pytest.raises(TypeError, match="full"):
        config.pick("cpu", smoke=1, cpu=2)
    knobs = {"smoke": {"epochs": 1}, "cpu": {"epochs": 4}, "full": {"epochs": 10}}
    cfg = config.settings("full", knobs)
    assert cfg.epochs == 10 and cfg.profile == "full"
    with pytest.raises(ValueError, match="same knobs"):
        config.settings("cpu", {"smoke": {"a": 1}, "cpu": {"b": 1}, "full": {"a": 1}})
    with pytest.raises(ValueError, match="no entry"):
        config.settings("cpu", {"smoke": {}, "cpu": {}})


def test_get_device(monkeypatch):
    monkeypatch.delenv("CNNBOOK_DEVICE", raising=False)
    dev = config.get_device()
    assert dev.type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        assert dev.type != "cuda"
        with pytest.raises(RuntimeError, match="CUDA"):
            config.get_device("cuda")
    assert config.get_device("cpu").type == "cpu"
    monkeypatch.setenv("CNNBOOK_DEVICE", "cpu")
    assert config.get_device().type == "cpu"
    assert "cpu" in config.describe_device(torch.device("cpu"))


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    config.seed_everything(7)
    a = draw()
    config.seed_everything(7)
    assert draw() == a
    config.seed_everything(8)
    assert draw() != a
