#!/bin/sh
# consensus-worker.sh - one worker of a consensus run: mem-run --ledger, the
# recipe's stages with the etcd work ledger, sharing the run's work
# directory and outputs with the other workers.
#
#   consensus-worker.sh RECIPE RUN_DIR WORKER LEDGER_URL [OPTION...]
#
# The worker is mem-run's worker wWORKER: its manifests, stamps, record and
# lock are in RUN_DIR/workers/wWORKER/, linked as RUN_DIR/wWORKER (where
# deployments/lib/local.sh looks for "done"); the tools' work directory is
# RUN_DIR/work for all workers.  mem-fetch plans under the ledger's
# election, mem-tile, mem-infer and mem-store claim each item before
# working on it, so every item is done once, by one worker, and every
# worker's manifests list all of them.  OPTIONs are mem-run's ledger
# options (--ledger-ttl 2, --ledger-cacert F, ...), passed on to every tool.
# Exit status: mem-run's (mem-run(1)).
set -eu
[ $# -ge 4 ] || { echo "usage: consensus-worker.sh RECIPE RUN_DIR WORKER LEDGER_URL [OPTION...]" >&2; exit 2; }
RECIPE=$1 RUN=$2 W=w$3 URL=$4
shift 4
mkdir -p "$RUN/workers"
# a run directory of the shell worker this replaces: its state moves in place
if [ -d "$RUN/$W" ] && [ ! -L "$RUN/$W" ] && [ ! -e "$RUN/workers/$W" ]; then
	mv "$RUN/$W" "$RUN/workers/$W"
fi
[ -L "$RUN/$W" ] || ln -s "workers/$W" "$RUN/$W"
exec mem-run --ledger "$URL" --worker "$W" --run-dir "$RUN" "$@" "$RECIPE"
