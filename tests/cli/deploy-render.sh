#!/bin/sh
# deploy-render.sh - what deployments/*/{aws,azure,gcp}/deploy.sh render, offline:
#   - golden files: the plan and destroy commands of the example
#     configurations, and their audit lines, byte for byte (only the time,
#     user, host and pid of the audit lines are masked);
#   - every rendered cloud-init passes `cloud-init schema` (Debian's
#     cloud-init), and the scripts it carries pass `sh -n`;
#   - the Kubernetes Jobs pass kubernetes-models' schemas
#     (deployments/lib/k8s-validate.mjs) and the Swarm stack passes
#     docker-compose's (or docker's) offline check; each validator is shown
#     to refuse a broken file, so that a check that cannot fail is noticed;
#   - the commands the Kubernetes Indexed Job and the Swarm stack carry,
#     run here in the same order (planning, task I of N, merge) with the
#     paths moved into the test directory, give the standalone run's outputs.
# Regenerate the golden files after a reviewed change with
#   MEM_GOLDEN_UPDATE=1 make check TESTS=tests/cli/deploy-render.sh
# Contacts no host: every plan is a --dry-run.
. "$MEM_SRCDIR/tests/lib.sh"

D="$MEM_SRCDIR/deployments"
EX="$D/examples"
G="$MEM_SRCDIR/tests/golden/deploy"
TOOLS=${MEM_TOOLS:-/opt/memories-tools}
unset MEM_MODEL_API_KEY MEM_DEPLOY_AUDIT_LOG
EXAMPLES="standalone-gcp:standalone/gcp consensus-aws:consensus/aws swarmed-azure:swarmed/azure
swarmed-gcp-kubernetes:swarmed/gcp swarmed-aws-swarm:swarmed/aws"

# files PLAN: the files a plan writes; extract PLAN FILE: one of them
files() { sed -n "s/^cat > \(.*\) <<'MEM_EOF'\$/\1/p" "$1"; }
extract() { awk -v f="$2" '$0 == "cat > " f " <<\047MEM_EOF\047" { on = 1; next } on && $0 == "MEM_EOF" { on = 0 } on' "$1"; }
mask() { sed -E 's/"time":"[^"]*"/"time":"TIME"/; s/"user":"[^"]*"/"user":"USER"/; s/"host":"[^"]*"/"host":"HOST"/; s/"pid":[0-9]+/"pid":0/'; }

