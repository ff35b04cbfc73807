#!/usr/bin/env python3
"""Benchmarks of the barometre pipeline at 10 000, 100 000 and 1 000 000 respondents (``make bench``).

What is measured, and how
-------------------------
For each size ``n`` a synthetic edition in the raw format of 2017 is generated
(:mod:`bench.generate`, seeded, vectorised; cached under ``results/bench/data``)
as a LimeSurvey-like ``.sav`` and as Parquet. Then, each in a **fresh
subprocess** (so that ``ru_maxrss`` is the peak of that path only):

* **parquet path** — ``ingest_parquet_s``: :func:`barometre.ingest.read_raw`
  (format ``parquet``); ``clean_s``: :func:`barometre.clean.clean_edition` with the
  2017 exclusion rules; ``tabulate_s``: :func:`barometre.tabulate.tabulate_edition`
  (every question × « Ensemble », collectivity type and role; tools × tool type
  and collectivity type; the configured tests) + the column letters
  (:func:`barometre.comparisons.add_letters`) + :func:`barometre.disclosure.apply_disclosure`
  (not timed: the per-collectivity tables and the publication layer's secondary
  suppression, which rule ``tabulate`` runs too); ``design_s``: the design-based pass
  of the clustered levels (:func:`barometre.design.design_tables`: Taylor variances,
  intervals on the effective base, Rao–Scott tests), timed apart after ``peak_rss_mb``
  is read, with ``peak_rss_with_design_mb`` after it; one BLAS thread, as Snakemake
  gives a one-thread script job;
  ``bincount_s``: the counting floor, one plain ``np.bincount(answer * n_dim + dim)``
  per question column × dimension on the same processed frames (codes prepared
  beforehand, only the counting is timed); ``peak_rss_mb``: peak resident memory
  of that subprocess (MiB) once it has read, cleaned and tabulated (read before
  the floor and the peers, which hold their own copies; ``peak_rss_with_floor_mb``
  after the floor). Then the **peers** (:func:`peer_tabulations`): pandas
  ``groupby``, polars ``group_by`` and DuckDB ``GROUP BY`` count the same crosstabs
  on the same cleaned frames, checked against ``np.bincount``, each reported as a
  ratio to ``tabulate_s``; a peer whose package is missing is named, not fatal.
* **sav path** — ``ingest_sav_s``: :func:`barometre.ingest.read_raw` (format
  ``sav``); ``peak_rss_sav_mb``; then, on the same file, pyreadstat's
  ``read_file_multiprocessing`` (one process per usable core), the peer of the
  target « no slower than pyreadstat's multiprocess reader ». Up to
  ``--sav-variants-max`` rows, pyreadstat's plain reader and ``read_file_in_chunks``
  (+ concat) are timed too, for the record.

Each phase is timed in-process with ``time.perf_counter`` (wall) and
``time.process_time`` (CPU of the process), repeated (``--repeats``, fewer at
1 000 000 to stay within 10 minutes) and summarised by the **median**; every
repetition is kept in the JSON. The machine is shared: wall times are noisy,
CPU times much less (they are what a quiet machine would show, for a
single-threaded phase).

Pipeline floors, on a fresh copy of the project (``tests/conftest.py::copy_project``,
never in the working tree, whose ``.snakemake`` lock other people use):

* ``full_run_2017_s`` — cold ``snakemake --cores 2`` of every 2017 output (raw →
  processed → tables → figures → charts → HTML and PDF report);
* ``startup_floor_s`` — one Python process that imports the stack and renders
  the 2017 report once (:func:`barometre.render.run_render_report` on the
  results of the cold run), i.e. the least one job of the pipeline costs;
* ``noop_s`` — ``snakemake --cores 2`` again, with nothing to do.

Outputs: ``results/bench/bench.json`` (every figure, the machine, the targets and
whether each is met, with its ratio) and ``bench/RESULTS.md`` (a short table).

Usage::

    python bench/run.py                      # the full benchmark (≈ 6-9 minutes here)
    python bench/run.py --sizes 10000 --skip-pipeline   # quick check
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests"))

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
EDITION = "2017"
GIB = 1024  # MiB

TARGETS: dict[str, dict[str, Any]] = {
    "clean_tabulate_1m_parquet_s": {"limit": 30.0, "what": "1M respondents from parquet: clean + tabulate (wall, s)"},
    "peak_rss_1m_mb": {"limit": 2 * GIB, "what": "1M from parquet: peak RSS of read + clean + tabulate (MiB)"},
    "tabulate_over_bincount_1m": {"limit": 3.0, "what": "1M: tabulation / bincount floor (ratio)"},
    "growth_exponent_clean_tabulate": {"limit": 1.1, "what": "growth of clean + tabulate, t ∝ n^b from 100k to 1M (b)"},
    "ingest_sav_1m_s": {"limit": 10.0, "what": "1M from .sav: read (wall, s)"},
    "ingest_sav_over_multiprocessing_1m": {
        "limit": 1.0, "what": "1M from .sav: read / pyreadstat.read_file_multiprocessing, same file, same run (ratio)"},
    "full_run_over_startup": {"limit": 3.0, "what": "cold 2017 run / start-up floor (ratio)"},
    "noop_s": {"limit": 2.0, "what": "no-op snakemake (wall, s)"},
}


# --------------------------------------------------------------------------- helpers
def _timed(fn: Callable[[], T], repeats: int) -> tuple[T, dict]:
    """Run ``fn`` ``repeats`` times; median wall and CPU seconds, and every run."""
    walls: list[float] = []
    cpus: list[float] = []
    result: Any = None
    for _ in range(repeats):
        result = None  # let the previous result go before the next run (peak memory)
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return result, {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
                    "runs_wall_s": [round(x, 4) for x in walls], "runs_cpu_s": [round(x, 4) for x in cpus]}


def _peak_rss_mb() -> float:
    """``ru_maxrss`` in MiB (Linux counts KiB). It survives fork + exec, so the parent stays small."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _vm_hwm_mb() -> float | None:
    """Peak resident set of this process's own address space (``VmHWM``), as a cross-check."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def _load_config() -> dict:
    import yaml

    with open(ROOT / "config.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _repeats_for(n: int, base: int) -> int:
    return base if n < 1_000_000 else max(1, base - 1)


# --------------------------------------------------------------------------- workers (fresh processes)
def bincount_floor(frames: dict, codebook, dimensions: dict, repeats: int = 5) -> dict:
    """Counting floor: one np.bincount(answer * n_dim + dim) per question column × dimension."""
    import numpy as np
    import pandas as pd

    work = []
    for level, frame in frames.items():
        dims = [np.zeros(len(frame), dtype=np.int64)]
        sizes = [1]
        for d in dimensions.get(level, []):
            codes = frame[d].astype("category").cat.codes.to_numpy(dtype=np.int64)
            dims.append(codes)
            sizes.append(int(codes.max()) + 1 if len(codes) else 1)
        names = ["ensemble", *dimensions.get(level, [])]
        for q in codebook.at_level(level):
            if q.type == "text":
                continue
            cols = q.columns() if q.type in ("multiple", "ranking") else [q.harmonised]
            for col in cols:
                s = frame[col]
                if isinstance(s.dtype, pd.CategoricalDtype):
                    a = s.cat.codes.to_numpy(dtype=np.int64)
                else:  # booleans, ranks, years: small integers
                    v = s.to_numpy(dtype=float, na_value=np.nan)
                    lo = np.nanmin(v) if np.isfinite(v).any() else 0.0
                    a = np.where(np.isfinite(v), v - lo, -1).astype(np.int64)
                k = int(a.max()) + 1 if len(a) else 1
                for name, g, gn in zip(names, dims, sizes, strict=True):
                    if name == q.harmonised:
                        continue
                    ok = (a >= 0) & (g >= 0)
                    work.append((a[ok], g[ok], k, gn))

    def count():
        for a, g, k, gn in work:
            np.bincount(a * gn + g, minlength=k * gn)

    _, t = _timed(count, repeats)
    t["bincounts"] = len(work)
    return t


def _count_pairs(frames: dict, codebook, dimensions: dict) -> list[tuple[str, str, str | None]]:
    """The crosstabs counted by the floor and the peers: (level, question column, dimension or ``None``)."""
    pairs: list[tuple[str, str, str | None]] = []
    for level, frame in frames.items():
        for q in codebook.at_level(level):
            if q.type == "text":
                continue
            for col in (q.columns() if q.type in ("multiple", "ranking") else [q.harmonised]):
                if col in frame.columns:
                    pairs += [(level, col, d) for d in [None, *dimensions.get(level, [])] if d != q.harmonised]
    return pairs


#: The peers a user would pick instead of the project for the same crosstabs, with the package each needs.
PEERS = {"pandas_groupby": "pandas", "polars_group_by": "polars", "duckdb_group_by": "duckdb"}


def _peer_modules(name: str) -> Any:
    """Import the package of peer ``name`` (polars and DuckDB from ``$BENCH_PEERS``, see the Makefile)."""
    import importlib

    extra = os.environ.get("BENCH_PEERS") or str(Path(sys.prefix) / "bench-peers")
    if Path(extra).is_dir() and extra not in sys.path:
        sys.path.append(extra)  # after the project's environment: it never shadows a project package
    return importlib.import_module(PEERS[name])


def _peer_key(value: Any) -> str:
    """A label comparable across libraries (categories are text, booleans and integer codes are numbers)."""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return str(value)


def _row_key(row: tuple, dim: str | None) -> tuple[str, str]:
    """(dimension label, answer label) of a result row ``(dimension, answer, count)`` or ``(answer, count)``."""
    return (_peer_key(row[0]), _peer_key(row[1])) if dim else ("*", _peer_key(row[0]))


def peer_tabulations(frames: dict, codebook, dimensions: dict, repeats: int) -> dict:
    """Time the peers' crosstabs: every pair of :func:`_count_pairs`, rows with a missing key left out.

    * ``pandas_groupby``: ``frame.groupby([dimension, question], observed=True).size()`` per pair, on the
      cleaned frames as they are;
    * ``polars_group_by``: the level's columns as a polars frame (conversion timed apart, ``load``), one lazy
      ``group_by(...).len()`` per pair, all run by one ``pl.collect_all`` (polars' own threads);
    * ``duckdb_group_by``: the level's columns as an Arrow table registered in DuckDB (``load``), one
      ``SELECT dimension, question, count(*) … GROUP BY ALL`` per pair (DuckDB's own threads).

    Each peer's counts are compared, pair by pair and label by label, with the floor's ``np.bincount``
    (``agree``). A peer whose package is not installed is reported as missing, not an error.
    """
    import numpy as np
    import pandas as pd

    pairs = _count_pairs(frames, codebook, dimensions)
    needed = {lvl: list(dict.fromkeys([c for l2, col, d in pairs if l2 == lvl for c in (col, d) if c]))
              for lvl in frames}

    def reference() -> dict:  # per pair, {(dimension label, answer label): count} through np.bincount
        out = {}
        for level, col, dim in pairs:
            frame = frames[level]
            a_codes, a_uniq = pd.factorize(frame[col], use_na_sentinel=True)
            g_codes, g_uniq = (pd.factorize(frame[dim], use_na_sentinel=True) if dim
                               else (np.zeros(len(frame), dtype=np.int64), np.array(["*"])))
            ok = (a_codes >= 0) & (g_codes >= 0)
            k, gn = max(len(a_uniq), 1), max(len(g_uniq), 1)
            counts = np.bincount(a_codes[ok] * gn + g_codes[ok], minlength=k * gn)
            out[(level, col, dim)] = {(_peer_key(g_uniq[i % gn]) if dim else "*", _peer_key(a_uniq[i // gn])): int(c)
                                      for i, c in enumerate(counts) if c}
        return out

    def run_pandas() -> tuple[Callable[[], Any], Callable[[Any], dict]]:
        def count() -> list:
            return [frames[lvl].groupby([dim, col] if dim else [col], observed=True, dropna=True).size()
                    for lvl, col, dim in pairs]

        def labels(res: list) -> dict:
            out = {}
            for (lvl, col, dim), s in zip(pairs, res, strict=True):
                out[(lvl, col, dim)] = {(_peer_key(i[0]), _peer_key(i[1])) if dim else ("*", _peer_key(i)): int(c)
                                        for i, c in s.items() if c}
            return out
        return count, labels

    def arrow_tables() -> dict:
        import pyarrow as pa

        return {lvl: pa.Table.from_pandas(frames[lvl][cols], preserve_index=False) for lvl, cols in needed.items()}

    def run_polars(pl: Any) -> tuple[Callable[[], Any], Callable[[Any], dict], dict]:
        load_t = time.perf_counter()
        tables = {lvl: pl.from_arrow(t) for lvl, t in arrow_tables().items()}
        load = {"wall_s": time.perf_counter() - load_t}

        def count() -> list:
            queries = []
            for lvl, col, dim in pairs:
                keys = [dim, col] if dim else [col]
                queries.append(tables[lvl].lazy().drop_nulls(keys).group_by(keys).len())
            return pl.collect_all(queries)

        def labels(res: list) -> dict:
            out = {}
            for (lvl, col, dim), df in zip(pairs, res, strict=True):
                rows = df.rows()
                out[(lvl, col, dim)] = {_row_key(r, dim): int(r[-1]) for r in rows}
            return out
        return count, labels, load

    def run_duckdb(duckdb: Any) -> tuple[Callable[[], Any], Callable[[Any], dict], dict]:
        load_t = time.perf_counter()
        con = duckdb.connect()
        for lvl, table in arrow_tables().items():
            con.register(lvl, table)
        load = {"wall_s": time.perf_counter() - load_t}

        def q(name: str) -> str:
            return '"' + name.replace('"', '""') + '"'

        sql = []
        for lvl, col, dim in pairs:
            keys = [q(dim), q(col)] if dim else [q(col)]
            where = " AND ".join(f"{k} IS NOT NULL" for k in keys)
            sql.append(f"SELECT {', '.join(keys)}, count(*) FROM {q(lvl)} WHERE {where} GROUP BY ALL")

        def count() -> list:
            return [con.execute(s).fetchall() for s in sql]

        def labels(res: list) -> dict:
            return {(lvl, col, dim): {_row_key(r, dim): int(r[-1]) for r in rows}
                    for (lvl, col, dim), rows in zip(pairs, res, strict=True)}
        return count, labels, load

    ref = reference()
    out: dict = {"pairs": len(pairs)}
    for name in PEERS:
        try:
            module = _peer_modules(name)
        except ImportError as exc:
            out[name] = {"available": False,
                         "reason": f"{PEERS[name]} is not installed ({exc}); "
                                   "`make bench` installs bench/requirements.txt"}
            continue
        entry: dict = {"available": True, "version": getattr(module, "__version__", None)}
        if name == "pandas_groupby":
            count, labels = run_pandas()
        elif name == "polars_group_by":
            count, labels, entry["load"] = run_polars(module)
            entry["threads"] = module.thread_pool_size()
        else:
            count, labels, entry["load"] = run_duckdb(module)
            entry["threads"] = int(module.execute("SELECT current_setting('threads')").fetchall()[0][0])
        res, entry["time"] = _timed(count, repeats)
        got = labels(res)
        differ = [f"{lvl}.{col}×{dim or 'ensemble'}" for (lvl, col, dim), c in ref.items() if got[(lvl, col, dim)] != c]
        entry.update(agree=not differ, differ=differ[:10])
        out[name] = entry
    return out


def worker_parquet(n: int, data: Path, repeats: int) -> dict:
    """Ingest from parquet, clean, tabulate, bincount floor; peak RSS at the end."""
    import pandera.pandas  # noqa: F401 - imported by the cleaning phase; its import is not a cost of n

    from barometre.clean import clean_edition
    from barometre.codebook import load_codebook
    from barometre.comparisons import add_letters
    from barometre.design import COLLECTIVITY, design_of, design_tables
    from barometre.disclosure import apply_disclosure
    from barometre.ingest import read_raw
    from barometre.tabulate import tabulate_edition

    config = _load_config()
    spec = config["editions"][EDITION]
    codebook = load_codebook(ROOT / spec["codebook"])
    tab, disc = config["tabulation"], config["disclosure"]
    raw, t_ingest = _timed(lambda: read_raw("survey", {"path": str(data / f"survey_{n}.parquet"), "format": "parquet"}),
                           repeats)

    def clean(raw: Any = raw) -> Any:  # ``raw`` bound here: the name is deleted below to free it
        return clean_edition({"survey": raw}, codebook, spec.get("exclusions", []), b"bench-salt")

    result, t_clean = _timed(clean, repeats)
    frames = {"respondent": result.respondents, "tool": result.tools}
    del raw, clean  # the raw export is freed before tabulating (peak memory)

    def tabulate():
        res = tabulate_edition(frames, codebook, tab["dimensions"], tab.get("weight"), tab.get("confidence", 0.95),
                               min_expected=tab.get("min_expected_chi2", 5), permutations=tab.get("permutations", 9999),
                               seed=tab.get("seed"))
        # the column letters, which rule tabulate computes on every table's cells
        cells = add_letters(res.cells, {"comparisons": config.get("comparisons") or {}},
                            confidence=tab.get("confidence", 0.95))
        cells = apply_disclosure(cells, min_cell=int(disc["min_cell"]), small_base=int(disc["small_base"]),
                                 codebook=codebook)
        return cells, res.tests

    (cells, tests), t_tab = _timed(tabulate, repeats)

    # The path's peak (read + clean + tabulate) is read before the floor and the peers: the floor holds
    # every prepared code array at once (its own measuring device), the peers their own copies.
    peak, hwm = round(_peak_rss_mb(), 1), _vm_hwm_mb()

    def design():
        # What rule tabulate adds for the clustered levels (config ``design:``): Taylor variances,
        # design-based intervals and Rao-Scott tests (barometre.design.design_tables), timed apart.
        c, t = cells, tests
        for level, frame in frames.items():
            qs = [q for q in codebook.at_level(level) if q.tabulation_unit != COLLECTIVITY]
            c, t = design_tables(c, t, frame, qs, design_of(config, level), codebook=codebook,
                                 confidence=tab.get("confidence", 0.95))
        return c, t

    _, t_design = _timed(design, _repeats_for(n, 1))
    peak_design = round(_peak_rss_mb(), 1)
    t_floor = bincount_floor(frames, codebook, tab["dimensions"])
    peak_floor = round(_peak_rss_mb(), 1)
    peers = peer_tabulations(frames, codebook, tab["dimensions"], repeats)
    return {
        "n": n, "respondents_kept": len(result.respondents), "tools": len(result.tools),
        "excluded": len(result.exclusions), "events": len(result.events),
        "cells": len(cells), "tests": len(tests), "tests_by_kind": tests["test"].value_counts().to_dict(),
        "ingest_parquet": t_ingest, "clean": t_clean, "tabulate": t_tab, "design": t_design, "bincount": t_floor,
        "peak_rss_mb": peak, "vm_hwm_mb": hwm, "peak_rss_with_design_mb": peak_design,
        "peak_rss_with_floor_mb": peak_floor, "repeats": repeats,
        "peers": peers,
    }


def worker_sav(n: int, data: Path, repeats: int, variants: bool) -> dict:
    """Ingest from .sav with the package; optionally pyreadstat's own variants; peak RSS."""
    import pandas as pd
    import pyreadstat

    from barometre.ingest import read_raw

    path = data / f"survey_{n}.sav"
    out: dict = {"n": n, "repeats": repeats}
    # Both readers below must meet the same page cache: the file is read through once first, so
    # that neither pays for the disk and the comparison is one of decoding (pages are not RSS).
    with path.open("rb") as fh:
        while fh.read(1 << 24):
            pass
    raw, out["ingest_sav"] = _timed(lambda: read_raw("survey", {"path": str(path), "format": "sav"}), repeats)
    out["columns"] = int(raw.frame.shape[1])
    out["peak_rss_sav_mb"] = round(_peak_rss_mb(), 1)
    out["vm_hwm_sav_mb"] = _vm_hwm_mb()
    del raw
    repeats = 1  # pyreadstat's own readers are timed once (at 1M, one read is 20 to 40 s)
    kw: dict[str, Any] = {"user_missing": True, "apply_value_formats": False}
    # The target's peer, at every size: pyreadstat's multiprocess reader on all usable cores.
    cores = len(os.sched_getaffinity(0))
    _, out["pyreadstat_multiprocessing"] = _timed(
        lambda: pyreadstat.read_file_multiprocessing(pyreadstat.read_sav, str(path), num_processes=cores, **kw),
        repeats)
    out["pyreadstat_multiprocessing"]["num_processes"] = cores
    if variants:
        _, out["pyreadstat_read_sav"] = _timed(lambda: pyreadstat.read_sav(str(path), **kw), repeats)
        chunk = max(1, n // 4)

        def chunked():
            reader = pyreadstat.read_file_in_chunks(pyreadstat.read_sav, str(path), chunksize=chunk, **kw)
            parts = [df for df, _ in reader]
            return pd.concat(parts, ignore_index=True)

        _, out["pyreadstat_chunks_4"] = _timed(chunked, repeats)
    return out


def worker_startup(built: Path, out_dir: Path) -> dict:
    """Start-up floor: import the stack and render the 2017 report (HTML + PDF) once."""
    t0 = time.perf_counter()
    import yaml

    os.chdir(built)
    sys.path.insert(0, str(built / "src"))
    from barometre.render import run_render_report

    config = yaml.safe_load((built / "config.yaml").read_text(encoding="utf-8"))
    spec = config["editions"][EDITION]
    inputs = {
        "figures": f"results/{EDITION}/figures.csv", "tables": f"results/{EDITION}/tables",
        "charts": f"results/{EDITION}/charts", "provenance": f"results/{EDITION}/provenance.json",
        "cleaning_log": f"data/processed/{EDITION}/cleaning_log.csv", "codebook": spec["codebook"],
        "published": spec["published"],
        "templates": sorted(str(p.relative_to(built)) for p in (built / "report_templates").glob("*") if p.is_file()),
    }
    t_import = time.perf_counter() - t0
    outputs = {"html": str(out_dir / f"rapport_{EDITION}.html"), "pdf": str(out_dir / f"rapport_{EDITION}.pdf")}
    run_render_report(EDITION, config, inputs, outputs)
    return {"import_s": t_import, "render_s": time.perf_counter() - t0 - t_import,
            "pdf_bytes": Path(outputs["pdf"]).stat().st_size}


def _run_worker(args: list[str], timeout: float) -> tuple[dict, float]:
    """Run this script as a worker in a fresh interpreter; its JSON result and wall time."""
    # One BLAS thread, as Snakemake gives a one-thread script job (idle BLAS threads spin otherwise).
    env = dict(os.environ, PYTHONHASHSEED="0", MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1",
               SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "1507248000"))
    t = time.perf_counter()
    res = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_worker", *args],
                         capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1]), wall


