#!/usr/bin/env bash
# run.sh - NDVI benchmark: mem-infer against gdal_calc.py and against the
# memory-bound limit (bench/ndvi/ndvi-loop: decode, then a plain OpenMP loop).
#
# Usage: bench/ndvi/run.sh [BUILDDIR] [SIZE]
#   BUILDDIR  the build tree holding src/cmd/mem-infer and bench/ndvi/ndvi-loop
#             (default: the repository root, for an in-tree build)
#   SIZE      the side of the square test rasters in pixels (default 10980, a
#             Sentinel-2 10 m tile; 2048 makes a quick run)
#
# Environment:
#   MEM_BENCH_DIR     work dir holding the generated inputs, which are reused
#                     when present (default /tmp/mem-bench-ndvi-SIZE)
#   MEM_BENCH_ROUNDS  how many times to alternate the tools (default 2)
#   NDVI_LOOP         the ndvi-loop program to use (default BUILDDIR/bench/ndvi/ndvi-loop)
#   MEM_INFER         the mem-infer program to use (default BUILDDIR/src/cmd/mem-infer)
#
# The inputs are a deterministic (fixed seed) pair of single-band UInt16
# DEFLATE COGs, red and nir, in EPSG:32632 at 10 m, with a nodata (0) swath
# edge, and a one-line STAC item describing them.  The tools run alternately
# in one invocation (timings on shared machines move 20-50 % between runs, so
# compare only within one run); the best wall time of each is reported with
# its max RSS.  mem-infer's output is then checked against gdal_calc.py's on
# sample windows: max |diff| over valid pixels < 1e-6 and identical NaN
# masks.  Exits non-zero when a tool fails or the outputs differ.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=$(cd "${1:-$srcdir}" && pwd)
size=${2:-10980}
rounds=${MEM_BENCH_ROUNDS:-2}
work=${MEM_BENCH_DIR:-/tmp/mem-bench-ndvi-$size}
py=/usr/bin/python3	# the system Python: the one with osgeo.gdal
mem_infer=${MEM_INFER:-$builddir/src/cmd/mem-infer}
ndvi_loop=${NDVI_LOOP:-$builddir/bench/ndvi/ndvi-loop}

die() { echo "run.sh: $*" >&2; exit 1; }

case $size in
''|*[!0-9]*) die "SIZE must be a positive integer, not '$size'" ;;
esac
[ "$size" -ge 64 ] || die "SIZE must be at least 64"
case $rounds in
''|*[!0-9]*|0) die "MEM_BENCH_ROUNDS must be a positive integer" ;;
esac

# --- what the benchmark needs ------------------------------------------------
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
"$py" -c 'from osgeo import gdal; import numpy' 2>/dev/null ||
	die "$py cannot import osgeo.gdal and numpy (apt-get install python3-gdal python3-numpy)"
gdal_calc=$(command -v gdal_calc.py || true)
[ -n "$gdal_calc" ] || die "gdal_calc.py not found (apt-get install gdal-bin python3-gdal)"
[ -x "$mem_infer" ] || die "$mem_infer not found: build the project first (make)"
[ -x "$ndvi_loop" ] || die "$ndvi_loop not found: build it with 'make bench/ndvi/ndvi-loop'"

mkdir -p "$work"
work=$(cd "$work" && pwd)	# the item's hrefs must be absolute
red=$work/red.tif
nir=$work/nir.tif
item=$work/item.json

# --- inputs: generated once, then reused ---------------------------------------
gen_version="ndvi-bench-gen v2 size=$size seed=20240715"
if [ -f "$red" ] && [ -f "$nir" ] && [ "$(cat "$work/inputs.ok" 2>/dev/null)" = "$gen_version" ]; then
	echo "inputs: reusing $red, $nir"
else
	echo "inputs: generating a ${size}x${size} UInt16 red/nir pair in $work ..."
	rm -f "$work/inputs.ok" "$red" "$nir"
	t0=$(date +%s.%N)
	"$py" - "$work" "$size" <<'EOF'
import os, sys
import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
work, size = sys.argv[1], int(sys.argv[2])
SEED = 20240715
ORIGIN_X, ORIGIN_Y, RES = 600000.0, 5100000.0, 10.0   # UTM 32N, northern Italy
CHUNK = 512                                           # rows generated at a time

srs = osr.SpatialReference()
srs.ImportFromEPSG(32632)
gt = (ORIGIN_X, RES, 0.0, ORIGIN_Y, 0.0, -RES)

