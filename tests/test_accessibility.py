"""Accessibility of the built HTML documents: axe-core in headless Chromium at 1280 px and 400 px.

Runs when Chromium and axe-core (``make a11y`` installs both) are present; otherwise skipped,
with the reason shown by ``pytest -rs``.
"""
from __future__ import annotations

import pytest

from barometre.accessibility import BLOCKING, WIDTHS, axe_path, check_file, chromium_path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(chromium_path() is None, reason="chromium absent : apt-get install chromium (ou make a11y)"),
    pytest.mark.skipif(axe_path() is None, reason="axe-core absent : make a11y l'installe depuis npm dans .cache/a11y"),
]

DOCUMENTS = [("2017", "rapport"), ("2017", "note_technique"), ("2018", "rapport"), ("trends", "rapport_tendances")]


@pytest.mark.parametrize("edition,document", DOCUMENTS)
@pytest.mark.parametrize("width", WIDTHS)
def test_no_serious_or_critical_violation(built_project, edition, document, width):
    name = f"{document}.html" if edition == "trends" else f"{document}_{edition}.html"
    violations = check_file(built_project / "results" / edition / name, axe_path(), width)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, blocking


def test_the_check_finds_a_violation(tmp_path):
    """The engine really runs: a page without language, alt text or contrast fails."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body><main><h1>T</h1><img src="x.png">'
                    '<p style="color:#bbb">faible contraste</p></main></body></html>', encoding="utf-8")
    ids = {v["id"] for v in check_file(page, axe_path(), 400)}
    assert {"image-alt", "color-contrast", "html-has-lang"} <= ids
