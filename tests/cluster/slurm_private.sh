# A private single-node SLURM cluster on loopback, for tests/cluster/run.sh (sourced, not run).
#
#   cluster_start DIR   starts munged, slurmctld and slurmd with everything under DIR: its own
#                       munge key and socket, its own slurm.conf (one node, default partition
#                       `debug`, no slurmdbd, MinJobAge 300 s), two free ports on 127.0.0.1,
#                       state, spool, logs and PID files. Exports SLURM_CONF, and PATH with an
#                       srun that keeps it inside jobs (see below). Daemons run in the
#                       foreground of background jobs; their PIDs are kept in CLUSTER_PIDS.
#   cluster_stop        kills those PIDs (TERM, then KILL), never anything else.
#   cluster_listening   fails unless every socket the daemons listen on is bound to 127.0.0.1.
#
# Needs root (slurmd starts jobs as their user) and Debian's slurm-wlm and munge packages.

CLUSTER_PIDS=()
CLUSTER_NODE=barometrenode
CLUSTER_PARTITION=debug

_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

_wait_for() {  # _wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every second
  local seconds="$1" what="$2"; shift 2
  local i
  for ((i = 0; i < seconds; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "error: $what did not happen within ${seconds} s" >&2
  return 1
}

cluster_start() {
  local dir="$1" ctld_port slurmd_port mem_mb
  # munged wants every directory on the way to its socket searchable by all, the key private.
  mkdir -p "$dir"/{munge,munge-key,state,spool,log}
  chmod 755 "$dir" "$dir/munge"
  chmod 700 "$dir/munge-key"
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile="$dir/munge-key/munge.key"
  else
    dd if=/dev/urandom of="$dir/munge-key/munge.key" bs=1024 count=1 status=none
  fi
  chmod 400 "$dir/munge-key/munge.key"
  munged --foreground --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge-key/munge.key" \
    --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge-key/munged.seed" \
    --log-file="$dir/log/munged.log" >"$dir/log/munged.out" 2>&1 &
  CLUSTER_PIDS+=("$!")
  _wait_for 20 "munged answering on $dir/munge/munge.socket.2" \
    bash -c "munge -n -S '$dir/munge/munge.socket.2' | unmunge -S '$dir/munge/munge.socket.2'" \
    || { cat "$dir/log/munged.out" >&2; return 1; }

  ctld_port="$(_free_port)"
  slurmd_port="$(_free_port)"
  while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port="$(_free_port)"; done
  # slurmd drains a node that declares more memory than it has: 90 % of MemTotal.
  mem_mb="$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)"
  cat >"$dir/slurm.conf" <<EOF
# Private test cluster of tests/cluster/run.sh; removed with its directory.
ClusterName=barometretest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
# Daemons bind to the node's address (127.0.0.1), not to every interface.
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
# No slurmdbd: sacct answers « Slurm accounting storage is disabled », as on many small clusters.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue for 300 s (Slurm's default, stated for the reader).
MinJobAge=300
NodeName=$CLUSTER_NODE NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=$CLUSTER_PARTITION Nodes=$CLUSTER_NODE Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  # Inside a job, snakemake-executor-plugin-slurm-jobstep (0.6.1) runs the rule with `srun` in an
  # environment stripped of every SLURM_* variable but the job's identity, SLURM_CONF included: a
  # real node finds /etc/slurm/slurm.conf (or slurmd's configless cache), this private cluster has
  # neither. Jobs inherit PATH (sbatch --export=ALL): this srun puts SLURM_CONF back.
  mkdir -p "$dir/bin"
  printf '#!/bin/sh\nSLURM_CONF=%q exec %q "$@"\n' "$SLURM_CONF" "$(command -v srun)" >"$dir/bin/srun"
  chmod 755 "$dir/bin/srun"
  export PATH="$dir/bin:$PATH"
  slurmctld -D -c -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
  CLUSTER_PIDS+=("$!")
  _wait_for 30 "slurmctld answering on 127.0.0.1:$ctld_port" scontrol ping \
    || { tail -n 20 "$dir/log/slurmctld.out" >&2; return 1; }
  slurmd -D -N "$CLUSTER_NODE" -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
  CLUSTER_PIDS+=("$!")
  _wait_for 60 "node $CLUSTER_NODE idle" bash -c "sinfo --noheader --format=%T --nodes=$CLUSTER_NODE | grep -qx idle" \
    || { tail -n 20 "$dir/log/slurmd.out" "$dir/log/slurmctld.out" >&2; return 1; }
  echo "==> private SLURM cluster up: slurmctld 127.0.0.1:$ctld_port, slurmd 127.0.0.1:$slurmd_port, PIDs ${CLUSTER_PIDS[*]}"
  sinfo
}

cluster_listening() {
  local pid bad=0 lines
  command -v ss >/dev/null || { echo "(ss absent: listening addresses not checked)"; return 0; }
  for pid in "${CLUSTER_PIDS[@]}"; do
    lines="$(ss -H -ltunp 2>/dev/null | grep -F "pid=$pid," || true)"
    [ -n "$lines" ] && echo "$lines"
    if [ -n "$lines" ] && echo "$lines" | awk '{ print $5 }' | grep -vq '^127\.0\.0\.1:'; then bad=1; fi
  done
  if [ "$bad" = 1 ]; then echo "error: a cluster daemon listens beyond 127.0.0.1" >&2; return 1; fi
  echo "==> cluster daemons listen on 127.0.0.1 only"
}

cluster_stop() {
  local pid i alive
  [ "${#CLUSTER_PIDS[@]}" -gt 0 ] || return 0
  # Jobs still queued or running (a failed run): cancelled on this private cluster only.
  scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
  # slurmd first (it may still run job steps), then slurmctld, then munged
  for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${CLUSTER_PIDS[i]}" 2>/dev/null || true; done
  for ((i = 0; i < 20; i++)); do
    alive=0
    for pid in "${CLUSTER_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "${CLUSTER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait "${CLUSTER_PIDS[@]}" 2>/dev/null || true
  echo "==> private SLURM cluster stopped (PIDs ${CLUSTER_PIDS[*]})"
  CLUSTER_PIDS=()
}