# --- golden files ------------------------------------------------------------
for e in $EXAMPLES; do
	n=${e%%:*}; pp=${e#*:}
	rm -f "$n.audit"
	: > "$n.golden"
	for a in plan destroy; do
		echo "### $a" >> "$n.golden"
		(cd "$EX" && sh "../$pp/deploy.sh" --config "$n.yaml" --audit-log "$T/$n.audit" --dry-run $a) >> "$n.golden" 2>> "$n.err" ||
			echo "### exit status $?" >> "$n.golden"
	done
	echo "### audit" >> "$n.golden"
	mask < "$n.audit" >> "$n.golden"
	sed -n '/^### plan/,/^### destroy/p' "$n.golden" | sed '1d;$d' > "$n.plan"
	if [ "${MEM_GOLDEN_UPDATE:-0}" = 1 ]; then
		mkdir -p "$G" && cp "$n.golden" "$G/$n.golden"
		skip "$n: golden file written to tests/golden/deploy/$n.golden (MEM_GOLDEN_UPDATE=1)"
	elif cmp -s "$G/$n.golden" "$n.golden"; then
		ok "$n: plan and destroy equal tests/golden/deploy/$n.golden ($(grep -cE '^(gcloud|aws|az|kubectl) ' "$n.golden") provider commands)"
	else
		not_ok "$n: the rendering differs from tests/golden/deploy/$n.golden"
		diff "$G/$n.golden" "$n.golden" 2>&1 | head -30 | sed 's/^/# /'
	fi
	check "$n: the plan is valid sh" sh -n "$n.plan"
done

# --- cloud-init ----------------------------------------------------------------
# write_files entries in base64, decoded: PATH<TAB>CONTENT-FILE
decode_files() { # CLOUD-INIT OUTDIR
	/usr/bin/python3 - "$1" "$2" <<'PY'
import base64, os, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for i, f in enumerate(d.get("write_files", [])):
    if f.get("encoding") == "b64":
        out = os.path.join(sys.argv[2], "%d%s" % (i, os.path.basename(f["path"])))
        open(out, "wb").write(base64.b64decode(f["content"]))
        print(f["path"] + "\t" + out)
PY
}
if command -v cloud-init >/dev/null 2>&1 && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
	nci=0; bad=""
	for e in $EXAMPLES; do
		n=${e%%:*}
		for f in $(files "$n.plan" | grep '^cloud-init-'); do
			extract "$n.plan" "$f" > "$n.$f"
			nci=$((nci + 1))
			cloud-init schema --config-file "$n.$f" > ci.out 2>&1 || { bad="$bad $n.$f"; sed 's/^/# /' ci.out; }
			mkdir -p "wf.$n.$f"
			decode_files "$n.$f" "wf.$n.$f" > "wf.$n.$f.list"
			while IFS="$(printf '\t')" read -r path file; do
				case $path in *.sh|*/sbatch) sh -n "$file" 2> sh.err || { bad="$bad $n.$f:$path"; sed 's/^/# /' sh.err; } ;; esac
			done < "wf.$n.$f.list"
		done
	done
	[ -z "$bad" ] && [ "$nci" -eq 6 ] && ok "cloud-init schema accepts all $nci rendered user data files; their scripts pass sh -n" ||
		not_ok "cloud-init user data refused:$bad ($nci files)"
	# the recipe travels exactly; the stack on the manager is the plan's
	grep -q "/etc/memories/recipe.yaml" wf.swarmed-azure.cloud-init-worker.yaml.list &&
		cmp -s "$(awk -F'\t' '$1 == "/etc/memories/recipe.yaml" { print $2 }' wf.swarmed-azure.cloud-init-worker.yaml.list)" "$MEM_SRCDIR/recipes/demo.yaml" &&
		ok "the user data carries the recipe byte for byte" || not_ok "the recipe in the user data"
	extract swarmed-aws-swarm.plan stack.yml > stack.yml
	cmp -s stack.yml "$(awk -F'\t' '$1 == "/etc/memories/stack.yml" { print $2 }' wf.swarmed-aws-swarm.cloud-init-manager.yaml.list)" &&
		ok "the swarm manager's user data carries the plan's stack.yml" || not_ok "stack.yml on the manager differs"
	# Slurm: the controllers and the workers' CPUs and memory from machines.tsv
	sc=$(awk -F'\t' '$1 == "/etc/slurm/slurm.conf" { print $2 }' wf.swarmed-azure.cloud-init-worker.yaml.list)
	[ "$(grep -c '^SlurmctldHost=memories-swarmed-manager[0-2]$' "$sc")" = 3 ] &&
		grep -qx 'NodeName=memories-swarmed-worker\[0-4\] CPUs=2 RealMemory=3600 State=UNKNOWN' "$sc" &&
		ok "slurm.conf: 3 controllers, 5 workers of Standard_B2s (2 CPUs, 4 GB)" || { not_ok "slurm.conf"; sed 's/^/# /' "$sc"; }
	# and the validator refuses a broken one
	sed 's/^packages:$/packages: gdal-bin/; /^  - ca-certificates$/d; /^  - curl$/d' standalone-gcp.cloud-init-standalone.yaml > ci-bad.yaml
	check_exit "cloud-init schema refuses user data with packages as a string" 1 cloud-init schema --config-file ci-bad.yaml
else
	skip "cloud-init (Debian package cloud-init) or python3-yaml not installed: user data schema checks"
	skip "cloud-init not installed: recipe in the user data"
	skip "cloud-init not installed: stack.yml on the manager"
	skip "cloud-init not installed: slurm.conf"
	skip "cloud-init not installed: a broken user data refused"
fi

