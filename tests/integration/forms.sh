# Forms of a case over HTTPS with the demo pack (issue 5; A1-A3, I2, I4-I6,
# F1-F7, FG3, FG4, S1, P1-P3, X4, C2): the family move-in of the visits test
# fills every form from one entry of the household, typed values carry
# across forms and counters, bad values are kept with a clear message, the
# bundle PDF holds every carried value at its page with embedded fonts and
# the pack's gaiji, one signature, submission writes the linkage CSV, and a
# second counter sees addresses masked.  Everyone here is fictional.
. "$(dirname "$0")/lib.sh"
export LSAN_OPTIONS="suppressions=$MG_SRC/tests/lsan-fonts.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

demo_pack
mkdir -p "$T/linkage"
trap 'stop_ipp_printer; cleanup' EXIT
start_ipp_printer || { summary; exit 1; }
PW='Counter-2026-pw'
conf=$(write_config forms <<CONF
plugin_dir = $MG_PLUGINS
$(counter_conf)
[printer "forms"]
plugin = cups
counters = shimin-1
uri = ipp://localhost:$PP/ipp/print
[exporter "linkage"]
plugin = csvexport
dir = $T/linkage
CONF
)
start_daemon "$conf" "$T/forms/run" || { summary; exit 1; }
B="https://127.0.0.1:$PORT/api/v1"
check "the demo pack is pulled" ctl pack pull
add_user tanaka 職員 staff
add_user sato 職員 staff
A="$T/jar-shimin"; K="$T/jar-kosodate"
check "staff log in at shimin-1" test "$(login "$A" tanaka shimin-1)" = 200
check "... and at kosodate-1" test "$(login "$K" sato kosodate-1)" = 200

# --- the household, entered once -------------------------------------------
today=$(date +%F)
bd() { date -d "$today - $1 years - 10 days" +%F; }
addr='山口県周南市毛利町1丁目1番地 架空ハイツ101'
people=$(jq -cn --arg a "$addr" --arg b1 "$(bd 40)" --arg b2 "$(bd 38)" --arg b3 "$(bd 7)" --arg b4 "$(bd 1)" --arg b5 "$(bd 66)" '[
  {name:"山田 太郎", kana:"ヤマダ タロウ", birth_date:$b1, address:$a},
  {name:"山田 花子", kana:"ヤマダ ハナコ", birth_date:$b2, address:$a},
  {name:"山田 一郎", kana:"ヤマダ イチロウ", birth_date:$b3, address:$a},
  {name:"山田 さくら", kana:"ヤマダ サクラ", birth_date:$b4, address:$a},
  {name:"山田 ハナ", kana:"ヤマダ ハナ", birth_date:$b5, address:$a}]')
typed=$(( 5 * 4 ))   # name, kana, birth date, address of five people
check "a move-in case is created: 201" test "$(call "$A" POST /visits "{\"life_event\":\"tennyu\",\"people\":$people}")" = 201
ID=$(jq -r .case.id "$T/body")
NUM=$(jq -r .case.number "$T/body")
declare -A ans=([tn_shaho]=yes [tn_kousei]=yes [tn_jidouteate]=yes [tn_hoiku]=yes [tn_tennyugaku]=yes [tn_inkan]=yes)
q=$(jq -r '.case.next_question.id' "$T/body")
for _ in $(seq 40); do
  [ "$q" = null ] && break
  call "$A" PUT "/visits/$ID/answers/$q" "{\"answer\":\"${ans[$q]:-no}\"}" >/dev/null
  q=$(jq -r '.next_question.id' "$T/body")
done

# --- the forms the guide opened (A1) ---------------------------------------
check "the forms of the case: 200" test "$(call "$A" GET "/visits/$ID/forms")" = 200
forms=$(cat "$T/body")
check "the guide's procedures opened their forms" json_ok "$forms" '[.forms[].form] | unique == (["hoiku_moushikomi","inkan_touroku","jidouteate","jumin_idou","kaigo_idou","kodomo_iryo","mynumber_henkou","tennyugaku"] | sort)'
check "five people on a form of four rows: a second sheet by itself (I4)" json_ok "$forms" '[.forms[] | select(.form == "jumin_idou") | {id, sheet, source}] == [{"id":"jumin_idou","sheet":1,"source":"auto"},{"id":"jumin_idou.2","sheet":2,"source":"overflow"}]'

