#!/bin/sh
# install-deps.sh - install what memories needs on Debian 12 (run as root).
#
#   scripts/install-deps.sh          build and run dependencies
#   scripts/install-deps.sh --test   also what the test suite uses: mandoc,
#                                    slurm-wlm and munge (a one-host Slurm),
#                                    etcd-server and etcd-client (local consensus),
#                                    cloud-init and docker-compose (offline checks
#                                    of rendered cloud-init and Swarm stacks),
#                                    and from npm the offline STAC validator,
#                                    s3rver, an S3 server for the tests, and
#                                    kubernetes-models with yaml (offline checks
#                                    of rendered Kubernetes manifests)
#                                    (into $MEM_TOOLS, default /opt/memories-tools)
#
# Packages already installed are not asked for again, so a second run costs
# nothing and needs no network.
set -eu

PKGS="build-essential autoconf automake libtool pkg-config
libgdal-dev gdal-bin libproj-dev proj-bin libtiff-dev libhdf5-dev hdf5-tools
libnetcdf-dev netcdf-bin libcurl4-openssl-dev libjansson-dev libyaml-dev
python3 python3-gdal python3-numpy curl ca-certificates"
TEST_PKGS="mandoc groff-base nginx-light nodejs npm make slurm-wlm munge etcd-server etcd-client
cloud-init docker-compose"

test_deps=0
[ "${1:-}" = "--test" ] && test_deps=1
[ "$test_deps" = 1 ] && PKGS="$PKGS $TEST_PKGS"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
# node and npm may come from elsewhere than Debian (as on the build machines)
if [ "$test_deps" = 1 ] && command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	missing=$(printf '%s\n' $missing | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
missing=$(echo $missing)

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps.sh: missing Debian packages: $missing" >&2
		echo "install-deps.sh: run as root, or: sudo apt-get install $missing" >&2
		exit 1
	fi
	echo "install-deps.sh: installing $missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Packages such as etcd-server, munge and slurm-wlm start their daemons on
	# install (cloud-init only enables systemd units, which do nothing here); the tests start their own on loopback and stop them.  A
	# policy-rc.d that refuses (101) keeps the packages' own from starting.
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy=/usr/sbin/policy-rc.d
	fi
	rc=0
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
	[ -n "$policy" ] && rm -f "$policy"
	[ "$rc" = 0 ] || exit "$rc"
fi

if [ "$test_deps" = 1 ]; then
	T=${MEM_TOOLS:-/opt/memories-tools}
	if [ ! -x "$T/node_modules/.bin/stac-node-validator" ]; then
		echo "install-deps.sh: installing stac-node-validator into $T" >&2
		mkdir -p "$T"
		if ! (cd "$T" && npm install --no-audit --no-fund --loglevel=error \
		    stac-node-validator@2.0.0 >/dev/null 2>&1); then
			echo "install-deps.sh: npm install failed: STAC validation tests will be skipped" >&2
		fi
	fi
	# an S3-compatible server for the object store tests (tests/cli/store-s3.sh)
	if [ ! -f "$T/node_modules/s3rver/bin/s3rver.js" ]; then
		echo "install-deps.sh: installing s3rver into $T" >&2
		mkdir -p "$T"
		if ! (cd "$T" && npm install --no-audit --no-fund --loglevel=error \
		    s3rver@3.7.1 >/dev/null 2>&1); then
			echo "install-deps.sh: npm install failed: object store tests will be skipped" >&2
		fi
	fi
	# offline validation of the Kubernetes manifests deploy.sh renders
	# (tests/cli/deploy-render.sh, deployments/lib/k8s-validate.mjs)
	if [ ! -f "$T/node_modules/kubernetes-models/package.json" ] || [ ! -f "$T/node_modules/yaml/package.json" ]; then
		echo "install-deps.sh: installing kubernetes-models and yaml into $T" >&2
		mkdir -p "$T"
		if ! (cd "$T" && npm install --no-audit --no-fund --loglevel=error \
		    kubernetes-models@4.5.1 yaml@2 >/dev/null 2>&1); then
			echo "install-deps.sh: npm install failed: Kubernetes manifest checks will be skipped" >&2
		fi
	fi
fi
