#!/bin/sh
# deploy.sh - the one implementation behind deployments/<pattern>/<provider>/deploy.sh.
#
#   deploy.sh PATTERN PROVIDER --config FILE [--dry-run] [--audit-log FILE]
#             [--state-dir DIR] [validate|plan|up|status|destroy]
#
# The wrappers pass PATTERN (standalone, consensus, swarmed) and PROVIDER
# (local, aws, azure, gcp); the config must say the same.  POSIX sh and awk
# only: a deployment is a sequence of provider CLI commands and service
# starts, which sh states most plainly; the config (a YAML subset, see
# yaml-flat.awk) is flattened to "path<TAB>value" lines and checked here.
# The schema is documented in man/mem-deploy.7.
#
# Exit status: 0 done; 1 an action failed; 2 usage or a config refused.
set -eu

LIB=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$LIB/../.." && pwd)
PROG=deploy.sh

usage() {
	cat <<USAGE
Usage: deployments/PATTERN/PROVIDER/deploy.sh --config FILE [--dry-run]
         [--audit-log FILE] [--state-dir DIR] [validate|plan|up|status|destroy]
PATTERN: standalone, consensus, swarmed; PROVIDER: local, aws, azure, gcp.
  validate   check the config and exit
  plan       print the provider commands and cloud-init files (same as --dry-run up)
  up         deploy (the default); for aws/azure/gcp only with the provider's
             CLI and credentials, else as --dry-run
  status     show what runs (local) or the commands that would ask (cloud)
  destroy    stop and remove what up started
Secrets: the model API key comes from software.model.api_key_file or the
environment variable software.model.api_key_env (default MEM_MODEL_API_KEY);
it is never printed.  Audit log: --audit-log, else \$MEM_DEPLOY_AUDIT_LOG,
else \$HOME/.local/state/memories/deploy-audit.jsonl.
See mem-deploy(7).
USAGE
}

# --- arguments --------------------------------------------------------------
[ $# -ge 2 ] || { usage >&2; exit 2; }
PATTERN=$1 PROVIDER=$2
shift 2
CONFIG= DRY=0 ACTION= AUDIT=${MEM_DEPLOY_AUDIT_LOG:-${HOME:-/tmp}/.local/state/memories/deploy-audit.jsonl}
STATE=${MEM_DEPLOY_STATE:-}
while [ $# -gt 0 ]; do
	case $1 in
	--config) [ $# -ge 2 ] || { echo "$PROG: --config needs a file" >&2; exit 2; }; CONFIG=$2; shift ;;
	--config=*) CONFIG=${1#*=} ;;
	--dry-run|-n) DRY=1 ;;
	--audit-log) [ $# -ge 2 ] || { echo "$PROG: --audit-log needs a file" >&2; exit 2; }; AUDIT=$2; shift ;;
	--state-dir) [ $# -ge 2 ] || { echo "$PROG: --state-dir needs a directory" >&2; exit 2; }; STATE=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	validate|plan|up|status|destroy) [ -z "$ACTION" ] || { echo "$PROG: one action at a time" >&2; exit 2; }; ACTION=$1 ;;
	*) echo "$PROG: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done
ACTION=${ACTION:-up}
[ "$ACTION" = plan ] && DRY=1
[ -n "$CONFIG" ] || { echo "$PROG: --config FILE is required (try --help)" >&2; exit 2; }

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/mem-deploy.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT INT TERM

