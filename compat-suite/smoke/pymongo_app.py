"""A typical pymongo application flow against Monarch: create_index (unique), insert_many,
find with filter/sort/skip/limit, update_one with upsert, find_one_and_update, delete_many,
count_documents, distinct, drop. One "ok - ..." / "not ok - ..." line per check.
"""

import os

from checks import Checks
from pymongo import MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

URI = os.environ["MONARCH_URI"]
checks = Checks("pymongo app")
check = checks.check


client = MongoClient(URI, serverSelectionTimeoutMS=5000)
db = client["shop"]
orders = db["orders"]
orders.drop()

check("create_index (unique) returns its name", orders.create_index("ref", unique=True) == "ref_1")
check("the index is listed", orders.index_information().get("ref_1", {}).get("unique") is True, orders.index_information())

result = orders.insert_many(
    [{"_id": i, "ref": f"R{i:04d}", "customer": f"c{i % 7}", "total": i * 10, "status": "new" if i % 2 else "paid", "items": [i % 3, "x"]} for i in range(100)]
)
check("insert_many acknowledges 100 ids", len(result.inserted_ids) == 100)

try:
    orders.insert_one({"_id": 5})
    check("duplicate _id raises DuplicateKeyError", False, "no error")
except DuplicateKeyError as error:
    check("duplicate _id raises DuplicateKeyError (11000)", error.code == 11000, error.details)

plan = orders.find({"ref": "R0042"}).explain()
stats = plan["executionStats"]
check("a lookup by ref uses the index (1 key, 1 document)",
      plan["queryPlanner"]["winningPlan"]["inputStage"].get("indexName") == "ref_1" and (stats["totalKeysExamined"], stats["totalDocsExamined"], stats["nReturned"]) == (1, 1, 1),
      plan["queryPlanner"]["winningPlan"])
try:
    orders.insert_one({"_id": 500, "ref": "R0042"})
    check("a taken ref raises DuplicateKeyError", False, "no error")
except DuplicateKeyError as error:
    check("a taken ref raises DuplicateKeyError (11000)", error.code == 11000, error.details)

page = list(orders.find({"status": "paid", "total": {"$gte": 100}}, {"_id": 1, "total": 1}).sort([("total", -1)]).skip(2).limit(3))
check("find with filter/projection/sort/skip/limit", page == [{"_id": 94, "total": 940}, {"_id": 92, "total": 920}, {"_id": 90, "total": 900}], page)

many = list(orders.find({}).batch_size(10))
check("cursor iterates over several batches", len(many) == 100 and [d["_id"] for d in many] == list(range(100)), len(many))

upsert = orders.update_one({"_id": 1000, "customer": "new"}, {"$set": {"total": 1}, "$inc": {"visits": 1}}, upsert=True)
check("update_one with upsert inserts", upsert.upserted_id == 1000 and upsert.matched_count == 0, upsert.raw_result)
again = orders.update_one({"_id": 1000}, {"$inc": {"visits": 1}})
check("update_one modifies", again.matched_count == 1 and again.modified_count == 1, again.raw_result)

updated = orders.find_one_and_update({"status": "new"}, {"$set": {"status": "shipped"}}, sort=[("total", -1)], return_document=ReturnDocument.AFTER)
check("find_one_and_update returns the new document", updated and updated["_id"] == 99 and updated["status"] == "shipped", updated)

check("count_documents", orders.count_documents({"status": "paid"}) == 50)
check("estimated_document_count", orders.estimated_document_count() == 101)
check("distinct", sorted(orders.distinct("customer")) == sorted([f"c{i}" for i in range(7)] + ["new"]), orders.distinct("customer"))

deleted = orders.delete_many({"total": {"$lt": 200}})
check("delete_many", deleted.deleted_count == 21, deleted.raw_result)
check("count after delete", orders.count_documents({}) == 80)

check("collection listed", "orders" in db.list_collection_names())
orders.drop()
check("drop removes the collection", "orders" not in db.list_collection_names())
client.close()
checks.exit()
