"""The check made before a SLURM run submits anything (src/barometre/cluster.py).

Unit tests on hand-written ``sinfo``/``sacctmgr`` answers, then a run of the real workflow with
``--profile profiles/slurm`` where fake SLURM commands stand on PATH: a partition the cluster does
not have stops the run with one message, before any ``sbatch``. The real cluster run is
``make test-cluster``.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from barometre.cluster import SlurmSite, query_site, requested_settings, site_problems
from barometre.errors import ConfigError
from conftest import copy_project, snakemake_cmd

NO_SLURMDBD = "You are not running a supported accounting_storage plugin"


def fake_runner(answers: dict[str, tuple[int, str, str]]):
    """A ``run`` for query_site: the first word of the command → (exit code, stdout, stderr)."""
    calls = []

    def run(cmd):
        calls.append(cmd)
        code, out, err = answers[cmd[0]] if cmd[0] != "sacctmgr" else answers[f"sacctmgr {cmd[4]}"]
        return subprocess.CompletedProcess(cmd, code, out, err)

    run.calls = calls
    return run


def test_query_site_without_accounting_database():
    run = fake_runner({"sinfo": (0, "debug*\ngpu\n", ""), "sacctmgr associations": (1, "", NO_SLURMDBD + "\n")})
    site = query_site("alice", run)
    assert site == SlurmSite(("debug", "gpu"), "debug", None, None, NO_SLURMDBD)
    assert [c[0] for c in run.calls] == ["sinfo", "sacctmgr"]  # no QOS nor config query without accounting


def test_query_site_with_accounting():
    run = fake_runner({
        "sinfo": (0, "cpu*\ncpu\nbig\n", ""),
        "sacctmgr associations": (0, "ProjA\nprojb\n", ""),
        "sacctmgr qos": (0, "normal\nlong\n", ""),
        "scontrol": (0, "AccountingStorageEnforce = associations,limits\nMinJobAge = 300 sec\n", ""),
    })
    site = query_site("alice", run)
    assert site.partitions == ("cpu", "big") and site.default_partition == "cpu"
    assert site.accounts == ("proja", "projb") and site.qos == ("long", "normal")
    assert site.enforce == "associations,limits"
    assert "where user=alice" in run.calls[1]


def test_query_site_without_sinfo_says_so(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        ConfigError, match=r"sinfo fails \(sinfo cannot be run: .*No such file.*\): is this a SLURM login node\?"
    ):
        query_site("alice")


def test_requested_settings_groups_rules_by_value():
    jobs = [("clean", {"slurm_partition": "std", "mem_mb": 10}), ("tabulate", {"slurm_partition": "std"}),
            ("clean", {"slurm_partition": "std"}), ("render_report", {"slurm_account": "p1", "slurm_partition": ""})]
    asked = requested_settings(jobs, qos_setting="high")
    assert asked == {"slurm_partition": {"std": ["clean", "tabulate"]}, "slurm_account": {"p1": ["render_report"]},
                     "qos": {"high": ["slurm-qos"]}}


def test_missing_partition_names_what_exists():
    site = SlurmSite(("debug", "gpu"), "debug", None, None, NO_SLURMDBD)
    problems = site_problems(
        {"slurm_partition": {"standard": ["clean", "tabulate"]}}, site, "alice", every=["clean", "tabulate"]
    )
    assert problems == [
        "partition 'standard' (slurm_partition, every job) does not exist on this cluster; "
        "sinfo lists: debug (default), gpu. "
        "Set slurm_partition in profiles/site.yaml to one of them, or leave it unset to use the default partition."
    ]
    assert site_problems({"slurm_partition": {"gpu": ["clean"]}}, site, "alice") == []


def test_accounts_and_qos_are_checked_only_with_an_accounting_database():
    asked = {"slurm_account": {"nope": ["clean"], "PROJA": ["tabulate"]}, "qos": {"fast": ["slurm-qos"]}}
    without = SlurmSite(("debug",), "debug", None, None, NO_SLURMDBD)
    assert site_problems(asked, without, "alice") == []  # sbatch accepts any account there
    with_db = SlurmSite(("debug",), "debug", ("proja",), ("normal",), enforce="associations")
    problems = site_problems(asked, with_db, "alice")
    assert len(problems) == 2
    assert problems[0].startswith(
        "account 'nope' (slurm_account, rules clean) is not one of user 'alice''s accounts; sacctmgr lists: proja."
    )
    assert problems[1].startswith(
        "QOS 'fast' (slurm-qos, every job) does not exist on this cluster; sacctmgr lists: normal."
    )


def test_a_cluster_that_requires_an_account_says_so():
    site = SlurmSite(("debug",), "debug", (), ("normal",), enforce="associations,limits")
    (problem,) = site_problems({}, site, "alice")
    assert "requires an account (AccountingStorageEnforce=associations,limits)" in problem
    assert site_problems({}, SlurmSite(("debug",), "debug", ("p",), (), enforce="associations"), "alice") == []
    assert site_problems({}, SlurmSite(("debug",), "debug", (), (), enforce="none"), "alice") == []


FAKES = {
    # one partition, « debug », default; no accounting database
    "sinfo": 'echo "debug*"',
    "sacctmgr": f'echo "{NO_SLURMDBD}" >&2; exit 1',
    "sacct": 'echo "Slurm accounting storage is disabled" >&2; exit 1',
    "scontrol": 'echo "MinJobAge               = 300 sec"',
    "squeue": "exit 0",
    "sbatch": 'echo "$@" >> "$FAKE_SLURM_CALLS"; echo "Submitted batch job 1"',
}


@pytest.fixture(scope="module")
def bad_partition_run(tmp_path_factory):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (it is pinned in requirements.lock)")
    base = tmp_path_factory.mktemp("fake_slurm")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    proj = copy_project(base / "proj")
    (proj / "profiles" / "site.yaml").write_text(
        'default-resources:\n  slurm_partition: "standard"\n', encoding="utf-8"
    )
    calls = base / "sbatch_calls"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_SLURM_CALLS=str(calls))
    env.pop("SLURM_CONF", None)
    res = subprocess.run([*snakemake_cmd(), "--profile", "profiles/slurm", "--profile", "profiles/site.yaml"],
                         cwd=proj, env=env, capture_output=True, text=True, timeout=300)
    return proj, res, calls


def test_missing_partition_stops_the_run_before_any_sbatch(bad_partition_run):
    proj, res, calls = bad_partition_run
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "the SLURM run cannot start, nothing was submitted" in out, out[-3000:]
    assert (
        "partition 'standard' (slurm_partition, every job) does not exist on this cluster; sinfo lists: debug (default)"
        in out
    )
    assert not calls.exists(), "sbatch was called"
    assert not list(Path(proj).glob("results/*/*")) and not list(Path(proj).glob("data/processed/*/*"))
