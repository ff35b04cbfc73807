"""Tests of the 2016 and 2018 reconstruction generators (synth/generate_2016.py, synth/generate_2018.py).

As in tests/test_generator.py, two kinds of checks independent of ``src/barometre``:

* reproducibility: regenerating into a temporary folder gives the committed files
  byte for byte, with the SPSS header time-stamp pinned;
* targets: after the exclusion rules of ``config.yaml`` (re-implemented here in a
  few lines), the raw answers hold the counts of the methods notes
  (data/raw/2016/README.md, data/raw/2018/README.md), and every numeric published
  figure recomputed from them with the bases the notes give falls in its bounds.

The end-to-end check (the pipeline itself reproduces every numeric published
figure of 2016 and 2018) is at the bottom and uses the shared ``built_project``.
"""
from __future__ import annotations

import ast
import hashlib
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
SYNTH = ROOT / "synth"
EDITIONS = {
    "2016": {"generator": SYNTH / "generate_2016.py", "sav": "barometre_2016_questionnaire.sav",
             "header": (b"04 Mar 16", b"18:00:00"), "raw": 202, "kept": 194,
             "removed": {"test": 2, "incomplete": 4, "duplicate": 2}},
    "2018": {"generator": SYNTH / "generate_2018.py", "sav": "barometre_2018_questionnaire.sav",
             "header": (b"14 Dec 18", b"18:00:00"), "raw": 75, "kept": 70,
             "removed": {"test": 1, "incomplete": 3, "duplicate": 1}},
}
NSP = 99


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", params=sorted(EDITIONS))
def edition(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """Run both generators' command lines into fresh folders (cwd elsewhere)."""
    out = {}
    for e, spec in EDITIONS.items():
        folder = tmp_path_factory.mktemp(f"raw_{e}")
        subprocess.run([sys.executable, str(spec["generator"]), "--out", str(folder)], check=True, cwd=folder,
                       capture_output=True, text=True)
        out[e] = folder
    return out


def read_survey(folder: Path, e: str):
    return pyreadstat.read_sav(str(folder / EDITIONS[e]["sav"]), user_missing=True)


def apply_exclusions(frame: pd.DataFrame, rules: list[dict]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The configured exclusion rules, in order (same reading as tests/test_generator.py)."""
    removed = {}
    for rule in rules:
        if rule["rule"] == "match":
            pattern = re.compile(rule["pattern"])
            hit = frame[rule["columns"]].astype(str).map(pattern.search).notna().any(axis=1)
        elif rule["rule"] == "missing":
            hit = frame[rule["columns"]].isna().any(axis=1)
        elif rule["rule"] == "duplicate":
            ordered = frame.sort_values(rule["order_by"], kind="stable")
            hit = ordered.duplicated(rule["columns"], keep=rule["keep"]).reindex(frame.index)
        else:  # pragma: no cover
            raise AssertionError(rule)
        removed[rule["id"]] = int(hit.sum())
        frame = frame[~hit]
    return frame.reset_index(drop=True), removed


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def kept(generated, config) -> dict[str, pd.DataFrame]:
    out = {}
    for e in EDITIONS:
        frame, _ = read_survey(generated[e], e)
        out[e], removed = apply_exclusions(frame, config["editions"][e]["exclusions"])
        assert removed == EDITIONS[e]["removed"], (e, removed)
    return out


def published(e: str) -> dict[str, dict]:
    ref = yaml.safe_load((ROOT / "references" / f"published_{e}.yaml").read_text(encoding="utf-8"))
    return {f["id"]: f for f in ref["figures"]}


def codebook(e: str) -> dict:
    return yaml.safe_load((ROOT / "codebooks" / f"{e}.yaml").read_text(encoding="utf-8"))


def code(e: str, harmonised: str, key: str) -> int:
    q = next(q for q in codebook(e)["questions"] if q["harmonised"] == harmonised)
    return next(int(c["code"]) for c in q["codes"] if c["key"] == key)


def pct(num, base) -> float:
    return 100 * float(num) / float(base)


def in_bounds(value: float, bounds) -> bool:
    lo, hi = bounds
    return lo <= value <= (np.inf if hi is None else hi)


# --------------------------------------------------------------------------- reproducibility
def test_regenerated_files_are_byte_identical(generated, edition):
    name = EDITIONS[edition]["sav"]
    committed = ROOT / "data" / "raw" / edition / name
    assert committed.is_file(), f"{committed} missing: run `python synth/generate_{edition}.py`"
    new, old = (generated[edition] / name).read_bytes(), committed.read_bytes()
    assert hashlib.sha256(new).hexdigest() == hashlib.sha256(old).hexdigest(), (
        f"{name} differs from the committed file: regenerate it and review the change")


def test_readme_states_the_committed_checksum(edition):
    name = EDITIONS[edition]["sav"]
    digest = hashlib.sha256((ROOT / "data" / "raw" / edition / name).read_bytes()).hexdigest()
    readme = (ROOT / "data" / "raw" / edition / "README.md").read_text(encoding="utf-8")
    assert digest in readme, f"update the SHA-256 of {name} in data/raw/{edition}/README.md"
    assert "synthétiques" in readme


def test_sav_header_timestamp_is_pinned(generated, edition):
    data = (generated[edition] / EDITIONS[edition]["sav"]).read_bytes()
    date, time = EDITIONS[edition]["header"]
    assert data[:4] == b"$FL2" and data[92:101] == date and data[101:109] == time


@pytest.mark.parametrize("path", [SYNTH / "generate_2016.py", SYNTH / "generate_2018.py", SYNTH / "sav_export.py"])
def test_generators_are_independent_of_the_pipeline(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "barometre" not in imported and "src" not in imported


def test_sav_is_marked_synthetic_and_labelled(generated, edition):
    frame, meta = read_survey(generated[edition], edition)
    assert len(frame) == EDITIONS[edition]["raw"]
    assert "SYNTHETIQUE" in meta.file_label.upper()
    assert frame["IDENT_EMAIL"].str.endswith("@example.org").all()
    assert frame["ipaddr"].str.match(r"^(192\.0\.2|198\.51\.100)\.\d{1,3}$").all()
    assert meta.missing_ranges["ROLE"] == [{"lo": 99.0, "hi": 99.0}]
    labels = meta.column_names_to_labels
    for q in codebook(edition)["questions"]:
        if q["type"] in ("single", "ordinal", "band", "numeric", "text"):
            assert labels[q["raw"].replace("{i}", "1")] == q["wording"]
    done = frame["submitdate"].notna()
    assert (frame.loc[done, "lastpage"] == 4).all()
    assert frame["id"].tolist() == list(range(1, len(frame) + 1))


# --------------------------------------------------------------------------- 2016 targets
def tools_2016(k: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for i in (1, 2, 3):
        cols = [c for c in k.columns if c.startswith(f"O{i}_")]
        parts.append(k.loc[k["NB_OUTILS"] >= i, cols].rename(columns={c: c[len(f"O{i}_"):] for c in cols}))
    return pd.concat(parts, ignore_index=True)


def test_2016_structure(kept):
    k = kept["2016"]
    assert len(k) == 194 and k["COLL_NOM"].nunique() == 194
    assert k["NB_OUTILS"].value_counts().to_dict() == {0: 150, 1: 34, 2: 9, 3: 1}
    tools = tools_2016(k)
    assert len(tools) == 55
    assert (tools["TYPE"] == code("2016", "tool_type", "donnees")).sum() == 24
    # « Autre » typed by hand: recoded by the codebook's patterns, except the two nature parks
    cb = next(q for q in codebook("2016")["questions"] if q["harmonised"] == "collectivity_type")
    keys = k["COLL_TYPE"].map({int(c["code"]): c["key"] for c in cb["codes"]}).astype(object)
    for idx, text in k.loc[keys == "autre", "COLL_TYPE_other"].items():
        hit = next((r["to"] for r in cb["recode_other"] if re.search(r["pattern"], text.strip(), re.I)), "autre")
        keys[idx] = hit
    assert keys.value_counts().to_dict() == {"commune": 99, "intercommunalite": 52, "departement": 23,
                                             "region": 10, "metropole": 8, "autre": 2}
    # one out-of-filter satisfaction answer, one out-of-filter dataset count
    assert (k.loc[k["NB_OUTILS"] == 0, "SATISF_CITOYENS"].notna()).sum() == 1
    assert (k.loc[k["OD_PORTAIL"] != 1, "OD_JEUX"].notna()).sum() == 1


def test_2016_published_figures_fall_in_bounds(kept):
    k = kept["2016"]
    pub = published("2016")
    equipped = k[k["NB_OUTILS"] > 0]
    strengthens_all = k["RENFORCE"].dropna()
    strengthens_eq = equipped["RENFORCE"].dropna()
    assert (len(strengthens_all), len(strengthens_eq)) == (190, 40)
    effect_cols = [f"EFFETS_SQ{n:03d}" for n in (1, 2, 3, 4, 5, 99)]
    effects = k[(k[effect_cols] == 1).any(axis=1)]
    assert len(effects) == 158
    satisfaction = equipped["SATISF_CITOYENS"].dropna()
    assert len(satisfaction) == 43
    tools = tools_2016(k)
    values = {
        ("F01", "all"): pct((strengthens_all == 1).sum(), len(strengthens_all)),
        ("F01", "equipped"): pct((strengthens_eq == 1).sum(), len(strengthens_eq)),
        ("F02", "cout_supplementaire"): pct((effects["EFFETS_SQ001"] == 1).sum(), len(effects)),
        ("F02", "gain_de_temps"): pct((effects["EFFETS_SQ002"] == 1).sum(), len(effects)),
        ("F02", "support_communication"): pct((effects["EFFETS_SQ003"] == 1).sum(), len(effects)),
        ("T01", None): pct((tools["TYPE"] == code("2016", "tool_type", "donnees")).sum(), len(tools)),
        ("F03", None): pct((satisfaction == 1).sum(), len(satisfaction)),
    }
    for (fid, comp), value in values.items():
        b = pub[fid]["bounds"][comp] if comp else pub[fid]["bounds"]
        assert in_bounds(value, b), f"{fid}.{comp}: {value:.3f} not in {b}"
    # R02 on the 194 (the recoded « Autre » answers included, see test_2016_structure)
    assert in_bounds(pct(99, 194), pub["R02"]["bounds"]["commune"])
    # R01: 55 tools, 44 equipped, 10 with two or more, 1 with three (README: the « 56 » contradiction)
    value = pub["R01"]["value"]
    assert (len(tools), len(equipped)) == (value["tools"], value["equipped_collectivities"])
    assert (k["NB_OUTILS"] >= 2).sum() == value["with_two_tools"] and (k["NB_OUTILS"] == 3).sum() == value[
        "with_three_tools"
    ]
    # F02: the 56 % of the other article is the cost figure, not the time saved
    assert not in_bounds(values[("F02", "gain_de_temps")], [55.5, 56.5])
    assert in_bounds(values[("F02", "cout_supplementaire")], [55.5, 56.5])


# --------------------------------------------------------------------------- 2018 targets
def test_2018_published_figures_fall_in_bounds(kept):
    k = kept["2018"]
    pub = published("2018")
    assert len(k) == 70 and k["COLL_NOM"].nunique() == 70
    device_cols = [f"DISPOSITIFS_SQ{n:03d}" for n in range(1, 9)]
    devices = k[(k[device_cols] == 1).any(axis=1)]
    assert len(devices) == 66
    comp_cols = {"urbanisme_ponctuel": 1, "conseils_de_quartier": 2, "plateformes_numeriques": 3,
                 "conseils_citoyens": 4, "applications_signalement": 5}
    for comp, n in comp_cols.items():
        v = pct((devices[f"DISPOSITIFS_SQ{n:03d}"] == 1).sum(), len(devices))
        assert in_bounds(v, pub["D01"]["bounds"][comp]), (comp, v)
    assert in_bounds(pct((k["COLL_TYPE"] == 1).sum() + (k["COLL_TYPE_other"].str.strip() == "Ville").sum(), 70),
                     pub["R02"]["bounds"])
    assert in_bounds(pct((k["SERVICE_DEDIE"] == 1).sum(), 70), pub["O01"]["bounds"])
    assert in_bounds(pct((k["ROLE_COMMUNICATION"] == 1).sum(), 70), pub["O02"]["bounds"])
    fte = k["ETP"][k["ETP"] != NSP].dropna()
    assert len(fte) == 68 and in_bounds(pct((fte == 1).sum(), len(fte)), pub["O03"]["bounds"])
    consolidated = k[k["BUDGET_CONSOLIDE"] == 1]
    assert len(consolidated) == 28
    ratio = consolidated["BUDGET_MONTANT"] / consolidated["COLL_POP_NB"]
    assert in_bounds(ratio.mean(), pub["M01"]["bounds"]) and in_bounds(ratio.median(), pub["M02"]["bounds"])
    # the out-of-filter amount (budget not consolidated) would break both if it were kept
    stray = k[(k["BUDGET_CONSOLIDE"] != 1) & k["BUDGET_MONTANT"].notna()]
    assert len(stray) == 1
    with_stray = pd.concat([consolidated, stray])
    ratio2 = with_stray["BUDGET_MONTANT"] / with_stray["COLL_POP_NB"]
    assert not in_bounds(ratio2.mean(), pub["M01"]["bounds"]) and not in_bounds(ratio2.median(), pub["M02"]["bounds"])
    # « six collectivités sur dix » without a consolidated budget
    assert pct((k["BUDGET_CONSOLIDE"] == 2).sum(), 70) == 60


def test_2018_no_base_of_69_or_70_gives_d01():
    """The contradiction the README resolves: D01 needs a base of 64, 66, 74 or 76."""
    bounds = published("2018")["D01"]["bounds"]

    def feasible(n):
        return all(any(in_bounds(pct(k, n), b) for k in range(n + 1)) for b in bounds.values())

    assert [n for n in range(40, 80) if feasible(n)] == [64, 66, 74, 76]


def test_2016_only_55_tools_give_t01():
    """The contradiction the README resolves: 44 % of open-data tools is reachable with 55 tools, not 56."""
    b = published("2016")["T01"]["bounds"]
    assert any(in_bounds(pct(k, 55), b) for k in range(56))
    assert not any(in_bounds(pct(k, 56), b) for k in range(57))


# --------------------------------------------------------------------------- end to end
@pytest.mark.e2e
@pytest.mark.parametrize("e", ["2016", "2018"])
def test_pipeline_reproduces_every_numeric_published_figure(built_project, e):
    figures = pd.read_csv(built_project / f"results/{e}/figures.csv", keep_default_na=False, na_values=[""])
    figures["component"] = figures["component"].fillna("")
    status = {(r.id, r.component): r.status for r in figures.itertuples()}
    for pub in published(e).values():
        if pub["kind"] == "text":
            continue
        value = pub.get("value")
        comps = list(pub["bounds"]) if isinstance(pub.get("bounds"), dict) else (
            list(value) if isinstance(value, dict) else [""])
        for comp in comps:
            key = (pub["id"], comp)
            if comp == "" and key not in status:
                key = next(k for k in status if k[0] == pub["id"])
            assert key in status, f"{e}: published figure {key} is not computed"
            assert status[key] == "pass", f"{e}: published figure {key} is {status[key]}"
    assert not (figures["status"] == "fail").any()
    text = (built_project / f"results/{e}/conformity.txt").read_text(encoding="utf-8")
    assert "tous conformes" in text
