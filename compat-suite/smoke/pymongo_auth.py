"""pymongo against a Monarch started with --auth, as an application connects to mongod: users
in connection strings with authSource=admin, both SCRAM mechanisms, mongod's codes for a wrong
password (18) and a missing privilege (13, with mongod's message), the user and role commands,
and listings that show a user only what it may see. One "ok - ..." / "not ok - ..." line per
check.

MONARCH_AUTH_URI is the server without credentials; MONARCH_ROOT_USER/PASSWORD a root user.
"""

import os
from urllib.parse import quote_plus

from checks import Checks
from pymongo import MongoClient
from pymongo.errors import OperationFailure

URI = os.environ["MONARCH_AUTH_URI"]
ROOT = (os.environ["MONARCH_ROOT_USER"], os.environ["MONARCH_ROOT_PASSWORD"])
checks = Checks("pymongo auth")
check = checks.check


def connect(user, password, **options):
    """A client whose connection string carries the credentials, as applications write it."""
    host = URI.removeprefix("mongodb://").rstrip("/")
    uri = f"mongodb://{quote_plus(user)}:{quote_plus(password)}@{host}/?authSource=admin"
    return MongoClient(uri, serverSelectionTimeoutMS=5000, **options)


def failure(call):
    """(code, message) of the OperationFailure `call` raises, or None when it succeeds."""
    try:
        call()
    except OperationFailure as error:
        return error.code, str(error.details.get("errmsg", "")) if error.details else str(error)
    return None


anonymous = MongoClient(URI, serverSelectionTimeoutMS=5000)
refused = failure(lambda: anonymous.shop.items.find_one())
check("an unauthenticated find answers 13 'Command find requires authentication'",
      refused == (13, "Command find requires authentication"), refused)
check("an unauthenticated ping is allowed", anonymous.admin.command("ping")["ok"] == 1)

for mechanism in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
    client = connect(*ROOT, authMechanism=mechanism)
    check(f"root authenticates with {mechanism}", client.admin.command("ping")["ok"] == 1)
    client.close()
wrong = failure(lambda: connect(ROOT[0], "not the password").admin.command("ping"))
check("a wrong password answers 18 AuthenticationFailed", wrong is not None and wrong[0] == 18, wrong)
unknown = failure(lambda: connect("nobody", "pw").admin.command("ping"))
check("an unknown user answers the same 18", unknown is not None and unknown[0] == 18, unknown)

root = connect(*ROOT)
for name in ("reader", "writer"):
    root.admin.command("dropUser", name) if root.admin.command("usersInfo", name)["users"] else None
root.drop_database("shop")
root.drop_database("hr")
root.shop.items.insert_one({"_id": 1, "name": "apple"})
root.hr.staff.insert_one({"_id": 1, "name": "ann"})
root.admin.command("createUser", "reader", pwd="read pw", roles=[{"role": "read", "db": "shop"}])
root.admin.command("createUser", "writer", pwd="write pw", roles=[{"role": "readWrite", "db": "shop"}])
info = root.admin.command("usersInfo", {"user": "reader", "db": "admin"}, showPrivileges=True)
user = info["users"][0] if info["users"] else {}
check("usersInfo shows the user, its roles and privileges, no credentials",
      user.get("roles") == [{"role": "read", "db": "shop"}] and "credentials" not in user
      and any(p["resource"] == {"db": "shop", "collection": ""} and "find" in p["actions"]
              for p in user.get("inheritedPrivileges", [])), user)

reader = connect("reader", "read pw", maxPoolSize=1)
check("read: find works", reader.shop.items.find_one() == {"_id": 1, "name": "apple"})
insert = failure(lambda: reader.shop.items.insert_one({"_id": 2}))
# The command's values are redacted, as mongod does under --redactClientLogData (on by default
# here, off by default in mongod).
check("read: insert answers 13 with mongod's message",
      insert is not None and insert[0] == 13
      and insert[1].startswith('not authorized on shop to execute command { insert: "###", ordered: "###"'), insert)
other = failure(lambda: reader.hr.staff.find_one())
check("read on shop: another database answers 13", other is not None and other[0] == 13, other)
check("list_database_names shows only shop", reader.list_database_names() == ["shop"], reader.list_database_names())
names = reader.shop.list_collection_names(authorizedCollections=True)
check("listCollections with authorizedCollections", names == ["items"], names)
status = reader.admin.command("connectionStatus")["authInfo"]
check("connectionStatus names the user and its roles",
      status["authenticatedUsers"] == [{"user": "reader", "db": "admin"}]
      and status["authenticatedUserRoles"] == [{"role": "read", "db": "shop"}], status)

writer = connect("writer", "write pw")
writer.shop.items.insert_one({"_id": 2, "name": "bread"})
check("readWrite: insert works", writer.shop.items.count_documents({}) == 2)

root.admin.command("grantRolesToUser", "reader", roles=[{"role": "readWrite", "db": "shop"}])
reader.shop.items.insert_one({"_id": 3, "name": "cheese"})
check("grantRolesToUser reaches the open connection", reader.shop.items.count_documents({}) == 3)
root.admin.command("revokeRolesFromUser", "reader", roles=[{"role": "readWrite", "db": "shop"}])
again = failure(lambda: reader.shop.items.insert_one({"_id": 4}))
check("revokeRolesFromUser takes it away again", again is not None and again[0] == 13, again)

if root.admin.command("rolesInfo", "staffReader")["roles"]:
    root.admin.command("dropRole", "staffReader")
root.admin.command("createRole", "staffReader", roles=[],
                   privileges=[{"resource": {"db": "hr", "collection": "staff"}, "actions": ["find"]}])
root.admin.command("grantRolesToUser", "reader", roles=["staffReader"])
check("a custom role grants find on one collection", reader.hr.staff.find_one() == {"_id": 1, "name": "ann"})
roles = root.admin.command("rolesInfo", "staffReader", showPrivileges=True)["roles"]
check("rolesInfo shows the custom role's privileges",
      roles and roles[0]["privileges"] == [{"resource": {"db": "hr", "collection": "staff"}, "actions": ["find"]}], roles)

reader.admin.command("logout")
after = reader.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"]
check("logout forgets the user on its connection", after == [], after)

root.admin.command("dropUser", "reader")
root.admin.command("dropUser", "writer")
root.admin.command("dropRole", "staffReader")
dropped = failure(lambda: connect("reader", "read pw").admin.command("ping"))
check("a dropped user no longer authenticates (18)", dropped is not None and dropped[0] == 18, dropped)
root.drop_database("shop")
root.drop_database("hr")
checks.exit()
