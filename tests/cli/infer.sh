#!/bin/sh
# mem-infer -s ndvi: values against an independent numpy computation, nodata
# and division by zero, band finding, scenes and tiles alike, reruns, errors.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
demo
mem-fetch demo/catalog.json --assets red,nir --workdir w > scene.json
D=demo/sentinel-2-l2a-demo/S2A_32TNR_20240715_0_L2A_DEMO

check "ndvi of a scene" sh -c "mem-infer -s ndvi --workdir w < scene.json > res.json"
out=$(json_get res.json "d['assets']['ndvi']['href']")
cmp_ndvi() {
	gdal_py - "$@" <<'PY'
import sys
import numpy as np
from osgeo import gdal
o, r, n = (gdal.Open(p) for p in sys.argv[1:4])
a = o.GetRasterBand(1).ReadAsArray().astype(np.float64)
red = r.GetRasterBand(1).ReadAsArray().astype(np.float64) * 1e-4
nir = n.GetRasterBand(1).ReadAsArray().astype(np.float64) * 1e-4
bad = (red == 0) | (nir == 0) | (red + nir == 0)
with np.errstate(divide="ignore", invalid="ignore"):
    ref = np.where(bad, np.nan, (nir - red) / (nir + red)).astype(np.float32)
same_mask = bool((np.isnan(a) == np.isnan(ref)).all())
v = ~np.isnan(ref)
print(int(same_mask), float(np.abs(a[v] - ref[v]).max()), int(v.sum()), int((~v).sum()))
PY
}
set -- $(cmp_ndvi "$out" "$D/B04.tif" "$D/B08.tif")
if [ "$1" = 1 ]; then ok "NaN exactly where an input is nodata ($4 px)"; else not_ok "nodata mask differs"; fi
if /usr/bin/python3 -c "import sys; sys.exit(0 if float('$2') == 0.0 else 1)"; then ok "NDVI equals numpy's float32 value on all $3 valid px"; else not_ok "NDVI differs from numpy by $2"; fi
if gdalinfo "$out" | grep -q 'NoData Value=nan'; then ok "GDAL reads nodata = NaN"; else not_ok "nodata not NaN"; fi
if gdalinfo "$out" | grep -q 'Type=Float32'; then ok "float32 output"; else not_ok "not float32"; fi
if gdalinfo "$out" | grep -q 'COMPRESSION=ZSTD'; then ok "ZSTD by default"; else not_ok "not ZSTD"; fi
link=$(json_get res.json "[l['href'] for l in d['links'] if l['rel'] == 'derived_from'][0]")
if [ "$link" = "S2A_32TNR_20240715_0_L2A_DEMO" ]; then ok "derived_from link to the scene"; else not_ok "derived_from link: $link"; fi
ext=$(json_get res.json "d['properties']['mem:stage'] + ' ' + d['collection'] + ' ' + d['properties']['datetime']")
if [ "$ext" = "infer ndvi 2024-07-15T10:20:31.024000Z" ]; then ok "result item: stage, collection, datetime"; else not_ok "result item fields: $ext"; fi

# reruns find finished work
before=$(stat -c %Y.%i "$out")
sleep 1
mem-infer -s ndvi --workdir w < scene.json > res2.json
if cmp -s res.json res2.json && [ "$(stat -c %Y.%i "$out")" = "$before" ]; then ok "a rerun reuses the result, same item"; else not_ok "a rerun recomputed or changed the item"; fi

# --co reaches the file
mem-infer -s ndvi --co COMPRESS=DEFLATE --workdir w2 < scene.json > res3.json
o3=$(json_get res3.json "d['assets']['ndvi']['href']")
if gdalinfo "$o3" | grep -q 'COMPRESSION=DEFLATE'; then ok "--co COMPRESS=DEFLATE"; else not_ok "--co not honoured"; fi
if [ "$(json_get res3.json "d['id']")" != "$(json_get res.json "d['id']")" ]; then ok "other creation options, another id"; else not_ok "same id for other --co"; fi

# tiles as well as scenes
mem-tile -g webmercator:13 --workdir w < scene.json > tiles.json
check "ndvi of tiles" sh -c "mem-infer -s ndvi --workdir w < tiles.json > tres.json"
if [ "$(wc -l < tres.json)" -eq "$(wc -l < tiles.json)" ]; then ok "one result per tile"; else not_ok "results $(wc -l < tres.json) for $(wc -l < tiles.json) tiles"; fi

# division by zero and offsets: reflectance = DN * 1e-4 - 0.1, so DN 1000 is 0
gdal_py - <<'PY'
import numpy as np
from osgeo import gdal, osr
def write(name, a):
    d = gdal.GetDriverByName("GTiff").Create(name, 4, 1, 1, gdal.GDT_UInt16)
    d.SetGeoTransform([500000, 10, 0, 5000000, 0, -10])
    s = osr.SpatialReference(); s.ImportFromEPSG(32632); d.SetProjection(s.ExportToWkt())
    d.GetRasterBand(1).WriteArray(np.array([a], dtype=np.uint16)); d = None
