#!/bin/sh
# mem-store -o s3://BUCKET/PREFIX --endpoint URL: against s3rver (npm) on
# loopback, started here: the COGs, item JSON and catalog uploaded, listed,
# read back through /vsis3/ with the stored checksums and the same pixels;
# a rerun uploads nothing; a second run accumulates in the catalog; a
# server that is gone is a temporary failure (exit 75).
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
V=${MEM_TOOLS:-/opt/memories-tools}
S3RVER=$V/node_modules/s3rver/bin/s3rver.js
command -v node > /dev/null 2>&1 || skip_all "no node (scripts/install-deps.sh --test installs it)"
[ -f "$S3RVER" ] || skip_all "no s3rver in $V (scripts/install-deps.sh --test installs it)"

# a free port: the first of a few that nothing answers on
port=
for p in 14568 14569 14570 14571 14572; do
	if ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then port=$p; break; fi
done
[ -n "$port" ] || skip_all "no free port for s3rver"
mkdir s3
# started as a direct child: PID 1 here does not reap orphans
node "$S3RVER" -d "$T/s3" -a 127.0.0.1 -p "$port" --no-vhost-buckets -s \
    --configure-bucket testbucket > s3.log 2>&1 &
S3PID=$!
trap 'kill $S3PID 2>/dev/null || true; wait $S3PID 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
i=0
until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || { cat s3.log | sed 's/^/# /'; skip_all "s3rver did not start on port $port"; }
	sleep 0.1
done
EP=http://127.0.0.1:$port
AWS_ACCESS_KEY_ID=S3RVER
AWS_SECRET_ACCESS_KEY=S3RVER
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
demo --size 512
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
mem-infer -s ndvi --workdir w < scene.json > res.json

check "store into s3://testbucket/run1" sh -c "mem-store -o s3://testbucket/run1 --endpoint $EP --workdir w < res.json > stored.json"
[ "$(wc -l < stored.json)" -eq 1 ] && ok "one stored item emitted" || not_ok "stored: $(wc -l < stored.json)"
rid=$(json_get res.json "d['id']")
href=$(json_get stored.json "d['assets']['ndvi']['href']")
[ "$href" = "s3://testbucket/run1/ndvi/$rid/ndvi.tif" ] && ok "emitted hrefs are s3:// URLs" || not_ok "href $href"

# list, re-read and check what is in the bucket, with GDAL's own client
cat > bucket.py <<'PY'
import hashlib, json, os, sys
from osgeo import gdal
import numpy as np
gdal.SetConfigOption('AWS_S3_ENDPOINT', sys.argv[4])
gdal.SetConfigOption('AWS_HTTPS', 'NO'); gdal.SetConfigOption('AWS_VIRTUAL_HOSTING', 'FALSE')
root, rid, src = sys.argv[1:4]
keys = sorted(gdal.ReadDirRecursive(root) or [])
def read(p):
    f = gdal.VSIFOpenL(p, 'rb'); gdal.VSIFSeekL(f, 0, 2); n = gdal.VSIFTellL(f); gdal.VSIFSeekL(f, 0, 0)
    b = gdal.VSIFReadL(1, n, f); gdal.VSIFCloseL(f); return b
ij = 'ndvi/%s/%s.json' % (rid, rid)
item = json.loads(read(root + '/' + ij))
a = item['assets']['ndvi']
data = read(root + '/ndvi/%s/%s' % (rid, a['href']))
sumok = a['file:checksum'] == '1220' + hashlib.sha256(data).hexdigest() and a['file:size'] == len(data)
ds = gdal.Open(root + '/ndvi/%s/%s' % (rid, a['href']))
s = gdal.Open(src)   # kept: a band dies with its dataset
x = ds.GetRasterBand(1).ReadAsArray(); y = s.GetRasterBand(1).ReadAsArray()
same = np.array_equal(x, y, equal_nan=True)
cog = 'COG' == (ds.GetMetadataItem('LAYOUT', 'IMAGE_STRUCTURE') or '')
cat = json.loads(read(root + '/catalog.json'))
coll = json.loads(read(root + '/ndvi/collection.json'))
nitems = sum(1 for l in coll['links'] if l['rel'] == 'item')
print(' '.join(keys))
print(int(ij in keys), int(sumok), int(same), int(cog), int(any(l['rel'] == 'child' for l in cat['links'])), nitems)
PY
r=$(gdal_py bucket.py /vsis3/testbucket/run1 "$rid" "$(json_get res.json "d['assets']['ndvi']['href']")" "127.0.0.1:$port" 2>&1) || r="error: $r"
keys=$(printf '%s\n' "$r" | head -1)
res=$(printf '%s\n' "$r" | tail -1)
case " $keys " in *" catalog.json "*) case " $keys " in *" ndvi/collection.json "*) case " $keys " in *" ndvi/$rid/ndvi.tif "*)
	ok "listed: catalog.json, ndvi/collection.json, the item and its COG"; lok=1 ;; esac ;; esac ;; esac
