# Procedure packs end to end: a real git repository, keys made by
# ssh-keygen, commits signed with git -S, the daemon pulling through
# madoctl, the validator refusing a broken pack, rollback, and the event.
. "$(dirname "$0")/lib.sh"

export GIT_CONFIG_NOSYSTEM=1 HOME="$T/home"
mkdir -p "$HOME"
ssh-keygen -q -t ed25519 -N '' -C admin -f "$T/admin" 
ssh-keygen -q -t ed25519 -N '' -C other -f "$T/other"
printf 'admin@city.example namespaces="git" %s\n' "$(cut -d' ' -f1,2 "$T/admin.pub")" > "$T/allowed_signers"

repo="$T/pack-src"
git init -q -b main "$repo"
cp -r "$MG_SRC/packs/shunan/." "$repo/"
commit() { # commit KEY MESSAGE
  git -C "$repo" add -A
  git -C "$repo" -c gpg.format=ssh -c user.signingkey="$T/$1.pub" -c user.name="$1" \
    -c user.email="$1@city.example" commit -q -S --allow-empty -m "$2"
  git -C "$repo" rev-parse HEAD
}
c1=$(commit admin "first release")

conf=$(write_config pk <<CONF
[http]
listen = 127.0.0.1:0
[pack]
url = file://$repo
allowed_signers = $T/allowed_signers
interval = 0
CONF
)
start_daemon "$conf" "$T/pk/run" || { summary; exit 1; }
check "no pack before the first pull" jq -e '.state == "none"' <<<"$(ctl pack status --json)"
out=$("$MG_BIN/mgprobe" ws "$PORT" /api/v1/events 60000 "$MG_BIN/madoctl" --socket "$SOCK" pack pull)
check "pull activates the signed pack" jq -e --arg c "$c1" '.state == "active" and .commit == $c and .signer == "admin@city.example"' <<<"$(ctl pack status --json)"
check "tablets hear pack.activated" bash -c "tail -n1 <<<'$out' | jq -e --arg c '$c1' '.topic == \"pack.activated\" and .data.commit == \$c'"
check "health shows the active pack" jq -e --arg c "$c1" '.pack.state == "active" and .pack.commit == $c' <<<"$(curl -sk "https://127.0.0.1:$PORT/api/v1/health")"
check "the release is checked out" test -f "$T/pk/state/packs/current/pack.ini"
check "a second pull changes nothing" jq -e '.changed == false' <<<"$(ctl pack pull --json)"

# Refusals leave the active pack as it was.
echo "# harmless" >> "$repo/README.md"
c2=$(commit other "signed by someone else")
out=$(ctl pack pull 2>&1); st=$?
check "a commit signed by another key is refused" fails_with $st "$out" "not listed"
check "... the active pack stays" jq -e --arg c "$c1" '.commit == $c' <<<"$(ctl pack status --json)"
git -C "$repo" reset -q --hard "$c1"
echo "# unsigned" >> "$repo/README.md"
git -C "$repo" add -A && git -C "$repo" -c user.name=x -c user.email=x@x commit -q -m unsigned
out=$(ctl pack pull 2>&1); st=$?
check "an unsigned commit is refused" fails_with $st "$out" "is not signed"
git -C "$repo" reset -q --hard "$c1"
sed -i 's/^format = 1/format = 2/' "$repo/pack.ini"
commit admin "a pack from the future" >/dev/null
out=$(ctl pack pull 2>&1); st=$?
check "a pack the validator refuses is not activated" fails_with $st "$out" "pack.ini"
check "... the last pull says why" jq -e '.last_pull.ok == false and (.last_pull.message | test("newer"))' <<<"$(ctl pack status --json)"
git -C "$repo" reset -q --hard "$c1"
echo "# second release" >> "$repo/README.md"
c3=$(commit admin "second release")
check "the next signed, valid commit activates" jq -e --arg c "$c3" '.changed == true and .pack.commit == $c' <<<"$(ctl pack pull --json)"
check "pack log lists both releases" test "$(ctl pack log | wc -l)" -eq 2
git -C "$repo" reset -q --hard "$c1"
echo "# rewritten history" >> "$repo/README.md"
commit admin "rewritten" >/dev/null
out=$(ctl pack pull 2>&1); st=$?
check "a non-fast-forward is refused" fails_with $st "$out" "fast-forward"
check "... the active pack stays" jq -e --arg c "$c3" '.commit == $c' <<<"$(ctl pack status --json)"
git -C "$repo" reset -q --hard "$c3"
check "rollback returns to the first release" jq -e --arg c "$c1" '.pack.commit == $c' <<<"$(ctl pack rollback --json)"
check "... and a pull does not undo the rollback" jq -e --arg c "$c1" '.changed == false and .pack.commit == $c' <<<"$(ctl pack pull --json)"
check "SIGTERM: exit 0" stop_daemon TERM

# The active pack survives a restart.
start_daemon "$conf" "$T/pk/run" || { summary; exit 1; }
check "after a restart the same pack is active" jq -e --arg c "$c1" '.commit == $c' <<<"$(ctl pack status --json)"
check "SIGTERM: exit 0 again" stop_daemon TERM

# madoctl pack verify, without a daemon.
check "madoctl pack verify packs/shunan" "$MG_BIN/madoctl" pack verify "$MG_SRC/packs/shunan"
cp -r "$MG_SRC/packs/shunan" "$T/broken"
sed -i '2s/^\([^,]*\),/\1,"unterminated,/' "$T/broken/counters.csv"
out=$("$MG_BIN/madoctl" pack verify "$T/broken" 2>&1); st=$?
check "a broken pack is refused naming file:line" bash -c "[ $st -ne 0 ] && grep -q '^counters.csv:2' <<<\"\$1\"" _ "$out"
check "pack verify --json lists the problems" bash -c "'$MG_BIN/madoctl' pack verify '$T/broken' --json | jq -e '.valid == false and (.problems | length) > 0'"

summary