# --- consensus: etcd with TLS on aws, gcp and azure ---------------------------------
# gcp and azure variants of the aws example; every member's etcd serves clients
# and peers over https with certificate auth, the workers' ledger carries the
# client certificate, no private key is in a plan or its user data, and each
# member's secret is made before the machines and fetched by the member
sed "s|^recipe: .*|recipe: $MEM_SRCDIR/recipes/demo.yaml|; /instance_profile/d; /^load_balancer:/,/certificate_arn/d" "$EX/consensus-aws.yaml" > cons-base.yaml
sed 's/provider: aws/provider: gcp/; s/^  region: us-west-2$/  region: us-west1\n  zone: us-west1-a/; s/zone: us-west-2\(.\)$/zone: us-west1-\1/; s/t3.medium/e2-standard-4/' cons-base.yaml > cons-gcp.yaml
sed 's/provider: aws/provider: azure/; s/^  region: us-west-2$/  location: westus2/; /zone: us-west-2/d; s/t3.medium/Standard_B2s/; s/^networking:$/networking:\n  vnet_name: mem-vnet\n  subnet_name: mem-subnet\n  nsg_name: mem-nsg/' cons-base.yaml > cons-azure.yaml
cp consensus-aws.plan cons-aws.plan
# (azure's destroy deletes the resource group, its key vault with it; the
# CA's removal is the same code on every provider: not rendered again)
for pa in gcp:plan gcp:destroy azure:plan; do
	p=${pa%:*} a=${pa#*:}
	sh "$D/consensus/$p/deploy.sh" --config cons-$p.yaml --audit-log a.audit --dry-run $a > cons-$p.$a 2>> cons-$p.err ||
		{ not_ok "consensus-$p: $a refused"; sed 's/^/# /' cons-$p.err; }
done
sed -n '/^### destroy/,/^### audit/p' consensus-aws.golden > cons-aws.destroy
MEMBERS="memories-consensus-node1 memories-consensus-node2 memories-consensus-node3"
MEMBERS_PEM="memories-consensus-node1.pem memories-consensus-node2.pem memories-consensus-node3.pem"
for p in aws gcp azure; do
	extract cons-$p.plan cloud-init-etcd.yaml > cons-$p.ci
	etcd=$(grep 'nohup etcd ' cons-$p.ci || true)
	ledger=$(grep 'mem-run --ledger ' cons-$p.ci || true)
	bad=
	for f in "--listen-client-urls https://0.0.0.0:2379" "--advertise-client-urls https://\$(hostname -s):2379" \
		"--listen-peer-urls https://0.0.0.0:2380" "--initial-advertise-peer-urls https://\$(hostname -s):2380" \
		"--client-cert-auth --trusted-ca-file /etc/memories/tls/ca.pem --cert-file /etc/memories/tls/\$(hostname -s).pem --key-file /etc/memories/tls/\$(hostname -s)-key.pem" \
		"--peer-client-cert-auth --peer-trusted-ca-file /etc/memories/tls/ca.pem --peer-cert-file /etc/memories/tls/\$(hostname -s).pem --peer-key-file /etc/memories/tls/\$(hostname -s)-key.pem --peer-cert-allowed-cn memories-consensus-etcd-member"; do
		case $etcd in *" $f "*) ;; *) bad="$bad [$f]" ;; esac
	done
	case $etcd in *http:*) bad="$bad [http:]" ;; esac
	grep -qx '      ETCD_INITIAL_CLUSTER=memories-consensus-node1=https://memories-consensus-node1:2380,memories-consensus-node2=https://memories-consensus-node2:2380,memories-consensus-node3=https://memories-consensus-node3:2380' cons-$p.ci || bad="$bad [ETCD_INITIAL_CLUSTER]"
	case $ledger in *" mem-run --ledger etcds://memories-consensus-node1:2379,memories-consensus-node2:2379,memories-consensus-node3:2379/memories-consensus --ledger-cacert /etc/memories/tls/ca.pem --ledger-cert /etc/memories/tls/client.pem --ledger-key /etc/memories/tls/client-key.pem "*) ;; *) bad="$bad [ledger]" ;; esac
	[ -z "$bad" ] && ok "consensus-$p: etcd serves clients and peers over https with certificate auth; the workers' ledger is etcds:// with the client certificate" ||
		{ not_ok "consensus-$p: etcd's TLS:$bad"; diag "$etcd"; diag "$ledger"; }
	# the secrets: one per member, made before the first machine, fetched at boot
	case $p in
	aws) mk='aws secretsmanager create-secret --region us-west-2 --name %s-etcd-tls --secret-string file://"$TLS/%s.tls.b64"'
		get='aws secretsmanager get-secret-value --region us-west-2 --secret-id $(hostname -s)-etcd-tls --query SecretString --output text'
		del='aws secretsmanager delete-secret --region us-west-2 --secret-id %s-etcd-tls --force-delete-without-recovery'; vm='^aws ec2 run-instances ' ;;
	gcp) mk='gcloud secrets create %s-etcd-tls --replication-policy=automatic --data-file="$TLS/%s.tls.b64"'
		get='gcloud secrets versions access latest --secret=$(hostname -s)-etcd-tls'
		del='gcloud secrets delete %s-etcd-tls --quiet'; vm='^gcloud compute instances create ' ;;
	azure) mk='az keyvault secret set --vault-name memories-consensus-kv --name %s-etcd-tls --file "$TLS/%s.tls.b64" --output none'
		get='az login --identity --output none && az keyvault secret show --vault-name memories-consensus-kv --name $(hostname -s)-etcd-tls --query value -o tsv'
		del=; vm='^az vm create ' ;; # destroy deletes the resource group, the key vault with it
	esac
	bad=
	first_vm=$(grep -n "$vm" cons-$p.plan | head -1 | cut -d: -f1)
	# the certificates are made before the provider's first command
	tl=$(grep -nx 'sh etcd-tls.sh "$TLS"' cons-$p.plan | cut -d: -f1)
	first=$(grep -nE '^(gcloud|aws|az) ' cons-$p.plan | head -1 | cut -d: -f1)
	[ -n "$tl" ] && [ -n "$first" ] && [ "$tl" -lt "$first" ] || bad="$bad certificates-first"
	for m in $MEMBERS; do
		# shellcheck disable=SC2059
		l=$(grep -nxF "$(printf "$mk" "$m" "$m")" cons-$p.plan | cut -d: -f1)
		[ -n "$l" ] && [ -n "$first_vm" ] && [ "$l" -lt "$first_vm" ] || bad="$bad create:$m"
		# shellcheck disable=SC2059
		[ -z "$del" ] || grep -qxF "$(printf "$del" "$m")" cons-$p.destroy || bad="$bad delete:$m"
	done
	grep -qF "until $get > /etc/memories/tls/bundle.b64;" cons-$p.ci || bad="$bad fetch"
	[ "$p" = azure ] || { grep -q '^TLS="${MEM_DEPLOY_STATE:-$PWD/.mem-deploy/memories-consensus}/tls"$' cons-$p.destroy && grep -qx 'rm -rf "$TLS"' cons-$p.destroy; } || bad="$bad ca-removed"
	[ -z "$bad" ] && ok "consensus-$p: certificates made before any provider command, a secret per member before the machines, read by the member at boot, deleted with the CA by destroy" ||
		not_ok "consensus-$p: the certificates' secrets:$bad"
	# the members' shared run directory: made before the machines, its address
	# put into the user data, mounted before the worker starts; the worker
	# tries again while the ledger has no quorum (exit 75)
	case $p in
	aws) mkfs='^FSID=\$(aws efs create-file-system --region us-west-2 --creation-token memories-consensus-fs --encrypted '
		rmfs='^aws efs delete-file-system --region us-west-2 --file-system-id "\$FSID"$' ;;
	gcp) mkfs='^gcloud filestore instances create memories-consensus-fs --zone=us-west1-a --tier=BASIC_HDD '
		rmfs='^gcloud filestore instances delete memories-consensus-fs --zone=us-west1-a --quiet$' ;;
	azure) mkfs='^az storage share-rm create --resource-group memories-consensus-rg --storage-account memoriesconsensusnfs --name memories --quota 100 --enabled-protocols NFS '
		rmfs= ;;
	esac
	bad=
	l=$(grep -n "$mkfs" cons-$p.plan | head -1 | cut -d: -f1)
	sd=$(grep -nxF 'sed -i "s#@MEM_SHARED_FS@#$FS#" cloud-init-etcd.yaml' cons-$p.plan | cut -d: -f1)
	[ -n "$l" ] && [ -n "$sd" ] && [ "$l" -lt "$sd" ] && [ "$sd" -lt "$first_vm" ] || bad="$bad made-before-machines($l,$sd,$first_vm)"
	[ -z "$rmfs" ] || grep -q "$rmfs" cons-$p.destroy || bad="$bad destroy"
	grep -q '^  - \["@MEM_SHARED_FS@", /srv/memories, nfs, "[^"]*_netdev", "0", "0"\]$' cons-$p.ci || bad="$bad mounts"
	mt=$(grep -n 'mountpoint -q /srv/memories' cons-$p.ci | cut -d: -f1)
	wk=$(grep -n 'mem-run --ledger ' cons-$p.ci | cut -d: -f1)
	[ -n "$mt" ] && [ -n "$wk" ] && [ "$mt" -lt "$wk" ] || bad="$bad mounted-before-worker"
	grep -q 'while :; do mem-run --ledger .* && break; rc=$?; \[ $rc -eq 75 \] || exit $rc; sleep 10; done"\]$' cons-$p.ci || bad="$bad retry-75"
	case $p in aws|gcp) grep -q '> /etc/memories/peers && \[ $(grep -c . /etc/memories/peers) -ge 3 \]' cons-$p.ci || bad="$bad peers" ;; esac
	[ -z "$bad" ] && ok "consensus-$p: a shared file system for the run directory, made before the machines and mounted before the worker, which retries while etcd has no quorum" ||
		not_ok "consensus-$p: the shared run directory:$bad"
