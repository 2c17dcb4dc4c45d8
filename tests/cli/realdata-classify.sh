#!/bin/sh
# Real data: mem-infer --train and -s classify on the T13SFA crop of
# 2024-09-01 (CDSE, EPSG:32613, no STAC item: written here).
#
# Labels are the scene classification's own: SCL 4 (vegetation) and 5 (not
# vegetated), polygonized from the left half of the SCL band only.  Models
# learn red and nir there and are scored on the right half, held out,
# against SCL (resampled to 10 m, nearest): at least 90% of its class 4
# and 5 pixels right.  A convolution model gives the same pixels in strips
# of 7 rows on 2 threads as in one strip (no seams), h5ls shows the layout
# of mem-model(5), and broken models are usage errors (exit 2).
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
command -v h5ls >/dev/null || skip_all "no h5ls (hdf5-tools)"
A=$(realdata s2/T13SFA_20240901_cdse_crop)
[ -n "$A" ] || skip_all "no T13SFA crop in ../shared/realdata"

gdal_py - "$A" > items.json <<'PY'
import glob, json, sys
s = sys.argv[1]
pid = glob.glob(s + "/*_B04_10m.tif")[0].split("/")[-1][:-len("_B04_10m.tif")]
def asset(suffix, common, rb):
    return {"href": glob.glob(s + "/*_" + suffix + ".tif")[0],
            "type": "image/tiff; application=geotiff", "roles": ["data"],
            "eo:bands": [{"name": suffix[:3], "common_name": common}], "raster:bands": [rb]}
refl = {"nodata": 0, "scale": 0.0001, "offset": -0.1}
print(json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": pid, "geometry": None,
    "links": [], "properties": {"datetime": "2024-09-01T17:28:59Z", "platform": "sentinel-2"},
    "assets": {"B04": asset("B04_10m", "red", refl), "B08": asset("B08_10m", "nir", refl),
               "SCL": dict(asset("SCL_20m", "scl", {"nodata": 0}), roles=["data", "classification"])}}))
PY

# the labels: SCL 4 and 5 of the left half, as polygons with a field DN
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

# --- training ---------------------------------------------------------------
check "train softmax regression on red, nir" sh -c \
    "mem-infer --train soft.h5 --labels labels.geojson --label-field DN --epochs 10 < items.json 2> soft.err"
grep -q "2 classes" soft.err && ok "train: $(sed 's/^mem-infer: //' soft.err)" || not_ok "train: $(cat soft.err)"
check "train a 3x3 convolution with 8 hidden units" sh -c \
    "mem-infer --train conv.h5 --labels labels.geojson --label-field DN --hidden 8 --conv --epochs 10 < items.json 2> conv.err"
diag "$(sed 's/^mem-infer: //' conv.err)"
mem-infer --train conv2.h5 --labels labels.geojson --label-field DN --hidden 8 --conv --epochs 10 < items.json 2>/dev/null
check "train: the same seed makes the same model" cmp conv.h5 conv2.h5
ls .conv.h5* conv.h5.* 2>/dev/null | grep -q . && not_ok "train: a temporary file was left" || ok "train: no temporary file left"

# the layout of mem-model(5)
h5ls -r conv.h5 > layout.txt
missing=
for o in "/bands " "/mean " "/std " "/classes " "/layers " "/layers/0 " "/layers/0/weight" \
    "/layers/0/bias" "/layers/1/weight" "/layers/1/bias"; do
	grep -q "^$o" layout.txt || missing="$missing $o"
done
grep -q '^/layers/0/weight *Dataset {8, 2, 3, 3}' layout.txt || missing="$missing conv-shape"
grep -q '^/layers/1/weight *Dataset {2, 8}' layout.txt || missing="$missing dense-shape"
[ -z "$missing" ] && ok "h5ls: the documented layout" || not_ok "h5ls lacks:$missing ($(cat layout.txt))"
h5dump -a /memories_model -a /layers/0/type -a /layers/1/activation -d /bands -d /classes conv.h5 > dump.txt
grep -q '"classifier"' dump.txt && grep -q '"conv3x3"' dump.txt && grep -q '"softmax"' dump.txt && \
    grep -q '"red", "nir"' dump.txt && grep -q '"4", "5"' dump.txt && \
    ok "h5dump: memories_model, layer type, activation, bands and classes" || not_ok "h5dump: $(cat dump.txt)"

# --- classify, scored on the held-out right half ------------------------------
check "classify with both models" sh -c \
    "mem-infer -s classify:model=soft.h5 -s classify:model=conv.h5,as=conv --workdir w < items.json > out.json"
