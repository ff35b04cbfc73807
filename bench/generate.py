"""Vectorised, seeded generator of a synthetic edition at any size (benchmarks only).

The raw survey export has exactly the columns of the 2017 one — same names,
same kinds (codes, check boxes, ranks, numbers, free text, « Autre » text),
same SPSS variable labels, value labels, user-missing code 99 and measurement
levels — because the column layout and the SPSS metadata are taken from
``synth/generate_2017.py`` (:func:`survey_layout`, :func:`sav_metadata`).
Only the rows differ: they are drawn with numpy, column by column, without a
Python loop over respondents, from one seed.

What the rows hold (rates are per row and fixed, so every size has the same shape):

* codes drawn from per-question probabilities (a Dirichlet draw per question),
  code 99 « ne sait pas » at 4 % where the codebook declares it;
* filters honoured (« fonction » by role, low-usage reasons only when usage is
  « faible », tool blocks only up to ``NB_OUTILS``), with 0.1 % of answers given
  outside their filter (the cleaning phase logs and blanks them);
* tool blocks: ``NB_OUTILS`` = 0/1/2/3 for 55/30/10/5 % of the rows;
* the 7-item ranking fully ranked by 88 %, top 3 only by 6 %, skipped by 6 %;
* check-box questions: 4 % skipped, 3 % « ne se prononce pas » alone, 0.1 %
  with the exclusive option ticked together with others;
* free text: tool names, « Autre » answers (some recoded by the codebook's
  patterns), comments of which 1 % quote the respondent's own name, e-mail
  address or phone number (the cleaning phase masks them);
* dirty rows for the exclusion rules: 0.05 % test submissions, 3 % unfinished
  (no ``submitdate``), 1 % duplicate submissions of an earlier respondent
  (same e-mail and collectivity, earlier date).

Usage (from the project root)::

    python bench/generate.py --n 100000 --out /tmp/bench   # writes .sav and .parquet
"""
from __future__ import annotations

import argparse
import importlib.util
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CODEBOOK = ROOT / "codebooks" / "2017.yaml"
SEED = 20240601
NSP_CODE = 99

#: Rates of the module docstring.
RATES: dict[str, Any] = {
    "nsp": 0.04,
    "out_of_filter": 0.001,
    "tools": (0.55, 0.30, 0.10, 0.05),
    "rank_full": 0.88,
    "rank_top3": 0.06,
    "multiple_skipped": 0.04,
    "multiple_nsp_only": 0.03,
    "multiple_conflict": 0.001,
    "comment": 0.20,
    "comment_identifying": 0.01,
    "other_typed": 0.5,
    "test": 0.0005,
    "incomplete": 0.03,
    "duplicate": 0.01,
    "respondents_per_collectivity": 2.5,
    "numeric_missing": 0.05,
}

FIRST_NAMES = np.array(["Camille", "Dominique", "Claude", "Alex", "Sacha", "Charlie", "Morgan", "Lou",
                        "Maxime", "Stéphane", "Andréa", "Noa", "Eden", "Jordan", "Gaël", "Yannick",
                        "Hélène", "Jean-Marc", "Anaïs", "Théo", "Inès", "Louis", "Chloé", "Hugo"])
LAST_NAMES = np.array([f"{stem}{suffix}" for stem in ("Martin", "Bernard", "Dubois", "Thomas", "Robert",
                                                      "Richard", "Petit", "Durand", "Leroy", "Moreau",
                                                      "Simon", "Laurent", "Lefèvre", "Michel", "Garcia",
                                                      "David", "Bertrand", "Roux", "Vincent", "Fournier")
                       for suffix in ("", "-Bénard", "-Leclerc", "on", "ier", "eau", "-Faure", "-Girard")])
TOOL_NAMES = np.array(["Plateforme de concertation", "Sondage en ligne", "Budget participatif en ligne",
                       "Carte participative", "Plateforme interactive", "Forum citoyen", "Portail de données",
                       "Je participe !", "Parlons-en", "Ma ville, mon avis", "Idées citoyennes", "Fabrique citoyenne"])
