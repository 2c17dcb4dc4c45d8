#!/bin/sh
# mem-run --ledger: a recipe run by three workers sharing one run directory
# and one etcd (a single member on 127.0.0.1:46379, peer 46380, data on
# /dev/shm).  Each item is done once per stage (done marks in etcd, the
# tools' counts), the outputs equal a plain mem-run's byte for byte; a
# worker killed with SIGKILL while it holds claims and started again under
# its id finishes the run with the others, nothing lost or done twice.
# Also: the options as --dry-run shows them (key files by name only),
# usage errors, and the per-worker lock (same id: exit 75).
. "$MEM_SRCDIR/tests/lib.sh"

command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1 ||
	skip_all "etcd not installed (Debian etcd-server, etcd-client; scripts/install-deps.sh --test)"
command -v curl >/dev/null 2>&1 || skip_all "curl not installed"
for p in 46379 46380 46381; do
	if curl -s -m 1 --noproxy 127.0.0.1 "http://127.0.0.1:$p/" >/dev/null 2>&1; then
		skip_all "127.0.0.1:$p is taken"
	fi
done

D=/dev/shm/mem-run-ledger-test.$$
cleanup() {
	kill_pidfiles "$T" "$D"
	rm -rf "$D" "$T"
}
trap cleanup EXIT INT TERM

plan 23
mkdir -p "$D"
etcd --name m1 --data-dir "$D/m1" \
	--listen-client-urls http://127.0.0.1:46379 --advertise-client-urls http://127.0.0.1:46379 \
	--listen-peer-urls http://127.0.0.1:46380 --initial-advertise-peer-urls http://127.0.0.1:46380 \
	--initial-cluster m1=http://127.0.0.1:46380 --initial-cluster-token "mem-run-ledger-$$" \
	--heartbeat-interval 50 --election-timeout 500 --logger zap --log-outputs stderr > "$D/m1.log" 2>&1 &
echo $! > "$D/m1.pid"

small_recipe

# --- usage and --dry-run (no etcd needed) ---------------------------------------------------
err=$(stderr_of mem-run -n --ledger http://127.0.0.1:46379/x small.yaml)
check_exit "a bad --ledger URL: exit 2" 2 mem-run -n --ledger http://127.0.0.1:46379/x small.yaml
case $err in *"--ledger"*"http://127.0.0.1:46379/x"*) ok "  and the message names --ledger and the URL" ;;
	*) not_ok "bad URL message: $err" ;; esac
err=$(stderr_of mem-run -n --ledger etcd://127.0.0.1:46379/x --worker ../w small.yaml)
set +e
mem-run -n --ledger etcd://127.0.0.1:46379/x --worker ../w small.yaml > /dev/null 2>&1
rc=$?
set -e
[ $rc -eq 2 ] && case $err in *"--worker"*"'../w'"*) true ;; *) false ;; esac &&
	ok "--worker '../w' (not a file name): exit 2, naming --worker" || not_ok "--worker ../w: exit $rc: $err"
check_exit "--worker without --ledger: exit 2" 2 mem-run -n --worker w1 small.yaml
printf 'SECRET-KEY-CONTENT\n' > client-key.pem
printf 'CERT\n' > client.pem
mem-run -n --ledger etcds://127.0.0.1:46379/x --ledger-cert client.pem --ledger-key client-key.pem \
	--ledger-ttl 3 --worker n1 --run-dir dry small.yaml > dry.out
n=0
for prog in mem-fetch mem-tile mem-infer mem-store; do
	grep "^$prog --ledger etcds://127.0.0.1:46379/x --ledger-cert $T/client.pem --ledger-key $T/client-key.pem --ledger-ttl 3 " dry.out |
		grep -q "> $T/dry/workers/n1/" && n=$((n + 1))
done
[ $n -eq 4 ] && ! grep -q SECRET dry.out && [ ! -e dry ] &&
	ok "--dry-run: each of the 4 stages with the ledger options (key by path, not contents), manifests in workers/n1/, nothing made" ||
	{ not_ok "--dry-run: $n of 4 stages"; sed 's/^/# /' dry.out; }
