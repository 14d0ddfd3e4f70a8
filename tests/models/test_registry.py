import math

import pandas as pd
import pytest
import torch
import torchvision

from cnnbook.models.registry import (ARCHITECTURES, MAKE_BOOK, Architecture, chapter_architectures,
                                     cost_table, fashion_table, get, input_at, latency_table,
                                     torchvision_meta)
from cnnbook.profiling import count_macs, count_params

META = torch.device("meta")  # shapes only: counts without memory or initialisation
WITH_TV = [a for a in ARCHITECTURES if a.torchvision]
# torchvision's GoogLeNet without weights builds its two auxiliary heads unless told not to
TV_KWARGS = {"googlenet": dict(aux_logits=False, init_weights=True)}


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: a.key)
def test_every_entry_builds_and_classifies(arch):
    with META:
        model = arch.build()
        out = model.eval()(torch.zeros(arch.input_size))
    classes = 1000 if arch.input_size[1] == 3 else 10
    assert out.shape == (1, classes)
    assert arch.year >= 1989 and len(arch.chapter) == 2 and arch.paper and arch.idea


@pytest.mark.parametrize("arch", WITH_TV, ids=lambda a: a.key)
def test_course_parameters_equal_torchvisions(arch):
    with META:
        ours = count_params(arch.build())
        theirs = count_params(torchvision.models.get_model(
            arch.torchvision, weights=None, **TV_KWARGS.get(arch.torchvision, {})))
    assert ours == theirs == arch.published()["params"]


@pytest.mark.parametrize("arch", WITH_TV, ids=lambda a: a.key)
def test_course_macs_within_one_percent_of_torchvisions_ops(arch):
    with META:
        model = arch.build()
    published = arch.published()["gmacs"]
    assert count_macs(model, arch.input_size) / 1e9 == pytest.approx(published, rel=0.01)


def test_keys_are_unique_and_every_part_ii_chapter_has_its_record():
    keys = [a.key for a in ARCHITECTURES]
    assert len(set(keys)) == len(keys)
    main = {(a.chapter, a.record) for a in chapter_architectures()}
    assert main == {("05", "lenet5"), ("06", "alexnet"), ("07", "vgg11"), ("08", "nin"),
                    ("09", "googlenet"), ("10", "bn_lenet"), ("11", "resnet18"),
                    ("12", "densenet"), ("13", "mobilenet_v2")}
    assert [a.chapter for a in chapter_architectures()] == sorted(a.chapter for a in chapter_architectures())
    assert get("resnet18").name == "ResNet-18"
    # chapter 23's networks are rows of their own, with no Fashion-MNIST record
    assert [(a.key, a.year) for a in ARCHITECTURES if a.chapter == "23"] == [
        ("vit_b_16", 2020), ("convnext_tiny", 2022)]
    assert get("vit_b_16").record is None and get("convnext_tiny").record is None
    with pytest.raises(KeyError, match="known"):
        get("transformer")


def test_torchvision_meta_reads_the_weights_metadata_without_download():
    meta = torchvision_meta("resnet18")
    assert meta["acc1"] == pytest.approx(69.758) and meta["params"] == 11_689_512
    assert meta["gmacs"] == pytest.approx(1.814) and "resnet18" in meta["weights"]
    assert get("nin").published() is None  # torchvision has no NiN


def test_cost_table_puts_ours_next_to_torchvisions():
    table = cost_table([get("lenet5"), get("mobilenet_v2")])
    lenet, mobile = table.iloc[0], table.iloc[1]
    assert lenet["params_m"] * 1e6 == pytest.approx(61_706) and math.isnan(lenet["acc1"])
    assert lenet["input"] == "1x28x28" and mobile["input"] == "3x224x224"
    # torchvision's documented MobileNet V2 (IMAGENET1K_V1): 3,504,872 parameters,
    # 0.301 GFLOPS (multiply-adds), 71.878 / 90.286 % top-1 / top-5
    assert mobile["params_m"] == mobile["tv_params_m"] == pytest.approx(3.504872, rel=1e-12)
    assert mobile["gmacs"] == pytest.approx(0.301, rel=0.01) and mobile["tv_gmacs"] == 0.301
    assert (mobile["acc1"], mobile["acc5"]) == (71.878, 90.286)
    assert lenet["params_m"] == pytest.approx(0.061706, rel=1e-12)   # in millions


def test_input_at_scales_only_imagenet_networks():
    assert input_at(get("resnet18"), 112, 64) == (64, 3, 112, 112)
    assert input_at(get("lenet5"), 112, 64) == (64, 1, 28, 28)
    assert input_at(get("convnext_tiny"), 112, 64) == (64, 3, 112, 112)
    assert input_at(get("vit_b_16"), 112, 64) == (64, 3, 224, 224)


