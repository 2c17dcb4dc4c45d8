#!/bin/sh
# mem-store --mosaic: one COG per collection, date and asset over all the
# tiles, valid to GDAL's COG validator, with overviews, predictor, nodata,
# band description and statistics; its pixels equal each tile's; an item
# in the catalog that verify and the STAC schemas accept; reruns skip it.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
mem-tile -g webmercator:14 --workdir w < scene.json > tiles.json
mem-infer -s ndvi --workdir w < tiles.json > res.json
ntiles=$(wc -l < res.json)

check "mosaic the results and the tiles" sh -c "cat res.json tiles.json | mem-store -o out --mosaic > stored.json"
[ "$(wc -l < stored.json)" -eq 2 ] && ok "one item per collection and date ($ntiles tiles each)" || not_ok "stored items: $(wc -l < stored.json)"
ij=$(ls out/ndvi/*/*.json)
f=$(ls out/ndvi/*/ndvi.tif)
case $f in out/ndvi/ndvi-mosaic-2024-07-15-*/ndvi.tif) ok "stored at COLLECTION/COLLECTION-mosaic-DATE-HASH/ASSET.tif" ;; *) not_ok "mosaic at $f" ;; esac
is_cog "$f" && ok "gdalinfo reports LAYOUT=COG" || not_ok "not a COG: $f"
for g in "$f" out/*-demo/*/red.tif out/*-demo/*/scl.tif; do
	if gdal_py -m osgeo_utils.samples.validate_cloud_optimized_geotiff -q --full-check=yes "$g" 2>/dev/null; then
		ok "GDAL's COG validator accepts $(basename "$g")"
	else
		not_ok "COG validator rejects $g"
	fi
done
info=$(gdalinfo "$f")
for want in 'Overviews: ' 'COMPRESSION=DEFLATE' 'PREDICTOR=3' 'NoData Value=nan' 'Description = ndvi' 'STATISTICS_MEAN=' 'Block=512x512'; do
	case $info in *"$want"*) ok "mosaic has $want" ;; *) not_ok "mosaic lacks $want" ;; esac
done
gdalinfo out/*-demo/*/red.tif | grep -q PREDICTOR=2 && ok "integer bands get PREDICTOR=2" || not_ok "no integer predictor"
[ -z "$(find out -name '*.aux.xml')" ] && ok "statistics inside the COG, no .aux.xml" || not_ok "an .aux.xml was written"

# every tile's pixels are the mosaic's at the tile's place; cells without a tile are nodata
cat > same.py <<'PY'
import json, sys
from osgeo import gdal
import numpy as np
mosaic, items, key = sys.argv[1:4]
m = gdal.Open(mosaic)
gt = m.GetGeoTransform()
mx = m.GetRasterBand(1).ReadAsArray()
covered = np.zeros(mx.shape, bool)
n = bad = 0
for line in open(items):
    d = json.loads(line)
    t = gdal.Open(d['assets'][key]['href'])
    g = t.GetGeoTransform()
    col, row = round((g[0] - gt[0]) / gt[1]), round((g[3] - gt[3]) / gt[5])
    x = t.GetRasterBand(1).ReadAsArray()
    y = mx[row:row + t.RasterYSize, col:col + t.RasterXSize]
    covered[row:row + t.RasterYSize, col:col + t.RasterXSize] = True
    n += 1
    bad += not np.array_equal(x, y, equal_nan=x.dtype.kind == 'f')
nd = m.GetRasterBand(1).GetNoDataValue()
rest = mx[~covered]
if rest.size:
    bad += not (np.all(np.isnan(rest)) if nd is not None and np.isnan(nd) else np.all(rest == (nd or 0)))
print(n, bad)
PY
for k in ndvi:res.json red:tiles.json scl:tiles.json; do
	key=${k%%:*}
	g=$(ls out/*/*/"$key".tif)
	r=$(gdal_py same.py "$g" "${k#*:}" "$key" 2>&1) || r="error: $r"
	case $r in "$ntiles 0") ok "$key: every tile's pixels equal the mosaic's ($r)" ;; *) not_ok "$key: tiles, mismatches: $r" ;; esac
