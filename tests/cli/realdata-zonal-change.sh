#!/bin/sh
# Real data: zonal statistics over the field polygons and change between
# two dates, each against a computation done here with GDAL's Python
# bindings and numpy.
#
#   T13SFA 2024-09-01 and 2024-09-06 (CDSE crops, EPSG:32613, no STAC item:
#   written here, with mem:grid so that mem-infer pairs them) and the
#   texas_west field polygons (EPSG:4326, 21 center pivots).
#
# Zonal: the test rasterizes each field alone with gdal.RasterizeLayer
# (pixel centres; a later field takes a pixel from an earlier one) and
# takes numpy's statistics of its own NDVI: count, min and max equal,
# mean and std within 1e-9 (relative), percentiles (numpy's linear
# interpolation) within 1e-9: mem-infer keeps every value, so they are
# exact order statistics, not a histogram's estimate.
# Change: dNDVI and the mask (UInt8, 255 where dNDVI is NaN) equal numpy
# exactly; the polygons equal gdal_polygonize's of the same mask (count
# and area).
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
A=$(realdata s2/T13SFA_20240901_cdse_crop)
B=$(realdata s2/T13SFA_20240906_cdse_crop)
F=$(realdata vector/fields/texas_west_fields.geojson)
[ -n "$A" ] && [ -n "$B" ] && [ -n "$F" ] || skip_all "no T13SFA crops or field polygons in ../shared/realdata"

/usr/bin/python3 - "$A" "$B" > items.json <<'PY'
import glob, json, sys
for s, when in zip(sys.argv[1:3], ("2024-09-01T17:28:59Z", "2024-09-06T17:29:01Z")):
    pid = glob.glob(s + "/*_B04_10m.tif")[0].split("/")[-1][:-len("_B04_10m.tif")]
    def asset(suffix, common):
        a = {"href": glob.glob(s + "/*_" + suffix + ".tif")[0],
             "type": "image/tiff; application=geotiff", "roles": ["data"],
             "eo:bands": [{"name": suffix[:3], "common_name": common}],
             "raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": -0.1}]}
        return a
    print(json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": pid, "geometry": None,
        "links": [], "properties": {"datetime": when, "platform": "sentinel-2",
                                    "mem:grid": "mgrs/13SFA/crop"},
        "assets": {"B04": asset("B04_10m", "red"), "B08": asset("B08_10m", "nir")}}))
PY

cat > ref.py <<'PY'
import glob, json, sys
import numpy as np
from osgeo import gdal, ogr
gdal.UseExceptions()

def rd(p):
    ds = gdal.Open(p)
    return ds.GetRasterBand(1).ReadAsArray().astype(np.float64)

def ndvi(s):
    red, nir = (rd(glob.glob(s + "/*_%s_10m.tif" % b)[0]) for b in ("B04", "B08"))
    R, N = red * 1e-4 - 0.1, nir * 1e-4 - 0.1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((red == 0) | (nir == 0) | (N + R == 0), np.nan,
                        (N - R) / (N + R)).astype(np.float32)
PY

# --- zonal statistics ---------------------------------------------------------
check "zonal statistics of NDVI over the fields (strips of 100 rows, 2 threads)" sh -c \
    "tail -n 1 items.json | MEM_INFER_STRIP_ROWS=100 mem-infer -j 2 -s ndvi -s 'zonal:zones=$F,stats=count,mean,std,min,max,p10,p50,p90,p2.5' --workdir w > zonal.json"
