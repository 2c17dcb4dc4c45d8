#!/bin/sh
# consensus-worker.sh - one worker of a consensus run: the recipe's stages
# (as mem-run --dry-run prints them) with the etcd work ledger, sharing the
# run's work directory and outputs with the other workers.
#
#   consensus-worker.sh RECIPE RUN_DIR WORKER LEDGER_URL [TOOL_OPTION...]
#
# The manifests go to RUN_DIR/wWORKER/, the tools' work directory is
# RUN_DIR/work for all workers.  mem-fetch plans under the ledger's
# election (one worker fetches, the others read its items), and mem-tile,
# mem-infer and mem-store claim each item before working on it, so every
# item is done once, by one worker, and every worker's manifests list all
# of them.  TOOL_OPTIONs (--ledger-ttl 2, --ledger-cacert F, ...) are added
# to every tool.  Exit status: the first failing stage's.
set -eu
[ $# -ge 4 ] || { echo "usage: consensus-worker.sh RECIPE RUN_DIR WORKER LEDGER_URL [OPTION...]" >&2; exit 2; }
RECIPE=$1 RUN=$2 W=$3 MEM_LEDGER=$4
shift 4
export MEM_LEDGER
mkdir -p "$RUN/w$W" "$RUN/work"
RUN=$(cd "$RUN" && pwd)
# the stage lines of the plan: TOOL ARGS... > RUN/STAGE.ndjson
mem-run -q -n --run-dir "$RUN" "$RECIPE" > "$RUN/w$W/plan.sh"
sed -i "s#$RUN/\([a-z]*\.ndjson\)#$RUN/w$W/\1#g" "$RUN/w$W/plan.sh"
echo "$$" > "$RUN/w$W/pid"
while IFS= read -r line; do
	tool=${line%% *}
	rest=${line#* }
	echo "consensus-worker $W: $tool" >&2
	# shellcheck disable=SC2086
	if ! eval "$tool $* $rest"; then
		rc=$?
		echo "consensus-worker $W: $tool failed (exit $rc)" >&2
		exit "$rc"
	fi
done < "$RUN/w$W/plan.sh"
: > "$RUN/w$W/done"
echo "consensus-worker $W: done" >&2
