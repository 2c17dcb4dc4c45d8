#!/bin/sh
# mem-store on a full disk (a 1 MB tmpfs) and into a read-only target (a
# read-only tmpfs; file modes do not stop root): clear messages naming the
# path, the exit status of mem-store(1), nothing half-written visible, and
# what was stored before still whole (mem-store verify).
. "$MEM_SRCDIR/tests/lib.sh"

have_gdal_py || skip_all "no GDAL Python bindings (/usr/bin/python3 with osgeo and numpy)"
mkdir full ro
if ! mount -t tmpfs -o size=1m tmpfs full 2>mount.err; then
	skip_all "cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): $(cat mount.err)"
fi
if ! mount -t tmpfs -o ro,size=1m tmpfs ro 2>mount.err; then
	umount full
	skip_all "cannot mount a read-only tmpfs: $(cat mount.err)"
fi
trap 'umount "$T/full" 2>/dev/null || true; umount "$T/ro" 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
mem-infer -s ndvi --workdir w < scene.json > scene-ndvi.json
mem-tile -g webmercator:14 --workdir w < scene.json | mem-infer -s ndvi --workdir w > tiles.json

# a full disk: the small tiles first (some fit), then the scene's 3 MB COG
cat tiles.json scene-ndvi.json | mem-store -o full/out > stored.json 2> err.txt && rc=0 || rc=$?
[ "$rc" -eq 1 ] && ok "a full disk fails the items that do not fit (exit 1)" || not_ok "full disk: exit $rc"
grep -q "cannot write COG 'full/out/ndvi/.*/ndvi.tif': No space left on device" err.txt &&
	ok "the message names the file and says No space left on device" ||
	not_ok "message: $(head -3 err.txt)"
[ "$(wc -l < stored.json)" -ge 1 ] && ok "the items that fit are stored and emitted ($(wc -l < stored.json))" || not_ok "none stored"
[ -z "$(find full -name '.*tmp*')" ] && ok "no temporary files left on the full disk" || not_ok "temporary files: $(find full -name '.*tmp*' | head -3)"
# every item file names whole files; no COG without its item stays half-written
bad=$(gdal_py - <<'PY'
import glob, json, os
from osgeo import gdal
bad = 0
for f in glob.glob('full/out/*/*/*.json'):
    d = json.load(open(f))
    for a in d['assets'].values():
        p = os.path.join(os.path.dirname(f), a['href'])
        if not os.path.exists(p) or os.path.getsize(p) != a['file:size']:
            bad += 1
for p in glob.glob('full/out/*/*/*.tif'):
    ds = gdal.Open(p)
    if ds is None or ds.GetRasterBand(1).Checksum() < 0:
        bad += 1
print(bad)
PY
)
[ "$bad" = 0 ] && ok "every visible file is whole and every item's files are there" || not_ok "$bad broken files"
# room again: a rerun stores the rest
umount full
mount -t tmpfs -o size=64m tmpfs full
cat tiles.json scene-ndvi.json | mem-store -o full/out > again.json 2> err2.txt && rc=0 || rc=$?
[ "$rc" -eq 0 ] && [ "$(wc -l < again.json)" -eq "$(cat tiles.json scene-ndvi.json | wc -l)" ] && ok "with room again, a rerun stores everything (exit 0)" || not_ok "rerun: exit $rc, $(cat err2.txt | head -3)"
check "mem-store verify finds the catalog whole" mem-store verify full/out

# a read-only target
check_exit "a read-only DIR exits 2" 2 mem-store -o ro < tiles.json
mem-store -o ro < tiles.json > ro.json 2> err.txt || true
grep -q "cannot write to directory 'ro': Read-only file system" err.txt && ok "the message names the directory: $(head -1 err.txt)" || not_ok "message: $(head -3 err.txt)"
[ ! -s ro.json ] && ok "nothing emitted" || not_ok "items emitted into a read-only DIR"
check_exit "a DIR to create under a read-only one exits 2" 2 mem-store -o ro/sub < tiles.json
mem-store -o ro/sub < tiles.json 2> err.txt || true
grep -q "cannot create directory 'ro/sub': Read-only file system" err.txt && ok "the message names it" || not_ok "message: $(head -3 err.txt)"
check_exit "a cube in a read-only directory exits 2" 2 mem-store --cube ro/c.nc < tiles.json

done_testing