done
# no private key in the plans, their user data (decoded) or their destroy plans
mkdir wf-cons
for p in aws gcp azure; do mkdir wf-cons/$p && decode_files cons-$p.ci wf-cons/$p > /dev/null; done
if grep -l 'PRIVATE KEY' cons-*.plan cons-*.ci cons-*.destroy wf-cons/*/* > pk.out 2>/dev/null; then
	not_ok "a private key in a rendered file: $(cat pk.out)"
else
	ok "no private key in the 3 consensus plans, their user data ($(ls wf-cons/*/* | wc -l) files decoded) or destroy plans"
fi
# the aws plan, run through deploy.sh up with a stand-in for the aws CLI (it
# logs its arguments and keeps Secrets Manager in a directory): the certificates
# are made in the state directory, verify, and each member's boot fetch gives
# it its own key and certificate and the client's
if command -v openssl >/dev/null 2>&1; then
	mkdir stub store
	cat > stub/aws <<'EOF'
#!/bin/sh
# a stand-in for the AWS CLI: logs its arguments; Secrets Manager in $STORE
echo "aws $*" >> "$STORE/calls"
op="$1 $2"; all="$*"; n=; f=; u=
while [ $# -gt 0 ]; do case $1 in --name|--secret-id) n=$2 ;; --secret-string) f=${2#file://} ;; --user-data) u=${2#file://} ;; esac; shift; done
case $op in
"secretsmanager create-secret") [ ! -e "$STORE/$n" ] && cp "$f" "$STORE/$n" ;;
"secretsmanager get-secret-value") cat "$STORE/$n" ;;
"secretsmanager delete-secret") rm "$STORE/$n" ;;
"ec2 describe-instances") echo i-1 i-2 i-3 ;;
"ec2 run-instances") cp "$u" "$STORE/user-data" ;;
"efs create-file-system") echo fs-0123 ;;
"efs describe-file-systems") case $all in *LifeCycleState*) echo available ;; *) echo fs-0123 ;; esac ;;
"efs describe-mount-targets") case $all in *length*) echo 0 ;; *) echo fsmt-1 fsmt-2 ;; esac ;;
esac
EOF
	printf '#!/bin/sh\necho "unexpected: $0 $*" >&2\nexit 99\n' > stub/gcloud
	cp stub/gcloud stub/az
	chmod +x stub/aws stub/gcloud stub/az
	sed "s|^recipe: .*|recipe: $MEM_SRCDIR/recipes/demo.yaml|" "$EX/consensus-aws.yaml" > cons-run.yaml
	cloud() { env PATH="$T/stub:$PATH" STORE="$T/store" AWS_ACCESS_KEY_ID=stand-in sh "$D/consensus/aws/deploy.sh" --config cons-run.yaml --audit-log a.audit --state-dir st "$@"; }
	if cloud up > run-up.out 2>&1; then
		ok "consensus-aws: the plan runs (aws stand-in): $(grep -c 'create-secret' store/calls) secrets, $(grep -c 'run-instances' store/calls) machines"
	else
		not_ok "consensus-aws: the plan failed with the aws stand-in"; tail -5 run-up.out | sed 's/^/# /'
	fi
	grep -q '^  - \["fs-0123.efs.us-west-2.amazonaws.com:/", /srv/memories, nfs, ' store/user-data && ! grep -q MEM_SHARED_FS store/user-data &&
		[ "$(grep -c 'efs create-mount-target' store/calls)" -eq 3 ] &&
		ok "consensus-aws: the machines' user data mounts the file system the plan made (3 mount targets)" ||
		not_ok "consensus-aws: the user data's mount: $(grep -n 'srv/memories, nfs' store/user-data 2>&1)"
	bad=
	[ "$(stat -c %a st/tls)" = 700 ] && [ "$(stat -c %a st/tls/ca-key.pem)" = 600 ] || bad="$bad modes"
	[ "$(grep -l 'BEGIN PRIVATE KEY' st/tls/*-key.pem | wc -l)" -eq 5 ] || bad="$bad keys"
	(cd st/tls && openssl verify -CAfile ca.pem client.pem $MEMBERS_PEM) > /dev/null 2>&1 || bad="$bad verify"
	openssl x509 -in st/tls/client.pem -noout -ext extendedKeyUsage 2>/dev/null | grep -qx '    TLS Web Client Authentication' || bad="$bad client-usage"
	for m in $MEMBERS; do
		openssl x509 -in "st/tls/$m.pem" -noout -subject -ext subjectAltName > x509.out 2>/dev/null
		grep -qx "    DNS:$m, DNS:localhost, IP Address:127.0.0.1" x509.out || bad="$bad san:$m"
		grep -qx 'subject=CN = memories-consensus-etcd-member' x509.out || bad="$bad cn:$m"
		# the member's boot: its runcmd line, with /etc/memories/tls here
		boot=$(grep -F 'etcd-tls' cons-aws.ci | sed 's/^  - \[sh, -c, "//; s/"\]$//' | sed "s|/etc/memories/tls|$T/node-$m|g; s|\$(hostname -s)|$m|g; s|sleep 5|sleep 0|")
		env PATH="$T/stub:$PATH" STORE="$T/store" sh -c "$boot" 2> boot.err || bad="$bad boot:$m($(tail -n 1 boot.err))"
		[ "$(cd "node-$m" 2>/dev/null && LC_ALL=C ls | tr '\n' ' ')" = "ca.pem client-key.pem client.pem $m-key.pem $m.pem " ] || bad="$bad files:$m"
		[ "$(stat -c %a "node-$m/$m-key.pem" "node-$m/client-key.pem" 2>/dev/null | sort -u)" = 600 ] || bad="$bad key-modes:$m"
		[ "$(openssl x509 -in "node-$m/$m.pem" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "node-$m/$m-key.pem" -pubout 2>/dev/null)" ] || bad="$bad pair:$m"
		for f in "$m-key.pem" "$m.pem" client-key.pem client.pem ca.pem; do cmp -s "node-$m/$f" "st/tls/$f" || bad="$bad $m:$f"; done
	done
	[ -z "$bad" ] && ok "consensus-aws: CA key 600 in the state directory; member certificates (CN, SANs) and the client's verify; each member's boot fetch gives its own key pair and the client's" ||
		not_ok "consensus-aws: the certificates:$bad"
	# a second up must not replace the CA of the running cluster
	check_exit "consensus-aws: a second up refuses to replace the CA" 1 cloud up
	n=$(grep -c 'create-secret' store/calls)
	cloud destroy > run-down.out 2>&1 && [ ! -e st/tls ] && grep -q "removing the etcd CA and certificates in $T/st/tls" run-down.out &&
		[ "$(find store -name '*-etcd-tls' | wc -l)" -eq 0 ] && [ "$n" -eq 3 ] &&
		ok "consensus-aws: destroy deletes the 3 secrets and removes the CA, saying where" ||
		{ not_ok "consensus-aws: destroy ($n secrets made)"; sed 's/^/# /' run-down.out; ls store st 2>&1 | sed 's/^/# /'; }
