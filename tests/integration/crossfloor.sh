# Cross-floor cases (issue 8: C1, G5 "every counter of the building
# continues the same case"): two boxes of one city (1F, 2F) and
# madoguchi-tenantd on a real PostgreSQL.
#
#   - a case made on 1F is resumed on 2F, which adds a note and types a
#     value; resumed again on 1F (which holds its own older copy), 1F shows
#     2F's note and value ("fresh": true) and 1F's next change wins at the
#     tenant (versions grow with time; nothing rejected);
#   - changes reach the tenant within moments although [sync] interval is a
#     minute: every change kicks the sync client;
#   - a number search on 2F finds a case of 1F (fetched from the tenant);
#   - the tenant hung (SIGSTOP): a resume of a case the box holds answers
#     with its own copy ("fresh": false) within [sync] fetch_timeout plus a
#     margin; the tenant stopped: at once, and a number search says
#     "fresh": false.
# Everyone here is fictional.
. "$(dirname "$0")/sync-lib.sh"
export LSAN_OPTIONS="suppressions=$MG_SRC/tests/lsan-fonts.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
PW=$SYNC_PW

# The tenant is SIGSTOPped in one step: never leave it stopped behind us.
tenant_cont() { [ -n "$TENANT_PID" ] && kill -CONT "$TENANT_PID" 2>/dev/null; return 0; }
trap 'tenant_cont; sync_cleanup' EXIT

sync_setup

# [sync] interval of a minute: whatever reaches the tenant sooner was
# kicked by the change itself.  1F waits at most 1 s for a fresher copy.
box_conf f1 "$CITY_A" shunan-1f "$TURL" <<CONF
interval = 60s
fetch_timeout = 1s
CONF
box_conf f2 "$CITY_A" shunan-2f "$TURL" <<CONF
interval = 60s
CONF
for b in f1 f2; do
  box_start "$b" || { summary; exit 1; }
  box_setup "$b" || { echo "box $b: pack pull or user add failed"; summary; exit 1; }
  box_enroll "$b" || { echo "box $b: enrolment failed:"; cat "$T/enroll.out"; summary; exit 1; }
done

# tenant_case_has ID BOX TEXT [SECONDS]: the tenant's copy of case ID was
# sent by BOX and holds TEXT, within SECONDS (5)
tenant_case_has() {
  local n
  for _ in $(seq 1 $((${4:-5} * 20))); do
    n=$(admin_sql "SELECT count(*) FROM city_$CITY_A.cases WHERE id = '$1' AND box = '$2' AND position(convert_to('$3', 'UTF8') in plain) > 0")
    [ "$n" = 1 ] && return 0
    sleep 0.05
  done
  echo "# the tenant's copy of $1: $(admin_sql "SELECT box || ' v' || version FROM city_$CITY_A.cases WHERE id = '$1'")"
  return 1
}
# ms_since START_NS: milliseconds since START_NS (date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

people=$(jq -cn '[
  {name:"周南 三郎", kana:"シュウナン サブロウ", birth_date:"1979-03-03", address:"山口県周南市岐山通2丁目3番地 架空ハイツ101"},
  {name:"周南 四季", kana:"シュウナン シキ", birth_date:"2019-09-09", address:"山口県周南市岐山通2丁目3番地 架空ハイツ101"}]')
# phone JAR ID: the value of the phone field of the case's jumin_idou form
phone() {
  call "$1" GET "/visits/$2/forms/jumin_idou" >/dev/null &&
    jq -r '.fields[] | select(.id == "phone") | .values[0].value' "$T/body"
}

# --- 1F makes a case; it reaches the tenant at once ----------------------------
box_api f1
check "staff log in on 1F" test "$(login "$T/jar1" tanaka shimin-1)" = 200
read -r ID NUM TOK < <(mkcase "$T/jar1" "1階で受付しました。")
check "1F makes a case with answers and a note" test -n "$ID" -a "$ID" != null
check "... it reaches the tenant within 5 s, [sync] interval being 60 s (kicked)" tenant_case_has "$ID" shunan-1f "1階で受付しました。"

