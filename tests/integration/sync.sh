# Boxes and the city's tenant (issue 8: D1, X1, X3, N3-N5, C1, G5) against
# madoguchi-tenantd on a real PostgreSQL: enrolment with a one-time code;
# applications arrive exactly once (ids in the tenant = ids acknowledged to
# the tablet); the counter keeps working while the tenant is down and
# everything queued arrives after it returns; madoctl sync
# status/pause/resume/now; a response lost after the tenant's COMMIT makes
# no duplicate; a TLS-terminating proxy sees no personal data; a
# certificate not from the tenant CA and a revoked one are refused; one
# city cannot read another's cases, in the API and in PostgreSQL; bad input
# sent with a box's certificate stores nothing; acknowledged applications
# leave the box's files after [sync] retention; a case made on the first
# floor is resumed on the second by number and by QR token with its
# history.  Everyone here is fictional.
. "$(dirname "$0")/sync-lib.sh"
export LSAN_OPTIONS="suppressions=$MG_SRC/tests/lsan-fonts.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

sync_setup
check "the tenant answers /t1/health over TLS from its CA" json_ok "$(curl -s --cacert "$TENANT_CA" "$TURL/t1/health")" '.status == "ok"'

# box 1 (1F, city A) talks to the tenant through a TLS-terminating proxy;
# box 2 (2F, city A) and box 3 (city B) directly.  Box 1 keeps acknowledged
# applications 1 s (D1) and opens its circuit after 3 failures for 60 s.
proxy_port=$(free_port)   # reserved for the proxy: its URL is in box 1's config
box_conf f1 "$CITY_A" shunan-1f "https://127.0.0.1:$proxy_port" <<CONF
retention = 1s
circuit_after = 3
circuit_open = 60s
CONF
box_conf f2 "$CITY_A" shunan-2f "$TURL" </dev/null
box_conf kd "$CITY_B" kudamatsu-1f "$TURL" </dev/null
for b in f1 f2 kd; do
  box_start "$b" || { summary; exit 1; }
  box_setup "$b" || { echo "box $b: pack pull or user add failed"; summary; exit 1; }
done

# --- enrolment ---------------------------------------------------------------
check "an unenrolled box says so in sync status" json_ok "$(sync_status f2)" '.enrolled == false'
box_enroll f2 "BADCODE-0000"; rc=$?
check "a wrong enrolment code is refused (bad_code), in one line" fails_with $rc "$(cat "$T/enroll.out")" bad_code
code=$(tenant_code "$CITY_A" shunan-2f)
check "the tenant makes a one-time code" test -n "$code"
box_enroll f2 "$code"; rc=$?
check "box 2 enrols with it" test $rc -eq 0 || cat "$T/enroll.out"
check "... its certificate and keys are private (0600)" bash -c "[ \$(stat -c %a '$T/f2/state/sync/client.crt') = 600 ] && [ \$(stat -c %a '$T/f2/state/sync/box_sign.pem') = 600 ]"
check "... the certificate is issued by the tenant CA" openssl verify -CAfile "$TENANT_CA" "$T/f2/state/sync/client.crt"
check "... tenant.json names the city and the box" json_ok "$(cat "$T/f2/state/sync/tenant.json")" --arg c "$CITY_A" '.city == $c and .box == "shunan-2f" and (.tenant_recv | length == 44)'
code=$(tenant_code "$CITY_A" shunan-9f)
box_enroll kd "$code"; rc=$?
check "a code made for another box and city is refused" fails_with $rc "$(cat "$T/enroll.out")" bad_code
code=$(tenant_code "$CITY_B" kudamatsu-1f)
box_enroll kd "$code"
check "box 3 (city B) enrols" test $? -eq 0 || cat "$T/enroll.out"
tenantd revoke --city "$CITY_B" --box kudamatsu-1f >/dev/null
box_enroll kd "$code"; rc=$?
check "its code does not work twice (tried after a revocation: no live certificate to answer first)" \
  fails_with $rc "$(cat "$T/enroll.out")" bad_code
