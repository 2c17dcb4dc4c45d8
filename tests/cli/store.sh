#!/bin/sh
# mem-store: valid COGs with the same pixels, STAC items and catalog with
# relative hrefs that STAC validation accepts, reruns, accumulation, errors.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
mem-infer -s ndvi --workdir w < scene.json > res.json

check "store a result and a scene" sh -c "cat res.json scene.json | mem-store -o out > stored.json"
if [ "$(wc -l < stored.json)" -eq 2 ]; then ok "two stored items emitted"; else not_ok "stored items: $(wc -l < stored.json)"; fi
[ -f out/catalog.json ] && ok "out/catalog.json" || not_ok "out/catalog.json"
[ -f out/ndvi/collection.json ] && [ -f out/sentinel-2-l2a-demo/collection.json ] && ok "one collection per item collection" || not_ok "collections"
rid=$(json_get res.json "d['id']")
ij="out/ndvi/$rid/$rid.json"
[ -f "$ij" ] && ok "item file at COLLECTION/ID/ID.json" || not_ok "item file $ij"
href=$(json_get "$ij" "d['assets']['ndvi']['href']")
[ "$href" = "ndvi.tif" ] && ok "asset href is relative" || not_ok "asset href $href"
f="out/ndvi/$rid/ndvi.tif"
is_cog "$f" && ok "gdalinfo reports LAYOUT=COG" || not_ok "not a COG: $f"
if gdal_py -m osgeo_utils.samples.validate_cloud_optimized_geotiff -q "$f" 2>/dev/null; then ok "GDAL's COG validator accepts it"; else not_ok "COG validator rejects $f"; fi
if gdalinfo "$f" | grep -q 'Overviews: 512x512'; then ok "overviews built"; else not_ok "no overviews"; fi
if gdalinfo "$f" | grep -q 'COMPRESSION=DEFLATE'; then ok "DEFLATE by default"; else not_ok "not DEFLATE"; fi
same=$(gdal_py -c "
from osgeo import gdal; import numpy as np, sys
a = gdal.Open(sys.argv[1]); b = gdal.Open(sys.argv[2])
x = a.GetRasterBand(1).ReadAsArray(); y = b.GetRasterBand(1).ReadAsArray()
print(int(np.array_equal(x, y, equal_nan=True)) if x.dtype.kind == 'f' else int(np.array_equal(x, y)))" "$f" "$(json_get res.json "d['assets']['ndvi']['href']")")
[ "$same" = 1 ] && ok "stored pixels equal the result's, NaN for NaN" || not_ok "stored pixels differ"
sum=$(json_get "$ij" "d['assets']['ndvi']['file:checksum']")
[ "$sum" = "1220$(sha256sum "$f" | cut -d' ' -f1)" ] && ok "file:checksum of the stored COG" || not_ok "checksum"
sid=S2A_32TNR_20240715_0_L2A_DEMO
scl="out/sentinel-2-l2a-demo/$sid/scl.tif"
is_cog "$scl" && ok "the scene's SCL stored as a COG" || not_ok "scl not stored as COG"
# a raster of classes gets overviews by nearest neighbour: each overview pixel
# is one of the four it covers (the COG driver's default, cubic, blends them)
nearest_ov() { gdal_py -c "
from osgeo import gdal; import numpy as np, sys
d = gdal.Open(sys.argv[1]); b = d.GetRasterBand(1)
if b.GetOverviewCount() == 0: print('no overview'); sys.exit()
x = b.ReadAsArray(); o = b.GetOverview(0).ReadAsArray()
h, w = o.shape; x = x[:2 * h, :2 * w]
q = np.stack([x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]])
print(int((q == o).any(axis=0).sum()), o.size, len(np.unique(x)))" "$1"; }
# (128-pixel blocks: the 512-pixel SCL gets overviews)
mem-store -o out-ov --co BLOCKSIZE=128 < scene.json > /dev/null
set -- $(nearest_ov "out-ov/sentinel-2-l2a-demo/$sid/scl.tif")
[ "$#" = 3 ] && [ "$1" = "$2" ] && [ "$3" -ge 3 ] &&
	ok "the stored SCL's overview pixels are each one of the four they cover ($2 px, $3 classes)" ||
	not_ok "SCL overview: $*"
emitted=$(json_get stored.json "d['assets']['ndvi']['href']")
case $emitted in /*/out/ndvi/*/ndvi.tif) ok "emitted items carry absolute hrefs" ;; *) not_ok "emitted href $emitted" ;; esac