# --- 2F continues it ------------------------------------------------------------
box_api f2
check "staff log in on 2F" test "$(login "$T/jar2" tanaka kosodate-1)" = 200
check "2F resumes 1F's case by number: 200" test "$(call "$T/jar2" POST /visits/resume "{\"number\":\"$NUM\"}")" = 200
check "... from 1F, with 1F's note, fresh" json_ok "$(cat "$T/body")" --arg id "$ID" \
  '.id == $id and .origin_box == "shunan-1f" and .fresh == true and ([.notes[].text] | index("1階で受付しました。")) != null'
check "2F adds a note: 200" test "$(call "$T/jar2" POST "/visits/$ID/notes" '{"text":"2階で児童手当を受付。"}')" = 200
check "2F types a value: 200" test "$(call "$T/jar2" PUT "/visits/$ID/forms/jumin_idou/phone" '{"value":"0834-22-4411"}')" = 200
check "... 2F's copy reaches the tenant within 5 s (kicked)" tenant_case_has "$ID" shunan-2f "0834-22-4411"
check "... with the note" tenant_case_has "$ID" shunan-2f "2階で児童手当を受付。" 1

# --- back on 1F, which holds its own older copy -----------------------------------
box_api f1
check "1F resumes the case by its QR token: 200" test "$(call "$T/jar1" POST /visits/resume "{\"token\":\"MG1:$TOK\"}")" = 200
r=$(cat "$T/body")
check "... 1F shows 2F's note (fresh, from shunan-2f)" json_ok "$r" --arg id "$ID" \
  '.id == $id and .fresh == true and .origin_box == "shunan-2f" and ([.notes[].text] | index("2階で児童手当を受付。")) != null and ([.notes[].text] | index("1階で受付しました。")) != null'
check "... and 2F's typed value" test "$(phone "$T/jar1" "$ID")" = "0834-22-4411"
audited() { # NAME OBJECT TEXT: the box's audit log of OBJECT holds TEXT (read rows are written every 250 ms)
  for _ in $(seq 1 20); do
    box_ctl "$1" audit log --object "$2" --json 2>/dev/null | grep -qF -- "$3" && return 0
    sleep 0.1
  done
  return 1
}
check "... audited on 1F as a resume with a newer copy from the tenant" audited f1 "visit:$ID" "newer from the tenant"
check "1F goes on: a note, 200" test "$(call "$T/jar1" POST "/visits/$ID/notes" '{"text":"1階に戻って転入届を受理。"}')" = 200
check "... 1F's change wins at the tenant (a greater version than 2F's)" tenant_case_has "$ID" shunan-1f "1階に戻って転入届を受理。"
check "... with 2F's note and value in it" tenant_case_has "$ID" shunan-1f "0834-22-4411" 1
check "... nothing rejected on either box" bash -c "[ \"\$('$MG_BIN/madoctl' --socket '$T/f1/run/ctl.sock' sync status --json | jq -r .rejected)\" = 0 ] && [ \"\$('$MG_BIN/madoctl' --socket '$T/f2/run/ctl.sock' sync status --json | jq -r .rejected)\" = 0 ]"
box_api f2
code=$(call "$T/jar2" POST /visits/resume "{\"number\":\"$NUM\"}")
check "2F resumes it again: 200, with 1F's latest note, fresh" json_ok "$(cat "$T/body")" --arg c "$code" \
  '$c == "200" and .fresh == true and .origin_box == "shunan-1f" and ([.notes[].text] | index("1階に戻って転入届を受理。")) != null'

