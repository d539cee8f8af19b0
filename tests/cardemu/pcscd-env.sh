# pcscd-env.sh — a private pcscd with vsmartcard's vpcd reader and our card
# emulator (cardemu) for the ID-card tests (I7).  Sourced by bash tests
# (tests/integration/lib.sh sources it) or run as
#   bash pcscd-env.sh FUNCTION ARGS...
# by the C tests, which keep the state in the environment (PCSCD_DIR,
# PCSCD_PORT) and in files under PCSCD_DIR.
#
#   pcscd_start DIR [PORT]  start pcscd with its socket in DIR/run; vpcd
#                           listens on PORT (slot 0, reader "Virtual PCD
#                           00 00") and PORT+1 (slot 1).  Without PORT a
#                           free pair is picked.  Exports PCSCD_DIR,
#                           PCSCD_PORT and PCSCLITE_CSOCK_NAME (libpcsclite
#                           clients follow it).  Returns 77 (the skip code
#                           of ctest) when no private pcscd can run here.
#   pcscd_stop              stop it (and the card).
#   card_insert FILE [--drop-after N] [--count-file F]
#                           start cardemu with card FILE and wait until
#                           pcscd has powered it and reports it present.
#   card_remove             stop cardemu (SIGTERM: the card is pulled) and
#                           wait until pcscd reports the reader empty.
# Details: tests/cardemu/README.md.
#
# Why a mount namespace: Debian's pcscd puts its socket in /run/pcscd,
# compiled in (it ignores PCSCLITE_CSOCK_NAME on the server side), so each
# test's pcscd gets its own /run/pcscd bound over DIR/run with unshare -m.
# That needs root; elsewhere the tests are skipped.

PCSCD_VPCD_LIB=${PCSCD_VPCD_LIB:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
PCSCD_READER="Virtual PCD 00 00"

# The cardemu binary: $MG_BIN (integration tests) or $CARDEMU.
pcscd__cardemu() {
  if [ -n "${CARDEMU:-}" ]; then echo "$CARDEMU"; else echo "${MG_BIN:?}/cardemu"; fi
}

# Two free consecutive TCP ports (vpcd opens PORT and PORT+1).
pcscd__free_ports() {
  python3 - <<'EOF'
import socket
for _ in range(200):
    a = socket.socket(); a.bind(("0.0.0.0", 0)); p = a.getsockname()[1]
    if p >= 65535:
        a.close(); continue
    b = socket.socket()
    try:
        b.bind(("0.0.0.0", p + 1))
    except OSError:
        a.close(); b.close(); continue
    a.close(); b.close(); print(p); break
EOF
}

pcscd_start() {
  local dir=${1:?pcscd_start DIR [PORT]} port=${2:-}
  if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
    echo "pcscd-env: skipped: a private pcscd needs root and unshare -m (a mount namespace for /run/pcscd)" >&2
    return 77
  fi
  if ! command -v pcscd >/dev/null || [ ! -e "$PCSCD_VPCD_LIB" ]; then
    echo "pcscd-env: skipped: pcscd or vsmartcard-vpcd ($PCSCD_VPCD_LIB) is not installed (scripts/install-deps)" >&2
    return 77
  fi
  [ -n "$port" ] || port=$(pcscd__free_ports)
  mkdir -p "$dir/run" || return 1
  # the mount point; an empty directory, as Debian's pcscd makes it
  [ -d /run/pcscd ] || mkdir -p /run/pcscd || return 1
  cat >"$dir/reader.conf" <<EOF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:$port
LIBPATH      $PCSCD_VPCD_LIB
CHANNELID    $port
EOF
  rm -f "$dir/run/pcscd.comm" "$dir/run/pcscd.pid"
  # unshare execs sh, which execs pcscd: $! is pcscd's pid
  # PCSCD_DEBUG=1: pcscd's debug log in DIR/pcscd.log (never -a: APDUs
  # would carry the fictional cards' contents into it).
  # -x: pcscd ends by itself 60 s after its last client (a test killed
  # before pcscd_stop leaves nothing running for long)
  unshare -m --propagation private sh -c \
    'mount --bind "$1/run" /run/pcscd && exec pcscd -f -x $2 -c "$1/reader.conf"' \
    sh "$dir" "${PCSCD_DEBUG:+-d}" >>"$dir/pcscd.log" 2>&1 &
  echo $! >"$dir/pcscd.pid"
  echo "$port" >"$dir/port"
  export PCSCD_DIR=$dir PCSCD_PORT=$port PCSCLITE_CSOCK_NAME=$dir/run/pcscd.comm
  local i
  for i in $(seq 1 200); do
    [ -S "$dir/run/pcscd.comm" ] && return 0
    pcscd__alive "$(cat "$dir/pcscd.pid")" || break
    sleep 0.05
  done
  echo "pcscd-env: pcscd did not start; its log:" >&2
  cat "$dir/pcscd.log" >&2
  return 1
}

# pcscd__alive PID: running, and not a zombie (a process started by a
# shell that has exited is reaped by whoever adopted it, maybe late).
pcscd__alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pcscd__kill PIDFILE: SIGTERM, then SIGKILL after 5 s.
pcscd__kill() {
  local f=$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  rm -f "$f"
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 250); do
    pcscd__alive "$pid" || return 0
    sleep 0.02
  done
  kill -KILL "$pid" 2>/dev/null
  return 0
}

