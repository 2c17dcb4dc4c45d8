#!/bin/sh
# mem-store --cube: a netCDF-4 CF-1.8 datacube that GDAL opens with the
# right CRS and geotransform, whose pixels equal the tiles', the same bytes
# from the same inputs; --append adds dates (in order, widening the extent)
# and skips those present; items of another grid are refused; a kill -9 in
# the middle of an append leaves the previous cube readable.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
gdal_py -c 'from osgeo import gdal; assert gdal.GetDriverByName("netCDF")' 2>/dev/null ||
	skip_all "GDAL has no netCDF driver"
demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
mem-tile -g webmercator:14 --workdir w < scene.json > tiles.json
mem-infer -s ndvi --workdir w < tiles.json > res.json

# another date from items: each raster rewritten with other values (NDVI
# negated, integers halved), the datetime moved to DAY, the cells shifted
# by SHIFT cells to the east
cat > newdate.py <<'PY'
import json, os, sys
from osgeo import gdal
import numpy as np
src, out, day, shift = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.makedirs(out, exist_ok=True)
with open(src) as f, open(out + '.json', 'w') as o:
    for line in f:
        d = json.loads(line)
        d['id'] += '-' + day
        d['properties']['datetime'] = day + 'T10:30:00Z'
        for k, a in d['assets'].items():
            ds = gdal.Open(a['href'])
            x = ds.GetRasterBand(1).ReadAsArray()
            if x.dtype.kind == 'f':
                x = np.where(np.isnan(x), x, -x)
            else:
                x = np.where(x == 0, 0, np.maximum(x // 2, 1)).astype(x.dtype)
            p = os.path.join(out, d['id'] + '-' + k + '.tif')
            t = gdal.GetDriverByName('GTiff').CreateCopy(p, ds)
            g = list(ds.GetGeoTransform())
            g[0] += shift * ds.RasterXSize * g[1]
            t.SetGeoTransform(g)
            t.GetRasterBand(1).WriteArray(x)
            t = None
            a['href'] = os.path.abspath(p)
            a.pop('file:checksum', None)
            a.pop('file:size', None)
        o.write(json.dumps(d) + '\n')
PY
# same CUBE ITEMS VAR: every item's VAR equals the cube's at its place and date;
# prints "items mismatches"
cat > same.py <<'PY'
import json, sys
from datetime import datetime, timezone
from osgeo import gdal
import numpy as np
cube, items, var = sys.argv[1:4]
c = gdal.Open('NETCDF:%s:%s' % (cube, var))
gt = c.GetGeoTransform()
days = [datetime.fromtimestamp(float(c.GetRasterBand(b + 1).GetMetadataItem('NETCDF_DIM_time')),
        timezone.utc).strftime('%Y-%m-%d') for b in range(c.RasterCount)]
n = bad = 0
for line in open(items):
    d = json.loads(line)
    t = gdal.Open(d['assets'][var]['href'])
    g = t.GetGeoTransform()
    col, row = round((g[0] - gt[0]) / gt[1]), round((g[3] - gt[3]) / gt[5])
    x = t.GetRasterBand(1).ReadAsArray()
    y = c.GetRasterBand(days.index(d['properties']['datetime'][:10]) + 1).ReadAsArray(
        col, row, t.RasterXSize, t.RasterYSize)
    n += 1
    bad += not np.array_equal(x, y, equal_nan=x.dtype.kind == 'f')
print(n, bad)
PY
same() {
	r=$(gdal_py same.py "$@" 2>&1) || r="error: $r"
	case $r in *' 0') ok "$4 ($r)" ;; *) not_ok "$4: items, mismatches: $r" ;; esac
}
# ndays CUBE [VAR]: the number of dates
ndays() { gdal_py -c "from osgeo import gdal; import sys; print(gdal.Open('NETCDF:%s:%s' % (sys.argv[1], sys.argv[2])).RasterCount)" "$1" "${2:-ndvi}" 2>&1; }

# --- one date --------------------------------------------------------------------
check "mem-store --cube writes a cube of the results and tiles" \
	sh -c 'mem-store --cube cube.nc res.json tiles.json > item.json'
