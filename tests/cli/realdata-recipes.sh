#!/bin/sh
# The recipes of recipes/ run by mem-run on real scenes, offline: the three
# T13SFA crops of September 2024 (CDSE, EPSG:32613, red, nir and SCL) and
# the texas_west field polygons.  tests/offline-recipe.py puts the local
# items in place of each recipe's search (area, dates, source) and says
# what else it changed; the stages are the recipe's own.
#
#   field-stats   zonal statistics of each field: count and mean equal
#                 numpy's over the stored NDVI COG, the fields rasterized
#                 with gdal.RasterizeLayer (pixel centres, later takes)
#   burn-scar     the crops have no swir22: index=ndvi for nbr, daily
#                 composites for monthly ones; the stored difference
#                 equals numpy's over the two dates' tiles (1e-5: float32
#                 against float64), the mask its threshold exactly; and
#                 two runs in two directories give identical files
#   land-cover    a model trained here (mem-infer --train, SCL classes 4
#                 and 5 of the left half of one date) classifies the tiles;
#                 it must agree with their SCL on most class 4/5 pixels
#   seasonal-ndvi the monthly least-cloudy composite on WebMercatorQuad z13
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
/usr/bin/python3 -c 'import yaml' 2>/dev/null || skip_all "no PyYAML for /usr/bin/python3 (python3-yaml)"
A=$(realdata s2/T13SFA_20240901_cdse_crop)
F=$(realdata vector/fields/texas_west_fields.geojson)
[ -n "$A" ] && [ -n "$F" ] || skip_all "no T13SFA crops or field polygons in ../shared/realdata"

OFF="$MEM_SRCDIR/tests/offline-recipe.py"
gdal_py "$OFF" items "$MEM_REALDATA" > items.ndjson
offline() { # RECIPE OUT [CHANGE]...: the recipe with the local items as its source
	r=$1 o=$2
	shift 2
	gdal_py "$OFF" recipe "$MEM_SRCDIR/recipes/$r.yaml" "$o" "$T/items.ndjson" "$@" 2>> said.txt
}
sums() { (cd "$1" && find . -type f | sort | xargs md5sum); }
sed 's/^/# /' < /dev/null > said.txt

# --- field-stats ---------------------------------------------------------------
offline field-stats fs.yaml "sub:fields.geojson|$F"
mkdir a b
cp fs.yaml a/
check "field-stats: mem-run exits 0" sh -c "cd a && mem-run -q fs.yaml"
n=$(wc -l < a/runs/field-stats/stored.ndjson)
t=$(wc -l < a/runs/field-stats/tiles.ndjson)
[ "$n" -gt 0 ] && [ "$n" -eq "$t" ] && ok "field-stats: a result stored for each of the $t tiles (3 dates)" || not_ok "field-stats: $n stored of $t tiles"
res=$(cd a && gdal_py - runs/field-stats/stored.ndjson <<'PY' 2>> ../diag.txt
import json, sys
import numpy as np
from osgeo import gdal, ogr
gdal.UseExceptions()
bad, fields, px = [], 0, 0
for line in open(sys.argv[1]):
    it = json.loads(line)
    a = it["assets"]
    nd = gdal.Open(a["ndvi"]["href"])
    v = nd.GetRasterBand(1).ReadAsArray().astype(np.float64)
    gp = gdal.OpenEx(a["zonal_ndvi"]["href"], gdal.OF_VECTOR)
    lay = gp.GetLayer(0)  # mem-store names the table after the asset
    rows = [(ft.GetFID(), ft.GetField("count"), ft.GetField("mean")) for ft in lay]
    taken = np.zeros(v.shape, bool)
    for fid, count, mean in reversed(rows):
        m = gdal.GetDriverByName("MEM").Create("", nd.RasterXSize, nd.RasterYSize, 1, gdal.GDT_Byte)
        m.SetGeoTransform(nd.GetGeoTransform())
        m.SetSpatialRef(nd.GetSpatialRef())
        lay.SetAttributeFilter("fid = %d" % fid)
        gdal.RasterizeLayer(m, [1], lay, burn_values=[1])
        mk = m.GetRasterBand(1).ReadAsArray().astype(bool) & ~taken
        taken |= mk
        x = v[mk & ~np.isnan(v)]
        if count != x.size or (x.size and abs(mean - x.mean()) > 1e-6 * max(abs(x.mean()), 1e-3)):
            bad.append("%s fid %d: count %s mean %s, numpy %d %s" % (it["id"][:30], fid, count, mean, x.size, x.mean() if x.size else None))
        fields += count > 0
        px += x.size
    lay.SetAttributeFilter(None)
print("# field-stats: %d field-dates with clear pixels, %d pixels" % (fields, px), file=sys.stderr)
print("ok" if not bad and fields > 0 else "bad: " + "; ".join(bad[:4]))
PY
) || true
[ "$res" = ok ] && ok "field-stats: each field's count and mean (GeoPackage) equal numpy's over the stored NDVI" || not_ok "field-stats: $res"

