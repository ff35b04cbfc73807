"""The cluster profile: ``snakemake -n --profile profiles/slurm`` plans every job without a cluster.

A dry run uses Snakemake's dry-run executor: nothing is submitted, and the SLURM
plugin (snakemake-executor-plugin-slurm) only parses its settings, which needs
neither ``sbatch`` nor ``sinfo``/``squeue``. The run happens in a copy of the
project, never in the working tree. The real cluster run is ``make test-cluster``
(tests/cluster/run.sh).
"""
from __future__ import annotations

import importlib.util
import re

import pytest
import yaml

from conftest import ROOT, copy_project, run_snakemake

PER_EDITION_RULES = ("clean", "tabulate", "compute_figures", "check_conformity", "write_provenance")
PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8"))


def _job_stats(output: str) -> dict[str, int]:
    """The « Job stats » table of a dry run: rule → number of jobs."""
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def _resources_by_rule(output: str) -> dict[str, list[dict[str, str]]]:
    """Rule → the ``resources:`` line of each of its jobs in a dry run, as name → value."""
    out: dict[str, list[dict[str, str]]] = {}
    for m in re.finditer(r"^rule (\w+):\n(.*?)(?:\n\n|\Z)", output, re.S | re.M):
        if m.group(1) == "all":  # the target, run by Snakemake itself: never submitted
            continue
        line = re.search(r"^\s*resources: (.*)$", m.group(2), re.M)
        if line:
            out.setdefault(m.group(1), []).append(dict(kv.split("=", 1) for kv in line.group(1).split(", ")))
    return out


def _rule_names() -> set[str]:
    return {
        m.group(1)
        for path in (ROOT / "rules").glob("*.smk")
        for m in re.finditer(r"^rule (\w+):", path.read_text(encoding="utf-8"), re.M)
    }


def _needs_plugin():
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (it is pinned in requirements.lock)")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    _needs_plugin()
    return copy_project(tmp_path_factory.mktemp("slurm") / "proj")


@pytest.fixture(scope="module")
def dry_run(project):
    return project, run_snakemake(project, "-n", "--profile", "profiles/slurm", timeout=300)


def test_dry_run_succeeds_and_lists_the_jobs(dry_run):
    _, res = dry_run
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "This was a dry-run" in out
    stats = _job_stats(out)
    editions = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["editions"]
    for rule in PER_EDITION_RULES:
        assert stats.get(rule) == len(editions), (rule, stats)
    assert stats["total"] == sum(v for k, v in stats.items() if k != "total")


def test_every_job_gets_its_measured_runtime_and_memory_and_no_partition(dry_run):
    _, res = dry_run
    jobs = _resources_by_rule(res.stdout + res.stderr)
    assert set(jobs) == _rule_names(), "a rule is missing from the dry run"
    for rule, resources in jobs.items():
        wanted = PROFILE["set-resources"][rule]
        for res_ in resources:
            assert res_["runtime"] == str(wanted["runtime"]), (rule, res_)
            assert res_["mem_mb"] == str(wanted["mem_mb"]), (rule, res_)
            # the cluster's default partition and the user's default account, unless a site sets them
            assert "slurm_partition" not in res_ and "slurm_account" not in res_, (rule, res_)
            assert "cpus_per_task" not in res_, (rule, res_)  # threads decide


def test_profile_works_unedited_on_a_typical_cluster():
    assert PROFILE["executor"] == "slurm"
    assert PROFILE["slurm-status-command"] == "squeue"  # sacct hangs without slurmdbd (issue 15)
    assert "default-resources" not in PROFILE  # a site profile may set it whole
    assert PROFILE["latency-wait"] >= 30
    assert set(PROFILE["set-resources"]) == _rule_names()
    text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8")
    for rule in _rule_names():  # each value comes with its measurement in the comment table
        assert re.search(rf"^#\s+{rule}\s+\d+ MiB\s+[\d.]+ s\s+\d+\s+\d+", text, re.M), rule


def test_site_profile_sets_partition_and_account_without_touching_tracked_files(project):
    example = yaml.safe_load((ROOT / "profiles" / "site.example.yaml").read_text(encoding="utf-8"))
    assert set(example["default-resources"]) == {"slurm_partition", "slurm_account"} and example["slurm-qos"]
    site = project / "profiles" / "site.yaml"
    site.write_text(
        'default-resources:\n  slurm_partition: "compute"\n  slurm_account: "myproject"\n', encoding="utf-8"
    )
    try:
        res = run_snakemake(
            project, "-n", "--profile", "profiles/slurm", "--profile", "profiles/site.yaml", timeout=300
        )
    finally:
        site.unlink()
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    jobs = _resources_by_rule(out)
    for rule, resources in jobs.items():
        for res_ in resources:
            assert res_["slurm_partition"] == "compute" and res_["slurm_account"] == "myproject", (rule, res_)
            assert res_["runtime"] == str(PROFILE["set-resources"][rule]["runtime"]), (rule, res_)
    ignored = ROOT / ".gitignore"
    assert "/profiles/site.yaml" in ignored.read_text(encoding="utf-8").splitlines()


def test_nothing_was_submitted(dry_run):
    proj, _ = dry_run
    assert not (proj / "logs" / "slurm").exists()  # the plugin's log folder: created on submission only
    assert not list(proj.glob("results/*/rapport_*")) and not list(proj.glob("data/processed/*/*.parquet"))


def test_profile_keeps_rule_resources():
    """Every rule declares threads and mem_mb (the profile only fills in partition and runtime)."""
    for path in sorted((ROOT / "rules").glob("*.smk")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", text, re.S | re.M):
            assert "threads:" in m.group(2), f"{path.name}: rule {m.group(1)} has no threads"
            assert "mem_mb" in m.group(2), f"{path.name}: rule {m.group(1)} declares no mem_mb"
