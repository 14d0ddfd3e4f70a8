import json

import pytest
import torch
from torch import nn

from cnnbook.deploy import table as T


def _loader():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 2, (8,), generator=g))
            for _ in range(2)]


def test_accuracy_counts_correct_predictions():
    loader = _loader()
    always0 = lambda x: torch.stack([torch.ones(len(x)), torch.zeros(len(x))], 1)  # noqa: E731
    expected = sum(int((y == 0).sum()) for _, y in loader) / 16
    assert T.accuracy(always0, loader) == expected
    with pytest.raises(ValueError):
        T.accuracy(always0, [])


def test_rows_table_and_record():
    loader = _loader()
    big = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Flatten(), nn.LazyLinear(2))
    big(torch.zeros(1, 3, 8, 8))
    small = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 2))
    rows = [T.measure_row("fp32", "baseline", big, loader, input_shape=(3, 8, 8), repeats=3,
                          warmup=1, threads=1),
            T.measure_row("small", "distillation", small, loader, input_shape=(3, 8, 8),
                          repeats=3, warmup=1, threads=1, acc=0.5)]
    assert rows[1]["accuracy"] == 0.5 and rows[0]["threads"] == 1
    df = T.compression_table(rows)
    assert df.loc[0, "compression"] == 1 and df.loc[0, "speedup_b32"] == 1
    assert df.loc[1, "compression"] == pytest.approx(rows[0]["size_mb"] / rows[1]["size_mb"])
    assert df.loc[1, "compression"] > 3
    assert df.loc[1, "typical_size"] == "3-5x"
    assert df.loc[1, "acc_change_points"] == pytest.approx(100 * (0.5 - rows[0]["accuracy"]))
    rec = T.table_record(df, "smoke", 16, note="x")
    assert "chapter" not in rec and rec["device"].startswith("cpu") and rec["note"] == "x"
    assert len(rec["rows"]) == 2 and rec["rows"][1]["method"] == "small"
    json.dumps(rec)
    with pytest.raises(ValueError, match="fp32"):
        T.compression_table(rows[1:])
    with pytest.raises(TypeError):
        T.measure_row("f", "x", lambda x: x, loader)
