#!/bin/sh
# Real Sentinel-2 data: every spectral index, the SCL cloud mask and an
# expression, each against numpy computed here from the source files.
#
#   29RKH (2020, Earth Search COGs, real STAC item): NDVI, NDWI, EVI, SAVI,
#     cloud mask from the 200 m SCL, a masked NDVI, a nontrivial expression.
#   Barbellino (2019, sen2r 11-band BOA stack): all eight indices, the SWIR
#     ones included; a copy in the test's directory gets nodata pixels.
#   T13SFA 2024-09-06 (CDSE, baseline 05.11, no STAC item: written here):
#     reflectance = (DN - 1000) / 10000 with 0 = nodata, stated in
#     raster:bands or left to the Sentinel-2 default; SAVI is not
#     scale-invariant, so the offset shows.
#
# Indices are compared exactly (the kernels and numpy both compute in
# double and round once); the expression, which uses libm, within 1e-6.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
R=$(realdata s2/29RKH_20200219_earthsearch_cogs)
B=$(realdata s2/barbellino_sen2r)
S=$(realdata s2/T13SFA_20240906_cdse_crop)
[ -n "$R$B$S" ] || skip_all "no ../shared/realdata/s2 (29RKH, Barbellino, T13SFA)"

# compare.py: helpers the numpy references below share; compare() prints
# name=ok|bad(...) for each output and its pixel counts on stderr.  The
# outputs named in masks must be UInt8 0/1 with nodata 255 (in the file
# and in raster:bands); their 255 compares as the reference's NaN.
cat > compare.py <<'PY'
import json, sys
import numpy as np
from osgeo import gdal

def rd(p, band=1):
    ds = gdal.Open(p)  # the band dies with its dataset: keep it
    return ds.GetRasterBand(band).ReadAsArray().astype(np.float64)

def up(a, shape):  # a coarser class band onto the grid, nearest neighbour
    f = shape[0] // a.shape[0]
    return np.repeat(np.repeat(a, f, 0), f, 1)

def nd(a, b, bad):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bad | (a + b == 0), np.nan, (a - b) / (a + b)).astype(np.float32)

def evi(n, r, b, bad):
    den = n + 6 * r - 7.5 * b + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bad | (den == 0), np.nan, 2.5 * (n - r) / den).astype(np.float32)

def savi(n, r, bad, L=0.5):
    den = n + r + L
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bad | (den == 0), np.nan, (1 + L) * (n - r) / den).astype(np.float32)

def rdmask(asset):
    """a mask asset as float32 (255 -> NaN), or None when it is not UInt8 0/1, nodata 255"""
    ds = gdal.Open(asset["href"])
    b, rb = ds.GetRasterBand(1), asset["raster:bands"][0]
    a = b.ReadAsArray()
    if (gdal.GetDataTypeName(b.DataType), b.GetNoDataValue(), rb["data_type"], rb["nodata"]) != \
            ("Byte", 255, "uint8", 255) or not set(np.unique(a).tolist()) <= {0, 1, 255}:
        print("# %s: %s nodata %s, raster:bands %s" % (asset["href"], gdal.GetDataTypeName(b.DataType),
              b.GetNoDataValue(), rb), file=sys.stderr)
        return None
    return np.where(a == 255, np.nan, a.astype(np.float32))

def compare(out_json, refs, tol=None, masks=()):
    assets = json.loads(open(out_json).readline())["assets"]
    res = []
    for k, ref in refs.items():
        a = rdmask(assets[k]) if k in masks else rd(assets[k]["href"]).astype(np.float32)
        if a is None:
            res.append("%s=bad(not a UInt8 mask)" % k)
            continue
        mask = bool((np.isnan(a) == np.isnan(ref)).all())
        v = ~np.isnan(ref) & ~np.isnan(a)
        d = float(np.abs(a[v].astype(np.float64) - ref[v]).max()) if v.any() else 0.0
        good = mask and (d <= tol if tol else d == 0.0)
        res.append("%s=%s" % (k, "ok" if good else "bad(mask=%d,diff=%g)" % (mask, d)))
        print("# %s: %d valid px, %d nodata px, max |diff| %g" % (k, v.sum(), (~v).sum(), d),
              file=sys.stderr)
    print(" ".join(res))
