"""Links between chapters: every relative link in a notebook's prose opens a file that exists,
and a link that says "chapter NN" opens chapter NN (so a renumbered chapter cannot leave a
link pointing at its old neighbour). README.md and CONTRIBUTING.md are checked the same way."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def _markdown(nb: Path) -> str:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _relative_links(text: str):
    for label, target in LINK.findall(text):
        if not target.startswith(("http://", "https://", "#", "mailto:")):
            yield label, target.split("#")[0]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_link_in_a_chapter_opens_an_existing_file_of_the_right_chapter(nb):
    text = _markdown(nb)
    broken = [t for _, t in _relative_links(text) if t and not (nb.parent / t).exists()]
    assert not broken, f"{nb.name} links to missing files: {broken}"
    wrong = [(label, t) for label, t in _relative_links(text)
             if (m := re.fullmatch(r"(?i)chapters? (\d{2})", label.strip()))
             and re.fullmatch(r"\d{2}_\w+\.ipynb", t) and t[:2] != m.group(1)]
    assert not wrong, f"{nb.name}: the label names another chapter than the link opens: {wrong}"


@pytest.mark.parametrize("doc", ["README.md", "CONTRIBUTING.md"])
def test_every_relative_link_in_the_docs_opens_an_existing_file(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    broken = [t for _, t in _relative_links(text) if t and not (ROOT / t).exists()]
    assert not broken, f"{doc} links to missing files: {broken}"


def test_the_chapters_have_links_between_them():
    """A guard on the test itself: the pattern finds the links the chapters do have."""
    total = sum(1 for nb in NOTEBOOKS for _ in _relative_links(_markdown(nb)))
    assert total > 100, total