else
	skip "openssl not installed: the plan's certificates"
	skip "openssl not installed: the plan's certificates"
	skip "openssl not installed: a second up"
	skip "openssl not installed: destroy"
fi

# --- Kubernetes -----------------------------------------------------------------
extract swarmed-gcp-kubernetes.plan k8s-tasks.yaml > k8s-tasks.yaml
for f in k8s-base.yaml k8s-plan.yaml k8s-merge.yaml; do extract swarmed-gcp-kubernetes.plan $f > $f; done
grep -q '^  completionMode: Indexed$' k8s-tasks.yaml && grep -q '^  completions: 8$' k8s-tasks.yaml &&
	grep -q '^  parallelism: 4$' k8s-tasks.yaml && grep -q 'mem-run --task "$JOB_COMPLETION_INDEX/8"' k8s-tasks.yaml &&
	grep -q '^              nvidia.com/gpu: 1$' k8s-tasks.yaml &&
	ok "k8s: an Indexed Job of 8 completions, 4 at a time, pod I running task I/8 on a T4" || not_ok "k8s: the Indexed Job"
# the same on azure and aws
sed 's/provider: gcp/provider: azure/; s/^  region: us-central1$/  location: centralus/; /zone:/d; s/n1-standard-8/Standard_NC4as_T4_v3/' \
	"$EX/swarmed-gcp-kubernetes.yaml" | sed "s|^recipe: .*|recipe: $MEM_SRCDIR/recipes/demo.yaml|" > aks.yaml
