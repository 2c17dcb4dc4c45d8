#!/bin/sh
# Real data: mem-infer --train with labels from a class band, on the T13SFA
# crops (CDSE, EPSG:32613, no STAC items: written here).
#
# The class band is derived here from the SCL of 2024-09-06 (the cloudy
# date) with numpy: 4 vegetation, 5 bare, 8 and 9 cloud, 3 shadow, else no
# label, written at SCL's 20 m.  A model of red and nir is trained on that
# date and scored on 2024-09-01 and 2024-09-04, dates it never saw,
# against their own SCL 4 and 5 pixels: at least 85% right (the figures
# are printed).  The same labels given as the item's scl band with
# --label-classes make the same model file, byte for byte; without
# --label-classes each value is a class.  The model round-trips: the
# training accuracy mem-infer prints equals the share of labelled pixels
# that -s classify, reading the file back, gets right.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
command -v h5dump >/dev/null || skip_all "no h5dump (hdf5-tools)"
A=$(realdata s2/T13SFA_20240901_cdse_crop)
B=$(realdata s2/T13SFA_20240904_cdse_crop)
C=$(realdata s2/T13SFA_20240906_cdse_crop)
[ -n "$A" ] && [ -n "$B" ] && [ -n "$C" ] || skip_all "no T13SFA crops in ../shared/realdata"

for d in "$A" "$B" "$C"; do
	gdal_py - "$d" <<'PY'
import glob, json, sys
s = sys.argv[1]
pid = glob.glob(s + "/*_B04_10m.tif")[0].split("/")[-1][:-len("_B04_10m.tif")]
def asset(suffix, common, rb):
    return {"href": glob.glob(s + "/*_" + suffix + ".tif")[0],
            "type": "image/tiff; application=geotiff", "roles": ["data"],
            "eo:bands": [{"name": suffix[:3], "common_name": common}], "raster:bands": [rb]}
refl = {"nodata": 0, "scale": 0.0001, "offset": -0.1}
print(json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": pid, "geometry": None,
    "links": [], "properties": {"datetime": pid[11:19] + "T17:29:00Z", "platform": "sentinel-2"},
    "assets": {"B04": asset("B04_10m", "red", refl), "B08": asset("B08_10m", "nir", refl),
               "SCL": dict(asset("SCL_20m", "scl", {"nodata": 0}), roles=["data", "classification"])}}))
PY
done > all.json
sed -n 3p all.json > train.json
sed -n 1,2p all.json > held.json

# the class band, derived from the 2024-09-06 SCL
gdal_py - "$C" <<'PY'
import glob, sys
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
src = gdal.Open(glob.glob(sys.argv[1] + "/*_SCL_20m.tif")[0])
scl = src.ReadAsArray()
lab = np.zeros(scl.shape, np.uint8)
for v, c in ((4, 1), (5, 2), (8, 3), (9, 3), (3, 4)):
    lab[scl == v] = c
ds = gdal.GetDriverByName("GTiff").Create("labels.tif", src.RasterXSize, src.RasterYSize, 1, gdal.GDT_Byte)
ds.SetGeoTransform(src.GetGeoTransform())
ds.SetSpatialRef(src.GetSpatialRef())
ds.GetRasterBand(1).WriteArray(lab)
ds.GetRasterBand(1).SetNoDataValue(0)
PY

check "train from a class band file (labels.tif:1) on 2024-09-06" sh -c \
    "mem-infer --train file.h5 --labels-band labels.tif:1 --label-classes 1=vegetation,2=bare,3=cloud,4=shadow --hidden 8 --epochs 10 < train.json 2> file.err"
diag "$(sed 's/^mem-infer: //' file.err)"
check "train from the item's scl band, values named" sh -c \
    "mem-infer --train scl.h5 --labels-band scl --label-classes 4=vegetation,5=bare,8=cloud,9=cloud,3=shadow --hidden 8 --epochs 10 < train.json 2> scl.err"
check "the file and the item's band give the same model, byte for byte" cmp file.h5 scl.h5
h5dump -d /classes -d /bands file.h5 > dump.txt 2>&1 || true
grep -q '"bare", "cloud", "shadow", "vegetation"' dump.txt && grep -q '"red", "nir"' dump.txt && \
    ok "the model names the classes (sorted) and bands" || not_ok "h5dump: $(cat dump.txt)"
