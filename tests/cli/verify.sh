#!/bin/sh
# mem-store verify DIR: a clean store passes; a flipped byte, a file of
# another size, a missing asset, a broken link and a document that is no
# longer JSON are each reported, naming the file, with exit 1.
. "$MEM_SRCDIR/tests/lib.sh"

demo
mem-fetch demo/catalog.json --assets red,nir --workdir w > scene.json
mem-infer -s ndvi --workdir w < scene.json > res.json
mem-store -o out res.json scene.json > /dev/null
rid=$(json_get res.json "d['id']")
sid=S2A_32TNR_20240715_0_L2A_DEMO
cog=out/ndvi/$rid/ndvi.tif

check "a clean store verifies (exit 0)" mem-store verify out
msg=$(stderr_of mem-store verify out)
case $msg in "mem-store: verify: 'out': 5 documents, 3 files, 0 problems") ok "it says what it checked: $msg" ;;
	*) not_ok "summary: $msg" ;; esac
[ -z "$(stderr_of mem-store -q verify out)" ] && ok "-q: nothing on a clean store" || not_ok "-q printed"
check "an absolute DIR verifies" mem-store verify "$T/out"

# a flipped byte in the middle of a COG
cp "$cog" saved.tif
/usr/bin/python3 -c "
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0x01
open(p, 'wb').write(b)" "$cog"
mem-store verify out 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && ok "a flipped byte fails verify (exit 1)" || not_ok "flipped byte: exit $rc"
grep -q "^mem-store: verify: '$cog': checksum mismatch: 1220[0-9a-f]\{64\}, the item says 1220" err.txt &&
	ok "the message names the file: checksum mismatch" || not_ok "message: $(cat err.txt)"
grep -q "1 problem$" err.txt && ok "one problem counted" || not_ok "count: $(tail -1 err.txt)"
cp saved.tif "$cog"
check "restored, it verifies again" mem-store verify out

# a file that grew
printf x >> "$cog"
mem-store verify out 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "'$cog': size mismatch: $(( $(stat -c %s saved.tif) + 1 )) bytes, the item says $(stat -c %s saved.tif)" err.txt &&
	ok "a file of another size: size mismatch" || not_ok "size: exit $rc, $(cat err.txt)"
cp saved.tif "$cog"

# an asset gone
mv "out/sentinel-2-l2a-demo/$sid/red.tif" red.tif
mem-store verify out 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "'out/sentinel-2-l2a-demo/$sid/red.tif': asset 'red' is missing" err.txt &&
	ok "a missing asset is named" || not_ok "missing asset: exit $rc, $(cat err.txt)"
mv red.tif "out/sentinel-2-l2a-demo/$sid/red.tif"

# a broken link: an item directory removed behind the collection's back
mv "out/ndvi/$rid" gone
mem-store verify out 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "'out/ndvi/collection.json': broken link: rel=item href './$rid/$rid.json'" err.txt &&
	ok "a broken item link names the collection and the href" || not_ok "broken link: exit $rc, $(cat err.txt)"
mv gone "out/ndvi/$rid"
# and a parent link edited to nowhere
ij="out/sentinel-2-l2a-demo/$sid/$sid.json"
cp "$ij" saved.json
sed 's|"\.\./collection\.json"|"../nowhere.json"|' saved.json > "$ij"
mem-store verify out 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "'$ij': broken link: rel=parent href '../nowhere.json'" err.txt &&
	ok "a broken parent link" || not_ok "parent link: exit $rc, $(cat err.txt)"
# a document that is no longer JSON
head -c 100 saved.json > "$ij"
mem-store verify out 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && grep -q "'$ij': not JSON" err.txt && ok "a truncated item is reported" || not_ok "truncated: exit $rc, $(cat err.txt)"
cp saved.json "$ij"
check "all put back, it verifies" mem-store verify out

# a cube stored in the catalog is verified like any asset
if gdal_py -c 'from osgeo import gdal; assert gdal.GetDriverByName("netCDF")' 2>/dev/null; then
	mem-tile -g webmercator:14 --bands red,nir --workdir w < scene.json | mem-infer -s ndvi --workdir w > tiles.json
	mem-store --cube cube.nc tiles.json | mem-store -o out > /dev/null
	n=$(find out -name '*cube.nc' | wc -l)
	[ "$n" -eq 1 ] && ok "a cube's item stores the cube" || not_ok "$n stored cubes"
	check "and the store verifies" mem-store verify out
	printf x >> "$(find out -name '*cube.nc')"
	mem-store verify out 2> err.txt && rc=0 || rc=$?
	[ "$rc" -eq 1 ] && grep -q "cube.nc': checksum mismatch" err.txt && ok "a changed cube fails verify" || not_ok "cube: exit $rc, $(cat err.txt)"
else
	skip "GDAL has no netCDF driver"
fi

check_exit "a DIR with no catalog exits 2" 2 mem-store verify nowhere
check_exit "verify without DIR exits 2" 2 mem-store verify
check_exit "verify with two DIRs exits 2" 2 mem-store verify out out

done_testing
