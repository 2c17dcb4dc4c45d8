#!/bin/sh
# Batch runs (issue 7): --shard I/N splits the items of every tool by id,
# the same whatever the order they come in; mem-fetch --plan counts a run;
# --metrics writes Prometheus text and --summary a JSON run record.
. "$MEM_SRCDIR/tests/lib.sh"

mem-demo -o demo --size 64 > /dev/null
W=work

# A manifest of many items: the demo scene under 24 ids, absolute hrefs,
# and the same items in another order.
/usr/bin/python3 - demo/sentinel-2-l2a-demo/S2A_32TNR_20240715_0_L2A_DEMO/S2A_32TNR_20240715_0_L2A_DEMO.json <<'PY'
import json, os, random, sys
src = sys.argv[1]
item = json.load(open(src))
base = os.path.dirname(os.path.abspath(src))
for a in item['assets'].values():
    a['href'] = os.path.join(base, a['href'])
item['links'] = []
items = []
for k in range(24):
    it = json.loads(json.dumps(item))
    it['id'] = '%s_%02d' % (item['id'], k)
    items.append(it)
with open('many.json', 'w') as f:
    for it in items:
        f.write(json.dumps(it) + '\n')
random.Random(7).shuffle(items)
with open('shuffled.json', 'w') as f:
    for it in items:
        f.write(json.dumps(it) + '\n')
with open('ids', 'w') as f:
    for it in sorted(items, key=lambda i: i['id']):
        f.write(it['id'] + '\n')
PY

# covers FILE...: the ids in FILEs (one a line) are those of ./ids, each once.
covers() {
	cat "$@" | sort > covered
	cmp -s covered ids
}

# summary_ids FILE: the input ids a --summary holds, one a line.
summary_ids() {
	json_get "$1" "'\\n'.join(d['input_ids'])"
}

# --- mem-fetch: the shards of a dry run cover every item once, in any order ---
for n in 2 3 7; do
	i=0
	: > all$n
	while [ $i -lt $n ]; do
		mem-fetch --dry-run --assets red --shard $i/$n many.json | cut -f1 > f$n.$i
		mem-fetch --dry-run --assets red --shard $i/$n shuffled.json | cut -f1 | sort > g$n.$i
		sort f$n.$i | cmp -s - g$n.$i || echo "$i" >> moved$n
		i=$((i + 1))
	done
	if covers f$n.*; then ok "mem-fetch --shard I/$n: the shards cover each item once"; else not_ok "mem-fetch --shard I/$n does not cover the items once"; diff covered ids | head | sed 's/^/# /'; fi
	if [ ! -s "moved$n" ]; then ok "mem-fetch --shard I/$n: the same items when shuffled"; else not_ok "mem-fetch --shard I/$n: shards $(cat moved$n) change with the order"; fi
done
if [ -s f7.0 ] && [ -s f7.6 ] && [ "$(wc -l < f2.0)" -lt 24 ]; then ok "the shards are not empty or all"; else not_ok "uneven shards: $(wc -l f2.0 f7.0 f7.6)"; fi

# the documented rule: the first 8 bytes of SHA-256(id), big-endian, mod N
/usr/bin/python3 -c "
import hashlib, sys
ids = open('ids').read().split()
want = sorted(i for i in ids if int(hashlib.sha256(i.encode()).hexdigest()[:16], 16) % 3 == 1)
sys.exit(0 if want == sorted(open('f3.1').read().split()) else 1)" \
	&& ok "shard = SHA-256(id)[:8] mod N, as documented" || not_ok "shard rule differs from the man page"

# a real fetch: the shards' items together are the whole run, each once
for i in 0 1 2; do
	mem-fetch --assets red,nir,scl --workdir $W --shard $i/3 --metrics m$i.prom --summary s$i.json many.json > fetched$i.json
