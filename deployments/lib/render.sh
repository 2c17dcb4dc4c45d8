# render.sh - sourced by deploy.sh: the plan for aws, azure and gcp as a
# shell script of provider CLI commands that writes its cloud-init files
# first.  The plan names where secrets come from (a file path or a variable
# name), never their values.

provider_cli() { case $PROVIDER in gcp) echo gcloud ;; aws) echo aws ;; azure) echo az ;; esac; }

# have_credentials: the CLI is on PATH and credentials are configured; looks
# only at local files and variables, never asks the provider
have_credentials() {
	command -v "$(provider_cli)" >/dev/null 2>&1 || return 1
	case $PROVIDER in
	gcp) [ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}" ] || [ -s "${CLOUDSDK_CONFIG:-$HOME/.config/gcloud}/credentials.db" ] ;;
	aws) [ -n "${AWS_ACCESS_KEY_ID:-}" ] || [ -s "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ] ;;
	azure) [ -s "${AZURE_CONFIG_DIR:-$HOME/.azure}/msal_token_cache.json" ] ;;
	esac
}

q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# secret_store NAME: the commands that put the API key into the provider's
# secret store, reading the file or the variable at run time
secret_store() {
	if [ "$KEYSRC" = file ]; then src="--data-file=$(q "$KEYFILE")"; awssrc="file://$KEYFILE"; azsrc="--file $(q "$KEYFILE")"
	else src='--data-file=-'; awssrc="\"\$$KEYENV\""; azsrc="--value \"\$$KEYENV\""; fi
	pipe=
	[ "$KEYSRC" = file ] || pipe="printf %s \"\$$KEYENV\" | "
	case $PROVIDER in
	gcp) echo "${pipe}gcloud secrets create $1 --replication-policy=automatic $src" ;;
	aws) echo "aws secretsmanager create-secret --region $REGION --name $1 --secret-string $awssrc" ;;
	azure) echo "az keyvault secret set --vault-name $NAME-kv --name $1 $azsrc" ;;
	esac
}
# secret_fetch NAME: what a node runs at boot to read it
secret_fetch() {
	case $PROVIDER in
	gcp) echo "gcloud secrets versions access latest --secret=$1" ;;
	aws) echo "aws secretsmanager get-secret-value --region $REGION --secret-id $1 --query SecretString --output text" ;;
	azure) echo "az keyvault secret show --vault-name $NAME-kv --name $1 --query value -o tsv" ;;
	esac
}

# cloud_init ROLE: the user data of a node of ROLE
cloud_init() {
	pk="ca-certificates curl"
	[ -n "$IMAGE" ] && pk="$pk docker.io"
	[ -z "$IMAGE" ] && pk="$pk build-essential autoconf automake libtool pkg-config libgdal-dev gdal-bin libproj-dev libtiff-dev libhdf5-dev libnetcdf-dev libcurl4-openssl-dev libjansson-dev libyaml-dev"
	case $1 in etcd) pk="$pk etcd-server etcd-client" ;; manager|worker) pk="$pk slurm-wlm munge" ;; esac
	case $PROVIDER in gcp) ;; aws) pk="$pk awscli" ;; azure) pk="$pk azure-cli" ;; esac
	for p in $(c software.packages.0) $(i=1; while v=$(c software.packages.$i) && [ -n "$v" ]; do echo "$v"; i=$((i + 1)); done); do pk="$pk $p"; done
	echo "#cloud-config"
	echo "package_update: true"
	echo "packages:"
	for p in $pk; do echo "  - $p"; done
	echo "write_files:"
	echo "  - path: /etc/memories/recipe.yaml"
	echo "    permissions: '0644'"
	echo "    encoding: b64"
	echo "    content: $(base64 -w0 < "$RECIPE")"
	echo "  - path: /etc/memories/deploy.env"
	echo "    permissions: '0644'"
	echo "    content: |"
	echo "      MEM_DEPLOYMENT=$NAME"
	echo "      MEM_ROLE=$1"
	echo "      MODEL_PROVIDER=$MODEL_PROVIDER"
	[ -z "$MODEL_NAME" ] || echo "      MODEL_NAME=$MODEL_NAME"
	[ "$1" != etcd ] || echo "      ETCD_INITIAL_CLUSTER=$(awk '{ printf "%s%s=http://%s:2380", s, $1, $1; s = "," }' "$TMPD/nodes")"
	echo "runcmd:"
	echo "  - [mkdir, -p, /srv/memories]"
	if [ -n "$KEYSRC" ] && [ "$MODEL_PROVIDER" != none ] && [ "$MODEL_PROVIDER" != local ]; then
		echo "  - [sh, -c, \"umask 077 && $(secret_fetch "$NAME-model-api-key") > /etc/memories/model-api-key\"]"
	fi
	if [ -z "$IMAGE" ]; then
		echo "  - [sh, -c, \"cd /srv && curl -fsSL $(printf '%s' "$SOURCE") | tar xz && cd memories-* && ./configure -q && make -j\$(nproc) && make install\"]"
	fi
	run="mem-run /etc/memories/recipe.yaml"
	[ -z "$IMAGE" ] || run="docker run --rm -v /srv/memories:/srv/memories -v /etc/memories:/etc/memories:ro -w /srv/memories --env-file /etc/memories/deploy.env $IMAGE $run"
	case $1 in
	standalone) echo "  - [sh, -c, \"cd /srv/memories && $run\"]" ;;
	etcd)
		echo "  - [sh, -c, \". /etc/memories/deploy.env && mkdir -p /var/lib/memories-etcd && nohup etcd --name \$(hostname -s) --data-dir /var/lib/memories-etcd --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://\$(hostname -s):2379 --listen-peer-urls http://0.0.0.0:2380 --initial-advertise-peer-urls http://\$(hostname -s):2380 --initial-cluster \$ETCD_INITIAL_CLUSTER --initial-cluster-token $NAME --initial-cluster-state new > /var/log/memories-etcd.log 2>&1 &\"]" ;;
	manager) echo "  - [sh, -c, \"cd /srv/memories && mem-run --slurm /etc/memories/recipe.yaml\"]" ;;
	worker) echo "  - [sh, -c, \"slurmd\"]" ;;
	esac
}

