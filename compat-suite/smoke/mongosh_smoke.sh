#!/usr/bin/env bash
# mongosh against Monarch, as a new user would try it: the output must be exactly `{ ok: 1 }`
# with nothing on stderr (no error, no warning).
set -u
mongosh="$(dirname "$0")/../node_modules/.bin/mongosh"
failures=0
check() {
  if [ "$2" = true ]; then echo "ok - mongosh: $1"; else echo "not ok - mongosh: $1 $3"; failures=$((failures + 1)); fi
}

err=$(mktemp)
out=$("$mongosh" "$MONARCH_URI" --eval 'db.runCommand({ping:1})' 2>"$err")
code=$?
[ $code -eq 0 ] && [ "$out" = "{ ok: 1 }" ] && ok=true || ok=false
check "--eval 'db.runCommand({ping:1})' prints { ok: 1 }" $ok "(exit $code, stdout: $out)"
[ ! -s "$err" ] && ok=true || ok=false
check "no error or warning on stderr" $ok "($(head -c 500 "$err"))"

out=$("$mongosh" "$MONARCH_URI" --quiet --eval 'const v = db.version(); const h = db.hello(); print(v, h.isWritablePrimary, h.maxWireVersion)' 2>"$err")
[ "$out" = "7.0.14 true 21" ] && ok=true || ok=false
check "db.version() and db.hello()" $ok "(stdout: $out; stderr: $(head -c 500 "$err"))"
rm -f "$err"
exit $((failures > 0))
