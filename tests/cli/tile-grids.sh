#!/bin/sh
# mem-tile grids beyond one zoom: pyramids reduced from the finer level,
# OGC TileMatrixSet files (GDAL's NZTM2000, in northing-first axis order,
# and OGC's UTM31WGS84Quad from its published numbers), the same output whatever -j, and --mem
# keeping a full-size scene's tiling under its budget.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings"
demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scenes.json
D=demo/sentinel-2-l2a-demo/S2A_32TNR_20240715_0_L2A_DEMO

# --- a pyramid, z11-13 ---------------------------------------------------------
check "tile a pyramid webmercator:11-13" sh -c "mem-tile -g webmercator:11-13 --workdir w < scenes.json > pyr.json"
out=$(gdal_py - pyr.json <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
items = [json.loads(l) for l in open(sys.argv[1])]
by = {i['properties']['mem:grid']: i for i in items}
levels = sorted({int(g.split('/')[1]) for g in by})
# every parent's children: the finer cells (2x..2x+1, 2y..2y+1) present
want = {}
for g in by:
    _, z, x, y = g.split('/'); z, x, y = int(z), int(x), int(y)
    if z > 11:
        want.setdefault('webmercator/%d/%d/%d' % (z - 1, x // 2, y // 2), []).append(g)
missing = sorted(set(want) - {g for g in by if int(g.split('/')[1]) < 13})
extra = sorted(g for g in by if int(g.split('/')[1]) < 13 and g not in want)
# the pixels of each parent: the mean of the valid children pixels (red), the mode (scl)
maxd, modebad = 0.0, 0
for p, kids in want.items():
    if p not in by: continue
    _, z, x, y = p.split('/'); z, x, y = int(z), int(x), int(y)
    for key in ('red', 'scl'):
        big = np.zeros((512, 512)); have = np.zeros((512, 512), bool)
        for k in kids:
            kx, ky = int(k.split('/')[2]) - 2 * x, int(k.split('/')[3]) - 2 * y
            a = by[k]['assets'].get(key)
            if a is None: continue
            big[ky*256:(ky+1)*256, kx*256:(kx+1)*256] = gdal.Open(a['href']).ReadAsArray()
            have[ky*256:(ky+1)*256, kx*256:(kx+1)*256] = True
        got = gdal.Open(by[p]['assets'][key]['href']).ReadAsArray().astype(float)
        q = big.reshape(256, 2, 256, 2).transpose(0, 2, 1, 3).reshape(256, 256, 4)
        v = (q != 0)
        if key == 'red':
            with np.errstate(all='ignore'):
                m = np.where(v.any(2), np.floor(np.where(v, q, 0).sum(2) / np.maximum(v.sum(2), 1) + 0.5), 0)
            maxd = max(maxd, float(np.abs(m - got).max()))
        else:
            for i in range(256):
                for j in range(256):
                    vals = [c for c in q[i, j] if c != 0]
                    if not vals:
                        modebad += got[i, j] != 0; continue
                    cnt = {c: vals.count(c) for c in vals}
                    best = max(cnt.values())
                    modebad += got[i, j] != min(c for c in cnt if cnt[c] == best)
print(' '.join(map(str, levels)), len(missing), len(extra), maxd, modebad)
PY
)
set -- $out
if [ "$1 $2 $3" = "11 12 13" ] && [ "$4" = 0 ] && [ "$5" = 0 ]; then
	ok "levels 11, 12, 13; every parent of a z13 tile made, none other"
else
	not_ok "pyramid levels/parents: $out"
fi
if [ "$6" = 0.0 ]; then ok "a parent's red is the mean of its children's valid pixels, exactly"; else not_ok "parent red differs by $6"; fi
if [ "$7" = 0 ]; then ok "a parent's scl is the most common class of its children's pixels"; else not_ok "$7 scl pixels not the mode"; fi
p=$(json_get pyr.json "' '.join(l['href'] for l in d['links'] if l['rel'] == 'derived_from')")
[ -n "$p" ] && ok "pyramid tiles link the tiles they come from" || not_ok "no derived_from links"
mem-tile -g webmercator:11-13 --workdir w < scenes.json > pyr2.json
if cmp -s pyr.json pyr2.json; then ok "a rerun of the pyramid emits the same items"; else not_ok "pyramid rerun differs"; fi
# a run killed between levels: the finer tiles are there, a coarser one is not
gone=$(gdal_py -c "
import json, sys
print([d['assets']['red']['href'] for d in map(json.loads, open(sys.argv[1]))
       if d['properties']['mem:grid'].startswith('webmercator/12/')][0])" pyr.json)
rm -rf "$(dirname "$gone")"
mem-tile -g webmercator:11-13 --workdir w < scenes.json > pyr3.json
if cmp -s pyr.json pyr3.json && [ -f "$gone" ]; then ok "a coarser tile lost between levels is remade identically from the finer ones"; else not_ok "remade pyramid differs"; fi

# --- -j does not change the output -------------------------------------------
mem-tile -g webmercator:13 -j 1 --workdir j1 < scenes.json > j1.json
mem-tile -g webmercator:13 -j 3 --workdir j3 < scenes.json > j3.json
sed 's|/j1/|/jX/|g' j1.json > a.json; sed 's|/j3/|/jX/|g' j3.json > b.json
if cmp -s a.json b.json; then ok "-j 1 and -j 3 emit the same items in the same order"; else not_ok "-j changes the output"; fi

# --- kill -9 in the middle, then a rerun: the same items as an unbroken run ---
mem-tile -g webmercator:15 -j 1 --workdir clean < scenes.json > clean.json
mem-tile -g webmercator:15 -j 1 --workdir killed < scenes.json > /dev/null &
pid=$!
sleep 0.4
kill -9 $pid 2>/dev/null && diag "killed mem-tile after 0.4 s ($(ls killed/tiles 2>/dev/null | wc -l) cells begun)"
wait $pid 2>/dev/null || true
mem-tile -g webmercator:15 -j 1 --workdir killed < scenes.json > resumed.json
sed 's|/killed/|/X/|g' resumed.json > a.json; sed 's|/clean/|/X/|g' clean.json > b.json
if cmp -s a.json b.json; then ok "after kill -9 a rerun emits what an unbroken run does ($(wc -l < clean.json) tiles)"; else not_ok "resumed run differs"; fi
left=$(find killed -name '.*.tmp-*' | wc -l)
if [ "$left" = 0 ]; then ok "no temporary file left after the rerun"; else not_ok "$left temporary files left"; fi
gdal_py - resumed.json <<'PY' && ok "every resumed tile's files have their recorded checksums" || not_ok "a resumed tile's file is damaged"
import hashlib, json, sys
for l in open(sys.argv[1]):
    for a in json.loads(l)['assets'].values():
        if '1220' + hashlib.sha256(open(a['href'], 'rb').read()).hexdigest() != a['file:checksum']:
            sys.exit(1)
PY

# --- GDAL's NZTM2000 TileMatrixSet (1.0 JSON, northing first) ------------------
NZ=/usr/share/gdal/tms_NZTM2000.json
if [ -f "$NZ" ]; then
	mem-tile -g "tms:$NZ:10" --list-cells --bbox 174.70,-41.32,174.80,-41.25 > nz.txt
	want=$(gdal_py - "$NZ" <<'PY'
import json, math, sys
from osgeo import osr
t = json.load(open(sys.argv[1]))
m = [x for x in t['tileMatrix'] if x['identifier'] == '10'][0]
res = m['scaleDenominator'] * 0.00028               # metres per pixel (OGC's 0.28 mm pixel)
n0, e0 = m['topLeftCorner']                          # EPSG:2193 is northing, easting
span = res * m['tileWidth']
s = osr.SpatialReference(); s.ImportFromEPSG(4326); s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
d = osr.SpatialReference(); d.ImportFromEPSG(2193); d.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(s, d)
pts = [ct.TransformPoint(174.70 + 0.10 * i / 20, -41.32 + 0.07 * j / 20)[:2] for i in range(21) for j in range(21)]
e = [p[0] for p in pts]; n = [p[1] for p in pts]
c0, c1 = int(math.floor((min(e) - e0) / span)), int(math.floor((max(e) - e0) / span))
r0, r1 = int(math.floor((n0 - max(n)) / span)), int(math.floor((n0 - min(n)) / span))
print(' '.join(sorted('tms/NZTM2000/10/%d/%d' % (c, r) for c in range(c0, c1 + 1) for r in range(r0, r1 + 1))))
PY
)
	got=$(sort nz.txt | tr '\n' ' ' | sed 's/ $//')
	if [ -n "$got" ] && [ "$got" = "$want" ]; then
		ok "NZTM2000 level 10 cells of Wellington, from the file's northing-first corner ($(wc -l < nz.txt) cells)"
	else
		not_ok "NZTM2000 cells: got '$got', want '$want'"
	fi
else
	skip "no $NZ (GDAL's data)"
fi

# --- OGC's UTM31WGS84Quad (TileMatrixSet 2.0), from its published origin and
# level-1 cell size (OGC 17-083r4 register: pointOfOrigin -9501965.72931276,
# 20003931.4586255 in EPSG:32631; level 1 cellSize 78140.3572602559, 1x2
# tiles; every level halves), levels 12-13 over the demo scene in zone 32
gdal_py -c "
import json
o = [-9501965.72931276, 20003931.4586255]
print(json.dumps({'id': 'UTM31WGS84Quad', 'crs': 'http://www.opengis.net/def/crs/EPSG/0/32631',
  'orderedAxes': ['E', 'N'],
  'tileMatrices': [{'id': str(z), 'scaleDenominator': 279072704.500914 / 2 ** (z - 1),
    'cellSize': 78140.3572602559 / 2 ** (z - 1), 'cornerOfOrigin': 'topLeft', 'pointOfOrigin': o,
    'tileWidth': 256, 'tileHeight': 256, 'matrixWidth': 2 ** (z - 1), 'matrixHeight': 2 ** z}
    for z in range(1, 15)]}, indent=1))" > utm31.json
check "tile into tms:utm31.json:12-13" sh -c "mem-tile -g tms:utm31.json:12-13 -r near --workdir w < scenes.json > tms.json"
out=$(gdal_py - tms.json "$D/B04.tif" <<'PY'
import json, sys
import numpy as np
from osgeo import gdal
bad, n, lv = 0, 0, set()
for l in open(sys.argv[1]):
    d = json.loads(l); g = d['properties']['mem:grid']
    _, tid, level, col, row = g.split('/'); col, row = int(col), int(row); lv.add(level)
    res = 78140.3572602559 / 2 ** (int(level) - 1)
    x0 = -9501965.72931276 + col * 256 * res; y1 = 20003931.4586255 - row * 256 * res
    t = d['properties']['proj:transform']
    if abs(t[2] - x0) > 1e-6 or abs(t[5] - y1) > 1e-6 or abs(t[0] - res) > 1e-9 or d['properties']['proj:epsg'] != 32631:
        bad += 1
    if level == '13':
        ref = gdal.Warp('', sys.argv[2], format='MEM', dstSRS='EPSG:32631', outputBounds=(x0, y1 - 256 * res, x0 + 256 * res, y1),
                        width=256, height=256, resampleAlg='near')
        a = gdal.Open(d['assets']['red']['href']).ReadAsArray().astype(int)
        bad += int((a != ref.ReadAsArray()).sum() > 0); n += 1
print(tid, ' '.join(sorted(lv)), n, bad)
PY
)
set -- $out
if [ "$1" = UTM31WGS84Quad ] && [ "$2 $3" = "12 13" ] && [ "$4" -gt 0 ] && [ "$5" = 0 ]; then
	ok "UTM31WGS84Quad levels 12 and 13 on the published origin and cell sizes; level 13 tiles equal gdalwarp -r near on the cell ($4 tiles)"
else
	not_ok "UTM31WGS84Quad: $out"
fi
if mem-tile -g tms:utm31.json:5m < /dev/null 2> e; then not_ok "unknown tile matrix accepted"; else
	grep -q "no tile matrix '5m' in TileMatrixSet UTM31WGS84Quad" e && ok "an unknown tile matrix is named" || not_ok "message: $(cat e)"; fi
echo '{"id":"x","crs":"http://www.opengis.net/def/crs/OGC/0/LOCAL","tileMatrices":[]}' > local.json
if mem-tile -g tms:local.json:0 < /dev/null 2> e; then not_ok "a non-EPSG TMS accepted"; else
	grep -q "not an EPSG code" e && ok "a TileMatrixSet in a CRS PROJ cannot name is refused" || not_ok "message: $(cat e)"; fi

# --- --mem on a full-size scene --------------------------------------------------
if mem-tile -g webmercator:12 --mem 20M < /dev/null 2> e; then not_ok "--mem 20M accepted"; else
	grep -q "too small: mem-tile needs at least" e && ok "a --mem below what a run needs is refused with the least that would do" || not_ok "message: $(cat e)"; fi
if [ -n "${MEM_SANITIZED:-}" ]; then
	skip "peak RSS under --mem: sanitizer shadow memory makes RSS meaningless in this build"
else
	# a 10980 x 10980 UInt16 band at 10 m (a Sentinel-2 tile), DEFLATE, 512 px blocks
	ul=$(gdal_py -c "
from osgeo import gdal; import sys
g = gdal.Open(sys.argv[1]).GetGeoTransform(); print(g[0], g[3], g[0] + 109800, g[3] - 109800)" "$D/B04.tif")
	gdal_translate -q -outsize 10980 10980 -r bilinear -a_ullr $ul -co TILED=YES -co BLOCKXSIZE=512 \
	    -co BLOCKYSIZE=512 -co COMPRESS=DEFLATE "$D/B04.tif" big.tif
	gdal_py - "$T/big.tif" > big.json <<'PY'
import json, sys
from osgeo import gdal, osr
d = json.loads(open('scenes.json').readline())
a = {k: v for k, v in d['assets']['red'].items() if not k.startswith('file:')}
a['href'] = sys.argv[1]
ds = gdal.Open(sys.argv[1]); g = ds.GetGeoTransform()
s = osr.SpatialReference(); s.ImportFromWkt(ds.GetProjection()); t = osr.SpatialReference(); t.ImportFromEPSG(4326)
for r in (s, t):
    r.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(s, t)
pts = [ct.TransformPoint(g[0] + 109800 * i / 10, g[3] - 109800 * j / 10)[:2] for i in range(11) for j in range(11)]
b = [min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)]
d.update(id='big', bbox=b, assets={'red': a},
         geometry={'type': 'Polygon', 'coordinates': [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]]})
print(json.dumps(d))
PY
	rss=$(gdal_py -c "
import resource, subprocess, sys
subprocess.run(['mem-tile', '-g', 'webmercator:12', '-j', '2', '--mem', '160M', '--workdir', 'wb'],
               stdin=open('big.json'), stdout=open('big.out', 'w'), check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")
	n=$(wc -l < big.out)
	if [ "$n" -gt 150 ] && [ "$rss" -lt 160 ]; then
		ok "a full-size scene ($n z12 tiles) within --mem 160M: peak RSS $rss MB"
	else
		not_ok "full-size scene: $n tiles, peak RSS $rss MB against --mem 160M"
	fi
fi
done_testing
