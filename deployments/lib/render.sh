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
# secret_put NAME: the command that stores its standard input as the secret
# NAME (created empty by the plan)
secret_put() {
	case $PROVIDER in
	gcp) echo "gcloud secrets versions add $1 --data-file=-" ;;
	aws) echo "aws secretsmanager put-secret-value --region $REGION --secret-id $1 --secret-string \"\$(cat)\"" ;;
	azure) echo "az keyvault secret set --vault-name $NAME-kv --name $1 --value \"\$(cat)\" --output none" ;;
	esac
}
# secret_new NAME [FILE]: the command that creates the secret NAME, from FILE
# (read when the plan runs) or empty
secret_new() {
	case $PROVIDER in
	gcp) echo "gcloud secrets create $1 --replication-policy=automatic${2:+ --data-file=$2}" ;;
	aws) echo "aws secretsmanager create-secret --region $REGION --name $1${2:+ --secret-string file://$2}" ;;
	azure) if [ -n "${2:-}" ]; then echo "az keyvault secret set --vault-name $NAME-kv --name $1 --file $2 --output none"
		else echo "az keyvault secret set --vault-name $NAME-kv --name $1 --value pending --output none"; fi ;;
	esac
}
# secret_fetch NAME: what a node runs at boot to read it (on azure after
# signing in with the VM's managed identity, which the plan lets read the vault)
secret_fetch() {
	case $PROVIDER in
	gcp) echo "gcloud secrets versions access latest --secret=$1" ;;
	aws) echo "aws secretsmanager get-secret-value --region $REGION --secret-id $1 --query SecretString --output text" ;;
	azure) echo "az login --identity --output none && az keyvault secret show --vault-name $NAME-kv --name $1 --query value -o tsv" ;;
	esac
}

# boot_secret NAME FILE [FILTER]: the boot command that writes secret NAME
# (through FILTER, e.g. "base64 -d") to FILE, mode 600; tried for 10 minutes,
# since a node may boot before it may read the store (azure's key vault
# policies are set once the machines exist)
boot_secret() {
	echo "umask 077 && i=0 && until $(secret_fetch "$1") > $2.fetch; do i=\$((i + 1)); [ \$i -lt 120 ] || exit 1; sleep 5; done && ${3:-cat} < $2.fetch > $2 && rm $2.fetch"
}

# Where things live on the nodes: the recipe and the scripts in /etc/memories,
# the run (its directory /srv/memories/runs/NAME, shared by the nodes of a
# swarm) and the outputs under /srv/memories, the working directory.
RUNDIR=/srv/memories/runs/$NAME
# consensus: each etcd member's certificates, from the secret MEMBER-etcd-tls
TLSD=/etc/memories/tls
# tls_state: where the plan keeps the cluster's CA (and its key) on the
# deploying machine: deploy.sh sets MEM_DEPLOY_STATE (--state-dir, else
# ./.mem-deploy/NAME) when it runs the plan
tls_state() { echo "\"\${MEM_DEPLOY_STATE:-\$PWD/.mem-deploy/$NAME}/tls\""; }

# --- consensus: the members' shared file system -------------------------------
# Any member may take the next stage of an item another member made, so the
# run directory (/srv/memories: the tools' work directory, the manifests, the
# outputs) is one file system shared by all members: Amazon EFS, a Filestore
# instance or an Azure Files NFS share, made by the plan and mounted by every
# member over NFS.  Its address is known once it exists: the user data holds
# @MEM_SHARED_FS@, which the plan replaces before the first machine.
FS_MARK=@MEM_SHARED_FS@
# fs_account: azure's storage account (3-24 lowercase letters and digits)
fs_account() { printf '%s' "$NAME" | tr -cd 'a-z0-9' | cut -c1-20 | sed 's/$/nfs/'; }
fs_mount_opts() {
	case $PROVIDER in
	aws) echo "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,_netdev" ;;
	gcp) echo "defaults,hard,_netdev" ;;
	azure) echo "vers=4,minorversion=1,sec=sys,_netdev" ;;
	esac
}
# shared_fs_up: the plan's commands that make it and put its address in the user data
shared_fs_up() {
	echo "# the members' shared run directory, mounted at /srv/memories: destroy deletes"
	echo "# it with everything on it (copy the outputs first, or store them elsewhere)"
	case $PROVIDER in
	gcp)
		z=$(awk 'NR == 1 { print $4 }' "$TMPD/nodes")
		echo "gcloud filestore instances create $NAME-fs --zone=$z --tier=BASIC_HDD --file-share=name=memories,capacity=1TB --network=name=$(c networking.vpc_name | grep . || echo default) --labels=memories-deployment=$NAME"
		echo "FS=\$(gcloud filestore instances describe $NAME-fs --zone=$z --format='value(networks[0].ipAddresses[0])'):/memories" ;;
	aws)
		echo "# (the security groups must let the members reach each other on tcp 2379-2380, etcd, and 2049, NFS)"
		echo "FSID=\$(aws efs create-file-system --region $REGION --creation-token $NAME-fs --encrypted --performance-mode generalPurpose --throughput-mode elastic --tags Key=Name,Value=$NAME-fs Key=memories-deployment,Value=$NAME --query FileSystemId --output text)"
		echo "until [ \"\$(aws efs describe-file-systems --region $REGION --file-system-id \"\$FSID\" --query 'FileSystems[0].LifeCycleState' --output text)\" = available ]; do sleep 5; done"
		sgs=$(i=0; while v=$(c networking.security_groups.$i) && [ -n "$v" ]; do printf ' %s' "$v"; i=$((i + 1)); done)
		i=0
		while sn=$(c networking.subnet_ids.$i) && [ -n "$sn" ]; do
			echo "aws efs create-mount-target --region $REGION --file-system-id \"\$FSID\" --subnet-id $sn${sgs:+ --security-groups$sgs}"
			i=$((i + 1))
		done
		echo "FS=\$FSID.efs.$REGION.amazonaws.com:/" ;;
	azure)
		a=$(fs_account) v=$(c networking.vnet_name) sn=$(c networking.subnet_name)
		echo "az storage account create --resource-group $RG --name $a --location $REGION --kind FileStorage --sku Premium_LRS --https-only false --default-action Deny --tags memories-deployment=$NAME --output none"
		echo "az network vnet subnet update --resource-group $RG --vnet-name $v --name $sn --service-endpoints Microsoft.Storage --output none"
		echo "az storage account network-rule add --resource-group $RG --account-name $a --vnet-name $v --subnet $sn --output none"
		echo "az storage share-rm create --resource-group $RG --storage-account $a --name memories --quota 100 --enabled-protocols NFS --root-squash NoRootSquash --output none"
		echo "FS=$a.file.core.windows.net:/$a/memories" ;;
	esac
	echo "sed -i \"s#$FS_MARK#\$FS#\" cloud-init-etcd.yaml"
}
# shared_fs_down: destroy's commands (azure: the resource group takes it)
shared_fs_down() {
	case $PROVIDER in
	gcp) echo "gcloud filestore instances delete $NAME-fs --zone=$(awk 'NR == 1 { print $4 }' "$TMPD/nodes") --quiet" ;;
	aws)
		echo "FSID=\$(aws efs describe-file-systems --region $REGION --creation-token $NAME-fs --query 'FileSystems[0].FileSystemId' --output text)"
		echo "for mt in \$(aws efs describe-mount-targets --region $REGION --file-system-id \"\$FSID\" --query 'MountTargets[].MountTargetId' --output text); do aws efs delete-mount-target --region $REGION --mount-target-id \"\$mt\"; done"
		echo "until [ \"\$(aws efs describe-mount-targets --region $REGION --file-system-id \"\$FSID\" --query 'length(MountTargets)' --output text)\" = 0 ]; do sleep 5; done"
		echo "aws efs delete-file-system --region $REGION --file-system-id \"\$FSID\"" ;;
	esac
}
# peers_hosts: the boot step that puts the members' addresses in /etc/hosts, so
# that their names (in the certificates and the ledger URL) resolve on aws (the
# VPC's DNS knows only ip-A-B-C-D names) and across gcp's zones (zonal DNS)
peers_hosts() {
	n=$(grep -c . "$TMPD/nodes")
	case $PROVIDER in
	aws) q="aws ec2 describe-instances --region $REGION --filters Name=tag:memories-deployment,Values=$NAME Name=tag:memories-role,Values=etcd Name=instance-state-name,Values=pending,running --query 'Reservations[].Instances[].[PrivateIpAddress,Tags[?Key==\`Name\`]|[0].Value]' --output text" ;;
	gcp) q="gcloud compute instances list --filter='labels.memories-deployment=$NAME AND labels.memories-role=etcd' --format='value(networkInterfaces[0].networkIP,name)'" ;;
	*) return 0 ;;
	esac
	echo "  - [sh, -c, \"until $q > /etc/memories/peers && [ \$(grep -c . /etc/memories/peers) -ge $n ] && ! grep -q None /etc/memories/peers; do sleep 5; done && cat /etc/memories/peers >> /etc/hosts\"]"
}

