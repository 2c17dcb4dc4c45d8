#!/bin/sh
# The etcd work ledger against a real 3-member etcd cluster on 127.0.0.1
# (client ports 41379, 42379, 43379; peers 41380...; data on /dev/shm):
# claims, done, fencing and lease expiry through tests/ledger-probe; then
# three workers (deployments/lib/consensus-worker.sh) running a recipe over
# mem-demo's scene, each item done once and the outputs byte for byte the
# standalone run's; then the same with one worker killed with SIGKILL while
# it holds claims: they are taken over after the lease TTL (2 s).
. "$MEM_SRCDIR/tests/lib.sh"

command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1 ||
	skip_all "etcd not installed (Debian etcd-server, etcd-client; scripts/install-deps.sh --test)"
command -v curl >/dev/null 2>&1 || skip_all "curl not installed"
PROBE=${MEM_BUILDDIR:-$MEM_BIN/../..}/tests/ledger-probe
[ -x "$PROBE" ] || skip_all "tests/ledger-probe not built"
for i in 1 2 3; do
	for p in 4${i}379 4${i}380; do
		if curl -s -m 1 --noproxy 127.0.0.1 "http://127.0.0.1:$p/" >/dev/null 2>&1; then
			skip_all "127.0.0.1:$p is taken"
		fi
	done
done

D=/dev/shm/mem-ledger-test.$$
WORKER=$MEM_SRCDIR/deployments/lib/consensus-worker.sh
cleanup() {
	kill_pidfiles "$T" "$D"
	rm -rf "$D" "$T"
}
trap cleanup EXIT INT TERM

member() {
	mkdir -p "$D/m$1"
	etcd --name "m$1" --data-dir "$D/m$1" \
		--listen-client-urls "http://127.0.0.1:4${1}379" --advertise-client-urls "http://127.0.0.1:4${1}379" \
		--listen-peer-urls "http://127.0.0.1:4${1}380" --initial-advertise-peer-urls "http://127.0.0.1:4${1}380" \
		--initial-cluster m1=http://127.0.0.1:41380,m2=http://127.0.0.1:42380,m3=http://127.0.0.1:43380 \
		--initial-cluster-token "mem-ledger-$$" --initial-cluster-state new \
		--heartbeat-interval 50 --election-timeout 500 --logger zap --log-outputs stderr \
		> "$D/m$1.log" 2>&1 &
	echo $! > "$D/m$1.pid"
}
healthy() { curl -s -m 1 --noproxy 127.0.0.1 "http://127.0.0.1:4${1}379/health" 2>/dev/null | grep -q '"health":"true"'; }

plan 21
mkdir -p "$D"
for i in 1 2 3; do member $i; done
t0=$(date +%s)
until healthy 1 && healthy 2 && healthy 3; do
	[ $(($(date +%s) - t0)) -lt 10 ] || { for i in 1 2 3; do sed 's/^/# /' "$D/m$i.log" | tail -5; done; echo "Bail out! etcd not healthy after 10 s"; exit 1; }
	sleep 0.1
done
EPS=127.0.0.1:41379,127.0.0.1:42379,127.0.0.1:43379
U=etcd://$EPS
ETCDCTL="etcdctl --endpoints $EPS"