res=$(gdal_py - "$B" "$F" <<'PY' 2>>diag.txt || true
import sys
exec(open("ref.py").read())
s, f = sys.argv[1:3]
v = ndvi(s)
ref = gdal.Open(glob.glob(s + "/*_B04_10m.tif")[0])
item = json.loads(open("zonal.json").readline())
z = item["properties"]["mem:zonal"]["zonal_ndvi"]
gpkg = gdal.OpenEx(item["assets"]["zonal_ndvi"]["href"], gdal.OF_VECTOR)
table = gpkg.GetLayerByName("ndvi")
rows = {ft.GetFID(): ft for ft in table}
src = ogr.Open(f)
lay = src.GetLayer(0)
fids = [ft.GetFID() for ft in lay]
# each field alone, pixel centres; a later field takes the pixel
masks = []
for fid in fids:
    m = gdal.GetDriverByName("MEM").Create("", ref.RasterXSize, ref.RasterYSize, 1, gdal.GDT_Byte)
    m.SetGeoTransform(ref.GetGeoTransform())
    m.SetSpatialRef(ref.GetSpatialRef())
    lay.SetAttributeFilter(None)
    sql = src.ExecuteSQL("SELECT * FROM \"%s\" WHERE id = %d" % (lay.GetName(), fid))
    gdal.RasterizeLayer(m, [1], sql, burn_values=[1])
    src.ReleaseResultSet(sql)
    masks.append(m.GetRasterBand(1).ReadAsArray().astype(bool))
taken = np.zeros(v.shape, bool)
for i in reversed(range(len(masks))):
    masks[i] &= ~taken
    taken |= masks[i]
bad = []
worst = 0.0
for fid, m in zip(fids, masks):
    x = v[m & ~np.isnan(v)].astype(np.float64)
    got = rows[fid]
    js = [e for e in z["stats"] if e["fid"] == fid][0]
    if got["count"] != x.size or js["count"] != x.size:
        bad.append("fid %d count %s != %d" % (fid, got["count"], x.size))
        continue
    if x.size == 0:
        continue
    want = {"min": x.min(), "max": x.max(), "mean": x.mean(), "std": x.std(),
            "p10": np.percentile(x, 10), "p50": np.percentile(x, 50),
            "p90": np.percentile(x, 90), "p2_5": np.percentile(x, 2.5)}
    for k, w in want.items():
        exact = k in ("min", "max")
        for g in (got[k], js[k]):
            d = abs(g - w) / max(abs(w), 1e-300)
            worst = max(worst, 0 if exact else d)
            if (exact and g != w) or (not exact and d > 1e-9):
                bad.append("fid %d %s %r != %r" % (fid, k, g, w))
print("# %d fields, %d pixels, worst relative difference %g" % (len(fids), taken.sum(), worst),
      file=sys.stderr)
srs = table.GetSpatialRef().GetAuthorityCode(None)
print("ok" if not bad and len(rows) == len(fids) == z["zones"] and srs == "32613" else
      "bad: %s (rows %d, fields %d, srs %s)" % ("; ".join(bad[:5]), len(rows), len(fids), srs))
PY
)
[ "$res" = ok ] && ok "zonal: every field's count, min, max, mean, std and percentiles equal numpy's" || not_ok "zonal: $res"
check "zonal: the GeoPackage has a spatial index" sh -c \
    "ogrinfo -q -sql 'SELECT HasSpatialIndex(\"ndvi\", \"geom\")' \"\$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open(\"zonal.json\").readline())[\"assets\"][\"zonal_ndvi\"][\"href\"])')\" | grep -q '= 1'"

# the same with one strip and one thread: the same numbers, to the bit
check "zonal: a whole-image strip and one thread" sh -c \
    "tail -n 1 items.json | MEM_INFER_STRIP_ROWS=1000 mem-infer -j 1 -s ndvi -s 'zonal:zones=$F,stats=count,mean,std,min,max,p10,p50,p90,p2.5' --workdir w1 > zonal1.json"
