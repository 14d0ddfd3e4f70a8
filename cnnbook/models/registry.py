"""Every architecture of the course in one table, for the comparison of chapter 14.

One ``Architecture`` row per network (Part II's CNNs, and chapter 23's ViT-B/16 and
ConvNeXt-T): its name, year, chapter, paper, what it added, the
name of its chapter's Fashion-MNIST result record, and a builder for its ImageNet-size
configuration taken from the course's own modules (3 x 224 x 224 in, 1,000 classes out;
LeNet-5 and BN-LeNet have no ImageNet version and keep their 28 x 28 grey input; ViT-B/16
takes only 224 px images, its position embeddings being learned for 14 x 14 patches). Where
torchvision ships the same network, ``torchvision`` and ``weights`` name its builder and
weights enum, whose metadata (ImageNet top-1 / top-5 accuracy, multiply-adds, parameters)
is read without downloading anything. ``cost_table`` and ``fashion_table`` turn the
registry into the chapter's two tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from cnnbook.models.alexnet import alexnet
from cnnbook.models.batchnorm import bn_lenet
from cnnbook.models.convnext import convnext_tiny
from cnnbook.models.densenet import densenet121
from cnnbook.models.googlenet import googlenet_torchvision
from cnnbook.models.lenet import lenet5
from cnnbook.models.mobilenet import mobilenet_v2, mobilenet_v3_large
from cnnbook.models.nin import nin
from cnnbook.models.resnet import resnet18, resnet50
from cnnbook.models.vgg import vgg11, vgg16
from cnnbook.models.vit import vit_b_16

__all__ = ["Architecture", "ARCHITECTURES", "IMAGENET_INPUT", "MAKE_BOOK", "get", "input_at",
           "chapter_architectures", "torchvision_meta", "cost_table", "macs_at", "latency_table",
           "fashion_table"]

IMAGENET_INPUT = (1, 3, 224, 224)
FASHION_INPUT = (1, 1, 28, 28)
MAKE_BOOK = "make book PROFILE={profile}"


@dataclass(frozen=True)
class Architecture:
    """One network of the course: history, chapter, builder and torchvision counterpart.

    ``record`` is the name the chapter's main Fashion-MNIST run passes to ``fit`` (None
    for variants that the chapter only measures, such as VGG-16); ``record_model`` names
    the network that run trains when it is not a narrower copy of this one.
    ``fixed_input`` marks a network that accepts only ``input_size`` (ViT: one learned
    position embedding per patch of a 224 px image); ``input_at`` then keeps that size.
    """

    key: str
    name: str
    year: int
    chapter: str
    paper: str
    idea: str
    build: Callable[[], nn.Module]
    input_size: tuple = IMAGENET_INPUT
    record: str | None = None
    torchvision: str | None = None
    weights: str | None = None
    record_model: str | None = None
    fixed_input: bool = False

    def published(self) -> dict | None:
        """torchvision's ImageNet numbers for this network (None if torchvision lacks it)."""
        if self.torchvision is None:
            return None
        return torchvision_meta(self.torchvision, self.weights or "IMAGENET1K_V1")


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("lenet5", "LeNet-5", 1998, "05",
                 "LeCun, Bottou, Bengio & Haffner, Proc. IEEE 1998",
                 "convolution, pooling and weight sharing, trained end to end by backprop",
                 lenet5, FASHION_INPUT, record="lenet5"),
    Architecture("alexnet", "AlexNet", 2012, "06",
                 "Krizhevsky, Sutskever & Hinton, NeurIPS 2012",
                 "depth on GPUs: ReLU, dropout, data augmentation, a million images",
                 alexnet, record="alexnet", torchvision="alexnet", weights="IMAGENET1K_V1"),
    Architecture("vgg11", "VGG-11", 2014, "07",
                 "Simonyan & Zisserman, ICLR 2015 (arXiv 2014)",
                 "regular blocks of 3x3 convolutions: depth as the design knob",
                 vgg11, record="vgg11", torchvision="vgg11", weights="IMAGENET1K_V1"),
    Architecture("vgg16", "VGG-16", 2014, "07",
                 "Simonyan & Zisserman, ICLR 2015 (arXiv 2014)",
                 "configuration D: five more 3x3 layers than VGG-11",
                 vgg16, torchvision="vgg16", weights="IMAGENET1K_V1"),
    Architecture("nin", "NiN", 2013, "08",
                 "Lin, Chen & Yan, ICLR 2014 (arXiv 2013)",
                 "1x1 convolutions as per-pixel MLPs; global average pooling instead of FC layers",
                 nin, record="nin"),
    Architecture("googlenet", "GoogLeNet", 2014, "09",
                 "Szegedy et al., CVPR 2015 (arXiv 2014)",
                 "width: parallel paths of several kernel sizes, cheapened by 1x1 reductions",
                 googlenet_torchvision, record="googlenet", torchvision="googlenet",
                 weights="IMAGENET1K_V1"),
    Architecture("bn_lenet", "BN-LeNet", 2015, "10",
                 "Ioffe & Szegedy, ICML 2015",
                 "batch normalisation: a stable scale for every layer, higher learning rates",
                 lambda: bn_lenet(norm="torch"), FASHION_INPUT, record="bn_lenet"),
    Architecture("resnet18", "ResNet-18", 2015, "11",
                 "He, Zhang, Ren & Sun, CVPR 2016 (arXiv 2015)",
                 "depth made trainable by residual (identity) shortcuts",
                 resnet18, record="resnet18", torchvision="resnet18", weights="IMAGENET1K_V1"),
    Architecture("resnet50", "ResNet-50", 2015, "11",
                 "He, Zhang, Ren & Sun, CVPR 2016 (arXiv 2015)",
                 "bottleneck blocks (1x1 -> 3x3 -> 1x1) for deeper, cheaper ResNets",
                 resnet50, torchvision="resnet50", weights="IMAGENET1K_V1"),
    Architecture("densenet121", "DenseNet-121", 2016, "12",
                 "Huang, Liu, van der Maaten & Weinberger, CVPR 2017 (arXiv 2016)",
                 "feature reuse: every layer sees all earlier maps, concatenated",
                 densenet121, record="densenet", torchvision="densenet121",
                 weights="IMAGENET1K_V1", record_model="DenseNet (d2l: 4 blocks of 4 layers)"),
    Architecture("mobilenet_v2", "MobileNet V2", 2018, "13",
                 "Sandler, Howard, Zhu, Zhmoginov & Chen, CVPR 2018",
                 "efficiency: depthwise separable convs in inverted residual blocks",
                 mobilenet_v2, record="mobilenet_v2", torchvision="mobilenet_v2",
                 weights="IMAGENET1K_V1"),
    Architecture("mobilenet_v3_large", "MobileNet V3-Large", 2019, "13",
                 "Howard et al., ICCV 2019",
                 "blocks found by architecture search; hard-swish; squeeze-and-excitation",
                 mobilenet_v3_large, torchvision="mobilenet_v3_large", weights="IMAGENET1K_V1"),
    Architecture("vit_b_16", "ViT-B/16", 2020, "23",
                 "Dosovitskiy et al., ICLR 2021 (arXiv 2020)",
                 "no convolutions: 16x16 patches as the tokens of a Transformer, whose "
                 "attention learns from data what a CNN builds in",
                 vit_b_16, torchvision="vit_b_16", weights="IMAGENET1K_V1", fixed_input=True),
    Architecture("convnext_tiny", "ConvNeXt-T", 2022, "23",
                 "Liu, Mao, Wu, Feichtenhofer, Darrell & Xie, CVPR 2022",
                 "a ResNet modernised with the Transformer's choices: patchify stem, 7x7 "
                 "depthwise convs, LayerNorm, inverted bottlenecks, GELU",
                 convnext_tiny, torchvision="convnext_tiny", weights="IMAGENET1K_V1"),
)


