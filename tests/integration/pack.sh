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
check "no pack before the first pull" json_ok "$(ctl pack status --json)" '.state == "none"'
# the events WebSocket needs a staff session (U1): one at each counter
PW='Counter-2026-pw'; B="https://127.0.0.1:$PORT/api/v1"
printf '%s\n' "$PW" | ctl user add admin --name 管理者 --role administrator --password-stdin >/dev/null
check "an administrator logs in at shimin-1" test "$(login "$T/jar-a" admin shimin-1)" = 200
check "... and at kosodate-1" test "$(login "$T/jar-b" admin kosodate-1)" = 200
export MGPROBE_COOKIE=$(session_cookie "$T/jar-a")
out=$("$MG_BIN/mgprobe" ws "$PORT" /api/v1/events 60000 "$MG_BIN/madoctl" --socket "$SOCK" pack pull)
check "pull activates the signed pack" json_ok "$(ctl pack status --json)" --arg c "$c1" '.state == "active" and .commit == $c and .signer == "admin@city.example"'
check "tablets hear pack.activated" json_ok "$(tail -n1 <<<"$out")" --arg c "$c1" '.topic == "pack.activated" and .data.commit == $c'
check "health shows the active pack" json_ok "$(curl -sk "https://127.0.0.1:$PORT/api/v1/health")" --arg c "$c1" '.pack.state == "active" and .pack.commit == $c'
check "the release is checked out" test -f "$T/pk/state/packs/current/pack.ini"
check "a second pull changes nothing" json_ok "$(ctl pack pull --json)" '.changed == false'

# Refusals leave the active pack as it was.
echo "# harmless" >> "$repo/README.md"
c2=$(commit other "signed by someone else")
out=$(ctl pack pull 2>&1); st=$?
check "a commit signed by another key is refused" fails_with $st "$out" "not listed"
check "... the active pack stays" json_ok "$(ctl pack status --json)" --arg c "$c1" '.commit == $c'
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
check "... the last pull says why" json_ok "$(ctl pack status --json)" '.last_pull.ok == false and (.last_pull.message | test("newer"))'
git -C "$repo" reset -q --hard "$c1"
echo "# second release" >> "$repo/README.md"
c3=$(commit admin "second release")
check "the next signed, valid commit activates" json_ok "$(ctl pack pull --json)" --arg c "$c3" '.changed == true and .pack.commit == $c'
check "pack log lists both releases" test "$(ctl pack log | wc -l)" -eq 2
git -C "$repo" reset -q --hard "$c1"
echo "# rewritten history" >> "$repo/README.md"
commit admin "rewritten" >/dev/null
out=$(ctl pack pull 2>&1); st=$?
check "a non-fast-forward is refused" fails_with $st "$out" "fast-forward"
check "... the active pack stays" json_ok "$(ctl pack status --json)" --arg c "$c3" '.commit == $c'
git -C "$repo" reset -q --hard "$c3"
out=$(MGPROBE_COOKIE=$(session_cookie "$T/jar-b") "$MG_BIN/mgprobe" ws "$PORT" /api/v1/events 30000 "$MG_BIN/madoctl" --socket "$SOCK" pack rollback --json)
check "rollback returns to the first release" json_ok "$(grep '^{' <<<"$out" | grep -v '"topic"' | tail -n1)" --arg c "$c1" '.pack.commit == $c'
check "... and a tablet of another counter hears it too (a box-wide event)" json_ok "$(grep '"topic"' <<<"$out" | tail -n1)" --arg c "$c1" '.topic == "pack.activated" and .counters == [] and .data.rollback == true and .data.commit == $c'
check "... and a pull does not undo the rollback" json_ok "$(ctl pack pull --json)" --arg c "$c1" '.changed == false and .pack.commit == $c'
check "SIGTERM: exit 0" stop_daemon TERM

# The active pack survives a restart.
start_daemon "$conf" "$T/pk/run" || { summary; exit 1; }
check "after a restart the same pack is active" json_ok "$(ctl pack status --json)" --arg c "$c1" '.commit == $c'
check "SIGTERM: exit 0 again" stop_daemon TERM

