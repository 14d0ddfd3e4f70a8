"""JupyterLab 4 in a real (headless) browser: a course widget renders and reacts.

This is what `make lab` promises a learner: open a notebook, run it, move a control,
see the picture change. Skipped where Debian's chromium is not installed (.ci/run installs it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")
playwright = pytest.importorskip("playwright.sync_api")

TOKEN = "cnnbook-browser-test"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

WIDGET_CODE = """\
import ipywidgets as widgets
from cnnbook.widgets.kernel_editor import KernelEditor
editor = KernelEditor()
status = widgets.Label(value=f"renders={editor.renders}")
editor.image.observe(lambda _: setattr(status, "value", f"renders={editor.renders}"), names="value")
widgets.VBox([editor, status])
"""

FEATURE_MAP_CODE = """\
import ipywidgets as widgets
import torch
from cnnbook.models.lenet import lenet5
from cnnbook.widgets import FeatureMapExplorer
torch.manual_seed(0)
images = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8)
explorer = FeatureMapExplorer(lenet5(), images, labels=torch.arange(20) % 10,
                              class_names=[f"class {i}" for i in range(10)])
status = widgets.Label(value=f"renders={explorer.renders}")
explorer.image.observe(lambda _: setattr(status, "value", f"renders={explorer.renders} "
                       f"layer={explorer.state.get('layer')} view={explorer.state.get('view')}"),
                       names="value")
widgets.VBox([explorer, status])
"""


# The explorers added with issue 12, one small instance each (the unit tests' own FACTORIES,
# so the browser sees what tests/widgets/test_every_explorer.py drives), in one notebook
# and one kernel. Each is displayed with a status line that counts its renders.
# (module, class, how the browser changes one control, the control's description, value)
RECENT = [
    ("descent", "DescentExplorer", "slider", "momentum", None),
    ("channel_mixer", "ChannelMixerExplorer", "dropdown", "mixing matrix", "sepia"),
    ("inception", "InceptionExplorer", "toggle", "activity", "sum of |activation|"),
    ("batch_stats", "BatchStatsExplorer", "dropdown", "layer", "fc"),
    ("dense_growth", "DenseGrowthExplorer", "checkbox", "bottleneck", None),
    ("multipliers", "MultiplierExplorer", "checkbox", "time it", None),
    ("tradeoff", "TradeoffExplorer", "select", "architectures", ["a", "b"]),
]

RECENT_CODE = """\
import importlib, sys, time
import ipywidgets as widgets
from IPython.display import display
sys.path.insert(0, {tests!r})
from test_every_explorer import build   # the small instances the unit tests drive
start = time.perf_counter()
for module, name in {classes!r}:
    explorer = build(getattr(importlib.import_module("cnnbook.widgets." + module), name))
    status = widgets.Label(value=f"{{name}} renders={{explorer.renders}}")
    explorer.image.observe(lambda _, e=explorer, s=status, n=name:
                           setattr(s, "value", f"{{n}} renders={{e.renders}}"), names="value")
    display(widgets.VBox([explorer, status]))