call "$A" GET "/visits/$ID/forms/jumin_idou" >/dev/null
ji=$(cat "$T/body")
check "the household's names are carried into the rows" json_ok "$ji" '[.fields[] | select(.id == "m_name") | .values[] | .value] == ["山田　太郎","山田　花子","山田　一郎","山田　さくら"]'
check "... marked carried from the household" json_ok "$ji" '.fields[] | select(.id == "m_name") | .values[0] | .source == "carried" and .from == "household"'
check "the head and the applicant's split name come from person 1" json_ok "$ji" '(.fields[] | select(.id == "head") | .values[0].value == "山田　太郎") and (.fields[] | select(.id == "name") | .values[0] | .family == "山田" and .given == "太郎")'
check "the filing date defaults to today (F4)" json_ok "$ji" --arg t "$today" '.fields[] | select(.id == "filing_date") | .values[0] | .value == $t and .source == "default"'
check "the district of an in-city address is computed (F3)" json_ok "$ji" '.fields[] | select(.id == "district") | .values[0] | .value == "中央" and .source == "computed"'
call "$A" GET "/visits/$ID/forms/jumin_idou.2" >/dev/null
check "the second sheet holds the fifth person in its first row" json_ok "$(cat "$T/body")" '(.fields[] | select(.id == "m_name") | .values[0].value) == "山田　ハナ" and .groups[0].first_row == 5'
call "$A" GET "/visits/$ID/forms/jidouteate" >/dev/null
check "児童手当 lists the children of the household (18 or younger)" json_ok "$(cat "$T/body")" '[.fields[] | select(.id == "c_name") | .values[] | .value | select(. != null)] == ["山田　一郎","山田　さくら"]'
check "... and computes the applicant's age (F7)" json_ok "$(cat "$T/body")" '.fields[] | select(.id == "age") | .values[0] | .value == "40" and .source == "computed"'

# --- one entry fills every form (A1, I2) -----------------------------------
put() { # SHEET FIELD JSON → status
  call "$A" PUT "/visits/$ID/forms/$1/$2" "$3"
}
check "a value typed in one form: 200" test "$(put jumin_idou move_date "{\"value\":\"$today\"}")" = 200
check "... is typed there" json_ok "$(cat "$T/body")" '.fields[] | select(.id == "move_date") | .values[0].source == "typed"'
typed=$((typed + 1))
call "$A" GET "/visits/$ID/forms/jidouteate" >/dev/null
check "... and carried into another form (move.date)" json_ok "$(cat "$T/body")" --arg t "$today" '.fields[] | select(.id == "jiyu_date") | .values[0] | .value == $t and .source == "carried" and .from == "jumin_idou"'
check "a phone number typed once" test "$(put jumin_idou phone '{"value":"０８３４－２２－８２１１"}')" = 200
check "... is folded to ASCII" json_ok "$(cat "$T/body")" '.fields[] | select(.id == "phone") | .values[0].value == "0834-22-8211"'
typed=$((typed + 1))
call "$K" GET "/visits/$ID/forms/kodomo_iryo" >/dev/null
check "... and reaches another counter's form" json_ok "$(cat "$T/body")" '.fields[] | select(.id == "phone") | .values[0] | .value == "0834-22-8211" and .source == "carried"'

# Fill what each form still needs, by the field's type; names never.
names_typed=0
fill_value() { # TYPE CHOICES-LIST → JSON body or empty
  case $1 in
    date) echo "{\"value\":\"$today\"}" ;;
    select|radio) jq -c --arg l "$2" '{value: .choices[$l][0].value}' "$3" ;;
    checkbox) echo '{"value":"no"}' ;;
    number) echo '{"value":"1"}' ;;
    postal_code) echo '{"value":"745-0004"}' ;;
    address) jq -cn --arg a "$addr" '{value:$a}' ;;
    phone) echo '{"value":"0834-22-8211"}' ;;
    kana) echo '{"value":"やまだ"}' ;;
    name|name_split) echo '{"value":"山田 太郎"}' ;;
    *) echo '{"value":"記入例"}' ;;
  esac
}
for sheet in $(jq -r '.forms[].id' <<<"$forms"); do
  call "$A" GET "/visits/$ID/forms/$sheet" >/dev/null
  cp "$T/body" "$T/form.json"
  while IFS=$'\t' read -r fid type list row; do
    body=$(fill_value "$type" "$list" "$T/form.json")
    case $type in name|name_split) names_typed=$((names_typed + 1)); echo "# a name typed: $sheet.$fid" ;; esac
    [ -n "$row" ] && body=$(jq -c --argjson r "$row" '. + {row:$r}' <<<"$body")
    code=$(put "$sheet" "$fid" "$body")
    typed=$((typed + 1))
    [ "$code" = 200 ] || echo "# $sheet.$fid: $code $(cat "$T/body" | head -c 300)"
  done < <(jq -r '.fields[] as $f | $f.values[] | select(.error != null and .value == null) | [$f.id, $f.type, ($f.choices // ""), (.row // "")] | @tsv' "$T/form.json")
