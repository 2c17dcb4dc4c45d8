#!/usr/bin/env bash
# run.sh - the inference benchmark: the fused chain
#   mem-infer -s cloudmask -s ndvi:mask=cloudmask -s zonal:zones=fields.gpkg,...
# against the same steps done with GDAL's tools, the classifier's pixels per
# second, and each stage's kernel on the CPU (and the GPU when there is one)
# against the memory-bound limit measured in the same run.
#
# Usage: bench/infer/run.sh [BUILDDIR] [SIZE]
#   BUILDDIR  the build tree with src/cmd/mem-infer and bench/infer/kern-bench
#             (default: the repository root, for an in-tree build)
#   SIZE      the side of the square tile in 10 m pixels (default 10980, a
#             Sentinel-2 tile; 2048 makes a quick run)
#
# Environment:
#   MEM_BENCH_DIR     work dir; generated inputs are reused (default /tmp/mem-bench-infer-SIZE)
#   MEM_BENCH_ROUNDS  rounds alternating the fused chain and the GDAL chain (default 1)
#   MEM_BENCH_PARTS   which parts to run: any of chain,classify,kernels,gpu (default
#                     chain,classify,kernels; gpu: --device cuda against --device cpu)
#   CLASSIFY_ROWS     rows of the tile the classifier runs on (default 2048)
#
# Inputs (generated once, deterministic, seed 20241101): red (B04) and nir
# (B08) UInt16 at 10 m and SCL at 20 m, DEFLATE-tiled GeoTIFFs in
# EPSG:32633, reflectance scale 1e-4 with the 2022+ offset -0.1, a nodata
# swath edge, clouds (SCL 8, 9) and their shadows (3); fields.gpkg, one
# polygon per field (a grid of 90x90-pixel parcels with 10-pixel lanes,
# jittered), with an integer zone_id and a crop class; fields of one class
# have similar vigour.
#
# The GDAL chain is what a user would script without mem-infer, picking the
# fastest reasonable tools: gdal_translate -of VRT to bring SCL to 10 m
# (nearest), gdal_calc.py for the mask (UInt8, nodata 255, as mem-infer
# writes it) and the masked NDVI (both DEFLATE),
# gdal_rasterize of the fields to a zone raster, and one numpy pass over
# the NDVI and zone rasters for per-zone count, mean, std, min, max and the
# median (sorting by zone and value: exact, as mem-infer's).  Per polygon
# gdalwarp -cutline + gdalinfo -stats would be far slower (seconds per
# field, thousands of fields) and gives no median.  The outputs are then
# compared: the mask's bytes equal, NDVI within 1e-6 with the same NaNs, every
# zone's count equal and its statistics within 1e-6.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=$(cd "${1:-$srcdir}" && pwd)
size=${2:-10980}
rounds=${MEM_BENCH_ROUNDS:-1}
parts=${MEM_BENCH_PARTS:-chain,classify,kernels}
crows=${CLASSIFY_ROWS:-2048}
work=${MEM_BENCH_DIR:-/tmp/mem-bench-infer-$size}
py=/usr/bin/python3
mem_infer=${MEM_INFER:-$builddir/src/cmd/mem-infer}
kern_bench=$builddir/bench/infer/kern-bench

die() { echo "run.sh: $*" >&2; exit 1; }
has() { case ",$parts," in *",$1,"*) return 0 ;; esac; return 1; }
case $size in ''|*[!0-9]*) die "SIZE must be a positive integer, not '$size'" ;; esac
[ "$size" -ge 256 ] || die "SIZE must be at least 256"
[ -x "$mem_infer" ] || die "$mem_infer not found: build the project first (make)"
"$py" -c 'from osgeo import gdal, ogr; import numpy' 2>/dev/null ||
	die "$py cannot import osgeo and numpy (apt-get install python3-gdal python3-numpy)"
