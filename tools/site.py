"""``make site``: a static HTML book of the executed chapters, built offline.

Reads the notebooks ``make book PROFILE=<profile>`` executed (``build/notebooks/<profile>/``),
prepares a Sphinx source folder from copies of them (``build/site/<profile>-src/``) and builds
the HTML book into ``build/site/<profile>/`` (open ``index.html``). The engine is Sphinx with
myst-nb and sphinx-book-theme, the stack Jupyter Book 1 runs, called directly: every theme
asset ships inside those pip packages, so the build needs no network (Jupyter Book 2 and the
MyST CLI download their theme at build time). A reader's browser fetches one thing from the
internet: MathJax, for the formulas (Sphinx's default).

What the copies get (the executed notebooks themselves are never changed):

- every widget output becomes static HTML made from the widget state that papermill saved
  in the notebook: an explorer's last picture with its controls' values, a progress bar's
  last state; an explorer carries a line saying so and that the controls move in JupyterLab;
- a "Run it yourself" note after the introduction: ``make lab`` and ``make book``, and how
  this page was made (profile, date, minutes, from papermill's metadata);
- nbgrader solution cells are folded (a click shows them);
- a chapter with no executed notebook is shown from its source, marked as not executed;
  with ``--only``, links to chapters left out become plain text.

The README's results table is a page of its own, and the index lists the chapters by part
as the README does. After the build every relative link of every page is checked to open a
file of the site (``check_links``); a broken one fails the build.

    python tools/site.py [--profile cpu] [--notebooks DIR] [--out DIR] [--only 01 02]
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnbook.files import atomic_write, umask_mode  # noqa: E402
from cnnbook.results import results_dir  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
CHAPTER = re.compile(r"\d{2}_\w+")
# A markdown link to a chapter: [label](NN_topic.ipynb) or [label](NN_topic.ipynb#anchor).
CHAPTER_LINK = re.compile(r"\[([^\]]*)\]\((\d{2}_\w+)\.ipynb(#[^)\s]*)?\)")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"

STATIC_NOTE = ("A static picture: the explorer as this run left it, its controls at the values "
               "shown. Open the chapter in JupyterLab (<code>make lab</code>) to move them.")


# --------------------------------------------------------------------------------------
# Widgets: the saved widget state -> static HTML
# --------------------------------------------------------------------------------------

def _ref(value) -> str | None:
    return value[len("IPY_MODEL_"):] if isinstance(value, str) and value.startswith("IPY_MODEL_") else None


def _hidden(state: dict, models: dict) -> bool:
    layout = models.get(_ref(state.get("layout")) or "", {}).get("state", {})
    return layout.get("display") == "none" or layout.get("visibility") == "hidden"


def _control_value(name: str, s: dict) -> str:
    labels = s.get("_options_labels")
    if labels is not None and "index" in s:
        index = s["index"]
        if isinstance(index, (list, tuple)):
            return ", ".join(labels[i] for i in index if 0 <= i < len(labels))
        return labels[index] if isinstance(index, int) and 0 <= index < len(labels) else "(none)"
    value = s.get("value")
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return " to ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _image_src(model: dict) -> str | None:
    for buf in model.get("buffers", []):
        if buf.get("path") == ["value"]:
            data = buf.get("data", "")
            if buf.get("encoding") == "hex":
                data = base64.b64encode(bytes.fromhex(data)).decode()
            fmt = model["state"].get("format", "png")
            mime = "image/svg+xml" if fmt == "svg" else f"image/{fmt}"
            return f"data:{mime};base64,{data}"
    value = model["state"].get("value")  # older state: the bytes inline, base64
    if isinstance(value, str) and value:
        return f"data:image/{model['state'].get('format', 'png')};base64,{value}"
    return None


def _output_html(out: dict) -> str:
    """One output of an Output widget (or a cell) as HTML."""
    if out.get("output_type") == "stream":
        return f"<pre>{html.escape(_text(out.get('text', '')))}</pre>"
    if out.get("output_type") == "error":
        tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(out.get("traceback", [])))
        return f"<pre>{html.escape(tb)}</pre>"
    data = out.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            return f'<img src="data:{mime};base64,{_text(data[mime]).strip()}" alt="output"/>'
    if "text/html" in data:
        return _text(data["text/html"])
    if "text/plain" in data:
        return f"<pre>{html.escape(_text(data['text/plain']))}</pre>"
    return ""


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class _Renderer:
    """Walks the saved widget models from one view's model down to its leaves."""

    BOXES = {"VBoxModel", "BoxModel", "GridBoxModel", "AccordionModel", "TabModel", "StackModel"}
    SKIP = {"ButtonModel", "FileUploadModel", "PlayModel", "ControllerModel"}

    def __init__(self, models: dict):
        self.models = models
        self.controls = 0
        self.images = 0

    def render(self, model_id: str | None, depth: int = 0) -> str:
        model = self.models.get(model_id or "")
        if model is None or depth > 50:
            return ""
        name, s = model.get("model_name", ""), model.get("state", {})
        if _hidden(s, self.models) or name in self.SKIP:
            return ""
        if name in self.BOXES or name == "HBoxModel":
            children = [_ref(c) for c in s.get("children", [])]
            if name == "StackModel" and s.get("selected_index") is not None:
                children = children[s["selected_index"]:s["selected_index"] + 1]
            titles = s.get("titles") or []
            parts = []
            for i, child in enumerate(children):
                inner = self.render(child, depth + 1)
                if inner and name in ("AccordionModel", "TabModel") and i < len(titles) and titles[i]:
                    inner = f"<div class='cnnbook-w-title'>{html.escape(titles[i])}</div>{inner}"
                if inner:
                    parts.append(inner)
            cls = "cnnbook-w-hbox" if name == "HBoxModel" else "cnnbook-w-vbox"
            return f"<div class='{cls}'>{''.join(parts)}</div>" if parts else ""
        if name == "ImageModel":
            src = _image_src(model)
            if not src:
                return ""
            self.images += 1
            return f"<img class='cnnbook-w-image' src='{src}' alt='the explorer&#39;s last picture'/>"
        if name in ("HTMLModel", "HTMLMathModel"):
            return f"<div class='cnnbook-w-html'>{s.get('value', '')}</div>" if s.get("value") else ""
        if name == "LabelModel":
            return f"<span class='cnnbook-w-label'>{html.escape(str(s.get('value', '')))}</span>"
        if name in ("FloatProgressModel", "IntProgressModel"):
            desc = html.escape(str(s.get("description", "")))
            return (f"<span class='cnnbook-w-progress'>{desc} <progress value='{s.get('value', 0)}' "
                    f"max='{s.get('max', 100)}'></progress></span>")
        if name == "OutputModel":
            inner = "".join(_output_html(o) for o in s.get("outputs", []))
            return f"<div class='cnnbook-w-output'>{inner}</div>" if inner else ""
        if "value" in s or "index" in s:
            self.controls += 1
            desc = html.escape(str(s.get("description", "")).rstrip(":"))
            value = html.escape(_control_value(name, s))
            return (f"<span class='cnnbook-w-control'>{f'<b>{desc}</b> ' if desc else ''}"
                    f"{value}</span>")
        return ""


