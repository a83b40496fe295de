"""pymongo against Monarch where a standalone mongod refuses what it cannot do: transactions
(a session's start_transaction), w > 1, snapshot reads and unknown command fields must raise
the server's error, and nothing of a refused write may be applied. One "ok - ..." /
"not ok - ..." line per check.
"""

import os

from checks import Checks
from pymongo import MongoClient
from pymongo.errors import OperationFailure
from pymongo.write_concern import WriteConcern

URI = os.environ["MONARCH_URI"]
checks = Checks("pymongo options")
check = checks.check


def code_of(call):
    """The server error code `call` raises, or None when it succeeds."""
    try:
        call()
    except OperationFailure as error:
        return error.code
    return None


client = MongoClient(URI, serverSelectionTimeoutMS=5000)
db = client["options_check"]
coll = db["c"]
coll.drop()

with client.start_session() as session:
    session.start_transaction()
    try:
        coll.insert_one({"_id": 1}, session=session)
        code = None
    except OperationFailure as error:
        code = error.code
    check("an insert in a transaction raises OperationFailure 20 IllegalOperation", code == 20, code)
    session.abort_transaction()
check("the aborted transaction left nothing inserted", coll.count_documents({}) == 0, coll.count_documents({}))

code = code_of(lambda: coll.with_options(write_concern=WriteConcern(w=2)).insert_one({"_id": 2}))
check("w: 2 raises 2 BadValue", code == 2, code)
check("the refused w: 2 insert wrote nothing", coll.count_documents({}) == 0, coll.count_documents({}))

majority = coll.with_options(write_concern=WriteConcern(w="majority", j=True)).insert_one({"_id": 3})
check("w: 'majority' is acknowledged", majority.acknowledged and majority.inserted_id == 3)

code = code_of(lambda: db.command("find", "c", readConcern={"level": "snapshot"}))
check("readConcern snapshot raises 123 NotAReplicaSet", code == 123, code)
code = code_of(lambda: db.command("find", "c", readConcern={"level": "bogus"}))
check("readConcern level bogus raises 9 FailedToParse", code == 9, code)

code = code_of(lambda: db.command("insert", "c", documents=[{"_id": 4}], foo=1))
check("insert with an unknown field raises 40415", code == 40415, code)
check("the refused insert wrote nothing", coll.count_documents({"_id": 4}) == 0)

code = code_of(lambda: db.command("insert", "system.foo", documents=[{}]))
check("insert into system.foo raises 73 InvalidNamespace", code == 73, code)

coll.drop()
client.close()
checks.exit()