done
call "$A" GET "/visits/$ID/forms" >/dev/null
filled=$(cat "$T/body")
check "every form is complete: no required field left, no error" json_ok "$filled" '[.forms[] | .missing + .errors] | add == 0'
carried=$(jq '.values.carried' <<<"$filled")
echo "# values typed: $typed (20 of them the household of five), carried: $carried, computed: $(jq '.values.computed' <<<"$filled"), defaults: $(jq '.values.default' <<<"$filled")"
check "no name had to be typed again in any form" test "$names_typed" = 0
check "far more values are carried than typed" test "$carried" -gt $((typed * 2))

# --- bad input is kept, with the rule (F1, F4, I6, FG3) ----------------------
check "2月30日: 422" test "$(put jumin_idou move_date '{"value":"令和8年2月30日"}')" = 422
bad=$(cat "$T/body")
check "... naming the field and the rule, saved as typed" json_ok "$bad" '.error.code == "invalid_value" and (.error.message | test("異動日.*2月30日")) and .saved and (.form.fields[] | select(.id == "move_date") | .values[0] | .value == "令和8年2月30日" and (.error | test("存在しない")))'
check "令和0年: 422" test "$(put jumin_idou move_date '{"value":"令和0年4月1日"}')" = 422
check "... the era year rule" json_ok "$(cat "$T/body")" '.error.message | test("令和0年")'
check "a 個人番号 with a wrong check digit: 422" test "$(put jidouteate mynumber '{"value":"123456789012"}')" = 422
check "... says the check digit" json_ok "$(cat "$T/body")" '.error.message | test("個人番号.*検査用数字")'
long=$(printf '長%.0s' $(seq 90))
check "an address longer than its box: 422" test "$(put jumin_idou prev_address "{\"value\":\"$long\"}")" = 422
check "... with the length rule, and the text kept" json_ok "$(cat "$T/body")" --arg l "$long" '(.error.message | test("80文字以内")) and (.form.fields[] | select(.id == "prev_address") | .values[0].value == $l)'
check "an unknown field: 404" test "$(put jumin_idou no_such '{"value":"x"}')" = 404
check "a row outside the group: 400" test "$(put jumin_idou m_name '{"value":"x","row":9}')" = 400
check "a computed field cannot be typed: 400" test "$(put jumin_idou district '{"value":"x"}')" = 400
check "submitting with errors: 400 naming the field" test "$(call "$A" POST "/visits/$ID/forms/jumin_idou/submit")" = 400
check "... the rule of the first problem" json_ok "$(cat "$T/body")" '.error.message | test("異動日")'
put jumin_idou move_date "{\"value\":\"$today\"}" >/dev/null
put jumin_idou prev_address '{"value":"東京都千代田区架空町1-1"}' >/dev/null
put jidouteate mynumber '{"value":""}' >/dev/null

