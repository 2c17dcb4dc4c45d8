#!/bin/sh
# mem-infer -s cloudmask on Landsat Collection 2: the QA_PIXEL bits.
#
# The item is the real USGS landsatlook item of LC08 028/030 2020-01-14
# (../shared/realdata/stac), its red, nir08 and qa_pixel assets pointed at
# local files: QA_PIXEL words generated here (the values USGS documents for
# clear land and water, cloud, shadow, cirrus and snow, and random 16-bit
# words), so every bit and confidence pair occurs.  The mask is worked out
# independently with numpy (bits, confidence pairs, fill, then a square
# dilation by shifting) and must equal mem-infer's exactly, in strips of 7
# rows on 2 threads too.  A Sentinel-2 item keeps the SCL classes.  When
# ../shared/realdata holds a real Landsat QA_PIXEL cut it is checked the
# same way; its landsat/ folder holds none today (RGB.byte.tif is an 8-bit
# RGB composite), which is said with a SKIP.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
L=$(realdata stac/usgs-landsatlook/LC08_L2SP_028030_20200114_20200824_02_T1_SR.json)
[ -n "$L" ] || skip_all "no Landsat STAC item in ../shared/realdata"

# the reference: mask of QA words, as USGS documents the bits
cat > ref.py <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
gdal.UseExceptions()

