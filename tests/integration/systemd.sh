# The unit, sysusers and tmpfiles files are valid for systemd.
. "$(dirname "$0")/lib.sh"
src="$MG_SRC/systemd"
mkdir -p "$T/unit"
# verify checks that ExecStart exists: point it at the built binary.
sed "s|/usr/sbin/madoguchid|$MG_BIN/madoguchid|" "$src/madoguchid.service" > "$T/unit/madoguchid.service"
check "systemd-analyze verify madoguchid.service" systemd-analyze verify "$T/unit/madoguchid.service"
for k in Type=notify WatchdogSec= User=madoguchi ProtectSystem=strict PrivateTmp=yes NoNewPrivileges=yes RestrictAddressFamilies= SystemCallFilter=; do
  check "unit sets $k" grep -q "^$k" "$src/madoguchid.service"
done
score=$(systemd-analyze --offline=true security "$T/unit/madoguchid.service" 2>/dev/null | awk '/Overall exposure level/ {print $(NF-2)}')
check "exposure level is low ($score)" awk -v s="${score:-10}" 'BEGIN { exit !(s < 3.0) }'
mkdir -p "$T/root/etc"
check "sysusers.d file applies" systemd-sysusers --root="$T/root" "$src/madoguchi.sysusers"
check "... creates the madoguchi user" grep -q '^madoguchi:x:[0-9]*:[0-9]*:.*:/var/lib/madoguchi:/usr/sbin/nologin$' "$T/root/etc/passwd"
check "... in the device groups" grep -q '^input:x:[0-9]*:madoguchi$' "$T/root/etc/group"
# tmpfiles resolves owners on the host, where the user may not exist yet:
# check the entries themselves with root as owner.
sed 's/ madoguchi madoguchi / root root /; s/ root madoguchi / root root /' "$src/madoguchi.tmpfiles" > "$T/tmpfiles.conf"
check "tmpfiles.d file applies" systemd-tmpfiles --root="$T/root" --create "$T/tmpfiles.conf"
check "... state directory 0750" test "$(stat -c %a "$T/root/var/lib/madoguchi")" = 750
check "... runtime directory 0750" test "$(stat -c %a "$T/root/run/madoguchi")" = 750
summary
