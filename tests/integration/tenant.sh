#!/usr/bin/env bash
# madoguchi-tenantd against a real PostgreSQL (issue 8; X1, X3, N4):
# enrolment with one-time codes, mTLS, batches stored exactly once, replay,
# bad input refused with nothing stored half, revocation, and cities that
# cannot read each other; pending codes listed and voided, wrong codes
# limited per box; each city's retention (D1): purge deletes what is older,
# on demand and in serve, and never touches another city.
# Boxes are played by curl + tenant-seal.
source "$MG_SRC/tests/integration/lib.sh"
source "$MG_SRC/tests/integration/pg-env.sh"
trap 'tenant_stop; pg_stop; cleanup' EXIT

TD="$MG_BIN/madoguchi-tenantd"
SEAL="$MG_BIN/tenant-seal"
TENANT_PID=""
tenant_stop() {
  [ -n "$TENANT_PID" ] && kill "$TENANT_PID" 2>/dev/null && wait "$TENANT_PID" 2>/dev/null
  TENANT_PID=""
}

pg_start "$T/pg"
st=$?
[ $st -eq 77 ] && exit 77
[ $st -eq 0 ] || { echo "PostgreSQL did not start"; exit 1; }

TP=$(free_port)
cat >"$T/tenant.conf" <<EOF
[tenant]
state_dir = $T/tenant
listen = 127.0.0.1:$TP
pg = "host=127.0.0.1 port=$PGPORT dbname=madoguchi"
pg_admin = "$MG_PG_ADMIN"
pool = 3
EOF
td() { "$TD" --config "$T/tenant.conf" "$@"; }
A=352152 # city A (fictional boxes shunan-*)
C=352153 # city B

check "init-ca" td init-ca
check "init-ca again keeps the CA" bash -c "sum=\$(sha256sum '$T/tenant/ca.pem'); '$TD' --config '$T/tenant.conf' init-ca >/dev/null && [ \"\$(sha256sum '$T/tenant/ca.pem')\" = \"\$sum\" ]"
check "CA key is 0600" test "$(stat -c %a "$T/tenant/ca.key")" = 600
out=$(td init-city --city $A)
check "init-city A: a new city keeps data 30d unless told (D1)" grep -q "^city $A: schema city_$A, role mg_city_$A, retention 30d$" <<<"$out"
out=$(td init-city --city $C --retention 400d)
check "init-city B with its own retention (400d)" grep -q "retention 400d$" <<<"$out"
check "init-city is idempotent" td init-city --city $A
out=$(td init-city --city $C)
check "init-city again without --retention keeps the city's" grep -q "retention 400d$" <<<"$out"
out=$(td set-retention --city $A --retention 0d 2>&1)
check "a retention of 0d is refused naming the rule" fails_with $? "$out" "from 1s to 3660d"
out=$(td init-city --city 12ab 2>&1)
check "a bad city code is refused naming the rule" fails_with $? "$out" "6-digit"

"$TD" --config "$T/tenant.conf" serve >"$T/serve.out" 2>"$T/serve.log" &
TENANT_PID=$!
for _ in $(seq 1 100); do
  curl -sf --cacert "$T/tenant/ca.pem" "https://localhost:$TP/t1/health" >/dev/null && break
  sleep 0.1
done
U="https://localhost:$TP"
CA=(--cacert "$T/tenant/ca.pem")
check "health" json_ok "$(curl -s "${CA[@]}" "$U/t1/health")" '.status == "ok" and .api == "t1"'

