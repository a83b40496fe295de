// Meteor's oplog tailing, as its OplogHandle does it, with the Node driver against a replica set
// of one: read the newest entry's time (sort by $natural, descending), then tail local.oplog.rs
// from after it with a tailable awaitData cursor filtered by namespace and operation, and follow
// an application's inserts, updates ($v: 2 diffs), deletes and a drop as they happen.
// One "ok - ..." / "not ok - ..." line per check; exits 1 on any mismatch.
import { MongoClient } from 'mongodb';

let failures = 0;
function check(what, condition, detail = '') {
  if (condition) {
    console.log(`ok - node oplog: ${what}`);
  } else {
    failures += 1;
    console.log(`not ok - node oplog: ${what} ${JSON.stringify(detail)}`);
  }
}

const client = new MongoClient(process.env.MONARCH_URI, { serverSelectionTimeoutMS: 5000 });
try {
  const oplog = client.db('local').collection('oplog.rs');
  const app = client.db('meteor_app');
  await app.dropDatabase();
  const last = await oplog.findOne({}, { sort: { $natural: -1 }, projection: { ts: 1 } });
  check('the newest entry has a time', last && last.ts && last.ts._bsontype === 'Timestamp', last);

  const selector = {
    $and: [
      { ns: /^(?:meteor_app\.)/ },
      { $or: [{ op: { $in: ['i', 'u', 'd'] } }, { op: 'c', 'o.drop': { $exists: true } }, { op: 'c', 'o.dropDatabase': 1 }] },
    ],
    ts: { $gt: last.ts },
  };
  const cursor = oplog.find(selector, { tailable: true, awaitData: true, maxAwaitTimeMS: 2000 });
  // The first batch is empty: open the cursor before the application writes.
  const pending = cursor.hasNext();

  const links = app.collection('links');
  await links.insertOne({ _id: 'a', title: 'Monarch', votes: 0 });
  await links.updateOne({ _id: 'a' }, { $inc: { votes: 1 }, $set: { 'meta.seen': true } });
  await links.deleteOne({ _id: 'a' });
  await links.drop();
  await pending;

  const seen = [];
  // The implicit `create` entry is not selected: the four changes come, in order.
  for (let i = 0; i < 4; i += 1) {
    seen.push(await cursor.next());
  }
  const [insert, update, remove, drop] = seen;
  check('an insert: op i, ns, the document', insert.op === 'i' && insert.ns === 'meteor_app.links' && insert.o.title === 'Monarch', insert);
  check('an update: op u, o2 the _id, a $v: 2 diff', update.op === 'u' && update.o2._id === 'a' && update.o.$v === 2 &&
    update.o.diff.u.votes === 1 && update.o.diff.i.meta.seen === true, update);
  check('a delete: op d, o the _id', remove.op === 'd' && remove.o._id === 'a', remove);
  check('a drop: op c on <db>.$cmd', drop.op === 'c' && drop.ns === 'meteor_app.$cmd' && drop.o.drop === 'links', drop);
  check('entries come in time order', seen.every((e, i) => i === 0 || e.ts.greaterThan(seen[i - 1].ts)), seen.map((e) => e.ts));
  await cursor.close();
} catch (error) {
  failures += 1;
  console.log(`not ok - node oplog: unexpected error ${error}`);
} finally {
  await client.close();
}
process.exit(failures === 0 ? 0 : 1);