sed 's/provider: gcp/provider: aws/; s/^  region: us-central1$/  region: us-east-1/; /zone:/d; s/n1-standard-8/g4dn.xlarge/' \
	"$EX/swarmed-gcp-kubernetes.yaml" | sed "s|^recipe: .*|recipe: $MEM_SRCDIR/recipes/demo.yaml|" > eks.yaml
printf 'networking:\n  subnet_ids: [subnet-1, subnet-2]\n' >> eks.yaml
printf '  cluster_role_arn: arn:aws:iam::123456789012:role/eks\n  node_role_arn: arn:aws:iam::123456789012:role/node\n' > arns
awk 'FNR == NR { a = a $0 "\n"; next } { print } /^kubernetes:$/ { printf "%s", a }' arns eks.yaml > eks2.yaml
sh "$D/swarmed/azure/deploy.sh" --config aks.yaml --audit-log a.audit --dry-run > aks.plan 2> aks.err &&
	sh "$D/swarmed/aws/deploy.sh" --config eks2.yaml --audit-log a.audit --dry-run > eks.plan 2> eks.err &&
	grep -q '^az aks create .*--node-vm-size Standard_NC4as_T4_v3 .*--min-count 1 --max-count 8' aks.plan &&
	grep -q '^aws eks create-nodegroup .*--scaling-config minSize=1,maxSize=8,desiredSize=4 --instance-types g4dn.xlarge' eks.plan &&
	ok "k8s: AKS and EKS clusters with the node pool's type and scaling" || { not_ok "k8s on azure and aws"; cat aks.err eks.err | sed 's/^/# /'; }
for p in aks eks; do for f in k8s-base.yaml k8s-plan.yaml k8s-tasks.yaml k8s-merge.yaml; do extract $p.plan $f > $p-$f; done; done
if command -v node >/dev/null 2>&1 && [ -f "$TOOLS/node_modules/kubernetes-models/package.json" ] && [ -f "$TOOLS/node_modules/yaml/package.json" ]; then
	if MEM_TOOLS=$TOOLS node "$D/lib/k8s-validate.mjs" k8s-*.yaml aks-k8s-*.yaml eks-k8s-*.yaml > k8s.out 2>&1; then
		ok "k8s: the ConfigMap, volume claim and 3 Jobs of GKE, AKS and EKS pass kubernetes-models' schemas"
	else
		not_ok "k8s: manifests refused"; sed 's/^/# /' k8s.out
	fi
	sed 's/^  completions: 8$/  completions: "eight"/; s/restartPolicy: Never/restartPolicy: Sometimes/' k8s-tasks.yaml > k8s-bad.yaml
	set +e; MEM_TOOLS=$TOOLS node "$D/lib/k8s-validate.mjs" k8s-bad.yaml > k8s-bad.out 2>&1; rc=$?; set -e
	[ $rc = 1 ] && grep -q 'completions must be integer' k8s-bad.out && grep -q 'restartPolicy must be equal to one of the allowed values' k8s-bad.out &&
		ok "k8s: the validator refuses a string completions and an unknown restartPolicy" || { not_ok "k8s: broken Job not refused (exit $rc)"; sed 's/^/# /' k8s-bad.out; }