def static_widget_html(model_id: str, models: dict) -> str | None:
    """The static HTML of one widget view from the saved state ('' if the widget was hidden
    at the end of the run), or None if its state was not saved."""
    if model_id not in models:
        return None
    renderer = _Renderer(models)
    body = renderer.render(model_id)
    if not body:
        return ""  # hidden when the run ended (a progress bar with leave=False): nothing to show
    note = (f"<div class='cnnbook-w-note'>{STATIC_NOTE}</div>"
            if renderer.controls and renderer.images else "")
    if renderer.controls and not renderer.images:
        note = ("<div class='cnnbook-w-note'>The widget's controls at the values this run "
                "left them; they move in JupyterLab (<code>make lab</code>).</div>")
    return f"<div class='cnnbook-widget'>{note}{body}</div>"


def freeze_widgets(nb: dict) -> dict:
    """Replace every widget output of ``nb`` by static HTML; drop the widget state.

    Returns counts: ``frozen`` views rendered from the state, ``missing`` views whose state
    was not saved (shown as a line that says so), ``hidden`` views hidden when the run ended
    (dropped, as JupyterLab shows nothing there), ``images`` pictures placed.
    """
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    counts = {"frozen": 0, "missing": 0, "images": 0, "hidden": 0}
    for cell in nb.get("cells", []):
        keep = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            keep.append(out)
            if WIDGET_VIEW not in data:
                continue
            model_id = data[WIDGET_VIEW].get("model_id", "")
            frozen = static_widget_html(model_id, state)
            if frozen is None:
                counts["missing"] += 1
                frozen = ("<div class='cnnbook-widget'><div class='cnnbook-w-note'>An interactive "
                          "widget whose state this run did not save: run the chapter in "
                          "JupyterLab (<code>make lab</code>) to see it.</div></div>")
            elif not frozen:
                counts["hidden"] += 1
                keep.pop()
                continue
            else:
                counts["frozen"] += 1
                counts["images"] += frozen.count("class='cnnbook-w-image'")
            out["data"] = {"text/html": frozen}
        if "outputs" in cell:
            cell["outputs"] = keep
    nb.get("metadata", {}).pop("widgets", None)  # no widget JavaScript on the page
    return counts