[ "$(wc -l < item.json)" -eq 1 ] && ok "one item for the cube on stdout" || not_ok "$(wc -l < item.json) items on stdout"
sum=$(json_get item.json "d['assets']['cube']['file:checksum']")
[ "$sum" = "1220$(sha256sum cube.nc | cut -d' ' -f1)" ] && ok "its file:checksum is the cube's" || not_ok "cube item checksum $sum"
geo=$(gdal_py - cube.nc tiles.json <<'PY'
import json, sys
from osgeo import gdal
d = gdal.Open('NETCDF:%s:ndvi' % sys.argv[1])
gts = [gdal.Open(json.loads(l)['assets']['red']['href']).GetGeoTransform() for l in open(sys.argv[2])]
x0 = min(g[0] for g in gts); y0 = max(g[3] for g in gts)
x1 = max(g[0] + 256 * g[1] for g in gts); y1 = min(g[3] + 256 * g[5] for g in gts)
g = d.GetGeoTransform()
print(d.GetSpatialRef().GetAuthorityCode(None),
      int(abs(g[0] - x0) < 1e-6 and abs(g[3] - y0) < 1e-6 and abs(g[1] - gts[0][1]) < 1e-8
          and abs(g[5] - gts[0][5]) < 1e-8 and g[2] == 0 and g[4] == 0),
      int(d.RasterXSize == round((x1 - x0) / g[1]) and d.RasterYSize == round((y0 - y1) / -g[5])),
      d.RasterXSize, d.RasterYSize)
PY
)
case $geo in "3857 1 1 "*) ok "GDAL opens NETCDF:cube.nc:ndvi in EPSG:3857, origin and size the tiles' union ($geo)" ;;
	*) not_ok "GDAL reads CRS, geotransform, size: $geo" ;; esac
if command -v ncdump > /dev/null; then
	ncdump -hs cube.nc > h.txt
	missing=
	for want in ':Conventions = "CF-1.8"' ':history = ' ':source = "memories ' \
	    'ndvi:grid_mapping = "crs"' 'ndvi:_FillValue = NaNf' 'red:_FillValue = 0US' \
	    'red:scale_factor = 0.0001' 'ushort red(time, y, x)' 'ubyte scl(time, y, x)' \
	    'x:standard_name = "projection_x_coordinate"' 'y:standard_name = "projection_y_coordinate"' \
	    'x:units = "m"' 'y:units = "m"' 'time:standard_name = "time"' \
	    'time:units = "seconds since 1970-01-01 00:00:00"' 'time:calendar = "standard"' \
	    'crs:grid_mapping_name = "mercator"' 'crs:crs_wkt = "PROJCS[\"WGS 84 / Pseudo-Mercator\"' \
	    'crs:spatial_ref = ' 'ndvi:_ChunkSizes = 1, 256, 256' 'ndvi:_Shuffle = "true"' \
	    'ndvi:_DeflateLevel = 4' ':_Format = "netCDF-4"'; do
		grep -qF "$want" h.txt || missing="$missing [$want]"
	done
	[ -z "$missing" ] && ok "ncdump -h shows the CF attributes, chunking and compression" || not_ok "ncdump -h lacks$missing"
else
	skip "no ncdump (apt-get install netcdf-bin)"
fi
# every standard_name is in the CF table, with units of its canonical units
cf=$MEM_SRCDIR/../shared/schemas/cf/cf-standard-name-table.xml
if [ -f "$cf" ] && command -v ncdump > /dev/null; then
	r=$(ncdump -h cube.nc | gdal_py -c "
import re, sys, xml.etree.ElementTree as ET
units = {e.get('id'): e.findtext('canonical_units') for e in ET.parse(sys.argv[1]).getroot().iter('entry')}
h = sys.stdin.read()
bad, n = [], 0
for var, name in re.findall(r'\t\t(\w+):standard_name = \"([^\"]+)\"', h):
    n += 1
    u = re.search(r'\t\t%s:units = \"([^\"]+)\"' % var, h)
    u = u.group(1) if u else None
    if name not in units:
        bad.append(name + ' not in the table')
    elif not (u == units[name] or (units[name] == 's' and u and ' since ' in u and u.startswith('seconds'))):
        bad.append('%s in %s, canonical %s' % (name, u, units[name]))
print(n, '; '.join(bad) or 'ok')" "$cf" 2>&1)
	case $r in "3 ok") ok "the 3 standard names are in the CF table, in their canonical units" ;; *) not_ok "standard names: $r" ;; esac
