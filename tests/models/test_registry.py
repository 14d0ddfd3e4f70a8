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
    assert mobile["params_m"] == pytest.approx(mobile["tv_params_m"])
    assert mobile["gmacs"] == pytest.approx(mobile["tv_gmacs"], rel=0.01)


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

    r18 = get("resnet18")
    full, half = macs_at(r18, 224), macs_at(r18, 112)
    assert abs(full / 1e9 - cost_table([r18]).iloc[0]["gmacs"]) < 1e-3   # the table's count
    assert 3.5 < full / half < 4.5                       # a quarter of the pixels, about
    vit = get("vit_b_16")
    assert macs_at(vit, 112) == macs_at(vit, 224)        # ViT-B/16 keeps its 224 px