# --------------------------------------------------------------------------------------
# Chapters
# --------------------------------------------------------------------------------------

def _minutes(nb: dict) -> str:
    pm = nb.get("metadata", {}).get("papermill", {})
    parts = []
    if pm.get("end_time"):
        parts.append(f"on {str(pm['end_time'])[:10]}")
    if isinstance(pm.get("duration"), (int, float)):
        parts.append(f"in {pm['duration'] / 60:.1f} minutes")
    return " ".join(parts)


def run_note(stem: str, profile: str, nb: dict | None) -> str:
    """The 'Run it yourself' admonition placed after a chapter's introduction."""
    lab = (f"* **Interactively:** `make lab` sets everything up (environment, datasets) and opens "
           f"JupyterLab; open `{stem}.ipynb` and run all cells. There the explorers' controls move.")
    book = (f"* **As this page was made:** `make book PROFILE={profile}` executes every chapter into "
            f"`build/notebooks/{profile}/` (`.venv/bin/python tools/book.py --profile {profile} "
            f"--only {stem[:2]}` runs this one alone); then `make site PROFILE={profile}` builds this "
            f"book.")
    if nb is None:
        return (f"```{{admonition}} Not executed for this build\n:class: warning\n\n"
                f"There was no executed `build/notebooks/{profile}/{stem}.ipynb` when this book was "
                f"built, so this page shows the chapter's code without its outputs: no figures, "
                f"tables or numbers. Run it yourself:\n\n{lab}\n{book}\n```\n")
    pm = nb.get("metadata", {}).get("papermill", {})
    failed = ("\n\n**This run stopped with an error** (see the cell marked by papermill below); "
              "the outputs after it are missing." if pm.get("exception") else "")
    when = _minutes(nb)
    return (f"```{{admonition}} Run it yourself\n:class: tip\n\n"
            f"This page is the chapter as papermill executed it in the `{profile}` profile"
            f"{' ' + when if when else ''}: every figure, table and number below comes from that "
            f"run. To run it yourself, in the repository:\n\n{lab}\n{book}{failed}\n```\n")


def _relink_markdown(text: str, included: set[str]) -> str:
    """Links to chapters outside the book become plain text (their label)."""
    return CHAPTER_LINK.sub(lambda m: m.group(0) if m.group(2) in included else m.group(1), text)


def _relink_output(out: dict, included: set[str]) -> None:
    """Rendered outputs (markdown, HTML) that link a chapter's notebook link its page."""
    data = out.get("data", {})
    if "text/markdown" in data:
        data["text/markdown"] = _relink_markdown(_text(data["text/markdown"]), included)
    if "text/html" in data:
        data["text/html"] = re.sub(
            r"""href=(["'])(\d{2}_\w+)\.ipynb""",
            lambda m: f"href={m.group(1)}{m.group(2)}.html" if m.group(2) in included
            else f"data-missing={m.group(1)}{m.group(2)}", _text(data["text/html"]))


def prepare_chapter(nb: dict, stem: str, profile: str, executed: bool, included: set[str]) -> dict:
    """A copy of the notebook ready for the book: frozen widgets, run note, folded solutions."""
    nb = json.loads(json.dumps(nb))
    counts = freeze_widgets(nb)
    cells = nb.get("cells", [])
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            cell["source"] = _relink_markdown(_text(cell.get("source", "")), included)
        for out in cell.get("outputs", []):
            _relink_output(out, included)
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if cell["metadata"].get("nbgrader", {}).get("solution") and "hide-input" not in tags:
            tags.append("hide-input")  # the answer behind a click
    first = next((i for i, c in enumerate(cells) if c.get("cell_type") == "markdown"), -1)
    note = {"cell_type": "markdown", "metadata": {}, "source": run_note(stem, profile, nb if executed else None)}
    if "id" in (cells[0] if cells else {}):
        note["id"] = f"cnnbook-run-note-{stem[:2]}"
    cells.insert(first + 1, note)
    nb.setdefault("metadata", {})["cnnbook_site"] = counts
    return nb


