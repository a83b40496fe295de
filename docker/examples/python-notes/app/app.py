"""A small notes service: the kind of app a compose file pairs with MongoDB.

POST /notes with {"text": ...} stores a note; GET /notes lists the newest first; GET /healthz
pings the database. It knows nothing of Monarch: MONGO_URL is an ordinary MongoDB connection
string with credentials.
"""

import datetime
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bson import ObjectId
from pymongo import MongoClient

client = MongoClient(os.environ["MONGO_URL"])
notes = client.get_default_database().notes


def to_json(note: dict) -> dict:
    return {"id": str(note["_id"]), "text": note["text"], "created": note["created"].isoformat()}


class Handler(BaseHTTPRequestHandler):
    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            client.admin.command("ping")
            self.reply(200, {"status": "ok"})
        elif self.path == "/notes":
            self.reply(200, [to_json(n) for n in notes.find().sort("created", -1).limit(100)])
        elif self.path.startswith("/notes/"):
            note = notes.find_one({"_id": ObjectId(self.path.removeprefix("/notes/"))})
            self.reply(200, to_json(note)) if note else self.reply(404, {"error": "no such note"})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/notes":
            return self.reply(404, {"error": "not found"})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return self.reply(400, {"error": "text must be a non-empty string"})
        note = {"text": text, "created": datetime.datetime.now(datetime.timezone.utc)}
        note["_id"] = notes.insert_one(note).inserted_id
        self.reply(201, to_json(note))


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