# --- burn-scar -------------------------------------------------------------------
offline burn-scar bs.yaml 'assets=["red","nir","scl"]' 'composite="median:P1D"' 'sub:index=nbr|index=ndvi'
check "burn-scar: mem-run exits 0" mem-run -q bs.yaml
# reproducibility: the same recipe in another directory, from scratch
cp bs.yaml b/
check "burn-scar: a second run in another directory exits 0" sh -c "cd b && mem-run -q bs.yaml"
sums out/burn-scar > a.sums
sums b/out/burn-scar > b.sums
if [ -s a.sums ] && cmp -s a.sums b.sums; then
	ok "burn-scar: two runs give identical checksums ($(wc -l < a.sums) files: COGs, GeoPackages, items)"
else
	not_ok "burn-scar: two runs differ: $(diff a.sums b.sums | head -4 | tr '\n' ' ')"
fi
in_a=$(json_get runs/burn-scar/run.json "' '.join(sorted(d['inputs']))")
[ "$in_a" = "$(json_get b/runs/burn-scar/run.json "' '.join(sorted(d['inputs']))")" ] && [ -n "$in_a" ] &&
	ok "burn-scar: both run records name the same input items" || not_ok "run records' inputs differ"
res=$(gdal_py - runs/burn-scar <<'PY' 2>> diag.txt
import json, sys
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
d = sys.argv[1]
tiles = {}
for line in open(d + "/tiles.ndjson"):
    it = json.loads(line)
    tiles[it["id"]] = it
def ndvi(it):
    b = {}
    for k in ("red", "nir"):
        a = it["assets"][k]
        rb = a["raster:bands"][0]
        ds = gdal.Open(a["href"])  # the band dies with its dataset: keep it
        x = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
        b[k] = np.where(x == rb["nodata"], np.nan, x * rb["scale"] + rb["offset"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return (b["nir"] - b["red"]) / (b["nir"] + b["red"])
bad, n, px = [], 0, 0
for line in open(d + "/stored.ndjson"):
    it = json.loads(line)
    c = it["properties"]["mem:change"]
    want = ndvi(tiles[c["after"]]) - ndvi(tiles[c["before"]])
    gd, md = (gdal.Open(it["assets"][k]["href"]) for k in ("dndvi", "burnt"))
    got = gd.GetRasterBand(1).ReadAsArray()
    mask = md.GetRasterBand(1).ReadAsArray()
    v = ~np.isnan(want)
    # float32 against float64: within 1e-5
    if (np.isnan(got) != ~v).any() or np.abs(got[v] - want[v]).max() > 1e-5:
        bad.append("%s: dndvi differs by %g" % (it["id"][:30], np.nanmax(np.abs(got - want))))
    # the stored mask: UInt8, 1 burnt, 0 not, 255 where dNDVI is NaN
    rb = it["assets"]["burnt"]["raster:bands"][0]
    if (mask.dtype != np.uint8 or md.GetRasterBand(1).GetNoDataValue() != 255 or
            (rb["data_type"], rb["nodata"]) != ("uint8", 255)):
        bad.append("%s: burnt is %s, nodata %s, raster:bands %s" % (it["id"][:30], mask.dtype,
                   md.GetRasterBand(1).GetNoDataValue(), rb))
    elif (mask[v] != (got[v] <= np.float32(-0.1))).any() or not (mask[~v] == 255).all():
        bad.append("%s: burnt mask differs" % it["id"][:30])
    n += 1
    px += int((mask == 1).sum())
print("# burn-scar: %d pairs, %d pixels of dNDVI <= -0.1" % (n, px), file=sys.stderr)
print("ok %d" % n if not bad and n > 0 else "bad: %d pairs; %s" % (n, "; ".join(bad[:4])))
PY
) || true
case $res in
ok*) ok "burn-scar: the difference of each pair of dates and its mask (stored UInt8, nodata 255) equal numpy's (${res#ok } pairs)" ;;
*) not_ok "burn-scar: $res" ;;
esac

