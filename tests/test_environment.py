"""The environment is pinned once and the pins agree everywhere.

requirements.txt (direct deps, ``==``) ⊂ requirements.lock (full pin with hashes,
one universal resolution checked here for each supported Python), the ``pip:``
section of environment.yml is exactly requirements.txt, pyproject.toml names
nothing unpinned, and the interpreter running the tests has exactly the pinned
versions installed.
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
PYPROJECT = ROOT / "pyproject.toml"
MAKEFILE = ROOT / "Makefile"
CI_RUN = ROOT / ".ci" / "run"

#: The direct dependencies the project has decided on (brief of the environment).
DIRECT = {
    "pandas", "numpy", "scipy", "pyreadstat", "statsmodels", "matplotlib", "seaborn",
    "snakemake", "jinja2", "weasyprint", "pandera", "pyarrow", "openpyxl", "pyyaml",
    "jsonschema", "pytest", "hypothesis", "snakemake-executor-plugin-slurm", "frictionless", "ruff", "mypy",
    "phonenumbers", "xlsxwriter",
}

#: The Python versions the project supports (README, Makefile, .ci/run, pyproject.toml).
SUPPORTED = ("3.11", "3.12", "3.13")

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.!+_-]+)$")


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(lines: list[str], source: str) -> dict[str, str]:
    """``name==version`` lines -> {normalised name: version}; anything else fails."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        assert match, f"{source}:{number}: not an exact pin 'name==version': {raw.strip()!r}"
        name = normalize(match.group(1))
        assert name not in pins, f"{source}:{number}: {name} pinned twice"
        pins[name] = match.group(2)
    return pins


@pytest.fixture(scope="module")
def requirements() -> dict[str, str]:
    return parse_pins(REQUIREMENTS.read_text(encoding="utf-8").splitlines(), REQUIREMENTS.name)


_LOCK_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.!+_-]+)(?:\s*;\s*(.+?))?$")


def parse_lock(text: str) -> list[tuple[str, str, str | None, list[str]]]:
    """Entries of a hashed, universal lock: (normalised name, version, marker, hashes).

    Lines continued with a backslash are joined; anything but ``name==version [; marker]``
    followed by ``--hash=sha256:…`` options fails.
    """
    entries = []
    logical = re.sub(r"\\\n", " ", text)
    for number, raw in enumerate(logical.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = re.split(r"\s+(?=--hash=)", line)
        match = _LOCK_ENTRY.match(requirement.strip())
        assert match, f"{LOCK.name}: entry {number}: not 'name==version [; marker]': {raw.strip()!r}"
        hashes = [o.strip().removeprefix("--hash=") for o in options]
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), (
            f"{LOCK.name}: {match.group(1)} has no sha256 hash")
        entries.append((normalize(match.group(1)), match.group(2), match.group(3), hashes))
    return entries