# key_var: the variable mem-infer reads the model provider's key from
key_var() {
	case $MODEL_PROVIDER in
	deepseek-ai) echo DEEPSEEK_API_KEY ;; mistral-ai) echo MISTRAL_API_KEY ;; cohere) echo CO_API_KEY ;;
	esac
}
# uses_key: a remote model provider and a key to give it
uses_key() { [ -n "$KEYSRC" ] && [ -n "$(key_var)" ]; }

# gpu_count ROLE: the GPUs of a node of ROLE
gpu_count() {
	case $1 in
	worker) v=$(c node_specs.worker.gpu.count) ;;
	standalone) v=$(c hardware.gpu.count) ;;
	*) v= ;;
	esac
	echo "${v:-0}"
}
gpu_type() { case $1 in worker) c node_specs.worker.gpu.type ;; standalone) c hardware.gpu.type ;; esac; }
# machine_col TYPE COLUMN: a column of machines.tsv (3 vcpus, 4 memory GB)
machine_col() { awk -F'\t' -v p="$PROVIDER" -v t="$1" -v k="$2" '$1 == p && $2 == t { print $k }' "$LIB/machines.tsv"; }

# env_lines: the deployment's environment, NAME=VALUE a line: who the node is
# and the config's software.environment (secrets were refused before)
env_lines() {
	echo "MEM_DEPLOYMENT=$NAME"
	echo "MODEL_PROVIDER=$MODEL_PROVIDER"
	[ -z "$MODEL_NAME" ] || echo "MODEL_NAME=$MODEL_NAME"
	awk -F'\t' 'index($1, "software.environment.") == 1 { k = substr($1, 22); if (k != "MODEL_PROVIDER" && k != "MODEL_NAME" && k ~ /^[A-Za-z_][A-Za-z0-9_]*$/) print k "=" $2 }' "$TMPD/flat"
}

# run_cmd ROLE ARGS: the mem-run command line of a node, in the image or installed
run_cmd() {
	r=$1; shift
	if [ -n "$IMAGE" ]; then
		g=
		[ "$(gpu_count "$r")" -gt 0 ] && g=" --gpus all"
		k=
		uses_key && k=" -e $(key_var)"
		echo "docker run --rm$g --network host -v /srv/memories:/srv/memories -v /etc/memories:/etc/memories:ro -w /srv/memories --env-file /etc/memories/deploy.env$k $IMAGE mem-run $*"
	else
		echo "mem-run $*"
	fi
}

# slurm_conf: the cluster's slurm.conf (managers run slurmctld, the first
# the primary; workers run slurmd with the worker type's CPUs and memory)
slurm_conf() {
	wt=$(c node_specs.worker.instance_type)
	cpus=$(machine_col "$wt" 3); mem=$(machine_col "$wt" 4)
	gc=$(gpu_count worker)
	echo "ClusterName=$(echo "$NAME" | tr -d -- - | cut -c1-30)"
	awk '$2 == "manager" { print "SlurmctldHost=" $1 }' "$TMPD/nodes"
	echo "AuthType=auth/munge"
	echo "CredType=cred/munge"
	echo "SlurmUser=slurm"
	echo "StateSaveLocation=/var/spool/slurmctld"
	echo "SlurmdSpoolDir=/var/spool/slurmd"
	echo "ProctrackType=proctrack/linuxproc"
	echo "TaskPlugin=task/none"
	echo "JobAcctGatherType=jobacct_gather/none"
	echo "AccountingStorageType=accounting_storage/none"
	echo "SchedulerType=sched/backfill"
	echo "SchedulerParameters=batch_sched_delay=0"
	echo "SelectType=select/cons_tres"
	echo "SelectTypeParameters=CR_Core"
	echo "ReturnToService=2"
	echo "MaxArraySize=10001"
	[ "$gc" -gt 0 ] && echo "GresTypes=gpu"
	echo "NodeName=$NAME-worker[0-$((WRK - 1))] CPUs=${cpus:-1} RealMemory=$(( ${mem:-1} * 900 ))$([ "$gc" -gt 0 ] && echo " Gres=gpu:$gc") State=UNKNOWN"
	echo "PartitionName=memories Nodes=$NAME-worker[0-$((WRK - 1))] Default=YES MaxTime=INFINITE State=UP"
}

