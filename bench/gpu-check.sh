#!/usr/bin/env bash
# gpu-check.sh - the prepared check for a machine with an NVIDIA GPU
# (H100/H200, sm_90): from a fresh checkout, in 9 minutes at most (GPU_CHECK_BUDGET),
#
#   1. env       what is here: GPU, driver, nvcc, compilers, GDAL (says what lacks)
#   2. kern      the kernels alone, no GDAL needed: nvcc + gcc build of
#                src/kern and src/kern/cuda, then tests/unit/test-cuda (every
#                CUDA kernel against its CPU kernel) and bench/infer/kern-bench
#                (each stage on CPU and GPU, GB/s, fraction of the memory-bound
#                limits measured in the same run)
#   3. deps      GDAL & co. when missing: scripts/install-deps.sh (package
#                mirrors only; skipped with MEM_GPU_NO_INSTALL=1)
#   4. build     autoreconf, configure --enable-cuda, make -j$(nproc)
#   5. unit      the configured build's tests/unit/test-cuda
#   6. cli       tests/cli/infer-cuda.sh: mem-infer --device cuda gives the
#                same files as --device cpu on a chain of every stage
#   7. bench     bench/infer/run.sh's GPU part on a full 10980x10980 tile: the
#                fused cloudmask+ndvi+zonal chain with --device cuda against
#                --device cpu (same outputs checked, wall times)
#
# Each step has its own timeout and a log in $OUT/gpu-check (or ./gpu-check-out);
# builds and the generated tile go to $GPU_CHECK_WORK (default /tmp/gpu-check-work);
# a step that fails or times out does not stop the later ones that do not
# depend on it.  The summary at the end holds the figures to record on
# issue 5.  Exit status: 0 when every step that ran passed, 1 otherwise.
#
# Usage: bench/gpu-check.sh            (from anywhere; works in the source tree)
# Environment: GPU_CHECK_SIZE (tile side for step 7, default 10980),
#   GPU_CHECK_BUDGET (seconds the whole check may take, default 540: one call
#   of a device tool limited to 10 minutes; step 7 gets what is left),
#   MEM_GPU_NO_INSTALL=1, GPU_CHECK_KERN_ONLY=1 (steps 1-2 only, about a minute),
#   NVCC (default: nvcc on PATH or /usr/local/cuda/bin/nvcc).
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
out=${OUT:-$top}/gpu-check
[ -n "${OUT:-}" ] || out=$top/gpu-check-out
# builds and the benchmark's tile stay out of $OUT (a device tool fetches $OUT back)
wk=${GPU_CHECK_WORK:-/tmp/gpu-check-work}
mkdir -p "$out" "$wk"
jobs=$(nproc)
size=${GPU_CHECK_SIZE:-10980}
t_start=$(date +%s)
status=0
summary=$out/summary.txt
: > "$summary"
export PATH=$PATH:/usr/local/cuda/bin
nvcc=${NVCC:-$(command -v nvcc || true)}
export top out wk jobs nvcc

note() { echo "$*" | tee -a "$summary"; }
# step NAME TIMEOUT CMD...: runs CMD with its output in $out/NAME.log
step() {
	local name=$1 limit=$2 t0 rc
	shift 2
	t0=$(date +%s)
	echo "=== $name (timeout ${limit}s) ===" >&2
	# bash -c: the shell functions below are exported, timeout(1) cannot run them itself
	timeout -k 10 "$limit" bash -c '"$@"' step "$@" > "$out/$name.log" 2>&1
	rc=$?
	tail -n 25 "$out/$name.log" >&2
	if [ $rc -eq 0 ]; then
		note "$(printf '%-6s %-5s %4ds' "$name" ok $(( $(date +%s) - t0 )))"
	else
		[ $rc -eq 124 ] && rc="timeout"
		note "$(printf '%-6s %-5s %4ds  (exit %s; log %s)' "$name" FAIL $(( $(date +%s) - t0 )) "$rc" "$out/$name.log")"
		status=1
	fi
	[ "$rc" = 0 ]
}

# --- 1. env ---------------------------------------------------------------------
env_report() {
	echo "host: $(uname -srm), $(nproc) CPUs, $(free -g | awk '/Mem/ { print $2 }') GB"
	nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader 2>&1 ||
		echo "LACKS: nvidia-smi (no driver?)"
	if [ -n "$nvcc" ]; then "$nvcc" --version | tail -n 2; else echo "LACKS: nvcc (CUDA toolkit)"; fi
	command -v gcc >/dev/null && gcc --version | head -n 1 || echo "LACKS: gcc"
	for t in autoreconf pkg-config gdal_calc.py gdal_rasterize timeout; do
		command -v $t >/dev/null || echo "LACKS: $t"
	done
	pkg-config --exists gdal 2>/dev/null && echo "gdal $(pkg-config --modversion gdal)" || echo "LACKS: libgdal-dev"
	/usr/bin/python3 -c 'from osgeo import gdal; import numpy' 2>/dev/null || echo "LACKS: python3-gdal/numpy"
	return 0
}
export -f env_report
step env 30 env_report
grep LACKS "$out/env.log" | sed 's/^/       /' >> "$summary"
[ -n "$nvcc" ] || { note "no nvcc: nothing to check"; cat "$summary"; exit 1; }

