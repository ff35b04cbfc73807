"""A calibrated edition, end to end: the toy edition « 2099 » with margins in the config.

The toy edition of tests/test_new_edition.py (9 communes and 3 other collectivities) is
calibrated to a made-up population of 300 communes and 700 others. Snakemake builds its
tables and figures with the project's code: the weights reproduce the margins to 1e-8,
the tables and the figures are weighted, and the tests become Rao–Scott tests.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_project, run_snakemake
from test_new_edition import EDITION, add_toy_edition

pytestmark = pytest.mark.e2e

MARGINS = {"collectivity_type": {"Commune": 300, "Autre": 700}}


@pytest.fixture(scope="module")
def calibrated_project(tmp_path_factory) -> Path:
    proj = copy_project(tmp_path_factory.mktemp("calibrated") / "proj")
    add_toy_edition(proj)
    config_path = proj / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["calibration"] = {EDITION: {"method": "raking", "margins": MARGINS}}
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    res = run_snakemake(proj, "--cores", "2", f"results/{EDITION}/figures.csv", f"results/{EDITION}/tables")
    if res.returncode != 0:
        pytest.fail(f"snakemake failed for the calibrated edition:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}")
    return proj


def test_weights_reproduce_the_margins(calibrated_project):
    margins = pd.read_csv(calibrated_project / f"results/{EDITION}/tables/calibration.csv")
    assert (margins["weighted"] - margins["target"]).abs().max() < 1e-8
    assert dict(zip(margins["category"], margins["respondents"], strict=True)) == {"Commune": 9, "Autre": 3}
    cells = pd.read_csv(calibrated_project / f"results/{EDITION}/tables/cells.csv")
    own = cells[(cells["question_id"] == cells.loc[cells["harmonised"] == "collectivity_type", "question_id"].iloc[0])
                & (cells["dimension"] == "ensemble") & (cells["statistic"] == "share")].set_index("answer_key")
    assert own.loc["commune", "count"] == pytest.approx(300, abs=1e-8)
    assert own.loc["autre", "count"] == pytest.approx(700, abs=1e-8)
    assert own.loc["commune", "unweighted_count"] == 9
    log = (calibrated_project / f"logs/{EDITION}/tabulate.log").read_text(encoding="utf-8")
    assert "calage par raking" in log and "convergé" in log


def test_figures_and_tests_use_the_weights(calibrated_project):
    figures = pd.read_csv(calibrated_project / f"results/{EDITION}/figures.csv").set_index("id")
    assert figures.loc["R03", "value"] == pytest.approx(30)  # 75 % of the respondents, 30 % once weighted
    assert figures.loc["R03", "status"] == "fail"  # the toy's published 75 % is an unweighted figure
    assert "pondéré" in figures.loc["F01", "base_rule"]
    tests = pd.read_csv(calibrated_project / f"results/{EDITION}/tables/tests.csv")
    assert "Rao-Scott" in " ".join(tests["test"].astype(str))
