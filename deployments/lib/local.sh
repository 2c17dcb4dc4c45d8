# local.sh - sourced by deploy.sh: the local provider runs for real on this
# host, on 127.0.0.1 only.  State (pids, logs) lives in --state-dir, else
# $MEM_DEPLOY_STATE, else ./.mem-deploy/NAME.
#   standalone  mem-run RECIPE in the current directory
#   consensus   an etcd cluster of the config's node count, member i on
#               client port ${i}2379 and peer port ${i}2380 (both TLS with
#               client certificates), data on /dev/shm, and a worker per node
#   swarmed     scripts/slurm-local.sh and mem-run --slurm RECIPE

local_main() {
	STATE=${STATE:-$PWD/.mem-deploy/$NAME}
	N=$(wc -l < "$TMPD/nodes")
	if [ "$DRY" = 1 ]; then
		local_plan
		audit ok "rendered the local plan"
		return 0
	fi
	mkdir -p "$STATE"
	STATE=$(cd "$STATE" && pwd)
	"local_${PATTERN}_$ACTION"
}

local_plan() {
	echo "#!/bin/sh"
	echo "# memories deployment plan: $PATTERN on local, '$NAME' (state: $STATE)"
	case $PATTERN in
	standalone) echo "mem-run $(q "$RECIPE")" ;;
	consensus) consensus_plan ;;
	swarmed)
		echo "sh $(q "$ROOT/scripts/slurm-local.sh") start $(q "$STATE/slurm")"
		echo "SLURM_CONF=$(q "$STATE/slurm/slurm.conf") mem-run --slurm --tasks $TASKS --run-dir $(q "$STATE/run") $(q "$RECIPE")" ;;
	esac
}

# --- standalone -------------------------------------------------------------
local_standalone_up() {
	if mem-run "$RECIPE"; then audit ok "mem-run $(c recipe)"; else fail "mem-run '$(c recipe)' failed"; fi
}
local_standalone_status() { echo "$PROG: standalone runs in the foreground: nothing runs in the background"; audit ok status; }
local_standalone_destroy() { rm -rf "$STATE"; echo "$PROG: removed $STATE"; audit ok destroyed; }