else
	skip "no CF standard name table in $MEM_SRCDIR/../shared/schemas/cf or no ncdump"
fi
same cube.nc res.json ndvi "ndvi read back at each tile's place equals the tile"
same cube.nc tiles.json red "red read back equals the tile"
same cube.nc tiles.json scl "scl read back equals the tile"
mem-store --cube again.nc res.json tiles.json > /dev/null
cmp -s cube.nc again.nc && ok "the same items give the same bytes" || not_ok "two cubes of the same items differ"

# a UTM grid: transverse Mercator in CF terms
mem-tile -g utm:20:256 --bands red,nir --workdir w < scene.json > utm.json
check "a cube of UTM tiles" sh -c 'mem-store --cube utm.nc utm.json > /dev/null'
if command -v ncdump > /dev/null; then
	ncdump -h utm.nc > hu.txt
	missing=
	for want in 'crs:grid_mapping_name = "transverse_mercator"' 'crs:longitude_of_central_meridian = 9.' \
	    'crs:scale_factor_at_central_meridian = 0.9996' 'crs:false_easting = 500000.' \
	    'crs:latitude_of_projection_origin = 0.' 'crs:semi_major_axis = 6378137.' \
	    'crs:inverse_flattening = 298.257223563'; do
		grep -qF "$want" hu.txt || missing="$missing [$want]"
	done
	[ -z "$missing" ] && ok "its grid mapping has the CF transverse_mercator parameters" || not_ok "UTM grid mapping lacks$missing"
else
	skip "no ncdump"
fi
epsg=$(gdal_py -c "from osgeo import gdal; print(gdal.Open('NETCDF:utm.nc:red').GetSpatialRef().GetAuthorityCode(None))")
[ "$epsg" = 32632 ] && ok "GDAL reads it as EPSG:32632" || not_ok "UTM cube CRS: $epsg"
same utm.nc utm.json nir "UTM nir read back equals the tiles"

# --- a mask: UInt8 0/1 with nodata 255 in the tiles, a ubyte variable with
# _FillValue 255 in the cube, the same bytes --------------------------------------------
check "mem-store --cube of the tiles' cloud masks" sh -c \
	'mem-infer -s cloudmask --workdir w < tiles.json > mask.json && mem-store --cube mask.nc mask.json > /dev/null'
same mask.nc mask.json cloudmask "every tile's cloud mask equals the cube's, byte for byte"
r=$(gdal_py - mask.nc mask.json <<'PY' 2>&1
import json, sys
import numpy as np
from osgeo import gdal
c = gdal.Open('NETCDF:%s:cloudmask' % sys.argv[1])
b = c.GetRasterBand(1)
x = b.ReadAsArray()
ones = 0
for line in open(sys.argv[2]):
    t = gdal.Open(json.loads(line)['assets']['cloudmask']['href'])
    ones += int((t.GetRasterBand(1).ReadAsArray() == 1).sum())
print(gdal.GetDataTypeName(b.DataType), b.GetNoDataValue(), sorted(np.unique(x).tolist()),
      int((x == 1).sum()) == ones > 0)
PY
)
[ "$r" = "Byte 255.0 [0, 1, 255] True" ] && ok "GDAL reads the cube's cloudmask as Byte, nodata 255, values 0 1 255, the tiles' 1s" ||
	not_ok "cube cloudmask: $r"
if command -v ncdump > /dev/null; then
	ncdump -h mask.nc > hm.txt
	grep -qF 'ubyte cloudmask(time, y, x)' hm.txt && grep -qF 'cloudmask:_FillValue = 255UB' hm.txt &&
		ok "ncdump: ubyte cloudmask with _FillValue 255" || not_ok "ncdump: $(grep cloudmask hm.txt | head -3)"
else
	skip "no ncdump"
fi