OTHER_TYPED = {
    # raw « Autre » column → typed answers (the first ones match the codebook's recode patterns)
    "COLL_TYPE_other": ["Conseil départemental", "Mairie", "Communauté de communes", "Syndicat mixte",
                        "Parc naturel régional", "Pays"],
}
OTHER_GENERIC = np.array(["Vie associative", "Politique de la ville", "Culture", "Jeunesse",
                          "Développement durable", "Application de signalement", "Pétition en ligne"])
COLLECTIVITY_STEMS = {1: "Commune fictive", 2: "Intercommunalité fictive", 3: "Métropole fictive",
                      4: "Département fictif", 5: "Région fictive", 6: "Service de l'État fictif",
                      7: "Structure fictive"}
COLLECTIVITY_TYPE_P = np.array([0.62, 0.16, 0.07, 0.07, 0.03, 0.01, 0.04])
FIELDWORK = (np.datetime64("2017-06-15T08:00:00"), np.datetime64("2017-10-06T17:00:00"))


def load_synth_module():
    """``synth/generate_2017.py`` as a module (column layout and SPSS metadata)."""
    spec = importlib.util.spec_from_file_location("generate_2017", ROOT / "synth" / "generate_2017.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {ROOT / 'synth' / 'generate_2017.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_2017", module)
    spec.loader.exec_module(module)
    return module


def _rng(seed: int, component: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(component.encode("utf-8"))])


def _strings(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype="str")


def _join(*parts) -> pd.Series:
    """Element-wise concatenation of string Series / scalars (vectorised by pyarrow)."""
    out = None
    for p in parts:
        out = p if out is None else out + p
    return out


def _codes(rng: np.random.Generator, question: dict, n: int, nsp: bool) -> np.ndarray:
    codes = np.array([float(c["code"]) for c in question["codes"]])
    p = rng.dirichlet(np.full(len(codes), 2.0))
    out = codes[rng.choice(len(codes), size=n, p=p)]
    if nsp:
        out[rng.random(n) < RATES["nsp"]] = NSP_CODE
    return out


