"""Collection validators through pymongo: a $jsonSchema validator refusing documents with
WriteError / BulkWriteError / OperationFailure code 121 and mongod's errInfo, bypass, warn,
and updates of nested $-prefixed fields. One "ok - ..." / "not ok - ..." line per check.
"""

import os

from checks import Checks
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, OperationFailure, WriteError

URI = os.environ["MONARCH_URI"]
checks = Checks("pymongo validation")
check = checks.check

client = MongoClient(URI, serverSelectionTimeoutMS=5000)
db = client["validation"]
db.drop_collection("people")
people = db.create_collection(
    "people",
    validator={"$jsonSchema": {"bsonType": "object", "required": ["name"], "properties": {"age": {"bsonType": "int", "minimum": 0}}}},
)

people.insert_one({"_id": 1, "name": "Ann", "age": 30})
try:
    people.insert_one({"_id": 2, "age": 3})
    check("a document missing a required field raises WriteError", False, "no error")
except WriteError as error:
    info = (error.details or {}).get("errInfo", {})
    check(
        "WriteError 121 with errInfo {failingDocumentId, details}",
        error.code == 121
        and info.get("failingDocumentId") == 2
        and info.get("details")
        == {
            "operatorName": "$jsonSchema",
            "schemaRulesNotSatisfied": [{"operatorName": "required", "specifiedAs": {"required": ["name"]}, "missingProperties": ["name"]}],
        },
        error.details,
    )

try:
    people.insert_many([{"_id": 3, "name": "Bo"}, {"_id": 4, "name": "Cy", "age": -1}, {"_id": 5, "name": "Di"}])
    check("insert_many stops at the failing document", False, "no error")
except BulkWriteError as error:
    errors = error.details.get("writeErrors", [])
    check(
        "BulkWriteError: nInserted 1, writeErrors[0] index 1 code 121",
        error.details.get("nInserted") == 1 and len(errors) == 1 and errors[0]["index"] == 1 and errors[0]["code"] == 121,
        error.details,
    )
    detail = errors[0].get("errInfo", {}).get("details", {}) if errors else {}
    minimum = detail.get("schemaRulesNotSatisfied", [{}])[0].get("propertiesNotSatisfied", [{}])[0].get("details", [{}])[0]
    check("errInfo names the failing minimum", minimum.get("operatorName") == "minimum" and minimum.get("consideredValue") == -1, detail)

try:
    people.update_one({"_id": 1}, {"$set": {"age": "old"}})
    check("an update breaking the schema raises WriteError", False, "no error")
except WriteError as error:
    check("update: WriteError 121", error.code == 121 and "errInfo" in (error.details or {}), error.details)

try:
    people.find_one_and_update({"_id": 1}, {"$unset": {"name": ""}})
    check("find_one_and_update breaking the schema raises OperationFailure", False, "no error")
except OperationFailure as error:
    check(
        "find_one_and_update: OperationFailure 121 with errInfo",
        error.code == 121 and error.details.get("errInfo", {}).get("failingDocumentId") == 1,
        error.details,
    )

people.insert_one({"_id": 6, "age": -5}, bypass_document_validation=True)
check("bypass_document_validation stores a failing document", people.count_documents({"_id": 6}) == 1)

db.command("collMod", "people", validationAction="warn")
people.insert_one({"_id": 7})
check("validationAction warn lets the write through", people.count_documents({"_id": 7}) == 1)

people.update_one({"_id": 1}, {"$set": {"prefs.$each": 42}})
check("$set of a nested $-prefixed field", people.find_one({"_id": 1}).get("prefs") == {"$each": 42}, people.find_one({"_id": 1}))

options = db.list_collections(filter={"name": "people"}).next()["options"]
check("listCollections shows the validator, level and action", "validator" in options and options.get("validationAction") == "warn", options)
db.drop_collection("people")
client.close()
checks.exit()