# --- consensus: etcd on loopback, with TLS, and the workers -------------------------
# Member i listens for clients on https://127.0.0.1:${PFX}${i}${SFX} (default
# ${i}2379) and for peers on https://127.0.0.1:${PFX}${i}${SFX+1} (loopback
# only).  up makes a CA, a member certificate for 127.0.0.1 and a client
# certificate (tls.sh's script, openssl) in $STATE/tls, starts etcd with
# client-certificate auth on both the client and the peer ports (every
# member presents the one member certificate to the others), then one worker per
# node: deployments/lib/consensus-worker.sh, the recipe's stages with
# --ledger etcds://.../mem/NAME/RUN, all sharing $STATE/run.  Before, it
# refuses a port anything accepts connections on; it waits for the members
# MEM_DEPLOY_ETCD_WAIT seconds (default 30) and gives up at once when one
# exits, showing the end of each unhealthy member's log.  destroy returns
# once no member runs.  Ports in the host's ephemeral range (32768-60999 on
# Linux; member 4 and up by default) can be taken a while by outgoing
# connections: a member dialing a stopped peer there may connect to itself,
# and that port stays unbindable for 60 s (TIME-WAIT).
ETCD_DATA=${MEM_DEPLOY_ETCD_DATA:-/dev/shm}
PFX=${MEM_DEPLOY_ETCD_PORT_PREFIX:-}
SFX=${MEM_DEPLOY_ETCD_PORT_SUFFIX:-2379}
cport() { echo "$PFX$1$SFX"; }
pport() { echo "$PFX$1$((SFX + 1))"; }
endpoints() { i=1; s=; while [ $i -le "$N" ]; do printf '%s127.0.0.1:%s' "$s" "$(cport $i)"; s=,; i=$((i + 1)); done; }
etcd_cmd() {
	cl=$(i=1; s=; while [ $i -le "$N" ]; do printf '%sm%d=https://127.0.0.1:%s' "$s" $i "$(pport $i)"; s=,; i=$((i + 1)); done)
	t=$STATE/tls
	printf 'etcd --name m%d --data-dir %s/mem-deploy-%s/m%d --listen-client-urls https://127.0.0.1:%s --advertise-client-urls https://127.0.0.1:%s --client-cert-auth --trusted-ca-file %s/ca.pem --cert-file %s/server.pem --key-file %s/server-key.pem --listen-peer-urls https://127.0.0.1:%s --initial-advertise-peer-urls https://127.0.0.1:%s --peer-client-cert-auth --peer-trusted-ca-file %s/ca.pem --peer-cert-file %s/server.pem --peer-key-file %s/server-key.pem --peer-cert-allowed-cn %s-etcd-member --initial-cluster %s --initial-cluster-token %s --initial-cluster-state new --heartbeat-interval 50 --election-timeout 500 --logger zap --log-outputs stderr' \
		"$1" "$ETCD_DATA" "$NAME" "$1" "$(cport "$1")" "$(cport "$1")" "$t" "$t" "$t" "$(pport "$1")" "$(pport "$1")" "$t" "$t" "$t" "$NAME" "$cl" "$NAME"
}
TLSC() { echo "--cacert $STATE/tls/ca.pem --cert $STATE/tls/client.pem --key $STATE/tls/client-key.pem"; }
# port_taken PORT: something accepts connections on 127.0.0.1:PORT.  Only
# curl's exit 7 (could not connect) means free: an etcd port that takes only
# TLS with a client certificate answers neither plain http nor https without
# one (exit 52, 35, 56), yet the member started there would die at once
# (bind: address already in use)
port_taken() { _rc=0; curl -s -m 1 --noproxy 127.0.0.1 "http://127.0.0.1:$1/" >/dev/null 2>&1 || _rc=$?; [ "$_rc" -ne 7 ]; }
# port_holder PORT: " (etcd, pid 123)" when ss(8) can tell who listens there
port_holder() { ss -Hltnp "( sport = :$1 )" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/ (\1, pid \2)/p' | head -n 1; }
# alive PID: the process runs (a zombie does not)
alive() { kill -0 "$1" 2>/dev/null || return 1; case $(ps -o stat= -p "$1" 2>/dev/null) in Z*) return 1 ;; esac; }
# wait_gone TENTHS PID...: until none of PID... runs, TENTHS tenths of a second at most
wait_gone() {
	_n=$1; shift
	while [ "$_n" -gt 0 ]; do
		_l=; for _p in "$@"; do alive "$_p" && _l=1; done
		[ -n "$_l" ] || return 0
		sleep 0.1; _n=$((_n - 1))
	done
	return 1
}
# ephemeral_note PORT...: a hint on stderr for the ports that lie in this
# host's ephemeral range: an outgoing connection may take such a port (a
# member dialing a stopped peer's port can connect to itself, and the port
# then stays in TIME-WAIT, unbindable, for 60 s)
ephemeral_note() {
	read -r _lo _hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || return 0
	for _p in "$@"; do
		[ "$_p" -ge "$_lo" ] && [ "$_p" -le "$_hi" ] || continue
		echo "$PROG: port $_p lies in this host's ephemeral port range ($_lo-$_hi), where outgoing connections take ports too: move the ports below $_lo (MEM_DEPLOY_ETCD_PORT_PREFIX, MEM_DEPLOY_ETCD_PORT_SUFFIX) or wait a minute" >&2
	done
}
# member_log_tail I: the last lines of member I's log, indented, without zap's stack traces
member_log_tail() { tail -n "${2:-5}" "$STATE/m$1.log" 2>/dev/null | sed 's/,"stacktrace":.*}$/}/; s/^/    /' >&2 || true; }
# shellcheck disable=SC2046
healthy() { curl -s -m 1 --noproxy 127.0.0.1 $(TLSC) "https://127.0.0.1:$(cport "$1")/health" 2>/dev/null | grep -q '"health":"true"'; }
worker_cmd() {
	printf 'sh %s %s %s/run %d %s --ledger-cacert %s/tls/ca.pem --ledger-cert %s/tls/client.pem --ledger-key %s/tls/client-key.pem %s' \
		"$(q "$LIB/consensus-worker.sh")" "$(q "$RECIPE")" "$(q "$STATE")" "$1" "$2" "$(q "$STATE")" "$(q "$STATE")" "$(q "$STATE")" "${MEM_DEPLOY_WORKER_OPTIONS:-}"
}
consensus_plan() {
	echo "# certificates: a CA, a member certificate for 127.0.0.1 (clients and peers), a client certificate"
	echo "cat > $(q "$STATE/tls.sh") <<'MEM_EOF'"
	local_tls_script
	echo "MEM_EOF"
	echo "sh $(q "$STATE/tls.sh") $(q "$STATE/tls")"
	i=1; while [ $i -le "$N" ]; do etcd_cmd $i; echo " &"; i=$((i + 1)); done
	i=1; while [ $i -le "$N" ]; do worker_cmd $i "etcds://$(endpoints)/mem/$NAME/RUN"; echo " &"; i=$((i + 1)); done
}
# local_tls_script: the certificates' script (tls.sh): every member uses the
# one member certificate "server", for 127.0.0.1
local_tls_script() { tls_script "$NAME" 30 server=IP:127.0.0.1,DNS:localhost; }