class _Builder:
    """Draws the columns of one question for one block, given who answers."""

    def __init__(self, synth, codebook: dict, n: int, seed: int) -> None:
        self.synth = synth
        self.questions = synth.questions_by_name(codebook)
        self.layout = synth.survey_layout(codebook)
        self.n = n
        self.seed = seed
        self.cols: dict[str, Any] = {}  # numpy arrays or pandas Series, by raw column
        self.answers: dict[tuple[str, int | None], np.ndarray] = {}

    def rng(self, name: str) -> np.random.Generator:
        return _rng(self.seed, name)

    def question(self, name: str, block: int | None, asked: np.ndarray, fmt) -> None:
        q = self.questions[name]
        n = self.n
        rng = self.rng(f"{name}/{block}")
        nsp_declared = "nsp" in q
        # answers given outside the filter (dirt), only where a filter applies
        shown = asked | ((rng.random(n) < RATES["out_of_filter"]) & ~asked) if q.get("filter") else asked
        kind = q["type"]
        if kind in ("single", "ordinal", "band"):
            col = fmt(q["raw"])
            values = _codes(rng, q, n, nsp_declared and name != "tools_described")
            values[~shown] = np.nan
            self.cols[col] = values
            self.answers[(name, block)] = values
            if q.get("other_text"):
                other = np.full(n, "", dtype=object)
                autre = next((float(c["code"]) for c in q["codes"] if c["key"] == "autre"), None)
                if autre is not None:
                    typed = (values == autre) & (rng.random(n) < RATES["other_typed"])
                    pool = np.array(OTHER_TYPED.get(q["other_text"], OTHER_GENERIC))
                    other[typed] = pool[rng.integers(0, len(pool), int(typed.sum()))]
                self.cols[fmt(q["other_text"])] = _strings(other)
        elif kind == "multiple":
            opts = q["options"]
            p = rng.uniform(0.15, 0.85, size=len(opts))
            m = (rng.random((n, len(opts))) < p).astype(float)
            excl = [k for k, o in enumerate(opts) if o.get("exclusive")]
            if excl:
                m[:, excl] = 0.0
                nsp_only = rng.random(n) < RATES["multiple_nsp_only"]
                m[nsp_only] = 0.0
                m[nsp_only, excl[0]] = 1.0
                conflict = rng.random(n) < RATES["multiple_conflict"]
                m[conflict, excl[0]] = 1.0
            skipped = (rng.random(n) < RATES["multiple_skipped"]) | ~shown
            m[skipped] = np.nan
            for k, o in enumerate(opts):
                self.cols[fmt(o["raw"])] = m[:, k]
            if q.get("other_text"):
                other = np.full(n, "", dtype=object)
                last = next((k for k, o in enumerate(opts) if o["key"] == "autre"), None)
                if last is not None:
                    typed = (m[:, last] == 1) & (rng.random(n) < RATES["other_typed"])
                    other[typed] = OTHER_GENERIC[rng.integers(0, len(OTHER_GENERIC), int(typed.sum()))]
                self.cols[fmt(q["other_text"])] = _strings(other)
        elif kind == "ranking":
            k = q["ranks"]
            codes = np.array([float(c["code"]) for c in q["codes"]])
            # a weighted random order per row: argsort of Gumbel-perturbed log-weights
            logw = np.log(rng.dirichlet(np.full(len(codes), 3.0)))
            order = np.argsort(-(logw + rng.gumbel(size=(n, len(codes)))), axis=1)[:, :k]
            ranks = codes[order]
            u = rng.random(n)
            ranks[u >= RATES["rank_full"], 3:] = np.nan
            ranks[(u >= RATES["rank_full"] + RATES["rank_top3"]) | ~shown] = np.nan
            for r in range(k):
                self.cols[fmt(q["raw"]).replace("{rank}", str(r + 1))] = ranks[:, r]
        elif kind == "numeric":
            lo, hi = q["range"]
            values = rng.integers(int(lo), int(hi) + 1, size=n).astype(float)
            values[(rng.random(n) < RATES["numeric_missing"]) | ~shown] = np.nan
            self.cols[fmt(q["raw"])] = values
        elif kind == "text":
            self.cols[fmt(q["raw"])] = self.text(name, block, shown, rng)
        else:  # pragma: no cover
            raise ValueError(kind)

    def text(self, name: str, block: int | None, shown: np.ndarray, rng: np.random.Generator) -> pd.Series:
        n = self.n
        if name == "tool_name":
            values = np.where(shown, TOOL_NAMES[rng.integers(0, len(TOOL_NAMES), n)], "")
            return _strings(values)
        values = np.full(n, "", dtype=object)
        said = shown & (rng.random(n) < RATES["comment"])
        comments = np.array(self.synth.TOOL_COMMENTS_PLAIN, dtype=object)  # the 2017 generator's plain comments
        values[said] = comments[rng.integers(0, len(comments), int(said.sum()))]
        out = _strings(values)
        ident = said & (rng.random(n) < RATES["comment_identifying"])
        if ident.any():
            which = rng.integers(0, 3, n)
            extra = np.select(
                [which == 0, which == 1],
                [(" Contact : " + self.cols["IDENT_PRENOM"] + " " + self.cols["IDENT_NOM"]).to_numpy(object),
                 (" Écrire à " + self.cols["IDENT_EMAIL"]).to_numpy(object)],
                (" Tél. " + self.cols["IDENT_TEL"]).to_numpy(object),
            )
            out = out.where(~ident, out + pd.Series(extra, dtype="str"))
        return out


