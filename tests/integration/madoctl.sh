# madoctl against a live daemon and a dead one.
. "$(dirname "$0")/lib.sh"

conf=$(write_config c <<CONF
plugin_dir = $MG_PLUGINS
[http]
listen = 127.0.0.1:0
[printer "front"]
plugin = fileprinter
counter = shimin-1
dir = $T/prints
[printer "off"]
plugin = fileprinter
enabled = false
dir = $T/prints
CONF
)
mkdir -p "$T/prints"
start_daemon "$conf" "$T/c/run" || { summary; exit 1; }

check "status (human)" bash -c "'$MG_BIN/madoctl' --socket '$SOCK' status | grep -q '^madoguchid '"
check "status --json" json_ok "$(ctl status --json)" '.version'
check "plugins --json lists fileprinter" json_ok "$(ctl plugins --json)" 'any(.[]; .name == "fileprinter" and .kind == "printer")'
check "plugins (human)" bash -c "'$MG_BIN/madoctl' --socket '$SOCK' plugins | grep -q fileprinter"
devs=$(ctl devices --json)
check "devices --json: running device with its counter" json_ok "$devs" '.[] | select(.id == "front" and .state == "running" and .counters == ["shimin-1"])'
check "devices --json: disabled device listed" json_ok "$devs" '.[] | select(.id == "off" and .state == "disabled")'
check "devices (human)" bash -c "'$MG_BIN/madoctl' --socket '$SOCK' devices | grep -q '^front '"
check "log-level debug" json_ok "$(ctl log-level debug --json)" '.log_level == "debug"'
check "status shows the new level" json_ok "$(ctl status --json)" '.log_level == "debug"'
out=$(ctl log-level loud 2>&1); st=$?
check "a bad level is refused with one line" fails_with $st "$out" "loud"
check "print test --printer" ctl print test --printer front
out=$(ctl print test --printer nope 2>&1); st=$?
check "print test on an unknown printer fails with a reason" fails_with $st "$out" "no device"
out=$(ctl frobnicate 2>&1); st=$?
check "unknown command: non-zero, one line" fails_with $st "$out" "unknown command 'frobnicate'"
for c in status plugins devices "config check" log-level reload "print test"; do
  check "$c --help" bash -c "'$MG_BIN/madoctl' $c --help | grep -q '^usage: madoctl'"
done
check "madoctl --help" bash -c "'$MG_BIN/madoctl' --help | grep -q 'config check'"

# config check works without a daemon, and checks plugin keys.
check "config check: good file" ctl config check "$conf"
printf '[printer "x"]\nplugin = fileprinter\ndir = /tmp\ncolour = red\n' > "$T/bad.conf"
sed -i "1i [daemon]\nplugin_dir = $MG_PLUGINS" "$T/bad.conf"
out=$(ctl config check "$T/bad.conf" 2>&1); st=$?
check "config check: a plugin's unknown key names file:line" fails_with $st "$out" 'bad.conf:6: unknown key .colour.'
check "config check of a missing file" fails_with "$(ctl config check "$T/none.conf" >/dev/null 2>&1; echo $?)" "$(ctl config check "$T/none.conf" 2>&1)" 'none.conf: cannot open' 
check "config check --json" json_ok "$(ctl config check "$T/bad.conf" --json 2>/dev/null)" '.valid == false'

# Permissions: another user is refused by the socket's mode or peer check.
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
  out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$MG_BIN/madoctl" --socket "$SOCK" status 2>&1); st=$?
  check "another user cannot use the socket" bash -c "[ $st -ne 0 ]"
fi

# The audit log: the daemon writes no rows yet, so a fresh one is empty.
check "audit verify: intact with 0 rows" bash -c "'$MG_BIN/madoctl' --socket '$SOCK' audit verify | grep -qx 'audit log intact: 0 rows'"
check "audit verify --json" json_ok "$(ctl audit verify --json)" '.ok == true and .rows == 0'
check "audit log --json: no entries" json_ok "$(ctl audit log --json)" '.entries == []'
check "audit log --object --limit --json: no entries" json_ok "$(ctl audit log --object visit:x --limit 5 --json)" '.entries == []'
check "audit log (human)" bash -c "'$MG_BIN/madoctl' --socket '$SOCK' audit log | grep -qx 'no audit records'"
out=$(ctl audit log --limit 0 2>&1); st=$?
check "audit log --limit 0 is refused with one line" fails_with $st "$out" "--limit"
check "madoctl --help lists audit" bash -c "'$MG_BIN/madoctl' --help | grep -q 'audit verify'"

check "SIGTERM: exit 0" stop_daemon TERM
out=$(ctl status 2>&1); st=$?
check "a dead daemon: non-zero and a one-line reason" fails_with $st "$out" 'cannot reach madoguchid' 

summary
