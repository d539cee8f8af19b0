# Cases over HTTPS with the demo pack (issue 4; G1-G5, C1, C2, D1, U1):
# a family's 転入 at one counter, the slip (PDF text, QR and barcode
# decoded), continuation at a second counter, kana search, support-measure
# masking, bad input that changes nothing, the audit chain, and the purge.
# Everyone here is fictional.
. "$(dirname "$0")/lib.sh"
# fontconfig's caches held by slip-rendering worker threads (tests/lsan-fonts.supp)
export LSAN_OPTIONS="suppressions=$MG_SRC/tests/lsan-fonts.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

demo_pack
mkdir -p "$T/prints"
PW='Counter-2026-pw'
# the administrator comes from a seed file ([auth] users_file)
seed_users "$T/users.csv" admin,管理者,administrator
seed_users "$T/bad-users.csv" admin,管理者,administrator bob,ボブ,chief
bad=$(write_config badusers <<CONF
[auth]
users_file = $T/bad-users.csv
CONF
)
out=$("$MG_BIN/madoguchid" --config "$bad" 2>&1); st=$?
check "a bad seed file stops the start, naming file:line and the rule" bash -c "[ $st -ne 0 ] && grep -q 'bad-users.csv:3: the role is one of' <<<'$out'"
conf=$(write_config visits <<CONF
plugin_dir = $MG_PLUGINS
[auth]
users_file = $T/users.csv
[http]
listen = 127.0.0.1:0
$(pack_conf)
[visits]
retention = 0s
close_at =
[printer "slips"]
plugin = fileprinter
counters = shimin-1
dir = $T/prints
CONF
)
start_daemon "$conf" "$T/visits/run" || { summary; exit 1; }
DB="$T/visits/state/madoguchi.db"
B="https://127.0.0.1:$PORT/api/v1"
check "the demo pack is pulled" ctl pack pull

check "the seeded administrator is there" json_ok "$(ctl user list --json)" 'map(.id) == ["admin"]'
check "users are added" eval 'add_user tanaka 田中 staff && add_user sato 佐藤 staff && add_user suzuki 鈴木 supervisor'

# --- tablets (U1) ---------------------------------------------------------
A="$T/tablet-shimin"; K="$T/tablet-kosodate"; touch "$A" "$K"
check "staff cannot log in on an unregistered tablet: 403" test "$(login "$A" tanaka shimin-1)" = 403
check "... tablet_not_registered" json_ok "$(cat "$T/body")" '.error.code == "tablet_not_registered"'
check "an administrator can (to register it)" test "$(login "$A" admin shimin-1)" = 200
check "registers the tablet to shimin-1: 201" test "$(call "$A" POST /tablets '{"counter":"shimin-1","name":"市民課1番 タブレット"}')" = 201
check "... the cookie is HttpOnly, Secure, SameSite=Strict" grep -q 'mg_tablet' "$A"
login "$K" admin kosodate-1 >/dev/null
check "registers a second tablet to kosodate-1" test "$(call "$K" POST /tablets '{"counter":"kosodate-1","name":"子育て1"}')" = 201
check "staff log in on the shimin-1 tablet" test "$(login "$A" tanaka)" = 200
check "... bound to its counter" json_ok "$(cat "$T/body")" '.counter == "shimin-1" and .user.role == "staff"'
check "a login naming another counter there: 400" test "$(login "$A" tanaka hoken-1)" = 400
login "$A" tanaka >/dev/null

# --- a family's move-in (G1, G3) ------------------------------------------
today=$(date +%F)
bd() { date -d "$today - $1 years - 10 days" +%F; }
addr='山口県周南市岐山通1丁目1番地 架空ハイツ101'
people=$(jq -cn --arg a "$addr" --arg b1 "$(bd 40)" --arg b2 "$(bd 38)" --arg b3 "$(bd 7)" --arg b4 "$(bd 1)" --arg b5 "$(bd 66)" '[
  {name:"山田 太郎", kana:"ヤマダ タロウ", birth_date:$b1, address:$a},
  {name:"山田 花子", kana:"ヤマダ ハナコ", birth_date:$b2, address:$a},
  {name:"山田 一郎", kana:"ヤマダ イチロウ", birth_date:$b3, address:$a},
  {name:"山田 さくら", kana:"ヤマダ サクラ", birth_date:$b4, address:$a},
  {name:"山田 ハナ", kana:"ヤマダ ハナ", birth_date:$b5, address:$a}]')
