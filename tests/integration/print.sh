# Printing through the cups plugin to CUPS's ippeveprinter, no cupsd (P1):
# a case's slip printed from the API, a test page from madoctl, both
# checked as PDFs the printer received (pdfinfo, pdftotext); print.job
# events on the WebSocket; a frozen printer and a dead one give a clear
# error within `timeout` and nothing hangs; no case number in the log.
# Everyone here is fictional.
. "$(dirname "$0")/lib.sh"
export LSAN_OPTIONS="suppressions=$MG_SRC/tests/lsan-fonts.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

need_tools ippeveprinter ipptool dbus-daemon pdfinfo pdftotext python3

trap 'stop_ipp_printer; cleanup' EXIT
start_ipp_printer || { summary; exit 1; }

demo_pack
PW='Counter-2026-pw'
seed_users "$T/users.csv" admin,管理者,administrator
DEAD=$(free_port) # nobody listens there
conf=$(write_config print <<CONF
plugin_dir = $MG_PLUGINS
[auth]
users_file = $T/users.csv
require_tablet = no
[http]
listen = 127.0.0.1:0
$(pack_conf)
[printer "slips"]
plugin = cups
counters = shimin-1
uri = ipp://localhost:$PP/ipp/print
timeout = 2s
job_timeout = 30s
poll = 200ms
[printer "dead"]
plugin = cups
counters = kosodate-1
uri = ipp://127.0.0.1:$DEAD/ipp/print
timeout = 2s
CONF
)
check "madoctl config check accepts the cups sections" "$MG_BIN/madoctl" config check "$conf"
printf '[printer "x"]\nplugin = cups\nuri = http://192.0.2.10/\n' > "$T/bad.conf"
printf '[daemon]\nplugin_dir = %s\n' "$MG_PLUGINS" | cat - "$T/bad.conf" > "$T/bad2.conf"
out=$("$MG_BIN/madoctl" config check "$T/bad2.conf" 2>&1); st=$?
check "a bad uri is refused, naming file:line, key and rule" fails_with $st "$out" 'bad2.conf:5: `uri` in \[printer "x"\] must start with ipp:// or ipps://'

start_daemon "$conf" "$T/print/run" || { summary; exit 1; }
B="https://127.0.0.1:$PORT/api/v1"
check "the demo pack is pulled" ctl pack pull
check "both printers run (a dead printer is no reason to fail start)" json_ok "$(ctl devices --json)" '[.[] | select(.plugin == "cups") | .state] == ["running", "running"]'
check "describe: the start-up check saw the printer idle" json_ok "$(ctl devices --json)" '.[] | select(.id == "slips") | .detail.state == "idle" and (.detail.uri | test("^ipp://localhost:"))'
check "... and the dead one unreachable" json_ok "$(ctl devices --json)" '.[] | select(.id == "dead") | .detail.state == "unreachable"'

# --- a slip from a case (P1, G4) --------------------------------------------
call() { # METHOD PATH [BODY]: the status code; the body lands in $T/body
  local args=(-sk -o "$T/body" -w '%{http_code}' -b "$T/jar" -c "$T/jar" -X "$1")
  [ -f "$T/jar.csrf" ] && args+=(-H "X-CSRF-Token: $(cat "$T/jar.csrf")")
  if [ -n "${3:-}" ] || [ "$1" = POST ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "${3:-}")
  fi
  curl "${args[@]}" "$B$2"
}
check "staff log in at shimin-1" test "$(call POST /session "{\"user\":\"admin\",\"password\":\"$PW\",\"counter\":\"shimin-1\"}")" = 200
jq -r .csrf_token "$T/body" > "$T/jar.csrf"
addr='山口県周南市岐山通1丁目1番地 架空ハイツ202'
people=$(jq -cn --arg a "$addr" '[{name:"周南 一子", kana:"シュウナン イチコ", birth_date:"1990-05-05", address:$a}]')
check "a case is created" test "$(call POST /visits "{\"life_event\":\"tennyu\",\"people\":$people}")" = 201
ID=$(jq -r .case.id "$T/body")
NUM=$(jq -r .case.number "$T/body")
disp="${NUM:0:4}-${NUM:4:4}"

