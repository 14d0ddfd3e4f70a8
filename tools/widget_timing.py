"""How long ``FeatureMapExplorer`` takes to redraw, on the cpu-profile models of its chapters.

Issue 8 asks for a new image or layer to render in under 0.5 s on the CPU. Timing depends on
the machine and its load, so this is a measurement to run and report, not a test that fails:

    .venv/bin/python tools/widget_timing.py            # every chapter's model, 7 changes each

For each model (the architecture and width the chapter's ``cpu`` profile trains; the weights
do not change the cost, so they are left untrained) it builds the explorer on the chapter's
test images and changes one control at a time, as a learner does: a new test image (a forward
pass and a drawing), a transformation of it (rotate, noise: a forward pass), a new layer and a
single enlarged channel (a drawing only: the forward pass is cached). It prints the median and
the slowest ``render_ms`` (wall time) the explorer records for each kind of change, and the
median CPU time of the process per change: on a loaded machine the wall time measures the
load, while the CPU time is close to what an idle machine's wall time would be (an upper
bound: the forward pass may use two threads, the drawing uses one).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import cnnbook  # noqa: E402
from cnnbook.data import class_names as dataset_classes  # noqa: E402
from cnnbook.interpret.sanity import block_names  # noqa: E402
from cnnbook.models import vgg as vgg_lib  # noqa: E402
from cnnbook.models.alexnet import alexnet_fashion  # noqa: E402
from cnnbook.models.cifar_resnet import cifar_resnet  # noqa: E402
from cnnbook.models.lenet import lenet5  # noqa: E402
from cnnbook.models.resnet import resnet  # noqa: E402
from cnnbook.widgets.feature_maps import FeatureMapExplorer  # noqa: E402


def chapter_models():
    """(chapter, dataset, model, explorer keywords) as each chapter's cpu profile builds them."""
    yield "05 LeNet", "fashion_mnist", lenet5(), {}
    yield "06 AlexNet", "fashion_mnist", alexnet_fashion(0.25, small_input=True), {"image_size": 28}
    yield "07 VGG-11", "fashion_mnist", vgg_lib.vgg_fashion(width_mult=0.125, small_input=True,
                                                            fc_units=256), {"image_size": 28}
    yield "11 ResNet-18", "fashion_mnist", resnet(18, num_classes=10, in_channels=1,
                                                  small_input=True, width_mult=0.125), {"image_size": 28}
    net = cifar_resnet(20)
    yield "20 ResNet-20", "cifar10", net, {"layers": [n for n in block_names(net) if n != "fc"]}


def changes(explorer, n: int):
    """Yield (kind, control, value) for n changes of each kind."""
    layers = explorer.layers
    for i in range(n):
        yield "new test image", "index", (17 * (i + 1)) % len(explorer.images)
        yield "rotate", "rotate", 15 * (i + 1) % 180
        yield "noise", "noise", round(0.05 * (i % 5 + 1), 2)
        yield "new layer", "layer", layers[(i + 1) % len(layers)]
    explorer.controls["view"].value = "one"
    for i in range(n):
        yield "one channel", "channel", (i + 1) % (explorer.controls["channel"].max + 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=7, help="changes of each kind per model")
    args = parser.parse_args(argv)
    cnnbook.seed_everything(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch threads {torch.get_num_threads()}, load average {load:.1f}")
    worst = worst_cpu = 0.0
    for chapter, dataset, model, kw in chapter_models():
        _, test_iter = cnnbook.load_data(dataset, batch_size=256, limit=256, test_limit=512)
        explorer = FeatureMapExplorer(model.eval(), test_iter.images, labels=test_iter.labels,
                                      class_names=dataset_classes(dataset), **kw)
        times: dict[str, list[float]] = {}
        cpu: list[float] = []
        for kind, control, value in changes(explorer, args.changes):
            before = time.process_time()
            explorer.controls[control].value = value
            cpu.append(1000 * (time.process_time() - before))
            if explorer.state.get("error"):
                raise SystemExit(f"{chapter}: {kind} gave an error: {explorer.state['error']}")
            times.setdefault(kind, []).append(explorer.state["render_ms"])
        cells = ", ".join(f"{k} {statistics.median(v):.0f} (max {max(v):.0f})"
                          for k, v in times.items())
        worst = max(worst, max(max(v) for v in times.values()))
        worst_cpu = max(worst_cpu, statistics.median(cpu))
        print(f"{chapter} ({len(explorer.layers)} layers), wall ms: {cells}; "
              f"CPU ms per change: median {statistics.median(cpu):.0f}, max {max(cpu):.0f}")
    print(f"slowest redraw {worst:.0f} ms wall ({'under' if worst < 500 else 'OVER'} 500 ms); "
          f"largest median CPU time per change {worst_cpu:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
