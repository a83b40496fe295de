// mongosh --file, signed in as root on a server with --auth: the shell's user and role helpers
// (createUser, getUser, grantRolesToUser, createRole, getRole, dropUser) and db.auth/db.logout
// on a second connection. Prints "ok - ..." lines and quits non-zero on any mismatch.
load(__dirname + "/mongosh_checks.js");
const check = makeCheck("mongosh auth");

const admin = db.getSiblingDB("admin");
const second = new Mongo(process.env.MONARCH_AUTH_URI).getDB("admin");
const code = (call) => { try { call(); return null; } catch (error) { return error.code; } };

if (admin.getUser("shWriter")) admin.dropUser("shWriter");
if (admin.getRole("shStaffReader")) admin.dropRole("shStaffReader");
admin.createUser({ user: "shWriter", pwd: "writer pw", roles: [{ role: "read", db: "shshop" }] });
const user = admin.getUser("shWriter", { showPrivileges: true });
check("getUser shows the roles and inherited privileges", user.roles.length === 1 && user.roles[0].role === "read"
  && user.inheritedPrivileges.some((p) => p.resource.db === "shshop" && p.actions.includes("find")), user);

check("db.auth with a wrong password fails with 18", code(() => second.auth("shWriter", "wrong")) === 18);
const signedIn = second.auth("shWriter", "writer pw");
check("db.auth signs in", signedIn.ok === 1, signedIn);
check("read: insertOne refused with 13", code(() => second.getSiblingDB("shshop").items.insertOne({ x: 1 })) === 13);

admin.grantRolesToUser("shWriter", [{ role: "readWrite", db: "shshop" }]);
const inserted = second.getSiblingDB("shshop").items.insertOne({ x: 1 });
check("grantRolesToUser reaches the signed-in connection", inserted.acknowledged === true, inserted);

admin.createRole({ role: "shStaffReader", privileges: [{ resource: { db: "shhr", collection: "staff" }, actions: ["find"] }], roles: [] });
const role = admin.getRole("shStaffReader", { showPrivileges: true });
check("getRole shows the custom role's privileges",
  role.privileges.length === 1 && role.privileges[0].resource.collection === "staff", role);
admin.grantRolesToUser("shWriter", ["shStaffReader"]);
check("the custom role grants find on its collection", second.getSiblingDB("shhr").staff.findOne().name === "ann");
check("and nothing more on that database", code(() => second.getSiblingDB("shhr").other.findOne()) === 13);

const out = second.logout();
check("db.logout", out.ok === 1, out);
check("after logout the connection is refused again (13)", code(() => second.getSiblingDB("shshop").items.findOne()) === 13);

admin.dropUser("shWriter");
admin.dropUser("shReader");
admin.dropRole("shStaffReader");
check("dropped users are gone", admin.getUsers({ filter: { user: /^sh/ } }).users.length === 0, admin.getUsers());
db.getSiblingDB("shshop").dropDatabase();
db.getSiblingDB("shhr").dropDatabase();
finish();
