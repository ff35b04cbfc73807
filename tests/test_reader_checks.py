"""Reader checks on every built document (publication and technical note of each edition).

On the text a reader sees — the HTML body outside ``<code>`` and the PDF text from ``pdftotext`` —
no internal code (``F05``, ``X02``, ``C01``…) in a publication, no snake_case name anywhere (the
technical note sets the raw column names it must cite as ``<code>``), no English code of the
cleaning log; no guillemet followed or preceded by an ordinary space in the HTML, none left alone
at a line end in the PDF; and no PDF page less than a third full, except the last page of a part.
"""
from __future__ import annotations

import html as htmlmod
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.pdf,
    pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed"),
]

EDITIONS = ("2016", "2017", "2018")
DOCUMENTS = [(e, d) for e in EDITIONS for d in ("rapport", "note_technique")]
SNAKE_RE = re.compile(r"\b[A-Za-z0-9]+_[A-Za-z0-9_]+\b")
CODE_RE = re.compile(r"\b[A-Z]{1,2}\d{2}\b")
ENGLISH_CODES = re.compile(r"\b(survey|bp_inventory|duplicate|incomplete|share|count|pass|fail)\b")
MIN_FILL = 1 / 3


def _visible(html: str, keep_code: bool = False) -> str:
    body = html[html.index("<body"):]
    body = re.sub(r"<(svg|style|script)\b.*?</\1>", " ", body, flags=re.S)
    if not keep_code:
        body = re.sub(r"<code>.*?</code>", " ", body, flags=re.S)
    return htmlmod.unescape(re.sub(r"<[^>]+>", " ", body))


def _paths(project: Path, edition: str, document: str) -> tuple[Path, Path]:
    res = project / "results" / edition
    return res / f"{document}_{edition}.html", res / f"{document}_{edition}.pdf"


@pytest.mark.parametrize("edition,document", DOCUMENTS)
def test_no_internal_code_nor_snake_case(built_project, edition, document):
    html_path, pdf_path = _paths(built_project, edition, document)
    html = html_path.read_text(encoding="utf-8")
    text = _visible(html)
    assert not SNAKE_RE.findall(text), sorted(set(SNAKE_RE.findall(text)))[:20]
    assert not ENGLISH_CODES.findall(text), sorted(set(ENGLISH_CODES.findall(text)))
    pdf = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf_path), "-"], capture_output=True, text=True, check=True
    ).stdout
    cited = set(SNAKE_RE.findall(re.sub(r"<[^>]+>", "", " ".join(re.findall(r"<code>(.*?)</code>", html, re.S)))))
    # an identifier set as code may wrap inside a word in the PDF: a fragment of a cited one is the same name
    stray = {t for t in set(SNAKE_RE.findall(pdf)) - cited if not any(t in c for c in cited)}
    assert not stray, sorted(stray)[:20]
    if document == "rapport":  # figure and chart identifiers belong to the technical note only
        assert not CODE_RE.findall(text), sorted(set(CODE_RE.findall(text)))
        assert not CODE_RE.findall(pdf), sorted(set(CODE_RE.findall(pdf)))


@pytest.mark.parametrize("edition,document", DOCUMENTS)
def test_guillemets_hold_no_ordinary_space(built_project, edition, document):
    html_path, pdf_path = _paths(built_project, edition, document)
    text = _visible(html_path.read_text(encoding="utf-8"), keep_code=True)
    assert not re.findall(r"« |\s»(?<! »)| »", text.replace("\u202f»", "")), re.findall(r".{20}(?:« | »).{0,20}", text)[
        :5
    ]
    pdf = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf_path), "-"], capture_output=True, text=True, check=True
    ).stdout
    lines = pdf.splitlines()
    assert not [line for line in lines if line.rstrip().endswith("«")], "a « ends a line"
    assert not [line for line in lines if line.lstrip().startswith("»")], "a » starts a line"


def _page_extent(box) -> tuple[float, set[int]]:
    """Lowest edge of a page box's content, and the parts (ids of ``partie`` or cover elements) it shows."""
    bottom, parts = box.content_box_y(), set()

    def walk(b, part):
        nonlocal bottom
        element = getattr(b, "element", None)
        classes = (element.get("class") or "").split() if element is not None else []
        if "partie" in classes or "cover" in classes:
            part = id(element)
            parts.add(part)
        if type(b).__name__ in ("LineBox", "InlineReplacedBox", "BlockReplacedBox", "TableRowBox"):
            bottom = max(bottom, b.position_y + b.margin_height())
        for c in getattr(b, "children", []):
            if type(b).__name__ != "LineBox":
                walk(c, part)

    for child in box.children:
        if type(child).__name__ != "MarginBox":  # running header and page number
            walk(child, None)
    return bottom, parts


def _page_fills(html: str, base_url: Path) -> list[tuple[float, bool]]:
    """For each PDF page: (fraction of the content height used, whether it is the last page of a part).

    A part is an element of class ``partie`` (or the cover); a page ends a part when the next page
    shows no box of the same part, or when it is the last page.
    """
    from weasyprint import HTML

    from barometre.render import print_html

    document = HTML(string=print_html(html), base_url=str(base_url)).render()
    pages = []
    for page in document.pages:
        box = page._page_box
        top, height = box.content_box_y(), box.height
        bottom, parts = _page_extent(box)
        pages.append(((bottom - top) / height, parts))
    out = []
    for i, (fill, parts) in enumerate(pages):
        last = i == len(pages) - 1 or not (parts & pages[i + 1][1])
        out.append((fill, last))
    return out


@pytest.mark.parametrize("edition,document", DOCUMENTS)
def test_no_page_under_a_third_full_except_at_the_end_of_a_part(built_project, edition, document):
    html_path, _ = _paths(built_project, edition, document)
    fills = _page_fills(html_path.read_text(encoding="utf-8"), html_path.parent)
    thin = [(i + 1, round(f, 2)) for i, (f, last) in enumerate(fills) if f < MIN_FILL and not last]
    assert not thin, f"pages under a third full (page, fill): {thin}"