# vm NAME ROLE MACHINE ZONE DISK_GB: the create command of one node
vm() {
	case $PROVIDER in
	gcp)
		acc=
		gc=$(c hardware.gpu.count); [ "$2" = worker ] && gc=$(c node_specs.worker.gpu.count)
		gt=$(c hardware.gpu.type); [ "$2" = worker ] && gt=$(c node_specs.worker.gpu.type)
		[ "${gc:-0}" -gt 0 ] 2>/dev/null && acc=" --accelerator=type=$gt,count=$gc --maintenance-policy=TERMINATE"
		dt=$(c hardware.disk.type); dt=${dt:-pd-balanced}
		net=$(c networking.vpc_name); sub=$(c networking.subnet_name)
		pub=; [ "$(c networking.public_ip)" = false ] && pub=" --no-address"
		echo "gcloud compute instances create $1 --zone=$4 --machine-type=$3$acc --boot-disk-size=${5}GB --boot-disk-type=$dt --image-family=debian-12 --image-project=debian-cloud${net:+ --network=$net}${sub:+ --subnet=$sub}$pub --labels=memories-deployment=$NAME,memories-role=$2 --metadata-from-file=user-data=cloud-init-$2.yaml" ;;
	aws)
		sgs=$(i=0; while v=$(c networking.security_groups.$i) && [ -n "$v" ]; do printf ' %s' "$v"; i=$((i + 1)); done)
		n=$(awk -v n="$1" '$1 == n { print NR - 1 }' "$TMPD/nodes")
		sn=$(c networking.subnet_ids.$n); [ -n "$sn" ] || sn=$(c networking.subnet_ids.0)
		echo "aws ec2 run-instances --region $REGION --image-id resolve:ssm:/aws/service/debian/release/12/latest/amd64 --instance-type $3 --count 1${sn:+ --subnet-id $sn}${sgs:+ --security-group-ids$sgs}${4:+$( [ "$4" = - ] || echo " --placement AvailabilityZone=$4")} --block-device-mappings DeviceName=/dev/xvda,Ebs={VolumeSize=$5} --user-data file://cloud-init-$2.yaml --tag-specifications 'ResourceType=instance,Tags=[{Key=Name,Value=$1},{Key=memories-deployment,Value=$NAME},{Key=memories-role,Value=$2}]'" ;;
	azure)
		echo "az vm create --resource-group $RG --name $1 --location $REGION --image Debian:debian-12:12:latest --size $3 --os-disk-size-gb $5 --vnet-name $(c networking.vnet_name) --subnet $(c networking.subnet_name) --nsg $(c networking.nsg_name) --custom-data cloud-init-$2.yaml --generate-ssh-keys --tags memories-deployment=$NAME memories-role=$2" ;;
	esac
}

