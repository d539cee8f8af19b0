# The box killed at random moments (issue 8: N3, N4, X3): 200 submissions
# from two tablets while madoguchid is killed with SIGKILL at least 50
# times (restarted each time) and its sync client uploads to
# madoguchi-tenantd on a real PostgreSQL.  At the end every application
# acknowledged to a tablet (HTTP 200 with its id) is in the tenant exactly
# once, and nothing else is there: only applications whose submission
# committed on the box (acknowledged, or committed with the answer lost to
# a kill) and none twice.  Everyone here is fictional.
#
#   MG_CHAOS_N (200) submissions, MG_CHAOS_KILLS (50) kills at least.
. "$(dirname "$0")/sync-lib.sh"

N=${MG_CHAOS_N:-200}
KILLS=${MG_CHAOS_KILLS:-50}
sync_setup
box_conf b "$CITY_A" shunan-1f "$TURL" <<CONF
batch = 20
CONF
box_start b || { summary; exit 1; }
box_setup b || { echo "pack pull or user add failed"; summary; exit 1; }
box_enroll b || { echo "enrolment failed:"; cat "$T/enroll.out"; summary; exit 1; }

# The tablets: 2 workers, paced so that the submissions span the kills
# (a kill cycle is ~0.3 s of life + the restart); every request that meets
# a dead daemon is sent again.
t0=$(date +%s)
box_submit b shimin-2 "$N" "$T/chaos.out" --workers 2 --retry --rate 4 >"$T/submit.json" 2>"$T/submit.err" &
SUB=$!
kills=0
while kill -0 "$SUB" 2>/dev/null || [ "$kills" -lt "$KILLS" ]; do
  # a random moment: 0-600 ms into the daemon's life
  sleep "0.$(printf '%03d' $((RANDOM % 600)))"
  kill -KILL "${BOX_PID[b]}" 2>/dev/null
  wait "${BOX_PID[b]}" 2>/dev/null
  kills=$((kills + 1))
  box_start b >/dev/null || { echo "the box did not come back after kill $kills:"; tail -n 30 "$T/b.log"; break; }
  [ $(($(date +%s) - t0)) -gt 240 ] && { echo "# giving up killing after 240 s"; break; }
done
wait "$SUB"
rc=$?
check "the tablets finished their $N submissions" test $rc -eq 0 || cat "$T/submit.err"
acked=$(awk '$1 == "acked"' "$T/chaos.out" | wc -l)
unacked=$(awk '$1 == "unacked"' "$T/chaos.out" | wc -l)
check "at least $KILLS kills during them ($kills)" test "$kills" -ge "$KILLS"
check "every submission ended acknowledged or known committed ($acked + $unacked = $N)" test $((acked + unacked)) = "$N"
check "the box drains after the last restart" sync_drained b 60
rows=$(tenant_count "$CITY_A")
distinct=$(admin_sql "SELECT count(DISTINCT id) FROM city_$CITY_A.applications")
awk '$1 == "acked" || $1 == "unacked" {print $2}' "$T/chaos.out" | sort -u > "$T/committed.ids"
acked_ids "$T/chaos.out" > "$T/acked.ids"
tenant_ids "$CITY_A" > "$T/tenant.ids"
# missing FROM IN: ids of FROM not in IN (comm's own failure fails the check)
missing() { local m; m=$(comm -23 "$1" "$2") || return 1; [ -z "$m" ] || { echo "# missing: $m" | head -n 5; return 1; }; }
check "every acknowledged application ($acked) is in the tenant" missing "$T/acked.ids" "$T/tenant.ids"
check "... exactly once (rows $rows = distinct ids $distinct)" test "$rows" = "$distinct" -a "$rows" -gt 0
check "nothing in the tenant that did not commit on the box" missing "$T/tenant.ids" "$T/committed.ids"
check "the tenant holds every committed application ($(wc -l <"$T/committed.ids"))" test "$rows" = "$(wc -l <"$T/committed.ids")"
check "the box's own count agrees: nothing pending, nothing rejected" json_ok "$(sync_status b)" '(.queue_depth == 0) and (.rejected == 0)'
echo "# kills: $kills; submissions acked to the tablet: $acked; committed with the answer lost: $unacked;" \
  "requests retried: $(jq -r .retries "$T/submit.json" 2>/dev/null);" \
  "duplicates answered by the tenant: $(grep -o '[0-9]* duplicate' "$TENANT_LOG" | awk '{s += $1} END {print s + 0}'); rows in the tenant: $rows ($distinct distinct);" \
  "$(($(date +%s) - t0)) s"
check "the box stops cleanly" box_stop b
summary
