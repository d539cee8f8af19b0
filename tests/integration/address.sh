# The national address dictionary (issue 5: I1, F3): `madoctl address
# import` of the converted national data (MG_ADDRESS_CSV, the build's
# data/utf_ken_all.csv from jquery-jpostal-ja), postal code lookups with the
# demo pack's district, searches by kana and by kanji over HTTPS, bad input
# refused with the rule, a malformed file that leaves the dictionary
# answering, and no query in the log.  Nobody appears in the data.
. "$(dirname "$0")/lib.sh"
: "${MG_ADDRESS_CSV:?run through ctest: the data/utf_ken_all.csv of the build}"

lines=$(wc -l < "$MG_ADDRESS_CSV")
check "the converted national data has 120,000+ addresses ($lines)" test "$lines" -ge 120000

demo_pack
PW='Counter-2026-pw'
seed_users "$T/users.csv" tanaka,田中,staff
conf=$(write_config addr <<CONF
[auth]
users_file = $T/users.csv
require_tablet = no
[http]
listen = 127.0.0.1:0
$(pack_conf)
[address]
file = $T/addr/state/dictionary.db
CONF
)
start_daemon "$conf" "$T/addr/run" || { summary; exit 1; }
B="https://127.0.0.1:$PORT/api/v1"
check "the demo pack is pulled (districts.csv)" ctl pack pull
J="$T/jar"; touch "$J"
check "staff log in" test "$(login "$J" tanaka shimin-1)" = 200

# --- before any import ------------------------------------------------------
check "status: no dictionary yet" json_ok "$(ctl status --json)" '.address.rows == 0 and .address.imported_at == null and (.address.file | endswith("/dictionary.db"))'
check "the API answers 503 no_address_dictionary" test "$(call "$J" GET /address/postal/7450004)" = 503
check "... with a Japanese and an English hint" json_ok "$(cat "$T/body")" '.error.code == "no_address_dictionary" and (.error.message | contains("住所辞書")) and (.error.message | contains("madoctl address import"))'
out=$(ctl address lookup 7450004 2>&1); st=$?
check "madoctl address lookup says there is none" fails_with $st "$out" "no address dictionary"

# --- the national import --------------------------------------------------------
out=$(ctl address import "$MG_ADDRESS_CSV"); st=$?
echo "# $out"
check "madoctl address import succeeds" test $st -eq 0
rows=$(sed -nE 's/^imported ([0-9]+) addresses in [0-9.]+ s$/\1/p' <<<"$out")
check "... and prints the rows ($rows) and the time" test -n "$rows"
check "... 120,000+ addresses, one a line of the file" test "${rows:-0}" -ge 120000 -a "${rows:-0}" -eq "$lines"
check "status counts them" json_ok "$(ctl status --json)" --argjson n "${rows:-0}" '.address.rows == $n and (.address.imported_at | test("^[0-9-]+T[0-9:]+Z$")) and .address.importing == false'
check "the file is at [address] file, and no .tmp is left" bash -c "[ -s '$T/addr/state/dictionary.db' ] && [ ! -e '$T/addr/state/dictionary.db.tmp' ]"

out=$(ctl address lookup 745-0004)
check "madoctl address lookup 745-0004: 山口県周南市毛利町, district 中央" grep -q '^7450004  山口県周南市毛利町  ヤマグチケン シュウナンシ .*district: 中央$' <<<"$out"

# --- postal codes over HTTPS ------------------------------------------------------
check "GET /address/postal/7450004: 200" test "$(call "$J" GET /address/postal/7450004)" = 200
check "... 山口県 周南市 毛利町 with kana and the pack's district" json_ok "$(cat "$T/body")" '.postal_code == "7450004" and (.addresses | length) == 1 and .addresses[0].pref == "山口県" and .addresses[0].city == "周南市" and .addresses[0].town == "毛利町" and .addresses[0].city_kana == "シュウナンシ" and .addresses[0].district == "中央" and .district == "中央"'
check "full-width ７４５－０００４ is the same code" test "$(call "$J" GET "/address/postal/%EF%BC%97%EF%BC%94%EF%BC%95%EF%BC%8D%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%94")" = 200
check "... 毛利町" json_ok "$(cat "$T/body")" '.postal_code == "7450004" and .addresses[0].town == "毛利町"'
check "4980000 spans two prefectures, outside the city: no district" test "$(call "$J" GET /address/postal/4980000)" = 200
check "... 愛知県 and 三重県, district null" json_ok "$(cat "$T/body")" '([.addresses[].pref] | sort) == ["三重県", "愛知県"] and .district == null and ([.addresses[] | has("district")] | any | not)'
check "the city's own code 7450000 (no town): the \"\" town rows of districts.csv decide" test "$(call "$J" GET /address/postal/7450000)" = 200
check "... town empty, district null (the demo pack has no \"\" row for it)" json_ok "$(cat "$T/body")" '.addresses[0].town == "" and .addresses[0].city == "周南市" and .district == null'
check "an unknown code: 200 with no address" test "$(call "$J" GET /address/postal/0000000)" = 200
check "... an empty list" json_ok "$(cat "$T/body")" '.addresses == [] and .district == null'
check "a malformed code: 400" test "$(call "$J" GET /address/postal/74500)" = 400
check "... naming the rule" json_ok "$(cat "$T/body")" '.error.code == "bad_request" and (.error.message | contains("7 digits"))'
check "without a session: 401" test "$(curl -sk -o /dev/null -w '%{http_code}' "$B/address/postal/7450004")" = 401