# --- 2. the kernels alone (no GDAL, no autotools) ------------------------------------
kern_build() {
	local b=$wk/kern
	rm -rf "$b" && mkdir -p "$b"
	printf '#define HAVE_CUDA 1\n' > "$b/config.h"
	for f in src/kern/cuda/*.cu; do
		"$nvcc" -fmad=false -O3 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
			-I"$b" -Isrc/kern -c -o "$b/$(basename "$f" .cu).o" "$f" &
	done
	wait
	ls "$b"/*.o | wc -l | grep -qx "$(ls src/kern/cuda/*.cu | wc -l)" || { echo "nvcc failed"; return 1; }
	local cf="-O2 -fopenmp -fno-trapping-math -fno-math-errno -I$b -Isrc/kern"
	gcc $cf -o "$b/test-cuda" tests/unit/test-cuda.c src/kern/*.c "$b"/*.o \
		-L"$(dirname "$(dirname "$nvcc")")/lib64" -lcudart_static -ldl -lrt -lpthread -lstdc++ -lm &&
	gcc $cf -o "$b/kern-bench" bench/infer/kern-bench.c src/kern/*.c "$b"/*.o \
		-L"$(dirname "$(dirname "$nvcc")")/lib64" -lcudart_static -ldl -lrt -lpthread -lstdc++ -lm
}
export -f kern_build
if step kbuild 240 kern_build; then
	step ktest 180 "$wk/kern/test-cuda"
	{ grep -E '^not ok|worst|beyond|SKIPPED' "$out/ktest.log" | sort -u | head -n 30
	  echo "$(grep -c '^ok' "$out/ktest.log") ok ($(grep -c '# SKIP' "$out/ktest.log") skipped), $(grep -c '^not ok' "$out/ktest.log") not ok"
	} | sed 's/^/       /' >> "$summary"
	step kbench 240 "$wk/kern/kern-bench" 10980 2048
	sed 's/^/       /' "$out/kbench.log" >> "$summary"
fi

# --- 3-4. the whole project, configured with --enable-cuda ---------------------------
deps() {
	if pkg-config --exists gdal && command -v autoreconf >/dev/null && /usr/bin/python3 -c 'from osgeo import gdal' 2>/dev/null; then
		echo "dependencies present"
		return 0
	fi
	[ "${MEM_GPU_NO_INSTALL:-0}" = 1 ] && { echo "dependencies missing and MEM_GPU_NO_INSTALL=1"; return 1; }
	scripts/install-deps.sh --test
}
build() {
	autoreconf -fi > /dev/null 2>&1 || autoreconf -fi || return 1
	mkdir -p "$wk/build" && cd "$wk/build" &&
		"$top/configure" --quiet --enable-cuda &&
		make -j"$jobs" -s && make -j"$jobs" -s tests/unit/test-cuda bench/infer/kern-bench
}
export -f deps build
built=0
if [ "${GPU_CHECK_KERN_ONLY:-0}" = 1 ]; then
	note "deps, build, unit, cli, bench: SKIP (GPU_CHECK_KERN_ONLY=1)"
elif step deps 300 deps && step build 300 build; then
	built=1
	step unit 180 "$wk/build/tests/unit/test-cuda"
	grep -E '^not ok' "$out/unit.log" | head -n 10 | sed 's/^/       /' >> "$summary"
	step cli 240 env MEM_SRCDIR="$top" MEM_BIN="$wk/build/src/cmd" MEM_BUILDDIR="$wk/build" \
		MEM_REALDATA="$top/../shared/realdata" sh tests/cli/infer-cuda.sh
	grep -E '^(not )?ok' "$out/cli.log" | sed 's/^/       /' >> "$summary"
fi

# --- 7. the GPU part of bench/infer on a full tile ---------------------------------
if [ $built = 1 ]; then
	left=$(( ${GPU_CHECK_BUDGET:-540} - ($(date +%s) - t_start) ))
	if [ $left -gt 120 ]; then
		step bench $((left - 20)) env MEM_BENCH_PARTS=gpu MEM_BENCH_DIR="$wk/bench-$size" \
			bench/infer/run.sh "$wk/build" "$size"
		grep -E '^(  chain|check|chain|inputs|result)' "$out/bench.log" | sed 's/^/       /' >> "$summary"
	else
		note "bench  SKIP  (only ${left}s left of GPU_CHECK_BUDGET)"
	fi
fi

echo
echo "==================== gpu-check summary ($(( $(date +%s) - t_start ))s) ===================="
cat "$summary"
[ $status = 0 ] && echo "gpu-check: PASS" || echo "gpu-check: FAIL (logs in $out)"
exit $status
