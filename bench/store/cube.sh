#!/bin/sh
# bench/store/cube.sh [BUILDDIR] [SIZE] - the datacube of mem-store, in one run:
#   a. mem-store --cube: the tiles (red, nir, scl) and NDVI results of one
#      date of the demo scene (mem-demo --size SIZE, default 4096) on
#      webmercator:14, four variables
#   b. what a GDAL user does for the same: gdalbuildvrt + gdal_translate
#      -of netCDF (NC4, DEFLATE level 4), one file per variable
#   c. mem-store --cube --append: a second date into the cube of a.
# Prints the times, the ratio a/b, the sizes, and each run's peak RSS.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$top}
SIZE=${2:-4096}
PATH=$B/src/cmd:$PATH
W=${MEM_BENCH_DIR:-/tmp/mem-bench-cube-$SIZE}
mkdir -p "$W"
cd "$W"

if [ ! -f ok ]; then
	echo "making the demo scene ($SIZE px), its tiles, NDVI and a second date in $W" >&2
	rm -rf demo w
	mem-demo -o demo --size "$SIZE" > /dev/null
	mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
	mem-tile -g webmercator:14 --workdir w < scene.json > tiles.json
	mem-infer -s ndvi --workdir w < tiles.json > res.json
	# the second date: the same cells, other values, datetime moved
	for f in res tiles; do
		/usr/bin/python3 - "$f.json" "d2-$f" <<'PY'
import json, os, sys
from osgeo import gdal
import numpy as np
src, out = sys.argv[1:3]
os.makedirs(out, exist_ok=True)
with open(src) as f, open(out + '.json', 'w') as o:
    for line in f:
        d = json.loads(line)
        d['id'] += '-d2'
        d['properties']['datetime'] = '2024-07-20T10:30:00Z'
        for k, a in d['assets'].items():
            ds = gdal.Open(a['href'])
            x = ds.GetRasterBand(1).ReadAsArray()
            x = np.where(np.isnan(x), x, -x) if x.dtype.kind == 'f' else (x // 2).astype(x.dtype)
            p = os.path.join(out, d['id'] + '-' + k + '.tif')
            t = gdal.GetDriverByName('GTiff').CreateCopy(p, ds, options=['COMPRESS=DEFLATE', 'TILED=YES'])
            t.GetRasterBand(1).WriteArray(x)
            t = None
            a['href'] = os.path.abspath(p)
        o.write(json.dumps(d) + '\n')
PY
	done
	/usr/bin/python3 -c "
import json
for k, f in (('red', 'tiles'), ('nir', 'tiles'), ('scl', 'tiles'), ('ndvi', 'res')):
    open(k + '.txt', 'w').write(''.join(json.loads(l)['assets'][k]['href'] + '\n' for l in open(f + '.json')))"
	touch ok
fi
sync

# run NAME CMD...: times CMD, keeps seconds and peak RSS (KB) in NAME.t
run() {
	n=$1
	shift
	/usr/bin/time -f "%e %M" -o "$n.t" "$@" > /dev/null
}

rm -f cube.nc g-*.nc
run a mem-store --cube cube.nc res.json tiles.json
run b sh -c 'for k in red nir scl ndvi; do
	gdalbuildvrt -q -input_file_list $k.txt $k.vrt &&
	gdal_translate -q -of netCDF -co FORMAT=NC4 -co COMPRESS=DEFLATE -co ZLEVEL=4 $k.vrt g-$k.nc || exit 1
done'
sa=$(stat -c %s cube.nc)
sb=$(cat g-*.nc | wc -c)
run c mem-store --cube cube.nc --append d2-res.json d2-tiles.json
sc=$(stat -c %s cube.nc)
run d mem-store --cube cube.nc --append d2-res.json d2-tiles.json
read -r ta ma < a.t
read -r tb mb < b.t
read -r tc mc < c.t
read -r td md < d.t
echo "tiles: $(wc -l < tiles.json) cells of $(ncdump -h cube.nc | sed -n 's/^.*x = \([0-9]*\) ;/\1/p') px wide, 4 variables"
printf 'a. mem-store --cube (1 date)          %6.2f s  %5d MB RSS  %5d MB\n' "$ta" $((ma / 1024)) $((sa / 1048576))
printf 'b. gdalbuildvrt + gdal_translate NC4  %6.2f s  %5d MB RSS  %5d MB\n' "$tb" $((mb / 1024)) $((sb / 1048576))
printf 'c. mem-store --cube --append (date 2) %6.2f s  %5d MB RSS  %5d MB\n' "$tc" $((mc / 1024)) $((sc / 1048576))
printf 'd. the same append again (no change)  %6.2f s  %5d MB RSS\n' "$td" $((md / 1024))
awk -v a="$ta" -v b="$tb" 'BEGIN { printf "ratio a/b: %.2f (below 1: mem-store is faster)\n", a / b }'
