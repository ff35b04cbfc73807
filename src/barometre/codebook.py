"""The questionnaire codebook: loading, validation and lookup.

A codebook is a YAML file (see ``codebooks/2017.yaml``) validated against
``schemas/codebook.schema.json``. It is the only place where raw column names,
answer codes, French labels and filters are written down.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from barometre.errors import CodebookError, schema_problems

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "codebook.schema.json"

CATEGORICAL_TYPES = ("single", "ordinal", "band")
QUESTION_TYPES = ("single", "ordinal", "band", "multiple", "ranking", "numeric", "text")
#: Each question type as a French reader names it (workbook, ``explain``, the report's appendix).
TYPE_LABELS = {
    "single": "question à réponse unique",
    "ordinal": "échelle ordonnée",
    "band": "tranches ordonnées",
    "multiple": "question à réponses multiples",
    "ranking": "classement",
    "numeric": "valeur numérique",
    "text": "texte libre",
}


@dataclass(frozen=True)
class Code:
    """One answer code: raw value, stable key and French label.

    ``export_labels`` are the other labels this edition's export may give the code
    (an accepted change of wording, declared explicitly; see :func:`check_export_metadata`).
    """

    code: Any
    key: str
    label: str
    export_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Option:
    """One option of a multiple-response question, stored in its own raw column."""

    key: str
    label: str
    raw: str
    exclusive: bool = False


@dataclass(frozen=True)
class Filter:
    """``asked only if`` condition: question ``question`` answered with one of ``keys``."""

    question: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    """One codebook question.

    Attributes
    ----------
    id, harmonised, level, type, wording
        Identity, harmonised variable name, level (respondent, tool, bp),
        question type and French wording.
    raw
        Raw column (or pattern with ``{i}`` for tool blocks, ``{rank}`` for ranks).
    codes, options
        Answer codes (categorical and ranking types) or options (multiple).
    nsp
        ``"show"`` keeps « ne se prononce pas » as its own category,
        ``"drop"`` turns it into a non-response.
    comparable, comparable_with, comparability_note
        Comparability with the questions of the same harmonised name in other
        editions (see :meth:`comparable_to`) and its French explanation.
    unit
        What one answer describes (codebook ``unit``, see :attr:`tabulation_unit`):
        ``collectivity`` for an attribute of the collectivity, tabulated once per collectivity.
    """

    id: str
    harmonised: str
    level: str
    type: str
    wording: str
    raw: str | None = None
    codes: tuple[Code, ...] = ()
    options: tuple[Option, ...] = ()
    other_text: str | None = None
    filter: Filter | None = None
    nsp: str = "drop"
    chart: str | None = None
    part: int | None = None
    top2: tuple[str, ...] = ()
    cumulative: bool = False
    ranks: int | None = None
    range: tuple[float, float] | None = None
    required: bool = False
    public: bool = False
    recode_other: tuple[dict, ...] = ()
    comparable: bool = True
    comparable_with: tuple[str, ...] | None = None
    comparability_note: str = ""
    unit: str = ""

    @property
    def tabulation_unit(self) -> str:
        """What one answer describes: ``collectivity``, ``respondent``, ``tool`` or ``bp`` (default: the level)."""
        return self.unit or self.level

    def comparable_to(self, edition: str) -> bool:
        """Whether this question may be compared with the question of the same harmonised name in ``edition``.

        ``comparable: false`` rules out every comparison; ``comparable_with`` (when given)
        lists the editions allowed.
        """
        if not self.comparable:
            return False
        return self.comparable_with is None or str(edition) in self.comparable_with

    @property
    def is_categorical(self) -> bool:
        return self.type in CATEGORICAL_TYPES

    @property
    def shows_nsp(self) -> bool:
        return self.nsp == "show"

    def label_of(self, key: str) -> str:
        """French label of answer ``key`` (codes, options, or « ne se prononce pas »)."""
        for c in self.codes:
            if c.key == key:
                return c.label
        for o in self.options:
            if o.key == key:
                return o.label
        if key == "nsp":
            return NSP_LABEL
        raise CodebookError(f"question {self.id} ({self.harmonised}): unknown answer key {key!r}")

    def labels(self, with_nsp: bool | None = None) -> list[str]:
        """Ordered French labels of the categories (``nsp`` last when shown)."""
        labels = [c.label for c in self.codes]
        if (self.shows_nsp if with_nsp is None else with_nsp) and self.is_categorical:
            labels.append(NSP_LABEL)
        return labels

    def raw_columns(self, block: int | None = None) -> list[str]:
        """Every raw column this question reads, for tool block ``block``."""
        def fmt(pattern: str) -> str:
            return pattern.replace("{i}", str(block)) if block is not None else pattern

        cols: list[str] = []
        if self.type == "multiple":
            cols.extend(fmt(o.raw) for o in self.options)
        elif self.type == "ranking":
            assert self.raw is not None and self.ranks is not None
            cols.extend(fmt(self.raw).replace("{rank}", str(r)) for r in range(1, self.ranks + 1))
        elif self.raw is not None:
            cols.append(fmt(self.raw))
        if self.other_text:
            cols.append(fmt(self.other_text))
        return cols

    def columns(self) -> list[str]:
        """Processed (harmonised) column names this question produces."""
        if self.type in ("multiple",):
            return [f"{self.harmonised}__{o.key}" for o in self.options]
        if self.type == "ranking":
            return [f"{self.harmonised}__{c.key}" for c in self.codes]
        cols = [self.harmonised]
        if self.other_text:
            cols.append(f"{self.harmonised}_other")
        return cols


NSP_LABEL = "Ne se prononce pas"


@dataclass(frozen=True)
class Codebook:
    """A validated codebook: metadata plus questions in questionnaire order."""

    edition: str
    title: str
    questions: tuple[Question, ...]
    sources: dict[str, dict]
    identifiers: dict[str, Any]
    missing_code: int = 99
    path: Path | None = None
    extra: dict = field(default_factory=dict)
    parts: dict[int, str] = field(default_factory=dict)  # title of each questionnaire part, when the codebook gives it

    def question(self, ref: str) -> Question:
        """Question by id (``Q07``), harmonised name or chart id (``C01``)."""
        for q in self.questions:
            if ref in (q.id, q.harmonised, q.chart):
                return q
        raise CodebookError(f"codebook {self.path}: no question with id, harmonised name or chart {ref!r}")

    def at_level(self, level: str) -> list[Question]:
        """Questions of one level (``respondent``, ``tool`` or ``bp``), in order."""
        return [q for q in self.questions if q.level == level]

    @property
    def charts(self) -> list[Question]:
        """Questions that carry a chart of the published report, in chart order."""
        return sorted((q for q in self.questions if q.chart), key=lambda q: q.chart or "")


def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_codebook_dict(data: dict, path: Path | str = "<codebook>") -> None:
    """Validate a parsed codebook against its JSON schema and its own cross-references.

    Raises
    ------
    CodebookError
        Listing every problem found, each with its question id.
    """
    problems = schema_problems(data, _schema())
    if problems:
        raise CodebookError(f"codebook {path} is invalid:\n  " + "\n  ".join(problems))

    ids: set[str] = set()
    harmonised: set[str] = set()
    for q in data["questions"]:
        qid = q["id"]
        if qid in ids:
            problems.append(f"question {qid}: duplicated id")
        ids.add(qid)
        if q["harmonised"] in harmonised:
            problems.append(f"question {qid}: duplicated harmonised name {q['harmonised']!r}")
        harmonised.add(q["harmonised"])
        t = q["type"]
        if t in (*CATEGORICAL_TYPES, "ranking") and not q.get("codes"):
            problems.append(f"question {qid}: type {t} needs codes")
        if t == "multiple" and not q.get("options"):
            problems.append(f"question {qid}: type multiple needs options")
        if t == "ranking" and (not q.get("ranks") or "{rank}" not in q.get("raw", "")):
            problems.append(f"question {qid}: type ranking needs ranks and a raw pattern with {{rank}}")
        if t not in ("multiple",) and not q.get("raw"):
            problems.append(f"question {qid}: type {t} needs a raw column")
        keys = [c["key"] for c in q.get("codes", [])] + [o["key"] for o in q.get("options", [])]
        if len(keys) != len(set(keys)):
            problems.append(f"question {qid}: duplicated answer keys")
        for k in q.get("top2", []):
            if k not in keys:
                problems.append(f"question {qid}: top2 key {k!r} is not an answer key")
    by_id = {q["id"]: q for q in data["questions"]}
    for q in data["questions"]:
        f = q.get("filter")
        if f:
            target = by_id.get(f["question"])
            if target is None:
                problems.append(f"question {q['id']}: filter names unknown question {f['question']!r}")
            else:
                tkeys = {c["key"] for c in target.get("codes", [])}
                for k in f["keys"]:
                    if k not in tkeys:
                        problems.append(f"question {q['id']}: filter key {k!r} is not a code of {f['question']}")
    if problems:
        raise CodebookError(f"codebook {path} is invalid:\n  " + "\n  ".join(problems))


def _question(q: dict) -> Question:
    f = q.get("filter")
    return Question(
        id=q["id"],
        harmonised=q["harmonised"],
        level=q["level"],
        type=q["type"],
        wording=q["wording"],
        raw=q.get("raw"),
        codes=tuple(
            Code(c["code"], c["key"], c["label"], tuple(c.get("export_labels", ()))) for c in q.get("codes", [])
        ),
        options=tuple(
            Option(o["key"], o["label"], o["raw"], bool(o.get("exclusive", False))) for o in q.get("options", [])
        ),
        other_text=q.get("other_text"),
        filter=Filter(f["question"], tuple(f["keys"])) if f else None,
        nsp=q.get("nsp", "drop"),
        chart=q.get("chart"),
        part=q.get("part"),
        top2=tuple(q.get("top2", [])),
        cumulative=bool(q.get("cumulative", False)),
        ranks=q.get("ranks"),
        range=tuple(q["range"]) if q.get("range") else None,
        required=bool(q.get("required", False)),
        public=bool(q.get("public", False)),
        recode_other=tuple(q.get("recode_other", [])),
        comparable=bool(q.get("comparable", True)),
        comparable_with=tuple(str(e) for e in q["comparable_with"]) if "comparable_with" in q else None,
        comparability_note=q.get("comparability_note", ""),
        unit=q.get("unit", ""),
    )


def load_codebook(path: str | Path) -> Codebook:
    """Read and validate a codebook YAML file.

    Parameters
    ----------
    path
        The codebook file.

    Returns
    -------
    Codebook
        The validated codebook.
    """
    path = Path(path)
    if not path.is_file():
        raise CodebookError(f"codebook file not found: {path}")
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise CodebookError(f"codebook {path}: expected a mapping at top level")
    if isinstance(data.get("parts"), dict):  # YAML reads `1: "…"` with an integer key; the schema names keys as text
        data = {**data, "parts": {str(k): v for k, v in data["parts"].items()}}
    validate_codebook_dict(data, path)
    missing = data.get("missing", {})
    return Codebook(
        edition=str(data["edition"]),
        title=data["title"],
        questions=tuple(_question(q) for q in data["questions"]),
        sources=data["sources"],
        identifiers=data.get("identifiers", {}),
        missing_code=int(missing.get("code", 99)),
        path=path,
        parts={int(k): str(v) for k, v in (data.get("parts") or {}).items()},
    )


# --------------------------------------------------------------------------- export metadata
_SUBQUESTION = re.compile(r"\s*\[[^\[\]]*\]\s*$")  # LimeSurvey's « wording [sub-question] » variable labels


def question_wording_of_label(label: str) -> str:
    """The question part of an export's variable label (without a trailing « [sub-question] »)."""
    return _SUBQUESTION.sub("", str(label)).strip()


