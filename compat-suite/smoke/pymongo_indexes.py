"""Secondary indexes through pymongo's index API against Monarch: each index kind
(single, compound, multikey, unique, sparse, partial, TTL, hidden, hashed), the errors with
mongod's codes, explain's executionStats figures, hint, hidden indexes and TTL expiry.
One "ok - ..." / "not ok - ..." line per check.

TTL expiry needs the server started with --setParameter ttlMonitorSleepSecs=1 (compat-suite/run).
"""

import datetime
import os
import time

from checks import Checks
from pymongo import ASCENDING, DESCENDING, HASHED, IndexModel, MongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure

URI = os.environ["MONARCH_URI"]
checks = Checks("pymongo indexes")
check = checks.check


def stages(explained):
    """The stage names of the winning plan, from the root down to the access path."""
    names = []
    stage = explained["queryPlanner"]["winningPlan"]
    while stage:
        names.append(stage["stage"])
        stage = stage.get("inputStage")
    return names


def access(explained):
    """The innermost stage of the winning plan (COLLSCAN, IXSCAN, ...)."""
    stage = explained["queryPlanner"]["winningPlan"]
    while "inputStage" in stage:
        stage = stage["inputStage"]
    return stage


def figures(explained):
    """(nReturned, totalKeysExamined, totalDocsExamined) of explain's executionStats."""
    stats = explained["executionStats"]
    return stats["nReturned"], stats["totalKeysExamined"], stats["totalDocsExamined"]


def error_code(action):
    """The server's error code for `action`, or None when it succeeds."""
    try:
        action()
    except OperationFailure as error:
        return error.code
    return None


client = MongoClient(URI, serverSelectionTimeoutMS=5000)
client.drop_database("compat_indexes")
db = client["compat_indexes"]

# Single-field index, and what explain reports before and after it.
people = db["people"]
people.insert_many([{"_id": i, "age": i % 50, "name": f"p{i}", "city": ["paris", "oslo", "rome"][i % 3]} for i in range(500)])
before = people.find({"age": 7}).explain()
check("before the index an equality is a COLLSCAN over every document",
      access(before)["stage"] == "COLLSCAN" and figures(before) == (10, 0, 500), (stages(before), figures(before)))
name = people.create_index("age")
check("create_index returns mongod's name", name == "age_1", name)
info = people.index_information()
check("index_information lists _id_ and age_1", sorted(info) == ["_id_", "age_1"] and info["age_1"]["key"] == [("age", 1)], info)
after = db.command("explain", {"find": "people", "filter": {"age": 7}}, verbosity="executionStats")
check("explain('executionStats') of an indexed equality is FETCH over IXSCAN", stages(after) == ["FETCH", "IXSCAN"], stages(after))
check("an indexed equality examines exactly the matches (keys == docs == nReturned == 10)",
      figures(after) == (10, 10, 10), figures(after))
check("IXSCAN names the index and its bounds",
      access(after)["indexName"] == "age_1" and access(after)["indexBounds"] == {"age": ["[7, 7]"]}, access(after))
found = sorted(d["_id"] for d in people.find({"age": 7}))
check("the indexed query returns the same documents", found == list(range(7, 500, 50)), found)
covered = people.find({"age": {"$gte": 48}}, {"age": 1, "_id": 0}).explain()
check("a covered query reads no documents (totalDocsExamined 0)",
      figures(covered) == (20, 20, 0) and "PROJECTION_COVERED" in stages(covered) and "FETCH" not in stages(covered),
      (stages(covered), figures(covered)))
ranged = people.find({"age": {"$gte": 10, "$lt": 12}}).explain()
check("a range examines only the keys in its bounds", figures(ranged) == (20, 20, 20), figures(ranged))

# Compound index with a descending field, created with create_indexes and IndexModel.
names = people.create_indexes([IndexModel([("city", ASCENDING), ("age", DESCENDING)]), IndexModel([("name", ASCENDING)], name="by_name")])
check("create_indexes with IndexModel returns both names", names == ["city_1_age_-1", "by_name"], names)
check("the compound key pattern keeps its order and -1",
      people.index_information()["city_1_age_-1"]["key"] == [("city", 1), ("age", -1)], people.index_information())
