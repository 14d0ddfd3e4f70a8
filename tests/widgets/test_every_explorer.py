"""Every Explorer, every control, through its extremes: a picture or a message, never an exception.

The explorers are found by importing every module of ``cnnbook.widgets``; one that cannot be
built without arguments needs an entry in FACTORIES below, so a new explorer is never left out.
Each control is set to its extreme values (slider ends; 0, huge, NaN and inf for number
boxes; empty and garbled text; every option of a menu) one at a time, then put back.
"""
from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import warnings

import ipywidgets as widgets
import pytest
import torch

import cnnbook.widgets
from cnnbook.widgets.base import Explorer


def _small_resnet():
    from cnnbook.models.cifar_resnet import cifar_resnet
    torch.manual_seed(0)
    return cifar_resnet(8, width_mult=0.5).eval()


def _small_googlenet():
    from cnnbook.models.googlenet import googlenet_fashion
    torch.manual_seed(0)
    return googlenet_fashion(0.125, small_input=True).eval()


def _small_vit():
    from cnnbook.models.vit import VisionTransformer
    torch.manual_seed(0)
    return VisionTransformer(image_size=16, patch_size=4, dim=16, depth=2, heads=2, mlp_dim=32,
                             num_classes=4).eval()


# explorers that need arguments (or would be slow at their defaults): how to build a small one
FACTORIES: dict[str, callable] = {
    "AttentionExplorer": lambda cls: cls(_small_vit(), torch.rand(2, 3, 16, 16),
                                         class_names=[str(i) for i in range(4)]),
    "AugmentationExplorer": lambda cls: cls(n_images=2, rows=1),
    "BatchStatsExplorer": lambda cls: cls({"conv": torch.rand(40, 3, 5, 5),
                                           "fc": torch.rand(40, 6)}, n_batches=20),
    "ChannelMixerExplorer": lambda cls: cls(size=24),
    "DescentExplorer": lambda cls: cls([[1.0, 0.1], [0.1, 0.1]], [1.0, -0.5]),
    "FeatureMapExplorer": lambda cls: _feature_map_explorer(cls),
    "GaborExplorer": lambda cls: cls(size=48),
    "GradCAMExplorer": lambda cls: cls(_small_resnet(), torch.rand(2, 3, 32, 32),
                                       class_names=[str(i) for i in range(10)]),
    "InceptionExplorer": lambda cls: cls(_small_googlenet(), torch.rand(2, 1, 28, 28),
                                         labels=[0, 1], class_names=[str(i) for i in range(10)]),
    "KernelEditor": lambda cls: cls(size=48),
    "MultiplierExplorer": lambda cls: cls(alpha=0.25, resolution=32, alphas=(0.25, 0.5),
                                          resolutions=(32, 64), repeats=1),
    "TradeoffExplorer": lambda cls: _tradeoff_explorer(cls),
    "TransferCurveExplorer": lambda cls: cls(_transfer_table()),
    "InferenceExplorer": lambda cls: cls(_sweep_table()),
    "QuantizationExplorer": lambda cls: cls(_small_resnet()),
}


def _sweep_table():
    """Two inference paths measured at two batch sizes and two thread counts."""
    import pandas as pd

    from cnnbook.deploy.sweep import speedups

    rows = [{"path": path, "batch_size": b, "threads": t, "median_ms": per * b / t,
             "throughput": b / (per * b / t / 1000), "per_image_ms": per / t, "load": 1.0}
            for t in (1, 2) for b in (1, 8) for path, per in (("eager", 1.0), ("onnxruntime", 0.5))]
    return speedups(pd.DataFrame(rows))


def _tradeoff_explorer(cls):
    """Two small tables, one row with a missing value (TradeoffExplorer's input)."""
    import pandas as pd

    a = pd.DataFrame({"architecture": ["a", "b", "c"], "gmacs": [1.0, 4.0, float("nan")],
                      "acc1": [70.0, 75.0, 80.0], "ms": [2.0, 5.0, 9.0]})
    b = pd.DataFrame({"architecture": ["d", "e"], "minutes": [3.0, 1.0], "acc1": [0.9, 0.8]})
    return cls({"one": a, "two": b}, better={"gmacs": "lower", "ms": "lower",
                                             "minutes": "lower", "acc1": "higher"})


def _feature_map_explorer(cls):
    """An untrained LeNet-5 on 20 random grey images (the explorer needs a model and data)."""
    import torch

    from cnnbook.models.lenet import lenet5

    torch.manual_seed(0)
    images = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8)
    return cls(lenet5(), images, labels=torch.arange(20) % 10,
               class_names=[f"class {i}" for i in range(10)])


