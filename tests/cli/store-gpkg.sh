#!/bin/sh
# mem-store with vector assets: the GeoPackages of mem-fetch --vector and
# of mem-infer's zonal stage stored with their items, one table per
# product with a spatial index, features equal to the source's, checksummed,
# the same bytes on a rerun; a missing GeoPackage fails its item only.
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
demo
# twelve fields over the demo scene, with a name and a crop class
gdal_py - <<'PY'
import itertools
from osgeo import ogr, osr
ds = ogr.GetDriverByName('GeoJSON').CreateDataSource('fields.geojson')
srs = osr.SpatialReference(); srs.ImportFromEPSG(4326)
l = ds.CreateLayer('fields', srs, ogr.wkbPolygon)
l.CreateField(ogr.FieldDefn('name', ogr.OFTString)); l.CreateField(ogr.FieldDefn('crop', ogr.OFTInteger))
for k, (i, j) in enumerate(itertools.product(range(4), range(3))):
    x, y = 9.76 + i * 0.01, 46.135 + j * 0.01
    f = ogr.Feature(l.GetLayerDefn()); f.SetField('name', 'f%d' % k); f.SetField('crop', k % 3)
    f.SetGeometry(ogr.CreateGeometryFromWkt('POLYGON((%f %f,%f %f,%f %f,%f %f,%f %f))' % (x, y, x + .008, y, x + .008, y + .008, x, y + .008, x, y)))
    l.CreateFeature(f)
PY
mem-fetch --vector fields.geojson --bbox 9.7,46.1,9.9,46.2 --workdir w > vec.json
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w |
	mem-infer -s ndvi -s 'zonal:zones=fields.geojson,stats=count,mean,max' --workdir w > zonal.json

check "store a vector layer and zonal statistics" sh -c "cat vec.json zonal.json | mem-store -o out > stored.json"
[ "$(wc -l < stored.json)" -eq 2 ] && ok "two stored items" || not_ok "stored items: $(wc -l < stored.json)"

# same SRC DST TABLE: DST opens with OGR, has one table TABLE with an R-tree
# index, and its features equal SRC's (attributes, and geometries as sets)
cat > same.py <<'PY'
import sqlite3, sys
from osgeo import ogr
src, dst, table = sys.argv[1:4]
s = ogr.Open(src)   # kept: a layer dies with its dataset
a = s.GetLayer(0)
d = ogr.Open(dst)
names = [d.GetLayer(i).GetName() for i in range(d.GetLayerCount())]
if names != [table]:
    print('tables', names); sys.exit(0)
b = d.GetLayer(0)
rt = sqlite3.connect(dst).execute("select count(*) from sqlite_master where name = 'rtree_%s_%s'" % (table, b.GetGeometryColumn())).fetchone()[0]
fa = [(f.items(), f.GetGeometryRef().Clone()) for f in a]
fb = [(f.items(), f.GetGeometryRef().Clone()) for f in b]
bad = len(fa) != len(fb)
for (ia, ga), (ib, gb) in zip(fa, fb):
    bad += ia != ib or not ga.Equals(gb)
print(len(fb), bad, 'rtree' if rt else 'no-rtree')
PY
vid=$(json_get vec.json "d['id']")
g=out/vectors/$vid/data.gpkg
[ -f "$g" ] && ok "the layer stored as COLLECTION/ID/ASSET.gpkg" || not_ok "no $g"
ogrinfo -ro -q "$g" > /dev/null 2>&1 && ok "ogrinfo opens it" || not_ok "ogrinfo cannot open $g"
r=$(gdal_py same.py "$(json_get vec.json "d['assets']['data']['href']")" "$g" fields 2>&1) || r="error: $r"
[ "$r" = "12 0 rtree" ] && ok "table 'fields': 12 features equal the source's, spatial index" || not_ok "fields: $r"
zid=$(json_get zonal.json "d['id']")
z=$(ls out/*/"$zid"/zonal_ndvi.gpkg 2>/dev/null || true)
[ -n "$z" ] && ok "zonal statistics stored beside the NDVI COG" || not_ok "no zonal_ndvi.gpkg"
r=$(gdal_py same.py "$(json_get zonal.json "d['assets']['zonal_ndvi']['href']")" "$z" zonal_ndvi 2>&1) || r="error: $r"
case $r in *' 0 rtree') ok "table 'zonal_ndvi': features and statistics equal the stage's ($r)" ;; *) not_ok "zonal: $r" ;; esac
ij=out/vectors/$vid/$vid.json
[ "$(json_get "$ij" "d['assets']['data']['file:checksum']")" = "1220$(sha256sum "$g" | cut -d' ' -f1)" ] && ok "file:checksum of the GeoPackage" || not_ok "checksum"
[ "$(json_get "$ij" "d['assets']['data']['type']")" = application/geopackage+sqlite3 ] && ok "media type application/geopackage+sqlite3" || not_ok "type"
[ "$(json_get "$ij" "d['assets']['data']['mem:feature_count']")" = 12 ] && ok "mem:feature_count" || not_ok "mem:feature_count"
check "mem-store verify accepts the catalog" mem-store verify out

# the same bytes from the same input; a rerun leaves it alone
mem-store -o again < vec.json > /dev/null
cmp -s "$g" "again/vectors/$vid/data.gpkg" && ok "the same input gives the same bytes" || not_ok "bytes differ between runs"
before=$(stat -c %Y.%i "$g")
mem-store -o out < vec.json > /dev/null
[ "$(stat -c %Y.%i "$g")" = "$before" ] && ok "a rerun leaves it alone" || not_ok "a rerun rewrote it"
# --mosaic stores vector-only items as they are
mem-store -o mos --mosaic < vec.json > /dev/null
cmp -s "$g" "mos/vectors/$vid/data.gpkg" && ok "--mosaic stores a vector item as it is" || not_ok "--mosaic lost the vector item"

# a missing GeoPackage fails its item, named; nothing of it visible
/usr/bin/python3 -c "
import json
d = json.loads(open('vec.json').readline())
d['id'] = 'broken'; d['assets']['data']['href'] = '$T/nothing.gpkg'
print(json.dumps(d))" > broken.json
cat broken.json vec.json | mem-store -o bout > b.json 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && [ "$(wc -l < b.json)" -eq 1 ] && ok "a missing GeoPackage fails its item (exit 1), the other is stored" || not_ok "exit $rc, $(wc -l < b.json) stored"
grep -q "cannot open '$T/nothing.gpkg'" err.txt && ok "the missing file is named" || not_ok "message: $(cat err.txt)"
[ -z "$(find bout -path '*broken*' -type f)" ] && [ -z "$(find bout out -name '.*tmp*')" ] && ok "nothing half-written visible" || not_ok "partial files: $(find bout -path '*broken*')"

done_testing