done
for i in 0 1 2; do json_get fetched$i.json "'\\n'.join(__import__('json').loads(l)['id'] for l in open('fetched$i.json'))" ; done > fetched.ids
if covers fetched.ids; then ok "mem-fetch --shard I/3 fetches each item once"; else not_ok "mem-fetch --shard I/3 fetched $(wc -l < covered) items"; fi
cat fetched0.json fetched1.json fetched2.json > fetched.json

# --- --plan ---
check "mem-fetch --plan" sh -c "mem-fetch --plan --assets red,nir many.json > plan.json"
got=$(json_get plan.json "'%d %d %d %d %d' % (d['items'], d['assets'], d['assets_unknown_size'], d['per_task'], d['tasks'])")
if [ "$got" = "24 48 0 50 1" ]; then ok "--plan: 24 items, 48 assets, 1 task of 50"; else not_ok "--plan: $got"; fi
bytes=$(json_get plan.json "d['bytes']")
want=$(( ($(stat -c %s demo/sentinel-2-l2a-demo/*/B04.tif) + $(stat -c %s demo/sentinel-2-l2a-demo/*/B08.tif)) * 24 ))
if [ "$bytes" -eq "$want" ]; then ok "--plan: bytes are the assets' sizes"; else not_ok "--plan bytes $bytes, want $want"; fi
got=$(mem-fetch --plan --plan-per-task 5 many.json | json_get /dev/stdin "d['tasks']")
if [ "$got" = 5 ]; then ok "--plan-per-task 5: ceil(24 / 5) = 5 tasks"; else not_ok "--plan-per-task 5: $got tasks"; fi
got=$(mem-fetch --plan --shard 1/3 many.json | json_get /dev/stdin "d['items']")
if [ "$got" -eq "$(wc -l < f3.1)" ]; then ok "--plan --shard 1/3 counts its shard"; else not_ok "--plan --shard 1/3: $got items"; fi
got=$(mem-fetch --plan --max-items 10 many.json | json_get /dev/stdin "d['items']")
if [ "$got" = 10 ]; then ok "--plan --max-items 10"; else not_ok "--plan --max-items 10: $got"; fi
if [ ! -d plan-work ] && mem-fetch --plan --workdir plan-work many.json > /dev/null && [ ! -e plan-work/scenes ]; then
	ok "--plan fetches nothing"
else
	not_ok "--plan wrote into the workdir"
fi
check_exit "--plan-per-task without --plan exits 2" 2 mem-fetch --plan-per-task 3 many.json
check_exit "--plan-per-task 0 exits 2" 2 mem-fetch --plan --plan-per-task 0 many.json
check_exit "--plan with --dry-run exits 2" 2 mem-fetch --plan --dry-run many.json

# --- mem-infer and mem-store: shards by input id, in any order ---
for n in 2 3 7; do
	i=0
	: > moved$n.infer
	while [ $i -lt $n ]; do
		mem-infer -s ndvi --workdir $W --shard $i/$n --summary si$n.$i.json fetched.json > inf$n.$i.json
		summary_ids si$n.$i.json > ii$n.$i
		if [ $n -eq 3 ]; then
			/usr/bin/python3 -c "
import json, random
l = open('fetched.json').readlines(); random.Random(3).shuffle(l); open('fetched-shuffled.json', 'w').writelines(l)"
			mem-infer -s ndvi --workdir $W --shard $i/$n --summary sj$i.json fetched-shuffled.json > /dev/null
			summary_ids sj$i.json | sort | cmp -s - "$(sort ii$n.$i > ii.sorted; echo ii.sorted)" || echo $i >> moved$n.infer
		fi
		i=$((i + 1))
	done
	if covers ii$n.*; then ok "mem-infer --shard I/$n: the shards take each item once"; else not_ok "mem-infer --shard I/$n does not cover the items"; fi
	if [ "$(cat inf$n.* | wc -l)" -eq 24 ]; then ok "mem-infer --shard I/$n: 24 results in all"; else not_ok "mem-infer --shard I/$n: $(cat inf$n.* | wc -l) results"; fi