# --- add, copy, remove (A3, I4) --------------------------------------------
check "a form the guide did not propose is added" test "$(call "$A" POST "/visits/$ID/forms" '{"form":"juminhyo_seikyu"}')" = 200
check "... source added" json_ok "$(cat "$T/body")" '.added == "juminhyo_seikyu" and (.forms.forms[] | select(.id == "juminhyo_seikyu") | .source == "added")'
check "a form is copied" test "$(call "$A" POST "/visits/$ID/forms/jidouteate/copy")" = 200
check "... into its next sheet" json_ok "$(cat "$T/body")" '.added == "jidouteate.2"'
check "a sheet is removed" test "$(call "$A" DELETE "/visits/$ID/forms/jidouteate.2")" = 200
check "... and is gone" json_ok "$(cat "$T/body")" '[.forms[].id] | index("jidouteate.2") == null'
check "a form another counter may not open: 403" test "$(call "$K" POST "/visits/$ID/forms" '{"form":"gentsuki"}')" = 403
call "$A" DELETE "/visits/$ID/forms/juminhyo_seikyu" >/dev/null

# --- one signature (S1), gaiji (P3) ----------------------------------------
sig='{"aspect":3,"strokes":[[[0.1,0.5,0.02],[0.3,0.2,0.03],[0.5,0.7,0.03],[0.9,0.4,0.02]],[[0.2,0.8,0.02],[0.8,0.8,0.02]]]}'
check "the visitor signs once" test "$(call "$A" PUT "/visits/$ID/signature" "$sig")" = 200
check "... the case has a signature" json_ok "$(cat "$T/body")" '.signature == true'
check "a malformed signature: 400" test "$(call "$A" PUT "/visits/$ID/signature" '{"aspect":3,"strokes":[[[2,0,0]]]}')" = 400
gaiji=$(printf '髙\xee\x80\x80')  # U+E000: the pack's gaiji font
check "a value with a gaiji character" test "$(put inkan_touroku memo "{\"value\":\"旧字 $gaiji\"}")" = 200

# --- the bundle (P1, P2, P3) -----------------------------------------------
code=$(curl -sk -o "$T/bundle.pdf" -w '%{http_code}' -b "$A" "$B/visits/$ID/bundle.pdf")
check "the bundle PDF: 200" test "$code" = 200
pages=$(pdfinfo "$T/bundle.pdf" 2>/dev/null | awk '/^Pages:/ {print $2}')
want=$(jq '[.forms[] | .pages] | add' <<<"$filled")
check "one page per printed page of every sheet ($want)" test "$pages" = "$want"
# every sheet's page: its carried values are on it
p=1
for sheet in $(jq -r '.forms[].id' <<<"$filled"); do
  call "$A" GET "/visits/$ID/forms/$sheet" >/dev/null
  text=$(pdftotext -layout -f "$p" -l "$p" "$T/bundle.pdf" - 2>/dev/null | tr -d ' 　')
  miss=$(jq -r '.fields[] | select(.type == "name" or .type == "date" or .type == "phone" or .type == "kana") | .values[] | select(.source == "carried" and .value != null) | .value' "$T/body" |
    while read -r v; do
      case $v in [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) continue ;; esac  # dates print in 和暦
      grep -qF -- "$(tr -d ' 　' <<<"$v")" <<<"$text" || echo "$v"
    done)
  check "page $p ($sheet) holds its carried values" test -z "$miss"
  p=$((p + $(jq .pages "$T/body")))
