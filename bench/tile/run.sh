#!/usr/bin/env bash
# run.sh - tiling benchmark (issue 4): mem-tile against gdalwarp at one
# WebMercator zoom, and against gdal2tiles.py for a zoom range (a pyramid).
#
# Usage: bench/tile/run.sh [BUILDDIR] [SIZE]
#   BUILDDIR  the build tree holding src/cmd/mem-tile (default: the
#             repository root, for an in-tree build)
#   SIZE      the side of the square test raster in pixels (default 10980, a
#             Sentinel-2 10 m tile; 2048 makes a quick run)
#
# Environment:
#   MEM_BENCH_DIR     work dir holding the generated input, which is reused
#                     when present (default /tmp/mem-bench-tile-SIZE)
#   MEM_BENCH_ROUNDS  how many times to alternate the tools (default 2)
#   MEM_BENCH_MEM     mem-tile's --mem budget, e.g. 256M or 1G (default 256M);
#                     'none' runs mem-tile without --mem and checks no budget
#   MEM_BENCH_SPECKLE the fraction of pixels inside the swath set to nodata at
#                     random (default 0).  Sentinel-2 L2A reflectance has no
#                     such holes (29RKH's B04 in ../shared/realdata has not one
#                     0 inside the swath: masked pixels are SCL classes, not
#                     nodata); 2e-5 gives the speckled input of earlier runs,
#                     where nearly every tile's source window holds a hole
#                     and so takes GDAL's masked warp kernel, as gdalwarp does
#   MEM_BENCH_ZOOM    the single zoom Z of part 1 (default 13)
#   MEM_BENCH_PYRAMID the zoom range of part 2 (default 8-13)
#   MEM_TILE          the mem-tile program to use (default BUILDDIR/src/cmd/mem-tile)
#
# The input is a deterministic (fixed seed) single-band UInt16 DEFLATE COG
# (red) in EPSG:32632 at 10 m with a nodata (0) swath edge, and a one-line
# STAC item describing it.  In one invocation, each round runs, with fresh
# output dirs (mem-tile skips finished tiles, so a rerun into the same dir
# would measure nothing):
#   1. mem-tile -g webmercator:Z --bands red -j NCPU --mem MEM
#      vs gdalwarp -t_srs EPSG:3857 -tr R R -tap -r bilinear -multi
#         -wo NUM_THREADS=ALL_CPUS -co TILED=YES -co COMPRESS=DEFLATE
#      with R = 2*20037508.342789244/(256*2^Z), the pixel of zoom Z;
#   2. mem-tile -g webmercator:ZMIN-ZMAX -r average (the same options, and
#      the resampling gdal2tiles is given)
#      vs gdal2tiles.py --xyz -z ZMIN-ZMAX --processes=NCPU -r average -w none
#      (-w none: no HTML viewers, which mem-tile does not make either; its
#      input is a VRT scaling red.tif to 8 bits, as it takes no other)
# The tools of a pair alternate, and which goes first swaps every round
# (timings on shared machines move 20-50 % between runs, so compare only
# within one run); the best wall time of each is reported with its max RSS
# (for gdal2tiles.py, the largest of its processes, as wait4 reports it),
# and the ratios other/mem-tile (> 1: mem-tile is faster).  The peak RSS of
# every mem-tile run is checked against MEM_BENCH_MEM.  Then up to 12 of
# mem-tile's zoom-Z tiles (those crossing the nodata edge first) are checked
# against gdalwarp run on each tile's own extent (-te TILE -ts 256 256, the
# same target grid and resampling): identical nodata masks and max |diff|
# <= 1 DN over the pixels valid in both.  For information the same tiles are
# also compared with the same windows of the whole-scene gdalwarp output
# (-tap puts both on the WebMercatorQuad pixel grid): GDAL widens the
# bilinear kernel when downsampling by a scale it derives per warp chunk, so
# a whole-scene and a tile-by-tile warp can differ by more than rounding.
# Exits non-zero when a tool fails or writes nothing, when a mem-tile run
# goes over its memory budget, or when the outputs differ.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=$(cd "${1:-$srcdir}" && pwd)
size=${2:-10980}
rounds=${MEM_BENCH_ROUNDS:-2}
speckle=${MEM_BENCH_SPECKLE:-0}
work=${MEM_BENCH_DIR:-/tmp/mem-bench-tile-$size${MEM_BENCH_SPECKLE:+-speckle$speckle}}
membudget=${MEM_BENCH_MEM:-256M}
zoom=${MEM_BENCH_ZOOM:-13}
pyramid=${MEM_BENCH_PYRAMID:-8-13}
py=/usr/bin/python3	# the system Python: the one with osgeo.gdal
mem_tile=${MEM_TILE:-$builddir/src/cmd/mem-tile}
ncpu=$(nproc)