def get(key: str) -> Architecture:
    """The registry entry called ``key`` (e.g. ``"resnet18"``)."""
    for arch in ARCHITECTURES:
        if arch.key == key:
            return arch
    raise KeyError(f"no architecture {key!r}; known: {', '.join(a.key for a in ARCHITECTURES)}")


def chapter_architectures() -> list[Architecture]:
    """The main network of each Part II chapter (the ones with a Fashion-MNIST record), in order."""
    return sorted((a for a in ARCHITECTURES if a.record), key=lambda a: a.chapter)


def torchvision_meta(builder: str, weights: str = "IMAGENET1K_V1") -> dict:
    """ImageNet-1K top-1/top-5 accuracy (%), GMACs, parameters and recipe of a torchvision
    weights entry, read from its metadata (nothing is downloaded).

    torchvision calls the multiply-adds ``_ops`` and shows them as "GFLOPS"; they are MACs.
    """
    import torchvision

    meta = torchvision.models.get_model_weights(builder)[weights].meta
    metrics = meta["_metrics"]["ImageNet-1K"]
    return {"acc1": metrics["acc@1"], "acc5": metrics["acc@5"], "gmacs": meta["_ops"],
            "params": meta["num_params"], "recipe": meta.get("recipe", ""),
            "weights": f"{builder}: {weights}"}


def _cost(arch: Architecture, side: int | None = None) -> tuple[int, int]:
    """Parameters and multiply-adds of the registry configuration (one image at ``side`` px,
    see ``input_at``; default: its ``input_size``), on the meta device.

    A ViT computes its attention with the written-out matrix products here: the counter
    cannot see inside PyTorch's fused attention kernel on a CPU, and counts the same
    multiply-adds in either form where it can (on the meta device: tested).
    """
    from cnnbook.profiling import count_macs, count_params

    with torch.device("meta"):
        model = arch.build()
    if hasattr(model, "set_fused_attention"):
        model.set_fused_attention(False)
    shape = arch.input_size if side is None else input_at(arch, side)
    return count_params(model), count_macs(model, shape)


def macs_at(arch: Architecture, side: int) -> int:
    """Multiply-adds of one image at ``side`` px (28 px networks and ViT-B/16 keep their own
    size), counted as ``cost_table`` counts them."""
    return _cost(arch, side)[1]


