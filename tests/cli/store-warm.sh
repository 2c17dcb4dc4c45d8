#!/bin/sh
# mem-store tier --to warm: hot COGs become time slices of one netCDF-4
# CF-1.8 cube per collection (DIR/COLLECTION/cube.nc) and back: GDAL reads
# each slice with the original values, ncdump -h shows the CF attributes,
# verify passes after every move and catches a changed slice value, a dry
# run and a rerun change nothing, kill -9 mid-move then a rerun finishes,
# --tier warm when storing, and items that cannot go warm stay hot.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
command -v ncdump > /dev/null 2>&1 || skip_all "no ncdump (netcdf-bin)"
demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
mem-tile -g webmercator:13 --bands red,nir --workdir w < scene.json | mem-infer -s ndvi --workdir w > t.json
# eight tiles on two dates, so the cube has two time steps: the first three 2024-06-01
/usr/bin/python3 - > tiles.json <<'PY'
import json
for i, l in enumerate(open('t.json').readlines()[:8]):
    d = json.loads(l)
    if i < 3:
        d['properties']['datetime'] = '2024-06-01T10:00:00Z'
    print(json.dumps(d))
PY
n=$(wc -l < tiles.json)
[ "$n" -eq 8 ] || skip_all "only $n tiles to move"

snap() { find "$1" -type f -printf '%P %T@ ' -exec sha256sum {} \; | awk '{print $1, $2, $3}' | sort; }
# each item's ndvi values as GDAL reads them (the cube slice when warm) -> NAME.npz
cat > px.py <<'PY'
import json, glob, os, sys
from osgeo import gdal
import numpy as np
root, out = sys.argv[1], sys.argv[2]
arrs = {}
how = set()
for j in glob.glob(root + '/ndvi/*/*.json'):
    d = json.load(open(j)); a = d['assets']['ndvi']
    p = os.path.join(os.path.dirname(j), a['href'])
    if a.get('storage:tier') == 'warm':
        ds = gdal.Open('NETCDF:"%s":%s' % (p, a['warm:variable']))
        x, y, w, h = a['warm:window']
        arrs[d['id']] = ds.GetRasterBand(a['warm:band']).ReadAsArray(x, y, w, h)
        how.add('warm')
    else:
        ds = gdal.Open(p)
        arrs[d['id']] = ds.GetRasterBand(1).ReadAsArray()
        how.add(ds.GetMetadataItem('LAYOUT', 'IMAGE_STRUCTURE'))
