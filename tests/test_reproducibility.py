"""Reproducibility: raw files untouched, byte-identical rebuilds, provenance, and Snakemake reruns
exactly the jobs a change affects.

Costs one extra full pipeline run (``second_build``), on top of the session's ``built_project``; the
rerun checks are dry runs on copies of the built project.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from barometre.provenance import build_provenance, git_state, run_source_date_epoch
from conftest import EDITION, ROOT, copy_project, run_snakemake, sha256_tree

EPOCH = 1507248000  # the SOURCE_DATE_EPOCH run_snakemake sets (end of the 2017 fieldwork)
COMPARED = (".csv", ".xlsx", ".svg", ".html", ".pdf", ".parquet", ".json", ".md", ".txt")
EDITION_RULES = {"clean", "tabulate", "compute_figures", "check_conformity", "write_provenance", "plot_charts",
                 "render_report", "describe_datapackage", "audit_disclosure"}
DOWNSTREAM_OF_CLEAN = {"clean", "tabulate", "compute_figures", "check_conformity", "write_provenance", "plot_charts",
                       "render_report", "describe_datapackage", "audit_disclosure"}
#: The tables and what reads them (figures check what the tables publish; the audit reads both).
DOWNSTREAM_OF_TABULATE = EDITION_RULES - {"clean"}


def output_hashes(proj: Path) -> dict[str, str]:
    out = {}
    for d in ("results", "data/processed"):
        out.update({f"{d}/{k}": v for k, v in sha256_tree(proj / d, COMPARED).items()})
    return out


# --------------------------------------------------------------------------- raw files


@pytest.mark.e2e
def test_raw_files_are_never_modified(built_project):
    """After a full run, every file of data/raw has the same sha256 as in the source tree, and the two
    exports still have the checksums published in data/raw/2017/README.md."""
    after = sha256_tree(built_project / "data/raw")
    assert after == sha256_tree(ROOT / "data/raw")
    readme = (ROOT / "data/raw/2017/README.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"\| `([^`]+\.(?:sav|csv))` \| `([0-9a-f]{64})` \|", readme))
    assert len(documented) == 2
    for name, sha in documented.items():
        assert after[f"2017/{name}"] == sha, name


# --------------------------------------------------------------------------- byte-identical rebuild


@pytest.fixture(scope="module")
def second_build(built_project, tmp_path_factory) -> Path:
    """The same inputs as ``built_project`` (copied from it, so a concurrent edit of the source tree
    cannot creep in), built from scratch in another folder by a fresh Snakemake process."""
    proj = copy_project(tmp_path_factory.mktemp("run2") / "elsewhere" / "proj", built_project)
    res = run_snakemake(proj, "--cores", "2")
    if res.returncode != 0:
        pytest.fail(f"second build failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}")
    return proj


@pytest.mark.e2e
def test_two_clean_builds_are_byte_identical(built_project, second_build):
    """Two runs from clean outputs, in two folders, same SOURCE_DATE_EPOCH, give the same sha256 for
    every CSV, XLSX, SVG, HTML, PDF, parquet, JSON, Markdown and text output (provenance.json
    included: it records project-relative paths only)."""
    a, b = output_hashes(built_project), output_hashes(second_build)
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    different = sorted(f for f in a if a[f] != b[f])
    assert not different, f"outputs differ between two builds: {different}"
    kinds = {Path(f).suffix for f in a}
    assert {".csv", ".xlsx", ".svg", ".html", ".pdf", ".parquet", ".json"} <= kinds


@pytest.mark.e2e
def test_jobs_run_the_code_of_their_own_tree(built_project, tmp_path):
    """Rule scripts import the ``barometre`` package of the project they run in (not an editable
    install of another checkout): a change to src/ of a copy shows in that copy's outputs."""
    proj = tmp_path / "proj"
    shutil.copytree(built_project, proj, symlinks=True)
    module = proj / "src/barometre/provenance.py"
    text = module.read_text(encoding="utf-8")
    marker = '        "edition": edition,\n'
    assert marker in text
    module.write_text(text.replace(marker, marker + '        "built_by_this_tree": True,\n', 1), encoding="utf-8")
    res = run_snakemake(proj, "--cores", "1", f"results/{EDITION}/provenance.json")
    assert res.returncode == 0, res.stderr[-3000:]
    record = json.loads((proj / f"results/{EDITION}/provenance.json").read_text(encoding="utf-8"))
    assert record.get("built_by_this_tree") is True


# --------------------------------------------------------------------------- provenance


@pytest.fixture(scope="module")
def provenance(built_project) -> dict:
    return json.loads((built_project / f"results/{EDITION}/provenance.json").read_text(encoding="utf-8"))