local_consensus_up() {
	command -v etcd >/dev/null 2>&1 || fail "'etcd' not found: install the Debian packages etcd-server and etcd-client"
	command -v openssl >/dev/null 2>&1 || fail "'openssl' not found: it makes the cluster's certificates"
	[ "$N" -le 9 ] || refuse nodes "the local provider runs at most 9 etcd members"
	isint "$(pport "$N")" && [ "$(pport "$N")" -le 65535 ] ||
		refuse nodes "member m$N's peer port would be $(pport "$N"): set MEM_DEPLOY_ETCD_PORT_PREFIX and MEM_DEPLOY_ETCD_PORT_SUFFIX so that every port is below 65536"
	wait_s=${MEM_DEPLOY_ETCD_WAIT:-30}
	isint "$wait_s" && [ "$wait_s" -gt 0 ] || { echo "$PROG: MEM_DEPLOY_ETCD_WAIT: '$wait_s' is not a whole number of seconds above 0" >&2; audit refused "MEM_DEPLOY_ETCD_WAIT '$wait_s'"; exit 2; }
	i=1
	while [ $i -le "$N" ]; do
		if [ -f "$STATE/m$i.pid" ] && kill -0 "$(cat "$STATE/m$i.pid")" 2>/dev/null; then
			fail "member m$i already runs (pid $(cat "$STATE/m$i.pid")): destroy first"
		fi
		for p in "$(cport $i)" "$(pport $i)"; do
			port_taken "$p" && fail "port 127.0.0.1:$p is taken$(port_holder "$p"): stop what listens there (an etcd of an earlier cluster?) or move the ports (MEM_DEPLOY_ETCD_PORT_PREFIX)"
		done
		i=$((i + 1))
	done
	# no member runs (checked above): the certificates and data of an earlier up go
	rm -rf "$STATE/tls" "$ETCD_DATA/mem-deploy-$NAME"
	local_tls_script > "$STATE/tls.sh"
	sh "$STATE/tls.sh" "$STATE/tls" > "$STATE/tls.log" 2>&1 || fail "openssl failed making the certificates (see $STATE/tls.log)"
	audit ok "TLS: CA, server and client certificates in $STATE/tls"
	i=1
	while [ $i -le "$N" ]; do
		mkdir -p "$ETCD_DATA/mem-deploy-$NAME/m$i"
		# shellcheck disable=SC2046
		nohup $(etcd_cmd $i) > "$STATE/m$i.log" 2>&1 < /dev/null &
		echo $! > "$STATE/m$i.pid"
		i=$((i + 1))
	done
	# until every member says healthy, for MEM_DEPLOY_ETCD_WAIT seconds at
	# most; a member that exited (a port taken after all, a bad flag) ends
	# the wait at once
	t0=$(date +%s); gone=
	while :; do
		up=0; bad=; i=1
		while [ $i -le "$N" ]; do
			if healthy $i; then up=$((up + 1)); else bad="$bad $i"; alive "$(cat "$STATE/m$i.pid")" || gone="$gone $i"; fi
			i=$((i + 1))
		done
		[ "$up" -lt "$N" ] && [ -z "$gone" ] && [ $(($(date +%s) - t0)) -lt "$wait_s" ] || break
		sleep 0.1
	done
	if [ "$up" -lt "$N" ]; then
		for i in $bad; do
			case " $gone " in
			*" $i "*) rc=0; wait "$(cat "$STATE/m$i.pid")" 2>/dev/null || rc=$?; st="exited (status $rc)" ;;
			*) st="runs, not healthy" ;;
			esac
			echo "$PROG: etcd member m$i $st; the end of $STATE/m$i.log:" >&2
			member_log_tail "$i"
			if grep -q 'address already in use' "$STATE/m$i.log" 2>/dev/null; then
				ephemeral_note "$(cport "$i")" "$(pport "$i")"
			fi
		done
		local_consensus_destroy >/dev/null
		if [ -n "$gone" ]; then
			fail "etcd: member(s)$(echo "$gone" | sed 's/ / m/g') exited after $(($(date +%s) - t0)) s ($up of $N healthy; logs above)"
		fi
		fail "etcd: $up of $N members healthy after $wait_s s (MEM_DEPLOY_ETCD_WAIT; logs above)"
	fi
	echo "$PROG: etcd: $N members healthy on $(endpoints) (TLS, client certificates)"
	audit ok "etcd: $N members healthy"
	# the workers: one per node, a fresh ledger prefix per up
	run=$(date -u +%Y%m%dT%H%M%SZ)-$$
	echo "etcds://$(endpoints)/mem/$NAME/$run" > "$STATE/ledger"
	mkdir -p "$STATE/run"
	i=1
	while [ $i -le "$N" ]; do
		rm -f "$STATE/run/w$i/done"
		# shellcheck disable=SC2046
		nohup setsid sh -c "$(worker_cmd $i "$(cat "$STATE/ledger")")" > "$STATE/w$i.log" 2>&1 < /dev/null &
		echo $! > "$STATE/w$i.pid"
		i=$((i + 1))
	done
	echo "$PROG: $N workers started on $(c recipe) (ledger $(cat "$STATE/ledger"); logs $STATE/w*.log)"
	audit ok "$N workers started, ledger $(cat "$STATE/ledger")"
}
local_consensus_status() {
	up=0; i=1
	while [ $i -le "$N" ]; do
		if healthy $i; then echo "m$i 127.0.0.1:$(cport $i) healthy"; up=$((up + 1)); else echo "m$i 127.0.0.1:$(cport $i) down"; fi
		i=$((i + 1))
	done
	i=1
	while [ -f "$STATE/w$i.pid" ]; do
		if [ -f "$STATE/run/w$i/done" ]; then st=finished
		elif kill -0 "$(cat "$STATE/w$i.pid")" 2>/dev/null; then st=running
		else st="exited ($(tail -n 1 "$STATE/w$i.log" 2>/dev/null))"; fi
		echo "worker w$i: $st"
		i=$((i + 1))
	done
	if [ -f "$STATE/ledger" ] && [ "$up" -gt $((N / 2)) ] && command -v etcdctl >/dev/null 2>&1; then
		pre=$(sed 's#^etcds://[^/]*/##' "$STATE/ledger")
		for kind in claim done; do
			for stage in tile infer store; do
				# shellcheck disable=SC2046
				n=$(ETCDCTL_API=3 etcdctl --endpoints "$(endpoints)" --cacert "$STATE/tls/ca.pem" --cert "$STATE/tls/client.pem" --key "$STATE/tls/client-key.pem" \
					get --prefix --keys-only "$pre/$kind/$stage/" 2>/dev/null | grep -c . || true)
				printf 'ledger %s %s: %s\n' "$kind" "$stage" "$n"
			done
		done
	fi
	audit ok "etcd: $up of $N members healthy"
	[ "$up" -gt $((N / 2)) ] || return 1
}
local_consensus_destroy() {
	for p in "$STATE"/w*.pid; do
		[ -f "$p" ] || continue
		kill -9 "-$(cat "$p")" 2>/dev/null || kill -9 "$(cat "$p")" 2>/dev/null || true
		rm -f "$p"
	done
	# every member asked to stop at once, then 5 s for all; what remains is
	# killed, and waited for: once destroy returns, no member holds a port
	pids=
	for p in "$STATE"/m*.pid; do
		[ -f "$p" ] || continue
		pid=$(cat "$p")
		kill "$pid" 2>/dev/null && pids="$pids $pid"
		rm -f "$p"
	done
	# shellcheck disable=SC2086
	if ! wait_gone 50 $pids; then
		for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
		# shellcheck disable=SC2086
		wait_gone 50 $pids || echo "$PROG: etcd member(s) still running after SIGKILL:$pids" >&2
	fi
	# and reaped: ours (a failed up's) by wait, the others by init (2 s at most)
	for pid in $pids; do alive "$pid" || wait "$pid" 2>/dev/null || true; done
	t=0; while [ $t -lt 20 ]; do
		left=; for pid in $pids; do kill -0 "$pid" 2>/dev/null && left=1; done
		[ -n "$left" ] || break
		sleep 0.1; t=$((t + 1))
	done
	rm -rf "$ETCD_DATA/mem-deploy-$NAME" "$STATE/tls"
	echo "$PROG: workers and etcd members stopped, data and certificates removed"
	audit ok "etcd stopped"
}

