#!/usr/bin/env bash
# What the authorization check costs per point read, in instructions rather than seconds:
# callgrind counts the same total for the same binary and workload however busy the machine
# is, so it resolves the 3% goal that the wall-clock bench (benches/auth.rs) cannot on a shared
# 2-core machine. Runs the release server under callgrind twice, without and with --auth (the
# second as a readWrite user), zeroes the counters after setup, reads N documents by _id on
# one connection, and prints each run's instructions per read and the check's own share.
#
#   cargo build --release && benches/auth_instructions.sh [N]      (needs valgrind, pymongo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reads=${1:-3000}
bin=${MONARCH_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/monarchd}
python=${PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

measure() {
  local mode=$1 port
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local args=(--port "$port" --adminPort disabled --dbpath "$out/$mode-db" --logpath "$out/$mode.log" --quiet)
  if [ "$mode" = auth ]; then args+=(--auth); fi
  valgrind --tool=callgrind --callgrind-out-file="$out/$mode.cg" "$bin" "${args[@]}" 2>"$out/$mode.valgrind" &
  local server=$!
  "$python" - "$port" "$mode" "$reads" <<'PY'
import subprocess, sys, time
import pymongo
port, mode, reads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for _ in range(600):  # the server starts slowly under valgrind
    try:
        pymongo.MongoClient(port=port, serverSelectionTimeoutMS=500).admin.command("ping")
        break
    except pymongo.errors.PyMongoError:
        time.sleep(0.5)
if mode == "auth":
    pymongo.MongoClient(port=port).admin.command("createUser", "root", pwd="pw", roles=["root"])
    root = pymongo.MongoClient(port=port, username="root", password="pw")
    root.admin.command("createUser", "app", pwd="pw", roles=[{"role": "readWrite", "db": "bench"}])
    client = pymongo.MongoClient(port=port, username="app", password="pw", authSource="admin", maxPoolSize=1)
else:
    client = pymongo.MongoClient(port=port, maxPoolSize=1)
records = client.bench.records
records.insert_many([{"_id": i, "v": "x" * 100} for i in range(100)])
for i in range(200):
    records.find_one({"_id": i % 100})
subprocess.run(["callgrind_control", "-z"], check=True, capture_output=True)
for i in range(reads):
    records.find_one({"_id": i % 100})
subprocess.run(["callgrind_control", "-d"], check=True, capture_output=True)
PY
  kill -TERM "$server"
  wait "$server" || true
}

total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }
measure noauth
measure auth
without=$(total "$out/noauth.cg.1")
with=$(total "$out/auth.cg.1")
check=$(callgrind_annotate --inclusive=yes "$out/auth.cg.1" 2>/dev/null |
  awk '/authz::check \[/ && !seen { gsub(",", "", $1); print $1; seen = 1 }')
awk -v n="$reads" -v a="$without" -v b="$with" -v c="${check:-0}" 'BEGIN {
  printf "instructions per point read: %.0f without --auth, %.0f with (ratio %.4f)\n", a / n, b / n, b / a
  printf "authz::check: %.0f instructions per command, %.2f%% of the authenticated run\n", c / n, 100 * c / b
}'
