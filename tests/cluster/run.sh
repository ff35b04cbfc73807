#!/usr/bin/env bash
# make test-cluster: the pipeline through profiles/slurm on a real SLURM cluster, on a fresh clone,
# with no edit to any tracked file, compared byte for byte with a local `make report`.
#
#   1. SLURM: the cluster this machine already talks to (`sinfo` answers), else a private
#      single-node cluster on loopback (tests/cluster/slurm_private.sh) — slurm-wlm and munge
#      are apt-get installed first if missing and root.
#   2. Two `git clone`s of the tree (committed state only; .venv is linked in, git-ignored).
#   3. Clone « local »: `make report`. Clone « cluster »: `.venv/bin/snakemake --profile
#      profiles/slurm` under a watchdog, then `git status` must be clean.
#   4. Every file of results/ and data/processed/ compared (tests/cluster/compare_outputs.py).
#   5. A site profile naming a partition that does not exist stops the run before any sbatch.
#
# The watchdog fails the test instead of hanging: when Snakemake prints nothing for
# CLUSTER_STALL seconds (the SLURM executor plugin, unable to read job status, waits for ever
# without a word), or when the run exceeds CLUSTER_TIMEOUT seconds.
#
# Environment:
#   VENV                    the environment to use (default: .venv of this tree)
#   CLUSTER                 auto | private | present  (default auto: present if sinfo answers)
#   CLUSTER_TIMEOUT         seconds for the whole cluster run (default 2400)
#   CLUSTER_STALL           seconds without any output from Snakemake (default 600: the longest
#                           job, the 2017 tabulation with its integer programs, takes 2 to 5 min)
#   CLUSTER_SNAKEMAKE_ARGS  extra arguments of the cluster run (default none)
#   CLUSTER_KEEP            1 to keep the work directory (default: removed)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$(cd "$ROOT" && realpath -m "${VENV:-.venv}")"
CLUSTER="${CLUSTER:-auto}"
CLUSTER_TIMEOUT="${CLUSTER_TIMEOUT:-2400}"
CLUSTER_STALL="${CLUSTER_STALL:-600}"
CLUSTER_SNAKEMAKE_ARGS="${CLUSTER_SNAKEMAKE_ARGS:-}"
# shellcheck source=tests/cluster/slurm_private.sh
. "$HERE/slurm_private.sh"

