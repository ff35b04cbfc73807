"""Before a SLURM run submits anything: the partition, account and QOS it asks for must exist.

Without this check, a partition the cluster does not have makes every ``sbatch`` fail
(« invalid partition specified »), one job after the other, and an account the SLURM executor
plugin cannot verify stops the run at its first submission with a message about ``sacctmgr``
and ``sshare``. ``check_slurm_site`` runs once, from the ``onstart`` handler of
rules/common.smk, only when the executor is ``slurm``: it asks ``sinfo`` and ``sacctmgr`` once
and raises ``ConfigError`` listing every problem, before the first job is submitted.
"""
from __future__ import annotations

import getpass
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from barometre.errors import ConfigError

#: Job resources (and executor setting) a site profile sets, by what they name.
SETTINGS = {"slurm_partition": "partition", "slurm_account": "account", "qos": "QOS"}

#: Where site settings live (README, « Sur un cluster SLURM »).
SITE_PROFILE = "profiles/site.yaml"

Runner = Callable[[list[str]], subprocess.CompletedProcess]


@dataclass(frozen=True)
class SlurmSite:
    """What the cluster offers to the user running Snakemake.

    Attributes
    ----------
    partitions : tuple of str
        Every partition ``sinfo --all`` lists.
    default_partition : str or None
        The partition ``sinfo`` marks with ``*``.
    accounts : tuple of str or None
        The user's accounts (``sacctmgr`` associations, lower case); None when the cluster has no
        accounting database (``accounts_error`` then says why).
    qos : tuple of str or None
        Every QOS ``sacctmgr`` knows (lower case); None without an accounting database.
    accounts_error : str
        What ``sacctmgr`` answered when it could not list accounts.
    enforce : str
        ``AccountingStorageEnforce`` of ``scontrol show config`` (« none » when jobs need no account).
    """

    partitions: tuple[str, ...]
    default_partition: str | None
    accounts: tuple[str, ...] | None
    qos: tuple[str, ...] | None
    accounts_error: str = ""
    enforce: str = "none"


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run a SLURM command; a command missing or hanging gives exit code 127 and the reason on stderr."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]} cannot be run: {err}")


def _lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.strip()]


def query_site(user: str | None = None, run: Runner = _run) -> SlurmSite:
    """Ask ``sinfo`` and ``sacctmgr`` what the cluster offers to ``user`` (default: the current user).

    Raises
    ------
    ConfigError
        If ``sinfo`` cannot be run or fails: no SLURM cluster answers from this machine.

    ``run`` runs one command and never raises (as ``_run``: exit code 127 when it cannot start).
    """
    user = user or getpass.getuser()
    res = run(["sinfo", "--noheader", "--all", "--format=%P"])
    if res.returncode != 0:
        said = (_lines(res.stderr) or _lines(res.stdout) or [f"exit code {res.returncode}"])[0]
        raise ConfigError(f"the slurm executor is selected, but sinfo fails ({said}): is this a SLURM login node?")
    names = _lines(res.stdout)
    default = next((n.rstrip("*") for n in names if n.endswith("*")), None)
    partitions = tuple(dict.fromkeys(n.rstrip("*") for n in names))

    acc = run(["sacctmgr", "--noheader", "--parsable2", "show", "associations", f"where user={user}", "format=account"])
    if acc.returncode != 0:  # no slurmdbd: « You are not running a supported accounting_storage plugin »
        said = (_lines(acc.stderr) or _lines(acc.stdout) or [f"exit code {acc.returncode}"])[0]
        return SlurmSite(partitions, default, None, None, said)
    qos = run(["sacctmgr", "--noheader", "--parsable2", "show", "qos", "format=name"])
    conf = run(["scontrol", "show", "config"])
    enforce = next(
        (
            line.split("=", 1)[1].strip()
            for line in conf.stdout.splitlines()
            if line.strip().startswith("AccountingStorageEnforce")
        ),
        "none",
    )
    return SlurmSite(
        partitions,
        default,
        tuple(sorted({a.lower() for a in _lines(acc.stdout)})),
        tuple(sorted({q.lower() for q in _lines(qos.stdout)})) if qos.returncode == 0 else None,
        enforce=enforce if conf.returncode == 0 else "none",
    )