else
	skip "node, or kubernetes-models@4.5.1 and yaml@2 in $TOOLS (scripts/install-deps.sh --test), missing: Kubernetes schema checks"
	skip "kubernetes-models missing: a broken Job refused"
fi

# --- Docker Swarm ---------------------------------------------------------------
grep -q "MEM_TASK_SLOT: '{{.Task.Slot}}'" stack.yml && grep -q '^      replicas: 6$' stack.yml &&
	grep -q 'mem-run --task $$((MEM_TASK_SLOT - 1))/6 ' stack.yml &&
	ok "swarm: 6 replicas, replica {{.Task.Slot}} running task SLOT-1 of 6" || not_ok "swarm: the stack's service"
if command -v docker-compose >/dev/null 2>&1; then swarm_check() { docker-compose -f "$1" config -q; }; sv="docker-compose config"
elif command -v docker >/dev/null 2>&1 && docker stack config --help >/dev/null 2>&1; then swarm_check() { docker stack config -c "$1" > /dev/null; }; sv="docker stack config"
else swarm_check=; sv=; fi
if [ -n "$sv" ]; then
	check "swarm: the stack passes $sv" swarm_check stack.yml
	sed 's/^      replicas: 6$/      replicas: six/' stack.yml > stack-bad.yml
	set +e; swarm_check stack-bad.yml > stack-bad.out 2>&1; rc=$?; set -e
	[ $rc != 0 ] && grep -q 'replicas' stack-bad.out && ok "swarm: $sv refuses replicas: six" || { not_ok "swarm: broken stack not refused (exit $rc)"; sed 's/^/# /' stack-bad.out; }
else
	skip "neither docker-compose (Debian docker-compose) nor docker stack config: Swarm stack check"
	skip "no Swarm stack validator: broken stack"
fi