die() { echo "run.sh: $*" >&2; exit 1; }

case $size in
''|*[!0-9]*) die "SIZE must be a positive integer, not '$size'" ;;
esac
[ "$size" -ge 64 ] || die "SIZE must be at least 64"
case $rounds in
''|*[!0-9]*|0) die "MEM_BENCH_ROUNDS must be a positive integer" ;;
esac
case $zoom in
''|*[!0-9]*) die "MEM_BENCH_ZOOM must be a zoom level, not '$zoom'" ;;
esac
case $pyramid in
[0-9]*-[0-9]*) ;;
*) die "MEM_BENCH_PYRAMID must be a range ZMIN-ZMAX, not '$pyramid'" ;;
esac
# the budget in bytes (K, M, G, T: powers of 1024, as mem-tile reads them)
budget_bytes=0
if [ "$membudget" != none ]; then
	budget_bytes=$(echo "$membudget" | awk '
		/^[0-9]+(\.[0-9]+)?[KkMmGgTt]?[Bb]?$/ {
			n = $0 + 0; u = toupper(substr($0, match($0, /[KkMmGgTt]/), 1))
			if (!match($0, /[KkMmGgTt]/)) u = ""
			m = (u == "K") ? 1024 : (u == "M") ? 1048576 : (u == "G") ? 1073741824 : (u == "T") ? 1099511627776 : 1
			printf "%.0f\n", n * m; exit }
		{ print "bad"; exit }')
	[ "$budget_bytes" != bad ] || die "MEM_BENCH_MEM must be a size such as 256M or 1G, or none, not '$membudget'"
	mem_opt=(--mem "$membudget")
else
	mem_opt=()
fi

# --- what the benchmark needs ------------------------------------------------
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
"$py" -c 'from osgeo import gdal; import numpy' 2>/dev/null ||
	die "$py cannot import osgeo.gdal and numpy (apt-get install python3-gdal python3-numpy)"
gdalwarp=$(command -v gdalwarp || true)
[ -n "$gdalwarp" ] || die "gdalwarp not found (apt-get install gdal-bin)"
gdal2tiles=$(command -v gdal2tiles.py || command -v gdal2tiles || true)
[ -n "$gdal2tiles" ] || die "gdal2tiles.py not found (apt-get install gdal-bin python3-gdal)"
[ -x "$mem_tile" ] || die "$mem_tile not found: build the project first (make)"

mkdir -p "$work"
work=$(cd "$work" && pwd)	# the item's hrefs must be absolute
red=$work/red.tif
red8=$work/red8.vrt	# gdal2tiles.py takes 8-bit input only
item=$work/item.json

# --- input: generated once, then reused -----------------------------------------
# The red band of bench/ndvi's generator (same fields, parcels, water, noise
# and swath edge; its own noise draws, so not bit-identical to bench/ndvi's).
gen_version="tile-bench-gen v2 size=$size seed=20240715 speckle=$speckle"
if [ -f "$red" ] && [ "$(cat "$work/inputs.ok" 2>/dev/null)" = "$gen_version" ]; then
	echo "input: reusing $red"
else
	echo "input: generating a ${size}x${size} UInt16 red band in $work ..."
	rm -f "$work/inputs.ok" "$red"
	t0=$(date +%s.%N)
	"$py" - "$work" "$size" "$speckle" <<'EOF'
import os, sys
import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
work, size, speckle = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
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

tmp_path = os.path.join(work, "red.tmp.tif")
ds = gdal.GetDriverByName("GTiff").Create(
    tmp_path, size, size, 1, gdal.GDT_UInt16,
    ["TILED=YES", "BLOCKXSIZE=512", "BLOCKYSIZE=512", "SPARSE_OK=YES"])
ds.SetGeoTransform(gt)
ds.SetProjection(srs.ExportToWkt())
band = ds.GetRasterBand(1)
band.SetNoDataValue(0)
xs = np.arange(size, dtype=np.float64)[None, :]
for c, y0 in enumerate(range(0, size, CHUNK)):
    rows = min(CHUNK, size - y0)
    ys = np.arange(y0, y0 + rows, dtype=np.float64)[:, None]
    crng = np.random.default_rng([SEED, c])        # per-chunk noise: deterministic
    veg = field(veg_waves, xs, ys)
    soil = field(soil_waves, xs, ys)
    water = field(water_waves, xs, ys)
    px = ((xs + 0.15 * ys) // PARCEL).astype(np.int64) % npar
    py = ((ys - 0.10 * xs) // PARCEL).astype(np.int64) % npar
    vig = parcel_vigour[py, px]
    f = (1.0 / (1.0 + np.exp(-(2.2 * veg + 1.4 * vig)))).astype(np.float32)
    brightness = np.float32(1.0) + np.float32(0.25) * soil
    red = (350.0 + 1500.0 * (1.0 - f)) * brightness
    wet = (water + np.float32(0.6) * soil - np.float32(0.3) * veg) > np.float32(0.75)
    red = np.where(wet, 250.0 + 80.0 * soil, red)
    red = red + crng.normal(0.0, 60.0, red.shape).astype(np.float32)
    red = np.clip(np.rint(red), 1, 10000).astype(np.uint16)
    if speckle > 0:
        red[crng.random(red.shape) < speckle] = 0   # scattered holes (MEM_BENCH_SPECKLE)
    # the nodata swath edge: an oblique strip along the western side
    edge = (0.06 + 0.05 * ys / size) * size
    red[np.broadcast_to(xs < edge, red.shape)] = 0
    band.WriteArray(red, 0, y0)
band = ds = None

gdal.SetConfigOption("GDAL_NUM_THREADS", "ALL_CPUS")
dst = os.path.join(work, "red.tif")
gdal.Translate(dst + ".part", tmp_path, format="COG",
               creationOptions=["COMPRESS=DEFLATE", "BLOCKSIZE=512", "NUM_THREADS=ALL_CPUS"])
os.rename(dst + ".part", dst)
os.remove(tmp_path)
EOF
	echo "$gen_version" >"$work/inputs.ok"
	echo "input: generated in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
fi

# The STAC item (one line), rewritten each run: it is cheap and its href
# must name this work dir.
"$py" - "$red" "$item" <<'EOF'
import json, sys
from osgeo import gdal, osr

gdal.UseExceptions()
red, out = sys.argv[1:3]
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
steps = 16
ring = ([(i / steps, 0.0) for i in range(steps)] + [(1.0, i / steps) for i in range(steps)] +
        [(1.0 - i / steps, 1.0) for i in range(steps)] + [(0.0, 1.0 - i / steps) for i in range(steps)])
pts = []
for fx, fy in ring:
    lon, lat, _ = ct.TransformPoint(gt[0] + fx * w * gt[1], gt[3] + fy * h * gt[5])
    pts.append([round(lon, 7), round(lat, 7)])
pts.append(pts[0])
lons = [p[0] for p in pts]
lats = [p[1] for p in pts]
transform = [gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]]
item = {
    "type": "Feature",
    "stac_version": "1.0.0",
    "stac_extensions": [
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    ],
    "id": "bench-tile",
    "geometry": {"type": "Polygon", "coordinates": [pts]},
    "bbox": [min(lons), min(lats), max(lons), max(lats)],
    "properties": {
        "datetime": "2024-07-15T10:00:00Z",
        "proj:epsg": 32632,
        "proj:shape": [h, w],
        "proj:transform": transform,
    },
    "links": [],
    "assets": {
        "red": {
            "href": red,
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": "red (B04)",
            "roles": ["data"],
            "eo:bands": [{"name": "B04", "common_name": "red"}],
            "raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": 0, "data_type": "uint16"}],
            "proj:shape": [h, w],
            "proj:transform": transform,
        }
    },
}
with open(out, "w") as f:
    f.write(json.dumps(item, separators=(",", ":")) + "\n")
