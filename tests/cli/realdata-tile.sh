#!/bin/sh
# Real data: mem-tile's pixels against gdalwarp with the same target grid
# (each cell's bounds and size) and resampling, on the Earth Search COGs of
# 29RKH (whole tile, 100 m copies; the cells along its edges are partly
# nodata) and on the T13SFA crops (10 m and 20 m bands, zeroed outside the
# fields).  Tolerances: nearest identical; bilinear within 1 DN; the nodata
# masks identical (nodata, never zero, outside the scene).
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
R29=$(realdata s2/29RKH_20200219_earthsearch_cogs)
R13=$(realdata s2/T13SFA_20240901_cdse_crop)
[ -n "$R29$R13" ] || skip_all "no real Sentinel-2 data under $MEM_REALDATA"

# compare.py TILES.json ALG: for every tile and asset, gdalwarp on the cell
cat > compare.py <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
alg = sys.argv[2]
src = json.load(open(sys.argv[3]))
tiles = ntiles = edge = maxd = maskd = 0
near_bad = 0
for l in open(sys.argv[1]):
    d = json.loads(l); p = d['properties']; t = p['proj:transform']; h, w = p['proj:shape']
    te = (t[2], t[5] + h * t[4], t[2] + w * t[0], t[5])
    ntiles += 1
    if 0 < p['mem:valid_fraction'] < 1:
        edge += 1
    for k, a in d['assets'].items():
        near = k.lower() == 'scl'
        ref = gdal.Warp('', src[k], format='MEM', dstSRS='EPSG:%d' % p['proj:epsg'], outputBounds=te,
                        width=w, height=h, resampleAlg='near' if near else alg)
        r = ref.GetRasterBand(1); nd = r.GetNoDataValue()
        x = gdal.Open(a['href']).ReadAsArray().astype(float); y = r.ReadAsArray().astype(float)
        vx, vy = x != a['raster:bands'][0].get('nodata', 0), y != nd
        maskd += int((vx != vy).sum())
        m = vx & vy
        dd = float(np.abs(x - y)[m].max()) if m.any() else 0.0
        if near or alg == 'near':
            near_bad += int((x != y)[m].sum())
        else:
            maxd = max(maxd, dd)
print(ntiles, edge, int(maxd), maskd, near_bad)
PY

if [ -n "$R29" ]; then
	/usr/bin/python3 - "$R29" > item29.json <<'PY'
import json, sys
r = sys.argv[1]
d = json.load(open(r + "/S2A_29RKH_20200219_0_L2A.json"))
for k, f in {"red": "B04.tif", "scl": "SCL.tif"}.items():
    d["assets"][k]["href"] = r + "/" + f
d["assets"] = {k: d["assets"][k] for k in ("red", "scl")}
print(json.dumps(d))
PY
	echo "{\"red\": \"$R29/B04.tif\", \"scl\": \"$R29/SCL.tif\"}" > src29.json
	mem-fetch item29.json --workdir w > scene29.json
	check "29RKH into webmercator:10, bilinear" sh -c "mem-tile -g webmercator:10 --workdir w < scene29.json > wm29.json"
	set -- $(gdal_py compare.py wm29.json bilinear src29.json)
	if [ "$1" -gt 4 ] && [ "$2" -gt 0 ] && [ "$3" -le 1 ] && [ "$4" = 0 ] && [ "$5" = 0 ]; then
		ok "29RKH: $1 cells ($2 across the scene edge): red within 1 DN of gdalwarp (max $3), scl identical, nodata masks identical"
	else
		not_ok "29RKH against gdalwarp: $1 cells, $2 on the edge, red max diff $3 DN, masks differ at $4 px, scl differs at $5 px"
	fi
	check "29RKH into utm:60:256, near" sh -c "mem-tile -g utm:60:256 -r near --workdir w < scene29.json > utm29.json"
	set -- $(gdal_py compare.py utm29.json near src29.json)
	if [ "$1" -gt 4 ] && [ "$2" -gt 0 ] && [ "$4" = 0 ] && [ "$5" = 0 ]; then
		ok "29RKH utm:60 near: $1 cells ($2 on the edge) identical to gdalwarp -r near"
	else
		not_ok "29RKH utm near: $1 cells, $2 on the edge, masks differ at $4 px, values at $5 px"
	fi
else
	skip "no 29RKH COGs"; skip "no 29RKH COGs"; skip "no 29RKH COGs"; skip "no 29RKH COGs"
fi

if [ -n "$R13" ]; then
	red=$(ls "$R13"/*_B04_10m.tif); scl=$(ls "$R13"/*_SCL_20m.tif)
	gdal_py - "$red" "$scl" > item13.json <<'PY'
import json, sys
from osgeo import gdal, osr
red, scl = sys.argv[1], sys.argv[2]
ds = gdal.Open(red); g = ds.GetGeoTransform()
s = osr.SpatialReference(); s.ImportFromWkt(ds.GetProjection()); t = osr.SpatialReference(); t.ImportFromEPSG(4326)
for x in (s, t):
    x.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(s, t)
pts = [ct.TransformPoint(x, y)[:2] for x in (g[0], g[0] + g[1] * ds.RasterXSize) for y in (g[3], g[3] + g[5] * ds.RasterYSize)]
b = [min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)]
print(json.dumps({'type': 'Feature', 'stac_version': '1.0.0', 'id': 'T13SFA_20240901', 'bbox': b,
    'geometry': {'type': 'Polygon', 'coordinates': [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]]},
    'properties': {'datetime': '2024-09-01T17:28:59Z'}, 'links': [],
    'assets': {'red': {'href': red, 'type': 'image/tiff; application=geotiff', 'roles': ['data'], 'raster:bands': [{'nodata': 0}]},
               'scl': {'href': scl, 'type': 'image/tiff; application=geotiff', 'roles': ['data'], 'raster:bands': [{'nodata': 0}]}}}))
PY
	echo "{\"red\": \"$red\", \"scl\": \"$scl\"}" > src13.json
	check "T13SFA into webmercator:15, bilinear" sh -c "mem-tile -g webmercator:15 --workdir w < item13.json > wm13.json"
	set -- $(gdal_py compare.py wm13.json bilinear src13.json)
	if [ "$1" -gt 1 ] && [ "$3" -le 1 ] && [ "$4" = 0 ] && [ "$5" = 0 ]; then
		ok "T13SFA: $1 cells: red within 1 DN of gdalwarp (max $3), 20 m scl identical, nodata masks identical"
	else
		not_ok "T13SFA against gdalwarp: $1 cells, red max diff $3 DN, masks differ at $4 px, scl differs at $5 px"
	fi
else
	skip "no T13SFA crops"; skip "no T13SFA crops"
fi
done_testing