def test_only_the_vit_has_a_fixed_input_and_it_really_refuses_other_sizes():
    assert [a.key for a in ARCHITECTURES if a.fixed_input] == ["vit_b_16"]
    with META:
        vit, convnext = get("vit_b_16").build(), get("convnext_tiny").build()
        assert convnext(torch.zeros(1, 3, 112, 112)).shape == (1, 1000)
        with pytest.raises(ValueError, match="224"):
            vit(torch.zeros(1, 3, 112, 112))


def test_vit_macs_count_the_attention_products():
    """The counter sees q k^T and the weights times v (2 N^2 d per block), fused or not:
    without them ViT-B/16 would cost 16.85 G, 4% below torchvision's 17.56."""
    n, d, mlp, depth = 197, 768, 3072, 12          # 196 patches + the class token
    attention = 2 * n * n * d
    hand = (196 * 768 * (3 * 16 * 16) + depth * (n * d * 3 * d + attention + n * d * d
                                                  + 2 * n * d * mlp) + d * 1000)
    assert cost_table([get("vit_b_16")]).iloc[0]["gmacs"] * 1e9 == pytest.approx(hand, rel=1e-12)
    with META:  # the notebook's own count: fused attention on the meta device
        fused = get("vit_b_16").build()
    assert count_macs(fused, (1, 3, 224, 224)) == hand
    assert (hand - depth * attention) / 1e9 < 0.97 * get("vit_b_16").published()["gmacs"]


def test_latency_table_times_each_network():
    table = latency_table([get("lenet5"), get("bn_lenet")], batch_size=4, repeats=2)
    assert list(table["architecture"]) == ["LeNet-5", "BN-LeNet"]
    assert (table["ms"] > 0).all() and (table["batch"] == 4).all()
    assert table["ms_per_image"].tolist() == pytest.approx((table["ms"] / 4).tolist())


def test_fashion_table_reads_records_and_says_how_to_make_missing_ones():
    records = pd.DataFrame([
        {"chapter": "05", "name": "lenet5", "profile": "cpu", "test_acc": 0.81, "seconds": 90.0,
         "epochs": 10, "params": 61706, "examples_per_sec": 5000.0, "source": "published"},
        {"chapter": "11", "name": "resnet18", "profile": "smoke", "test_acc": 0.5, "seconds": 6.0,
         "epochs": 1, "params": 1000, "examples_per_sec": 100.0, "source": "local",
         "recipe": "laptop"},
        {"chapter": "05", "name": "lenet5_modern", "profile": "cpu", "test_acc": 0.9,
         "seconds": 1.0, "epochs": 1, "params": 1, "examples_per_sec": 1.0, "source": "local"},
    ])
    table = fashion_table(records, "cpu").set_index("record")
    assert len(table) == len(chapter_architectures())
    assert table.loc["lenet5", "test_acc"] == 0.81 and table.loc["lenet5", "minutes"] == 1.5
    assert table.loc["lenet5", "source"] == "published" and table.loc["lenet5", "note"] == ""
    assert table.loc["lenet5", "architecture"] == "LeNet-5"
    assert table.loc["lenet5", "d2l_acc"] == 0.776 and table.loc["lenet5", "recipe"] == "d2l"
    assert math.isnan(table.loc["mobilenet_v2", "d2l_acc"])   # d2l has no MobileNet chapter
    assert table.loc["densenet", "architecture"].startswith("DenseNet (d2l")
    assert math.isnan(table.loc["resnet18", "test_acc"])  # a smoke record is not a cpu one
    assert MAKE_BOOK.format(profile="cpu") in table.loc["resnet18", "note"]
    smoke = fashion_table(records, "smoke").set_index("record")
    assert smoke.loc["resnet18", "test_acc"] == 0.5 and smoke.loc["resnet18", "recipe"] == "laptop"
    empty = fashion_table(pd.DataFrame(), "cpu")
    assert (empty["source"] == "missing").all() and empty["test_acc"].isna().all()


def test_an_architecture_is_a_plain_record():
    arch = Architecture("tiny", "Tiny", 2024, "99", "nobody", "nothing", lambda: torch.nn.Flatten())
    assert arch.published() is None and arch.record is None


def test_latency_table_against_a_model_of_known_cost():
    """A network that sleeps 2 ms per image: 4 images take >= 8 ms, at most 500 images/s."""
    import time

    class Sleeper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            time.sleep(0.002 * x.shape[0])
            return x.flatten(1)[:, :10] + self.w

    arch = Architecture("sleeper", "Sleeper", 2024, "99", "nobody", "sleeps", Sleeper,
                        input_size=(1, 1, 28, 28))
    row = latency_table([arch], batch_size=4, repeats=2, warmup=0).iloc[0]
    assert row["input"] == "4x1x28x28" and row["batch"] == 4
    # lower bounds only: a loaded machine may add any delay to a sleep, never remove one
    assert 8.0 <= row["ms"] and 2.0 <= row["ms_per_image"] == pytest.approx(row["ms"] / 4)
    assert row["images_per_s"] <= 500 and row["images_per_s"] == pytest.approx(
        1000 / row["ms_per_image"])   # images, not batches, per second