def qamask(q, bits=(1, 2, 3, 4), conf=None, dilate=0, nodata=1):
    q = q.astype(np.int64)
    m = np.zeros(q.shape, bool)
    for b in bits:
        m |= (q >> b) & 1 == 1
    for name, lvl in (conf or {}).items():
        pos = {"cloud": 8, "shadow": 10, "snow": 12, "cirrus": 14}[name]
        m |= (q >> pos) & 3 >= lvl
    nd = ((q & 1) == 1) | (q == nodata)
    m &= ~nd
    d = m.copy()
    h, w = m.shape
    for dy in range(-dilate, dilate + 1):
        for dx in range(-dilate, dilate + 1):
            s = np.zeros_like(m)
            s[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
                m[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            d |= s
    return np.where(nd, np.nan, d.astype(np.float32))

def same(a, b):
    return bool(a.shape == b.shape and (np.isnan(a) == np.isnan(b)).all() and (a[~np.isnan(a)] == b[~np.isnan(b)]).all())

def got(path, name):
    item = json.loads(open(path).readline())
    ds = gdal.Open(item["assets"][name]["href"])
    return ds.GetRasterBand(1).ReadAsArray()

def mask(path, name):
    """a written mask: UInt8 0, 1 and nodata 255, as floats with NaN for 255"""
    item = json.loads(open(path).readline())
    ds = gdal.Open(item["assets"][name]["href"])
    b = ds.GetRasterBand(1)
    a = b.ReadAsArray()
    rb = item["assets"][name]["raster:bands"][0]
    if (gdal.GetDataTypeName(b.DataType) != "Byte" or b.GetNoDataValue() != 255
            or not set(np.unique(a).tolist()) <= {0, 1, 255}
            or rb["data_type"] != "uint8" or rb["nodata"] != 255):
        print("# %s: %s nodata %s values %s, raster:bands %s" % (name, gdal.GetDataTypeName(b.DataType),
              b.GetNoDataValue(), np.unique(a)[:8], rb), file=sys.stderr)
        return np.zeros(1)
    return np.where(a == 255, np.nan, a.astype(np.float32))
PY

# QA_PIXEL, red and nir08 on one 30 m grid in EPSG:32615 (the item's)
gdal_py - <<'PY'
import numpy as np
from osgeo import gdal, osr
rng = np.random.default_rng(7)
h, w = 150, 200
documented = [21824, 21952, 22280, 23888, 54596, 30048, 55052, 24088, 1]
q = rng.choice(documented, (h, w)).astype(np.uint16)
wild = rng.random((h, w)) < 0.2
q[wild] = rng.integers(0, 65536, wild.sum())
q[:20, :20] = 21824           # a clear corner, then one cloud pixel in it
q[8, 9] = 22280
srs = osr.SpatialReference(); srs.ImportFromEPSG(32615)
def save(name, a, nodata):
    ds = gdal.GetDriverByName("GTiff").Create(name, w, h, 1, gdal.GDT_UInt16, ["TILED=YES",
        "BLOCKXSIZE=64", "BLOCKYSIZE=64"])
    ds.SetGeoTransform([600000, 30, 0, 4500000, 0, -30])
    ds.SetSpatialRef(srs)
    ds.GetRasterBand(1).WriteArray(a)
    ds.GetRasterBand(1).SetNoDataValue(nodata)
save("qa.tif", q, 1)
save("red.tif", rng.integers(7500, 12000, (h, w)).astype(np.uint16), 0)
save("nir.tif", rng.integers(9000, 25000, (h, w)).astype(np.uint16), 0)
PY
gdal_py - "$L" "$PWD" > item.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k, f in (("red", "red.tif"), ("nir08", "nir.tif"), ("qa_pixel", "qa.tif")):
    d["assets"][k]["href"] = sys.argv[2] + "/" + f
    d["assets"][k].pop("alternate", None)
    d["assets"][k].pop("file:checksum", None)
    d["assets"][k]["type"] = "image/tiff; application=geotiff"
d["assets"] = {k: d["assets"][k] for k in ("red", "nir08", "qa_pixel")}
print(json.dumps(d))
PY
[ "$(json_get item.json "d['collection']")" = landsat-c2l2-sr ] && ok "the real landsatlook item (collection landsat-c2l2-sr)" || not_ok "item: $(head -c 300 item.json)"

check "cloudmask on a Landsat item: QA_PIXEL by default" sh -c \
    "mem-infer -s cloudmask -s 'cloudmask:dilate=2,as=grown' --workdir w < item.json > out.json"
res=$(gdal_py - <<'PY'
exec(open("ref.py").read())
q = gdal.Open("qa.tif").ReadAsArray()
a, b = qamask(q), qamask(q, dilate=2)
ga, gb = mask("out.json", "cloudmask"), mask("out.json", "grown")
print("%d %d %d %d %d" % (same(ga, a), same(gb, b), np.nansum(a), np.isnan(a).sum(), ga.size > 1 and ga[8, 9] == 1 and gb[6, 7] == 1 and gb[5, 9] == 0))
PY
)
set -- $res
[ "$1" = 1 ] && ok "default bits (dilated cloud, cirrus, cloud, shadow) equal numpy's: UInt8, $3 ones, $4 fill as 255" || not_ok "default mask: $res"
[ "$2" = 1 ] && [ "$5" = 1 ] && ok "dilate=2 equals numpy's 5x5 square" || not_ok "dilated mask: $res"

check "bits and confidences, strips of 7 rows on 2 threads" sh -c \
    "MEM_INFER_STRIP_ROWS=7 mem-infer -j 2 -s 'cloudmask:bits=cloud,snow,water,cloud_conf=medium,shadow_conf=high,cirrus_conf=low,dilate=1,as=custom' --workdir w < item.json > custom.json"
res=$(gdal_py - <<'PY'
exec(open("ref.py").read())
q = gdal.Open("qa.tif").ReadAsArray()
r = qamask(q, bits=(3, 5, 7), conf={"cloud": 2, "shadow": 3, "cirrus": 1}, dilate=1)
print("%d %d" % (same(mask("custom.json", "custom"), r), np.nansum(r)))
PY
)
set -- $res
[ "$1" = 1 ] && ok "bits=cloud,snow,water with confidence levels: $2 masked, as numpy" || not_ok "custom mask: $res"

# the mask feeds an index: NDVI is NaN under it
check "ndvi:mask=cloudmask on Landsat" sh -c "mem-infer -s ndvi:mask=cloudmask --workdir w < item.json > ndvi.json"
res=$(gdal_py - <<'PY'
exec(open("ref.py").read())
q = gdal.Open("qa.tif").ReadAsArray()
m = qamask(q)
v = got("ndvi.json", "ndvi")
print(int(np.isnan(v[m == 1]).all() and (~np.isnan(v[m == 0])).all()))
PY
)
[ "$res" = 1 ] && ok "NDVI is NaN exactly where the QA mask is not 0" || not_ok "ndvi under the mask: $res"

# source=scl on the same item asks for an scl band it does not have
mem-infer -s cloudmask:source=scl --workdir w < item.json > /dev/null 2> scl.err && not_ok "source=scl on Landsat worked" || \
    { grep -q "no band 'scl'" scl.err && ok "source=scl forces SCL: a Landsat item has no scl band ($(cat scl.err))" || not_ok "source=scl: $(cat scl.err)"; }
check_exit "a bad bit is a usage error" 2 mem-infer -s cloudmask:bits=9
check_exit "a bad confidence is a usage error" 2 mem-infer -s cloudmask:cloud_conf=0.5

# a Sentinel-2 item keeps its SCL classes (same code path, other collection)
A=$(realdata s2/T13SFA_20240906_cdse_crop)
if [ -n "$A" ]; then
	gdal_py - "$A" > s2.json <<'PY'
import glob, json, sys
s = sys.argv[1]
scl = glob.glob(s + "/*_SCL_20m.tif")[0]
print(json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": "S2A_T13SFA_20240906",
    "collection": "sentinel-2-l2a", "geometry": None, "links": [],
    "properties": {"datetime": "2024-09-06T17:29:01Z"},
    "assets": {"scl": {"href": scl, "type": "image/tiff; application=geotiff", "roles": ["data"]}}}))
