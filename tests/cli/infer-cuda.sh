#!/bin/sh
# mem-infer --device: a chain of every raster stage (cloudmask with
# dilation, masked NDVI, EVI, SAVI, an expression, a 3x3-convolution
# classifier) and zonal statistics, in strips
# of 37 rows so the halos of the cloud mask and the convolution cross strip
# edges, gives the same files with --device cuda as with --device cpu:
# masks, classes and zone statistics the same, float bands
# within 1 ulp (1e-6 relative for the expression's log).  Without a GPU
# the comparison is skipped loudly; --device cuda must then exit 2 naming
# why, and --device auto must say once that it uses the CPU (a CUDA build)
# and give the CPU's results.
. "$MEM_SRCDIR/tests/lib.sh"
set -f	# the chain's expression has a '*'

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
demo
mem-fetch demo/catalog.json --assets red,nir,blue,scl --workdir w > scenes.json
head -n 1 scenes.json > scene.json

# a small model: SCL 4 and 5 of the demo scene as labels, a 3x3 convolution
D=$(json_get scene.json "d['assets']['scl']['href']")
gdal_py - "$D" <<'PY'
import sys
from osgeo import gdal, ogr
gdal.UseExceptions()
scl = gdal.Open(sys.argv[1])
out = ogr.GetDriverByName("GeoJSON").CreateDataSource("all.geojson")
lay = out.CreateLayer("labels", scl.GetSpatialRef())
lay.CreateField(ogr.FieldDefn("DN", ogr.OFTInteger))
gdal.Polygonize(scl.GetRasterBand(1), None, lay, 0)
out = None
PY
ogr2ogr -f GeoJSON -where "DN IN (4, 5, 6)" labels.geojson all.geojson
check "train a small convolutional model" sh -c \
    "mem-infer --train conv.h5 --labels labels.geojson --label-field DN --hidden 4 --conv --epochs 2 --max-samples 4000 < scene.json 2>/dev/null"
# zones: a grid of squares over the scene
gdal_py - "$D" <<'PY'
import sys
from osgeo import gdal, ogr
gdal.UseExceptions()
ds = gdal.Open(sys.argv[1])
g = ds.GetGeoTransform()
w, h = ds.RasterXSize * g[1], -ds.RasterYSize * g[5]
out = ogr.GetDriverByName("GPKG").CreateDataSource("zones.gpkg")
lay = out.CreateLayer("zones", ds.GetSpatialRef(), ogr.wkbPolygon)
for i in range(4):
    for j in range(3):
        x0, y0 = g[0] + w * (0.05 + 0.24 * i), g[3] - h * (0.05 + 0.31 * j)
        r = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x0 + w * 0.2, y0), (x0 + w * 0.2, y0 - h * 0.25), (x0, y0 - h * 0.25), (x0, y0)):
            r.AddPoint_2D(x, y)
        p = ogr.Geometry(ogr.wkbPolygon)
        p.AddGeometry(r)
        f = ogr.Feature(lay.GetLayerDefn())
        f.SetGeometry(p)
        lay.CreateFeature(f)
out = None
PY

chain="-s cloudmask:dilate=2,as=cm -s ndvi:mask=cloudmask -s evi -s savi \
    -s expr:ex=log(nir+1)*(scl==4)-min(red,blue) -s classify:model=conv.h5,as=cls \
    -s zonal:zones=zones.gpkg,of=ndvi,stats=count,mean,min,max,p50"
run() {	# run DEVICE DIR [extra]
	dev=$1 dir=$2
	shift 2
	MEM_INFER_STRIP_ROWS=37 mem-infer -j 2 --device "$dev" $chain "$@" --workdir "$dir" < scene.json
}
if run cpu wcpu > cpu.json 2> cpu.err; then
	ok "the chain on the CPU"
else
	not_ok "the chain on the CPU: $(cat cpu.err)"
fi

