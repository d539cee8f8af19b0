# Helpers of the sync tests and bench (issue 8: D1, X1, X3, N3-N5, C1, G5):
# a private PostgreSQL (pg-env.sh), the reference tenant (madoguchi-tenantd)
# with two cities, boxes (madoguchid) enrolled with it, fictional
# submissions over HTTPS, a TLS-terminating proxy that can lose a response,
# and counts in PostgreSQL.  Source after nothing else (it sources lib.sh);
# bench/sync/run sources it too with MG_BIN and MG_SRC set.
#
#   sync_setup            PostgreSQL + tenant CA + cities $CITY_A $CITY_B +
#                         tenantd serving on $TENANT_PORT ($TURL); exits 77
#                         where PostgreSQL cannot run
#   box_conf NAME CITY BOX URL [extra [sync] lines on stdin]
#   box_start NAME | box_stop NAME [SIG] | box_ctl NAME madoctl-args...
#   box_enroll NAME       a one-time code from the tenant, then
#                         `madoctl sync enroll --code-stdin`
#   box_submit NAME COUNTER N OUT [mgsubmit options]
#   tenant_count CITY [WHERE]  applications stored for CITY
#   sync_drained NAME [SECONDS]  waits until the box's queue is empty
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$MG_SRC/tests/integration/pg-env.sh"

CITY_A=352152   # 周南市 (fictional data only)
CITY_B=352071   # 下松市
SYNC_PW='Counter-2026-pw'
PW=$SYNC_PW   # lib.sh's login
TENANT_PID=""
PROXY_PID=""
declare -A BOX_PID=() BOX_PORT=() BOX_CITY=() BOX_ID=() BOX_URL=()

sync_cleanup() {
  local n
  # MG_SYNC_KEEP=DIR: keep the logs and state of a run there (debugging)
  [ -n "${MG_SYNC_KEEP:-}" ] && mkdir -p "$MG_SYNC_KEEP" && cp -r "$T/." "$MG_SYNC_KEEP/" 2>/dev/null
  for n in "${!BOX_PID[@]}"; do
    [ -n "${BOX_PID[$n]}" ] && kill -KILL "${BOX_PID[$n]}" 2>/dev/null
  done
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
  [ -n "$TENANT_PID" ] && kill -KILL "$TENANT_PID" 2>/dev/null
  pg_stop
  cleanup
}
trap sync_cleanup EXIT

# madoguchi-tenantd with the test's config
tenantd() { "$MG_BIN/madoguchi-tenantd" --config "$T/tenant/tenantd.conf" "$@"; }

# --- PostgreSQL and the tenant ----------------------------------------------
sync_setup() {
  [ -x "$MG_BIN/madoguchi-tenantd" ] || { echo "madoguchi-tenantd is not built"; exit 1; }
  start_or_skip PostgreSQL pg_start "$T/pg"
  mkdir -p "$T/tenant"
  chmod 700 "$T/tenant"
  TENANT_PORT=$(free_port)
  TURL="https://127.0.0.1:$TENANT_PORT"
  cat > "$T/tenant/tenantd.conf" <<CONF
[tenant]
state_dir = $T/tenant
listen = 127.0.0.1:$TENANT_PORT
server_names = localhost,127.0.0.1
pg = host=127.0.0.1 port=$PGPORT dbname=madoguchi
pg_admin = $MG_PG_ADMIN
log_level = ${MG_TENANT_LOG_LEVEL:-info}
CONF
  tenantd init-ca >"$T/tenant/init.log" 2>&1 || { echo "tenantd init-ca failed:"; cat "$T/tenant/init.log"; exit 1; }
  for c in "$CITY_A" "$CITY_B"; do
    tenantd init-city --city "$c" >>"$T/tenant/init.log" 2>&1 ||
      { echo "tenantd init-city $c failed:"; cat "$T/tenant/init.log"; exit 1; }
  done
  TENANT_CA=$T/tenant/ca.pem
  tenant_start || exit 1
}