# --- land-cover ------------------------------------------------------------------
gdal_py - "$A" <<'PY'
import glob, sys
from osgeo import gdal, ogr
gdal.UseExceptions()
scl = gdal.Open(glob.glob(sys.argv[1] + "/*_SCL_20m.tif")[0])
left = gdal.Translate("/vsimem/left.tif", scl, srcWin=[0, 0, scl.RasterXSize // 2, scl.RasterYSize])
out = ogr.GetDriverByName("GeoJSON").CreateDataSource("all.geojson")
lay = out.CreateLayer("labels", left.GetSpatialRef())
lay.CreateField(ogr.FieldDefn("DN", ogr.OFTInteger))
gdal.Polygonize(left.GetRasterBand(1), None, lay, 0)
out = None
PY
ogr2ogr -f GeoJSON -where "DN IN (4, 5)" labels.geojson all.geojson
head -n 1 items.ndjson > first.ndjson
check "land-cover: train its model (mem-infer --train)" sh -c \
    "mem-infer --train land-cover.h5 --labels labels.geojson --label-field DN --epochs 5 --workdir tw < first.ndjson 2> train.err"
offline land-cover lc.yaml 'assets=["red","nir","scl"]' "sub:land-cover.h5|$T/land-cover.h5"
check "land-cover: mem-run exits 0" mem-run -q lc.yaml
res=$(gdal_py - runs/land-cover <<'PY' 2>> diag.txt
import json, sys
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
d = sys.argv[1]
tiles = {json.loads(l)["id"]: json.loads(l) for l in open(d + "/tiles.ndjson")}
bad, agree, total = [], 0, 0
for line in open(d + "/stored.ndjson"):
    it = json.loads(line)
    a = it["assets"]["class"]
    names = [c["name"] for c in a["raster:bands"][0]["classification:classes"]]
    ds = gdal.Open(a["href"])
    if names != ["4", "5"] or ds.GetRasterBand(1).DataType != gdal.GDT_Byte:
        bad.append("classes %s type %s" % (names, ds.GetRasterBand(1).DataType))
    cls = ds.GetRasterBand(1).ReadAsArray()
    src = [l["href"] for l in it["links"] if l["rel"] == "derived_from"][0]
    sd = gdal.Open(tiles[src]["assets"]["scl"]["href"])
    scl = sd.GetRasterBand(1).ReadAsArray()
    m = (scl == 4) | (scl == 5)
    agree += int((cls[m] == np.where(scl[m] == 4, 0, 1)).sum())
    total += int(m.sum())
f = agree / max(total, 1)
print("# land-cover: %d of %d SCL vegetation/bare pixels agree (%.3f)" % (agree, total, f), file=sys.stderr)
print("ok %.3f" % f if not bad and total > 1000 and f >= 0.85 else "bad: %s agreement %.3f of %d" % (bad[:2], f, total))
PY
) || true
case $res in
ok*) ok "land-cover: UInt8 classes named 4 and 5, agreeing with SCL on ${res#ok } of its class 4/5 pixels" ;;
*) not_ok "land-cover: $res" ;;
esac

# --- seasonal-ndvi ---------------------------------------------------------------
offline seasonal-ndvi sn.yaml
check "seasonal-ndvi: mem-run exits 0" mem-run -q sn.yaml
n=$(wc -l < runs/seasonal-ndvi/stored.ndjson)
bad=0
for f in $(find out/seasonal-ndvi -name 'ndvi.tif'); do is_cog "$f" || bad=$((bad + 1)); done
grid=$(json_get runs/seasonal-ndvi/stored.ndjson "d['properties']['mem:grid'].split('/')[:2]")
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ] && [ "$grid" = "['webmercator', '13']" ] &&
	ok "seasonal-ndvi: $n monthly NDVI COGs on WebMercatorQuad z13" || not_ok "seasonal-ndvi: $n stored, $bad not COGs, grid $grid"

cat said.txt diag.txt 2>/dev/null | sed 's/^# //; s/^/# /'
done_testing