def marker_environment(python: str) -> dict[str, str]:
    """The PEP 508 environment of CPython ``python`` on Linux x86_64 (the platform CI runs on)."""
    return {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
            "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
            "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def lock_for(python: str) -> dict[str, str]:
    """{name: version} that ``pip install -r requirements.lock`` installs on that Python."""
    pins: dict[str, str] = {}
    for name, version, marker, _ in parse_lock(LOCK.read_text(encoding="utf-8")):
        if marker and not Marker(marker).evaluate(marker_environment(python)):
            continue
        assert name not in pins, f"{LOCK.name}: {name} pinned twice for Python {python}"
        pins[name] = version
    return pins


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    return lock_for("{}.{}".format(*sys.version_info[:2]))


@pytest.fixture(scope="module")
def environment() -> dict:
    return yaml.safe_load(ENVIRONMENT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def conda_pip_pins(environment) -> dict[str, str]:
    sections = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml must have exactly one pip: section"
    return parse_pins([str(item) for item in sections[0]], f"{ENVIRONMENT.name} pip:")


# --------------------------------------------------------------------------
# Files agree with each other
# --------------------------------------------------------------------------
def test_requirements_are_exactly_the_direct_dependencies(requirements):
    assert set(requirements) == DIRECT


def test_environment_yml_header(environment):
    assert environment["name"] == "barometre"
    assert environment["channels"] == ["conda-forge"]
    conda = [d for d in environment["dependencies"] if not isinstance(d, dict)]
    assert "python>=3.11,<3.14" in conda and "pip" in conda
    # the system libraries WeasyPrint and the PDF checks need, so that --use-conda is complete
    names = {re.split(r"[<>=]", c, maxsplit=1)[0] for c in conda}
    assert {"pango", "harfbuzz", "poppler"} <= names, f"conda packages: {conda}"


def test_environment_yml_pip_section_is_requirements_txt(requirements, conda_pip_pins):
    assert conda_pip_pins == requirements


def test_lock_contains_every_direct_dependency_at_the_same_version(requirements, lock):
    missing = sorted(set(requirements) - set(lock))
    assert not missing, f"direct dependencies absent from {LOCK.name}: {missing}"
    differ = {n: (v, lock[n]) for n, v in requirements.items() if lock[n] != v}
    assert not differ, f"requirements.txt vs requirements.lock: {differ}"


def test_lock_is_a_full_pin(lock):
    # the lock leaves out the installer itself
    assert not {"pip", "setuptools", "wheel"} & set(lock)
    assert len(lock) > len(DIRECT)


@pytest.mark.parametrize("python", SUPPORTED)
def test_lock_pins_every_direct_dependency_once_for_each_supported_python(python, requirements):
    """One universal lock: on each supported Python it installs exactly the versions of requirements.txt."""
    pins = lock_for(python)
    differ = {n: (v, pins.get(n)) for n, v in requirements.items() if pins.get(n) != v}
    assert not differ, f"Python {python}: requirements.txt vs requirements.lock: {differ}"
    assert not {"pip", "setuptools", "wheel"} & set(pins)


def test_supported_pythons_agree_everywhere():
    """pyproject.toml, the Makefile and .ci/run accept 3.11–3.13 and nothing else."""
    spec = SpecifierSet(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["requires-python"])
    assert all(f"{v}.0" in spec for v in SUPPORTED)
    assert "3.10.0" not in spec and "3.14.0" not in spec
    makefile = MAKEFILE.read_text(encoding="utf-8")
    assert f"SUPPORTED_PYTHONS := {' '.join(SUPPORTED)}" in makefile
    assert "(3, 11) <= sys.version_info[:2] <= (3, 13)" in makefile
    assert "(3, 11) <= sys.version_info[:2] <= (3, 13)" in CI_RUN.read_text(encoding="utf-8")


def test_system_packages_include_harfbuzz_subsetting():
    """WeasyPrint subsets the fonts it embeds only with libharfbuzz-subset (else a warning, whole fonts)."""
    assert re.search(r"^APT_PACKAGES := .*\blibharfbuzz-subset0\b", MAKEFILE.read_text(encoding="utf-8"), re.M)
    assert re.search(r"^wanted=\(.*\blibharfbuzz-subset0\b", CI_RUN.read_text(encoding="utf-8"), re.M)


def test_pyproject_dependencies_are_pinned(requirements):
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    names = [normalize(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]) for d in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        names += [normalize(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]) for d in extra]
    assert set(names) == set(requirements), "pyproject.toml and requirements.txt name different packages"


def test_pyproject_pytest_configuration():
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    pytest_cfg = config["tool"]["pytest"]["ini_options"]
    assert pytest_cfg["testpaths"] == ["tests"]
    assert pytest_cfg["pythonpath"] == ["src"]
    markers = {m.split(":", 1)[0] for m in pytest_cfg["markers"]}
    assert {"slow", "e2e"} <= markers
    assert config["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]


# --------------------------------------------------------------------------
# The running interpreter is the pinned environment
# --------------------------------------------------------------------------
def test_python_is_supported():
    assert "{}.{}".format(*sys.version_info[:2]) in SUPPORTED, sys.version


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_installed_direct_dependencies_match_the_pins(requirements):
    wrong = {n: (v, _installed(n)) for n, v in requirements.items() if _installed(n) != v}
    assert not wrong, f"pinned vs installed (run `make install`): {wrong}"


def test_installed_transitive_dependencies_match_the_lock(lock):
    wrong = {n: (v, _installed(n)) for n, v in lock.items() if _installed(n) != v}
    assert not wrong, f"locked vs installed (run `make install`): {wrong}"


# --------------------------------------------------------------------------
# Build entry points
# --------------------------------------------------------------------------
def test_makefile_source_date_epoch_matches_config():
    """Outside git, the Makefile falls back to the date configured for the report (end of 2017 fieldwork)."""
    match = re.search(r"^export SOURCE_DATE_EPOCH \?= .*git log -1 --format=%ct.*echo (\d+)\)$",
                      MAKEFILE.read_text(encoding="utf-8"), re.M)
    assert match and match.group(1) == "1507248000"
    config_file = ROOT / "config.yaml"
    if not config_file.exists():
        pytest.skip("no config.yaml")
    epoch = (yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}).get("report", {}).get(
        "source_date_epoch"
    )
    if epoch is None:
        pytest.skip("config.yaml has no report.source_date_epoch")
    assert int(match.group(1)) == int(epoch)


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make not installed")
def test_make_help_lists_the_targets():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    out = subprocess.run(["make", "-s", "-C", str(ROOT)], capture_output=True, text=True, env=env, check=True)
    for target in ("help", "report", "test", "lint", "dag", "clean", "bench"):
        assert re.search(rf"^  make {target} +\S", out.stdout, re.M), f"`make help` lacks {target}"


def test_ci_script_is_strict_and_executable():
    text = CI_RUN.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert os.access(CI_RUN, os.X_OK), ".ci/run must be executable"
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(CI_RUN)], check=True)


def test_gitkeep_files_exist():
    assert (ROOT / "results" / ".gitkeep").is_file()
    assert (ROOT / "data" / "processed" / ".gitkeep").is_file()


def test_snakemake_lint_is_clean(tmp_path):
    """`snakemake --lint` finds nothing to say about the workflow (on a copy of the project)."""
    from conftest import copy_project, run_snakemake

    proj = copy_project(tmp_path / "proj")
    res = run_snakemake(proj, "--lint", timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "Congratulations, your workflow is in a good condition!" in out, out[-4000:]


def test_makefile_dates_a_copy_inside_another_repository_like_the_snakefile(tmp_path):
    """The last commit dates a build only in the project's own repository (as run_source_date_epoch)."""
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("make or git not installed")
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=tmp_path, check=True,
                   env={**env, "GIT_COMMITTER_DATE": "2020-01-02T03:04:05+00:00"})
    inner = tmp_path / "inner"
    inner.mkdir()
    shutil.copy(ROOT / "Makefile", inner / "Makefile")
    for folder, expected in ((inner, "1507248000"), (tmp_path, "1577934245")):
        if folder == tmp_path:
            shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
        out = subprocess.run(["make", "-s", "help"], cwd=folder, capture_output=True, text=True, env=env,
                             check=True).stdout
        assert f"SOURCE_DATE_EPOCH={expected}" in out, (folder, out[-300:])