h=$(uname -n | cut -d. -f1)
MEM_LEDGER=etcd://127.0.0.1:46379/env mem-run -n --run-dir dry small.yaml > env.out
grep -q "^mem-tile --ledger etcd://127.0.0.1:46379/env .*> $T/dry/workers/$h/tiles.ndjson\$" env.out &&
	ok "MEM_LEDGER: the ledger; the worker id defaults to the short host name ($h)" || { not_ok "MEM_LEDGER"; sed 's/^/# /' env.out; }
sed 's#^outputs:#run:\n  ledger: etcd://127.0.0.1:46379/rcp\noutputs:#' small.yaml > rcp.yaml
sed 's#^outputs:#run:\n  ledger: 127.0.0.1:46379\noutputs:#' small.yaml > bad.yaml
err=$(stderr_of mem-run -n bad.yaml)
set +e
mem-run -n bad.yaml > /dev/null 2>&1
rc=$?
set -e
mem-run -n --worker r1 rcp.yaml > rcp.out
grep -q "^mem-store --ledger etcd://127.0.0.1:46379/rcp .*/workers/r1/stored.ndjson\$" rcp.out &&
	[ $rc -eq 2 ] && case $err in *"run.ledger"*) true ;; *) false ;; esac &&
	ok "the recipe's run.ledger is the default; a bad one is refused naming run.ledger" || not_ok "run.ledger: exit $rc: $err"

# --- the per-worker lock ----------------------------------------------------------------------
# a worker held in its fetch by a ledger nobody answers (46381) for up to 20 s
setsid mem-run -q --ledger etcd://127.0.0.1:46381/x --ledger-timeout 20 --worker dup --run-dir lockdir small.yaml \
	> dup1.log 2>&1 &
echo $! > dup1.pid
n=0; until [ -f lockdir/workers/dup/scenes.ndjson.summary.json ] || ls lockdir/workers/dup/.scenes* >/dev/null 2>&1; do
	n=$((n + 1)); [ $n -lt 200 ] || break; sleep 0.05; done
set +e
mem-run -q --ledger etcd://127.0.0.1:46381/x --worker dup --run-dir lockdir small.yaml > /dev/null 2> dup2.err
rc=$?
set -e
[ $rc -eq 75 ] && grep -q "worker 'dup' runs already" dup2.err &&
	ok "a second process with the same --worker: exit 75, naming the worker" || not_ok "same worker: exit $rc: $(cat dup2.err)"
set +e
mem-run -q --ledger etcd://127.0.0.1:46381/x --ledger-timeout 1 --worker other --run-dir lockdir small.yaml > /dev/null 2> other.err
rc=$?
mem-run -q --run-dir lockdir small.yaml > /dev/null 2> plain.err
rc2=$?
set -e
[ $rc -eq 75 ] && grep -q "ledger 'etcd://127.0.0.1:46381/x'" other.err && ! grep -q "holds\|runs already" other.err &&
	ok "another --worker shares the directory (it goes on to the ledger)" || not_ok "other worker: exit $rc: $(cat other.err)"
[ $rc2 -eq 75 ] && grep -q "holds the lock" plain.err && ok "a plain mem-run of the directory waits for its workers (exit 75)" ||
	not_ok "plain run beside a worker: exit $rc2: $(cat plain.err)"
kill -9 "-$(cat dup1.pid)" 2>/dev/null || true
rm -f dup1.pid

# --- three workers ------------------------------------------------------------------------------
t0=$(date +%s)
until curl -s -m 1 --noproxy 127.0.0.1 http://127.0.0.1:46379/health 2>/dev/null | grep -q '"health":"true"'; do
	[ $(($(date +%s) - t0)) -lt 10 ] || { sed 's/^/# /' "$D/m1.log" | tail -5; echo "Bail out! etcd not healthy after 10 s"; exit 1; }
	sleep 0.1