PY
# report RESULT DESC: ok when every comparison in RESULT says ok
report() {
	case " $1 " in *=bad*|"  ") not_ok "$2: $1" ;; *) ok "$2 ($1)" ;; esac
}

# --- 29RKH, with its real STAC item ----------------------------------------
if [ -z "$R" ]; then
	skip "no ../shared/realdata/s2/29RKH_20200219_earthsearch_cogs"
else
	/usr/bin/python3 - "$R" > rkh.json <<'PY'
import json, sys
r = sys.argv[1]
d = json.load(open(r + "/S2A_29RKH_20200219_0_L2A.json"))
files = {"red": "B04.tif", "nir": "B08.tif", "blue": "B02.tif", "green": "B03.tif", "scl": "SCL.tif"}
d["assets"] = {k: a for k, a in d["assets"].items() if k in files}
for k, a in d["assets"].items():
    a["href"] = r + "/" + files[k]
print(json.dumps(d))
PY
	E='(nir - red) / (nir + red) > 0.1 && blue < 0.2 ? sqrt(abs(nir - green)) * 2 - min(red, blue, 0.3) : pow(blue, 2) + log(max(nir, 0.01))'
	check "29RKH: indices, cloud mask and an expression in one run" sh -c "mem-infer -s ndvi -s ndwi -s evi -s savi -s cloudmask:dilate=1 -s ndvi:mask=cloudmask,as=ndvi_clear -s 'expr:x=$E' --workdir w < rkh.json > rkh-out.json"
	res=$(gdal_py - "$R" 2>>diag.txt <<'PY'
import sys
exec(open("compare.py").read())
r = sys.argv[1]
red, nir, blue, green = (rd(r + "/%s.tif" % b) for b in ("B04", "B08", "B02", "B03"))
scl = up(rd(r + "/SCL.tif"), red.shape)
bad = (red == 0) | (nir == 0)
R, N, U, G = red * 1e-4, nir * 1e-4, blue * 1e-4, green * 1e-4
m = np.isin(scl, [3, 8, 9, 10])
p = np.pad(m, 1)
dil = np.zeros_like(m)
for dy in (0, 1, 2):
    for dx in (0, 1, 2):
        dil |= p[dy:dy + m.shape[0], dx:dx + m.shape[1]]
cm = np.where(scl == 0, np.nan, dil.astype(np.float32)).astype(np.float32)
ndvi = nd(N, R, bad)
compare("rkh-out.json", {
    "ndvi": ndvi,
    "ndwi": nd(G, N, bad | (green == 0)),
    "evi": evi(N, R, U, bad | (blue == 0)),
    "savi": savi(N, R, bad),
    "cloudmask": cm,
    "ndvi_clear": np.where(cm != 0, np.nan, ndvi).astype(np.float32)}, masks=("cloudmask",))
PY
)
	report "$res" "29RKH: each index and the mask equal numpy exactly"
	res=$(gdal_py - "$R" 2>>diag.txt <<'PY'
import sys
exec(open("compare.py").read())
r = sys.argv[1]
# bands as the expression sees them: float32 reflectance, NaN for nodata
f = lambda b: np.where(rd(r + "/%s.tif" % b) == 0, np.nan,
                       (rd(r + "/%s.tif" % b) * 1e-4).astype(np.float32)).astype(np.float64)
red, nir, blue, green = f("B04"), f("B08"), f("B02"), f("B03")
with np.errstate(divide="ignore", invalid="ignore"):
    c = ((nir - red) / (nir + red) > 0.1) & (blue < 0.2)
    x = np.where(c, np.sqrt(np.abs(nir - green)) * 2 - np.minimum(np.minimum(red, blue), 0.3),
                 np.power(blue, 2) + np.log(np.maximum(nir, 0.01)))
compare("rkh-out.json", {"x": x.astype(np.float32)}, tol=1e-6)
PY
)
	report "$res" "29RKH: the expression equals numpy"