box_enroll kd
check "... a new code enrols it again" test $? -eq 0 || cat "$T/enroll.out"
# box 1 enrols through the proxy (which has no client certificate to show
# the tenant until box 1 has one: /t1/enroll needs none)
proxy_start f1 "$proxy_port" || { summary; exit 1; }
box_enroll f1
check "box 1 enrols through the proxy" test $? -eq 0 || cat "$T/enroll.out"
check "sync status of an enrolled box: enrolled, queue empty" json_ok "$(sync_status f1)" '.enrolled == true'

# --- exactly once ------------------------------------------------------------
box_submit f1 shimin-2 20 "$T/f1.acked" >/dev/null
check "20 submissions on box 1 are acknowledged to the tablet" test "$(acked_ids "$T/f1.acked" | wc -l)" = 20
check "... and reach the tenant" tenant_has "$CITY_A" 20
check "... the queue is empty" sync_drained f1
check "the ids in the tenant are exactly the ids acknowledged to the tablet" \
  test "$(tenant_ids "$CITY_A")" = "$(acked_ids "$T/f1.acked")"
check "each id once" test "$(admin_sql "SELECT count(DISTINCT id) FROM city_$CITY_A.applications")" = 20
check "... stored under box 1" test "$(tenant_count "$CITY_A" "box <> 'shunan-1f'")" = 0

# X1: the proxy saw envelopes only
check "the proxy carried batches (it saw POST /t1/records)" grep -q 'POST /t1/records' "$T/proxy/log"
check "... with no name, kana or address in clear" bash -c "! cat '$T/proxy/bodies'/*.req | grep -a -q -e '架空' -e 'カクウ' -e '毛利町'"
check "... each record sealed (MGE1 envelopes)" python3 - "$T/proxy/bodies" <<'PY'
import base64, glob, json, sys
n = 0
for f in glob.glob(sys.argv[1] + "/*.req"):
    raw = open(f, "rb").read()
    if b'"records"' not in raw:
        continue
    for r in json.loads(raw)["records"]:
        assert base64.b64decode(r["seal"])[:4] == b"MGE1", r["id"]
        n += 1
assert n >= 20, n
PY

# --- the tenant down: the counter keeps working -------------------------------
check "the tenant stops cleanly on SIGTERM" tenant_stop
box_submit f1 shimin-2 15 "$T/f1.acked" >/dev/null; rc1=$?
box_submit f2 shimin-2 15 "$T/f2.acked" >/dev/null; rc2=$?
check "with the tenant down, submissions still answer 200 (box 1, box 2)" test $rc1 -eq 0 -a $rc2 -eq 0
check "... all acknowledged to the tablet" test "$(acked_ids "$T/f1.acked" "$T/f2.acked" | wc -l)" = 50
circuit_open() { json_ok "$(sync_status "$1")" '.circuit == "open"'; }
eventually 10 circuit_open f1
sleep 1   # an age in whole seconds
st=$(sync_status f1)
echo "# box 1 while the tenant is down: $st"
check "15 applications wait in box 1's outbox" test "$(box_pending f1)" = 15
check "sync status shows the depth while down (15 applications + their cases' snapshots)" \
  test "$(sync_depth f1)" = $(($(box_pending f1) + $(box_pending f1 case)))
check "... the oldest row's age (> 0 s)" json_ok "$st" '.oldest_age_s > 0'
check "... and the last error" json_ok "$st" '.last_error != null and (.last_error | tostring | length > 0)'
check "... the circuit is open after 3 failures" json_ok "$st" '(.circuit | tostring | test("open"))'
check "nothing of it reached the tenant's database" test "$(tenant_count "$CITY_A")" = 20
tenant_start || { summary; exit 1; }
check "box 2 drains by itself once the tenant is back (backoff ≤ 2 s)" sync_drained f2 20
check "box 1's circuit is open for 60 s: madoctl sync now" box_ctl f1 sync now
check "... sends at once: box 1 drains well before the circuit would close" sync_drained f1 15
sync_drained f1 70 >/dev/null   # when it did not: the circuit closes by itself
check "the tenant holds all 50, once each" tenant_has "$CITY_A" 50 5
check "... exactly the ids acknowledged" test "$(tenant_ids "$CITY_A")" = "$(acked_ids "$T/f1.acked" "$T/f2.acked")"
st=$(sync_status f1)
check "after the drain: depth 0, oldest age none, a last success" json_ok "$st" '(.queue_depth == 0) and (.oldest_age_s <= 0) and (.last_success != null)'

