"""Accessibility check of the built HTML documents: axe-core in headless Chromium, at two widths.

Each document is copied with axe-core (npm package ``axe-core``, installed by ``make a11y``)
and a small script inlined at its end; Chromium loads the copy with ``--dump-dom`` and a
virtual-time budget, so that the asynchronous ``axe.run()`` finishes before the DOM is
dumped; the violations are read back from an attribute of ``<body>``. No network: the
documents are self-contained and axe is inlined.

Run: ``python -m barometre.accessibility [--axe PATH] FILE.html…`` (exit 1 on a serious or
critical violation, at 1280 px or 400 px).
"""
from __future__ import annotations

import argparse
import html as htmlmod
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["WIDTHS", "BLOCKING", "chromium_path", "axe_path", "check_file"]

WIDTHS = (1280, 400)
BLOCKING = ("serious", "critical")
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_AXE = ROOT / ".cache" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio")
_RUNNER = """<script>
axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
  var out = r.violations.map(function (v) {
    return {id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(function (n) { return n.target.join(" "); })};
  });
  document.body.setAttribute("data-axe", JSON.stringify(out));
}).catch(function (e) { document.body.setAttribute("data-axe-error", String(e)); });
</script>"""


def chromium_path() -> str | None:
    """The Chromium binary on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def axe_path(path: str | Path | None = None) -> Path | None:
    """axe.min.js (``make a11y`` installs it under .cache/a11y), or None."""
    p = Path(path) if path else DEFAULT_AXE
    return p if p.is_file() else None


def check_file(html_file: str | Path, axe: str | Path, width: int, chromium: str | None = None) -> list[dict]:
    """Violations axe-core finds in ``html_file`` displayed ``width`` pixels wide.

    Returns
    -------
    list of dict
        ``id``, ``impact``, ``help`` and up to five ``nodes`` (CSS selectors) per violation.
    """
    chromium = chromium or chromium_path()
    if chromium is None:
        raise FileNotFoundError("chromium introuvable (apt-get install chromium)")
    page = Path(html_file).read_text(encoding="utf-8")
    script = Path(axe).read_text(encoding="utf-8").replace("</script", "<\\/script")
    injected = page.replace("</body>", f"<script>{script}</script>{_RUNNER}</body>")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "page.html"
        copy.write_text(injected, encoding="utf-8")
        out = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", f"--window-size={width},900",
             "--virtual-time-budget=30000", "--dump-dom", copy.as_uri()],
            capture_output=True, text=True, timeout=300)
    m = re.search(r'<body[^>]*\bdata-axe="([^"]*)"', out.stdout)
    if not m:
        err = re.search(r'data-axe-error="([^"]*)"', out.stdout)
        raise RuntimeError(f"{html_file} ({width} px) : axe n'a pas rendu de résultat"
                           + (f" ({htmlmod.unescape(err.group(1))})" if err else f" ({out.stderr[-500:]})"))
    return json.loads(htmlmod.unescape(m.group(1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Vérification d'accessibilité (axe-core, Chromium sans écran).")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--axe", default=None, help="chemin de axe.min.js")
    args = parser.parse_args(argv)
    axe = axe_path(args.axe)
    if axe is None:
        print("axe-core absent : lancez « make a11y », qui l'installe depuis npm", file=sys.stderr)
        return 2
    failed = False
    for f in args.files:
        for width in WIDTHS:
            violations = check_file(f, axe, width)
            blocking = [v for v in violations if v["impact"] in BLOCKING]
            failed |= bool(blocking)
            print(
                f"{f} à {width} px : {len(blocking)} violation(s) grave(s) ou critique(s), {len(violations)} au total"
            )
            for v in violations:
                print(f"  [{v['impact']}] {v['id']} : {v['help']} — {', '.join(v['nodes'])}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
