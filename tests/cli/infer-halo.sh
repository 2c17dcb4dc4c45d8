#!/bin/sh
# mem-infer across tile seams: the demo scene cut into six tiles with
# gdal_translate -srcwin (B04 at 10 m; B08 averaged to 20 m, resampled
# bilinearly, and SCL at 20 m, by nearest neighbour), one item per tile
# written here.  A 3x3 convolution model (its classes and probabilities)
# and a cloud mask dilated by 3 pixels, run on each tile with its
# neighbours read through the halo, mosaic into exactly the whole scene's
# results (cmp of the raw pixels, no edge left out), in two shards too, and
# so do change pairs masked on both dates.  Zonal counts of the tiles add up
# to the whole's (halo pixels are counted nowhere).  A tile whose datetime
# differs is nobody's neighbour: its seams stay (in 16-row strips), and the
# pixels that differ lie on them.
. "$MEM_SRCDIR/tests/lib.sh"

command -v gdal_translate >/dev/null && command -v gdalbuildvrt >/dev/null ||
	skip_all "no gdal_translate or gdalbuildvrt"
demo --size 256
D=$(dirname "$(ls demo/*/*/B04.tif)")
mkdir -p scene
cp "$D/B04.tif" "$D/SCL.tif" scene/
gdal_translate -q -outsize 50% 50% -r average "$D/B08.tif" scene/B08.tif
D=scene

