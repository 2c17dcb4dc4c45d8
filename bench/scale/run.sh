#!/usr/bin/env bash
# run.sh - batch scaling benchmark (issue 7): the wall time of one recipe
# over a fixed set of tiles as a single process on this host, and as a
# Slurm array job of 1, 2 and 4 tasks on the one-host cluster of
# scripts/slurm-local.sh, with the ratios single/Slurm (> 1: Slurm faster).
#
# Usage: bench/scale/run.sh [BUILDDIR] [SIZE]
#   BUILDDIR  the build tree holding src/cmd/mem-run (default: the
#             repository root, for an in-tree build)
#   SIZE      the side of mem-demo's scene in 10 m pixels (default 2048:
#             169 cells of WebMercatorQuad z14 at 256 px; 1024 is lighter)
#
# Environment:
#   MEM_BENCH_DIR     work dir (default /tmp/mem-bench-scale-SIZE); the
#                     scene is reused, the runs start from scratch
#   MEM_BENCH_TASKS   the array sizes (default "1 2 4")
#   MEM_SLURM_CPUS    CPUs the Slurm node offers (default: nproc, at least 4)
#   MEM_SLURM_PORT    slurmctld's port (default 16817; slurmd the next)
#
# The recipe: mem-demo's scene (a static STAC catalog of COGs), tiled on
# WebMercatorQuad z14, cloud mask and NDVI, stored as COGs, with run.jobs 1
# so that a task is one process.  Each Slurm time runs from `mem-run
# --slurm` (which fetches and plans on this host) until the merge job has
# left the queue, so it holds the scheduler's latency, the array tasks
# (tile and infer their cells) and the merge job (stores them all, alone);
# the single-process time is `mem-run` alone.  Every run's outputs must
# equal the single-process run's by checksum, else the script exits 1.
# Needs root (slurmd starts jobs as their owners) and slurm-wlm and munge.
# Timings on a shared machine move 20-50 % between runs: compare within one.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=$(cd "${1:-$srcdir}" && pwd)
size=${2:-2048}
work=${MEM_BENCH_DIR:-/tmp/mem-bench-scale-$size}
ntasks=${MEM_BENCH_TASKS:-1 2 4}
cpus=$(nproc)
[ "$cpus" -ge 4 ] || cpus=4
export MEM_SLURM_CPUS=${MEM_SLURM_CPUS:-$cpus}
PATH=$builddir/src/cmd:$PATH:/usr/sbin:/sbin
export PATH

for p in mem-run mem-demo sbatch squeue slurmctld munged; do
	command -v "$p" >/dev/null || { echo "run.sh: no $p (build first; Debian: slurm-wlm, munge)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run.sh: slurmd must run as root" >&2; exit 2; }

mkdir -p "$work"
cd "$work"
slurm="$work/slurm"
trap 'sh "$srcdir/scripts/slurm-local.sh" stop "$slurm" >/dev/null 2>&1 || true' EXIT INT TERM
[ -f demo/catalog.json ] || mem-demo -q -o demo --size "$size" > /dev/null
cat > recipe.yaml <<'YAML'
version: 1
name: scale
source:
  catalog: ../demo/catalog.json
assets: [red, nir, scl]
grid: webmercator:14
stages: [cloudmask, 'ndvi:mask=cloudmask']
outputs:
  dir: out
run:
  jobs: 1
YAML

sh "$srcdir/scripts/slurm-local.sh" start "$slurm" > slurm-start.log
export SLURM_CONF="$slurm/slurm.conf"

now() { date +%s.%N; }
sums() { (cd "$1" && find . -name '*.tif' | sort | xargs md5sum); }
wait_job() {
	while squeue -h -j "$1" 2>/dev/null | grep -q .; do sleep 0.1; done
}

rm -rf single && mkdir single && cp recipe.yaml single/
t0=$(now)
(cd single && mem-run -q recipe.yaml)
t_single=$(echo "$(now) - $t0" | bc)
sums single/out > ref.sums
cells=$(wc -l < single/runs/scale/tiles.ndjson)

declare -A wall
status=0
for n in $ntasks; do
	d=slurm-$n
	rm -rf "$d" && mkdir "$d" && cp recipe.yaml "$d/"
	t0=$(now)
	(cd "$d" && mem-run -q --slurm --tasks "$n" recipe.yaml)
	plan="$d/runs/scale/slurm/plan.json"
	arr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["array_job"])' "$plan")
	merge=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["merge_job"])' "$plan")
	wait_job "$arr"
	wait_job "$merge"
	wall[$n]=$(echo "$(now) - $t0" | bc)
	if ! sums "$d/out" | cmp -s ref.sums -; then
		echo "run.sh: the outputs of $n tasks differ from the single process's" >&2
		tail -3 "$d"/runs/scale/slurm/*.log >&2 || true
		status=1
	fi
done

echo "recipe: mem-demo --size $size, WebMercatorQuad z14, cloudmask + NDVI, $cells tiles, run.jobs 1"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); Slurm node offers $MEM_SLURM_CPUS CPUs"
printf '%-22s %10s %16s\n' run "wall (s)" "single / this"
printf '%-22s %10.2f %16s\n' "single process" "$t_single" 1.00
for n in $ntasks; do
	printf '%-22s %10.2f %16.2f\n' "slurm, $n task(s)" "${wall[$n]}" "$(echo "$t_single / ${wall[$n]}" | bc -l)"
done
[ $status -eq 0 ] && echo "every run's $(wc -l < ref.sums) COGs equal the single process's by checksum"
exit $status