# every link of the catalog resolves, relative to its file
bad=$(/usr/bin/python3 - out/catalog.json <<'PY'
import json, os, sys
todo, seen, bad = [sys.argv[1]], set(), 0
while todo:
    p = todo.pop()
    if p in seen: continue
    seen.add(p)
    d = json.load(open(p))
    for l in d.get("links", []):
        h = os.path.normpath(os.path.join(os.path.dirname(p), l["href"]))
        if l["rel"] in ("child", "item", "root", "parent", "collection"):
            if not os.path.exists(h): bad += 1; print("missing", p, l["href"], file=sys.stderr)
            elif l["rel"] in ("child", "item"): todo.append(h)
    for a in d.get("assets", {}).values():
        if not os.path.exists(os.path.join(os.path.dirname(p), a["href"])): bad += 1
print(bad, len(seen))
PY
)
[ "${bad%% *}" = 0 ] && ok "every link and asset resolves (${bad#* } documents)" || not_ok "broken links: $bad"
ext=$(json_get out/ndvi/collection.json "str(d['extent']['temporal']['interval'][0][0])")
[ "$ext" = "2024-07-15T10:20:31.024000Z" ] && ok "collection temporal extent" || not_ok "temporal extent $ext"

# STAC validation, offline, with the schemas in ../shared/schemas
V=${MEM_TOOLS:-/opt/memories-tools}
S=$MEM_SRCDIR/../shared/schemas
if [ -x "$V/node_modules/.bin/stac-node-validator" ] && [ -d "$S/stac-spec-1.0.0" ]; then
	files="out/catalog.json out/ndvi/collection.json $ij out/sentinel-2-l2a-demo/$sid/$sid.json"
	if out=$("$V/node_modules/.bin/stac-node-validator" $files --schemas "$S/stac-spec-1.0.0" \
	    --schemaMap "https://geojson.org/schema/=$S/geojson/" \
	    "https://stac-extensions.github.io/=$S/stac-extensions/" \
	    "https://proj.org/schemas/=$S/projjson/" 2>&1); then
		ok "stac-node-validator accepts catalog, collection and items"
	else
		not_ok "stac-node-validator rejects the catalog"
		printf '%s\n' "$out" | tail -30 | sed 's/^/# /'
	fi
else
	skip "no stac-node-validator in $V or no schemas in $S (scripts/install-deps.sh installs it)"
fi

# reruns and accumulation
before=$(stat -c %Y.%i "$f")
sleep 1
cat res.json | mem-store -o out > again.json
[ "$(stat -c %Y.%i "$f")" = "$before" ] && ok "a rerun leaves a stored item alone" || not_ok "a rerun rewrote the COG"
cmp -s again.json "$(head -1 stored.json > first.json; echo first.json)" && ok "a rerun emits the same stored item" || not_ok "a rerun emits another item"
mem-tile -g webmercator:13 --bands red,nir --workdir w < scene.json | mem-infer -s ndvi --workdir w | mem-store -o out > tiles.json
n=$(/usr/bin/python3 -c "import json; print(sum(1 for l in json.load(open('out/ndvi/collection.json'))['links'] if l['rel'] == 'item'))")
[ "$n" -eq $(( $(wc -l < tiles.json) + 1 )) ] && ok "a second run into the same DIR accumulates ($n items)" || not_ok "collection lists $n items"

# nothing half-written stays visible
left=$(find out -name '.*tmp*' | wc -l)
[ "$left" -eq 0 ] && ok "no temporary files left" || not_ok "$left temporary files left"

# --co
mem-store -o zout --co COMPRESS=ZSTD < res.json > /dev/null
gdalinfo "zout/ndvi/$rid/ndvi.tif" | grep -q 'COMPRESSION=ZSTD' && ok "--co COMPRESS=ZSTD" || not_ok "--co not honoured"

# errors
check_exit "no -o exits 2" 2 mem-store < res.json
check_exit "an unwritable DIR exits 2" 2 mem-store -o /proc/nope < res.json
/usr/bin/python3 -c "
import json
d = json.loads(open('res.json').readline())
d['id'] = 'broken'; d['assets']['ndvi']['href'] = '$T/nothing.tif'
print(json.dumps(d))" > broken.json
cat broken.json res.json > mixed.json
mem-store -o mout < mixed.json > mixed-out.json 2>err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l < mixed-out.json)" -eq 1 ] && ok "a missing asset fails its item (exit 1); the other is stored" || not_ok "mixed: exit $rc, $(wc -l < mixed-out.json) stored"
grep -q "cannot open '$T/nothing.tif'" err.txt && ok "the missing file is named" || not_ok "message: $(cat err.txt)"
[ ! -e mout/ndvi/broken/broken.json ] && ok "no item file for the failed item" || not_ok "item file written for a failed item"
[ -f mout/catalog.json ] && ok "the catalog is still written" || not_ok "no catalog after a failed item"

done_testing
