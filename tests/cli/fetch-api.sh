#!/bin/sh
# mem-fetch against STAC APIs, on a loopback nginx serving the recorded
# Earth Search and Planetary Computer answers: POST and GET searches, both
# kinds of next links, --max-items, the query extension, Planetary Computer
# signing, and retries on 500, 429 and dropped connections.
. "$MEM_SRCDIR/tests/lib.sh"
. "$MEM_SRCDIR/tests/http.sh"

ES=$(realdata stac/earth-search-v1)
PC=$(realdata stac/planetary-computer)
[ -n "$ES" ] && [ -n "$PC" ] || skip_all "no recorded STAC API answers in ../shared/realdata/stac"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || skip_all "no nginx (scripts/install-deps.sh --test installs it)"

mkdir -p www/es www/pc www/pc-sas www/blob
http_start www || skip_all "nginx would not start"
# the recorded answers, with their hosts pointed at the loopback server
/usr/bin/python3 - "$ES" "$PC" "$HTTP_URL" <<'PY'
import json, sys
es, pc, url = sys.argv[1:4]
def rewrite(text, old, new):
    return text.replace(old, new)
p1 = open(es + "/search_s2l2a_landsat_point_page1.response.json").read()
p1 = rewrite(p1, "https://earth-search.aws.element84.com/v1/search", url + "/es/search-next")
p1 = rewrite(p1, "https://earth-search.aws.element84.com/v1", url + "/es")
open("www/es/search.json", "w").write(p1)
p2 = open(es + "/search_s2l2a_landsat_point_page2.response.json").read()
open("www/es/search-next.json", "w").write(rewrite(p2, "https://earth-search.aws.element84.com/v1", url + "/es"))
root = open(es + "/root_catalog.response.json").read()
open("www/es/index.json", "w").write(rewrite(root, "https://earth-search.aws.element84.com/v1", url + "/es"))
s = open(pc + "/search_s2l2a_20190101.response.json").read()
s = s.replace("https://sentinel2l2a01.blob.core.windows.net", url + "/blob")
s = s.replace("https://planetarycomputer.microsoft.com/api/stac/v1", url + "/pc")
open("www/pc/search.json", "w").write(s)
json.dump({"msft:expiry": "2099-01-01T00:00:00Z", "token": "st=2019-01-01&se=2099-01-01&sig=TESTSIG"},
          open("www/pc-sas/sentinel-2-l2a", "w"))
PY

# Earth Search: POST /search, page 2 through the POST next link with its token
got=$(mem-fetch --api "$HTTP_URL/es/search" --collection sentinel-2-l2a,landsat-c2-l2 \
	--datetime 2023-10-08 --dry-run --assets red | cut -f1 | sort | tr '\n' ' ')
want=$(/usr/bin/python3 -c "import json,sys; print(' '.join(sorted(f['id'] for f in json.load(open(sys.argv[1]))['features'])) + ' ')" "$ES/search_s2l2a_landsat_point_page1.response.json")
[ "$got" = "$want" ] && ok "POST search returns the recorded items ($got)" || not_ok "items: '$got', want '$want'"
[ "$(http_count '^POST /es/search ')" -eq 1 ] && ok "one POST /search" || not_ok "POST /search count $(http_count '^POST /es/search ')"
[ "$(http_count '^POST /es/search-next ')" -eq 1 ] && ok "page 2 asked with a POST through the next link" || not_ok "next page requests: $(http_count '/es/search-next')"
if grep -q 'search-next.*\\"next\\":\\"2023-10-08T17:37:26.656958Z,LC08_L2SP_033032_20231008_02_T1,landsat-c2-l2\\"' "$HTTP_BODIES"; then
	ok "page 2's POST carries the next token of the link's body"
else
	not_ok "page 2 body: $(grep search-next "$HTTP_BODIES" | head -1)"
fi
b1=$(grep ' /es/search ' "$HTTP_BODIES" | head -1)
case $b1 in *'\"collections\":[\"sentinel-2-l2a\",\"landsat-c2-l2\"]'*'\"datetime\":\"2023-10-08T00:00:00Z/2023-10-08T23:59:59.999999Z\"'*|*'\"datetime\":\"2023-10-08T00:00:00Z/2023-10-08T23:59:59.999999Z\"'*'\"collections\":[\"sentinel-2-l2a\",\"landsat-c2-l2\"]'*)
	ok "the search body names collections and the day as an RFC 3339 interval" ;;