render_header() {
	echo "#!/bin/sh"
	echo "# memories deployment plan: $PATTERN on $PROVIDER, '$NAME'"
	echo "# config: $CONFIG (sha256 $(sha256sum < "$CONFIG" | cut -d' ' -f1))"
	echo "# recipe: $(c recipe); model: $MODEL_PROVIDER${MODEL_NAME:+/$MODEL_NAME}"
	echo "set -eu"
}

render_up() {
	render_header
	for role in $(awk '{ print $2 }' "$TMPD/nodes" | sort -u); do
		echo
		echo "cat > cloud-init-$role.yaml <<'CLOUD_INIT_EOF'"
		cloud_init "$role"
		echo "CLOUD_INIT_EOF"
	done
	echo
	case $PROVIDER in
	gcp)
		net=$(c networking.vpc_name); sub=$(c networking.subnet_name)
		[ -z "$net" ] || echo "gcloud compute networks create $net --subnet-mode=custom"
		[ -z "$sub" ] || echo "gcloud compute networks subnets create $sub --network=$net --region=$REGION --range=10.10.0.0/24"
		[ "$(c networking.firewall.allow_http)" != true ] || echo "gcloud compute firewall-rules create $NAME-http --network=$net --allow=tcp:80"
		[ "$(c networking.firewall.allow_https)" != true ] || echo "gcloud compute firewall-rules create $NAME-https --network=$net --allow=tcp:443"
		[ "$PATTERN" != consensus ] || echo "gcloud compute firewall-rules create $NAME-etcd --network=${net:-default} --allow=tcp:2379-2380 --source-tags=$NAME" ;;
	aws) ;;
	azure)
		echo "az group create --name $RG --location $REGION"
		echo "az network vnet create --resource-group $RG --name $(c networking.vnet_name) --subnet-name $(c networking.subnet_name)"
		echo "az network nsg create --resource-group $RG --name $(c networking.nsg_name)"
		[ -z "$KEYSRC" ] || echo "az keyvault create --resource-group $RG --name $NAME-kv --location $REGION" ;;
	esac
	if [ "$MODEL_PROVIDER" != none ] && [ "$MODEL_PROVIDER" != local ]; then
		if [ -n "$KEYSRC" ]; then
			secret_store "$NAME-model-api-key"
		else
			echo "# no API key for $MODEL_PROVIDER: set software.model.api_key_file or \$$KEYENV"
			echo "$PROG: no API key for '$MODEL_PROVIDER': set software.model.api_key_file or \$$KEYENV" >&2
		fi
	fi
	while read -r n r m z d; do vm "$n" "$r" "$m" "$z" "${d:-50}"; done < "$TMPD/nodes"
	if [ "$PROVIDER" = aws ] && has load_balancer; then
		echo "aws elbv2 create-load-balancer --region $REGION --name $NAME-lb --type $(c load_balancer.type) --scheme $(c load_balancer.scheme) --subnets$(i=0; while v=$(c networking.subnet_ids.$i) && [ -n "$v" ]; do printf ' %s' "$v"; i=$((i + 1)); done)"
	fi
}

render_status() {
	render_header
	case $PROVIDER in
	gcp) echo "gcloud compute instances list --filter=labels.memories-deployment=$NAME" ;;
	aws) echo "aws ec2 describe-instances --region $REGION --filters Name=tag:memories-deployment,Values=$NAME" ;;
	azure) echo "az vm list --resource-group $RG --show-details --output table" ;;
	esac
}

render_destroy() {
	render_header
	case $PROVIDER in
	gcp) while read -r n r m z d; do echo "gcloud compute instances delete $n --zone=$z --quiet"; done < "$TMPD/nodes"
		[ -z "$KEYSRC" ] || echo "gcloud secrets delete $NAME-model-api-key --quiet" ;;
	aws) echo "aws ec2 terminate-instances --region $REGION --instance-ids \$(aws ec2 describe-instances --region $REGION --filters Name=tag:memories-deployment,Values=$NAME --query 'Reservations[].Instances[].InstanceId' --output text)"
		[ -z "$KEYSRC" ] || echo "aws secretsmanager delete-secret --region $REGION --secret-id $NAME-model-api-key --force-delete-without-recovery" ;;
	azure) echo "az group delete --name $RG --yes" ;;
	esac
}
