#!/bin/sh
# Real data: the sen2r Barbellino clip (Sentinel-2 L2A, 24x42 px, an 11-band
# BOA stack).  NDVI from mem-infer, found in the stack by eo:bands common
# names, equals sen2r's NDVI_10 product, round(10000 * ndvi), on every valid
# pixel: an exact comparison, no tolerance.
. "$MEM_SRCDIR/tests/lib.sh"

B=$(realdata s2/barbellino_sen2r)
[ -n "$B" ] || skip_all "no ../shared/realdata/s2/barbellino_sen2r"
have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"

# the stack as a STAC item: one multi-band asset, bands in sen2r's order
/usr/bin/python3 - "$B/S2A2A_20190723_022_Barbellino_BOA_10.tif" > item.json <<'PY'
import json, sys
names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
common = ["coastal", "blue", "green", "red", "rededge", "rededge", "rededge", "nir",
          "nir08", "swir16", "swir22"]
print(json.dumps({
    "type": "Feature", "stac_version": "1.0.0", "id": "S2A2A_20190723_022_Barbellino",
    "geometry": None, "properties": {"datetime": "2019-07-23T10:20:31Z"}, "links": [],
    "assets": {"boa": {
        "href": sys.argv[1], "type": "image/tiff; application=geotiff", "roles": ["data"],
        "eo:bands": [{"name": n, "common_name": c} for n, c in zip(names, common)],
        "raster:bands": [{"nodata": 65535, "scale": 0.0001, "offset": 0} for _ in names]}}}))
PY
check "mem-infer -s ndvi on the BOA stack" sh -c "mem-infer -s ndvi --workdir w < item.json > out.json"
ndvi=$(json_get out.json "d['assets']['ndvi']['href']")
set -- $(gdal_py - "$ndvi" "$B/S2A2A_20190723_022_Barbellino_NDVI_10.tif" <<'PY'
import sys
import numpy as np
from osgeo import gdal
o = gdal.Open(sys.argv[1]); r = gdal.Open(sys.argv[2])
a = o.GetRasterBand(1).ReadAsArray()
ref = r.GetRasterBand(1).ReadAsArray()
valid = ref != r.GetRasterBand(1).GetNoDataValue()
ours = np.round(a.astype(np.float64) * 10000)
mism = int((ours[valid] != ref[valid]).sum())
nan_valid = int(np.isnan(a[valid]).sum())
extra = int((~np.isnan(a[~valid])).sum())
same_grid = int(o.GetGeoTransform() == r.GetGeoTransform() and a.shape == ref.shape)
print(int(valid.sum()), mism, nan_valid, extra, same_grid)
PY
)
[ "$1" -eq 1008 ] && ok "the reference has 1008 valid pixels" || not_ok "reference valid pixels: $1"
[ "$2" -eq 0 ] && ok "round(10000 * NDVI) equals NDVI_10 on all $1 valid pixels" || not_ok "$2 of $1 pixels differ from NDVI_10"
[ "$3" -eq 0 ] && ok "no NaN where the reference is valid" || not_ok "$3 NaN where the reference is valid"
[ "$4" -eq 0 ] && ok "NaN wherever the reference is nodata" || not_ok "$4 values where the reference is nodata"
[ "$5" -eq 1 ] && ok "same grid as the reference" || not_ok "grid differs from the reference"

done_testing