*) not_ok "search body: $b1" ;;
esac

# the landing page's search link, --max-items, and an AOI as intersects
: > "$HTTP_LOG"
printf '{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[-105.1019,40.1672]}}\n' > aoi.geojson
n=$(mem-fetch --api "$HTTP_URL/es/index.json" --aoi aoi.geojson --max-items 1 --dry-run --assets red | wc -l)
[ "$n" -eq 1 ] && ok "--max-items 1 stops after one item" || not_ok "--max-items 1 gave $n"
[ "$(http_count '/es/search-next')" -eq 0 ] && ok "and asks for no further page" || not_ok "asked for page 2 anyway"
b=$(grep ' /es/search ' "$HTTP_BODIES" | tail -1)
case $b in *'\"intersects\":{\"type\":\"Point\",\"coordinates\":[-105.1019,40.1672]}'*) ok "--aoi is sent as intersects" ;; *) not_ok "body: $b" ;; esac

# --max-cloud joins the query extension; GET searches carry the same in the query string
mem-fetch --api "$HTTP_URL/es/search" --max-cloud 20 --query '{"platform":{"eq":"landsat-8"}}' --dry-run --assets red > /dev/null
b=$(grep ' /es/search ' "$HTTP_BODIES" | tail -1)
case $b in *'\"query\":{\"platform\":{\"eq\":\"landsat-8\"},\"eo:cloud_cover\":{\"lte\":20'*) ok "--query with --max-cloud as eo:cloud_cover lte" ;; *) not_ok "query body: $b" ;; esac
: > "$HTTP_LOG"
mem-fetch --api "$HTTP_URL/es/search" --get --collection sentinel-2-l2a --bbox -106,40,-105,41 --limit 5 --dry-run --assets red > /dev/null
grep -qE '^GET /es/search\?.*collections=sentinel-2-l2a.*limit=5' "$HTTP_LOG" || grep -qE '^GET /es/search\?.*limit=5.*collections=sentinel-2-l2a' "$HTTP_LOG" \
	&& ok "--get sends the parameters in the query string" || not_ok "GET request: $(head -1 "$HTTP_LOG")"
grep -qE '^GET /es/search\?.*bbox=-106(\.0+)?%2C40' "$HTTP_LOG" && ok "bbox as a comma list" || not_ok "GET bbox: $(head -1 "$HTTP_LOG")"

# Planetary Computer: 33 items, no next link; assets signed with a SAS token
# for the download only (the token endpoint here is the loopback server's)
: > "$HTTP_LOG"
n=$(mem-fetch --api "$HTTP_URL/pc/search" --dry-run --assets red | wc -l)
[ "$n" -eq 33 ] && ok "Planetary Computer: the 33 recorded items" || not_ok "PC items: $n"
first=$(mem-fetch --api "$HTTP_URL/pc/search" --dry-run --assets red --max-items 1 | cut -f3)
path=${first#"$HTTP_URL/"}
mkdir -p "www/$(dirname "$path")"
cp "$(realdata s2/29RKH_20200219_earthsearch_cogs/B04.tif)" "www/$path"
check "fetch a signed asset" sh -c "mem-fetch --api '$HTTP_URL/pc/search' --sign 'pc=$HTTP_URL/pc-sas' --max-items 1 --assets red --workdir w > pc.json"
[ "$(http_count '^GET /pc-sas/sentinel-2-l2a ')" -eq 1 ] && ok "one token asked for the collection" || not_ok "token requests: $(http_count '/pc-sas/')"
grep -qE "^GET /$path\?st=2019-01-01&se=2099-01-01&sig=TESTSIG 200" "$HTTP_LOG" && ok "the asset is downloaded with the token" || not_ok "asset request: $(grep blob "$HTTP_LOG" | head -1)"
src=$(json_get pc.json "d['assets']['B04']['mem:source_href']")
case $src in *sig=*) not_ok "the token leaked into the item: $src" ;; *) ok "the item keeps the unsigned href" ;; esac
cmp -s "$(json_get pc.json "d['assets']['B04']['href']")" "www/$path" && ok "the signed download is the file" || not_ok "downloaded file differs"