# --- pause, resume ------------------------------------------------------------
check "madoctl sync pause" box_ctl f2 sync pause
check "... status says paused" json_ok "$(sync_status f2)" '.paused == true'
box_submit f2 shimin-2 3 "$T/f2.acked" >/dev/null
sleep 2
check "... nothing is sent while paused (3 waiting)" test "$(tenant_count "$CITY_A") $(box_pending f2)" = "50 3"
box_stop f2 && box_start f2
check "... the pause survives a restart" json_ok "$(sync_status f2)" '.paused == true'
check "madoctl sync resume" box_ctl f2 sync resume
check "... the 3 arrive" tenant_has "$CITY_A" 53 10

# --- a response lost after the tenant's COMMIT ----------------------------------
# resent_ok N STATUSES: every application of the N-th batch whose answer the
# proxy dropped came back later and was answered as sent before: the same
# batch again (.replayed) or, record by record, one of STATUSES (its case
# snapshots: answered at all).  Which batch loses
# its answer is the proxy's first after the drop file: sending is paused
# while the case is made, so it is the batch holding the application.
resent_ok() {
  python3 - "$T/proxy" "$1" "$2" <<'PY'
import glob, json, os, sys
d, n, ok = sys.argv[1], int(sys.argv[2]), set(sys.argv[3].split(","))
dropped = [int(l.split()[0]) for l in open(os.path.join(d, "log")) if l.rstrip().endswith("DROPPED")]
k = dropped[n - 1]
recs = json.load(open(os.path.join(d, "bodies", "%05d.req" % k)))["records"]
ids = {r["id"] for r in recs}
# a case snapshot changed meanwhile goes again as its newer version: any answer
cases = {r["id"] for r in recs if r["kind"] == "case"}
if not ids - cases:
    sys.exit("the dropped batch holds no application")
seen = set()
for f in sorted(glob.glob(os.path.join(d, "bodies", "*.resp"))):
    if int(os.path.basename(f)[:5]) <= k:
        continue
    try:
        a = json.load(open(f))
    except ValueError:
        continue
    for r in a.get("results", []):
        if r.get("id") in ids and (a.get("replayed") or r.get("status") in ok or r["id"] in cases):
            seen.add(r["id"])
missing = ids - seen
if missing:
    sys.exit("not answered as sent before: " + " ".join(sorted(missing)))
PY
}
# paused while the case is made and submitted: the first batch after the
# resume holds the application and its case, and its answer is dropped
box_ctl f1 sync pause >/dev/null
box_submit f1 shimin-2 1 "$T/f1.lost" >/dev/null
lost=$(acked_ids "$T/f1.lost")
cat "$T/f1.lost" >> "$T/f1.acked"
touch "$T/proxy/drop"
box_ctl f1 sync resume >/dev/null
check "the proxy dropped the tenant's answer to a batch once" bash -c "for _ in \$(seq 50); do grep -q DROPPED '$T/proxy/log' && exit 0; sleep 0.1; done; exit 1"
check "... the tenant had stored it (committed before answering)" tenant_has "$CITY_A" 54 5
check "... box 1 sends it again and drains" sync_drained f1 20
# The same batch again (curl resends a request whose connection died before
# any answer: "replayed") or the record in a new batch (the client's own
# retry: "duplicate"): either way the tenant stores nothing twice.
check "... the tenant answered the records sent again: replayed or duplicate" resent_ok 1 duplicate
check "... one row for it" test "$(tenant_count "$CITY_A" "id = '$lost'")" = 1
# again, but box 1 is killed before it can send the batch again: after the
# restart it builds a new batch (new id, new envelope) with the same record
box_ctl f1 sync pause >/dev/null
box_submit f1 shimin-2 1 "$T/f1.lost2" >/dev/null
lost=$(acked_ids "$T/f1.lost2")
cat "$T/f1.lost2" >> "$T/f1.acked"
echo 2 > "$T/proxy/drop"
box_ctl f1 sync resume >/dev/null
check "the proxy drops an answer and holds the link 2 s" bash -c "for _ in \$(seq 250); do [ \$(grep -c DROPPED '$T/proxy/log') = 2 ] && exit 0; sleep 0.02; done; exit 1"
box_stop f1 KILL
sleep 2
box_start f1
check "... box 1 killed and restarted sends it again and drains" sync_drained f1 20
check "... in a new batch: the tenant answered duplicate" resent_ok 2 duplicate
check "... one row for it" test "$(tenant_count "$CITY_A" "id = '$lost'")" = 1
check "the tenant holds 55, once each" test "$(admin_sql "SELECT count(*) || ' ' || count(DISTINCT id) FROM city_$CITY_A.applications")" = "55 55"