def _label_for(labels: dict, code: Any) -> str | None:
    """The export's value label of ``code`` (``.sav`` keys are floats, CSV ones text)."""
    for k in (code, float(code) if isinstance(code, (int, float)) else None, str(code)):
        if k is not None and k in labels:
            return str(labels[k])
    return None


def check_export_metadata(
    codebook: Codebook, source: str, file: Path | str, value_labels: dict[str, dict], column_labels: dict[str, str]
) -> tuple[list[dict], list[str]]:
    """Compare an export's value labels and variable labels with the codebook.

    Labels are compared after normalisation (case, accents, spaces). A value label
    that differs from the codebook's label of the same code is a problem, unless the
    code lists it in ``export_labels`` (a change accepted for this edition). A
    variable label that differs from the question's wording (LimeSurvey's trailing
    « [sub-question] » left out) is only a warning, for the cleaning report.

    Parameters
    ----------
    codebook
        The edition's codebook.
    source
        Key of the raw file (``survey``, ``bp_inventory``…).
    file
        Path of the export, named in the problems.
    value_labels, column_labels
        The export's metadata, by column (:class:`barometre.ingest.RawTable`).

    Returns
    -------
    problems, warnings
        Problems in the ``{file, column, row, problem, value}`` form of validation errors;
        warnings as French sentences.
    """
    from barometre.clean import normalise_text

    spec = codebook.sources[source]
    blocks = spec.get("tool_blocks", {}).get("count", 0)
    levels = ("respondent", "tool") if spec["level"] == "respondent" else (spec["level"],)
    problems: list[dict] = []
    warnings: list[str] = []
    for q in codebook.questions:
        if q.level not in levels:
            continue
        for b in (range(1, blocks + 1) if q.level == "tool" else [None]):
            columns = q.raw_columns(b)
            if q.is_categorical or q.type == "ranking":
                coded = columns if q.type == "ranking" else columns[:1]
                for col in coded:
                    labels = value_labels.get(col) or {}
                    for c in q.codes:
                        got = _label_for(labels, c.code)
                        accepted = {normalise_text(x) for x in (c.label, *c.export_labels)}
                        if got is not None and normalise_text(got) not in accepted:
                            problems.append({
                                "file": str(file), "column": col, "row": None, "value": c.code,
                                "problem": f"libellé du code {c.code} : « {got} » dans l'export, « {c.label} » dans "
                                           f"le codebook ({q.id}) ; si ce changement est voulu, l'ajouter à "
                                           f"export_labels du code {c.key!r}",
                            })
            first = columns[0] if columns else None
            label = column_labels.get(first) if first else None
            if label and normalise_text(question_wording_of_label(label)) != normalise_text(q.wording):
                warnings.append(f"{Path(file).name}, colonne {first} : libellé « {question_wording_of_label(label)} » "
                                f"dans l'export, « {q.wording} » dans le codebook ({q.id})")
    return problems, warnings