EOF

# gdal2tiles.py refuses UInt16 input ("Please convert this file to 8-bit"),
# so it reads red.tif through a VRT that scales 1-4000 to 1-255 on the fly
# (nodata 0 stays 0): it still decodes the same COG, inside its timing.
"$py" - "$red" "$red8" <<'EOF'
import sys
from osgeo import gdal
gdal.UseExceptions()
gdal.Translate(sys.argv[2], sys.argv[1], format="VRT", outputType=gdal.GDT_Byte,
               scaleParams=[[1, 4000, 1, 255]], noData=0)
EOF

# --- timing ----------------------------------------------------------------------
# timed NAME LOG -- CMD...: runs CMD under /usr/bin/time (stdin/stdout as
# redirected by the caller), appends "NAME wall_s rss_kb" (or "NAME FAILED
# rc") to $work/times and shows it on the script's own stdout (fd 3, as the
# caller redirects 1).
exec 3>&1
: >"$work/times"
failed_tools=
timed() {
	local name=$1 log=$2 t0 t1 rc=0
	shift 3
	t0=$(date +%s.%N)
	/usr/bin/time -f '%M' -o "$log.time" "$@" 2>"$log.err" || rc=$?
	t1=$(date +%s.%N)
	if [ $rc -ne 0 ]; then
		echo "run.sh: $name failed (exit $rc): $*" >&2
		echo "run.sh: the end of its stderr ($log.err):" >&2
		tail -n 10 "$log.err" | sed 's/^/    /' >&2
		echo "$name FAILED $rc" >>"$work/times"
		printf '  %-16s   FAILED (exit %d)\n' "$name" "$rc" >&3
		case " $failed_tools " in *" $name "*) ;; *) failed_tools="$failed_tools $name" ;; esac
		return 0
	fi
	local rss
	rss=$(tail -n 1 "$log.time")
	awk -v n="$name" -v a="$t0" -v b="$t1" -v m="$rss" -v f="$work/times" 'BEGIN {
		printf "%s %.3f %d\n", n, b - a, m >> f
		printf "  %-16s %8.2f s  %7.0f MB\n", n, b - a, m / 1024 }' >&3
}

