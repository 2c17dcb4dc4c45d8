#!/bin/sh
# mem-tile --composite on real Sentinel-2 L2A crops of T13SFA (three dates of
# September 2024, one with cloud and cloud shadow in its SCL): least-cloudy,
# median and max-ndvi against the same rules computed here with numpy on the
# crops' own grid, and the per-tile valid and cloud fractions.
. "$MEM_SRCDIR/tests/lib.sh"

R=$MEM_REALDATA/s2
[ -d "$R/T13SFA_20240901_cdse_crop" ] || skip_all "no real T13SFA crops in $MEM_REALDATA"
have_gdal_py || skip_all "no GDAL Python bindings"

# Items for the crops (they ship as bare files): red, nir and scl, nodata 0,
# the 2022+ BOA offset in raster:bands, and scene cloud covers chosen so
# that the cloudy date (09-06) ranks first: least-cloudy must still leave it
# wherever its SCL says cloud.
gdal_py - "$R" > items.json <<'PY'
import glob, json, sys
from osgeo import gdal, osr
cc = {'20240901': 3.0, '20240904': 2.0, '20240906': 1.0}
for d in sorted(glob.glob(sys.argv[1] + '/T13SFA_*_cdse_crop')):
    date = d.split('_')[-3]
    f = {k: glob.glob(d + '/*_%s_*.tif' % k)[0] for k in ('B04', 'B08', 'SCL')}
    ds = gdal.Open(f['B04']); g = ds.GetGeoTransform()
    s = osr.SpatialReference(); s.ImportFromWkt(ds.GetProjection())
    t = osr.SpatialReference(); t.ImportFromEPSG(4326)
    for r in (s, t):
        r.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(s, t)
    pts = [ct.TransformPoint(x, y)[:2] for x in (g[0], g[0] + g[1] * ds.RasterXSize)
           for y in (g[3], g[3] + g[5] * ds.RasterYSize)]
    b = [min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)]
    rb = [{'nodata': 0, 'data_type': 'uint16', 'scale': 0.0001, 'offset': -0.1}]
    band = lambda k, n, c: {'href': f[k], 'type': 'image/tiff; application=geotiff', 'roles': ['data'],
                            'eo:bands': [{'name': n, 'common_name': c}], 'raster:bands': rb}
    print(json.dumps({'type': 'Feature', 'stac_version': '1.0.0', 'id': 'T13SFA_' + date,
        'bbox': b, 'geometry': {'type': 'Polygon', 'coordinates': [[[b[0], b[1]], [b[2], b[1]],
            [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]]},
        'properties': {'datetime': '%s-%s-%sT17:30:00Z' % (date[:4], date[4:6], date[6:]),
                       'eo:cloud_cover': cc[date], 'proj:epsg': 32613},
        'links': [],
        'assets': {'red': band('B04', 'B04', 'red'), 'nir': band('B08', 'B08', 'nir'),
                   'scl': {'href': f['SCL'], 'type': 'image/tiff; application=geotiff',
                           'roles': ['data'], 'raster:bands': [{'nodata': 0, 'data_type': 'uint8'}]}}}))
PY

# The expected composites, on the crops' 10 m grid (the tiles' grid too:
# utm:10 cells are aligned on 10 m, so near resampling copies pixels, and
# each 20 m SCL pixel covers 2x2 of them).
cat > expect.py <<'PY'
import glob, json, sys, warnings
import numpy as np
from osgeo import gdal
warnings.simplefilter('ignore')
R, method, vrt = sys.argv[1], sys.argv[2], sys.argv[3]
dates = ['20240901', '20240904', '20240906']
cc = {'20240901': 3.0, '20240904': 2.0, '20240906': 1.0}
rd = lambda d, k: gdal.Open(glob.glob('%s/T13SFA_%s_cdse_crop/*_%s_*.tif' % (R, d, k))[0]).ReadAsArray().astype(float)
red = np.array([rd(d, 'B04') for d in dates]); nir = np.array([rd(d, 'B08') for d in dates])
scl = np.array([np.repeat(np.repeat(rd(d, 'SCL'), 2, 0), 2, 1)[:red.shape[1], :red.shape[2]] for d in dates])
clear = (scl != 0) & ~np.isin(scl, [3, 8, 9, 10])
valid = red != 0
order = sorted(range(3), key=lambda i: (cc[dates[i]], -i))      # least cloudy first, then latest
sel = np.full(red.shape[1:], -1)
if method == 'least-cloudy':
    for i in reversed(order):
        sel = np.where(clear[i], i, sel)
elif method == 'max-ndvi':
    ok = valid & (nir != 0)
    refl_r, refl_n = red * 1e-4 - 0.1, nir * 1e-4 - 0.1
    with np.errstate(divide='ignore', invalid='ignore'):
        nd = np.where(ok & (refl_n + refl_r != 0), (refl_n - refl_r) / (refl_n + refl_r), -np.inf)
    for cand in (nd + np.where(clear, 0, -np.inf), nd):
        best = np.where(np.isfinite(cand).any(0), np.argmax(cand, 0), -1)
        sel = np.where(sel < 0, best, sel)
out = np.zeros(red.shape[1:])
done = np.zeros(red.shape[1:], bool)
if method == 'median':
    for use in (clear & valid, valid):
        v = np.where(use, red, np.nan)
        n = use.sum(0)
        with np.errstate(all='ignore'):
            m = np.floor(np.nanmedian(v, 0) + 0.5)
        take = ~done & (n > 0)
        out[take] = m[take]; done |= take
for i in range(3):                                            # the chosen scene, where it is valid
    take = ~done & (sel == i) & valid[i]
    out[take] = red[i][take]; done |= take
for i in order:                                               # else the first valid in order
    take = ~done & valid[i]
    out[take] = red[i][take]; done |= take
# the tiles, read on the crops' grid
ref = gdal.Open(glob.glob('%s/T13SFA_20240901_cdse_crop/*_B04_*.tif' % R)[0])
g = ref.GetGeoTransform()
w = gdal.Warp('', vrt, format='MEM', outputBounds=(g[0], g[3] + g[5] * ref.RasterYSize, g[0] + g[1] * ref.RasterXSize, g[3]),
              xRes=10, yRes=10, resampleAlg='near')
got = w.ReadAsArray().astype(float)
diff = np.abs(got - out)
clouded = (~clear[2]) & (scl[2] != 0) & clear[0]
print(int(diff.max()), int((diff > 0).sum()), int(done.sum()), int((clouded & (got == red[0]) & (red[0] != red[2])).sum()) if method == 'least-cloudy' else 0)
PY

for m in least-cloudy median max-ndvi; do
	if mem-tile -g utm:10:256 -r near --composite $m:P1M --workdir w < items.json > $m.json 2> $m.err; then
		ok "composite $m:P1M of three dates"
	else
		not_ok "composite $m: $(cat $m.err)"; continue
	fi
	# every tile's red into one mosaic
	gdal_py -c "
import json, sys
for l in open(sys.argv[1]):
    print(json.loads(l)['assets']['red']['href'])" $m.json > reds.txt
	gdalbuildvrt -q -input_file_list reds.txt $m.vrt
	set -- $(gdal_py expect.py "$R" $m $m.vrt)
	if [ "$1" = 0 ] && [ "$3" -gt 100000 ]; then
		ok "$m: red equals the rule computed with numpy on all $3 valid pixels"
	else
		not_ok "$m: red differs from numpy by up to $1 DN at $2 pixels ($3 valid)"
	fi
	if [ "$m" = least-cloudy ]; then
		if [ "$4" -gt 100 ]; then
			ok "least-cloudy takes another date at the $4 pixels where the first-ranked date's SCL says cloud"
		else
			not_ok "least-cloudy kept the clouded date ($4 pixels replaced)"
		fi
	fi
done

# the items: period, scene count, fractions
p=$(json_get least-cloudy.json "d['properties']['mem:period'] + ' ' + str(d['properties']['mem:scene_count']) + ' ' + d['properties']['mem:composite']")
if [ "$p" = "2024-09-01/2024-10-01 3 least-cloudy" ]; then ok "the tile names its period, scenes and method"; else not_ok "composite properties: $p"; fi
fr=$(gdal_py -c "
import json, sys
from osgeo import gdal
import numpy as np
bad = 0
for l in open(sys.argv[1]):
    d = json.loads(l); p = d['properties']
    a = gdal.Open(d['assets']['scl']['href']).ReadAsArray()
    r = gdal.Open(d['assets']['red']['href']).ReadAsArray()
    anyv = (a != 0) | (r != 0)
    v = abs(anyv.mean() - p['mem:valid_fraction']) > 1e-6
    c = abs(np.isin(a, [3, 8, 9, 10]).sum() / max((a != 0).sum(), 1) - p['mem:cloud_fraction']) > 1e-6
    bad += v or c
print(bad)" least-cloudy.json)
if [ "$fr" = 0 ]; then ok "mem:valid_fraction and mem:cloud_fraction match the tile files"; else not_ok "$fr tiles have wrong fractions"; fi
# the daily mosaic (no --composite): one item per cell and date
mem-tile -g utm:10:256 -r near --workdir w < items.json > daily.json
n=$(gdal_py -c "
import json, sys
print(len({json.loads(l)['properties']['datetime'][:10] for l in open(sys.argv[1])}))" daily.json)
if [ "$n" = 3 ]; then ok "without --composite each date is its own mosaic"; else not_ok "daily dates: $n"; fi

# bad composites
rc=0; mem-tile -g utm --composite mean < /dev/null 2> e1 || rc=$?
if [ $rc = 2 ] && grep -q "unknown composite 'mean'" e1; then ok "an unknown composite is named, exit 2"; else not_ok "exit $rc: $(cat e1)"; fi
rc=0; mem-tile -g utm --composite median:P1Q < /dev/null 2> e2 || rc=$?
if [ $rc = 2 ] && grep -q "invalid period 'P1Q'" e2; then ok "a bad period is named, exit 2"; else not_ok "exit $rc: $(cat e2)"; fi
done_testing
