"""The cluster profile: ``snakemake -n --profile profiles/slurm`` plans every job without a cluster.

A dry run uses Snakemake's dry-run executor: nothing is submitted, and the SLURM
plugin (snakemake-executor-plugin-slurm) only parses its settings, which needs
neither ``sbatch`` nor ``sinfo``/``squeue`` (without ``sinfo`` the plugin leaves
its status command unset). The run happens in a copy of the project, never in
the working tree.
"""
from __future__ import annotations

import importlib.util
import re

import pytest
import yaml

from conftest import ROOT, copy_project, run_snakemake

PER_EDITION_RULES = ("clean", "tabulate", "compute_figures", "check_conformity", "write_provenance")


def _job_stats(output: str) -> dict[str, int]:
    """The « Job stats » table of a dry run: rule → number of jobs."""
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (it is pinned in requirements.lock)")
    proj = copy_project(tmp_path_factory.mktemp("slurm") / "proj")
    res = run_snakemake(proj, "-n", "--profile", "profiles/slurm", timeout=300)
    return proj, res


def test_dry_run_succeeds_and_lists_the_jobs(dry_run):
    proj, res = dry_run
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "This was a dry-run" in out
    stats = _job_stats(out)
    editions = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["editions"]
    for rule in PER_EDITION_RULES:
        assert stats.get(rule) == len(editions), (rule, stats)
    assert stats["total"] == sum(v for k, v in stats.items() if k != "total")


def test_jobs_get_the_profile_resources(dry_run):
    _, res = dry_run
    out = res.stdout + res.stderr
    # default resources of the profile, and the per-rule runtime of the two heavy rules
    assert re.search(r"resources: .*slurm_partition=\w+.*runtime=\d+", out)
    for rule in ("clean", "tabulate"):
        block = re.search(rf"^rule {rule}:\n(.*?)\n\n", out, re.S | re.M)
        assert block and "runtime=60" in block.group(1), rule


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
