"""The report as PDF: WeasyPrint with a URL fetcher restricted to the project, deterministic bytes.

The fetcher only serves ``data:`` URIs and files inside the project (never http, https or
another file); the PDF takes its dates from ``SOURCE_DATE_EPOCH`` and a file identifier
derived from the HTML, so two renders give the same bytes.
"""
from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class URLRefusedError(ValueError):
    """The PDF renderer asked for a resource outside the project (refused)."""


def _weasy_fetcher_class():
    from weasyprint.urls import URLFetcher

    class ProjectURLFetcher(URLFetcher):
        """Serves ``data:`` URIs and files inside ``root``; refuses everything else (http, https, other files)."""

        def __init__(self, root: str | Path, **kwargs):
            super().__init__(fail_on_errors=True, allowed_protocols=("file", "data"), **kwargs)
            self.root = Path(root).resolve()

        def fetch(self, url, headers=None):
            check_url(url, self.root)
            return super().fetch(url, headers)

    return ProjectURLFetcher


def check_url(url: str, root: str | Path) -> None:
    """Raise :class:`URLRefusedError` unless ``url`` is a ``data:`` URI or a file inside ``root``."""
    from urllib.parse import unquote, urlparse

    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return
    if scheme != "file":
        raise URLRefusedError(
            f"ressource refusée : {url!r} (seuls les fichiers du projet et les URI data: sont servis)")
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise URLRefusedError(f"ressource refusée : {url!r} (hôte distant)")
    path = Path(unquote(parsed.path)).resolve()
    root = Path(root).resolve()
    if path != root and root not in path.parents:
        raise URLRefusedError(f"ressource refusée : {url!r} (hors du projet {root})")


def project_url_fetcher(root: str | Path = ROOT):
    """A WeasyPrint URL fetcher restricted to ``root`` and ``data:`` URIs (errors stop the rendering)."""
    return _weasy_fetcher_class()(root)


_FIG_SPAN_RE = re.compile(r'<span class="fig"[^>]*>(.*?)</span>', re.S)


def print_html(html: str) -> str:
    """The HTML given to WeasyPrint: the figure markers (``<span class="fig">``) are unwrapped.

    They only serve traceability and tests; WeasyPrint's line breaker fails to go back
    to an earlier break opportunity when a non-breaking run (« (n = 45), ») crosses
    the edge of an inline element, and then leaves a line almost empty.
    """
    return _FIG_SPAN_RE.sub(r"\1", html)


def pdf_identifier(html: str) -> bytes:
    """Stable PDF file identifier derived from the HTML."""
    return hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")


def write_pdf(html: str, path: str | Path, base_url: str | Path, *, root: str | Path | None = None) -> None:
    """Render ``html`` to a PDF at ``path`` with WeasyPrint (print CSS, A4).

    Parameters
    ----------
    html
        The report HTML (as returned by :func:`render_report`).
    path
        Output PDF file.
    base_url
        Base for relative URLs (a folder of the project).
    root
        Folder the URL fetcher may read (default: the project root).
    """
    for name in ("weasyprint.progress", "fontTools"):  # per-step progress and font subsetting chatter
        logging.getLogger(name).setLevel(logging.WARNING)
    from weasyprint import HTML

    root = Path(root) if root is not None else ROOT
    fetcher = project_url_fetcher(root)
    base = Path(base_url).resolve()
    document = HTML(string=print_html(html), base_url=base.as_uri() + "/", url_fetcher=fetcher, media_type="print")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    document.write_pdf(str(path), pdf_identifier=pdf_identifier(html), uncompressed_pdf=False)

