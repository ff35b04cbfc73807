"""French typography of every text a reader sees (report HTML, technical note, editorial prose).

:func:`typeset` applies the rules to one plain string; :func:`typeset_html`
applies them to the text between the tags of an HTML document (never inside a
tag, an attribute, ``<style>``, ``<svg>``, ``<code>`` or ``<head>``). Rules:

* narrow no-break space U+202F before « ; : ! ? » and « % », and inside « »;
* U+202F between groups of thousands (« 1 000 »), no-break space U+00A0
  between a number and the word that follows it (« 45 outils », « 5 000 € »);
* typographic apostrophe « ’ » instead of « ' »; ellipsis « … » for « ... »;
* ordinals in superscript in HTML (1<sup>er</sup>, 2<sup>e</sup>);
* inclusive forms written out (« élu·es » → « élues et élus »), which read
  better aloud and never break at the middle dot.
"""
from __future__ import annotations

import html as _html
import re

from barometre.fr import NBSP, NNBSP

__all__ = ["typeset", "typeset_html", "INCLUSIVE_FORMS"]

#: Inclusive forms of the questionnaires and the codebook, written out in full.
INCLUSIVE_FORMS = {
    "élu·es": "élues et élus",
    "élu·e": "élue ou élu",
    "Élu·e": "Élue ou élu",
    "adjoint·es": "adjointes et adjoints",
    "Adjoint·e": "Adjointe ou adjoint",
    "adjoint·e": "adjointe ou adjoint",
    "chargé·es": "chargées et chargés",
    "Chargé·e": "Chargée ou chargé",
    "chargé·e": "chargée ou chargé",
    "président·e": "présidente ou président",
    "vice-président·e": "vice-présidente ou vice-président",
    "Conseiller·ère": "Conseillère ou conseiller",
    "délégué·e": "délégué(e)",
    "Directeur·rice": "Directrice ou directeur",
    "général·e": "général(e)",
    "Chef·fe": "Cheffe ou chef",
    "chef·fe": "cheffe ou chef",
    "Technicien·ne": "Technicienne ou technicien",
}
_INCLUSIVE_RE = re.compile("|".join(re.escape(k) for k in sorted(INCLUSIVE_FORMS, key=len, reverse=True)))

_SPACES = f" {NBSP}{NNBSP}"
_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\.\.\."), "…"),
    (re.compile(r"(?<=\w)'|'(?=\w)"), "’"),
    # « x » : narrow no-break space inside the guillemets, whatever space was typed (or none).
    (re.compile(f"«[{_SPACES}]*"), f"«{NNBSP}"),
    (re.compile(f"[{_SPACES}]*»"), f"{NNBSP}»"),
    # ; ! ? and % : narrow no-break space before, replacing a typed space (or added after a word).
    (re.compile(f"[{_SPACES}]+(?=[;!?%])"), NNBSP),
    (re.compile(r"(?<=[\w)])(?=[;!?](?:\s|$|<))"), NNBSP),
    (re.compile(r"(?<=\d)(?=%)"), NNBSP),
    # : narrow no-break space before, replacing a typed space (not in « 12:30 » or « https: »).
    (re.compile(f"[{_SPACES}]+(?=:)"), NNBSP),
    # Thousands: 4 263 602 → U+202F between groups.
    (re.compile(r"(?<=\d)[ \u00a0](?=\d{3}(?!\d))"), NNBSP),
    # A number never ends a line away from its unit or noun (« 45 outils », « 5 000 € », « n = 45 »).
    (re.compile(r"(?<=\d) (?=[^\W\d_]|€)"), NBSP),
    (re.compile(r"(?<=\bn) = (?=\d)"), f"{NBSP}={NBSP}"),
]
_ORDINAL_RE = re.compile(r"\b(1)(er|re)\b|\b(\d+)(e)\b(?![’'])")


def typeset(text: str, *, html: bool = False) -> str:
    """Apply the French typographic rules to a plain string.

    Parameters
    ----------
    text
        Text without tags (a paragraph, a label, a title).
    html
        Whether the result goes into HTML: ordinals are then put in ``<sup>``
        (the caller escapes ``text`` first).

    Examples
    --------
    >>> typeset("« oui » : 25 %") == "«\\u202foui\\u202f»\\u202f: 25\\u202f%"
    True
    """
    out = _INCLUSIVE_RE.sub(lambda m: INCLUSIVE_FORMS[m.group(0)], text)
    for pattern, repl in _RULES:
        out = pattern.sub(repl, out)
    return _ORDINAL_RE.sub(_sup, out) if html else out


def _sup(m: re.Match) -> str:
    return f"{m.group(1)}<sup>{m.group(2)}</sup>" if m.group(1) else f"{m.group(3)}<sup>{m.group(4)}</sup>"


_SKIP_RE = re.compile(r"(<(svg|style|code|head|script|title|sup)\b.*?</\2>|<[^>]*>)", re.S | re.I)


def typeset_html(html: str) -> str:
    """Apply :func:`typeset` to the text nodes of an HTML document (tags and code untouched).

    Entities of the text are decoded before the rules and ``& < > "`` escaped again after (as jinja does),
    so that a rule never cuts an entity (``&amp;``) and sees ``&nbsp;`` as the space it is.
    """
    parts = _SKIP_RE.split(html)
    out: list[str] = []
    i = 0
    while i < len(parts):
        text = parts[i]
        if text:
            text = typeset(_html.unescape(text))
            text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
            out.append(_ORDINAL_RE.sub(_sup, text))
        if i + 1 < len(parts):
            out.append(parts[i + 1])
        i += 3  # split keeps the whole match and the tag-name group
    return "".join(out)
