#!/usr/bin/env bash
# mongosh against a Monarch started with --auth, as an operator uses it: `show dbs` lists only
# what the signed-in user may see, an unauthenticated query is refused with mongod's message,
# and mongosh_auth.js manages users and roles with the shell's helpers.
# MONARCH_AUTH_URI has no credentials; MONARCH_ROOT_USER/PASSWORD name a root user.
set -u
here=$(dirname "$0")
mongosh="$here/../node_modules/.bin/mongosh"
failures=0
check() {
  if [ "$2" = true ]; then echo "ok - mongosh auth: $1"; else echo "not ok - mongosh auth: $1 $3"; failures=$((failures + 1)); fi
}
host=${MONARCH_AUTH_URI#mongodb://}
host=${host%/}
as() { echo "mongodb://$1:$2@$host/?authSource=admin"; }
root=$(as "$MONARCH_ROOT_USER" "${MONARCH_ROOT_PASSWORD// /%20}")

"$mongosh" "$root" --quiet --eval '
  db.getSiblingDB("admin").getUser("shReader") && db.getSiblingDB("admin").dropUser("shReader");
  db.getSiblingDB("shshop").dropDatabase(); db.getSiblingDB("shhr").dropDatabase();
  db.getSiblingDB("shshop").items.insertOne({ name: "apple" });
  db.getSiblingDB("shhr").staff.insertOne({ name: "ann" });
  db.getSiblingDB("admin").createUser({ user: "shReader", pwd: "reader pw", roles: [{ role: "read", db: "shshop" }] });' >/dev/null

out=$("$mongosh" "$(as shReader reader%20pw)" --quiet --eval 'show dbs' 2>&1)
names=$(printf '%s\n' "$out" | awk '{ print $1 }' | tr '\n' ' ')
[ "$names" = "shshop " ] && ok=true || ok=false
check "show dbs as a user with read on one database lists only it" $ok "($out)"
out=$("$mongosh" "$root" --quiet --eval 'show dbs' 2>&1)
printf '%s\n' "$out" | grep -q '^shhr ' && printf '%s\n' "$out" | grep -q '^admin ' && ok=true || ok=false
check "show dbs as root lists every database" $ok "($out)"

out=$("$mongosh" "$MONARCH_AUTH_URI" --quiet --eval 'db.getSiblingDB("shshop").items.findOne()' 2>&1)
code=$?
[ $code -ne 0 ] && printf '%s\n' "$out" | grep -q 'MongoServerError.*Command find requires authentication' && ok=true || ok=false
check "an unauthenticated query fails with 'Command find requires authentication'" $ok "(exit $code: $out)"

"$mongosh" "$root" --quiet --file "$here/mongosh_auth.js" || failures=$((failures + 1))
exit $((failures > 0))
