#!/bin/sh
# mem-run on the demo data: a recipe end to end, the checks of a bad recipe,
# the lock against overlapping runs, an incremental rerun that does no work
# (and one with a new scene that does only the new work), and kill -9 in the
# middle of a run followed by a rerun that ends with the same outputs.
. "$MEM_SRCDIR/tests/lib.sh"

mem-demo -o demo --size 512 > /dev/null

# recipe FILE [CATALOG...]: the demo recipe, reading the catalogs given
recipe() {
	f=$1
	shift
	{
		echo "version: 1"
		echo "name: t"
		echo "source:"
		echo "  catalog: [$(echo "$@" | sed 's/ /, /g')]"
		echo "assets: [red, nir, scl]"
		echo "grid: webmercator:14"
		echo "stages: [cloudmask, 'ndvi:mask=cloudmask']"
		echo "outputs:"
		echo "  dir: out"
		echo "run:"
		echo "  jobs: 2"
	} > "$f"
}
sums() { (cd "$1" && find . -name '*.tif' | sort | xargs md5sum); }

# --- a recipe end to end ---------------------------------------------------
recipe r.yaml demo/catalog.json
check "mem-run --dry-run exits 0" mem-run -n r.yaml
mem-run -n r.yaml > plan.txt
if [ "$(grep -c '^mem-' plan.txt)" -eq 4 ] && grep -q '^mem-tile -g webmercator:14 .*> .*runs/t/tiles.ndjson$' plan.txt; then
	ok "--dry-run prints the four commands"
else
	not_ok "--dry-run printed:"; sed 's/^/# /' plan.txt
fi
[ ! -e runs ] && ok "and runs nothing" || not_ok "--dry-run made runs/"
check "mem-run r.yaml exits 0" mem-run r.yaml
for m in scenes tiles results stored; do
	[ -s runs/t/$m.ndjson ] || not_ok "no runs/t/$m.ndjson"
done
n=$(wc -l < runs/t/stored.ndjson)
[ "$n" -ge 4 ] && ok "a manifest per stage in the run directory; $n tiles stored" || not_ok "$n tiles stored"
bad=0
for f in $(find out -name '*.tif'); do is_cog "$f" || bad=$((bad + 1)); done
[ "$bad" -eq 0 ] && [ -f out/catalog.json ] && ok "COGs and a catalog under out/" || not_ok "$bad outputs are not COGs"
if [ "$(json_get runs/t/run.json "len(d['stages']), d['inputs'][0], bool(d['gdal']), bool(d['proj']), d['tools']['mem-tile'].startswith('mem-tile (memories)'), d['status']")" = "4 S2A_32TNR_20240715_0_L2A_DEMO True True True 0" ]; then
	ok "run.json records stages, input ids, GDAL, PROJ and tool versions"
else
	not_ok "run.json: $(head -c 600 runs/t/run.json)"
fi
sums out > sums1

# --- an incremental rerun does no work -------------------------------------
check "a rerun exits 0" mem-run r.yaml
sums out > sums2
if cmp -s sums1 sums2; then ok "a rerun gives identical checksums"; else not_ok "a rerun changed outputs"; fi
if [ "$(json_get runs/t/run.json "[s['skipped'] for s in d['stages']]")" = "[False, True, True, True]" ]; then
	ok "and skips tile, infer and store (fetch asks the source again)"
else
	not_ok "stages skipped: $(json_get runs/t/run.json "[s['skipped'] for s in d['stages']]")"
fi

# --- a new scene: only the new work ------------------------------------------
mem-demo -o demo2 --size 512 > /dev/null
item=$(find demo2 -name 'S2A_*_DEMO.json')
/usr/bin/python3 - "$item" <<'EOF'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["id"] = "S2A_32TNR_20240725_0_L2A_DEMO"
d["properties"]["datetime"] = "2024-07-25T10:30:00Z"
json.dump(d, open(p, "w"))
EOF
find out -name '*.tif' -exec stat -c '%n %i %Y' {} + | sort > before
recipe r.yaml demo/catalog.json demo2/catalog.json
check "a run with one new scene exits 0" mem-run r.yaml
find out -name '*.tif' -exec stat -c '%n %i %Y' {} + | sort > after
new=$(comm -13 before after | wc -l)
changed=$(join before after | awk '$2 != $4 || $3 != $5' | wc -l)
if [ "$new" -gt 0 ] && [ "$changed" -eq 0 ]; then
	ok "the new scene adds $new files and rewrites none of the old ones"
else
	not_ok "$new new files, $changed old files rewritten"
fi
[ "$(json_get runs/t/run.json "len(d['inputs'])")" = 2 ] && ok "run.json names both input scenes" || not_ok "inputs: $(json_get runs/t/run.json "d['inputs']")"
recipe r.yaml demo/catalog.json