query = people.find({"city": "oslo"}, {"_id": 0, "city": 1, "age": 1}).sort([("city", 1), ("age", -1)]).limit(3)
top = list(query.clone())
check("compound index answers a sort on (city 1, age -1)", top == [{"city": "oslo", "age": 49}] * 3, top)
explained = query.explain()
check("the sort comes from the index (no SORT stage)",
      "SORT" not in stages(explained) and access(explained)["indexName"] == "city_1_age_-1", stages(explained))
backward = people.find({"city": "rome"}).sort([("city", -1), ("age", 1)]).limit(1).explain()
check("the reverse sort scans the index backward",
      "SORT" not in stages(backward) and access(backward).get("direction") == "backward", access(backward))

# hint by name and by key pattern.
hinted = people.find({"name": "p5"}).hint("age_1").explain()
check("hint by name forces that index", access(hinted).get("indexName") == "age_1" and figures(hinted)[1] == 500, access(hinted))
hinted = people.find({"name": "p5"}).hint([("city", 1), ("age", -1)]).explain()
check("hint by key pattern forces that index", access(hinted).get("indexName") == "city_1_age_-1", access(hinted))
rows = list(people.find({"name": "p5"}).hint([("age", ASCENDING)]))
check("a hinted find returns the right document", [d["_id"] for d in rows] == [5], rows)
check("hint of a missing index fails with 2 BadValue", error_code(lambda: people.find_one({}, hint="nope")) == 2)
keys = list(people.find({"age": {"$in": [3, 4]}}, return_key=True).limit(3))
check("return_key yields the index keys read, in index order", keys == [{"age": 3}] * 3, keys)
check("count_documents accepts a hint", people.count_documents({"age": 3}, hint="age_1") == 10)
code = error_code(lambda: people.count_documents({"age": 3}, hint="nope"))
check("count_documents (an aggregate) with a hint of a missing index fails with 2", code == 2, code)

# Multikey index on an array field.
posts = db["posts"]
posts.insert_many([{"_id": i, "tags": [f"t{i % 5}", f"t{i % 3}"], "n": i} for i in range(60)])
posts.create_index("tags")
tagged = sorted(d["_id"] for d in posts.find({"tags": "t4"}))
check("multikey index finds documents by array element", tagged == [i for i in range(60) if i % 5 == 4], tagged)
explained = posts.find({"tags": "t4"}).explain()
check("explain reports the index as multikey",
      access(explained)["stage"] == "IXSCAN" and access(explained)["isMultiKey"] is True, access(explained))
check("an element match is deduplicated (nReturned == distinct matches)", figures(explained)[0] == len(tagged), figures(explained))
both = posts.count_documents({"tags": {"$all": ["t0", "t1"]}})
check("$all over a multikey index", both == len([i for i in range(60) if {i % 5, i % 3} == {0, 1}]), both)

# Unique indexes, single and compound.
users = db["users"]
users.create_index("email", unique=True)
users.insert_one({"_id": 1, "email": "a@x.org"})
try:
    users.insert_one({"_id": 2, "email": "a@x.org"})
    check("insert of a taken unique key raises DuplicateKeyError", False, "no error")
except DuplicateKeyError as error:
    check("insert of a taken unique key raises DuplicateKeyError 11000 naming the index",
          error.code == 11000 and "email_1" in str(error) and error.details.get("keyValue") == {"email": "a@x.org"}, error.details)
check("the rejected document was not inserted", users.count_documents({}) == 1)
try:
    users.update_one({"_id": 1}, {"$set": {"email": "b@x.org"}})
    users.insert_one({"_id": 2, "email": "a@x.org"})
    check("moving a unique key away frees it", True)
except DuplicateKeyError as error:
    check("moving a unique key away frees it", False, error.details)
members = db["members"]
members.create_index([("org", ASCENDING), ("user", ASCENDING)], unique=True)
members.insert_many([{"org": 1, "user": "ann"}, {"org": 1, "user": "bob"}, {"org": 2, "user": "ann"}])
code = error_code(lambda: members.insert_one({"org": 1, "user": "bob"}))
check("compound unique index: only the full key must be unique (11000 on a repeat)", code == 11000, code)
check("compound unique index is listed as unique", members.index_information()["org_1_user_1"].get("unique") is True)