# --------------------------------------------------------------------------------------
# Index, results, configuration
# --------------------------------------------------------------------------------------

def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The body of a '## heading' section of a markdown text ('' if absent)."""
    m = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    return m.group(1).strip() if m else ""


def parts_from_readme(stems: list[str]) -> list[tuple[str, list[str]]]:
    """Chapters grouped by the README's parts (its Contents table), in order."""
    by_number = {s[:2]: s for s in stems}
    parts: list[tuple[str, list[str]]] = []
    for line in _section(_readme(), "Contents").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        bold = re.fullmatch(r"\*\*(.+?)\*\*(.*)", cells[1])
        if not cells[0] and bold:
            parts.append((bold.group(1).strip(), []))
        elif re.fullmatch(r"\d{2}", cells[0]) and cells[0] in by_number:
            if not parts:
                parts.append(("Chapters", []))
            parts[-1][1].append(by_number.pop(cells[0]))
    parts = [(caption, chapters) for caption, chapters in parts if chapters]
    if by_number:
        parts.append(("More chapters", sorted(by_number.values())))
    return parts


def contents_table(included: set[str]) -> str:
    """The README's Contents table with each chapter number linked to its page."""
    stems = {s[:2]: s for s in included}
    out = []
    for line in _section(_readme(), "Contents").splitlines():
        m = re.match(r"^\| (\d{2}) \|", line)
        if m and m.group(1) in stems:
            line = line.replace(f"| {m.group(1)} |", f"| [{m.group(1)}]({stems[m.group(1)]}.ipynb) |", 1)
        elif m:
            continue  # a chapter outside this book
        out.append(line)
    part = re.compile(r"^\|\s*\|\s*\*\*")
    out = [line for i, line in enumerate(out)  # a part none of whose chapters is in the book
           if not (part.match(line) and (i + 1 == len(out) or part.match(out[i + 1])
                                         or not out[i + 1].startswith("|")))]
    return _relink_markdown("\n".join(out), included)


def index_page(profile: str, parts, executed: list[str], unexecuted: list[str]) -> str:
    readme = _readme()
    intro = readme.split("\n## ", 1)[0].split("\n", 1)[1].strip() if "\n" in readme else ""
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    how = (f"This book shows every chapter as `make book PROFILE={profile}` executed it: the "
           f"figures, tables and printed numbers are that run's ({len(executed)} chapters executed"
           + (f"; {len(unexecuted)} shown without outputs, not executed for this build: "
              f"{', '.join(s[:2] for s in unexecuted)}" if unexecuted else "")
           + f"). Built by `make site PROFILE={profile}` on {built}. The training runs' numbers "
           f"are in the [results table](results.md). The explorers (widgets) appear as static "
           f"pictures of their last state; `make lab` opens the chapters in JupyterLab, where "
           f"they move.")
    toctrees = "\n".join(
        f"```{{toctree}}\n:caption: {caption}\n:hidden:\n:maxdepth: 1\n\n" + "\n".join(chapters)
        + "\n```\n" for caption, chapters in parts)
    toctrees += "\n```{toctree}\n:caption: Results\n:hidden:\n\nresults\n```\n"
    contents = contents_table({s for _, chapters in parts for s in chapters})
    return (f"# cnnbook\n\n{intro}\n\n{how}\n\n## Start in two commands\n\n"
            f"```bash\nmake lab    # set up .venv, install everything, fetch the datasets, open JupyterLab\n"
            f"make test   # the same set-up if needed, then every test and every notebook (smoke profile)\n"
            f"```\n\n## Contents\n\n{contents}\n\n{toctrees}")


def results_page(profile: str, included: set[str]) -> str:
    section = _section(_readme(), "The results table")
    table = ""
    if RESULTS_START in section and RESULTS_END in section:
        head, rest = section.split(RESULTS_START, 1)
        table, _ = rest.split(RESULTS_END, 1)
        section = head.strip()
    page = f"# Results\n\n{section}\n\n{table.strip()}\n"
    own = results_dir() / f"{profile}.md"  # what `make book PROFILE=...` wrote
    if profile != "cpu" and own.exists():
        page += (f"\n## This build's profile: `{profile}`\n\nThe table above is the README's "
                 f"(the `cpu` profile). The runs of this build, from `make book PROFILE={profile}`:"
                 f"\n\n{own.read_text(encoding='utf-8').strip()}\n")
    return _relink_markdown(page, included)


