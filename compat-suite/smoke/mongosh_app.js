// mongosh --file: an operator's session against Monarch. Prints "ok - ..." lines and exits
// non-zero (quit(1)) on any mismatch.
load(__dirname + "/mongosh_checks.js");
const check = makeCheck("mongosh app");

const shop = db.getSiblingDB('shell_app');
shop.items.drop();
check('createIndex (unique)', shop.items.createIndex({ name: 1 }, { unique: true }) === 'name_1');
check('getIndexes lists it', shop.items.getIndexes().some((ix) => ix.name === 'name_1' && ix.unique === true), shop.items.getIndexes());
const res = shop.items.insertMany([
  { _id: 1, name: 'apple', qty: 5, tags: ['fruit'] },
  { _id: 2, name: 'bread', qty: 0, tags: ['bakery'] },
  { _id: 3, name: 'cheese', qty: 12, tags: ['dairy'] },
  { _id: 4, name: 'dates', qty: 7, tags: ['fruit', 'dried'] },
]);
check('insertMany', Object.keys(res.insertedIds).length === 4, res);

const plan = shop.items.find({ name: 'cheese' }).explain('executionStats');
const { totalKeysExamined: keys, totalDocsExamined: docs, nReturned } = plan.executionStats;
check('a lookup by name uses the index (1 key, 1 document)',
  plan.queryPlanner.winningPlan.inputStage?.indexName === 'name_1' && [keys, docs, nReturned].join() === '1,1,1', plan.queryPlanner.winningPlan);

const inStock = shop.items.find({ qty: { $gt: 0 } }, { name: 1, _id: 0 }).sort({ qty: -1 }).limit(2).toArray();
check('find with sort and limit', EJSON.stringify(inStock) === EJSON.stringify([{ name: 'cheese' }, { name: 'dates' }]), inStock);

const upd = shop.items.updateOne({ name: 'bread' }, { $inc: { qty: 3 }, $push: { tags: 'fresh' } });
check('updateOne', upd.matchedCount === 1 && upd.modifiedCount === 1, upd);
check('the update is visible', shop.items.findOne({ _id: 2 }).qty === 3);

const fruit = shop.items.countDocuments({ tags: 'fruit' });
check('countDocuments', fruit === 2, fruit);
const counted = shop.items.aggregate([{ $match: { qty: { $gte: 5 } } }, { $count: 'n' }]).toArray();
check('aggregate with $count', counted.length === 1 && counted[0].n === 3, counted);

check('show collections lists it', shop.getCollectionNames().includes('items'));
check('drop', shop.items.drop() === true);
check('dropDatabase', shop.dropDatabase().ok === 1);
finish();
