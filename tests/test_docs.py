"""The code in the README and in docs/ runs as written (so the docs cannot drift from the code).

Every ```python block of a page runs, in order, in one namespace per page and in a scratch
folder. A block that needs something outside the wheel (a checkpoint from a hub, a user's own
module, minutes of docking) is preceded by `<!-- not run: why -->`, and the reason is kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- not run: (?P<why>[^>]*?) -->\s*\n)?```python\n(?P<code>.*?)```", re.S)


def blocks(page: Path) -> list[tuple[str, str | None]]:
    return [(m["code"], m["why"]) for m in BLOCK.finditer(page.read_text())]


def test_every_page_has_code_and_every_skip_says_why():
    for page in PAGES:
        for _, why in blocks(page):
            assert why is None or len(why.strip()) > 10, f"{page.name}: a skipped block needs a reason"
    assert sum(why is None for page in PAGES for _, why in blocks(page)) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_code_blocks_of_a_page_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, (code, why) in enumerate(blocks(page)):
        if why is None:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