# --- audit log: one JSON line per action, who, what, when, result -------------
json_str() { printf '%s' "$1" | awk 'BEGIN{ORS=""} {gsub(/\\/,"\\\\"); gsub(/"/,"\\\""); gsub(/[[:cntrl:]]/," "); if (NR>1) print "\\n"; print}'; }
audit() { # RESULT MESSAGE
	mkdir -p "$(dirname "$AUDIT")" 2>/dev/null || true
	sum=-
	[ -r "$CONFIG" ] && sum=$(sha256sum < "$CONFIG" | cut -d' ' -f1)
	printf '{"time":"%s","user":"%s","host":"%s","pid":%d,"action":"%s","pattern":"%s","provider":"%s","config":"%s","config_sha256":"%s","dry_run":%s,"result":"%s","message":"%s"}\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(json_str "$(id -un 2>/dev/null || echo "${USER:-?}")")" \
		"$(json_str "$(uname -n)")" $$ "$ACTION" "$(json_str "$PATTERN")" "$(json_str "$PROVIDER")" \
		"$(json_str "$CONFIG")" "$sum" "$([ "$DRY" = 1 ] && echo true || echo false)" "$1" "$(json_str "$2")" \
		>> "$AUDIT" || echo "$PROG: cannot write the audit log '$AUDIT'" >&2
}

# refuse KEY RULE: a config refused; names the key and the rule
refuse() {
	echo "$PROG: $CONFIG: $1: $2" >&2
	audit refused "$1: $2"
	exit 2
}
fail() {
	echo "$PROG: $*" >&2
	audit failed "$*"
	exit 1
}

# --- the config ---------------------------------------------------------------
[ -r "$CONFIG" ] || { echo "$PROG: cannot read '$CONFIG'" >&2; audit refused "cannot read config"; exit 2; }
if ! awk -f "$LIB/yaml-flat.awk" "$CONFIG" > "$TMPD/flat" 2> "$TMPD/yerr"; then
	refuse "line $(cut -d: -f1 "$TMPD/yerr" | head -1)" "$(cut -d: -f2- "$TMPD/yerr" | head -1 | sed 's/^ //')"
fi
CONFDIR=$(cd "$(dirname "$CONFIG")" && pwd)

# c KEY: the value at KEY ("a.b.0.c"), from shell variables CFG_a__b__0__c
# read once: a lookup spawns no process (plans make hundreds)
awk -F'\t' '!(($1) in seen) { seen[$1]; k = $1; gsub(/[.]/, "__", k); gsub(/[^A-Za-z0-9_]/, "_", k); v = $2; gsub(/\047/, "\047\\\047\047", v); printf "CFG_%s=\047%s\047\n", k, v }' "$TMPD/flat" > "$TMPD/flat.sh"
. "$TMPD/flat.sh"
c() {
	_k=$1 _o=
	while :; do
		case $_k in
		*.*) _o="$_o${_k%%.*}__"; _k=${_k#*.} ;;
		*) _o="$_o$_k"; break ;;
		esac
	done
	case $_o in *[!A-Za-z0-9_]*) return 0 ;; esac
	eval "printf '%s\\n' \"\${CFG_$_o-}\""
}
has() { awk -F'\t' -v k="$1" 'index($1, k) == 1 && (length($1) == length(k) || substr($1, length(k) + 1, 1) == ".") { f = 1 } END { exit !f }' "$TMPD/flat"; }
# items PREFIX: how many list items PREFIX holds
items() { awk -F'\t' -v k="$1." 'index($1, k) == 1 { s = substr($1, length(k) + 1); sub(/[.].*/, "", s); if (s ~ /^[0-9]+$/) n[s] } END { c = 0; for (i in n) c++; print c }' "$TMPD/flat"; }
isint() { case $1 in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }
int() { # KEY DEFAULT: the integer at KEY, refused when not one
	v=$(c "$1")
	[ -n "$v" ] || { echo "$2"; return; }
	isint "$v" || refuse "$1" "'$v' is not a non-negative integer"
	echo "$v"
}
gb() { # KEY: a size like 100GB, 100G or 100 in whole GB
	v=$(c "$1")
	[ -n "$v" ] || return 0
	n=${v%[Gg][Bb]}
	n=${n%[Gg]}
	isint "$n" || refuse "$1" "'$v' is not a size in GB (e.g. 100GB)"
	echo "$n"
}

