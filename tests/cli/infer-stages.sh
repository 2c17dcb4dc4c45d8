#!/bin/sh
# mem-infer stage chains on the demo scene: --list-stages, parameters, a
# fused chain that writes only what was asked for, strips that join without
# seams, expression errors with their column, unknown bands named.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
demo
mem-fetch demo/catalog.json --assets red,nir,green,blue,scl --workdir w > scene.json

# --list-stages names every stage, its parameters and output
mem-infer --list-stages > stages.txt
missing=
for s in ndvi ndwi mndwi nbr ndbi ndsi evi savi cloudmask expr:OUT=EXPRESSION mask=STAGE \
    classes=3,8,9,10 dilate=0 band=scl L=0.5 as=NAME float32 zonal:zones=FILE of=STAGE \
    stats=count,mean,std,min,max,p10,p50,p90 change threshold=-0.2 llm:PROVIDER/MODEL \
    prompt=FILE scope=tile deepseek mistral cohere; do
	grep -q -- "$s" stages.txt || missing="$missing $s"
done
[ -z "$missing" ] && ok "--list-stages lists the stages, parameters and outputs" || not_ok "--list-stages lacks:$missing"

# a fused chain: cloudmask is computed for the mask and not written
check "a chain of four stages" sh -c "mem-infer -s 'ndvi:mask=cloudmask' -s 'expr:veg=ndvi > 0.3 && scl == 4' -s evi -s 'cloudmask:dilate=2,classes=8,9,as=thick' --workdir w < scene.json > chain.json"
keys=$(json_get chain.json "' '.join(d['assets'])")
[ "$keys" = "ndvi veg evi thick" ] && ok "only the outputs asked for, in order ($keys)" || not_ok "assets: $keys"
dir=$(dirname "$(json_get chain.json "d['assets']['ndvi']['href']")")
[ "$(ls "$dir" | sort | tr '\n' ' ')" = "evi.tif ndvi.tif thick.tif veg.tif " ] && ok "no file for the implied cloudmask" || not_ok "files: $(ls "$dir")"
[ "$(json_get chain.json "d['collection']")" = ndvi ] && ok "collection is the first output" || not_ok "collection $(json_get chain.json "d['collection']")"

# the chain's values against numpy, from the same demo bands
D=demo/sentinel-2-l2a-demo/S2A_32TNR_20240715_0_L2A_DEMO
res=$(gdal_py - "$dir" "$D" <<'PY'
import sys
import numpy as np
from osgeo import gdal
o, d = sys.argv[1:3]
def rd(p):
    ds = gdal.Open(p)  # the band dies with its dataset: keep it
    return ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
red, nir, blue, scl = rd(d + "/B04.tif"), rd(d + "/B08.tif"), rd(d + "/B02.tif"), rd(d + "/SCL.tif")
if scl.shape != red.shape:  # 20 m SCL onto the 10 m grid, nearest neighbour
    f = red.shape[0] // scl.shape[0]
    scl = np.repeat(np.repeat(scl, f, 0), f, 1)
bad = (red == 0) | (nir == 0)
r, n, b = red * 1e-4, nir * 1e-4, blue * 1e-4
cloud = np.isin(scl, [3, 8, 9, 10]) | (scl == 0)
with np.errstate(divide="ignore", invalid="ignore"):
    ndvi = np.where(bad | (n + r == 0) | cloud, np.nan, (n - r) / (n + r)).astype(np.float32)
    den = n + 6 * r - 7.5 * b + 1
    evi = np.where(bad | (blue == 0) | (den == 0), np.nan, 2.5 * (n - r) / den).astype(np.float32)
veg = ((ndvi > 0.3) & (scl == 4)).astype(np.float32)
def cmp(name, ref):
    ds = gdal.Open(o + "/" + name + ".tif")
    a = ds.GetRasterBand(1).ReadAsArray()
    same = (np.isnan(a) == np.isnan(ref)).all() and np.array_equal(a[~np.isnan(a)], ref[~np.isnan(ref)])
    return "%s=%d" % (name, int(same))
print(cmp("ndvi", ndvi), cmp("evi", evi), cmp("veg", veg))
PY
)
[ "$res" = "ndvi=1 evi=1 veg=1" ] && ok "masked NDVI, EVI and an expression equal numpy exactly" || not_ok "against numpy: $res"

# a mask is written as UInt8: 0 clear, 1 cloud, 255 nodata (SCL 0), its
# classes in the item; the expression stays float32 with NaN
info=$(gdalinfo "$dir/thick.tif")
case $info in
*"Type=Byte"*"NoData Value=255"*) ok "gdalinfo: the mask is Byte, NoData Value=255" ;;
*) not_ok "gdalinfo thick.tif: $(echo "$info" | grep -E 'Type=|NoData')" ;;
esac
[ "$(ls -A "$dir" | grep -c -v '\.tif$')" = 0 ] && ok "nothing but the four GeoTIFFs in the result's folder (no .aux.xml left by the rename)" ||
	not_ok "left in the result's folder: $(ls -A "$dir" | grep -v '\.tif$' | tr '\n' ' ')"
