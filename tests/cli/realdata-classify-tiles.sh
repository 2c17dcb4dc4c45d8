#!/bin/sh
# Real data: the classifier on tiles inferred separately and mosaicked,
# against the same model on the whole image (T13SFA 2024-09-06 crop).
#
# mem-tile cuts the crop into utm:10:128 cells (aligned on its 10 m grid;
# near resampling copies pixels).  Each tile is inferred as an item of its
# own; the tiles' outputs, mosaicked with gdalbuildvrt onto the crop's
# grid, must equal the whole-image results exactly, every pixel, edges
# included: for a per-pixel (dense) model, for a 3x3 convolution and for
# a cloud mask dilated by 3 pixels, which read across the tiles' seams
# from the neighbouring tiles (the halo, mem-infer(1)).
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
command -v gdalbuildvrt >/dev/null || skip_all "no gdalbuildvrt"
C=$(realdata s2/T13SFA_20240906_cdse_crop)
[ -n "$C" ] || skip_all "no T13SFA 2024-09-06 crop in ../shared/realdata"

gdal_py - "$C" > scene.json <<'PY'
import glob, json, sys
from osgeo import gdal, osr
d = sys.argv[1]
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
print(json.dumps({'type': 'Feature', 'stac_version': '1.0.0', 'id': 'T13SFA_20240906',
    'bbox': b, 'geometry': {'type': 'Polygon', 'coordinates': [[[b[0], b[1]], [b[2], b[1]],
        [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]]},
    'properties': {'datetime': '2024-09-06T17:30:00Z', 'platform': 'sentinel-2', 'proj:epsg': 32613},
    'links': [],
    'assets': {'red': band('B04', 'B04', 'red'), 'nir': band('B08', 'B08', 'nir'),
               'scl': {'href': f['SCL'], 'type': 'image/tiff; application=geotiff',
                       'roles': ['data', 'classification'], 'raster:bands': [{'nodata': 0, 'data_type': 'uint8'}]}}}))
PY

classes=4=vegetation,5=bare,8=cloud,9=cloud,3=shadow
check "train a dense and a convolution model from the scene's scl" sh -c \
    "mem-infer --train dense.h5 --labels-band scl --label-classes $classes --hidden 8 --epochs 3 < scene.json 2>/dev/null &&
     mem-infer --train conv.h5 --labels-band scl --label-classes $classes --hidden 8 --conv --epochs 3 < scene.json 2>/dev/null"
check "tile the scene into utm:10:128 cells" sh -c "mem-tile -g utm:10:128 -r near --workdir w < scene.json > tiles.json"
n=$(wc -l < tiles.json)
[ "$n" -ge 4 ] && ok "$n tiles" || not_ok "$n tiles"
S="-s classify:model=dense.h5,as=dense -s classify:model=conv.h5,as=conv -s cloudmask:dilate=3,as=mask"
check "classify and mask the whole scene" sh -c "mem-infer $S --workdir w < scene.json > whole.json"
check "classify and mask each tile, with its neighbours" sh -c "mem-infer $S --workdir w < tiles.json > tiled.json"

res=$(gdal_py - <<'PY' 2>>diag.txt
import json, sys
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
whole = json.loads(open("whole.json").readline())
tiles = [json.loads(l) for l in open("tiles.json")]
res = [json.loads(l) for l in open("tiled.json")]
out = []
for name in ("dense", "conv", "mask"):
    wds = gdal.Open(whole["assets"][name]["href"])
    w = wds.ReadAsArray()
    g = wds.GetGeoTransform()
    te = [g[0], g[3] + g[5] * wds.RasterYSize, g[0] + g[1] * wds.RasterXSize, g[3]]
    nd = 255  # the class bands and the mask alike: UInt8, 255 = nodata
    vrt = gdal.BuildVRT("/vsimem/%s.vrt" % name, [r["assets"][name]["href"] for r in res],
                        outputBounds=te, xRes=g[1], yRes=-g[5], srcNodata=nd, VRTNodata=nd)
    m = vrt.ReadAsArray()
    # the pixels on a tile's edge: where a neighbour is in another tile
    edge = np.zeros(w.shape, bool)
    for r in res:
        t = gdal.Open(r["assets"][name]["href"])
        tg = t.GetGeoTransform()
        x0, y0 = round((tg[0] - g[0]) / g[1]), round((tg[3] - g[3]) / g[5])
        x1, y1 = x0 + t.RasterXSize, y0 + t.RasterYSize
        for xs in (x0, x1 - 1):
            if 0 <= xs < w.shape[1]:
                edge[max(y0, 0):min(y1, w.shape[0]), xs] = True
        for ys in (y0, y1 - 1):
            if 0 <= ys < w.shape[0]:
                edge[ys, max(x0, 0):min(x1, w.shape[1])] = True
    valid = w != 255
    diff = (m != w) | ((m == 255) != (w == 255))
    if w.dtype != np.uint8 or wds.GetRasterBand(1).GetNoDataValue() != 255:
        print("# %s: %s, nodata %s: not UInt8 with 255" % (name, w.dtype, wds.GetRasterBand(1).GetNoDataValue()),
              file=sys.stderr)
        valid[:] = False
    if name == "mask":
        print("# mask: %d of %d pixels masked" % ((w == 1).sum(), valid.sum()), file=sys.stderr)
    print("# %s: %d valid pixels, %d differ (%d of them on a tile edge, %d edge pixels)"
          % (name, valid.sum(), diff.sum(), (diff & edge).sum(), (edge & valid).sum()), file=sys.stderr)
    out.append("%d %d %d" % (diff.sum(), (diff & edge).sum(), valid.sum()))
print(" ".join(out))
PY
)
sed 's/^# //; s/^/# /' diag.txt
set -- $res
[ "${1:-x}" = 0 ] && [ "${3:-0}" -gt 100000 ] && ok "dense model: the mosaic of tiles equals the whole image ($3 pixels)" || not_ok "dense: $res"
[ "${4:-x}" = 0 ] && [ "${6:-0}" -gt 100000 ] && ok "3x3 convolution: the mosaic equals the whole image, tiles' edges included ($6 pixels)" || not_ok "conv: $res"
[ "${7:-x}" = 0 ] && [ "${9:-0}" -gt 100000 ] && ok "cloud mask (UInt8) dilated by 3: the mosaic equals the whole image, tiles' edges included ($9 pixels)" || not_ok "mask: $res"
done_testing