# Building a unique index over duplicate data fails and leaves no index behind.
dups = db["dups"]
dups.insert_many([{"_id": 1, "k": "same"}, {"_id": 2, "k": "same"}])
code = error_code(lambda: dups.create_index("k", unique=True))
check("building a unique index over duplicates fails with 11000", code == 11000, code)
check("the failed index is absent from list_indexes", [ix["name"] for ix in dups.list_indexes()] == ["_id_"], list(dups.list_indexes()))
dups.delete_one({"_id": 2})
check("after removing the duplicate the unique index builds", dups.create_index("k", unique=True) == "k_1")

# Sparse index: documents without the field are not in it.
sparse = db["sparse"]
sparse.insert_many([{"_id": i, "opt": i} if i % 4 == 0 else {"_id": i} for i in range(40)])
sparse.create_index("opt", sparse=True)
check("index_information shows sparse", sparse.index_information()["opt_1"].get("sparse") is True)
explained = sparse.find({"opt": {"$gte": 20}}).explain()
check("a range on the sparse field uses the index",
      access(explained).get("indexName") == "opt_1" and figures(explained) == (5, 5, 5), (access(explained), figures(explained)))
explained = sparse.find({"opt": None}).explain()
check("a null query does not use the sparse index (COLLSCAN, all 30 missing found)",
      access(explained)["stage"] == "COLLSCAN" and figures(explained)[0] == 30, (stages(explained), figures(explained)))
everyone = sparse.find({}).sort("opt", 1).explain()
check("a sort on the sparse field does not use it (would drop documents)", access(everyone)["stage"] == "COLLSCAN", stages(everyone))
sparse_unique = db["sparse_unique"]
sparse_unique.create_index("code", unique=True, sparse=True)
sparse_unique.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3, "code": "x"}])
code = error_code(lambda: sparse_unique.insert_one({"_id": 4, "code": "x"}))
check("unique+sparse: many documents may lack the field, a repeated value is 11000", code == 11000, code)

# Partial index.
orders = db["orders"]
orders.insert_many([{"_id": i, "total": i, "status": "open" if i % 2 else "done"} for i in range(100)])
orders.create_index("total", partialFilterExpression={"status": "open"}, name="open_by_total")
spec = orders.index_information()["open_by_total"]
check("index_information shows partialFilterExpression", spec.get("partialFilterExpression") == {"status": "open"}, spec)
explained = orders.find({"status": "open", "total": {"$gt": 90}}).explain()
check("a query implying the filter uses the partial index",
      access(explained).get("indexName") == "open_by_total" and figures(explained) == (5, 5, 5), (stages(explained), figures(explained)))
explained = orders.find({"total": {"$gt": 90}}).explain()
check("a query not implying the filter does not (COLLSCAN, 9 found)",
      access(explained)["stage"] == "COLLSCAN" and figures(explained)[0] == 9, (stages(explained), figures(explained)))
unique_partial = db["unique_partial"]
unique_partial.create_index("sku", unique=True, partialFilterExpression={"active": True})
unique_partial.insert_many([{"sku": "a", "active": False}, {"sku": "a", "active": False}, {"sku": "a", "active": True}])
code = error_code(lambda: unique_partial.insert_one({"sku": "a", "active": True}))
check("a partial unique index only constrains documents inside the filter", code == 11000, code)

# Hashed index.
visits = db["visits"]
visits.insert_many([{"_id": i, "user": f"u{i % 20}"} for i in range(200)])
check("a hashed index is named <field>_hashed", visits.create_index([("user", HASHED)]) == "user_hashed")
explained = visits.find({"user": "u3"}).explain()
check("an equality uses the hashed index, one key per match",
      access(explained).get("indexName") == "user_hashed" and figures(explained) == (10, 10, 10), (stages(explained), figures(explained)))
check("hashed lookups return the right documents", sorted(d["_id"] for d in visits.find({"user": "u3"})) == list(range(3, 200, 20)))
code = error_code(lambda: visits.create_index([("user", HASHED)], unique=True, name="uh"))
check("a unique hashed index is refused", code is not None, code)

