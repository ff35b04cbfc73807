"""config.yaml: schema validation and file checks run before any job."""
from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from barometre.config import check_files, load_config, resolve_salt, validate_schema
from barometre.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def config() -> dict:
    return load_config(ROOT / "config.yaml")


def test_shipped_config_is_valid(config):
    check_files(config, ROOT)
    assert "2017" in config["editions"]


def test_misspelt_top_level_key_is_named(config):
    bad = copy.deepcopy(config)
    bad["tabulaton"] = bad.pop("tabulation")
    with pytest.raises(ConfigError) as err:
        validate_schema(bad)
    assert "tabulaton" in str(err.value)


def test_misspelt_key_comes_with_the_nearest_allowed_one(config):
    bad = copy.deepcopy(config)
    bad["tabulaton"] = bad.pop("tabulation")
    bad["editions"]["2017"]["codebok"] = bad["editions"]["2017"].pop("codebook")
    bad["disclosure"]["zzz"] = 1
    with pytest.raises(ConfigError) as err:
        validate_schema(bad)
    msg = str(err.value)
    assert "(top level): unknown key 'tabulaton' (did you mean 'tabulation'?)" in msg
    assert "editions/2017: unknown key 'codebok' (did you mean 'codebook'?)" in msg
    assert (
        "disclosure: unknown key 'zzz' (allowed: editions, exemptions, identities, merge_label, min_cell, "
        "protection, small_base)"
        in msg
    )


def test_misspelt_nested_key_is_named(config):
    bad = copy.deepcopy(config)
    bad["editions"]["2017"]["codebok"] = bad["editions"]["2017"].pop("codebook")
    with pytest.raises(ConfigError) as err:
        validate_schema(bad)
    assert "codebok" in str(err.value) and "editions/2017" in str(err.value)


def test_wrong_type_is_named(config):
    bad = copy.deepcopy(config)
    bad["disclosure"]["min_cell"] = "three"
    with pytest.raises(ConfigError, match="disclosure/min_cell"):
        validate_schema(bad)


def test_missing_raw_file_is_named(config, tmp_path):
    bad = copy.deepcopy(config)
    bad["editions"]["2017"]["raw"]["survey"]["path"] = "data/raw/2017/absent.sav"
    with pytest.raises(ConfigError) as err:
        check_files(bad, ROOT)
    assert "editions/2017/raw/survey/path" in str(err.value) and "absent.sav" in str(err.value)


def test_empty_edition_folder_is_an_error(config, tmp_path):
    (tmp_path / "data/raw/2099").mkdir(parents=True)
    bad = copy.deepcopy(config)
    ed = copy.deepcopy(bad["editions"]["2017"])
    ed["raw"] = {"survey": {"path": "data/raw/2099/export.sav", "format": "sav"}}
    for key in ("codebook", "registry", "published"):
        ed[key] = str(ROOT / ed[key])
    bad["editions"] = {"2099": ed}
    with pytest.raises(ConfigError) as err:
        check_files(bad, tmp_path)
    assert "2099" in str(err.value) and "export.sav" in str(err.value)


def test_salt_for_real_data_is_required(config, monkeypatch, tmp_path):
    monkeypatch.delenv(config["pseudonymisation"]["salt_env"], raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="salt"):
        resolve_salt(config, synthetic=False, edition="2017")
    salt, origin = resolve_salt(config, synthetic=True, edition="2017")
    assert salt and "synthétiques" in origin
    monkeypatch.setenv(config["pseudonymisation"]["salt_env"], "secret")
    assert resolve_salt(config, synthetic=False, edition="2017")[0] == b"secret"


def _copy_project(tmp_path: Path) -> Path:
    dst = tmp_path / "proj"
    for item in ("Snakefile", "rules", "schemas", "scripts", "src", "codebooks", "registry", "references",
                 "report_templates", "config.yaml"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dst / item)
        elif src.exists():
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst / item)
    shutil.copytree(ROOT / "data/raw", dst / "data/raw")
    return dst


def _snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("snakemake")
    return subprocess.run([str(exe), "-n", "--cores", "1", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_snakemake_stops_on_typo_before_any_job(tmp_path):
    proj = _copy_project(tmp_path)
    cfg = yaml.safe_load((proj / "config.yaml").read_text(encoding="utf-8"))
    cfg["disclosur"] = cfg.pop("disclosure")
    (proj / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    res = _snakemake(proj)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "disclosur" in out
    assert "Job stats" not in out


@pytest.mark.slow
def test_snakemake_stops_on_missing_file_before_any_job(tmp_path):
    proj = _copy_project(tmp_path)
    (proj / "data/raw/2017/inventaire_budgets_participatifs_2017.csv").unlink()
    res = _snakemake(proj)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "inventaire_budgets_participatifs_2017.csv" in out and "file not found" in out
    assert "Job stats" not in out


def test_snakemake_names_a_misspelt_key_in_a_few_lines(tmp_path):
    """The typo is named with its fix before any job, without the schema and the configuration dumped."""
    proj = _copy_project(tmp_path)
    cfg = proj / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("\ntabulation:", "\ntabulaton:", 1), encoding="utf-8")
    res = _snakemake(proj)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "unknown key 'tabulaton' (did you mean 'tabulation'?)" in out
    assert len(out.splitlines()) < 20, out
    assert "Job stats" not in out