same=$(/usr/bin/python3 -c '
import json
a, b = (json.loads(open(f).readline())["properties"]["mem:zonal"] for f in ("zonal.json", "zonal1.json"))
print(a == b)')
[ "$same" = True ] && ok "zonal: the statistics do not depend on strips or threads" || not_ok "zonal: strips or threads change the statistics"

# a band measured directly, and a rerun that reuses the GeoPackage
check "zonal of a band (nir, reflectance)" sh -c \
    "tail -n 1 items.json | mem-infer -s 'zonal:zones=$F,of=nir,stats=count,mean' --workdir w > zband.json"
n=$(json_get zband.json "d['properties']['mem:zonal']['zonal_nir']['pixels']")
m=$(json_get zonal.json "d['properties']['mem:zonal']['zonal_ndvi']['pixels']")
[ "$n" -ge "$m" ] && [ "$n" -gt 0 ] && ok "zonal of a band: $n pixels (NDVI: $m)" || not_ok "zonal of a band: $n pixels, NDVI $m"
gpkg=$(json_get zonal.json "d['assets']['zonal_ndvi']['href']")
before=$(stat -c %Y.%s "$gpkg")
sleep 1
tail -n 1 items.json | MEM_INFER_STRIP_ROWS=100 mem-infer -j 2 -s ndvi -s "zonal:zones=$F,stats=count,mean,std,min,max,p10,p50,p90,p2.5" --workdir w > zonal2.json
[ "$(stat -c %Y.%s "$gpkg")" = "$before" ] && cmp -s zonal.json zonal2.json && ok "zonal: a rerun reuses the GeoPackage and says the same" || not_ok "zonal: the rerun rewrote or changed the result"
check_exit "zonal: a missing zones file is bad input (exit 2)" 2 sh -c "tail -n 1 items.json | mem-infer -s ndvi -s zonal:zones=nope.gpkg --workdir w3"
check_exit "zonal: zones= is required (usage)" 2 mem-infer -s ndvi -s zonal:of=ndvi

# --- change between 2024-09-01 and 2024-09-06 -----------------------------------
# in reverse order: mem-infer pairs by date, not by arrival
check "change: the two dates paired by cell" sh -c \
    "tac items.json | mem-infer -s change:index=ndvi,threshold=-0.2 --workdir w > change.json"
[ "$(wc -l < change.json)" -eq 1 ] && ok "change: one result for one pair" || not_ok "change: $(wc -l < change.json) results"
res=$(gdal_py - "$A" "$B" <<'PY' 2>>diag.txt
import sys
exec(open("ref.py").read())
a, b = sys.argv[1:3]
item = json.loads(open("change.json").readline())
mc = item["properties"]["mem:change"]
d = ndvi(b) - ndvi(a)          # float32, as mem-infer computes it
mask = np.where(np.isnan(d), np.nan, (d <= np.float32(-0.2)).astype(np.float32))
got_d = rd(item["assets"]["dndvi"]["href"]).astype(np.float32)
# the mask is UInt8: 1 changed, 0 not, 255 where dNDVI is NaN
ds = gdal.Open(item["assets"]["change"]["href"])
got_m = ds.GetRasterBand(1).ReadAsArray()
rb = item["assets"]["change"]["raster:bands"][0]
def same(x, y):
    return bool((np.isnan(x) == np.isnan(y)).all() and (x[~np.isnan(x)] == y[~np.isnan(y)]).all())
ok_d = same(got_d, d)
ok_m = (got_m.dtype == np.uint8 and ds.GetRasterBand(1).GetNoDataValue() == 255 and
        rb["data_type"] == "uint8" and rb["nodata"] == 255 and
        np.array_equal(got_m, np.where(np.isnan(mask), 255, mask).astype(np.uint8)) and
        (got_m == 1).sum() == np.nansum(mask))
# gdal_polygonize's polygons of the same mask: the 1s, 4-connected
drv = ogr.GetDriverByName("Memory").CreateDataSource("p")
lay = drv.CreateLayer("p", ds.GetSpatialRef())
lay.CreateField(ogr.FieldDefn("DN", ogr.OFTInteger))
gdal.Polygonize(ds.GetRasterBand(1), ds.GetRasterBand(1).GetMaskBand(), lay, 0)
polys = [ft for ft in lay if ft.GetField("DN") == 1]
n, area = len(polys), sum(ft.GetGeometryRef().GetArea() for ft in polys)
gp = gdal.OpenEx(item["assets"]["change-polygons"]["href"], gdal.OF_VECTOR)
out = gp.GetLayer(0)  # the layer dies with its dataset: keep it
gn, garea = out.GetFeatureCount(), sum(ft.GetField("area") for ft in out)
px = int(np.nansum(mask))
print("# dNDVI %d valid px, %d changed px, %d polygons, %.0f m2" % ((~np.isnan(d)).sum(), px, n, area),
      file=sys.stderr)
good = ok_d and ok_m and n == gn == mc["polygons"] and abs(area - garea) < 1e-6 * area \
    and abs(mc["area"] - px * 100.0) < 1e-6 and n > 0
print("ok %d %d" % (n, px) if good else "bad: d=%s mask=%s polygons %d/%d/%d area %g/%g/%g px %d"
      % (ok_d, ok_m, n, gn, mc["polygons"], area, garea, mc["area"], px))
PY
)
case $res in
ok*) set -- $res; ok "change: dNDVI and the UInt8 mask (nodata 255) equal numpy; $2 polygons of $3 pixels, as gdal_polygonize" ;;
*) not_ok "change: $res" ;;
esac
b=$(json_get change.json "d['properties']['mem:change']['before'][:26]")
[ "$b" = S2B_MSIL2A_20240901T172859 ] && ok "change: before is the earlier date ($b)" || not_ok "change: before $b"
check "change: dNBR would need swir22 (a clear error, the others go on)" sh -c \
    "! mem-infer -s change:index=nbr --workdir w < items.json 2> nbr.err && grep -q swir22 nbr.err"
head -n 1 items.json > one.json
mem-infer -s change --workdir w < one.json > lonely.json 2> lonely.err && [ ! -s lonely.json ] && grep -q "no other date" lonely.err \
    && ok "change: a cell with one date is skipped with a warning" || not_ok "change: lonely item: $(cat lonely.err)"
check_exit "change: threshold 0 is a usage error" 2 mem-infer -s change:threshold=0

sed 's/^/# /' diag.txt 2>/dev/null | sed 's/^# # /# /' || true
done_testing
