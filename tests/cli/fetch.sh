#!/bin/sh
# mem-fetch: filters, asset selection, local copies with checksums, reruns,
# HTTP, real recorded STAC responses, and its errors with their exit codes.
. "$MEM_SRCDIR/tests/lib.sh"

demo
W=work

check "fetch the demo catalog" sh -c "mem-fetch demo/catalog.json --workdir $W > all.json"
n=$(wc -l < all.json)
if [ "$n" -eq 1 ]; then ok "one scene item"; else not_ok "one scene item ($n)"; fi
keys=$(json_get all.json "' '.join(sorted(d['assets']))")
if [ "$keys" = "blue green nir red scl" ]; then ok "every data asset by default"; else not_ok "assets: $keys"; fi

check "fetch red,nir" sh -c "mem-fetch demo/catalog.json --assets red,nir --workdir $W > rn.json"
keys=$(json_get rn.json "' '.join(sorted(d['assets']))")
if [ "$keys" = "nir red" ]; then ok "--assets red,nir brings two assets"; else not_ok "assets: $keys"; fi
check "fetch by band name B04" sh -c "mem-fetch demo/catalog.json --assets B04 --workdir $W > b04.json"
keys=$(json_get b04.json "' '.join(sorted(d['assets']))")
if [ "$keys" = "red" ]; then ok "--assets B04 finds asset red by eo:bands name"; else not_ok "assets: $keys"; fi

href=$(json_get rn.json "d['assets']['red']['href']")
case $href in
"$T/$W/scenes/"*) ok "href points into the workdir" ;;
*) not_ok "href points into the workdir: $href" ;;
esac
sum=$(json_get rn.json "d['assets']['red']['file:checksum']")
want="1220$(sha256sum "$href" | cut -d' ' -f1)"
if [ "$sum" = "$want" ]; then ok "file:checksum is the multihash of the copy"; else not_ok "checksum $sum != $want"; fi
size=$(json_get rn.json "d['assets']['red']['file:size']")
if [ "$size" -eq "$(stat -c %s "$href")" ]; then ok "file:size is the copy's size"; else not_ok "file:size $size"; fi
shape=$(json_get rn.json "d['assets']['red']['proj:shape']")
if [ "$shape" = "[1024, 1024]" ]; then ok "proj:shape read from the file"; else not_ok "proj:shape $shape"; fi
if cmp -s "$href" demo/sentinel-2-l2a-demo/S2A_32TNR_20240715_0_L2A_DEMO/B04.tif; then ok "the copy equals the source"; else not_ok "the copy equals the source"; fi
unk=$(json_get rn.json "d['properties']['s2:processing_baseline']")
if [ "$unk" = "05.10" ]; then ok "unknown properties pass through"; else not_ok "unknown properties pass through ($unk)"; fi

# a rerun gives the same items and rewrites nothing
before=$(stat -c %Y.%i "$href")
sleep 1
mem-fetch demo/catalog.json --assets red,nir --workdir $W > rn2.json
if cmp -s rn.json rn2.json; then ok "a rerun emits identical items"; else not_ok "a rerun emits identical items"; fi
if [ "$(stat -c %Y.%i "$href")" = "$before" ]; then ok "a rerun leaves fetched files alone"; else not_ok "a rerun rewrote a file"; fi

# filters
count() { mem-fetch demo/catalog.json --dry-run "$@" | cut -f1 | sort -u | wc -l; }
[ "$(count --bbox 9.8,46.05,9.85,46.1)" -eq 1 ] && ok "--bbox inside keeps the scene" || not_ok "--bbox inside"
[ "$(count --bbox 10.5,46.5,10.6,46.6)" -eq 0 ] && ok "--bbox outside drops it" || not_ok "--bbox outside"
[ "$(count --datetime 2024-07-15)" -eq 1 ] && ok "--datetime day keeps it" || not_ok "--datetime day"
[ "$(count --datetime 2024-07-15T10:00:00Z/2024-07-15T11:00:00Z)" -eq 1 ] && ok "--datetime interval keeps it" || not_ok "--datetime interval"
[ "$(count --datetime 2024-08-01/..)" -eq 0 ] && ok "--datetime open interval drops it" || not_ok "--datetime open interval"
[ "$(count --max-cloud 5)" -eq 0 ] && ok "--max-cloud 5 drops a 7.5 % scene" || not_ok "--max-cloud 5"
[ "$(count --max-cloud 10)" -eq 1 ] && ok "--max-cloud 10 keeps it" || not_ok "--max-cloud 10"
[ "$(count --collection other,x)" -eq 0 ] && ok "--collection other drops it" || not_ok "--collection other"
[ "$(count --collection sentinel-2-l2a-demo)" -eq 1 ] && ok "--collection keeps its own" || not_ok "--collection own"
b=$(mem-fetch demo/catalog.json --dry-run --assets red | cut -f4)
[ "$b" = "$(stat -c %s demo/sentinel-2-l2a-demo/S2A_32TNR_20240715_0_L2A_DEMO/B04.tif)" ] && ok "--dry-run says how many bytes ($b)" || not_ok "--dry-run bytes: $b"
[ ! -d dry ] && mem-fetch demo/catalog.json --dry-run --workdir dry > /dev/null && [ ! -d dry/scenes ] \
	&& ok "--dry-run fetches nothing" || not_ok "--dry-run fetches nothing"

# the item file itself and file:// work as sources
item=$(find demo -name 'S2A_*.json')
check "an item file as source" sh -c "mem-fetch '$item' --assets red --workdir $W | grep -q S2A_32TNR"
check "a file:// URL as source" sh -c "mem-fetch 'file://$T/demo/catalog.json' --assets red --workdir $W | grep -q S2A_32TNR"

