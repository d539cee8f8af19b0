# The HTTPS listener: static files and caching, API errors of one shape,
# limits, TLS versions, no plain HTTP, the events WebSocket.
. "$(dirname "$0")/lib.sh"

cp -r "$MG_SRC/web" "$T/web"
conf=$(write_config http <<CONF
web_dir = $T/web
plugin_dir = $MG_PLUGINS
[http]
listen = 127.0.0.1:0
max_body = 2k
request_timeout = 1s
idle_timeout = 2s
[printer "p1"]
plugin = fileprinter
counters = shimin-1
dir = $T/prints
CONF
)
mkdir -p "$T/prints"
start_daemon "$conf" "$T/http/run" || { summary; exit 1; }
U="https://127.0.0.1:$PORT"
# curl_meta URL [curl args]: "status content-type" of a response
meta() { curl -sk -o "$T/body" -w '%{http_code} %{content_type}' "$@"; }

check "GET / serves index.html as UTF-8 HTML" test "$(meta "$U/")" = "200 text/html; charset=utf-8"
check "index.html is in Japanese" grep -q '<html lang="ja">' "$T/body"
hdrs=$(curl -sk -D - -o /dev/null "$U/")
check "index.html must be revalidated" grep -qi '^cache-control: no-cache' <<<"$hdrs"
etag=$(grep -i '^etag:' <<<"$hdrs" | cut -d' ' -f2 | tr -d '\r')
check "index.html has an ETag" test -n "$etag"
check "If-None-Match gives 304" test "$(curl -sk -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$U/")" = 304
check "JS is text/javascript" test "$(meta "$U/app/main.js")" = "200 text/javascript; charset=utf-8"
check "assets are cacheable" grep -qi '^cache-control: public, max-age=3600' <<<"$(curl -sk -D - -o /dev/null "$U/assets/app.css")"
check "security headers are sent" grep -qi '^x-content-type-options: nosniff' <<<"$hdrs"
check "a CSP is sent" grep -qi "^content-security-policy: default-src 'self'" <<<"$hdrs"

# Files are served from memory but an upgrade shows at the next request.
sed -i 's|</title>|（更新）</title>|' "$T/web/index.html"
check "a changed file is served at once" bash -c "curl -sk '$U/' | grep -q '（更新）'"
check "... with a new ETag" test "$(curl -sk -D - -o /dev/null "$U/" | grep -i '^etag:' | cut -d' ' -f2 | tr -d '\r')" != "$etag"
# Files over 1 MiB are streamed from disk, not kept.
head -c 3000000 /dev/urandom > "$T/web/big.pdf"
check "a large file is streamed whole" test "$(curl -sk "$U/big.pdf" | sha256sum)" = "$(sha256sum < "$T/web/big.pdf")"
check "... as application/pdf" test "$(meta "$U/big.pdf")" = "200 application/pdf"
check "a file of unknown type is not served" bash -c "touch '$T/web/secret.db'; [ \"\$(curl -sk -o /dev/null -w '%{http_code}' '$U/secret.db')\" = 404 ]"

err_shape() { json_ok "$(cat "$T/body")" --arg c "$1" '.error.code == $c and (.error.message | length > 0)'; }
check "unknown file: 404 JSON" test "$(meta "$U/nope.html")" = "404 application/json; charset=utf-8"
check "path traversal is refused" test "$(meta --path-as-is "$U/../../etc/passwd" | cut -d' ' -f1)" = 404
check "hidden files are not served" test "$(meta --path-as-is "$U/.git/config" | cut -d' ' -f1)" = 404
check "unknown API path: 404 not_found" bash -c "[ \"\$(curl -sk -o '$T/body' -w '%{http_code}' '$U/api/v1/nope')\" = 404 ]"
check "... error body has code and message" err_shape not_found
check "wrong method: 405" test "$(meta -X POST -H 'Content-Type: application/json' -d '{}' "$U/api/v1/health" | cut -d' ' -f1)" = 405
check "... method_not_allowed" err_shape method_not_allowed
head -c 4096 /dev/zero | tr '\0' 'a' > "$T/big"
check "a body over max_body: 413" test "$(meta -X POST --data-binary @"$T/big" "$U/api/v1/health" | cut -d' ' -f1)" = 413
check "... body_too_large" err_shape body_too_large
check "a POST without Content-Length: 411" test "$(meta -X POST -H 'Transfer-Encoding: chunked' -d x "$U/api/v1/health" | cut -d' ' -f1)" = 411
big=$(head -c 6000 /dev/zero | tr '\0' x)
check "headers over 4 KiB are refused (connection closed)" bash -c "[ \"\$(curl -sk -o /dev/null -w '%{http_code}' -H 'X-Big: $big' '$U/api/v1/health')\" = 000 ]"
check "health still fine after errors" test "$(meta "$U/api/v1/health")" = "200 application/json; charset=utf-8"