tenant_start() {
  TENANT_LOG="$T/tenant/serve.log"
  # the binary itself, not the tenantd function (a subshell would get the signal)
  "$MG_BIN/madoguchi-tenantd" --config "$T/tenant/tenantd.conf" serve >>"$TENANT_LOG" 2>&1 &
  TENANT_PID=$!
  for _ in $(seq 1 200); do
    curl -s --cacert "$TENANT_CA" -o /dev/null "$TURL/t1/health" && return 0
    kill -0 "$TENANT_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "madoguchi-tenantd did not start; its log:"
  tail -n 40 "$TENANT_LOG"
  return 1
}

tenant_stop() { # [SIG]: the tenant's exit status
  local st=0
  [ -n "$TENANT_PID" ] || return 0
  kill -"${1:-TERM}" "$TENANT_PID" 2>/dev/null
  wait "$TENANT_PID" 2>/dev/null || st=$?
  TENANT_PID=""
  return $st
}

# tenant_code CITY BOX: a one-time enrolment code
tenant_code() { tenantd enroll-code --city "$1" --box "$2" 2>>"$T/tenant/init.log" | tail -n 1; }

# tenant_sql CITY SQL: as the city's own role (X3), tab-separated, no header
tenant_sql() {
  psql -qAtX -v ON_ERROR_STOP=1 -c "SET ROLE mg_city_$1; SET search_path = city_$1; $2"
}
admin_sql() { psql -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
# tenant_count CITY [WHERE]: applications stored for CITY
tenant_count() {
  admin_sql "SELECT count(*) FROM city_$1.applications${2:+ WHERE $2}"
}
# tenant_ids CITY: the stored application ids, one a line, sorted
tenant_ids() {
  admin_sql "SELECT id FROM city_$1.applications ORDER BY id"
}

# --- boxes -----------------------------------------------------------------
# box_conf NAME CITY BOX URL: the box's config; [sync] lines from stdin
# (always give stdin: </dev/null for none) replace the test defaults (short
# intervals); log_level there is [daemon]'s.
box_conf() {
  local name=$1 port
  demo_pack
  port=$(free_port)
  BOX_PORT[$name]=$port
  BOX_CITY[$name]=$2
  BOX_ID[$name]=$3
  BOX_URL[$name]=$4
  BOX_PID[$name]=""
  local extra defaults k
  extra=$(cat)
  defaults=$(printf '%s\n' "interval = 200ms" "timeout = 5s" "backoff_min = 200ms" "backoff_max = 2s" \
    "circuit_after = 1000" "log_level = info")
  # a key given on stdin replaces its default (a key twice is an error)
  for k in $(sed -n 's/^\([a-z_]*\) *=.*/\1/p' <<<"$extra"); do
    defaults=$(grep -v "^$k " <<<"$defaults")
  done
  write_config "$name" >/dev/null <<CONF
plugin_dir = ${MG_PLUGINS:-}
$(printf '%s\n%s\n' "$extra" "$defaults" | grep '^log_level' | head -n 1)
$(counter_conf "127.0.0.1:$port")
[sync]
url = $4
ca_file = $TENANT_CA
$(grep -v '^log_level' <<<"$defaults")
$(grep -v '^log_level' <<<"$extra")
CONF
}

box_ctl() { local n=$1; shift; "$MG_BIN/madoctl" --socket "$T/$n/run/ctl.sock" "$@"; }

# box_start NAME: starts the box's daemon (log $T/NAME.log, appended),
# waits until it answers on its socket and over HTTPS.
box_start() {
  local n=$1
  "$MG_BIN/madoguchid" --config "$T/$n.conf" >>"$T/$n.log" 2>&1 &
  BOX_PID[$n]=$!
  for _ in $(seq 1 400); do
    if box_ctl "$n" status --json >/dev/null 2>&1; then return 0; fi
    kill -0 "${BOX_PID[$n]}" 2>/dev/null || break
    sleep 0.025
  done
  echo "box $n did not start; its log:"
  tail -n 40 "$T/$n.log"
  return 1
}

# box_stop NAME [SIG]: its exit status (a SIGKILL is not an error)
box_stop() {
  local n=$1 sig=${2:-TERM} st=0
  [ -n "${BOX_PID[$n]}" ] || return 0
  kill -"$sig" "${BOX_PID[$n]}" 2>/dev/null
  wait "${BOX_PID[$n]}" 2>/dev/null || st=$?
  BOX_PID[$n]=""
  [ "$sig" = KILL ] && return 0
  if [ $st -ne 0 ]; then
    echo "box $n exit status $st; the end of its log:"
    tail -n 30 "$T/$n.log"
  fi
  return $st
}

# box_setup NAME: the pack pulled and the staff account, once
box_setup() {
  box_ctl "$1" pack pull >/dev/null || return 1
  printf '%s\n' "$SYNC_PW" | box_ctl "$1" user add tanaka --name 職員 --role staff --password-stdin >/dev/null
}

# box_enroll NAME [CODE]: enrols the box with a fresh code (or CODE);
# madoctl's output in $T/enroll.out
box_enroll() {
  local n=$1 code=${2:-}
  [ -n "$code" ] || code=$(tenant_code "${BOX_CITY[$n]}" "${BOX_ID[$n]}")
  printf '%s\n' "$code" | box_ctl "$n" sync enroll --url "${BOX_URL[$n]}" \
    --city "${BOX_CITY[$n]}" --box "${BOX_ID[$n]}" --code-stdin >"$T/enroll.out" 2>&1
}

# box_api NAME: $B for lib.sh's call/login
box_api() { B="https://127.0.0.1:${BOX_PORT[$1]}/api/v1"; }

# box_submit NAME COUNTER N OUT [options]: N fictional applications; OUT
# gets "acked ID TIME" for each HTTP 200 (see mgsubmit.py)
box_submit() {
  local n=$1 counter=$2 count=$3 out=$4
  shift 4
  python3 "$T/py/mgsubmit.py" "https://127.0.0.1:${BOX_PORT[$n]}/api/v1" "$SYNC_PW" tanaka \
    "$counter" "$count" "$out" "$@"
}
acked_ids() { awk '$1 == "acked" {print $2}' "$@" | sort; }

# mkcase JAR NOTE: a new case of $people (JSON) at $B, its questions
# answered "no" and NOTE added -> "ID NUMBER TOKEN"
mkcase() {
  call "$1" POST /visits "{\"life_event\":\"tennyu\",\"people\":$people}" >/dev/null
  local b id q
  b=$(cat "$T/body")
  id=$(jq -r .case.id <<<"$b")
  q=$(jq -r .case.next_question.id <<<"$b")
  for _ in 1 2 3 4; do
    [ "$q" = null ] && break
    call "$1" PUT "/visits/$id/answers/$q" '{"answer":"no"}' >/dev/null
    q=$(jq -r .next_question.id "$T/body")
  done
  call "$1" POST "/visits/$id/notes" "$(jq -cn --arg t "$2" '{text: $t}')" >/dev/null
  echo "$id $(jq -r .case.number <<<"$b") $(jq -r .token <<<"$b")"
}

# sync_status NAME: `madoctl sync status --json`
sync_status() { box_ctl "$1" sync status --json; }
# sync_depth NAME: rows waiting for the tenant (not acked, not rejected)
sync_depth() { sync_status "$1" | jq -r '.queue_depth // empty'; }

# box_pending NAME [KIND]: outbox rows not acknowledged (and not rejected)
# in the box's database, of KIND (application) — the queue depth counts
# case snapshots too
box_pending() {
  sqlite3 -cmd ".timeout 5000" "$T/$1/state/madoguchi.db" \
    "SELECT count(*) FROM outbox WHERE kind = '${2:-application}' AND acked_at IS NULL AND rejected = 0"
}

# sync_drained NAME [SECONDS]: the queue is empty within SECONDS (30)
sync_drained() {
  local n=$1 d
  for _ in $(seq 1 $((${2:-30} * 10))); do
    d=$(sync_depth "$n")
    [ "$d" = 0 ] && return 0
    sleep 0.1
  done
  echo "# $n: queue depth still ${d:-?}: $(sync_status "$n" | head -c 600)"
  return 1
}

# eventually SECONDS CMD...: CMD succeeds within SECONDS (polled every 0.1 s)
eventually() {
  local n=$(($1 * 10))
  shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  "$@"
}

# tenant_has CITY N [SECONDS]: the city holds N applications within SECONDS
tenant_has() {
  local c
  for _ in $(seq 1 $((${3:-30} * 10))); do
    c=$(tenant_count "$1")
    [ "$c" = "$2" ] && return 0
    sleep 0.1
  done
  echo "# city $1 holds ${c:-?} applications, not $2"
  return 1
}

# --- a TLS-terminating proxy (X1) --------------------------------------------
# proxy_start NAME [PORT]: https://127.0.0.1:$PROXY_PORT in front of the tenant for
# box NAME: it terminates the box's TLS with a certificate of the tenant CA,
# and talks to the tenant with the box's own client certificate.  Every
# request body is kept in $T/proxy/bodies; `touch $T/proxy/drop` makes it
# forward the next POST /t1/records, read the tenant's whole answer (sent
# after COMMIT) and close the box's connection instead of answering, once;
# `echo S > $T/proxy/drop`: and then close every new connection for S
# seconds.
proxy_start() {
  local n=$1 key
  PROXY_PORT=${2:-$(free_port)}
  mkdir -p "$T/proxy/bodies"
  key=$T/tenant/ca.key
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/proxy/key.pem" -subj "/CN=127.0.0.1" -out "$T/proxy/req.pem" 2>/dev/null &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$T/proxy/ext" &&
    openssl x509 -req -in "$T/proxy/req.pem" -CA "$TENANT_CA" -CAkey "$key" -CAcreateserial \
      -days 2 -extfile "$T/proxy/ext" -out "$T/proxy/cert.pem" 2>/dev/null ||
    { echo "proxy: cannot issue its certificate from the tenant CA ($key)"; return 1; }
  python3 "$T/py/tlsproxy.py" "$PROXY_PORT" "$T/proxy" 127.0.0.1 "$TENANT_PORT" "$TENANT_CA" \
    "$T/$n/state/sync/client.crt" "$T/$n/state/sync/box_sign.pem" >"$T/proxy/stderr" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 1 100); do
    [ -f "$T/proxy/ready" ] && return 0
    sleep 0.05
  done
  echo "proxy did not start:"; cat "$T/proxy/stderr"
  return 1
}

