# The counter tablet web app end to end in headless Chromium (issue 7; W1,
# G1-G5, A1-A3, I1-I8, S1, C1, C2, P1, P2): a daemon with the demo pack and
# the repository's web/, the card emulator behind a private pcscd + vpcd at
# shimin-1, CUPS's ippeveprinter as the printer of shimin-1 and kosodate-1,
# two staff; tests/e2e/journey.mjs drives Debian's chromium through
# playwright-core (npm, pinned by tests/e2e/package-lock.json, installed
# into the build tree).  Screenshots go to $MG_E2E_ARTIFACTS (default
# <build>/e2e-artifacts).  Everyone here is fictional.
. "$(dirname "$0")/lib.sh"
export LSAN_OPTIONS="suppressions=$MG_SRC/tests/lsan-fonts.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
CARDS="$MG_SRC/tests/fixtures/cards"
BUILD=$(cd "$MG_BIN/.." && pwd)
CHROMIUM=${MG_E2E_CHROMIUM:-/usr/bin/chromium}

need_tools node npm "$CHROMIUM" zbarimg pdftoppm pdfinfo ippeveprinter ipptool dbus-daemon python3

if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "skip: playwright-core $(jq -r '.packages["node_modules/playwright-core"].version' "$MG_SRC/tests/e2e/package-lock.json") needs node 20 or later (this is $(node --version))"
  exit 77
fi

# playwright-core into the build tree, once per lockfile (npm ci checks the
# lockfile's integrity hashes).
NODE_DIR="$BUILD/e2e-node"
if ! cmp -s "$MG_SRC/tests/e2e/package-lock.json" "$NODE_DIR/package-lock.json" ||
   [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ]; then
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$MG_SRC/tests/e2e/package.json" "$MG_SRC/tests/e2e/package-lock.json" "$NODE_DIR/"
  echo "installing playwright-core into $NODE_DIR (npm ci)"
  if ! (cd "$NODE_DIR" && timeout 240 npm ci --no-audit --no-fund --ignore-scripts >"$NODE_DIR/npm.log" 2>&1); then
    echo "npm ci failed (is the npm registry reachable?); its log:"
    cat "$NODE_DIR/npm.log"
    rm -f "$NODE_DIR/package-lock.json"
    exit 1
  fi
fi

start_or_skip pcscd pcscd_start "$T/pcsc"
trap 'stop_ipp_printer; pcscd_stop; cleanup' EXIT
start_ipp_printer || { summary; exit 1; }

demo_pack
PW='Counter-2026-pw'
conf=$(write_config e2e <<CONF
plugin_dir = $MG_PLUGINS
web_dir = $MG_SRC/web
$(counter_conf)
[address]
file = $T/address.db
[reader "r1"]
plugin = pcsc
name = Virtual PCD 00 00
counter = shimin-1
[printer "counter-printer"]
plugin = cups
counters = shimin-1, kosodate-1
uri = ipp://localhost:$PP/ipp/print
timeout = 5s
job_timeout = 60s
poll = 200ms
CONF
)
start_daemon "$conf" "$T/e2e/run" || { summary; exit 1; }
# the national address dictionary (postal code -> address, I1)
check "the address dictionary is imported" ctl address import "${MG_ADDRESS_CSV:?}"
B="https://127.0.0.1:$PORT/api/v1"
check "the demo pack is pulled" ctl pack pull
add_user tanaka 田中 staff
add_user sato 佐藤 staff
card_insert "$CARDS/mynumber.card" || { summary; exit 1; }

ART=${MG_E2E_ARTIFACTS:-$BUILD/e2e-artifacts}
rm -rf "$ART"
mkdir -p "$ART"
echo "screenshots and downloads: $ART"
# the whole journey is bounded: a step that hangs fails with its name
MG_E2E_URL="https://127.0.0.1:$PORT/" MG_E2E_PASSWORD="$PW" \
MG_E2E_USER1=tanaka MG_E2E_COUNTER1=shimin-1 MG_E2E_USER2=sato MG_E2E_COUNTER2=kosodate-1 \
MG_E2E_SPOOL="$T/spool" MG_E2E_ARTIFACTS="$ART" MG_E2E_CHROMIUM="$CHROMIUM" \
MG_E2E_NODE_MODULES="$NODE_DIR/node_modules" MG_E2E_TMP="$T" \
  timeout 420 node "$MG_SRC/tests/e2e/journey.mjs"
st=$?
[ $st -eq 124 ] && echo "the journey did not finish within 420 s"
check "the journey in headless Chromium (tests/e2e/journey.mjs)" test $st = 0
check "screenshots were saved" bash -c "ls '$ART'/*.png >/dev/null 2>&1"

check "the daemon stops cleanly" stop_daemon TERM
check "no name, address or PIN in the daemon's log" \
  sh -c "! grep -E -q '架空|花子|岐山通|\"pin\"' '$LOG'"
summary