# Hidden index: kept up to date, not used by the planner.
items = db["items"]
items.insert_many([{"_id": i, "sku": i % 25} for i in range(250)])
items.create_index("sku", hidden=True)
check("index_information shows hidden", items.index_information()["sku_1"].get("hidden") is True, items.index_information())
explained = items.find({"sku": 4}).explain()
check("the planner ignores a hidden index (COLLSCAN)", access(explained)["stage"] == "COLLSCAN", stages(explained))
code = error_code(lambda: items.find_one({"sku": 4}, hint="sku_1"))
check("a hidden index cannot be hinted", code == 2, code)
items.insert_one({"_id": 1000, "sku": 4})
items.delete_one({"_id": 4})
reply = db.command("collMod", "items", index={"name": "sku_1", "hidden": False})
check("collMod unhides it (hidden_old/new)", reply.get("hidden_old") is True and reply.get("hidden_new") is False, reply)
explained = items.find({"sku": 4}).explain()
check("the unhidden index is used and was kept up to date while hidden (10 keys)",
      access(explained).get("indexName") == "sku_1" and figures(explained) == (10, 10, 10), (stages(explained), figures(explained)))

# Index errors with mongod's codes.
code = error_code(lambda: people.create_index("age", name="another"))
check("same keys under another name: 85 IndexOptionsConflict", code == 85, code)
code = error_code(lambda: people.create_index("age", unique=True))
check("same name, different options: 85 IndexOptionsConflict", code == 85, code)
code = error_code(lambda: people.create_index("zip", name="age_1"))
check("same name, different keys: 86 IndexKeySpecsConflict", code == 86, code)
code = error_code(lambda: people.create_index([("age", 0)], name="zero"))
check("a 0 key direction: 67 CannotCreateIndex", code == 67, code)
code = error_code(lambda: people.create_index([("age", 1), ("name", 1)], expireAfterSeconds=10))
check("a compound TTL index: 67 CannotCreateIndex", code == 67, code)
check("re-creating an existing index is a no-op", people.create_index("age") == "age_1")
code = error_code(lambda: people.drop_index("_id_"))
check("dropping _id_: 72 InvalidOptions", code == 72, code)
code = error_code(lambda: people.drop_index("nope"))
check("dropping a missing index: 27 IndexNotFound", code == 27, code)
people.drop_index([("city", ASCENDING), ("age", DESCENDING)])
people.drop_index("by_name")
check("drop_index by key pattern and by name", sorted(people.index_information()) == ["_id_", "age_1"], sorted(people.index_information()))
people.drop_indexes()
check("drop_indexes keeps only _id_", list(people.index_information()) == ["_id_"])
parallel = db["parallel"]
parallel.create_index([("a", 1), ("b", 1)])
parallel.insert_one({"a": [1, 2], "b": 1})
code = error_code(lambda: parallel.insert_one({"a": [1, 2], "b": [3, 4]}))
check("parallel arrays in a compound index: 171 CannotIndexParallelArrays", code == 171, code)
check("the refused document was not inserted", parallel.count_documents({}) == 1)

# TTL: the monitor (ttlMonitorSleepSecs=1) deletes expired documents within seconds.
sessions = db["sessions"]
now = datetime.datetime.now(datetime.timezone.utc)
sessions.insert_many([
    {"_id": "old", "lastSeen": now - datetime.timedelta(hours=1)},
    {"_id": "fresh", "lastSeen": now},
    {"_id": "no date", "lastSeen": "yesterday"},
])
sessions.create_index("lastSeen", expireAfterSeconds=60)
check("index_information shows expireAfterSeconds", sessions.index_information()["lastSeen_1"].get("expireAfterSeconds") == 60)
deadline = time.monotonic() + 10
remaining = None
while time.monotonic() < deadline:
    remaining = sorted(d["_id"] for d in sessions.find())
    if "old" not in remaining:
        break
    time.sleep(0.25)
check("the TTL monitor deletes the expired document within 10 s (and only it)", remaining == ["fresh", "no date"], remaining)
reply = db.command("collMod", "sessions", index={"keyPattern": {"lastSeen": 1}, "expireAfterSeconds": 3600})
check("collMod changes expireAfterSeconds", reply.get("expireAfterSeconds_old") == 60 and reply.get("expireAfterSeconds_new") == 3600, reply)

client.drop_database("compat_indexes")
client.close()
checks.exit()