# compare A B: every output of the chain, pixel by pixel, and the zones
compare() {
	gdal_py - "$1" "$2" <<'PY'
import json, sys
import numpy as np
from osgeo import gdal, ogr
a, b = (json.loads(open(f).readline()) for f in sys.argv[1:3])
bad = []
def rd(p):
    ds = gdal.Open(p)
    return ds.GetRasterBand(1).ReadAsArray()
for k, tol in (("cm", "exact"), ("cls", "exact"), ("ndvi", "ulp"), ("evi", "ulp"), ("savi", "ulp"), ("ex", 1e-6)):
    x, y = rd(a["assets"][k]["href"]), rd(b["assets"][k]["href"])
    if x.dtype.kind == "f":
        if not (np.isnan(x) == np.isnan(y)).all():
            bad.append(k + ": NaN differs"); continue
        m = ~np.isnan(x)
        x, y = x[m], y[m]
    if tol == "exact":
        ok = np.array_equal(x, y)
    elif tol == "ulp":
        ok = (np.abs(x.view(np.int32).astype(np.int64) - y.view(np.int32).astype(np.int64)) <= 1).all()
    else:
        ok = (np.abs(x.astype(np.float64) - y) <= tol * np.maximum(1, np.abs(x))).all()
    if not ok:
        bad.append(k)
def zones(it):
    g = [v["href"] for v in it["assets"].values() if v["href"].endswith(".gpkg")]
    if len(g) != 1:
        return "no GeoPackage among %s" % sorted(it["assets"])
    ds = ogr.Open(g[0])
    lay = ds.GetLayer(0)
    return [[f.GetField(i) for i in range(f.GetFieldCount())] for f in lay]
za, zb = zones(a), zones(b)
if isinstance(za, str) or len(za) != 12:
    bad.append("zonal: %s" % (za if isinstance(za, str) else "%d zones" % len(za)))
elif za != zb:
    bad.append("zonal")
print(" ".join(bad) or "same")
PY
}

err=$(run cuda wcuda 2>&1 > cuda.json) && rc=0 || rc=$?
case $err in
*"no CUDA support"*)
	diag "######## --device cuda: SKIPPED the CPU-vs-CUDA comparison: built without --enable-cuda ########"
	skip "CPU vs CUDA: built without --enable-cuda"
	;;
*"no CUDA device"*)
	diag "######## --device cuda: SKIPPED the CPU-vs-CUDA comparison: no CUDA device ########"
	skip "CPU vs CUDA: no CUDA device"
	;;
*)
	if [ "$rc" -eq 0 ]; then
		res=$(compare cpu.json cuda.json)
		[ "$res" = same ] && ok "--device cuda gives the same outputs as --device cpu" || not_ok "CPU vs CUDA: $res"
	else
		not_ok "--device cuda failed: $err"
	fi
	;;
esac
if [ "$rc" -ne 0 ]; then
	[ "$rc" -eq 2 ] && printf '%s' "$err" | grep -q -- "--device cuda:" && ok "--device cuda without a GPU exits 2 and says why" || not_ok "--device cuda: exit $rc, $err"
	run auto wauto > auto.json 2> auto.err || true
	n=$(grep -c "no CUDA device found, computing on the CPU" auto.err || true)
	case $err in
	*"no CUDA device"*) [ "$n" -eq 1 ] && ok "--device auto says once that it falls back to the CPU" || not_ok "--device auto said: $(cat auto.err)" ;;
	*) [ "$n" -eq 0 ] && ok "--device auto in a CPU-only build says nothing" || not_ok "--device auto said: $(cat auto.err)" ;;
	esac
	res=$(compare cpu.json auto.json)
	[ "$res" = same ] && ok "--device auto gives the CPU's outputs" || not_ok "auto vs cpu: $res"
else
	ok "--device cuda ran on a GPU"
	run auto wauto > auto.json 2> auto.err || true
	[ -s auto.err ] && not_ok "--device auto with a GPU printed: $(cat auto.err)" || ok "--device auto with a GPU is quiet"
	res=$(compare cuda.json auto.json)
	[ "$res" = same ] && ok "--device auto uses the GPU's path" || not_ok "auto vs cuda: $res"
fi
# cuda:N: a device by its number
if [ "$rc" -eq 0 ]; then
	run cuda:0 wcuda0 > cuda0.json 2> cuda0.err && res=$(compare cuda.json cuda0.json) || res="exit $?: $(cat cuda0.err)"
	[ "$res" = same ] && ok "--device cuda:0 is the first GPU" || not_ok "cuda:0 vs cuda: $res"
	e=$(mem-infer --device cuda:1000 -s ndvi < scene.json 2>&1 >/dev/null) && r=0 || r=$?
	[ "$r" -eq 2 ] && printf '%s' "$e" | grep -q "this machine has [0-9]* CUDA device" &&
		ok "--device cuda:1000 exits 2: no such device" || not_ok "--device cuda:1000: exit $r, $e"
else
	e=$(run cuda:0 wcuda0 2>&1 >/dev/null) && r=0 || r=$?
	[ "$r" -eq 2 ] && printf '%s' "$e" | grep -q -- "--device cuda:" &&
		ok "--device cuda:0 without a GPU exits 2 as cuda does" || not_ok "--device cuda:0: exit $r, $e"
fi
for bad in cuda:x cuda: cuda:-1 gpu; do
	e=$(mem-infer --device "$bad" -s ndvi < scene.json 2>&1 >/dev/null) && r=0 || r=$?
	[ "$r" -eq 2 ] && printf '%s' "$e" | grep -q -- "'$bad'" &&
		ok "--device $bad is refused (exit 2, names it)" || not_ok "--device $bad: exit $r, $e"
done
done_testing