# indent N: each line of stdin indented by N spaces
indent() { awk -v n="$1" 'BEGIN { p = sprintf("%" n "s", "") } { print ($0 == "" ? "" : p $0) }'; }

# file_b64 PATH MODE: a write_files entry whose content is stdin
file_b64() {
	echo "  - path: $1"
	echo "    permissions: '$2'"
	echo "    encoding: b64"
	echo "    content: $(base64 -w0)"
}

# sbatch_shim: in the container of the planning step of kubernetes and swarm,
# an sbatch that submits nothing: mem-run --slurm then fetches, counts the
# cells and writes the run's plan (slurm/plan.json) for the orchestrator's
# tasks (mem-run --task I/N) and its merge step (mem-run --merge)
sbatch_shim() {
	echo '#!/bin/sh'
	echo '# planning only: the orchestrator (kubernetes or swarm) runs the tasks'
	echo 'echo 0'
}

# plan_cmd: the planning step of kubernetes and swarm, in the image
plan_cmd() { echo "PATH=/etc/memories/bin:\$PATH exec mem-run --slurm --tasks $TASKS --run-dir $RUNDIR /etc/memories/recipe.yaml"; }

# slurm_run: manager0's script: wait for the workers, then submit the run
slurm_run() {
	echo '#!/bin/sh'
	echo "# memories: submit '$(c recipe)' to the Slurm cluster $NAME once its workers are up"
	echo 'set -eu'
	echo "[ \"\$(hostname -s)\" = $NAME-manager0 ] || exit 0"
	echo "i=0; until [ \"\$(sinfo -h -t idle,mixed -o %D | awk '{ n += \$1 } END { print n + 0 }')\" -ge $WRK ] || [ \$i -ge 1800 ]; do sleep 2; i=\$((i + 1)); done"
	echo 'cd /srv/memories'
	echo "set -a; . /etc/memories/deploy.env; set +a"
	uses_key && echo "export $(key_var)=\"\$(cat /etc/memories/model-api-key)\""
	echo "exec mem-run --slurm --tasks $TASKS --run-dir $RUNDIR /etc/memories/recipe.yaml"
}

# swarm_run: manager0's script: init the swarm, publish the join tokens,
# wait for the workers, plan, deploy the stack, wait for the tasks, merge
swarm_run() {
	echo '#!/bin/sh'
	echo "# memories: the Docker swarm $NAME runs '$(c recipe)' as the stack $NAME"
	echo 'set -eu'
	echo 'me=$(hostname -s)'
	echo 'fetch() { until '"$(secret_fetch "\$1")"' 2>/dev/null; do sleep 5; done; }'
	echo "if [ \"\$me\" != $NAME-manager0 ]; then"
	echo "	role=worker; case \$me in $NAME-manager*) role=manager ;; esac"
	echo "	docker swarm join --token \"\$(fetch $NAME-swarm-\$role-token)\" $NAME-manager0:2377"
	echo '	exit 0'
	echo 'fi'
	echo 'docker swarm init --advertise-addr "$(hostname -I | cut -d" " -f1)"'
	for r in manager worker; do
		echo "docker swarm join-token -q $r | $(secret_put "$NAME-swarm-$r-token")"
	done
	echo "i=0; until [ \"\$(docker node ls -q | wc -l)\" -ge $((MGR + WRK)) ] || [ \$i -ge 900 ]; do sleep 2; i=\$((i + 1)); done"
	echo "for n in \$(docker node ls -q); do docker node update --label-add memories.role=\$(docker node inspect -f '{{.Spec.Role}}' \$n) \$n >/dev/null; done"
	k=
	uses_key && k=" -e $(key_var)=\"\$(cat /etc/memories/model-api-key)\""
	echo "docker run --rm --network host -v /srv/memories:/srv/memories -v /etc/memories:/etc/memories:ro -w /srv/memories --env-file /etc/memories/deploy.env$k $IMAGE sh -c '$(plan_cmd)'"
	uses_key && echo "docker secret create $NAME-model-api-key /etc/memories/model-api-key"
	echo "docker stack deploy -c /etc/memories/stack.yml $NAME"
	echo "i=0; until [ \"\$(ls $RUNDIR/shards/*/done 2>/dev/null | wc -l)\" -ge $TASKS ] || [ \$i -ge 43200 ]; do sleep 5; i=\$((i + 1)); done"
	echo "docker run --rm --network host -v /srv/memories:/srv/memories -v /etc/memories:/etc/memories:ro -w /srv/memories --env-file /etc/memories/deploy.env $IMAGE mem-run --merge $RUNDIR"
}

