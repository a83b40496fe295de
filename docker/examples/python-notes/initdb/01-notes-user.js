// Runs once, on the first start of an empty volume, against MONGO_INITDB_DATABASE ("notes"),
// as the mongo image runs init scripts: the app's own user and the index its queries use.
db.createUser({
  user: "notes",
  pwd: process.env.NOTES_DB_PASSWORD,
  roles: [{ role: "readWrite", db: "notes" }],
});
db.notes.createIndex({ created: -1 });
