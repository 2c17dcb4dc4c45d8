# tests/lib.sh - sourced by every CLI test: TAP helpers, a temp dir, the tools on PATH.
#
# Each test script prints TAP (https://testanything.org) on stdout; automake's
# tap-driver.sh reads it.  A test that cannot run here says so with
# "1..0 # SKIP reason" or "ok N # SKIP reason"; nothing passes silently.

set -eu

: "${MEM_SRCDIR:?run through make check (MEM_SRCDIR unset)}"
: "${MEM_BIN:?run through make check (MEM_BIN unset)}"
: "${MEM_REALDATA:=$MEM_SRCDIR/../shared/realdata}"
PATH="$MEM_BIN:$PATH"
export PATH MEM_REALDATA
unset MEM_WORKDIR
# A safety net: the recorded STAC answers name real servers.  Anything that
# tried one would go to a dead proxy on loopback, never out of this machine;
# the tests' own servers are on loopback, which goes direct.
http_proxy=http://127.0.0.1:9
https_proxy=http://127.0.0.1:9
HTTP_PROXY=$http_proxy
HTTPS_PROXY=$https_proxy
no_proxy=127.0.0.1,localhost
NO_PROXY=$no_proxy
export http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY

T=$(mktemp -d "${TMPDIR:-/tmp}/mem-test.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
cd "$T"

tap_n=0
tap_failed=0

plan() { echo "1..$1"; }

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

skip() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n # SKIP $*"
}

skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

diag() { echo "# $*"; }

# check DESC CMD...: ok when CMD succeeds; its output is shown on failure.
check() {
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc"
		printf '%s\n' "$out" | sed 's/^/# /' | head -40
	fi
}

# check_exit DESC CODE CMD...: ok when CMD exits with CODE.
check_exit() {
	desc=$1
	want=$2
	shift 2
	set +e
	out=$("$@" 2>&1)
	got=$?
	set -e
	if [ "$got" -eq "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc (exit $got, want $want)"
		printf '%s\n' "$out" | sed 's/^/# /' | head -40
	fi
}

# stderr_of CMD...: runs CMD, prints only its standard error (status ignored).
stderr_of() {
	"$@" 2>&1 >/dev/null || true
}

# json_get FILE EXPR: evaluates a Python expression over "d", the JSON document
# in FILE, or its first line when FILE holds one item per line.
json_get() {
	/usr/bin/python3 -c "
import json, sys
t = open(sys.argv[1]).read()
try:
    d = json.loads(t)
except ValueError:
    d = json.loads(t.split('\\n', 1)[0])
print($2)" "$1"
}

# gdal_py: Python with GDAL's bindings (python3 on PATH may be another build).
gdal_py() { /usr/bin/python3 "$@"; }

have_gdal_py() { /usr/bin/python3 -c 'from osgeo import gdal; import numpy' 2>/dev/null; }

# realdata SUBPATH: the path of a shared real-data file, or nothing when absent.
realdata() {
	if [ -e "$MEM_REALDATA/$1" ]; then
		printf '%s\n' "$MEM_REALDATA/$1"
	fi
}

# demo: makes the demo catalog in ./demo once.
demo() {
	[ -f demo/catalog.json ] || mem-demo -o demo "$@"
}

# kill_pidfiles DIR...: SIGKILL the process group (else the process) named by
# each DIR/*.pid, for the traps of tests that start services
kill_pidfiles() {
	for d in "$@"; do
		for p in "$d"/*.pid; do
			[ -f "$p" ] || continue
			kill -9 "-$(cat "$p")" 2>/dev/null || kill -9 "$(cat "$p")" 2>/dev/null || true
		done
	done
}

# small_recipe: mem-demo's scene in demo/ and small.yaml, a recipe of 9 tiles
# over a corner of it (cloudmask, masked NDVI), for the ledger and consensus
# tests
small_recipe() {
	mem-demo -o demo > /dev/null
	cat > small.yaml <<EOF
version: 1
name: small
source:
  catalog: demo/catalog.json
dates: 2024-07-01/2024-07-31
area:
  bbox: [9.78, 46.05, 9.83, 46.08]
assets: [red, nir, scl]
grid: webmercator:14
stages:
  - cloudmask
  - ndvi:mask=cloudmask
outputs:
  dir: out
  title: NDVI
EOF
}

# small_reference: a plain mem-run of small.yaml, its outputs moved to
# out-std/, their list in std.files, its tile count in NT
small_reference() {
	mem-run -q --run-dir std small.yaml
	mv out out-std
	NT=$(wc -l < std/tiles.ndjson)
	(cd out-std && find . -type f | sort) > std.files
}

# same_out DIR: DIR holds small_reference's files, each byte for byte
same_out() {
	(cd "$1" && find . -type f | sort) > got.files
	cmp -s std.files got.files || { diff std.files got.files | head -5 | sed 's/^/# /'; return 1; }
	while read -r f; do cmp -s "out-std/$f" "$1/$f" || { echo "# differs: $f"; return 1; }; done < std.files
}

# is_cog FILE: gdalinfo opens FILE and reports COG layout.
is_cog() {
	gdalinfo "$1" 2>/dev/null | grep -q 'LAYOUT=COG'
}

# run_example NAME SCRIPT: runs a documented example with sh -e in a fresh
# directory where mem-demo has made demo/, offline, stdin closed, under
# timeout(1) when there is one; one TAP line, with the example and the tail
# of its output when it fails.
run_example() {
	ex_dir="$T/run/$1"
	ex_log="$T/run/$1.log"
	ex_timeout=
	command -v timeout >/dev/null 2>&1 && ex_timeout="timeout ${MEM_EXAMPLE_TIMEOUT:-300}"
	mkdir -p "$ex_dir"
	if (
		cd "$ex_dir" || exit 1
		unset MEM_WORKDIR
		if ! mem-demo -o demo > "$ex_log" 2>&1; then
			echo "mem-demo -o demo failed" >> "$ex_log"
			exit 1
		fi
		exec $ex_timeout sh -e "$2" < /dev/null >> "$ex_log" 2>&1
	); then
		ok "$1"
	else
		ex_rc=$?
		not_ok "$1"
		echo "# exit status $ex_rc; the example:"
		sed 's/^/#   /' "$2"
		echo "# its output:"
		tail -n 40 "$ex_log" | sed 's/^/# /'
	fi
}

done_testing() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}