def _strings(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


@pytest.mark.e2e
def test_provenance_records_checksums_of_every_raw_input_codebook_and_config(built_project, provenance):
    """provenance.json lists every raw export of the edition, the codebook and config.yaml (also the
    registry and the published reference), by project-relative path, with the sha256 and size of
    the file that was read."""
    config = yaml.safe_load((built_project / "config.yaml").read_text(encoding="utf-8"))
    spec = config["editions"][EDITION]
    inputs = provenance["inputs"]
    expected = {raw["path"]: name for name, raw in spec["raw"].items()}
    expected.update({spec["codebook"]: "codebook", "config.yaml": "config", spec["registry"]: "registry",
                     spec["published"]: "published"})
    for path, role in expected.items():
        assert path in inputs, path
        data = (built_project / path).read_bytes()
        assert inputs[path]["role"] == role
        assert inputs[path]["sha256"] == hashlib.sha256(data).hexdigest()
        assert inputs[path]["bytes"] == len(data)


@pytest.mark.e2e
def test_provenance_has_no_absolute_path(built_project, provenance):
    """No string of provenance.json is an absolute path or names the build folder."""
    text = json.dumps(provenance)
    assert str(built_project) not in text and "/tmp/" not in text
    assert not [s for s in _strings(provenance) if s.startswith("/") or re.match(r"^[A-Za-z]:\\", s)]


@pytest.mark.e2e
def test_provenance_records_versions_git_state_and_build_date(provenance):
    """Package versions (as installed), the git commit and dirty flag (both null outside a git
    repository, as in the temporary copy) and the build date taken from SOURCE_DATE_EPOCH."""
    for name in ("pandas", "numpy", "pyreadstat", "snakemake", "weasyprint", "matplotlib", "openpyxl", "pyarrow"):
        assert provenance["packages"][name] == metadata.version(name), name
    assert set(provenance["git"]) == {"commit", "dirty"}
    commit, dirty = provenance["git"]["commit"], provenance["git"]["dirty"]
    assert (commit is None and dirty is None) or (re.fullmatch(r"[0-9a-f]{40}", commit) and isinstance(dirty, bool))
    assert provenance["source_date_epoch"] == str(EPOCH)
    assert provenance["build_date"] == dt.datetime.fromtimestamp(EPOCH, dt.UTC).isoformat()
    assert provenance["edition"] == EDITION and provenance["synthetic_data"] is True


def test_build_provenance_relativises_absolute_inputs(tmp_path, monkeypatch):
    """Given absolute input paths (another runner, a test), build_provenance still records paths
    relative to the project root, so two folders give the same record."""
    records = []
    for folder in ("a", "b"):
        root = tmp_path / folder
        (root / "data/raw").mkdir(parents=True)
        (root / "data/raw/x.csv").write_text("N°;x\n1;2\n", encoding="utf-8")
        (root / "config.yaml").write_text("a: 1\n", encoding="utf-8")
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
        monkeypatch.chdir(root)
        records.append(
            build_provenance(
                "2017", {"bp": str(root / "data/raw/x.csv"), "config": str(root / "config.yaml")}, True, root=root
            )
        )
    assert records[0] == records[1]
    assert set(records[0]["inputs"]) == {"data/raw/x.csv", "config.yaml"}


def test_git_state_gives_commit_and_dirty_flag(tmp_path):
    """Inside a git repository: the commit hash, and ``dirty`` true once a tracked file changes."""
    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("a\n")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    state = git_state(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", state["commit"]) and state["dirty"] is False
    (tmp_path / "f.txt").write_text("b\n")
    assert git_state(tmp_path)["dirty"] is True


def test_run_source_date_epoch_env_then_last_commit_then_config(tmp_path, monkeypatch):
    """The run's date: SOURCE_DATE_EPOCH if set, else the last commit's date, else the configured fallback;
    a folder inside another repository is not that repository."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert run_source_date_epoch(tmp_path, 1507248000) == 1507248000  # not a repository
    env = dict(os.environ, GIT_COMMITTER_DATE="2020-01-02T03:04:05+00:00", GIT_AUTHOR_DATE="2020-01-02T03:04:05+00:00")

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=tmp_path,
                       check=True, capture_output=True, env=env)

    git("init", "-q")
    assert run_source_date_epoch(tmp_path, 1507248000) == 1507248000  # a repository without commit
    (tmp_path / "f.txt").write_text("a\n")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    assert run_source_date_epoch(tmp_path, 1507248000) == 1577934245  # 2020-01-02T03:04:05Z
    (tmp_path / "copy").mkdir()
    assert run_source_date_epoch(tmp_path / "copy", 1507248000) == 1507248000
    assert git_state(tmp_path / "copy") == {"commit": None, "dirty": None}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    assert run_source_date_epoch(tmp_path, 1507248000) == 1600000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "demain")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH must be a whole number of seconds, got 'demain'"):
        run_source_date_epoch(tmp_path, 1507248000)


# --------------------------------------------------------------------------- rerun exactly what changed


JOB_RE = re.compile(r"^(?:local)?rule (\w+):\n((?:[ \t]+.*\n?)*)", re.M)


def jobs_to_rerun(proj: Path) -> set[tuple[str, str | None]]:
    """(rule, edition) of every job a dry run would execute (edition ``None`` without the wildcard)."""
    res = run_snakemake(proj, "-n", "--cores", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    if "Nothing to be done" in out:
        return set()
    jobs = set()
    for rule, body in JOB_RE.findall(out):
        m = re.search(r"wildcards: .*?\bedition=(\w+)", body)
        jobs.add((rule, m.group(1) if m else None))
    assert jobs, out[-3000:]
    return jobs - {("all", None)}


def per_edition(jobs: set[tuple[str, str | None]]) -> dict[str, set[str]]:
    """Rules of the per-edition pipeline to rerun, by edition (other jobs, e.g. cross-edition trends, left out)."""
    out: dict[str, set[str]] = {}
    for rule, edition in jobs:
        if edition is not None and rule in EDITION_RULES:
            out.setdefault(edition, set()).add(rule)
    return out


@pytest.fixture()
def built_copy(built_project, tmp_path) -> Path:
    """A copy of the built project (outputs, logs and Snakemake metadata, modification times kept)."""
    proj = tmp_path / "proj"
    shutil.copytree(built_project, proj, symlinks=True)
    return proj


def append_byte(path: Path, byte: bytes = b"\n") -> None:
    """A content change (not a touch): one byte appended."""
    with path.open("ab") as fh:
        fh.write(byte)


@pytest.mark.e2e
def test_copy_of_built_project_is_up_to_date(built_copy):
    """Baseline of the rerun checks: the copy has nothing to do."""
    assert jobs_to_rerun(built_copy) == set()


@pytest.mark.parametrize("changed,expected", [
    pytest.param("data/raw/2017/inventaire_budgets_participatifs_2017.csv", EDITION_RULES, id="bp_csv"),
    pytest.param("codebooks/2017.yaml", EDITION_RULES, id="codebook"),
    # the registry's exempt figures are read by the publication layer at tabulation
    pytest.param("registry/figures_2017.yaml", DOWNSTREAM_OF_TABULATE, id="registry"),
])
@pytest.mark.e2e
def test_a_change_reruns_exactly_its_dependants(built_copy, changed, expected):
    """One byte appended to a 2017 input reruns the 2017 jobs that depend on it and nothing else — no
    job of another edition: the BP CSV and the codebook rerun clean and everything downstream (and
    the provenance, which checksums them); the figures registry reruns neither clean nor tabulate, but
    the provenance. The data package follows the tables and figures."""
    append_byte(built_copy / changed)
    assert per_edition(jobs_to_rerun(built_copy)) == {EDITION: expected}


@pytest.mark.parametrize("changed,first,expected", [
    pytest.param("scripts/tabulate.py", "tabulate", DOWNSTREAM_OF_TABULATE, id="tabulate_script"),
    pytest.param("src/barometre/clean.py", "clean", DOWNSTREAM_OF_CLEAN, id="clean_code"),
])
@pytest.mark.e2e
def test_a_change_in_shared_code_reruns_that_step_and_its_dependants_only(built_copy, changed, first, expected):
    """Code serves every edition: scripts/tabulate.py reruns tabulate of each edition and everything
    that reads the tables (the figures check what the tables publish, the audit attacks both, the
    charts, the report, the data package, the provenance after the conformity check) — never clean;
    src/barometre/clean.py reruns clean and what follows it, the provenance too (it waits
    for the conformity check, and records the new code state that the report prints)."""
    append_byte(built_copy / changed)
    rerun = per_edition(jobs_to_rerun(built_copy))
    assert rerun[EDITION] == expected
    assert all(first in rules and rules <= expected for rules in rerun.values()), rerun


@pytest.mark.e2e
def test_a_template_change_reruns_only_the_report(built_copy):
    """A change in a report template reruns render_report of the editions that have a report (and
    plot_charts only if it reads the templates) — never clean, tabulate or the figures."""
    template = built_copy / "report_templates" / "report.html.j2"
    append_byte(template)
    rerun = per_edition(jobs_to_rerun(built_copy))
    assert "render_report" in rerun[EDITION], rerun
    assert all("render_report" in rules and rules <= {"plot_charts", "render_report"} for rules in rerun.values()), (
        rerun
    )


@pytest.mark.e2e
def test_a_change_in_the_chart_code_reruns_the_charts_and_report(built_copy):
    """src/barometre/charts.py draws the charts: changing it reruns plot_charts and render_report of the
    editions that have a report, nothing else."""
    append_byte(built_copy / "src/barometre/charts.py")
    rerun = per_edition(jobs_to_rerun(built_copy))
    assert EDITION in rerun and all(rules == {"plot_charts", "render_report"} for rules in rerun.values()), rerun