gdalinfo "$dir/veg.tif" | grep -q "Type=Float32" && gdalinfo "$dir/veg.tif" | grep -q "NoData Value=nan" &&
	ok "an expression's output stays Float32, NoData Value=nan" || not_ok "veg.tif: $(gdalinfo "$dir/veg.tif" | grep -E 'Type=|NoData')"
res=$(gdal_py - "$D" chain.json <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
d, out = sys.argv[1:3]
ds = gdal.Open(d + "/SCL.tif")
scl = ds.GetRasterBand(1).ReadAsArray()
red = gdal.Open(d + "/B04.tif")
if scl.shape != (red.RasterYSize, red.RasterXSize):
    f = red.RasterYSize // scl.shape[0]
    scl = np.repeat(np.repeat(scl, f, 0), f, 1)
# classes 8 and 9, dilated by a 5x5 square (dilate=2), SCL 0 is nodata
m = np.isin(scl, [8, 9])
p = np.pad(m, 2)
dil = np.zeros_like(m)
for dy in range(5):
    for dx in range(5):
        dil |= p[dy:dy + m.shape[0], dx:dx + m.shape[1]]
ref = np.where(scl == 0, 255, dil).astype(np.uint8)
a = json.loads(open(out).readline())["assets"]["thick"]
rb = a["raster:bands"][0]
ods = gdal.Open(a["href"])
got = ods.GetRasterBand(1).ReadAsArray()
meta = (rb["data_type"], rb["nodata"], [(c["value"], c["name"]) for c in rb["classification:classes"]]) == \
    ("uint8", 255, [(0, "clear"), (1, "cloud")])
print(int(got.dtype == np.uint8 and np.array_equal(got, ref)), int(meta), int((got == 1).sum()),
      int(dil[scl != 0].sum()), int((got == 255).sum()), int((scl == 0).sum()))
PY
)
set -- $res
[ "${1:-0}" = 1 ] && [ "$3" = "$4" ] && [ "$5" = "$6" ] && [ "$3" -gt 0 ] &&
	ok "the mask's bytes equal numpy's: $3 ones (the float mask's count), $5 at 255 (SCL nodata)" || not_ok "mask bytes: $res"
[ "${2:-0}" = 1 ] && ok "raster:bands: uint8, nodata 255, classes 0 clear and 1 cloud" || not_ok "mask metadata: $(json_get chain.json "d['assets']['thick']['raster:bands']")"
# mem-tile reads the classes: the mask's tiles stay UInt8 0/1/255, never averaged
check "mem-tile of the result (a coarser zoom)" sh -c "mem-tile -g webmercator:12 --workdir w < chain.json > chain-tiles.json"
res=$(gdal_py - chain-tiles.json <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
vals, types = set(), set()
for line in open(sys.argv[1]):
    ds = gdal.Open(json.loads(line)["assets"]["thick"]["href"])
    b = ds.GetRasterBand(1)
    types.add("%s/%s" % (gdal.GetDataTypeName(b.DataType), b.GetNoDataValue()))
    vals |= set(np.unique(b.ReadAsArray()).tolist())
print(" ".join(sorted(types)), sorted(vals))
PY
)
[ "$res" = "Byte/255.0 [0, 1, 255]" ] && ok "mem-tile keeps the mask UInt8 with nodata 255 and only 0 and 1 ($res)" || not_ok "tiled mask: $res"

# strips cut anywhere give the same result: dilation reads a halo
mem-infer -s 'cloudmask:dilate=3' -s 'expr:x=min(red, nir) / max(green, 0.01)' --workdir s1 < scene.json > s1.json
MEM_INFER_STRIP_ROWS=7 mem-infer -j 2 -s 'cloudmask:dilate=3' -s 'expr:x=min(red, nir) / max(green, 0.01)' --workdir s2 < scene.json > s2.json
same=$(gdal_py - s1.json s2.json <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
a, b = (json.loads(open(p).readline())["assets"] for p in sys.argv[1:3])
def rd(p):
    ds = gdal.Open(p)
    return ds.GetRasterBand(1).ReadAsArray()
print(" ".join("%s=%d" % (k, np.array_equal(rd(a[k]["href"]), rd(b[k]["href"]), equal_nan=True))
               for k in ("cloudmask", "x")))
PY
)
[ "$same" = "cloudmask=1 x=1" ] && ok "7-row strips on two threads equal whole strips ($same)" || not_ok "strips differ: $same"