write("r.tif", [65535, 1500, 0, 1200])
write("n.tif", [1000, 3500, 0, 1200])
PY
cat > tiny.json <<JSON
{"type":"Feature","stac_version":"1.0.0","id":"tiny","geometry":null,"properties":{"datetime":"2024-01-01T00:00:00Z"},"links":[],"assets":{"B04":{"href":"$T/r.tif","type":"image/tiff; application=geotiff","eo:bands":[{"name":"B04","common_name":"red"}],"raster:bands":[{"nodata":65535,"scale":0.0001,"offset":-0.1}]},"B08":{"href":"$T/n.tif","type":"image/tiff; application=geotiff","eo:bands":[{"name":"B08","common_name":"nir"}],"raster:bands":[{"nodata":65535,"scale":0.0001,"offset":-0.1}]}}}
JSON
check "ndvi with a BOA offset, assets keyed B04/B08" sh -c "mem-infer -s ndvi --workdir w < tiny.json > tiny-out.json"
vals=$(gdal_py -c "
from osgeo import gdal; import sys
d = gdal.Open(sys.argv[1]); a = d.GetRasterBand(1).ReadAsArray()[0]
print(' '.join('nan' if x != x else '%.6f' % x for x in a))" "$(json_get tiny-out.json "d['assets']['ndvi']['href']")")
# red nodata -> NaN; (0.25-0.05)/(0.25+0.05) = 0.666667; equal inputs -> 0
if [ "$vals" = "nan 0.666667 -0.000000 0.000000" ]; then ok "offset applied, nodata gives NaN ($vals)"; else not_ok "values: $vals"; fi
# without the offset, DN 0 in both bands is a zero sum: NaN, not a division by zero
sed 's/"offset":-0.1/"offset":0/g; s/"id":"tiny"/"id":"tiny0"/' tiny.json > tiny0.json
mem-infer -s ndvi --workdir w < tiny0.json > tiny0-out.json
vals=$(gdal_py -c "
from osgeo import gdal; import sys
d = gdal.Open(sys.argv[1]); a = d.GetRasterBand(1).ReadAsArray()[0]
print(' '.join('nan' if x != x else '%.6f' % x for x in a))" "$(json_get tiny0-out.json "d['assets']['ndvi']['href']")")
if [ "$vals" = "nan 0.400000 nan 0.000000" ]; then ok "nir + red = 0 gives NaN ($vals)"; else not_ok "values: $vals"; fi

# errors
check_exit "no stage exits 2" 2 mem-infer < scene.json
check_exit "an unknown stage exits 2" 2 mem-infer -s nope < scene.json
msg=$(stderr_of mem-infer -s nope)
case $msg in *"unknown stage 'nope'"*) ok "the unknown stage is named" ;; *) not_ok "unknown stage message: $msg" ;; esac
check_exit "an unknown device exits 2" 2 mem-infer -s ndvi --device tpu < scene.json
check_exit "a bad --co exits 2" 2 mem-infer -s ndvi --co COMPRESS < scene.json
# an option GTiff does not know, or a value it does not take: refused, nothing written
for co in NO_SUCH_OPTION=1 COMPRESS=NOPE; do
	msg=$(mem-infer -s ndvi --co "$co" --workdir wco < scene.json 2>&1 >/dev/null) && rc=0 || rc=$?
	[ "$rc" -eq 2 ] && printf '%s' "$msg" | grep -q "invalid --co: .*${co%%=*}" && [ ! -e wco ] &&
		ok "--co $co exits 2, names it, writes nothing" || not_ok "--co $co: exit $rc: $msg; $(ls wco 2>&1)"
done
if mem-infer --version | grep -q 'CUDA kernels: not built'; then
	check_exit "--device cuda without CUDA support exits 2" 2 mem-infer -s ndvi --device cuda --workdir w3 < scene.json
elif ! nvidia-smi -L >/dev/null 2>&1; then
	check_exit "--device cuda with no GPU exits 2" 2 mem-infer -s ndvi --device cuda --workdir w3 < scene.json
	msg=$(stderr_of mem-infer -s ndvi --device cuda --workdir w3 < scene.json)
	case $msg in *"no CUDA device found"*) ok "and says no CUDA device was found" ;; *) not_ok "message: $msg" ;; esac
else
	check "--device cuda on the GPU" sh -c "mem-infer -s ndvi --device cuda --workdir w3 < scene.json > gpu.json"
	set -- $(cmp_ndvi "$(json_get gpu.json "d['assets']['ndvi']['href']")" "$D/B04.tif" "$D/B08.tif")
	[ "$1" = 1 ] && [ "$2" = 0.0 ] && ok "the GPU result equals numpy's" || not_ok "GPU result: mask $1, max diff $2"
fi
/usr/bin/python3 -c "
import json
d = json.loads(open('scene.json').readline())
del d['assets']['nir']
print(json.dumps(d))" > nonir.json
check_exit "an item without nir fails (exit 1)" 1 mem-infer -s ndvi --workdir w < nonir.json
msg=$(stderr_of mem-infer -s ndvi --workdir w < nonir.json)
case $msg in *"has no band 'nir'"*) ok "the missing band is named" ;; *) not_ok "missing band message: $msg" ;; esac
{ cat nonir.json; cat scene.json; } > mixed.json
mem-infer -s ndvi --workdir w < mixed.json > mixed-out.json 2>/dev/null && rc=0 || rc=$?
if [ "$rc" -eq 1 ] && [ "$(wc -l < mixed-out.json)" -eq 1 ]; then ok "one failed item does not stop the others"; else not_ok "mixed run: exit $rc, $(wc -l < mixed-out.json) items"; fi
printf 'not json\n' > junk.json
check_exit "a malformed line fails (exit 1)" 1 mem-infer -s ndvi --workdir w junk.json
check_exit "--strict: a malformed line exits 2" 2 mem-infer -s ndvi --strict --workdir w junk.json

done_testing
