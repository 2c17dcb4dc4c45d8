#!/bin/sh
# bench/fetch/run.sh [BUILDDIR] [N] [SIZE] - mem-fetch against what a GDAL
# user does, in one run on a loopback nginx:
#   a. mem-fetch ITEM --bbox BOX (the window of every asset, -j 4)
#   b. gdal_translate -projwin BOX -projwin_srs EPSG:4326 /vsicurl/URL, asset by asset
# over N generated SIZE x SIZE UInt16 DEFLATE COGs (default 6 of 5490 px,
# 20 m).  Prints both times, the ratio, and the bytes each moved, from the
# server's log.  Outputs are compared pixel for pixel.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$top}
N=${2:-6}
SIZE=${3:-5490}
BIN=$B/src/cmd
W=${MEM_BENCH_DIR:-/tmp/mem-bench-fetch-$N-$SIZE}
mkdir -p "$W/www"
T=$(mktemp -d /tmp/mem-bench-fetch.XXXXXX)
MEM_SRCDIR=$top
. "$top/tests/http.sh"
trap 'http_stop; rm -rf "$T"' EXIT INT TERM

if [ ! -f "$W/www/ok" ]; then
	echo "generating $N COGs of ${SIZE}x$SIZE in $W/www" >&2
	/usr/bin/python3 - "$W/www" "$N" "$SIZE" <<'PY'
import sys
import numpy as np
from osgeo import gdal, osr
out, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
srs = osr.SpatialReference(); srs.ImportFromEPSG(32632)
rng = np.random.default_rng(42)
yy, xx = np.mgrid[0:size, 0:size]
for b in range(n):
    mem = gdal.GetDriverByName("MEM").Create("", size, size, 1, gdal.GDT_UInt16)
    mem.SetGeoTransform([600000, 20, 0, 5200020, 0, -20]); mem.SetProjection(srs.ExportToWkt())
    field = 2000 + 1500 * np.sin(xx / (300.0 + 40 * b)) * np.cos(yy / 410.0)
    a = (field + rng.integers(0, 400, (size, size))).astype(np.uint16)
    mem.GetRasterBand(1).WriteArray(a); mem.GetRasterBand(1).SetNoDataValue(0)
    gdal.Translate("%s/B%02d.tif" % (out, b + 1), mem, format="COG",
                   creationOptions=["COMPRESS=DEFLATE", "BLOCKSIZE=512", "PREDICTOR=2"])
PY
	touch "$W/www/ok"
fi
http_start "$W/www"
# a 5 km box in the middle of the scene
BOX=$(/usr/bin/python3 - "$SIZE" <<'PY'
import sys
from osgeo import osr
size = int(sys.argv[1])
u = osr.SpatialReference(); u.ImportFromEPSG(32632); g = osr.SpatialReference(); g.ImportFromEPSG(4326)
g.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER); u.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(u, g)
cx, cy = 600000 + size * 10, 5200020 - size * 10
x0, y0, _ = ct.TransformPoint(cx - 2500, cy - 2500); x1, y1, _ = ct.TransformPoint(cx + 2500, cy + 2500)
print("%.6f,%.6f,%.6f,%.6f" % (x0, y0, x1, y1))
PY
)
/usr/bin/python3 - "$HTTP_URL" "$N" > "$T/item.json" <<'PY'
import json, sys
url, n = sys.argv[1], int(sys.argv[2])
assets = {"B%02d" % (b + 1): {"href": "%s/B%02d.tif" % (url, b + 1), "roles": ["data"],
          "type": "image/tiff; application=geotiff; profile=cloud-optimized"} for b in range(n)}
print(json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": "bench-fetch", "geometry": None,
                  "bbox": [-180.0, -90.0, 180.0, 90.0], "properties": {"datetime": "2024-07-15T10:00:00Z"},
                  "links": [], "assets": assets}))
PY
W0=$(echo "$BOX" | cut -d, -f1) S0=$(echo "$BOX" | cut -d, -f2) E0=$(echo "$BOX" | cut -d, -f3) N0=$(echo "$BOX" | cut -d, -f4)