for t in gdal_calc.py gdal_translate gdal_rasterize; do
	command -v $t >/dev/null || die "$t not found (apt-get install gdal-bin python3-gdal)"
done
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$work"
export GDAL_NUM_THREADS=ALL_CPUS

# --- inputs -------------------------------------------------------------------
gen="infer-bench-gen v1 size=$size seed=20241101"
if [ "$(cat inputs.ok 2>/dev/null)" != "$gen" ]; then
	echo "inputs: generating a ${size}x${size} tile (red, nir, SCL) and its fields in $work ..."
	rm -f inputs.ok red.tif nir.tif scl.tif fields.gpkg
	t0=$(date +%s.%N)
	"$py" - "$size" <<'EOF'
import sys
import numpy as np
from osgeo import gdal, ogr, osr
gdal.UseExceptions()
size = int(sys.argv[1])
SEED, X0, Y0, RES, P, LANE = 20241101, 500000.0, 4500000.0, 10.0, 100, 10
rng = np.random.default_rng(SEED)
srs = osr.SpatialReference()
srs.ImportFromEPSG(32633)
def create(name, n, res, nodata):
    ds = gdal.GetDriverByName("GTiff").Create(name, n, n, 1, gdal.GDT_UInt16,
        ["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512", "COMPRESS=DEFLATE", "NUM_THREADS=ALL_CPUS"])
    ds.SetGeoTransform((X0, res, 0, Y0, 0, -res))
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).SetNoDataValue(nodata)
    return ds
