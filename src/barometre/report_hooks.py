"""The report's hooks: texts other layers write into the publication and the technical note.

The survey-design layer fills ``design_summary`` (technical note); the publication layer and
the disclosure audit fill ``disclosure_summary`` (methodology) and ``audit_summary``
(technical note). Each is empty when the rule does not pass what it needs.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from barometre.charts import read_cells
from barometre.codebook import load_codebook

#: Template variables other layers fill (publication layer, disclosure audit, survey design); empty by default.
HOOKS = ("disclosure_summary", "audit_summary", "design_summary")


def design_hook(edition: str, config: dict, inputs: Mapping[str, str], cells: str | Path) -> str:
    """The ``design_summary`` paragraph of the technical note, from the processed frames of ``inputs``
    (``respondents``, ``tools``, ``bp``); empty when the rule does not pass them."""
    from barometre.design import design_summary
    from barometre.pipeline import LEVEL_FRAMES, _calibrated, read_processed

    if not all(k in inputs for k in LEVEL_FRAMES.values()):
        return ""
    frames, calibration = _calibrated(read_processed(dict(inputs)), (config.get("calibration") or {}).get(str(edition)))
    return design_summary(config, {level: frames[name] for level, name in LEVEL_FRAMES.items()},
                          codebook=load_codebook(inputs["codebook"]), cells=read_cells(cells), calibration=calibration)


def disclosure_hooks(edition: str, config: Mapping, inputs: Mapping[str, str]) -> dict[str, str]:
    """``disclosure_summary`` (methods: what the secrecy policy protects and how, with every exemption's
    reason) and ``audit_summary`` (technical note: the disclosure audit in one sentence)."""
    from barometre.audit import audit_summary
    from barometre.publication import Policy, policy_summary

    if "disclosure" not in config:
        return {}
    policy = Policy.from_config(config["disclosure"], str(edition))
    text = policy_summary(policy)
    reasons = list(dict.fromkeys(e.reason.rstrip(".") for e in policy.exemptions))
    reasons = [r[:1].lower() + r[1:] for r in reasons]  # one sentence: « Exceptions retenues : a ; b. »
    if reasons:
        text += " Exceptions retenues : " + " ; ".join(reasons) + "."
    audit = inputs.get("disclosure_audit")
    return {"disclosure_summary": text, "audit_summary": audit_summary(audit) if audit and Path(audit).exists() else ""}