# The runs choose SOURCE_DATE_EPOCH and the rest as a user's would (make report, plain snakemake).
unset SOURCE_DATE_EPOCH PYTHONHASHSEED MPLBACKEND

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ -x "$VENV/bin/snakemake" ] || die "$VENV/bin/snakemake not found: run make install first"
git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || die "$ROOT is not a git checkout: the test clones it"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/barometre-cluster.XXXXXX")"
chmod 755 "$WORK"  # munged wants every directory on the way to its socket searchable by all
SNAKEMAKE_PID=""
POLICY_RC=""
cleanup() {
  local rc=$?
  if [ -n "$SNAKEMAKE_PID" ] && kill -0 "$SNAKEMAKE_PID" 2>/dev/null; then kill -TERM "$SNAKEMAKE_PID" 2>/dev/null || true; fi
  cluster_stop
  if [ -n "$POLICY_RC" ]; then rm -f -- "$POLICY_RC"; fi
  if [ "${CLUSTER_KEEP:-0}" = 1 ]; then echo "(work directory kept: $WORK)"; else rm -rf -- "$WORK"; fi
  if [ "$rc" -eq 0 ]; then log "test-cluster passed"; else echo "test-cluster FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. a SLURM cluster --------------------------------------------------------------------
if [ "$CLUSTER" = auto ]; then
  if command -v sinfo >/dev/null && timeout 20 sinfo --noheader >/dev/null 2>&1; then CLUSTER=present; else CLUSTER=private; fi
fi
if [ "$CLUSTER" = private ]; then
  [ "$(id -u)" -eq 0 ] || die "a private test cluster needs root (slurmd); run as root, or CLUSTER=present on a SLURM login node"
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get to install them"
    log "installing slurm-wlm and munge (Debian)"
    if [ ! -e /usr/sbin/policy-rc.d ]; then  # no system daemon is started by the install
      POLICY_RC=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC" && chmod 755 "$POLICY_RC"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends slurm-wlm munge
    if [ -n "$POLICY_RC" ]; then rm -f -- "$POLICY_RC"; POLICY_RC=""; fi
  fi
  log "starting a private SLURM cluster in $WORK/slurm"
  cluster_start "$WORK/slurm"
  cluster_listening
else
  log "using the SLURM cluster present: $(sinfo --version)"
  sinfo
fi
SQUEUE="$(command -v squeue)"

# --- 2. two fresh clones -------------------------------------------------------------------
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
  echo "note: $ROOT has uncommitted changes; the test builds the last commit, as a clone does"
fi
for name in local cluster; do
  git clone --quiet "$ROOT" "$WORK/$name"
  ln -s "$VENV" "$WORK/$name/.venv"  # .venv is git-ignored: the clone stays clean
done
log "clones of $(git -C "$WORK/cluster" log -1 --format='%h %s')"

# --- 3a. local build -----------------------------------------------------------------------
log "local build: make report (in $WORK/local)"
# -o: the linked environment counts as installed (never reinstalled from the clone)
(cd "$WORK/local" && make --no-print-directory -o .venv/.installed report) >"$WORK/local.log" 2>&1 \
  || { tail -n 40 "$WORK/local.log" >&2; die "the local make report failed (log above)"; }

# --- 3b. cluster build, under the watchdog -------------------------------------------------
log "cluster build: .venv/bin/snakemake --profile profiles/slurm $CLUSTER_SNAKEMAKE_ARGS (in $WORK/cluster)"
start=$SECONDS
# shellcheck disable=SC2086
(cd "$WORK/cluster" && exec .venv/bin/snakemake --profile profiles/slurm $CLUSTER_SNAKEMAKE_ARGS) >"$WORK/cluster.log" 2>&1 &
SNAKEMAKE_PID=$!
last_size=-1
last_change=$SECONDS
while kill -0 "$SNAKEMAKE_PID" 2>/dev/null; do
  sleep 5
  size="$(stat -c %s "$WORK/cluster.log")"
  if [ "$size" != "$last_size" ]; then last_size="$size"; last_change=$SECONDS; fi
  reason=""
  if ((SECONDS - last_change >= CLUSTER_STALL)); then
    reason="Snakemake has printed nothing for $CLUSTER_STALL s (CLUSTER_STALL): it is most likely waiting for jobs whose status it cannot read (squeue/sacct)"
  elif ((SECONDS - start >= CLUSTER_TIMEOUT)); then
    reason="the cluster run exceeded $CLUSTER_TIMEOUT s (CLUSTER_TIMEOUT)"
  fi
  if [ -n "$reason" ]; then
    echo "error: watchdog: $reason" >&2
    echo "--- squeue ($SQUEUE) ---" >&2
    "$SQUEUE" --all 2>&1 | tail -n 20 >&2 || true
    echo "--- sinfo: the nodes' state (idle: no job running) ---" >&2
    sinfo 2>&1 | tail -n 10 >&2 || true
    echo "--- last lines of the Snakemake log ---" >&2
    tail -n 30 "$WORK/cluster.log" >&2
    kill -TERM "$SNAKEMAKE_PID" 2>/dev/null || true
    sleep 5
    kill -KILL "$SNAKEMAKE_PID" 2>/dev/null || true
    exit 1
  fi
done
rc=0
wait "$SNAKEMAKE_PID" || rc=$?
SNAKEMAKE_PID=""
grep -E '^(Using|Job stats|total|[0-9]+ of [0-9]+ steps)' "$WORK/cluster.log" | tail -n 4 || true
echo "cluster run: exit $rc after $((SECONDS - start)) s, $(grep -c 'has been submitted with SLURM jobid' "$WORK/cluster.log" || true) sbatch jobs"
[ "$rc" -eq 0 ] || { tail -n 60 "$WORK/cluster.log" >&2; die "the cluster run failed (log above)"; }
dirty="$(git -C "$WORK/cluster" status --porcelain --untracked-files=no)"
[ -z "$dirty" ] || die "the cluster run left tracked files changed: $dirty"

# --- 4. byte for byte ----------------------------------------------------------------------
log "comparing the outputs"
"$VENV/bin/python" "$HERE/compare_outputs.py" "$WORK/local" "$WORK/cluster"
grep -q '"dirty": false' "$WORK/cluster/results/2017/provenance.json" \
  || die "results/2017/provenance.json of the cluster build does not record a clean tree"

# --- 5. a partition that does not exist: one message, nothing submitted --------------------
bad=standard  # the partition the profile once hard-coded
if sinfo --noheader --all --format=%R | grep -qx "$bad"; then bad=barometre_no_such_partition; fi
log "a site profile naming partition « $bad »: stopped before submission"
printf 'default-resources:\n  slurm_partition: "%s"\n' "$bad" >"$WORK/cluster/profiles/site.yaml"
git -C "$WORK/cluster" check-ignore -q profiles/site.yaml || die "profiles/site.yaml is not git-ignored"
rc=0
(cd "$WORK/cluster" && timeout 300 .venv/bin/snakemake --profile profiles/slurm --profile profiles/site.yaml --forceall) \
  >"$WORK/bad_partition.log" 2>&1 || rc=$?
grep -A2 "partition '$bad'" "$WORK/bad_partition.log" || true
[ "$rc" -ne 0 ] || die "the run with partition « $bad » did not fail"
grep -q "partition '$bad' (slurm_partition" "$WORK/bad_partition.log" \
  || { tail -n 30 "$WORK/bad_partition.log" >&2; die "no clear message about partition « $bad »"; }
! grep -q 'has been submitted with SLURM jobid' "$WORK/bad_partition.log" || die "jobs were submitted despite the missing partition"