# --- validation -----------------------------------------------------------------
case $PATTERN in standalone|consensus|swarmed) ;; *) echo "$PROG: unknown pattern '$PATTERN'" >&2; exit 2 ;; esac
TYPE=$(c deployment.type)
PROV=$(c deployment.provider)
[ -n "$TYPE" ] || refuse deployment.type "required (standalone, consensus or swarmed)"
case $TYPE in standalone|consensus|swarmed) ;; *) refuse deployment.type "unknown deployment type '$TYPE' (standalone, consensus or swarmed)" ;; esac
[ -n "$PROV" ] || refuse deployment.provider "required (local, aws, azure or gcp)"
case $PROV in local|aws|azure|gcp) ;; *) refuse deployment.provider "unknown provider '$PROV' (local, aws, azure or gcp)" ;; esac
[ "$TYPE" = "$PATTERN" ] || refuse deployment.type "'$TYPE' but this is deployments/$PATTERN/"
[ "$PROV" = "$PROVIDER" ] || refuse deployment.provider "'$PROV' but this is deployments/$PATTERN/$PROVIDER/"
NAME=$(c deployment.name); NAME=${NAME:-memories-$PATTERN}
case $NAME in *[!a-z0-9-]*|-*|'') refuse deployment.name "'$NAME' must be lower-case letters, digits and '-'" ;; esac