def _transfer_table():
    """Two methods' measured accuracies at two label budgets (TransferCurveExplorer's input)."""
    from cnnbook.transfer.curves import label_table

    return label_table([{"method": m, "per_class": n, "acc": a + (0.2 if n == 100 else 0.0)}
                        for m, a in (("fine-tune", 0.5), ("scratch", 0.2)) for n in (10, 100)])


def explorer_classes() -> list[type]:
    found = {}
    for mod in pkgutil.iter_modules(cnnbook.widgets.__path__):
        module = importlib.import_module(f"cnnbook.widgets.{mod.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Explorer) and obj is not Explorer and obj.__module__ == module.__name__:
                found[obj.__name__] = obj
    return [found[k] for k in sorted(found)]


def build(cls):
    if cls.__name__ in FACTORIES:
        return FACTORIES[cls.__name__](cls)
    required = [p for p in inspect.signature(cls).parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        pytest.fail(f"{cls.__name__} needs arguments {[p.name for p in required]}: add a "
                    "small instance to FACTORIES in this test")
    return cls()


def extremes(control) -> list:
    """The values a learner can give this control, the awkward ones first."""
    if isinstance(control, (widgets.IntSlider, widgets.FloatSlider, widgets.IntRangeSlider,
                            widgets.FloatRangeSlider, widgets.FloatLogSlider)):
        if isinstance(control, (widgets.IntRangeSlider, widgets.FloatRangeSlider)):
            return [(control.min, control.min), (control.max, control.max),
                    (control.min, control.max)]
        return [control.min, control.max]
    if isinstance(control, (widgets.BoundedIntText, widgets.BoundedFloatText)):
        return [control.min, control.max]
    if isinstance(control, widgets.IntText):
        return [0, -1, 10**9, -(10**9)]
    if isinstance(control, widgets.FloatText):
        return [0.0, -1e308, 1e308, math.nan, math.inf, -math.inf]
    if isinstance(control, (widgets.Textarea, widgets.Text)):
        return ["", "   ", "abc", "1e39", "0,5 0,5", "nan", "1/0", "9 " * 400]
    if isinstance(control, widgets.SelectMultiple):
        return [(), tuple(control.options[:1]), tuple(control.options)]
    if isinstance(control, (widgets.Dropdown, widgets.RadioButtons, widgets.Select,
                            widgets.ToggleButtons, widgets.SelectionSlider)):
        values = [o[1] if isinstance(o, tuple) else o for o in control.options]
        return values
    if isinstance(control, (widgets.Checkbox, widgets.ToggleButton)):
        return [True, False]
    if isinstance(control, widgets.FileUpload):
        return []  # driven by its own explorer's tests with real and broken files
    pytest.fail(f"no extremes defined for {type(control).__name__}: add them to this test")


@pytest.mark.parametrize("cls", explorer_classes(), ids=lambda c: c.__name__)
def test_every_control_at_its_extremes_draws_or_explains(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the base class warns on a bug
        explorer = build(cls)
        assert explorer.state.get("error") is None, explorer.state
        for name, control in explorer.controls.items():
            start = control.value
            for value in extremes(control):
                before = explorer.renders
                try:
                    control.value = value
                except Exception as exc:  # the control itself refused the value (a trait error)
                    if type(exc).__name__ != "TraitError":
                        raise
                    continue
                state = explorer.state
                assert not state.get("unexpected"), f"{cls.__name__}.{name}={value!r}: {state}"
                if state.get("error"):
                    assert explorer.message.value and len(state["error"]) > 10
                elif control.value != start:
                    assert explorer.renders > before, f"{name}={value!r} drew nothing"
            control.value = start
        assert not explorer.state.get("unexpected")


def test_the_safety_net_reports_a_bug_without_raising():
    class Broken(Explorer):
        def __init__(self):
            super().__init__({"n": widgets.IntSlider(value=1, min=0, max=2)})

        def compute(self, n):
            if n == 2:
                raise ZeroDivisionError("planted")
            import matplotlib.pyplot as plt
            return plt.figure(), {"n": n}

    e = Broken()
    assert e.state["error"] is None and e.renders == 1
    with pytest.warns(RuntimeWarning, match="planted"):
        e.controls["n"].value = 2
    assert e.state["unexpected"] is True and "ZeroDivisionError" in e.state["error"]
    e.controls["n"].value = 0
    assert e.state["error"] is None and e.renders == 2
