"""Peak memory and wall time of each rule's job, for the runtime and mem_mb of profiles/slurm.

Usage (from a copy of the project with no outputs; one job at a time, so that jobs do not
compete for the cores)::

    python tests/cluster/measure_rules.py -- .venv/bin/snakemake --cores 1

Runs the command and samples, every 0.1 s, the resident set size of every process below it.
A rule's job is the Python process running Snakemake's copy of the rule script
(``.snakemake/scripts/tmpXXXX.<script>.py``): its peak is the largest sum of RSS over that
process and its children, its wall time from first to last sample. Prints one line per
script: jobs seen, largest peak (MiB), longest wall time (s). psutil is used because
Snakemake starts the scripts itself (no `/usr/bin/time` can be slipped in front of them
without editing the rules); a peak shorter than 0.1 s can be missed.
"""
from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections import defaultdict

import psutil

SCRIPT = re.compile(r"\.snakemake/scripts/tmp[^/.]*\.(\w+)\.py$")


def _script_of(proc: psutil.Process) -> str | None:
    try:
        for arg in proc.cmdline():
            m = SCRIPT.search(arg)
            if m:
                return m.group(1)
    except psutil.Error:
        return None
    return None


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def main(argv: list[str]) -> int:
    cmd = argv[argv.index("--") + 1 :] if "--" in argv else argv
    top = subprocess.Popen(cmd)
    root = psutil.Process(top.pid)
    jobs: dict[int, dict] = {}
    while top.poll() is None:
        now = time.monotonic()
        try:
            procs = root.children(recursive=True)
        except psutil.Error:
            procs = []
        for p in procs:
            name = jobs[p.pid]["script"] if p.pid in jobs else _script_of(p)
            if name is None:
                continue
            job = jobs.setdefault(p.pid, {"script": name, "start": now, "peak": 0})
            job["end"] = now
            with contextlib.suppress(psutil.Error):
                job["peak"] = max(job["peak"], _tree_rss(p))
        time.sleep(0.1)
    by_script: dict[str, list[dict]] = defaultdict(list)
    for job in jobs.values():
        by_script[job["script"]].append(job)
    print(f"{'script':<28} {'jobs':>4} {'peak MiB':>9} {'wall s':>7}")
    for name, runs in sorted(by_script.items()):
        peak = max(j["peak"] for j in runs) / 2**20
        wall = max(j["end"] - j["start"] for j in runs)
        print(f"{name:<28} {len(runs):>4} {peak:>9.0f} {wall:>7.1f}")
    return top.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
