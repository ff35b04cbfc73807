"""Weights by calibration: raking or linear calibration of the respondents to known margins.

An edition listed under ``calibration:`` in the config gets a weight column
(:data:`WEIGHT_COLUMN` unless the entry names another) on its respondents, and each
tool carries the weight of its respondent. Tables, intervals, tests and figures then
use it (``tabulation`` and ``figures`` read the weight from :func:`edition_weight`).

* ``raking`` (default): iterative proportional fitting, margin after margin, until
  every weighted margin is within ``tolerance`` of its target;
* ``linear``: linear (χ²-distance, GREG) calibration ``w = d (1 + xᵀλ)``, solved in
  one step (weights may then be negative; trimming keeps them in bounds);
* ``trim: [low, high]``: bounds on the ratio of each weight to the mean weight,
  enforced inside the iterations (bounded calibration); when margins and bounds
  cannot both hold, calibration stops with an error naming the margins.

Hand-written (reason): statsmodels has no calibration estimator and ``samplics``
is not in the pinned environment; the algorithm is a few vectorised lines.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from barometre.errors import ValidationError

WEIGHT_COLUMN = "calibration_weight"
DEFAULTS = {"method": "raking", "max_iter": 1000, "tolerance": 1e-10, "trim": None, "weight": WEIGHT_COLUMN}


@dataclass(frozen=True)
class CalibrationResult:
    """Calibrated weights and how they were obtained.

    Attributes
    ----------
    weights
        One weight per row of the calibrated frame (same index).
    method
        ``raking`` or ``linear``.
    iterations
        Passes over the margins (raking) or trimming rounds (linear).
    converged
        Every margin within ``tolerance`` and every weight within its bounds.
    max_error
        Largest absolute difference between a weighted margin and its target.
    trimmed
        Rows whose weight sits on a trimming bound.
    design_effect
        Kish's design effect of the weights, ``n Σw² / (Σw)²``.
    margins
        Target, weighted total and respondent count of each margin category
        (columns ``variable, category, target, weighted, respondents``).
    """

    weights: pd.Series
    method: str
    iterations: int
    converged: bool
    max_error: float
    trimmed: int
    design_effect: float
    margins: pd.DataFrame

    def summary(self) -> str:
        """The calibration in one French paragraph (technical note)."""
        from barometre import fr

        method = (
            "calage par raking (ajustements proportionnels itérés)" if self.method == "raking" else "calage linéaire"
        )
        variables = ", ".join(dict.fromkeys(self.margins["variable"]))
        w = self.weights.to_numpy(dtype=float)
        state = "convergé" if self.converged else "NON convergé"
        return (f"Pondération : {method} sur les marges de {variables} ; {state} en "
                f"{fr.format_number(self.iterations)} itération{'s' if self.iterations > 1 else ''}, écart maximal "
                f"aux marges {_small(self.max_error)} ; poids de {fr.format_decimal(w.min(), 2)} à "
                f"{fr.format_decimal(w.max(), 2)} ({fr.format_number(self.trimmed)} poids bornés) ; effet de plan "
                f"dû à la pondération (Kish) {fr.format_decimal(self.design_effect, 2)}.")


def _small(x: float) -> str:
    """A tiny error as « 3 × 10⁻¹¹ » (French typography, no scientific notation)."""
    from barometre import fr

    if x == 0:
        return "0"
    exp = int(np.floor(np.log10(abs(x))))
    if exp >= -2:
        return fr.format_decimal(x, 4)
    sup = str(exp).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{fr.format_decimal(x / 10 ** exp, 1)}\u202f×\u202f10{sup}"


def settings(spec: Mapping | None) -> dict:
    """One edition's ``calibration:`` entry with its defaults."""
    out = dict(DEFAULTS)
    out.update(spec or {})
    if out["method"] not in ("raking", "linear"):
        raise ValueError(f"calibration.method: {out['method']!r} is neither 'raking' nor 'linear'")
    return out


def _indicators(frame: pd.DataFrame, margins: Mapping[str, Mapping[str, float]]) -> tuple[list, np.ndarray, np.ndarray]:
    """(variable, category) of each margin, the rows × margins 0/1 matrix and the targets."""
    names, columns, targets = [], [], []
    totals = {}
    for var, cats in margins.items():
        if var not in frame.columns:
            raise ValidationError(f"calibration: margin variable {var!r} is not a column of the respondents",
                                  [{"column": var, "problem": "missing"}])
        values = frame[var].astype(object).where(frame[var].notna(), None)
        outside = ~values.isin(list(cats)).to_numpy()
        if outside.any():
            rows = np.flatnonzero(outside)[:10].tolist()
            found = sorted({str(v) for v in values[outside]})
            raise ValidationError(
                f"calibration: {int(outside.sum())} row(s) of column {var!r} fall in no margin category "
                f"(values {found}, rows {rows}); every respondent must belong to one",
                [{"column": var, "row": int(r), "problem": "no margin category"} for r in rows])
        totals[var] = float(sum(cats.values()))
        for cat, target in cats.items():
            names.append((var, str(cat)))
            columns.append((values == cat).to_numpy(dtype=float))
            targets.append(float(target))
    if len(set(np.round(list(totals.values()), 6))) > 1:
        raise ValidationError(f"calibration: the margins do not add up to the same total: {totals}",
                              [{"column": v, "problem": f"total {t:g}"} for v, t in totals.items()])
    return names, np.column_stack(columns), np.array(targets)


