#!/bin/sh
# mem-store tier: hot (COGs in DIR) <-> cold (one ustar archive per
# collection and month): chosen by age and by last access, a dry run that
# changes nothing, the catalog verifying after every move, GDAL reading the
# archived COGs in place with the same pixels, a round trip back to the same
# bytes, a rerun that does nothing, kill -9 at moments of a move, --tier
# cold when storing, and errors.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
mem-tile -g webmercator:13 --bands red,nir --workdir w < scene.json | mem-infer -s ndvi --workdir w > t.json
# two months and one recent item: the first five tiles dated June 2024, the
# last one today, the others stay on 2024-07-15
/usr/bin/python3 - > tiles.json <<'PY'
import json, datetime
lines = [json.loads(l) for l in open('t.json')]
today = datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ')
for i, d in enumerate(lines):
    if i < 5:
        d['properties']['datetime'] = '2024-06-%02dT10:00:00Z' % (i + 1)
    elif i == len(lines) - 1:
        d['properties']['datetime'] = today
    print(json.dumps(d))
PY
n=$(wc -l < tiles.json)
[ "$n" -ge 8 ] || skip_all "only $n tiles to move"
recent=$(tail -1 tiles.json | json_get /dev/stdin "d['id']")

# a listing of every file under a directory with its checksum and mtime
snap() { find "$1" -type f -printf '%P %T@ ' -exec sha256sum {} \; | awk '{print $1, $2, $3}' | sort; }
# pixels of each item's ndvi asset as GDAL reads it (through /vsitar/ when cold) -> NAME.npz
cat > px.py <<'PY'
import json, glob, os, sys
from osgeo import gdal
import numpy as np
root, out = sys.argv[1], sys.argv[2]
arrs = {}
layout = set()
for j in glob.glob(root + '/ndvi/*/*.json'):
    d = json.load(open(j)); a = d['assets']['ndvi']
    p = os.path.join(os.path.dirname(j), a['href'])
    if 'archive:href' in a:
        p = '/vsitar/' + os.path.abspath(p) + '/' + a['archive:href']
    ds = gdal.Open(p)
    arrs[d['id']] = ds.GetRasterBand(1).ReadAsArray()
    layout.add(ds.GetMetadataItem('LAYOUT', 'IMAGE_STRUCTURE'))
np.savez(out, **arrs)
print(' '.join(sorted(str(l) for l in layout)), len(arrs))
PY
same_px() {
	gdal_py -c "
import numpy as np, sys
a = np.load(sys.argv[1]); b = np.load(sys.argv[2])
print(int(sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.files)))" "$1" "$2"
}