rng = np.random.default_rng(SEED)
# Smooth fields: sums of oblique cosines with wavelengths of 0.6 to 12 km,
# in map units so that the texture does not depend on SIZE.
def waves(k, lo, hi):
    ang = rng.uniform(0, np.pi, k)
    lam = np.exp(rng.uniform(np.log(lo), np.log(hi), k)) / RES   # in pixels
    ph = rng.uniform(0, 2 * np.pi, k)
    amp = rng.uniform(0.5, 1.0, k)
    return [(np.cos(a) * 2 * np.pi / l, np.sin(a) * 2 * np.pi / l, p, m)
            for a, l, p, m in zip(ang, lam, ph, amp)]
veg_waves = waves(7, 600.0, 12000.0)
soil_waves = waves(4, 1500.0, 8000.0)
water_waves = waves(3, 3000.0, 15000.0)
# Field parcels: a grid of 40-pixel (400 m) parcels, each with its own crop
# vigour, sheared so that parcel edges are not axis-aligned.
PARCEL = 40
npar = size // PARCEL + 8
parcel_vigour = rng.uniform(-1.0, 1.0, (npar, npar)).astype(np.float32)

def field(ws, xx, yy):
    f = np.zeros(np.broadcast(xx, yy).shape, np.float32)
    for kx, ky, ph, amp in ws:
        f += np.float32(amp) * np.cos(kx * xx + ky * yy + ph).astype(np.float32)
    return f / np.float32(sum(w[3] for w in ws))

def make_tmp(name):
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(os.path.join(work, name), size, size, 1, gdal.GDT_UInt16,
                    ["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512", "SPARSE_OK=YES"])
    ds.SetGeoTransform(gt)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).SetNoDataValue(0)
    return ds

tmp_red, tmp_nir = make_tmp("red.tmp.tif"), make_tmp("nir.tmp.tif")
xs = np.arange(size, dtype=np.float64)[None, :]
for c, y0 in enumerate(range(0, size, CHUNK)):
    rows = min(CHUNK, size - y0)
    ys = np.arange(y0, y0 + rows, dtype=np.float64)[:, None]
    crng = np.random.default_rng([SEED, c])        # per-chunk noise: deterministic
    veg = field(veg_waves, xs, ys)
    soil = field(soil_waves, xs, ys)
    water = field(water_waves, xs, ys)
    # parcels, sheared by a few pixels per row
    px = ((xs + 0.15 * ys) // PARCEL).astype(np.int64) % npar
    py = ((ys - 0.10 * xs) // PARCEL).astype(np.int64) % npar
    vig = parcel_vigour[py, px]
    # vegetation fraction 0..1
    f = 1.0 / (1.0 + np.exp(-(2.2 * veg + 1.4 * vig)))
    f = f.astype(np.float32)
    brightness = np.float32(1.0) + np.float32(0.25) * soil
    red = (350.0 + 1500.0 * (1.0 - f)) * brightness
    nir = (1400.0 + 3600.0 * f) * brightness
    # lakes and rivers: low nir, low red
    wet = (water + np.float32(0.6) * soil - np.float32(0.3) * veg) > np.float32(0.75)
    red = np.where(wet, 250.0 + 80.0 * soil, red)
    nir = np.where(wet, 120.0 + 60.0 * soil, nir)
    red = red + crng.normal(0.0, 60.0, red.shape).astype(np.float32)
    nir = nir + crng.normal(0.0, 110.0, nir.shape).astype(np.float32)
    red = np.clip(np.rint(red), 1, 10000).astype(np.uint16)
    nir = np.clip(np.rint(nir), 1, 10000).astype(np.uint16)
    # a few saturated-then-masked (0) pixels in one band only
    red[crng.random(red.shape) < 2e-5] = 0
    nir[crng.random(nir.shape) < 2e-5] = 0
    # the nodata swath edge: an oblique strip along the western side
    edge = (0.06 + 0.05 * ys / size) * size
    out = np.broadcast_to(xs < edge, red.shape)
    red[out] = 0
    nir[out] = 0
    tmp_red.GetRasterBand(1).WriteArray(red, 0, y0)
    tmp_nir.GetRasterBand(1).WriteArray(nir, 0, y0)
tmp_red = tmp_nir = None

gdal.SetConfigOption("GDAL_NUM_THREADS", "ALL_CPUS")
for name in ("red", "nir"):
    src = os.path.join(work, name + ".tmp.tif")
    dst = os.path.join(work, name + ".tif")
    gdal.Translate(dst + ".part", src, format="COG",
                   creationOptions=["COMPRESS=DEFLATE", "BLOCKSIZE=512", "NUM_THREADS=ALL_CPUS"])
    os.rename(dst + ".part", dst)
    os.remove(src)
EOF
	echo "$gen_version" >"$work/inputs.ok"
	echo "inputs: generated in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
fi

# The STAC item (one line), rewritten each run: it is cheap and its hrefs
# must name this work dir.
"$py" - "$red" "$nir" "$item" <<'EOF'
import json, sys
from osgeo import gdal, osr

gdal.UseExceptions()
red, nir, out = sys.argv[1:4]
ds = gdal.Open(red)
w, h = ds.RasterXSize, ds.RasterYSize
gt = ds.GetGeoTransform()
srs = osr.SpatialReference()
srs.ImportFromEPSG(32632)
wgs = osr.SpatialReference()
wgs.ImportFromEPSG(4326)
for s in (srs, wgs):
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(srs, wgs)
# the footprint: points along the edges, so that the bbox holds the curved
# lon/lat outline of the UTM square
ring = []
steps = 16
for i in range(steps):
    ring.append((i / steps, 0.0))
for i in range(steps):
    ring.append((1.0, i / steps))
for i in range(steps):
    ring.append((1.0 - i / steps, 1.0))
for i in range(steps):
    ring.append((0.0, 1.0 - i / steps))
pts = []
for fx, fy in ring:
    x = gt[0] + fx * w * gt[1]
    y = gt[3] + fy * h * gt[5]
    lon, lat, _ = ct.TransformPoint(x, y)
    pts.append([round(lon, 7), round(lat, 7)])
pts.append(pts[0])
lons = [p[0] for p in pts]
lats = [p[1] for p in pts]

def asset(href, name, common):
    return {
        "href": href,
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "title": f"{common} ({name})",
        "roles": ["data"],
        "eo:bands": [{"name": name, "common_name": common}],
        "raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": 0, "data_type": "uint16"}],
        "proj:shape": [h, w],
        "proj:transform": [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]],
    }