print(f"built in {{time.perf_counter() - start:.1f}} s")
""".format(tests=str(Path(__file__).resolve().parents[1] / "widgets"),
           classes=[(m, c) for m, c, *_ in RECENT])


def _notebook(code: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                                  "outputs": [], "source": code}],
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                     "source": WIDGET_CODE}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / "widget.ipynb").write_text(json.dumps(nb))
    (root / "feature_maps.ipynb").write_text(_notebook(FEATURE_MAP_CODE))
    (root / "recent_explorers.ipynb").write_text(_notebook(RECENT_CODE))
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".jupyter"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", "--allow-root",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240  # a busy machine (notebooks running beside) starts lab slowly
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("jupyter lab exited:\n" + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jupyter lab did not start within 240 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_widget_renders_and_reacts_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                    headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{lab}/lab/tree/widget.ipynb?token={TOKEN}", timeout=60_000)
            cell = page.locator(".jp-Notebook .jp-CodeCell").first
            expect(cell).to_be_visible(timeout=60_000)
            # wait for the kernel, then run the cell. On a busy machine (notebooks running
            # beside this test) the kernel can report idle before it accepts requests and
            # the first run is dropped: try again until the cell has been executed.
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                "#jp-main-statusbar :text('Idle')").first).to_be_visible(timeout=120_000)
            out = page.locator(".jp-OutputArea-output").first
            dropdown = out.locator(".widget-dropdown select").first
            for attempt in range(4):
                cell.click()
                page.keyboard.press("Control+Enter")  # run in place, no new cell
                try:
                    dropdown.wait_for(state="visible", timeout=60_000)
                    break
                except Exception:
                    if attempt == 3:
                        raise
            expect(out.locator("img").first).to_be_visible(timeout=30_000)
            assert "Error displaying widget" not in out.inner_text()
            expect(out.get_by_text("renders=1")).to_be_visible(timeout=30_000)
            before = out.locator("img").first.get_attribute("src")
            # pick another preset in the browser: the kernel recomputes and sends a new PNG
            select = out.locator(".widget-dropdown select").first
            options = select.locator("option").all_inner_texts()
            select.select_option(label=options[-1])
            expect(out.get_by_text("renders=2")).to_be_visible(timeout=30_000)
            page.wait_for_function(
                "(b) => document.querySelector('.jp-OutputArea-output img').src !== b",
                arg=before, timeout=30_000)
            page.screenshot(path=str(tmp_path / "lab.png"))
        except Exception:
            page.screenshot(path="/tmp/cnnbook-lab-failure.png")
            raise
        finally:
            browser.close()


def _run_first_cell(page, lab, notebook, ready, timeout: int = 90_000):
    """Open ``notebook``, run its only cell (again if a busy kernel drops the first request)
    until ``ready(out)`` (a locator in the output) is visible, waiting ``timeout`` ms per
    try; return the output area."""
    # a workspace of its own, reset: only this notebook is open (the lab server is shared
    # by the tests, and a restored workspace would show the other tests' notebooks too, so
    # ".jp-CodeCell" could resolve to a cell in a hidden tab)
    workspace = Path(notebook).stem
    page.goto(f"{lab}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={TOKEN}",
              timeout=60_000)
    from playwright.sync_api import expect

    cell = page.locator(".jp-Notebook .jp-CodeCell").first
    expect(cell).to_be_visible(timeout=60_000)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                        "#jp-main-statusbar :text('Idle')").first).to_be_visible(timeout=120_000)
    out = page.locator(".jp-OutputArea-output").first
    for attempt in range(4):
        cell.click()
        page.keyboard.press("Control+Enter")
        try:
            ready(out).wait_for(state="visible", timeout=timeout)
            return out
        except Exception:
            if attempt == 3:
                raise


def test_feature_map_explorer_renders_and_reacts_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        try:
            layer = lambda out: out.locator(".widget-dropdown", has_text="layer").locator("select")
            out = _run_first_cell(page, lab, "feature_maps.ipynb", layer)
            expect(out.locator("img").first).to_be_visible(timeout=30_000)
            assert "Error displaying widget" not in out.inner_text()
            # every control of the explorer is on the page: image source, upload, transforms
            for text in ("test image", "photo", "upload", "your image", "shift", "rotate",
                         "noise", "invert", "all channels", "one channel"):
                expect(out.get_by_text(text).first).to_be_visible(timeout=10_000)
            before = out.locator("img").first.get_attribute("src")
            # a new layer chosen in the browser: the kernel draws its feature maps
            layer(out).select_option("stage2")
            expect(out.get_by_text("renders=2 layer=stage2 view=all")).to_be_visible(timeout=30_000)
            page.wait_for_function(
                "(b) => document.querySelector('.jp-OutputArea-output img').src !== b",
                arg=before, timeout=30_000)
            # one channel, enlarged beside its kernel
            out.get_by_role("button", name="one channel").click()
            expect(out.get_by_text("renders=3 layer=stage2 view=one")).to_be_visible(timeout=30_000)
            # an upload that is not an image: a message on the page, no traceback
            page.screenshot(path=str(tmp_path / "feature_maps.png"))
            with page.expect_file_chooser(timeout=30_000) as chooser:
                out.get_by_role("button", name="your image").click()
            chooser.value.set_files(files=[{"name": "notes.png", "mimeType": "image/png",
                                            "buffer": b"not an image at all"}])
            expect(out.get_by_text("is not an image")).to_be_visible(timeout=30_000)
            assert "Traceback" not in out.inner_text()
        except Exception:
            page.screenshot(path="/tmp/cnnbook-lab-feature-maps-failure.png")
            raise
        finally:
            browser.close()


def _change_one_control(page, box, kind, description, value):
    """Change one control of an explorer's output ``box`` the way a learner would."""
    if kind == "dropdown":
        box.locator(".widget-dropdown", has_text=description).locator("select") \
            .select_option(label=value)
    elif kind == "select":
        box.locator(".widget-select-multiple", has_text=description).locator("select") \
            .select_option(label=value)
    elif kind == "checkbox":
        box.locator(".widget-checkbox", has_text=description).locator("input").click()
    elif kind == "toggle":
        box.locator(".widget-toggle-buttons", has_text=description) \
            .get_by_role("button", name=value, exact=True).click()
    elif kind == "slider":   # the slider's handle takes the keyboard, one step per key
        box.locator(".widget-slider", has_text=description).locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
    else:
        raise ValueError(kind)


def test_recent_explorers_render_and_react_in_jupyterlab(lab, tmp_path):
    """Chapters 04, 08, 09, 10, 12, 13 and 14's explorers, all in one notebook: each draws
    its picture, and a control changed in the browser makes the kernel draw a new one."""
    from playwright.sync_api import expect, sync_playwright

    names = [c for _, c, *_ in RECENT]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        try:
            last = lambda out: page.get_by_text(f"{names[-1]} renders=1", exact=True)
            _run_first_cell(page, lab, "recent_explorers.ipynb", last, timeout=180_000)
            print(page.locator(".jp-OutputArea-output", has_text="built in").inner_text())
            failures = []
            for _, name, kind, description, value in RECENT:
                box = page.locator(".jp-OutputArea-output", has_text=f"{name} renders=")
                try:
                    expect(box).to_have_count(1, timeout=10_000)
                    expect(box.get_by_text(f"{name} renders=1", exact=True)).to_be_visible()
                    image = box.locator(".widget-image").first
                    expect(image).to_be_visible(timeout=30_000)
                    assert "Error displaying widget" not in box.inner_text()
                    before = image.get_attribute("src")
                    _change_one_control(page, box, kind, description, value)
                    # a new picture drawn in the kernel (a redraw that raised would leave
                    # renders=1 and the message line instead)
                    expect(box.get_by_text(re.compile(rf"^{name} renders=([2-9]|\d\d+)$"))) \
                        .to_be_visible(timeout=60_000)
                    expect(image).not_to_have_attribute("src", before, timeout=30_000)
                    assert "Traceback" not in box.inner_text()
                except Exception as exc:  # noqa: BLE001 - collect, report every explorer
                    page.screenshot(path=f"/tmp/cnnbook-lab-{name}-failure.png")
                    failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
            page.screenshot(path=str(tmp_path / "recent_explorers.png"), full_page=True)
            assert not failures, "\n".join(failures)
        finally:
            browser.close()
