#!/bin/sh
# bench/store/run.sh [BUILDDIR] [SIZE] - mem-store --mosaic against GDAL's
# tools on the same tiles, in one run:
#   a. mem-store --mosaic: the tiles (red, nir, scl) and NDVI results of one
#      date of the demo scene (mem-demo --size SIZE, default 4096) on
#      webmercator:14, one COG per asset (DEFLATE, predictor, 512 blocks,
#      overviews, statistics, checksums, STAC items and catalog)
#   b. what a GDAL user does for the same: gdalbuildvrt + gdal_translate
#      -of COG with the same creation options, one file per asset
# The two alternate MEM_BENCH_ROUNDS times (default 2), the best time of each
# is kept; the outputs are then compared pixel for pixel.  Prints the times,
# the ratio a/b, the sizes and each tool's peak RSS.  See bench/store/cube.sh
# for the datacube.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$top}
SIZE=${2:-4096}
ROUNDS=${MEM_BENCH_ROUNDS:-2}
PATH=$B/src/cmd:$PATH
W=${MEM_BENCH_DIR:-/tmp/mem-bench-mosaic-$SIZE}
mkdir -p "$W"
cd "$W"

if [ ! -f ok ]; then
	echo "making the demo scene ($SIZE px), its tiles and NDVI in $W" >&2
	rm -rf demo w
	mem-demo -o demo --size "$SIZE" > /dev/null
	mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
	mem-tile -g webmercator:14 --workdir w < scene.json > tiles.json
	mem-infer -s ndvi --workdir w < tiles.json > res.json
	/usr/bin/python3 -c "
import json
for k, f in (('red', 'tiles'), ('nir', 'tiles'), ('scl', 'tiles'), ('ndvi', 'res')):
    open(k + '.txt', 'w').write(''.join(json.loads(l)['assets'][k]['href'] + '\n' for l in open(f + '.json')))"
	touch ok
fi
sync

# run NAME CMD...: times CMD, keeps the best seconds and its peak RSS (KB) in NAME.t
run() {
	n=$1
	shift
	/usr/bin/time -f "%e %M" -o "$n.new" "$@" > /dev/null
	if [ ! -f "$n.t" ] || awk -v a="$(cut -d' ' -f1 "$n.new")" -v b="$(cut -d' ' -f1 "$n.t")" \
	    'BEGIN { exit !(a < b) }'; then
		mv "$n.new" "$n.t"
	else
		rm -f "$n.new"
	fi
}

rm -f a.t b.t
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	rm -rf out g
	mkdir g
	run a mem-store -o out --mosaic res.json tiles.json
	run b sh -c 'for k in red nir scl ndvi; do
		gdalbuildvrt -q -input_file_list $k.txt g/$k.vrt &&
		gdal_translate -q -of COG -co COMPRESS=DEFLATE -co PREDICTOR=YES -co BLOCKSIZE=512 \
		    -co OVERVIEWS=AUTO -co NUM_THREADS=ALL_CPUS g/$k.vrt g/$k.tif || exit 1
	done'
	i=$((i + 1))
done
same=$(/usr/bin/python3 - <<'PY'
import glob
from osgeo import gdal
import numpy as np
bad = 0
for k in ('red', 'nir', 'scl', 'ndvi'):
    x = gdal.Open(glob.glob('out/*/*/%s.tif' % k)[0]).ReadAsArray()
    y = gdal.Open('g/%s.tif' % k).ReadAsArray()
    bad += not np.array_equal(x, y, equal_nan=x.dtype.kind == 'f')
print(bad)
PY
)
sa=$(cat out/*/*/*.tif | wc -c)
sb=$(cat g/*.tif | wc -c)
read -r ta ma < a.t
read -r tb mb < b.t
echo "tiles: $(wc -l < tiles.json) cells, 4 assets -> 4 COGs of $(gdalinfo g/red.tif | sed -n 's/^Size is //p') px; best of $ROUNDS"
printf 'a. mem-store --mosaic                  %6.2f s  %5d MB RSS  %5d MB\n' "$ta" $((ma / 1024)) $((sa / 1048576))
printf 'b. gdalbuildvrt + gdal_translate COG   %6.2f s  %5d MB RSS  %5d MB\n' "$tb" $((mb / 1024)) $((sb / 1048576))
awk -v a="$ta" -v b="$tb" 'BEGIN { printf "ratio a/b: %.2f (below 1: mem-store is faster)\n", a / b }'
[ "$same" = 0 ] && echo "pixels: the same in a and b" || { echo "pixels: $same assets differ" >&2; exit 1; }