# a Maxar Open Data static catalog: the real events catalog and item, one
# event mirrored here (the other 47 children answer 404, and are reported)
MX=$(realdata maxar/stac)
if [ -n "$MX" ]; then
	ev=www/events/WildFires-LosAngeles-Jan-2025
	mkdir -p "$ev/ard/11/031311102001/2024-12-14"
	cp "$MX/events_catalog.json" www/events/catalog.json
	cp "$MX/103001010A705C00_item.json" "$ev/ard/11/031311102001/2024-12-14/103001010A705C00.json"
	printf '{"type":"Collection","stac_version":"1.0.0","id":"WildFires-LosAngeles-Jan-2025","description":"mirror","license":"CC-BY-NC-4.0","extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}},"links":[{"rel":"item","href":"./ard/11/031311102001/2024-12-14/103001010A705C00.json"}]}\n' > "$ev/collection.json"
	: > "$HTTP_LOG"
	mem-fetch "$HTTP_URL/events/catalog.json" --dry-run --assets visual > mx.txt 2> mx.err && rc=0 || rc=$?
	[ "$(cut -f1 mx.txt | sort -u)" = "11/031311102001/103001010A705C00" ] && ok "the Maxar catalog walked to its item" || not_ok "Maxar items: $(cut -f1 mx.txt | tr '\n' ' ')"
	[ "$(cut -f3 mx.txt)" = "$HTTP_URL/events/WildFires-LosAngeles-Jan-2025/ard/11/031311102001/2024-12-14/103001010A705C00-visual.tif" ] \
		&& ok "the item's relative asset href resolved against the item's URL" || not_ok "asset href: $(cut -f3 mx.txt)"
	missing=$(( $(/usr/bin/python3 -c "import json,sys; print(sum(1 for l in json.load(open(sys.argv[1]))['links'] if l['rel'] == 'child'))" "$MX/events_catalog.json") - 1 ))
	[ "$rc" -eq 1 ] && [ "$(grep -c 'HTTP 404' mx.err)" -eq "$missing" ] && ok "the $missing missing children are reported, one each (exit 1)" || not_ok "exit $rc, $(grep -c 'HTTP 404' mx.err) reports of $missing"
	n=$(mem-fetch "$HTTP_URL/events/catalog.json" --max-depth 1 --dry-run --assets visual 2>/dev/null | wc -l)
	[ "$n" -eq 0 ] && ok "--max-depth 1 stops above the items" || not_ok "--max-depth 1 gave $n"
else
	skip "no ../shared/realdata/maxar/stac"
fi

# a GET next link (the Planetary Computer kind): 33 items split over two pages
/usr/bin/python3 - "$HTTP_URL" <<'PY'
import json, sys
url = sys.argv[1]
d = json.load(open("www/pc/search.json"))
feats = d["features"]
p1 = dict(d, features=feats[:20], links=d["links"] + [{"rel": "next", "type": "application/geo+json",
          "href": url + "/pc2/search-next?token=next:page2"}])
p2 = dict(d, features=feats[20:], links=[])
import os
os.makedirs("www/pc2", exist_ok=True)
json.dump(p1, open("www/pc2/search.json", "w")); json.dump(p2, open("www/pc2/search-next.json", "w"))
PY
: > "$HTTP_LOG"
n=$(mem-fetch --api "$HTTP_URL/pc2/search" --dry-run --assets red | cut -f1 | sort -u | wc -l)
[ "$n" -eq 33 ] && ok "a GET next link: 20 + 13 items over two pages" || not_ok "GET paging gave $n items"
grep -q '^GET /pc2/search-next?token=next:page2 200' "$HTTP_LOG" && ok "page 2 asked with GET at the link's URL" || not_ok "page 2 request: $(grep pc2 "$HTTP_LOG" | tail -1)"
n=$(mem-fetch --api "$HTTP_URL/pc2/search" --dry-run --assets red --max-items 25 | wc -l)
[ "$n" -eq 25 ] && ok "--max-items 25 stops inside page 2" || not_ok "--max-items 25 gave $n"

# OSM from an Overpass API query (the answer made here: a school inside the
# box, a road crossing its edge, a shop outside)
mkdir -p www/overpass
cat > www/overpass/interpreter.json <<'OSM'
<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="memories test">
  <node id="1" lat="47.12" lon="9.52"><tag k="amenity" v="school"/><tag k="name" v="Schule"/></node>
  <node id="2" lat="47.20" lon="9.60"><tag k="shop" v="bakery"/></node>
  <node id="3" lat="47.12" lon="9.51"/>
  <node id="4" lat="47.12" lon="9.53"/>
  <node id="5" lat="47.12" lon="9.58"/>
  <way id="10"><nd ref="3"/><nd ref="4"/><nd ref="5"/><tag k="highway" v="residential"/><tag k="name" v="Strasse"/></way>