done
if [ ! -s moved3.infer ]; then ok "mem-infer shards are the same when shuffled"; else not_ok "mem-infer shards $(cat moved3.infer) changed with the order"; fi
# mem-infer's shard of an item is its mem-fetch shard: both go by the input id
if cmp -s "$(sort f3.2 > a; echo a)" "$(sort ii3.2 > b; echo b)"; then ok "mem-fetch and mem-infer agree on shard 2/3"; else not_ok "mem-fetch and mem-infer disagree"; fi

for n in 2 3; do
	i=0
	while [ $i -lt $n ]; do
		mem-store -o out$n --shard $i/$n --summary ss$n.$i.json inf3.0.json inf3.1.json inf3.2.json > st$n.$i.json
		summary_ids ss$n.$i.json > is$n.$i
		i=$((i + 1))
	done
	cat inf3.0.json inf3.1.json inf3.2.json | /usr/bin/python3 -c "
import json, sys
for l in sys.stdin: print(json.loads(l)['id'])" | sort > ids.store
	cat is$n.* | sort > covered
	if cmp -s covered ids.store; then ok "mem-store --shard I/$n: the shards take each item once"; else not_ok "mem-store --shard I/$n does not cover the items"; fi
	if [ "$(cat st$n.* | wc -l)" -eq 24 ]; then ok "mem-store --shard I/$n: 24 stored items"; else not_ok "mem-store --shard I/$n: $(cat st$n.* | wc -l) stored"; fi
done

# mem-tile keeps splitting cells, never items: every shard reads every scene
mem-tile -g webmercator:12 --list-cells --shard 1/2 --summary tl.json many.json > /dev/null
got=$(json_get tl.json "'%d %d' % (d['items']['read'], d['items']['skipped'])")
if [ "$got" = "24 0" ]; then ok "mem-tile --shard reads every item"; else not_ok "mem-tile --shard read/skipped $got"; fi

# --- bad --shard values exit 2 and say why, in every tool ---
for bad in 3/3 -1/2 1/0 x 1/ /2 1/2/3 ""; do
	for tool in "mem-fetch many.json" "mem-tile -g webmercator:12" "mem-infer -s ndvi" "mem-store -o bad"; do
		set +e
		msg=$($tool --shard "$bad" < /dev/null 2>&1 >/dev/null)
		rc=$?
		set -e
		case "$rc:$msg" in
		"2:"*"invalid --shard '$bad': expected I/N with 0 <= I < N"*) ;;
		*) echo "${tool%% *} --shard '$bad': exit $rc: $msg" >> badshard ;;
		esac
	done
done
if [ ! -s badshard ]; then ok "a bad --shard exits 2 with its message in every tool"; else not_ok "bad --shard"; sed 's/^/# /' badshard; fi

# --- --metrics: the exposition format, and counts equal to what was emitted ---
# promcheck FILE: every line is a HELP, a TYPE or a sample of the text format
promcheck() {
	/usr/bin/python3 - "$1" <<'PY'
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
lval = r'"(?:[^"\\\n]|\\[\\"n])*"'
labels = r'\{(?:%s=%s(?:,%s=%s)*,?)?\}' % (r'[a-zA-Z_][a-zA-Z0-9_]*', lval, r'[a-zA-Z_][a-zA-Z0-9_]*', lval)
num = r'(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN)'
sample = re.compile(r'^(%s)(%s)? %s(?: -?[0-9]+)?$' % (name, labels, num))
help_ = re.compile(r'^# HELP (%s) .*$' % name)
type_ = re.compile(r'^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$' % name)
text = open(sys.argv[1]).read()
if not text.endswith('\n'):
    sys.exit('no final newline')
typed, seen = {}, set()
for ln in text.split('\n')[:-1]:
    m = type_.match(ln)
    if m:
        if m.group(1) in typed: sys.exit('TYPE twice: ' + ln)
        typed[m.group(1)] = m.group(2); continue
    if help_.match(ln): continue
    m = sample.match(ln)
    if not m: sys.exit('bad line: ' + ln)
    if m.group(1) not in typed: sys.exit('sample before its TYPE: ' + ln)
    if typed[m.group(1)] == 'counter' and not m.group(1).endswith('_total'): sys.exit('counter without _total: ' + ln)
    if ln.rsplit(' ', 1)[0] in seen: sys.exit('series twice: ' + ln)
    seen.add(ln.rsplit(' ', 1)[0])
PY
}
# metric FILE SERIES: the value of one series
metric() {
	grep -F "$2 " "$1" | awk '{print $NF}'
}

