# Shared helpers of the integration tests: a temp dir, a daemon started from
# a temp config, checks that count, and a summary line.
set -uo pipefail

: "${MG_BIN:?run through ctest}"
T=$(mktemp -d /tmp/mg-it.XXXXXX)
PASS=0
FAIL=0
DAEMON_PID=""

cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null
  fi
  rm -rf "$T"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }

# check "description" command...: passes when the command exits 0
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# A minimal config in $T/NAME.conf; extra lines from stdin are appended.
write_config() {
  local name=$1
  mkdir -p "$T/$name/state" "$T/$name/run"
  {
    printf '[daemon]\nstate_dir = %s/state\nruntime_dir = %s/run\n' "$T/$name" "$T/$name"
    cat
  } > "$T/$name.conf"
  echo "$T/$name.conf"
}

ctl() { "$MG_BIN/madoctl" --socket "$SOCK" "$@"; }

# start_daemon CONF RUNDIR: starts madoguchid, waits until it answers.
start_daemon() {
  local conf=$1
  SOCK="$2/ctl.sock"
  LOG="$T/daemon.$$.$RANDOM.log"
  "$MG_BIN/madoguchid" --config "$conf" >"$LOG" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 200); do
    if ctl status --json >/dev/null 2>&1; then
      PORT=$(ctl status --json | jq -r .http.port)
      return 0
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "daemon did not start; its log:"
  cat "$LOG"
  return 1
}

# stop_daemon [SIGNAL]: returns the daemon's exit status.
stop_daemon() {
  local sig=${1:-TERM} st=0
  kill -"$sig" "$DAEMON_PID"
  wait "$DAEMON_PID" || st=$?
  DAEMON_PID=""
  if [ $st -ne 0 ]; then
    echo "daemon exit status $st; the end of its log:"
    tail -n 40 "$LOG"
  fi
  return $st
}

# fails_with STATUS OUTPUT PATTERN: a failure told in one line naming PATTERN
fails_with() {
  [ "$1" -ne 0 ] && [ "$(printf '%s\n' "$2" | wc -l)" -eq 1 ] && grep -q -- "$3" <<<"$2"
}

# json_ok JSON [jq args] FILTER: JSON is not empty and FILTER holds on it
# (jq -e alone exits 0 on empty input, so a command that printed nothing
# would pass).
json_ok() {
  local json=$1
  shift
  [ -n "$json" ] && jq -e "$@" <<<"$json" >/dev/null
}

summary() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