# post PATH BODYFILE [BOX]: status code; answer in $T/ans
post() {
  local p=$1 f=$2 box=${3:-}
  local args=(-s "${CA[@]}" -o "$T/ans" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$f")
  [ -n "$box" ] && args+=(--cert "$T/$box/client.crt" --key "$T/$box/sign.pem")
  curl "${args[@]}" "$U$p"
}
psqla() { psql "$MG_PG_ADMIN" -qAtX -c "$1"; }

# enrol BOX CITY: a code from the CLI, keys made by tenant-seal, the cert kept
enrol() {
  local box=$1 city=$2 code
  mkdir -p "$T/$box"
  code=$(td enroll-code --city "$city" --box "$box") || return 1
  "$SEAL" enroll-body --sign "$T/$box/sign.pem" --recv "$T/$box/recv.pem" \
    --city "$city" --box "$box" --code "$code" >"$T/$box/enroll.json"
  local s; s=$(post /t1/enroll "$T/$box/enroll.json")
  [ "$s" = 201 ] || { echo "enrol $box: $s $(cat "$T/ans")"; return 1; }
  jq -r .certificate "$T/ans" >"$T/$box/client.crt"
  cp "$T/ans" "$T/$box/tenant.json"
}

check "enrol shunan-1f (city A)" enrol shunan-1f $A
check "enrol shunan-2f (city A)" enrol shunan-2f $A
check "enrol kudamatsu-1f (city B)" enrol kudamatsu-1f $C
TR=$(jq -r .tenant_recv "$T/shunan-1f/tenant.json")
TS=$(jq -r .tenant_sign "$T/shunan-1f/tenant.json")
check "the certificate names box and city" bash -c "openssl x509 -in '$T/shunan-1f/client.crt' -noout -subject | grep -q 'CN = shunan-1f, O = $A'"
check "the certificate verifies against the tenant CA" openssl verify -CAfile "$T/tenant/ca.pem" "$T/shunan-1f/client.crt"
check "enrolment answer carries serial and tenant keys" json_ok "$(cat "$T/shunan-1f/tenant.json")" '(.serial | length) == 32 and (.tenant_recv | length) == 44 and (.tenant_sign | length) == 44 and .city == "352152"'

# the used code again: bad_code; a fresh code for an enrolled box: already_enrolled
s=$(post /t1/enroll "$T/shunan-1f/enroll.json")
check "a used code is refused (403 bad_code)" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "403" and .error.code == "bad_code" and (.error.message | test("already used"))'
code=$(td enroll-code --city $A --box shunan-1f)
"$SEAL" enroll-body --sign "$T/shunan-1f/sign.pem" --recv "$T/shunan-1f/recv.pem" --city $A --box shunan-1f --code "$code" >"$T/again.json"
s=$(post /t1/enroll "$T/again.json")
check "a box with a live certificate: 409 already_enrolled" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "409" and .error.code == "already_enrolled"'
# a proof of possession by another key
mkdir -p "$T/thief"
"$SEAL" enroll-body --sign "$T/thief/sign.pem" --recv "$T/thief/recv.pem" --city $A --box shunan-1f --code "$code" |
  jq -c --arg k "$(jq -r .sign_key "$T/again.json")" '.sign_key = $k' >"$T/thief.json"
s=$(post /t1/enroll "$T/thief.json")
check "a pop not made with sign_key: 400 naming pop" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "400" and (.error.message | startswith("pop:"))'
jq -c '.box = "Shunan 1F"' "$T/again.json" >"$T/badbox.json"
s=$(post /t1/enroll "$T/badbox.json")
check "a bad box name: 400 naming box" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "400" and (.error.message | startswith("box:"))'

# record BOX CITY KIND ID [VERSION] < plaintext: one record JSON
record() {
  "$SEAL" record --sign "$T/$1/sign.pem" --to "$TR" --city "$2" --box "$1" --kind "$3" --id "$4" --version "${5:-0}"
}
hex() { openssl rand -hex 16; }
count() { psqla "SELECT count(*) FROM city_$1.$2 WHERE ${3:-true}"; }

# --- a batch stored exactly once ---------------------------------------
A1=$(hex); A2=$(hex); A3=$(hex); B1=$(hex)
for id in $A1 $A2 $A3; do
  echo "{\"form\":\"juminhyo\",\"applicant\":\"山田 花子\",\"id\":\"$id\"}" | record shunan-1f $A application $id
done | jq -sc --arg b "$B1" '{batch: $b, records: .}' >"$T/b1.json"
s=$(post /t1/records "$T/b1.json" shunan-1f)
check "batch stored: 200, three stored in order" json_ok "$(cat "$T/ans")" --arg s "$s" --arg a "$A1" --arg c "$A3" \
  '$s == "200" and .batch != null and ([.results[].status] == ["stored","stored","stored"]) and .results[0].id == $a and .results[2].id == $c and (has("replayed") | not)'
check "three applications and one batch row in city A" test "$(count $A applications)/$(count $A batches)" = "3/1"
check "the stored plaintext is the box's JSON" test "$(psqla "SELECT convert_from(plain, 'UTF8')::jsonb->>'applicant' FROM city_$A.applications WHERE id = '$A1'")" = "山田 花子"
check "nothing in city B" test "$(count $C applications)" = 0

s=$(post /t1/records "$T/b1.json" shunan-1f)
check "the same batch again: same results, replayed" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .replayed == true and ([.results[].status] == ["stored","stored","stored"])'
check "replay stored nothing more" test "$(count $A applications)/$(count $A batches)" = "3/1"

# the same records re-sealed (fresh envelopes) in the same batch id: still a replay
for id in $A1 $A2 $A3; do
  echo "{\"form\":\"juminhyo\",\"applicant\":\"山田 花子\",\"id\":\"$id\"}" | record shunan-1f $A application $id
done | jq -sc --arg b "$B1" '{batch: $b, records: .}' >"$T/b1b.json"
s=$(post /t1/records "$T/b1b.json" shunan-1f)
check "re-sealed copy of the batch: replayed" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .replayed == true'

# the same batch id with other content: 409
echo '{"form":"koseki"}' | record shunan-1f $A application "$(hex)" | jq -sc --arg b "$B1" '{batch: $b, records: .}' >"$T/b1c.json"
s=$(post /t1/records "$T/b1c.json" shunan-1f)
check "batch id reused with other content: 409 batch_conflict" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "409" and .error.code == "batch_conflict"'
check "... nothing stored" test "$(count $A applications)/$(count $A batches)" = "3/1"

# a new batch with a known id (same content: duplicate; other content: conflict)
N1=$(hex)
{
  echo "{\"form\":\"juminhyo\",\"applicant\":\"山田 花子\",\"id\":\"$A1\"}" | record shunan-1f $A application $A1
  echo '{"form":"juminhyo","applicant":"佐藤 一郎"}' | record shunan-1f $A application $A2
  echo '{"form":"inkan"}' | record shunan-1f $A application $N1
} | jq -sc --arg b "$(hex)" '{batch: $b, records: .}' >"$T/b2.json"
s=$(post /t1/records "$T/b2.json" shunan-1f)
check "duplicate / conflict / stored per record" json_ok "$(cat "$T/ans")" --arg s "$s" \
  '$s == "200" and ([.results[].status] == ["duplicate","rejected","stored"]) and .results[1].code == "conflict" and (.results[1].message | test("records\\[1\\]"))'
check "only the new one was added" test "$(count $A applications)" = 4

# --- bad input -----------------------------------------------------------
T1=$(hex); T2=$(hex); BT=$(hex)
{
  echo '{"form":"juminhyo"}' | record shunan-1f $A application $T1
  # one byte of the sealed bytes changed (base64 character in the middle)
  echo '{"form":"juminhyo"}' | record shunan-1f $A application $T2 |
    jq -c '.seal |= (.[0:80] + (if .[80:81] == "A" then "B" else "A" end) + .[81:])'
} | jq -sc --arg b "$BT" '{batch: $b, records: .}' >"$T/bt.json"
s=$(post /t1/records "$T/bt.json" shunan-1f)
check "tampered seal: that record rejected bad_seal, the other stored" json_ok "$(cat "$T/ans")" --arg s "$s" \
  '$s == "200" and .results[0].status == "stored" and .results[1].status == "rejected" and .results[1].code == "bad_seal" and (.results[1].message | test("records\\[1\\].seal: envelope"))'
check "the tampered record is not stored" test "$(count $A applications "id = '$T2'")/$(count $A applications "id = '$T1'")" = "0/1"

# a record sealed for city B but sent to city A: wrong context
W1=$(hex)
echo '{"form":"juminhyo"}' | record shunan-1f $C application $W1 | jq -sc --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bw.json"
s=$(post /t1/records "$T/bw.json" shunan-1f)
check "an envelope made for another city does not open (bad_seal)" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .results[0].code == "bad_seal"'

BX=$(hex); X1=$(hex)
echo '{"form":"juminhyo"}' | record shunan-1f $A application $X1 | jq -sc --arg b "$BX" '{batch: $b, records: .}' >"$T/bx.json"
head -c $(( $(stat -c %s "$T/bx.json") / 2 )) "$T/bx.json" >"$T/btrunc.json"
s=$(post /t1/records "$T/btrunc.json" shunan-1f)
check "truncated batch: 400 naming line and column" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "400" and .error.code == "bad_request" and (.error.message | test("line 1, column"))'
check "... nothing stored" test "$(count $A applications "id = '$X1'")/$(count $A batches "id = '$BX'")" = "0/0"
jq -c '.records[0].id = "ABC"' "$T/bx.json" >"$T/bid.json"
s=$(post /t1/records "$T/bid.json" shunan-1f)
check "a bad record id: 400 naming records[0].id" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "400" and (.error.message | startswith("records[0].id"))'

BO=$(hex); O1=$(hex); O2=$(hex)
{
  python3 -c 'import json; print(json.dumps({"form": "juminhyo", "scan": "x" * (1100 * 1024)}))' | record shunan-1f $A application $O1
  echo '{"form":"juminhyo"}' | record shunan-1f $A application $O2
} | jq -sc --arg b "$BO" '{batch: $b, records: .}' >"$T/bo.json"
s=$(post /t1/records "$T/bo.json" shunan-1f)
check "oversized record: too_large, the other stored" json_ok "$(cat "$T/ans")" --arg s "$s" \
  '$s == "200" and .results[0].code == "too_large" and .results[1].status == "stored"'
check "... the oversized one is not stored" test "$(count $A applications "id = '$O1'")" = 0
python3 -c 'print("x" * (9 << 20))' >"$T/huge.json"
s=$(post /t1/records "$T/huge.json" shunan-1f)
check "a body over max_body: 413" test "$s" = 413

# --- cases: versions, fetch across floors, not across cities --------------
CASE=$(hex)
mkcase() { # ID VERSION NUMBER NAME
  printf '{"format":"madoguchi/case-1","id":"%s","version":%s,"number":"%s","token_sha256":"%s","people":[{"name":"%s"}]}' \
    "$1" "$2" "$3" "$(printf %s "$1" | sha256sum | cut -c1-64)" "$4"
}
mkcase $CASE 2 12345678 "山田 花子" >"$T/case2.json"
record shunan-1f $A case $CASE 2 <"$T/case2.json" | jq -sc --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bc2.json"
s=$(post /t1/records "$T/bc2.json" shunan-1f)
check "case v2 stored" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .results[0].status == "stored"'
mkcase $CASE 1 12345678 "山田 花子" | record shunan-1f $A case $CASE 1 | jq -sc --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bc1.json"
s=$(post /t1/records "$T/bc1.json" shunan-1f)
check "an older case version: stale" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .results[0].status == "stale"'
mkcase $CASE 2 12345678 "山田 花子" | record shunan-1f $A case $CASE 3 | jq -sc --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bc3.json"
s=$(post /t1/records "$T/bc3.json" shunan-1f)
check "a case whose sealed version differs from the record's: bad_record" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .results[0].code == "bad_record"'
check "one case row, version 2" test "$(psqla "SELECT count(*) || '/' || max(version) FROM city_$A.cases")" = "1/2"

echo '{"number":"12345678"}' >"$T/fetch.json"
s=$(post /t1/cases/fetch "$T/fetch.json" shunan-2f)
check "another floor of city A fetches the case" json_ok "$(cat "$T/ans")" --arg s "$s" --arg id "$CASE" \
  '$s == "200" and .id == $id and .version == 2 and .origin_box == "shunan-1f" and (.seal | length) > 100'
jq -r .seal "$T/ans" >"$T/fetched.b64"
"$SEAL" open --recv "$T/shunan-2f/recv.pem" --from "$TS" \
  --context "madoguchi/t1 case-fetch $CASE v2 city $A box shunan-2f" <"$T/fetched.b64" >"$T/opened.json"
check "the fetched envelope opens for shunan-2f, signed by the tenant" cmp "$T/opened.json" "$T/case2.json"
check "... and not for shunan-1f's key" bash -c "! '$SEAL' open --recv '$T/shunan-1f/recv.pem' --from '$TS' --context 'madoguchi/t1 case-fetch $CASE v2 city $A box shunan-2f' <'$T/fetched.b64' >/dev/null 2>&1"
printf '{"token_sha256":"%s"}' "$(printf %s "$CASE" | sha256sum | cut -c1-64)" >"$T/fetcht.json"
s=$(post /t1/cases/fetch "$T/fetcht.json" shunan-2f)
check "fetch by token hash" json_ok "$(cat "$T/ans")" --arg s "$s" --arg id "$CASE" '$s == "200" and .id == $id'
s=$(post /t1/cases/fetch "$T/fetch.json" kudamatsu-1f)
check "city B's box fetching city A's case number: 404 not_found" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "404" and .error.code == "not_found"'
echo '{"number":"12a"}' >"$T/fetchbad.json"
s=$(post /t1/cases/fetch "$T/fetchbad.json" shunan-2f)
check "a bad fetch body: 400" test "$s" = 400

# a batch is stored with one statement per table (N3): each record still
# gets its own result (applications and cases mixed, in order)
A4=$(hex)
{
  echo '{"form":"juminhyo"}' | record shunan-1f $A application $A4
  record shunan-1f $A case $CASE 2 <"$T/case2.json"
  echo '{"form":"juminhyo","applicant":"other"}' | record shunan-1f $A application $A1
  mkcase $CASE 2 12345678 "山田 太郎" | record shunan-1f $A case $CASE 2
} | jq -sc '[.[0], .[1], .[2]], [.[3]]' >"$T/mixed.jsonl"
sed -n 1p "$T/mixed.jsonl" | jq -c --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bm1.json"
s=$(post /t1/records "$T/bm1.json" shunan-1f)
check "mixed batch: stored, case duplicate, application conflict" json_ok "$(cat "$T/ans")" --arg s "$s" \
  '$s == "200" and ([.results[].status] == ["stored","duplicate","rejected"]) and .results[2].code == "conflict" and (.results[2].message | test("records\\[2\\]"))'
sed -n 2p "$T/mixed.jsonl" | jq -c --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bm2.json"
s=$(post /t1/records "$T/bm2.json" shunan-1f)
check "a case version stored with other content: conflict" json_ok "$(cat "$T/ans")" --arg s "$s" \
  '$s == "200" and .results[0].status == "rejected" and .results[0].code == "conflict"'
mkcase $CASE 3 12345678 "山田 花子" >"$T/case3.json"
record shunan-1f $A case $CASE 3 <"$T/case3.json" | jq -sc --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bc3n.json"
s=$(post /t1/records "$T/bc3n.json" shunan-1f)
check "a newer case version replaces the stored one" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .results[0].status == "stored"'
check "... one case row, version 3, the conflicting content not stored" test \
  "$(psqla "SELECT count(*) || '/' || max(version) || '/' || max(plain_sha256) FROM city_$A.cases")" = "1/3/$(sha256sum <"$T/case3.json" | cut -c1-64)"

# --- TLS and certificates ---------------------------------------------
s=$(post /t1/records "$T/b1.json")
check "records without a client certificate: 401" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "401" and .error.code == "client_certificate_required"'
# a certificate for the same key from another CA
mkdir -p "$T/rogue"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/rogue/ca.key" \
  -out "$T/rogue/ca.pem" -subj "/CN=rogue CA" -days 2 2>/dev/null
openssl req -new -key "$T/shunan-1f/sign.pem" -subj "/CN=shunan-1f/O=$A" 2>/dev/null |
  openssl x509 -req -CA "$T/rogue/ca.pem" -CAkey "$T/rogue/ca.key" -days 2 -out "$T/rogue/client.crt" 2>/dev/null
cp "$T/shunan-1f/sign.pem" "$T/rogue/sign.pem"
out=$(post /t1/records "$T/b1.json" rogue)
check "a certificate from another CA: the handshake is refused" test "$out" = 000
check "... and the tenant still serves" json_ok "$(curl -s "${CA[@]}" "$U/t1/health")" '.status == "ok"'

check "revoke shunan-1f" td revoke --city $A --box shunan-1f
out=$(td revoke --city $A --box shunan-1f 2>&1)
check "revoking again says there is nothing live" fails_with $? "$out" "no live certificate"
s=$(post /t1/records "$T/b1.json" shunan-1f)
check "the revoked box: 403 revoked" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "403" and .error.code == "revoked"'
s=$(post /t1/cases/fetch "$T/fetch.json" shunan-1f)
check "the revoked box cannot fetch either" test "$s" = 403
check "re-enrol the revoked box with a new code" enrol shunan-1f $A
s=$(post /t1/records "$T/b1.json" shunan-1f)
check "its new certificate works (replay of its old batch)" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .replayed == true'

# --- roles: one city cannot read another (X3) ---------------------------
pw_a=$(cat "$T/tenant/cities/$A.secret")
asA() { PGPASSWORD=$pw_a psql "host=127.0.0.1 port=$PGPORT dbname=madoguchi user=mg_city_$A" -qAtX -c "$1" 2>&1; }
check "city A's role reads its own schema" test "$(asA "SELECT count(*) FROM city_$A.applications")" = "$(count $A applications)"
out=$(asA "SELECT count(*) FROM city_$C.cases")
check "city A's role cannot read city B's cases (permission denied)" grep -q "permission denied for schema city_$C" <<<"$out"
out=$(asA "CREATE TABLE public.x (a int)")
check "city A's role cannot create in public" grep -q "permission denied" <<<"$out"
out=$(PGPASSWORD=wrong psql "host=127.0.0.1 port=$PGPORT dbname=madoguchi user=mg_city_$A" -qAtX -c 'select 1' 2>&1)
check "a wrong password is refused" grep -q "password authentication failed" <<<"$out"

# --- restart: everything is still there ----------------------------------
kill -TERM "$TENANT_PID"
st=0
wait "$TENANT_PID" || st=$?
TENANT_PID=""
check "SIGTERM stops the tenant cleanly (exit 0)" test "$st" = 0
check "... after saying so" grep -q "signal 15: stopping" "$T/serve.log"
check "no sanitizer report from the tenant" bash -c "! grep -qE 'Sanitizer|runtime error' '$T/serve.log'"
check "the log holds no applicant names" bash -c "! grep -q '山田' '$T/serve.log'"
"$TD" --config "$T/tenant.conf" serve >"$T/serve.out" 2>>"$T/serve.log" &
TENANT_PID=$!
for _ in $(seq 1 100); do
  curl -sf "${CA[@]}" "$U/t1/health" >/dev/null && break
  sleep 0.1
done
s=$(post /t1/records "$T/b2.json" shunan-1f)
check "after a restart the batch is answered as a replay" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and .replayed == true'
check "applications in city A stored once each" test "$(psqla "SELECT count(*) = count(DISTINCT id) FROM city_$A.applications")" = t

# --- pending enrolment codes: listed (never the code), voided -----------
code3=$(td enroll-code --city $A --box shunan-3f)
out=$(td enroll-codes --city $A)
check "enroll-codes lists box, created, expires (UTC)" grep -qE "^shunan-3f	20[0-9-]{8}T[0-9:]{8}Z	20[0-9-]{8}T[0-9:]{8}Z$" <<<"$out"
check "... with a header, one line per pending code" test "$(head -n 1 <<<"$out")/$(grep -c shunan-3f <<<"$out")" = "box	created	expires/1"
check "... and never the code itself" bash -c "! grep -qF -- '$code3' <<<'$out'"
out=$(td expire-code --city $A --box shunan-3f)
check "expire-code voids the box's pending code" test "$out" = "voided 1 pending code(s) of box shunan-3f in city $A"
check "... it is no longer listed" test "$(td enroll-codes --city $A | grep -c shunan-3f)" = 0
mkdir -p "$T/shunan-3f"
"$SEAL" enroll-body --sign "$T/shunan-3f/sign.pem" --recv "$T/shunan-3f/recv.pem" --city $A --box shunan-3f --code "$code3" >"$T/e3.json"
s=$(post /t1/enroll "$T/e3.json")
check "a voided code is refused (403 bad_code)" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "403" and .error.code == "bad_code" and (.error.message | test("voided"))'
out=$(td expire-code --city $A --box shunan-3f 2>&1)
check "expire-code with nothing pending says so" fails_with $? "$out" "no pending code for box shunan-3f"

# --- wrong codes: 10 for one box lock it for 15 minutes (429) -------------
code4=$(td enroll-code --city $A --box shunan-4f)
mkdir -p "$T/shunan-4f" "$T/shunan-5f"
codes=""
for i in $(seq 1 10); do
  "$SEAL" enroll-body --sign "$T/shunan-4f/sign.pem" --recv "$T/shunan-4f/recv.pem" --city $A --box shunan-4f --code "WRONG-CODE-$i" >"$T/w.json"
  codes+="$(post /t1/enroll "$T/w.json") "
done
check "ten wrong codes for shunan-4f: each 403 bad_code" test "$codes" = "$(printf '403 %.0s' $(seq 1 10))"
"$SEAL" enroll-body --sign "$T/shunan-4f/sign.pem" --recv "$T/shunan-4f/recv.pem" --city $A --box shunan-4f --code "$code4" >"$T/e4.json"
s=$(curl -s "${CA[@]}" -D "$T/hdr" -o "$T/ans" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$T/e4.json" "$U/t1/enroll")
check "then even the right code: 429 too_many_attempts" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "429" and .error.code == "too_many_attempts" and (.error.message | test("too many wrong codes for box shunan-4f"))'
check "... with Retry-After of about 15 minutes" bash -c "grep -iE '^retry-after: (89[0-9]|900)' '$T/hdr'"
check "... and the code was not used" test "$(psqla "SELECT count(*) FROM city_$A.enrol_codes WHERE box = 'shunan-4f' AND used_at IS NULL")" = 1
"$SEAL" enroll-body --sign "$T/shunan-5f/sign.pem" --recv "$T/shunan-5f/recv.pem" --city $A --box shunan-5f --code "WRONG-CODE-X" >"$T/w5.json"
s=$(post /t1/enroll "$T/w5.json")
check "another box is not locked (403 bad_code, not 429)" test "$s" = 403
check "the log names the locked box, never a code" bash -c "grep -q 'box shunan-4f is locked' '$T/serve.log' && ! grep -qF -- '$code4' '$T/serve.log' && ! grep -q WRONG-CODE '$T/serve.log'"
check "a new code ends the lock: shunan-4f enrols" enrol shunan-4f $A

# --- retention (D1): city A 1s, city B 400d ------------------------------
K1=$(hex); KC=$(hex)
{
  echo '{"form":"juminhyo","applicant":"高橋 次郎"}' | record kudamatsu-1f $C application $K1
  mkcase $KC 1 87654321 "高橋 次郎" | record kudamatsu-1f $C case $KC 1
} | jq -sc --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bk.json"
s=$(post /t1/records "$T/bk.json" kudamatsu-1f)
check "city B stores an application and a case" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "200" and ([.results[].status] == ["stored","stored"])'
rowsB() { echo "$(count $C applications)/$(count $C cases)/$(count $C batches)"; }
rowsA() { echo "$(count $A applications)/$(count $A cases)/$(count $A batches)"; }
check "city B: 1 application, 1 case, 1 batch" test "$(rowsB)" = 1/1/1
nA=$(count $A applications); bA=$(count $A batches)
check "city A has rows to purge" test "$nA" -gt 5 -a "$(count $A cases)" = 1
out=$(td set-retention --city $A --retention 1s)
check "set-retention A 1s says what it was" test "$out" = "city $A: retention 1s (was 30d); serve applies it at its next purge"
check "... stored in the city's schema" test "$(psqla "SELECT seconds FROM city_$A.retention")" = 1
sleep 1.1
out=$(td purge --city $A)
check "purge --city A prints what it deleted" grep -qE "^city $A: retention 1s, before 20[0-9-]{8}T[0-9:]{8}Z: deleted $nA applications, 1 case snapshots, $bA batches, [0-9]+ enrolment codes$" <<<"$out"
check "... psql counts 0 applications, cases and batches in city A" test "$(rowsA)" = 0/0/0
check "... used and voided codes older than 1s went too" test "$(count $A enrol_codes "used_at IS NOT NULL OR expires_at <= now()")" = 0
s=$(post /t1/cases/fetch "$T/fetch.json" shunan-2f)
check "... a case fetch then gives 404 not_found" json_ok "$(cat "$T/ans")" --arg s "$s" '$s == "404" and .error.code == "not_found"'
check "... city B untouched" test "$(rowsB)" = 1/1/1
out=$(td purge)
check "purge of every city: B (400d) deletes nothing" grep -q "^city $C: retention 400d, before .*: deleted 0 applications, 0 case snapshots, 0 batches, 0 enrolment codes$" <<<"$out"
check "... and still holds its rows" test "$(rowsB)" = 1/1/1
echo '{"number":"87654321"}' >"$T/fetchk.json"
s=$(post /t1/cases/fetch "$T/fetchk.json" kudamatsu-1f)
check "... its case is still fetched" test "$s" = 200

# serve purges by itself every purge_interval (here 1s)
tenant_stop
echo "purge_interval = 1s" >>"$T/tenant.conf"
"$TD" --config "$T/tenant.conf" serve >"$T/serve.out" 2>>"$T/serve.log" &
TENANT_PID=$!
for _ in $(seq 1 100); do
  curl -sf "${CA[@]}" "$U/t1/health" >/dev/null && break
  sleep 0.1
done
P1=$(hex)
echo '{"form":"juminhyo","applicant":"山田 花子"}' | record shunan-2f $A application $P1 | jq -sc --arg b "$(hex)" '{batch: $b, records: .}' >"$T/bp.json"
s=$(post /t1/records "$T/bp.json" shunan-2f)
check "a new application in city A is stored" test "$s/$(count $A applications "id = '$P1'")" = 200/1
for _ in $(seq 1 40); do
  [ "$(rowsA)" = 0/0/0 ] && break
  sleep 0.1
done
check "serve's periodic purge deletes it after 1s" test "$(rowsA)" = 0/0/0
check "... and logs counts only" grep -q "city $A: retention 1s, before .*: deleted 1 applications, 0 case snapshots, 1 batches" "$T/serve.log"
check "... city B untouched by serve's purges" test "$(rowsB)" = 1/1/1
check "the log still holds no applicant names" bash -c "! grep -qE '山田|高橋' '$T/serve.log'"
tenant_stop
check "no sanitizer report from either serve run" bash -c "! grep -qE 'Sanitizer|runtime error' '$T/serve.log'"

summary