# --- swarmed: one-host Slurm ---------------------------------------------------
# up starts munged, slurmctld and slurmd under STATE/slurm (scripts/slurm-local.sh;
# ports $MEM_SLURM_PORT and the next), submits the recipe as an array job and
# a merge job (mem-run --slurm, run directory STATE/run) and waits for both
# ($MEM_DEPLOY_WAIT seconds at most, default 3600); the outputs go where the
# recipe says, from the current directory, as a standalone run's do.
swarmed_job() { sed -n "s/.*\"$1\": *\"\([0-9]*\)\".*/\1/p" "$STATE/run/slurm/plan.json" 2>/dev/null; }
swarmed_queued() { squeue -h -j "$1" 2>/dev/null | grep -q .; }
local_swarmed_up() {
	if [ -f "$STATE/slurm/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurm/slurmctld.pid")" 2>/dev/null; then
		fail "slurmctld already runs (pid $(cat "$STATE/slurm/slurmctld.pid")): destroy first"
	fi
	sh "$ROOT/scripts/slurm-local.sh" start "$STATE/slurm" > "$STATE/slurm-start.log" 2>&1 ||
		fail "slurm-local.sh start failed: $(tail -3 "$STATE/slurm-start.log")"
	SLURM_CONF=$STATE/slurm/slurm.conf; export SLURM_CONF
	rm -rf "$STATE/run"
	mem-run --slurm --tasks "$TASKS" --run-dir "$STATE/run" "$RECIPE" || fail "mem-run --slurm '$(c recipe)' failed"
	arr=$(swarmed_job array_job); merge=$(swarmed_job merge_job)
	[ -n "$arr" ] && [ -n "$merge" ] || fail "no job ids in $STATE/run/slurm/plan.json"
	audit ok "submitted array job $arr ($TASKS tasks) and merge job $merge"
	wait_s=${MEM_DEPLOY_WAIT:-3600}; t=0
	while { swarmed_queued "$arr" || swarmed_queued "$merge"; } && [ $t -lt $((wait_s * 5)) ]; do sleep 0.2; t=$((t + 1)); done
	swarmed_queued "$merge" && fail "jobs $arr and $merge still queued after $wait_s s (status, then destroy)"
	st=$(sed -n 's/^  "status": *\([0-9]*\).*/\1/p' "$STATE/run/run.json" 2>/dev/null | head -1)
	if [ -s "$STATE/run/stored.ndjson" ] && [ "$st" = 0 ]; then
		echo "$PROG: array job $arr ($TASKS tasks) and merge job $merge done: $(wc -l < "$STATE/run/stored.ndjson") item(s) stored"
		audit ok "array job $arr and merge job $merge done"
	else
		fail "the Slurm run did not finish: see $STATE/run/slurm/*.log (mem-run --slurm --resubmit-failed $STATE/run)"
	fi
}
local_swarmed_status() {
	SLURM_CONF=$STATE/slurm/slurm.conf; export SLURM_CONF
	if ! [ -f "$STATE/slurm/slurmctld.pid" ] || ! kill -0 "$(cat "$STATE/slurm/slurmctld.pid")" 2>/dev/null; then
		echo "slurm: not running"; audit ok "status: not running"; return 1
	fi
	echo "slurm: running ($SLURM_CONF)"
	sinfo -h -o 'node %n %T' 2>/dev/null || true
	squeue -h -o 'job %i %j %T' 2>/dev/null || true
	n=$(ls "$STATE"/run/shards/*/done 2>/dev/null | wc -l)
	echo "tasks done: $n of $TASKS"
	audit ok "status: $n of $TASKS tasks done"
}
local_swarmed_destroy() {
	sh "$ROOT/scripts/slurm-local.sh" stop "$STATE/slurm" || true
	rm -rf "$STATE"
	echo "$PROG: slurm stopped, $STATE removed"
	audit ok "slurm stopped"
}