# --------------------------------------------------------------------------- data
def worker_generate(n: int, data: Path, seed: int) -> dict:
    import generate

    t = time.perf_counter()
    generate.write_edition(n, data, seed)
    return {"generate_s": round(time.perf_counter() - t, 2)}


def ensure_data(n: int, data: Path, seed: int) -> dict:
    """Generate the edition of ``n`` rows (in a worker) unless the cached one matches the generator and seed."""
    import hashlib

    digest = hashlib.sha256()
    for p in (BENCH / "generate.py", ROOT / "synth" / "generate_2017.py", ROOT / "codebooks" / "2017.yaml"):
        digest.update(p.read_bytes())
    stamp = {"n": n, "seed": seed, "generator_sha256": digest.hexdigest()}
    manifest = data / f"survey_{n}.json"
    files = [data / f"survey_{n}.sav", data / f"survey_{n}.parquet"]
    if (manifest.is_file() and all(f.is_file() for f in files)
            and json.loads(manifest.read_text())["stamp"] == stamp):
        return {"generated": False, **json.loads(manifest.read_text())}
    res, _ = _run_worker(["generate", str(n), str(data), str(seed)], timeout=1800)
    info = {"stamp": stamp, "generate_s": res["generate_s"],
            "sav_mb": round(files[0].stat().st_size / 1e6, 1), "parquet_mb": round(files[1].stat().st_size / 1e6, 1)}
    manifest.write_text(json.dumps(info, indent=2))
    return {"generated": True, **info}