check "without --label-classes each SCL value is a class" sh -c \
    "mem-infer --train raw.h5 --labels-band scl --epochs 2 < train.json 2> raw.err && h5dump -d /classes raw.h5 | grep -q '\"3\", \"4\", \"5\", \"7\", \"8\", \"9\"'"

# --- held-out dates, and the round trip on the training date ----------------------
check "classify the two other dates and the training date" sh -c \
    "mem-infer -s classify:model=file.h5 --workdir w < all.json > out.json"
res=$(gdal_py - "$(awk '{print $1}' file.err)" <<'PY' 2>>diag.txt
import glob, json, re, sys
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
names = None
out = []
for line in open("out.json"):
    item = json.loads(line)
    ds = gdal.Open(item["assets"]["class"]["href"])
    c = ds.ReadAsArray()
    names = [k["name"] for k in item["assets"]["class"]["raster:bands"][0]["classification:classes"]]
    src = [json.loads(l) for l in open("all.json") if json.loads(l)["id"] in item["id"]][0]
    scl = gdal.Open(src["assets"]["SCL"]["href"]).ReadAsArray()
    scl = np.repeat(np.repeat(scl, 2, 0), 2, 1)
    if "20240906" in item["id"]:
        want = np.full(scl.shape, -1)
        for v, n in ((4, "vegetation"), (5, "bare"), (8, "cloud"), (9, "cloud"), (3, "shadow")):
            want[scl == v] = names.index(n)
        m = (want >= 0) & (c != 255)
        train_acc = (c[m] == want[m]).mean()
        continue
    m = np.isin(scl, [4, 5]) & (c != 255)
    right = np.where(scl[m] == 4, c[m] == names.index("vegetation"), c[m] == names.index("bare"))
    out.append("%.4f %d" % (right.mean(), m.sum()))
    print("# %s: %d SCL 4/5 pixels, %.4f right; as %s" % (item["id"][11:19], m.sum(), right.mean(),
          ", ".join("%s %d" % (n, (c[m] == i).sum()) for i, n in enumerate(names))), file=sys.stderr)
err = open("file.err").read()
printed = float(re.search(r"training accuracy ([0-9.]+)", err).group(1))
print(" ".join(out), "%.4f %.4f" % (train_acc, printed))
PY
)
sed 's/^# //; s/^/# /' diag.txt
set -- $res
awk -v a="$1" -v b="$3" -v n="$2" -v m="$4" 'BEGIN { exit !(a >= 0.85 && b >= 0.85 && n > 10000 && m > 10000) }' && \
    ok "held-out dates: 2024-09-01 $1 right ($2 px), 2024-09-04 $3 right ($4 px)" || not_ok "held-out accuracy: $res"
awk -v a="$5" -v b="$6" 'BEGIN { d = a - b; exit !(d < 0.0015 && d > -0.0015) }' && \
    ok "round trip: classify reading the file gets $5 of the training pixels, --train printed $6" || not_ok "round trip: $res"

# --- errors -----------------------------------------------------------------------
check_exit "--labels-band with --labels is a usage error" 2 sh -c "mem-infer --train x.h5 --labels-band scl --labels l.gpkg --label-field f < train.json"
check_exit "a bad --label-classes" 2 sh -c "mem-infer --train x.h5 --labels-band scl --label-classes 4=veg,five=bare < train.json"
check_exit "one class named" 2 sh -c "mem-infer --train x.h5 --labels-band scl --label-classes 4=veg,5=veg < train.json"
stderr_of sh -c "mem-infer --train x.h5 --labels-band nope < train.json" | grep -q "no such file, and item '.*' has no band 'nope'" && \
    ok "a missing class band is named" || not_ok "message: $(stderr_of sh -c "mem-infer --train x.h5 --labels-band nope < train.json")"
check_exit "a band beyond the file's" 2 sh -c "mem-infer --train x.h5 --labels-band labels.tif:2 < train.json"
[ ! -e x.h5 ] && ok "no model written on error" || not_ok "x.h5 written"
check_exit "--label-classes without --labels-band" 2 sh -c "mem-infer --train x.h5 --labels l.gpkg --label-field f --label-classes 1=a,2=b < train.json"
done_testing
