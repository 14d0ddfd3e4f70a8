"""d2l's Fashion-MNIST loader, reading the course's data folder instead of ``../data``.

``d2l.load_data_fashion_mnist`` hard-codes ``root="../data"``, relative to the working
directory: right when a notebook runs in ``notebooks/``, wrong anywhere else (nbgrader's
autograde runs each submission in its own folder, so d2l would download into, or fail
on, a fresh ``../data`` per student). ``d2l_fashion_mnist`` is the same pipeline (the
same transforms, shuffling and worker count, d2l's own ``get_dataloader_workers``) on the
raw files of ``cnnbook.data``'s cache, found wherever the notebook runs.
"""
from __future__ import annotations

import torch
import torchvision
from torchvision import transforms

from cnnbook.config import capped
from cnnbook.data.sources import data_dir

TRAIN_CH6_MIN_BATCHES = 5


def d2l_fashion_mnist(batch_size: int, resize=None):
    """(train, test) DataLoaders exactly as ``d2l.load_data_fashion_mnist`` builds them.

    In a rehearsal (``CNNBOOK_MAX_BATCHES=N``) each split is cut to its first N batches, but
    never fewer than ``TRAIN_CH6_MIN_BATCHES``: d2l's ``train_ch6`` runs its own loop, which
    nothing else would cap, and plots every ``num_batches // 5`` batches (fewer than 5 batches
    is a division by zero there).
    """
    from d2l import torch as d2l

    from cnnbook.data.splits import prepare

    prepare(["fashion_mnist"])   # the raw files in the cache (a clear error when missing)
    trans = [transforms.ToTensor()]
    if resize:
        trans.insert(0, transforms.Resize(resize))
    trans = transforms.Compose(trans)
    root = str(data_dir())
    train = torchvision.datasets.FashionMNIST(root=root, train=True, transform=trans, download=False)
    test = torchvision.datasets.FashionMNIST(root=root, train=False, transform=trans, download=False)
    workers = d2l.get_dataloader_workers()
    cap = capped(None, minimum=TRAIN_CH6_MIN_BATCHES)   # None: no rehearsal, whole splits
    if cap is not None:
        train, test = (torch.utils.data.Subset(ds, range(min(len(ds), cap * batch_size)))
                       for ds in (train, test))
    return (torch.utils.data.DataLoader(train, batch_size, shuffle=True, num_workers=workers),
            torch.utils.data.DataLoader(test, batch_size, shuffle=False, num_workers=workers))