# --- recipe checks -------------------------------------------------------------
bad_recipe() {
	desc=$1 want=$2
	cat > bad.yaml
	set +e
	msg=$(mem-run -n bad.yaml 2>&1 >/dev/null)
	rc=$?
	set -e
	if [ "$rc" -eq 2 ] && [ "$msg" = "mem-run: bad.yaml: $want" ]; then
		ok "$desc"
	else
		not_ok "$desc: exit $rc, '$msg'"
	fi
}
sed 's/^grid: .*/grid: foo/' r.yaml > g.yaml
set +e; msg=$(mem-run -n g.yaml 2>&1 >/dev/null); rc=$?; set -e
case "$rc $msg" in "2 mem-run: g.yaml: grid: invalid grid 'foo'"*) ok "an unknown grid is named" ;; *) not_ok "grid: exit $rc, '$msg'" ;; esac
sed 's/^grid: .*/grid: webmercator:14\ngird: 3/' r.yaml > b1.yaml
bad_recipe "an unknown key is named" "unknown key 'gird'" < b1.yaml
sed "s/^stages: .*/stages: [ndvi, 'ndvx']/" r.yaml > s.yaml
set +e; msg=$(mem-run -n s.yaml 2>&1 >/dev/null); rc=$?; set -e
case "$rc $msg" in "2 mem-run: s.yaml: stages: "*ndvx*) ok "an unknown stage is named" ;; *) not_ok "stage: exit $rc, '$msg'" ;; esac
sed 's/^  dir: out/  dri: out/' r.yaml > b2.yaml
bad_recipe "an unknown nested key is named" "outputs: unknown key 'dri'" < b2.yaml
grep -v '^  catalog' r.yaml | sed 's/^source:/source: {}/' > b3.yaml
bad_recipe "a missing source is named" "source: missing (catalog, api or name)" < b3.yaml
printf 'version: 1\ngrid: [a\n' > y.yaml
set +e; msg=$(mem-run -n y.yaml 2>&1 >/dev/null); rc=$?; set -e
case "$rc $msg" in "2 mem-run: y.yaml: line "*) ok "malformed YAML is reported with its line" ;; *) not_ok "yaml: exit $rc, '$msg'" ;; esac
check_exit "a missing recipe exits 2" 2 mem-run -n no-such.yaml
for f in "$MEM_SRCDIR"/recipes/*.yaml; do
	case $f in
	*/land-cover.yaml)
		# its model is the user's to train: without it the recipe fails before any work
		set +e; msg=$(mem-run -n "$f" 2>&1 >/dev/null); rc=$?; set -e
		case "$rc $msg" in
		"2 mem-run: "*"cannot open model 'land-cover.h5'"*) ok "recipes/land-cover.yaml without its model: exit 2 naming land-cover.h5" ;;
		*) not_ok "land-cover.yaml without its model: exit $rc, '$msg'" ;;
		esac ;;
	*) check "recipes/${f##*/} is valid (mem-run -n, and -n --slurm)" sh -c 'mem-run -n "$1" && mem-run -n --slurm "$1"' sh "$f" ;;
	esac
done

sums out > sums3
# --- the lock --------------------------------------------------------------------
rm -rf runs/lk
sed 's/^name: t/name: lk/' r.yaml > lk.yaml
mem-run lk.yaml > /dev/null 2> lk1.err &
first=$!
i=0
while [ ! -e runs/lk/scenes.ndjson ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
set +e
msg=$(mem-run lk.yaml 2>&1 >/dev/null)
rc=$?
set -e
case "$rc $msg" in
"75 mem-run: "*"another run of this recipe holds the lock"*) ok "a second run while the first holds the lock exits 75" ;;
*) not_ok "second run: exit $rc, '$msg'" ;;
esac
check "a third run with --wait waits for the first and succeeds" mem-run --wait lk.yaml
wait $first && ok "the first run succeeds too" || not_ok "the first run failed: $(cat lk1.err)"
if [ "$(sums out | md5sum)" = "$(md5sum < sums3)" ]; then ok "and the outputs are those of one run"; else not_ok "overlapping runs changed the outputs"; fi

# --- kill -9 in the middle, then a rerun ------------------------------------------
mkdir k
cd k
ln -s ../demo demo
sed 's/^name: t/name: k/' ../r.yaml > k.yaml
setsid mem-run k.yaml > /dev/null 2>&1 &
bg=$!
i=0
# mem-tile has written its first tiles
while [ "$(find runs/k/work/tiles -type f 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 1200 ]; do sleep 0.02; i=$((i + 1)); done
/bin/kill -KILL -- -"$bg" 2>/dev/null || true
wait $bg 2>/dev/null || true
if [ -e runs/k/stored.ndjson ]; then not_ok "the run ended before the kill"; else ok "killed the run in its tile stage"; fi
check "after kill -9, a rerun exits 0" mem-run k.yaml
cd ..
if cmp -s sums1 - <<EOF
$(sums k/out)
EOF
then ok "and its outputs equal an uninterrupted run's"; else not_ok "outputs differ after kill -9 and rerun"; fi
left=$(find k/runs k/out -name '.*.tmp-*' | wc -l)
[ "$left" -eq 0 ] && ok "no temporary files left" || not_ok "$left temporary files left"

done_testing