# columns 0-99, 100-199, 200-255; rows 0-127, 128-255 (even: whole SCL pixels)
xs="0:100 100:100 200:56"
ys="0:128 128:128"
mkdir -p t
: > tiles.json
band() { # KEY HREF NAME
	printf '"%s": {"href": "%s", "type": "image/tiff; application=geotiff", "roles": ["data"%s],
	 "eo:bands": [{"name": "%s", "common_name": "%s"}], "raster:bands": [{"nodata": 0%s}]}' \
	    "$1" "$2" "$([ "$1" = scl ] && echo ', "classification"')" "$3" "$1" \
	    "$([ "$1" = scl ] || echo ', "scale": 0.0001, "offset": -0.1')"
}
item() { # ID DATETIME X0 Y0 W H DIR
	printf '{"type": "Feature", "stac_version": "1.0.0", "id": "%s", "bbox": [9.7, 46.0, 9.9, 46.2],
	 "geometry": null, "properties": {"datetime": "%s", "platform": "sentinel-2a",
	 "proj:epsg": 32632, "proj:transform": [10, 0, %s, 0, -10, %s, 0, 0, 1], "proj:shape": [%s, %s],
	 "mem:grid": "demo/%s/%s/%s/%s"}, "links": [], "assets": {%s, %s, %s}}\n' "$1" "$2" "$3" "$4" "$6" "$5" \
	    "$3" "$4" "$5" "$6" \
	    "$(band red "$7/B04.tif" B04)" "$(band nir "$7/B08.tif" B08)" "$(band scl "$7/SCL.tif" SCL)" |
	    tr -d '\n' | tr -s ' '
	echo
}
T0=2024-07-15T10:20:31Z
for yy in $ys; do
	for xx in $xs; do
		x=${xx%:*} w=${xx#*:} y=${yy%:*} h=${yy#*:}
		d=$PWD/t/$x-$y
		mkdir -p "$d"
		gdal_translate -q -srcwin "$x" "$y" "$w" "$h" "$D/B04.tif" "$d/B04.tif"
		for b in B08 SCL; do
			gdal_translate -q -srcwin $((x / 2)) $((y / 2)) $((w / 2)) $((h / 2)) "$D/$b.tif" "$d/$b.tif"
		done
		item "tile-$x-$y" "$T0" $((560000 + 10 * x)) $((5110000 - 10 * y)) "$w" "$h" "$d" >> tiles.json
	done
done
item whole "$T0" 560000 5110000 256 256 "$PWD/$D" > whole.json
[ "$(wc -l < tiles.json)" = 6 ] && ok "six tile items" || not_ok "$(wc -l < tiles.json) tile items"

check "train a model whose first layer is a 3x3 convolution" \
    mem-infer --train conv.h5 --labels-band scl --conv --hidden 4 --epochs 1 -q < whole.json

# one polygon over the scene, for zonal counts
cat > zones.geojson <<'EOF'
{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32632"}},
 "features": [{"type": "Feature", "properties": {"name": "all"}, "geometry": {"type": "Polygon",
 "coordinates": [[[560300, 5107700], [562300, 5107700], [562300, 5109700], [560300, 5109700], [560300, 5107700]]]}}]}
EOF
S="-s classify:model=conv.h5,as=conv,prob=1 -s cloudmask:dilate=3,as=mask -s zonal:zones=zones.geojson,of=mask,stats=count,mean"
# shellcheck disable=SC2086
check "the whole scene" sh -c "mem-infer $S --workdir w < whole.json > whole-out.json"
# shellcheck disable=SC2086
check "each tile with its neighbours" sh -c "mem-infer -j 2 $S --workdir w < tiles.json > tiled.json"

# raw: ASSET RESULTS OUT: the mosaic of RESULTS' ASSET on the whole grid, raw pixels
raw() {
	grep -o "\"href\": *\"[^\"]*/$1.tif\"" "$2" | sed 's/.*"\([^"]*\)"$/\1/' > "$3.list"
	gdalbuildvrt -q -te 560000 5107440 562560 5110000 -input_file_list "$3.list" "$3.vrt"
	gdal_translate -q -of ENVI -co INTERLEAVE=BSQ "$3.vrt" "$3.img"
}
whole_of() { grep -o "\"href\": *\"[^\"]*/$1.tif\"" whole-out.json | sed 's/.*"\([^"]*\)"$/\1/'; }
for a in conv conv_prob mask; do
	gdal_translate -q -of ENVI -co INTERLEAVE=BSQ "$(whole_of $a)" "whole-$a.img"
	raw $a tiled.json tiled-$a
	cmp -s "whole-$a.img" "tiled-$a.img" &&
		ok "$a: the mosaic of the tiles equals the whole scene, every pixel" ||
		not_ok "$a: $(cmp -l "whole-$a.img" "tiled-$a.img" | wc -l) bytes differ"
done
# the classes are not all one: the equality says something
n=$(od -An -tu1 -v whole-conv.img | tr -s ' ' '\n' | grep -v '^$' | sort -u | wc -l)
[ "$n" -ge 3 ] && ok "the whole scene has $n class values" || not_ok "$n class values"
f=$(grep -o '"href": *"[^"]*/conv.tif"' tiled.json | sed -n 1p | sed 's/.*"\([^"]*\)"$/\1/')
gdalinfo "$f" | grep -q "Size is 100, 128" && gdalinfo "$f" | grep -q "Origin = (560000.0*,5110000.0*)" &&
	ok "a tile's output keeps its own grid and size" || not_ok "$(gdalinfo "$f" | grep -E 'Size|Origin')"

# two shards: each runs its own tiles and reads the others' as neighbours
check "the tiles in two shards" sh -c "mem-infer --shard 0/2 $S --workdir w4 --summary s0.json < tiles.json > shards.json &&
    mem-infer --shard 1/2 $S --workdir w4 --summary s1.json < tiles.json >> shards.json"
# each shard reads every tile for its pixels, but counts only its own as input
counts() { /usr/bin/python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); i = s["items"]
print(i["read"], i["skipped"], i["done"], len(s["input_ids"]))' "$1"; }
c0=$(counts s0.json) c1=$(counts s1.json)
set -- $c0 $c1
[ $(($1 + $5)) = 6 ] && [ $(($2 + $6)) = 6 ] && [ "$1" = "$3" ] && [ "$1" = "$4" ] &&
    [ "$5" = "$7" ] && [ "$5" = "$8" ] && [ "$1" -gt 0 ] && [ "$5" -gt 0 ] &&
	ok "--summary of each shard: its own tiles read and done, the others' skipped ($c0 / $c1)" ||
	not_ok "shard summaries (read skipped done ids): $c0 / $c1"
raw conv shards.json shards-conv
[ "$(wc -l < shards.json)" = 6 ] && cmp -s whole-conv.img shards-conv.img &&
	ok "conv: the two shards' mosaic equals the whole scene" ||
	not_ok "shards: $(wc -l < shards.json) results, $(cmp -l whole-conv.img shards-conv.img | wc -l) bytes differ"
# the tiles in reverse order (as a Slurm merge reads the shards' manifests): the
# same results, ids included
tac tiles.json > reversed.json
mem-infer $S --workdir w < reversed.json > reversed-out.json
ids() { /usr/bin/python3 -c 'import json, sys; print(" ".join(sorted(json.loads(l)["id"] for l in open(sys.argv[1]))))' "$1"; }
a=$(ids tiled.json) b=$(ids reversed-out.json)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "the tiles in another order: the same result ids (the same outputs, reused)" ||
	not_ok "another order gives other ids: $a / $b"

# zonal counts: each pixel once, in the tile that holds it
sum=$(grep -o '"pixels": *[0-9]*' tiled.json | awk -F: '{ s += $NF } END { print s + 0 }')
one=$(grep -o '"pixels": *[0-9]*' whole-out.json | awk -F: '{ print $NF }')
[ -n "$one" ] && [ "$sum" = "$one" ] && [ "$one" -gt 30000 ] &&
	ok "zonal: the tiles' counts add up to the whole's ($one)" || not_ok "zonal: tiles $sum, whole $one"

# a tile of another datetime is nobody's neighbour: the seams around it stay
# (and in 16-row strips, nothing else moves)
sed '3s/"datetime": "[^"]*"/"datetime": "2024-07-16T10:20:31Z"/' tiles.json > other.json
check "tiles, one of another date, 16-row strips" sh -c \
    "MEM_INFER_STRIP_ROWS=16 mem-infer $S --workdir w3 < other.json > other-out.json"
# seam A BYTES D: the pixels (of BYTES bytes) that differ from the whole,
# and how many of them lie D pixels or more from the seams of that tile
# (the third: columns 200-255, rows 0-127; the demo's cloud crosses x = 200)
seam() {
	raw "$1" other-out.json "other-$1"
	cmp -l "whole-$1.img" "other-$1.img" | awk -v b="$2" -v d="$3" '
		{ p = int(($1 - 1) / b); if (p == last) next; last = p; x = p % 256; y = int(p / 256); n++
		  near = x >= 200 - d && x < 256 + d && y >= -d && y < 128 + d &&
		      !(x >= 200 + d && x < 256 - d && y >= d && y < 128 - d)
		  if (!near) off++ }
		END { print n + 0, off + 0 }' > seam.txt
	read -r nd off < seam.txt
	[ "$nd" -gt 0 ] && [ "$off" = 0 ] &&
		ok "$1: a tile of another date is no neighbour: $nd pixels differ, all on its seams" ||
		not_ok "$1, another date: $nd pixels differ, $off off the seams"
}
seam conv 1 1
seam mask 1 3	# a UInt8 mask: one byte a pixel

# two convolutions (5x5 context; mem-infer --train makes one, model-probe
# adds the second): the mosaic still equals the whole scene.  Then with
# tiles missing: the whole scene with a hole there (nodata, written as
# GTiffs: a VRT of the tiles would resample each 20 m source on its own)
# against the tiles left.  Without the bottom middle tile, its neighbours
# are grown into the hole (other tiles cover those sides); without the
# right column, the middle tiles are not grown to the right, where the
# scene has nodata.  Every map of the network is 0 at nodata, as beyond
# the image's edge, so both agree with the scene.  The holes take a model
# of the 10 m band alone: GDAL resamples the 20 m band differently beside
# nodata and at a raster's edge, which is no business of the network.
PROBE=$MEM_BUILDDIR/tests/model-probe
if [ -x "$PROBE" ]; then
	check "a model of two 3x3 convolutions" "$PROBE" deepen conv.h5 conv2.h5
	S2="-s classify:model=conv2.h5,as=conv2"
	check "two convolutions: the whole scene" sh -c "mem-infer $S2 --workdir w5 < whole.json > whole2.json"
	check "two convolutions: the tiles" sh -c "mem-infer -j 2 $S2 --workdir w5 < tiles.json > tiled2.json"
	gdal_translate -q -of ENVI -co INTERLEAVE=BSQ \
	    "$(grep -o '"href": *"[^"]*/conv2.tif"' whole2.json | sed 's/.*"\([^"]*\)"$/\1/')" whole-conv2.img
	raw conv2 tiled2.json tiled-conv2
	n=$(od -An -tu1 -v whole-conv2.img | tr -s ' ' '\n' | grep -v '^$' | sort -u | wc -l)
	cmp -s whole-conv2.img tiled-conv2.img && [ "$n" -ge 3 ] &&
		ok "two convolutions: the mosaic equals the whole scene ($n class values)" ||
		not_ok "two convolutions: $(cmp -l whole-conv2.img tiled-conv2.img | wc -l) bytes differ, $n values"
	check "a model of two convolutions over red alone" sh -c "mem-infer --train conv1r.h5 \
	    --labels-band scl --bands red --conv --hidden 4 --epochs 1 -q < whole.json &&
	    $PROBE deepen conv1r.h5 conv2r.h5"
	for hole in tile-100-128 tile-200-; do
		grep -v "\"id\": \"$hole" tiles.json > holed.json
		rm -rf hole && mkdir hole
		for b in B04 B08 SCL; do
			grep -o "\"href\": \"[^\"]*/$b.tif\"" holed.json | sed 's/.*"\([^"]*\)"$/\1/' > hole/$b.list
			gdalbuildvrt -q -te 560000 5107440 562560 5110000 -srcnodata 0 -vrtnodata 0 \
			    -input_file_list hole/$b.list hole/$b.vrt
			gdal_translate -q hole/$b.vrt hole/$b.tif
		done
		sed "s#$PWD/$D/\(B04\|B08\|SCL\)\.tif#$PWD/hole/\\1.tif#g" whole.json > whole-holed.json
		rm -rf w6
		mem-infer -s classify:model=conv2r.h5,as=conv2 --workdir w6 < whole-holed.json > whole-holed-out.json &&
		    mem-infer -j 2 -s classify:model=conv2r.h5,as=conv2 --workdir w6 < holed.json > holed-out.json ||
		    not_ok "mem-infer failed with $hole missing"
		gdal_translate -q -of ENVI -co INTERLEAVE=BSQ \
		    "$(grep -o '"href": *"[^"]*/conv2.tif"' whole-holed-out.json | sed 's/.*"\([^"]*\)"$/\1/')" \
		    whole-holed.img
		raw conv2 holed-out.json holed-conv2
		# the hole: 255 (nodata) in the scene's result, no tile in the mosaic (its nodata, 255)
		nh=$(od -An -tu1 -v whole-holed.img | tr -s ' ' '\n' | grep -c '^255$')
		cmp -s whole-holed.img holed-conv2.img && [ "$nh" -ge $((56 * 128)) ] &&
			ok "two convolutions, $hole* missing: the tiles left equal the scene with a hole ($nh nodata px)" ||
			not_ok "$hole* missing: $(cmp -l whole-holed.img holed-conv2.img | wc -l) bytes differ, $nh nodata px"
	done
