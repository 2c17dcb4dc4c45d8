#!/bin/sh
# deploy-swarmed.sh - deployments/swarmed/local/deploy.sh for real: up starts
# the one-host Slurm cluster (scripts/slurm-local.sh, munged, slurmctld and
# slurmd on 127.0.0.1, everything under the test's temp dir), submits the
# demo recipe as an array job and a merge job (mem-run --slurm) and waits
# for them; the outputs equal the standalone run's by checksum; status
# reports the tasks; destroy stops every daemon.
. "$MEM_SRCDIR/tests/lib.sh"

PATH=$PATH:/usr/sbin:/sbin
for p in munged slurmctld slurmd sbatch squeue; do
	command -v $p >/dev/null 2>&1 ||
		skip_all "no $p: install the Debian packages slurm-wlm and munge (scripts/install-deps.sh --test)"
done
[ "$(id -u)" = 0 ] || skip_all "slurmd must run as root to start jobs"

D="$MEM_SRCDIR/deployments"
export MEM_DEPLOY_AUDIT_LOG="$T/audit.jsonl"
# ports away from run-slurm.sh's (20000-23999) and Slurm's own
MEM_SLURM_PORT=$((24000 + ($$ % 1000) * 2))
export MEM_SLURM_PORT
deploy() { sh "$D/swarmed/local/deploy.sh" --config "$T/sw.yaml" --state-dir "$T/st" "$@"; }
trap 'deploy destroy >/dev/null 2>&1 || sh "$MEM_SRCDIR/scripts/slurm-local.sh" stop "$T/st/slurm" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT INT TERM

mem-demo -o demo --size 256 > /dev/null
cat > sw.yaml <<EOF
deployment:
  type: swarmed
  provider: local
  name: memtest-swarmed
swarm:
  worker_nodes: 3
recipe: $MEM_SRCDIR/recipes/demo.yaml
EOF
mkdir ref && ln -s ../demo ref/demo
(cd ref && mem-run -q "$MEM_SRCDIR/recipes/demo.yaml") && ok "the standalone run" || not_ok "the standalone run"
sums() { (cd "$1" && find . -name '*.tif' | sort | xargs md5sum); }
sums ref/out > ref.sums

check "validate" deploy validate
check "the example deployments/examples/swarmed-local.yaml validates" sh "$D/swarmed/local/deploy.sh" --config "$D/examples/swarmed-local.yaml" validate
deploy --dry-run > plan.out 2>&1
grep -q "slurm-local.sh' start '$T/st/slurm'" plan.out && grep -q 'mem-run --slurm --tasks 3 ' plan.out &&
	ok "--dry-run prints the Slurm start and the submission of 3 tasks" || { not_ok "--dry-run"; sed 's/^/# /' plan.out; }

t0=$(date +%s)
if deploy up > up.out 2>&1; then
	ok "up: Slurm started, array and merge jobs done in $(($(date +%s) - t0)) s"
else
	not_ok "up failed"; sed 's/^/# /' up.out; tail -5 "$T"/st/slurm/*.log "$T"/st/run/slurm/*.log 2>/dev/null | sed 's/^/# /'
fi
grep -q 'array job [0-9]* (3 tasks) and merge job [0-9]* done' up.out && ok "up reports the jobs" || not_ok "up: $(cat up.out)"
[ "$(ls st/run/shards/*/done 2>/dev/null | wc -l)" = 3 ] && ok "3 array tasks left their done markers" || not_ok "tasks done: $(ls st/run/shards 2>/dev/null)"
if [ -d out ] && sums out | cmp -s ref.sums -; then
	ok "the Slurm array run's outputs equal the standalone run's by checksum ($(wc -l < ref.sums) COGs)"
else
	not_ok "the Slurm run's outputs differ from the standalone run's"
fi
deploy status > status.out 2>&1 || true
grep -q '^slurm: running' status.out && grep -q '^tasks done: 3 of 3$' status.out &&
	ok "status: Slurm running, 3 of 3 tasks done" || { not_ok "status"; sed 's/^/# /' status.out; }
set +e; deploy up > up2.out 2>&1; rc=$?; set -e
[ $rc = 1 ] && grep -q 'slurmctld already runs' up2.out && ok "a second up is refused while Slurm runs" || not_ok "second up: exit $rc: $(cat up2.out)"

pids=$(cat st/slurm/slurmctld.pid st/slurm/slurmd.pid st/slurm/munge/munged.pid 2>/dev/null)
check "destroy" deploy destroy
alive=
for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
[ -n "$pids" ] && [ -z "$alive" ] && [ ! -d st ] && ok "destroy: munged, slurmctld and slurmd stopped, state removed" ||
	not_ok "destroy left:$alive (pids: $pids)"
grep -q '"action":"up".*"result":"ok","message":"array job' "$MEM_DEPLOY_AUDIT_LOG" &&
	grep -q '"action":"destroy".*"result":"ok"' "$MEM_DEPLOY_AUDIT_LOG" &&
	ok "the audit log has the up and the destroy" || not_ok "audit log: $(cat "$MEM_DEPLOY_AUDIT_LOG")"

done_testing