# --- one city cannot read another's (X3) -----------------------------------------
box_api f1
check "staff log in on box 1 (1F)" test "$(login "$T/jar1" tanaka shimin-1)" = 200
today=$(date +%F)
people=$(jq -cn --arg t "$today" '[
  {name:"周南 一郎", kana:"シュウナン イチロウ", birth_date:"1984-05-05", address:"山口県周南市岐山通1丁目1番地 架空コーポ202"},
  {name:"周南 二葉", kana:"シュウナン フタバ", birth_date:"2020-06-06", address:"山口県周南市岐山通1丁目1番地 架空コーポ202"}]')
note='転出証明書は持参済み（1階）。'
read -r ID1 NUM1 TOK1 < <(mkcase "$T/jar1" "$note")
read -r ID2 NUM2 TOK2 < <(mkcase "$T/jar1" "$note")
check "two cases on box 1 with answers and a note" test -n "$ID1" -a -n "$ID2" -a "$ID1" != null
check "a value typed into one of its forms: 200" test "$(call "$T/jar1" PUT "/visits/$ID1/forms/jumin_idou/phone" '{"value":"0834-22-8211"}')" = 200
call "$T/jar1" GET "/visits/$ID1" >/dev/null
state1=$(cat "$T/body")
check "... the case snapshots reach the tenant (box 1 drains)" sync_drained f1 20
box_api kd
check "staff log in on box 3 (city B)" test "$(login "$T/jar3" tanaka shimin-1)" = 200
code=$(call "$T/jar3" POST /visits/resume "{\"number\":\"$NUM1\"}")
check "city B's box cannot fetch city A's case by number: 404" test "$code" = 404
code=$(call "$T/jar3" POST /visits/resume "{\"token\":\"MG1:$TOK2\"}")
check "... nor by QR token: 404" test "$code" = 404
code=$(curl -s -o "$T/body" -w '%{http_code}' --cacert "$TENANT_CA" --cert "$T/kd/state/sync/client.crt" \
  --key "$T/kd/state/sync/box_sign.pem" -H 'Content-Type: application/json' \
  -d "{\"number\":\"$NUM1\"}" "$TURL/t1/cases/fetch")
check "... nor with curl and its certificate at /t1/cases/fetch: 404" test "$code" = 404
tables=$(admin_sql "SELECT table_name FROM information_schema.tables WHERE table_schema = 'city_$CITY_A' ORDER BY 1")
check "city A's schema has tables" test -n "$tables"
denied=0
for t in $tables; do
  psql -qAtX -c "SET ROLE mg_city_$CITY_B; SELECT 1 FROM city_$CITY_A.$t LIMIT 1" >/dev/null 2>&1 || denied=$((denied + 1))
done
check "city B's role can read none of city A's tables in PostgreSQL ($denied/$(wc -w <<<"$tables"))" test "$denied" = "$(wc -w <<<"$tables")"
check "... nor create in its schema" bash -c "! psql -qAtX -c 'SET ROLE mg_city_$CITY_B; CREATE TABLE city_$CITY_A.x (i int)' >/dev/null 2>&1"
check "... while city A's role reads its own" tenant_sql "$CITY_A" "SELECT count(*) FROM applications" >/dev/null

