"""make site (tools/site.py): the HTML book built from executed notebooks.

One smoke run of chapters 01 and 02 (papermill, as `make book` runs them) is built into a
book of chapters 01-03 (03 not executed: shown from its source, marked so). The static
checks read the HTML; the browser test opens two pages in headless chromium, checks that
every picture loaded, and follows a link in the prose and the "previous" links between chapters.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("01_biology_of_vision", "02_convolution_math")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("site")


@pytest.fixture(scope="module")
def built(tool, tmp_path_factory):
    import papermill as pm

    tmp = tmp_path_factory.mktemp("site")
    executed = tmp / "notebooks"
    executed.mkdir()
    for stem in CHAPTERS:
        pm.execute_notebook(str(ROOT / "notebooks" / f"{stem}.ipynb"), str(executed / f"{stem}.ipynb"),
                            parameters={"PROFILE": "smoke"}, kernel_name="python3",
                            cwd=str(ROOT / "notebooks"), progress_bar=False)
    info = tool.build("smoke", executed, tmp / "site", only=["01", "02", "03"], quiet=True)
    return info, executed, tmp / "site"


def _image_outputs(nb_path: Path) -> int:
    """Pictures a page must show: image outputs (an output with HTML shows the HTML)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return sum(1 for c in nb["cells"] for o in c.get("outputs", [])
               if any(m in o.get("data", {}) for m in ("image/png", "image/jpeg"))
               and "text/html" not in o.get("data", {}))


def _widget_views(nb_path: Path) -> int:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return sum(1 for c in nb["cells"] for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {}))


# ------------------------------------------------------------------ the widget freezer

def _explorer_state(png: bytes) -> dict:
    """The saved state of a small explorer: VBox(HBox(slider, dropdown, checkbox), HTML, Image)."""
    def model(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls",
                "model_module_version": "2.0.0", "state": state}
    models = {
        "root": model("VBoxModel", children=["IPY_MODEL_row", "IPY_MODEL_msg", "IPY_MODEL_img"]),
        "row": model("HBoxModel", children=["IPY_MODEL_s", "IPY_MODEL_d", "IPY_MODEL_c", "IPY_MODEL_b"]),
        "s": model("FloatSliderModel", description="sigma", value=2.5),
        "d": model("DropdownModel", description="kernel", index=1,
                   _options_labels=["box", "gabor & <odd>"]),
        "c": model("CheckboxModel", description="relu", value=True),
        "b": model("ButtonModel", description="reset"),
        "msg": model("HTMLModel", value="<b>3 maps</b>"),
        "bar": model("HBoxModel", children=["IPY_MODEL_msg"], layout="IPY_MODEL_gone"),
        "gone": model("LayoutModel", visibility="hidden"),  # tqdm(leave=False) when done
        "img": {**model("ImageModel", format="png"),
                "buffers": [{"data": base64.b64encode(png).decode(), "encoding": "base64",
                             "path": ["value"]}]},
    }
    return models


def test_an_explorer_becomes_its_last_picture_with_its_control_values(tool):
    png = b"\x89PNG\r\n\x1a\nfake"
    nb = {"metadata": {"widgets": {tool.WIDGET_STATE: {"state": _explorer_state(png)}}},
          "cells": [{"cell_type": "code", "source": "explorer", "metadata": {}, "outputs": [
              {"output_type": "execute_result", "metadata": {}, "data": {
                  tool.WIDGET_VIEW: {"model_id": "root", "version_major": 2},
                  "text/plain": "Explorer(...)"}},
              {"output_type": "display_data", "metadata": {}, "data": {
                  tool.WIDGET_VIEW: {"model_id": "bar", "version_major": 2}}},
              {"output_type": "display_data", "metadata": {}, "data": {
                  tool.WIDGET_VIEW: {"model_id": "unsaved", "version_major": 2}}}]}]}
    counts = tool.freeze_widgets(nb)
    assert counts == {"frozen": 1, "missing": 1, "images": 1, "hidden": 1}
    assert "widgets" not in nb["metadata"]  # no widget JavaScript on the page
    frozen, missing = (o["data"] for o in nb["cells"][0]["outputs"])
    assert list(frozen) == ["text/html"] and list(missing) == ["text/html"]
    html = frozen["text/html"]
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in html
    assert "<b>sigma</b> 2.5" in html and "<b>relu</b> on" in html
    assert "<b>kernel</b> gabor &amp; &lt;odd&gt;<" in html  # the chosen option, escaped
    assert "reset" not in html and "<b>3 maps</b>" in html
    assert "static picture" in html.lower() and "make lab" in html
    assert "did not save" in missing["text/html"]