# --------------------------------------------------------------------------- pipeline floors
def pipeline_floors(repeats: int, log) -> dict:
    from conftest import copy_project

    targets = [f"data/processed/{EDITION}/respondents.parquet", f"results/{EDITION}/tableaux.xlsx",
               f"results/{EDITION}/figures.csv", f"results/{EDITION}/conformity.txt",
               f"results/{EDITION}/provenance.json", f"results/{EDITION}/rapport_{EDITION}.html",
               f"results/{EDITION}/rapport_{EDITION}.pdf"]
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "1507248000"),
               PYTHONHASHSEED="0", MPLBACKEND="Agg")
    out: dict = {"targets": targets, "full_runs_s": [], "noop_runs_s": [], "startup_runs": []}
    with tempfile.TemporaryDirectory(prefix="barometre-bench-") as tmp:
        built = None
        for i in range(repeats):
            proj = copy_project(Path(tmp) / f"cold{i}")
            t = time.perf_counter()
            res = subprocess.run([snakemake, "--cores", "2", *targets], cwd=proj, env=env,
                                 capture_output=True, text=True, timeout=900)
            wall = time.perf_counter() - t
            if res.returncode != 0:
                raise RuntimeError(f"cold snakemake run failed:\n{res.stderr[-4000:]}")
            out["full_runs_s"].append(round(wall, 3))
            log(f"  cold 2017 run {i + 1}/{repeats}: {wall:.1f} s")
            built = proj
        for _ in range(repeats):
            t = time.perf_counter()
            res = subprocess.run([snakemake, "--cores", "2", *targets], cwd=built, env=env,
                                 capture_output=True, text=True, timeout=300)
            wall = time.perf_counter() - t
            if res.returncode != 0 or "Nothing to be done" not in res.stdout + res.stderr:
                raise RuntimeError(f"no-op snakemake run did something or failed:\n{res.stderr[-3000:]}")
            out["noop_runs_s"].append(round(wall, 3))
        log(f"  no-op runs: {out['noop_runs_s']}")
        for i in range(repeats):
            render_out = Path(tmp) / f"render{i}"
            render_out.mkdir()
            info, wall = _run_worker(["startup", str(built), str(render_out)], timeout=600)
            out["startup_runs"].append({"wall_s": round(wall, 3), **{k: round(v, 3) if isinstance(v, float) else v
                                                                     for k, v in info.items()}})
            log(f"  start-up floor run {i + 1}/{repeats}: {wall:.1f} s (import {info['import_s']:.1f} s)")
    out["full_run_2017_s"] = statistics.median(out["full_runs_s"])
    out["noop_s"] = statistics.median(out["noop_runs_s"])
    out["startup_floor_s"] = statistics.median(r["wall_s"] for r in out["startup_runs"])
    return out


