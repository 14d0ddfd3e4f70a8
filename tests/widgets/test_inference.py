import math

import pandas as pd
import pytest

from cnnbook.deploy.sweep import speedups
from cnnbook.widgets.inference import METRICS, InferenceExplorer, inference_view


def fake_table():
    """A sweep table with known numbers: onnxruntime twice as fast as eager at batch 8."""
    rows = []
    for t in (1, 2):
        for b in (1, 8, 64):
            for path, per_image in (("eager", 1.0), ("onnxruntime", 0.5), ("bf16", 3.0)):
                ms = per_image * b / t + (0.2 if b == 1 else 0.0)
                rows.append({"path": path, "batch_size": b, "threads": t, "median_ms": ms,
                             "throughput": b / (ms / 1000), "per_image_ms": ms / b, "load": 1.0})
    return speedups(pd.DataFrame(rows))


def test_view_is_the_table():
    v = inference_view(fake_table(), "throughput", threads=1, batch_size=8)
    assert v["best"] == "onnxruntime"
    assert v["values"]["eager"] == pytest.approx(1000.0)
    assert v["speedups"] == pytest.approx({"eager": 1.0, "onnxruntime": 2.0, "bf16": 1 / 3})
    lat = inference_view(fake_table(), "median_ms", threads=2, batch_size=64)
    assert lat["best"] == "onnxruntime" and lat["values"]["bf16"] == pytest.approx(96.0)
    assert set(lat["curves"]) == {"eager", "onnxruntime", "bf16"}
    assert list(lat["curves"]["eager"][0]) == [1, 8, 64]


def test_explorer_follows_its_controls():
    ex = InferenceExplorer(fake_table())
    assert ex.state["error"] is None and ex.state["threads"] == 2 and ex.state["batch_size"] == 64
    assert bytes(ex.image.value).startswith(b"\x89PNG")
    ex.controls["metric"].value = "per_image_ms"
    ex.controls["batch_size"].value = 1
    ex.controls["threads"].value = 1
    assert ex.state["values"]["eager"] == pytest.approx(1.2)
    assert ex.state["best"] == "onnxruntime"
    ex.controls["metric"].value = "speedup"
    assert ex.state["values"]["onnxruntime"] == pytest.approx(1.2 / 0.7)


def test_unmeasured_settings_are_messages():
    with pytest.raises(ValueError, match="not measured"):
        inference_view(fake_table(), threads=4)
    with pytest.raises(ValueError, match="batch size 3"):
        inference_view(fake_table(), batch_size=3)
    with pytest.raises(ValueError, match="unknown metric"):
        inference_view(fake_table(), "joules")
    with pytest.raises(ValueError, match="non-empty"):
        inference_view(pd.DataFrame())
    with pytest.raises(ValueError, match="lacks"):
        inference_view(fake_table().drop(columns=["speedup"]))
    no_eager = fake_table()
    no_eager = speedups(no_eager[no_eager["path"] != "eager"])
    with pytest.raises(ValueError, match="no finite"):
        inference_view(no_eager, "speedup", 1, 8)
    assert inference_view(no_eager, "throughput", 1, 8)["best"] == "onnxruntime"


def test_every_control_through_its_extremes():
    ex = InferenceExplorer(fake_table())
    for name, control in ex.controls.items():
        for value in (control.options[0], control.options[-1]):
            control.value = value
            assert not ex.state.get("unexpected"), (name, value, ex.state)
    for metric in METRICS:
        ex.controls["metric"].value = metric
        assert ex.state["error"] is None
        assert all(math.isfinite(v) for v in ex.state["values"].values())