fi

# --- Barbellino: all eight indices from one multi-band asset -----------------
if [ -z "$B" ]; then
	skip "no ../shared/realdata/s2/barbellino_sen2r"
else
	# a copy with nodata: a block of 65535 in swir16 and one in red
	gdal_py - "$B/S2A2A_20190723_022_Barbellino_BOA_10.tif" <<'PY'
import sys
from osgeo import gdal
d = gdal.Translate("boa.tif", sys.argv[1])
for band, (y, x) in ((10, (5, 5)), (4, (30, 12))):
    b = d.GetRasterBand(band)
    a = b.ReadAsArray()
    a[y:y + 4, x:x + 3] = 65535
    b.WriteArray(a)
d = None
PY
	/usr/bin/python3 - "$T/boa.tif" > boa.json <<'PY'
import json, sys
names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
common = ["coastal", "blue", "green", "red", "rededge", "rededge", "rededge", "nir",
          "nir08", "swir16", "swir22"]
print(json.dumps({
    "type": "Feature", "stac_version": "1.0.0", "id": "S2A2A_20190723_022_Barbellino",
    "geometry": None, "properties": {"datetime": "2019-07-23T10:20:31Z"}, "links": [],
    "assets": {"boa": {
        "href": sys.argv[1], "type": "image/tiff; application=geotiff", "roles": ["data"],
        "eo:bands": [{"name": n, "common_name": c} for n, c in zip(names, common)],
        "raster:bands": [{"nodata": 65535, "scale": 0.0001, "offset": 0} for _ in names]}}}))
PY
	check "Barbellino: the eight indices in one run" sh -c "mem-infer -s ndvi -s ndwi -s mndwi -s nbr -s ndbi -s ndsi -s evi -s savi:L=0.25 --workdir w < boa.json > boa-out.json"
	res=$(gdal_py - 2>>diag.txt <<'PY'
exec(open("compare.py").read())
dn = {n: rd("boa.tif", i) for i, n in ((2, "blue"), (3, "green"), (4, "red"), (8, "nir"),
                                       (10, "swir16"), (11, "swir22"))}
bad = {n: a == 65535 for n, a in dn.items()}
f = {n: a * 1e-4 for n, a in dn.items()}
compare("boa-out.json", {
    "ndvi": nd(f["nir"], f["red"], bad["nir"] | bad["red"]),
    "ndwi": nd(f["green"], f["nir"], bad["green"] | bad["nir"]),
    "mndwi": nd(f["green"], f["swir16"], bad["green"] | bad["swir16"]),
    "nbr": nd(f["nir"], f["swir22"], bad["nir"] | bad["swir22"]),
    "ndbi": nd(f["swir16"], f["nir"], bad["swir16"] | bad["nir"]),
    "ndsi": nd(f["green"], f["swir16"], bad["green"] | bad["swir16"]),
    "evi": evi(f["nir"], f["red"], f["blue"], bad["nir"] | bad["red"] | bad["blue"]),
    "savi": savi(f["nir"], f["red"], bad["nir"] | bad["red"], L=0.25)})
PY
)
	report "$res" "Barbellino: every index equals numpy exactly, nodata included"
fi

# --- T13SFA 2024-09-06: the BOA offset --------------------------------------
if [ -z "$S" ]; then
	skip "no ../shared/realdata/s2/T13SFA_20240906_cdse_crop"
else
	# two items for the same files: offset stated in raster:bands, and not
	# stated (the Sentinel-2 default from processing baseline 05.11)
	/usr/bin/python3 - "$S" <<'PY'
import glob, json, sys
s = sys.argv[1]
pid = "S2A_MSIL2A_20240906T172901_N0511_R055_T13SFA_20240907T001649"
def asset(suffix, common, rb):
    a = {"href": glob.glob(s + "/*_" + suffix + ".tif")[0],
         "type": "image/tiff; application=geotiff", "roles": ["data"]}
    if common:
        a["eo:bands"] = [{"name": suffix[:3], "common_name": common}]
    if rb:
        a["raster:bands"] = [rb]
    return a
