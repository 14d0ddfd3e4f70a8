"""Looking at a model: layer-by-layer shape tables and the source of a building block."""
from __future__ import annotations

import inspect

import pandas as pd
import torch
from torch import nn


def shape_table(model: nn.Module, input_size=(1, 1, 28, 28), depth: int = 2, verbose: int = 0):
    """torchinfo's layer-by-layer table: output shape and parameters of every layer.

    Returns torchinfo's ``ModelStatistics`` (printing it shows the table); ``depth``
    controls how far into nested blocks it goes. The model is left on its device.
    """
    from torchinfo import summary

    device = next(model.parameters()).device if any(True for _ in model.parameters()) else "cpu"
    return summary(model, input_size=input_size, depth=depth, verbose=verbose, device=device,
                   col_names=("output_size", "num_params"), row_settings=("var_names",))


def layer_shapes(model: nn.Sequential, x: torch.Tensor) -> pd.DataFrame:
    """d2l's loop: push ``x`` through each top-level layer and note its output shape."""
    rows = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for name, layer in model.named_children():
            x = layer(x)
            rows.append({"layer": name, "type": type(layer).__name__,
                         "output shape": tuple(x.shape),
                         "parameters": sum(p.numel() for p in layer.parameters())})
    model.train(was_training)
    return pd.DataFrame(rows)


def show_source(obj) -> str:
    """Show the source of a function or class from ``cnnbook`` as a highlighted code block.

    Chapters use it to read the building block they are about to use, so the code lives
    in one tested place and the notebook still shows it. Returns the source text.
    """
    src = inspect.getsource(obj)
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"```python\n{src}```"))
    except ImportError:  # pragma: no cover - plain Python
        print(src)
    return src
