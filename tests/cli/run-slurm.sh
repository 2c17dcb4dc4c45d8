#!/bin/sh
# mem-run --slurm on a real one-host Slurm cluster (munged, slurmctld and
# slurmd from Debian, started on loopback by scripts/slurm-local.sh with
# everything under the test's temp dir): the demo recipe as an array job and
# a merge job gives the same outputs as the single-host run, and a failed
# task is resubmitted alone.
. "$MEM_SRCDIR/tests/lib.sh"

PATH=$PATH:/usr/sbin:/sbin
for p in munged slurmctld slurmd sbatch; do
	command -v $p >/dev/null 2>&1 ||
		skip_all "no $p: install the Debian packages slurm-wlm and munge (scripts/install-deps.sh --test)"
done
[ "$(id -u)" = 0 ] || skip_all "slurmd must run as root to start jobs"

S="$T/slurm"
MEM_SLURM_PORT=$((20000 + ($$ % 2000) * 2))
export MEM_SLURM_PORT
trap 'sh "$MEM_SRCDIR/scripts/slurm-local.sh" stop "$S" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT INT TERM
if sh "$MEM_SRCDIR/scripts/slurm-local.sh" start "$S" > start.log 2>&1; then
	ok "slurm-local.sh starts munged, slurmctld and slurmd on 127.0.0.1:$MEM_SLURM_PORT"
else
	not_ok "slurm-local.sh start"
	sed 's/^/# /' start.log
	tail -20 "$S/slurmctld.log" "$S/slurmd.log" 2>/dev/null | sed 's/^/# /'
	done_testing
	exit 1
fi
SLURM_CONF="$S/slurm.conf"
export SLURM_CONF

mem-demo -o demo --size 512 > /dev/null
cat > r.yaml <<'EOF'
version: 1
name: t
source:
  catalog: demo/catalog.json
assets: [red, nir, scl]
grid: webmercator:14
stages: [cloudmask, 'ndvi:mask=cloudmask']
outputs:
  dir: out
run:
  jobs: 1
EOF
sums() { (cd "$1" && find . -name '*.tif' | sort | xargs md5sum); }
# wait_job ID: until the job (all its array tasks) has left the queue
wait_job() {
	i=0
	while squeue -h -j "$1" 2>/dev/null | grep -q . && [ $i -lt 1200 ]; do sleep 0.2; i=$((i + 1)); done
	[ $i -lt 1200 ]
}
plan_get() { json_get "$1/runs/t/slurm/plan.json" "d['$2']"; }

mkdir a b c
for d in a b c; do ln -s ../demo $d/demo; cp r.yaml $d/; done
(cd a && mem-run -q r.yaml) && ok "the single-host run" || not_ok "the single-host run failed"
sums a/out > ref.sums

# --- the array job and the merge job ----------------------------------------
t0=$(date +%s)
if (cd b && mem-run --slurm --tasks 3 r.yaml 2> submit.err); then
	ok "mem-run --slurm submits"
else
	not_ok "mem-run --slurm: $(cat b/submit.err)"
fi
arr=$(plan_get b array_job)
merge=$(plan_get b merge_job)
[ "$(plan_get b tasks)" = 3 ] && ok "the plan names 3 tasks, array job $arr, merge job $merge" || not_ok "plan: $(cat b/runs/t/slurm/plan.json)"
wait_job "$arr" && wait_job "$merge" || not_ok "jobs still queued after 240 s"
diag "array job and merge job done in $(($(date +%s) - t0)) s"
n=$(ls b/runs/t/shards/*/done 2>/dev/null | wc -l)
[ "$n" -eq 3 ] && ok "every task left its done marker" || not_ok "$n of 3 tasks done: $(tail -5 b/runs/t/slurm/*.log)"
if [ -s b/runs/t/stored.ndjson ] && sums b/out | cmp -s ref.sums -; then
	ok "the merged outputs equal the single-host run's by checksum ($(wc -l < ref.sums) COGs)"
else
	not_ok "merged outputs differ from the single-host run's"
	tail -5 b/runs/t/slurm/*.log | sed 's/^/# /'
fi
if [ "$(cut -d'"' -f4 a/runs/t/stored.ndjson | sort | md5sum)" = "$(cut -d'"' -f4 b/runs/t/stored.ndjson | sort | md5sum)" ]; then
	ok "and the same item ids"
else
	not_ok "stored item ids differ"
fi
[ "$(json_get b/runs/t/run.json "d['mode'], d['status'], d['slurm']['tasks']")" = "slurm-merge 0 3" ] &&
	ok "the merge job writes the run record" || not_ok "run.json: $(head -c 300 b/runs/t/run.json)"

# --- a failed task, resubmitted alone ------------------------------------------
mkdir -p c/runs/t/shards
: > c/runs/t/shards/1 # task 1 cannot make its directory: it fails
(cd c && mem-run -q --slurm --tasks 3 r.yaml)
arr=$(plan_get c array_job)
wait_job "$arr"
n=$(ls c/runs/t/shards/*/done 2>/dev/null | wc -l)
[ "$n" -eq 2 ] && [ ! -e c/runs/t/stored.ndjson ] && ok "task 1 fails, the others finish, the merge job does not run" ||
	not_ok "$n tasks done after a failure"
rm c/runs/t/shards/1
(cd c && mem-run --slurm --resubmit-failed runs/t 2> resubmit.err) && ok "--resubmit-failed exits 0" || not_ok "--resubmit-failed: $(cat c/resubmit.err)"
[ "$(plan_get c submitted)" = 1 ] && ok "and submits task 1 alone" || not_ok "resubmitted: $(plan_get c submitted)"
wait_job "$(plan_get c array_job)" && wait_job "$(plan_get c merge_job)" || not_ok "resubmitted jobs still queued"
if [ -s c/runs/t/stored.ndjson ] && sums c/out | cmp -s ref.sums -; then
	ok "then the merged outputs equal the single-host run's"
else
	not_ok "outputs after resubmission differ"
	tail -5 c/runs/t/slurm/*.log | sed 's/^/# /'
fi
(cd c && mem-run --slurm --resubmit-failed runs/t 2>&1) | grep -q 'nothing to resubmit' &&
	ok "a second --resubmit-failed finds nothing to do" || not_ok "second --resubmit-failed"

done_testing