# ssh:// with a deploy key, against a real sshd on loopback.
sshport=""
for _ in $(seq 1 50); do
  p=$((30000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then sshport=$p; break; fi
done
ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$T/deploy"
ssh-keygen -q -t ed25519 -N '' -f "$T/wrongkey"
cp "$T/deploy.pub" "$T/authorized_keys"
chmod 600 "$T/authorized_keys" "$T/deploy"
mkdir -p /run/sshd
cat > "$T/sshd_config" <<CONF
Port $sshport
ListenAddress 127.0.0.1
HostKey $T/hostkey
AuthorizedKeysFile $T/authorized_keys
PidFile $T/sshd.pid
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $(id -un)
CONF
/usr/sbin/sshd -D -e -f "$T/sshd_config" 2>"$T/sshd.log" &
sshd=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$sshport") 2>/dev/null && break; sleep 0.05; done
# Debian's libgit2/libssh2 leak a little per ssh fetch (tests/lsan-ssh.supp).
export LSAN_OPTIONS="suppressions=$MG_SRC/tests/lsan-ssh.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
conf2=$(write_config ssh <<CONF
[http]
listen = 127.0.0.1:0
[pack]
url = ssh://$(id -un)@127.0.0.1:$sshport$repo
allowed_signers = $T/allowed_signers
ssh_key = $T/deploy
ssh_host_key = $(ssh-keygen -lf "$T/hostkey.pub" | awk '{print $2}')
interval = 0
CONF
)
start_daemon "$conf2" "$T/ssh/run" || { summary; exit 1; }
check "ssh:// with the deploy key and the pinned host key activates" json_ok "$(ctl pack pull --json)" '.changed == true and .pack.state == "active"'
check "SIGTERM: exit 0 (ssh)" stop_daemon TERM
sed -i "s|^ssh_host_key = .*|ssh_host_key = $(ssh-keygen -lf "$T/wrongkey.pub" | awk '{print $2}')|" "$conf2"
rm -rf "$T/ssh/state/packs"
start_daemon "$conf2" "$T/ssh/run" || { summary; exit 1; }
out=$(ctl pack pull 2>&1); st=$?
check "an ssh server with another host key is refused" fails_with $st "$out" "host key is not"
check "SIGTERM: exit 0 (host key)" stop_daemon TERM
sed -i "s|^ssh_host_key = .*|ssh_host_key = $(ssh-keygen -lf "$T/hostkey.pub" | awk '{print $2}')|" "$conf2"
sed -i "s|^ssh_key = .*|ssh_key = $T/wrongkey|" "$conf2"
rm -rf "$T/ssh/state/packs"
start_daemon "$conf2" "$T/ssh/run" || { summary; exit 1; }
out=$(ctl pack pull 2>&1); st=$?
check "ssh:// with a key the server refuses fails clearly" fails_with $st "$out" "refused the deploy key"
check "SIGTERM: exit 0 (wrong key)" stop_daemon TERM
kill "$sshd" 2>/dev/null; wait "$sshd" 2>/dev/null
unset LSAN_OPTIONS

# https:// against git's own http-backend (smart HTTP) behind TLS, with the
# server's certificate trusted through [pack] ca_file.
httpsport=""
for _ in $(seq 1 50); do
  p=$((30000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then httpsport=$p; break; fi
done
mkdir -p "$T/srv"
git clone -q --bare "$repo" "$T/srv/pk.git"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$T/https-key.pem" -out "$T/https-cert.pem" 2>/dev/null
python3 "$MG_SRC/tests/integration/git_https_server.py" "$httpsport" "$T/srv" \
  "$T/https-cert.pem" "$T/https-key.pem" 2>"$T/https.log" &
httpsd=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$httpsport") 2>/dev/null && break; sleep 0.05; done
conf3=$(write_config https <<CONF
[http]
listen = 127.0.0.1:0
[pack]
url = https://localhost:$httpsport/git/pk.git
allowed_signers = $T/allowed_signers
interval = 0
CONF
)
start_daemon "$conf3" "$T/https/run" || { summary; exit 1; }
out=$(ctl pack pull 2>&1); st=$?

check "https:// with an untrusted certificate is refused" fails_with $st "$out" "certificate"
check "SIGTERM: exit 0 (untrusted)" stop_daemon TERM
printf 'ca_file = %s\n' "$T/https-cert.pem" >> "$conf3"
start_daemon "$conf3" "$T/https/run" || { summary; exit 1; }
check "https:// with the CA in ca_file activates the signed pack" json_ok "$(ctl pack pull --json)" '.changed == true and .pack.state == "active"'
check "SIGTERM: exit 0 (https)" stop_daemon TERM
kill "$httpsd" 2>/dev/null; wait "$httpsd" 2>/dev/null

# madoctl pack verify, without a daemon.
check "madoctl pack verify packs/shunan" "$MG_BIN/madoctl" pack verify "$MG_SRC/packs/shunan"
cp -r "$MG_SRC/packs/shunan" "$T/broken"
sed -i '2s/^\([^,]*\),/\1,"unterminated,/' "$T/broken/counters.csv"
out=$("$MG_BIN/madoctl" pack verify "$T/broken" 2>&1); st=$?
check "a broken pack is refused naming file:line" bash -c "[ $st -ne 0 ] && grep -q '^counters.csv:2' <<<\"\$1\"" _ "$out"
check "pack verify --json lists the problems" json_ok "$("$MG_BIN/madoctl" pack verify "$T/broken" --json)" '.valid == false and (.problems | length) > 0'

summary
