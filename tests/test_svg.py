"""SVG post-processing of the charts (charts.accessible_svg): an XML tree, not regular expressions."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from barometre.charts import ChartError, accessible_svg

SVG = ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
       '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
       '<svg xmlns:xlink="http://www.w3.org/1999/xlink" xmlns="http://www.w3.org/2000/svg" id="chart-Z-svg">'
       '<style type="text/css">*{stroke-linejoin: round}</style>'
       '<defs><clipPath id="p1"><rect/></clipPath></defs>'
       '<g style="fill: #0072b2; stroke: none; mix-blend-mode: normal" clip-path="url(#p1)">'
       '<use xlink:href="#p1"/><use xlink:href="#elsewhere"/><text>25,6\u202f%</text></g></svg>')


def test_styles_become_attributes_and_ids_are_prefixed():
    out = accessible_svg(SVG, "Z", "Titre", "Texte")
    root = ET.fromstring(out)
    ns = {"s": "http://www.w3.org/2000/svg", "x": "http://www.w3.org/1999/xlink"}
    assert root.find("s:style", ns) is None
    g = root.find("s:g", ns)
    assert (g.get("fill"), g.get("stroke"), g.get("style")) == ("#0072b2", "none", "mix-blend-mode: normal")
    assert g.get("clip-path") == "url(#chart-Z-p1)"
    refs = [u.get("{http://www.w3.org/1999/xlink}href") for u in g.findall("s:use", ns)]
    assert refs == ["#chart-Z-p1", "#elsewhere"]  # an id absent from the chart is left alone
    assert root.get("id") == "chart-Z-svg"  # already prefixed: not prefixed twice
    assert [c.tag.split("}")[1] for c in root][:2] == ["title", "desc"]
    assert g.find("s:text", ns).text == "25,6\u202f%"


def test_output_does_not_depend_on_elementtree_global_prefixes():
    """Another library may register its own prefixes: the SVG text stays the same."""
    before = accessible_svg(SVG, "Z", "Titre", "Texte")
    saved = dict(ET._namespace_map)
    try:
        ET.register_namespace("svgx", "http://www.w3.org/2000/svg")
        ET.register_namespace("", "urn:example:other")
        assert accessible_svg(SVG, "Z", "Titre", "Texte") == before
    finally:
        ET._namespace_map.clear()
        ET._namespace_map.update(saved)
    assert before.startswith('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"')


def test_not_svg_is_an_error_naming_the_chart():
    with pytest.raises(ChartError, match="chart Z"):
        accessible_svg("<html/>", "Z", "T", "A")
    with pytest.raises(ChartError, match="chart Z: the SVG output is not well-formed"):
        accessible_svg("<svg", "Z", "T", "A")