item = {
    "type": "Feature",
    "stac_version": "1.0.0",
    "stac_extensions": [
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    ],
    "id": "bench-ndvi",
    "geometry": {"type": "Polygon", "coordinates": [pts]},
    "bbox": [min(lons), min(lats), max(lons), max(lats)],
    "properties": {
        "datetime": "2024-07-15T10:00:00Z",
        "proj:epsg": 32632,
        "proj:shape": [h, w],
        "proj:transform": [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]],
    },
    "links": [],
    "assets": {"red": asset(red, "B04", "red"), "nir": asset(nir, "B08", "nir")},
}
with open(out, "w") as f:
    f.write(json.dumps(item, separators=(",", ":")) + "\n")
EOF

# --- timing ----------------------------------------------------------------------
# timed NAME LOG -- CMD...: runs CMD under /usr/bin/time -v (stdin/stdout as
# redirected by the caller), appends "NAME wall_s rss_kb" to $work/times and
# shows it on the script's own stdout (fd 3, as the caller redirects 1).
exec 3>&1
: >"$work/times"
failed=0
timed() {
	local name=$1 log=$2 t0 t1 rc=0
	shift 3
	t0=$(date +%s.%N)
	/usr/bin/time -v -o "$log.time" "$@" 2>"$log.err" || rc=$?
	t1=$(date +%s.%N)
	if [ $rc -ne 0 ]; then
		echo "run.sh: $name failed (exit $rc); its stderr ($log.err):" >&2
		tail -n 20 "$log.err" >&2
		failed=1
		return 0
	fi
	local rss
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$log.time")
	awk -v n="$name" -v a="$t0" -v b="$t1" -v m="$rss" -v f="$work/times" 'BEGIN {
		printf "%s %.3f %d\n", n, b - a, m >> f
		printf "  %-10s %8.2f s  %7.0f MB\n", n, b - a, m / 1024 }' >&3
}

