#!/bin/sh
# The llm stage against a chat API on loopback started here (python3's
# http.server): the request's exact shape for the OpenAI-compatible and
# Cohere APIs, the key sent and never shown, 429 retried, 401 and 500
# reported without losing the results, the cache and the request budget.
# Nothing leaves 127.0.0.0/8: tests/lib.sh points any proxy at a dead port.
. "$MEM_SRCDIR/tests/lib.sh"

demo
mem-fetch demo/catalog.json --assets red,nir,scl --workdir w > scene.json
# a second item of the same scene under another id: two tiles to ask about
/usr/bin/python3 -c '
import json
d = json.loads(open("scene.json").readline())
print(json.dumps(d)); d["id"] += "-b"; print(json.dumps(d))' > two.json

# the server: answers each request with the next status of ./script (200
# when none is left), logs method, path, body and whether the key came
cat > server.py <<'PY'
import json, sys, os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        try:
            st = open("script").read().split()
        except OSError:
            st = []
        code = int(st[0]) if st else 200
        open("script", "w").write(" ".join(st[1:]))
        with open("requests.log", "a") as f:
            f.write(json.dumps({"path": self.path, "code": code, "body": json.loads(body),
                                "auth": self.headers.get("Authorization") == "Bearer " + os.environ["WANT_KEY"],
                                "ctype": self.headers.get("Content-Type")}) + "\n")
        if code != 200:
            self.send_response(code)
            if code == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "no"}}')
            return
        n = sum(1 for _ in open("requests.log"))
        text = "answer %d" % n
        if self.path.endswith("/v2/chat"):
            r = {"id": "x", "finish_reason": "COMPLETE",
                 "message": {"role": "assistant", "content": [{"type": "text", "text": text}]}}
        else:
            r = {"id": "x", "object": "chat.completion", "model": "m",
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": text}}]}
        b = json.dumps(r).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
s = HTTPServer(("127.0.0.1", 0), H)
open("port.tmp", "w").write(str(s.server_address[1]))
os.rename("port.tmp", "port")
s.serve_forever()
PY
KEY=sk-test-0123456789-secret
WANT_KEY=$KEY /usr/bin/python3 server.py &
SRV=$!
trap 'kill $SRV 2>/dev/null; rm -rf "$T"' EXIT INT TERM
i=0
while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -s port ] || skip_all "the loopback server did not start"
URL=http://127.0.0.1:$(cat port)
nreq() { if [ -f requests.log ]; then wc -l < requests.log | tr -d ' '; else echo 0; fi; }
last() { tail -n 1 requests.log | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- OpenAI-compatible (DeepSeek), one tile --------------------------------------
check "deepseek: ndvi and an llm answer" sh -c \
    "DEEPSEEK_API_KEY=$KEY mem-infer -s ndvi -s llm:deepseek/deepseek-chat --llm-endpoint $URL/v1 --workdir w < scene.json > ds.json 2> ds.err"
[ "$(nreq)" = 1 ] && ok "one request" || not_ok "requests: $(nreq)"
shape=$(last "d['path'], d['body']['model'], sorted(d['body']), [m['role'] for m in d['body']['messages']], d['body']['stream'], d['auth'], d['ctype']")
[ "$shape" = "/v1/chat/completions deepseek-chat ['messages', 'model', 'stream'] ['user'] False True application/json" ] \
    && ok "the request: POST /v1/chat/completions, model, one user message, stream false, Bearer key" || not_ok "request: $shape"
summ=$(last "json.loads(d['body']['messages'][0]['content'].split('\n\n', 1)[1])['outputs']['ndvi']['mean'] > -1")
[ "$summ" = True ] && ok "the prompt carries the JSON summary (NDVI statistics)" || not_ok "summary: $summ"
a=$(json_get ds.json "d['properties']['mem:llm']['answer'], d['properties']['mem:llm']['provider'], d['properties']['mem:llm']['model'], len(d['properties']['mem:llm']['prompt_sha256'])")
[ "$a" = "answer 1 deepseek deepseek-chat 64" ] && ok "the answer is in mem:llm with provider, model, prompt hash" || not_ok "mem:llm: $a"
if grep -rq -- "$KEY" ds.json ds.err w; then not_ok "the key appears in the output, messages or workdir"; else ok "the key is nowhere in items, messages, workdir or cache"; fi
ls w/llm/*.json > /dev/null 2>&1 && ok "the answer is cached in WORKDIR/llm" || not_ok "no cache file"

# a rerun: the cache answers, no request (and no key needed)
check "rerun from the cache, no key set" sh -c \
    "mem-infer -s ndvi -s llm:deepseek/deepseek-chat --llm-endpoint $URL/v1 --workdir w < scene.json > ds2.json"
[ "$(nreq)" = 1 ] && cmp -s ds.json ds2.json && ok "no request on rerun, the same item" || not_ok "rerun: $(nreq) requests"

# --- 429 then success; 500 and 401 reported, results kept -----------------------
echo 429 > script
check "429 then 200: retried" sh -c \
    "DEEPSEEK_API_KEY=$KEY mem-infer -s ndvi -s 'llm:deepseek/deepseek-chat,prompt=/dev/null' --llm-endpoint $URL/v1 --workdir w < scene.json > r429.json"
[ "$(nreq)" = 3 ] && [ "$(json_get r429.json "d['properties']['mem:llm']['answer']")" = "answer 3" ] \
    && ok "one retry after Retry-After, then the answer" || not_ok "429: $(nreq) requests, $(cat r429.json | head -c 300)"
echo 500 500 500 500 > script
check_exit "500 four times: exit 75, the item still emitted" 75 sh -c \
    "DEEPSEEK_API_KEY=$KEY mem-infer -s ndvi -s 'llm:deepseek/other-model' --llm-endpoint $URL/v1 --workdir w < scene.json > r500.json"
e=$(json_get r500.json "d['properties']['mem:llm']['answer'], 'HTTP 500' in d['properties']['mem:llm']['error'], 'ndvi' in d['assets']")
[ "$e" = "None True True" ] && [ "$(nreq)" = 7 ] && ok "500: no answer, the error, the NDVI kept; 4 tries" || not_ok "500: $e, $(nreq) requests"
echo 401 > script
check_exit "401: exit 1, not retried" 1 sh -c \
    "DEEPSEEK_API_KEY=$KEY mem-infer -s ndvi -s 'llm:deepseek/m401' --llm-endpoint $URL/v1 --workdir w < scene.json > r401.json 2> r401.err"
[ "$(nreq)" = 8 ] && grep -q "HTTP 401" r401.err && ! grep -q -- "$KEY" r401.err r401.json && ok "401: one try, said, key not shown" || not_ok "401: $(nreq) requests: $(cat r401.err)"
check_exit "a missing key is a usage error" 2 sh -c \
    "env -u DEEPSEEK_API_KEY mem-infer -s ndvi -s llm:deepseek/new-model --llm-endpoint $URL/v1 --workdir w < scene.json"

# --- the budget -----------------------------------------------------------------
check_exit "--max-requests 1 with two tiles: exit 1" 1 sh -c \
    "DEEPSEEK_API_KEY=$KEY mem-infer -s ndvi -s llm:deepseek/budget --max-requests 1 --llm-endpoint $URL/v1 --workdir w < two.json > b.json 2> b.err"
b=$(/usr/bin/python3 -c '
import json
r = [json.loads(l)["properties"]["mem:llm"] for l in open("b.json")]
print(len(r), r[0]["answer"], r[1]["answer"], r[1].get("skipped"))')
[ "$b" = "2 answer 9 None --max-requests reached" ] && grep -q "max-requests 1 reached" b.err \
    && ok "budget: the first answered, the second emitted without, a warning" || not_ok "budget: $b / $(cat b.err)"
check "a rerun without a budget asks only for the rest" sh -c \
    "DEEPSEEK_API_KEY=$KEY mem-infer -s ndvi -s llm:deepseek/budget --llm-endpoint $URL/v1 --workdir w < two.json > b2.json"
[ "$(nreq)" = 10 ] && ok "one more request, not two" || not_ok "requests: $(nreq)"

# --- scope=run: one question for the run --------------------------------------------
check "scope=run" sh -c \
    "DEEPSEEK_API_KEY=$KEY mem-infer -s ndvi -s llm:deepseek/run,scope=run --llm-endpoint $URL/v1 --workdir w < two.json > run.json"
r=$(/usr/bin/python3 -c '
import json
r = [json.loads(l)["properties"]["mem:llm"] for l in open("run.json")]
print(len(r), r[0]["answer"] == r[1]["answer"], r[0]["scope"])')
t=$(last "len(json.loads(d['body']['messages'][0]['content'].split('\n\n', 1)[1])['tiles'])")
[ "$r" = "2 True run" ] && [ "$t" = 2 ] && [ "$(nreq)" = 11 ] && ok "one request with both tiles, the answer in each" || not_ok "scope=run: $r, $t tiles, $(nreq) requests"

# --- Cohere v2 chat ---------------------------------------------------------------
check "cohere: v2 chat" sh -c \
    "CO_API_KEY=$KEY mem-infer -s ndvi -s llm:cohere/command-r --llm-endpoint $URL/v2 --workdir w < scene.json > co.json"
c=$(last "d['path'], d['body']['model'], d['body']['messages'][0]['role'], d['auth']")
a=$(json_get co.json "d['properties']['mem:llm']['answer']")
[ "$c" = "/v2/chat command-r user True" ] && [ "$a" = "answer 12" ] \
    && ok "cohere: POST /v2/chat, Bearer key, the answer from message.content[].text" || not_ok "cohere: $c / $a"
check_exit "an unknown provider without --llm-endpoint is a usage error" 2 sh -c \
    "mem-infer -s ndvi -s llm:nowhere/x --workdir w < scene.json"

done_testing
