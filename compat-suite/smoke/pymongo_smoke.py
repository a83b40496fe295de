"""pymongo against Monarch: connect, ping, server_info, handshake fields, compressors, errors.

Prints one "ok - ..." or "not ok - ..." line per check and exits 1 if any check failed.
"""

import os

from checks import Checks
from pymongo import CursorType, MongoClient
from pymongo.errors import OperationFailure

URI = os.environ["MONARCH_URI"]
checks = Checks("pymongo")
check = checks.check


client = MongoClient(URI, serverSelectionTimeoutMS=5000)
ping = client.admin.command("ping")
check("ping returns {ok: 1}", ping == {"ok": 1.0}, ping)

info = client.server_info()
check("server_info reports a 7.0 version", str(info.get("version", "")).startswith("7.0."), info)
check("server_info carries the monarch version", "version" in info.get("monarch", {}), info)

hello = client.admin.command("hello")
for field, expected in [
    ("isWritablePrimary", True),
    ("maxBsonObjectSize", 16777216),
    ("maxMessageSizeBytes", 48000000),
    ("maxWriteBatchSize", 100000),
    ("logicalSessionTimeoutMinutes", 30),
    ("maxWireVersion", 21),
]:
    check(f"hello.{field} == {expected}", hello.get(field) == expected, hello)

try:
    client.admin.command("atlasVersion")
    check("unknown command fails with 59", False, "no error")
except OperationFailure as error:
    check("unknown command fails with 59 CommandNotFound", error.code == 59 and error.details.get("codeName") == "CommandNotFound", error.details)

for compressor in ["snappy", "zlib", "zstd"]:
    with MongoClient(URI, compressors=compressor, serverSelectionTimeoutMS=5000) as compressed:
        compressed.admin.command("ping")
        status = compressed.admin.command("serverStatus")
        used = status["network"]["compression"][compressor]["decompressor"]["bytesOut"]
        check(f"{compressor} compression negotiated and used", used > 0, status["network"]["compression"])

with client.start_session() as session:
    reply = client.admin.command("ping", session=session)
    check("command inside an explicit session", reply.get("ok") == 1.0, reply)

exhaust = client.smoke.exhaust
exhaust.drop()
exhaust.insert_many([{"_id": i} for i in range(250)])
streamed = [d["_id"] for d in exhaust.find(cursor_type=CursorType.EXHAUST, batch_size=10).sort("_id", 1)]
check("an exhaust cursor streams every batch (getMore with moreToCome)", streamed == list(range(250)), streamed[:5])
check("the connection serves again after the stream", client.smoke.command("ping").get("ok") == 1.0)
client.close()

checks.exit()
