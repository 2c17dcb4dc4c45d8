#!/bin/sh
# mem-fetch --vector: real OSM PBF, GeoJSON and Shapefile layers cut to an
# AOI or a box (crossing features cut, not dropped), compared with
# ogr2ogr -clipsrc; reprojection; one GeoPackage and one item per layer.
. "$MEM_SRCDIR/tests/lib.sh"

PBF=$(realdata vector/osm/liechtenstein-2013-08-03.osm.pbf)
FIELDS=$(realdata vector/fields/texas_west_fields.geojson)
NE=$(realdata vector/naturalearth_lowres/naturalearth_lowres.shp)
[ -n "$PBF" ] && [ -n "$FIELDS" ] && [ -n "$NE" ] || skip_all "no vectors in ../shared/realdata/vector"
have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"

# measure GPKG LAYER: feature count, summed length or area (in the layer's CRS), envelope
measure() {
	gdal_py - "$@" <<'PY'
import sys
from osgeo import gdal, ogr
gdal.PushErrorHandler("CPLQuietErrorHandler")
def size(g):
    if g.GetDimension() == 2:
        return g.GetArea()
    if g.GetDimension() == 1:
        if g.GetGeometryCount() > 0:
            return sum(size(g.GetGeometryRef(i)) for i in range(g.GetGeometryCount()))
        return g.Length()
    return 0.0
ds = ogr.Open(sys.argv[1]); lyr = ds.GetLayerByName(sys.argv[2]) if len(sys.argv) > 2 else ds.GetLayer(0)
n, total, env = 0, 0.0, [1e300, 1e300, -1e300, -1e300]
for f in lyr:
    g = f.GetGeometryRef()
    if g is None or g.IsEmpty():
        continue
    n += 1
    total += size(g)
    e = g.GetEnvelope()
    env = [min(env[0], e[0]), min(env[1], e[2]), max(env[2], e[1]), max(env[3], e[3])]
print(n, "%.9g" % total, " ".join("%.9f" % v for v in env))
PY
}
close() { /usr/bin/python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1e-12) else 1)" "$1" "$2"; }

# OSM PBF, cut to a box
check "OSM PBF cut to a box" sh -c "mem-fetch --vector '$PBF' --bbox 9.50,47.10,9.55,47.15 --workdir w > osm.json"
n=$(wc -l < osm.json)
[ "$n" -eq 5 ] && ok "one item per OSM layer (points, lines, multilinestrings, multipolygons, other_relations)" || not_ok "$n items"
for layer in lines multipolygons points; do
	g=$(grep "\"mem:layer\":\"$layer\"" osm.json | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['assets']['data']['href'])")
	ogr2ogr -q -f GPKG "ref-$layer.gpkg" "$PBF" "$layer" -clipsrc 9.50 47.10 9.55 47.15 -nlt PROMOTE_TO_MULTI 2>/dev/null
	set -- $(measure "$g")
	mine_n=$1 mine_t=$2 e0=$3 e1=$4 e2=$5 e3=$6
	set -- $(measure "ref-$layer.gpkg")
	[ "$mine_n" -eq "$1" ] && [ "$mine_n" -gt 0 ] && ok "$layer: $mine_n features, as ogr2ogr -clipsrc keeps" || not_ok "$layer: $mine_n features, ogr2ogr keeps $1"
	if [ "$layer" = lines ]; then
		# per way: whole when inside the box; else what ogr2ogr cuts (ogr2ogr
		# intersects even inner ways, which merges a self-overlapping way)
		bad=$(gdal_py - "$g" "ref-$layer.gpkg" "$PBF" <<'PY'
import sys
from osgeo import gdal, ogr
gdal.PushErrorHandler("CPLQuietErrorHandler")
def L(g):
    return sum(L(g.GetGeometryRef(i)) for i in range(g.GetGeometryCount())) if g.GetGeometryCount() else g.Length()
def load(p, name=None):
    ds = ogr.Open(p); lyr = ds.GetLayerByName(name) if name else ds.GetLayer(0)
    return {f.GetField("osm_id"): f.GetGeometryRef().Clone() for f in lyr if f.GetGeometryRef()}
box = ogr.CreateGeometryFromWkt("POLYGON((9.5 47.1,9.55 47.1,9.55 47.15,9.5 47.15,9.5 47.1))")
mine, ref, src = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3], "lines")
bad = 0
for k, g in mine.items():
    want = L(src[k]) if src[k].Within(box) else L(ref[k])
    bad += abs(L(g) - want) > 1e-12