mkdir -p "$T/py"
cat > "$T/py/tlsproxy.py" <<'PY'
# A TLS-terminating HTTP/1.1 proxy (tests only): see proxy_start.
import os, socket, ssl, sys, threading, time
hold_until = [0.0]
port, d, uh, up, ca, crt, key = sys.argv[1:8]
up = int(up)
srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
srv_ctx.load_cert_chain(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
lock = threading.Lock()
seq = [0]


def up_ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(ca)
    if os.path.exists(crt):  # no client certificate before enrolment
        c.load_cert_chain(crt, key)
    return c


def read_msg(f):
    """One HTTP/1.1 message (Content-Length bodies): (head, body) or None."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = f.readline(65536)
        if not line:
            return None
        head += line
    n = 0
    for l in head.split(b"\r\n")[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    body = f.read(n) if n else b""
    return head, body


def serve(cs):
    us = None
    try:
        cs = srv_ctx.wrap_socket(cs, server_side=True)
        cf = cs.makefile("rb")
        while True:
            m = read_msg(cf)
            if m is None:
                return
            head, body = m
            if us is None:
                us = up_ctx().wrap_socket(socket.create_connection((uh, up)), server_hostname=uh)
                uf = us.makefile("rb")
            us.sendall(head + body)
            r = read_msg(uf)
            if r is None:
                return
            line = head.split(b"\r\n")[0].decode()
            with lock:
                seq[0] += 1
                k = seq[0]
                with open(os.path.join(d, "bodies", "%05d.req" % k), "wb") as f:
                    f.write(body)
                with open(os.path.join(d, "bodies", "%05d.resp" % k), "wb") as f:
                    f.write(r[1])
                drop = line.startswith("POST /t1/records") and os.path.exists(os.path.join(d, "drop"))
                if drop:
                    hold = open(os.path.join(d, "drop")).read().strip()
                    hold_until[0] = time.time() + float(hold or 0)
                    os.unlink(os.path.join(d, "drop"))
                with open(os.path.join(d, "log"), "a") as f:
                    f.write("%d %s -> %s%s\n" % (k, line, r[0].split(b"\r\n")[0].decode(),
                                                 " DROPPED" if drop else ""))
            if drop:
                cs.shutdown(socket.SHUT_RDWR)
                return
            cs.sendall(r[0] + r[1])
    except (OSError, ssl.SSLError, ValueError) as e:
        with open(os.path.join(d, "log"), "a") as f:
            f.write("connection error: %s\n" % e)
    finally:
        cs.close()
        if us is not None:
            us.close()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(port)))
ls.listen(16)
open(os.path.join(d, "ready"), "w").close()
while True:
    c, _ = ls.accept()
    if time.time() < hold_until[0]:  # after a drop with a hold: unreachable
        c.close()
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY

cat > "$T/py/mgsubmit.py" <<'PY'
"""Tablet-side submissions (issue 8 tests and bench).

  mgsubmit.py BASE PASSWORD USER COUNTER N OUT [--workers K] [--retry]
              [--form inkan_touroku] [--tag K] [--rate R]

Each application: POST /visits (one fictional person), POST
/visits/ID/forms (the form), POST /visits/ID/forms/FORM/submit.  OUT gets
"acked <id> <unix time> <submit sent>" only after the box answered 200 with the id, and
the line is flushed before the next request: OUT is what the tablet was
told (and when its submit request was sent).  --retry: a request that fails at the connection (the daemon was
killed; 503 while a restarted daemon activates its pack) is sent again
until the daemon answers; a submit retried after a
lost answer that gets 409 already_submitted is written "unacked <id>"
(committed on the box, never acknowledged to the tablet).  --rate: at most
R applications per second over all workers (paced).
"""
import http.client, json, ssl, sys, threading, time

opts = {"--workers": "1", "--form": "inkan_touroku", "--tag": "0", "--rate": "0"}
retry = False
pos = []
a = sys.argv[1:]
i = 0
while i < len(a):
    if a[i] in opts:
        opts[a[i]] = a[i + 1]
        i += 2
    elif a[i] == "--retry":
        retry = True
        i += 1
    else:
        pos.append(a[i])
        i += 1
base, pw, user, counter, n, outp = pos
n = int(n)
hostport, _, path = base.split("//", 1)[1].partition("/")
host, port = hostport.rsplit(":", 1)
prefix = "/" + path if path else ""
form = opts["--form"]
tag = int(opts["--tag"])
rate = float(opts["--rate"])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = open(outp, "a", buffering=1)
lock = threading.Lock()
counts = {"acked": 0, "unacked": 0, "retries": 0, "create_500": 0}
KANA = "アイウエオカキクケコ"
t_start = time.time()
issued = [0]


class Dead(Exception):
    pass


class Tablet:
    def __init__(self):
        self.conn = None
        self.cookie = ""
        self.csrf = ""

    def _req(self, method, p, body):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
        hdr = {"Content-Type": "application/json"}
        if self.cookie:
            hdr["Cookie"] = self.cookie
        if self.csrf:
            hdr["X-CSRF-Token"] = self.csrf
        data = json.dumps(body).encode() if body is not None else b""
        try:
            self.conn.request(method, prefix + p, body=data, headers=hdr)
            r = self.conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = None
            raise Dead(str(e))
        for k, v in r.getheaders():
            if k.lower() == "set-cookie" and v.startswith("mg_session="):
                self.cookie = v.split(";")[0]
        try:
            js = json.loads(raw) if raw else {}
        except ValueError:
            js = {}
        return r.status, js

    def call(self, method, p, body=None):
        while True:
            try:
                st, js = self._req(method, p, body)
            except Dead:
                if not retry:
                    raise
                with lock:
                    counts["retries"] += 1
                time.sleep(0.05)
                continue
            if st == 401 and p != "/session" and retry:  # the session did not survive
                self.login()
                continue
            if st == 503 and retry:  # a daemon just restarted: its pack is not active yet
                with lock:
                    counts["retries"] += 1
                time.sleep(0.05)
                continue
            return st, js

    def login(self):
        self.cookie = self.csrf = ""
        st, js = self.call("POST", "/session", {"user": user, "password": pw, "counter": counter})
        if st != 200:
            raise SystemExit(f"mgsubmit: login: {st} {js}")
        self.csrf = js["csrf_token"]


def one(t, k):
    person = {"name": f"架空 {k:07d}", "kana": "カクウ " + "".join(KANA[int(c)] for c in f"{k:07d}"),
              "birth_date": "1980-04-%02d" % (1 + k % 28),
              "address": f"山口県周南市毛利町1丁目{1 + k % 50}番地 架空ハイツ{100 + k % 900}"}
    for _ in range(3):
        st, js = t.call("POST", "/visits", {"life_event": "shoumei", "people": [person]})
        if st != 500:
            break
        # a case number drawn twice is not drawn again (core/visit.c compares
        # an extended SQLite code with SQLITE_CONSTRAINT): counted, tried again
        with lock:
            counts["create_500"] += 1
    if st != 201:
        raise SystemExit(f"mgsubmit: POST /visits: {st} {js}")
    vid = js["case"]["id"]
    st, js = t.call("POST", f"/visits/{vid}/forms", {"form": form})
    if st not in (200, 400):  # 400: already open (a request sent again)
        raise SystemExit(f"mgsubmit: POST /visits/ID/forms: {st} {js}")
    t_sub = time.time()
    st, js = t.call("POST", f"/visits/{vid}/forms/{form}/submit")
    if st == 200:
        with lock:
            out.write(f"acked {js['application']} {time.time():.6f} {t_sub:.6f}\n")
            out.flush()
            counts["acked"] += 1
        return
    if st == 409 and retry:  # committed before the kill, its answer lost
        st, js = t.call("GET", f"/visits/{vid}/forms")
        for f in js.get("forms", []):
            if f.get("form") == form and f.get("submitted"):
                with lock:
                    out.write(f"unacked {f['submitted']['application']}\n")
                    out.flush()
                    counts["unacked"] += 1
                return
    raise SystemExit(f"mgsubmit: submit: {st} {js}")


failed = []


def pace():
    if rate <= 0:
        return
    with lock:
        due = t_start + issued[0] / rate
        issued[0] += 1
    d = due - time.time()
    if d > 0:
        time.sleep(d)


def worker(w, nw):
    try:
        t = Tablet()
        t.login()
        for k in range(w, n, nw):
            pace()
            one(t, tag * 1000000 + k)
    except BaseException as e:  # a thread's SystemExit is the run's failure
        failed.append(str(e))


nw = int(opts["--workers"])
ths = [threading.Thread(target=worker, args=(w, nw)) for w in range(nw)]
for th in ths:
    th.start()
for th in ths:
    th.join()
if failed:
    sys.exit(failed[0])
print(json.dumps(dict(counts, seconds=round(time.time() - t_start, 3))))
PY
