"""Training memory of a model: the activations autograd keeps for the backward pass.

Parameters are rarely what fills a GPU during training; the intermediate results that
backpropagation needs are. ``activation_bytes`` runs one forward pass in training mode
and adds up every distinct tensor autograd saves for the backward pass (caught with
``torch.autograd.graph.saved_tensors_hooks``): the memory a training step needs on top
of the weights, gradients and optimiser state, for a given batch size.
"""
from __future__ import annotations

import torch
from torch import nn


def activation_bytes(model: nn.Module, input_size=(1, 3, 224, 224)) -> int:
    """Bytes of the distinct tensors saved for backward in one training-mode forward pass.

    Tensors that share storage (a view, an in-place result) count once; the parameters
    themselves and the input are not counted. The model is left as it was: its mode and
    its buffers (batch-norm running statistics) are restored afterwards.
    """
    ref = next(model.parameters(), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None else torch.float32
    x = torch.randn(tuple(input_size), device=device, dtype=dtype)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    skip = params | {x.untyped_storage().data_ptr()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in skip:
            seen[ptr] = max(seen.get(ptr, 0), storage.nbytes())
        return t

    was_training = model.training
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x.requires_grad_(False))
        del out
    finally:
        model.train(was_training)
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    return sum(seen.values())