print(bad)
PY
)
		[ "$bad" -eq 0 ] && ok "lines: each way whole inside the box, cut as ogr2ogr cuts at its edge" || not_ok "lines: $bad ways differ"
	else
		close "$mine_t" "$2" && ok "$layer: total size $mine_t equals ogr2ogr's" || not_ok "$layer: total $mine_t, ogr2ogr $2"
	fi
	/usr/bin/python3 -c "import sys; e = list(map(float, sys.argv[1:])); sys.exit(0 if e[0] >= 9.5 - 1e-9 and e[1] >= 47.1 - 1e-9 and e[2] <= 9.55 + 1e-9 and e[3] <= 47.15 + 1e-9 else 1)" $e0 $e1 $e2 $e3 \
		&& ok "$layer: every feature inside the box" || not_ok "$layer: envelope $e0 $e1 $e2 $e3"
done
# roads crossing the edge are cut, not dropped
crossing=$(gdal_py - "$PBF" <<'PY'
import sys
from osgeo import ogr
box = ogr.CreateGeometryFromWkt("POLYGON((9.5 47.1,9.55 47.1,9.55 47.15,9.5 47.15,9.5 47.1))")
ds = ogr.Open(sys.argv[1]); lyr = ds.GetLayerByName("lines")
print(sum(1 for f in lyr if f.GetGeometryRef() and f.GetGeometryRef().Intersects(box) and not f.GetGeometryRef().Within(box)))
PY
)
[ "$crossing" -gt 0 ] && ok "$crossing lines cross the box's edge and are kept, cut (counts above match)" || not_ok "no crossing lines to check"

# GeoJSON fields cut to an AOI polygon, and reprojected
printf '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[-102.75,34.8],[-102.6,34.8],[-102.6,34.95],[-102.75,34.95],[-102.75,34.8]]]}}]}\n' > aoi.geojson
check "GeoJSON cut to an AOI, to EPSG:32613" sh -c "mem-fetch --vector '$FIELDS' --aoi aoi.geojson --t-srs EPSG:32613 --workdir w > fields.json"
g=$(json_get fields.json "d['assets']['data']['href']")
ogr2ogr -q -f GPKG ref-fields.gpkg "$FIELDS" -clipsrc aoi.geojson -t_srs EPSG:32613 -nlt PROMOTE_TO_MULTI 2>/dev/null
set -- $(measure "$g"); mine_n=$1 mine_a=$2
set -- $(measure ref-fields.gpkg)
[ "$mine_n" -eq "$1" ] && ok "fields: $mine_n features, as ogr2ogr -clipsrc keeps" || not_ok "fields: $mine_n, ogr2ogr $1"
close "$mine_a" "$2" && ok "fields: area $mine_a m2 equals ogr2ogr's" || not_ok "fields: area $mine_a, ogr2ogr $2"
srs=$(gdal_py -c "from osgeo import ogr; import sys; d = ogr.Open(sys.argv[1]); print(d.GetLayer(0).GetSpatialRef().GetAuthorityCode(None))" "$g")
[ "$srs" = 32613 ] && ok "--t-srs EPSG:32613 reprojects the layer" || not_ok "layer CRS $srs"
count=$(json_get fields.json "d['properties']['mem:feature_count']")
[ "$count" -eq "$mine_n" ] && ok "the item counts the features" || not_ok "mem:feature_count $count"

# a Shapefile, --layers, reruns
check "Shapefile cut to Europe" sh -c "mem-fetch --vector '$NE' --bbox -10,35,30,60 --workdir w > ne.json"
g=$(json_get ne.json "d['assets']['data']['href']")
ogr2ogr -q -f GPKG ref-ne.gpkg "$NE" -clipsrc -10 35 30 60 -nlt PROMOTE_TO_MULTI 2>/dev/null
set -- $(measure "$g"); a=$1
set -- $(measure ref-ne.gpkg)
[ "$a" -eq "$1" ] && ok "countries: $a, as ogr2ogr -clipsrc" || not_ok "countries $a, ogr2ogr $1"
n=$(mem-fetch --vector "$PBF" --layers lines,points --bbox 9.50,47.10,9.55,47.15 --workdir w | wc -l)
[ "$n" -eq 2 ] && ok "--layers picks two layers" || not_ok "--layers gave $n"
mem-fetch --vector "$PBF" --bbox 9.50,47.10,9.55,47.15 --workdir w > osm2.json
cmp -s osm.json osm2.json && ok "a rerun emits identical items" || not_ok "a rerun emits other items"

check_exit "a missing vector source exits 2" 2 mem-fetch --vector none.geojson
echo 'not a vector' > junk.txt
check_exit "a file that is not a vector exits 2" 2 mem-fetch --vector junk.txt
check_exit "a bad --t-srs exits 2" 2 mem-fetch --vector "$FIELDS" --t-srs 32613

done_testing