def test_macs_at_a_side_scales_with_the_pixels_and_keeps_fixed_inputs():
    from cnnbook.models.registry import macs_at

    from torch.utils.flop_counter import FlopCounterMode

    def torch_macs(side):   # PyTorch's own counter on torchvision's ResNet-18: 2 FLOPs a MAC
        with META:
            model = torchvision.models.resnet18().eval()
            with FlopCounterMode(display=False) as counter:
                model(torch.zeros(1, 3, side, side))
        return counter.get_total_flops() // 2

    r18 = get("resnet18")
    full, half = macs_at(r18, 224), macs_at(r18, 112)
    assert full == torch_macs(224) and half == torch_macs(112)
    assert full / 1e9 == pytest.approx(1.814, abs=5e-4)  # torchvision's documented GFLOPS
    vit = get("vit_b_16")
    assert macs_at(vit, 112) == macs_at(vit, 224)        # ViT-B/16 keeps its 224 px


# --- fashion_table: every field of a found record, and the missing ones ------------------
FASHION_COLUMNS = ["chapter", "architecture", "record", "d2l_acc", "test_acc", "minutes",
                   "epochs", "params", "examples_per_sec", "recipe", "source", "note"]


def test_fashion_table_copies_epochs_params_and_throughput_of_the_chosen_archs():
    records = pd.DataFrame([   # alexnet's record says where it came from, lenet5's does not
        {"chapter": "05", "name": "lenet5", "test_acc": 0.8, "seconds": 30.0, "epochs": 7,
         "params": 61706, "examples_per_sec": 4321.0},
        {"chapter": "06", "name": "alexnet", "test_acc": 0.9, "seconds": 600.0, "epochs": 3,
         "params": 46_787_978, "examples_per_sec": 12.5, "source": "published"},
    ])
    table = fashion_table(records, archs=[get("alexnet"), get("lenet5")])
    assert list(table.columns) == FASHION_COLUMNS
    assert table["chapter"].tolist() == ["06", "05"] and table["record"].tolist() == [
        "alexnet", "lenet5"]
    alex, lenet = table.iloc[0], table.iloc[1]
    assert (lenet["epochs"], lenet["params"], lenet["examples_per_sec"]) == (7, 61706, 4321.0)
    assert (alex["epochs"], alex["params"], alex["examples_per_sec"]) == (3, 46_787_978, 12.5)
    assert alex["minutes"] == 10.0 and alex["source"] == "published"
    assert lenet["source"] == "local"   # NaN in the column (no source given): a local run


def test_fashion_table_a_record_with_only_chapter_and_name_is_found_with_nan_fields():
    records = pd.DataFrame([{"chapter": "05", "name": "lenet5"}])   # and no profile column
    row = fashion_table(records, archs=[get("lenet5")]).iloc[0]
    assert row["source"] == "local" and row["note"] == "" and row["recipe"] == "d2l"
    for field in ["test_acc", "minutes", "epochs", "params", "examples_per_sec"]:
        assert isinstance(row[field], float) and math.isnan(row[field]), field


def test_fashion_table_without_usable_records_lists_every_chapter_as_missing():
    n = len(chapter_architectures())
    for records in [None, pd.DataFrame([{"test_acc": 0.9}])]:   # none; no chapter/name
        table = fashion_table(records)
        assert len(table) == n and (table["source"] == "missing").all()
    empty = fashion_table(pd.DataFrame())
    assert list(empty.columns) == FASHION_COLUMNS and (empty["recipe"] == "").all()
    for field in ["test_acc", "minutes", "epochs", "params", "examples_per_sec"]:
        assert empty[field].dtype == "float64" and empty[field].isna().all(), field


def test_fashion_table_reads_the_cpu_profile_by_default():
    records = pd.DataFrame([
        {"chapter": "05", "name": "lenet5", "profile": "cpu", "test_acc": 0.8},
        {"chapter": "06", "name": "alexnet", "profile": "smoke", "test_acc": 0.3},
    ])
    table = fashion_table(records).set_index("record")
    assert table.loc["lenet5", "test_acc"] == 0.8 and math.isnan(table.loc["alexnet", "test_acc"])
    assert table.loc["alexnet", "note"].startswith("no cpu record: run `make book PROFILE=cpu`")