# the pixel size of zoom Z of WebMercatorQuad, as gdalwarp's -tr
res=$(awk -v z="$zoom" 'BEGIN { printf "%.17g", 2 * 20037508.342789244 / (256 * 2 ^ z) }')

tile_w=$work/tile-w		# mem-tile -g webmercator:Z
warp_out=$work/warp.tif		# gdalwarp
pyr_w=$work/pyramid-w		# mem-tile -g webmercator:ZMIN-ZMAX
g2t_out=$work/g2t		# gdal2tiles.py

run_tile() {
	rm -rf "$tile_w"
	timed mem-tile "$work/tile" -- "$mem_tile" -g "webmercator:$zoom" --bands red -j "$ncpu" \
		"${mem_opt[@]}" --workdir "$tile_w" <"$item" >"$work/tile-out.json"
}
run_warp() {
	rm -f "$warp_out"
	timed gdalwarp "$work/warp" -- "$gdalwarp" -q -t_srs EPSG:3857 -tr "$res" "$res" -tap \
		-r bilinear -multi -wo NUM_THREADS=ALL_CPUS -co TILED=YES -co COMPRESS=DEFLATE \
		"$red" "$warp_out"
}
run_pyramid() {
	rm -rf "$pyr_w"
	timed mem-tile-pyramid "$work/pyr" -- "$mem_tile" -g "webmercator:$pyramid" --bands red -j "$ncpu" \
		-r average "${mem_opt[@]}" --workdir "$pyr_w" <"$item" >"$work/pyr-out.json"
}
run_g2t() {
	rm -rf "$g2t_out"
	timed gdal2tiles "$work/g2t" -- "$gdal2tiles" --xyz -z "$pyramid" --processes="$ncpu" \
		-r average -w none -q "$red8" "$g2t_out"
}