# --- claims, done, fencing, lease expiry --------------------------------------------------
"$PROBE" -t 2 "$U/p" hold 30 a b > hold.out &
echo $! > hold.pid
n=0; until [ -s hold.out ] && [ "$(wc -l < hold.out)" -eq 2 ]; do n=$((n + 1)); [ $n -lt 100 ] || break; sleep 0.05; done
[ "$(cat hold.out)" = "a won
b won" ] && ok "a first claim wins" || not_ok "a first claim wins: $(cat hold.out)"
out=$("$PROBE" "$U/p" claim a)
[ "$out" = "a taken" ] && ok "a claim held by a live owner is refused" || not_ok "claim held: $out"
holder=$($ETCDCTL get --print-value-only p/claim/a)
case $holder in *:$(cat hold.pid):*) ok "the claim's value names the owner (host:pid:random)" ;; *) not_ok "owner '$holder'" ;; esac
out=$("$PROBE" "$U/p" finish c; "$PROBE" "$U/p" claim c)
[ "$out" = "c won
c done" ] && ok "a done item cannot be claimed again" || not_ok "done item: $out"
kill -9 "$(cat hold.pid)"; rm -f hold.pid
t0=$(date +%s.%N)
out=$("$PROBE" "$U/p" claim a)
[ "$out" = "a taken" ] && ok "a killed owner's claim stays until its lease ends" || not_ok "right after the kill: $out"
while [ "$("$PROBE" "$U/p" claim a)" = "a taken" ]; do sleep 0.1; done
dt=$(echo "$(date +%s.%N) - $t0" | bc)
[ "$(echo "$dt < 5" | bc)" = 1 ] && ok "taken over after the 2 s lease ($dt s)" || not_ok "taken over after $dt s"
# fencing: the lease goes (revoked here) while its owner works; another finishes the item
"$PROBE" -t 2 "$U/p" late 3 f > late.out &
lp=$!
n=0; until [ -s late.out ]; do n=$((n + 1)); [ $n -lt 100 ] || break; sleep 0.05; done
for id in $($ETCDCTL lease list | sed 1d); do $ETCDCTL lease revoke "$id" >/dev/null 2>&1 || true; done
other=$("$PROBE" "$U/p" finish f)
wait $lp || true
[ "$other" = "f won" ] && [ "$(cat late.out)" = "won
lost" ] && ok "done is fenced: an owner whose lease went cannot mark done" ||
	not_ok "fencing: other '$other', late '$(cat late.out)'"
state=$("$PROBE" "$U/p" state f)
case $state in "done "*) ok "the item is done once, by the new owner" ;; *) not_ok "state '$state'" ;; esac
"$PROBE" "$U/p" lead 3 > lead.out &
lp=$!
n=0; until [ -s lead.out ]; do n=$((n + 1)); [ $n -lt 100 ] || break; sleep 0.05; done
out=$("$PROBE" "$U/p" lead)
wait $lp
[ "$(cat lead.out)" = leader ] && [ "$out" = follower ] && ok "one planning leader at a time" ||
	not_ok "election: '$(cat lead.out)' '$out'"

# --- the tools: usage and an unreachable ledger --------------------------------------
check_exit "a bad ledger URL is a usage error" 2 mem-store --ledger http://127.0.0.1:41379/x -o o /dev/null
printf '{"type":"Feature","id":"x","properties":{},"assets":{}}\n' > one.ndjson
set +e
t0=$(date +%s)
mem-store --ledger etcd://127.0.0.1:49379/x --ledger-timeout 2 -o o one.ndjson > /dev/null 2> unreach.err
rc=$?
set -e
[ $rc -eq 75 ] && grep -q "ledger 'etcd://127.0.0.1:49379/x'" unreach.err && [ $(($(date +%s) - t0)) -lt 10 ] &&
	ok "an unreachable ledger: exit 75 after --ledger-timeout, naming the ledger" ||
	not_ok "unreachable ledger: exit $rc: $(cat unreach.err)"

# --- three workers, one recipe ----------------------------------------------------------------
small_recipe
t0=$(date +%s)
small_reference
diag "standalone: $NT tiles, $(wc -l < std.files) files, $(($(date +%s) - t0)) s"

# done_keys PREFIX STAGE: the number of done marks of a stage
done_keys() { $ETCDCTL get --prefix --keys-only "$1/done/$2/" | grep -c . || true; }

for i in 1 2 3; do
	setsid sh "$WORKER" small.yaml run $i "$U/run1-$$" --ledger-ttl 2 > w$i.log 2>&1 &
	echo $! > w$i.pid
done
rc=0 t0=$(date +%s)
for i in 1 2 3; do wait "$(cat w$i.pid)" || rc=$?; rm -f w$i.pid; done
diag "3 workers: $(($(date +%s) - t0)) s"
[ $rc -eq 0 ] && ok "3 workers: all exit 0" || { not_ok "3 workers: exit $rc"; tail -3 w*.log | sed 's/^/# /'; }
same_out out && ok "3 workers: the outputs equal the standalone run's, byte for byte" || not_ok "3 workers: outputs differ"
sum() { sed -n "s/^$1: ledger: \([0-9]*\) items done here.*/\1/p" w1.log w2.log w3.log | awk '{ s += $1 } END { print s + 0 }'; }
[ "$(sum mem-tile)" -eq "$NT" ] && [ "$(sum mem-infer)" -eq "$NT" ] && [ "$(sum mem-store)" -eq "$NT" ] &&
	ok "3 workers: each of the $NT items made once per stage (tile $(sum mem-tile), infer $(sum mem-infer), store $(sum mem-store))" ||
	not_ok "3 workers: made tile $(sum mem-tile), infer $(sum mem-infer), store $(sum mem-store) of $NT"