done

# the item and the catalog
json_get "$ij" "d['properties']['mem:mosaic_of']" | grep -qx "$ntiles" && ok "mem:mosaic_of counts the tiles" || not_ok "mem:mosaic_of"
n=$(json_get "$ij" "len([l for l in d['links'] if l['rel'] == 'derived_from'])")
[ "$n" -eq "$ntiles" ] && ok "derived_from links to the tiles' parents ($n)" || not_ok "derived_from links: $n"
st=$(json_get "$ij" "d['assets']['ndvi']['raster:bands'][0]['statistics']['mean']")
case $st in 0.*) ok "raster:bands statistics in the item (mean $st)" ;; *) not_ok "statistics: $st" ;; esac
[ "$(json_get "$ij" "d['assets']['ndvi']['file:checksum']")" = "1220$(sha256sum "$f" | cut -d' ' -f1)" ] && ok "file:checksum of the mosaic" || not_ok "checksum"
json_get out/ndvi/collection.json "[l['href'] for l in d['links'] if l['rel'] == 'item']" | grep -q mosaic && ok "the mosaic item is in the collection" || not_ok "not in the collection"
check "mem-store verify accepts the catalog" mem-store verify out
V=${MEM_TOOLS:-/opt/memories-tools}
S=$MEM_SRCDIR/../shared/schemas
if [ -x "$V/node_modules/.bin/stac-node-validator" ] && [ -d "$S/stac-spec-1.0.0" ]; then
	if out=$("$V/node_modules/.bin/stac-node-validator" "$ij" out/ndvi/collection.json --schemas "$S/stac-spec-1.0.0" \
	    --schemaMap "https://geojson.org/schema/=$S/geojson/" \
	    "https://stac-extensions.github.io/=$S/stac-extensions/" \
	    "https://proj.org/schemas/=$S/projjson/" 2>&1); then
		ok "stac-node-validator accepts the mosaic item"
	else
		not_ok "stac-node-validator rejects the mosaic item"
		printf '%s\n' "$out" | tail -30 | sed 's/^/# /'
	fi
else
	skip "no stac-node-validator in $V or no schemas in $S (scripts/install-deps.sh installs it)"
fi

# reruns: same tiles, nothing written; --co honoured
before=$(stat -c %Y.%i "$f")
mem-store -o out --mosaic < res.json > again.json
[ "$(stat -c %Y.%i "$f")" = "$before" ] && ok "a rerun leaves the mosaic alone" || not_ok "a rerun rewrote the mosaic"
head -1 stored.json | cmp -s - again.json && ok "a rerun emits the same item" || not_ok "a rerun emits another item"
mem-store -o zout --mosaic --co COMPRESS=ZSTD < res.json > /dev/null
gdalinfo zout/ndvi/*/ndvi.tif | grep -q 'COMPRESSION=ZSTD' && ok "--co COMPRESS=ZSTD" || not_ok "--co not honoured"
[ -z "$(find out zout -name '.*tmp*')" ] && ok "no temporary files left" || not_ok "temporary files left"

# errors
check_exit "--mosaic without -o exits 2" 2 mem-store --mosaic --cube c.nc < res.json
/usr/bin/python3 -c "
import json
d = json.loads(open('res.json').readline())
d['id'] = 'broken'; d['assets']['ndvi']['href'] = '$T/nothing.tif'
print(json.dumps(d))" > broken.json
cat broken.json res.json | mem-store -o bout --mosaic > b.json 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && ok "a missing tile fails its mosaic (exit 1)" || not_ok "exit $rc"
grep -q "nothing.tif" err.txt && ok "the missing file is named" || not_ok "message: $(cat err.txt)"
[ -z "$(find bout -name '*.tif' -o -name '*mosaic*.json')" ] && ok "nothing of the failed mosaic is visible" || not_ok "partial mosaic visible"

done_testing