echo "machine: $ncpu CPUs, $(uname -m); $(gdalinfo --version); mem-tile $("$mem_tile" -V 2>&1 | head -n 1)"
echo "grid: webmercator:$zoom (pixel $res m), pyramid $pyramid; mem-tile --mem ${membudget}"
echo "timing ${size}x${size}, $rounds alternating rounds (wall, max RSS):"
for r in $(seq 1 "$rounds"); do
	echo " round $r"
	# the previous round's outputs go first, to save disk; the last
	# round's stay for the check below and for inspection
	rm -rf "$tile_w" "$warp_out" "$pyr_w" "$g2t_out"
	if [ $((r % 2)) -eq 1 ]; then
		run_tile; run_warp; run_pyramid; run_g2t
	else
		run_warp; run_tile; run_g2t; run_pyramid
	fi
done

# --- what the tools wrote ---------------------------------------------------------
# Counts per zoom: tile items (mem-tile), GeoTIFF files (mem-tile), PNG
# files (gdal2tiles.py).  An empty output from a tool that exited 0 is a
# failure too.
out_rc=0
"$py" - "$work" "$zoom" "$pyramid" "$failed_tools" <<'EOF' || out_rc=$?
import json, os, re, sys
work, zoom, pyramid, failed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
zmin, zmax = map(int, pyramid.split("-"))
ok = True

def items(path):
    out = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return out
    for l in lines:
        if not l.strip():
            continue
        it = json.loads(l)
        g = (it.get("properties") or {}).get("mem:grid", "")
        m = re.match(r"webmercator/(\d+)/", g)
        z = int(m.group(1)) if m else -1
        out[z] = out.get(z, 0) + 1
    return out

def files(top, ext):
    out = {}
    for d, _, fs in os.walk(top):
        for f in fs:
            if f.endswith(ext):
                out.setdefault(d, 0)
                out[d] += 1
    return sum(out.values())

if "mem-tile" not in failed:
    n = items(os.path.join(work, "tile-out.json"))
    print(f"output: mem-tile z{zoom}: {sum(n.values())} tile items "
          f"({files(os.path.join(work, 'tile-w'), '.tif')} GeoTIFFs)")
    if n.get(zoom, 0) == 0:
        print(f"output: FAIL: mem-tile wrote no z{zoom} tile item"); ok = False
    if set(n) - {zoom}:
        print(f"output: FAIL: mem-tile wrote items of other zooms: {sorted(set(n) - {zoom})}"); ok = False
if "mem-tile-pyramid" not in failed:
    n = items(os.path.join(work, "pyr-out.json"))
    print("output: mem-tile " + pyramid + ": " +
          ", ".join(f"z{z} {n.get(z, 0)}" for z in range(zmin, zmax + 1)) + " tile items")
    miss = [z for z in range(zmin, zmax + 1) if n.get(z, 0) == 0]
    if miss:
        print(f"output: FAIL: mem-tile's pyramid has no tile item at zoom {miss}"); ok = False