[ "$(done_keys run1-$$ tile)" -eq "$NT" ] && [ "$(done_keys run1-$$ store)" -eq "$NT" ] &&
	[ "$($ETCDCTL get --prefix --keys-only run1-$$/claim/ | grep -c . || true)" -eq 0 ] &&
	ok "3 workers: $NT done marks per stage in etcd, no claim left" || not_ok "3 workers: done marks $(done_keys run1-$$ tile)/$(done_keys run1-$$ store)"
n=0
for i in 1 2 3; do [ "$(wc -l < run/w$i/stored.ndjson)" -eq "$NT" ] && n=$((n + 1)); done
[ $n -eq 3 ] && ok "3 workers: every worker's manifests list all $NT items" || not_ok "3 workers: $n of 3 manifests complete"
n=0
for i in 1 2 3; do grep -q "another worker plans" w$i.log && n=$((n + 1)); done
sort run/w1/scenes.ndjson > s1 && sort run/w2/scenes.ndjson > s2 && sort run/w3/scenes.ndjson > s3 &&
	cmp -s s1 s2 && cmp -s s1 s3 && [ $n -le 2 ] && ok "3 workers: one planning leader, $n waited for its plan, all read the same scenes" ||
	not_ok "planning: $n waited"

# --- kill -9 a worker while it holds claims ----------------------------------------------------
rm -rf out run
for i in 1 2 3; do
	setsid sh "$WORKER" small.yaml run $i "$U/run2-$$" --ledger-ttl 2 > w$i.log 2>&1 &
	echo $! > w$i.pid
done
# wait until worker 1's tools hold a claim, then kill its whole process group
killed=0 n=0
while [ $n -lt 400 ] && [ $killed -eq 0 ]; do
	pids=$(ps -o pid= -g "$(cat w1.pid)" 2>/dev/null | tr -d ' ' | tr '\n' ' ')
	for o in $($ETCDCTL get --prefix --print-value-only run2-$$/claim/ 2>/dev/null); do
		p=$(echo "$o" | cut -d: -f2)
		# (set -e: the group may be gone already, and the claims done: neither is an error)
		case " $pids " in *" $p "*)
			kill -9 "-$(cat w1.pid)" 2>/dev/null || true
			killed=1
			held=$($ETCDCTL get --prefix --keys-only run2-$$/claim/ | grep -c . || true)
			break ;;
		esac
	done
	n=$((n + 1))
	sleep 0.05
done
[ $killed -eq 1 ] && ok "worker 1 killed with SIGKILL while holding claims" || not_ok "worker 1 never held a claim"
wait "$(cat w1.pid)" 2>/dev/null || true
rm -f w1.pid
rc=0
for i in 2 3; do wait "$(cat w$i.pid)" || rc=$?; rm -f w$i.pid; done
[ $rc -eq 0 ] && ok "the other 2 workers finish, exit 0" || { not_ok "survivors: exit $rc"; tail -3 w2.log w3.log | sed 's/^/# /'; }
same_out out && ok "after the kill: the outputs equal the standalone run's" || not_ok "after the kill: outputs differ"
[ "$(done_keys run2-$$ tile)" -eq "$NT" ] && [ "$(done_keys run2-$$ infer)" -eq "$NT" ] && [ "$(done_keys run2-$$ store)" -eq "$NT" ] &&
	[ "$($ETCDCTL get --prefix --keys-only run2-$$/claim/ | grep -c . || true)" -eq 0 ] &&
	ok "after the kill: every item done once per stage, its claims taken over" ||
	{ not_ok "after the kill: done tile $(done_keys run2-$$ tile) infer $(done_keys run2-$$ infer) store $(done_keys run2-$$ store) of $NT"
	  wc -l run/w*/*.ndjson | sed 's/^/# /'; tail -n 8 w*.log | sed 's/^/# /'; }
diag "worker 1 killed holding claims (${held:-?} claims in etcd at that moment)"
exit 0