def requested_settings(
    resources: Iterable[tuple[str, Mapping]], qos_setting: str | None = None
) -> dict[str, dict[str, list[str]]]:
    """The partitions, accounts and QOS the jobs ask for: setting → value → rules asking for it.

    Parameters
    ----------
    resources : iterable of (rule name, resources mapping)
        One pair per job to run (``job.rule.name``, ``job.resources``).
    qos_setting : str, optional
        The executor's ``slurm-qos`` setting, which applies to every job.
    """
    asked: dict[str, dict[str, list[str]]] = {key: {} for key in SETTINGS}
    for rule, res in resources:
        for key in SETTINGS:
            value = res.get(key)
            value = getattr(value, "value", value)  # Snakemake's Resource objects
            if value not in (None, ""):
                rules = asked[key].setdefault(str(value), [])
                if rule not in rules:
                    rules.append(rule)
    if qos_setting:
        asked["qos"].setdefault(str(qos_setting), []).append("slurm-qos")
    return asked


def site_problems(
    asked: Mapping[str, Mapping[str, list[str]]], site: SlurmSite, user: str, every: Iterable[str] = ()
) -> list[str]:
    """Every partition, account or QOS asked for that the cluster does not have, as one line each.

    Without an accounting database, accounts and QOS are neither checked nor enforced: ``sbatch``
    accepts any. ``every`` names all the rules to run, so that a setting they all share is said
    once (« every job ») rather than rule by rule.
    """
    every = sorted(set(every))

    def _where(rules: list[str]) -> str:
        if every and sorted(set(rules)) == every:
            return "every job"
        if rules == ["slurm-qos"]:
            return "slurm-qos, every job"
        return "rules " + ", ".join(sorted(rules)[:5]) + (f" and {len(rules) - 5} more" if len(rules) > 5 else "")

    problems = []
    known = ", ".join(f"{p} (default)" if p == site.default_partition else p for p in site.partitions) or "none"
    for value, rules in asked.get("slurm_partition", {}).items():
        if value not in site.partitions:
            problems.append(
                f"partition {value!r} (slurm_partition, {_where(rules)}) does not exist on this cluster; "
                f"sinfo lists: {known}. Set slurm_partition in {SITE_PROFILE} to one of them, "
                "or leave it unset to use the default partition."
            )
    if site.accounts is None:
        return problems
    for value, rules in asked.get("slurm_account", {}).items():
        if value.lower() not in site.accounts:
            problems.append(
                f"account {value!r} (slurm_account, {_where(rules)}) is not one of user {user!r}'s accounts; "
                f"sacctmgr lists: {', '.join(site.accounts) or 'none'}. Set slurm_account in {SITE_PROFILE}."
            )
    if not asked.get("slurm_account") and not site.accounts and site.enforce.lower() not in ("", "none", "0"):
        problems.append(
            f"this cluster requires an account (AccountingStorageEnforce={site.enforce}), and sacctmgr lists none "
            f"for user {user!r}: ask the cluster's administrators for one, then set slurm_account in {SITE_PROFILE}."
        )
    for value, rules in asked.get("qos", {}).items():
        if site.qos is not None and value.lower() not in site.qos:
            problems.append(
                f"QOS {value!r} ({_where(rules)}) does not exist on this cluster; sacctmgr lists: "
                f"{', '.join(site.qos) or 'none'}. Set slurm-qos in {SITE_PROFILE}."
            )
    return problems


def check_slurm_site(workflow, run: Runner = _run) -> None:
    """Stop a SLURM run before its first submission if it asks for a partition, account or QOS that does not exist.

    Parameters
    ----------
    workflow : snakemake.workflow.Workflow
        The running workflow (``onstart`` handler): its jobs to run and executor settings.

    Raises
    ------
    ConfigError
        Listing every missing partition, account and QOS, with what the cluster has instead.
    """
    jobs = [job for job in workflow.dag.needrun_jobs() if not job.is_local]  # `all` is never submitted
    asked = requested_settings(
        ((job.rule.name, job.resources) for job in jobs),
        getattr(workflow.executor_settings, "qos", None),
    )
    user = getpass.getuser()
    problems = site_problems(asked, query_site(user, run), user, every=(job.rule.name for job in jobs))
    if problems:
        raise ConfigError("the SLURM run cannot start, nothing was submitted:\n  " + "\n  ".join(problems))
