"""Cold start: how long a fresh process takes from nothing to its first prediction.

A server that scales to zero, a command-line tool, a serverless function: each starts a new
process for (almost) every request, and what it pays before the first answer is not the
steady-state latency of a warmed-up benchmark but

    interpreter start + imports + loading the model + the first inference (one-off work:
    memory allocation, kernel selection, for ``torch.compile`` the whole compilation).

``cold_start(kind, artefact)`` measures exactly that by running this file as a script in a
new Python process. The child times its own phases with ``time.perf_counter`` and prints
them as one JSON line; the parent adds the wall time of the whole process, so
``wall_s - (import_s + load_s + first_s + second_s)`` is the interpreter's own start-up
and exit. The kinds:

* ``eager``: ``torch.load`` of a whole pickled ``nn.Module`` (needs the model's code);
* ``torchscript``: ``torch.jit.load`` of a ``.pt`` file;
* ``export``: ``torch.export.load`` of a ``.pt2`` file, run as ``.module()``;
* ``onnxruntime``: an ONNX Runtime session on a ``.onnx`` file, without importing PyTorch;
* ``predictor``: ``cnnbook.deploy.predictor.Predictor`` on a predictor file (what
  ``python -m cnnbook.deploy.predict`` does; ``cnnbook`` imports its parts on first use,
  so this never imports PyTorch either);
* ``compile``: the pickled module of ``eager``, then ``torch.compile`` (its first call
  compiles).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

KINDS = ("eager", "torchscript", "export", "onnxruntime", "predictor", "compile")


def _child(kind: str, path: str, batch_size: int, image_size: int, backend: str) -> dict:
    """Runs in the fresh process: import, load, two inferences, each timed."""
    t0 = time.perf_counter()
    if kind in ("onnxruntime",):
        import numpy as np
        import onnxruntime as ort
    elif kind == "predictor":
        import numpy as np

        from cnnbook.deploy.predictor import Predictor
    else:
        import torch
    t1 = time.perf_counter()
    if kind == "onnxruntime":
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        x = np.zeros((batch_size, 3, image_size, image_size), dtype=np.float32)

        def run():
            return session.run(None, {name: x})[0]
    elif kind == "predictor":
        predictor = Predictor(path)
        s = predictor.image_size
        x = np.zeros((batch_size, 3, s, s), dtype=np.float32)

        def run():
            return predictor.probabilities(x)
    else:
        if kind in ("eager", "compile"):
            model = torch.load(path, map_location="cpu", weights_only=False).eval()
            if kind == "compile":
                model = torch.compile(model, backend=backend)
        elif kind == "torchscript":
            model = torch.jit.load(path, map_location="cpu")
        elif kind == "export":
            model = torch.export.load(path).module()
        x = torch.zeros(batch_size, 3, image_size, image_size)

        def run():
            with torch.inference_mode():
                return model(x)
    t2 = time.perf_counter()
    run()
    t3 = time.perf_counter()
    run()
    t4 = time.perf_counter()
    return {"kind": kind, "import_s": t1 - t0, "load_s": t2 - t1, "first_s": t3 - t2,
            "second_s": t4 - t3, "torch_loaded": "torch" in sys.modules}


def cold_start(kind: str, artefact, batch_size: int = 1, image_size: int = 32,
               compile_backend: str = "inductor", timeout: float = 900.0) -> dict:
    """Run ``kind`` on ``artefact`` in a new Python process and time its phases (seconds).

    Returns ``import_s``, ``load_s``, ``first_s`` (the first inference), ``second_s`` (the
    second, for comparison), ``wall_s`` (the whole process, as the parent saw it) and
    ``total_s`` (import + load + first: the cold start proper, without interpreter start),
    and ``torch_loaded``: whether the process had imported PyTorch by the end.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: choose from {', '.join(KINDS)}")
    artefact = Path(artefact)
    if not artefact.is_file():
        raise FileNotFoundError(f"no model file at {artefact}")
    cmd = [sys.executable, str(Path(__file__).resolve()), kind, str(artefact),
           str(int(batch_size)), str(int(image_size)), compile_backend]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"the {kind} cold-start process failed ({proc.returncode}):\n{tail}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    result["total_s"] = result["import_s"] + result["load_s"] + result["first_s"]
    return result


if __name__ == "__main__":
    # run as a script, sys.path[0] is this folder: drop it, so that this package's module
    # names (export, benchmark, ...) cannot shadow a library's
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)
    _kind, _path, _batch, _size, _backend = sys.argv[1:6]
    print(json.dumps(_child(_kind, _path, int(_batch), int(_size), _backend)))
