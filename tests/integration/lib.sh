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
  # a private pcscd and card emulator (pcscd-env.sh) end with the test
  [ -n "${PCSCD_DIR:-}" ] && pcscd_stop "$PCSCD_DIR"
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

# need_tools TOOL...: the test is skipped (77) when one is not installed.
need_tools() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "skip: $tool is missing (scripts/install-deps installs it)"
      exit 77
    fi
  done
}

# start_or_skip WHAT CMD...: runs CMD in this shell (pcscd_start, pg_start:
# they export what they start); its 77 skips the test, another failure
# ends it with "WHAT did not start".
start_or_skip() {
  local what=$1 rc
  shift
  "$@"
  rc=$?
  [ $rc -eq 0 ] && return 0
  [ $rc -eq 77 ] && exit 77
  echo "$what did not start"
  exit 1
}

# demo_pack: the demo pack (scripts/demo-pack) in $T/pack, made once.
demo_pack() {
  [ -d "$T/pack" ] && return 0
  bash "$MG_SRC/scripts/demo-pack" "$T/pack" >/dev/null || { echo "demo-pack failed"; exit 1; }
}

# pack_conf: the [pack] section of a daemon that takes the demo pack
# (demo_pack) on `madoctl pack pull` only.
pack_conf() {
  printf '[pack]\nurl = file://%s/pack/pack-repo\nallowed_signers = %s/pack/allowed_signers\ninterval = 0\n' "$T" "$T"
}

# counter_conf [LISTEN]: the sections of a test counter: [auth] without
# tablet registration, [http] on LISTEN (127.0.0.1:0), [pack] (pack_conf)
# and [visits] never closed at a time of day.
counter_conf() {
  printf '[auth]\nrequire_tablet = no\n[http]\nlisten = %s\n' "${1:-127.0.0.1:0}"
  pack_conf
  printf '[visits]\nclose_at =\n'
}

# seed_users FILE ID,NAME,ROLE...: an [auth] users_file (mode 0600) with
# these users, each with the password $PW.
seed_users() {
  local f=$1 hash u
  shift
  hash=$(printf '%s\n' "$PW" | "$MG_BIN/madoctl" user hash --password-stdin) || return 1
  {
    echo 'id,name,role,password_hash'
    for u in "$@"; do printf '%s,%s\n' "$u" "$hash"; done
  } > "$f"
  chmod 600 "$f"
}

# add_user ID NAME ROLE: `madoctl user add` with the password $PW.
add_user() {
  printf '%s\n' "$PW" | ctl user add "$1" --name "$2" --role "$3" --password-stdin >/dev/null
}

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

# API calls over HTTPS (cases, forms): $B is the API base URL, $PW the
# staff password of the test.
# call JAR METHOD PATH [BODY]: the status code; the body lands in $T/body.
# The CSRF token of a jar is kept in JAR.csrf.
call() {
  local jar=$1 m=$2 p=$3 body=${4:-}
  local args=(-sk -o "$T/body" -w '%{http_code}' -b "$jar" -c "$jar" -X "$m")
  [ -f "$jar.csrf" ] && args+=(-H "X-CSRF-Token: $(cat "$jar.csrf")")
  # a body-less POST sends Content-Length: 0, as browsers do
  if [ -n "$body" ] || [ "$m" = POST ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  curl "${args[@]}" "$B$p"
}
login() { # JAR USER [COUNTER]
  local body="{\"user\":\"$2\",\"password\":\"$PW\"${3:+,\"counter\":\"$3\"}}"
  rm -f "$1.csrf"
  local code; code=$(call "$1" POST /session "$body")
  [ "$code" = 200 ] && jq -r .csrf_token "$T/body" > "$1.csrf"
  echo "$code"
}

# session_cookie JAR: "mg_session=..." out of a curl cookie jar, for the
# events WebSocket, which needs a staff session (mgprobe: MGPROBE_COOKIE).
session_cookie() {
  awk -F'\t' '$6 == "mg_session" && $7 != "" {v = $7} END {if (v != "") print "mg_session=" v}' "$1"
}

# CUPS's ippeveprinter as an IPP Everywhere printer for the cups plugin
# (P1): start_ipp_printer sets PP (its port), IPP_PID and keeps what it
# receives in $T/spool; a test traps stop_ipp_printer.  Each job takes
# 0.5 s (-c), so it is seen processing.
IPP_PID=""
BUS_PID=""
stop_ipp_printer() {
  [ -n "$IPP_PID" ] && kill -CONT "$IPP_PID" 2>/dev/null
  [ -n "$IPP_PID" ] && kill "$IPP_PID" 2>/dev/null && wait "$IPP_PID" 2>/dev/null
  [ -n "$BUS_PID" ] && kill "$BUS_PID" 2>/dev/null && wait "$BUS_PID" 2>/dev/null
  IPP_PID=""
  BUS_PID=""
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ID cards (I7): pcscd_start DIR [PORT], pcscd_stop, card_insert FILE
# [--drop-after N], card_remove — a private pcscd with vpcd and our card
# emulator (tests/cardemu/pcscd-env.sh); pcscd_start returns 77 (skip)
# where it cannot run.
source "${MG_SRC:?run through ctest}/tests/cardemu/pcscd-env.sh"

start_ipp_printer() {
  if [ -z "$BUS_PID" ]; then
    # ippeveprinter registers with DNS-SD through Avahi's D-Bus client and
    # gives up without a bus; a private bus is enough (no avahi-daemon).
    dbus-daemon --session --address="unix:path=$T/bus" --nofork --nopidfile >/dev/null 2>&1 &
    BUS_PID=$!
    for _ in $(seq 1 100); do [ -S "$T/bus" ] && break; sleep 0.05; done
    # without -c ippeveprinter sleeps 5-15 s per job
    printf '#!/bin/sh\nsleep 0.5\nexit 0\n' > "$T/print-cmd"
    chmod +x "$T/print-cmd"
    mkdir -p "$T/spool"
    PP=$(free_port)
  fi
  DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/bus" ippeveprinter -n localhost -p "$PP" \
    -d "$T/spool" -k -f application/pdf -r off -c "$T/print-cmd" 'Test Printer' \
    >>"$T/ippeveprinter.log" 2>&1 &
  IPP_PID=$!
  for _ in $(seq 1 100); do
    ipptool -q "ipp://localhost:$PP/ipp/print" get-printer-attributes.test 2>/dev/null && return 0
    kill -0 "$IPP_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "ippeveprinter did not start; its log:"
  cat "$T/ippeveprinter.log"
  return 1
}