if "gdal2tiles" not in failed:
    g = os.path.join(work, "g2t")
    cnt = {z: files(os.path.join(g, str(z)), ".png") for z in range(zmin, zmax + 1)}
    print("output: gdal2tiles " + pyramid + ": " +
          ", ".join(f"z{z} {cnt[z]}" for z in range(zmin, zmax + 1)) + " PNG tiles")
    if any(cnt[z] == 0 for z in cnt):
        print("output: FAIL: gdal2tiles.py left a zoom level empty"); ok = False
if "gdalwarp" not in failed and not os.path.exists(os.path.join(work, "warp.tif")):
    print("output: FAIL: gdalwarp wrote no file"); ok = False
sys.exit(0 if ok else 1)
EOF

# --- correctness: mem-tile's zoom-Z tiles against gdalwarp's output -------------------
check_rc=0
case " $failed_tools " in
*" mem-tile "*|*" gdalwarp "*)
	echo "check: SKIPPED (mem-tile or gdalwarp failed at zoom $zoom)"
	check_rc=2 ;;
*)
	"$py" - "$work/tile-out.json" "$tile_w" "$warp_out" "$red" <<'EOF' || check_rc=$?
import json, os, sys
import numpy as np
from osgeo import gdal

gdal.UseExceptions()
out_json, wdir, warp_path, red_path = sys.argv[1:5]
MAX_TILES = 12		# tiles compared: the partly valid ones first, then the rest, spread out

tiles = []
for l in open(out_json):
    if not l.strip():
        continue
    it = json.loads(l)
    a = (it.get("assets") or {}).get("red")
    if a is None:	# by band name, should the key differ
        for k, v in (it.get("assets") or {}).items():
            if any(b.get("common_name") == "red" for b in v.get("eo:bands", [])):
                a = v
                break
    if a is None:
        continue
    href = a["href"][7:] if a["href"].startswith("file://") else a["href"]
    if not os.path.isabs(href):
        for base in (os.path.dirname(out_json), wdir, os.getcwd()):
            if os.path.exists(os.path.join(base, href)):
                href = os.path.join(base, href)
                break
    tiles.append((it["properties"].get("mem:grid", it.get("id")), href))
ok = True
def fail(msg):
    global ok
    ok = False
    print("check: FAIL: " + msg)
if not tiles:
    fail("no tile item with a red asset in mem-tile's output")
    sys.exit(1)
tiles.sort()

dw = gdal.Open(warp_path)
bw = dw.GetRasterBand(1)
gw = dw.GetGeoTransform()
W, H = dw.RasterXSize, dw.RasterYSize

def window(ds):
    """The tile's pixel window in gdalwarp's grid, and its band."""
    g = ds.GetGeoTransform()
    if abs(g[1] - gw[1]) > 1e-9 * abs(gw[1]) or abs(g[5] - gw[5]) > 1e-9 * abs(gw[5]):
        raise ValueError(f"pixel size {g[1]} x {g[5]}, gdalwarp's {gw[1]} x {gw[5]}")
    fx, fy = (g[0] - gw[0]) / gw[1], (g[3] - gw[3]) / gw[5]
    x, y = round(fx), round(fy)
    if abs(fx - x) > 1e-3 or abs(fy - y) > 1e-3:
        raise ValueError(f"origin off gdalwarp's pixel grid by {fx - x:.4f}, {fy - y:.4f} px")
    return x, y

def read_both(path):
    dt = gdal.Open(path)
    if not dt.GetSpatialRef() or not dt.GetSpatialRef().IsSame(dw.GetSpatialRef()):
        raise ValueError("CRS differs from gdalwarp's (EPSG:3857)")
    bt = dt.GetRasterBand(1)
    w, h = dt.RasterXSize, dt.RasterYSize
    x, y = window(dt)
    a = bt.ReadAsArray().astype(np.int64)
    va = bt.GetMaskBand().ReadAsArray() != 0
    # gdalwarp's output covers the scene's bbox only: outside it is nodata
    b = np.zeros((h, w), np.int64)
    vb = np.zeros((h, w), bool)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 > x0 and y1 > y0:
        b[y0 - y:y1 - y, x0 - x:x1 - x] = bw.ReadAsArray(x0, y0, x1 - x0, y1 - y0)
        vb[y0 - y:y1 - y, x0 - x:x1 - x] = bw.GetMaskBand().ReadAsArray(x0, y0, x1 - x0, y1 - y0) != 0
    return a, va, b, vb, (x, y, w, h)