# --- cross-floor: box 2 (2F) resumes box 1's cases (C1, G5) ----------------------
box_api f2
check "staff log in on box 2 (2F)" test "$(login "$T/jar2" tanaka kosodate-1)" = 200
check "box 2 resumes box 1's case by number: 200" test "$(call "$T/jar2" POST /visits/resume "{\"number\":\"$NUM1\"}")" = 200
r=$(cat "$T/body")
check "... the same case, from box 1" json_ok "$r" --arg id "$ID1" --arg n "$NUM1" '.id == $id and .number == $n and (.origin_box // "shunan-1f") == "shunan-1f"'
check "... with its people, answers and note" json_ok "$r" --argjson s "$state1" \
  '[.people[].name] == [$s.people[].name] and (.answered | length) == ($s.answered | length) and (.answered | length) >= 3 and .notes[0].text == "転出証明書は持参済み（1階）。"'
check "... and its typed value" bash -c "[ \$(B='$B' T='$T'; curl -sk -o '$T/body' -w '%{http_code}' -b '$T/jar2' '$B/visits/$ID1/forms/jumin_idou') = 200 ] && jq -e '.fields[] | select(.id == \"phone\") | .values[0].value == \"0834-22-8211\"' '$T/body' >/dev/null"
check "box 2 resumes the other case by its QR token: 200" test "$(call "$T/jar2" POST /visits/resume "{\"token\":\"MG1:$TOK2\"}")" = 200
check "... the same case with its note" json_ok "$(cat "$T/body")" --arg id "$ID2" '.id == $id and .notes[0].text == "転出証明書は持参済み（1階）。"'
check "a note on 2F continues the history" test "$(call "$T/jar2" POST "/visits/$ID1/notes" '{"text":"児童手当は2階で受付。"}')" = 200
check "... box 2's snapshot reaches the tenant" sync_drained f2 20
check "the tenant stops again" tenant_stop
check "with the tenant down, an unknown number: 503 tenant_unreachable" bash -c "[ \$(B='$B'; curl -sk -o '$T/body' -w '%{http_code}' -b '$T/jar3' -H \"X-CSRF-Token: \$(cat '$T/jar3.csrf')\" -H 'Content-Type: application/json' -d '{\"number\":\"$NUM2\"}' 'https://127.0.0.1:${BOX_PORT[kd]}/api/v1/visits/resume') = 503 ] && jq -e '.error.code == \"tenant_unreachable\"' '$T/body' >/dev/null"
tenant_start || { summary; exit 1; }

# --- refused boxes: a certificate not from the tenant CA, a revoked one ------------
before=$(tenant_count "$CITY_B")
cp "$T/kd/state/sync/client.crt" "$T/kd.crt.good"
openssl req -x509 -key "$T/kd/state/sync/box_sign.pem" -subj "/CN=kudamatsu-1f" -days 2 \
  -out "$T/kd/state/sync/client.crt" 2>/dev/null
chmod 600 "$T/kd/state/sync/client.crt"
box_stop kd && box_start kd
since=$(date -u +%FT%TZ)
box_submit kd shimin-2 1 "$T/kd.acked" >/dev/null
check "a box whose certificate is not from the tenant CA still answers the tablet" test "$(acked_ids "$T/kd.acked" | wc -l)" = 1
error_since() { json_ok "$(sync_status "$1")" --arg t "$2" '.queue_depth >= 1 and .last_error != null and .last_error_at >= $t'; }
eventually 10 error_since kd "$since"
st=$(sync_status kd)
echo "# box 3 with a self-signed certificate: $st"
check "... its upload is refused: status shows a new error" error_since kd "$since"
check "... nothing stored" test "$(tenant_count "$CITY_B")" = "$before"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$TENANT_CA" --cert "$T/kd/state/sync/client.crt" \
  --key "$T/kd/state/sync/box_sign.pem" -H 'Content-Type: application/json' -d '{"batch":"00","records":[]}' "$TURL/t1/records")