# --- latency_table: what it passes to latency_ms, seen by a probe network ----------------
class _Probe(torch.nn.Module):
    """Records the shape and device of every batch it is given."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen
        self.w = torch.nn.Parameter(torch.zeros(10))

    def forward(self, x):
        self.seen.append((tuple(x.shape), x.device.type))
        return x.flatten(1)[:, :10] + self.w


def _probe_arch(seen):
    return Architecture("probe", "Probe", 2024, "99", "nobody", "counts its calls",
                        lambda: _Probe(seen))   # ImageNet-size input: 1 x 3 x 224 x 224


@pytest.fixture
def no_rehearsal(monkeypatch):
    for var in ["CNNBOOK_MAX_BATCHES", "CNNBOOK_MAX_BATCH_SIZE"]:
        monkeypatch.delenv(var, raising=False)


def test_latency_table_defaults_one_224px_image_five_timed_passes_after_one_warmup(no_rehearsal):
    seen = []
    row = latency_table([_probe_arch(seen)]).iloc[0]
    assert seen == [((1, 3, 224, 224), "cpu")] * 6      # 1 warm-up + 5 timed passes
    assert row["input"] == "1x3x224x224" and row["batch"] == 1
    assert row["p90_ms"] >= row["ms"] > 0


def test_latency_table_passes_side_batch_repeats_warmup_and_device(no_rehearsal):
    seen = []
    row = latency_table([_probe_arch(seen)], side=32, batch_size=2, repeats=2, warmup=0,
                        device="meta").iloc[0]
    assert seen == [((2, 3, 32, 32), "meta")] * 2
    assert row["input"] == "2x3x32x32" and row["batch"] == 2
    seen.clear()
    latency_table([_probe_arch(seen)], side=32, repeats=1, warmup=3)
    assert len(seen) == 4


def test_latency_table_times_the_whole_registry_by_default(monkeypatch, no_rehearsal):
    import cnnbook.models.registry as registry

    seen = []
    monkeypatch.setattr(registry, "ARCHITECTURES", (_probe_arch(seen),))
    table = latency_table(repeats=1, warmup=0)
    assert table["architecture"].tolist() == ["Probe"] and len(seen) == 1


# --- cost_table's columns, defaults and input shapes --------------------------------------
def test_cost_table_columns_and_nan_where_torchvision_has_no_such_network():
    table = cost_table([get("lenet5")])
    assert list(table.columns) == ["architecture", "year", "chapter", "input", "params_m",
                                   "gmacs", "tv_params_m", "tv_gmacs", "acc1", "acc5"]
    row = table.iloc[0]
    assert (row["architecture"], row["year"], row["chapter"]) == ("LeNet-5", 1998, "05")
    for column in ["tv_params_m", "tv_gmacs", "acc1", "acc5"]:   # NaN, not None
        assert isinstance(row[column], float) and math.isnan(row[column]), column


def test_cost_table_names_a_non_square_input_as_it_is():
    arch = Architecture("wide", "Wide", 2024, "99", "nobody", "a 2 x 3 input",
                        lambda: torch.nn.Flatten(), input_size=(1, 1, 2, 3))
    row = cost_table([arch]).iloc[0]
    assert row["input"] == "1x2x3" and row["params_m"] == 0 and row["gmacs"] == 0


def test_cost_table_covers_the_whole_registry_by_default(monkeypatch):
    import cnnbook.models.registry as registry

    monkeypatch.setattr(registry, "ARCHITECTURES", (get("lenet5"), get("bn_lenet")))
    assert cost_table()["architecture"].tolist() == ["LeNet-5", "BN-LeNet"]


# --- torchvision's metadata: which weights, every field ------------------------------------
def test_published_reads_the_weights_the_entry_names_and_imagenet1k_v1_by_default():
    def arch(weights):
        return Architecture("r50", "ResNet-50", 2015, "11", "He et al.", "bottlenecks",
                            lambda: None, torchvision="resnet50", weights=weights)

    # torchvision's documented ResNet-50 top-1: 76.130 (V1 weights), 80.858 (V2 weights)
    assert arch("IMAGENET1K_V2").published()["acc1"] == 80.858
    assert arch(None).published()["acc1"] == 76.13
    assert arch("IMAGENET1K_V1").published()["weights"] == "resnet50: IMAGENET1K_V1"


def test_torchvision_meta_gives_top5_and_the_training_recipe():
    meta = torchvision_meta("resnet18")
    assert meta["acc5"] == 89.078   # torchvision's documented ResNet-18 top-5
    assert meta["recipe"] == ("https://github.com/pytorch/vision/tree/main/references/"
                              "classification#resnet")


def test_get_lists_the_known_keys_when_asked_for_an_unknown_one():
    with pytest.raises(KeyError, match="no architecture 'lenet'; known: lenet5, alexnet, vgg11, "):
        get("lenet")
