"""SVG post-processing of the charts: matplotlib's SVG made fit to inline in HTML and accessible.

The SVG root alone (no prolog, no DOCTYPE), ``<style>`` blocks removed and inline styles turned
into presentation attributes, every ``id`` prefixed by the chart's so that several charts can
share one page, and ``role="img"``, ``aria-label``, ``<title>`` and ``<desc>`` (the alt text).
"""
from __future__ import annotations

import re
from xml.etree import ElementTree as ET

from barometre.chart_drawing import ChartError

# matplotlib's own SVG is parsed with the standard XML parser (trusted input: no entity, no
# internal DTD subset), edited as a tree and written back; no regular expression on markup.
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
#: Prefix of each namespace matplotlib writes (SVG is the default one). The tree is written back
#: with these prefixes by :func:`_serialise`, not through ElementTree's process-wide prefix registry
#: (which any other library may change).
_PREFIXES = {
    _SVG_NS: "", _XLINK_NS: "xlink", "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://purl.org/dc/elements/1.1/": "dc", "http://creativecommons.org/ns#": "cc",
}
_HREF_ATTRIBUTES = frozenset({"href", f"{{{_XLINK_NS}}}href"})
_URL_REF_RE = re.compile(r"url\(#([^)]+)\)")  # inside one attribute value, e.g. clip-path="url(#p1)"
#: SVG presentation attributes matplotlib writes as inline styles.
PRESENTATION_ATTRIBUTES = frozenset({
    "fill", "fill-opacity", "stroke", "stroke-width", "stroke-linejoin", "stroke-linecap", "stroke-opacity",
    "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit", "opacity", "font-size", "font-family",
    "font-weight", "font-style", "text-anchor", "clip-path",
})


def _style_to_attributes(element: ET.Element) -> None:
    """``style="fill: #0072b2; font-size: 8px"`` → ``fill="#0072b2" font-size="8px"``, in place.

    Inline SVG in HTML: presentation attributes are SVG, not document CSS, so an HTML
    renderer never misreads them (WeasyPrint warns on each SVG property in a style).
    Declarations that are not presentation attributes stay in ``style``.
    """
    style = element.attrib.pop("style", None)
    if style is None:
        return
    rest = []
    for decl in style.split(";"):
        if ":" not in decl:
            continue
        name, value = (p.strip() for p in decl.split(":", 1))
        if name in PRESENTATION_ATTRIBUTES:
            element.set(name, value)
        else:
            rest.append(f"{name}: {value}")
    if rest:
        element.set("style", "; ".join(rest))


def _prefix_ids(root: ET.Element, prefix: str) -> None:
    """Prefix every ``id`` (and its references) so several SVGs can be inlined in one HTML page."""
    renamed = {}
    for el in root.iter():
        name = el.get("id")
        if name:
            renamed[name] = name if name.startswith(prefix) else prefix + name
            el.set("id", renamed[name])

    def ref(m: re.Match) -> str:
        return f"url(#{renamed.get(m.group(1), m.group(1))})"

    for el in root.iter():
        for attr, value in el.attrib.items():
            if "url(#" in value:
                el.set(attr, _URL_REF_RE.sub(ref, value))
            elif attr in _HREF_ATTRIBUTES and value.startswith("#") and value[1:] in renamed:
                el.set(attr, "#" + renamed[value[1:]])


def _serialise(root: ET.Element, chart_id: str) -> str:
    """The tree as SVG text: ``{uri}name`` written ``prefix:name``, the prefixes declared on the root."""
    used: set[str] = set()

    def name(qualified: str) -> str:
        if not qualified.startswith("{"):
            return qualified
        uri, local = qualified[1:].split("}", 1)
        if uri not in _PREFIXES:
            raise ChartError(f"chart {chart_id}: unexpected XML namespace {uri} in the SVG output")
        used.add(uri)
        return f"{_PREFIXES[uri]}:{local}" if _PREFIXES[uri] else local

    for el in root.iter():
        el.tag = name(el.tag)
        el.attrib = {name(k): v for k, v in el.attrib.items()}
    declarations = {f"xmlns:{_PREFIXES[u]}" if _PREFIXES[u] else "xmlns": u
                    for u in sorted(used, key=lambda u: _PREFIXES[u])}
    root.attrib = {**declarations, **root.attrib}
    return ET.tostring(root, encoding="unicode")


def accessible_svg(svg: str, chart_id: str, title: str, alt: str) -> str:
    """The SVG root element alone, with ``role="img"``, ``aria-label``, ``<title>`` and ``<desc>``.

    The XML prolog and DOCTYPE are left out (the parser drops them) so that the same
    text can be saved as a file and inlined in HTML; ``<style>`` blocks are removed and
    inline styles become presentation attributes.
    """
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as exc:
        raise ChartError(f"chart {chart_id}: the SVG output is not well-formed XML ({exc})") from None
    if root.tag != f"{{{_SVG_NS}}}svg":
        raise ChartError(f"chart {chart_id}: no <svg> element in the output")
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == f"{{{_SVG_NS}}}style":
                parent.remove(child)
    for el in root.iter():
        _style_to_attributes(el)
    _prefix_ids(root, f"chart-{chart_id}-")
    root.set("role", "img")
    root.set("aria-labelledby", f"chart-{chart_id}-title chart-{chart_id}-desc")
    root.set("aria-label", alt)
    for position, (tag, text) in enumerate((("title", title), ("desc", alt))):
        element = ET.Element(f"{{{_SVG_NS}}}{tag}", {"id": f"chart-{chart_id}-{tag}"})
        element.text = text
        root.insert(position, element)
    return _serialise(root, chart_id).rstrip() + "\n"

