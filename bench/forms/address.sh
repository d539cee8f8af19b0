#!/usr/bin/env bash
# Address dictionary benchmark (issue 5: I1), on demand (not in ctest).
#
#   Targets: postal code lookup p99 under 1 ms, free-text search p99 under
#   10 ms, over the national data (the build's data/utf_ken_all.csv,
#   124,495 addresses from jquery-jpostal-ja).
#
# Through the C API (bench/forms/addrbench.c: mg_addr_by_postal and
# mg_addr_search, answers written as JSON as the API does), each figure
# printed beside a peer measured in the same run on the same machine, with
# the ratio peer/ours:
#   - postal codes: Python's sqlite3 module, the same SELECT on the same
#     dictionary file (what the lookup costs anyway);
#   - free text: a substring scan of the addresses held in memory in
#     Python (the obvious way without an index; it stops at the limit and
#     does not rank);
#   - the import itself: the sqlite3 CLI's `.import` of the same CSV into
#     one plain table (no checks, no normalisation, no index).
# Queries (bench/forms/addrpeer.py gen, seeded): 1,000 sampled postal codes
# typed three ways and 50 unknown ones; for 200 sampled addresses city+town
# in kanji, the town, city+town in hiragana, and the first one and two kana
# of the town (search as you type); ten broad texts (北海道, と, ちょう...).
# One warm-up round, then --rounds rounds.  Targets are reported as met or
# not; that never fails the run.  Exit non-zero only when the benchmark
# itself failed.
#
#   bench/forms/address.sh [--rounds 5] [--build build]
#
# About a minute with the defaults (the peer's scan is the slow part).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=5
build=build
usage="usage: $0 [--rounds N] [--build DIR]"
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
  case $1 in
    --rounds) rounds=$2 ;;
    --build) build=$2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift 2
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "$usage (a positive integer)" >&2; exit 2; }
scripts/install-deps
[ -f "$build/CMakeCache.txt" ] || scripts/build "$build"
cmake --build "$build" --target addrbench mg_address_data >/dev/null
csv="$build/data/utf_ken_all.csv"
bin="$build/bin"

T=$(mktemp -d /tmp/mg-bench-address.XXXXXX)
trap 'rm -rf "$T"' EXIT

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# --- import ---------------------------------------------------------------
imp=$("$bin/addrbench" import "$csv" "$T/address.db")
rows=$(sed -nE 's/^import rows=([0-9]+) .*/\1/p' <<<"$imp")
imp_ms=$(sed -nE 's/.* ms=([0-9.]+)$/\1/p' <<<"$imp")
sqlite3 "$T/peer.db" "CREATE TABLE raw($(seq -s, -f 'c%g' 1 15))"
t0=$(date +%s%N)
sqlite3 "$T/peer.db" ".import --csv $csv raw"
peer_imp_ms=$(ms_since "$t0")
peer_rows=$(sqlite3 "$T/peer.db" "SELECT count(*) FROM raw")
[ "$peer_rows" -ge "$rows" ] || { echo "the peer imported $peer_rows rows, we $rows" >&2; exit 1; }

# --- queries --------------------------------------------------------------
python3 bench/forms/addrpeer.py gen "$csv" "$T/queries"
ours=$("$bin/addrbench" query "$T/address.db" "$T/queries" "$rounds")
peer=$(python3 bench/forms/addrpeer.py peer "$csv" "$T/address.db" "$T/queries" "$rounds")

get() { # OUTPUT KIND FIELD
  sed -nE "s/^$2 .*$3=([0-9.]+).*/\\1/p" <<<"$1"
}
for k in postal search; do
  for f in n p50_ms p99_ms rows; do
    for who in ours peer; do
      v=$(get "${!who}" $k $f)
      [ -n "$v" ] || { echo "no $k $f from $who: ${!who}" >&2; exit 1; }
      printf -v "${who}_${k}_${f}" '%s' "$v"
    done
  done
  # both must have answered something (a broken side would look fast)
  v_ours="ours_${k}_rows"; v_peer="peer_${k}_rows"
  [ "${!v_ours}" -gt 0 ] && [ "${!v_peer}" -gt 0 ] ||
    { echo "$k: an empty answer set (ours ${!v_ours}, peer ${!v_peer})" >&2; exit 1; }
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf (b > 0 ? "%.1fx" : "-"), a / b }'; }
met() { awk -v v="$1" -v t="$2" 'BEGIN { print (v < t ? "met" : "NOT met") }'; }

echo "Address dictionary (I1): $rows addresses from $csv"
echo "$(nproc) cores; $rounds rounds after one warm-up; $ours_postal_n postal lookups, $ours_search_n searches timed"
printf '%-18s %10s %10s   %10s %10s   %s\n' "" "ours p50" "ours p99" "peer p50" "peer p99" "p99 ratio peer/ours"
printf '%-18s %7.3f ms %7.3f ms   %7.3f ms %7.3f ms   %s   (peer: Python sqlite3, the same SELECT on the same file)\n' \
  "postal lookup" "$ours_postal_p50_ms" "$ours_postal_p99_ms" "$peer_postal_p50_ms" "$peer_postal_p99_ms" \
  "$(ratio "$peer_postal_p99_ms" "$ours_postal_p99_ms")"
printf '%-18s %7.3f ms %7.3f ms   %7.3f ms %7.3f ms   %s   (peer: Python substring scan of the addresses in memory)\n' \
  "free-text search" "$ours_search_p50_ms" "$ours_search_p99_ms" "$peer_search_p50_ms" "$peer_search_p99_ms" \
  "$(ratio "$peer_search_p99_ms" "$ours_search_p99_ms")"
printf '%-18s %10s ms %23s ms   %s   (peer: sqlite3 CLI .import into one plain table)\n' \
  "import" "$imp_ms" "$peer_imp_ms" "$(ratio "$peer_imp_ms" "$imp_ms")"
echo "answers: ours $ours_postal_rows / $ours_search_rows addresses, peer $peer_postal_rows / $peer_search_rows (postal / search)"
echo "dictionary file: $(du -h "$T/address.db" | cut -f1)"
echo "targets: postal p99 < 1 ms: $(met "$ours_postal_p99_ms" 1); search p99 < 10 ms: $(met "$ours_search_p99_ms" 10)"