check "... curl with that certificate is refused at the handshake or with 403 ($code)" test "$code" = 000 -o "$code" = 403
cp "$T/kd.crt.good" "$T/kd/state/sync/client.crt"
box_stop kd && box_start kd
box_ctl kd sync now >/dev/null
check "with its real certificate back, it arrives" tenant_has "$CITY_B" $((before + 1)) 20
check "madoguchi-tenantd revoke" tenantd revoke --city "$CITY_B" --box kudamatsu-1f
box_submit kd shimin-2 1 "$T/kd.acked" >/dev/null
box_ctl kd sync now >/dev/null
revoked_error() { json_ok "$(sync_status kd)" '.queue_depth >= 1 and (.last_error | tostring | test("revoked"))'; }
eventually 10 revoked_error
st=$(sync_status kd)
echo "# box 3 revoked: $st"
check "a revoked box is refused: status shows revoked" json_ok "$st" '(.queue_depth >= 1) and (.last_error | tostring | test("revoked"))'
check "... nothing stored" test "$(tenant_count "$CITY_B")" = $((before + 1))
code=$(curl -s -o "$T/body" -w '%{http_code}' --cacert "$TENANT_CA" --cert "$T/kd/state/sync/client.crt" \
  --key "$T/kd/state/sync/box_sign.pem" -H 'Content-Type: application/json' -d '{"number":"12345674"}' "$TURL/t1/cases/fetch")
check "... curl with the revoked certificate: 403 revoked" bash -c "[ $code = 403 ] && jq -e '.error.code == \"revoked\"' '$T/body' >/dev/null"
box_enroll kd
check "it enrols again with a new code" test $? -eq 0 || cat "$T/enroll.out"
box_ctl kd sync now >/dev/null
if check "... and the waiting application arrives" tenant_has "$CITY_B" $((before + 2)) 20; [ "$(tenant_count "$CITY_B")" != $((before + 2)) ]; then
  box_stop kd && box_start kd
  tenant_has "$CITY_B" $((before + 2)) 20 >/dev/null &&
    echo "# ... it arrives after a restart of the box: the sync client kept presenting its revoked certificate"
fi
check "... city B holds exactly box 3's acknowledged ids" test "$(tenant_ids "$CITY_B")" = "$(acked_ids "$T/kd.acked")"