def test_links_to_chapters_outside_the_book_become_text(tool):
    text = "see [chapter 05](05_lenet.ipynb#the-model) and [chapter 01](01_biology_of_vision.ipynb)"
    assert tool._relink_markdown(text, {"01_biology_of_vision"}) == \
        "see chapter 05 and [chapter 01](01_biology_of_vision.ipynb)"


# ------------------------------------------------------------------ the built book

def test_every_chapter_page_the_results_and_the_run_notes_are_there(built):
    info, executed, site = built
    assert info["executed"] == list(CHAPTERS) and info["unexecuted"] == ["03_pooling_activations"]
    for stem in (*CHAPTERS, "03_pooling_activations"):
        assert (site / f"{stem}.html").exists()
    text = re.sub(r"<[^>]+>", "", (site / "01_biology_of_vision.html").read_text(encoding="utf-8"))
    assert "Run it yourself" in text and "make lab" in text and "make book PROFILE=smoke" in text
    assert "Not executed for this build" in (site / "03_pooling_activations.html").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- results:start -->")[1].split("<!-- results:end -->")[0]
    first_run = next(line for line in table.splitlines() if re.match(r"\| \d{2}_", line))
    results = (site / "results.html").read_text(encoding="utf-8")
    assert "<table" in results and first_run.split("|")[1].strip() in results
    assert "results.html" in (site / "index.html").read_text(encoding="utf-8")


def test_every_link_opens_a_page_of_the_site(built, tool):
    info, _, site = built
    assert tool.check_links(site) == []
    links = tool.chapter_links(site)
    assert ("01_biology_of_vision.html", "02_convolution_math.html") in links  # navigation
    page = (site / "01_biology_of_vision.html").read_text(encoding="utf-8")
    # the prose's [chapter 03](03_pooling_activations.ipynb) opens chapter 03's page
    assert re.search(r'href="03_pooling_activations\.html"[^>]*>(<[^>]+>)*chapter 03', page)
    hrefs = " ".join(tool.page_links(site / "01_biology_of_vision.html"))
    assert "05_lenet" not in hrefs  # chapter 05 is not in this book: its link became text


def test_widgets_are_static_html_and_no_widget_script_is_loaded(built):
    info, executed, site = built
    counts = info["widgets"]["01_biology_of_vision"]
    views = _widget_views(executed / "01_biology_of_vision.ipynb")
    assert counts["frozen"] >= 1, "chapter 01 shows an explorer"
    assert counts["frozen"] + counts["missing"] + counts["hidden"] == views
    page = (site / "01_biology_of_vision.html").read_text(encoding="utf-8")
    assert page.count("<div class='cnnbook-widget'>") == counts["frozen"] + counts["missing"]
    assert "class='cnnbook-w-image' src='data:image/png;base64,iVBOR" in page
    assert "html-manager" not in page and "widget-view+json" not in page


# ------------------------------------------------------------------ in a browser

@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (.ci/run installs it)")
def test_two_pages_show_their_figures_and_the_links_between_chapters_work(built):
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import expect, sync_playwright

    _, executed, site = built
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # the book must work offline: anything from the network (MathJax) is refused
        page.route("http*://**", lambda route: route.abort())
        try:
            for stem in CHAPTERS:
                page.goto((site / f"{stem}.html").as_uri(), timeout=60_000)
                page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
                page.wait_for_function("Array.from(document.images).every(i => i.complete)",
                                       timeout=30_000)
                sizes = page.eval_on_selector_all(
                    "article img", "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
                expected = _image_outputs(executed / f"{stem}.ipynb")
                assert expected >= 1
                assert len(sizes) >= expected, (stem, len(sizes), expected)
                assert all(w > 0 and h > 0 for w, h in sizes), (stem, sizes)
            # chapter 02's "previous" link, then a link in chapter 01's prose
            page.locator("a.left-prev").first.click()
            expect(page.locator("article h1").first).to_contain_text("Biology of vision", timeout=30_000)
            page.locator("article a[href^='03_pooling_activations.html']").first.click()
            expect(page.locator("article h1").first).to_contain_text("Pooling", timeout=30_000)
            page.locator("a.left-prev").first.click()
            expect(page.locator("article h1").first).to_contain_text("Convolution", timeout=30_000)
        finally:
            browser.close()