# swarm_stack: the stack of the swarm orchestrator: TASKS replicas of one
# service on the workers, replica {{.Task.Slot}} (1..TASKS) running task
# SLOT-1 of the run that manager0 planned
swarm_stack() {
	gc=$(gpu_count worker)
	echo "# memories: the tasks of '$(c recipe)' on the swarm $NAME (docker stack deploy -c stack.yml $NAME)"
	echo 'version: "3.8"'
	echo "services:"
	echo "  tasks:"
	echo "    image: $IMAGE"
	echo "    working_dir: /srv/memories"
	echo "    command:"
	echo "      - sh"
	echo "      - -c"
	k=
	uses_key && k="export $(key_var)=\"\$\$(cat /run/secrets/$NAME-model-api-key)\"; "
	echo "      - '${k}exec mem-run --task \$\$((MEM_TASK_SLOT - 1))/$TASKS $RUNDIR'"
	echo "    environment:"
	echo "      MEM_TASK_SLOT: '{{.Task.Slot}}'"
	env_lines | sed "s/^\([^=]*\)=\(.*\)/      \1: '\2'/"
	echo "    volumes:"
	echo "      - /srv/memories:/srv/memories"
	echo "      - /etc/memories:/etc/memories:ro"
	if uses_key; then
		echo "    secrets:"
		echo "      - $NAME-model-api-key"
	fi
	echo "    deploy:"
	echo "      mode: replicated"
	echo "      replicas: $TASKS"
	echo "      restart_policy:"
	echo "        condition: on-failure"
	echo "        max_attempts: 3"
	echo "      placement:"
	echo "        constraints:"
	echo "          - node.labels.memories.role == worker"
	if [ "$gc" -gt 0 ]; then
		echo "      resources:"
		echo "        reservations:"
		echo "          generic_resources:"
		echo "            - discrete_resource_spec:"
		echo "                kind: NVIDIA-GPU"
		echo "                value: $gc"
	fi
	if uses_key; then
		echo "secrets:"
		echo "  $NAME-model-api-key:"
		echo "    external: true"
	fi
}

# k8s_pod_spec CMD [INDEXED]: the pod template of a Job running CMD in the image
k8s_pod_spec() {
	gc=0; [ -n "${2:-}" ] && gc=$(gpu_count worker)
	echo "  template:"
	echo "    metadata:"
	echo "      labels:"
	echo "        memories-deployment: $NAME"
	echo "    spec:"
	echo "      restartPolicy: Never"
	echo "      containers:"
	echo "        - name: mem-run"
	echo "          image: $IMAGE"
	echo "          workingDir: /srv/memories"
	echo "          command: [sh, -c, '$1']"
	echo "          env:"
	env_lines | sed "s/^\([^=]*\)=\(.*\)/            - name: \1\n              value: '\2'/"
	if uses_key; then
		echo "            - name: $(key_var)"
		echo "              valueFrom:"
		echo "                secretKeyRef:"
		echo "                  name: $NAME-model-api-key"
		echo "                  key: api-key"
	fi
	if [ "$gc" -gt 0 ]; then
		echo "          resources:"
		echo "            limits:"
		echo "              nvidia.com/gpu: $gc"
	fi
	echo "          volumeMounts:"
	echo "            - name: data"
	echo "              mountPath: /srv/memories"
	echo "            - name: memories"
	echo "              mountPath: /etc/memories"
	echo "              readOnly: true"
	echo "      volumes:"
	echo "        - name: data"
	echo "          persistentVolumeClaim:"
	echo "            claimName: $NAME-data"
	echo "        - name: memories"
	echo "          configMap:"
	echo "            name: $NAME-recipe"
	echo "            defaultMode: 0755"
	echo "            items:"
	echo "              - key: recipe.yaml"
	echo "                path: recipe.yaml"
	echo "              - key: sbatch"
	echo "                path: bin/sbatch"
}
k8s_job_head() { # NAME
	echo "apiVersion: batch/v1"
	echo "kind: Job"
	echo "metadata:"
	echo "  name: $1"
	echo "  labels:"
	echo "    memories-deployment: $NAME"
	echo "spec:"
}
# k8s_base: the recipe (and the planning sbatch) as a ConfigMap and the
# volume the Jobs share, ReadWriteMany
k8s_base() {
	sc=$(c kubernetes.storage_class)
	[ -n "$sc" ] || case $PROVIDER in gcp) sc=standard-rwx ;; azure) sc=azurefile-csi ;; aws) sc=efs-sc ;; esac
	echo "# memories: the recipe and the shared volume of the Jobs of '$NAME'"
	echo "apiVersion: v1"
	echo "kind: ConfigMap"
	echo "metadata:"
	echo "  name: $NAME-recipe"
	echo "  labels:"
	echo "    memories-deployment: $NAME"
	echo "data:"
	echo "  sbatch: |"
	sbatch_shim | indent 4
	echo "binaryData:"
	echo "  recipe.yaml: $(base64 -w0 < "$RECIPE")"
	echo "---"
	echo "apiVersion: v1"
	echo "kind: PersistentVolumeClaim"
	echo "metadata:"
	echo "  name: $NAME-data"
	echo "  labels:"
	echo "    memories-deployment: $NAME"
	echo "spec:"
	echo "  accessModes: [ReadWriteMany]"
	echo "  storageClassName: $sc"
	echo "  resources:"
	echo "    requests:"
	echo "      storage: $(int kubernetes.storage_size "$WD")Gi"
}
k8s_plan_job() {
	echo "# memories: the planning step (fetch, count the cells, write the plan)"
	k8s_job_head "$NAME-plan"
	echo "  backoffLimit: 2"
	k8s_pod_spec "$(plan_cmd)"
}
# k8s_tasks_job: the Indexed Job: pod JOB_COMPLETION_INDEX runs shard I/N
k8s_tasks_job() {
	echo "# memories: $TASKS shards as an Indexed Job, pod I running mem-tile --shard I/$TASKS and mem-infer"
	k8s_job_head "$NAME-tasks"
	echo "  completionMode: Indexed"
	echo "  completions: $TASKS"
	echo "  parallelism: $([ "$TASKS" -lt "$WRK" ] && echo "$TASKS" || echo "$WRK")"
	echo "  backoffLimit: $((TASKS * 3))"
	k8s_pod_spec "exec mem-run --task \"\$JOB_COMPLETION_INDEX/$TASKS\" $RUNDIR" indexed
}
k8s_merge_job() {
	echo "# memories: the merge step (mem-store of every shard's results)"
	k8s_job_head "$NAME-merge"
	echo "  backoffLimit: 2"
	k8s_pod_spec "exec mem-run --merge $RUNDIR"
}

