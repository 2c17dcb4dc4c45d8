#!/bin/sh
# Real data: change detection with a cloud mask (-s change:mask=cloudmask).
#
# T13SFA 2024-09-01 (clear: SCL 4, 5 and 8 pixels of 7) and 2024-09-06
# (cloudy: SCL 3, 8 and 9 over the fields), CDSE crops with their SCL
# bands.  The test works out the mask with numpy from both dates' SCL
# (classes 3, 8, 9, 10, and SCL nodata; 20 m onto 10 m by nearest, a 2x2
# repeat; dilated by a square for dilate=1) and checks: dNDVI is NaN and
# the change mask (UInt8, 0/1) is 255 wherever either date is masked, equal the unmasked
# run's exactly everywhere else, and no change polygon covers a masked
# pixel (the polygons rasterized back onto the grid, pixel centres) while
# the unmasked run's polygons do cover some.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
A=$(realdata s2/T13SFA_20240901_cdse_crop)
B=$(realdata s2/T13SFA_20240906_cdse_crop)
[ -n "$A" ] && [ -n "$B" ] || skip_all "no T13SFA crops of 2024-09-01 and 2024-09-06 in ../shared/realdata"

/usr/bin/python3 - "$A" "$B" > items.json <<'PY'
import glob, json, sys
for s, when in zip(sys.argv[1:3], ("2024-09-01T17:28:59Z", "2024-09-06T17:29:01Z")):
    pid = glob.glob(s + "/*_B04_10m.tif")[0].split("/")[-1][:-len("_B04_10m.tif")]
    def asset(suffix, common, rb):
        return {"href": glob.glob(s + "/*_" + suffix + ".tif")[0],
                "type": "image/tiff; application=geotiff", "roles": ["data"],
                "eo:bands": [{"name": suffix[:3], "common_name": common}], "raster:bands": [rb]}
    refl = {"nodata": 0, "scale": 0.0001, "offset": -0.1}
    print(json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": pid, "geometry": None,
        "links": [], "properties": {"datetime": when, "platform": "sentinel-2",
                                    "mem:grid": "mgrs/13SFA/crop"},
        "assets": {"B04": asset("B04_10m", "red", refl), "B08": asset("B08_10m", "nir", refl),
                   "SCL": dict(asset("SCL_20m", "scl", {"nodata": 0}),
                               roles=["data", "classification"])}}))
PY

check "change without a mask" sh -c "mem-infer -s change --workdir w < items.json > plain.json"
check "change:mask=cloudmask (strips of 9 rows, 2 threads)" sh -c \
    "MEM_INFER_STRIP_ROWS=9 mem-infer -j 2 -s change:mask=cloudmask --workdir w < items.json > masked.json"
check "change with a dilated cloudmask given first" sh -c \
    "mem-infer -s cloudmask:dilate=1,as=cm -s change:mask=cm --workdir w < items.json > dilated.json"
# the dates swapped: the cloudy scene is now the date before
/usr/bin/python3 -c '
import json, sys
a, b = (json.loads(l) for l in open("items.json"))
a["properties"]["datetime"], b["properties"]["datetime"] = b["properties"]["datetime"], a["properties"]["datetime"]
print(json.dumps(a)); print(json.dumps(b))' > swapped.json
check "the cloudy date as the date before (a gain: threshold=0.2)" sh -c \
    "mem-infer -s change:threshold=0.2 --workdir w < swapped.json > splain.json && mem-infer -s change:threshold=0.2,mask=cloudmask --workdir w < swapped.json > smasked.json"