for name, rb in (("stated", {"nodata": 0, "scale": 0.0001, "offset": -0.1}), ("default", None)):
    d = {"type": "Feature", "stac_version": "1.0.0", "id": pid + "-" + name,
         "geometry": None, "links": [],
         "properties": {"datetime": "2024-09-06T17:29:01Z", "platform": "sentinel-2a",
                        "s2:processing_baseline": "05.11"},
         "assets": {"B04": asset("B04_10m", "red", rb), "B08": asset("B08_10m", "nir", rb),
                    "SCL": asset("SCL_20m", None, {"nodata": 0} if rb else None)}}
    open("sfa-%s.json" % name, "w").write(json.dumps(d) + "\n")
PY
	for v in stated default; do
		check "T13SFA ($v offset): a fused chain" sh -c "mem-infer -s cloudmask -s ndvi -s savi -s savi:mask=cloudmask,as=savi_clear -s 'expr:refl=nir' --workdir w < sfa-$v.json > sfa-$v-out.json"
		res=$(gdal_py - "$S" "$v" 2>>diag.txt <<'PY'
import glob, sys
exec(open("compare.py").read())
s, v = sys.argv[1:3]
red, nir = (rd(glob.glob(s + "/*_%s_10m.tif" % b)[0]) for b in ("B04", "B08"))
scl = rd(glob.glob(s + "/*_SCL_20m.tif")[0])
# the "default" item states no nodata: the files' own (0) counts
scl = up(scl, red.shape)
bad = (red == 0) | (nir == 0)
# (DN - 1000) / 10000, in the kernels' order of operations: DN * scale + offset
R, N = red * 1e-4 - 0.1, nir * 1e-4 - 0.1
cm = np.where(scl == 0, np.nan, np.isin(scl, [3, 8, 9, 10]).astype(np.float32)).astype(np.float32)
sv = savi(N, R, bad)
compare("sfa-%s-out.json" % v, {
    "cloudmask": cm, "ndvi": nd(N, R, bad), "savi": sv,
    "savi_clear": np.where(cm != 0, np.nan, sv).astype(np.float32),
    "refl": np.where(nir == 0, np.nan, N).astype(np.float32)}, masks=("cloudmask",))
PY
)
		report "$res" "T13SFA ($v offset): (DN - 1000) / 10000, nodata 0, equal numpy exactly"
	done
	d=$(gdal_py - "$S" <<'PY'
import glob, sys
exec(open("compare.py").read())
s = sys.argv[1]
red, nir = (rd(glob.glob(s + "/*_%s_10m.tif" % b)[0]) for b in ("B04", "B08"))
bad = (red == 0) | (nir == 0)
a = savi(nir * 1e-4 - 0.1, red * 1e-4 - 0.1, bad)
b = savi(nir * 1e-4, red * 1e-4, bad)
print("%.3f" % np.nanmax(np.abs(a - b)))
PY
)
	gdal_py -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.01 else 1)" "$d" && ok "without the offset SAVI would be off by up to $d" || not_ok "the offset changes SAVI by only $d"
	n=$(gdal_py - <<'PY'
import json
import numpy as np
exec(open("compare.py").read())
a = rdmask(json.loads(open("sfa-stated-out.json").readline())["assets"]["cloudmask"])
print(-1 if a is None else int(np.nansum(a)))
PY
)
	# SCL classes 3 (3556 px), 8 (3094), 9 (705) at 20 m, four 10 m pixels each
	[ "$n" = 29420 ] && ok "the UInt8 cloud mask's 1s are the SCL's shadow and cloud pixels (4 x 7355 = $n)" || not_ok "masked pixels: $n, want 29420"
fi
sed 's/^/# /' diag.txt 2>/dev/null | sed 's/^# # /# /' || true

done_testing