[ "${lok:-0}" = 1 ] || not_ok "listing: $r"
set -- $res
[ "${1:-}" = 1 ] && ok "the item JSON is in the bucket" || not_ok "item: $res"
[ "${2:-}" = 1 ] && ok "the COG read back has the item's file:size and file:checksum" || not_ok "checksum: $res"
[ "${3:-}" = 1 ] && ok "its pixels equal the result's" || not_ok "pixels: $res"
[ "${4:-}" = 1 ] && ok "it is a COG (LAYOUT=COG through /vsis3/)" || not_ok "layout: $res"
[ "${5:-}" = 1 ] && [ "${6:-}" = 1 ] && ok "catalog and collection in the bucket link the item" || not_ok "catalog: $res"
[ -z "$(find w/s3 -name '*.tif')" ] && ok "no local copies of the uploaded COGs left" || not_ok "local COGs left"

# a rerun uploads nothing; a run from an empty workdir still knows the bucket
# s3rver keeps each object as a file under s3/: what a rerun rewrote is newer
# (the marker comes a second after the first run's last write and a second
# before the rerun, so only the rerun's writes can be newer)
sleep 1
touch marker
sleep 1
mem-store -o s3://testbucket/run1 --endpoint "$EP" --workdir w < res.json > again.json
cmp -s stored.json again.json && ok "a rerun emits the same item" || not_ok "a rerun emits another item"
new=$(find s3 -type f -newer marker -path "*$rid*" | wc -l)
[ "$new" -eq 0 ] && ok "a rerun uploads neither the item nor its COG again" || not_ok "a rerun rewrote $new objects of the item"
mem-store -o s3://testbucket/run1 --endpoint "$EP" --workdir w2 < scene.json > /dev/null
r=$(gdal_py bucket.py /vsis3/testbucket/run1 "$rid" "$(json_get res.json "d['assets']['ndvi']['href']")" "127.0.0.1:$port" 2>&1 | tail -1)
case " $(gdal_py bucket.py /vsis3/testbucket/run1 "$rid" "$(json_get res.json "d['assets']['ndvi']['href']")" "127.0.0.1:$port" 2>&1 | head -1) " in
*" ndvi/collection.json "*" sentinel-2-l2a-demo/collection.json "*) ok "a second run (another workdir) accumulates: both collections" ;;
*) not_ok "second run: $r" ;;
esac

# --mosaic into the bucket: the mosaic COG is there, valid through /vsis3/
mem-tile -g webmercator:14 --bands red,nir --workdir w < scene.json | mem-infer -s ndvi --workdir w > tiles.json
mem-store -o s3://testbucket/mos --endpoint "$EP" --workdir w --mosaic < tiles.json > mos.json
mh=$(json_get mos.json "d['assets']['ndvi']['href']")
case $mh in s3://testbucket/mos/ndvi/ndvi-mosaic-2024-07-15-*/ndvi.tif) ok "--mosaic into the bucket: $mh" ;; *) not_ok "--mosaic href: $mh" ;; esac
if AWS_S3_ENDPOINT=127.0.0.1:$port AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE \
    gdalinfo "/vsis3/${mh#s3://}" 2>/dev/null | grep -q LAYOUT=COG; then
	ok "the mosaic read back through /vsis3/ is a COG"
else
	not_ok "the mosaic in the bucket is not a COG"
fi

# verify s3://: the same checks through /vsis3/; a flipped byte and a deleted object named
check "verify s3://testbucket/run1 passes" mem-store verify s3://testbucket/run1 --endpoint "$EP"
mem-store verify s3://testbucket/run1 --endpoint "$EP" 2> v.txt || true
grep -q "'s3://testbucket/run1': [0-9]* documents, [1-9][0-9]* files, 0 problems" v.txt &&
	ok "it walked the bucket's documents and files" || not_ok "verify said: $(cat v.txt)"
cat > poke.py <<'PY'
import sys
from osgeo import gdal
gdal.SetConfigOption('AWS_S3_ENDPOINT', sys.argv[3])
gdal.SetConfigOption('AWS_HTTPS', 'NO'); gdal.SetConfigOption('AWS_VIRTUAL_HOSTING', 'FALSE')
what, p = sys.argv[1], sys.argv[2]
if what == 'rm':
    sys.exit(gdal.Unlink(p))