check "store $n tiles hot (--tier hot)" sh -c 'mem-store -o out --tier hot < tiles.json > stored.json'
tiers=$(/usr/bin/python3 -c "
import json, glob
print(' '.join(sorted({json.load(open(j))['assets']['ndvi'].get('storage:tier', '-') for j in glob.glob('out/ndvi/*/*.json')})))")
[ "$tiers" = hot ] && ok "each stored asset has storage:tier hot" || not_ok "tiers: $tiers"
r=$(gdal_py px.py out hot.npz)
[ "$r" = "COG $n" ] && ok "GDAL reads $n hot COGs" || not_ok "hot: $r"
check "verify passes before any move" mem-store verify out

# --dry-run: names what would move, changes nothing
snap out > before.txt
mem-store tier out --to cold --older-than 30d --dry-run 2> dry.txt
cnt=$(grep -c 'hot -> cold (dry run)' dry.txt || true)
[ "$cnt" -eq $((n - 1)) ] && ok "--dry-run names the $cnt items older than 30 days" || not_ok "dry run: $(cat dry.txt)"
snap out > after.txt
cmp -s before.txt after.txt && ok "--dry-run changes no file" || not_ok "--dry-run changed files"

# hot -> cold by age
mem-store tier out --to cold --older-than 30d 2> move.txt && rc=0 || rc=$?
[ "$rc" -eq 0 ] && grep -q "$((n - 1)) items moved to cold, 2 archives written" move.txt &&
	ok "--older-than 30d --to cold: $((n - 1)) items, 2 archives" || not_ok "move: exit $rc, $(tail -1 move.txt)"
ls out/ndvi/archive-2024-06-*.tar > /dev/null 2>&1 && ls out/ndvi/archive-2024-07-*.tar > /dev/null 2>&1 &&
	ok "one archive per month: 2024-06 and 2024-07" || not_ok "archives: $(ls out/ndvi)"
[ -f "out/ndvi/$recent/ndvi.tif" ] && [ "$(json_get "out/ndvi/$recent/$recent.json" "d['assets']['ndvi']['storage:tier']")" = hot ] &&
	ok "the recent item stays hot" || not_ok "the recent item moved"
left=$(find out/ndvi -name '*.tif' | wc -l)
[ "$left" -eq 1 ] && ok "the cold items' COGs are gone from their folders" || not_ok "$left COGs left"
check "verify passes after the move" mem-store verify out
r=$(gdal_py px.py out cold.npz)
[ "$r" = "COG $n" ] && ok "GDAL reads each archived COG in place through /vsitar/, still a COG" || not_ok "cold: $r"
[ "$(same_px hot.npz cold.npz)" = 1 ] && ok "the archived pixels equal the stored ones" || not_ok "archived pixels differ"
r=$(/usr/bin/python3 -c "
import json, glob, hashlib, os
bad = 0
for j in glob.glob('out/ndvi/*/*.json'):
    a = json.load(open(j))['assets']['ndvi']
    if 'archive:href' not in a: continue
    f = open(os.path.join(os.path.dirname(j), a['href']), 'rb'); f.seek(a['archive:start'])
    b = f.read(a['archive:end'] - a['archive:start'] + 1)
    bad += a['file:checksum'] != '1220' + hashlib.sha256(b).hexdigest() or a['type'] != 'application/x-tar' \
        or a['storage:tier'] != 'cold' or not a['archive:type'].startswith('image/tiff')
print(bad)")
[ "$r" = 0 ] && ok "archive:start..archive:end hold bytes with the item's file:checksum" || not_ok "$r assets off"
V=${MEM_TOOLS:-/opt/memories-tools}
S=$MEM_SRCDIR/../shared/schemas
if [ -x "$V/node_modules/.bin/stac-node-validator" ] && [ -d "$S/stac-spec-1.0.0" ]; then
	cold1=$(ls out/ndvi/*/*.json | grep -v "/$recent/" | head -1)
	if out=$("$V/node_modules/.bin/stac-node-validator" "$cold1" "out/ndvi/$recent/$recent.json" \
	    --schemas "$S/stac-spec-1.0.0" --schemaMap "https://geojson.org/schema/=$S/geojson/" \
	    "https://stac-extensions.github.io/=$S/stac-extensions/" \
	    "https://proj.org/schemas/=$S/projjson/" 2>&1); then
		ok "stac-node-validator accepts a cold and a hot item (storage extension)"
	else
		not_ok "stac-node-validator rejects a tiered item"
		printf '%s\n' "$out" | tail -20 | sed 's/^/# /'
	fi
else
	skip "no stac-node-validator in $V or no schemas in $S"
fi

# a rerun does nothing
snap out > before.txt
mem-store tier out --to cold --older-than 30d 2> again.txt
snap out > after.txt
cmp -s before.txt after.txt && grep -q ' 0 items moved' again.txt && ok "a rerun moves nothing and changes no file" ||
	not_ok "rerun: $(tail -1 again.txt)"

# cold -> hot by last access: only the June archive was read before 2000
mem-store tier out --to hot --accessed-before 2000-01-01 2> acc.txt
grep -q ' 0 items moved' acc.txt && ok "--accessed-before 2000-01-01: nothing read that long ago" || not_ok "acc: $(tail -1 acc.txt)"
touch -a -d 1999-06-01 out/ndvi/archive-2024-06-*.tar
mem-store tier out --to hot --accessed-before 2000-01-01 2> acc.txt
grep -q ' 5 items moved to hot' acc.txt && ok "after its archive's atime is set to 1999, its 5 items go hot" || not_ok "acc: $(tail -1 acc.txt)"
! ls out/ndvi/archive-2024-06-*.tar > /dev/null 2>&1 && ok "the emptied June archive is removed" || not_ok "June archive left"
check "verify passes after a partial move back" mem-store verify out

# the round trip ends with the same bytes
mem-store tier out --to hot 2> back.txt
grep -q " $((n - 6)) items moved to hot" back.txt && ok "--to hot brings the other $((n - 6)) back" || not_ok "back: $(tail -1 back.txt)"
[ -z "$(find out -name '*.tar')" ] && ok "no archive left" || not_ok "archives left"
r=$(/usr/bin/python3 -c "
import json, hashlib, sys
bad = 0
for l in open('stored.json'):
    a = json.loads(l)['assets']['ndvi']
    bad += a['file:checksum'] != '1220' + hashlib.sha256(open(a['href'], 'rb').read()).hexdigest()
print(bad)")
[ "$r" = 0 ] && ok "every COG is back, byte for byte the one first stored" || not_ok "$r COGs differ"
gdal_py px.py out back.npz > /dev/null
[ "$(same_px hot.npz back.npz)" = 1 ] && ok "and GDAL reads the same pixels" || not_ok "pixels differ after the round trip"
check "verify passes after the round trip" mem-store verify out

# kill -9 at moments of a move: the catalog verifies every time
cp -a out hot
t0=$(date +%s%N)
mem-store -q tier out --to cold
ms=$((($(date +%s%N) - t0) / 1000000))
diag "an uninterrupted move of $n items takes $ms ms"
good=0 mid=0 tries=0
for pc in 15 35 55 75; do
	rm -rf k
	cp -a hot k
	mem-store -q tier k --to cold > /dev/null 2>&1 &
	pid=$!
	sleep "$(awk -v ms="$ms" -v pc="$pc" 'BEGIN { print ms * pc / 100000 }')"
	kill -9 "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	tries=$((tries + 1))
	c=$(grep -l '"storage:tier": "cold"' k/ndvi/*/*.json 2>/dev/null | wc -l)
	{ [ -n "$(find k -name '*.tar' -o -name '.*tmp*')" ] && [ "$c" -lt "$n" ]; } && mid=$((mid + 1))
	mem-store -q verify k > /dev/null 2>&1 && good=$((good + 1))
done
# and two kills at moments seen rather than timed: while the archive is
# being written, and once it is in place while the items are repointed
for what in '.archive-*.tmp-*' 'archive-*.tar'; do
	rm -rf k
	cp -a hot k
	mem-store -q tier k --to cold > /dev/null 2>&1 &
	pid=$!
	while kill -0 "$pid" 2> /dev/null; do
		# shellcheck disable=SC2086
		set -- k/ndvi/$what
		[ -e "$1" ] && break
	done
	kill -9 "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	tries=$((tries + 1))
	c=$(grep -l '"storage:tier": "cold"' k/ndvi/*/*.json 2>/dev/null | wc -l)
	{ [ -n "$(find k -name '*.tar' -o -name '.*tmp*')" ] && [ "$c" -lt "$n" ]; } && mid=$((mid + 1))
	mem-store -q verify k > /dev/null 2>&1 && good=$((good + 1))
done
[ "$good" -eq "$tries" ] && ok "after kill -9 at $tries moments of a move, verify passes every time" ||
	not_ok "only $good of $tries killed moves left a catalog that verifies"
[ "$mid" -gt 0 ] && ok "$mid of the kills landed mid-move" || not_ok "no kill landed mid-move (the move was too fast to test)"
check "a move after a killed one completes" sh -c 'mem-store -q tier k --to cold'
c=$(grep -l '"storage:tier": "cold"' k/ndvi/*/*.json | wc -l)
[ "$c" -eq "$n" ] && [ -z "$(find k -name '*.tif' -o -name '.*tmp*')" ] && ok "all $n items cold, no stray COG or temporary file" ||
	not_ok "$c cold; left: $(find k -name '*.tif' -o -name '.*tmp*' | head -3)"
check "verify passes" mem-store verify k
snap k > before.txt
mem-store -q tier k --to cold
snap k > after.txt
cmp -s before.txt after.txt && ok "and one more rerun changes nothing" || not_ok "a rerun after recovery changed files"

# damage is caught, and never moved
a=$(ls k/ndvi/archive-*.tar | head -1)
cp "$a" saved.tar
/usr/bin/python3 -c "
import json, glob, sys
j = [j for j in glob.glob('k/ndvi/*/*.json') if json.load(open(j))['assets']['ndvi']['href'].endswith(sys.argv[1])][0]
a = json.load(open(j))['assets']['ndvi']
f = open(glob.glob('k/ndvi/' + sys.argv[1])[0], 'r+b'); f.seek(a['archive:start'] + 1000); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 1]))" "$(basename "$a")"
mem-store verify k 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "$(basename "$a").*checksum mismatch" err.txt && ok "a flipped byte in an archive member: verify exits 1 naming the archive" ||
	not_ok "verify: exit $rc, $(cat err.txt)"
