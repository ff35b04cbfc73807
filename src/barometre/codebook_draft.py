"""A codebook drafted from an SPSS export: ``python -m barometre codebook draft export.sav --like codebooks/2017.yaml``.

The export already carries most of what a codebook says: each variable label holds
the question's wording (LimeSurvey adds the sub-question in brackets), each value
label an answer code and its label, each user-missing declaration the « ne sait
pas » code. Column names give the structure: ``X_SQ001``… are the options of a
multiple-response question, ``X_R1``… the ranks of a ranking, ``O1_X``, ``O2_X``… the
same question asked for each described tool, ``X_other`` the text typed under
« Autre ». What the export cannot say — harmonised names, answer keys, the question
type among single / ordinal / band, filters — is taken from an earlier edition's
codebook (``--like``) when a question matches it (same raw column, else the most
similar wording), and every such guess is marked « À VÉRIFIER » in a YAML comment
for the person who reviews the draft. The draft validates against
``schemas/codebook.schema.json`` as written.
"""
from __future__ import annotations

import difflib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from barometre.codebook import question_wording_of_label

REVIEW = "À VÉRIFIER"
#: LimeSurvey metadata columns and direct identifiers, by their usual names.
METADATA = ("submitdate", "startdate", "lastpage", "startlanguage", "datestamp", "refurl", "seed")
DIRECT_IDENTIFIERS = re.compile(r"^(IDENT_.*|ipaddr|email|token|firstname|lastname)$", re.IGNORECASE)
TOOL_BLOCK = re.compile(r"^O(\d+)_(.+)$")
OPTION = re.compile(r"^(.+)_SQ(\d+)$")
RANK = re.compile(r"^(.+)_R(\d+)$")
OTHER = re.compile(r"^(.+)_other$")
SIMILAR = 0.75  # wording similarity (difflib ratio on normalised text) above which a question is matched


@dataclass
class Draft:
    """A drafted codebook (``data``, valid against the schema) and the review notes of each question id."""

    data: dict
    reviews: dict[str, list[str]] = field(default_factory=dict)


def _slug(text: str) -> str:
    from barometre.clean import normalise_text

    words = re.sub(r"[^a-z0-9]+", "_", normalise_text(text)).strip("_")
    return (words[:40].rstrip("_") or "x") if not words[:1].isdigit() else "x_" + words[:38]


def _stem(raw: str) -> str:
    """Column name without its option, rank or « autre » suffix.

    ``LEVIERS_SQ001`` and ``LEVIERS_R{rank}`` both give ``LEVIERS``.
    """
    return re.sub(r"_(SQ\d+|R\d+|R\{rank\}|other)$", "", raw)