npar = (size + P - 1) // P
crop = rng.integers(0, 4, (npar, npar))
vig = (np.array([0.15, 0.4, 0.65, 0.9])[crop] + rng.normal(0, 0.06, (npar, npar))).clip(0.02, 0.98)
# jittered field rectangles inside each parcel, in pixels
jx0 = rng.integers(0, 4, (npar, npar)); jy0 = rng.integers(0, 4, (npar, npar))
jx1 = rng.integers(0, 4, (npar, npar)); jy1 = rng.integers(0, 4, (npar, npar))
# clouds: discs of 20-120 pixels; shadows offset south-east
nc = max(1, size * size // 4000000)
cx, cy = rng.uniform(0, size, nc), rng.uniform(0, size, nc)
cr = rng.uniform(20, 120, nc)
red_ds, nir_ds = create("red.tif", size, RES, 0), create("nir.tif", size, RES, 0)
CH = 512
xs = np.arange(size)[None, :]
for y0 in range(0, size, CH):
    rows = min(CH, size - y0)
    ys = np.arange(y0, y0 + rows)[:, None]
    r = np.random.default_rng([SEED, y0])
    v = vig[ys // P, xs // P]
    red = 400 + 1400 * (1 - v) + r.normal(0, 50, (rows, size))
    nir = 1300 + 3500 * v + r.normal(0, 90, (rows, size))
    red, nir = red.clip(1, 10000).astype(np.uint16), nir.clip(1, 10000).astype(np.uint16)
    edge = xs < (0.04 + 0.03 * ys / size) * size
    red[np.broadcast_to(edge, red.shape)] = 0
    nir[np.broadcast_to(edge, nir.shape)] = 0
    red_ds.GetRasterBand(1).WriteArray(red, 0, y0)
    nir_ds.GetRasterBand(1).WriteArray(nir, 0, y0)
red_ds = nir_ds = None
n20 = (size + 1) // 2
scl_ds = create("scl.tif", n20, 2 * RES, 0)
xs = (np.arange(n20)[None, :] * 2 + 1.0)
for y0 in range(0, n20, CH):
    rows = min(CH, n20 - y0)
    ys = (np.arange(y0, y0 + rows)[:, None] * 2 + 1.0)
    scl = np.where(vig[(ys // P).astype(int).clip(0, npar - 1), (xs // P).astype(int).clip(0, npar - 1)] > 0.3, 4, 5).astype(np.uint16)
    for i in range(nc):
        d2 = (xs - cx[i]) ** 2 + (ys - cy[i]) ** 2
        scl[(xs - cx[i] - 1.5 * cr[i]) ** 2 + (ys - cy[i] - 1.5 * cr[i]) ** 2 < cr[i] ** 2] = 3
        scl[d2 < cr[i] ** 2] = 9
        scl[d2 < (0.6 * cr[i]) ** 2] = 8
    scl[np.broadcast_to(xs < (0.04 + 0.03 * ys / size) * size, scl.shape)] = 0
    scl_ds.GetRasterBand(1).WriteArray(scl, 0, y0)
scl_ds = None
out = ogr.GetDriverByName("GPKG").CreateDataSource("fields.gpkg")
lay = out.CreateLayer("fields", srs, ogr.wkbPolygon)
lay.CreateField(ogr.FieldDefn("zone_id", ogr.OFTInteger))
lay.CreateField(ogr.FieldDefn("crop", ogr.OFTInteger))
lay.StartTransaction()
zid = 0
for j in range(npar):
    for i in range(npar):
        a0, b0 = i * P + LANE // 2 + jx0[j, i], j * P + LANE // 2 + jy0[j, i]
        a1, b1 = (i + 1) * P - LANE // 2 - jx1[j, i], (j + 1) * P - LANE // 2 - jy1[j, i]
        a1, b1 = min(a1, size), min(b1, size)
        if a1 - a0 < 8 or b1 - b0 < 8:
            continue
        zid += 1
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for px, py in ((a0, b0), (a1, b0), (a1, b1), (a0, b1), (a0, b0)):
            ring.AddPoint_2D(X0 + px * RES, Y0 - py * RES)
        g = ogr.Geometry(ogr.wkbPolygon)
        g.AddGeometry(ring)
        f = ogr.Feature(lay.GetLayerDefn())
        f.SetGeometry(g)
        f.SetField("zone_id", zid)
        f.SetField("crop", int(crop[j, i]))
        lay.CreateFeature(f)
lay.CommitTransaction()
out = None
print("inputs: %d fields, %d clouds" % (zid, nc))
EOF
	echo "$gen" > inputs.ok
	echo "inputs: generated in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s"
fi
# the STAC item, one line
"$py" - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
def asset(f, name, common, rb, roles=("data",)):
    return {"href": w + "/" + f, "type": "image/tiff; application=geotiff", "roles": list(roles),
            "eo:bands": [{"name": name, "common_name": common}], "raster:bands": [rb]}
refl = {"nodata": 0, "scale": 0.0001, "offset": -0.1}
item = {"type": "Feature", "stac_version": "1.0.0", "id": "bench-infer", "geometry": None, "links": [],
        "properties": {"datetime": "2024-11-01T10:00:00Z", "platform": "sentinel-2b", "proj:epsg": 32633},
        "assets": {"B04": asset("red.tif", "B04", "red", refl), "B08": asset("nir.tif", "B08", "nir", refl),
                   "SCL": asset("scl.tif", "SCL", "scl", {"nodata": 0}, ("data", "classification"))}}
open("item.json", "w").write(json.dumps(item) + "\n")
EOF

exec 3>&1
: > times
# timed NAME CMD...: wall and CPU (user + system) seconds into ./times; the
# CPU time matters on a shared machine, where the wall time is mostly waiting
timed() {
	local name=$1
	shift
	/usr/bin/time -f "%e %U %S" -o "$name.time" "$@" 2> "$name.err" ||
		{ echo "run.sh: $name failed:" >&2; tail -n 20 "$name.err" >&2; exit 1; }
	awk -v n="$name" '{ printf "%s %.3f %.3f\n", n, $1, $2 + $3 >> "times"
		printf "  %-22s %8.2f s wall %8.2f s cpu\n", n, $1, $2 + $3 }' "$name.time" >&3
}
zonal="zonal:zones=$work/fields.gpkg,of=ndvi,stats=count,mean,std,min,max,p50"
echo "machine: $(nproc) CPUs, $(free -g | awk '/Mem/ { print $2 }') GB; load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- the fused chain against the GDAL chain --------------------------------------
if has chain; then
	echo "chain: ${size}x${size}, $rounds round(s), alternating (wall):"
	for r in $(seq 1 "$rounds"); do
		rm -rf fused gdal && mkdir -p gdal
		timed fused "$mem_infer" --device cpu -s cloudmask -s ndvi:mask=cloudmask -s "$zonal" \
			--workdir fused --co COMPRESS=DEFLATE < item.json > fused.json
		# the same without writing the mask: the GDAL chain needs it as a file, mem-infer does not
		rm -rf fused2
		timed fused_nomask "$mem_infer" --device cpu -s ndvi:mask=cloudmask -s "$zonal" \
			--workdir fused2 --co COMPRESS=DEFLATE < item.json > fused2.json
		timed gdal_translate_scl gdal_translate -q -of VRT -outsize "$size" "$size" -r nearest scl.tif gdal/scl10.vrt
		# the mask as mem-infer writes it: UInt8, 1 cloud or shadow, 0 clear, 255 nodata
		timed gdal_calc_mask gdal_calc.py -A gdal/scl10.vrt --hideNoData --type=Byte --NoDataValue=255 \
			--calc="numpy.where(A==0, 255, numpy.isin(A, [3, 8, 9, 10]))" \
			--co COMPRESS=DEFLATE --co TILED=YES --outfile=gdal/cloudmask.tif --quiet
		timed gdal_calc_ndvi gdal_calc.py -A red.tif -B nir.tif -C gdal/cloudmask.tif --hideNoData \
			--type=Float32 --NoDataValue=nan --co COMPRESS=DEFLATE --co TILED=YES --outfile=gdal/ndvi.tif --quiet \
			--calc="numpy.where((A==0)|(B==0)|(C!=0)|((A*0.0001-0.1)+(B*0.0001-0.1)==0), numpy.nan, ((B*0.0001-0.1)-(A*0.0001-0.1))/((B*0.0001-0.1)+(A*0.0001-0.1)))"
		timed gdal_rasterize gdal_rasterize -q -a zone_id -ot Int32 -init 0 -a_nodata 0 \
			-te 500000 $((4500000 - size * 10)) $((500000 + size * 10)) 4500000 -tr 10 10 \
			-co COMPRESS=DEFLATE -co TILED=YES fields.gpkg gdal/zones.tif
		timed numpy_zonal "$py" - gdal/ndvi.tif gdal/zones.tif gdal/zonal.csv <<'EOF'
import sys
import numpy as np
from osgeo import gdal
a, z = gdal.Open(sys.argv[1]), gdal.Open(sys.argv[2])
v = a.GetRasterBand(1).ReadAsArray().ravel()
zz = z.GetRasterBand(1).ReadAsArray().ravel()
m = (zz > 0) & ~np.isnan(v)
v, zz = v[m].astype(np.float64), zz[m]
o = np.lexsort((v, zz))
v, zz = v[o], zz[o]
ids, start, cnt = np.unique(zz, return_index=True, return_counts=True)
s = np.add.reduceat(v, start)
mean = s / cnt
std = np.sqrt(np.add.reduceat((v - np.repeat(mean, cnt)) ** 2, start) / cnt)
lo, hi = v[start], v[start + cnt - 1]
r = (cnt - 1) * 0.5
f = np.floor(r).astype(np.int64)
t = r - f
med = v[start + f] + (v[start + np.minimum(f + 1, cnt - 1)] - v[start + f]) * t
with open(sys.argv[3], "w") as out:
    out.write("zone_id,count,mean,std,min,max,p50\n")
    for row in zip(ids, cnt, mean, std, lo, hi, med):
        out.write("%d,%d,%.17g,%.17g,%.9g,%.9g,%.17g\n" % row)
EOF
	done
	# the results agree?
	"$py" - fused.json gdal <<'EOF' || { echo "result: FAIL (the chains disagree)"; exit 1; }
import json, sys
import numpy as np
from osgeo import gdal, ogr
item, g = json.loads(open(sys.argv[1]).readline()), sys.argv[2]
bad = []
def rd(p):
    ds = gdal.Open(p)
    return ds.GetRasterBand(1).ReadAsArray()
for k, f in (("cloudmask", "cloudmask.tif"), ("ndvi", "ndvi.tif")):
    a, b = rd(item["assets"][k]["href"]), rd(g + "/" + f)
    if k == "cloudmask":  # both UInt8, nodata 255: every byte equal
        if a.dtype != np.uint8 or b.dtype != np.uint8 or not np.array_equal(a, b):
            bad.append("cloudmask: %s/%s, %d pixels differ" % (a.dtype, b.dtype,
                       (a != b).sum() if a.shape == b.shape else -1))
        else:
            print("check: cloudmask: %d pixels, UInt8, %d cloud, %d nodata (255), equal"
                  % (a.size, (a == 1).sum(), (a == 255).sum()))
        continue
    na, nb = np.isnan(a), np.isnan(b)
    d = np.abs(a[~na].astype(np.float64) - b[~nb]) if (na == nb).all() else None
    if d is None or (d.size and d.max() > 1e-6):
        bad.append("%s: %s" % (k, "NaNs differ" if d is None else "max |diff| %g" % d.max()))
    else:
        print("check: %s: %d pixels, %d NaN, max |diff| %g" % (k, a.size, na.sum(), d.max() if d.size else 0))
ref = {}
for line in open(g + "/zonal.csv").readlines()[1:]:
    x = line.split(",")
    ref[int(x[0])] = [int(x[1])] + [float(t) for t in x[2:]]
gp = [a["href"] for a in item["assets"].values() if a["href"].endswith(".gpkg")]
zds = ogr.Open(gp[0])
lay = zds.GetLayer(0)
n = worst = 0
for f in lay:
    zid, cnt = f.GetField("zone_id"), f.GetField("count")
    if cnt == 0 and zid not in ref:
        continue
    n += 1
    r = ref.get(zid)
    if r is None or cnt != r[0]:
        bad.append("zone %d: count %s, GDAL chain %s" % (zid, cnt, r and r[0])); continue
    for k, name in enumerate(("mean", "std", "min", "max", "p50")):
        d = abs(f.GetField(name) - r[k + 1])
        worst = max(worst, d)
        if d > 1e-6:
            bad.append("zone %d %s: %r vs %r" % (zid, name, f.GetField(name), r[k + 1]))
if n != len(ref):
    bad.append("%d zones with pixels, GDAL chain %d" % (n, len(ref)))
print("check: zonal: %d fields, counts equal, statistics within %g" % (n, worst))
for b in bad[:10]:
    print("check: FAIL: " + b)
sys.exit(1 if bad else 0)
EOF
	"$py" - "$size" <<'EOF'
import sys
size = int(sys.argv[1])
best, cpu = {}, {}
for line in open("times"):
    k, t, c = line.split()
    best[k] = min(best.get(k, 1e9), float(t))
    cpu[k] = min(cpu.get(k, 1e9), float(c))
steps = ["gdal_translate_scl", "gdal_calc_mask", "gdal_calc_ndvi", "gdal_rasterize", "numpy_zonal"]
g = sum(best[s] for s in steps if s in best)
gc = sum(cpu[s] for s in steps if s in cpu)
print("\n== fused chain cloudmask+ndvi+zonal, %dx%d (%.1f Mpx), best wall / its CPU time ==" % (size, size, size * size / 1e6))
print("%-28s %8.2f s %8.2f s cpu" % ("mem-infer (fused, cpu)", best["fused"], cpu["fused"]))
for s in steps:
    print("%-28s %8.2f s %8.2f s cpu" % ("  " + s, best[s], cpu[s]))
print("%-28s %8.2f s %8.2f s cpu" % ("GDAL chain total", g, gc))
print("%-28s %8.2f x %8.2f x cpu   (target >= 5)" % ("speedup", g / best["fused"], gc / cpu["fused"]))
if "fused_nomask" in best:
    print("%-28s %8.2f s %8.2f s cpu" % ("mem-infer, mask not written", best["fused_nomask"], cpu["fused_nomask"]))
    print("%-28s %8.2f x %8.2f x cpu" % ("speedup, mask not written", g / best["fused_nomask"], gc / cpu["fused_nomask"]))
EOF
fi

# --- the classifier on the CPU ------------------------------------------------------
if has classify; then
	rows=$((crows < size ? crows : size))
	echo "classify: a model trained on the fields' crop classes, over ${size}x$rows pixels"
	gdal_translate -q -of VRT -srcwin 0 0 "$size" "$rows" red.tif sub_red.vrt
	gdal_translate -q -of VRT -srcwin 0 0 "$size" "$rows" nir.tif sub_nir.vrt
	gdal_translate -q -of VRT -srcwin 0 0 "$(((size + 1) / 2))" "$(((rows + 1) / 2))" scl.tif sub_scl.vrt
	sed -e "s#$work/red.tif#$work/sub_red.vrt#; s#$work/nir.tif#$work/sub_nir.vrt#; s#$work/scl.tif#$work/sub_scl.vrt#" item.json > sub.json
	[ -f model.h5 ] || timed train "$mem_infer" --train model.h5 --labels fields.gpkg --label-field crop \
		--hidden 16 --epochs 3 --max-samples 50000 < sub.json
	rm -rf cls
	timed classify "$mem_infer" --device cpu -s classify:model=model.h5 --workdir cls < sub.json > cls.json
	awk -v n="$((size * rows))" '$1 == "classify" { printf "classify_cpu (mem-infer, with decode and write) %.2f Mpx/s wall, %.2f Mpx per CPU second\n", n / $2 / 1e6, n / $3 / 1e6 }' times
fi

# --- each kernel against the memory-bound limit ----------------------------------------
if has kernels; then
	[ -x "$kern_bench" ] || die "$kern_bench not found: make bench/infer/kern-bench"
	echo
	"$kern_bench" "$size" 2048
fi

# --- the GPU: the fused chain with --device cuda against --device cpu ---------------------
if has gpu; then
	rm -rf gcpu gcuda
	timed chain_cpu "$mem_infer" --device cpu -s cloudmask -s ndvi:mask=cloudmask -s "$zonal" \
		--workdir gcpu < item.json > gcpu.json
	timed chain_cuda "$mem_infer" --device cuda -s cloudmask -s ndvi:mask=cloudmask -s "$zonal" \
		--workdir gcuda < item.json > gcuda.json
	"$py" - gcpu.json gcuda.json <<'EOF' || { echo "result: FAIL (cuda and cpu differ)"; exit 1; }
import json, sys
import numpy as np
from osgeo import gdal
a, b = (json.loads(open(f).readline()) for f in sys.argv[1:3])
for k in ("cloudmask", "ndvi"):
    x = gdal.Open(a["assets"][k]["href"]).ReadAsArray()
    y = gdal.Open(b["assets"][k]["href"]).ReadAsArray()
    same = np.array_equal(np.isnan(x), np.isnan(y)) and np.array_equal(x[~np.isnan(x)], y[~np.isnan(y)])
    print("check: cuda vs cpu %s: %s" % (k, "identical" if same else "DIFFER"))
    if not same:
        sys.exit(1)
EOF
	awk '$1 == "chain_cpu" { c = $2 } $1 == "chain_cuda" { g = $2 } END { printf "chain cpu %.2f s, cuda %.2f s: %.2fx (decode and DEFLATE stay on the CPU)\n", c, g, c / g }' times
fi
echo "result: PASS"
