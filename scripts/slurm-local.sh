#!/bin/sh
# slurm-local.sh - a one-host Slurm cluster on loopback, for tests and trials.
#
#   scripts/slurm-local.sh start [DIR]   start munged, slurmctld and slurmd
#   scripts/slurm-local.sh stop [DIR]    stop them
#   scripts/slurm-local.sh env [DIR]     print the export line clients need
#
# Everything lives under DIR (default $MEM_SLURM_DIR, else /tmp/mem-slurm):
# slurm.conf, its own munge key and socket, state, spool, logs and pids, so
# it touches neither /etc/slurm nor /run/munge, and needs no systemd.  The
# ports are $MEM_SLURM_PORT and the next (default 16817, 16818), away from
# Slurm's own 6817/6818.  Clients need SLURM_CONF=DIR/slurm.conf (without it
# they try a DNS SRV lookup and fail).  Debian packages: slurm-wlm, munge.
# Run as root (slurmd starts the jobs as their owners).
set -eu

cmd=${1:-}
D=${2:-${MEM_SLURM_DIR:-/tmp/mem-slurm}}
PORT=${MEM_SLURM_PORT:-16817}
CPUS=${MEM_SLURM_CPUS:-4}

die() { echo "slurm-local.sh: $*" >&2; exit 1; }

need() {
	for p in munged mungekey slurmctld slurmd sinfo sbatch; do
		command -v "$p" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
		command -v "$p" >/dev/null 2>&1 ||
			die "'$p' not found: install the Debian packages slurm-wlm and munge"
	done
}

start() {
	need
	mkdir -p "$D"
	D=$(cd "$D" && pwd)
	mkdir -p "$D/state" "$D/spool" "$D/munge"
	chmod 0700 "$D/munge"
	[ -f "$D/munge/munge.key" ] || mungekey -c -k "$D/munge/munge.key" >/dev/null 2>&1 ||
		dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 2>/dev/null
	chmod 0600 "$D/munge/munge.key"
	cat > "$D/slurm.conf" <<EOF
# written by slurm-local.sh: one node on loopback, state under $D
ClusterName=memlocal
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.sock
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
SlurmdTimeout=30
MinJobAge=600
MaxArraySize=10001
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
	export SLURM_CONF="$D/slurm.conf"
	munged -f --socket="$D/munge/munge.sock" --key-file="$D/munge/munge.key" \
		--pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
		--seed-file="$D/munge/munged.seed" || die "munged did not start: see $D/munge/munged.log"
	munge -S "$D/munge/munge.sock" -n | unmunge -S "$D/munge/munge.sock" >/dev/null ||
		die "munge does not verify its own credential"
	slurmctld -f "$SLURM_CONF" || die "slurmctld did not start: see $D/slurmctld.log"
	slurmd -f "$SLURM_CONF" -N localhost || die "slurmd did not start: see $D/slurmd.log"
	i=0
	until sinfo -h -n localhost -o %T 2>/dev/null | grep -qE 'idle|mixed|allocated'; do
		i=$((i + 1))
		[ $i -le 300 ] || die "the node did not come up in 30 s: see $D/slurmctld.log, $D/slurmd.log"
		sleep 0.1
	done
	echo "export SLURM_CONF=$D/slurm.conf"
}

stop_pidfile() {
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	if kill "$pid" 2>/dev/null; then
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$1"
}

stop() {
	[ -d "$D" ] || return 0
	stop_pidfile "$D/slurmd.pid"
	stop_pidfile "$D/slurmctld.pid"
	stop_pidfile "$D/munge/munged.pid"
}

case $cmd in
start) start ;;
stop) stop ;;
env) echo "export SLURM_CONF=$(cd "$D" && pwd)/slurm.conf" ;;
*) echo "usage: slurm-local.sh start|stop|env [DIR]" >&2; exit 2 ;;
esac
