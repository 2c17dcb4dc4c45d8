#!/bin/sh
# deploy.sh - deployments/*/*/deploy.sh: the three examples of the original
# design validate and render their provider commands and cloud-init; broken
# variants are refused naming the key and the rule; a model API key never
# appears in a plan, a message or the audit log; the audit log has one JSON
# line per action; local standalone runs the demo recipe; local consensus
# starts and stops 3 etcd members on 127.0.0.1.  Contacts no host but
# 127.0.0.1 and stops every service it starts.
. "$MEM_SRCDIR/tests/lib.sh"

D="$MEM_SRCDIR/deployments"
EX="$D/examples"
AUDIT="$T/audit.jsonl"
export MEM_DEPLOY_AUDIT_LOG="$AUDIT"
FAKE=sk-FAKE-do-not-print-7d3c91
unset MEM_MODEL_API_KEY
deploy() { p=$1; shift; sh "$D/$p/deploy.sh" "$@"; }

# --- the three examples validate and render ---------------------------------
for e in standalone/gcp:standalone-gcp:gcloud consensus/aws:consensus-aws:aws swarmed/azure:swarmed-azure:az; do
	pp=${e%%:*}; f=${e#*:}; cli=${f#*:}; f=${f%%:*}
	check "$f validates" deploy "$pp" --config "$EX/$f.yaml" validate
	if deploy "$pp" --config "$EX/$f.yaml" --dry-run > "$f.plan" 2> "$f.err"; then ok "$f renders"; else not_ok "$f renders"; sed 's/^/# /' "$f.err"; fi
	if grep -q "^$cli " "$f.plan" && grep -q '^#cloud-config' "$f.plan"; then ok "$f: $cli commands and cloud-init"; else not_ok "$f: $cli commands and cloud-init"; fi
	# the plan is a shell script that parses
	check "$f: the plan is valid sh" sh -n "$f.plan"
done
# exact commands (golden lines)
grep -qx "gcloud compute instances create memories-standalone --zone=us-west1-a --machine-type=n1-standard-4 --accelerator=type=nvidia-tesla-t4,count=1 --maintenance-policy=TERMINATE --boot-disk-size=100GB --boot-disk-type=pd-ssd --image-family=debian-12 --image-project=debian-cloud --network=memories-vpc --subnet=memories-subnet --tags=memories-standalone --labels=memories-deployment=memories-standalone,memories-role=standalone --metadata-from-file=user-data=cloud-init-standalone.yaml" standalone-gcp.plan &&
	ok "standalone-gcp: the gcloud instance command" || not_ok "standalone-gcp: the gcloud instance command"
[ "$(grep -c '^aws ec2 run-instances .*--instance-type t3.medium' consensus-aws.plan)" = 3 ] &&
	grep -q 'AvailabilityZone=us-west-2c' consensus-aws.plan && grep -q 'etcd-server' consensus-aws.plan &&
	ok "consensus-aws: 3 etcd nodes across the zones" || not_ok "consensus-aws: 3 etcd nodes across the zones"
[ "$(grep -c '^az vm create .*memories-role=manager' swarmed-azure.plan)" = 3 ] &&
	[ "$(grep -c '^az vm create .*--size Standard_B2s .*memories-role=worker' swarmed-azure.plan)" = 5 ] &&
	ok "swarmed-azure: 3 managers and 5 workers" || not_ok "swarmed-azure: 3 managers and 5 workers"
# the recipe travels in the cloud-init, exactly
b64=$(base64 -w0 < "$MEM_SRCDIR/recipes/demo.yaml")
grep -q "content: $b64\$" standalone-gcp.plan && ok "cloud-init carries the recipe" || not_ok "cloud-init carries the recipe"
if command -v cloud-init >/dev/null 2>&1; then
	sed -n "/^cat > cloud-init-standalone.yaml/,/^MEM_EOF/p" standalone-gcp.plan | sed '1d;$d' > ci.yaml
	check "cloud-init schema accepts the user data" cloud-init schema -c ci.yaml
else
	skip "cloud-init not installed: schema check"
fi

# --- broken variants are refused, naming the key and the rule -------------------
# refused NAME PATTERN/PROVIDER FILE EXPECTED-MESSAGE
refused() {
	set +e
	msg=$(deploy "$2" --config "$3" validate 2>&1 >/dev/null)
	rc=$?
	set -e
	case $rc:$msg in
	2:*"$4"*) ok "refused: $1" ;;
	*) not_ok "refused: $1 (exit $rc)"; diag "got: $msg"; diag "want: $4" ;;
	esac
}
cp "$EX"/*.yaml .
sed 's|^recipe: .*|recipe: '"$MEM_SRCDIR"'/recipes/demo.yaml|' standalone-gcp.yaml > sg.yaml
sed 's|^recipe: .*|recipe: '"$MEM_SRCDIR"'/recipes/demo.yaml|' consensus-aws.yaml > ca.yaml
sed 's|^recipe: .*|recipe: '"$MEM_SRCDIR"'/recipes/demo.yaml|' swarmed-azure.yaml > sa.yaml
sed 's/quorum_size: 2/quorum_size: 1/' ca.yaml > b1.yaml
refused "quorum not a majority" consensus/aws b1.yaml "consensus.quorum_size: 1 is not a majority of the 3 nodes (need at least 2)"
sed 's/n1-standard-4/n2-standard-4/; s/15GB/16GB/' sg.yaml > b2.yaml
refused "GPU on a machine type without GPUs (the design's n2-standard-4)" standalone/gcp b2.yaml "hardware.gpu.count: 1 GPU(s) on machine type 'n2-standard-4', which takes no GPUs"
sed 's/provider: gcp/provider: digitalocean/' sg.yaml > b3.yaml
refused "unknown provider" standalone/gcp b3.yaml "deployment.provider: unknown provider 'digitalocean' (local, aws, azure or gcp)"
grep -v '^recipe:' sg.yaml > b4.yaml
refused "missing recipe" standalone/gcp b4.yaml "recipe: required"
sed 's/t3.medium/t3.gigantic/' ca.yaml > b5.yaml
refused "unknown machine type" consensus/aws b5.yaml "nodes.0.instance_type: unknown aws machine type 't3.gigantic'"
sed 's/worker_nodes: 5/worker_nodes: 9/' sa.yaml > b6.yaml
refused "swarm larger than max_nodes" swarmed/azure b6.yaml "swarm.worker_nodes: 3 managers + 9 workers is more than swarm.max_nodes (10)"
sed 's/zone: us-west1-a/zone: europe-west1-b/' sg.yaml > b7.yaml
refused "zone outside the region" standalone/gcp b7.yaml "deployment.zone: 'europe-west1-b' is not a zone of region 'us-west1'"
refused "config for another pattern" consensus/gcp sg.yaml "deployment.type: 'standalone' but this is deployments/consensus/"
printf 'deployment: {type: standalone}\n' > b8.yaml
refused "YAML outside the subset" standalone/gcp b8.yaml "line 1: anchors, aliases, tags, block scalars and flow mappings are not supported"

# --- secrets ---------------------------------------------------------------------
sed "s/MODEL_NAME: deepseek-coder-small/MODEL_NAME: deepseek-coder-small\n    DEEPSEEK_API_KEY: $FAKE/" sg.yaml > b9.yaml
refused "an inline API key" standalone/gcp b9.yaml "software.environment.DEEPSEEK_API_KEY: secrets are not taken inline"
printf '%s\n' "$FAKE" > key.txt
chmod 600 key.txt
sed 's|^software:|software:\n  model:\n    api_key_file: key.txt|' sg.yaml > s1.yaml
MEM_MODEL_API_KEY=$FAKE deploy standalone/gcp --config sg.yaml --dry-run > s-env.out 2>&1 || true
deploy standalone/gcp --config s1.yaml --dry-run > s-file.out 2>&1 || true
deploy standalone/gcp --config b9.yaml --dry-run >> s-file.out 2>&1 || true
grep -q 'printf %s "$MEM_MODEL_API_KEY" | gcloud secrets create' s-env.out &&
	ok "key from the environment: the plan names the variable" || not_ok "key from the environment: the plan names the variable"
grep -q "gcloud secrets create .*--data-file='$T/key.txt'" s-file.out &&
	ok "key from a file: the plan names the file" || not_ok "key from a file: the plan names the file"
if grep -q "$FAKE" s-env.out s-file.out "$AUDIT"; then not_ok "the key never appears in plans, messages or the audit log"; else ok "the key never appears in plans, messages or the audit log"; fi

# --- the audit log ---------------------------------------------------------------
if /usr/bin/python3 - "$AUDIT" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 15, len(lines)
for l in lines:
    d = json.loads(l)
    for k in ("time", "user", "host", "action", "pattern", "provider", "config", "result"):
        assert k in d, (k, l)
assert any(d["result"] == "refused" and "quorum_size" in d["message"] for d in map(json.loads, lines))
assert any(d["result"] == "ok" and d["dry_run"] for d in map(json.loads, lines))
PY
then ok "audit log: one JSON line per action with who, what, when, result"; else not_ok "audit log"; fi

# --- local standalone runs the demo recipe ------------------------------------------
mem-demo -o demo > /dev/null
cat > local.yaml <<EOF
deployment:
  type: standalone
  provider: local
recipe: $MEM_SRCDIR/recipes/demo.yaml
EOF
if deploy standalone/local --config local.yaml > run.log 2>&1 && find out -name '*.tif' | grep -q .; then
	ok "local standalone runs the demo recipe"
else
	not_ok "local standalone runs the demo recipe"; tail -20 run.log | sed 's/^/# /'
fi

# --- local consensus: 3 etcd members on 127.0.0.1 -------------------------------------
cat > etcd.yaml <<EOF
deployment:
  type: consensus
  provider: local
  name: memtest-$$
consensus:
  min_nodes: 3
  max_nodes: 3
  quorum_size: 2
recipe: $MEM_SRCDIR/recipes/demo.yaml
EOF
if ! command -v etcd >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
	skip "etcd not installed (Debian etcd-server, etcd-client; scripts/install-deps.sh --test): local consensus"
elif curl -s -m 1 --noproxy 127.0.0.1 http://127.0.0.1:12379/health >/dev/null 2>&1; then
	skip "127.0.0.1:12379 is taken by another etcd: local consensus"
else
	trap 'deploy consensus/local --config "$T/etcd.yaml" --state-dir "$T/st" destroy >/dev/null 2>&1 || true; rm -rf "$T"' EXIT INT TERM
	check "local consensus: up starts 3 healthy etcd members" deploy consensus/local --config etcd.yaml --state-dir st up
	deploy consensus/local --config etcd.yaml --state-dir st status > status.out 2>&1 || true
	if [ "$(grep -c healthy status.out)" = 3 ]; then ok "local consensus: status shows 3 healthy members"; else not_ok "local consensus: status"; sed 's/^/# /' status.out; fi
	if command -v etcdctl >/dev/null 2>&1; then
		tls="--cacert st/tls/ca.pem --cert st/tls/client.pem --key st/tls/client-key.pem"
		# shellcheck disable=SC2086
		if etcdctl $tls --endpoints 127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379 put mem-deploy-test yes > /dev/null 2>&1 &&
			[ "$(etcdctl $tls --endpoints 127.0.0.1:32379 get --print-value-only mem-deploy-test 2>/dev/null)" = yes ]; then
			ok "local consensus: a put on the cluster reads back from another member"
		else
			not_ok "local consensus: put/get"
		fi
	else
		skip "no etcdctl: put/get on the cluster"
	fi
	pids=$(cat st/m*.pid)
	check "local consensus: destroy stops them" deploy consensus/local --config etcd.yaml --state-dir st destroy
	alive=""
	for p in $pids; do if kill -0 "$p" 2>/dev/null; then alive="$alive $p"; fi; done
	if [ -z "$alive" ] && [ ! -d "/dev/shm/mem-deploy-memtest-$$" ]; then ok "local consensus: no member left, data removed"; else not_ok "local consensus: left running:$alive"; fi
fi

done_testing