def _code(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _bracket(label: str | None) -> str:
    m = re.search(r"\[([^\[\]]*)\]\s*$", label or "")
    return m.group(1).strip() if m else (label or "")


class _Like:
    """The earlier edition's codebook, indexed for matching."""

    def __init__(self, data: dict | None) -> None:
        from barometre.clean import normalise_text

        self.data = data or {}
        self.questions = list(self.data.get("questions", []))
        self.by_raw: dict[str, dict] = {}
        self.by_stem: dict[str, dict] = {}
        for q in self.questions:
            for raw in [q.get("raw")] + [o["raw"] for o in q.get("options", [])]:
                if raw:
                    self.by_raw.setdefault(raw, q)
                    self.by_stem.setdefault(_stem(raw), q)
        self.norm = normalise_text

    def match(self, raws: list[str], wording: str, used: set[str]) -> tuple[dict | None, str]:
        """The earlier question of these raw columns, else of the most similar wording; and how it was found."""
        for raw in raws:
            q = self.by_raw.get(raw)
            if q is not None and q["harmonised"] not in used:
                return q, f"même colonne brute que {q['id']} de l'édition de référence"
        for raw in raws:  # same question asked another way (check boxes one year, ranks the next)
            q = self.by_stem.get(_stem(raw))
            if q is not None and q["harmonised"] not in used:
                return q, f"mêmes colonnes brutes ({_stem(raw)}…) que {q['id']} de l'édition de référence"
        best, score = None, 0.0
        target = self.norm(wording)
        for q in self.questions:
            if q["harmonised"] in used:
                continue
            r = difflib.SequenceMatcher(None, target, self.norm(q["wording"])).ratio()
            if r > score:
                best, score = q, r
        if best is not None and score >= SIMILAR:
            return best, f"libellé proche de {best['id']} de l'édition de référence ({score:.0%})"
        return None, ""

    def key_of(self, earlier: dict | None, label: str, fallback: str) -> str:
        for entry in (earlier or {}).get("codes", []) + (earlier or {}).get("options", []):
            if self.norm(entry["label"]) == self.norm(label):
                return entry["key"]
        return fallback


def draft_codebook(export: str | Path, like: str | Path | None = None, edition: str | None = None) -> Draft:
    """Draft a codebook from an SPSS export's metadata (no answer is read).

    Parameters
    ----------
    export
        The ``.sav`` file.
    like
        Codebook of an earlier edition: harmonised names, keys, types and filters are
        proposed from it.
    edition
        Edition of the draft (default: the four-digit year in the file name).

    Returns
    -------
    Draft
        The codebook as a mapping, and the review notes by question id.
    """
    import pyreadstat

    export = Path(export)
    _, meta = pyreadstat.read_sav(str(export), metadataonly=True, user_missing=True)
    columns = list(meta.column_names)
    labels = meta.column_names_to_labels
    values = meta.variable_value_labels or {}
    missing = meta.missing_ranges or {}
    earlier_data = yaml.safe_load(Path(like).read_text(encoding="utf-8")) if like else None
    ref = _Like(earlier_data)
    found = re.search(r"(19|20)\d{2}", export.name)
    year = str(edition or (found.group(0) if found else "0000"))
    # an SPSS export declares its missing values as {lo, hi} ranges; a single value has lo == hi
    missing_code = next(
        (int(r["lo"]) for rs in missing.values() for r in rs if isinstance(r, dict) and r.get("lo") == r.get("hi")), 99
    )

    # ---- structure from column names
    id_column = "id" if "id" in columns else columns[0]
    blocks = sorted({int(m.group(1)) for c in columns if (m := TOOL_BLOCK.match(c))})
    n_blocks = max(blocks) if blocks and blocks == list(range(1, max(blocks) + 1)) and len(blocks) > 1 else 0

    def pattern_of(col: str) -> tuple[str, int | None]:
        m = TOOL_BLOCK.match(col)
        if n_blocks and m:
            return f"O{{i}}_{m.group(2)}", int(m.group(1))
        return col, None

    drop = [c for c in columns if DIRECT_IDENTIFIERS.match(c)]
    metadata = [c for c in columns if c in METADATA]
    like_ident = ref.data.get("identifiers", {})
    pseudonymise = {c: v for c, v in like_ident.get("pseudonymise", {}).items() if c in columns}
    skip = {id_column, *drop, *metadata, *pseudonymise}
    count_column = (ref.data.get("sources", {}).get("survey", {}).get("tool_blocks") or {}).get("count_column")
    if n_blocks and count_column not in columns:
        count_column = next((c for c in columns if c.upper().startswith("NB_")), None)

    # group the columns of block 1 (or outside blocks) into questions, in export order
    groups: OrderedDict[str, dict] = OrderedDict()
    for col in columns:
        if col in skip:
            continue
        pat, block = pattern_of(col)
        if block not in (None, 1):
            continue
        if m := OTHER.match(pat):
            base = m.group(1)
            target = next((g for g in groups.values() if g["base"] == base), None)
            if target is not None:
                target["other"] = pat
                continue
        m = OPTION.match(pat)
        if m and set(values.get(col, {})) <= {0.0, 1.0}:  # check boxes: no labels, or « coché / non coché »
            base = m.group(1)
            groups.setdefault(base, {"base": base, "kind": "multiple", "columns": [], "other": None})["columns"].append(
                (pat, col)
            )
            continue
        if (m := RANK.match(pat)) and values.get(col):
            base = m.group(1)
            groups.setdefault(base, {"base": base, "kind": "ranking", "columns": [], "other": None})["columns"].append(
                (pat, col)
            )
            continue
        kind = (
            "coded" if values.get(col) else ("text" if meta.readstat_variable_types.get(col) == "string" else "numeric")
        )
        groups[pat] = {"base": pat, "kind": kind, "columns": [(pat, col)], "other": None}

    questions: list[dict] = []
    reviews: dict[str, list[str]] = {}
    used: set[str] = set()
    id_map: dict[str, str] = {}
    for n, g in enumerate(groups.values(), start=1):
        first_pat, first_col = g["columns"][0]
        wording = question_wording_of_label(labels.get(first_col) or first_col)
        raws = [p for p, _ in g["columns"]]
        earlier, how = ref.match(raws, wording, used)
        notes = []
        qid = f"Q{n:02d}"  # in export order; the earlier edition's ids are mapped in its filters
        if earlier:
            id_map[earlier["id"]] = qid
        if earlier:
            harmonised = earlier["harmonised"]
            notes.append(f"nom harmonisé {harmonised!r} repris : {how}")
        else:
            harmonised = _slug(wording)
            notes.append(
                "nom harmonisé proposé d'après le libellé (aucune question proche dans l'édition de référence)"
            )
        while harmonised in used:
            harmonised += "_2"
        used.add(harmonised)
        level = "tool" if TOOL_BLOCK.match(first_col) and n_blocks and first_pat.startswith("O{i}_") else "respondent"
        q: dict[str, Any] = {"id": qid, "harmonised": harmonised}
        if earlier and earlier.get("part"):
            q["part"] = earlier["part"]
        q.update(level=level)
        if g["kind"] == "multiple":
            q.update(type="multiple", wording=wording)
            options = []
            for pat, col in g["columns"]:
                label = _bracket(labels.get(col))
                m = OPTION.match(pat)
                is_nsp = m and int(m.group(2)) == missing_code
                key = "nsp" if is_nsp else ref.key_of(earlier, label, _slug(label))
                opt = {"key": key, "label": label, "raw": pat}
                if is_nsp:
                    opt["exclusive"] = True
                options.append(opt)
            _dedupe_keys(options)
            q["options"] = options
            if any(o.get("exclusive") for o in options):
                q["nsp"] = "show"
        elif g["kind"] == "ranking":
            pat0 = g["columns"][0][0]
            q.update(type="ranking", wording=wording, raw=RANK.sub(r"\1_R{rank}", pat0), ranks=len(g["columns"]))
            q["codes"] = _codes(values.get(first_col, {}), missing_code, ref, earlier)
        elif g["kind"] == "coded":
            qtype = earlier["type"] if earlier and earlier["type"] in ("single", "ordinal", "band") else "single"
            if not earlier or earlier["type"] not in ("single", "ordinal", "band"):
                notes.append("type « single » par défaut : « ordinal » ou « band » si les réponses sont ordonnées")
            q.update(type=qtype, wording=wording, raw=first_pat)
            q["nsp"] = earlier.get("nsp", "drop") if earlier else "drop"
            q["codes"] = _codes(values.get(first_col, {}), missing_code, ref, earlier)
            if earlier and earlier.get("top2") and all(k in {c["key"] for c in q["codes"]} for k in earlier["top2"]):
                q["top2"] = list(earlier["top2"])
        else:
            q.update(type=g["kind"], wording=wording, raw=first_pat)
            if g["kind"] == "numeric" and earlier and earlier.get("range"):
                q["range"] = list(earlier["range"])
                notes.append("bornes reprises de l'édition de référence : à mettre à jour")
            if g["kind"] == "text" and earlier and earlier.get("public"):
                q["public"] = True
        if g["other"]:
            q["other_text"] = g["other"]
        if earlier and earlier.get("filter") and q["type"] != "text":
            q["filter"] = dict(earlier["filter"])
            notes.append(f"filtre repris de l'édition de référence ({earlier['filter']['question']})")
        questions.append(q)
        reviews[qid] = notes
    for q in questions:
        if q.get("filter"):
            q["filter"]["question"] = id_map.get(q["filter"]["question"], q["filter"]["question"] + "?")
    _check_filters(questions, reviews)

    sources: dict[str, Any] = {"survey": {"level": "respondent", "id_column": id_column}}
    if n_blocks and count_column:
        sources["survey"]["tool_blocks"] = {"count": n_blocks, "count_column": count_column, "index": "{i}"}
    data: dict[str, Any] = {
        "edition": int(year) if str(year).isdigit() else year,
        "title": f"Baromètre de la démocratie locale numérique, édition {year}",
        "missing": {"code": missing_code, "label": "Ne se prononce pas", "key": "nsp"},
        "sources": sources,
        "identifiers": {"drop": drop, "pseudonymise": pseudonymise, "metadata": metadata},
    }
    if ref.data.get("parts") and any(q.get("part") for q in questions):
        data["parts"] = {str(k): v for k, v in ref.data["parts"].items()}
    data["questions"] = questions
    return Draft(data, reviews)


def _codes(labels: dict, missing_code: int, ref: _Like, earlier: dict | None) -> list[dict]:
    codes = [{"code": _code(c), "key": ref.key_of(earlier, str(lab), _slug(str(lab))), "label": str(lab)}
             for c, lab in sorted(labels.items()) if _code(c) != missing_code]
    _dedupe_keys(codes)
    return codes


def _dedupe_keys(entries: list[dict]) -> None:
    seen: set[str] = set()
    for e in entries:
        while e["key"] in seen:
            e["key"] += "_2"
        seen.add(e["key"])


def _check_filters(questions: list[dict], reviews: dict[str, list[str]]) -> None:
    """Drop a filter taken from the earlier edition when its question or keys are not in the draft."""
    by_id = {q["id"]: q for q in questions}
    for q in questions:
        f = q.get("filter")
        if not f:
            continue
        target = by_id.get(f["question"])
        keys = {c["key"] for c in (target or {}).get("codes", [])}
        if target is None or not set(f["keys"]) <= keys:
            del q["filter"]
            reviews[q["id"]].append("le filtre de l'édition de référence ne s'applique pas à ce questionnaire : retiré")


def draft_yaml(draft: Draft, export: str | Path, like: str | Path | None) -> str:
    """The draft as YAML, each question preceded by its review notes (« # À VÉRIFIER : … »)."""
    head = [
        f"# Brouillon de codebook tiré de {Path(export).name} par « python -m barometre codebook draft »"
        + (f", noms harmonisés proposés d'après {like}" if like else "") + ".",
        f"# Chaque ligne « {REVIEW} » signale une supposition à relire avant d'utiliser ce codebook.",
        "",
    ]
    body = {k: v for k, v in draft.data.items() if k != "questions"}
    text = yaml.safe_dump(body, allow_unicode=True, sort_keys=False, width=120)
    out = [*head, text.rstrip("\n"), "questions:"]
    for q in draft.data["questions"]:
        out += [f"  # {REVIEW} : {note}" for note in draft.reviews.get(q["id"], [])]
        item = yaml.safe_dump([q], allow_unicode=True, sort_keys=False, width=120).rstrip("\n")
        out += ["  " + line for line in item.splitlines()]
    return "\n".join(out) + "\n"


def write_draft(export: str | Path, like: str | Path | None, out: str | Path | None) -> str:
    """Draft, validate against the schema and return (and write to ``out`` when given) the YAML text."""
    from barometre.codebook import validate_codebook_dict

    draft = draft_codebook(export, like)
    text = draft_yaml(draft, export, like)
    validate_codebook_dict(yaml.safe_load(text), out or "<brouillon>")
    if out:
        Path(out).write_text(text, encoding="utf-8")
    return text