mem-store tier k --to hot 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "checksum" err.txt && ok "moving the damaged member back fails that item (exit 1)" || not_ok "restore: exit $rc, $(cat err.txt)"
r=$(find k -name '*.tif' | wc -l)
[ "$r" -eq $((n - 1)) ] && ok "the others came back, the damaged one stays in its archive" || not_ok "$r COGs back"
printf 'x' | dd of="hot/ndvi/$recent/ndvi.tif" bs=1 seek=2000 conv=notrunc 2> /dev/null
mem-store tier hot --to cold 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "does not match its file:checksum" err.txt && [ -f "hot/ndvi/$recent/ndvi.tif" ] &&
	ok "a damaged hot COG is not archived (exit 1); it stays where verify sees it" || not_ok "damaged hot: exit $rc, $(cat err.txt)"

# --tier cold when storing
mem-store -o c --tier cold < tiles.json > cold.json
[ "$(wc -l < cold.json)" -eq "$n" ] && [ "$(head -1 cold.json | json_get /dev/stdin "d['assets']['ndvi']['storage:tier']")" = cold ] &&
	ok "--tier cold: the $n items emitted cold" || not_ok "--tier cold: $(head -c 300 cold.json)"
[ -z "$(find c -name '*.tif')" ] && [ "$(find c -name '*.tar' | wc -l)" -eq 3 ] && ok "three archives (June, July, this month), no COG left" ||
	not_ok "--tier cold left: $(find c -name '*.t*')"
check "verify passes" mem-store verify c
cat tiles.json | mem-store -o c --tier cold > cold2.json
cmp -s cold.json cold2.json && ok "a rerun emits the same items" || not_ok "a rerun of --tier cold emits other items"

# usage
check_exit "tier without --to exits 2" 2 mem-store tier out
check_exit "a bad --older-than exits 2" 2 mem-store tier out --to cold --older-than 3x
check_exit "a bad --accessed-before exits 2" 2 mem-store tier out --to cold --accessed-before yesterday
check_exit "a directory without a catalog exits 2" 2 mem-store tier w --to cold
check_exit "--to outside tier exits 2" 2 sh -c 'mem-store -o out --to cold < tiles.json'

done_testing