</osm>
OSM
: > "$HTTP_LOG"
check "an Overpass query as vector layers" sh -c "mem-fetch --overpass '[out:xml];nwr({{bbox}});out;' --overpass-url '$HTTP_URL/overpass/interpreter' --bbox 9.50,47.10,9.55,47.15 --workdir ov > ov.json"
b=$(grep ' /overpass/interpreter ' "$HTTP_BODIES" | tail -1)
case $b in *"data=%5Bout%3Axml%5D%3Bnwr%2847.1000000%2C9.5000000%2C47.1500000%2C9.5500000%29%3Bout%3B"*) ok "the query is POSTed as data=, {{bbox}} as south,west,north,east" ;; *) not_ok "Overpass body: $b" ;; esac
pts=$(grep '"mem:layer":"points"' ov.json | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['properties']['mem:feature_count'])")
lns=$(grep '"mem:layer":"lines"' ov.json | /usr/bin/python3 -c "import json,sys; d=json.loads(sys.stdin.readline()); print(d['properties']['mem:feature_count'], d['bbox'][2])")
[ "$pts" = 1 ] && ok "the school inside is kept, the shop outside dropped" || not_ok "points: $pts"
case $lns in "1 9.55"*) ok "the road crossing the edge is cut at 9.55 E, not dropped" ;; *) not_ok "lines: $lns" ;; esac
: > "$HTTP_LOG"
mem-fetch --overpass '[out:xml];nwr({{bbox}});out;' --overpass-url "$HTTP_URL/overpass/interpreter" --bbox 9.50,47.10,9.55,47.15 --workdir ov > ov2.json
[ "$(http_count '/overpass/')" -eq 0 ] && cmp -s ov.json ov2.json && ok "the same query again asks nothing and emits the same items" || not_ok "a rerun asked the server again or changed"
check_exit "{{bbox}} without a box exits 2" 2 mem-fetch --overpass 'nwr({{bbox}});out;' --overpass-url "$HTTP_URL/overpass/interpreter"
check_exit "an answer that is not OSM XML exits 2" 2 mem-fetch --overpass 'x' --overpass-url "$HTTP_URL/es/search" --workdir ov3

# errors and retries
check_exit "HTTP 500 after retries exits 75" 75 mem-fetch --api "$HTTP_URL/fault/500/search" --retries 2 --dry-run
[ "$(http_count '/fault/500/')" -eq 3 ] && ok "tried 3 times (1 + --retries 2)" || not_ok "500 tries: $(http_count '/fault/500/')"
msg=$(stderr_of mem-fetch --api "$HTTP_URL/fault/500/search" --retries 0 --dry-run)
case $msg in *"HTTP 500"*) ok "the 500 is named" ;; *) not_ok "500 message: $msg" ;; esac
start=$(date +%s)
check_exit "HTTP 429 after retries exits 75" 75 mem-fetch --api "$HTTP_URL/fault/429/search" --retries 2 --dry-run
took=$(( $(date +%s) - start ))
[ "$took" -ge 2 ] && ok "Retry-After: 1 honoured between tries (${took}s for 3 tries)" || not_ok "429 retried too fast (${took}s)"
check_exit "a dropped connection after retries exits 75" 75 mem-fetch --api "$HTTP_URL/fault/close/search" --retries 1 --dry-run
[ "$(http_count '/fault/close/')" -eq 2 ] && ok "a dropped connection is retried" || not_ok "close tries: $(http_count '/fault/close/')"
echo '{"type":"Catalog"}' > www/es/notapi.json
check_exit "a landing page without a search link exits 2" 2 mem-fetch --api "$HTTP_URL/es/notapi.json" --dry-run
check_exit "a 404 search endpoint exits 2" 2 mem-fetch --api "$HTTP_URL/nope/search-none/search" --retries 0 --dry-run
check_exit "--source with an unknown name exits 2" 2 mem-fetch --source nowhere
check_exit "an unknown --sign scheme exits 2" 2 mem-fetch --api "$HTTP_URL/pc/search" --sign aws
check_exit "a SOURCE with --api exits 2" 2 mem-fetch --api "$HTTP_URL/es/search" x.json
check_exit "a bad --query exits 2" 2 mem-fetch --api "$HTTP_URL/es/search" --query '{bad'
check_exit "a missing --aoi file exits 2" 2 mem-fetch --api "$HTTP_URL/es/search" --aoi none.geojson

done_testing