res=$(gdal_py - "$A" "$B" <<'PY' 2>>diag.txt
import glob, json, sys
import numpy as np
from osgeo import gdal, ogr
gdal.UseExceptions()

def scl(s):
    ds = gdal.Open(glob.glob(s + "/*_SCL_20m.tif")[0])
    return np.repeat(np.repeat(ds.ReadAsArray(), 2, 0), 2, 1)

def grow(m, n):
    h, w = m.shape
    d = m.copy()
    for dy in range(-n, n + 1):
        for dx in range(-n, n + 1):
            s = np.zeros_like(m)
            s[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
                m[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            d |= s
    return d

def hidden(n):
    out = np.zeros(scl(sys.argv[1]).shape, bool)
    for s in sys.argv[1:3]:
        c = scl(s)
        out |= grow(np.isin(c, [3, 8, 9, 10]), n) | (c == 0)
    return out

def rd(item, key):
    ds = gdal.Open(item["assets"][key]["href"])
    return ds, ds.GetRasterBand(1).ReadAsArray()

def rdmask(item, key):
    """the change mask: UInt8 0, 1, nodata 255 (NaN here), said so in raster:bands"""
    ds, a = rd(item, key)
    b, rb = ds.GetRasterBand(1), item["assets"][key]["raster:bands"][0]
    if (gdal.GetDataTypeName(b.DataType) != "Byte" or b.GetNoDataValue() != 255 or
            not set(np.unique(a).tolist()) <= {0, 1, 255} or (rb["data_type"], rb["nodata"]) != ("uint8", 255)):
        print("# %s: %s nodata %s, raster:bands %s" % (key, gdal.GetDataTypeName(b.DataType),
              b.GetNoDataValue(), rb), file=sys.stderr)
        return ds, np.zeros(1)
    return ds, np.where(a == 255, np.nan, a.astype(np.float32))

def covered(item, ds):
    """pixels whose centre lies in a change polygon"""
    m = gdal.GetDriverByName("MEM").Create("", ds.RasterXSize, ds.RasterYSize, 1, gdal.GDT_Byte)
    m.SetGeoTransform(ds.GetGeoTransform())
    m.SetSpatialRef(ds.GetSpatialRef())
    gp = gdal.OpenEx(item["assets"]["change-polygons"]["href"], gdal.OF_VECTOR)
    lay = gp.GetLayer(0)
    gdal.RasterizeLayer(m, [1], lay, burn_values=[1])
    return m.GetRasterBand(1).ReadAsArray().astype(bool), lay.GetFeatureCount()

def eq(a, b):
    return bool(a.shape == b.shape and (np.isnan(a) == np.isnan(b)).all() and (a[~np.isnan(a)] == b[~np.isnan(b)]).all())

out = []
for pname, name, n in (("plain.json", "masked.json", 0), ("plain.json", "dilated.json", 1),
                       ("splain.json", "smasked.json", 0)):
    plain = json.loads(open(pname).readline())
    _, pd = rd(plain, "dndvi")
    pds, pc = rdmask(plain, "change")
    pcov, pn = covered(plain, pds)
    item = json.loads(open(name).readline())
    _, d = rd(item, "dndvi")
    ds, c = rdmask(item, "change")
    cov, k = covered(item, ds)
    h = hidden(n)
    good = (np.isnan(d[h]).all() and np.isnan(c[h]).all()          # hidden on either date
            and eq(d[~h], pd[~h]) and eq(c[~h], pc[~h])            # the rest unchanged
            and not (cov & h).any() and k > 0)                     # no polygon on a hidden pixel
    print("# %s: %d pixels hidden, %d changed pixels left (unmasked: %d), %d polygons (unmasked %d), "
          "%d hidden pixels under the unmasked polygons" % (name, h.sum(), np.nansum(c), np.nansum(pc),
          k, pn, (pcov & h).sum()), file=sys.stderr)
    out.append("%d %d %d %d" % (good, (pcov & h).sum(), k, pn))
print(" ".join(out))
PY
)
set -- $res
[ "${1:-0}" = 1 ] && [ "$2" -gt 0 ] && ok "mask=cloudmask: dNDVI NaN and change 255 (UInt8 nodata) where either date is cloudy, unchanged elsewhere, no polygon on a cloud ($3 polygons; unmasked $4 covered $2 cloudy pixels)" || not_ok "mask=cloudmask: $res"
[ "${5:-0}" = 1 ] && ok "a dilated cloudmask (dilate=1) the same way, on both dates ($7 polygons)" || not_ok "dilated: $res"
[ "${9:-0}" = 1 ] && [ "${10}" -gt 0 ] && ok "the cloudy scene as the date before: its clouds are masked too (${11} polygons; unmasked ${12} covered ${10} cloudy pixels)" || not_ok "swapped: $res"
sed 's/^# //; s/^/# /' diag.txt

[ "$(json_get plain.json "d['id']")" != "$(json_get masked.json "d['id']")" ] && ok "the mask is part of the result's id" || not_ok "same id with and without the mask"
check_exit "change's mask must be a cloudmask (usage)" 2 mem-infer -s ndvi -s change:mask=ndvi
head -n 1 items.json | python3 -c "import json,sys; d=json.load(sys.stdin); del d['assets']['SCL']; print(json.dumps(d))" > noscl.json
tail -n 1 items.json >> noscl.json
mem-infer -s change:mask=cloudmask --workdir w < noscl.json > /dev/null 2> noscl.err && not_ok "a date without scl worked" || \
    { grep -q "(before).*no band 'scl'" noscl.err && ok "the date before without an scl band: a clear error ($(cat noscl.err))" || not_ok "no scl: $(cat noscl.err)"; }
done_testing