# cloud_init ROLE: the user data of a node of ROLE: standalone, etcd (an etcd
# member and a ledger worker), manager and worker (Slurm's slurmctld and
# slurmd, or Docker swarm managers and workers)
cloud_init() {
	role=$1
	pk="ca-certificates curl"
	[ -n "$IMAGE" ] && pk="$pk docker.io"
	[ -z "$IMAGE" ] && pk="$pk build-essential autoconf automake libtool pkg-config libgdal-dev gdal-bin libproj-dev libtiff-dev libhdf5-dev libnetcdf-dev libcurl4-openssl-dev libjansson-dev libyaml-dev"
	case $role in
	etcd) pk="$pk etcd-server etcd-client nfs-common" ;;
	manager) [ "$ORCH" = slurm ] && pk="$pk slurm-wlm munge"; pk="$pk nfs-kernel-server" ;;
	worker) [ "$ORCH" = slurm ] && pk="$pk slurm-wlm munge"; pk="$pk nfs-common" ;;
	esac
	case $PROVIDER in gcp) ;; aws) pk="$pk awscli" ;; azure) pk="$pk azure-cli" ;; esac
	for p in $(i=0; while v=$(c software.packages.$i) && [ -n "$v" ]; do echo "$v"; i=$((i + 1)); done); do pk="$pk $p"; done
	echo "#cloud-config"
	echo "# memories: node role '$role' of the $PATTERN deployment '$NAME'"
	echo "package_update: true"
	echo "packages:"
	for p in $pk; do echo "  - $p"; done
	echo "write_files:"
	file_b64 /etc/memories/recipe.yaml 0644 < "$RECIPE"
	echo "  - path: /etc/memories/deploy.env"
	echo "    permissions: '0644'"
	echo "    content: |"
	{ env_lines; echo "MEM_ROLE=$role"
	  [ "$role" != etcd ] || echo "ETCD_INITIAL_CLUSTER=$(awk '{ printf "%s%s=https://%s:2380", s, $1, $1; s = "," }' "$TMPD/nodes")"
	} | indent 6
	case $role:${ORCH:-} in
	manager:slurm|worker:slurm) slurm_conf | file_b64 /etc/slurm/slurm.conf 0644 ;;
	esac
	case $role:${ORCH:-} in
	manager:slurm) slurm_run | file_b64 /etc/memories/slurm-run.sh 0755 ;;
	manager:swarm|worker:swarm) swarm_run | file_b64 /etc/memories/swarm-run.sh 0755 ;;
	esac
	[ "$role:${ORCH:-}" = manager:swarm ] && swarm_stack | file_b64 /etc/memories/stack.yml 0644
	[ "${ORCH:-}" = swarm ] && sbatch_shim | file_b64 /etc/memories/bin/sbatch 0755
	if [ "$role" = manager ]; then
		echo "  - path: /etc/exports"
		echo "    content: |"
		echo "      /srv/memories *(rw,sync,no_subtree_check,no_root_squash)"
	fi
	if [ "$role" = etcd ]; then
		echo "mounts:"
		echo "  - [\"$FS_MARK\", /srv/memories, nfs, \"$(fs_mount_opts)\", \"0\", \"0\"]"
	fi
	if [ "$role" = worker ]; then
		echo "mounts:"
		echo "  - [\"$NAME-manager0:/srv/memories\", /srv/memories, nfs, \"defaults,_netdev\", \"0\", \"0\"]"
	fi
	echo "runcmd:"
	# EC2 names hosts by address: take the Name tag, which the other nodes use
	[ "$PROVIDER" = aws ] && echo "  - [sh, -c, \"hostnamectl set-hostname \$(curl -fsS http://169.254.169.254/latest/meta-data/tags/instance/Name)\"]"
	echo "  - [mkdir, -p, /srv/memories]"
	if uses_key; then
		echo "  - [sh, -c, \"$(boot_secret "$NAME-model-api-key" /etc/memories/model-api-key)\"]"
	fi
	if [ -z "$IMAGE" ]; then
		echo "  - [sh, -c, \"cd /srv && curl -fsSL $(printf '%s' "$SOURCE") | tar xz && cd memories-* && ./configure -q && make -j\$(nproc) && make install\"]"
	fi
	k=
	uses_key && k="export $(key_var)=\$(cat /etc/memories/model-api-key) && "
	case $role in
	standalone) echo "  - [sh, -c, \"cd /srv/memories && set -a && . /etc/memories/deploy.env && set +a && $k$(run_cmd standalone --run-dir "$RUNDIR" /etc/memories/recipe.yaml)\"]" ;;
	etcd)
		# the member's certificate and key and the workers' client
		# certificate, from the secret the plan made for this host (10 min
		# at most: azure lets the VM read the vault after creating it)
		echo "  - [sh, -c, \"umask 077 && mkdir -p $TLSD && i=0 && until $(secret_fetch "\$(hostname -s)-etcd-tls") > $TLSD/bundle.b64; do i=\$((i + 1)); [ \$i -lt 120 ] || exit 1; sleep 5; done && base64 -d $TLSD/bundle.b64 | tar -xz -C $TLSD --no-same-owner && rm $TLSD/bundle.b64\"]"
		peers_hosts
		# Debian's etcd-server starts a member of its own on localhost
		echo "  - [sh, -c, \"systemctl disable --now etcd || true\"]"
		echo "  - [sh, -c, \". /etc/memories/deploy.env && mkdir -p /var/lib/memories-etcd && nohup etcd --name \$(hostname -s) --data-dir /var/lib/memories-etcd --listen-client-urls https://0.0.0.0:2379 --advertise-client-urls https://\$(hostname -s):2379 --client-cert-auth --trusted-ca-file $TLSD/ca.pem --cert-file $TLSD/\$(hostname -s).pem --key-file $TLSD/\$(hostname -s)-key.pem --listen-peer-urls https://0.0.0.0:2380 --initial-advertise-peer-urls https://\$(hostname -s):2380 --peer-client-cert-auth --peer-trusted-ca-file $TLSD/ca.pem --peer-cert-file $TLSD/\$(hostname -s).pem --peer-key-file $TLSD/\$(hostname -s)-key.pem --peer-cert-allowed-cn $NAME-etcd-member --initial-cluster \$ETCD_INITIAL_CLUSTER --initial-cluster-token $NAME --initial-cluster-state new > /var/log/memories-etcd.log 2>&1 &\"]"
		# the shared run directory, then the worker: exit 75 (the ledger has
		# no quorum yet while the other members boot) is tried again
		echo "  - [sh, -c, \"until mount -a -t nfs,nfs4 && mountpoint -q /srv/memories; do sleep 5; done\"]"
		echo "  - [sh, -c, \"cd /srv/memories && set -a && . /etc/memories/deploy.env && set +a && ${k}while :; do $(run_cmd etcd --ledger "etcds://$(awk '{ printf "%s%s:2379", s, $1; s = "," }' "$TMPD/nodes")/$NAME" --ledger-cacert $TLSD/ca.pem --ledger-cert $TLSD/client.pem --ledger-key $TLSD/client-key.pem --run-dir "$RUNDIR" /etc/memories/recipe.yaml) && break; rc=\$?; [ \$rc -eq 75 ] || exit \$rc; sleep 10; done\"]" ;;
	manager)
		echo "  - [sh, -c, \"exportfs -ra || systemctl restart nfs-kernel-server\"]"
		if [ "$ORCH" = slurm ]; then
			echo "  - [sh, -c, \"$(boot_secret "$NAME-munge-key" /etc/munge/munge.key "base64 -d") && chown munge:munge /etc/munge/munge.key\"]"
			echo "  - [systemctl, restart, munge, slurmctld]"
			echo "  - [sh, -c, \"nohup /etc/memories/slurm-run.sh > /var/log/memories-run.log 2>&1 &\"]"
		else
			echo "  - [sh, -c, \"nohup /etc/memories/swarm-run.sh > /var/log/memories-run.log 2>&1 &\"]"
		fi ;;
	worker)
		echo "  - [sh, -c, \"until mount -a -t nfs && mountpoint -q /srv/memories; do sleep 5; done\"]"
		if [ "$ORCH" = slurm ]; then
			echo "  - [sh, -c, \"$(boot_secret "$NAME-munge-key" /etc/munge/munge.key "base64 -d") && chown munge:munge /etc/munge/munge.key\"]"
			echo "  - [systemctl, restart, munge, slurmd]"
		else
			echo "  - [sh, -c, \"nohup /etc/memories/swarm-run.sh > /var/log/memories-run.log 2>&1 &\"]"
		fi ;;
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
		sc=; needs_secrets && sc=" --scopes=cloud-platform"
		echo "gcloud compute instances create $1 --zone=$4 --machine-type=$3$acc --boot-disk-size=${5}GB --boot-disk-type=$dt --image-family=debian-12 --image-project=debian-cloud${net:+ --network=$net}${sub:+ --subnet=$sub}$pub$sc --tags=$NAME --labels=memories-deployment=$NAME,memories-role=$2 --metadata-from-file=user-data=cloud-init-$2.yaml" ;;
	aws)
		sgs=$(i=0; while v=$(c networking.security_groups.$i) && [ -n "$v" ]; do printf ' %s' "$v"; i=$((i + 1)); done)
		n=$(awk -v n="$1" '$1 == n { print NR - 1 }' "$TMPD/nodes")
		sn=$(c networking.subnet_ids.$n); [ -n "$sn" ] || sn=$(c networking.subnet_ids.0)
		pub=; [ "$(c networking.public_ip)" = false ] && pub=" --no-associate-public-ip-address"
		ip=$(c networking.instance_profile); ip=${ip:+ --iam-instance-profile Name=$ip}
		echo "aws ec2 run-instances --region $REGION --image-id resolve:ssm:/aws/service/debian/release/12/latest/amd64 --instance-type $3 --count 1${sn:+ --subnet-id $sn}${sgs:+ --security-group-ids$sgs}$pub$ip${4:+$( [ "$4" = - ] || echo " --placement AvailabilityZone=$4")} --metadata-options InstanceMetadataTags=enabled --block-device-mappings DeviceName=/dev/xvda,Ebs={VolumeSize=$5$(dt=$(c hardware.disk.type); [ -z "$dt" ] || echo ",VolumeType=$dt")} --user-data file://cloud-init-$2.yaml --tag-specifications 'ResourceType=instance,Tags=[{Key=Name,Value=$1},{Key=memories-deployment,Value=$NAME},{Key=memories-role,Value=$2}]'" ;;
	azure)
		echo "az vm create --resource-group $RG --name $1 --location $REGION --image Debian:debian-12:12:latest --size $3 --os-disk-size-gb $5$(dt=$(c hardware.disk.type); [ -z "$dt" ] || echo " --storage-sku $dt") --vnet-name $(c networking.vnet_name) --subnet $(c networking.subnet_name) --nsg $(c networking.nsg_name)$([ "$(c networking.public_ip)" = false ] && echo ' --public-ip-address ""')$(needs_secrets && echo ' --assign-identity')$(z=$(c deployment.zone); [ -z "$z" ] || echo " --zone $z") --custom-data cloud-init-$2.yaml --generate-ssh-keys --tags memories-deployment=$NAME memories-role=$2" ;;
	esac
}