def cost_table(archs: Sequence[Architecture] | None = None):
    """Our parameters and MACs per image next to torchvision's published numbers.

    One row per architecture: ``params`` and ``gmacs`` measured on the course's model (on
    the meta device: shapes only, no memory), ``tv_params``, ``tv_gmacs``, ``acc1``,
    ``acc5`` from torchvision's weights metadata (NaN where torchvision has no such model).
    """
    import pandas as pd

    rows = []
    for arch in archs if archs is not None else ARCHITECTURES:
        params, macs = _cost(arch)
        pub = arch.published() or {}
        rows.append({"architecture": arch.name, "year": arch.year, "chapter": arch.chapter,
                     "input": "x".join(map(str, arch.input_size[1:])),
                     "params_m": params / 1e6, "gmacs": macs / 1e9,
                     "tv_params_m": pub.get("params", math.nan) / 1e6,
                     "tv_gmacs": pub.get("gmacs", math.nan),
                     "acc1": pub.get("acc1", math.nan), "acc5": pub.get("acc5", math.nan)})
    return pd.DataFrame(rows)


def input_at(arch: Architecture, side: int, batch_size: int = 1) -> tuple:
    """The architecture's input shape at ``side`` pixels (28 px networks and those with a
    ``fixed_input``, ViT-B/16, keep their own size)."""
    _, c, h, _ = arch.input_size
    keep = arch.fixed_input or h != IMAGENET_INPUT[-1]
    return (batch_size, c) + ((h, h) if keep else (side, side))


def latency_table(archs: Sequence[Architecture] | None = None, side: int = 224,
                  batch_size: int = 1, repeats: int = 5, warmup: int = 1, device=None):
    """CPU (or ``device``) forward time of each architecture, freshly built, in eval mode.

    One row per network: input shape, median and 90th-percentile milliseconds per batch,
    milliseconds per image and images per second (``cnnbook.profiling.latency_ms``).
    ImageNet networks run at ``side`` px; LeNet-5 and BN-LeNet at their own 28 px, ViT-B/16
    at its own 224 px (``input_at``).
    """
    import pandas as pd

    from cnnbook.profiling import latency_ms

    rows = []
    for arch in archs if archs is not None else ARCHITECTURES:
        size = input_at(arch, side, batch_size)
        model = arch.build()
        t = latency_ms(model, size, repeats=repeats, warmup=warmup, device=device)
        del model
        rows.append({"architecture": arch.name, "input": "x".join(map(str, size)),
                     "batch": batch_size, "ms": t["median"], "p90_ms": t["p90"],
                     "ms_per_image": t["per_image"], "images_per_s": 1000 / t["per_image"]})
    return pd.DataFrame(rows)


def fashion_table(records, profile: str = "cpu", archs: Sequence[Architecture] | None = None):
    """One row per chapter: its main Fashion-MNIST run read from ``records`` (the DataFrame
    of ``cnnbook.results.collect``), or, when the record is missing, NaN and a note saying
    how to produce it. Never invents a number. ``d2l_acc`` is d2l's published GPU accuracy
    for the same network (``cnnbook.results.D2L_FASHION_MNIST``; NaN where d2l has none) and
    ``recipe`` the training recipe the record names ("d2l" for records that predate it).
    """
    import pandas as pd

    from cnnbook.results import D2L_FASHION_MNIST

    archs = list(archs) if archs is not None else chapter_architectures()
    have = {}
    if records is not None and len(records) and {"chapter", "name"} <= set(records.columns):
        rows = records
        if "profile" in records.columns:
            rows = records[records["profile"].isna() | (records["profile"] == profile)]
        for _, r in rows.iterrows():
            have[(str(r["chapter"]), str(r["name"]))] = r
    out = []
    for arch in archs:
        r = have.get((arch.chapter, arch.record))
        row = {"chapter": arch.chapter, "architecture": arch.record_model or arch.name,
               "record": arch.record,
               "d2l_acc": D2L_FASHION_MNIST.get(arch.record, (math.nan, ""))[0]
               if arch.record != "mobilenet_v2" else math.nan}   # its row is a target only
        if r is None:
            row.update(test_acc=math.nan, minutes=math.nan, epochs=math.nan, params=math.nan,
                       examples_per_sec=math.nan, recipe="", source="missing",
                       note=f"no {profile} record: run `{MAKE_BOOK.format(profile=profile)}` "
                            f"(or chapter {arch.chapter} in the {profile} profile)")
        else:
            row.update(test_acc=float(r.get("test_acc", math.nan)),
                       minutes=float(r.get("seconds", math.nan)) / 60,
                       epochs=r.get("epochs", math.nan), params=r.get("params", math.nan),
                       examples_per_sec=float(r.get("examples_per_sec", math.nan)),
                       recipe=r.get("recipe") if isinstance(r.get("recipe"), str) else "d2l",
                       source=r.get("source", "local") if isinstance(r.get("source"), str)
                       else "local", note="")
        out.append(row)
    return pd.DataFrame(out)