# --- a number search on 2F for a case of 1F ---------------------------------------
box_api f1
read -r ID2 NUM2 TOK2 < <(mkcase "$T/jar1" "1階で受付しました。")
check "1F makes a second case" test -n "$ID2" -a "$ID2" != null
check "... it reaches the tenant" tenant_case_has "$ID2" shunan-1f "1階で受付しました。"
box_api f2
check "2F searches 1F's case by number: 200" test "$(call "$T/jar2" POST /visits/search "{\"number\":\"$NUM2\"}")" = 200
check "... found (fetched from the tenant), fresh" json_ok "$(cat "$T/body")" --arg id "$ID2" --arg n "$NUM2" \
  '(.cases | length) == 1 and .cases[0].id == $id and .cases[0].number == $n and .fresh == true and .cases[0].people[0].kana == "シュウナン サブロウ"'
check "... and it opens on 2F" test "$(call "$T/jar2" GET "/visits/$ID2")" = 200
code=$(call "$T/jar2" POST /visits/search '{"kana":"しゅうなん"}')
check "... 200, both cases now held by 2F" json_ok "$(cat "$T/body")" --arg c "$code" '$c == "200" and (.cases | length) == 2 and .fresh == true'

# --- the tenant hung, then down: a case held here still resumes ---------------------
box_api f1
read -r ID3 NUM3 TOK3 < <(mkcase "$T/jar1" "1階で受付しました。")
check "... it reaches the tenant" tenant_case_has "$ID3" shunan-1f "1階で受付しました。"
kill -STOP "$TENANT_PID"
t0=$(date +%s%N)
code=$(call "$T/jar1" POST /visits/resume "{\"number\":\"$NUM\"}")
ms=$(ms_since "$t0")
echo "# resume on 1F with the tenant hung: $ms ms ([sync] fetch_timeout = 1s)"
check "tenant hung: 1F still resumes the case it holds: 200" test "$code" = 200
check "... its own copy, \"fresh\": false" json_ok "$(cat "$T/body")" --arg id "$ID" '.id == $id and .fresh == false and ([.notes[].text] | index("1階に戻って転入届を受理。")) != null'
check "... after waiting for the tenant ($ms ms >= 900)" test "$ms" -ge 900
check "... within fetch_timeout plus a margin ($ms ms < 3000)" test "$ms" -lt 3000
kill -CONT "$TENANT_PID"
tenant_stop
box_api f2
t0=$(date +%s%N)
code=$(call "$T/jar2" POST /visits/resume "{\"number\":\"$NUM\"}")
ms=$(ms_since "$t0")
echo "# resume on 2F with the tenant down: $ms ms ([sync] fetch_timeout = 1.5s by default)"
check "tenant down: 2F resumes the case it holds: 200, \"fresh\": false" json_ok "$(cat "$T/body")" --arg c "$code" --arg id "$ID" '$c == "200" and .id == $id and .fresh == false'
check "... within fetch_timeout plus a margin ($ms ms < 3000)" test "$ms" -lt 3000
check "tenant down: a number search on 2F for a case not here: 200" test "$(call "$T/jar2" POST /visits/search "{\"number\":\"$NUM3\"}")" = 200
check "... nothing found, \"fresh\": false" json_ok "$(cat "$T/body")" '(.cases | length) == 0 and .fresh == false'
check "tenant down: a number not here cannot be resumed: 503 tenant_unreachable" bash -c \
  "[ \"\$(B='$B'; curl -sk -o '$T/body' -w '%{http_code}' -b '$T/jar2' -H \"X-CSRF-Token: \$(cat '$T/jar2.csrf')\" -H 'Content-Type: application/json' -d '{\"number\":\"$NUM3\"}' \"\$B/visits/resume\")\" = 503 ] && jq -e '.error.code == \"tenant_unreachable\"' '$T/body' >/dev/null"
tenant_start || { summary; exit 1; }
code=$(call "$T/jar2" POST /visits/search "{\"number\":\"$NUM3\"}")
check "... 200, found, fresh" json_ok "$(cat "$T/body")" --arg c "$code" --arg id "$ID3" '$c == "200" and (.cases | length) == 1 and .cases[0].id == $id and .fresh == true'

for b in f1 f2; do
  check "box $b stops cleanly" box_stop "$b"
done
summary
