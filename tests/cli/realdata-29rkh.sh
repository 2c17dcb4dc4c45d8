#!/bin/sh
# Real data: the Earth Search COGs of Sentinel-2 tile 29RKH (2020-02-19) with
# their real STAC item, through the whole pipe.  The item names remote hrefs;
# the test points them at the local copies, as a mirror would.  The copies
# are resampled to 100 m, so the item's proj:shape (10980) is wrong for them:
# mem-fetch must describe the files as they are.
. "$MEM_SRCDIR/tests/lib.sh"

R=$(realdata s2/29RKH_20200219_earthsearch_cogs)
[ -n "$R" ] || skip_all "no ../shared/realdata/s2/29RKH_20200219_earthsearch_cogs"
have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"

/usr/bin/python3 - "$R" > item.json <<'PY'
import json, sys
r = sys.argv[1]
d = json.load(open(r + "/S2A_29RKH_20200219_0_L2A.json"))
files = {"red": "B04.tif", "nir": "B08.tif", "blue": "B02.tif", "green": "B03.tif", "scl": "SCL.tif"}
for k, a in d["assets"].items():
    if k in files:
        a["href"] = "file://" + r + "/" + files[k]
print(json.dumps(d))
PY

check "mem-fetch the real item" sh -c "mem-fetch item.json --assets red,nir,scl --workdir w > scene.json"
shape=$(json_get scene.json "d['assets']['red']['proj:shape']")
[ "$shape" = "[1098, 1098]" ] && ok "proj:shape describes the local copy (1098x1098)" || not_ok "proj:shape $shape"
cc=$(json_get scene.json "d['properties']['eo:cloud_cover']")
[ "$cc" = "4.051854" ] && ok "the item's properties pass through" || not_ok "eo:cloud_cover $cc"

check "the whole pipe on 29RKH" sh -c "mem-tile -g utm --workdir w < scene.json | mem-infer -s ndvi --workdir w | mem-store -o out > stored.json"
n=$(wc -l < stored.json)
[ "$n" -ge 4 ] && ok "$n NDVI tiles stored" || not_ok "$n tiles stored"
bad=0
for f in $(find out -name '*.tif'); do
	gdalinfo "$f" >/dev/null 2>&1 && is_cog "$f" || { bad=$((bad + 1)); diag "not a COG: $f"; }
done
[ "$bad" -eq 0 ] && ok "gdalinfo opens every output and reports COG layout" || not_ok "$bad outputs fail gdalinfo"
grid=$(json_get stored.json "d['properties']['mem:grid']")
case $grid in utm/32629/100/1024/*) ok "native UTM grid of the scene (zone 29N, 100 m)" ;; *) not_ok "grid $grid" ;; esac

# NDVI of a stored tile equals NDVI computed from the source bands
# warped the same way (gdalwarp -r bilinear into the cell)
f=$(json_get stored.json "d['assets']['ndvi']['href']")
te=$(gdal_py -c "
from osgeo import gdal; import sys
d = gdal.Open(sys.argv[1]); g = d.GetGeoTransform()
print(g[0], g[3] + d.RasterYSize * g[5], g[0] + d.RasterXSize * g[1], g[3])" "$f")
gdalwarp -q -te $te -ts 1024 1024 -r bilinear -srcnodata 0 -dstnodata 0 "$R/B04.tif" r.tif
gdalwarp -q -te $te -ts 1024 1024 -r bilinear -srcnodata 0 -dstnodata 0 "$R/B08.tif" n.tif
d=$(gdal_py - "$f" r.tif n.tif <<'PY'
import sys
import numpy as np
from osgeo import gdal
o, r, n = (gdal.Open(p) for p in sys.argv[1:4])
a = o.GetRasterBand(1).ReadAsArray()
red = r.GetRasterBand(1).ReadAsArray().astype(np.float64)
nir = n.GetRasterBand(1).ReadAsArray().astype(np.float64)
bad = (red == 0) | (nir == 0)
with np.errstate(divide="ignore", invalid="ignore"):
    ref = np.where(bad, np.nan, (nir - red) / (nir + red))
v = ~np.isnan(ref) & ~np.isnan(a)
print(int(v.sum()), float(np.abs(a[v] - ref[v]).max()), int((np.isnan(a) != np.isnan(ref)).sum()))
PY
)
set -- $d
[ "$1" -gt 1000 ] && ok "$1 valid pixels in the tile" || not_ok "valid pixels $1"
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$2') < 1e-6 else 1)" && ok "NDVI within 1e-6 of gdalwarp + numpy" || not_ok "NDVI differs by $2"
[ "$3" -eq 0 ] && ok "same nodata mask as gdalwarp + numpy" || not_ok "$3 pixels differ in nodata"

done_testing