def survey_frame(n: int, seed: int = SEED) -> tuple[pd.DataFrame, dict]:
    """The raw survey table of ``n`` submissions and its SPSS metadata.

    The frame has the dtypes pyreadstat gives back when reading the ``.sav``
    (float64 numbers, ``str`` text, ``datetime64[us]`` dates), so the parquet copy
    and the ``.sav`` hold the same data.
    """
    synth = load_synth_module()
    codebook = synth.load_codebook(CODEBOOK)
    b = _Builder(synth, codebook, n, seed)
    rng = b.rng("respondents")

    # --- respondents, collectivities, identities
    n_coll = max(1, int(n / RATES["respondents_per_collectivity"]))
    coll_type = (rng.choice(len(COLLECTIVITY_TYPE_P), size=n_coll, p=COLLECTIVITY_TYPE_P) + 1).astype(float)
    coll_of = rng.integers(0, n_coll, n)
    stems = np.array([COLLECTIVITY_STEMS[k] for k in range(1, 8)])
    coll_names = _join(_strings(stems[coll_type.astype(int) - 1]), " ",
                       pd.Series(np.arange(1, n_coll + 1)).astype("str").str.zfill(6))
    first = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), n)]
    last = LAST_NAMES[rng.integers(0, len(LAST_NAMES), n)]
    serial = pd.Series(np.arange(1, n + 1)).astype("str")
    b.cols["IDENT_NOM"] = _strings(last)
    b.cols["IDENT_PRENOM"] = _strings(first)
    b.cols["IDENT_EMAIL"] = _join("repondant.", serial, "@collectivite-", pd.Series(coll_of).astype("str"),
                                  ".example.org")
    pairs = [pd.Series(rng.integers(0, 100, n)).astype("str").str.zfill(2) for _ in range(4)]
    b.cols["IDENT_TEL"] = _join("0", pd.Series(rng.integers(1, 8, n)).astype("str"),
                               " ", pairs[0], " ", pairs[1], " ", pairs[2], " ", pairs[3])
    b.cols["COLL_NOM"] = coll_names.iloc[coll_of].reset_index(drop=True)
    octets = [pd.Series(rng.integers(0, 256, n)).astype("str") for _ in range(3)]
    b.cols["ipaddr"] = _join("10.", octets[0], ".", octets[1], ".", octets[2])
    b.cols["startlanguage"] = _strings(np.full(n, "fr"))

    span = (FIELDWORK[1] - FIELDWORK[0]).astype("timedelta64[s]").astype(np.int64)
    start = FIELDWORK[0] + rng.integers(0, span - 3600, n).astype("timedelta64[s]")
    submit = start + rng.integers(360, 3000, n).astype("timedelta64[s]")
    lastpage = np.full(n, 4.0)
    incomplete = rng.random(n) < RATES["incomplete"]
    lastpage[incomplete] = rng.integers(1, 4, int(incomplete.sum()))
    submit = submit.astype("datetime64[us]")
    submit[incomplete] = np.datetime64("NaT")

    # --- questions, in questionnaire order (a filter question comes before the questions it filters)
    everyone = np.ones(n, dtype=bool)
    n_blocks = int(codebook["sources"]["survey"]["tool_blocks"]["count"])
    resp_qs = [name for name, q in b.questions.items() if q["level"] == "respondent"]
    tool_qs = [name for name, q in b.questions.items() if q["level"] == "tool"]

    def asked(name: str, block: int | None) -> np.ndarray:
        f = b.questions[name].get("filter")
        if not f:
            return everyone
        target = next(q for q in b.questions.values() if q["id"] == f["question"])
        codes = [float(c["code"]) for c in target["codes"] if c["key"] in f["keys"]]
        return np.isin(b.answers[(target["harmonised"], block)], codes)

    for name in resp_qs:
        if name == "collectivity_type":
            values = coll_type[coll_of].copy()
            values[rng.random(n) < 0.01] = NSP_CODE
            b.cols["COLL_TYPE"] = values
            b.answers[(name, None)] = values
            other = np.full(n, "", dtype=object)
            typed = values == 7
            pool = np.array(OTHER_TYPED["COLL_TYPE_other"])
            other[typed] = pool[rng.integers(0, len(pool), int(typed.sum()))]
            b.cols["COLL_TYPE_other"] = _strings(other)
            continue
        if name == "tools_described":
            values = rng.choice(4, size=n, p=RATES["tools"]).astype(float)
            b.cols["NB_OUTILS"] = values
            b.answers[(name, None)] = values
            continue
        b.question(name, None, asked(name, None), lambda p: p)
    n_tools = b.answers[("tools_described", None)]
    for block in range(1, n_blocks + 1):
        in_block = n_tools >= block
        for name in tool_qs:
            f = b.questions[name].get("filter")
            who = in_block & (asked(name, block) if f else everyone)
            b.question(name, block, who, lambda p, block=block: p.replace("{i}", str(block)))
    # block columns stay empty beyond NB_OUTILS (check boxes included)

    # --- dirty rows: tests and duplicate submissions of earlier respondents
    test = rng.random(n) < RATES["test"]
    coll_nom = b.cols["COLL_NOM"].where(~test, "TEST")
    b.cols["COLL_NOM"] = coll_nom
    dup = np.flatnonzero((rng.random(n) < RATES["duplicate"]) & ~test)
    dup = dup[dup > 0]
    twin = (dup * rng.random(dup.size)).astype(np.int64)  # an earlier row
    for c in ("IDENT_EMAIL", "COLL_NOM", "IDENT_NOM", "IDENT_PRENOM", "IDENT_TEL"):
        s = b.cols[c].to_numpy(dtype=object)
        s[dup] = s[twin]
        b.cols[c] = _strings(s)
    # the duplicate was sent before its twin: « keep last » keeps the twin
    submit[dup] = np.where(np.isnat(submit[twin]), submit[dup], submit[twin] - np.timedelta64(3600, "s"))

    meta_cols = {
        "id": np.arange(1, n + 1, dtype=float),
        "submitdate": submit,
        "lastpage": lastpage,
        "startdate": start.astype("datetime64[us]"),
    }
    b.cols.update(meta_cols)
    names = [c.name for c in b.layout]
    missing = [c for c in names if c not in b.cols]
    if missing:
        raise RuntimeError(f"generator left columns empty: {missing}")
    frame = pd.DataFrame({c: b.cols[c] for c in names})
    for c in b.layout:
        if c.kind in ("string", "text", "other"):
            frame[c.name] = frame[c.name].astype("str")
        elif c.kind == "datetime":
            frame[c.name] = frame[c.name].astype("datetime64[us]")
        else:
            frame[c.name] = frame[c.name].astype("float64")
    metadata = synth.sav_metadata(b.layout, b.questions)
    metadata["file_label"] = f"Barometre - edition synthetique de {n} lignes (bench)"
    metadata["note"] = [f"Donnees SYNTHETIQUES (bench/generate.py, graine {seed}, n = {n})."]
    return frame, metadata