done
U=etcd://127.0.0.1:46379
ETCDCTL="etcdctl --endpoints 127.0.0.1:46379"
t0=$(date +%s)
small_reference
diag "plain mem-run: $NT tiles, $(wc -l < std.files) files, $(($(date +%s) - t0)) s"
[ "$NT" -gt 1 ] || not_ok "the plain run made $NT tiles"

# done_keys PREFIX STAGE: the done marks of a stage
done_keys() { $ETCDCTL get --prefix --keys-only "$1/done/$2/" | grep -c . || true; }
claims() { $ETCDCTL get --prefix --keys-only "$1/claim/" | grep -c . || true; }
# made STAGE LOG...: the items the tool of STAGE says it made, summed over the logs
made() {
	s=$1; shift
	sed -n "s/^mem-$s: ledger: \([0-9]*\) items done here.*/\1/p" "$@" | awk '{ s += $1 } END { print s + 0 }'
}

P1=r1-$$
t0=$(date +%s)
for i in 1 2 3; do
	m=; [ $i -eq 1 ] && m="--metrics $T/w1.prom"
	# shellcheck disable=SC2086
	setsid mem-run --ledger "$U/$P1" --ledger-ttl 2 --worker w$i $m --run-dir run small.yaml > w$i.log 2>&1 &
	echo $! > w$i.pid
done
rc=0
for i in 1 2 3; do wait "$(cat w$i.pid)" || rc=$?; rm -f w$i.pid; done
diag "3 workers: $(($(date +%s) - t0)) s"
[ $rc -eq 0 ] && ok "3 workers: all exit 0" || { not_ok "3 workers: exit $rc"; tail -n 3 w1.log w2.log w3.log | sed 's/^/# /'; }
same_out out && ok "3 workers: the outputs equal the plain run's, byte for byte" || not_ok "3 workers: outputs differ"
[ "$(done_keys $P1 tile)" -eq "$NT" ] && [ "$(done_keys $P1 infer)" -eq "$NT" ] && [ "$(done_keys $P1 store)" -eq "$NT" ] &&
	[ "$(claims $P1)" -eq 0 ] && ok "3 workers: $NT done marks per stage in etcd, no claim left" ||
	not_ok "3 workers: done tile $(done_keys $P1 tile) infer $(done_keys $P1 infer) store $(done_keys $P1 store), claims $(claims $P1)"
[ "$(made tile w?.log)" -eq "$NT" ] && [ "$(made infer w?.log)" -eq "$NT" ] && [ "$(made store w?.log)" -eq "$NT" ] &&
	ok "3 workers: each item made once per stage (tile $(made tile w?.log), infer $(made infer w?.log), store $(made store w?.log))" ||
	not_ok "3 workers: made tile $(made tile w?.log), infer $(made infer w?.log), store $(made store w?.log) of $NT"
n=0
for i in 1 2 3; do
	[ "$(wc -l < run/workers/w$i/stored.ndjson)" -eq "$NT" ] && [ "$(cat run/workers/w$i/done)" = w$i ] &&
		[ "$(json_get run/workers/w$i/run.json '"%s %s %s" % (d["worker"], d["mode"], d["status"])')" = "w$i consensus-worker 0" ] && n=$((n + 1))
done
[ $n -eq 3 ] && [ ! -e run/tiles.ndjson ] && ok "3 workers: each worker's manifests (in workers/ID/) list all $NT items, its record and done mark" ||
	not_ok "3 workers: $n of 3 workers' state complete"
grep -q "^memories_run_exit_status{recipe=\"small\",worker=\"w1\"} 0\$" w1.prom &&
	grep -q "^memories_run_stage_items_total{recipe=\"small\",worker=\"w1\",stage=\"store\",status=\"done\"} $NT\$" w1.prom &&
	ok "--metrics: the worker's own, labelled worker=\"w1\"" || { not_ok "--metrics"; sed 's/^/# /' w1.prom | grep -v '^# #'; }
