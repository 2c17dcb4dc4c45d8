#!/bin/sh
# test.sh - run every test on this machine: installs what the tests need,
# builds, runs `make check`, then the unit and CLI tests (less the deployment
# tests, see below) built with ASan and UBSan,
# then a build with --enable-cuda when nvcc is here (the CUDA kernels must
# compile; without a GPU the tests take the CPU path), then `make distcheck`.
#
#   MEM_TEST_QUICK=1 scripts/test.sh    only the first `make check`
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc)

./scripts/install-deps.sh --test

status=0
run_check() {	# run_check DIR LABEL TESTS [configure args]  (TESTS empty: all)
	dir=$1 label=$2 tests=$3
	shift 3
	echo "=== $label ===" >&2
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" --quiet "$@" && make -j"$jobs" -s --no-print-directory &&
		if [ -n "$tests" ]; then
			make -j"$jobs" -s --no-print-directory check TESTS="$tests"
		else
			make -j"$jobs" -s --no-print-directory check
		fi) || {
		echo "=== $label: FAILED ===" >&2
		for f in $(grep -lE '^(FAIL|ERROR|XPASS)' "$dir"/tests/*/*.log 2>/dev/null); do
			echo "--- $f" >&2
			tail -n 60 "$f" >&2
		done
		status=1
	}
}

autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
# out-of-tree builds: the source tree must stay unconfigured for them
[ -f Makefile ] && make -s distclean >/dev/null 2>&1 || true

run_check _build "make check" ""
if [ "${MEM_TEST_QUICK:-0}" != 1 ]; then
	# every unit and CLI test of the C code; the deploy-*.sh tests drive the
	# deployment shell scripts, etcd and Slurm (minutes under ASan), and the
	# C code they reach (the tools' ledger, mem-run) has its own tests here
	# (ledger.sh, run-*.sh), so they run once, in the first suite
	run_check _build-san "make check under ASan and UBSan" \
		'$(check_PROGRAMS) $(filter-out tests/cli/deploy%,$(CLI_TESTS))' --enable-sanitizers
	if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
		# the suites that reach the CUDA code: the kernels' unit tests and mem-infer
		run_check _build-cuda "make check of a --enable-cuda build" \
			'$(check_PROGRAMS) $(filter tests/cli/infer%,$(CLI_TESTS)) tests/cli/help.sh' --enable-cuda
	else
		echo "=== --enable-cuda: SKIP (no nvcc) ===" >&2
	fi
	echo "=== make distcheck ===" >&2
	(cd _build && make -s --no-print-directory distcheck \
		DISTCHECK_CONFIGURE_FLAGS=--quiet TESTS="tests/unit/test-manifest tests/unit/test-grid tests/unit/test-item tests/unit/test-kern tests/cli/help.sh tests/cli/pipeline.sh" \
		>distcheck.log 2>&1) || { tail -n 60 _build/distcheck.log >&2; echo "=== make distcheck: FAILED ===" >&2; status=1; }
fi
if [ "$status" = 0 ]; then
	echo "test.sh: all suites passed"
else
	echo "test.sh: some suites failed" >&2
fi
exit "$status"