PY
	check "cloudmask on a Sentinel-2 item" sh -c "mem-infer -s cloudmask --workdir w < s2.json > s2out.json"
	res=$(gdal_py - "$A" <<'PY'
import glob, sys
exec(open("ref.py").read())
scl = gdal.Open(glob.glob(sys.argv[1] + "/*_SCL_20m.tif")[0]).ReadAsArray()
r = np.where(scl == 0, np.nan, np.isin(scl, [3, 8, 9, 10]).astype(np.float32))
print(int(same(mask("s2out.json", "cloudmask"), r)), int(np.nansum(r)))
PY
)
	set -- $res
	[ "$1" = 1 ] && [ "$2" -gt 0 ] && ok "Sentinel-2: SCL classes 3,8,9,10 as before ($2 masked)" || not_ok "Sentinel-2 mask: $res"
else
	skip "no T13SFA 2024-09-06 crop in ../shared/realdata"
fi

# a real QA_PIXEL cut, when ../shared/realdata has one
Q=$(ls "$MEM_REALDATA"/landsat/*QA_PIXEL*.[Tt][Ii][Ff] 2>/dev/null | head -n 1 || true)
if [ -n "$Q" ]; then
	gdal_py - "$L" "$Q" > real.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["assets"] = {"qa_pixel": {"href": sys.argv[2], "type": "image/tiff; application=geotiff",
                            "roles": ["cloud"]}}
print(json.dumps(d))
PY
	check "cloudmask on the real QA_PIXEL cut" sh -c "mem-infer -s cloudmask:dilate=1 --workdir w < real.json > realout.json"
	res=$(gdal_py - "$Q" <<'PY'
import sys
exec(open("ref.py").read())
ds = gdal.Open(sys.argv[1])
nd = ds.GetRasterBand(1).GetNoDataValue()
r = qamask(ds.ReadAsArray(), dilate=1, nodata=1 if nd is None else nd)
print(int(same(mask("realout.json", "cloudmask"), r)), int(np.nansum(r)))
PY
)
	set -- $res
	[ "$1" = 1 ] && ok "real QA_PIXEL ($Q): the mask equals numpy's bits ($2 masked)" || not_ok "real QA_PIXEL: $res"
else
	skip "no Landsat QA_PIXEL cut in ../shared/realdata/landsat (it holds RGB.byte.tif only: 8-bit RGB, no QA band)"
fi
done_testing