wdir=$work/infer-w
calc_out=$work/calc.tif
echo "machine: $(nproc) CPUs, $(uname -m); OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}; GDAL_NUM_THREADS=${GDAL_NUM_THREADS:-unset}"
echo "timing ${size}x${size}, $rounds alternating rounds (wall, max RSS):"
: >"$work/loop.txt"
for r in $(seq 1 "$rounds"); do
	rm -rf "$wdir" "$work/infer-out.json" "$work/infer-path"
	timed mem-infer "$work/infer" -- "$mem_infer" -s ndvi --workdir "$wdir" --co COMPRESS=DEFLATE \
		<"$item" >"$work/infer-out.json"
	# --hideNoData: GDAL 3.6's gdal_calc.py blends the output nodata in as
	# result*(ndv==0) + outNDV*ndv, which with --NoDataValue=nan makes every
	# pixel NaN; the expression handles the inputs' nodata 0 itself.
	timed gdal_calc "$work/calc" -- "$gdal_calc" -A "$red" -B "$nir" --hideNoData \
		--calc="numpy.where((A==0)|(B==0)|((A+B)==0), numpy.nan, (B.astype(numpy.float64)-A)/(B.astype(numpy.float64)+A))" \
		--type=Float32 --NoDataValue=nan --co COMPRESS=DEFLATE --co TILED=YES \
		--outfile="$calc_out" --overwrite --quiet
	timed ndvi-loop "$work/loop" -- "$ndvi_loop" "$red" "$nir" >"$work/loop.out"
	cat "$work/loop.out" >>"$work/loop.txt"
done
[ $failed -eq 0 ] || die "a tool failed; see above (logs in $work)"

# --- correctness: mem-infer against gdal_calc.py ------------------------------------
check_rc=0
"$py" - "$work/infer-out.json" "$wdir" "$calc_out" "$red" <<'EOF' || check_rc=$?
import json, os, sys
import numpy as np
from osgeo import gdal

gdal.UseExceptions()
out_json, wdir, calc_path, red_path = sys.argv[1:5]

# find the NDVI raster in mem-infer's output: one item, a FeatureCollection,
# or one item per line
text = open(out_json).read()
docs = []
try:
    docs = [json.loads(text)]
except ValueError:
    docs = [json.loads(l) for l in text.splitlines() if l.strip()]
items = []
for d in docs:
    items.extend(d.get("features", []) if d.get("type") == "FeatureCollection" else [d])
cands = []
for it in items:
    for key, a in (it.get("assets") or {}).items():
        href = a.get("href", "")
        if href.startswith("file://"):
            href = href[7:]
        if not (href.lower().endswith((".tif", ".tiff")) or "tiff" in a.get("type", "")):
            continue
        if not os.path.isabs(href):
            for base in (os.path.dirname(out_json), wdir, os.getcwd()):
                if os.path.exists(os.path.join(base, href)):
                    href = os.path.join(base, href)
                    break
        cands.append((0 if "ndvi" in key.lower() else 1, key, href))
if not cands:
    print("check: FAIL: no GeoTIFF asset in mem-infer's output item")
    sys.exit(1)
cands.sort()
_, key, infer_path = cands[0]
print(f"check: mem-infer output asset '{key}': {infer_path}")
with open(os.path.join(os.path.dirname(out_json), "infer-path"), "w") as f:
    f.write(infer_path + "\n")

di, dc, dr = gdal.Open(infer_path), gdal.Open(calc_path), gdal.Open(red_path)
bi, bc = di.GetRasterBand(1), dc.GetRasterBand(1)
ok = True
def fail(msg):
    global ok
    ok = False
    print("check: FAIL: " + msg)

w, h = dr.RasterXSize, dr.RasterYSize
if (di.RasterXSize, di.RasterYSize) != (w, h):
    fail(f"size {di.RasterXSize}x{di.RasterYSize}, input {w}x{h}")
if bi.DataType != gdal.GDT_Float32:
    fail(f"data type {gdal.GetDataTypeName(bi.DataType)}, want Float32")
if any(abs(a - b) > 1e-6 for a, b in zip(di.GetGeoTransform(), dr.GetGeoTransform())):
    fail(f"geotransform {di.GetGeoTransform()} != input {dr.GetGeoTransform()}")
if not di.GetSpatialRef() or not di.GetSpatialRef().IsSame(dr.GetSpatialRef()):
    fail("CRS differs from the input's")
comp = di.GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE")
if comp != "DEFLATE":
    fail(f"compression {comp}, want DEFLATE")
