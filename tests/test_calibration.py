"""Tests of barometre.calibration: raking and linear calibration, trimming, errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from barometre.calibration import calibrate, calibrate_frames, edition_weight
from barometre.errors import ValidationError

MARGINS = {"kind": {"Commune": 600.0, "Interco": 300.0, "Département": 100.0},
           "band": {"Petite": 700.0, "Grande": 300.0}}


@pytest.fixture()
def sample() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    kind = rng.choice(["Commune", "Interco", "Département"], 60, p=[0.4, 0.35, 0.25])
    band = np.where(rng.random(60) < np.where(kind == "Commune", 0.8, 0.4), "Petite", "Grande")
    return pd.DataFrame({"respondent_id": [f"R{i:03d}" for i in range(60)], "kind": kind, "band": band})


@pytest.mark.parametrize("method", ["raking", "linear"])
def test_weights_reproduce_the_margins(sample, method):
    res = calibrate(sample, MARGINS, method=method)
    assert res.converged
    for var, cats in MARGINS.items():
        for cat, target in cats.items():
            assert res.weights[sample[var] == cat].sum() == pytest.approx(target, abs=1e-8)
    assert res.weights.sum() == pytest.approx(1000, abs=1e-8)
    assert res.design_effect >= 1


def test_one_margin_raking_is_post_stratification(sample):
    res = calibrate(sample, {"kind": MARGINS["kind"]})
    counts = sample["kind"].value_counts()
    expected = sample["kind"].map(lambda k: MARGINS["kind"][k] / counts[k])
    np.testing.assert_allclose(res.weights.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert res.iterations == 1


def test_trimming_bounds_the_weights(sample):
    free = calibrate(sample, MARGINS)
    mean = 1000 / 60
    bounded = calibrate(sample, MARGINS, trim=[0.3, 1.5])
    assert free.weights.max() > 1.5 * mean  # the bound bites
    assert bounded.converged
    assert bounded.weights.max() <= 1.5 * mean + 1e-9 and bounded.weights.min() >= 0.3 * mean - 1e-9
    assert bounded.trimmed > 0
    assert abs(bounded.weights[sample["kind"] == "Commune"].sum() - 600) < 1e-8


def test_impossible_bounds_do_not_converge_and_calibrate_frames_says_so(sample):
    res = calibrate(sample, MARGINS, trim=[0.9, 1.1], max_iter=200)
    assert not res.converged
    with pytest.raises(ValidationError, match="did not converge"):
        calibrate_frames({"respondents": sample}, {"margins": MARGINS, "trim": [0.9, 1.1], "max_iter": 200})


def test_bad_margins_are_named(sample):
    with pytest.raises(ValidationError, match="same total"):
        calibrate(sample, {"kind": MARGINS["kind"], "band": {"Petite": 1.0, "Grande": 1.0}})
    with pytest.raises(ValidationError, match="fall in no margin category"):
        calibrate(sample, {"kind": {"Commune": 1.0, "Interco": 1.0}})
    with pytest.raises(ValidationError, match="not a column"):
        calibrate(sample, {"nope": {"x": 1.0}})


def test_tools_carry_their_respondents_weight(sample):
    tools = pd.DataFrame({"tool_id": ["t1", "t2", "t3"], "respondent_id": ["R000", "R000", "R005"]})
    frames, res = calibrate_frames({"respondents": sample, "tools": tools}, {"margins": MARGINS})
    w = dict(zip(sample["respondent_id"], res.weights, strict=True))
    assert frames["tools"]["calibration_weight"].tolist() == [w["R000"], w["R000"], w["R005"]]
    assert "calibration_weight" not in sample.columns  # inputs untouched
    assert edition_weight({"weight": None}, {"margins": MARGINS}) == "calibration_weight"
    assert edition_weight({"weight": "w"}, None) == "w"
    assert "convergé" in res.summary() and "Kish" in res.summary()