# needs_secrets: the nodes read secrets from the provider's store at boot
needs_secrets() { uses_key || [ "$PATTERN" = consensus ] || { [ "$PATTERN" = swarmed ] && [ "$ORCH" != kubernetes ]; }; }

render_header() {
	echo "#!/bin/sh"
	echo "# memories deployment plan: $PATTERN on $PROVIDER, '$NAME'"
	echo "# config: $(basename "$CONFIG") (sha256 $(sha256sum < "$CONFIG" | cut -d' ' -f1))"
	echo "# recipe: $(c recipe); model: $MODEL_PROVIDER${MODEL_NAME:+/$MODEL_NAME}"
	case $PATTERN in
	consensus) echo "# consensus: etcd (raft), $N members, quorum $Q: work goes on with $((N - Q)) member(s) down" ;;
	swarmed) echo "# swarmed: $ORCH, $( [ "$ORCH" = kubernetes ] || echo "$MGR manager(s), ")$WRK worker(s) (scaling $WMIN..$WMAX), $TASKS task(s)" ;;
	esac
	echo "set -eu"
}

# emit_file NAME CMD...: the plan writes NAME with the output of CMD
emit_file() {
	f=$1; shift
	echo
	echo "cat > $f <<'MEM_EOF'"
	"$@"
	echo "MEM_EOF"
}

