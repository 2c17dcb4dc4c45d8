#!/bin/sh
# mem-tile: WebMercatorQuad and UTM cells, pixels equal to gdalwarp's, nearest
# for classes, mosaics of scenes of one date, --bbox, reruns, and errors.
. "$MEM_SRCDIR/tests/lib.sh"

demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scenes.json
D=demo/sentinel-2-l2a-demo/S2A_32TNR_20240715_0_L2A_DEMO

check "tile into webmercator:13" sh -c "mem-tile -g webmercator:13 --workdir w < scenes.json > wm.json"
n=$(wc -l < wm.json)
# the demo scene spans 9.776-9.909 E, 46.048-46.141 N: at z13 that is x 4318-4321, y 2909-2912
want=$(/usr/bin/python3 -c "
import math
def t(lon, lat, z=13):
    n = 2 ** z; r = math.radians(lat)
    return int((lon + 180) / 360 * n), int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)
x0, y0 = t(9.7755529796, 46.1409365343); x1, y1 = t(9.9094119452, 46.0478083033)
print((x1 - x0 + 1) * (y1 - y0 + 1))")
if [ "$n" -le "$want" ] && [ "$n" -ge $((want - 2)) ]; then ok "$n cells of the $want the scene's box covers (empty ones skipped)"; else not_ok "cells: $n, box covers $want"; fi
grid=$(json_get wm.json "d['properties']['mem:grid']")
case $grid in webmercator/13/43[12][0-9]/29[01][0-9]) ok "mem:grid names the cell ($grid)" ;; *) not_ok "mem:grid $grid" ;; esac
x=$(echo "$grid" | cut -d/ -f3); y=$(echo "$grid" | cut -d/ -f4)
red=$(json_get wm.json "d['assets']['red']['href']")
if gdalinfo "$red" | grep -q 'Size is 256, 256' && gdalinfo "$red" | grep -q 'ID\["EPSG",3857\]'; then ok "a cell is 256x256 in EPSG:3857"; else not_ok "cell size or CRS"; fi
# the cell's bounds are the WebMercatorQuad tile's, computed independently here
te=$(/usr/bin/python3 -c "
h = 20037508.342789244; s = 2 * h / 2 ** 13
print(-h + $x * s, h - ($y + 1) * s, -h + ($x + 1) * s, h - $y * s)")
gt=$(gdal_py -c "
from osgeo import gdal; import sys
d = gdal.Open(sys.argv[1]); g = d.GetGeoTransform()
print(g[0], g[3] + 256 * g[5], g[0] + 256 * g[1], g[3])" "$red")
if /usr/bin/python3 -c "import sys; a=list(map(float,'$te'.split())); b=list(map(float,'$gt'.split())); sys.exit(0 if max(abs(p-q) for p,q in zip(a,b)) < 1e-6 else 1)"; then
	ok "cell bounds equal tile $x/$y of WebMercatorQuad"
else
	not_ok "cell bounds $gt, want $te"
fi
# pixels equal what gdalwarp makes of the same source and box
gdalwarp -q -t_srs EPSG:3857 -te $te -ts 256 256 -r bilinear "$D/B04.tif" ref.tif
if have_gdal_py; then
	d=$(gdal_py -c "
from osgeo import gdal; import numpy as np, sys
a = gdal.Open(sys.argv[1]); b = gdal.Open(sys.argv[2])
x = a.GetRasterBand(1).ReadAsArray().astype(float); y = b.GetRasterBand(1).ReadAsArray().astype(float)
print(int(np.abs(x - y).max()))" "$red" ref.tif)
	if [ "$d" -le 1 ]; then ok "red cell equals gdalwarp -r bilinear (max diff $d DN)"; else not_ok "red cell differs from gdalwarp by $d"; fi
	scl=$(json_get wm.json "d['assets']['scl']['href']")
	classes=$(gdal_py -c "
from osgeo import gdal; import numpy as np, sys
ds = gdal.Open(sys.argv[1]); a = ds.GetRasterBand(1).ReadAsArray()
print(set(np.unique(a).tolist()) <= {0, 3, 4, 5, 6, 9})" "$scl")
	if [ "$classes" = True ]; then ok "scl resampled with near: no new classes"; else not_ok "scl has invented classes"; fi
else
	skip "no GDAL Python bindings"; skip "no GDAL Python bindings"
fi
eo=$(json_get wm.json "d['assets']['red']['eo:bands'][0]['common_name'] + ' ' + str(d['assets']['red']['raster:bands'][0]['scale'])")
if [ "$eo" = "red 0.0001" ]; then ok "eo:bands and raster:bands carried to the tile"; else not_ok "band metadata: $eo"; fi

# UTM: the scene's own zone, cells aligned to multiples of RES*SIZE
check "tile into utm:20:256" sh -c "mem-tile -g utm:20:256 --workdir w < scenes.json > utm.json"
grid=$(json_get utm.json "d['properties']['mem:grid']")
case $grid in utm/32632/20/256/*) ok "utm cells in the scene's zone ($grid)" ;; *) not_ok "utm cell $grid" ;; esac
x=$(echo "$grid" | cut -d/ -f5); y=$(echo "$grid" | cut -d/ -f6)
tr=$(json_get utm.json "' '.join(str(v) for v in d['properties']['proj:transform'])")
if [ "$tr" = "20.0 0.0 $((x * 5120)).0 0.0 -20.0 $(((y + 1) * 5120)).0" ]; then ok "proj:transform of utm cell $x/$y"; else not_ok "proj:transform $tr"; fi
check "utm with the native resolution" sh -c "mem-tile -g utm --workdir w < scenes.json > utm10.json"
r=$(json_get utm10.json "d['properties']['proj:transform'][0]")
if [ "$r" = "10.0" ]; then ok "utm without RES takes the finest band (10 m)"; else not_ok "utm resolution $r"; fi

# --bbox keeps only the cells it meets
mem-tile -g webmercator:13 --bbox 9.80,46.06,9.81,46.07 --workdir w < scenes.json > bb.json
if [ "$(wc -l < bb.json)" -eq 1 ]; then ok "--bbox keeps one cell"; else not_ok "--bbox cells: $(wc -l < bb.json)"; fi

# a rerun names the same cells the same way
mem-tile -g webmercator:13 --workdir w < scenes.json > wm2.json
if cmp -s wm.json wm2.json; then ok "a rerun emits identical tile items"; else not_ok "a rerun emits identical tile items"; fi

# two halves of the scene on one date are mosaicked back into the same cells
mkdir -p halves
for half in west east; do
	if [ $half = west ]; then win="0 0 512 1024"; swin="0 0 256 512"; else win="512 0 512 1024"; swin="256 0 256 512"; fi
	gdal_translate -q -srcwin $win "$D/B04.tif" halves/$half-B04.tif
	gdal_translate -q -srcwin $swin "$D/SCL.tif" halves/$half-SCL.tif
	/usr/bin/python3 -c "
import json, sys
d = json.loads(open('scenes.json').readline())
d['id'] = d['id'] + '-$half'
d['assets'] = {'red': dict(d['assets']['red'], href='$T/halves/$half-B04.tif'),
               'scl': dict(d['assets']['scl'], href='$T/halves/$half-SCL.tif')}
print(json.dumps(d))" >> halves.json
done
check "tile two halves of one date" sh -c "mem-tile -g webmercator:13 --bands red --workdir w < halves.json > mosaic.json"
mem-tile -g webmercator:13 --bands red --workdir w < scenes.json > whole.json
if [ "$(wc -l < mosaic.json)" -eq "$(wc -l < whole.json)" ]; then ok "one tile item per cell and date, not per scene"; else not_ok "mosaic gives $(wc -l < mosaic.json) items, whole $(wc -l < whole.json)"; fi
links=$(/usr/bin/python3 -c "
import json
for l in open('mosaic.json'):
    d = json.loads(l)
    if len(d['links']) == 2: print(d['properties']['mem:grid']); break")
if [ -n "$links" ] && have_gdal_py; then
	a=$(grep -h "\"$links\"" mosaic.json | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['assets']['red']['href'])")
	b=$(grep -h "\"$links\"" whole.json | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['assets']['red']['href'])")
	same=$(gdal_py -c "
from osgeo import gdal; import numpy as np, sys
da = gdal.Open(sys.argv[1]); db = gdal.Open(sys.argv[2])
x = da.GetRasterBand(1).ReadAsArray().astype(int); y = db.GetRasterBand(1).ReadAsArray().astype(int)
v = (x > 0) & (y > 0)
print(int((x > 0).sum() == (y > 0).sum()), int(np.abs(x[v] - y[v]).max()))" "$a" "$b")
	case $same in "1 "[01]) ok "the cell on the seam mosaics both halves ($links)" ;; *) not_ok "seam cell differs: $same" ;; esac
else
	not_ok "no cell on the seam has both halves as parents"
fi

# --list-cells names the cells without making them
mem-tile -g webmercator:13 --list-cells --workdir lw < scenes.json > cells.txt
[ "$(wc -l < cells.txt)" -eq "$want" ] && ok "--list-cells names the $want cells of the scene's box" || not_ok "--list-cells: $(wc -l < cells.txt) cells, want $want"
[ ! -d lw/tiles ] && ok "and makes none" || not_ok "--list-cells made tiles"
missing=$(/usr/bin/python3 -c "
import json
cells = set(open('cells.txt').read().split())
print(sum(1 for l in open('wm.json') if json.loads(l)['properties']['mem:grid'] not in cells))")
[ "$missing" -eq 0 ] && ok "every tiled cell is listed" || not_ok "$missing tiled cells not listed"
mem-tile -g webmercator:13 --list-cells --bbox 9.7755529796,46.0478083033,9.9094119452,46.1409365343 < /dev/null > boxcells.txt
cmp -s cells.txt boxcells.txt && ok "--list-cells --bbox alone gives the same cells" || not_ok "box cells differ: $(wc -l < boxcells.txt)"

# --shard I/N: the shards of a run are disjoint and together make it whole
for i in 0 1 2; do mem-tile -g webmercator:13 --shard $i/3 --workdir w < scenes.json > shard$i.json; done
/usr/bin/python3 -c "
import json, sys
shards = [set(json.loads(l)['properties']['mem:grid'] for l in open('shard%d.json' % i)) for i in range(3)]
whole = set(json.loads(l)['properties']['mem:grid'] for l in open('wm.json'))
disjoint = all(not (shards[a] & shards[b]) for a in range(3) for b in range(a + 1, 3))
sys.exit(0 if disjoint and set().union(*shards) == whole and all(shards) else 1)" \
	&& ok "--shard 0/3, 1/3, 2/3 are disjoint and make the whole run" || not_ok "shards overlap or miss cells"
cmp -s shard1.json "$(mem-tile -g webmercator:13 --shard 1/3 --workdir w < scenes.json > shard1b.json; echo shard1b.json)" \
	&& ok "a shard is the same on every run" || not_ok "shard 1/3 changed between runs"
check_exit "a bad --shard exits 2" 2 mem-tile -g webmercator:13 --shard 3/3 < scenes.json

# holes inside the scene: the cells whose source window holds one are warped
# with GDAL's nodata masks, the others without (the same values, faster);
# either way every cell equals gdalwarp -srcnodata 0 on the cell
if have_gdal_py; then
	gdal_py - "$D/B04.tif" holes.tif scenes.json > holes.json <<'PY'
import json, sys
from osgeo import gdal
gdal.UseExceptions()
src = gdal.Open(sys.argv[1])
a = src.GetRasterBand(1).ReadAsArray()
a[a == 0] = 1
a[400:403, 500:502] = 0          # a hole of 6 pixels well inside the scene
a[700, 300] = 0                   # and a single one
ds = gdal.GetDriverByName('GTiff').Create(sys.argv[2], src.RasterXSize, src.RasterYSize, 1, gdal.GDT_UInt16, ['TILED=YES'])
ds.SetGeoTransform(src.GetGeoTransform()); ds.SetProjection(src.GetProjection())
ds.GetRasterBand(1).SetNoDataValue(0); ds.GetRasterBand(1).WriteArray(a); ds = None
d = json.loads(open(sys.argv[3]).readline())
r = {k: v for k, v in d['assets']['red'].items() if not k.startswith('file:')}
r['href'] = sys.argv[2]
d['id'] = 'holes'; d['assets'] = {'red': r}
print(json.dumps(d))
PY
	for alg in bilinear cubic; do
		mem-tile -g webmercator:15 -r "$alg" --workdir "wh-$alg" < holes.json > "holes-$alg.json"
		res=$(gdal_py - "holes-$alg.json" "$alg" <<'PY'
import json, subprocess, sys
import numpy as np
from osgeo import gdal
n = holed = maxd = maskd = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    f = d['assets']['red']['href']
    ds = gdal.Open(f); g = ds.GetGeoTransform()
    te = [g[0], g[3] + 256 * g[5], g[0] + 256 * g[1], g[3]]
    subprocess.run(['gdalwarp', '-q', '-overwrite', '-t_srs', 'EPSG:3857', '-te'] + [repr(v) for v in te] +
                   ['-ts', '256', '256', '-r', sys.argv[2], '-srcnodata', '0', '-dstnodata', '0', 'holes.tif', 'ref.tif'], check=True)
    a = ds.GetRasterBand(1).ReadAsArray().astype(int)
    r = gdal.Open('ref.tif')
    b = r.GetRasterBand(1).ReadAsArray().astype(int)
    r = None
    n += 1
    holed += int(0 < (b == 0).sum() < 1000)   # a hole, not the scene's edge
    maskd += int(((a == 0) != (b == 0)).sum())
    v = (a != 0) & (b != 0)
    if v.any():
        maxd = max(maxd, int(np.abs(a[v] - b[v]).max()))
print(n, holed, maxd, maskd)
PY
)
		set -- $res
		if [ "${1:-0}" -ge 4 ] && [ "$3" -le 1 ] && [ "$4" = 0 ]; then
			ok "$alg with holes: $1 cells ($2 with a hole) equal gdalwarp -srcnodata 0 on the cell (max $3 DN, masks identical)"
		else
			not_ok "$alg with holes: $1 cells, $2 with a hole, max diff $3 DN, masks differ at $4 px"
		fi
	done
else
	skip "no GDAL Python bindings"; skip "no GDAL Python bindings"
fi

# errors
check_exit "no grid exits 2" 2 mem-tile < scenes.json
check_exit "a bad grid exits 2" 2 mem-tile -g webmercator:99 < scenes.json
msg=$(stderr_of mem-tile -g webmercator:99)
case $msg in *"out of range"*) ok "a bad zoom says it is out of range" ;; *) not_ok "bad zoom message: $msg" ;; esac
check_exit "an unknown resampling exits 2" 2 mem-tile -g utm -r bogus < scenes.json
{ cat scenes.json; echo '{"type": "Feature", "id": '; cat scenes.json; } > bad.json
check_exit "a malformed line fails (exit 1), the rest is done" 1 sh -c "mem-tile -g webmercator:12 --workdir w < bad.json > part.json"
if [ "$(wc -l < part.json)" -ge 1 ]; then ok "items around the bad line are still tiled"; else not_ok "nothing tiled around the bad line"; fi
msg=$(stderr_of mem-tile -g webmercator:12 --workdir w < bad.json)
case $msg in *"<stdin>:2: malformed JSON"*) ok "the bad line is named by its number" ;; *) not_ok "bad line message: $msg" ;; esac
check_exit "--strict makes it fatal (exit 2)" 2 mem-tile --strict -g webmercator:12 --workdir w bad.json
/usr/bin/python3 -c "
import json
d = json.loads(open('scenes.json').readline())
d['assets']['red']['href'] = '/nonexistent/B04.tif'; del d['assets']['red']['file:checksum']
print(json.dumps(d))" > missing.json
check_exit "a missing asset file fails the item (exit 1)" 1 mem-tile -g webmercator:12 --workdir w missing.json
msg=$(stderr_of mem-tile -g webmercator:12 --workdir w missing.json)
case $msg in *"cannot open '/nonexistent/B04.tif': No such file or directory"*) ok "the missing file is named" ;; *) not_ok "missing file message: $msg" ;; esac
check_exit "a missing manifest exits 2" 2 mem-tile -g utm nope.json

done_testing