ls "$T/spool" > "$T/before"
started=$(date +%s%N)
code=$(call POST "/visits/$ID/slip/print")
check "the slip prints on the IPP printer: 200" test "$code" = 200
check "... once the printer reports the job completed" json_ok "$(cat "$T/body")" '.printed == true and .result.state == "completed" and (.result.job | type == "number")'
SLIP_JOB=$(jq -r .result.job "$T/body")
new_file() { comm -13 "$T/before" <(ls "$T/spool") | grep '\.pdf$' | head -n1; }
f=$(new_file)
check "the printer received a PDF job file" test -n "$f"
check "... a valid PDF (pdfinfo)" pdfinfo "$T/spool/$f"
pdftotext "$T/spool/$f" "$T/slip.txt" 2>/dev/null
check "... holding the case's number (pdftotext)" grep -q -- "$disp" "$T/slip.txt"
check "... named after the job (job-id $SLIP_JOB)" bash -c "[[ '$f' == $SLIP_JOB-* ]]"
check "the daemon's spool file is gone after printing" bash -c "! ls '$T/print/state/spool' 2>/dev/null | grep -q ."
check "the print is audited" json_ok "$(ctl audit log --json --object "visit:$ID")" '[.entries[].action] | index("slip.print") != null'

# --- a test page from madoctl, and its events on the WebSocket -------------
ls "$T/spool" > "$T/before"
# the events socket of the shimin-1 tablet's session (U1)
out=$(MGPROBE_COOKIE=$(session_cookie "$T/jar") "$MG_BIN/mgprobe" ws "$PORT" /api/v1/events 20000 "$MG_BIN/madoctl" --socket "$SOCK" print test --printer slips)
st=$?
check "madoctl print test --printer slips" test $st = 0
check "... says the job completed" grep -q 'test page sent (job [0-9]*, completed)' <<<"$out"
ev=$(grep '^{' <<<"$out" | tail -n1)
check "a print.job event reached a WebSocket client" json_ok "$ev" '.topic == "print.job" and .device == "slips" and .counters == ["shimin-1"]'
check "... with the job, its state and the printer" json_ok "$ev" '.data.printer == "slips" and (.data.job | type == "number") and (.data.state | IN("pending", "processing", "completed"))'
f=$(new_file)
check "the test page reached the printer" test -n "$f"
check "... a valid PDF (pdfinfo)" pdfinfo "$T/spool/$f"
pdftotext "$T/spool/$f" "$T/page.txt" 2>/dev/null
check "... naming the box" grep -qF "Box: $(hostname)" "$T/page.txt"
check "... and the printer" grep -qF "Printer: slips" "$T/page.txt"
check "... and its URI" grep -qF "ipp://localhost:$PP/ipp/print" "$T/page.txt"
check "describe counts the jobs" json_ok "$(ctl devices --json)" '.[] | select(.id == "slips") | .detail.jobs_sent == 2 and .detail.jobs_failed == 0 and .detail.active == 0'

# --- printers that cannot print ---------------------------------------------
t0=$(date +%s)
out=$(ctl print test --printer dead 2>&1); st=$?
check "a dead printer: madoctl fails with the reason in one line" fails_with $st "$out" 'busy or not ready; try again: cannot reach the printer at 127.0.0.1:'
check "... quickly" test $(( $(date +%s) - t0 )) -lt 10

kill -STOP "$IPP_PID" # a printer that froze: connections are taken, never answered
t0=$(date +%s)
out=$(ctl print test --printer slips 2>&1); st=$?
check "a frozen printer: a clear error" fails_with $st "$out" 'the printer did not answer within 2 s'
check "... within the timeout, nothing hangs" test $(( $(date +%s) - t0 )) -lt 15
code=$(call POST "/visits/$ID/slip/print")
check "a slip on the frozen printer: 502 print_failed" test "$code" = 502
check "... told to try again" json_ok "$(cat "$T/body")" '.error.code == "print_failed" and (.error.message | test("try again"))'
check "describe counts the failures" json_ok "$(ctl devices --json)" '.[] | select(.id == "slips") | .detail.jobs_failed == 2 and .detail.active == 0'
kill -CONT "$IPP_PID"
check "the printer back: printing works again" bash -c "'$MG_BIN/madoctl' --socket '$SOCK' print test --printer slips | grep -q completed"

kill "$IPP_PID"; wait "$IPP_PID" 2>/dev/null; IPP_PID=""
out=$(ctl print test --printer slips 2>&1); st=$?
check "a printer switched off: a clear error" fails_with $st "$out" 'cannot reach the printer at localhost:'
check "... and describe says unreachable" json_ok "$(ctl devices --json)" '.[] | select(.id == "slips") | .detail.state == "unreachable"'

check "the daemon stops cleanly" stop_daemon TERM
check "no case number, address or spool path in the log" bash -c "! grep -q -e '$NUM' -e '$disp' -e '岐山通' -e 'spool/slip-' '$LOG'"
check "the plugin logged the jobs by number" grep -q 'plugin slips: job [0-9]* completed' "$LOG"
summary