# --- the orchestrators' commands, run here ---------------------------------------
# The Jobs' and the service's commands, with /srv/memories and /etc/memories
# moved here, run as the orchestrators would: planning, each task, merge.
cmd_of() { # FILE KIND: the shell command of a Job's container or of the stack's service
	/usr/bin/python3 - "$1" "$2" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
c = d["spec"]["template"]["spec"]["containers"][0]["command"] if sys.argv[2] == "job" else d["services"]["tasks"]["command"]
print(c[2].replace("$$", "$"))
PY
}
if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
	mem-demo -o demo --size 256 > /dev/null
	mkdir ref && ln -s ../demo ref/demo && (cd ref && mem-run -q "$MEM_SRCDIR/recipes/demo.yaml")
	sums() { (cd "$1" && find . -name '*.tif' | sort | xargs md5sum); }
	sums ref/out > ref.sums
	# sim NAME PLAN-CMD TASK-CMD MERGE-CMD N INDEX-VAR OFFSET
	sim() {
		r=$T/sim-$1
		mkdir -p "$r/etc/bin" "$r/srv"
		ln -s "$T/demo" "$r/srv/demo"
		printf '#!/bin/sh\necho 0\n' > "$r/etc/bin/sbatch"; chmod +x "$r/etc/bin/sbatch"
		cp "$MEM_SRCDIR/recipes/demo.yaml" "$r/etc/recipe.yaml"
		mv_paths() { sed "s|/srv/memories|$r/srv|g; s|/etc/memories|$r/etc|g"; }
		p=$(echo "$2" | mv_paths); tk=$(echo "$3" | mv_paths); m=$(echo "$4" | mv_paths)
		(cd "$r/srv" && sh -c "$p" && i=0 && while [ $i -lt "$5" ]; do env "$6=$((i + $7))" sh -c "$tk" || exit 1; i=$((i + 1)); done && sh -c "$m") > "$r.log" 2>&1
	}
	sed 's/tasks: 8/tasks: 3/' "$EX/swarmed-gcp-kubernetes.yaml" | sed "s|^recipe: .*|recipe: $MEM_SRCDIR/recipes/demo.yaml|" > k3.yaml
	sh "$D/swarmed/gcp/deploy.sh" --config k3.yaml --audit-log a.audit --dry-run > k3.plan
	for f in k8s-plan.yaml k8s-tasks.yaml k8s-merge.yaml; do extract k3.plan $f > k3-$f; done
	if sim k3 "$(cmd_of k3-k8s-plan.yaml job)" "$(cmd_of k3-k8s-tasks.yaml job)" "$(cmd_of k3-k8s-merge.yaml job)" 3 JOB_COMPLETION_INDEX 0 &&
		sums "$T/sim-k3/srv/out" | cmp -s ref.sums -; then
		ok "k8s: planning Job, Indexed Job (indexes 0-2 of 3) and merge Job give the standalone run's $(wc -l < ref.sums) COGs"
	else
		not_ok "k8s: the Jobs' commands"; tail -20 "$T/sim-k3.log" | sed 's/^/# /'
	fi
	sed 's/tasks: 6/tasks: 2/' "$EX/swarmed-aws-swarm.yaml" | sed "s|^recipe: .*|recipe: $MEM_SRCDIR/recipes/demo.yaml|" > s3.yaml
	sh "$D/swarmed/aws/deploy.sh" --config s3.yaml --audit-log a.audit --dry-run > s3.plan
	extract s3.plan stack.yml > s3-stack.yml
	# the manager's script holds the planning and merge commands
	extract s3.plan cloud-init-manager.yaml > s3-ci.yaml
	mkdir wf-s3 && decode_files s3-ci.yaml wf-s3 > wf-s3.list
	run_sh=$(awk -F'\t' '$1 == "/etc/memories/swarm-run.sh" { print $2 }' wf-s3.list)
	pc=$(sed -n "s/^docker run .* memories\/standalone:2.0.4 sh -c '\(.*\)'\$/\1/p" "$run_sh")
	mc=$(sed -n 's/^docker run .* memories\/standalone:2.0.4 \(mem-run --merge .*\)$/\1/p' "$run_sh")
	if [ -n "$pc" ] && [ -n "$mc" ] && sim s3 "$pc" "$(cmd_of s3-stack.yml stack)" "$mc" 2 MEM_TASK_SLOT 1 &&
		sums "$T/sim-s3/srv/out" | cmp -s ref.sums -; then
		ok "swarm: the manager's planning, replicas with slots 1-2 and the merge give the standalone run's COGs"
	else
		not_ok "swarm: the stack's commands (plan: '$pc', merge: '$mc')"; tail -20 "$T/sim-s3.log" 2>/dev/null | sed 's/^/# /'
	fi
else
	skip "python3-yaml not installed: the Jobs' commands"
	skip "python3-yaml not installed: the stack's commands"
fi

# --- orchestrator choices refused --------------------------------------------------
refused() { # NAME PATTERN/PROVIDER FILE EXPECTED
	set +e; msg=$(sh "$D/$2/deploy.sh" --config "$3" --audit-log a.audit validate 2>&1 >/dev/null); rc=$?; set -e
	case $rc:$msg in 2:*"$4"*) ok "refused: $1" ;; *) not_ok "refused: $1 (exit $rc)"; diag "got: $msg"; diag "want: $4" ;; esac
}
sed 's/orchestrator: kubernetes/orchestrator: nomad/' k3.yaml > o1.yaml
refused "an unknown orchestrator" swarmed/gcp o1.yaml "swarm.orchestrator: unknown orchestrator 'nomad' (slurm, kubernetes or swarm)"
grep -v container_image k3.yaml | sed 's/^software:$/software:\n  source: https:\/\/example.org\/m.tar.gz/' > o2.yaml
refused "kubernetes without an image" swarmed/gcp o2.yaml "software.container_image: required with swarm.orchestrator kubernetes"
grep -v node_role_arn eks2.yaml > o3.yaml
refused "EKS without the nodes' role" swarmed/aws o3.yaml "kubernetes.node_role_arn: required for an EKS node group"
printf 'deployment:\n  type: swarmed\n  provider: local\nswarm:\n  orchestrator: swarm\nrecipe: %s\n' "$MEM_SRCDIR/recipes/demo.yaml" > o4.yaml
refused "swarm on the local provider" swarmed/local o4.yaml "swarm.orchestrator: the local provider runs slurm only"
sed 's/orchestrator: swarm/orchestrator: slurm/' s3.yaml > o6.yaml
refused "slurm on a cloud without a source tarball" swarmed/aws o6.yaml "software.source: required with swarm.orchestrator slurm"
sed 's/USE_GPU: "true"/USE_GPU: "$(reboot)"/' k3.yaml > o7.yaml
refused "an environment value that is not plain" swarmed/gcp o7.yaml "software.environment.USE_GPU: an environment variable's name must be a shell name and its value plain"
sed 's/tasks: 3/tasks: 0/' k3.yaml > o5.yaml
refused "zero tasks" swarmed/gcp o5.yaml "swarm.tasks: 0 is outside 1..1000"

done_testing