names=$(json_get out.json "' '.join(c['name'] for c in d['assets']['class']['raster:bands'][0]['classification:classes'])")
type=$(json_get out.json "d['assets']['conv']['raster:bands'][0]['data_type']")
[ "$names" = "4 5" ] && [ "$type" = uint8 ] && ok "the item names the classes ($names), uint8" || not_ok "classes '$names', type $type"
res=$(gdal_py - "$A" <<'PY'
import glob, json, sys
import numpy as np
from osgeo import gdal
item = json.loads(open("out.json").readline())
scl = gdal.Open(glob.glob(sys.argv[1] + "/*_SCL_20m.tif")[0]).ReadAsArray()
scl = np.repeat(np.repeat(scl, 2, 0), 2, 1)
out = []
for name in ("class", "conv"):
    ds = gdal.Open(item["assets"][name]["href"])
    c = ds.GetRasterBand(1).ReadAsArray()
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Byte and c.shape == scl.shape
    held = np.zeros(c.shape, bool)
    held[:, c.shape[1] // 2:] = True
    m = held & np.isin(scl, [4, 5]) & (c != 255)
    acc = ((c[m] == 0) == (scl[m] == 4)).mean()
    out.append("%s %.4f %d" % (name, acc, m.sum()))
print(" ".join(out))
PY
)
set -- $res
awk "BEGIN { exit !($2 >= 0.9 && $5 >= 0.9 && $3 > 10000) }" && \
    ok "held-out accuracy >= 0.9: softmax $2, convolution $5 ($3 pixels)" || not_ok "held-out accuracy: $res"

# --- seams: strips of 7 rows on 2 threads, against one strip ---------------------
check "classify in strips of 7 rows" sh -c \
    "MEM_INFER_STRIP_ROWS=7 mem-infer -j 2 -s classify:model=conv.h5,as=conv --workdir w7 < items.json > s7.json"
check "classify in one strip" sh -c \
    "MEM_INFER_STRIP_ROWS=1000 mem-infer -j 1 -s classify:model=conv.h5,as=conv --workdir w1 < items.json > s1.json"
same=$(gdal_py - <<'PY'
import json
import numpy as np
from osgeo import gdal
a, b = (gdal.Open(json.loads(open(f).readline())["assets"]["conv"]["href"]).ReadAsArray()
        for f in ("s7.json", "s1.json"))
print(bool((a == b).all()) and int((a != 255).sum()) > 0)
PY
)
[ "$same" = True ] && ok "convolution: strips of 7 rows give the same pixels as one strip (no seams)" || not_ok "seams: strips differ"
[ "$(json_get s1.json "d['id']")" = "$(json_get s7.json "d['id']")" ] && ok "and the same result id" || not_ok "ids differ"

# per-class probabilities: a band per class, summing to 1, whose largest is the class
check "classify with prob=1 in strips of 7 rows" sh -c \
    "MEM_INFER_STRIP_ROWS=7 mem-infer -j 2 -s classify:model=conv.h5,as=conv,prob=1 --workdir wp < items.json > p7.json"
res=$(gdal_py - <<'PY'
import json
import numpy as np
from osgeo import gdal
item = json.loads(open("p7.json").readline())
p = gdal.Open(item["assets"]["conv_prob"]["href"]).ReadAsArray()
c = gdal.Open(item["assets"]["conv"]["href"]).ReadAsArray()
w = gdal.Open(json.loads(open("s1.json").readline())["assets"]["conv"]["href"]).ReadAsArray()
v = c != 255
names = [b["name"] for b in item["assets"]["conv_prob"]["raster:bands"]]
good = (p.shape[0] == 2 and names == ["4", "5"] and np.array_equal(c, w)
        and np.isnan(p[:, ~v]).all() and np.abs(p[:, v].sum(0) - 1).max() < 1e-6
        and (np.argmax(p[:, v], 0) == c[v]).all())
print("ok" if good else "bad: shape %s names %s" % (p.shape, names))
PY
)
[ "$res" = ok ] && ok "prob=1: a float32 band per class, summing to 1, the largest is the class" || not_ok "prob: $res"
check_exit "prob must be 0 or 1" 2 mem-infer -s classify:model=conv.h5,prob=yes

# a retrained model under the same name is another result, not a stale one
mem-infer --train soft.h5 --labels labels.geojson --label-field DN --epochs 10 --seed 2 < items.json 2>/dev/null
mem-infer -s classify:model=soft.h5 --workdir w < items.json > out2.json
[ "$(json_get out.json "d['id']")" != "$(json_get out2.json "d['id']")" ] && ok "the model's checksum is part of the result's id" || not_ok "same id for another model"

# --- errors ---------------------------------------------------------------------
echo "not a model" > bad.h5
check_exit "a text file as model is a usage error (exit 2)" 2 mem-infer -s classify:model=bad.h5
stderr_of mem-infer -s classify:model=bad.h5 | grep -q "cannot open model 'bad.h5': not an HDF5 file" && \
    ok "and says so" || not_ok "message: $(stderr_of mem-infer -s classify:model=bad.h5)"
# an HDF5 file that is not a model: netCDF-4 is HDF5
gdal_translate -q -of netCDF -co FORMAT=NC4 "$(ls "$A"/*_SCL_20m.tif)" nc4.h5 2>/dev/null || true
if [ -s nc4.h5 ]; then
	check_exit "an HDF5 file that is no model: exit 2" 2 mem-infer -s classify:model=nc4.h5
	stderr_of mem-infer -s classify:model=nc4.h5 | grep -q "memories_model" && ok "and names what is missing" || not_ok "message: $(stderr_of mem-infer -s classify:model=nc4.h5)"
else
	skip "no netCDF-4 driver in GDAL"; skip "no netCDF-4 driver in GDAL"
fi
check_exit "a missing model file: exit 2" 2 mem-infer -s classify:model=nope.h5
check_exit "model= is required" 2 mem-infer -s classify
check_exit "--train needs --label-field" 2 mem-infer --train x.h5 --labels labels.geojson
check_exit "--train: an unknown label field is bad input (exit 2)" 2 sh -c "mem-infer --train x.h5 --labels labels.geojson --label-field nope < items.json"
[ ! -e x.h5 ] && ok "no model written on error" || not_ok "x.h5 written"
mem-infer --list-stages | grep -q "classify:model=FILE" && ok "--list-stages lists classify" || not_ok "--list-stages lacks classify"
done_testing
