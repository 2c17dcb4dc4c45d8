#!/bin/sh
# mem-store --co COMPRESS=LERC|LERC_DEFLATE|LERC_ZSTD with MAX_Z_ERROR, and
# ZSTD with a predictor and a level: GDAL opens each COG, its COG validator
# accepts it, the compression is the one asked for, and the values are
# within MAX_Z_ERROR of the input (equal when it is 0, and for ZSTD).
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
gdalinfo --format COG 2> /dev/null | grep -q LERC_ZSTD || skip_all "this GDAL's COG driver has no LERC_ZSTD"
demo
mem-fetch demo/catalog.json --assets red,nir --workdir w > rn.json
mem-infer -s ndvi --workdir w < rn.json > res.json
mem-fetch demo/catalog.json --assets red --workdir w > scene.json
# 384x384 crops of both keep the test quick; the items point at them
crop() {
	gdal_translate -q -srcwin 256 256 384 384 "$(json_get "$1" "d['assets']['$2']['href']")" "$T/$2.tif"
	/usr/bin/python3 -c "
import json, sys
d = json.loads(open(sys.argv[1]).readline()); a = d['assets'][sys.argv[2]]
a['href'] = sys.argv[3]; a.pop('file:checksum', None); a.pop('file:size', None)
d['assets'] = {sys.argv[2]: a}
print(json.dumps(d))" "$1" "$2" "$T/$2.tif" > "$1.tmp"
	mv "$1.tmp" "$1"
}
crop res.json ndvi
crop scene.json red
rid=$(json_get res.json "d['id']")
sid=$(json_get scene.json "d['id']")
src=$(json_get res.json "d['assets']['ndvi']['href']")
red=$(json_get scene.json "d['assets']['red']['href']")

# compare STORED SOURCE: the largest |difference|, NaN where NaN, and the COG layout
cat > cmp.py <<'PY'
import sys
from osgeo import gdal
import numpy as np
a = gdal.Open(sys.argv[1]); b = gdal.Open(sys.argv[2])
x = a.GetRasterBand(1).ReadAsArray().astype('float64'); y = b.GetRasterBand(1).ReadAsArray().astype('float64')
nan = np.isnan(y)
print('%.9g' % (np.max(np.abs(x[~nan] - y[~nan])) if (~nan).any() else 0),
      int(np.array_equal(np.isnan(x), nan)),
      a.GetMetadataItem('COMPRESSION', 'IMAGE_STRUCTURE'),
      a.GetMetadataItem('LAYOUT', 'IMAGE_STRUCTURE'))
PY
validates() {
	gdal_py -m osgeo_utils.samples.validate_cloud_optimized_geotiff -q --full-check=yes "$1" 2> /dev/null
}

# NAME EXPECTED-COMPRESSION MAXERR CO...: store res.json and scene.json, check the float ndvi and the uint16 red
case_() {
	name=$1 want=$2 maxerr=$3
	shift 3
	co=
	for o in "$@"; do co="$co --co $o"; done
	# shellcheck disable=SC2086
	cat res.json scene.json | mem-store -o "$name" $co > /dev/null 2> err.txt || { not_ok "$name: $(cat err.txt)"; return; }
	f="$name/ndvi/$rid/ndvi.tif"
	set -- $(gdal_py cmp.py "$f" "$src")
	if [ "$3" = "$want" ] && [ "$4" = COG ]; then ok "$name: ndvi stored as a $want COG"; else not_ok "$name: $*"; fi
	validates "$f" && ok "$name: GDAL's COG validator accepts it" || not_ok "$name: the COG validator rejects $f"
	# LERC keeps the error within MAX_Z_ERROR before the value is rounded back to float32
	if awk -v e="$1" -v m="$maxerr" 'BEGIN { exit !(e <= m + 1e-6) }' && [ "$2" = 1 ]; then
		ok "$name: float32 values within $maxerr (+1e-6, float32 rounding) of the input (largest difference $1), NaN kept"
	else
		not_ok "$name: largest difference $1 (allowed $maxerr), NaN kept: $2"
	fi
	set -- $(gdal_py cmp.py "$name/sentinel-2-l2a-demo/$sid/red.tif" "$red")
	# integers: an error below 0.5 rounds back to the same value
	if awk -v e="$1" -v m="$maxerr" 'BEGIN { exit !(e <= (m < 0.5 ? 0 : m)) }' && [ "$3" = "$want" ]; then
		ok "$name: uint16 red within bounds (largest difference $1)"
	else
		not_ok "$name: red $*"
	fi
	size=$(stat -c %s "$f")
}

case_ lerc0 LERC 0 COMPRESS=LERC MAX_Z_ERROR=0
lossless=$size
case_ lercdeflate LERC_DEFLATE 0.01 COMPRESS=LERC_DEFLATE MAX_Z_ERROR=0.01
case_ lerczstd LERC_ZSTD 0.001 COMPRESS=LERC_ZSTD MAX_Z_ERROR=0.001
[ "$size" -lt "$lossless" ] && ok "MAX_Z_ERROR=0.001 makes a smaller file ($size bytes) than 0 ($lossless)" ||
	not_ok "lossy LERC_ZSTD $size bytes, lossless LERC $lossless"
# PREDICTOR=3 is for floats: the uint16 red gets 2 instead of a refusal
case_ zstd3 ZSTD 0 COMPRESS=ZSTD PREDICTOR=3 LEVEL=15
gdal_py -c "
from osgeo import gdal; import sys
print(gdal.Open(sys.argv[1]).GetMetadataItem('PREDICTOR', 'IMAGE_STRUCTURE'))" "zstd3/ndvi/$rid/ndvi.tif" > pred.txt 2>&1 || true
[ "$(cat pred.txt)" = 3 ] && ok "ZSTD with the floating-point predictor (PREDICTOR=3)" || not_ok "predictor: $(cat pred.txt)"
case_ zstd2 ZSTD 0 COMPRESS=ZSTD
gdal_py -c "
from osgeo import gdal; import sys
print(gdal.Open(sys.argv[1]).GetMetadataItem('PREDICTOR', 'IMAGE_STRUCTURE'))" "zstd2/sentinel-2-l2a-demo/$sid/red.tif" > pred.txt 2>&1 || true
[ "$(cat pred.txt)" = 2 ] && ok "ZSTD on integers gets the horizontal predictor by default (PREDICTOR=2)" || not_ok "predictor: $(cat pred.txt)"
check_exit "a compression the COG driver does not know exits 2" 2 sh -c 'mem-store -o bad --co COMPRESS=NOPE < res.json'
check_exit "a MAX_Z_ERROR that is no number exits 2" 2 sh -c 'mem-store -o bad --co COMPRESS=LERC --co MAX_Z_ERROR=tiny < res.json'
[ ! -e bad ] && ok "nothing written for bad options" || not_ok "bad options wrote $(find bad | head -3)"

done_testing