SAV_SYSMIS = np.frombuffer(b"\xff\xff\xff\xff\xff\xff\xef\xff", dtype="<f8")[0]  # -DBL_MAX
SAV_EPOCH = np.datetime64("1582-10-14T00:00:00", "us")
SAV_CHUNK = 100_000


def _utf8_bytes(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes and offsets of a string column (vectorised through pyarrow)."""
    import pyarrow as pa

    arr = pa.array(series.to_numpy(dtype=object), type=pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] is not None else np.zeros(0, np.uint8)
    return data, offsets


def write_sav_fast(frame: pd.DataFrame, metadata: dict, path: Path, synth) -> None:
    """Write an uncompressed SPSS file: pyreadstat writes the dictionary, numpy the records.

    pyreadstat (ReadStat) writes a one-row template holding every variable, label,
    value label and user-missing declaration, each string as wide as the widest
    value of its column; the template's single record is then replaced by the
    ``n`` records of ``frame``, built with numpy (an uncompressed ``.sav``
    record is a fixed sequence of 8-byte slots: a float64 per number or date,
    ``ceil(width / 8)`` space-padded slots per string), and the case count of the
    header is set to ``n``. Writing 1 000 000 rows this way takes seconds instead
    of minutes; :func:`check_sav` reads a file back with pyreadstat to prove it.
    """
    import pyreadstat

    n = len(frame)
    texts = {c: _utf8_bytes(frame[c]) for c in frame.columns if frame[c].dtype == "str"}
    widths = {c: max(1, int(np.diff(off).max(initial=0))) for c, (_, off) in texts.items()}
    if max(widths.values(), default=0) > 255:
        raise ValueError("strings over 255 bytes (SPSS very long strings) are not supported here")
    template = frame.iloc[:1].copy()
    for c, w in widths.items():
        template[c] = pd.Series(["x" * w], dtype="str")
    tmp = path.with_name(path.name + ".template")
    pyreadstat.write_sav(template, str(tmp), **metadata)
    head = bytearray(synth.pin_sav_header(tmp.read_bytes()))
    tmp.unlink()
    layout, case_size, compression = struct.unpack_from("<iii", head, 64)
    record = case_size * 8
    start = len(head) - record
    if head[:4] != b"$FL2" or layout != 2 or compression != 0 or struct.unpack_from("<ii", head, start - 8) != (999, 0):
        raise RuntimeError("unexpected template: not an uncompressed little-endian .sav with one record")
    struct.pack_into("<i", head, 80, n)  # ncases
    slots = {}
    pos = 0
    for c in frame.columns:
        size = 8 if c not in widths else -(-widths[c] // 8) * 8
        slots[c] = (pos, size)
        pos += size
    if pos != record:
        raise RuntimeError(f"record layout {pos} bytes, template says {record}")
    with open(path, "wb") as fh:
        fh.write(bytes(head[:start]))
        for lo in range(0, n, SAV_CHUNK):
            hi = min(n, lo + SAV_CHUNK)
            body = np.empty((hi - lo, record), dtype=np.uint8)
            for c in frame.columns:
                at, size = slots[c]
                if c in texts:
                    data, off = texts[c]
                    o = off[lo:hi + 1]
                    lengths = np.diff(o)
                    cell = np.full((hi - lo, size), 0x20, dtype=np.uint8)
                    rows = np.repeat(np.arange(hi - lo), lengths)
                    cols = np.arange(o[-1] - o[0]) - np.repeat(o[:-1] - o[0], lengths)
                    cell[rows, cols] = data[o[0]:o[-1]]
                    body[:, at:at + size] = cell
                    continue
                v = frame[c].to_numpy()[lo:hi]
                if v.dtype.kind == "M":
                    secs = (v.astype("datetime64[us]") - SAV_EPOCH).astype(np.int64) / 1e6
                    v = np.where(np.isnat(v), np.nan, secs)
                v = np.where(np.isnan(v), SAV_SYSMIS, v.astype("<f8"))
                body[:, at:at + 8] = v.astype("<f8").view(np.uint8).reshape(-1, 8)
            fh.write(body.tobytes())


def check_sav(path: Path, frame: pd.DataFrame) -> None:
    """Read a written file back with pyreadstat and compare it with the frame it came from."""
    import pyreadstat

    back, _ = pyreadstat.read_sav(str(path), user_missing=True)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


def write_edition(n: int, out_dir: str | Path, seed: int = SEED, check: bool = False) -> dict[str, Path]:
    """Write ``survey_<n>.sav`` and ``survey_<n>.parquet`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame, metadata = survey_frame(n, seed)
    sav = out / f"survey_{n}.sav"
    parquet = out / f"survey_{n}.parquet"
    tmp = sav.with_name(sav.name + ".tmp")
    write_sav_fast(frame, metadata, tmp, load_synth_module())
    if check:
        check_sav(tmp, frame)
    tmp.replace(sav)
    tmp = parquet.with_name(parquet.name + ".tmp")
    frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
    tmp.replace(parquet)
    return {"sav": sav, "parquet": parquet}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true", help="read the .sav back with pyreadstat and compare")
    args = parser.parse_args(argv)
    for kind, path in write_edition(args.n, args.out, args.seed, args.check).items():
        print(f"{kind}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