else
	for i in 1 2 3 4 5 6 7; do skip "two convolutions: no $PROBE (make builds it)"; done
fi

# change between two dates, each masked by its own dilated cloud mask: the
# date before's tiles read their own neighbours (the same pixels a day
# later: dNDVI is 0, NaN where either date's mask is)
sed 's/"datetime": "[^"]*"/"datetime": "2024-07-25T10:20:31Z"/; s/"id": "/"id": "later-/' tiles.json > later.json
sed 's/"datetime": "[^"]*"/"datetime": "2024-07-25T10:20:31Z"/; s/"id": "/"id": "later-/' whole.json > later-whole.json
C="-s cloudmask:dilate=3 -s change:mask=cloudmask"
check "change over the whole scene's two dates" sh -c \
    "cat whole.json later-whole.json | mem-infer $C --workdir w > whole-change.json"
check "change over the tiles' two dates" sh -c \
    "cat tiles.json later.json | mem-infer $C --workdir w > tiled-change.json"
gdal_translate -q -of ENVI -co INTERLEAVE=BSQ "$(grep -o '"href": *"[^"]*/dndvi.tif"' whole-change.json | sed 's/.*"\([^"]*\)"$/\1/')" whole-dndvi.img
raw dndvi tiled-change.json tiled-dndvi
[ "$(wc -l < tiled-change.json)" = 6 ] && cmp -s whole-dndvi.img tiled-dndvi.img &&
	ok "dNDVI masked on both dates: the mosaic of six tile pairs equals the whole pair" ||
	not_ok "change: $(wc -l < tiled-change.json) pairs, $(cmp -l whole-dndvi.img tiled-dndvi.img | wc -l) bytes differ"
# the change mask (UInt8, 255 where either date is masked) joins the same way
gdal_translate -q -of ENVI -co INTERLEAVE=BSQ "$(grep -o '"href": *"[^"]*/change.tif"' whole-change.json | sed 's/.*"\([^"]*\)"$/\1/')" whole-change.img
raw change tiled-change.json tiled-change
n=$(od -An -tu1 -v whole-change.img | tr -s ' ' '\n' | grep -c '^255$' || true)
[ "$(stat -c %s whole-change.img)" = $((256 * 256)) ] && [ "$n" -gt 0 ] && cmp -s whole-change.img tiled-change.img &&
	ok "the change mask: one byte a pixel, $n masked (255), the tiles' mosaic equals the whole pair" ||
	not_ok "change mask: $(stat -c %s whole-change.img) bytes, $n at 255, $(cmp -l whole-change.img tiled-change.img | wc -l) bytes differ"
done_testing