code=$(call "$A" POST /visits "{\"life_event\":\"tennyu\",\"people\":$people}")
check "a case is created: 201" test "$code" = 201
created=$(cat "$T/body")
ID=$(jq -r .case.id <<<"$created")
NUM=$(jq -r .case.number <<<"$created")
TOKEN=$(jq -r .token <<<"$created")
check "... with a number, a 43-character token and a first question" json_ok "$created" '(.case.number | test("^[0-9]{8}$")) and (.token | length == 43) and .case.next_question.id == "tn_shien" and .case.progress.answered == 0'
check "... recording the pack version" json_ok "$created" '.case.pack_commit | test("^[0-9a-f]{40}$")'

declare -A ans=([tn_shien]=no [tn_seiho]=no [tn_shaho]=yes [tn_kousei]=yes [tn_shougai]=no
  [tn_kouki_nintei]=no [tn_youkaigo]=no [tn_jidouteate]=yes [tn_hitorioya]=no [tn_ninshin]=no
  [tn_hoiku]=yes [tn_tennyugaku]=yes [tn_gakudou]=no [tn_inkan]=yes [tn_gentsuki]=no [tn_inu]=no)
asked=()
q=$(jq -r '.case.next_question.id' <<<"$created")
while [ "$q" != null ] && [ ${#asked[@]} -lt 40 ]; do
  asked+=("$q")
  call "$A" PUT "/visits/$ID/answers/$q" "{\"answer\":\"${ans[$q]:-no}\"}" >/dev/null
  q=$(jq -r '.next_question.id' "$T/body")
done
state=$(cat "$T/body")
check "the questions asked, in order (tn_tokurei needs a My Number card)" test "${asked[*]}" = "tn_shien tn_seiho tn_shaho tn_kousei tn_shougai tn_kouki_nintei tn_youkaigo tn_jidouteate tn_hitorioya tn_ninshin tn_hoiku tn_tennyugaku tn_gakudou tn_inkan tn_gentsuki tn_inu"
check "progress is complete: 16 of 16" json_ok "$state" '.progress == {"answered":16,"total":16,"complete":true}'
procs() { jq -c '[.procedures[] | select(.source != "removed") | .id] | sort' <<<"$1"; }
expected='["boshi_hoken","gomi_annai","hoiku_moushikomi","inkan_touroku","jidouteate_nintei","kaigo_shikaku","kodomo_iryo_shikaku","senkyo_annai","suido_annai","tennyu_todoke","tennyugaku"]'
check "the expected procedures and no others" test "$(procs "$state")" = "$expected"
check "介護保険 is for the 66-year-old only" json_ok "$state" '.procedures[] | select(.id == "kaigo_shikaku") | .people == [4] and (.reasons == [{"fact":"age","value":[66]}])'
check "児童手当 says which answer proposed it" json_ok "$state" '.procedures[] | select(.id == "jidouteate_nintei") | .reasons == [{"question":"tn_jidouteate","answer":"yes"}]'
check "documents, counter and floor come along" json_ok "$state" '.procedures[] | select(.id == "tennyugaku") | .counter.floor == "5F" and (.documents | length > 0) and .kind == "form"'
check "info-only guides are included" json_ok "$state" '[.procedures[] | select(.kind == "info") | .id] | index("gomi_annai") != null'

call "$A" PUT "/visits/$ID/answers/tn_tennyugaku" '{"answer":"no"}' >/dev/null
s2=$(cat "$T/body")
check "re-answering 転入学 withdraws it" json_ok "$s2" '[.procedures[].id] | index("tennyugaku") == null'
check "... and its follow-up question is no longer asked" json_ok "$s2" '([.answered[].id] | index("tn_gakudou") == null) and .progress.total == 15'
call "$A" PUT "/visits/$ID/answers/tn_shaho" '{"answer":"no"}' >/dev/null
check "re-answering 社会保険 proposes 国民健康保険" json_ok "$(cat "$T/body")" '[.procedures[].id] | index("kokuho_kanyu") != null'
call "$A" PUT "/visits/$ID/answers/tn_tennyugaku" '{"answer":"yes"}' >/dev/null
call "$A" PUT "/visits/$ID/answers/tn_shaho" '{"answer":"yes"}' >/dev/null
check "answering back restores the set" test "$(procs "$(cat "$T/body")")" = "$expected"
check "staff add a procedure by hand" test "$(call "$A" POST "/visits/$ID/procedures/inu_henkou")" = 200
check "... marked as added" json_ok "$(cat "$T/body")" '.procedures[] | select(.id == "inu_henkou") | .source == "added"'
check "staff remove one by hand" test "$(call "$A" DELETE "/visits/$ID/procedures/gomi_annai")" = 200
check "... kept as removed" json_ok "$(cat "$T/body")" '.procedures[] | select(.id == "gomi_annai") | .source == "removed"'
check "a note" test "$(call "$A" POST "/visits/$ID/notes" '{"text":"転出証明書は持参済み。"}')" = 200
check "the slip text" test "$(call "$A" PUT "/visits/$ID/slip-text" '{"text":"2階の子育て給付課へどうぞ。"}')" = 200
check "転入届 in progress at shimin-1" test "$(call "$A" PUT "/visits/$ID/procedures/tennyu_todoke/status" '{"status":"in_progress"}')" = 200
check "... shown as its status" json_ok "$(cat "$T/body")" '.procedures[] | select(.id == "tennyu_todoke") | .status == "in_progress" and .statuses[0].counter == "shimin-1"'
check "support measures for 花子 (C2)" test "$(call "$A" POST "/visits/$ID/support" '{"person":1,"on":true}')" = 200
check "... the flagging counter still sees the address" json_ok "$(cat "$T/body")" --arg a "$addr" '.people[1].address == $a and .support.counter == "shimin-1"'

# --- the slip (G4) --------------------------------------------------------
check "slip PDF: 200" test "$(call "$A" GET "/visits/$ID/slip.pdf")" = 200
cp "$T/body" "$T/slip.pdf"
check "... is a PDF" bash -c "head -c 5 '$T/slip.pdf' | grep -q '%PDF-'"
pdftotext -layout "$T/slip.pdf" "$T/slip.txt"
disp="${NUM:0:4}-${NUM:4:4}"
check "... with the procedure number" grep -q -- "$disp" "$T/slip.txt"
check "... and every procedure's name" bash -c "for n in 転入届 介護保険の資格取得 児童手当の認定請求 小中学校の転入学 印鑑登録 犬の登録事項変更; do grep -q \"\$n\" '$T/slip.txt' || exit 1; done"
check "... and not the removed one" bash -c "! grep -q 'ごみの出し方' '$T/slip.txt'"
check "... and the staff's text" grep -q '子育て給付課へどうぞ' "$T/slip.txt"
check "... embeds its font" bash -c "pdffonts '$T/slip.pdf' | tail -n +3 | awk '{print \$(NF-4)}' | grep -q yes"
pdftoppm -r 150 -png -f 1 -l 1 "$T/slip.pdf" "$T/slip"
codes=$(zbarimg --raw -q "$T"/slip*.png 2>/dev/null)
QR=$(grep '^MG1:' <<<"$codes")
check "the QR code decodes to the continuation token" test "$QR" = "MG1:$TOKEN"
check "the barcode decodes to the number" grep -qx "$NUM" <<<"$codes"
check "the slip prints on shimin-1's printer" test "$(call "$A" POST "/visits/$ID/slip/print")" = 200
check "... a PDF job lands" bash -c "ls '$T/prints' | grep -q '\\.pdf$'"

# --- another counter (G5, C1, C2) -----------------------------------------
check "staff log in at kosodate-1" test "$(login "$K" sato)" = 200
check "resume by the QR payload: 200" test "$(call "$K" POST /visits/resume "{\"token\":\"$QR\"}")" = 200
r=$(cat "$T/body")
check "... the whole case: answers, procedures, notes" json_ok "$r" --arg id "$ID" '.id == $id and (.answered | length == 16) and (.notes[0].text == "転出証明書は持参済み。") and (.notes[0].counter == "shimin-1")'
check "... no address at all (API)" bash -c "! grep -q '岐山通' <<<'$r'"
check "... every address is masked" json_ok "$r" '([.people[].address_masked] | all) and ([.people[].address] | all(. == null))'
check "resume by the number: 200" test "$(call "$K" POST /visits/resume "{\"number\":\"$disp\"}")" = 200
check "the slip at kosodate-1" test "$(call "$K" GET "/visits/$ID/slip.pdf")" = 200
pdftotext "$T/body" "$T/slip2.txt"
check "... carries no address (pdftotext)" bash -c "! grep -q -e '岐山通' -e '架空ハイツ' '$T/slip2.txt' && grep -q '山田' '$T/slip2.txt'"
check "kosodate-1 cannot take over the flag" test "$(call "$K" POST "/visits/$ID/support" '{"person":0,"on":true}')" = 403
for k in 'やまだ　たろう' 'ﾔﾏﾀﾞ ﾀﾛｳ' 'ヤマダタロウ' 'やまだ'; do
  call "$K" POST /visits/search "{\"kana\":\"$k\"}" >/dev/null
  check "kana search '$k' finds the case" json_ok "$(cat "$T/body")" --arg id "$ID" '[.cases[].id] | index($id) != null'
done
call "$K" POST /visits/search "{\"birth_date\":\"$(bd 7)\"}" >/dev/null
check "search by birth date" json_ok "$(cat "$T/body")" --arg id "$ID" '[.cases[].id] | index($id) != null'
check "search results hold no address" bash -c "! grep -q '岐山通' '$T/body'"
call "$K" POST /visits/search '{"kana":"スズキ"}' >/dev/null
check "another name finds nothing" json_ok "$(cat "$T/body")" '.cases == []'
check "staff may not unmask: 403" test "$(call "$K" POST "/visits/$ID/unmask" '{"reason":"本人からの依頼"}')" = 403
check "a supervisor logs in at kosodate-1" test "$(login "$K" suzuki)" = 200
check "... must give a reason: 400" test "$(call "$K" POST "/visits/$ID/unmask" '{"reason":""}')" = 400
check "... unmasks with a reason" test "$(call "$K" POST "/visits/$ID/unmask" '{"reason":"本人確認のうえ児童手当の送付先確認"}')" = 200
check "... then the address shows there" json_ok "$(cat "$T/body")" --arg a "$addr" '.people[0].address == $a and .support.unmasked_until != null'
check "... and the unmask is audited with its reason" json_ok "$(ctl audit log --json --object "visit:$ID")" '[.entries[] | select(.action == "visit.unmask" and .actor == "suzuki" and .counter == "kosodate-1" and (.detail | test("児童手当")))] | length == 1'
login "$K" sato >/dev/null

# --- bad input changes nothing --------------------------------------------
snap() { call "$A" GET "/visits/$ID" >/dev/null; jq -c 'del(.support.unmasked_until)' "$T/body"; }
before=$(snap)
code=$(call "$A" PUT "/visits/$ID/answers/no_such_question" '{"answer":"yes"}')
check "unknown question: 404 with a message" bash -c "[ $code = 404 ] && jq -e '.error.code == \"not_found\" and (.error.message | test(\"no_such_question\"))' '$T/body' >/dev/null"
code=$(call "$A" PUT "/visits/$ID/answers/tn_inu" '{"answer":"maybe"}')
check "an answer other than yes/no: 400" bash -c "[ $code = 400 ] && jq -e '.error.message | test(\"yes\")' '$T/body' >/dev/null"
code=$(call "$A" PUT "/visits/$ID/answers/tn_inu" '{"answer":"yes","x":1}')
check "an unknown key: 400" test "$code" = 400
code=$(call "$A" PUT "/visits/$ID/answers/tn_inu" '{"answer":')
check "broken JSON: 400 naming the place" bash -c "[ $code = 400 ] && jq -e '.error.message | test(\"line 1\")' '$T/body' >/dev/null"
code=$(call "$A" PUT "/visits/$ID/answers/tn_tokurei" '{"answer":"yes"}')
check "a question not asked in this case: 400" test "$code" = 400
cp "$A.csrf" "$T/csrf.keep"; echo forged-token > "$A.csrf"
code=$(call "$A" PUT "/visits/$ID/answers/tn_inu" '{"answer":"yes"}')
check "a forged CSRF token: 403 csrf_failed" bash -c "[ $code = 403 ] && jq -e '.error.code == \"csrf_failed\"' '$T/body' >/dev/null"
cp "$T/csrf.keep" "$A.csrf"
n1=$(( ${NUM:0:1} % 9 + 1 ))
code=$(call "$A" POST /visits/resume "{\"number\":\"${n1}${NUM:1}\"}")
check "a mistyped number: 400 invalid (check digit)" bash -c "[ $code = 400 ] && jq -e '.error.message | test(\"check digit\")' '$T/body' >/dev/null"
guess=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
code=$(call "$A" POST /visits/resume "{\"token\":\"MG1:$guess\"}")
check "a guessed token: 404 not_found" bash -c "[ $code = 404 ] && jq -e '.error.code == \"not_found\"' '$T/body' >/dev/null"
check "the number without a session: 401" test "$(curl -sk -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"number\":\"$NUM\"}" "$B/visits/resume")" = 401
sqlite3 -cmd ".timeout 5000" "$DB" "UPDATE sessions SET expires_at = '2000-01-01T00:00:00Z' WHERE user_id = 'tanaka'"
code=$(call "$A" PUT "/visits/$ID/answers/tn_inu" '{"answer":"yes"}')
check "an expired session: 401 not_logged_in" bash -c "[ $code = 401 ] && jq -e '.error.code == \"not_logged_in\"' '$T/body' >/dev/null"
login "$A" tanaka >/dev/null
check "... and nothing in the case changed" test "$(snap)" = "$before"

# --- audit, privacy, retention (D1) ---------------------------------------
check "the audit chain is intact" eval 'ctl audit verify | grep -q intact'
check "views, answers, prints and resumes are audited" json_ok "$(ctl audit log --json --limit 1000)" '[.entries[].action] as $a | ["visit.create","visit.answer","visit.view","slip.download","slip.print","visit.resume","visit.resume_failed","visit.support.on","tablet.register"] | all(. as $x | $a | index($x) != null)'
check "no name, kana or address in the log" bash -c "! grep -q -e '山田' -e 'ヤマダ' -e '岐山通' '$LOG'"
check "no name in the database file in clear" bash -c "! grep -a -q -e '山田' -e 'ヤマダ' -e '岐山通' '$DB' '$DB-wal'"
blob=$(sqlite3 -cmd ".timeout 5000" "$DB" "SELECT hex(substr(personal, 14, 24)) FROM visits WHERE id = '$ID'")
check "close the case" test "$(call "$A" POST "/visits/$ID/close")" = 200
check "... no more changes: 409 case_closed" test "$(call "$A" PUT "/visits/$ID/answers/tn_inu" '{"answer":"yes"}')" = 409
check "madoctl visits purge (retention 0s)" bash -c "'$MG_BIN/madoctl' --socket '$SOCK' visits purge | grep -q '1 purged'"
check "the case is gone" test "$(call "$A" GET "/visits/$ID")" = 404
check "... its rows too" test "$(sqlite3 -cmd ".timeout 5000" "$DB" "SELECT (SELECT count(*) FROM visits) + (SELECT count(*) FROM visit_answers) + (SELECT count(*) FROM visit_notes) + (SELECT count(*) FROM visit_status)")" = 0
check "... and its sealed bytes are gone from the database file" python3 - "$DB" "$blob" <<'PY'
import sys, os
db, blob = sys.argv[1], bytes.fromhex(sys.argv[2])
for f in (db, db + "-wal"):
    if os.path.exists(f) and blob in open(f, "rb").read():
        sys.exit(1)
PY
check "the audit chain is still intact after the purge" bash -c "'$MG_BIN/madoctl' --socket '$SOCK' audit verify | grep -q intact"
tabs=$(ctl tablet list --json)
check "madoctl tablet list shows both tablets" json_ok "$tabs" 'map(.counter) == ["kosodate-1", "shimin-1"]'
check "madoctl tablet del removes one" ctl tablet del "$(jq -r '.[0].id' <<<"$tabs")"
check "... whose staff can no longer log in there" test "$(login "$K" sato)" = 403
check "the daemon stops cleanly" stop_daemon TERM
summary
