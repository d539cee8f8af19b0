# Staff sessions: madoctl user add (password on stdin), login over HTTPS,
# cookie flags, CSRF on logout, lockout and unlock, validity period.
. "$(dirname "$0")/lib.sh"

conf=$(write_config auth <<CONF
plugin_dir = $MG_PLUGINS
[http]
listen = 127.0.0.1:0
[auth]
require_tablet = no
CONF
)
start_daemon "$conf" "$T/auth/run" || { summary; exit 1; }
U="https://127.0.0.1:$PORT/api/v1/session"
PW='Sakura-2024-pw'
check "user add reads the password from stdin" bash -c "printf '%s\n' '$PW' | '$MG_BIN/madoctl' --socket '$SOCK' user add tanaka --name 'Tanaka' --role staff --password-stdin >/dev/null"
check "user add without --password-stdin is refused" bash -c "! '$MG_BIN/madoctl' --socket '$SOCK' user add x --name X --role staff </dev/null 2>/dev/null"
check "a short password is refused" bash -c "! printf 'short\n' | '$MG_BIN/madoctl' --socket '$SOCK' user add y --name Y --role staff --password-stdin 2>/dev/null"

login() { curl -sk -D "$T/hdrs" -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"user\":\"$1\",\"password\":\"$2\",\"counter\":\"shimin-1\"}" "$U"; }
check "login: 200" test "$(login tanaka "$PW")" = 200
check "... the session body" json_ok "$(cat "$T/body")" '.user.id == "tanaka" and .user.role == "staff" and .counter == "shimin-1" and (.csrf_token | length >= 20) and (.expires_at | length > 0)'
cookie=$(grep -i '^set-cookie:' "$T/hdrs" | tr -d '\r')
check "cookie is HttpOnly, Secure, SameSite=Strict" bash -c "grep -q HttpOnly <<<'$cookie' && grep -q Secure <<<'$cookie' && grep -q 'SameSite=Strict' <<<'$cookie' && grep -q 'Path=/api/' <<<'$cookie'"
tok=$(sed -E 's/.*mg_session=([^;]*);.*/\1/' <<<"$cookie")
check "the token has >= 128 bits" test "${#tok}" -ge 22
csrf=$(jq -r .csrf_token "$T/body")
code=$(curl -sk -o "$T/body" -w '%{http_code}' -b "mg_session=$tok" "$U")
check "GET session with the cookie: 200" test "$code" = 200
check "... names the user" json_ok "$(cat "$T/body")" '.user.id == "tanaka"'
check "GET without a cookie: 401 not_logged_in" bash -c "[ \"\$(curl -sk -o '$T/body' -w '%{http_code}' '$U')\" = 401 ] && jq -e '.error.code == \"not_logged_in\"' '$T/body' >/dev/null"
code=$(curl -sk -o "$T/body" -w '%{http_code}' -X DELETE -b "mg_session=$tok" "$U")
check "DELETE without X-CSRF-Token: 403" test "$code" = 403
check "... csrf_failed" json_ok "$(cat "$T/body")" '.error.code == "csrf_failed"'
code=$(curl -sk -o "$T/body" -w '%{http_code}' -X DELETE -b "mg_session=$tok" -H "X-CSRF-Token: wrong" "$U")
check "DELETE with a wrong token: 403" test "$code" = 403
code=$(curl -sk -o "$T/body" -w '%{http_code}' -X DELETE -b "mg_session=$tok" -H "X-CSRF-Token: $csrf" "$U")
check "DELETE with the token: 200" test "$code" = 200
check "the cookie no longer works" test "$(curl -sk -o /dev/null -w '%{http_code}' -b "mg_session=$tok" "$U")" = 401

check "wrong password: 401" test "$(login tanaka wrong-password)" = 401
check "... login_failed" json_ok "$(cat "$T/body")" '.error.code == "login_failed"'
msg=$(jq -r .error.message "$T/body")
login nobody "$PW" >/dev/null
check "unknown user: the same answer" json_ok "$(cat "$T/body")" --arg m "$msg" '.error.code == "login_failed" and .error.message == $m'
for _ in 1 2 3; do login tanaka wrong-password >/dev/null; done
check "the 5th wrong password locks: 423" test "$(login tanaka wrong-password)" = 423
check "... locked, saying until when" json_ok "$(cat "$T/body")" '.error.code == "locked" and (.error.message | test("until"))'
check "the right password while locked: 423" test "$(login tanaka "$PW")" = 423
check "user list shows the lock" json_ok "$(ctl user list --json)" '.[] | select(.id == "tanaka") | .locked_until != null'
check "madoctl user unlock" ctl user unlock tanaka
check "login works after unlock" test "$(login tanaka "$PW")" = 200

tomorrow=$(date -u -d tomorrow +%F)
check "a user valid from tomorrow is added" bash -c "printf '%s\n' '$PW' | '$MG_BIN/madoctl' --socket '$SOCK' user add suzuki --name Suzuki --role supervisor --valid-from $tomorrow --password-stdin >/dev/null"
check "... cannot log in today: 403" test "$(login suzuki "$PW")" = 403
check "... account_not_valid" json_ok "$(cat "$T/body")" '.error.code == "account_not_valid"'
list=$(ctl user list --json)
check "user list --json names the users" json_ok "$list" 'map(.id) == ["suzuki", "tanaka"]'
check "... without passwords or hashes" bash -c "! grep -q -e '$PW' -e scrypt -e pw_hash <<<'$list'"
check "madoctl user del" ctl user del suzuki
check "... gone" json_ok "$(ctl user list --json)" 'map(.id) == ["tanaka"]'
check "the password never reaches the log" bash -c "! grep -q -e '$PW' -e '$tok' '$LOG'"
check "the daemon stops cleanly" stop_daemon TERM
summary
