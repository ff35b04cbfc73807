"""The container definitions (Containerfile for docker/podman, barometre.def for Apptainer)
build the environment the Makefile builds: Debian 12, a supported CPython, every system
package of the Makefile's APT_PACKAGES, and requirements.lock with its hashes checked.

Building the image needs a container engine and its registry: the build test runs only
where ``docker info`` answers, and says why it is skipped elsewhere.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTAINERFILE = ROOT / "Containerfile"
APPTAINER = ROOT / "barometre.def"
SUPPORTED = ("3.11", "3.12", "3.13")


def apt_packages() -> list[str]:
    """The system packages the Makefile installs (``APT_PACKAGES := …``)."""
    match = re.search(r"^APT_PACKAGES := (.+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert match, "Makefile: no APT_PACKAGES line"
    return match.group(1).split()


def installed_by_apt(text: str) -> set[str]:
    """Package names of the ``apt-get install`` command of a recipe (continuation lines joined)."""
    joined = text.replace("\\\n", " ")
    match = re.search(r"apt-get install (?:-\S+ )*([^&\n]+)", joined)
    assert match, "no apt-get install command"
    return set(match.group(1).split())


@pytest.mark.parametrize("recipe", [CONTAINERFILE, APPTAINER], ids=lambda p: p.name)
def test_recipe_installs_what_the_makefile_installs(recipe):
    text = recipe.read_text(encoding="utf-8")
    missing = set(apt_packages()) - installed_by_apt(text)
    assert not missing, f"{recipe.name}: system packages of the Makefile not installed: {sorted(missing)}"
    assert "git" in installed_by_apt(text)  # SOURCE_DATE_EPOCH and provenance read the commit
    assert re.search(r"pip install --require-hashes -r \S*requirements\.lock", text), recipe.name


def test_base_image_is_debian_12_with_a_supported_python():
    containerfile = CONTAINERFILE.read_text(encoding="utf-8")
    default = re.search(r"^ARG PYTHON_VERSION=(\S+)$", containerfile, re.M)
    assert default and default.group(1) in SUPPORTED
    assert re.search(r"^FROM \S*python:\$\{PYTHON_VERSION\}-slim-bookworm$", containerfile, re.M)
    apptainer = APPTAINER.read_text(encoding="utf-8")
    base = re.search(r"^From: python:(\d+\.\d+)-slim-bookworm$", apptainer, re.M)
    assert base and base.group(1) in SUPPORTED


def test_build_context_is_the_lock_only():
    """The image copies requirements.lock and nothing else (no .venv, results or raw data)."""
    ignore = [line for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
              if line and not line.startswith("#")]
    assert ignore == ["*", "!requirements.lock"]
    copied = re.findall(r"^COPY (\S+)", CONTAINERFILE.read_text(encoding="utf-8"), re.M)
    assert copied == ["requirements.lock"]


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.slow
def test_image_builds_and_plans_the_pipeline(tmp_path):
    """Build the image and let Snakemake plan the whole pipeline inside it, in this checkout."""
    if not _docker_answers():
        pytest.skip("no container engine here: `docker info` does not answer (daemon absent or not reachable)")
    tag = "barometre-test:latest"
    build = subprocess.run(["docker", "build", "-f", str(CONTAINERFILE), "-t", tag, str(ROOT)],
                           capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run(["docker", "run", "--rm", "-v", f"{ROOT}:/work", tag, "snakemake", "--cores", "2", "-n"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
