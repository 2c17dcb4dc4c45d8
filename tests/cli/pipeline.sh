#!/bin/sh
# The four tools in one pipe on the demo scene: the stages overlap, the
# outputs are COGs under a catalog, a rerun gives the same bytes, and a run
# killed with SIGKILL resumes without loss.
. "$MEM_SRCDIR/tests/lib.sh"

demo --size 512
pipe() {
	mem-fetch demo/catalog.json --assets red,nir,scl --workdir "$1" |
		mem-tile -g webmercator:14 --workdir "$1" |
		mem-infer -s ndvi --workdir "$1" |
		mem-store -o "$2"
}
if pipe w out > stored.json; then ok "fetch | tile | infer | store exits 0"; else not_ok "the pipe failed"; fi
n=$(wc -l < stored.json)
[ "$n" -ge 9 ] && ok "$n tiles stored" || not_ok "only $n tiles stored"
[ -f out/catalog.json ] && ok "out/catalog.json written" || not_ok "no out/catalog.json"
bad=0
for f in $(find out -name '*.tif'); do is_cog "$f" || bad=$((bad + 1)); done
[ "$bad" -eq 0 ] && ok "gdalinfo reports every output as a COG" || not_ok "$bad outputs are not COGs"
# items flow while earlier stages still run: the first tile item reaches the
# next stage before mem-tile has finished
{ mem-fetch demo/catalog.json --assets red,nir --workdir w2 | mem-tile -g webmercator:14 --workdir w2; date +%s%N > t_tile_done; } |
	{ IFS= read -r first; date +%s%N > t_first; printf '%s\n' "$first" > first.json; cat > /dev/null; }
if [ "$(cat t_first)" -lt "$(cat t_tile_done)" ]; then ok "the first tile item arrives before mem-tile ends"; else not_ok "items arrive only when mem-tile ends"; fi
case $(cat first.json) in *'"mem:stage":"tile"'*) ok "and it is a whole tile item" ;; *) not_ok "first line: $(cut -c1-100 first.json)" ;; esac

# a second run over the same workdir and output gives the same items
pipe w out > stored2.json
if cmp -s stored.json stored2.json; then ok "a rerun emits identical items"; else not_ok "a rerun emits other items"; fi

# SIGKILL in the middle of a run, then a rerun: the same outputs, nothing half-written
pipe w3 ref > ref.json
( pipe w4 killed > /dev/null 2>&1 ) &
bg=$!
i=0
while [ "$(find killed -name '*.tif' 2>/dev/null | wc -l)" -lt 3 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
pkill -KILL -f "mem-(fetch|tile|infer|store) .*w4|mem-store -o killed" 2>/dev/null || true
wait $bg 2>/dev/null || true
pipe w4 killed > resumed.json
if [ "$(sort resumed.json | sed "s|$T/killed|X|g" | md5sum)" = "$(sort ref.json | sed "s|$T/ref|X|g" | md5sum)" ]; then
	ok "after kill -9, a rerun emits the same items as an uninterrupted run"
else
	not_ok "resumed items differ from an uninterrupted run"
fi
diffs=0
for f in $(cd ref && find . -name '*.tif'); do cmp -s "ref/$f" "killed/$f" || diffs=$((diffs + 1)); done
[ "$diffs" -eq 0 ] && ok "and the same bytes in every COG" || not_ok "$diffs COGs differ after resume"
left=$(find killed w4 -name '.*.tmp-*' | wc -l)
[ "$left" -eq 0 ] && ok "the rerun swept the killed run's temporary files" || not_ok "$left temporary files of the killed run remain"

done_testing
