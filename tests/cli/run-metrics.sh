#!/bin/sh
# mem-run --metrics FILE --summary FILE on the demo scene: the Prometheus
# text file (node_exporter's textfile convention) parsed line by line, its
# counts against the run's own manifests and assets, progress while the
# run goes on, skipped stages on a rerun, and a failed run that keeps the
# time of the last success.
. "$MEM_SRCDIR/tests/lib.sh"

mem-demo -o demo --size 512 > /dev/null
cat > r.yaml <<'EOF2'
version: 1
name: t
source:
  catalog: demo/catalog.json
assets: [red, nir, scl]
grid: webmercator:14
stages: [cloudmask, 'ndvi:mask=cloudmask']
outputs:
  dir: out
EOF2
mkdir mx
check "mem-run --metrics --summary exits 0" mem-run -q --metrics mx/r.prom --summary s.json r.yaml

# parse: every sample is NAME{LABELS} VALUE of a family with HELP and TYPE
# before it; prints NAME{LABELS}=VALUE lines for the checks below
parse() {
	/usr/bin/python3 - "$1" <<'PY'
import re, sys
typed, out = {}, []
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    m = re.match(r"# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", line)
    if m:
        if m.group(1) == "TYPE":
            assert m.group(3) in ("counter", "gauge"), line
            typed[m.group(2)] = m.group(3)
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\} (\S+)$', line)
    assert m, "line %d is not a sample: %r" % (n, line)
    assert m.group(1) in typed, "line %d: no TYPE for %s" % (n, m.group(1))
    float(m.group(3))
    out.append("%s{%s}=%s" % m.groups())
print("\n".join(out))
PY
}
if parse mx/r.prom > m.txt 2> parse.err; then
	ok "the metrics file is Prometheus text: $(wc -l < m.txt) samples, each with HELP and TYPE"
else
	not_ok "metrics do not parse: $(tail -1 parse.err)"
fi
get() { sed -n "s/^$1{recipe=\"t\"${2:-}}=//p" m.txt; }
items() { get memories_run_stage_items_total ",stage=\"$1\",status=\"$2\""; }
n_scenes=$(wc -l < runs/t/scenes.ndjson)
n_tiles=$(wc -l < runs/t/tiles.ndjson)
n_results=$(wc -l < runs/t/results.ndjson)
n_stored=$(wc -l < runs/t/stored.ndjson)
got="$(items fetch done) $(items tile read) $(items tile done) $(items infer read) $(items infer done) $(items store done)"
want="$n_scenes $n_scenes $n_tiles $n_tiles $n_results $n_stored"
[ "$got" = "$want" ] && [ "$n_stored" -gt 0 ] && ok "items done per stage equal the manifests' lines ($want)" ||
	not_ok "items: $got, manifests $want"
[ "$(items fetch failed)$(items tile failed)$(items infer failed)$(items store failed)" = 0000 ] &&
	ok "no item failed" || not_ok "failed: $(grep failed m.txt)"