bx, by = bi.GetBlockSize()
pred = di.GetMetadataItem("PREDICTOR", "IMAGE_STRUCTURE") or "1"
print(f"check: output {di.RasterXSize}x{di.RasterYSize} {gdal.GetDataTypeName(bi.DataType)}, "
      f"blocks {bx}x{by}, {comp} predictor {pred}, nodata {bi.GetNoDataValue()}, "
      f"{os.path.getsize(infer_path) / 1e6:.1f} MB (gdal_calc: {os.path.getsize(calc_path) / 1e6:.1f} MB)")
if ok:
    # sample windows: the north-west corner (nodata edge), the centre, the
    # south-east corner (partial blocks), a strip across the whole width
    s = min(1024, w, h)
    wins = [(0, 0, s, s), ((w - s) // 2, (h - s) // 2, s, s), (w - s, h - s, s, s),
            (0, h // 3, w, min(64, h))]
    total = valid = 0
    maxdiff = 0.0
    for x, y, ww, hh in wins:
        a = bi.ReadAsArray(x, y, ww, hh).astype(np.float64)
        b = bc.ReadAsArray(x, y, ww, hh).astype(np.float64)
        na, nb = np.isnan(a), np.isnan(b)
        if not np.array_equal(na, nb):
            k = int(np.count_nonzero(na != nb))
            yy, xx = np.argwhere(na != nb)[0]
            fail(f"NaN masks differ at {k} pixels in window {x},{y} {ww}x{hh} "
                 f"(first at {x + xx},{y + yy}: mem-infer {a[yy, xx]}, gdal_calc {b[yy, xx]})")
        m = ~(na | nb)
        if m.any():
            d = np.abs(a[m] - b[m])
            if d.max() > maxdiff:
                maxdiff = float(d.max())
        total += a.size
        valid += int(m.sum())
    print(f"check: {len(wins)} windows, {total} pixels, {valid} valid, {total - valid} NaN, "
          f"max |diff| {maxdiff:.3g}")
    if not maxdiff < 1e-6:
        fail(f"max |diff| {maxdiff} >= 1e-6")
print("check: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
EOF

# --- report -------------------------------------------------------------------------
"$py" - "$work/times" "$work/loop.txt" "$size" <<'EOF'
import sys
times, loop_txt, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = {}
for line in open(times):
    name, wall, rss = line.split()
    wall, rss = float(wall), int(rss)
    b = best.setdefault(name, {"wall": wall, "rss": rss, "walls": []})
    b["walls"].append(wall)
    b["wall"] = min(b["wall"], wall)
    b["rss"] = max(b["rss"], rss)
loop = {}
for line in open(loop_txt):
    k, v = line.split(maxsplit=1)
    if k in ("decode_s", "loop_s"):
        loop[k] = min(loop.get(k, float("inf")), float(v))
    elif k == "loop_GBps":
        loop[k] = max(loop.get(k, 0.0), float(v))
mi, gc = best["mem-infer"]["wall"], best["gdal_calc"]["wall"]
dec, lp = loop["decode_s"], loop["loop_s"]
print()
print(f"== NDVI benchmark, {size}x{size} UInt16 DEFLATE COG pair "
      f"({size * size / 1e6:.1f} Mpixel), best of {len(best['mem-infer']['walls'])} ==")
for name in ("mem-infer", "gdal_calc", "ndvi-loop"):
    b = best[name]
    runs = ", ".join(f"{w:.2f}" for w in b["walls"])
    print(f"{name + '_s':<16} {b['wall']:8.3f}   (runs: {runs})")
    print(f"{name + '_rss_MB':<16} {b['rss'] / 1024:8.0f}")
print(f"{'decode_s':<16} {dec:8.3f}   (ndvi-loop: GDALRasterIO of both bands to float32)")
print(f"{'loop_s':<16} {lp:8.4f}   (ndvi-loop: best pass of the plain OpenMP loop)")
print(f"{'loop_GBps':<16} {loop['loop_GBps']:8.1f}")
print(f"{'speedup gdal_calc/mem-infer':<36} {gc / mi:8.2f}")
print(f"{'mem-infer/(decode+loop)':<36} {mi / (dec + lp):8.2f}")
print(f"{'mem-infer/loop':<36} {mi / lp:8.1f}")
EOF

if [ $check_rc -ne 0 ]; then
	echo "result: FAIL (mem-infer's output differs from gdal_calc.py's)"
	exit 1
fi
echo "result: PASS"