f = gdal.VSIFOpenL(p, 'rb'); gdal.VSIFSeekL(f, 0, 2); n = gdal.VSIFTellL(f); gdal.VSIFSeekL(f, 0, 0)
b = bytearray(gdal.VSIFReadL(1, n, f)); gdal.VSIFCloseL(f)
b[n // 2] ^= 1
f = gdal.VSIFOpenL(p, 'wb'); gdal.VSIFWriteL(bytes(b), 1, n, f); gdal.VSIFCloseL(f)
PY
gdal_py poke.py flip "/vsis3/testbucket/run1/ndvi/$rid/ndvi.tif" "127.0.0.1:$port"
mem-store verify s3://testbucket/run1 --endpoint "$EP" 2> v.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "'s3://testbucket/run1/ndvi/$rid/ndvi.tif': checksum mismatch" v.txt &&
	ok "a flipped byte in an object: exit 1, the object named" || not_ok "flipped: exit $rc, $(cat v.txt)"
gdal_py poke.py rm "/vsis3/testbucket/run1/ndvi/$rid/ndvi.tif" "127.0.0.1:$port"
mem-store verify s3://testbucket/run1 --endpoint "$EP" 2> v.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "'s3://testbucket/run1/ndvi/$rid/ndvi.tif': asset 'ndvi' is missing" v.txt &&
	ok "a deleted object: exit 1, the object named" || not_ok "deleted: exit $rc, $(cat v.txt)"
gdal_py poke.py rm "/vsis3/testbucket/run1/ndvi/collection.json" "127.0.0.1:$port"
mem-store verify s3://testbucket/run1 --endpoint "$EP" 2> v.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "'s3://testbucket/run1/catalog.json': broken link: rel=child href './ndvi/collection.json'" v.txt &&
	ok "a deleted collection: exit 1, the broken link named" || not_ok "broken link: exit $rc, $(cat v.txt)"
mem-store verify s3://testbucket/nothing --endpoint "$EP" 2> v.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "no catalog in 's3://testbucket/nothing'" v.txt && ok "a prefix without a catalog: exit 1, named" ||
	not_ok "no catalog: exit $rc, $(cat v.txt)"

# the object store as a tier: hot -> s3:// -> hot, the catalog verifying each time
mem-store -o loc < res.json > /dev/null
mem-store tier loc --to s3://testbucket/tier --endpoint "$EP" 2> t.txt && rc=0 || rc=$?
[ "$rc" -eq 0 ] && grep -q ' 1 item moved to object' t.txt && ok "tier --to s3://testbucket/tier moves the item" ||
	not_ok "tier to s3: exit $rc, $(cat t.txt)"
th=$(json_get "loc/ndvi/$rid/$rid.json" "d['assets']['ndvi']['href'] + ' ' + d['assets']['ndvi']['storage:tier']")
[ "$th" = "s3://testbucket/tier/ndvi/$rid/ndvi.tif object" ] && [ ! -e "loc/ndvi/$rid/ndvi.tif" ] &&
	ok "its asset is the object now (storage:tier object), the local COG gone" || not_ok "after the move: $th"
mem-store verify loc --endpoint "$EP" 2> v.txt && rc=0 || rc=$?
[ "$rc" -eq 0 ] && grep -q ' 1 files, 0 problems' v.txt && ok "verify DIR --endpoint checks the object's checksum" ||
	not_ok "verify after the move: exit $rc, $(cat v.txt)"
if AWS_S3_ENDPOINT=127.0.0.1:$port AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE \
    gdalinfo "/vsis3/testbucket/tier/ndvi/$rid/ndvi.tif" 2>/dev/null | grep -q LAYOUT=COG; then
	ok "GDAL reads the moved COG through /vsis3/"
else
	not_ok "the moved COG does not open through /vsis3/"
fi
mem-store tier loc --to s3://testbucket/tier --endpoint "$EP" 2> t.txt
grep -q ' 0 items moved' t.txt && ok "a rerun moves nothing" || not_ok "rerun: $(cat t.txt)"
mem-store tier loc --to hot --endpoint "$EP" 2> t.txt && rc=0 || rc=$?
[ "$rc" -eq 0 ] && [ "$(json_get "$(ls loc/ndvi/*/*.json)" "d['assets']['ndvi']['file:checksum']")" = \
    "1220$(sha256sum "loc/ndvi/$rid/ndvi.tif" | cut -c1-64)" ] && ok "--to hot brings it back with its checksum" ||
	not_ok "back: exit $rc, $(cat t.txt)"
! AWS_S3_ENDPOINT=127.0.0.1:$port AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE \
    gdalinfo "/vsis3/testbucket/tier/ndvi/$rid/ndvi.tif" > /dev/null 2>&1 && ok "and the object is deleted" ||
	not_ok "the object is still in the bucket"
check "verify passes after the round trip" mem-store verify loc

# errors
check_exit "--endpoint without -o s3:// exits 2" 2 mem-store -o out --endpoint "$EP" < res.json
check_exit "a bad --endpoint exits 2" 2 mem-store -o s3://testbucket/x --endpoint ftp://nope < res.json
kill $S3PID; wait $S3PID 2>/dev/null || true
mem-store -o s3://testbucket/run2 --endpoint "$EP" --workdir w3 < res.json > gone.json 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 75 ] && ok "the server gone: exit 75" || not_ok "server gone: exit $rc"
grep -q "s3://testbucket/run2/" err.txt && ok "the message names the object" || not_ok "message: $(cat err.txt)"
[ ! -s gone.json ] && ok "no item emitted for what was not uploaded" || not_ok "emitted: $(cat gone.json)"

done_testing