# tiles crossing the scene or swath edge (1-99 % valid; the scattered
# nodata pixels alone do not count) first: they test the nodata mask
loaded = []
for name, path in tiles:
    try:
        dt = gdal.Open(path)
        window(dt)
        frac = float((dt.GetRasterBand(1).GetMaskBand().ReadAsArray() != 0).mean())
        dt = None
    except Exception as e:
        fail(f"{name}: {e}")
        continue
    loaded.append((0 if 0.01 < frac < 0.99 else 1, name, path))
part = [t for t in loaded if t[0] == 0]
full = [t for t in loaded if t[0] == 1]
pick = part[:MAX_TILES // 2]
rest = [t for t in loaded if t not in pick]
k = MAX_TILES - len(pick)
if rest and k > 0:
    pick += [rest[i * len(rest) // min(k, len(rest))] for i in range(min(k, len(rest)))]

# The criterion: gdalwarp run on the tile's own extent (the same target grid
# and resampling).  GDAL's warper widens the bilinear kernel when downsampling by a scale it
# derives from each chunk's source and destination windows, so a whole-scene
# gdalwarp and a tile-by-tile warp may differ by more than rounding where the
# scene is noisy; equality with this reference says the difference is that.
def per_tile_ref(path, w, h):
    dt = gdal.Open(path)
    g = dt.GetGeoTransform()
    o = gdal.Warp("/vsimem/ref.tif", red_path, options=[
        "-t_srs", "EPSG:3857", "-te", repr(g[0]), repr(g[3] + h * g[5]), repr(g[0] + w * g[1]),
        repr(g[3]), "-ts", str(w), str(h), "-r", "bilinear", "-q"])
    b = o.GetRasterBand(1)
    r = b.ReadAsArray().astype(np.int64), b.GetMaskBand().ReadAsArray() != 0
    o = None
    gdal.Unlink("/vsimem/ref.tif")
    return r

total = valid = masked = 0
maxdiff = tile_maxdiff = tile_maskdiff = scene_maskdiff = 0
for _, name, path in pick:
    a, va, b, vb, (x, y, w, h) = read_both(path)
    c, vc = per_tile_ref(path, w, h)
    # the criterion: gdalwarp on the same target grid (the tile) and resampling
    n = int(np.count_nonzero(va != vc))
    tile_maskdiff += n
    if n:
        fail(f"{name}: nodata masks differ from gdalwarp -te TILE at {n} pixels")
    m = va & vc
    d = int(np.abs(a[m] - c[m]).max()) if m.any() else 0
    if d > 1:
        fail(f"{name}: max |diff| {d} DN > 1 against gdalwarp -te TILE")
    tile_maxdiff = max(tile_maxdiff, d)
    total += a.size
    valid += int(m.sum())
    masked += int((~va).sum())
    # information: the whole-scene gdalwarp, whose chunks set other kernel scales
    scene_maskdiff += int(np.count_nonzero(va != vb))
    mb = va & vb
    if mb.any():
        maxdiff = max(maxdiff, int(np.abs(a[mb] - b[mb]).max()))
print(f"check: {len(pick)} of {len(tiles)} tiles ({len(part)} across an edge) against gdalwarp "
      f"-te TILE -ts {w} {h} -r bilinear, tile by tile: {total} pixels, {valid} valid in both, "
      f"{masked} nodata in mem-tile's; max |diff| {tile_maxdiff} DN, masks differ at {tile_maskdiff} pixels")
print(f"check: (information) against the whole-scene gdalwarp {W}x{H}: max |diff| {maxdiff} DN, "
      f"masks differ at {scene_maskdiff} pixels (GDAL scales the bilinear kernel per warp chunk)")
print("check: " + ("PASS" if ok else "FAIL") + " (same nodata mask, max |diff| <= 1 DN, per tile)")
sys.exit(0 if ok else 1)
EOF
	;;
esac

# --- report -------------------------------------------------------------------------
budget_rc=0
"$py" - "$work/times" "$size" "$zoom" "$pyramid" "$membudget" "$budget_bytes" <<'EOF' || budget_rc=$?
import sys
times, size, zoom, pyramid, membudget, budget = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
runs = {}
for line in open(times):
    name, wall, rss = line.split()
    runs.setdefault(name, []).append(None if wall == "FAILED" else (float(wall), int(rss)))

def best(name):
    r = [x for x in runs.get(name, []) if x]
    if not r or len(r) < len(runs[name]):
        return None
    return min(w for w, _ in r), max(m for _, m in r)

label = {"mem-tile": f"mem-tile z{zoom}", "gdalwarp": f"gdalwarp z{zoom}",
         "mem-tile-pyramid": f"mem-tile {pyramid}", "gdal2tiles": f"gdal2tiles {pyramid}"}
n = max(len(v) for v in runs.values())
print()
print(f"== tile benchmark, {size}x{size} UInt16 DEFLATE COG ({size * size / 1e6:.1f} Mpixel), "
      f"EPSG:32632 -> WebMercatorQuad, best of {n} ==")
for name in ("mem-tile", "gdalwarp", "mem-tile-pyramid", "gdal2tiles"):
    b = best(name)
    if b is None:
        fails = sum(1 for x in runs.get(name, []) if x is None)
        print(f"{label[name]:<22} FAILED ({fails} of {len(runs.get(name, []))} runs)")
        continue
    walls = ", ".join(f"{w:.2f}" for w, _ in runs[name])
    print(f"{label[name]:<22} {b[0]:8.2f} s  {b[1] / 1024:6.0f} MB   (runs: {walls})")

def ratio(other, mine, target):
    a, b = best(other), best(mine)
    s = f"{'ratio ' + other + '/' + label[mine]:<36}"
    if a is None or b is None:
        print(s + "     n/a  (a tool failed)")
    else:
        r = a[0] / b[0]
        print(s + f"{r:8.2f}  (target >= {target:g}: {'met' if r >= target else 'NOT met'})")
ratio("gdalwarp", "mem-tile", 1)
ratio("gdal2tiles", "mem-tile-pyramid", 4)

over = False
for name in ("mem-tile", "mem-tile-pyramid"):
    for i, r in enumerate(runs.get(name, []), 1):
        s = f"budget {label[name]} round {i}:"
        if r is None:
            print(f"{s:<34} n/a (failed)")
        elif budget == 0:
            print(f"{s:<34} peak {r[1] / 1024:.0f} MB (no --mem budget)")
        else:
            okb = r[1] * 1024 <= budget
            over |= not okb
            print(f"{s:<34} peak {r[1] / 1024:.0f} MB of --mem {membudget} "
                  f"({budget / 1048576:.0f} MB): {'PASS' if okb else 'FAIL'}")
sys.exit(1 if over else 0)
EOF

status=0
if [ -n "$failed_tools" ]; then
	echo "result: FAIL: failed:$failed_tools (logs: $work/*.err)"
	status=1
fi
[ $out_rc -eq 0 ] || { echo "result: FAIL: a tool wrote no or the wrong output (see 'output:' above)"; status=1; }
case $check_rc in
0) ;;
2) echo "result: FAIL: mem-tile's z$zoom tiles not checked (a tool failed)"; status=1 ;;
*) echo "result: FAIL: mem-tile's z$zoom tiles differ from gdalwarp's"; status=1 ;;
esac
[ $budget_rc -eq 0 ] || { echo "result: FAIL: a mem-tile run went over its --mem budget $membudget"; status=1; }
[ $status -ne 0 ] || echo "result: PASS"
exit $status
