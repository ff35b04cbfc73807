"""Tests of the 2017 synthetic-data generator (synth/generate_2017.py).

Two kinds of checks, both independent of the pipeline in ``src/barometre``:

* reproducibility: regenerating into a temporary folder gives the committed
  files byte for byte;
* targets: after applying the exclusion rules of ``config.yaml`` (re-implemented
  here in a few lines), the generated frames hold the target counts the methods
  note (data/raw/2017/README.md) documents, and the published 2017 figures
  computed from them fall in their bounds.
"""
from __future__ import annotations

import ast
import csv
import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "synth" / "generate_2017.py"
COMMITTED = ROOT / "data" / "raw" / "2017"
SAV = "barometre_2017_limesurvey.sav"
CSV = "inventaire_budgets_participatifs_2017.csv"
NSP = 99


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Run the generator's command line into a fresh folder (cwd elsewhere)."""
    out = tmp_path_factory.mktemp("raw_2017")
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], check=True, cwd=out,
                   capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def codebook() -> dict:
    return yaml.safe_load((ROOT / "codebooks" / "2017.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def exclusions() -> list[dict]:
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    return config["editions"]["2017"]["exclusions"]


@pytest.fixture(scope="module")
def survey(generated):
    frame, meta = pyreadstat.read_sav(str(generated / SAV), user_missing=True)
    return frame, meta


@pytest.fixture(scope="module")
def cleaned(survey, exclusions) -> tuple[pd.DataFrame, dict[str, int]]:
    """Apply the configured exclusion rules in order; return kept rows and removals."""
    frame = survey[0]
    removed: dict[str, int] = {}
    for rule in exclusions:
        if rule["rule"] == "match":
            pattern = re.compile(rule["pattern"])
            hit = frame[rule["columns"]].astype(str).map(pattern.search).notna().any(axis=1)
        elif rule["rule"] == "missing":
            hit = frame[rule["columns"]].isna().any(axis=1)
        elif rule["rule"] == "duplicate":
            ordered = frame.sort_values(rule["order_by"], kind="stable")
            dup = ordered.duplicated(rule["columns"], keep=rule["keep"])
            hit = dup.reindex(frame.index)
        else:  # pragma: no cover
            raise AssertionError(f"unknown rule {rule}")
        removed[rule["id"]] = int(hit.sum())
        frame = frame[~hit]
    return frame.reset_index(drop=True), removed


@pytest.fixture(scope="module")
def kept(cleaned) -> pd.DataFrame:
    return cleaned[0]


@pytest.fixture(scope="module")
def tools(kept, codebook) -> pd.DataFrame:
    """One row per described tool: blocks 1..NB_OUTILS stacked, ``O{i}_`` prefix removed."""
    parts = []
    for i in (1, 2, 3):
        cols = [c for c in kept.columns if c.startswith(f"O{i}_")]
        block = kept.loc[kept["NB_OUTILS"] >= i, cols]
        parts.append(block.rename(columns={c: c[len(f"O{i}_"):] for c in cols}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def bp(generated) -> tuple[bytes, list[list[str]]]:
    data = (generated / CSV).read_bytes()
    rows = list(csv.reader(io.StringIO(data.decode("cp1252"), newline=""), delimiter=";"))
    return data, rows


def counts(series: pd.Series) -> dict:
    """Value counts as a plain dict, NaN counted under ``None``."""
    out = {}
    for value in series:
        key = None if (isinstance(value, float) and np.isnan(value)) else (
            int(value) if isinstance(value, float) else value)
        out[key] = out.get(key, 0) + 1
    return out


def code(codebook: dict, harmonised: str, key: str) -> int:
    q = next(q for q in codebook["questions"] if q["harmonised"] == harmonised)
    return next(int(c["code"]) for c in q["codes"] if c["key"] == key)


def by_key(codebook: dict, harmonised: str, series: pd.Series) -> dict:
    """Counts keyed by codebook answer key (``nsp`` for 99, None for missing)."""
    q = next(q for q in codebook["questions"] if q["harmonised"] == harmonised)
    names = {int(c["code"]): c["key"] for c in q["codes"]}
    names[NSP] = "nsp"
    return {names.get(k, k) if k is not None else None: n for k, n in counts(series).items()}


def option_counts(codebook: dict, harmonised: str, frame: pd.DataFrame, prefix: str = "") -> dict:
    q = next(q for q in codebook["questions"] if q["harmonised"] == harmonised)
    return {o["key"]: int((frame[o["raw"].replace("O{i}_", prefix)] == 1).sum()) for o in q["options"]}


# --------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("name", [SAV, CSV])
def test_regenerated_files_are_byte_identical(generated, name):
    committed = COMMITTED / name
    assert committed.is_file(), f"{committed} missing: run `python synth/generate_2017.py`"
    new, old = (generated / name).read_bytes(), committed.read_bytes()
    assert hashlib.sha256(new).hexdigest() == hashlib.sha256(old).hexdigest(), (
        f"{name} differs from the committed file: regenerate it and review the change")


def test_sav_header_timestamp_is_pinned(generated):
    data = (generated / SAV).read_bytes()
    assert data[:4] == b"$FL2"
    assert data[92:101] == b"06 Oct 17"
    assert data[101:109] == b"18:00:00"


def test_generator_is_independent_of_the_pipeline():
    tree = ast.parse(GENERATOR.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "barometre" not in imported and "src" not in imported


# --------------------------------------------------------------------------- .sav layout
def expected_columns(codebook: dict) -> list[str]:
    meta = ["id", "submitdate", "lastpage", "startlanguage", "startdate", "ipaddr",
            "IDENT_NOM", "IDENT_PRENOM", "IDENT_EMAIL", "IDENT_TEL", "COLL_NOM"]

    def raw(q, i=None):
        f = (lambda s: s.replace("{i}", str(i))) if i else (lambda s: s)
        if q["type"] == "multiple":
            cols = [f(o["raw"]) for o in q["options"]]
        elif q["type"] == "ranking":
            cols = [f(q["raw"]).replace("{rank}", str(r)) for r in range(1, q["ranks"] + 1)]
        else:
            cols = [f(q["raw"])]
        return cols + ([f(q["other_text"])] if q.get("other_text") else [])

    qs = [q for q in codebook["questions"] if q["level"] in ("respondent", "tool")]
    resp_before = [q for q in qs if q["level"] == "respondent" and q["part"] == 1]
    resp_after = [q for q in qs if q["level"] == "respondent" and q["part"] > 1]
    tool_qs = [q for q in qs if q["level"] == "tool"]
    cols = meta + [c for q in resp_before for c in raw(q)]
    cols += [c for i in (1, 2, 3) for q in tool_qs for c in raw(q, i)]
    return cols + [c for q in resp_after for c in raw(q)]


def test_sav_columns_labels_and_missing_codes(survey, codebook):
    frame, meta = survey
    assert list(frame.columns) == expected_columns(codebook)
    labels = meta.column_names_to_labels
    for q in codebook["questions"]:
        if q["level"] not in ("respondent", "tool"):
            continue
        if q["type"] in ("single", "ordinal", "band", "numeric", "text"):
            col = q["raw"].replace("{i}", "1")
            assert labels[col] == q["wording"]
        if q["type"] in ("single", "ordinal", "band"):
            col = q["raw"].replace("{i}", "2")
            vl = meta.variable_value_labels[col]
            for c in q["codes"]:
                assert vl[float(c["code"])] == c["label"]
            if "nsp" in q:
                assert vl[99.0] == "Ne sait pas / ne se prononce pas"
                assert meta.missing_ranges[col] == [{"lo": 99.0, "hi": 99.0}]
            assert meta.variable_measure[col] == ("nominal" if q["type"] == "single" else "ordinal")
        if q["type"] == "multiple":
            o = q["options"][0]
            col = o["raw"].replace("{i}", "3")
            assert labels[col] == f"{q['wording']} [{o['label']}]"
            assert meta.variable_value_labels[col] == {0.0: "Non coché", 1.0: "Coché"}
    assert meta.variable_measure["O1_ANNEE"] == "scale"
    assert meta.original_variable_types["submitdate"].startswith("DATETIME")
    assert frame["startlanguage"].eq("fr").all()
    assert frame["ipaddr"].str.match(r"^(192\.0\.2|198\.51\.100)\.\d{1,3}$").all()
    assert frame["IDENT_EMAIL"].str.endswith("@example.org").all()
    assert frame["IDENT_TEL"].str.match(r"^06 00 00 \d\d \d\d$").all()


def test_raw_rows_ids_and_dates(survey):
    frame = survey[0]
    assert len(frame) == 132
    assert frame["id"].tolist() == list(range(1, 133))
    assert frame["startdate"].is_monotonic_increasing
    done = frame["submitdate"].notna()
    assert (frame.loc[done, "lastpage"] == 4).all()
    assert frame.loc[done, "submitdate"].is_monotonic_increasing
    assert (frame.loc[done, "submitdate"] > frame.loc[done, "startdate"]).all()
    assert frame["startdate"].min() >= pd.Timestamp("2017-06-15")
    assert frame.loc[done, "submitdate"].max() <= pd.Timestamp("2017-10-06 23:59:59")


# --------------------------------------------------------------------------- dirt
def test_exclusion_rules_remove_exactly_the_dirt(survey, cleaned, exclusions):
    frame = survey[0]
    kept, removed = cleaned
    assert removed == {"test": 3, "incomplete": 6, "duplicate": 2}
    assert len(kept) == 121 == 132 - 3 - 6 - 2
    rule = next(r for r in exclusions if r["id"] == "test")
    pattern = re.compile(rule["pattern"])
    hits = frame[frame[["COLL_NOM", "IDENT_EMAIL"]].apply(
        lambda col: col.map(lambda v: bool(pattern.search(v)))).any(axis=1)]
    assert sorted(hits["COLL_NOM"]) == sorted(["TEST", "test Cap Collectif", "Collectivité de démonstration"])
    assert "test@example.org" in set(hits["IDENT_EMAIL"])
    incomplete = frame[frame["submitdate"].isna()]
    assert incomplete["lastpage"].between(1, 3).all()
    assert incomplete.loc[incomplete["lastpage"] < 4, "OD_PORTAIL"].isna().all()
    assert incomplete.loc[incomplete["lastpage"] < 2, "O1_TYPE"].isna().all()
    # duplicates: the removed copy is the earlier one and differs from the kept answer
    complete = frame[frame["submitdate"].notna()]
    dup_keys = complete[complete.duplicated(["IDENT_EMAIL", "COLL_NOM"], keep=False)]
    assert len(dup_keys) == 4
    for _, group in dup_keys.groupby("IDENT_EMAIL"):
        first, last = group.sort_values("submitdate").iloc[0], group.sort_values("submitdate").iloc[1]
        assert last["id"] in set(kept["id"]) and first["id"] not in set(kept["id"])
        assert not first.drop(["id", "submitdate", "startdate", "ipaddr"]).equals(
            last.drop(["id", "submitdate", "startdate", "ipaddr"]))


# --------------------------------------------------------------------------- respondent targets
def test_collectivities(kept, codebook):
    assert kept["COLL_NOM"].nunique() == 98
    sizes = kept.groupby("COLL_NOM").size()
    assert counts(sizes) == {1: 75, 2: 23}
    for _, group in kept[kept["COLL_NOM"].isin(sizes[sizes == 2].index)].groupby("COLL_NOM"):
        assert sorted(group["ROLE"]) == [1.0, 2.0]
        assert group["COLL_TYPE"].nunique() == 1
    # « Autre » typed by hand, recoded with the codebook's patterns
    q = next(q for q in codebook["questions"] if q["id"] == "Q01")
    other = kept[kept["COLL_TYPE"] == code(codebook, "collectivity_type", "autre")]
    assert sorted(other["COLL_TYPE_other"]) == sorted(
        ["Conseil départemental", "Département", " conseil departemental", "Mairie", "Communauté de communes"])
    recoded = kept["COLL_TYPE"].map(
        {int(c["code"]): c["key"] for c in q["codes"]}).astype(object)
    for idx, text in other["COLL_TYPE_other"].items():
        recoded[idx] = next(r["to"] for r in q["recode_other"] if re.search(r["pattern"], text.strip(), re.I))
    per_coll = recoded.groupby(kept["COLL_NOM"]).first()
    assert counts(per_coll) == {"commune": 65, "intercommunalite": 17, "metropole": 9,
                                "departement": 6, "service_etat": 1}
    assert (kept.loc[kept["COLL_TYPE"] != code(codebook, "collectivity_type", "autre"), "COLL_TYPE_other"] == "").all()
    assert counts(kept["COLL_POP"]).get(NSP) == 2
    assert kept["COLL_POP"].notna().all()


def test_roles_and_functions(kept, codebook):
    assert by_key(codebook, "role", kept["ROLE"]) == {"elu": 31, "agent": 90}
    elus, agents = kept[kept["ROLE"] == 1], kept[kept["ROLE"] == 2]
    assert by_key(codebook, "function_elected", elus["FONCTION_ELU"]) == {
        None: 3, "maire": 7, "adjoint_maire": 8, "adjoint": 4, "conseiller_delegue": 5, "conseiller": 3, "autre": 1}
    assert agents["FONCTION_ELU"].isna().all() and elus["FONCTION_AGENT"].isna().all()
    assert elus["SERVICE"].isna().all()
    assert by_key(codebook, "function_staff", agents["FONCTION_AGENT"]) == {
        "charge_mission": 38, "directeur": 20, "direction_generale": 8, "chef_projet": 12, "technicien": 7, "autre": 5}
    assert by_key(codebook, "staff_service", agents["SERVICE"]) == {
        "participation": 30,
        "communication": 28,
        "numerique": 12,
        "direction_generale": 8,
        "amenagement": 5,
        "autre": 7,
    }
    assert (kept["FONCTION_ELU_other"] != "").sum() == 1
    assert (kept["FONCTION_AGENT_other"] != "").sum() == 5
    assert (kept["SERVICE_other"] != "").sum() == 7


def test_levers_ranking(kept):
    ranks = kept[[f"LEVIERS_R{r}" for r in range(1, 8)]]
    answered = ranks.notna().any(axis=1)
    assert answered.sum() == 110
    assert ranks[~answered].isna().all().all()
    for row in ranks[answered].itertuples(index=False):
        assert sorted(int(v) for v in row) == list(range(1, 8))
    assert (ranks.loc[answered, "LEVIERS_R1"] == 1).sum() == 58


def test_contributions(kept, codebook):
    cols = [f"CONTRIB_SQ{k:03d}" for k in (1, 2, 3, 4, 5, 6, 7, 99)]
    answered = (kept[cols] == 1).any(axis=1)
    assert answered.sum() == 115
    assert kept.loc[~answered, cols].isna().all().all()
    sub = kept[answered]
    assert option_counts(codebook, "digital_contributions", sub) == {
        "transparence": 104, "valoriser": 103, "adhesion": 102, "qualite_decisions": 105,
        "expertise_citoyenne": 80, "nouveaux_publics": 70, "inclusion": 60, "nsp": 3}
    nsp_rows = sub[sub["CONTRIB_SQ099"] == 1]
    assert (nsp_rows[cols[:-1]] == 0).all().all()


def test_partnership_tools_described_open_data(kept, codebook):
    assert by_key(codebook, "civictech_partnership_importance", kept["PARTENARIAT"]) == {
        "tres_important": 12, "assez_important": 40, "peu_important": 45, "pas_important": 15, "nsp": 8, None: 1}
    assert counts(kept["NB_OUTILS"]) == {0: 85, 1: 29, 2: 5, 3: 2}
    assert kept.loc[kept["NB_OUTILS"] > 0, "COLL_NOM"].is_unique
    assert by_key(codebook, "open_data_portal", kept["OD_PORTAIL"]) == {"oui": 25, "non": 80, "nsp": 16}
    assert kept["OD_COMMENT"].str.contains("<script>alert(1)</script>", regex=False).sum() == 1
    assert kept["OD_COMMENT"].str.contains("{{7*7}}", regex=False).sum() == 1


def test_unused_tool_blocks_are_empty(kept):
    for i in (1, 2, 3):
        cols = [c for c in kept.columns if c.startswith(f"O{i}_")]
        unused = kept.loc[kept["NB_OUTILS"] < i, cols]
        for c in cols:
            if unused[c].dtype == object or str(unused[c].dtype) in ("str", "string"):
                assert (unused[c] == "").all(), c
            else:
                assert unused[c].isna().all(), c


# --------------------------------------------------------------------------- tool targets
def test_tool_counts(tools, codebook):
    assert len(tools) == 45
    expected = {
        "tool_type": {"concertation": 18, "sondage": 8, "budget_participatif": 5, "cartographie_participative": 5,
                      "plateforme_interactive": 1, "forum": 1, "donnees": 1, "autre": 6},
        "tool_builder": {"prestataire": 34, "interne": 6, "mixte": 3, "association": 1, "nsp": 1},
        "tool_animation": {"interne": 28, "prestataire": 7, "partage": 6, "sans_objet": 2, "nsp": 2},
        "tool_moderation": {"interne": 26, "prestataire": 8, "partage": 5, "sans_objet": 4, "nsp": 2},
        "tool_synthesis": {"interne": 25, "prestataire": 9, "partage": 6, "sans_objet": 3, "nsp": 2},
        "tool_managing_service": {"communication": 15, "participation": 13, "numerique": 6,
                                  "direction_generale": 5, "amenagement": 4, "autre": 2},
        "tool_cost_band": {"lt1000": 15, "from_1000_to_5000": 3, "from_5000_to_20000": 12,
                           "from_20000_to_50000": 9, "gt50000": 6},
        "tool_lasting": {"oui": 30, "non": 12, "nsp": 3},
        "tool_continuity": {"oui": 34, "non": 9, "nsp": 2},
        "tool_offline_link": {"oui": 40, "non": 4, "nsp": 1},
        "tool_contributors_band": {"lt100": 12, "from_100_to_500": 13, "from_500_to_1000": 8,
                                   "from_1000_to_5000": 7, "gt5000": 3, "nsp": 2},
        "tool_objectives_reached": {"pas_du_tout": 2, "plutot_pas": 9, "plutot_atteints": 14,
                                    "tout_a_fait_atteints": 4, "nsp": 16},
        "tool_usage_judgement": {"faible": 14, "normal": 14, "fort": 6, "nsp": 7, None: 4},
    }
    for harmonised, target in expected.items():
        q = next(q for q in codebook["questions"] if q["harmonised"] == harmonised)
        assert by_key(codebook, harmonised, tools[q["raw"].replace("O{i}_", "")]) == target, harmonised
    assert counts(tools["ANNEE"]) == {2015: 12, 2016: 18, 2017: 13, None: 2}
    assert (tools["TYPE_other"] != "").sum() == 6
    assert ((tools["TYPE"] == 8) == (tools["TYPE_other"] != "")).all()
    assert (tools["SERVICE_other"] != "").sum() == 2
    assert (tools["NOM"] != "").all()


def test_tool_objectives(tools, codebook):
    cols = [f"OBJ_SQ{k:03d}" for k in range(1, 11)]
    assert ((tools[cols] == 1).sum(axis=1) >= 1).all()
    assert option_counts(codebook, "tool_objectives", tools) == {
        "valoriser": 40, "echange_arguments": 4, "informer": 38, "recueillir_avis": 30, "remontee_idees": 26,
        "sondage_vote": 17, "pedagogie": 22, "coconstruction": 8, "evaluation": 5, "autre": 3}
    assert ((tools["OBJ_SQ010"] == 1) == (tools["OBJ_other"] != "")).all()


def test_low_usage_reasons_and_stray_answer(tools, codebook):
    cols = [f"RAISONS_SQ{k:03d}" for k in (1, 2, 3, 4, 5, 6, 7, 99)]
    low = tools[tools["USAGE"] == code(codebook, "tool_usage_judgement", "faible")]
    assert len(low) == 14
    assert low[cols].notna().all().all()
    assert option_counts(codebook, "tool_low_usage_reasons", low) == {
        "communication": 6, "ergonomie": 2, "sujet": 4, "moyens_animation": 5, "fracture_numerique": 3,
        "defiance": 2, "autre": 1, "nsp": 3}
    nsp_only = low[low["RAISONS_SQ099"] == 1]
    assert len(nsp_only) == 3 and (nsp_only[cols[:-1]] == 0).all().all()
    assert ((low[cols] == 1).sum(axis=1) >= 1).all()
    # exactly one out-of-filter answer, on a tool judged « normal »
    outside = tools[(tools["USAGE"] != code(codebook, "tool_usage_judgement", "faible"))
                    & tools[cols].notna().any(axis=1)]
    assert len(outside) == 1
    assert outside["USAGE"].iloc[0] == code(codebook, "tool_usage_judgement", "normal")
    assert (tools["RAISONS_other"] != "").sum() == 1


def test_tool_comments_hold_traps(tools):
    comments = tools["COMMENT"]
    assert comments.str.contains("\n", regex=False).sum() >= 2
    assert comments.str.contains('"', regex=False).sum() >= 2
    assert comments.str.contains(";", regex=False).sum() >= 2
    assert comments.str.contains("referent.outil@example.org", regex=False).sum() == 1
    assert comments.str.contains("01 23 45 67 89", regex=False).sum() == 1


# --------------------------------------------------------------------------- published figures
def pct(num: int, base: int) -> float:
    return 100 * num / base


def test_published_figures_fall_in_bounds(kept, tools, codebook):
    """Recompute each published percentage with the bases of the methods note."""
    ref = yaml.safe_load((ROOT / "references" / "published_2017.yaml").read_text(encoding="utf-8"))
    bounds = {f["id"]: f.get("bounds") for f in ref["figures"]}
    elus = kept[kept["ROLE"] == 1]
    fe = elus["FONCTION_ELU"].dropna()
    fa = kept.loc[kept["ROLE"] == 2, "FONCTION_AGENT"].dropna()
    ranks = kept[[f"LEVIERS_R{r}" for r in range(1, 8)]].dropna()
    contrib_cols = [f"CONTRIB_SQ{k:03d}" for k in (1, 2, 3, 4, 5, 6, 7, 99)]
    contrib = kept[(kept[contrib_cols] == 1).any(axis=1)]
    part = kept["PARTENARIAT"].dropna()
    usage = tools["USAGE"].dropna()
    low = tools[tools["USAGE"] == 1]
    contrib_known = tools[tools["CONTRIB"] != NSP]
    values = {
        "R04": pct((kept["ROLE"] == 1).sum(), len(kept)),
        "R05": pct((kept["ROLE"] == 2).sum(), len(kept)),
        "R06": pct(fe.isin([2, 3]).sum(), len(fe)),
        "R07": pct((fe == 2).sum(), len(fe)),
        "R08": pct((fa == 3).sum(), len(fa)),
        "F01": pct((ranks["LEVIERS_R1"] == 1).sum(), len(ranks)),
        "F02": pct((tools["COUT"] == 1).sum(), tools["COUT"].notna().sum()),
        "F03": pct(tools["COUT"].isin([1, 2]).sum(), tools["COUT"].notna().sum()),
        "F04": pct((tools["SERVICE"] == 1).sum(), len(tools)),
        "F05": pct((tools["OBJ_SQ002"] == 1).sum(), len(tools)),
        "F06": pct((tools["OBJ_SQ007"] == 1).sum(), len(tools)),
        "F08": pct((part == 4).sum(), len(part)),
        "F09": pct((tools["CREATION"] == 1).sum(), len(tools)),
        "F10": pct(tools["OBJ_ATTEINTS"].isin([3, 4]).sum(), len(tools)),
        "F12": pct((low["RAISONS_SQ099"] == 1).sum(), len(low)),
        "F13": pct(tools["CONTRIB"].isin([1, 2, 3]).sum(), len(tools)),
        "F14": pct((tools["PERENNE"] == 1).sum(), len(tools)),
        "F15": pct((tools["CONTINUITE"] == 1).sum(), len(tools)),
        "F16": pct((tools["PRESENTIEL"] == 1).sum(), len(tools)),
    }
    for fid, value in values.items():
        low_b, high_b = bounds[fid]
        assert low_b <= value <= high_b, f"{fid}: {value:.2f} not in {bounds[fid]}"
    # F07: each of the four items on the 115 who answered C05
    for k in (1, 2, 3, 4):
        assert 87 <= pct((contrib[f"CONTRIB_SQ{k:03d}"] == 1).sum(), len(contrib)) <= 93
    # F11 on the 41 tools with a usage judgement
    assert len(usage) == 41
    for key, c in (("normale", 2), ("faible", 1), ("ne_se_prononce_pas", NSP)):
        lo, hi = bounds["F11"][key]
        assert lo <= pct((usage == c).sum(), len(usage)) <= hi, key
    # F13 also holds on the 43 tools with a known number of contributors
    assert 72 <= pct(contrib_known["CONTRIB"].isin([1, 2, 3]).sum(), len(contrib_known)) <= 78
    # F17: every known launch year is 2015 or later; R09: participation ≈ communication
    assert (tools["ANNEE"].dropna() >= 2015).all()
    agents = kept[kept["ROLE"] == 2]
    assert abs(pct((agents["SERVICE"] == 1).sum(), 90) - pct((agents["SERVICE"] == 2).sum(), 90)) <= 5
    # X04-X06: animation, moderation, synthesis mostly in-house
    for col in ("ANIMATION", "MODERATION", "SYNTHESE"):
        assert pct((tools[col] == 1).sum(), len(tools)) > 50


# --------------------------------------------------------------------------- BP inventory
def test_bp_inventory_format(bp):
    data, rows = bp
    assert b"\r\n" in data and data.count(b"\n") == data.count(b"\r\n") + 1  # one LF inside a quoted cell
    assert data.endswith(b"\r\n")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # cp1252 accents, not UTF-8
    header = rows[0]
    assert header == ["N°", "Territoire", "Type de territoire", "Population", "Première édition",
                      "Montant alloué (€)", "Montant par habitant (€)", "Réunion publique obligatoire",
                      "Articulation avec d'autres instances", "Commentaires avant instruction",
                      "Commentaires au moment du vote", "Vote en ligne", "Contrôle de la fraude",
                      "Dépôt des projets en ligne", "Budget en open data", "Remarques"]
    body = rows[1:]
    assert len(body) == 61 and all(len(r) == 16 for r in body)
    assert [r[0] for r in body] == [str(k) for k in range(1, 62)]
    tricky = [r[15] for r in body if ";" in r[15] and '"' in r[15] and "\n" in r[15]]
    assert len(tricky) == 1
    assert all(re.fullmatch(r"\d+,\d{2}", r[5]) for r in body)
    assert all(r[6] == "" or re.fullmatch(r"\d+,\d{2}", r[6]) for r in body)
    yes_no = {c for r in body for c in r[7:15]}
    assert {"OUI", " oui", "Non "} <= yes_no
    assert {c.strip().lower() for c in yes_no} == {"oui", "non", ""}


def test_bp_inventory_counts(bp):
    header, body = bp[1][0], bp[1][1:]
    frame = pd.DataFrame(body, columns=header)
    yn = frame.iloc[:, 7:15].apply(lambda col: col.str.strip().str.lower())
    kinds = counts(frame["Type de territoire"])
    assert kinds == {"commune": 54, "intercommunalité": 2, "département": 1, "région": 1,
                     "université": 1, "bailleur social": 1, "état": 1}
    assert (yn["Réunion publique obligatoire"] == "oui").sum() == 19
    assert (yn["Articulation avec d'autres instances"] == "oui").sum() == 20
    assert (yn["Commentaires avant instruction"] == "oui").sum() == 8
    assert (yn["Commentaires au moment du vote"] == "oui").sum() == 10
    online = yn["Vote en ligne"] == "oui"
    assert online.sum() == 26
    assert (yn.loc[online, "Contrôle de la fraude"] == "oui").sum() == 6
    assert (yn.loc[online, "Contrôle de la fraude"] == "non").sum() == 20
    assert counts(yn.loc[~online, "Contrôle de la fraude"]) == {"": 34, "non": 1}
    assert (yn["Dépôt des projets en ligne"] == "oui").sum() == 39
    assert sorted(frame.loc[yn["Budget en open data"] == "oui", "Territoire"]) == ["Bar-le-Duc", "Paris", "Rodez"]
    names = set(frame["Territoire"])
    assert {"Université de Tours", "Bailleur social (Paris)", "Gers", "Centre-Val de Loire (lycées)",
            "Plan Climat (national)"} <= names
    territorial = frame["Type de territoire"].isin(["commune", "intercommunalité", "département", "région"])
    assert frame.loc[territorial, "Population"].astype(int).sum() > 4_000_000
    assert (frame.loc[~territorial, "Population"] == "").all()
    assert frame.loc[territorial, "Population"].str.fullmatch(r"\d+").all()