# --- append ------------------------------------------------------------------------
gdal_py newdate.py res.json d2 2024-07-20 0
gdal_py newdate.py tiles.json d2t 2024-07-20 0
cp cube.nc base.nc
check "--append a second date" sh -c 'mem-store --cube cube.nc --append d2.json d2t.json > /dev/null'
[ "$(ndays cube.nc)" = 2 ] && ok "the cube has two dates" || not_ok "dates: $(ndays cube.nc)"
same cube.nc res.json ndvi "the first date's ndvi is unchanged"
same cube.nc d2.json ndvi "the second date's ndvi equals its tiles"
same cube.nc d2t.json nir "the second date's nir equals its tiles"
cp cube.nc two.nc
ino=$(stat -c %i cube.nc)
check "appending the same dates again exits 0" sh -c 'mem-store --cube cube.nc --append d2.json res.json tiles.json > /dev/null'
cmp -s cube.nc two.nc && [ "$(stat -c %i cube.nc)" = "$ino" ] && ok "and changes no byte (not even rewritten)" || not_ok "a rerun of --append changed the cube"
# two shards of one date, appended one after the other: one time step, every cell
head -20 res.json > shard1.json
tail -n +21 res.json > shard2.json
mem-store --cube shards.nc shard1.json > /dev/null
check "--append the other shard of the same date" sh -c 'mem-store --cube shards.nc --append shard2.json > /dev/null'
[ "$(ndays shards.nc)" = 1 ] && ok "still one date" || not_ok "shards make $(ndays shards.nc) dates"
same shards.nc res.json ndvi "both shards' cells are in it"
cp shards.nc shards2.nc
mem-store --cube shards.nc --append shard1.json shard2.json > /dev/null
cmp -s shards.nc shards2.nc && ok "appending both shards again changes no byte" || not_ok "a rerun of the shards changed the cube"
# the two shards appended at the same time: they take turns, neither is lost
mem-store --cube d2only.nc d2.json > /dev/null
lost=0
for i in 1 2 3; do
	cp d2only.nc both.nc
	mem-store --cube both.nc --append shard1.json > /dev/null &
	p1=$!
	mem-store --cube both.nc --append shard2.json > /dev/null &
	p2=$!
	wait $p1 $p2 || true
	r=$(gdal_py same.py both.nc res.json ndvi 2>&1) || true
	[ "$r" = "49 0" ] || lost=$((lost + 1))
done
[ "$lost" -eq 0 ] && ok "two appends at once to one cube keep both (3 runs)" || not_ok "$lost of 3 concurrent appends lost a shard"
# an earlier date, with cells one column east of the cube: it widens, dates stay in order
gdal_py newdate.py res.json d0 2024-07-10 1
check "--append an earlier date on new cells" sh -c 'mem-store --cube cube.nc --append d0.json > /dev/null'
order=$(gdal_py -c "
from osgeo import gdal; import sys
d = gdal.Open('NETCDF:%s:ndvi' % sys.argv[1])
t = [float(d.GetRasterBand(b + 1).GetMetadataItem('NETCDF_DIM_time')) for b in range(d.RasterCount)]
print(len(t), int(t == sorted(t)), d.RasterXSize)" cube.nc)
[ "$order" = "3 1 2048" ] && ok "three dates in time order, 256 columns wider" || not_ok "dates, ordered, width: $order"
same cube.nc d0.json ndvi "the earlier date's ndvi, on its new cells"
same cube.nc res.json ndvi "the first date's ndvi, moved with the extent"
same cube.nc d2t.json red "the second date's red, moved with the extent"
if command -v ncdump > /dev/null; then
	ncdump -h cube.nc | grep -q 'added 2024-07-15\\nmem-store --cube: added 2024-07-20\\nmem-store --cube: added 2024-07-10"' &&
		ok "history says what each run added" || not_ok "history: $(ncdump -h cube.nc | grep history)"
else
	skip "no ncdump"
fi

# --- other grids -----------------------------------------------------------------------
cp cube.nc three.nc
mem-store --cube cube.nc --append scene.json > /dev/null 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && ok "an item in another CRS fails (exit 1)" || not_ok "another CRS: exit $rc"
grep -q "item 'S2A_32TNR_20240715_0_L2A_DEMO': asset 'red' is not on the cube's grid: CRS EPSG:32632, the cube's is EPSG:3857" err.txt &&
	ok "the message names the item, the asset and both CRSs" || not_ok "message: $(cat err.txt)"
cmp -s cube.nc three.nc && ok "and the cube is left as it was" || not_ok "a refused item changed the cube"
mem-tile -g webmercator:13 --bands red --workdir w < scene.json > z13.json
gdal_py newdate.py z13.json d5 2024-07-25 0
mem-store --cube cube.nc --append d5.json > /dev/null 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "is not on the cube's grid: pixel size" err.txt &&
	ok "another pixel size is refused, named" || not_ok "zoom 13 into a zoom 14 cube: exit $rc, $(cat err.txt)"
cat scene.json tiles.json | mem-store --cube mixed.nc > /dev/null 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && [ "$(ndays mixed.nc red)" = 1 ] && ok "a fresh cube keeps the items on its grid and fails the others (exit 1)" ||
	not_ok "mixed: exit $rc, dates $(ndays mixed.nc red)"
check_exit "no items at all exits 2" 2 sh -c 'mem-store --cube empty.nc < /dev/null'
[ ! -e empty.nc ] && ok "and writes no file" || not_ok "empty.nc written"
check_exit "--append without --cube exits 2" 2 mem-store -o out --append < res.json
echo 'not a cube' > junk.nc
mem-store --cube junk.nc --append res.json > /dev/null 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 2 ] && grep -q "cannot open cube 'junk.nc'" err.txt && ok "--append to a file that is no cube exits 2, named" || not_ok "junk: exit $rc, $(cat err.txt)"
check_exit "an unwritable directory exits 2" 2 sh -c 'mem-store --cube /proc/none/c.nc < res.json'

