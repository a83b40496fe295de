// mongosh --file against a server started with --replSet rs0 and not yet initiated: the shell
// helpers a user types (rs.initiate(), rs.status(), rs.conf(), rs.reconfig(), db.hello()) and
// writes through the set, checked against what mongod answers. Prints "ok - ..." lines.
load(__dirname + "/mongosh_checks.js");
const check = makeCheck("mongosh replica set");

let status;
try {
  status = rs.status();
} catch (e) {
  status = e;
}
check("rs.status() before initiate is 94 NotYetInitialized", status.code === 94, status);

const initiated = rs.initiate();
check("rs.initiate() without a config uses the default one", initiated.ok === 1 &&
  initiated.info2 === "no configuration specified. Using a default configuration for the set", initiated);
let again;
try {
  again = rs.initiate();
} catch (e) {
  again = e;
}
check("a second rs.initiate() is 23 AlreadyInitialized", again.code === 23, again);

const hello = db.hello();
check("hello names the set and this member as primary", hello.setName === "rs0" && hello.isWritablePrimary === true &&
  hello.primary === hello.me && hello.hosts.length === 1, hello);

status = rs.status();
check("rs.status() shows one PRIMARY, itself", status.ok === 1 && status.set === "rs0" && status.myState === 1 &&
  status.members.length === 1 && status.members[0].stateStr === "PRIMARY" && status.members[0].self === true, status);

const conf = rs.conf();
check("rs.conf() is version 1 with the member's defaults", conf._id === "rs0" && conf.version === 1 &&
  conf.members[0].priority === 1 && conf.members[0].votes === 1, conf);

conf.members[0].tags = { dc: "east" };
const reconfigured = rs.reconfig(conf);
check("rs.reconfig() takes the next version", reconfigured.ok === 1 && rs.conf().version === 2 &&
  rs.conf().members[0].tags.dc === "east", rs.conf());

let added;
try {
  added = rs.add("192.0.2.1:27017");
} catch (e) {
  added = e;
}
check("rs.add() of another server is refused (74 NodeNotFound)", added.code === 74, added);

const sdb = db.getSiblingDB("shell_replset");
sdb.dropDatabase();
const inserted = sdb.items.insertOne({ _id: 1, n: 1 });
sdb.items.updateOne({ _id: 1 }, { $inc: { n: 1 } });
check("writes go through the primary", inserted.acknowledged && sdb.items.findOne({ _id: 1 }).n === 2,
  sdb.items.findOne({ _id: 1 }));
const stream = sdb.items.watch();
sdb.items.insertOne({ _id: 2, n: 1 });
let change = null;
for (let i = 0; i < 20 && change === null; i++) {
  change = stream.tryNext();
}
check("db.coll.watch() sees the next insert", change !== null && change.operationType === "insert" &&
  change.documentKey._id === 2 && change.fullDocument.n === 1, change);
stream.close();

const session = db.getMongo().startSession();
const orders = session.getDatabase("shell_replset").orders;
session.withTransaction(() => {
  orders.insertOne({ _id: 1, total: 5 });
  orders.updateOne({ _id: 1 }, { $inc: { total: 1 } });
});
check("session.withTransaction() commits its writes together", sdb.orders.findOne({ _id: 1 })?.total === 6,
  sdb.orders.findOne({ _id: 1 }));
session.startTransaction();
orders.insertOne({ _id: 2 });
check("a transaction reads its own write", orders.findOne({ _id: 2 }) !== null && sdb.orders.findOne({ _id: 2 }) === null,
  sdb.orders.find().toArray());
session.abortTransaction();
check("an aborted transaction leaves nothing", sdb.orders.countDocuments({ _id: 2 }) === 0, sdb.orders.find().toArray());
session.endSession();

const info = db.getReplicationInfo();
check("db.getReplicationInfo() reads the oplog: mongod's default size (at least 990 MB) and its time range",
  info.configuredLogSizeMB >= 990 && info.usedMB > 0 && typeof info.tFirst === "string" && info.timeDiff >= 0, info);
finish();
