#!/bin/sh
# pipelines/ndvi.mk under make: `make -j2` builds two sources' chains, a
# second make does nothing, touching one source's catalog redoes only what
# depends on it; pipelines/ndvi.sh gives the same COGs as one pipe.
. "$MEM_SRCDIR/tests/lib.sh"

command -v make >/dev/null 2>&1 || skip_all "no make"
# make check runs this under make: its jobserver and flags must not leak into
# the pipeline's own make (it would warn "-j2 forced in submake")
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
mkdir cat
mem-demo -o cat/jul15 --size 512 > /dev/null
mem-demo -o cat/jul25 --size 512 > /dev/null
/usr/bin/python3 - "$(find cat/jul25 -name 'S2A_*_DEMO.json')" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["id"] = "S2A_32TNR_20240725_0_L2A_DEMO"
d["properties"]["datetime"] = "2024-07-25T10:30:00Z"
json.dump(d, open(p, "w"))
PY
cat > Makefile <<MK
SOURCES = jul15 jul25
CATALOGS = cat
STAGES = -s ndvi
INFER_OPTS = -j 1
include $MEM_SRCDIR/pipelines/ndvi.mk
MK
sums() { (cd "$1" && find . -name '*.tif' | sort | xargs md5sum); }

check "make -j2 builds the pipeline" make -j2
for f in run/jul15/scenes.ndjson run/jul25/results.ndjson run/stored.ndjson out/catalog.json; do
	[ -s "$f" ] || not_ok "no $f"
done
n=$(wc -l < run/stored.ndjson)
[ "$n" -gt 0 ] && ok "$n items stored from both sources" || not_ok "nothing stored"
[ -z "$(find run -name '*.tmp')" ] && ok "no temporary manifests left" || not_ok "temporary manifests left"

out=$(make -j2 2>&1)
case $out in *"Nothing to be done"*|*"is up to date"*) ok "a second make does nothing" ;; *) not_ok "a second make ran: $out" ;; esac
make -q && ok "make -q says all is up to date" || not_ok "make -q says something is out of date"

sleep 1
touch cat/jul25/catalog.json
make -j2 > remake.log 2>&1
if grep -q 'cat/jul25/catalog.json' remake.log && ! grep -E '^mem-(fetch|tile|infer)' remake.log | grep -q jul15 &&
	[ "$(grep -c '^mem-' remake.log)" -eq 4 ]; then
	ok "touching jul25's catalog redoes jul25's fetch, tile, infer and the store, not jul15's"
else
	not_ok "after touch:"; sed 's/^/# /' remake.log
fi
sums out > make.sums

mkdir sh && cd sh
if OUT=out WORK=w STAGES='-s ndvi' "$MEM_SRCDIR/pipelines/ndvi.sh" ../cat/jul15/catalog.json ../cat/jul25/catalog.json > stored.ndjson; then
	ok "pipelines/ndvi.sh runs"
else
	not_ok "pipelines/ndvi.sh failed"
fi
cd ..
sums sh/out | cmp -s make.sums - && ok "and writes the same COGs as the make pipeline" || not_ok "ndvi.sh and ndvi.mk outputs differ"

done_testing