# k8s_cluster: the managed Kubernetes cluster of the workers and kubectl's credentials
k8s_cluster() {
	wt=$(c node_specs.worker.instance_type)
	gc=$(gpu_count worker); gt=$(gpu_type worker)
	case $PROVIDER in
	gcp)
		net=$(c networking.vpc_name); sub=$(c networking.subnet_name)
		echo "gcloud container clusters create $NAME --zone=$ZONE --num-nodes=$WRK --machine-type=$wt$([ "$gc" -gt 0 ] && echo " --accelerator=type=$gt,count=$gc") --disk-size=${WD}GB --enable-autoscaling --min-nodes=$WMIN --max-nodes=$WMAX${net:+ --network=$net}${sub:+ --subnetwork=$sub} --addons=GcpFilestoreCsiDriver --labels=memories-deployment=$NAME"
		echo "gcloud container clusters get-credentials $NAME --zone=$ZONE" ;;
	azure)
		echo "az group create --name $RG --location $REGION"
		echo "az aks create --resource-group $RG --name $NAME --location $REGION --node-count $WRK --node-vm-size $wt --node-osdisk-size $WD --enable-cluster-autoscaler --min-count $(( WMIN > 0 ? WMIN : 1 )) --max-count $WMAX --generate-ssh-keys --tags memories-deployment=$NAME"
		echo "az aks get-credentials --resource-group $RG --name $NAME" ;;
	aws)
		sns=$(i=0; while v=$(c networking.subnet_ids.$i) && [ -n "$v" ]; do printf '%s%s' "${cm:-}" "$v"; cm=,; i=$((i + 1)); done)
		sgs=$(i=0; while v=$(c networking.security_groups.$i) && [ -n "$v" ]; do printf '%s%s' "${cm2:-}" "$v"; cm2=,; i=$((i + 1)); done)
		echo "aws eks create-cluster --region $REGION --name $NAME --role-arn $(c kubernetes.cluster_role_arn) --resources-vpc-config subnetIds=$sns${sgs:+,securityGroupIds=$sgs} --tags memories-deployment=$NAME"
		echo "aws eks wait cluster-active --region $REGION --name $NAME"
		echo "aws eks create-nodegroup --region $REGION --cluster-name $NAME --nodegroup-name $NAME-workers --scaling-config minSize=$WMIN,maxSize=$WMAX,desiredSize=$WRK --instance-types $wt --disk-size $WD$([ "$gc" -gt 0 ] && echo " --ami-type AL2_x86_64_GPU") --subnets $(echo "$sns" | tr , ' ') --node-role $(c kubernetes.node_role_arn) --tags memories-deployment=$NAME"
		echo "aws eks wait nodegroup-active --region $REGION --cluster-name $NAME --nodegroup-name $NAME-workers"
		echo "aws eks update-kubeconfig --region $REGION --name $NAME" ;;
	esac
}

# k8s_run: apply the Jobs in order, each after the one before completed
k8s_run() {
	if uses_key; then
		if [ "$KEYSRC" = file ]; then echo "kubectl create secret generic $NAME-model-api-key --from-file=api-key=$(q "$KEYFILE")"
		else echo "printf %s \"\$$KEYENV\" | kubectl create secret generic $NAME-model-api-key --from-file=api-key=/dev/stdin"; fi
		echo "kubectl label secret $NAME-model-api-key memories-deployment=$NAME"
	fi
	echo "kubectl apply -f k8s-base.yaml -f k8s-plan.yaml"
	echo "kubectl wait --for=condition=complete --timeout=24h job/$NAME-plan"
	echo "kubectl apply -f k8s-tasks.yaml"
	echo "kubectl wait --for=condition=complete --timeout=168h job/$NAME-tasks"
	echo "kubectl apply -f k8s-merge.yaml"
	echo "kubectl wait --for=condition=complete --timeout=24h job/$NAME-merge"
}