CONF = '''\
# Generated by tools/site.py: edit that file, not this one.
project = "cnnbook"
author = "the cnnbook authors"
copyright = "the cnnbook authors, MIT licence"
extensions = ["myst_nb", "sphinx.ext.githubpages"]
html_theme = "sphinx_book_theme"
html_title = "cnnbook: convolutional neural networks"
html_static_path = ["_static"]
html_css_files = ["cnnbook.css"]
html_theme_options = {{
    "home_page_in_toc": True,
    "use_download_button": True,
    "show_toc_level": 2,
    "navigation_with_keys": True,
}}
html_last_updated_fmt = None
exclude_patterns = ["_build", "_doctrees", "**.ipynb_checkpoints"]
# The notebooks are executed already (make book); never run them here.
nb_execution_mode = "off"
nb_merge_streams = True
nb_ipywidgets_js = {{}}  # widgets are static HTML (tools/site.py freezes them)
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]
'''

CSS = """\
.cnnbook-widget { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5em; margin: 0.3em 0; }
.cnnbook-w-note { font-size: 0.85em; color: #57606a; margin-bottom: 0.4em; }
.cnnbook-w-hbox { display: flex; flex-wrap: wrap; gap: 0.3em 0.8em; align-items: center; }
.cnnbook-w-vbox { display: flex; flex-direction: column; align-items: flex-start; gap: 0.3em; }
.cnnbook-w-control { display: inline-block; font-size: 0.85em; padding: 0.1em 0.5em;
                     border-radius: 4px; background: #f0f2f4; }
.cnnbook-w-title { font-weight: bold; }
.cnnbook-w-image { max-width: 100%; height: auto; }
.cnnbook-w-progress progress { vertical-align: middle; }
"""


# --------------------------------------------------------------------------------------
# Build and check
# --------------------------------------------------------------------------------------

def _write_if_changed(path: Path, text: str) -> None:
    """Write through a temporary name, and only if the text changed (Sphinx then rebuilds
    only the pages whose sources changed)."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def prepare(profile: str, notebooks: Path, src: Path, only: list[str] | None = None) -> dict:
    """Write the Sphinx source folder ``src``; returns what went in."""
    sources = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        sources = [p for p in sources if p.stem[:2] in only]
    if not sources:
        raise SystemExit(f"no chapter matches --only {' '.join(only or [])}")
    stems = [p.stem for p in sources]
    included = set(stems)
    executed, unexecuted, frozen = [], [], {}
    src.mkdir(parents=True, exist_ok=True)
    for stale in src.glob("[0-9][0-9]_*.ipynb"):
        if stale.stem not in included:
            stale.unlink()
    for path in sources:
        done = notebooks / path.name
        nb = json.loads((done if done.exists() else path).read_text(encoding="utf-8"))
        (executed if done.exists() else unexecuted).append(path.stem)
        page = prepare_chapter(nb, path.stem, profile, done.exists(), included)
        frozen[path.stem] = page["metadata"]["cnnbook_site"]
        _write_if_changed(src / path.name, json.dumps(page, indent=1, ensure_ascii=False) + "\n")
    parts = parts_from_readme(stems)
    _write_if_changed(src / "index.md", index_page(profile, parts, executed, unexecuted))
    _write_if_changed(src / "results.md", results_page(profile, included))
    _write_if_changed(src / "conf.py", CONF.format())
    _write_if_changed(src / "_static" / "cnnbook.css", CSS)
    return {"executed": executed, "unexecuted": unexecuted, "widgets": frozen}


def sphinx_build(src: Path, out: Path, doctrees: Path, jobs: str = "1") -> list[str]:
    """Build the HTML into a fresh folder beside ``out``, then put it in place; returns
    Sphinx's warnings. Raises SystemExit if Sphinx fails."""
    from sphinx.cmd.build import build_main

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    warnings_file = doctrees.parent / "sphinx-warnings.txt"
    doctrees.mkdir(parents=True, exist_ok=True)
    try:
        code = build_main(["-b", "html", "-q", "-j", str(jobs), "-d", str(doctrees),
                           "-w", str(warnings_file), str(src), str(partial)])
        if code != 0:
            raise SystemExit(f"sphinx-build failed (exit {code}); see {warnings_file}")
        partial.chmod(umask_mode(0o777))  # mkdtemp made it 0700: readable like any new folder
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out.exists():
            out.rename(old)
        partial.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    text = warnings_file.read_text(encoding="utf-8") if warnings_file.exists() else ""
    return [line for line in text.splitlines() if "WARNING" in line or "ERROR" in line]