set +e
mem-run -q --ledger "$U/$P1" --worker w2 --run-dir run small.yaml > rerun.log 2>&1
rc=$?
set -e
[ $rc -eq 0 ] && [ "$(done_keys $P1 store)" -eq "$NT" ] && [ "$(made tile rerun.log)" -eq 0 ] &&
	ok "a finished worker run again: exit 0, nothing made again" || { not_ok "rerun: exit $rc"; sed 's/^/# /' rerun.log; }

# --- kill -9 a worker holding claims, then start it again --------------------------------------
rm -rf out run
P2=r2-$$
for i in 1 2 3; do
	setsid mem-run --ledger "$U/$P2" --ledger-ttl 2 --worker w$i --run-dir run small.yaml > k$i.log 2>&1 &
	echo $! > k$i.pid
done
killed=0 n=0
while [ $n -lt 400 ] && [ $killed -eq 0 ]; do
	pids=$(ps -o pid= -g "$(cat k1.pid)" 2>/dev/null | tr -d ' ' | tr '\n' ' ')
	for o in $($ETCDCTL get --prefix --print-value-only "$P2/claim/" 2>/dev/null); do
		p=$(echo "$o" | cut -d: -f2)
		case " $pids " in *" $p "*)
			kill -9 "-$(cat k1.pid)" 2>/dev/null || true
			killed=1
			echo "$pids" > killed.pids
			break ;;
		esac
	done
	n=$((n + 1))
	sleep 0.05
done
wait "$(cat k1.pid)" 2>/dev/null || true
rm -f k1.pid
[ $killed -eq 1 ] && ok "worker w1 killed with SIGKILL while holding claims" || not_ok "worker w1 never held a claim"
set +e
mem-run --ledger "$U/$P2" --ledger-ttl 2 --worker w1 --run-dir run small.yaml > k1b.log 2>&1
rc1=$?
set -e
rc=0
for i in 2 3; do wait "$(cat k$i.pid)" || rc=$?; rm -f k$i.pid; done
[ $rc1 -eq 0 ] && [ $rc -eq 0 ] && ok "w1 started again under its id (its lock went with it) and the others: exit 0" ||
	{ not_ok "after the kill: w1 again exit $rc1, others $rc"; tail -n 4 k1b.log k2.log k3.log | sed 's/^/# /'; }
same_out out && ok "after the kill: the outputs equal the plain run's" || not_ok "after the kill: outputs differ"
[ "$(done_keys $P2 tile)" -eq "$NT" ] && [ "$(done_keys $P2 infer)" -eq "$NT" ] && [ "$(done_keys $P2 store)" -eq "$NT" ] &&
	[ "$(claims $P2)" -eq 0 ] && ok "after the kill: $NT done marks per stage, no claim left: no item lost" ||
	not_ok "after the kill: done tile $(done_keys $P2 tile) infer $(done_keys $P2 infer) store $(done_keys $P2 store), claims $(claims $P2)"
# once: what the killed processes marked done (their owner ids name their pids), what
# w1's stages that ended before the kill said they made (their processes were gone
# when it came) and what the others say they made add up to one per item
by_killed() {
	$ETCDCTL get --prefix --print-value-only "$P2/done/$1/" | cut -d: -f2 |
		while read -r p; do case " $(cat killed.pids) " in *" $p "*) echo "$p" ;; esac; done | grep -c . || true
}
bad=
for s in tile infer store; do
	k=$(($(by_killed $s) + $(made $s k1.log))) m=$(made $s k1b.log k2.log k3.log)
	[ $((k + m)) -eq "$NT" ] || bad="$bad $s: $k by the killed worker + $m by the others;"
done
[ -z "$bad" ] && ok "after the kill: each item made exactly once per stage" || not_ok "after the kill:$bad of $NT"
[ "$(wc -l < run/workers/w1/stored.ndjson)" -eq "$NT" ] && [ -f run/workers/w1/done ] &&
	ok "w1's manifests list all $NT items after its second start" || not_ok "w1's manifests after the restart"
exit 0
