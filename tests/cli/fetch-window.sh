#!/bin/sh
# mem-fetch reads only the window of a remote COG that covers the area:
# the real 29RKH COGs served by a loopback nginx with range requests.  The
# window equals gdal_translate -srcwin cut locally, pixel for pixel; the
# bytes read are a small part of the file; --whole copies the file; a fetch
# killed with SIGKILL and run again gives the same items and files.
. "$MEM_SRCDIR/tests/lib.sh"
. "$MEM_SRCDIR/tests/http.sh"

R=$(realdata s2/29RKH_20200219_earthsearch_cogs)
[ -n "$R" ] || skip_all "no ../shared/realdata/s2/29RKH_20200219_earthsearch_cogs"
have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || skip_all "no nginx (scripts/install-deps.sh --test installs it)"

mkdir -p www/cogs
cp "$R"/*.tif www/cogs/
http_start www || skip_all "nginx would not start"
item() {	# item BASEURL: the real item, its assets at BASEURL
	/usr/bin/python3 - "$R" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/S2A_29RKH_20200219_0_L2A.json"))
files = {"red": "B04.tif", "nir": "B08.tif", "blue": "B02.tif", "green": "B03.tif", "scl": "SCL.tif"}
d["assets"] = {k: dict(a, href=sys.argv[2] + "/" + files[k]) for k, a in d["assets"].items() if k in files}
print(json.dumps(d))
PY
}
item "$HTTP_URL/cogs" > item.json
BOX=-11.5,24.7,-11.4,24.8

check "fetch the window of red and scl" sh -c "mem-fetch item.json --bbox $BOX --assets red,scl --workdir w > win.json"
set -- $(json_get win.json "' '.join(str(v) for v in d['assets']['red']['mem:window']['srcwin'])")
x=$1 y=$2 wd=$3 ht=$4
[ "$wd" -gt 50 ] && [ "$wd" -lt 200 ] && [ "$ht" -gt 50 ] && [ "$ht" -lt 200 ] && ok "a window of ${wd}x$ht px at $x,$y" || not_ok "window $*"
# the window, as gdal_translate -srcwin cuts it from the local file
gdal_translate -q -srcwin "$x" "$y" "$wd" "$ht" "$R/B04.tif" ref.tif
got=$(json_get win.json "d['assets']['red']['href']")
same=$(gdal_py - "$got" ref.tif <<'PY'
import sys
import numpy as np
from osgeo import gdal
a, b = gdal.Open(sys.argv[1]), gdal.Open(sys.argv[2])
x, y = a.GetRasterBand(1).ReadAsArray(), b.GetRasterBand(1).ReadAsArray()
print(int(np.array_equal(x, y)), int(a.GetGeoTransform() == b.GetGeoTransform()),
      int(a.GetSpatialRef().IsSame(b.GetSpatialRef())), a.GetRasterBand(1).GetNoDataValue())
PY
)
set -- $same
[ "$1" = 1 ] && ok "pixels equal gdal_translate -srcwin of the local file" || not_ok "pixels differ from gdal_translate -srcwin"
[ "$2" = 1 ] && [ "$3" = 1 ] && ok "georeferencing intact (transform and CRS)" || not_ok "georeferencing differs ($2 $3)"
[ "$4" = 0.0 ] && ok "nodata kept" || not_ok "nodata $4"
is_cog "$got" && ok "the window is a COG" || not_ok "the window is not a COG"
read_b=$(json_get win.json "d['assets']['red']['mem:window']['bytes_read']")
size_b=$(json_get win.json "d['assets']['red']['mem:window']['source_size']")
[ "$size_b" -eq "$(stat -c %s "$R/B04.tif")" ] && ok "source_size is the remote file's size" || not_ok "source_size $size_b"
# what the window needs: the compressed tiles it meets, plus the header
need=$(gdal_py - "$R/B04.tif" "$x" "$y" "$wd" "$ht" <<'PY'
import sys
from osgeo import gdal
d = gdal.Open(sys.argv[1]); b = d.GetRasterBand(1)
x, y, w, h = map(int, sys.argv[2:6]); bx, by = b.GetBlockSize()
print(sum(int(b.GetMetadataItem("BLOCK_SIZE_%d_%d" % (i, j), "TIFF"))
          for i in range(x // bx, (x + w - 1) // bx + 1) for j in range(y // by, (y + h - 1) // by + 1)))
PY
)
[ "$read_b" -gt 0 ] && [ "$read_b" -le $((need + 65536)) ] && ok "read $read_b bytes of $size_b: the tiles the window meets ($need) and the header" || not_ok "read $read_b bytes of $size_b; the window's tiles are $need"
[ $((read_b * 2)) -lt "$size_b" ] && ok "less than half the file" || not_ok "read more than half the file"
sent=$(awk '$2 == "/cogs/B04.tif" { s += $4 } END { print s + 0 }' "$HTTP_LOG")
[ "$sent" -eq "$read_b" ] && ok "bytes_read agrees with the server's log ($sent)" || not_ok "server sent $sent, item says $read_b"
full=$(awk '$1 == "GET" && $2 == "/cogs/B04.tif" && $3 == 200' "$HTTP_LOG" | wc -l)
[ "$full" -eq 0 ] && ok "only range requests (206), no whole GET" || not_ok "$full whole-file GETs"
shape=$(json_get win.json "d['assets']['red']['proj:shape']")
[ "$shape" = "[$ht, $wd]" ] && ok "proj:shape describes the window" || not_ok "proj:shape $shape"

# a rerun reads nothing more
: > "$HTTP_LOG"
mem-fetch item.json --bbox $BOX --assets red,scl --workdir w > win2.json
[ "$(http_count '/cogs/B04.tif')" -eq 0 ] && ok "a rerun fetches nothing again" || not_ok "a rerun asked $(http_count '/cogs/B04.tif') times"
/usr/bin/python3 -c "
import json, sys
a = [json.loads(l) for l in open('win.json')]; b = [json.loads(l) for l in open('win2.json')]
for x in a + b:
    for v in x['assets'].values(): v.pop('mem:window', None)
sys.exit(0 if a == b else 1)" && ok "and emits the same item" || not_ok "a rerun emits another item"

# --whole copies the whole file
check "--whole" sh -c "mem-fetch item.json --bbox $BOX --assets red --whole --workdir w3 > whole.json"
cmp -s "$(json_get whole.json "d['assets']['red']['href']")" "$R/B04.tif" && ok "--whole copies the file byte for byte" || not_ok "--whole copy differs"

# killed in the middle of a slow fetch, then run again: the same items and files
item "$HTTP_URL/fault/slow/cogs" > slow.json
( mem-fetch slow.json --assets red,nir --whole --workdir k > /dev/null 2>&1 ) &
bg=$!
sleep 1.5
pkill -KILL -f 'mem-fetch slow.json' 2>/dev/null || true
wait $bg 2>/dev/null || true
ls k/scenes/*/ 2>/dev/null | grep -v '^\.' > before.txt || true
check "rerun after kill -9" sh -c "mem-fetch slow.json --assets red,nir --whole --workdir k > after.json"
mem-fetch item.json --assets red,nir --whole --workdir ref > refw.json
a=$(json_get after.json "' '.join(sorted(v['file:checksum'] for v in d['assets'].values()))")
b=$(json_get refw.json "' '.join(sorted(v['file:checksum'] for v in d['assets'].values()))")
[ "$a" = "$b" ] && ok "after kill -9 and a rerun, the files are whole and identical" || not_ok "checksums differ after resume"
partial=0
for f in $(cat before.txt); do
	case $f in
	red.tif) cmp -s "k/scenes/S2A_29RKH_20200219_0_L2A/$f" "$R/B04.tif" || partial=$((partial + 1)) ;;
	nir.tif) cmp -s "k/scenes/S2A_29RKH_20200219_0_L2A/$f" "$R/B08.tif" || partial=$((partial + 1)) ;;
	esac