bytes=$(/usr/bin/python3 -c '
import json, sys
print(sum(a.get("file:size", 0) for l in open(sys.argv[1]) for a in json.loads(l)["assets"].values()))' runs/t/stored.ndjson)
[ "$(get memories_run_stage_bytes_written_total ',stage="store"')" = "$bytes" ] && [ "$bytes" -gt 0 ] &&
	ok "store's bytes written equal the stored assets' file:size ($bytes)" ||
	not_ok "store bytes $(get memories_run_stage_bytes_written_total ',stage="store"'), assets $bytes"
secs=$(/usr/bin/python3 -c '
import re, sys
t = open(sys.argv[1]).read()
st = [float(v) for v in re.findall(r"^memories_run_stage_seconds\{[^}]*\}=(\S+)$", t, re.M)]
run = float(re.search(r"^memories_run_seconds\{[^}]*\}=(\S+)$", t, re.M).group(1))
print("ok" if len(st) == 4 and all(s > 0 for s in st) and sum(st) <= run else "bad %s %s" % (st, run))' m.txt)
[ "$secs" = ok ] && ok "four stages with seconds > 0, their sum within the run's" || not_ok "seconds: $secs"
now=$(date +%s)
last=$(get memories_run_last_success_timestamp_seconds)
[ "$(get memories_run_exit_status)" = 0 ] && [ "$(get memories_run_in_progress)" = 0 ] &&
    [ "${last%.*}" -ge $((now - 120)) ] && [ "${last%.*}" -le "$now" ] &&
	ok "exit status 0, not in progress, last success now" || not_ok "status: $(grep -v stage m.txt)"
[ "$(ls -A mx)" = r.prom ] && ok "nothing but the metrics file in its directory (written by rename)" || not_ok "left: $(ls -A mx)"

# the summary: the run record with the same totals
res=$(/usr/bin/python3 - s.json m.txt <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
bad = []
for st, v in s["totals"].items():
    for k in ("read", "done", "failed"):
        m = re.search(r'^memories_run_stage_items_total\{recipe="t",stage="%s",status="%s"\}=(\S+)$' % (st, k), t, re.M)
        if not m or int(m.group(1)) != v[k]:
            bad.append("%s %s" % (st, k))
if [x["stage"] for x in s["stages"]] != ["fetch", "tile", "infer", "store"]:
    bad.append("stages")
if not (s["gdal"] and s["proj"] and s["inputs"] and s["tools"].get("mem-tile") and s["status"] == 0):
    bad.append("record")
print("ok" if not bad else "bad: " + ", ".join(bad))
PY
)
[ "$res" = ok ] && ok "the summary holds the run record and the same totals" || not_ok "summary: $res"

# --- a rerun: the skipped stages say so, their counts are those of their outputs
check "a rerun exits 0" mem-run -q --metrics mx/r.prom r.yaml
parse mx/r.prom > m2.txt
sk=$(for s in fetch tile infer store; do sed -n "s/^memories_run_stage_skipped{recipe=\"t\",stage=\"$s\"}=//p" m2.txt; done | tr -d '\n')
t2=$(sed -n 's/^memories_run_stage_items_total{recipe="t",stage="tile",status="done"}=//p' m2.txt)
ts=$(sed -n 's/^memories_run_stage_seconds{recipe="t",stage="tile"}=//p' m2.txt)
[ "$sk" = 0111 ] && [ "$t2" = "$n_tiles" ] && [ "$ts" = 0.000 ] &&
	ok "rerun: tile, infer and store skipped (0 s), counts kept" || not_ok "rerun: skipped $sk, tiles $t2, seconds $ts"

# --- a failed run keeps the last success ------------------------------------------
last=$(sed -n 's/^memories_run_last_success_timestamp_seconds{recipe="t"}=//p' m2.txt)
sed 's#demo/catalog.json#demo/nope.json#' r.yaml > bad.yaml
set +e
mem-run -q --metrics mx/r.prom bad.yaml 2> bad.err
rc=$?
set -e
parse mx/r.prom > m3.txt
[ "$rc" -ne 0 ] && [ "$(sed -n 's/^memories_run_exit_status{recipe="t"}=//p' m3.txt)" = "$rc" ] &&
    [ "$(sed -n 's/^memories_run_last_success_timestamp_seconds{recipe="t"}=//p' m3.txt)" = "$last" ] &&
	ok "a failed run (exit $rc) writes its exit status and keeps the last success" ||
	not_ok "failed run: exit $rc, metrics $(grep -v stage m3.txt | tr '\n' ' ')"

# --- progress: a run killed in its tile stage leaves in_progress 1 ------------------
mkdir k
ln -s ../demo k/demo
sed 's/^name: t/name: k/' r.yaml > k/k.yaml
(cd k && exec setsid mem-run --metrics "$T/k.prom" k.yaml > /dev/null 2>&1) &
bg=$!
i=0
while [ "$(find k/runs/k/work/tiles -type f 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 1200 ]; do sleep 0.02; i=$((i + 1)); done
/bin/kill -KILL -- -"$bg" 2>/dev/null || kill -KILL "$bg" 2>/dev/null || true
wait $bg 2>/dev/null || true
if [ -e k/runs/k/stored.ndjson ]; then
	skip "the run ended before the kill"
elif parse k.prom > k.txt 2>/dev/null && grep -q '^memories_run_in_progress{recipe="k"}=1$' k.txt &&
    grep -q "^memories_run_stage_items_total{recipe=\"k\",stage=\"fetch\",status=\"done\"}=$n_scenes$" k.txt &&
    ! grep -q 'stage="tile"' k.txt; then
	ok "killed in its tile stage: the metrics say in progress, fetch done"
else
	not_ok "progress metrics: $(cat k.prom 2>/dev/null | grep -v '^#' | tr '\n' ' ')"
fi

check_exit "--metrics without a file is a usage error" 2 mem-run --metrics
done_testing