done
check "the fonts are embedded (pdffonts)" bash -c "pdffonts '$T/bundle.pdf' | awk 'NR > 2 && \$(NF-4) != \"yes\" {bad=1} END {exit bad}'"
check "the gaiji font of the pack is embedded" bash -c "pdffonts '$T/bundle.pdf' | grep -qi gaiji"
code=$(curl -sk -o "$T/one.pdf" -w '%{http_code}' -b "$A" "$B/visits/$ID/forms/jumin_idou/pdf?font_scale=1.5")
check "one sheet with a larger print size (P2): 200" bash -c "[ $code = 200 ] && pdfinfo '$T/one.pdf' | grep -q '^Pages: *1'"
check "a print size out of range: 400" test "$(curl -sk -o /dev/null -w '%{http_code}' -b "$A" "$B/visits/$ID/bundle.pdf?font_scale=9")" = 400
check "the bundle prints on the counter's IPP printer (ippeveprinter)" test "$(call "$A" POST "/visits/$ID/bundle/print" '{"font_scale":1.0}')" = 200
check "... the job completed" json_ok "$(cat "$T/body")" '.printed and .result.state == "completed"'
got=$(ls "$T/spool"/*.pdf 2>/dev/null | head -1)
check "... and the whole bundle arrived as a valid PDF" bash -c "[ -n '$got' ] && pdfinfo '$got' | grep -q '^Pages: *$want\$'"

# --- submission and the linkage file (X4, FG6) -----------------------------
code=$(call "$A" POST "/visits/$ID/forms/jumin_idou/submit")
check "jumin_idou is submitted" test "$code" = 200 || cat "$T/body"
check "... as an application" json_ok "$(cat "$T/body")" '(.application | test("^[0-9a-f]{32}$")) and (.forms.forms[] | select(.id == "jumin_idou") | .submitted.application != null)'
check "a second submission: 409" test "$(call "$A" POST "/visits/$ID/forms/jumin_idou/submit")" = 409
check "its values no longer change: 409" test "$(put jumin_idou kind '{"value":"tennyu"}')" = 409
for _ in $(seq 50); do ls "$T/linkage"/jumin_idou_*.csv >/dev/null 2>&1 && break; sleep 0.1; done
csvf=$(ls "$T/linkage"/jumin_idou_*.csv 2>/dev/null | head -1)
check "the linkage CSV is written, named after the form and the case" bash -c "[[ '$csvf' == *_${NUM}_* ]]"
check "... no partial file is left beside it" bash -c "! ls -a '$T/linkage' | grep -q part"
check "... it opens with Python's csv module and matches the form" python3 - "$csvf" "$addr" <<'PY'
import csv, sys
raw = open(sys.argv[1], 'rb').read()
assert raw.startswith(b'\xef\xbb\xbf'), 'BOM'
assert b'\r\n' in raw and b'\n' not in raw.replace(b'\r\n', b''), 'CRLF'
rows = list(csv.reader(open(sys.argv[1], encoding='utf-8-sig', newline='')))
assert len(rows) == 2, rows
h, r = rows
d = dict(zip(h, r))
assert d['m_name.1'] == '山田\u3000太郎' and d['m_name.5'] == '山田\u3000ハナ', d
assert d['name.family'] == '山田' and d['name.given'] == '太郎', d
assert d['new_address'] == sys.argv[2], d
assert 'phone' not in d and 'memo' not in d, 'csv_export = no fields are left out'
PY
alog=$(ctl audit log --object "visit:$ID" --limit 200)
check "the application is in the audit log, without values" bash -c "grep -q visit.submit <<<'$alog' && ! grep -q 太郎 <<<'$alog'"

# --- masking at a second counter (C2) ---------------------------------------
check "person 1 is flagged under support measures at shimin-1" test "$(call "$A" POST "/visits/$ID/support" '{"person":0,"on":true}')" = 200
call "$K" GET "/visits/$ID/forms/jidouteate" >/dev/null
check "kosodate-1 sees the address fields masked" json_ok "$(cat "$T/body")" '.fields[] | select(.id == "address") | .values[0] | .masked and .value == null'
check "... and cannot change them: 403" test "$(call "$K" PUT "/visits/$ID/forms/jidouteate/address" '{"value":"x"}')" = 403
curl -sk -o "$T/masked.pdf" -b "$K" "$B/visits/$ID/bundle.pdf"
check "... the address appears nowhere in kosodate-1's bundle" bash -c "pdftotext '$T/masked.pdf' - | tr -d ' 　' | grep -q 山田 && ! pdftotext '$T/masked.pdf' - | tr -d ' 　' | grep -q 毛利町"
call "$A" GET "/visits/$ID/forms/jidouteate" >/dev/null
check "shimin-1 (the support counter) still sees it" json_ok "$(cat "$T/body")" --arg a "$addr" '.fields[] | select(.id == "address") | .values[0].value == $a'

# --- kill and restart: nothing typed is lost --------------------------------
before=$(call "$A" GET "/visits/$ID/forms/jidouteate" >/dev/null; jq -c '[.fields[] | .values[] | .value]' "$T/body")
stop_daemon KILL 2>/dev/null
start_daemon "$conf" "$T/forms/run" || { summary; exit 1; }
B="https://127.0.0.1:$PORT/api/v1"
login "$A" tanaka shimin-1 >/dev/null
call "$A" GET "/visits/$ID/forms/jidouteate" >/dev/null
check "after SIGKILL and a restart every value is there" test "$(jq -c '[.fields[] | .values[] | .value]' "$T/body")" = "$before"

summary