# errors: usage errors (exit 2) before any item is read
msg=$(stderr_of mem-infer -s 'expr:x=(red + 1' < scene.json | head -1)
[ "$msg" = "mem-infer: expr: column 9: expected ')'" ] && ok "a syntax error names its column" || not_ok "message: $msg"
check_exit "a syntax error exits 2" 2 mem-infer -s 'expr:x=(red + 1' --workdir w < scene.json
msg=$(stderr_of mem-infer -s 'expr:x=red +* 2' < scene.json)
case $msg in *"column 6: unexpected '*'"*) ok "unexpected token and its column" ;; *) not_ok "message: $msg" ;; esac
msg=$(stderr_of mem-infer -s 'expr:x=system(1)' < scene.json)
case $msg in *"column 1: unknown function 'system'"*) ok "no function but the listed ones" ;; *) not_ok "message: $msg" ;; esac
check_exit "expr without a name exits 2" 2 mem-infer -s 'expr:red+1' < scene.json
check_exit "an unknown parameter exits 2" 2 mem-infer -s 'ndvi:frobs=1' < scene.json
msg=$(stderr_of mem-infer -s 'ndvi:frobs=1')
case $msg in *"unknown parameter 'frobs'"*) ok "the unknown parameter is named" ;; *) not_ok "message: $msg" ;; esac
check_exit "a mask that is no stage exits 2" 2 mem-infer -s 'ndvi:mask=nope' < scene.json
check_exit "bad classes exit 2" 2 mem-infer -s 'cloudmask:classes=3,x' < scene.json
check_exit "a negative dilation exits 2" 2 mem-infer -s 'cloudmask:dilate=-1' < scene.json
check_exit "one output made twice exits 2" 2 mem-infer -s ndvi -s ndvi < scene.json
check "the same stage twice under two names" sh -c "mem-infer -s ndvi -s 'ndvi:mask=cloudmask,as=ndvi_clear' --workdir w < scene.json > two.json"

# an unknown band is named, and the item fails (exit 1)
check_exit "an expression over a missing band fails the item (exit 1)" 1 mem-infer -s 'expr:x=swir16 - red' --workdir w < scene.json
msg=$(stderr_of mem-infer -s 'expr:x=swir16 - red' --workdir w < scene.json)
case $msg in *"expr 'x': item '"*"' has no band 'swir16'"*) ok "the missing band is named" ;; *) not_ok "message: $msg" ;; esac

check_exit "an expression of constants alone fails the item (exit 1)" 1 mem-infer -s 'expr:one=1 + 1' --workdir w < scene.json

# Landsat Collection 2: the real USGS item states no scale or offset and
# calls its NIR band nir08; its red and nir08 assets point at tiny files
L=$(realdata stac/usgs-landsatlook/LC08_L2SP_028030_20200114_20200824_02_T1_SR.json)
if [ -z "$L" ]; then
	skip "no ../shared/realdata/stac/usgs-landsatlook (Landsat C2 item)"
else
	gdal_py - "$L" > lc8.json <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
d = json.load(open(sys.argv[1]))
for k, v in (("red", [10000, 0, 7273]), ("nir08", [20000, 20000, 7273])):
    ds = gdal.GetDriverByName("GTiff").Create(k + ".tif", 3, 1, 1, gdal.GDT_UInt16)
    ds.SetGeoTransform([500000, 30, 0, 4500000, 0, -30])
    ds.GetRasterBand(1).WriteArray(np.array([v], dtype=np.uint16))
    ds.GetRasterBand(1).SetNoDataValue(0)
    ds = None
    d["assets"][k]["href"] = k + ".tif"
print(json.dumps(d))
PY
	sed -i "s|"href": "red.tif"|"href": "$T/red.tif"|; s|"href": "nir08.tif"|"href": "$T/nir08.tif"|" lc8.json
	check "Landsat C2: ndvi and savi" sh -c "mem-infer -s ndvi -s savi --workdir w < lc8.json > lc8-out.json"
	vals=$(gdal_py - <<'PY'
import json
from osgeo import gdal
a = json.loads(open("lc8-out.json").readline())["assets"]
out = []
for k in ("ndvi", "savi"):
    ds = gdal.Open(a[k]["href"])
    out += ["nan" if x != x else "%.6f" % x for x in ds.GetRasterBand(1).ReadAsArray()[0]]
print(" ".join(out))
PY
)
	# reflectance DN * 2.75e-5 - 0.2: red 0.075, nir 0.35; DN 7273 is 0.0000075 in both
	# ndvi (0.35 - 0.075) / 0.425 = 0.647059, savi 1.5 * 0.275 / 0.925 = 0.445946
	[ "$vals" = "0.647059 nan 0.000000 0.445946 nan 0.000000" ] && ok "nir08 found, Landsat C2 scale and offset applied ($vals)" || not_ok "values: $vals"
fi

# reruns reuse every output
before=$(stat -c %Y.%i "$dir/veg.tif")
sleep 1
mem-infer -s 'ndvi:mask=cloudmask' -s 'expr:veg=ndvi > 0.3 && scl == 4' -s evi -s 'cloudmask:dilate=2,classes=8,9,as=thick' --workdir w < scene.json > chain2.json
cmp -s chain.json chain2.json && [ "$(stat -c %Y.%i "$dir/veg.tif")" = "$before" ] && ok "a rerun of the chain reuses its results" || not_ok "the rerun recomputed"

done_testing
