"""French typography (barometre.typography): one rule per test, on strings and on HTML."""
from __future__ import annotations

from barometre.typography import typeset, typeset_html

NNBSP, NBSP = "\u202f", "\u00a0"


def test_narrow_space_before_high_punctuation_and_percent():
    assert typeset("Oui ; non : peut-être ! Vraiment ? 25 %") == (
        f"Oui{NNBSP}; non{NNBSP}: peut-être{NNBSP}! Vraiment{NNBSP}? 25{NNBSP}%")
    assert typeset("Quoi? 40%") == f"Quoi{NNBSP}? 40{NNBSP}%"
    assert typeset("https://exemple.fr à 12:30") == "https://exemple.fr à 12:30"  # no space added before a colon


def test_guillemets_hold_narrow_spaces_whatever_was_typed():
    for typed in ("« oui »", "«oui»", f"«{NBSP}oui{NBSP}»"):
        assert typeset(typed) == f"«{NNBSP}oui{NNBSP}»"


def test_numbers_and_units_never_split():
    assert typeset("4 263 602 habitants") == f"4{NNBSP}263{NNBSP}602{NBSP}habitants"
    assert typeset("De 1 000 à 5 000 €") == f"De 1{NNBSP}000{NBSP}à 5{NNBSP}000{NBSP}€"
    assert typeset("n = 45") == f"n{NBSP}={NBSP}45"
    assert typeset("en 2017 et 2018") == f"en 2017{NBSP}et 2018"  # years are not grouped


def test_apostrophe_ellipsis_ordinals_and_inclusive_forms():
    assert typeset("l'outil d'un élu...") == "l’outil d’un élu…"
    assert typeset("le 1er rang, la 2e édition, la 1re fois", html=True) == (
        "le 1<sup>er</sup> rang, la 2<sup>e</sup> édition, la 1<sup>re</sup> fois")
    assert typeset("les élu·es et un·e") .startswith("les élues et élus")
    assert typeset("Adjoint·e au maire") == "Adjointe ou adjoint au maire"


def test_html_text_nodes_only():
    html = ('<p title="l\'a : b">L&#39;outil &amp; « <span class="fig">52,7 %</span> » ; 1er</p>'
            "<style>a:b;</style><code>tool_type ; x</code><svg><text>« a »</text></svg>")
    out = typeset_html(html)
    assert out.startswith(
        f'<p title="l\'a : b">L’outil &amp; «{NNBSP}<span class="fig">52,7{NNBSP}%</span>'
        f"{NNBSP}»{NNBSP}; 1<sup>er</sup></p>"
    )
    assert "<style>a:b;</style><code>tool_type ; x</code><svg><text>« a »</text></svg>" in out
    assert typeset_html("a &lt;b&gt; c") == "a &lt;b&gt; c"  # escaped text stays escaped


def test_idempotent():
    text = "« Oui » : 25 % de l'ensemble ; 1 000 outils"
    once = typeset(text)
    assert typeset(once) == once