check "plain HTTP on the TLS port gets no HTTP answer" bash -c "! curl -s -m 3 -o /dev/null 'http://127.0.0.1:$PORT/api/v1/health'"
check "TLS 1.2 is accepted" bash -c "openssl s_client -connect 127.0.0.1:$PORT -tls1_2 </dev/null 2>&1 | grep -q 'New, TLSv1.2, Cipher is'"
check "TLS 1.3 is accepted" bash -c "openssl s_client -connect 127.0.0.1:$PORT -tls1_3 </dev/null 2>&1 | grep -q 'New, TLSv1.3, Cipher is'"
check "TLS 1.1 is refused" bash -c "openssl s_client -connect 127.0.0.1:$PORT -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1 | grep -q 'alert protocol version'"
check "the self-signed certificate was made" test -s "$T/http/state/tls/cert.pem"
check "the key is private" test "$(stat -c %a "$T/http/state/tls/key.pem")" = 600
check "the certificate names localhost" bash -c "openssl x509 -in '$T/http/state/tls/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:localhost'"

P="$MG_BIN/mgprobe"
# The events WebSocket needs a staff session (U1): the mg_session cookie.
PW='Counter-2026-pw'
B="$U/api/v1"
printf '%s\n' "$PW" | ctl user add admin --name 管理者 --role administrator --password-stdin >/dev/null
check "an administrator logs in at shimin-1" test "$(login "$T/jar" admin shimin-1)" = 200
out=$("$P" ws "$PORT" /api/v1/events 3000)
refused() { grep -q -e '^no upgrade' -e '^HTTP/1.1 [45]' <<<"$1" && ! grep -q '^HTTP/1.1 101' <<<"$1"; }
check "no session: the WebSocket upgrade is refused ($(head -n1 <<<"$out"))" refused "$out"
check "... and a made-up session too" bash -c "! MGPROBE_COOKIE=mg_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA '$P' ws $PORT /api/v1/events 3000 >/dev/null"
export MGPROBE_COOKIE=$(session_cookie "$T/jar")
check "with a session: WebSocket upgrade on /api/v1/events" "$P" ws "$PORT" /api/v1/events 3000
check "no WebSocket on other paths" bash -c "! '$P' ws $PORT /other 3000"
out=$("$P" ws "$PORT" /api/v1/events 10000 "$MG_BIN/madoctl" --socket "$SOCK" print test --printer p1)
check "a device event reaches the WebSocket" json_ok "$(tail -n1 <<<"$out")" '.topic | startswith("print.")'
check "... with the device id and counters" json_ok "$(tail -n1 <<<"$out")" '.device == "p1" and .counters == ["shimin-1"]'
check "the test page was written" bash -c "ls '$T/prints' | grep -q ."
# A logout closes the session's socket at once.
"$P" ws "$PORT" /api/v1/events 8000 sleep 6 >/dev/null 2>&1 &
probe=$!
ws_clients() { ctl status --json | jq -r .http.websocket_clients; }
for _ in $(seq 50); do [ "$(ws_clients)" = 1 ] && break; sleep 0.1; done
check "a tablet listens on the events socket" test "$(ws_clients)" = 1
check "it logs out" test "$(call "$T/jar" DELETE /session)" = 200
for _ in $(seq 50); do [ "$(ws_clients)" = 0 ] && break; sleep 0.1; done
check "... and its events socket is closed" test "$(ws_clients)" = 0
wait "$probe" 2>/dev/null
check "... and cannot be opened again with that cookie" bash -c "! '$P' ws $PORT /api/v1/events 3000 >/dev/null"
check "logged in again" test "$(login "$T/jar" admin shimin-1)" = 200
export MGPROBE_COOKIE=$(session_cookie "$T/jar")

# Slow or idle clients are dropped (request_timeout 1s, idle_timeout 2s).
check "a client that sends nothing is dropped" "$P" hold "$PORT" 4000
check "a client that never finishes its headers is dropped" "$P" hold "$PORT" 4000 'GET / HTTP/1.1\r\nHost: x\r\n'
check "an idle keep-alive connection is closed" "$P" hold "$PORT" 5000 'GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n'

# Keep-alive: many requests on one connection.
n=$(curl -sk -o /dev/null -w '%{num_connects}\n' "$U/api/v1/health" "$U/api/v1/health" "$U/" | awk '{s += $1} END {print s}')
check "requests share a keep-alive connection ($n connect)" test "$n" -eq 1

# Graceful stop: a download in flight finishes, a new request is refused
# with 503 shutting_down, and the daemon exits 0.
head -c 20000000 /dev/urandom > "$T/web/large.pdf"
curl -sk --limit-rate 10M -o "$T/large.out" "$U/large.pdf" &
dl=$!
sleep 0.5
kill -TERM "$DAEMON_PID"
sleep 0.2
check "a request during the drain gets 503" test "$(curl -sk -o "$T/body" -w '%{http_code}' "$U/api/v1/health")" = 503
check "... shutting_down" err_shape shutting_down
wait $dl
check "the download in flight at SIGTERM finished whole" test "$(sha256sum < "$T/large.out")" = "$(sha256sum < "$T/web/large.pdf")"
st=0; wait "$DAEMON_PID" || st=$?; DAEMON_PID=""
check "the drained daemon exits 0" test $st = 0
start_daemon "$conf" "$T/http/run" || { summary; exit 1; }
U="https://127.0.0.1:$PORT"

# Graceful stop with a client connected.
"$P" ws "$PORT" /api/v1/events 5000 sleep 3 >/dev/null 2>&1 &
sleep 0.3
check "SIGTERM with a WebSocket client open ends with exit 0" stop_daemon TERM
check "no errors in the log" bash -c "! grep -E ' (error|warning) ' '$LOG'"
grep -E " (error|warning) " "$LOG"

summary