# --- kill -9 during --append ----------------------------------------------------------
# Kill at times spread over the run; each time the cube must open with the
# first date intact, and some kills must land while the copy is written.
gdal_py -c "
from osgeo import gdal; import numpy as np, sys
d = gdal.Open('NETCDF:base.nc:ndvi')  # kept: a band outliving its dataset crashes
np.save('base.npy', d.GetRasterBand(1).ReadAsArray())"
# The moments are fractions of an uninterrupted append's time here, so
# that a slow build (sanitizers) is killed at the same stages as a fast one.
cp base.nc k.nc
t0=$(date +%s%N)
mem-store --cube k.nc --append d2.json d2t.json > /dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
diag "an uninterrupted append takes $ms ms"
readable=0 mid=0 tries=0
for pc in 5 15 25 35 45 55 62 70 77 84 90 95; do
	cp base.nc k.nc
	mem-store --cube k.nc --append d2.json d2t.json > /dev/null 2>&1 &
	pid=$!
	sleep "$(awk -v ms="$ms" -v pc="$pc" 'BEGIN { print ms * pc / 100000 }')"
	kill -9 "$pid" 2> /dev/null || true
	wait "$pid" 2> /dev/null || true
	tries=$((tries + 1))
	ls -a | grep -q '^\.k\.nc\.tmp-' && mid=$((mid + 1))
	r=$(gdal_py -c "
from osgeo import gdal; import numpy as np
d = gdal.Open('NETCDF:k.nc:ndvi')
print(d.RasterCount in (1, 2) and np.array_equal(d.GetRasterBand(1).ReadAsArray(), np.load('base.npy'), equal_nan=True))" 2>&1) || true
	[ "$r" = True ] && readable=$((readable + 1))
	rm -f .k.nc.tmp-*
done
[ "$readable" -eq "$tries" ] && ok "after kill -9 at $tries moments of an append, the cube always opens with its first date" ||
	not_ok "only $readable of $tries killed appends left a readable cube"
[ "$mid" -gt 0 ] && ok "$mid of the kills landed while the new copy was being written" ||
	not_ok "no kill landed mid-write (the append was too fast to test)"
cp base.nc k.nc
mem-store --cube k.nc --append d2.json > /dev/null &
pid=$!
sleep "$(awk -v ms="$ms" 'BEGIN { print ms * 0.5 / 1000 }')"
kill -9 "$pid" 2> /dev/null || true
wait "$pid" 2> /dev/null || true
check "an append after a killed one completes" sh -c 'mem-store --cube k.nc --append d2.json > /dev/null'
[ "$(ndays k.nc)" = 2 ] && ok "with both dates" || not_ok "dates after resume: $(ndays k.nc)"
left=$(ls -a | grep -c '^\.k\.nc\.tmp-' || true)
[ "$left" -eq 0 ] && ok "and the killed run's temporary copy is swept" || not_ok "$left temporary copies left"

done_testing
