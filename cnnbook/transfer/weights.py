"""torchvision's pretrained checkpoints, found offline first: hub cache, a mirror folder, a download.

    model = load_torchvision("resnet18", "IMAGENET1K_V1")   # = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)

torchvision downloads ``weights.url`` (e.g. ``.../resnet18-f37072fd.pth``) into the torch hub
cache (``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``) and loads it
from there afterwards. The part of the file name after the dash is the first hex digits of
the file's SHA-256, so every copy can be checked without a separate list of sums.

A classroom without internet sets ``CNNBOOK_WEIGHTS_MIRROR`` to a folder of such files (copied
once from a machine that has them, names unchanged), just like ``CNNBOOK_DATA_MIRROR`` for the
datasets: a checked copy goes into the hub cache through a temporary name, and torchvision's own
API then loads it. A damaged file in the cache is moved aside as ``*.corrupt``; one in the
mirror is reported and left alone (the mirror is often read-only). With neither, and offline
(``CNNBOOK_OFFLINE=1`` or no network), ``WeightsUnavailable`` names the file, every place looked
and the fix.
"""
from __future__ import annotations

import hashlib
import os
import re
import socket
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from cnnbook.files import atomic_copy

HASH = re.compile(r"-([a-f0-9]{6,})\.")  # torch.hub's convention: name-<sha256 prefix>.ext


class WeightsUnavailable(RuntimeError):
    """No checkpoint could be found or fetched; the message names the file, the places and the fix."""


def weights_mirror_dir() -> Path | None:
    """The folder named by ``CNNBOOK_WEIGHTS_MIRROR``, or None when unset.

    A mirror that does not exist is an error naming the variable: a typo should not look
    like "the file is not in the mirror".
    """
    env = os.environ.get("CNNBOOK_WEIGHTS_MIRROR", "").strip()
    if not env:
        return None
    path = Path(env).expanduser().resolve()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise WeightsUnavailable(f"CNNBOOK_WEIGHTS_MIRROR={env!r} {what}. Point it at the folder "
                                 "holding the checkpoint files (e.g. resnet18-f37072fd.pth), "
                                 "or unset it.")
    return path


def hub_checkpoints_dir() -> Path:
    """Where torchvision keeps downloaded checkpoints: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def get_weights(builder: str, weights: str = "IMAGENET1K_V1"):
    """torchvision's weights enum entry, e.g. ``ResNet18_Weights.IMAGENET1K_V1``."""
    import torchvision

    try:
        return torchvision.models.get_model_weights(builder)[weights]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"torchvision has no weights {weights!r} for {builder!r}") from exc


def file_name(weights) -> str:
    """The checkpoint's file name as torchvision saves it (the last part of its URL)."""
    return os.path.basename(urlparse(weights.url).path)


def sha256_prefix(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def check_file(path: Path) -> str | None:
    """None if ``path``'s SHA-256 starts with the prefix in its name, else what is wrong."""
    match = HASH.search(path.name)
    if match is None:
        return None  # a name without a hash (not torchvision's): nothing to check against
    got = sha256_prefix(path)
    if not got.startswith(match.group(1)):
        return (f"its SHA-256 starts with {got[:len(match.group(1))]}, not {match.group(1)} "
                "as its name says (truncated or a different file)")
    return None


def find_checkpoint(weights, download: bool | None = None) -> tuple[Path, str]:
    """The checked local file of ``weights`` and where it came from ("hub cache", "mirror",
    "download").

    Order: the hub cache; the mirror (copied into the cache); a download (unless
    ``download`` is False, or None and ``CNNBOOK_OFFLINE`` is on). Raises ``WeightsUnavailable``.
    """
    from cnnbook.data.sources import downloads_allowed

    name = file_name(weights)
    cache = hub_checkpoints_dir() / name
    looked = []
    if cache.is_file():
        problem = check_file(cache)
        if problem is None:
            return cache, "hub cache"
        bad = cache.with_name(cache.name + ".corrupt")
        os.replace(cache, bad)
        warnings.warn(f"{cache}: {problem}; moved it aside to {bad.name}", stacklevel=2)
        looked.append(f"hub cache: {cache} (damaged: {problem}; moved aside)")
    else:
        looked.append(f"hub cache: {cache} (absent)")
    mirror = weights_mirror_dir()
    if mirror is None:
        looked.append("no mirror (CNNBOOK_WEIGHTS_MIRROR is not set)")
    else:
        src = mirror / name
        if not src.is_file():
            looked.append(f"mirror: {src} (absent)")
        elif (problem := check_file(src)) is not None:
            looked.append(f"mirror: {src} (refused: {problem})")
        else:
            atomic_copy(src, cache)
            return cache, "mirror"
    if download is None:
        download = downloads_allowed()
    if not download:
        looked.append("download: not tried (CNNBOOK_OFFLINE is on)")
    else:
        try:
            _download(weights, cache)
            return cache, "download"
        except Exception as exc:  # no network, proxy, server error, bad hash: all end here
            looked.append(f"download: {weights.url} failed ({type(exc).__name__}: {exc})")
    raise WeightsUnavailable(
        f"the pretrained checkpoint {name} is not available. Looked in:\n"
        + "\n".join(f"  - {p}" for p in looked)
        + f"\nFix: on a machine with internet, run `python -c \"import torchvision; "
          f"torchvision.models.get_model_weights('{_builder(weights)}')."
          f"{weights.name}.get_state_dict()\"` (it saves {name} under $TORCH_HOME/hub/checkpoints), "
          f"then copy {name} into {cache.parent} here, or into a folder named by "
          "CNNBOOK_WEIGHTS_MIRROR (for a whole classroom).")


def _builder(weights) -> str:
    return type(weights).__name__.replace("_Weights", "").lower()


def _download(weights, cache: Path, timeout: float = 20.0) -> None:
    """torch.hub's download (hash-checked, to a temporary name) with a socket timeout."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # urllib has no timeout by default: offline would hang
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights.url, str(cache), HASH.search(cache.name).group(1)
                                       if HASH.search(cache.name) else None, progress=False)
    finally:
        socket.setdefaulttimeout(old)


def load_torchvision(builder: str = "resnet18", weights: str = "IMAGENET1K_V1",
                     download: bool | None = None) -> tuple[nn.Module, str]:
    """``torchvision.models.<builder>(weights=...)``, after making sure the checkpoint is local.

    Returns the model and where its checkpoint came from. torchvision's own API does the
    loading (``get_model(builder, weights=...)``), so the state dict, its keys and the
    model are exactly what the sources get with internet.
    """
    import torchvision

    entry = get_weights(builder, weights)
    _, where = find_checkpoint(entry, download=download)
    return torchvision.models.get_model(builder, weights=entry), where
