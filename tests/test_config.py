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


@pytest.mark.parametrize("raw", ["CPU", " cpu", "cpu\n", "Cpu "])
def test_device_names_forgive_case_and_spaces(monkeypatch, raw):
    monkeypatch.setenv("CNNBOOK_DEVICE", raw)
    assert config.get_device() == torch.device("cpu")


@pytest.mark.parametrize("raw", ["nonsense", "gpu", "cpu:x"])
def test_bad_device_names_the_variable_and_the_choices(monkeypatch, raw):
    monkeypatch.setenv("CNNBOOK_DEVICE", raw)
    with pytest.raises(ValueError) as info:
        config.get_device()
    message = str(info.value)
    assert "CNNBOOK_DEVICE" in message and "cpu" in message and "cuda" in message and "mps" in message


def test_missing_cuda_names_the_variable(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv("CNNBOOK_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CNNBOOK_DEVICE"):
        config.get_device()


@pytest.mark.parametrize("raw,expected", [("CPU", "cpu"), (" smoke ", "smoke"), ("Full", "full")])
def test_profiles_normalised_alike_from_environment_and_papermill(monkeypatch, raw, expected):
    monkeypatch.setenv("CNNBOOK_PROFILE", raw)
    assert config.active_profile() == expected
    knobs = {"smoke": {"e": 1}, "cpu": {"e": 2}, "full": {"e": 3}}
    assert config.settings(raw, knobs).profile == expected  # papermill's -p PROFILE CPU
    assert config.pick(raw, smoke=1, cpu=2, full=3) == {"smoke": 1, "cpu": 2, "full": 3}[expected]


def test_unknown_profile_is_named_with_its_source(monkeypatch):
    monkeypatch.setenv("CNNBOOK_PROFILE", "turbo")
    with pytest.raises(ValueError, match="CNNBOOK_PROFILE.*turbo.*smoke, cpu, full"):
        config.active_profile()
    with pytest.raises(ValueError, match="PROFILE='gpu'"):
        config.settings("gpu", {"smoke": {}, "cpu": {}, "full": {}})


@pytest.mark.parametrize("raw,expected", [("on", True), ("ON", True), (" yes", True), ("1", True),
                                          ("true", True), ("y", True), ("off", False), ("0", False),
                                          ("", False), ("No", False)])
def test_env_flag_accepts_the_usual_words(monkeypatch, raw, expected):
    monkeypatch.setenv("CNNBOOK_OFFLINE", raw)
    assert config.env_flag("CNNBOOK_OFFLINE") is expected


def test_env_flag_rejects_a_typo(monkeypatch):
    monkeypatch.setenv("CNNBOOK_OFFLINE", "onn")
    with pytest.raises(ValueError, match="CNNBOOK_OFFLINE='onn'"):
        config.env_flag("CNNBOOK_OFFLINE")


def test_rehearsal_cap_reads_environment(monkeypatch):
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES", raising=False)
    assert config.max_batches() is None and not config.rehearsing()
    assert config.capped(50) == 50 and config.capped(None) is None
    assert config.claims_checked("cpu") and config.claims_checked(" FULL ")
    assert not config.claims_checked("smoke")
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", " 2 ")
    assert config.max_batches() == 2 and config.rehearsing()
    assert (config.capped(50), config.capped(1), config.capped(0), config.capped(None)) == (2, 1, 0, 2)
    assert config.capped(50, minimum=5) == 5 and config.capped(3, minimum=0) == 2
    assert not config.claims_checked("full") and not config.claims_checked("cpu")
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("CNNBOOK_MAX_BATCHES", bad)
        with pytest.raises(ValueError, match="CNNBOOK_MAX_BATCHES"):
            config.max_batches()


def test_rehearsal_batch_size_reads_environment(monkeypatch):
    monkeypatch.delenv("CNNBOOK_MAX_BATCH_SIZE", raising=False)
    assert config.max_batch_size() is None and config.capped_batch(128) == 128
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", " 8 ")
    assert config.max_batch_size() == 8
    assert (config.capped_batch(128), config.capped_batch(8), config.capped_batch(3)) == (8, 8, 3)
    for bad in ("0", "eight", "-8"):
        monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", bad)
        with pytest.raises(ValueError, match="CNNBOOK_MAX_BATCH_SIZE"):
            config.max_batch_size()


def test_rehearsal_tag_names_both_caps(monkeypatch):
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES", raising=False)
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "8")   # a batch cap alone is no rehearsal
    assert config.rehearsal_tag() == ""
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    assert config.rehearsal_tag() == "rehearsal-2x8"
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "4")
    assert config.rehearsal_tag() == "rehearsal-2x4"
    monkeypatch.delenv("CNNBOOK_MAX_BATCH_SIZE")
    assert config.rehearsal_tag() == "rehearsal-2xall"


def test_rehearsal_batches_cuts_the_count_and_each_batch(monkeypatch):
    batches = [(torch.arange(i, i + 4), torch.arange(i, i + 4) % 3) for i in range(0, 20, 4)]
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES", raising=False)
    monkeypatch.delenv("CNNBOOK_MAX_BATCH_SIZE", raising=False)
    assert config.rehearsal_batches(batches) is batches
    monkeypatch.setenv("CNNBOOK_MAX_BATCHES", "2")
    assert [x.tolist() for x, _ in config.rehearsal_batches(batches)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    monkeypatch.setenv("CNNBOOK_MAX_BATCH_SIZE", "3")
    cut = list(config.rehearsal_batches(batches))
    assert [x.tolist() for x, _ in cut] == [[0, 1, 2], [4, 5, 6]]
    assert [y.tolist() for _, y in cut] == [[0, 1, 2], [1, 2, 0]]   # labels stay with images
    monkeypatch.delenv("CNNBOOK_MAX_BATCHES")
    assert len(list(config.rehearsal_batches(batches))) == 5