def page_links(page: Path) -> list[str]:
    """The href and src values of one HTML page."""
    return re.findall(r"""(?:href|src)=["']([^"']+)["']""", page.read_text(encoding="utf-8"))


def check_links(site: Path) -> list[str]:
    """Every relative link and image of every page that opens no file of the site, as
    'page -> target'; a chapter link left as .ipynb (not turned into its page) counts too."""
    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] == "_static":
            continue  # the theme's Jinja macro files, not pages
        for target in page_links(page):
            parts = urlsplit(target)
            if parts.scheme or target.startswith(("//", "#", "mailto:", "data:", "javascript:")):
                continue
            path = unquote(parts.path)
            if not path:
                continue
            resolved = (page.parent / path).resolve()
            rel = page.relative_to(site)
            if CHAPTER.fullmatch(Path(path).stem) and path.endswith(".ipynb") \
                    and "_sources" not in path:
                broken.append(f"{rel} -> {target} (a notebook link, not its page)")
            elif not resolved.exists() or site.resolve() not in (resolved, *resolved.parents):
                broken.append(f"{rel} -> {target}")
    return broken


def chapter_links(site: Path) -> list[tuple[str, str]]:
    """(page, target) for every link from a page to a chapter page."""
    found = []
    for page in sorted(site.glob("*.html")):
        for target in page_links(page):
            stem = Path(urlsplit(target).path).stem
            if not urlsplit(target).scheme and CHAPTER.fullmatch(stem) and target.split("#")[0].endswith(".html"):
                found.append((page.name, target))
    return found


def site_size(site: Path) -> int:
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file())


def build(profile: str = "cpu", notebooks: Path | None = None, out: Path | None = None,
          only: list[str] | None = None, jobs: str = "1", quiet: bool = False) -> dict:
    """Prepare, build and check the site; returns a summary (raises SystemExit on failure)."""
    notebooks = Path(notebooks or ROOT / "build" / "notebooks" / profile)
    out = Path(out or ROOT / "build" / "site" / profile)
    src = out.parent / f"{out.name}-src"
    start = time.perf_counter()
    info = prepare(profile, notebooks, src, only)
    warnings = sphinx_build(src, out, src.parent / f"{out.name}-doctrees", jobs)
    broken = check_links(out)
    info.update(seconds=time.perf_counter() - start, bytes=site_size(out), warnings=warnings,
                broken=broken, out=out, chapter_links=len(chapter_links(out)))
    if not quiet:
        say = print
        say(f"site: {len(info['executed'])} executed chapters from {notebooks}")
        if info["unexecuted"]:
            say(f"      {len(info['unexecuted'])} chapters not executed (shown without outputs): "
                f"{' '.join(s[:2] for s in info['unexecuted'])}")
        views = sum(c["frozen"] for c in info["widgets"].values())
        missing = sum(c["missing"] for c in info["widgets"].values())
        say(f"      {views} widget views shown from their saved state"
            + (f", {missing} without saved state" if missing else ""))
        for w in warnings[:20]:
            say(f"      {w}")
        if len(warnings) > 20:
            say(f"      ... {len(warnings) - 20} more Sphinx warnings")
        say(f"      {info['chapter_links']} links between chapters; built in {info['seconds']:.1f} s, "
            f"{info['bytes'] / 2**20:.1f} MiB: {out / 'index.html'}")
    if broken:
        raise SystemExit("broken links in the site:\n  " + "\n  ".join(broken[:50]))
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=os.environ.get("PROFILE", "cpu"),
                    choices=["smoke", "cpu", "full"])
    ap.add_argument("--notebooks", type=Path, help="executed notebooks (default build/notebooks/PROFILE)")
    ap.add_argument("--out", type=Path, help="the site folder (default build/site/PROFILE)")
    ap.add_argument("--only", nargs="*", default=[], help="chapter numbers, e.g. 01 02")
    ap.add_argument("--jobs", default="1", help="Sphinx's parallel jobs (a number or auto)")
    args = ap.parse_args()
    notebooks = args.notebooks or ROOT / "build" / "notebooks" / args.profile
    if not notebooks.is_dir() or not any(notebooks.glob("[0-9][0-9]_*.ipynb")):
        print(f"no executed notebooks in {notebooks}: run `make book PROFILE={args.profile}` first",
              file=sys.stderr)
        return 1
    build(args.profile, notebooks, args.out, args.only, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