# --------------------------------------------------------------------------- report
def _default_seed() -> int:
    import re

    match = re.search(r"^SEED = (\d+)", (BENCH / "generate.py").read_text(), re.M)
    if match is None:
        raise SystemExit("bench/generate.py defines no SEED")
    return int(match.group(1))


def machine() -> dict:
    from importlib.metadata import version

    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {
        "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_kb / 1024 ** 2, 1), "python": platform.python_version(),
        "platform": platform.platform(), "cpu": _cpu_model(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
        "versions": {p: version(p) for p in ("numpy", "pandas", "pyarrow", "pyreadstat", "scipy", "snakemake",
                                             "weasyprint", "snakemake-executor-plugin-slurm")},
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def peer_ratios(peers: dict, tabulate_s: float) -> dict:
    """Each peer's crosstab time over the project's tabulation time (same run, same cleaned frames).

    A missing peer is kept, with ``available: false`` and the reason, never dropped silently.
    """
    out = {}
    for name in PEERS:
        p = peers.get(name) or {"available": False, "reason": "not run"}
        if not p["available"]:
            out[name] = {"available": False, "reason": p["reason"], "ratio_to_tabulate": None}
            continue
        out[name] = {"available": True, "version": p.get("version"), "threads": p.get("threads", 1),
                     "wall_s": round(p["time"]["wall_s"], 4), "cpu_s": round(p["time"]["cpu_s"], 4),
                     "load_s": round(p["load"]["wall_s"], 4) if "load" in p else None,
                     "ratio_to_tabulate": round(p["time"]["wall_s"] / tabulate_s, 3), "counts_agree": p["agree"]}
    return out


def evaluate(sizes: list[dict], floors: dict | None) -> dict:
    import math

    by_n = {s["n"]: s for s in sizes}
    values: dict[str, float | None] = dict.fromkeys(TARGETS)
    if 1_000_000 in by_n:
        big = by_n[1_000_000]
        values["clean_tabulate_1m_parquet_s"] = big["clean_s"] + big["tabulate_s"]
        values["peak_rss_1m_mb"] = big["peak_rss_mb"]
        values["tabulate_over_bincount_1m"] = big["tabulate_s"] / big["bincount_s"]
        values["ingest_sav_1m_s"] = big.get("ingest_sav_s")
        if big.get("pyreadstat_multiprocessing_s"):
            values["ingest_sav_over_multiprocessing_1m"] = big["ingest_sav_s"] / big["pyreadstat_multiprocessing_s"]
    if 100_000 in by_n and 1_000_000 in by_n:
        a, b = by_n[100_000], by_n[1_000_000]
        values["growth_exponent_clean_tabulate"] = math.log10(
            (b["clean_s"] + b["tabulate_s"]) / (a["clean_s"] + a["tabulate_s"]))
    if floors:
        values["full_run_over_startup"] = floors["full_run_2017_s"] / floors["startup_floor_s"]
        values["noop_s"] = floors["noop_s"]
    out = {}
    for key, spec in TARGETS.items():
        v = values[key]
        entry = {**spec, "value": None if v is None else round(v, 3)}
        if v is None:
            entry.update(met=None, note="not measured in this run")
        else:
            entry.update(met=bool(v <= spec["limit"]), ratio_to_limit=round(v / spec["limit"], 3),
                         miss=None if v <= spec["limit"] else round(v - spec["limit"], 3))
        out[key] = entry
    return out


README_START = "<!-- bench:start (written by bench/run.py, do not edit by hand) -->"
README_END = "<!-- bench:end -->"


def update_readme(tables: str, path: Path) -> bool:
    """Replace the text between the bench markers of ``path`` with ``tables``; ``False`` if there are no markers."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    new = text[:start] + README_START + "\n" + tables.rstrip("\n") + "\n" + text[end:]
    path.write_text(new, encoding="utf-8")
    return True


def results_tables(report: dict) -> str:
    """The measured tables (machine line, sizes, 2017 pipeline, targets) as Markdown."""
    m = report["machine"]
    lines = [
        f"Generated by `make bench` (`bench/run.py`) on {m['date']}: {m['cores']} cores ({m['cpu']}), "
        f"{m['memory_gb']} GB, Python {m['python']}; load average at start {m['load_average_start'][0]:.1f} "
        "(shared machine: wall times are noisy, CPU times are steadier). Medians of the repetitions; "
        "every run is in `results/bench/bench.json`.",
        "",
        "| respondents | ingest .sav (s) | ingest parquet (s) | clean (s) | tabulate (s) | bincount floor (s) "
        "| tabulate / floor | peak RSS parquet path (MiB) | peak RSS .sav read (MiB) "
        "| pyreadstat multiprocess read (s) | design pass (s) | peak RSS with design pass (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["sizes"]:
        sav = "—" if s.get("ingest_sav_s") is None else f"{s['ingest_sav_s']:.2f}"
        rss_sav = "—" if s.get("peak_rss_sav_mb") is None else f"{s['peak_rss_sav_mb']:.0f}"
        mp = "—" if s.get("pyreadstat_multiprocessing_s") is None else f"{s['pyreadstat_multiprocessing_s']:.2f}"
        des = "—" if s.get("design_s") is None else f"{s['design_s']:.2f} (cpu {s['design_cpu_s']:.2f})"
        rss_des = "—" if s.get("peak_rss_with_design_mb") is None else f"{s['peak_rss_with_design_mb']:.0f}"
        lines.append(
            f"| {s['n']:,} | {sav} | {s['ingest_parquet_s']:.2f} | {s['clean_s']:.2f} "
            f"(cpu {s['clean_cpu_s']:.2f}) | {s['tabulate_s']:.2f} (cpu {s['tabulate_cpu_s']:.2f}) "
            f"| {s['bincount_s']:.3f} | {s['tabulate_s'] / s['bincount_s']:.1f} | {s['peak_rss_mb']:.0f} | {rss_sav} "
            f"| {mp} | {des} | {rss_des} |"
            .replace(",", " ")
        )
    lines += ["", "Peers: the same crosstabs (every question column × « Ensemble » and each dimension, "
              f"{report['sizes'][0]['detail']['parquet_path']['peers']['pairs'] if report['sizes'] else 0} "
              "at the respondent and tool levels) counted by the libraries a user would pick instead, on the same "
              "cleaned frames, in the same process after the project's tabulation. Ratio = peer time / project "
              "tabulation time (below 1: the peer is faster). The peers count only; the project's tabulation also "
              "computes shares, intervals, tests and the disclosure control. Counts checked against `np.bincount`.",
              "", "| respondents | peer | version | threads | time (s) | ratio to the project's tabulation "
              "| counts agree |", "|---:|---|---|---:|---:|---:|:---:|"]
    for s in report["sizes"]:
        for name, p in s.get("peer_ratios", {}).items():
            if p["available"]:
                lines.append(f"| {s['n']:,} | {name} | {p['version']} | {p['threads']} | {p['wall_s']:.3f} "
                             f"| {p['ratio_to_tabulate']:.2f} | {'yes' if p['counts_agree'] else '**no**'} |"
                             .replace(",", " "))
            else:
                lines.append(f"| {s['n']:,} | {name} | — | — | — | missing: {p['reason']} | — |".replace(",", " ", 1))
    if report.get("startup_floor_s") is not None:
        lines += ["", "| 2017 pipeline | seconds |", "|---|---:|",
                  f"| cold `snakemake --cores 2`, raw → HTML + PDF | {report['full_run_2017_s']:.1f} |",
                  f"| start-up floor (import + render the PDF once) | {report['startup_floor_s']:.1f} |",
                  f"| no-op `snakemake --cores 2` | {report['noop_s']:.2f} |"]
        if report.get("pipeline_from"):
            lines += ["", f"The 2017 pipeline rows come from the `make bench` run of {report['pipeline_from']['date']}"
                          " (same code), taken with `--pipeline-from`."]
    lines += ["", "| target | limit | value | met |", "|---|---:|---:|:---:|"]
    for t in report["targets"].values():
        met = {True: "yes", False: "**no**", None: "—"}[t["met"]]
        value = "—" if t["value"] is None else f"{t['value']:g}"
        lines.append(f"| {t['what']} | {t['limit']:g} | {value} | {met} |")
    return "\n".join(lines) + "\n"


def write_results_md(report: dict, path: Path) -> None:
    path.write_text("# Benchmark results\n\n" + results_tables(report), encoding="utf-8")


def write_outputs_md(report: dict, args) -> None:
    """``RESULTS.md`` and, where it has the markers, the README's table."""
    write_results_md(report, Path(args.results_md))
    if args.readme and not update_readme(results_tables(report), Path(args.readme)):
        print(f"note: {args.readme} has no bench markers ({README_START!r}): table not copied there")


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_worker":
        kind = argv[1]
        if kind == "parquet":
            res = worker_parquet(int(argv[2]), Path(argv[3]), int(argv[4]))
        elif kind == "sav":
            res = worker_sav(int(argv[2]), Path(argv[3]), int(argv[4]), argv[5] == "1")
        elif kind == "generate":
            res = worker_generate(int(argv[2]), Path(argv[3]), int(argv[4]))
        else:
            res = worker_startup(Path(argv[2]), Path(argv[3]))
        print(json.dumps(res, default=str))
        return 0

    parser = argparse.ArgumentParser(description="Benchmarks of the barometre pipeline (make bench).")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated numbers of rows")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each phase (one fewer at 1 000 000)")
    parser.add_argument("--pipeline-repeats", type=int, default=2, help="repetitions of the snakemake floors")
    parser.add_argument("--seed", type=int, default=None, help="seed of the synthetic editions")
    parser.add_argument("--data", default=str(ROOT / "results" / "bench" / "data"), help="cache of generated editions")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench" / "bench.json"))
    parser.add_argument("--results-md", default=str(BENCH / "RESULTS.md"))
    parser.add_argument("--sav-variants-max", type=int, default=100_000,
                        help="also time pyreadstat's multiprocessing/chunked readers up to this many rows")
    parser.add_argument("--skip-pipeline", action="store_true", help="skip the snakemake / start-up floors")
    parser.add_argument("--pipeline-from", default=None,
                        help="take the snakemake / start-up floors from this earlier bench.json instead of "
                             "measuring them (recorded as such in the JSON and under the table)")
    parser.add_argument("--readme", default=str(ROOT / "README.md"),
                        help="file whose bench markers receive the table ('' to leave it alone)")
    parser.add_argument("--from-json", default=None,
                        help="measure nothing: rewrite RESULTS.md and the README table from this bench.json")
    args = parser.parse_args(argv)
    if args.from_json:
        write_outputs_md(json.loads(Path(args.from_json).read_text(encoding="utf-8")), args)
        return 0

    # The parent imports neither numpy nor pandas: its memory would count in every worker's ru_maxrss.
    seed = _default_seed() if args.seed is None else args.seed
    sizes = [int(s) for s in args.sizes.split(",") if s]
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", flush=True)

    report: dict = {"machine": machine(), "seed": seed, "sizes": [], "generation": {}}
    for n in sizes:
        info = ensure_data(n, data, seed)
        report["generation"][str(n)] = info
        how = f"generated in {info['generate_s']:.1f} s" if info["generated"] else "cached"
        log(f"data n={n}: {how} "
            f"(.sav {info['sav_mb']} MB, parquet {info['parquet_mb']} MB)")
    for n in sizes:
        reps = _repeats_for(n, args.repeats)
        pq, _ = _run_worker(["parquet", str(n), str(data), str(reps)], timeout=1800)
        log(f"n={n} parquet path: read {pq['ingest_parquet']['wall_s']:.2f} s, clean {pq['clean']['wall_s']:.2f} s, "
            f"tabulate {pq['tabulate']['wall_s']:.2f} s, design pass {pq['design']['wall_s']:.2f} s, "
            f"floor {pq['bincount']['wall_s']:.3f} s, "
            f"peak {pq['peak_rss_mb']:.0f} MiB")
        sav, _ = _run_worker(["sav", str(n), str(data), str(1 if n >= 1_000_000 else reps),
                              "1" if n <= args.sav_variants_max else "0"], timeout=1800)
        log(f"n={n} sav read {sav['ingest_sav']['wall_s']:.2f} s "
            f"(pyreadstat multiprocessing {sav['pyreadstat_multiprocessing']['wall_s']:.2f} s), "
            f"peak {sav['peak_rss_sav_mb']:.0f} MiB")
        for name, p in pq["peers"].items():
            if isinstance(p, dict):
                log(f"n={n} peer {name}: " + (f"{p['time']['wall_s']:.3f} s, counts agree: {p['agree']}"
                                              if p["available"] else f"MISSING: {p['reason']}"))
        entry = {
            "n": n,
            "ingest_sav_s": round(sav["ingest_sav"]["wall_s"], 4),
            "ingest_parquet_s": round(pq["ingest_parquet"]["wall_s"], 4),
            "clean_s": round(pq["clean"]["wall_s"], 4),
            "tabulate_s": round(pq["tabulate"]["wall_s"], 4),
            "design_s": round(pq["design"]["wall_s"], 4),
            "design_cpu_s": round(pq["design"]["cpu_s"], 4),
            "peak_rss_with_design_mb": pq["peak_rss_with_design_mb"],
            "bincount_s": round(pq["bincount"]["wall_s"], 5),
            "peak_rss_mb": pq["peak_rss_mb"],
            "peak_rss_sav_mb": sav["peak_rss_sav_mb"],
            "ingest_sav_cpu_s": round(sav["ingest_sav"]["cpu_s"], 4),
            "ingest_parquet_cpu_s": round(pq["ingest_parquet"]["cpu_s"], 4),
            "clean_cpu_s": round(pq["clean"]["cpu_s"], 4),
            "tabulate_cpu_s": round(pq["tabulate"]["cpu_s"], 4),
            "pyreadstat_multiprocessing_s": round(sav["pyreadstat_multiprocessing"]["wall_s"], 4),
            "peer_ratios": peer_ratios(pq["peers"], pq["tabulate"]["wall_s"]),
            "detail": {"parquet_path": pq, "sav_path": sav},
        }
        report["sizes"].append(entry)
    floors = None
    if args.pipeline_from:
        earlier = json.loads(Path(args.pipeline_from).read_text(encoding="utf-8"))
        floors = earlier["pipeline"]
        report.update(full_run_2017_s=floors["full_run_2017_s"], noop_s=floors["noop_s"],
                      startup_floor_s=floors["startup_floor_s"], pipeline=floors,
                      pipeline_from={"file": args.pipeline_from, "date": earlier["machine"]["date"]})
        log(f"pipeline floors taken from {args.pipeline_from} ({earlier['machine']['date']})")
    elif not args.skip_pipeline:
        log("pipeline floors (fresh copies of the project)")
        floors = pipeline_floors(args.pipeline_repeats, log)
        report.update(full_run_2017_s=floors["full_run_2017_s"], noop_s=floors["noop_s"],
                      startup_floor_s=floors["startup_floor_s"], pipeline=floors)
    else:
        report.update(full_run_2017_s=None, noop_s=None, startup_floor_s=None)
    report["targets"] = evaluate(report["sizes"], floors)
    report["machine"]["load_average_end"] = os.getloadavg()
    report["total_s"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    write_outputs_md(report, args)
    log(f"wrote {out} and {args.results_md}")
    for key, t in report["targets"].items():
        status = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        log(f"  {key}: {t['value']} (limit {t['limit']}) {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