# --- free text --------------------------------------------------------------
search() { # JAR Q [LIMIT]
  curl -sk -o "$T/body" -w '%{http_code}' -b "$1" -G --data-urlencode "q=$2" ${3:+--data-urlencode "limit=$3"} "$B/address/search"
}
# finds Q FILTER [LIMIT] [STATUS]: the search answers STATUS (200) and
# FILTER holds on its body
finds() {
  [ "$(search "$J" "$1" "${3:-}")" = "${4:-200}" ] && jq -e "$2" "$T/body" >/dev/null
}
check "search by kana しゅうなんしもうり: 200" test "$(search "$J" しゅうなんしもうり)" = 200
check "... 周南市毛利町 first, with its district" json_ok "$(cat "$T/body")" '.addresses[0].postal_code == "7450004" and .addresses[0].district == "中央"'
check "search by kanji 周南市毛利: 周南市毛利町 first" finds 周南市毛利 '.addresses[0].postal_code == "7450004"'
check "search by half-width kana ﾓｳﾘﾁｮｳ with limit 5: 毛利町s only, at most 5" finds 'ﾓｳﾘﾁｮｳ' '(.addresses | length) >= 2 and (.addresses | length) <= 5 and all(.addresses[]; .town == "毛利町")' 5
check "search 札幌市中央区 (kanji): the ward as a whole first" finds 札幌市中央区 '.addresses[0].city == "札幌市中央区" and .addresses[0].town == "" and (.addresses | length) == 3' 3
check "search with spaces: しゅうなん　し もうり" finds 'しゅうなん　し もうり' '.addresses[0].town == "毛利町"'
check "an empty q: 400" test "$(search "$J" ' ')" = 400
check "... naming q" json_ok "$(cat "$T/body")" '.error.code == "bad_request" and (.error.message | startswith("q:"))'
check "no q at all: 400" test "$(curl -sk -o "$T/body" -w '%{http_code}' -b "$J" "$B/address/search")" = 400
check "limit 0: 400 naming limit" finds 毛利 '.error.message | startswith("limit")' 0 400

# --- a malformed file changes nothing ------------------------------------------
head -n 1000 "$MG_ADDRESS_CSV" > "$T/bad.csv"
printf '00000,"745  ","74500","ヤマグチケン","シュウナンシ","","山口県","周南市","",0,0,0,0,0,0\n' >> "$T/bad.csv"
out=$(ctl address import "$T/bad.csv" 2>&1); st=$?
check "a malformed file is refused in one line naming FILE:LINE and the rule" fails_with $st "$out" "$T/bad.csv:1001: column 3 (郵便番号) is not 7 digits"
check "... the previous dictionary still answers" finds しゅうなんしもうり '.addresses[0].postal_code == "7450004"'
check "... with every row" json_ok "$(ctl status --json)" --argjson n "${rows:-0}" '.address.rows == $n'
out=$(ctl address import "$T/missing.csv" 2>&1); st=$?
check "a missing file: one line naming it" fails_with $st "$out" "missing.csv"

# --- privacy and restart ----------------------------------------------------------
check "no query reaches the log" bash -c "! grep -E '毛利|もうり|ﾓｳﾘ|7450004|札幌市中央区' '$LOG'"
check "the daemon stops cleanly" stop_daemon
start_daemon "$conf" "$T/addr/run" || { summary; exit 1; }
check "after a restart the dictionary is opened again" json_ok "$(ctl status --json)" --argjson n "${rows:-0}" '.address.rows == $n'
check "stops cleanly again" stop_daemon
summary