# HTTP, from a server on loopback
if command -v python3 >/dev/null 2>&1; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	python3 -m http.server "$port" --bind 127.0.0.1 --directory demo >/dev/null 2>&1 &
	srv=$!
	trap 'kill $srv 2>/dev/null || true; rm -rf "$T"' EXIT INT TERM
	i=0
	while ! curl -sf "http://127.0.0.1:$port/catalog.json" >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	check "fetch over HTTP" sh -c "mem-fetch http://127.0.0.1:$port/catalog.json --assets red,scl --workdir http > h.json"
	h=$(json_get h.json "d['assets']['red']['href']")
	if cmp -s "$h" demo/sentinel-2-l2a-demo/S2A_32TNR_20240715_0_L2A_DEMO/B04.tif; then ok "HTTP copy equals the source"; else not_ok "HTTP copy equals the source"; fi
	check_exit "HTTP 404 of the source exits 2" 2 mem-fetch "http://127.0.0.1:$port/nope.json" --retries 0
	kill $srv 2>/dev/null || true
else
	skip "no python3 for a loopback HTTP server"; skip "no python3"; skip "no python3"
fi

# progress on a terminal only
err=$(mem-fetch demo/catalog.json --assets red --workdir $W 2>&1 >/dev/null)
[ -z "$err" ] && ok "nothing on stderr when it is not a terminal" || not_ok "stderr: $err"
if command -v script >/dev/null 2>&1; then
	tty_out=$(script -qec "mem-fetch demo/catalog.json --assets red --workdir $W > /dev/null" /dev/null 2>&1 || true)
	case $tty_out in *"mem-fetch: 1 items,"*"MB/s"*) ok "progress on a terminal" ;; *) not_ok "no progress on a terminal: $tty_out" ;; esac
	tty_out=$(script -qec "mem-fetch -q demo/catalog.json --assets red --workdir $W > /dev/null" /dev/null 2>&1 || true)
	[ -z "$tty_out" ] && ok "-q silences it" || not_ok "-q output: $tty_out"
else
	skip "no script(1) to make a terminal"; skip "no script(1)"
fi

# errors
check_exit "no SOURCE exits 2" 2 mem-fetch
check_exit "a missing file exits 2" 2 mem-fetch nope.json
msg=$(stderr_of mem-fetch nope.json)
case $msg in
"mem-fetch: cannot open 'nope.json': No such file or directory"*) ok "a missing file is named" ;;
*) not_ok "a missing file is named: $msg" ;;
esac
printf '{"type": "Catalog", "links": [\n' > broken.json
check_exit "a malformed catalog exits 2" 2 mem-fetch broken.json
echo '{"hello": 1}' > notstac.json
check_exit "a JSON file that is not STAC exits 2" 2 mem-fetch notstac.json
check_exit "an unreachable URL exits 75" 75 mem-fetch http://127.0.0.1:9/catalog.json --retries 0 --timeout 5
msg=$(stderr_of mem-fetch http://127.0.0.1:9/catalog.json --retries 0 --timeout 5)
case $msg in
*"cannot fetch 'http://127.0.0.1:9/catalog.json'"*) ok "an unreachable URL is named" ;;
*) not_ok "an unreachable URL is named: $msg" ;;
esac
check_exit "an unknown asset fails the item (exit 1)" 1 mem-fetch demo/catalog.json --assets nope --workdir $W
check_exit "a bad --bbox exits 2" 2 mem-fetch demo/catalog.json --bbox 1,2,3
check_exit "a bad --datetime exits 2" 2 mem-fetch demo/catalog.json --datetime 2024-13-01
check_exit "a reversed --datetime exits 2" 2 mem-fetch demo/catalog.json --datetime 2024-02-01/2024-01-01
check_exit "a bad --max-cloud exits 2" 2 mem-fetch demo/catalog.json --max-cloud abc

# real recorded responses: filters agree with an independent count
ES=$(realdata stac/earth-search-v1/sentinel-2-c1-l2a_13TDE_item-collection.json)
PC=$(realdata stac/planetary-computer/search_s2l2a_20190101.response.json)
if [ -n "$ES" ] && [ -n "$PC" ]; then
	for src in "$ES" "$PC"; do
		for cc in 10 50 100; do
			want=$(/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for f in d['features'] if f['properties'].get('eo:cloud_cover', 0) <= $cc))" "$src")
			got=$(mem-fetch "$src" --dry-run --max-cloud $cc --assets red | wc -l)
			if [ "$got" -eq "$want" ]; then ok "$(basename "$src"): --max-cloud $cc keeps $want"; else not_ok "$(basename "$src"): --max-cloud $cc gives $got, want $want"; fi
		done
	done
	got=$(mem-fetch "$ES" --dry-run --assets red,nir,scl | awk -F'\t' '$2=="red"' | cut -f3 | grep -c 'B04.tif$' || true)
	if [ "$got" -eq 10 ]; then ok "Earth Search: asset red is the B04 COG in all 10 items"; else not_ok "Earth Search red assets: $got"; fi
	got=$(mem-fetch "$PC" --dry-run --assets red | cut -f3 | grep -c '_B04_10m.tif' || true)
	if [ "$got" -eq 33 ]; then ok "Planetary Computer: band red found as B04 in 33 items"; else not_ok "Planetary Computer red: $got"; fi
else
	skip "no ../shared/realdata STAC responses"
fi

done_testing
