#!/usr/bin/env python3
"""Measures monarchd's resident memory while loading and reading documents.

Starts a release `monarchd` on a free port with its data in a temporary directory, loads
`--records` documents of `--doc-size` BSON bytes (1 GiB by default) with `insert_many` of
1,000, then reads them back (one full scan, then `--point-reads` random `_id` lookups), and
prints VmRSS and VmHWM (peak) from /proc/<pid>/status after the load and after the reads,
with the engine's cache and write-buffer figures from /metrics. Then it opens
`--cursors` open cursors (a `find` with `batchSize: 1` each) and `--connections` idle
connections (each after a `hello`), and prints the resident memory each one adds. Run it with the pymongo that
`compat-suite/run` installs:

    cargo build --release
    compat-suite/.venv/bin/python benches/memory.py -- --cacheSizeGB 0.25

Arguments after `--` go to monarchd. docs/operations/memory.md has the latest figures.
"""

import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import bson
import pymongo

BATCH = 1_000


def status_number(pid, field):
    """A number from /proc/<pid>/status (sizes there are in KiB)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def metrics(admin_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10).read().decode()
    wanted = {
        "monarch_storage_cache_size_bytes",
        "monarch_storage_cache_bytes",
        "monarch_storage_block_cache_bytes",
        "monarch_storage_write_buffer_bytes",
    }
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[name] = float(value)
    return found


def snapshot(label, pid, admin_port, started):
    figures = {
        "at": label,
        "seconds": round(time.monotonic() - started, 1),
        "rss_mib": round(status_number(pid, "VmRSS") / 1024, 1),
        "hwm_mib": round(status_number(pid, "VmHWM") / 1024, 1),
        # Virtual size: each thread reserves its stack (8 MiB) here, resident only as touched.
        "vsz_mib": round(status_number(pid, "VmSize") / 1024, 1),
        "threads": status_number(pid, "Threads"),
    }
    figures.update({k: round(v / 1048576, 1) for k, v in metrics(admin_port).items()})
    print(json.dumps(figures), flush=True)
    return figures


def start(monarchd, dbpath, extra):
    command = [monarchd, "--port", "0", "--adminPort", "0", "--quiet", "--dbpath", dbpath, *extra]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    port = admin_port = None
    for line in child.stdout:
        try:
            entry = json.loads(line)
        except ValueError:
            # Not a log line (a wrapper such as heaptrack printing its own).
            continue
        if entry.get("msg") == "Admin HTTP server listening":
            admin_port = entry["attr"]["port"]
        if entry.get("msg") in ("Opening the storage engine",):
            print(json.dumps(entry["attr"]), flush=True)
        if entry.get("msg") == "Waiting for connections":
            port = entry["attr"]["port"]
            break
    if port is None:
        raise RuntimeError(f"monarchd exited: {child.wait()}")
    # Keep reading the log so the pipe never fills.
    threading.Thread(target=lambda: [None for _ in child.stdout], daemon=True).start()
    return child, port, admin_port


def op_msg(request_id, body):
    payload = struct.pack("<I", 0) + b"\0" + bson.encode(body)
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, 2013) + payload


def read_message(sock):
    header = b""
    while len(header) < 4:
        header += sock.recv(4 - len(header))
    length = struct.unpack("<i", header)[0]
    rest = b""
    while len(rest) < length - 4:
        rest += sock.recv(length - 4 - len(rest))
    return header + rest


def open_connections(port, count):
    """Raw sockets that each said `hello` and got the reply, then stay idle."""
    sockets = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(op_msg(n + 1, {"hello": 1, "$db": "admin"}))
        read_message(sock)
        sockets.append(sock)
    return sockets


def per_item_kib(before, after, count):
    return round((after - before) / count, 1)


def document(n, pad_len):
    return {"_id": n, "k": n, "pad": os.urandom(pad_len // 2).hex()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monarchd", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "monarchd"))
    parser.add_argument("--records", type=int, default=1 << 20)
    parser.add_argument("--doc-size", type=int, default=1024)
    parser.add_argument("--point-reads", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=1_000)
    parser.add_argument("--cursors", type=int, default=1_000)
    parser.add_argument("server_args", nargs="*")
    args = parser.parse_args()

    overhead = len(bson.encode(document(0, 0)))
    pad_len = (args.doc_size - overhead) // 2 * 2
    with tempfile.TemporaryDirectory() as scratch:
        child, port, admin_port = start(args.monarchd, os.path.join(scratch, "db"), args.server_args)
        try:
            started = time.monotonic()
            client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", directConnection=True)
            collection = client.bench.memory
            snapshot("start", child.pid, admin_port, started)
            for first in range(0, args.records, BATCH):
                last = min(first + BATCH, args.records)
                collection.insert_many([document(n, pad_len) for n in range(first, last)])
                if first and first % (BATCH * 100) == 0:
                    snapshot(f"loaded {first}", child.pid, admin_port, started)
            loaded = time.monotonic() - started
            snapshot("after load", child.pid, admin_port, started)
            print(json.dumps({"load docs_per_s": round(args.records / loaded),
                              "load mib_per_s": round(args.records * args.doc_size / 1048576 / loaded, 1)}),
                  flush=True)
            scanned = sum(1 for _ in collection.find({}, batch_size=1_000))
            if scanned != args.records:
                raise RuntimeError(f"scanned {scanned} of {args.records}")
            snapshot("after scan", child.pid, admin_port, started)
            rng = random.Random(7)
            for _ in range(args.point_reads):
                n = rng.randrange(args.records)
                if collection.find_one({"_id": n}, {"_id": 1}) is None:
                    raise RuntimeError(f"_id {n} missing")
            snapshot("after point reads", child.pid, admin_port, started)
            if args.cursors:
                before = status_number(child.pid, "VmRSS")
                cursors = []
                for n in range(args.cursors):
                    reply = client.bench.command({"find": "memory", "filter": {"_id": {"$gte": n % args.records}},
                                                  "batchSize": 1})
                    cursors.append(reply["cursor"]["id"])
                after = status_number(child.pid, "VmRSS")
                print(json.dumps({"open cursors": args.cursors,
                                  "kib_each": per_item_kib(before, after, args.cursors)}), flush=True)
                client.bench.command({"killCursors": "memory", "cursors": cursors})
            if args.connections:
                before = status_number(child.pid, "VmRSS")
                sockets = open_connections(port, args.connections)
                after = status_number(child.pid, "VmRSS")
                print(json.dumps({"idle connections": args.connections,
                                  "kib_each": per_item_kib(before, after, args.connections)}), flush=True)
                for sock in sockets:
                    sock.close()
            client.close()
        finally:
            child.terminate()
            child.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