render_up() {
	render_header
	# kubernetes: the provider's managed cluster boots its nodes itself
	[ "$PATTERN" = swarmed ] && [ "$ORCH" = kubernetes ] ||
		for role in $(awk '{ print $2 }' "$TMPD/nodes" | sort -u); do
			emit_file "cloud-init-$role.yaml" cloud_init "$role"
		done
	if [ "$PATTERN" = swarmed ] && [ "$ORCH" = kubernetes ]; then
		emit_file k8s-base.yaml k8s_base
		emit_file k8s-plan.yaml k8s_plan_job
		emit_file k8s-tasks.yaml k8s_tasks_job
		emit_file k8s-merge.yaml k8s_merge_job
	fi
	[ "$PATTERN" = swarmed ] && [ "$ORCH" = swarm ] && emit_file stack.yml swarm_stack
	# the members, one word each: NAME=SANS
	# shellcheck disable=SC2046
	[ "$PATTERN" = consensus ] && emit_file etcd-tls.sh tls_script "$NAME" 365 $(awk '{ printf "%s=DNS:%s,DNS:localhost,IP:127.0.0.1\n", $1, $1 }' "$TMPD/nodes")
	echo
	if [ "$PATTERN" = swarmed ] && [ "$ORCH" = kubernetes ]; then
		k8s_cluster
		k8s_run
		return 0
	fi
	# etcd's certificates first: openssl failing here leaves nothing made there
	if [ "$PATTERN" = consensus ]; then
		echo "# etcd's certificates: the CA and its key stay on this machine, in TLS;"
		echo "# each member's certificate and key and the workers' client certificate"
		echo "# go to the secret MEMBER-etcd-tls, which that member reads at boot"
		echo "TLS=$(tls_state)"
		echo 'sh etcd-tls.sh "$TLS"'
		while read -r n r m z d; do
			echo "tar -C \"\$TLS\" -czf - ca.pem client.pem client-key.pem $n.pem $n-key.pem | base64 -w0 > \"\$TLS/$n.tls.b64\""
		done < "$TMPD/nodes"
	fi
	case $PROVIDER in
	gcp)
		net=$(c networking.vpc_name); sub=$(c networking.subnet_name)
		[ -z "$net" ] || echo "gcloud compute networks create $net --subnet-mode=custom"
		[ -z "$sub" ] || echo "gcloud compute networks subnets create $sub --network=$net --region=$REGION --range=$(c networking.subnet_cidr | grep . || echo 10.10.0.0/24)"
		[ "$(c networking.firewall.allow_http)" != true ] || echo "gcloud compute firewall-rules create $NAME-http --network=${net:-default} --allow=tcp:80"
		[ "$(c networking.firewall.allow_https)" != true ] || echo "gcloud compute firewall-rules create $NAME-https --network=${net:-default} --allow=tcp:443"
		[ "$PATTERN" != consensus ] || echo "gcloud compute firewall-rules create $NAME-etcd --network=${net:-default} --allow=tcp:2379-2380 --source-tags=$NAME --target-tags=$NAME"
		[ "$PATTERN" != swarmed ] || echo "gcloud compute firewall-rules create $NAME-cluster --network=${net:-default} --allow=$([ "$ORCH" = slurm ] && echo tcp:6817-6818,tcp:2049 || echo tcp:2377,tcp:7946,udp:7946,udp:4789,tcp:2049) --source-tags=$NAME --target-tags=$NAME" ;;
	aws) ;;
	azure)
		echo "az group create --name $RG --location $REGION"
		echo "az network vnet create --resource-group $RG --name $(c networking.vnet_name) --subnet-name $(c networking.subnet_name)"
		echo "az network nsg create --resource-group $RG --name $(c networking.nsg_name)"
		# access policies, not Azure RBAC (the default of newer az): the plan grants
		# each node's identity get and list with az keyvault set-policy
		needs_secrets && echo "az keyvault create --resource-group $RG --name $NAME-kv --location $REGION --enable-rbac-authorization false" ;;
	esac
	if [ "$MODEL_PROVIDER" != none ] && [ "$MODEL_PROVIDER" != local ]; then
		if [ -n "$KEYSRC" ]; then
			secret_store "$NAME-model-api-key"
		else
			echo "# no API key for $MODEL_PROVIDER: set software.model.api_key_file or \$$KEYENV"
			echo "$PROG: no API key for '$MODEL_PROVIDER': set software.model.api_key_file or \$$KEYENV" >&2
		fi
	fi
	if [ "$PATTERN" = swarmed ] && [ "$ORCH" = slurm ]; then
		echo "head -c 1024 /dev/urandom | base64 -w0 > munge.key.b64"
		secret_new "$NAME-munge-key" munge.key.b64
	fi
	if [ "$PATTERN" = swarmed ] && [ "$ORCH" = swarm ]; then
		secret_new "$NAME-swarm-manager-token"
		secret_new "$NAME-swarm-worker-token"
	fi
	if [ "$PATTERN" = consensus ]; then
		while read -r n r m z d; do secret_new "$n-etcd-tls" "\"\$TLS/$n.tls.b64\""; done < "$TMPD/nodes"
	fi
	[ "$PATTERN" != consensus ] || shared_fs_up
	while read -r n r m z d; do vm "$n" "$r" "$m" "$z" "${d:-50}"; done < "$TMPD/nodes"
	# the nodes' identities may read the key vault's secrets
	if [ "$PROVIDER" = azure ] && needs_secrets; then
		while read -r n r m z d; do
			echo "az keyvault set-policy --name $NAME-kv --object-id \$(az vm show --resource-group $RG --name $n --query identity.principalId --output tsv) --secret-permissions get list --output none"
		done < "$TMPD/nodes"
	fi
	if [ "$PROVIDER" = aws ] && has load_balancer; then
		echo "aws elbv2 create-load-balancer --region $REGION --name $NAME-lb --type $(c load_balancer.type) --scheme $(c load_balancer.scheme) --subnets$(i=0; while v=$(c networking.subnet_ids.$i) && [ -n "$v" ]; do printf ' %s' "$v"; i=$((i + 1)); done)"
	fi
}

render_status() {
	render_header
	if [ "$PATTERN" = swarmed ] && [ "$ORCH" = kubernetes ]; then
		echo "kubectl get jobs,pods -l memories-deployment=$NAME"
		return 0
	fi
	case $PROVIDER in
	gcp) echo "gcloud compute instances list --filter=labels.memories-deployment=$NAME" ;;
	aws) echo "aws ec2 describe-instances --region $REGION --filters Name=tag:memories-deployment,Values=$NAME" ;;
	azure) echo "az vm list --resource-group $RG --show-details --output table" ;;
	esac
}

render_destroy() {
	render_header
	secrets=
	uses_key && secrets="$NAME-model-api-key"
	[ "$PATTERN" = swarmed ] && [ "$ORCH" = slurm ] && secrets="$secrets $NAME-munge-key"
	[ "$PATTERN" = swarmed ] && [ "$ORCH" = swarm ] && secrets="$secrets $NAME-swarm-manager-token $NAME-swarm-worker-token"
	[ "$PATTERN" = consensus ] && secrets="$secrets $(awk '{ printf " %s-etcd-tls", $1 }' "$TMPD/nodes")"
	if [ "$PATTERN" = swarmed ] && [ "$ORCH" = kubernetes ]; then
		# the volume first, so that its storage (Filestore, Azure Files, EFS) goes too
		echo "kubectl delete jobs,persistentvolumeclaims,configmaps,secrets -l memories-deployment=$NAME --wait"
		case $PROVIDER in
		gcp) echo "gcloud container clusters delete $NAME --zone=$ZONE --quiet" ;;
		azure) echo "az group delete --name $RG --yes" ;;
		aws) echo "aws eks delete-nodegroup --region $REGION --cluster-name $NAME --nodegroup-name $NAME-workers"
			echo "aws eks wait nodegroup-deleted --region $REGION --cluster-name $NAME --nodegroup-name $NAME-workers"
			echo "aws eks delete-cluster --region $REGION --name $NAME" ;;
		esac
		return 0
	fi
	case $PROVIDER in
	gcp) while read -r n r m z d; do echo "gcloud compute instances delete $n --zone=$z --quiet"; done < "$TMPD/nodes"
		for s in $secrets; do echo "gcloud secrets delete $s --quiet"; done ;;
	aws) echo "aws ec2 terminate-instances --region $REGION --instance-ids \$(aws ec2 describe-instances --region $REGION --filters Name=tag:memories-deployment,Values=$NAME --query 'Reservations[].Instances[].InstanceId' --output text)"
		for s in $secrets; do echo "aws secretsmanager delete-secret --region $REGION --secret-id $s --force-delete-without-recovery"; done ;;
	azure) echo "az group delete --name $RG --yes" ;;
	esac
	[ "$PATTERN" != consensus ] || shared_fs_down
	if [ "$PATTERN" = consensus ]; then
		echo "# the etcd CA, its key and the certificates, on this machine"
		echo "TLS=$(tls_state)"
		echo 'echo "removing the etcd CA and certificates in $TLS" >&2'
		echo 'rm -rf "$TLS"'
	fi
}