def calibrate(frame: pd.DataFrame, margins: Mapping[str, Mapping[str, float]], *, method: str = "raking",
              trim: tuple[float, float] | list[float] | None = None, max_iter: int = 1000,
              tolerance: float = 1e-10, base_weights: np.ndarray | None = None) -> CalibrationResult:
    """Calibrate the rows of ``frame`` to ``margins`` ({variable: {category label: total}}).

    Parameters
    ----------
    frame
        One row per unit (respondents); each margin variable is a column.
    margins
        Known totals by category; every variable's totals add up to the same population.
    method
        ``raking`` or ``linear``.
    trim
        ``[low, high]`` bounds on weight / mean weight, or ``None``.
    max_iter, tolerance
        Stop when every margin is within ``tolerance`` (absolute), or after ``max_iter`` passes.
    base_weights
        Design weights before calibration (1 for every row by default).

    Returns
    -------
    CalibrationResult
    """
    names, x, t = _indicators(frame, margins)
    n = len(frame)
    d = np.ones(n) if base_weights is None else np.asarray(base_weights, dtype=float)
    mean_w = t.sum() / len(margins) / n  # population / rows: the mean weight after calibration
    lo, hi = (
        (float(trim[0]) * mean_w, float(trim[1]) * mean_w)
        if trim is not None
        else (0.0 if method == "raking" else -np.inf, np.inf)
    )
    w = d.copy()
    it = 0
    err = np.inf
    for it in range(1, max_iter + 1):
        if method == "raking":
            for j in range(x.shape[1]):
                sel = x[:, j] == 1
                s = w[sel].sum()
                if s <= 0:
                    raise ValidationError(f"calibration: no respondent in margin {names[j][0]} = « {names[j][1]} »",
                                          [{"column": names[j][0], "value": names[j][1], "problem": "empty category"}])
                w[sel] *= t[j] / s
            w = np.clip(w, lo, hi)
        else:
            free = (w > lo) & (w < hi) if it > 1 else np.ones(n, dtype=bool)
            fixed_tot = x[~free].T @ w[~free]
            xd = x[free] * d[free, None]
            lam = np.linalg.lstsq(xd.T @ x[free], t - fixed_tot - xd.sum(axis=0), rcond=None)[0]
            w_new = w.copy()
            w_new[free] = d[free] * (1 + x[free] @ lam)
            w = np.clip(w_new, lo, hi)
        err = float(np.max(np.abs(x.T @ w - t)))
        if err <= tolerance:
            break
    inside = np.all((w >= lo - 1e-12) & (w <= hi + 1e-12))
    converged = bool(err <= tolerance and inside)
    trimmed = int(np.count_nonzero(np.isclose(w, lo) | np.isclose(w, hi))) if trim is not None else 0
    table = pd.DataFrame({"variable": [v for v, _ in names], "category": [c for _, c in names], "target": t,
                          "weighted": x.T @ w, "respondents": x.sum(axis=0).astype(int)})
    deff = float(n * np.sum(w * w) / np.sum(w) ** 2)
    return CalibrationResult(pd.Series(w, index=frame.index, name=WEIGHT_COLUMN), method, it, converged, err,
                             trimmed, deff, table)


def calibrate_frames(
    frames: Mapping[str, pd.DataFrame], spec: Mapping
) -> tuple[dict[str, pd.DataFrame], CalibrationResult]:
    """Add the calibrated weight to the respondents, and to each tool its respondent's weight.

    ``frames``: processed frames by name (``respondents``, ``tools``, ``bp``). Raises when the
    calibration does not converge (margins or bounds unmet), naming the worst margin.
    """
    opts = settings(spec)
    resp = frames["respondents"]
    res = calibrate(resp, opts["margins"], method=opts["method"], trim=opts["trim"],
                    max_iter=int(opts["max_iter"]), tolerance=float(opts["tolerance"]))
    if not res.converged:
        worst = (
            res.margins.assign(gap=(res.margins["weighted"] - res.margins["target"]).abs()).nlargest(1, "gap").iloc[0]
        )
        raise ValidationError(
            f"calibration did not converge after {res.iterations} passes: margin {worst['variable']} = "
            f"« {worst['category']} » weighted {worst['weighted']:.6f} for target {worst['target']:g} "
            "(loosen trim, or check the margins)", [{"column": worst["variable"], "value": worst["category"]}])
    name = opts["weight"]
    out = dict(frames)
    out["respondents"] = resp.assign(**{name: res.weights.to_numpy()})
    tools = frames.get("tools")
    if tools is not None and len(tools) and "respondent_id" in tools.columns:
        by_resp = pd.Series(res.weights.to_numpy(), index=resp["respondent_id"].to_numpy())
        out["tools"] = tools.assign(**{name: tools["respondent_id"].map(by_resp).to_numpy(dtype=float)})
    return out, res


def edition_weight(tabulation: Mapping, calibration: Mapping | None) -> str | None:
    """The weight column of an edition: the calibrated one when calibrated, else ``tabulation.weight``."""
    if calibration:
        return settings(calibration)["weight"]
    return tabulation.get("weight")
