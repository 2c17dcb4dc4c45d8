#!/bin/sh
# A recipe as a Slurm array job over real data: recipes/field-stats.yaml on
# the three T13SFA crops of September 2024 and the texas_west fields
# (tests/offline-recipe.py puts the local items in place of its search, and
# a 256-pixel grid so that there are cells for three tasks), on a one-host
# Slurm cluster started by scripts/slurm-local.sh on loopback.  The merged
# outputs (COGs, GeoPackages, items, catalog) equal the single-host run's
# by checksum, and the merge job's --metrics add up the tasks' counts.
. "$MEM_SRCDIR/tests/lib.sh"

PATH=$PATH:/usr/sbin:/sbin
for p in munged slurmctld slurmd sbatch; do
	command -v $p >/dev/null 2>&1 ||
		skip_all "no $p: install the Debian packages slurm-wlm and munge (scripts/install-deps.sh --test)"
done
[ "$(id -u)" = 0 ] || skip_all "slurmd must run as root to start jobs"
have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip_all "no PyYAML for /usr/bin/python3 (python3-yaml)"
A=$(realdata s2/T13SFA_20240901_cdse_crop)
F=$(realdata vector/fields/texas_west_fields.geojson)
[ -n "$A" ] && [ -n "$F" ] || skip_all "no T13SFA crops or field polygons in ../shared/realdata"

S="$T/slurm"
# away from run-slurm.sh's 20000-23999
MEM_SLURM_PORT=$((24000 + ($$ % 2000) * 2))
export MEM_SLURM_PORT
trap 'sh "$MEM_SRCDIR/scripts/slurm-local.sh" stop "$S" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT INT TERM
if sh "$MEM_SRCDIR/scripts/slurm-local.sh" start "$S" > start.log 2>&1; then
	ok "slurm-local.sh starts munged, slurmctld and slurmd on 127.0.0.1:$MEM_SLURM_PORT"
else
	not_ok "slurm-local.sh start"
	sed 's/^/# /' start.log
	tail -20 "$S/slurmctld.log" "$S/slurmd.log" 2>/dev/null | sed 's/^/# /'
	done_testing
	exit 1
fi
SLURM_CONF="$S/slurm.conf"
export SLURM_CONF

OFF="$MEM_SRCDIR/tests/offline-recipe.py"
gdal_py "$OFF" items "$MEM_REALDATA" > items.ndjson
gdal_py "$OFF" recipe "$MEM_SRCDIR/recipes/field-stats.yaml" fs.yaml "$T/items.ndjson" \
    "sub:fields.geojson|$F" 'grid="utm:10:256"' 'run={"jobs": 1}' 2> said.txt
sums() { (cd "$1" && find . -type f | sort | xargs md5sum); }
wait_job() {
	i=0
	while squeue -h -j "$1" 2>/dev/null | grep -q . && [ $i -lt 1200 ]; do sleep 0.2; i=$((i + 1)); done
	[ $i -lt 1200 ]
}
plan_get() { json_get "$1/runs/field-stats/slurm/plan.json" "d['$2']"; }

mkdir a b
cp fs.yaml a/ && cp fs.yaml b/
check "the single-host run" sh -c "cd a && mem-run -q fs.yaml"
sums a/out > ref.sums

t0=$(date +%s)
if (cd b && mem-run --slurm --tasks 3 --metrics "$T/b.prom" fs.yaml 2> submit.err); then
	ok "mem-run --slurm --tasks 3 submits"
else
	not_ok "mem-run --slurm: $(cat b/submit.err)"
fi
arr=$(plan_get b array_job)
merge=$(plan_get b merge_job)
cells=$(plan_get b cells)
wait_job "$arr" && wait_job "$merge" || not_ok "jobs still queued after 240 s"
diag "array job and merge job done in $(($(date +%s) - t0)) s"
n=$(ls b/runs/field-stats/shards/*/done 2>/dev/null | wc -l)
[ "$n" -eq 3 ] && ok "every task left its done marker" || not_ok "$n of 3 tasks done: $(tail -5 b/runs/field-stats/slurm/*.log)"
# each task tiled its own cells, and some of them
per=$(echo $(for i in 0 1 2; do wc -l < b/runs/field-stats/shards/$i/tiles.ndjson; done))
total=$(wc -l < a/runs/field-stats/tiles.ndjson)
set -- $per
[ $(($1 + $2 + $3)) -eq "$total" ] && [ "$1" -gt 0 ] && [ "$2" -gt 0 ] && [ "$3" -gt 0 ] &&
	ok "the tasks made $per tiles of the $total of the single-host run ($cells cells)" || not_ok "tiles per task: $per of $total"
if [ -s b/runs/field-stats/stored.ndjson ] && sums b/out | cmp -s ref.sums -; then
	ok "the merged outputs equal the single-host run's by checksum ($(wc -l < ref.sums) files: COGs, GeoPackages, items)"
else
	not_ok "merged outputs differ from the single-host run's: $(sums b/out | diff ref.sums - | head -4 | tr '\n' ' ')"
	tail -5 b/runs/field-stats/slurm/*.log | sed 's/^/# /'
fi
# the merge job's metrics: the tasks' tile and infer counts summed, the store's own
m() { sed -n "s/^memories_run_stage_items_total{recipe=\"field-stats\",stage=\"$1\",status=\"$2\"} //p" b.prom; }
stored=$(wc -l < a/runs/field-stats/stored.ndjson)
if [ "$(m tile done)" = "$total" ] && [ "$(m infer done)" = "$total" ] && [ "$(m store done)" = "$stored" ] &&
    grep -q '^memories_run_exit_status{recipe="field-stats"} 0$' b.prom; then
	ok "the merge job's --metrics: $total tiles made and inferred over 3 tasks, $stored stored, exit 0"
else
	not_ok "merge metrics: tile $(m tile done) infer $(m infer done) store $(m store done) (want $total, $total, $stored)"
fi

sed 's/^# //; s/^/# /' said.txt
done_testing