bad=
for i in 0 1 2; do promcheck m$i.prom || bad="$bad m$i.prom"; done
mem-infer -s ndvi --workdir $W --metrics mi.prom fetched.json > mi.json
promcheck mi.prom || bad="$bad mi.prom"
mem-store -o outm --metrics ms.prom --summary ms.json mi.json > ms.out
promcheck ms.prom || bad="$bad ms.prom"
mem-tile -g webmercator:12 --workdir $W --metrics mt.prom --summary mt.json fetched.json > mt.out
promcheck mt.prom || bad="$bad mt.prom"
if [ -z "$bad" ]; then ok "--metrics files follow the exposition format"; else not_ok "bad metrics:$bad"; fi

got=$(metric m1.prom 'memories_items_total{tool="mem-fetch",shard="1/3",status="done"}')
if [ "$got" -eq "$(wc -l < fetched1.json)" ]; then ok "mem-fetch metrics: done = items emitted ($got)"; else not_ok "mem-fetch metrics done=$got"; fi
got=$(( $(metric m1.prom 'memories_items_total{tool="mem-fetch",shard="1/3",status="read"}') + $(metric m1.prom 'memories_items_total{tool="mem-fetch",shard="1/3",status="skipped"}') ))
if [ "$got" -eq 24 ]; then ok "mem-fetch metrics: read + skipped = 24"; else not_ok "mem-fetch read + skipped = $got"; fi
got=$(metric mi.prom 'memories_items_total{tool="mem-infer",status="done"}'):$(metric mi.prom 'memories_items_total{tool="mem-infer",status="failed"}')
if [ "$got" = "24:0" ]; then ok "mem-infer metrics: 24 done, 0 failed"; else not_ok "mem-infer metrics done:failed $got"; fi
got=$(metric ms.prom 'memories_items_total{tool="mem-store",status="done"}')
if [ "$got" -eq "$(wc -l < ms.out)" ]; then ok "mem-store metrics: done = items emitted"; else not_ok "mem-store metrics done=$got"; fi
got=$(metric mt.prom 'memories_items_total{tool="mem-tile",status="done"}')
if [ "$got" -eq "$(wc -l < mt.out)" ] && [ "$got" -gt 0 ]; then ok "mem-tile metrics: done = tiles emitted ($got)"; else not_ok "mem-tile metrics done=$got"; fi
want=$(/usr/bin/python3 -c "
import json
print(sum(a.get('file:size', 0) for l in open('ms.out') for a in json.loads(l)['assets'].values()))")
got=$(metric ms.prom 'memories_bytes_written_total{tool="mem-store"}')
if [ "$got" -eq "$want" ] && [ "$got" -gt 0 ]; then ok "bytes_written_total is the assets' file:size"; else not_ok "bytes $got, want $want"; fi
got=$(metric mi.prom 'memories_run_exit_status{tool="mem-infer"}'):$(metric mi.prom 'memories_run_in_progress{tool="mem-infer"}')
if [ "$got" = "0:0" ]; then ok "metrics: exit status 0, no longer in progress"; else not_ok "exit:in_progress $got"; fi
ls=$(metric mi.prom 'memories_last_success_timestamp_seconds{tool="mem-infer"}')
if [ -n "$ls" ]; then ok "a success sets memories_last_success_timestamp_seconds"; else not_ok "no last success"; fi
if ls -a | grep -q '\.tmp-'; then not_ok "temporary files left: $(ls -a | grep '\.tmp-')"; else ok "no temporary files left beside the metrics"; fi

# a failed run keeps the last success it replaces, and says it failed
head -1 fetched.json | /usr/bin/python3 -c "
import json, sys
d = json.loads(sys.stdin.readline()); d['id'] += '_broken'
for a in d['assets'].values(): a['href'] = '/nonexistent/' + a['href'].rsplit('/', 1)[-1]
print(json.dumps(d))" > broken.json
cat fetched.json broken.json > with-broken.json
check_exit "mem-infer with a broken item exits 1" 1 mem-infer -s ndvi --workdir $W --metrics mi.prom --summary sb.json with-broken.json
got=$(metric mi.prom 'memories_items_total{tool="mem-infer",status="failed"}'):$(metric mi.prom 'memories_run_exit_status{tool="mem-infer"}'):$(metric mi.prom 'memories_last_success_timestamp_seconds{tool="mem-infer"}')
if [ "$got" = "1:1:$ls" ]; then ok "a failed run: failed 1, exit status 1, the last success kept"; else not_ok "after a failed run: $got (last success was $ls)"; fi
promcheck mi.prom && ok "the failed run's metrics parse" || not_ok "the failed run's metrics do not parse"

# --- --summary ---
got=$(json_get sb.json "'%s %d %d %d %d %d' % (d['tool'], d['items']['read'], d['items']['done'], d['items']['failed'], d['exit_status'], len(d['input_ids']))")
if [ "$got" = "mem-infer 25 24 1 1 25" ]; then ok "summary: counts, exit status, input ids"; else not_ok "summary: $got"; fi
got=$(json_get sb.json "d['input_ids'][-1]")
if [ "$got" = "$(json_get broken.json "d['id']")" ]; then ok "summary: the input ids in order"; else not_ok "summary: last input id $got"; fi
got=$(json_get sb.json "' '.join(d['argv'][1:])")
if [ "$got" = "-s ndvi --workdir $W --metrics mi.prom --summary sb.json with-broken.json" ]; then ok "summary: the command line as given"; else not_ok "summary argv: $got"; fi
got=$(json_get sb.json "'%s|%s|%s' % (d['version'], d['libraries']['gdal'], d['libraries']['proj'])")
want="$(mem-infer --version | head -1 | awk '{print $3}')|$(gdal-config --version 2>/dev/null || json_get sb.json "d['libraries']['gdal']")"
case $got in
"$want|"?*) ok "summary: tool, GDAL and PROJ versions" ;;
*) not_ok "summary versions: $got (want $want|PROJ)" ;;
esac
got=$(json_get s1.json "'%s %d %d' % (d['shard'], d['items']['read'], len(d['input_ids']))")
if [ "$got" = "1/3 $(wc -l < f3.1) $(wc -l < f3.1)" ]; then ok "summary of a shard: its items"; else not_ok "shard summary: $got"; fi
/usr/bin/python3 -c "
import json, sys
from datetime import datetime
d = json.load(open('ms.json'))
a = datetime.strptime(d['start'], '%Y-%m-%dT%H:%M:%S.%fZ'); b = datetime.strptime(d['end'], '%Y-%m-%dT%H:%M:%S.%fZ')
sys.exit(0 if d['seconds'] >= 0 and abs((b - a).total_seconds() - d['seconds']) < 0.01 and d['items']['done'] == 24 else 1)" \
	&& ok "summary: start, end and seconds agree" || not_ok "summary times"
got=$(json_get mt.json "'%d %d' % (d['items']['read'], d['items']['done'])")
if [ "$got" = "24 $(wc -l < mt.out)" ]; then ok "mem-tile summary: scenes read, tiles done"; else not_ok "mem-tile summary $got"; fi
check_exit "--summary into a missing directory exits 2" 2 mem-infer -s ndvi --summary no/such/dir/s.json fetched.json
check_exit "--metrics into a missing directory exits 2" 2 mem-store -o x --metrics no/such/m.prom fetched.json

done_testing