# the recipe: required, a file, read relative to the config's directory
RECIPE=$(c recipe)
[ -n "$RECIPE" ] || refuse recipe "required: the recipe to run (a mem-run YAML file)"
case $RECIPE in /*) ;; *) RECIPE=$CONFDIR/$RECIPE ;; esac
[ -r "$RECIPE" ] || refuse recipe "cannot read '$(c recipe)'"

# location
REGION=$(c deployment.region); ZONE=$(c deployment.zone)
case $PROVIDER in
gcp)
	[ -n "$REGION" ] || refuse deployment.region "required for gcp (e.g. us-west1)"
	[ -n "$ZONE" ] || refuse deployment.zone "required for gcp (e.g. $REGION-a)"
	case $ZONE in "$REGION"-?) ;; *) refuse deployment.zone "'$ZONE' is not a zone of region '$REGION'" ;; esac ;;
aws)
	[ -n "$REGION" ] || refuse deployment.region "required for aws (e.g. us-west-2)" ;;
azure)
	REGION=$(c deployment.location)
	[ -n "$REGION" ] || refuse deployment.location "required for azure (e.g. westus2)"
	RG=$(c deployment.resource_group); RG=${RG:-$NAME-rg} ;;
esac

# machine KEY TYPE GPUKEY: the type is known for the provider and takes the GPUs
machine() {
	[ "$PROVIDER" = local ] && return 0
	[ -n "$2" ] || refuse "$1" "required for $PROVIDER"
	row=$(awk -F'\t' -v p="$PROVIDER" -v t="$2" '$1 == p && $2 == t' "$LIB/machines.tsv")
	[ -n "$row" ] || refuse "$1" "unknown $PROVIDER machine type '$2' (known: $(awk -F'\t' -v p="$PROVIDER" '$1 == p { printf "%s%s", s, $2; s = " " }' "$LIB/machines.tsv"))"
	maxg=$(echo "$row" | cut -f5); gtypes=$(echo "$row" | cut -f6); memg=$(echo "$row" | cut -f4)
	if [ -n "$3" ]; then
		gc=$(int "$3.count" 0)
		gt=$(c "$3.type")
		if [ "$gc" -gt 0 ]; then
			[ "$maxg" -gt 0 ] || refuse "$3.count" "$gc GPU(s) on machine type '$2', which takes no GPUs"
			[ "$gc" -le "$maxg" ] || refuse "$3.count" "$gc GPUs on machine type '$2', which takes at most $maxg"
			[ -n "$gt" ] || refuse "$3.type" "required when $3.count is set"
			case ,$gtypes, in *,"$gt",*) ;; *) refuse "$3.type" "'$gt' does not fit machine type '$2' (fits: $gtypes)" ;; esac
		fi
	fi
	if [ "$1" = hardware.machine_type ]; then
		m=$(gb hardware.memory)
		[ -z "$m" ] || [ "$m" -le "$memg" ] || refuse hardware.memory "${m}GB is more than machine type '$2' has (${memg}GB)"
	fi
	return 0
}

# secrets: never inline in the config; a key file or an environment variable
awk -F'\t' '{ n = split($1, p, "."); k = toupper(p[n]) } k ~ /(^|_)(API_?KEY|SECRET|PASSWORD|TOKEN)$/ || k == "KEY" { print $1; exit }' "$TMPD/flat" > "$TMPD/inline"
[ ! -s "$TMPD/inline" ] || refuse "$(cat "$TMPD/inline")" "secrets are not taken inline: use software.model.api_key_file or the environment (software.model.api_key_env)"
# environment values go into env files that sh sources and docker reads
# as they are, and into YAML: plain words only
awk -F'\t' 'index($1, "software.environment.") == 1 && ($2 ~ /[^A-Za-z0-9_.\/:,=+@%-]/ || substr($1, 22) !~ /^[A-Za-z_][A-Za-z0-9_]*$/) { print $1; exit }' "$TMPD/flat" > "$TMPD/badenv"
[ ! -s "$TMPD/badenv" ] || refuse "$(cat "$TMPD/badenv")" "an environment variable's name must be a shell name and its value plain (letters, digits and _ . / : , = + @ % -)"
MODEL_PROVIDER=$(c software.model.provider); MODEL_PROVIDER=${MODEL_PROVIDER:-$(c software.environment.MODEL_PROVIDER)}
MODEL_NAME=$(c software.model.name); MODEL_NAME=${MODEL_NAME:-$(c software.environment.MODEL_NAME)}
MODEL_PROVIDER=${MODEL_PROVIDER:-none}
case $MODEL_PROVIDER in
none|local) ;;
deepseek-ai|mistral-ai|cohere) [ -n "$MODEL_NAME" ] || refuse software.model.name "required for model provider '$MODEL_PROVIDER'" ;;
*) refuse software.model.provider "unknown model provider '$MODEL_PROVIDER' (none, local, deepseek-ai, mistral-ai, cohere)" ;;
esac
KEYFILE=$(c software.model.api_key_file)
KEYENV=$(c software.model.api_key_env); KEYENV=${KEYENV:-MEM_MODEL_API_KEY}
case $KEYENV in *[!A-Za-z0-9_]*|[0-9]*) refuse software.model.api_key_env "'$KEYENV' is not an environment variable name" ;; esac
if [ -n "$KEYFILE" ]; then
	case $KEYFILE in /*) ;; *) KEYFILE=$CONFDIR/$KEYFILE ;; esac
	[ -r "$KEYFILE" ] || refuse software.model.api_key_file "cannot read '$(c software.model.api_key_file)'"
fi
KEYSRC=
if [ -n "$KEYFILE" ]; then KEYSRC=file
elif eval "[ -n \"\${$KEYENV:-}\" ]"; then KEYSRC=env
fi
IMAGE=$(c software.container_image); SOURCE=$(c software.source)
[ "$PROVIDER" = local ] || [ -n "$IMAGE$SOURCE" ] ||
	refuse software "set container_image or source (the URL of a memories release tarball)"

# the nodes of each pattern, one line each: name role machine zone disk_gb
: > "$TMPD/nodes"
case $PATTERN in
standalone)
	MT=$(c hardware.machine_type)
	machine hardware.machine_type "$MT" hardware.gpu
	DISK=$(gb hardware.disk.size); DISK=${DISK:-50}
	echo "$NAME standalone ${MT:-local} ${ZONE:--} $DISK" >> "$TMPD/nodes" ;;
consensus)
	ALG=$(c consensus.algorithm); ALG=${ALG:-raft}
	[ "$ALG" = raft ] || refuse consensus.algorithm "'$ALG' is not supported: etcd's raft is the consensus engine"
	N=$(items nodes)
	MIN=$(int consensus.min_nodes 3)
	[ "$N" -gt 0 ] || N=$MIN
	MAX=$(int consensus.max_nodes "$N")
	Q=$(int consensus.quorum_size $((N / 2 + 1)))
	[ "$MIN" -ge 1 ] || refuse consensus.min_nodes "must be at least 1"
	[ "$MIN" -le "$MAX" ] || refuse consensus.max_nodes "$MAX is less than consensus.min_nodes ($MIN)"
	[ "$N" -ge "$MIN" ] || refuse nodes "$N nodes, fewer than consensus.min_nodes ($MIN)"
	[ "$N" -le "$MAX" ] || refuse nodes "$N nodes, more than consensus.max_nodes ($MAX)"
	[ $((2 * Q)) -gt "$N" ] || refuse consensus.quorum_size "$Q is not a majority of the $N nodes (need at least $((N / 2 + 1)))"
	[ "$Q" -le "$N" ] || refuse consensus.quorum_size "$Q is more than the $N nodes"
	i=0
	while [ $i -lt "$N" ]; do
		id=$(c nodes.$i.id); id=${id:-node$((i + 1))}
		mt=$(c nodes.$i.instance_type); mt=${mt:-$(c nodes.$i.machine_type)}; mt=${mt:-$(c hardware.machine_type)}
		machine "nodes.$i.instance_type" "$mt" ""
		z=$(c nodes.$i.zone); z=${z:-${ZONE:--}}
		[ "$PROVIDER" != aws ] || [ "$z" = - ] || case $z in "$REGION"?) ;; *) refuse "nodes.$i.zone" "'$z' is not a zone of region '$REGION'" ;; esac
		echo "$NAME-$id etcd ${mt:-local} $z $(gb hardware.disk.size || true)" >> "$TMPD/nodes"
		i=$((i + 1))
	done
	# the members read their certificates from Secrets Manager at boot
	[ "$PROVIDER" != aws ] || [ -n "$(c networking.instance_profile)" ] ||
		refuse networking.instance_profile "required for consensus on aws: the etcd members read their certificates from Secrets Manager (secretsmanager:GetSecretValue) and find each other (ec2:DescribeInstances)" ;;
swarmed)
	# the orchestrator of the workers
	ORCH=$(c swarm.orchestrator); ORCH=${ORCH:-slurm}
	case $ORCH in slurm|kubernetes|swarm) ;; *) refuse swarm.orchestrator "unknown orchestrator '$ORCH' (slurm, kubernetes or swarm)" ;; esac
	MGR=$(int swarm.manager_nodes 1); WRK=$(int swarm.worker_nodes 2)
	[ "$MGR" -ge 1 ] || refuse swarm.manager_nodes "must be at least 1"
	SMIN=$(int swarm.min_nodes 1); SMAX=$(int swarm.max_nodes $((MGR + WRK)))
	[ $((MGR + WRK)) -ge "$SMIN" ] || refuse swarm.worker_nodes "$MGR managers + $WRK workers is fewer than swarm.min_nodes ($SMIN)"
	[ $((MGR + WRK)) -le "$SMAX" ] || refuse swarm.worker_nodes "$MGR managers + $WRK workers is more than swarm.max_nodes ($SMAX)"
	WMIN=$(int scaling.min_worker_nodes 0); WMAX=$(int scaling.max_worker_nodes "$WRK")
	[ "$WRK" -ge "$WMIN" ] && [ "$WRK" -le "$WMAX" ] || refuse swarm.worker_nodes "$WRK is outside scaling.min_worker_nodes..max_worker_nodes ($WMIN..$WMAX)"
	MT=$(c node_specs.manager.instance_type); WT=$(c node_specs.worker.instance_type)
	[ "$ORCH" = kubernetes ] || machine node_specs.manager.instance_type "$MT" ""
	machine node_specs.worker.instance_type "$WT" node_specs.worker.gpu
	MD=$(int node_specs.manager.storage_size 50); WD=$(int node_specs.worker.storage_size 50)
	# how many shards (tasks) the run has
	TASKS=$(int swarm.tasks "$WRK")
	[ "$TASKS" -ge 1 ] && [ "$TASKS" -le 1000 ] || refuse swarm.tasks "$TASKS is outside 1..1000"
	if [ "$ORCH" != slurm ]; then
		[ "$PROVIDER" != local ] || refuse swarm.orchestrator "the local provider runs slurm only (scripts/slurm-local.sh)"
		[ -n "$IMAGE" ] || refuse software.container_image "required with swarm.orchestrator $ORCH: its workers run the image"
	fi
	[ "$ORCH" != slurm ] || [ "$PROVIDER" = local ] || [ -n "$SOURCE" ] ||
		refuse software.source "required with swarm.orchestrator slurm: Slurm runs the tools installed on the nodes"
	if [ "$ORCH" = kubernetes ] && [ "$PROVIDER" = aws ]; then
		[ -n "$(c kubernetes.cluster_role_arn)" ] || refuse kubernetes.cluster_role_arn "required for an EKS cluster (the IAM role of the control plane)"
		[ -n "$(c kubernetes.node_role_arn)" ] || refuse kubernetes.node_role_arn "required for an EKS node group (the IAM role of the nodes)"
		[ -n "$(c networking.subnet_ids.0)" ] || refuse networking.subnet_ids "required for an EKS cluster (at least two subnets)"
	fi
	# kubernetes: the provider's managed cluster has no manager machines
	[ "$ORCH" = kubernetes ] ||
		{ i=0; while [ $i -lt "$MGR" ]; do echo "$NAME-manager$i manager ${MT:-local} ${ZONE:--} $MD" >> "$TMPD/nodes"; i=$((i + 1)); done; }
	i=0; while [ $i -lt "$WRK" ]; do echo "$NAME-worker$i worker ${WT:-local} ${ZONE:--} $WD" >> "$TMPD/nodes"; i=$((i + 1)); done ;;
esac

if [ "$ACTION" = validate ]; then
	echo "$PROG: $CONFIG: valid $PATTERN deployment on $PROVIDER ($(wc -l < "$TMPD/nodes") node(s))"
	audit ok "valid"
	exit 0
fi

. "$LIB/tls.sh"
. "$LIB/render.sh"
. "$LIB/local.sh"

if [ "$PROVIDER" = local ]; then
	local_main
	exit 0
fi

# cloud: dry-run unless the provider's CLI and credentials are both here
cli=$(provider_cli)
if [ "$DRY" = 0 ] && ! have_credentials; then
	echo "$PROG: no '$cli' with credentials here: rendering the plan only (--dry-run)" >&2
	DRY=1
fi
render_$([ "$ACTION" = plan ] && echo up || echo "$ACTION") > "$TMPD/plan.sh"
if [ "$DRY" = 1 ]; then
	cat "$TMPD/plan.sh"
	audit ok "rendered $(grep -c "^$cli " "$TMPD/plan.sh" || true) $cli command(s)"
	exit 0
fi
mkdir -p "$TMPD/run"
# the plan runs in a temporary directory; what it keeps (consensus: the etcd
# CA) goes to the state directory, --state-dir, else ./.mem-deploy/NAME
STATE=${STATE:-$PWD/.mem-deploy/$NAME}
case $STATE in /*) ;; *) STATE=$PWD/$STATE ;; esac
if (cd "$TMPD/run" && MEM_DEPLOY_STATE=$STATE sh -eu "$TMPD/plan.sh"); then
	audit ok "executed"
else
	fail "the $ACTION plan failed (see the $cli messages above)"
fi