done
[ "$partial" -eq 0 ] && ok "no partial file under a final name after the kill ($(wc -l < before.txt) files there)" || not_ok "$partial partial files under final names"

# a server that stalls: a clear failure after the timeout, worth a retry (75)
item "$HTTP_URL/fault/slow/cogs" > stall.json
start=$(date +%s)
check_exit "a stalled transfer fails after --timeout (exit 75)" 75 mem-fetch stall.json --assets red --whole --timeout 2 --retries 1 --workdir st
took=$(( $(date +%s) - start ))
[ "$took" -lt 20 ] && ok "and does not hang (${took}s for 2 tries of 2s)" || not_ok "took ${took}s"
msg=$(stderr_of mem-fetch stall.json --assets red --whole --timeout 1 --retries 0 --workdir st)
case $msg in *"timed out"*) ok "the timeout is named" ;; *) not_ok "stall message: $msg" ;; esac
ls st/scenes/*/red.tif >/dev/null 2>&1 && not_ok "a partial download under its final name" || ok "no partial file under a final name"

# a server that drops the connection mid-body, its length announced
item "$HTTP_URL/fault/truncate/cogs" > cut.json
: > "$HTTP_LOG"
check_exit "a transfer cut mid-body fails after retries (exit 75)" 75 mem-fetch cut.json --assets red --whole --retries 1 --workdir cut
[ "$(http_count '^GET /fault/truncate/cogs/B04.tif')" -eq 2 ] && ok "the cut transfer was tried twice" || not_ok "tries: $(http_count '/fault/truncate/')"
ls cut/scenes/*/red.tif >/dev/null 2>&1 && not_ok "a cut download under its final name" || ok "no cut file under a final name"

# a catalog's file:checksum is checked
/usr/bin/python3 -c "
import json
d = json.loads(open('item.json').readline())
d['assets']['red']['file:checksum'] = '1220' + '0' * 64
print(json.dumps(d))" > badsum.json
check_exit "a download that does not match file:checksum fails (exit 1)" 1 mem-fetch badsum.json --assets red --whole --workdir bs
msg=$(stderr_of mem-fetch badsum.json --assets red --whole --workdir bs)
case $msg in *"does not match the item's file:checksum"*) ok "the mismatch is named" ;; *) not_ok "checksum message: $msg" ;; esac
ls bs/scenes/*/red.tif >/dev/null 2>&1 && not_ok "the mismatched file was kept" || ok "the mismatched file is not kept"
sum="1220$(sha256sum "$R/B04.tif" | cut -d' ' -f1)"
/usr/bin/python3 -c "
import json
d = json.loads(open('item.json').readline())
d['assets']['red']['file:checksum'] = '$sum'
print(json.dumps(d))" > goodsum.json
check "a download that matches file:checksum" mem-fetch goodsum.json --assets red --whole --workdir gs

done_testing
