// A typical Node.js application flow against Monarch: createIndex (unique), insertMany, find with sort/limit,
// updateOne/updateMany, countDocuments (an aggregate), findOneAndUpdate, deleteMany, drop.
// One "ok - ..." / "not ok - ..." line per check; exits 1 on any mismatch.
import { MongoClient } from 'mongodb';

let failures = 0;
function check(what, condition, detail = '') {
  if (condition) {
    console.log(`ok - node app: ${what}`);
  } else {
    failures += 1;
    console.log(`not ok - node app: ${what} ${JSON.stringify(detail)}`);
  }
}

const client = new MongoClient(process.env.MONARCH_URI, { serverSelectionTimeoutMS: 5000 });
try {
  const tasks = client.db('todo').collection('tasks');
  await tasks.drop().catch(() => {});
  const index = await tasks.createIndex({ title: 1 }, { unique: true });
  const listed = await tasks.listIndexes().toArray();
  check('createIndex (unique) is listed', index === 'title_1' && listed.some((ix) => ix.name === 'title_1' && ix.unique === true), listed);
  const inserted = await tasks.insertMany(
    Array.from({ length: 30 }, (_, i) => ({ _id: i, title: `task ${i}`, priority: i % 4, done: i % 3 === 0 })),
  );
  check('insertMany inserts 30 documents', inserted.insertedCount === 30, inserted);

  const plan = await tasks.find({ title: 'task 7' }).explain('executionStats');
  const { totalKeysExamined: keys, totalDocsExamined: docs, nReturned } = plan.executionStats;
  check('a lookup by title uses the index (1 key, 1 document)',
    plan.queryPlanner.winningPlan.inputStage?.indexName === 'title_1' && [keys, docs, nReturned].join() === '1,1,1', plan.queryPlanner.winningPlan);
  const dup = await tasks.insertOne({ title: 'task 7' }).catch((error) => error);
  check('a taken title fails with 11000', dup.code === 11000, String(dup));

  const top = await tasks.find({ done: false }).sort({ priority: -1, _id: 1 }).limit(3).project({ title: 1 }).toArray();
  check('find with filter, sort, limit and projection', JSON.stringify(top) === JSON.stringify([
    { _id: 7, title: 'task 7' }, { _id: 11, title: 'task 11' }, { _id: 19, title: 'task 19' },
  ]), top);

  const one = await tasks.updateOne({ _id: 1 }, { $set: { done: true }, $inc: { edits: 1 } });
  check('updateOne modifies one document', one.matchedCount === 1 && one.modifiedCount === 1, one);
  const many = await tasks.updateMany({ priority: 0 }, { $set: { urgent: false } });
  check('updateMany modifies every match', many.matchedCount === 8 && many.modifiedCount === 8, many);

  const open = await tasks.countDocuments({ done: false });
  check('countDocuments (an aggregate pipeline)', open === 19, open);

  const claimed = await tasks.findOneAndUpdate({ done: false }, { $set: { owner: 'me' } }, { sort: { _id: 1 }, returnDocument: 'after' });
  check('findOneAndUpdate returns the updated document', claimed && claimed._id === 2 && claimed.owner === 'me', claimed);

  const removed = await tasks.deleteMany({ done: true });
  check('deleteMany removes the done tasks', removed.deletedCount === 11, removed);

  check('drop', (await tasks.drop()) === true);
  const names = (await client.db('todo').listCollections().toArray()).map((c) => c.name);
  check('the collection is gone', !names.includes('tasks'), names);
} catch (error) {
  check('no unexpected error', false, String(error));
} finally {
  await client.close();
}
process.exit(failures ? 1 : 0);
