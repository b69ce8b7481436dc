#!/bin/bash
# Runs the Slurm route of a sweep for real on this machine and checks its result.
#
# Starts a single-node Slurm cluster (munged, slurmctld and slurmd, every file under a
# temporary directory), submits examples/slurm/sweep.sbatch as a 3-task array and
# examples/slurm/merge.sbatch depending on it, requeues one task while it runs (a preemption:
# the task is killed and runs again with --resume), and checks that the merged CSV is byte for
# byte the file a single `selfheal sweep` process writes. The cluster is stopped on exit,
# whatever happens.
#
# Usage: examples/slurm/local-cluster.sh   (from anywhere; needs root to start the daemons)
# Environment: SELFHEAL (default target/release/selfheal, built if missing), KEEP=1 to keep
# the temporary directory for inspection. Installs Debian's slurm-wlm and munge with apt when
# they are missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
say() { echo "local-cluster: $*"; }
die() {
  echo "local-cluster: error: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root: the script starts munged, slurmctld and slurmd"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
  ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  say "installing slurm-wlm and munge with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

SELFHEAL=${SELFHEAL:-$repo/target/release/selfheal}
if [ ! -x "$SELFHEAL" ]; then
  say "building $SELFHEAL"
  (cd "$repo" && cargo build --release --quiet)
fi
export SELFHEAL

work=$(mktemp -d /tmp/selfheal-slurm.XXXXXX)
mkdir -p "$work"/{munge,state,spool,log,run,job/shards}
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/run/slurmd.pid "$work"/run/slurmctld.pid "$work"/munge/munged.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  if [ "$rc" != 0 ]; then
    for f in "$work"/log/*.log "$work"/job/shards/*.out; do
      [ -f "$f" ] && { echo "--- $f (last lines)"; tail -n 20 "$f"; }
    done
  fi
  if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT

# Authentication: a munge daemon of our own, with its own key and socket.
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$work/munge"
chmod 600 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" \
  --seed-file="$work/munge/munged.seed"

host=$(hostname -s)
cpus=$(nproc)
port=$((20000 + RANDOM % 20000))
conf="$work/slurm.conf"
cat >"$conf" <<EOF
ClusterName=selfheal-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$conf"

slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 1 60); do
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 1
done
[ "$state" = idle ] || die "the node did not come up (state '${state:-none}')"
say "cluster up: node $host, $cpus CPUs, slurmctld on port $port"

# The sweep every task runs: large enough that a task is still running when it is requeued.
cp -r "$repo/data" "$work/job/data"
export SWEEP="data/skype2007.toml --grid sn_capacity=300:5000:300 --grid shock=0.05:0.95:300 --metric outcome,min_peers,critical_shock"
cd "$work/job"
jid=$(sbatch --parsable --cpus-per-task=1 --requeue --array=1-3 "$repo/examples/slurm/sweep.sbatch")
mid=$(sbatch --parsable --dependency=afterok:"$jid" "$repo/examples/slurm/merge.sbatch")
say "submitted array job $jid (3 tasks) and merge job $mid"

# Preempt task 2 once it has written rows: requeue kills it and queues it again.
for _ in $(seq 1 600); do
  rows=$( (wc -l <shards/part-2.csv) 2>/dev/null || echo 0)
  [ "$rows" -gt 200 ] && break
  sleep 0.1
done
[ "$rows" -gt 200 ] || die "task 2 wrote no rows within a minute"
scontrol requeue "${jid}_2"
# A requeued job waits minutes before it may start again; once it is pending, let it start now.
for _ in $(seq 1 100); do
  [ "$(squeue -h -j "${jid}_2" -o %T 2>/dev/null)" = PENDING ] && break
  sleep 0.1
done
scontrol update JobId="${jid}_2" StartTime=now
say "requeued task ${jid}_2 after it had written $((rows - 1)) rows"

for _ in $(seq 1 900); do
  squeue -h -j "$jid,$mid" 2>/dev/null | grep -q . || break
  sleep 1
done
squeue -h -j "$jid,$mid" 2>/dev/null | grep -q . && die "jobs still queued after 15 minutes"
[ -f sweep.csv ] || die "the merge job wrote no sweep.csv"

# The requeued task ran again and computed only the rows its shard still lacked.
restarts=$(scontrol show job "${jid}_2" 2>/dev/null | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
[ "${restarts:-0}" -ge 1 ] || die "task 2 was not restarted (Restarts=${restarts:-unknown})"
line=$(grep 'rows computed' shards/slurm-"${jid}"_2.out)
computed=${line%% rows computed*}
shard_rows=$(($(wc -l <shards/part-2.csv) - 1))
[ "$computed" -lt "$shard_rows" ] ||
  die "the requeued task recomputed its whole shard ($line)"
say "task 2 restarted $restarts time(s); on resuming it computed $computed of its $shard_rows rows"

# shellcheck disable=SC2086
"$SELFHEAL" sweep $SWEEP --threads "$cpus" --out single.csv 2>/dev/null
cmp sweep.csv single.csv || die "the merged sweep differs from a single-process sweep"
say "merged sweep.csv ($(($(wc -l <sweep.csv) - 1)) rows) is byte-identical to a single-process sweep"