now() { date +%s.%N; }
bytes() { awk '$1 == "GET" { s += $4 } END { print s + 0 }' "$HTTP_LOG"; }
run_mem() {
	rm -rf "$T/w"
	: > "$HTTP_LOG"
	t0=$(now)
	"$BIN/mem-fetch" "$T/item.json" --bbox "$BOX" -j 4 --workdir "$T/w" > "$T/mem.json" || { echo "mem-fetch failed" >&2; exit 1; }
	[ -s "$T/mem.json" ] || { echo "mem-fetch found nothing" >&2; exit 1; }
	t1=$(now)
	echo "$t0 $t1 $(bytes)"
}
run_gdal() {
	rm -rf "$T/g"
	mkdir -p "$T/g"
	: > "$HTTP_LOG"
	t0=$(now)
	for b in $(seq -f %02g 1 "$N"); do
		gdal_translate -q -projwin "$W0" "$N0" "$E0" "$S0" -projwin_srs EPSG:4326 \
			--config GDAL_DISABLE_READDIR_ON_OPEN EMPTY_DIR \
			"/vsicurl/$HTTP_URL/B$b.tif" "$T/g/B$b.tif"
	done
	t1=$(now)
	echo "$t0 $t1 $(bytes)"
}
best_m=999 best_g=999
for round in 1 2 3; do
	set -- $(run_mem); m=$(echo "$2 - $1" | bc); mb=$3
	set -- $(run_gdal); g=$(echo "$2 - $1" | bc); gb=$3
	echo "round $round: mem-fetch ${m}s ($mb bytes), gdal_translate x$N ${g}s ($gb bytes)"
	best_m=$(echo "if ($m < $best_m) $m else $best_m" | bc)
	best_g=$(echo "if ($g < $best_g) $g else $best_g" | bc)
done
# the same pixels
bad=$(/usr/bin/python3 - "$T/mem.json" "$T/g" <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
d = json.loads(open(sys.argv[1]).readline()); bad = 0
# gdal_translate -projwin_srs transforms two corners of the box; mem-fetch
# covers the whole (curved) box, so its window holds gdal_translate's
for k, a in d["assets"].items():
    x = gdal.Open(a["href"]); y = gdal.Open("%s/%s.tif" % (sys.argv[2], k))
    gx, gy = x.GetGeoTransform(), y.GetGeoTransform()
    ox, oy = round((gy[0] - gx[0]) / gx[1]), round((gy[3] - gx[3]) / gx[5])
    inside = ox >= 0 and oy >= 0 and ox + y.RasterXSize <= x.RasterXSize and oy + y.RasterYSize <= x.RasterYSize
    if not inside or gx[1] != gy[1] or gx[5] != gy[5]:
        bad += 1; print("grid differs", k, gx, gy, file=sys.stderr); continue
    xa = x.GetRasterBand(1).ReadAsArray(ox, oy, y.RasterXSize, y.RasterYSize)
    bad += not np.array_equal(xa, y.GetRasterBand(1).ReadAsArray())
print(bad)
PY
)
full=$(cat "$W"/www/B*.tif | wc -c)
echo
echo "== fetch benchmark: $N COGs of ${SIZE}x$SIZE ($full bytes), a 5 km box, best of 3 =="
echo "mem-fetch_s          $best_m   (-j 4, one process)"
echo "gdal_translate_s     $best_g   (one /vsicurl/ process per asset)"
echo "speedup              $(echo "scale=2; $best_g / $best_m" | bc)"
echo "bytes mem-fetch      $mb"
echo "bytes gdal_translate $gb"
echo "fraction of files    $(echo "scale=4; $mb / $full" | bc)"
if [ "$bad" = 0 ]; then echo "check: PASS (gdal_translate's window lies in mem-fetch's, same pixels)"; else echo "check: FAIL ($bad assets differ)"; exit 1; fi
