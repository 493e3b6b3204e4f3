#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying `langevin-nn submit` on a laptop and for
# the test suite. Needs Debian's packages: munge slurmctld slurmd slurm-client
#   (apt-get install --no-install-recommends munge slurmctld slurmd slurm-client).
#
#   runs/slurm/local-cluster.sh start DIR   # daemons in the background, state under DIR
#   export SLURM_CONF=DIR/slurm.conf        # then sbatch, squeue, langevin-nn submit ...
#   runs/slurm/local-cluster.sh stop DIR    # stops the daemons it started (by their pids)
#
# Daemons run as root without systemd (slurmd needs root to launch jobs). Facts behind the
# settings: shared/slurm-notes.md of the project.
set -euo pipefail
cmd=${1:?usage: local-cluster.sh start|stop DIR}
dir=${2:?usage: local-cluster.sh start|stop DIR}

stop() {
  for d in slurmd slurmctld munged; do
    if [ -f "$dir/$d.pid" ]; then
      pid=$(cat "$dir/$d.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$d.pid"
    fi
  done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: local-cluster.sh start|stop DIR" >&2; exit 2; }
for exe in munged mungekey slurmctld slurmd sbatch scontrol sinfo; do
  command -v "$exe" >/dev/null || { echo "local-cluster.sh: $exe not found (install munge slurmctld slurmd slurm-client)" >&2; exit 3; }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
chmod 755 "$dir"
mkdir -p "$dir/munge-key" "$dir/munge-run" "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir/munge-key"; chmod 755 "$dir/munge-run"
[ -f "$dir/munge-key/munge.key" ] || mungekey --create --keyfile="$dir/munge-key/munge.key" >/dev/null
chmod 600 "$dir/munge-key/munge.key"
sock="$dir/munge-run/munge.socket"
munged -F --key-file="$dir/munge-key/munge.key" --socket="$sock" \
  --pid-file="$dir/munge-run/munged.pid" --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge-run/seed" --force >"$dir/log/munged.out" 2>&1 &
echo $! > "$dir/munged.pid"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
munge -S "$sock" -n | unmunge -S "$sock" >/dev/null

host=$(hostname -s)
node=$(slurmd -C | head -n1 | sed "s/NodeName=[^ ]*/NodeName=$host/")
cat > "$dir/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
ReturnToService=2
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.pidfile
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
echo $! > "$dir/slurmctld.pid"
slurmd -D -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
echo $! > "$dir/slurmd.pid"
for _ in $(seq 100); do
  if scontrol ping 2>/dev/null | grep -q UP && [ "$(sinfo -h -o %t 2>/dev/null | head -n1)" = idle ]; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "local-cluster.sh: the cluster did not come up; logs in $dir/log" >&2
stop
exit 1