pcscd_stop() {
  local dir=${1:-${PCSCD_DIR:-}}
  [ -n "$dir" ] || return 0
  card_remove "$dir"
  pcscd__kill "$dir/pcscd.pid"
  return 0
}

card_insert() {
  local file=${1:?card_insert FILE [--drop-after N] [--count-file F]}
  shift
  local dir=${PCSCD_DIR:?pcscd_start first} i
  # a card pcscd still sees would hide this one (no power-on): say so
  card_remove "$dir" || echo "pcscd-env: pcscd still reports the last card present" >&2
  rm -f "$dir/card.ready"
  "$(pcscd__cardemu)" --port "${PCSCD_PORT:-$(cat "$dir/port")}" --ready-file "$dir/card.ready" \
    "$@" "$file" >"$dir/cardemu.log" 2>&1 &
  echo $! >"$dir/cardemu.pid"
  for i in $(seq 1 200); do
    [ -e "$dir/card.ready" ] && { pcscd__wait "$dir" present; return; }
    pcscd__alive "$(cat "$dir/cardemu.pid")" || break
    sleep 0.05
  done
  echo "pcscd-env: the card was not powered by pcscd; cardemu's log:" >&2
  cat "$dir/cardemu.log" >&2
  pcscd__alive "$(cat "$dir/pcscd.pid" 2>/dev/null)" || echo "pcscd-env: pcscd is not running" >&2
  echo "pcscd-env: pcscd's log (tail; PCSCD_DEBUG=1 for its debug log):" >&2
  tail -n 40 "$dir/pcscd.log" >&2
  return 1
}

# pcscd__wait DIR absent|present: until pcscd sees the reader so (5 s).
pcscd__wait() {
  [ -S "$1/run/pcscd.comm" ] || return 0
  PCSCLITE_CSOCK_NAME="$1/run/pcscd.comm" "$(pcscd__cardemu)" --wait "$2" \
    --reader "$PCSCD_READER" --timeout-ms 15000
}

card_remove() {
  local dir=${1:-${PCSCD_DIR:-}}
  [ -n "$dir" ] || return 0
  [ -f "$dir/cardemu.pid" ] || return 0
  pcscd__kill "$dir/cardemu.pid"
  # pcscd polls vpcd every 400 ms, and vpcd takes a new connection for the
  # card it had when it comes before that poll: a card inserted before
  # pcscd has seen this one go would look like the same card still there
  # (no insertion event, no power-on).  So wait until pcscd says empty.
  pcscd__wait "$dir" absent
}

# Run as a script: the function named by the first argument.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
  pcscd_start | pcscd_stop | card_insert | card_remove) "$@" ;;
  *)
    echo "usage: bash pcscd-env.sh pcscd_start|pcscd_stop|card_insert|card_remove ARGS" >&2
    exit 2
    ;;
  esac
fi