# --- bad input from the box side, with box 2's certificate -------------------------
crt=(--cacert "$TENANT_CA" --cert "$T/f2/state/sync/client.crt" --key "$T/f2/state/sync/box_sign.pem")
before=$(tenant_count "$CITY_A")
batch=$(ls "$T/proxy/bodies"/*.req | while read -r f; do grep -l '"records"' "$f"; done | head -n 1)
# a batch of box 1 (seals bound to box 1): box 2 sends its bytes, truncated
head -c $(($(stat -c %s "$batch") / 2)) "$batch" > "$T/trunc.json"
code=$(curl -s -o "$T/body" -w '%{http_code}' "${crt[@]}" -H 'Content-Type: application/json' --data-binary @"$T/trunc.json" "$TURL/t1/records")
check "a truncated batch: 400 naming the place" bash -c "[ $code = 400 ] && jq -e '.error.message | length > 0' '$T/body' >/dev/null"
python3 - "$batch" "$T" <<'PY'
import base64, json, os, sys
b = json.load(open(sys.argv[1]))
t = sys.argv[2]
r = b["records"][0]
seal = bytearray(base64.b64decode(r["seal"]))
seal[60] ^= 1  # a byte of the ciphertext
new = lambda: os.urandom(16).hex()
json.dump({"batch": new(), "records": [dict(r, id=new(), seal=base64.b64encode(seal).decode())]},
          open(t + "/tampered.json", "w"))
json.dump({"batch": new(), "records": [dict(r, id=new(), seal=base64.b64encode(os.urandom(1100 * 1024)).decode())]},
          open(t + "/big.json", "w"))
json.dump({"batch": new(), "records": [dict(r, id=new()) for _ in range(1001)]}, open(t + "/many.json", "w"))
PY
code=$(curl -s -o "$T/body" -w '%{http_code}' "${crt[@]}" -H 'Content-Type: application/json' --data-binary @"$T/tampered.json" "$TURL/t1/records")
check "a tampered seal: rejected bad_seal" bash -c "[ $code = 200 ] && jq -e '.results[0].status == \"rejected\" and .results[0].code == \"bad_seal\"' '$T/body' >/dev/null"
code=$(curl -s -o "$T/body" -w '%{http_code}' "${crt[@]}" -H 'Content-Type: application/json' --data-binary @"$T/big.json" "$TURL/t1/records")
check "a record over 1 MiB: rejected too_large (or 413)" bash -c "[ $code = 413 ] || jq -e '.results[0].status == \"rejected\" and .results[0].code == \"too_large\"' '$T/body' >/dev/null"
code=$(curl -s -o "$T/body" -w '%{http_code}' "${crt[@]}" -H 'Content-Type: application/json' --data-binary @"$T/many.json" "$TURL/t1/records")
check "1001 records in one batch: 400" test "$code" = 400
code=$(curl -s -o "$T/body" -w '%{http_code}' "${crt[@]}" -H 'Content-Type: application/json' --data-binary @"$batch" "$TURL/t1/records")
check "box 1's batch sent with box 2's certificate stores nothing new ($code)" bash -c "[ $code != 200 ] || jq -e '[.results[].status] | all(. == \"rejected\" or . == \"duplicate\")' '$T/body' >/dev/null"
check "nothing was stored by any of it" test "$(tenant_count "$CITY_A")" = "$before"
f1crt=(--cacert "$TENANT_CA" --cert "$T/f1/state/sync/client.crt" --key "$T/f1/state/sync/box_sign.pem")
code=$(curl -s -o "$T/body" -w '%{http_code}' "${f1crt[@]}" -H 'Content-Type: application/json' --data-binary @"$batch" "$TURL/t1/records")
check "box 1's batch replayed by box 1: the same results, replayed" bash -c "[ $code = 200 ] && jq -e '.replayed == true and ([.results[].status] | all(. == \"stored\" or . == \"duplicate\"))' '$T/body' >/dev/null"
check "... nothing stored twice" test "$(tenant_count "$CITY_A")" = "$before"

# --- retention: acknowledged applications leave box 1's files (D1) ------------------
DB="$T/f1/state/madoguchi.db"
box_submit f1 shimin-2 1 "$T/f1.acked" >/dev/null
last=$(awk '$1 == "acked" {id = $2} END {print id}' "$T/f1.acked")
blob=$(sqlite3 -cmd ".timeout 5000" "$DB" "SELECT hex(substr(payload, 20, 24)) FROM outbox WHERE ref = '$last'")
check "the application's sealed copy is in box 1's outbox" test -n "$blob"
check "... it is acknowledged" sync_drained f1 20
sleep 1.5
box_ctl f1 visits purge >/dev/null
check "after [sync] retention (1 s) and the purge, its outbox row is gone" bash -c "for _ in \$(seq 100); do [ \"\$(sqlite3 -cmd '.timeout 5000' '$DB' \"SELECT count(*) FROM outbox WHERE acked_at IS NOT NULL\")\" = 0 ] && exit 0; sleep 0.1; done; exit 1"
check "... and its sealed bytes are gone from the .db and -wal files" python3 - "$DB" "$blob" <<'PY'
import sys, os
db, blob = sys.argv[1], bytes.fromhex(sys.argv[2])
for f in (db, db + "-wal"):
    if os.path.exists(f) and blob in open(f, "rb").read():
        sys.exit(1)
PY
check "... while the tenant still holds it" test "$(tenant_count "$CITY_A" "id = '$last'")" = 1

# --- the end -------------------------------------------------------------------------
check "no name or address in the boxes' logs" bash -c "! cat '$T'/f1.log '$T'/f2.log '$T'/kd.log | grep -q -e '架空' -e '周南 一郎' -e '毛利町'"
check "... nor in the tenant's" bash -c "! grep -q -e '架空' -e '周南 一郎' -e '毛利町' '$TENANT_LOG'"
for b in f1 f2 kd; do check "box $b stops cleanly" box_stop "$b"; done
summary
