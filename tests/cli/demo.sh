#!/bin/sh
# mem-demo writes a static STAC catalog of COGs, the same bytes every run.
. "$MEM_SRCDIR/tests/lib.sh"

check "mem-demo writes demo/" mem-demo -o a
check "mem-demo again into another dir" mem-demo -o b
same=1
for f in $(cd a && find . -type f | sort); do
	cmp -s "a/$f" "b/$f" || { same=0; diag "differs: $f"; }
done
if [ "$same" = 1 ]; then ok "two runs give identical bytes"; else not_ok "two runs give identical bytes"; fi
n=$(cd a && find . -name '*.tif' | wc -l)
if [ "$n" -eq 5 ]; then ok "five bands written"; else not_ok "five bands written ($n)"; fi
allcog=1
for f in $(find a -name '*.tif'); do is_cog "$f" || { allcog=0; diag "not a COG: $f"; }; done
if [ "$allcog" = 1 ]; then ok "every band is a COG"; else not_ok "every band is a COG"; fi
item=$(find a -name 'S2A_*.json')
if gdalinfo "$(dirname "$item")/B04.tif" | grep -q 'ID\["EPSG",32632\]'; then ok "B04 is in EPSG:32632"; else not_ok "B04 is in EPSG:32632"; fi
if have_gdal_py; then
	# the scene has every cover it promises: SCL classes nodata, shadow, vegetation, bare, water, cloud
	classes=$(gdal_py -c "
from osgeo import gdal; import numpy as np, sys
d = gdal.Open(sys.argv[1]); a = d.GetRasterBand(1).ReadAsArray()
print(' '.join(str(int(v)) for v in np.unique(a)))" "$(dirname "$item")/SCL.tif")
	if [ "$classes" = "0 3 4 5 6 9" ]; then ok "SCL has classes 0 3 4 5 6 9"; else not_ok "SCL classes: $classes"; fi
else
	skip "no GDAL Python bindings"
fi
check_exit "--size out of range exits 2" 2 mem-demo -o c --size 10
check_exit "an extra argument exits 2" 2 mem-demo -o c extra
check_exit "an unwritable place exits non-zero" 2 mem-demo -o /proc/none/demo

done_testing
