# tests/http.sh - a loopback HTTP server for tests (nginx from Debian).
#
# http_start WWW: serves directory WWW on 127.0.0.1 at a free port, with
# Range, POST answered from files, request bodies logged, and fault
# endpoints; sets HTTP_URL, HTTP_LOG (access log) and HTTP_BODIES (log of
# POST bodies).  http_stop ends it (the EXIT trap does too).
#
#   POST|GET /X/search         -> WWW/X/search.json            (body logged)
#   POST|GET /X/search-next    -> WWW/X/search-next.json       (body logged)
#   POST|GET /X/interpreter    -> WWW/X/interpreter.json       (body logged)
#   /fault/500/...             -> 500
#   /fault/429/...             -> 429 with Retry-After: 1
#   /fault/close/...           -> connection closed without an answer
#   /fault/slow/PATH           -> WWW/PATH at 50 KB/s after 64 KB
#   /fault/truncate/PATH       -> WWW/PATH cut after about 100 KB (full length announced)
#   anything else              -> the file under WWW (GET, HEAD, Range)

http_start() {
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || return 1
	HTTP_NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
	HTTP_DIR="$T/nginx"
	mkdir -p "$HTTP_DIR/run"
	HTTP_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	www=$(cd "$1" && pwd)
	cat > "$HTTP_DIR/nginx.conf" <<CONF
user root;
worker_processes 1;
daemon off;
pid $HTTP_DIR/run/nginx.pid;
error_log $HTTP_DIR/run/error.log info;
events { worker_connections 64; }
http {
	types { application/json json; image/tiff tif; }
	default_type application/octet-stream;
	log_format plain '\$request_method \$request_uri \$status \$body_bytes_sent';
	log_format body escape=json '\$request_method \$uri \$request_body';
	access_log $HTTP_DIR/run/access.log plain;
	client_body_temp_path $HTTP_DIR/run/body;
	proxy_temp_path $HTTP_DIR/run/proxy;
	fastcgi_temp_path $HTTP_DIR/run/fastcgi;
	uwsgi_temp_path $HTTP_DIR/run/uwsgi;
	scgi_temp_path $HTTP_DIR/run/scgi;
	client_body_buffer_size 1m;
	server {
		listen 127.0.0.1:$HTTP_PORT;
		root $www;
		location ~ ^/(.+)/(search|search-next|interpreter)\$ {
			access_log $HTTP_DIR/run/access.log plain;
			access_log $HTTP_DIR/run/bodies.log body;
			proxy_method GET;
			proxy_pass http://127.0.0.1:$HTTP_PORT/_files/\$1/\$2.json;
		}
		location ^~ /_files/ { alias $www/; default_type application/json; }
		location ^~ /fault/500/ { return 500 '{"error":"boom"}\n'; }
		location ^~ /fault/429/ { add_header Retry-After 1 always; return 429 '{"error":"slow down"}\n'; }
		location ^~ /fault/close/ { return 444; }
		location ^~ /fault/slow/ { alias $www/; limit_rate_after 64k; limit_rate 50k; }
		location ^~ /fault/truncate/ { proxy_pass http://127.0.0.1:$HTTP_PORT/_stall/; proxy_read_timeout 1s; proxy_buffering off; }
		location ^~ /_stall/ { alias $www/; limit_rate_after 100k; limit_rate 1k; }
		location / { }
	}
}
CONF
	"$HTTP_NGINX" -p "$HTTP_DIR" -c "$HTTP_DIR/nginx.conf" 2>"$HTTP_DIR/run/stderr" &
	HTTP_PID=$!
	trap 'http_stop; rm -rf "$T"' EXIT INT TERM
	HTTP_URL="http://127.0.0.1:$HTTP_PORT"
	HTTP_LOG="$HTTP_DIR/run/access.log"
	HTTP_BODIES="$HTTP_DIR/run/bodies.log"
	i=0
	while ! curl -s -o /dev/null "$HTTP_URL/" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$HTTP_PID" 2>/dev/null; then
			cat "$HTTP_DIR/run/stderr" "$HTTP_DIR/run/error.log" 2>/dev/null | sed 's/^/# /'
			return 1
		fi
		sleep 0.05
	done
	: > "$HTTP_LOG"
}

http_stop() {
	if [ -n "${HTTP_PID:-}" ]; then
		kill -QUIT "$HTTP_PID" 2>/dev/null || true
		wait "$HTTP_PID" 2>/dev/null || true
		HTTP_PID=
	fi
}

# http_count PATTERN: requests in the access log matching an extended regexp.
http_count() {
	grep -cE "$1" "$HTTP_LOG" 2>/dev/null || true
}