np.savez(out, **arrs)
print(' '.join(sorted(str(l) for l in how)), len(arrs))
PY
same_px() {
	gdal_py -c "
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
print(int(sorted(a.files) == sorted(b.files) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=True) for k in a.files)))" "$1" "$2"
}
count_tier() { grep -l "\"storage:tier\": \"$2\"" "$1"/ndvi/*/*.json 2> /dev/null | wc -l; }

check "store $n tiles hot" sh -c 'mem-store -o out < tiles.json > /dev/null'
r=$(gdal_py px.py out hot.npz)
[ "$r" = "COG $n" ] && ok "GDAL reads $n hot COGs" || not_ok "hot: $r"
cp -a out hot

# --dry-run: names what would move, changes nothing
snap out > before.txt
mem-store tier out --to warm --dry-run 2> dry.txt
snap out > after.txt
cmp -s before.txt after.txt && [ "$(grep -c 'hot -> warm' dry.txt)" -eq "$n" ] &&
	ok "--dry-run names the $n items and changes nothing" || not_ok "dry run: $(head -3 dry.txt)"

# hot -> warm
t0=$(date +%s%N)
check "tier --to warm" sh -c 'mem-store tier out --to warm 2> move.txt'
ms=$((($(date +%s%N) - t0) / 1000000))
diag "moving $n items to warm takes $ms ms"
[ "$(count_tier out warm)" -eq "$n" ] && [ -f out/ndvi/cube.nc ] && [ -z "$(find out -name '*.tif')" ] &&
	ok "all $n items warm in out/ndvi/cube.nc, no COG left" || not_ok "warm: $(count_tier out warm); $(find out -name '*.tif' | head -2)"
check "verify passes after the move to warm" mem-store verify out
r=$(gdal_py px.py out warm.npz)
[ "$r" = "warm $n" ] && [ "$(same_px hot.npz warm.npz)" = 1 ] &&
	ok "GDAL reads each slice of the cube with the values of its COG" || not_ok "warm: $r, same $(same_px hot.npz warm.npz)"
# the slice named by warm:gdal and warm:band, through gdal_translate, equals the COG too
j=$(ls out/ndvi/*/*.json | tail -1)
args=$(json_get "$j" "d['assets']['ndvi']['warm:gdal'].replace('../', '$(dirname "$j")/../') + ' ' + str(d['assets']['ndvi']['warm:band']) + ' ' + ' '.join(map(str, d['assets']['ndvi']['warm:window']))")
set -- $args
gdal_translate -q -b "$2" -srcwin "$3" "$4" "$5" "$6" "$1" slice.tif
id=$(json_get "$j" "d['id']")
r=$(gdal_py -c "
from osgeo import gdal; import numpy as np, sys
a = gdal.Open('slice.tif').ReadAsArray(); b = gdal.Open('hot/ndvi/$id/ndvi.tif').ReadAsArray()
print(int(np.array_equal(a, b, equal_nan=True)))")
[ "$r" = 1 ] && ok "gdal_translate of warm:gdal band warm:band equals the COG" || not_ok "gdal_translate slice differs"
ncdump -h out/ndvi/cube.nc > h.txt
grep -q 'Conventions = "CF-1.8"' h.txt && grep -q 'grid_mapping' h.txt && grep -q 'time:units = "seconds since' h.txt &&
	grep -q 'ndvi(time, y, x)' h.txt && ok "ncdump -h shows CF-1.8, time units, grid_mapping, ndvi(time, y, x)" ||
	not_ok "ncdump: $(head -20 h.txt)"
[ "$(gdal_py -c "from osgeo import gdal; print(gdal.Open('NETCDF:\"out/ndvi/cube.nc\":ndvi').RasterCount)")" = 2 ] &&
	ok "the cube has two time steps" || not_ok "time steps"
json_get "$j" "' '.join([d['assets']['ndvi']['type'], str('file:checksum' in d['assets']['ndvi']), d['assets']['ndvi']['warm:checksum'][:4]])" > f.txt
[ "$(cat f.txt)" = "application/x-netcdf False 1220" ] && ok "a warm asset: application/x-netcdf, warm:checksum, no file:checksum" ||
	not_ok "fields: $(cat f.txt)"

# warm:checksum is the SHA-256 of the window's values as little-endian, row-major, computed here apart
r=$(gdal_py -c "
import json, glob, os, hashlib
from osgeo import gdal
import numpy as np
bad = 0
for j in glob.glob('out/ndvi/*/*.json'):
    a = json.load(open(j))['assets']['ndvi']
    ds = gdal.Open('NETCDF:\"%s\":%s' % (os.path.join(os.path.dirname(j), a['href']), a['warm:variable']))
    x, y, w, h = a['warm:window']
    v = ds.GetRasterBand(a['warm:band']).ReadAsArray(x, y, w, h)
    bad += a['warm:checksum'] != '1220' + hashlib.sha256(v.astype(v.dtype.newbyteorder('<')).tobytes()).hexdigest()
print(bad)")
[ "$r" = 0 ] && ok "warm:checksum is the SHA-256 of the slice's values (little-endian, row-major)" || not_ok "$r checksums off"
V=${MEM_TOOLS:-/opt/memories-tools}
S=$MEM_SRCDIR/../shared/schemas
if [ -x "$V/node_modules/.bin/stac-node-validator" ] && [ -d "$S/stac-spec-1.0.0" ]; then
	if v=$("$V/node_modules/.bin/stac-node-validator" "$j" \
	    --schemas "$S/stac-spec-1.0.0" --schemaMap "https://geojson.org/schema/=$S/geojson/" \
	    "https://stac-extensions.github.io/=$S/stac-extensions/" \
	    "https://proj.org/schemas/=$S/projjson/" 2>&1); then
		ok "stac-node-validator accepts a warm item"
	else
		not_ok "stac-node-validator rejects a warm item"
		printf '%s\n' "$v" | tail -20 | sed 's/^/# /'
	fi
else
	skip "no stac-node-validator in $V or no schemas in $S"
fi

# a rerun changes nothing
snap out > before.txt
mem-store -q tier out --to warm
snap out > after.txt
cmp -s before.txt after.txt && ok "a rerun of --to warm changes nothing" || not_ok "a rerun changed files"

# warm -> hot
check "tier --to hot" sh -c 'mem-store tier out --to hot 2> back.txt'
r=$(gdal_py px.py out back.npz)
[ "$r" = "COG $n" ] && [ "$(same_px hot.npz back.npz)" = 1 ] &&
	ok "back hot: $n COGs with the original values" || not_ok "back: $r"
check "verify passes after the move back" mem-store verify out
[ "$(count_tier out hot)" -eq "$n" ] && ! grep -q 'warm:' out/ndvi/*/*.json &&
	ok "no warm:* field left" || not_ok "warm fields left"
snap out > before.txt
mem-store -q tier out --to hot
snap out > after.txt
cmp -s before.txt after.txt && ok "a rerun of --to hot changes nothing" || not_ok "a rerun changed files"
check "and they go warm again" mem-store -q tier out --to warm
check "verify passes" mem-store verify out

# an earlier date stored warm later renumbers the cube's time steps: the
# items already warm are pointed at their new band
cp -a out e
head -1 tiles.json | gdal_py -c "
import json, sys
d = json.loads(sys.stdin.readline())
d['id'] = 'early-' + d['id']; d['properties']['datetime'] = '2024-05-01T10:00:00Z'
print(json.dumps(d))" > early.json
check "store an item of an earlier date with --tier warm" sh -c 'mem-store -q -o e --tier warm < early.json > /dev/null'
r=$(gdal_py px.py e early.npz)
r2=$(gdal_py -c "
import numpy as np
a = np.load('hot.npz'); b = np.load('early.npz')
print(len(b.files), int(all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.files)))")
[ "$r2" = "$((n + 1)) 1" ] && ok "warm:band of the items already warm follows the new step: values still equal" ||
	not_ok "after an earlier date: $r, $r2"
check "verify passes" mem-store verify e

# warm -> cold goes by way of hot: the archives hold COGs of the same values
cp -a out c
check "tier --to cold from warm" sh -c 'mem-store -q tier c --to cold'
[ "$(count_tier c cold)" -eq "$n" ] && [ -z "$(find c -name '*.tif')" ] && ls c/ndvi/archive-*.tar > /dev/null 2>&1 &&
	ok "all $n warm items are cold, no COG left" || not_ok "cold: $(count_tier c cold)"
check "verify passes" mem-store verify c

# verify catches a changed slice value (written through GDAL's netCDF update mode)
cp -a out bad
gdal_py -c "
from osgeo import gdal
import numpy as np
gdal.UseExceptions()
ds = gdal.Open('NETCDF:\"bad/ndvi/cube.nc\":ndvi', gdal.GA_Update)
b = ds.GetRasterBand(1); a = b.ReadAsArray()
y, x = np.argwhere(np.isfinite(a) & (a != b.GetNoDataValue()))[0]
b.WriteArray(a[y:y + 1, x:x + 1] + 0.5, int(x), int(y))"
mem-store verify bad 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q 'cube.nc.*slice checksum mismatch' err.txt && ok "a changed slice value: verify exits 1 naming the cube" ||
	not_ok "verify: exit $rc, $(cat err.txt)"
mem-store tier bad --to hot 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q 'does not match its warm:checksum' err.txt && [ "$(count_tier bad warm)" -eq 1 ] &&
	ok "moving the changed slice back fails that item (exit 1), the others come back" || not_ok "back: exit $rc, $(cat err.txt)"

# kill -9 mid-move, both ways: the catalog verifies, a rerun finishes the move
good=0 tries=0 mid=0
for to in warm hot; do
	# warm: while the cube is being written, and once it is in place;
	# hot: once a COG is back, and once an item points at it
	for what in first second; do
		rm -rf k
		if [ "$to" = warm ]; then cp -a hot k; else cp -a out k; fi
		mem-store -q tier k --to "$to" > /dev/null 2>&1 &
		pid=$!
		while kill -0 "$pid" 2> /dev/null; do
			case $to-$what in
			warm-first) set -- k/ndvi/.cube.nc.*; [ -e "$1" ] && break ;;
			warm-second) [ -e k/ndvi/cube.nc ] && break ;;
			hot-first) [ -n "$(find k -name '*.tif' | head -1)" ] && break ;;
			hot-second) [ "$(count_tier k hot)" -gt 0 ] && break ;;
			esac
		done
		kill -9 "$pid" 2> /dev/null || true
		wait "$pid" 2> /dev/null || true
		tries=$((tries + 1))
		c=$(count_tier k "$to")
		[ "$c" -lt "$n" ] && mid=$((mid + 1))
		mem-store -q verify k > /dev/null 2>&1 && good=$((good + 1))
		mem-store -q tier k --to "$to" > /dev/null 2>&1 || true
		[ "$(count_tier k "$to")" -eq "$n" ] && mem-store -q verify k > /dev/null 2>&1 && good=$((good + 1))
		[ "$to" = hot ] || [ -z "$(find k -name '*.tif')" ] || good=$((good - 1))
	done
done
[ "$good" -eq $((2 * tries)) ] && ok "after kill -9 at $tries moments of a move, verify passes, and the rerun finishes it" ||
	not_ok "only $good of $((2 * tries)) checks passed after killed moves"
[ "$mid" -gt 0 ] && ok "$mid of the kills landed mid-move" || not_ok "no kill landed mid-move"
r=$(gdal_py px.py k killed.npz)
[ "$(same_px hot.npz killed.npz)" = 1 ] && ok "and the values are the original ones" || not_ok "killed: $r"

# what cannot go warm stays hot, said so
cp -a hot g
j=$(ls g/ndvi/*/*.json | head -1)
gdal_translate -q -b 1 -b 1 "$(dirname "$j")/ndvi.tif" two.tif
gdal_translate -q -of COG two.tif "$(dirname "$j")/ndvi.tif"
# and one on another grid (EPSG:4326)
j2=$(ls g/ndvi/*/*.json | tail -1)
gdalwarp -q -t_srs EPSG:4326 -of COG "$(dirname "$j2")/ndvi.tif" "$(dirname "$j2")/w.tif"
mv "$(dirname "$j2")/w.tif" "$(dirname "$j2")/ndvi.tif"
for f in "$j" "$j2"; do
	gdal_py -c "
import json, sys, hashlib
j = sys.argv[1]; d = json.load(open(j)); a = d['assets']['ndvi']
b = open(j.rsplit('/', 1)[0] + '/ndvi.tif', 'rb').read()
a['file:checksum'] = '1220' + hashlib.sha256(b).hexdigest(); a['file:size'] = len(b)
json.dump(d, open(j, 'w'), indent=2)" "$f"
done
mem-store tier g --to warm 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q 'has 2 bands.*stays hot' err.txt && grep -q "cannot take it.*$(basename "$j2" .json)" err.txt &&
	[ "$(count_tier g warm)" -eq $((n - 2)) ] && [ -f "$(dirname "$j")/ndvi.tif" ] && [ -f "$(dirname "$j2")/ndvi.tif" ] &&
	ok "a two-band asset and one on another grid: exit 1, both named and kept hot, the others go warm" ||
	not_ok "refused: exit $rc, $(cat err.txt)"
check "verify passes" mem-store verify g

# --tier warm when storing
mem-store -o s --tier warm < tiles.json > s.json
[ "$(wc -l < s.json)" -eq "$n" ] && [ "$(head -1 s.json | json_get /dev/stdin "d['assets']['ndvi']['storage:tier']")" = warm ] &&
	[ -z "$(find s -name '*.tif')" ] && ok "--tier warm: the $n items emitted warm, no COG left" || not_ok "--tier warm: $(head -c 300 s.json)"
check "verify passes" mem-store verify s

check_exit "a bad --tier exits 2" 2 sh -c 'mem-store -o x --tier tepid < tiles.json'
done_testing
